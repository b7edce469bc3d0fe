//! Writing a run's results: `ml_user_ltv`, the run record and the summary, all in the caller's
//! transaction, so they commit together or not at all.

use std::time::Duration;

use cda_analytics_core::calendar::Day;
use cda_analytics_core::ltv::{LtvSummary, RunCounts, UserLtv};
use cda_analytics_core::money::format_minor;
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;

use crate::config::Config;
use crate::errors::*;
use crate::source::Source;

const CHUNK_ROWS: usize = 50_000;

/// One field of every row, as the array bound to one parameter of the bulk INSERT.
fn column<T>(rows: &[UserLtv], field: impl Fn(&UserLtv) -> T) -> Vec<T> {
    rows.iter().map(field).collect()
}

fn run(sql: &str, args: &[DatumWithOid<'_>], doing: &str) {
    Spi::connect_mut(|c| c.update(sql, None, args).map(|_| ())).or_raise(doing);
}

/// Serialises refreshes: SHARE ROW EXCLUSIVE conflicts with itself and with writers, but not with
/// readers, who keep reading the previous results while a refresh runs.
pub fn lock_results(ext: &str) {
    run(
        &format!("LOCK TABLE {ext}.ml_user_ltv IN SHARE ROW EXCLUSIVE MODE"),
        &[],
        "locking ml_user_ltv",
    );
}

pub fn clock_timestamp() -> String {
    Spi::connect(|c| {
        c.select("SELECT pg_catalog.clock_timestamp()::text", None, &[])?
            .first()
            .get::<String>(1)
    })
    .or_raise("reading the clock")
    .unwrap_or_default()
}

/// Replaces the contents of `ml_user_ltv` with `rows`. DELETE rather than TRUNCATE: TRUNCATE is
/// not MVCC-safe (a concurrent REPEATABLE READ reader would see an empty table) and would block
/// readers until commit.
pub fn replace_results(ext: &str, rows: &[UserLtv], as_of: Day, scale: u32) {
    run(
        &format!("DELETE FROM {ext}.ml_user_ltv"),
        &[],
        "clearing ml_user_ltv",
    );
    let unit = format_minor(1, scale);
    let money = |col: &str| format!("t.{col}::pg_catalog.numeric * {unit}");
    let sql = format!(
        "INSERT INTO {ext}.ml_user_ltv (user_id, signup_date, revenue_3m, revenue_6m, revenue_12m, \
             lifetime_revenue, orders_3m, orders_6m, orders_12m, orders_lifetime, avg_order_value_3m, \
             avg_order_value_6m, avg_order_value_12m, avg_order_value_lifetime, first_order_date, \
             last_order_date, days_since_last_order, horizon_3m_complete, horizon_6m_complete, \
             horizon_12m_complete, orders_before_signup, segment, as_of_date, calculated_at) \
         SELECT t.uid, DATE '2000-01-01' + t.signup, {r3}, {r6}, {r12}, {rl}, t.o3, t.o6, t.o12, t.ol, \
             {a3}, {a6}, {a12}, {al}, DATE '2000-01-01' + t.first, DATE '2000-01-01' + t.last, t.dsl, \
             t.c3, t.c6, t.c12, t.bs, t.seg, DATE '2000-01-01' + $23, pg_catalog.now() \
         FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2), pg_catalog.unnest($3), pg_catalog.unnest($4), pg_catalog.unnest($5), pg_catalog.unnest($6), pg_catalog.unnest($7), pg_catalog.unnest($8), pg_catalog.unnes\
             t($9), pg_catalog.unnest($10), pg_catalog.unnest($11), pg_catalog.unnest($12), pg_catalog.unnest($13), pg_catalog.unnest($14), pg_catalog.unnest($15), pg_catalog.unnest($16), pg_catalog.unnest($17), pg_catalog.unnest($18), pg_catalog.unnest($19), pg_catalog.unnest($20), pg_catalog.unnest($21), pg_catalog.unnest($22)) \
             AS t(uid, signup, r3, r6, r12, rl, o3, o6, o12, ol, a3, a6, a12, al, first, last, dsl, c3, c6, c12, bs, seg)",
        r3 = money("r3"),
        r6 = money("r6"),
        r12 = money("r12"),
        rl = money("rl"),
        a3 = money("a3"),
        a6 = money("a6"),
        a12 = money("a12"),
        al = money("al"),
    );
    let count = |v: i64| i32::try_from(v).unwrap_or(i32::MAX);
    for chunk in rows.chunks(CHUNK_ROWS) {
        let args: Vec<DatumWithOid<'_>> = vec![
            column(chunk, |r| r.user_id).into(),
            column(chunk, |r| r.signup.0).into(),
            column(chunk, |r| r.revenue[0]).into(),
            column(chunk, |r| r.revenue[1]).into(),
            column(chunk, |r| r.revenue[2]).into(),
            column(chunk, |r| r.revenue[3]).into(),
            column(chunk, |r| count(r.orders[0])).into(),
            column(chunk, |r| count(r.orders[1])).into(),
            column(chunk, |r| count(r.orders[2])).into(),
            column(chunk, |r| count(r.orders[3])).into(),
            column(chunk, |r| r.avg_order_value[0]).into(),
            column(chunk, |r| r.avg_order_value[1]).into(),
            column(chunk, |r| r.avg_order_value[2]).into(),
            column(chunk, |r| r.avg_order_value[3]).into(),
            column(chunk, |r| r.first_order.map(|d| d.0)).into(),
            column(chunk, |r| r.last_order.map(|d| d.0)).into(),
            column(chunk, |r| r.days_since_last_order).into(),
            column(chunk, |r| r.horizon_complete[0]).into(),
            column(chunk, |r| r.horizon_complete[1]).into(),
            column(chunk, |r| r.horizon_complete[2]).into(),
            column(chunk, |r| count(r.orders_before_signup)).into(),
            column(chunk, |r| r.segment.name().to_string()).into(),
            as_of.0.into(),
        ];
        run(&sql, &args, "writing ml_user_ltv");
    }
}

