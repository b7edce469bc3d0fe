//! Writing a run's results: `ml_user_ltv`, the run record and the summary, all in the caller's
//! transaction, so they commit together or not at all.

// The row source `_ltv_pending_rows`, a C-level set-returning function.
#![allow(unsafe_code)]

use std::time::Duration;

use cda_analytics_core::calendar::Day;
use cda_analytics_core::left_out::Reason;
use cda_analytics_core::ltv::distribution::{Bin, METRICS, STORED_BINS, histograms_of};
use cda_analytics_core::ltv::{LtvSummary, Measured, RunCounts, UserLtv};
use cda_analytics_core::money::format_minor;
use cda_analytics_core::stored::IdPrint;
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;

use crate::source::Source;
use crate::source::config::Config;
use crate::toolbox::errors::*;
use crate::write::row_source::{InsertFrom, Picked};

use crate::toolbox::statement::{InsertRow, execute as run};
use crate::write::stored_rows::{Stored, Written, replace_changed};

pub fn clock_timestamp() -> String {
    Spi::connect(|c| {
        c.select("SELECT pg_catalog.clock_timestamp()::text", None, &[])?
            .first()
            .get::<String>(1)
    })
    .or_raise("reading the clock")
    .unwrap_or_default()
}

/// Makes `ml_user_ltv_rows` hold `rows` (whose `(user id, fingerprint)` pairs are `new`) and
/// `ml_ltv_as_of` the as-of date, rewriting only the rows whose stored values changed
/// (`crate::write::stored_rows`; `stored` is what was stored). The rows reach the INSERT through
/// `_ltv_pending_rows`, which reads them from this backend's memory.
pub fn replace_results(
    ext: &str,
    rows: &[UserLtv],
    new: &[IdPrint],
    stored: Stored,
    as_of: Day,
    scale: u32,
) -> Written {
    let written = replace_changed(ext, "ml_user_ltv_rows", stored, new, |pick| {
        let sql = InsertFrom::new(
            &format!("{ext}.ml_user_ltv_rows"),
            &format!("{ext}._ltv_pending_rows"),
            row::COLUMNS,
        )
        .sql();
        let pending = Pending {
            rows: Picked::new(rows, new, pick),
            scale,
        };
        crate::write::row_source::park(pending, |token| {
            run(&sql, &[token.into()], "writing ml_user_ltv_rows")
        });
    });
    run(
        &format!(
            "INSERT INTO {ext}.ml_ltv_as_of (as_of_date, calculated_at) \
             VALUES (DATE '2000-01-01' + $1, pg_catalog.now()) \
             ON CONFLICT (singleton) DO UPDATE SET as_of_date = excluded.as_of_date, \
             calculated_at = excluded.calculated_at"
        ),
        &[as_of.0.into()],
        "writing ml_ltv_as_of",
    );
    written
}

pub struct RunRecord<'a> {
    pub as_of: Day,
    pub started_at: String,
    pub elapsed: Duration,
    pub config: &'a Config,
    pub source: &'a Source,
    pub counts: &'a RunCounts,
    pub written: Written,
}

