//! The C-level aggregate of the items read: `_order_lines(user, day, order, product, quantity,
//! unit price, problem)`, every line of the counted orders gathered in parallel workers where the
//! planner splits the join, and handed to the caller in memory. Reading 20 million lines row by
//! row through SPI materialised them all in one process and took several times as long as the
//! join itself (BENCHMARKS.md, "Products"). Plain V1 functions, with their CREATE AGGREGATE in
//! sql/read_aggregates.sql, as the events read's are (pgrx#2351).

// C-level aggregate functions, called by PostgreSQL with raw arguments.
#![allow(unsafe_code)]

use pgrx::fcinfo::pg_return_null;
use pgrx::prelude::*;

use cda_analytics_core::items::{ItemLine, ItemProblem, Items, MAX_ENCODED_LINES, MAX_LINES};

use crate::read::aggregates::{
    bytea, hand_over_state, i32_arg, i64_arg, keep, state_arg, varlena_arg,
};
use crate::toolbox::errors::*;

pub(super) const WHAT: &str = "_order_lines";

fn too_many(limit: usize, hint: &str) -> ! {
    raise(
        ERRCODE_PROGRAM_LIMIT_EXCEEDED,
        format!("more than {limit} order lines in one read"),
        Some(hint.into()),
    )
}

fn check(state: &Items) {
    if !state.fits() {
        too_many(
            MAX_LINES,
            "Read a shorter window (the functions' from dates or as_of).",
        );
    }
}

/// Argument `n`, a float8, as an f64.
///
/// # Safety
/// As [`i64_arg`]: argument `n` must be a float8, passed by value on 64-bit builds.
unsafe fn f64_arg(fcinfo: pg_sys::FunctionCallInfo, n: usize) -> Option<f64> {
    // SAFETY: as the caller vouches; a float8 datum holds the value's bits.
    unsafe { i64_arg(fcinfo, n).map(|bits| f64::from_bits(bits as u64)) }
}

v1_finfo!(pg_finfo_cda_lines_sfunc);
#[unsafe(no_mangle)]
#[pg_guard]
pub unsafe extern "C-unwind" fn cda_lines_sfunc(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    // SAFETY: PostgreSQL calls `cda_lines_sfunc` with the arguments that sql/read_aggregates.sql
    // declares for it; the states in them are this module's own, made by `keep`.
    unsafe {
        let state = match state_arg::<Items>(fcinfo, 0) {
            Some(s) => s,
            None => &mut *keep(fcinfo, WHAT, Items::default()).cast_mut_ptr::<Items>(),
        };
        // The SQL classifies the line (items::read's CASE); a line that counts has a user and a
        // day, as the orders read gives them, or it is not one of a counted order.
        match ItemProblem::from_code(i32_arg(fcinfo, 7).unwrap_or(0)) {
            Some(problem) => state.leave_out(problem),
            None => {
                if let (Some(user), Some(day)) = (i64_arg(fcinfo, 1), i32_arg(fcinfo, 2)) {
                    state.lines.push(ItemLine {
                        user,
                        day,
                        order: i64_arg(fcinfo, 3).unwrap_or(0),
                        product: i64_arg(fcinfo, 4).unwrap_or(0),
                        quantity: f64_arg(fcinfo, 5).unwrap_or(0.0),
                        unit_price: f64_arg(fcinfo, 6).unwrap_or(0.0),
                    });
                    if state.lines.len() % 1_048_576 == 0 {
                        check(state);
                    }
                }
            }
        }
        pg_sys::Datum::from(state as *mut Items)
    }
}

v1_finfo!(pg_finfo_cda_lines_combine);
#[unsafe(no_mangle)]
#[pg_guard]
pub unsafe extern "C-unwind" fn cda_lines_combine(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    // SAFETY: PostgreSQL calls `cda_lines_combine` with the arguments that
    // sql/read_aggregates.sql declares for it; the states in them are this module's own.
    unsafe {
        match (state_arg::<Items>(fcinfo, 0), state_arg::<Items>(fcinfo, 1)) {
            (Some(s), Some(o)) => {
                s.merge(std::mem::take(o));
                check(s);
                pg_sys::Datum::from(s as *mut Items)
            }
            (Some(s), None) => pg_sys::Datum::from(s as *mut Items),
            // The second state may live in a short-lived context: move it into the aggregate's.
            (None, Some(o)) => keep(fcinfo, WHAT, std::mem::take(o)),
            (None, None) => pg_return_null(fcinfo),
        }
    }
}

fn encode(state: &Items) -> Vec<u8> {
    match state.encode() {
        Some(bytes) => bytes,
        None => too_many(
            MAX_ENCODED_LINES,
            "A parallel worker's share of the lines must fit in 1 GB: allow more workers (max_parallel_workers_per_gather) or read a shorter window.",
        ),
    }
}

v1_finfo!(pg_finfo_cda_lines_serial);
#[unsafe(no_mangle)]
#[pg_guard]
pub unsafe extern "C-unwind" fn cda_lines_serial(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    // SAFETY: PostgreSQL calls `cda_lines_serial` with the arguments that
    // sql/read_aggregates.sql declares for it; the state is this module's own.
    unsafe {
        match state_arg::<Items>(fcinfo, 0) {
            Some(s) => bytea(encode(s)),
            None => pg_return_null(fcinfo),
        }
    }
}

v1_finfo!(pg_finfo_cda_lines_deserial);
#[unsafe(no_mangle)]
#[pg_guard]
pub unsafe extern "C-unwind" fn cda_lines_deserial(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    // SAFETY: PostgreSQL calls `cda_lines_deserial` with the arguments that
    // sql/read_aggregates.sql declares for it.
    unsafe {
        let bytes = varlena_arg(fcinfo, 0).unwrap_or_default();
        match Items::decode(bytes) {
            Ok(items) => keep(fcinfo, WHAT, items),
            Err(e) => raise(ERRCODE_INTERNAL_ERROR, format!("{WHAT}: {e}"), None),
        }
    }
}

v1_finfo!(pg_finfo_cda_lines_final);
#[unsafe(no_mangle)]
#[pg_guard]
pub unsafe extern "C-unwind" fn cda_lines_final(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    // SAFETY: the state is the aggregate's Items.
    unsafe { hand_over_state(fcinfo, encode) }
}