pub struct RunRecord<'a> {
    pub as_of: Day,
    pub started_at: String,
    pub elapsed: Duration,
    pub config: &'a Config,
    pub source: &'a Source,
    pub counts: &'a RunCounts,
}

/// Appends the run to `ml_ltv_runs` and replaces `ml_ltv_summary` with this run's summary.
pub fn record_run(ext: &str, run_record: &RunRecord<'_>, summary: &LtvSummary) {
    let RunRecord {
        as_of,
        started_at,
        elapsed,
        config,
        source,
        counts: c,
    } = run_record;
    let scale = source.amount_scale;
    let thresholds = config.ltv_thresholds(scale);
    let money = |minor: i128| format_minor(minor, scale);
    let sql = format!(
        "INSERT INTO {ext}.ml_ltv_runs (as_of_date, started_at, finished_at, duration_ms, users, users_read, \
             users_skipped_null_id, users_skipped_null_signup, users_skipped_signup_after_as_of, orders_read, \
             orders_counted, orders_before_signup, orders_skipped_null_status, orders_skipped_null_user, \
             orders_skipped_unknown_user, orders_skipped_null_date, orders_skipped_after_as_of, \
             orders_skipped_null_amount, orders_skipped_negative_amount, orders_skipped_user_left_out, \
             amounts_rounded, amount_scale, users_source, orders_source, successful_statuses, time_zone, \
             segment_vip, segment_high, segment_medium, segment_low, cohort_12m_revenue_6m, cohort_12m_revenue_12m) \
         VALUES (DATE '2000-01-01' + $1, $2::pg_catalog.timestamptz, pg_catalog.clock_timestamp(), $3, $4, $5, $6, $7, \
             $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, \
             $26::pg_catalog.numeric, $27::pg_catalog.numeric, $28::pg_catalog.numeric, $29::pg_catalog.numeric, \
             $30::pg_catalog.numeric, $31::pg_catalog.numeric) \
         RETURNING run_id"
    );
    let args: Vec<DatumWithOid<'_>> = vec![
        as_of.0.into(),
        started_at.clone().into(),
        (elapsed.as_secs_f64() * 1000.0).into(),
        summary.users_total.into(),
        c.users_read.into(),
        c.users_null_id.into(),
        c.users_null_signup.into(),
        c.users_signup_after_as_of.into(),
        c.orders_read.into(),
        c.orders_counted.into(),
        c.orders_before_signup.into(),
        c.orders_null_status.into(),
        c.orders_null_user.into(),
        c.orders_unknown_user.into(),
        c.orders_null_date.into(),
        c.orders_after_as_of.into(),
        c.orders_null_amount.into(),
        c.orders_negative_amount.into(),
        c.orders_of_left_out_users.into(),
        c.amounts_rounded.into(),
        (scale as i32).into(),
        source.users.clone().into(),
        source.orders.clone().into(),
        config.successful_statuses.clone().into(),
        config.time_zone.clone().into(),
        money(i128::from(thresholds.vip)).into(),
        money(i128::from(thresholds.high)).into(),
        money(i128::from(thresholds.medium)).into(),
        money(i128::from(thresholds.low)).into(),
        money(summary.cohort_12m_revenue_6m).into(),
        money(summary.cohort_12m_revenue_12m).into(),
    ];
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
}
