//! The order-events read: one parallel aggregate over the orders, `_order_events(user, timestamp,
//! amount, problem, end day)`, returns every counted order as (user, day, amount) and the others counted
//! by problem (`cda_analytics_core::events`). It streams the orders once, in parallel workers where
//! the planner splits the scan, where a grouped `array_agg` per user sorted or spilled 10 million
//! orders (8 to 16 s against about 2 s). The CREATE AGGREGATE is in sql/ltv_aggregates.sql
//! (pgrx#2351, as for the LTV aggregates).

use pgrx::fcinfo::pg_return_null;
use pgrx::prelude::*;

use cda_analytics_core::calendar::Day;
use cda_analytics_core::events::Events;
use cda_analytics_core::known_users::KnownUsers;
use cda_analytics_core::pg_numeric::{Float, decode_f64};

use crate::aggregates::{
    bytea, day_of, hand_over_state, i32_arg, i64_arg, keep, state_arg, take_or_decode, varlena_arg,
};
use crate::config::Config;
use crate::context::Context;
use crate::errors::*;
use crate::segmentation::features::{LeftOut, orders_from, problem_sql, users};
use crate::source::{Params, Source, timestamp_expr};

const WHAT: &str = "_order_events";

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
        let sql_problem = i32_arg(fcinfo, 4).unwrap_or(0).max(0) as usize;
        let user = i64_arg(fcinfo, 1);
        let day = day_of(i64_arg(fcinfo, 2));
        let end = i32_arg(fcinfo, 5).unwrap_or(i32::MAX);
        let amount = || match varlena_arg(fcinfo, 3).map(decode_f64) {
            None => Err(5),
            Some(Ok(Float::Finite { negative: true, .. } | Float::NegativeInfinity)) => Err(6),
            Some(Ok(Float::Finite { value, .. })) => Ok(value),
            Some(Ok(Float::NaN | Float::Infinity) | Err(_)) => Err(7),
        };
        let problem = match (sql_problem, user, day) {
            (1 | 2, _, _) => Err(sql_problem),
            (_, None, _) => Err(2),
            (_, _, None) => Err(3),
            (_, _, Some(d)) if d.0 > end => Err(4),
            _ => amount(),
        };
        match (problem, user, day) {
            (Ok(amount), Some(user), Some(day)) => state.push(user, day.0, amount, 0),
            (Err(problem), _, _) => state.push(0, 0, 0.0, problem.max(1)),
            _ => state.push(0, 0, 0.0, 2),
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
    unsafe {
        let state = match state_arg::<Vec<(i64, bool)>>(fcinfo, 0) {
            Some(s) => s,
            None => &mut *keep(fcinfo, "_known_users", Vec::<(i64, bool)>::new())
                .cast_mut_ptr::<Vec<(i64, bool)>>(),
        };
        if let Some(id) = i64_arg(fcinfo, 1) {
            let end = i32_arg(fcinfo, 3).unwrap_or(i32::MIN);
            let registered = day_of(i64_arg(fcinfo, 2)).is_some_and(|d| d.0 <= end);
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

/// Every counted order up to `end` of users in the users table (one user's with `one_user`),
/// grouped by user; the orders left out are counted in the returned [`LeftOut`].
pub fn read(ctx: &Context, end: Day, one_user: Option<i64>) -> (Events, LeftOut) {
    let t0 = std::time::Instant::now();
    let known = users(&ctx.source, &ctx.config.time_zone, end, one_user);
    pgrx::debug1!(
        "users read: {} in {:.1} ms",
        known.len(),
        t0.elapsed().as_secs_f64() * 1000.0
    );
    read_with(&ctx.ext, &ctx.config, &ctx.source, end, one_user, &known)
}

/// [`read`] against a users table the caller has read (`known`: user id to whether they had
/// signed up by `end`).
pub fn read_with(
    ext: &str,
    config: &Config,
    source: &Source,
    end: Day,
    one_user: Option<i64>,
    known: &KnownUsers,
) -> (Events, LeftOut) {
    let mut params = Params::new();
    let ts = timestamp_expr(
        &format!("x.{}", source.order_date),
        source.order_date_kind,
        &config.time_zone,
        &mut params,
    );
    // A constant, as the statuses are (orders_from): a parameter is fetched again for every order.
    let end_day = end.0;
    let uid = format!("x.{}", source.order_user_id);
    let problem = problem_sql(source, None, false);
    let from = orders_from(source, config);
    let filter = match one_user {
        Some(id) => format!(" AND {uid}::pg_catalog.int8 = {}", params.bind(id)),
        None => String::new(),
    };
    let sql = format!(
        "SELECT {ext}._order_events({uid}::pg_catalog.int8, {ts}, x.{amt}::pg_catalog.numeric, \
                {problem}, {end_day}) {from}{filter}",
        amt = source.amount,
    );
    let t0 = std::time::Instant::now();
    // Decoded in place: the bytes are the SPI result's, gone when the connection closes.
    let decoded: Option<Result<Events, String>> =
        crate::spi_read::one_bytea(&sql, &params.args, "reading the orders", |bytes| {
            bytes.map(|b| take_or_decode(b, Events::decode))
        });
    let mut events = match decoded {
        None => Events::default(),
        Some(Ok(e)) => e,
        Some(Err(e)) => raise(ERRCODE_INTERNAL_ERROR, format!("{WHAT}: {e}"), None),
    };
    let t1 = std::time::Instant::now();
    let mut left_out = LeftOut::default();
    for (problem, &n) in events.left_out.iter().enumerate() {
        left_out.problem(problem, n);
    }
    // Orders of users missing from the users table are counted, not kept.
    let before = events.events.len();
    events.events.retain(|e| known.contains(e.user));
    left_out.unknown_user((before - events.events.len()) as i64);
    pgrx::debug1!(
        "order events: {} read and decoded in {:.1} ms, users checked in {:.1} ms",
        before,
        (t1 - t0).as_secs_f64() * 1000.0,
        t1.elapsed().as_secs_f64() * 1000.0
    );
    (events, left_out)
}
