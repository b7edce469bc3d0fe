//! Retrospective LTV as SQL: `calculate_all_ltv`, `calculate_user_ltv` (through its SQL wrapper
//! over `_ltv_compute_user`). The math is `cda_analytics_core::ltv`; this module reads the source
//! rows into it and writes what comes out. The summary functions are SQL, in sql/finalize.sql.

mod results;

use pgrx::prelude::*;

use crate::read::purchases;
use crate::source::Context;
use crate::toolbox::convert::minor_numeric;
use crate::toolbox::errors::debug_phases;
use cda_analytics_core::ltv::{UserLtv, finish_fingerprinted};
use cda_analytics_core::phases::Phases;

/// Recomputes every user's LTV as of `as_of` (default: today in the configured time zone) and
/// replaces the contents of `ml_user_ltv` in one transaction, writing only the stored rows that
/// changed: readers keep seeing the previous contents until it commits, and an error or a cancel
/// leaves them untouched. Returns the number of users in the results.
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn calculate_all_ltv(as_of: default!(Option<pgrx::datum::Date>, "NULL")) -> i64 {
    let mut phases = Phases::start();
    let Context {
        ext,
        config,
        source,
        as_of,
        snapshot: _snapshot,
        ..
    } = Context::load(as_of);
    crate::write::refresh::lock(&ext, "ml_user_ltv_rows");
    let started_at = results::clock_timestamp();
    let thresholds = config.ltv_thresholds(source.amount_scale);
    let scale = source.amount_scale;
    phases.mark("setup");
    // The rows and their fingerprints are built on the worker threads while this thread reads
    // the stored fingerprints, and the summary and histograms while it writes: one core would
    // otherwise sit idle through each pair.
    let ((rows, counts, new), stored) =
        purchases::read_with(&ext, &config, &source, as_of, None, |users, totals| {
            crate::toolbox::workers::beside(
                || {
                    let (rows, new, counts) =
                        finish_fingerprinted(users, totals, &thresholds, scale);
                    (rows, counts, new)
                },
                || crate::write::stored_rows::read(&ext, "ml_user_ltv_rows"),
            )
        });
    phases.mark("read");
    let ((summary, distributions), written) = crate::toolbox::workers::beside(
        || {
            let mut measured = cda_analytics_core::ltv::Measured::gather(&rows);
            let distributions = results::distributions(&measured, scale);
            (
                cda_analytics_core::ltv::summarize_measured(&mut measured, scale),
                distributions,
            )
        },
        || results::replace_results(&ext, &rows, &new, stored, as_of, scale),
    );
    phases.mark("write");
    let run = results::RunRecord {
        as_of,
        started_at,
        elapsed: phases.elapsed(),
        config: &config,
        source: &source,
        counts: &counts,
        written,
    };
    results::record_run(&ext, &run, &summary, &distributions);
    phases.mark("run record");
    debug_phases("calculate_all_ltv", &phases);
    purchases::report_skipped("calculate_all_ltv", &counts, &source, true, |_| true);
    rows.len() as i64
}

/// One user's LTV without writing anything: the raw row behind `calculate_user_ltv`, which shapes
/// it like `ml_user_ltv`. No row when the user does not exist or was left out (with a NOTICE).
// The row shape must be spelled out inline for pgrx to derive the SQL signature.
#[allow(clippy::type_complexity)]
#[pg_extern(stable, parallel_restricted, name = "_ltv_compute_user")]
#[search_path(pg_catalog, pg_temp)]
fn ltv_compute_user(
    user_id: Option<i64>,
    as_of: Option<pgrx::datum::Date>,
) -> TableIterator<
    'static,
    (
        name!(user_id, i64),
        name!(signup_day, i32),
        name!(revenue_minor, Vec<i64>),
        name!(orders, Vec<i32>),
        name!(avg_order_value_minor, Vec<Option<i64>>),
        name!(first_order_day, Option<i32>),
        name!(last_order_day, Option<i32>),
        name!(days_since_last_order, Option<i32>),
        name!(horizon_complete, Vec<bool>),
        name!(orders_before_signup, i32),
        name!(segment, String),
        name!(as_of_day, i32),
        name!(minor_unit, AnyNumeric),
    ),
> {
    // A NULL user id matches no user, as in a WHERE clause.
    let Some(user_id) = user_id else {
        return TableIterator::new(Vec::new());
    };
    let Context {
        ext,
        config,
        source,
        as_of,
        snapshot: _snapshot,
        ..
    } = Context::load(as_of);
    let thresholds = config.ltv_thresholds(source.amount_scale);
    let (rows, counts) =
        purchases::compute(&ext, &config, &source, as_of, Some(user_id), &thresholds);
    purchases::report_skipped("calculate_user_ltv", &counts, &source, false, |_| true);
    let unit = minor_numeric(1, source.amount_scale);
    TableIterator::new(rows.into_iter().map(move |r: UserLtv| {
        let clamp = |v: i64| i32::try_from(v).unwrap_or(i32::MAX);
        (
            r.user_id,
            r.signup.0,
            r.revenue.to_vec(),
            r.orders.iter().map(|&o| clamp(o)).collect(),
            r.avg_order_value().to_vec(),
            r.first_order.map(|d| d.0),
            r.last_order.map(|d| d.0),
            r.days_since_last_order,
            r.horizon_complete.to_vec(),
            clamp(r.orders_before_signup),
            r.segment.name().to_string(),
            as_of.0,
            unit.clone(),
        )
    }))
}
