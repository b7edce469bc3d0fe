//! The LTV read as two aggregates, so that the executor streams the rows and can split the
//! orders over parallel workers:
//!
//! - `_ltv_users(user_id, signup, as_of)` folds the users into a [`UserTable`] and hands it to
//!   the caller (`crate::read::aggregates::hand_over`);
//! - `_ltv_orders(users, user_id, created_at, amount, status_is_null, scale)` folds orders into
//!   per-user [`OrderTotals`]. Each process decodes the users bytea (a query parameter, so every
//!   parallel worker receives it) once and folds the orders it scans: for a large run into
//!   totals in shared memory named in front of the users bytes (src/read/purchases/shared_totals.rs), so
//!   that the leader merges only the counts; otherwise into its own totals, which the leader
//!   merges (combine, serial and deserial functions).
//!
//! - `_ltv_orders(users, user_id, created_at, amount, status, successful, scale)` does the same
//!   for a status column compared by bytes: it takes the status itself and skips the orders whose
//!   status is not one of `successful`, so that the query needs no filter.
//!
//! Both take the raw datums: timestamps as microseconds (a `timestamptz` in UTC and a local
//! `timestamp` are the same integer for the day arithmetic), amounts in numeric's storage format
//! (`cda_analytics_core::pg_numeric`). Per-row conversions in the executor (to date, to text)
//! would cost more than the fold itself. Errors met inside (a duplicate user, an amount that is
//! not a number) travel in the state, so that the caller raises them with the source's names.
//!
//! pgrx's `#[pg_aggregate]` cannot declare a parallel aggregate with an `internal` state
//! (pgrx#2351), so these are plain V1 functions and the CREATE AGGREGATE statements are in
//! sql/read_aggregates.sql.

// C-level aggregate functions, called by PostgreSQL with raw arguments.
#![allow(unsafe_code)]

use cda_analytics_core::calendar::Day;
use cda_analytics_core::ltv::{
    FoldError, OrderBatch, OrderRow, OrderTotals, StatusClass, StatusSet, UserTable,
};
use cda_analytics_core::money::AmountError;
use cda_analytics_core::pg_numeric::decode_minor;
use pgrx::fcinfo::{pg_arg_is_null, pg_getarg, pg_getarg_datum_raw, pg_return_null};
use pgrx::prelude::*;

use crate::read::aggregates::{
    bytea, hand_over, i64_arg, keep, state_arg, take_or_decode, varlena_arg,
};
use crate::toolbox::convert::day_of_micros;
use crate::toolbox::errors::*;

// ---- _ltv_users(user_id int8, signup timestamp[tz], as_of int4) -> bytea

v1_finfo!(pg_finfo_cda_ltv_users_sfunc);
#[unsafe(no_mangle)]
#[pg_guard]
pub unsafe extern "C-unwind" fn cda_ltv_users_sfunc(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    // SAFETY: PostgreSQL calls `cda_ltv_users_sfunc` with the arguments that sql/read_aggregates.sql declares
    // for it; the states in them are this module's own, made by `keep`.
    unsafe {
        let state = match state_arg::<UserTable>(fcinfo, 0) {
            Some(s) => s as *mut UserTable,
            None => {
                let as_of = Day(i64_arg(fcinfo, 3).unwrap_or_default() as i32);
                keep(fcinfo, "_ltv_users", UserTable::new(as_of)).cast_mut_ptr::<UserTable>()
            }
        };
        // A duplicate or an out-of-range date stays in the table; the caller reports it.
        let _ = (*state).add_user(i64_arg(fcinfo, 1), day_of_micros(i64_arg(fcinfo, 2)));
        pg_sys::Datum::from(state)
    }
}