/// Appends the run to `ml_ltv_runs` and replaces `ml_ltv_summary` and `ml_ltv_distribution` with
/// this run's summary and [`distributions`].
pub fn record_run(
    ext: &str,
    run_record: &RunRecord<'_>,
    summary: &LtvSummary,
    distributions: &Distributions,
) {
    let RunRecord {
        as_of,
        started_at,
        elapsed,
        config,
        source,
        counts: c,
        written,
    } = run_record;
    let scale = source.amount_scale;
    let thresholds = config.ltv_thresholds(scale);
    let money = |minor: i128| format_minor(minor, scale);
    let mut row = InsertRow::default();
    row.arg_as("as_of_date", as_of.0, "DATE '2000-01-01' + {}")
        .arg_as(
            "started_at",
            started_at.clone(),
            "{}::pg_catalog.timestamptz",
        )
        .expr("finished_at", "pg_catalog.clock_timestamp()")
        .arg("duration_ms", elapsed.as_secs_f64() * 1000.0)
        .arg("users", summary.users_total)
        .arg("users_read", c.users_read)
        .arg("orders_read", c.orders_read)
        .arg("orders_counted", c.orders_counted)
        .arg("orders_before_signup", c.orders_before_signup);
    for reason in Reason::ALL {
        if let Some(column) = reason.run_column() {
            row.arg(column, c.left_out.count(reason));
        }
    }
    let numeric = "{}::pg_catalog.numeric";
    row.arg("amounts_rounded", c.amounts_rounded)
        .arg("amount_scale", scale as i32)
        .arg("users_source", source.users.clone())
        .arg("orders_source", source.orders.clone())
        .arg("successful_statuses", config.successful_statuses.clone())
        .arg("time_zone", config.time_zone.clone())
        .arg_as("segment_vip", money(i128::from(thresholds.vip)), numeric)
        .arg_as("segment_high", money(i128::from(thresholds.high)), numeric)
        .arg_as(
            "segment_medium",
            money(i128::from(thresholds.medium)),
            numeric,
        )
        .arg_as("segment_low", money(i128::from(thresholds.low)), numeric)
        .arg_as(
            "cohort_12m_revenue_6m",
            money(summary.cohort_12m_revenue_6m),
            numeric,
        )
        .arg_as(
            "cohort_12m_revenue_12m",
            money(summary.cohort_12m_revenue_12m),
            numeric,
        )
        .arg("distribution_bins", STORED_BINS.map(|b| b as i32).to_vec())
        .arg("rows_written", written.rows_written as i64)
        .arg("rows_removed", written.rows_removed as i64);
    let (sql, args) = row.statement(&format!("{ext}.ml_ltv_runs"), " RETURNING run_id");
    let run_id = Spi::connect_mut(|c| c.update(sql.as_str(), None, &args)?.first().get::<i64>(1))
        .or_raise("recording the run")
        .unwrap_or_default();

    run(
        &format!("DELETE FROM {ext}.ml_ltv_summary"),
        &[],
        "clearing ml_ltv_summary",
    );
    let sql = format!(
        "INSERT INTO {ext}.ml_ltv_summary (horizon, run_id, users_measured, users_with_orders, revenue_sum, median, p95) \
         VALUES ($1, $2, $3, $4, $5::pg_catalog.numeric, $6, $7)"
    );
    for (name, h) in ["3m", "6m", "12m", "lifetime"]
        .iter()
        .zip(&summary.horizons)
    {
        let args: Vec<DatumWithOid<'_>> = vec![
            name.to_string().into(),
            run_id.into(),
            h.users_measured.into(),
            h.users_with_orders.into(),
            money(h.revenue_sum).into(),
            h.median.into(),
            h.p95.into(),
        ];
        run(&sql, &args, "writing ml_ltv_summary");
    }
    write_distributions(ext, distributions);
}

/// Every metric's histograms for each of [`STORED_BINS`], in [`METRICS`] order.
pub struct Distributions(Vec<Vec<Vec<Bin>>>);

/// The run's [`Distributions`] from its measured revenue, the metrics binned side by side.
/// Calls nothing in PostgreSQL, so that it can run on the worker threads.
pub fn distributions(measured: &Measured, scale: u32) -> Distributions {
    use rayon::prelude::*;
    Distributions(
        METRICS
            .par_iter()
            .map(|&(_, horizon)| histograms_of(&measured.revenue[horizon], &STORED_BINS, scale))
            .collect(),
    )
}

/// Replaces ml_ltv_distribution with this run's histograms.
fn write_distributions(ext: &str, distributions: &Distributions) {
    run(
        &format!("DELETE FROM {ext}.ml_ltv_distribution"),
        &[],
        "clearing ml_ltv_distribution",
    );
    let (mut metric, mut bins, mut bin, mut lo, mut hi, mut users, mut pct) =
        (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
    for ((name, _), per_bins) in METRICS.iter().zip(&distributions.0) {
        for (b, hist) in STORED_BINS.iter().zip(per_bins) {
            for h in hist {
                metric.push(name.to_string());
                bins.push(*b as i32);
                bin.push(h.bin as i32);
                lo.push(format_minor(h.range_min, 2));
                hi.push(format_minor(h.range_max, 2));
                users.push(h.users);
                pct.push(format_minor(h.percentage, 2));
            }
        }
    }
    let sql = format!(
        "INSERT INTO {ext}.ml_ltv_distribution (metric, bins, bin, range_min, range_max, users, percentage) \
         SELECT t.m, t.k, t.b, t.lo::pg_catalog.numeric, t.hi::pg_catalog.numeric, t.n, t.p::pg_catalog.numeric \
         FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2), pg_catalog.unnest($3), pg_catalog.unnest($4), \
             pg_catalog.unnest($5), pg_catalog.unnest($6), pg_catalog.unnest($7)) AS t(m, k, b, lo, hi, n, p)"
    );
    let args: Vec<DatumWithOid<'_>> = vec![
        metric.into(),
        bins.into(),
        bin.into(),
        lo.into(),
        hi.into(),
        users.into(),
        pct.into(),
    ];
    run(&sql, &args, "writing ml_ltv_distribution");
}

