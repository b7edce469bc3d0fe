//! What the C-level aggregate functions share (the purchases read in
//! `crate::read::purchases::aggregate`, the order events in `crate::read::events::aggregate`, the
//! stored rows in `crate::write::stored_rows`): their memory context and state, their raw
//! arguments, and the hand-over of their final value to the caller in memory. They are plain V1
//! functions because pgrx's `#[pg_aggregate]` cannot declare a parallel aggregate with an
//! `internal` state (pgrx#2351).

// The C-level aggregates take raw arguments and keep their states in PostgreSQL's memory contexts.
#![allow(unsafe_code)]

use pgrx::fcinfo::{pg_arg_is_null, pg_getarg_datum_raw};
use pgrx::prelude::*;
use pgrx::{IntoDatum, PgMemoryContexts};

use crate::toolbox::errors::*;
use crate::toolbox::token_slot::TokenSlot;

/// The aggregate's memory context: states live there and are dropped when it is reset.
///
/// # Safety
/// `fcinfo` must be the live call of one of the extension's aggregate support functions.
pub(crate) unsafe fn agg_context(
    fcinfo: pg_sys::FunctionCallInfo,
    what: &str,
) -> pg_sys::MemoryContext {
    let mut cx: pg_sys::MemoryContext = std::ptr::null_mut();
    // SAFETY: fcinfo is the live call's; AggCheckCallContext only reads it.
    if unsafe { pg_sys::AggCheckCallContext(fcinfo, &mut cx) } == 0 {
        raise(
            ERRCODE_FEATURE_NOT_SUPPORTED,
            format!("{what} can only be called as an aggregate"),
            None,
        );
    }
    cx
}

/// Moves `value` into the aggregate context; it is dropped when that context goes away, so an
/// error or a cancel frees it.
///
/// # Safety
/// `fcinfo` must be the live call of one of the extension's aggregate support functions.
pub(crate) unsafe fn keep<T>(
    fcinfo: pg_sys::FunctionCallInfo,
    what: &str,
    value: T,
) -> pg_sys::Datum {
    // SAFETY: as the caller vouches, a live call of an aggregate's support function.
    let cx = unsafe { agg_context(fcinfo, what) };
    pg_sys::Datum::from(PgMemoryContexts::For(cx).leak_and_drop_on_delete(value))
}

/// The state pointer in argument `n`, or None for a NULL state.
///
/// # Safety
/// `fcinfo` must be the live call of one of the extension's aggregate support functions. Argument `n` must
/// be its `internal` state, made by [`keep`] as a `T`.
pub(crate) unsafe fn state_arg<'a, T>(
    fcinfo: pg_sys::FunctionCallInfo,
    n: usize,
) -> Option<&'a mut T> {
    // SAFETY: argument n of these functions is declared `internal` and only ever holds a
    // pointer this module created with keep().
    unsafe {
        if pg_arg_is_null(fcinfo, n) {
            None
        } else {
            (pg_getarg_datum_raw(fcinfo, n).cast_mut_ptr::<T>()).as_mut()
        }
    }
}

/// Argument `n`, an int8 or a timestamp, as an i64.
///
/// # Safety
/// `fcinfo` must be the live call of one of the extension's aggregate support functions. Argument `n` must
/// be passed by value.
pub(crate) unsafe fn i64_arg(fcinfo: pg_sys::FunctionCallInfo, n: usize) -> Option<i64> {
    // SAFETY: int8 and timestamps are passed by value on 64-bit builds.
    unsafe { (!pg_arg_is_null(fcinfo, n)).then(|| pg_getarg_datum_raw(fcinfo, n).value() as i64) }
}

/// A bytea or numeric argument's payload, detoasted.
///
/// # Safety
/// `fcinfo` must be the live call of one of the extension's aggregate support functions. Argument `n` must
/// be a varlena.
#[inline(always)]
pub(crate) unsafe fn varlena_arg<'a>(
    fcinfo: pg_sys::FunctionCallInfo,
    n: usize,
) -> Option<&'a [u8]> {
    // SAFETY: the argument is a varlena when it is not NULL.
    unsafe {
        if pg_arg_is_null(fcinfo, n) {
            return None;
        }
        Some(varlena_bytes(pg_getarg_datum_raw(fcinfo, n)))
    }
}

/// A varlena datum's payload, detoasted.
///
/// # Safety
/// `datum` must point to a varlena that lives as long as `'a`; a compressed or out-of-line one
/// is detoasted into a copy in the current memory context, which must outlive `'a` as well.
#[inline(always)]
pub(crate) unsafe fn varlena_bytes<'a>(datum: pg_sys::Datum) -> &'a [u8] {
    // SAFETY: as the caller vouches.
    unsafe {
        // Inline values (nearly all amounts) are read in place: a call into PostgreSQL goes
        // through pgrx's error boundary, which costs more than decoding the amount.
        inline_bytes(datum)
            .unwrap_or_else(|| payload(pg_sys::pg_detoast_datum_packed(datum.cast_mut_ptr())))
    }
}

/// A varlena's bytes when they are stored inline and uncompressed, as nearly all amounts,
/// statuses and fingerprints are; None when reading them needs PostgreSQL (detoasting).
///
/// # Safety
/// `datum` must point to a varlena that outlives `'a`.
#[inline(always)]
pub(crate) unsafe fn inline_bytes<'a>(datum: pg_sys::Datum) -> Option<&'a [u8]> {
    use pgrx::varlena::{varatt_is_1b, varatt_is_1b_e, varatt_is_4b_u};
    // SAFETY: as the caller vouches.
    unsafe {
        let raw = datum.cast_mut_ptr::<pg_sys::varlena>();
        let inline = varatt_is_4b_u(raw) || (varatt_is_1b(raw) && !varatt_is_1b_e(raw));
        inline.then(|| payload(raw))
    }
}

