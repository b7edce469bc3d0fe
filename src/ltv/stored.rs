//! The fingerprints of the stored LTV rows (`ml_user_ltv_rows`), read through the aggregate
//! `_ltv_stored(user_id, fingerprint)` so that a million pairs cost one scan and no per-row SPI
//! work. The refresh compares them with the new rows (core's `ltv::stored::changes`).

use cda_analytics_core::ltv::stored::{decode_pairs, encode_pairs};
use pgrx::fcinfo::pg_return_null;
use pgrx::prelude::*;

use crate::aggregates::{hand_over, i64_arg, keep, state_arg, take_handed, varlena_arg};
use crate::errors::*;

type Pairs = Vec<(i64, [u8; 16])>;

/// Every stored `(user id, fingerprint)`. A fingerprint that is not 16 bytes (a row edited by
/// hand) matches nothing, so that row is rewritten.
pub fn read(ext: &str) -> Pairs {
    let sql = format!("SELECT {ext}._ltv_stored(user_id, fingerprint) FROM {ext}.ml_user_ltv_rows");
    crate::spi_read::one_bytea(&sql, &[], "reading the stored LTV rows", |bytes| {
        let Some(b) = bytes else {
            return Ok(Vec::new());
        };
        match take_handed::<Pairs>(b) {
            Some(p) => Ok(p),
            None => decode_pairs(b),
        }
    })
    .unwrap_or_else(|e| raise(ERRCODE_INTERNAL_ERROR, format!("_ltv_stored: {e}"), None))
}

// ---- _ltv_stored(user_id int8, fingerprint bytea) -> bytea

v1_finfo!(pg_finfo_cda_ltv_stored_sfunc);
#[unsafe(no_mangle)]
#[pg_guard]
pub unsafe extern "C-unwind" fn cda_ltv_stored_sfunc(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    unsafe {
        let state = match state_arg::<Pairs>(fcinfo, 0) {
            Some(s) => s,
            None => &mut *keep(fcinfo, "_ltv_stored", Pairs::new()).cast_mut_ptr::<Pairs>(),
        };
        if let Some(id) = i64_arg(fcinfo, 1) {
            // A fingerprint of another length stays all zeros, which no row hashes to in
            // practice, so that row gets rewritten.
            let mut print = [0u8; 16];
            if let Some(b) = varlena_arg(fcinfo, 2).filter(|b| b.len() == 16) {
                print.copy_from_slice(b);
            }
            state.push((id, print));
        }
        pg_sys::Datum::from(state as *mut Pairs)
    }
}

v1_finfo!(pg_finfo_cda_ltv_stored_final);
#[unsafe(no_mangle)]
#[pg_guard]
pub unsafe extern "C-unwind" fn cda_ltv_stored_final(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    unsafe {
        match state_arg::<Pairs>(fcinfo, 0) {
            Some(s) => hand_over(std::mem::take(s), |p| encode_pairs(p)),
            None => pg_return_null(fcinfo),
        }
    }
}
