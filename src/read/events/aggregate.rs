//! The C-level aggregates of the events read: `_order_events(user, timestamp, amount, problem,
//! end day)` and `_known_users(user, signup, end day)`. Plain V1 functions, with their CREATE
//! AGGREGATE in sql/read_aggregates.sql, as pgrx's `#[pg_aggregate]` cannot declare a parallel
//! aggregate with an `internal` state (pgrx#2351).

// C-level aggregate functions, called by PostgreSQL with raw arguments.
#![allow(unsafe_code)]

use pgrx::fcinfo::pg_return_null;
use pgrx::prelude::*;

use cda_analytics_core::events::Events;
use cda_analytics_core::known_users::KnownUsers;
use cda_analytics_core::left_out::Reason;
use cda_analytics_core::pg_numeric::{Float, decode_f64};

use crate::read::aggregates::{
    bytea, hand_over_state, i32_arg, i64_arg, keep, state_arg, take_or_decode, varlena_arg,
};
use crate::toolbox::convert::day_of_micros;
use crate::toolbox::errors::*;

pub(super) const WHAT: &str = "_order_events";

fn too_many() -> ! {
    raise(
        ERRCODE_PROGRAM_LIMIT_EXCEEDED,
        format!(
            "more than {} successful orders in one read",
            cda_analytics_core::events::MAX_EVENTS
        ),
        Some("Score the customers in parts (by user id range) or on a shorter history.".into()),
    )
}

v1_finfo!(pg_finfo_cda_events_sfunc);
#[unsafe(no_mangle)]
#[pg_guard]
pub unsafe extern "C-unwind" fn cda_events_sfunc(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    // SAFETY: PostgreSQL calls `cda_events_sfunc` with the arguments that sql/read_aggregates.sql declares
    // for it; the states in them are this module's own, made by `keep`.
    unsafe {
        let state = match state_arg::<Events>(fcinfo, 0) {
            Some(s) => s,
            None => &mut *keep(fcinfo, WHAT, Events::default()).cast_mut_ptr::<Events>(),
        };
        // The SQL classifies what it can see cheaply (status, user); the day comes as a
        // timestamp's microseconds and the amount in numeric's storage format, and both are
        // checked here, once, in the same order of checks as `order_rows` (status, user, day,
        // after the end, amount: NULL, below zero, NaN or infinite). The SQL cast to float8
        // would print and parse every amount.
        let from_sql = i32_arg(fcinfo, 4).and_then(Reason::from_code);
        let user = i64_arg(fcinfo, 1);
        let day = day_of_micros(i64_arg(fcinfo, 2));
        let end = i32_arg(fcinfo, 5).unwrap_or(i32::MAX);
        let amount = || match varlena_arg(fcinfo, 3).map(decode_f64) {
            None => Err(Reason::NullAmount),
            Some(Ok(Float::Finite { negative: true, .. } | Float::NegativeInfinity)) => {
                Err(Reason::NegativeAmount)
            }
            Some(Ok(Float::Finite { value, .. })) => Ok(value),
            Some(Ok(Float::NaN | Float::Infinity) | Err(_)) => Err(Reason::NonFiniteAmount),
        };
        let checked = match (from_sql, user, day) {
            (Some(r @ (Reason::NullStatus | Reason::NullUserId)), _, _) => Err(r),
            (_, None, _) => Err(Reason::NullUserId),
            (_, _, None) => Err(Reason::NullDate),
            (_, _, Some(d)) if d.0 > end => Err(Reason::AfterEnd),
            _ => amount(),
        };
        match (checked, user, day) {
            (Ok(amount), Some(user), Some(day)) => state.push(user, day.0, amount),
            (Err(reason), _, _) => state.leave_out(reason),
            // The checks above leave no order without a user or a day.
            (Ok(_), _, _) => state.leave_out(Reason::NullUserId),
        }
        if !state.fits() {
            too_many();
        }
        pg_sys::Datum::from(state as *mut Events)
    }
}

