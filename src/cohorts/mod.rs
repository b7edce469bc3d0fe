//! Cohort retention: `cohort_retention()` (one row per cohort and period number) and
//! `cohort_retention_summary()` (the mean retention per period number over complete cells).
//! Both read every counted order as of a day with the events read, and leave the math to
//! `cda_analytics_core::cohorts`. Nothing is stored: a cohort table is cheap to recompute (one
//! read of the orders) and depends on its arguments.

use pgrx::prelude::*;

use cda_analytics_core::cohorts::{self, Cell, CohortError, Kind, Options, Period};
use cda_analytics_core::money::div_round;

use crate::source::Context;
use crate::toolbox::convert::{date_of, day_of_date, minor_numeric};
use crate::toolbox::errors::*;

fn options(
    period: &str,
    max_periods: i32,
    retention_type: &str,
    cumulative: bool,
    data_start: Option<pgrx::datum::Date>,
) -> (
    Period,
    Kind,
    u32,
    Option<cda_analytics_core::calendar::Day>,
    bool,
) {
    let Some(p) = Period::parse(period) else {
        raise(
            ERRCODE_INVALID_PARAMETER_VALUE,
            format!("unknown period \"{period}\""),
            Some("One of: day, week, month, quarter.".into()),
        )
    };
    let Some(kind) = Kind::parse(retention_type) else {
        raise(
            ERRCODE_INVALID_PARAMETER_VALUE,
            format!("unknown retention_type \"{retention_type}\""),
            Some("One of: first_time (cohort = period of the first order), recurring (cohort = everyone active in the period).".into()),
        )
    };
    if !(0..=1000).contains(&max_periods) {
        raise(
            ERRCODE_INVALID_PARAMETER_VALUE,
            format!("max_periods must be between 0 and 1000, got {max_periods}"),
            None,
        );
    }
    let start = data_start.map(|d| day_of_date(d, "data_start"));
    (p, kind, max_periods as u32, start, cumulative)
}

/// The cells of the cohort table as of `as_of`, with the source's amount scale.
fn cells(
    as_of: Option<pgrx::datum::Date>,
    period: &str,
    max_periods: i32,
    retention_type: &str,
    cumulative: bool,
    data_start: Option<pgrx::datum::Date>,
) -> (Vec<Cell>, u32) {
    let (period, kind, max_periods, data_start, cumulative) =
        options(period, max_periods, retention_type, cumulative, data_start);
    let ctx = Context::load(as_of);
    let (events, report) = crate::read::events::read(&ctx, ctx.as_of, None);
    report.report("cohort_retention", ctx.explicit_as_of);
    let opts = Options {
        period,
        max_periods,
        as_of: ctx.as_of,
        kind,
        cumulative,
        data_start,
    };
    let scale = ctx.source.amount_scale;
    // The sort of the orders runs on the backend's worker threads.
    match crate::toolbox::workers::on_worker_threads(|| {
        cohorts::retention(&events.events, scale, &opts)
    }) {
        Ok(cells) => (cells, scale),
        Err(CohortError::TooManyCells(n)) => raise(
            ERRCODE_PROGRAM_LIMIT_EXCEEDED,
            format!(
                "the cohort table would have {n} cells, more than {}",
                cohorts::MAX_CELLS
            ),
            Some("Choose a longer period or fewer max_periods.".into()),
        ),
        Err(CohortError::Stopped) => raise_cancelled(),
    }
}

/// Retention by acquisition cohort: for each cohort (the customers whose first successful order
/// fell in a period, or with `retention_type => 'recurring'` everyone active in it) and each
/// period number from 0 to `max_periods` that has started by `as_of`: the customers active in
/// it, their orders and revenue, and the ratios. Zero activity is a row of zeros.
#[allow(clippy::type_complexity)]
#[pg_extern(stable, parallel_restricted)]
#[search_path(pg_catalog, pg_temp)]
fn cohort_retention(
    period: default!(Option<&str>, "'month'"),
    max_periods: default!(Option<i32>, 12),
    as_of: default!(Option<pgrx::datum::Date>, "NULL"),
    retention_type: default!(Option<&str>, "'first_time'"),
    cumulative: default!(Option<bool>, false),
    data_start: default!(Option<pgrx::datum::Date>, "NULL"),
) -> TableIterator<
    'static,
    (
        name!(cohort_start, pgrx::datum::Date),
        name!(cohort_size, i64),
        name!(period_number, i32),
        name!(active_customers, i64),
        name!(retention, f64),
        name!(orders, i64),
        name!(revenue, AnyNumeric),
        name!(revenue_retention, Option<f64>),
        name!(revenue_per_customer, AnyNumeric),
        name!(cumulative_revenue_per_customer, AnyNumeric),
        name!(is_complete, bool),
        name!(is_left_censored, bool),
    ),
> {
    let (cells, scale) = cells(
        as_of,
        required(period, "period"),
        required(max_periods, "max_periods"),
        required(retention_type, "retention_type"),
        required(cumulative, "cumulative"),
        data_start,
    );
    let rows: Vec<_> = cells
        .iter()
        .map(|c| {
            let size = c.cohort_size as i128;
            (
                date_of(c.cohort_start),
                c.cohort_size as i64,
                c.period_number as i32,
                c.active as i64,
                c.retention(),
                c.orders as i64,
                minor_numeric(c.revenue, scale),
                c.revenue_retention(),
                minor_numeric(div_round(c.revenue, size), scale),
                minor_numeric(div_round(c.revenue_cumulative, size), scale),
                c.is_complete,
                c.is_left_censored,
            )
        })
        .collect();
    TableIterator::new(rows)
}

/// The mean retention per period number over the cohorts whose cell is complete and which are
/// not left-censored (`include_censored` takes those too): weighted by cohort size (Σ active /
/// Σ size) and simple (the mean of the cohorts' retentions).
#[allow(clippy::type_complexity)]
#[pg_extern(stable, parallel_restricted)]
#[search_path(pg_catalog, pg_temp)]
fn cohort_retention_summary(
    period: default!(Option<&str>, "'month'"),
    max_periods: default!(Option<i32>, 12),
    as_of: default!(Option<pgrx::datum::Date>, "NULL"),
    retention_type: default!(Option<&str>, "'first_time'"),
    cumulative: default!(Option<bool>, false),
    data_start: default!(Option<pgrx::datum::Date>, "NULL"),
    include_censored: default!(Option<bool>, false),
) -> TableIterator<
    'static,
    (
        name!(period_number, i32),
        name!(cohorts, i64),
        name!(customers, i64),
        name!(active_customers, i64),
        name!(weighted_retention, f64),
        name!(simple_retention, f64),
    ),
> {
    let include_censored = required(include_censored, "include_censored");
    let (cells, _) = cells(
        as_of,
        required(period, "period"),
        required(max_periods, "max_periods"),
        required(retention_type, "retention_type"),
        required(cumulative, "cumulative"),
        data_start,
    );
    let rows: Vec<_> = cohorts::summary(&cells, include_censored)
        .into_iter()
        .map(|m| {
            (
                m.period_number as i32,
                m.cohorts as i64,
                m.customers as i64,
                m.active as i64,
                m.weighted,
                m.simple,
            )
        })
        .collect();
    TableIterator::new(rows)
}
