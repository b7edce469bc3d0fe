//! Results tables rewritten only where they changed (core's `stored`): the stored rows'
//! fingerprints are read through the aggregate `_stored_fingerprints(user_id, fingerprint,
//! ctid)`, so a million rows cost one scan and no per-row SPI work, and [`replace_changed`]
//! deletes and inserts only the rows whose fingerprints differ. The LTV and RFM refreshes write
//! this way.

use cda_analytics_core::stored::{
    Changes, IdPrint, StoredRow, changes, decode_stored, encode_stored,
};
use pgrx::fcinfo::{pg_arg_is_null, pg_getarg_datum_raw};
use pgrx::prelude::*;

use crate::aggregates::{hand_over_state, i64_arg, keep, state_arg, take_or_decode, varlena_arg};
use crate::errors::*;
use crate::results::{execute as run, with_settings};

type Rows = Vec<StoredRow>;

/// How many stored rows a refresh wrote and removed (a changed row counts in both).
#[derive(Clone, Copy, Default)]
pub struct Written {
    pub rows_written: usize,
    pub rows_removed: usize,
}

/// Removing this many rows by id costs about as much as clearing a small table; beyond it, and
/// beyond a quarter of the table, one DELETE of everything and a bulk INSERT are cheaper.
const REWRITE_ALL_ABOVE: usize = 1000;

/// Makes `ext.table` (keyed by `user_id`, with a `fingerprint` column) hold the rows whose
/// `(user id, fingerprint)` pairs are `new`: removes the stored rows that differ or are gone, then
/// calls `insert` with the indices into `new` of the rows to write (None: all of them, after one
/// DELETE of everything, when more than a quarter of the table and over [`REWRITE_ALL_ABOVE`]
/// rows go). `insert` is not called when nothing is to be written. DELETE rather than TRUNCATE:
/// TRUNCATE is not MVCC-safe (a concurrent REPEATABLE READ reader would see an empty table) and
/// would block readers until commit.
/// `stored` is what [`read`] found, read after the table's lock was taken.
pub fn replace_changed(
    ext: &str,
    table: &str,
    stored: Stored,
    new: &[IdPrint],
    insert: impl FnOnce(Option<&[usize]>),
) -> Written {
    let Stored {
        rows: stored,
        read_ms,
    } = stored;
    let stored_len = stored.len();
    let t_read = std::time::Instant::now();
    let Changes { write, remove, .. } = changes(stored, new);
    let t_changes = std::time::Instant::now();
    let everything = remove.len() > REWRITE_ALL_ABOVE && remove.len() * 4 > stored_len;
    let written = if everything {
        run(
            &format!("DELETE FROM {ext}.{table}"),
            &[],
            &format!("clearing {table}"),
        );
        insert(None);
        Written {
            rows_written: new.len(),
            rows_removed: stored_len,
        }
    } else {
        let written = Written {
            rows_written: write.len(),
            rows_removed: remove.len(),
        };
        if !remove.is_empty() {
            // The rows are removed where the read found them: the table's lock (taken before
            // the read, see crate::results::lock) keeps every other writer and VACUUM out, so
            // they are still there. The planner prices each tid as a random page read and
            // would scan the whole table past a few thousand of them (160-240 ms for 48,000
            // rows of a million, where the TID scan takes 48 ms), so the scan is chosen for it;
            // JIT is off as it would compile the plan for its inflated cost.
            let tids: Vec<pg_sys::ItemPointerData> = remove.into_iter().map(tid).collect();
            with_settings(&[("enable_seqscan", "off"), ("jit", "off")], || {
                run(
                    &format!("DELETE FROM {ext}.{table} WHERE ctid = ANY ($1)"),
                    &[tids.into()],
                    &format!("removing changed rows from {table}"),
                )
            });
        }
        if !write.is_empty() {
            insert(Some(&write));
        }
        written
    };
    let ms = |a: std::time::Instant, b: std::time::Instant| (b - a).as_secs_f64() * 1e3;
    pgrx::debug1!(
        "{table}: stored fingerprints {:.1} ms, changes {:.1} ms, writes {:.1} ms ({} written, {} removed)",
        read_ms,
        ms(t_read, t_changes),
        ms(t_changes, std::time::Instant::now()),
        written.rows_written,
        written.rows_removed
    );
    written
}