/// The payload of a varlena that is not toasted.
///
/// # Safety
/// `v` must point to an uncompressed, inline varlena that outlives `'a`.
#[inline(always)]
unsafe fn payload<'a>(v: *mut pg_sys::varlena) -> &'a [u8] {
    // SAFETY: as the caller vouches.
    unsafe {
        let len = pgrx::varlena::varsize_any_exhdr(v);
        std::slice::from_raw_parts(pgrx::varlena::vardata_any(v) as *const u8, len)
    }
}

pub(crate) fn bytea(bytes: Vec<u8>) -> pg_sys::Datum {
    bytes.into_datum().unwrap_or(pg_sys::Datum::from(0usize))
}

/// Argument `n`, an int4, as an i32.
///
/// # Safety
/// `fcinfo` must be the live call of one of the extension's aggregate support functions. Argument `n` must
/// be an int4.
pub(crate) unsafe fn i32_arg(fcinfo: pg_sys::FunctionCallInfo, n: usize) -> Option<i32> {
    // SAFETY: int4 is passed by value.
    unsafe { (!pg_arg_is_null(fcinfo, n)).then(|| pg_getarg_datum_raw(fcinfo, n).value() as i32) }
}

// The read aggregates' final values go to their caller in memory: the caller is the backend that
// runs the final function, and encoding the totals or the order events (tens to hundreds of MB)
// into a bytea, having SPI copy it, and decoding it again cost a visible part of a read
// (BENCHMARKS.md, "Measurements behind the code").
// The final function hands its value over under a token and returns the token's bytes; the
// caller takes the value back by them ([`take_handed`]). Only one value waits at a time, and
// `crate::read::spi::one_bytea` drops one its caller did not take, on an error too. In a parallel
// worker, which has no caller to hand to, the final function returns the encoded value.
thread_local! {
    static HANDED: TokenSlot = const { TokenSlot::new() };
}

/// The bytes standing for a handed-over value: a tag, the backend's pid and the token.
const HANDED_TAG: &[u8; 8] = b"CDAHAND1";
const HANDED_LEN: usize = 8 + 4 + 8;

/// Returns `value` from a final function: handed over in memory to this backend's caller, or
/// `encode`d where the caller is in another process.
pub(crate) fn hand_over<T: 'static>(value: T, encode: impl FnOnce(&T) -> Vec<u8>) -> pg_sys::Datum {
    // SAFETY: plain reads of process globals set at backend or worker start.
    let (in_worker, pid) = unsafe { (pg_sys::ParallelWorkerNumber >= 0, pg_sys::MyProcPid) };
    if in_worker {
        return bytea(encode(&value));
    }
    let token = HANDED.with(|h| h.put(value));
    let mut bytes = Vec::with_capacity(HANDED_LEN);
    bytes.extend_from_slice(HANDED_TAG);
    bytes.extend_from_slice(&pid.to_le_bytes());
    bytes.extend_from_slice(&token.to_le_bytes());
    bytea(bytes)
}

/// The whole of a final function whose state is the value to return: the state taken out of
/// argument 0 and handed over ([`hand_over`]), or NULL when the aggregate saw no rows.
///
/// # Safety
/// `fcinfo` must be the live call of a final function whose state argument holds a `T` made by
/// [`keep`].
pub(crate) unsafe fn hand_over_state<T: Default + 'static>(
    fcinfo: pg_sys::FunctionCallInfo,
    encode: impl FnOnce(&T) -> Vec<u8>,
) -> pg_sys::Datum {
    // SAFETY: as the caller vouches.
    unsafe {
        match state_arg::<T>(fcinfo, 0) {
            Some(s) => hand_over(std::mem::take(s), encode),
            None => pgrx::fcinfo::pg_return_null(fcinfo),
        }
    }
}

/// The value behind a final function's result `bytes`: taken back when it was handed over in this
/// backend, `decode`d when it came encoded (from a parallel worker).
pub(crate) fn take_or_decode<T: 'static, E>(
    bytes: &[u8],
    decode: impl FnOnce(&[u8]) -> Result<T, E>,
) -> Result<T, E> {
    match take_handed::<T>(bytes) {
        Some(v) => Ok(v),
        None => decode(bytes),
    }
}

/// Drops a value handed over and not taken (its caller failed or did not look).
pub(crate) fn drop_handed() {
    HANDED.with(TokenSlot::clear);
}

/// The value a final function of this backend handed over under `bytes`, or None when `bytes`
/// are an encoded value (or a token of another backend, or one already taken).
pub(crate) fn take_handed<T: 'static>(bytes: &[u8]) -> Option<T> {
    if bytes.len() != HANDED_LEN || &bytes[..8] != HANDED_TAG {
        return None;
    }
    let pid = i32::from_le_bytes(bytes[8..12].try_into().ok()?);
    let token = i64::from_le_bytes(bytes[12..20].try_into().ok()?);
    // SAFETY: a plain read of a process global.
    if pid != unsafe { pg_sys::MyProcPid } {
        return None;
    }
    HANDED.with(|h| h.take::<T>(token))
}
