//! Reading the per-customer summaries (definitions in `cda_analytics_core::clv::summary`) from the
//! order events (`crate::read::events`): each user's successful purchase days and amounts up to the end
//! of the window, every order that cannot count counted by why and reported, as the other
//! reads do.

use cda_analytics_core::calendar::Day;
use cda_analytics_core::clv::TimeUnit;
use cda_analytics_core::clv::summary::{CustomerSummary, summarize};

use crate::source::context::Context;

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
    let (mut events, left_out) = crate::read::events::read(ctx, window.end(), one_user);
    let groups = crate::toolbox::workers::on_worker_threads(|| events.by_user());
    let unit_days = window.unit.days();
    let mut out = Vec::with_capacity(groups.len());
    for (uid, range) in groups {
        let mut purchases: Vec<(i32, f64)> = events.events[range]
            .iter()
            .map(|e| (e.day, e.amount))
            .collect();
        if let Some(s) = summarize(
            &mut purchases,
            window.calibration_end.0,
            window.holdout_end.map(|d| d.0),
            unit_days,
        ) {
            out.push((uid, s));
        }
    }
    if announce {
        left_out.report("customer summaries", window.explicit_end);
    }
    out
}