v1_finfo!(pg_finfo_cda_ltv_users_final);
#[unsafe(no_mangle)]
#[pg_guard]
pub unsafe extern "C-unwind" fn cda_ltv_users_final(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    // SAFETY: PostgreSQL calls `cda_ltv_users_final` with the arguments that sql/read_aggregates.sql declares
    // for it; the states in them are this module's own, made by `keep`.
    unsafe {
        match state_arg::<UserTable>(fcinfo, 0) {
            Some(t) => {
                let table = std::mem::replace(t, UserTable::new(t.as_of()));
                hand_over(table, UserTable::encode)
            }
            None => pg_return_null(fcinfo),
        }
    }
}

// ---- _ltv_orders(users bytea, user_id int8, created_at timestamp[tz], amount numeric,
//                  status_is_null bool, scale int4) -> bytea

/// One process's part of the orders fold. `users` is None in a state rebuilt by deserial: the
/// leader merges parts without needing the users.
#[derive(Default)]
struct OrdersState {
    users: Option<UserTable>,
    totals: OrderTotals,
    /// The shared totals' segment, when this process attached it for this state.
    segment: Option<super::shared_totals::Attached>,
    /// The successful statuses, for the text-status aggregate.
    successful: StatusSet,
    /// Orders read but not yet folded in; flushed before the state leaves the process.
    batch: OrderBatch,
}

v1_finfo!(pg_finfo_cda_ltv_orders_sfunc);
#[unsafe(no_mangle)]
#[pg_guard]
pub unsafe extern "C-unwind" fn cda_ltv_orders_sfunc(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    // SAFETY: called as the transition function of the boolean-status _ltv_orders.
    unsafe { orders_sfunc(fcinfo, StatusArg::IsNull) }
}

// ---- _ltv_orders(users bytea, user_id int8, created_at timestamp[tz], amount numeric,
//                  status text, successful text[], scale int4) -> bytea

v1_finfo!(pg_finfo_cda_ltv_orders_status_sfunc);
#[unsafe(no_mangle)]
#[pg_guard]
pub unsafe extern "C-unwind" fn cda_ltv_orders_status_sfunc(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    // SAFETY: called as the transition function of the text-status _ltv_orders.
    unsafe { orders_sfunc(fcinfo, StatusArg::Text) }
}

/// How an order's status reaches the transition function.
#[derive(Clone, Copy)]
enum StatusArg {
    /// `status IS NULL` as argument 5, the scale as argument 6: the query kept only successful
    /// and NULL statuses.
    IsNull,
    /// The status as argument 5, the successful statuses (text[]) as argument 6, the scale as
    /// argument 7: the fold compares the bytes, where that is what equality means for the
    /// column (text or varchar under a deterministic collation), which costs less than the
    /// executor's `= ANY` (`crate::source::tables` decides).
    Text,
}

impl StatusArg {
    /// The argument holding the amounts' scale.
    fn scale_arg(self) -> usize {
        match self {
            StatusArg::IsNull => 6,
            StatusArg::Text => 7,
        }
    }
}

/// The transition function of both `_ltv_orders` aggregates.
///
/// # Safety
/// `fcinfo` must be a live call of one of them, with the arguments `status` describes.
unsafe fn orders_sfunc(fcinfo: pg_sys::FunctionCallInfo, status: StatusArg) -> pg_sys::Datum {
    // SAFETY: as the caller vouches, a live call of a transition function of `_ltv_orders`.
    unsafe {
        let state = match state_arg::<OrdersState>(fcinfo, 0) {
            Some(s) => s,
            None => {
                let (users, totals, segment) = super::shared_totals::receive(
                    varlena_arg(fcinfo, 1).unwrap_or_default(),
                )
                .unwrap_or_else(|e| {
                    raise(
                        ERRCODE_INVALID_PARAMETER_VALUE,
                        format!(
                            "_ltv_orders is internal to calculate_all_ltv(): bad users state ({e})"
                        ),
                        None,
                    )
                });
                let successful = match status {
                    StatusArg::IsNull => StatusSet::default(),
                    StatusArg::Text => StatusSet::new(
                        pg_getarg::<Vec<Option<String>>>(fcinfo, 6)
                            .unwrap_or_default()
                            .into_iter()
                            .flatten()
                            .map(String::into_bytes),
                    ),
                };
                let s = OrdersState {
                    users: Some(users),
                    totals,
                    segment,
                    successful,
                    batch: OrderBatch::default(),
                };
                &mut *keep(fcinfo, "_ltv_orders", s).cast_mut_ptr::<OrdersState>()
            }
        };
        if state.totals.check().is_ok() {
            let class = match status {
                StatusArg::IsNull => {
                    if !pg_arg_is_null(fcinfo, 5) && pg_getarg_datum_raw(fcinfo, 5).value() != 0 {
                        Some(StatusClass::Null)
                    } else {
                        Some(StatusClass::Successful)
                    }
                }
                StatusArg::Text => match varlena_arg(fcinfo, 5) {
                    None => Some(StatusClass::Null),
                    Some(b) if state.successful.contains(b) => Some(StatusClass::Successful),
                    // Not a successful status: not read, as when the query filters it out.
                    Some(_) => None,
                },
            };
            if let Some(class) = class {
                fold_order(fcinfo, state, class, status.scale_arg());
            }
        }
        pg_sys::Datum::from(state as *mut OrdersState)
    }
}