v1_finfo!(pg_finfo_cda_events_combine);
#[unsafe(no_mangle)]
#[pg_guard]
pub unsafe extern "C-unwind" fn cda_events_combine(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    // SAFETY: PostgreSQL calls `cda_events_combine` with the arguments that sql/read_aggregates.sql declares
    // for it; the states in them are this module's own, made by `keep`.
    unsafe {
        match (
            state_arg::<Events>(fcinfo, 0),
            state_arg::<Events>(fcinfo, 1),
        ) {
            (Some(s), Some(o)) => {
                s.merge(std::mem::take(o));
                if !s.fits() {
                    too_many();
                }
                pg_sys::Datum::from(s as *mut Events)
            }
            (Some(s), None) => pg_sys::Datum::from(s as *mut Events),
            // The second state may live in a short-lived context: move it into the aggregate's.
            (None, Some(o)) => keep(fcinfo, WHAT, std::mem::take(o)),
            (None, None) => pg_return_null(fcinfo),
        }
    }
}

v1_finfo!(pg_finfo_cda_events_serial);
#[unsafe(no_mangle)]
#[pg_guard]
pub unsafe extern "C-unwind" fn cda_events_serial(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    // SAFETY: PostgreSQL calls `cda_events_serial` with the arguments that sql/read_aggregates.sql declares
    // for it; the states in them are this module's own, made by `keep`.
    unsafe {
        match state_arg::<Events>(fcinfo, 0) {
            Some(s) => bytea(s.encode()),
            None => pg_return_null(fcinfo),
        }
    }
}

v1_finfo!(pg_finfo_cda_events_final);
#[unsafe(no_mangle)]
#[pg_guard]
pub unsafe extern "C-unwind" fn cda_events_final(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    // SAFETY: the state is the aggregate's Events.
    unsafe { hand_over_state(fcinfo, Events::encode) }
}

v1_finfo!(pg_finfo_cda_events_deserial);
#[unsafe(no_mangle)]
#[pg_guard]
pub unsafe extern "C-unwind" fn cda_events_deserial(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    // SAFETY: PostgreSQL calls `cda_events_deserial` with the arguments that sql/read_aggregates.sql declares
    // for it; the states in them are this module's own, made by `keep`.
    unsafe {
        let bytes = varlena_arg(fcinfo, 0).unwrap_or_default();
        match Events::decode(bytes) {
            Ok(events) => keep(fcinfo, WHAT, events),
            Err(e) => raise(ERRCODE_INTERNAL_ERROR, format!("{WHAT}: {e}"), None),
        }
    }
}

// ---- _known_users(user_id int8, signup timestamp[tz], end day int4) -> bytea: every user with
// an id, and whether they had signed up by the end day (a NULL or infinite signup had not).

v1_finfo!(pg_finfo_cda_known_users_sfunc);
#[unsafe(no_mangle)]
#[pg_guard]
pub unsafe extern "C-unwind" fn cda_known_users_sfunc(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    // SAFETY: PostgreSQL calls `cda_known_users_sfunc` with the arguments that sql/read_aggregates.sql declares
    // for it; the states in them are this module's own, made by `keep`.
    unsafe {
        let state = match state_arg::<Vec<(i64, bool)>>(fcinfo, 0) {
            Some(s) => s,
            None => &mut *keep(fcinfo, "_known_users", Vec::<(i64, bool)>::new())
                .cast_mut_ptr::<Vec<(i64, bool)>>(),
        };
        if let Some(id) = i64_arg(fcinfo, 1) {
            let end = i32_arg(fcinfo, 3).unwrap_or(i32::MIN);
            let registered = day_of_micros(i64_arg(fcinfo, 2)).is_some_and(|d| d.0 <= end);
            state.push((id, registered));
        }
        pg_sys::Datum::from(state as *mut Vec<(i64, bool)>)
    }
}

v1_finfo!(pg_finfo_cda_known_users_final);
#[unsafe(no_mangle)]
#[pg_guard]
pub unsafe extern "C-unwind" fn cda_known_users_final(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    // SAFETY: the state is the aggregate's pairs.
    unsafe { hand_over_state::<Vec<(i64, bool)>>(fcinfo, |v| KnownUsers::encode_pairs(v)) }
}

/// The (user id, signed up by the end) pairs `_known_users` returned.
pub fn known_users_result(bytes: &[u8]) -> Result<Vec<(i64, bool)>, String> {
    take_or_decode(bytes, KnownUsers::decode_pairs)
}