/// The rows being written, parked by [`replace_results`] for the `_ltv_pending_rows` function
/// that its INSERT reads (see `crate::write::row_source`).
#[derive(Clone, Copy)]
struct Pending {
    rows: Picked<UserLtv>,
    scale: u32,
}

row_columns! {
    /// The columns of `_ltv_pending_rows`, which are `ml_user_ltv_rows`'s.
    mod row {
        user_id: INT8OID,
        signup_date: DATEOID,
        revenue_3m: NUMERICOID,
        revenue_6m: NUMERICOID,
        revenue_12m: NUMERICOID,
        lifetime_revenue: NUMERICOID,
        orders_3m: INT4OID,
        orders_6m: INT4OID,
        orders_12m: INT4OID,
        orders_lifetime: INT4OID,
        avg_order_value_3m: NUMERICOID,
        avg_order_value_6m: NUMERICOID,
        avg_order_value_12m: NUMERICOID,
        avg_order_value_lifetime: NUMERICOID,
        first_order_date: DATEOID,
        last_order_date: DATEOID,
        horizon_3m_complete: BOOLOID,
        horizon_6m_complete: BOOLOID,
        horizon_12m_complete: BOOLOID,
        orders_before_signup: INT4OID,
        segment: TEXTOID,
        fingerprint: BYTEAOID,
    }
}

v1_finfo!(pg_finfo_cda_ltv_pending_rows);
/// `_ltv_pending_rows(token)`: the rows [`replace_results`] is writing, as the columns of
/// ml_user_ltv_rows, in materialize mode. Numbers are built in numeric's storage format directly,
/// so a row costs no numeric arithmetic in the executor.
///
/// # Safety
/// Called by the executor as the set-returning `_ltv_pending_rows(token)`.
#[unsafe(no_mangle)]
#[pg_guard]
pub unsafe extern "C-unwind" fn cda_ltv_pending_rows(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    // SAFETY: as the caller vouches.
    let (Pending { rows, scale }, mut out) = unsafe {
        crate::write::row_source::row_source::<Pending>(
            fcinfo,
            "_ltv_pending_rows",
            "calculate_all_ltv()",
            row::COLUMNS,
        )
    };
    let int = |v: i64| Some(v.min(i64::from(i32::MAX)) as i32);
    let put = |r: &UserLtv, print: &[u8; 16]| {
        let aov = r.avg_order_value();
        out.int8(row::user_id, r.user_id);
        out.date(row::signup_date, Some(r.signup));
        let revenue = [
            row::revenue_3m,
            row::revenue_6m,
            row::revenue_12m,
            row::lifetime_revenue,
        ];
        let orders = [
            row::orders_3m,
            row::orders_6m,
            row::orders_12m,
            row::orders_lifetime,
        ];
        let averages = [
            row::avg_order_value_3m,
            row::avg_order_value_6m,
            row::avg_order_value_12m,
            row::avg_order_value_lifetime,
        ];
        for h in 0..4 {
            out.numeric(revenue[h], Some(r.revenue[h]), scale);
            out.int4(orders[h], int(r.orders[h]));
            out.numeric(averages[h], aov[h], scale);
        }
        out.date(row::first_order_date, r.first_order);
        out.date(row::last_order_date, r.last_order);
        let complete = [
            row::horizon_3m_complete,
            row::horizon_6m_complete,
            row::horizon_12m_complete,
        ];
        for (col, done) in complete.into_iter().zip(r.horizon_complete) {
            out.boolean(col, done);
        }
        out.int4(row::orders_before_signup, int(r.orders_before_signup));
        out.text(row::segment, Some(r.segment.name().as_bytes()));
        out.bytea(row::fingerprint, Some(print));
        out.put();
    };
    // SAFETY: replace_results keeps the rows alive and unchanged while its INSERT, the only
    // caller with the token, runs.
    unsafe { rows.for_each(put) };
    pg_sys::Datum::from(0usize)
}