unsafe fn fold_order(
    fcinfo: pg_sys::FunctionCallInfo,
    state: &mut OrdersState,
    status: StatusClass,
    scale_arg: usize,
) {
    let Some(users) = &state.users else { return };
    // SAFETY: the arguments are those of _ltv_orders: int8, a timestamp, numeric, int4.
    unsafe {
        let scale = i64_arg(fcinfo, scale_arg).unwrap_or(2) as u32;
        let order = Order {
            user_id: i64_arg(fcinfo, 2),
            micros: i64_arg(fcinfo, 3),
            amount: varlena_arg(fcinfo, 4),
            status,
        };
        fold_one(&mut state.totals, &mut state.batch, users, order, scale);
    }
}

/// One order's values as read from its row.
pub struct Order<'a> {
    pub user_id: Option<i64>,
    /// The order's timestamp in microseconds since 2000-01-01.
    pub micros: Option<i64>,
    /// The amount's numeric payload.
    pub amount: Option<&'a [u8]>,
    pub status: StatusClass,
}

/// Folds one order (whose status counts) into `totals` through `batch`; a bad amount or an
/// overflow stays in the totals for the caller to report.
#[inline(always)]
pub fn fold_one(
    totals: &mut OrderTotals,
    batch: &mut OrderBatch,
    users: &UserTable,
    order: Order<'_>,
    scale: u32,
) {
    match order_row(&order, scale) {
        Ok((row, rounded)) => batch.push(totals, users, row, rounded),
        Err(error) => totals.fail(FoldError::BadAmount {
            error,
            user_id: order.user_id,
        }),
    }
}

/// The row the fold takes for an order (its amount decoded to minor units at `scale`), and
/// whether the amount was rounded; the amount's error when it is not a finite number that fits.
#[inline(always)]
pub fn order_row(order: &Order<'_>, scale: u32) -> Result<(OrderRow, bool), AmountError> {
    let amount = order.amount.map(|p| decode_minor(p, scale)).transpose()?;
    let row = OrderRow {
        user_id: order.user_id,
        day: day_of_micros(order.micros),
        // A negative amount that rounds to zero at the scale (-0.004 at scale 2) is still
        // negative, and the fold leaves every negative amount out without using its value: one
        // minor unit below zero carries that sign to it.
        amount: amount.map(|a| if a.negative { a.minor.min(-1) } else { a.minor }),
        status: order.status,
    };
    Ok((row, amount.is_some_and(|a| a.rounded)))
}

