//! Reading the per-customer summaries (definitions in `cda_analytics_core::clv::summary`) with one
//! grouped query over the orders: each user's successful purchase days and amounts up to the end
//! of the window, with every order that cannot count grouped apart by its problem and reported,
//! as the snapshot features do.

use pgrx::prelude::*;

use cda_analytics_core::calendar::Day;
use cda_analytics_core::clv::TimeUnit;
use cda_analytics_core::clv::summary::{CustomerSummary, summarize};

use crate::context::Context;
use crate::errors::*;
use crate::segmentation::features::{LeftOut, order_rows, users};
use crate::source::Params;

/// The window the summaries describe.
#[derive(Clone, Copy)]
pub struct Window {
    pub calibration_end: Day,
    pub holdout_end: Option<Day>,
    pub unit: TimeUnit,
    /// Whether the caller chose the window's end (orders after it are then expected, not suspect).
    pub explicit_end: bool,
}

impl Window {
    /// Calibration to the context's as-of date, no holdout.
    pub fn as_of(ctx: &Context, unit: TimeUnit) -> Window {
        Window {
            calibration_end: ctx.as_of,
            holdout_end: None,
            unit,
            explicit_end: ctx.explicit_as_of,
        }
    }

    pub fn end(&self) -> Day {
        self.holdout_end.unwrap_or(self.calibration_end)
    }
}

/// Customers (first purchase on or before the calibration end) in user id order, each with their
/// summary. `one_user` limits the read to one user.
pub fn summaries(
    ctx: &Context,
    window: Window,
    one_user: Option<i64>,
    announce: bool,
) -> Vec<(i64, CustomerSummary)> {
    let known = users(&ctx.source, &ctx.config.time_zone, window.end(), one_user);
    let mut params = Params::new();
    let (from, _) = order_rows(&ctx.source, &ctx.config, window.end(), "", &mut params);
    let filter = match one_user {
        Some(id) => format!(" WHERE o.uid = {}", params.bind(id)),
        None => String::new(),
    };
    let sql = format!(
        "SELECT o.uid, o.problem, pg_catalog.count(*), \
                pg_catalog.array_agg(o.day) FILTER (WHERE o.problem = 0), \
                pg_catalog.array_agg(o.amt::pg_catalog.float8) FILTER (WHERE o.problem = 0) \
         FROM ({from}) o{filter} GROUP BY o.uid, o.problem"
    );
    let mut left_out = LeftOut::default();
    let unit_days = window.unit.days();
    let mut out = Vec::new();
    Spi::connect(|c| {
        for row in c.select(&sql, None, &params.args)? {
            let uid = row.get::<i64>(1)?;
            let problem = row.get::<i32>(2)?.unwrap_or(0) as usize;
            let n = row.get::<i64>(3)?.unwrap_or(0);
            if left_out.problem(problem, n) {
                continue;
            }
            let Some(uid) = uid.filter(|u| known.contains_key(u)) else {
                left_out.unknown_user(n);
                continue;
            };
            let days: Vec<i32> = row.get(4)?.unwrap_or_default();
            let amounts: Vec<f64> = row.get(5)?.unwrap_or_default();
            let mut purchases: Vec<(i32, f64)> = days.into_iter().zip(amounts).collect();
            if let Some(s) = summarize(
                &mut purchases,
                window.calibration_end.0,
                window.holdout_end.map(|d| d.0),
                unit_days,
            ) {
                out.push((uid, s));
            }
        }
        Ok::<_, pgrx::spi::SpiError>(())
    })
    .or_raise("reading the orders for customer summaries");
    out.sort_unstable_by_key(|(id, _)| *id);
    if announce {
        left_out.report("customer summaries", window.explicit_end, None);
    }
    out
}