/// The stored rows of a results table, as [`read`] found them.
pub struct Stored {
    rows: Rows,
    read_ms: f64,
}

/// Every stored row of `ext.table`, for [`replace_changed`]. A fingerprint that is not 16 bytes
/// (a row edited by hand) matches nothing, so that row is rewritten.
pub fn read(ext: &str, table: &str) -> Stored {
    let t0 = std::time::Instant::now();
    let rows = read_rows(ext, table);
    Stored {
        rows,
        read_ms: t0.elapsed().as_secs_f64() * 1e3,
    }
}

fn read_rows(ext: &str, table: &str) -> Rows {
    let sql =
        format!("SELECT {ext}._stored_fingerprints(user_id, fingerprint, ctid) FROM {ext}.{table}");
    crate::spi_read::one_bytea(&sql, &[], &format!("reading {table}"), |bytes| {
        let Some(b) = bytes else {
            return Ok(Vec::new());
        };
        take_or_decode(b, decode_stored)
    })
    .unwrap_or_else(|e| {
        raise(
            ERRCODE_INTERNAL_ERROR,
            format!("_stored_fingerprints: {e}"),
            None,
        )
    })
}

/// A row's place (block and offset of its ctid) as one number, for core's [`StoredRow`].
fn place(t: &pg_sys::ItemPointerData) -> u64 {
    let (block, offset) = pgrx::itemptr::item_pointer_get_both(*t);
    (u64::from(block) << 16) | u64::from(offset)
}

/// The ctid of a [`place`].
fn tid(place: u64) -> pg_sys::ItemPointerData {
    let mut t = pg_sys::ItemPointerData::default();
    pgrx::itemptr::item_pointer_set_all(&mut t, (place >> 16) as u32, place as u16);
    t
}

// ---- _stored_fingerprints(user_id int8, fingerprint bytea, ctid tid) -> bytea

v1_finfo!(pg_finfo_cda_stored_fingerprints_sfunc);
#[unsafe(no_mangle)]
#[pg_guard]
pub unsafe extern "C-unwind" fn cda_stored_fingerprints_sfunc(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    unsafe {
        let state = match state_arg::<Rows>(fcinfo, 0) {
            Some(s) => s,
            None => &mut *keep(fcinfo, "_stored_fingerprints", Rows::new()).cast_mut_ptr::<Rows>(),
        };
        if let Some(id) = i64_arg(fcinfo, 1)
            && !pg_arg_is_null(fcinfo, 3)
        {
            // A fingerprint of another length stays all zeros, which no row hashes to in
            // practice, so that row gets rewritten.
            let mut print = [0u8; 16];
            if let Some(b) = varlena_arg(fcinfo, 2).filter(|b| b.len() == 16) {
                print.copy_from_slice(b);
            }
            let ctid = &*pg_getarg_datum_raw(fcinfo, 3).cast_mut_ptr::<pg_sys::ItemPointerData>();
            state.push(StoredRow {
                id,
                print,
                place: place(ctid),
            });
        }
        pg_sys::Datum::from(state as *mut Rows)
    }
}

v1_finfo!(pg_finfo_cda_stored_fingerprints_final);
#[unsafe(no_mangle)]
#[pg_guard]
pub unsafe extern "C-unwind" fn cda_stored_fingerprints_final(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    // SAFETY: the state is the aggregate's rows.
    unsafe { hand_over_state::<Rows>(fcinfo, |r| encode_stored(r)) }
}