v1_finfo!(pg_finfo_cda_ltv_orders_combine);
#[unsafe(no_mangle)]
#[pg_guard]
pub unsafe extern "C-unwind" fn cda_ltv_orders_combine(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    // SAFETY: PostgreSQL calls `cda_ltv_orders_combine` with the arguments that sql/read_aggregates.sql declares
    // for it; the states in them are this module's own, made by `keep`.
    unsafe {
        let other = state_arg::<OrdersState>(fcinfo, 1);
        match (state_arg::<OrdersState>(fcinfo, 0), other) {
            (Some(s), Some(o)) => {
                s.flush();
                o.flush();
                s.totals.merge(&o.totals, s.users.as_ref());
                pg_sys::Datum::from(s as *mut OrdersState)
            }
            (Some(s), None) => pg_sys::Datum::from(s as *mut OrdersState),
            // The second state may live in a short-lived context: move it into the aggregate's.
            (None, Some(o)) => {
                o.flush();
                keep(fcinfo, "_ltv_orders", std::mem::take(o))
            }
            (None, None) => pg_return_null(fcinfo),
        }
    }
}

impl OrdersState {
    /// Ends this state's use of a segment it attached, keeping the counts: the process may live
    /// on (a worker commits before it exits), and a mapping left behind would be reported as a
    /// leak.
    fn detach(&mut self) {
        if let Some(segment) = self.segment.take() {
            self.totals = self.totals.without_slots();
            segment.detach();
        }
    }

    /// Folds in the orders still held in the batch.
    fn flush(&mut self) {
        if let Some(users) = &self.users {
            self.batch.flush(&mut self.totals, users);
        }
    }
}

v1_finfo!(pg_finfo_cda_ltv_orders_serial);
#[unsafe(no_mangle)]
#[pg_guard]
pub unsafe extern "C-unwind" fn cda_ltv_orders_serial(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    // SAFETY: PostgreSQL calls `cda_ltv_orders_serial` with the arguments that sql/read_aggregates.sql declares
    // for it; the states in them are this module's own, made by `keep`.
    unsafe {
        match state_arg::<OrdersState>(fcinfo, 0) {
            Some(s) => {
                s.flush();
                let bytes = bytea(s.totals.encode());
                s.detach();
                bytes
            }
            None => pg_return_null(fcinfo),
        }
    }
}

v1_finfo!(pg_finfo_cda_ltv_orders_deserial);
#[unsafe(no_mangle)]
#[pg_guard]
pub unsafe extern "C-unwind" fn cda_ltv_orders_deserial(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    // SAFETY: PostgreSQL calls `cda_ltv_orders_deserial` with the arguments that sql/read_aggregates.sql declares
    // for it; the states in them are this module's own, made by `keep`.
    unsafe {
        let bytes = varlena_arg(fcinfo, 0).unwrap_or_default();
        match OrderTotals::decode(bytes) {
            Ok(totals) => keep(
                fcinfo,
                "_ltv_orders",
                OrdersState {
                    users: None,
                    totals,
                    segment: None,
                    successful: StatusSet::default(),
                    batch: OrderBatch::default(),
                },
            ),
            Err(e) => raise(ERRCODE_INTERNAL_ERROR, format!("_ltv_orders: {e}"), None),
        }
    }
}

v1_finfo!(pg_finfo_cda_ltv_orders_final);
#[unsafe(no_mangle)]
#[pg_guard]
pub unsafe extern "C-unwind" fn cda_ltv_orders_final(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    // SAFETY: PostgreSQL calls `cda_ltv_orders_final` with the arguments that sql/read_aggregates.sql declares
    // for it; the states in them are this module's own, made by `keep`.
    unsafe {
        match state_arg::<OrdersState>(fcinfo, 0) {
            Some(s) => {
                s.flush();
                // Attached here rather than by the caller, the shared slots stay behind.
                s.detach();
                hand_over(std::mem::take(&mut s.totals), OrderTotals::encode)
            }
            None => pg_return_null(fcinfo),
        }
    }
}

/// The totals the orders aggregate returned, or the first error it met.
pub fn decode_orders_result(bytes: &[u8]) -> Result<OrderTotals, FoldError> {
    let totals = take_or_decode(bytes, OrderTotals::decode)
        .unwrap_or_else(|e| raise(ERRCODE_INTERNAL_ERROR, format!("_ltv_orders: {e}"), None));
    totals.check()?;
    Ok(totals)
}
