//! Weekly behaviour and anomalies in SQL: one grouped read of the orders into (user, week)
//! totals, each user's weeks filled with zero weeks, the rules of
//! `cda_analytics_core::anomaly`, and `ml_user_anomalies_weekly`, replaced atomically.
//!
//! Weeks run Monday to Sunday in the configured time zone, and a week is judged once it is
//! complete: the latest judged week is the one that ends on or before the as-of date.

mod results;

use pgrx::prelude::*;
use rustc_hash::FxHashMap;

use cda_analytics_core::anomaly::{
    Finding, Rules, WeekRow, WeekTotals, active_weeks, detect_after, fill_weeks, week_of,
    week_start,
};
use cda_analytics_core::calendar::Day;

use crate::read::categories;
use crate::source::Context;
use crate::toolbox::convert::date_of;
use crate::toolbox::errors::*;

/// The last complete week on or before `as_of`.
fn last_complete_week(as_of: Day) -> i32 {
    let week = week_of(as_of);
    if week_start(week + 1).0 - 1 <= as_of.0 {
        week
    } else {
        week - 1
    }
}

/// Each user's weeks from `from_week` (or their first active week, if later) through
/// `through_week`, and how many weeks of history each user had before `from_week`.
struct Weeks {
    series: Vec<(i64, Vec<WeekRow>, usize)>,
}

fn read_weeks(
    ctx: &Context,
    from_week: i32,
    through_week: i32,
    one_user: Option<i64>,
    explicit_end: bool,
    announce: bool,
) -> Weeks {
    let end = Day(week_start(through_week + 1).0 - 1);
    let (mut events, left_out) = crate::read::events::read(ctx, end, one_user);
    let groups = crate::toolbox::workers::on_worker_threads(|| events.by_user());
    let scale = ctx.source.amount_scale;
    // user -> (first active week, active weeks in range)
    let mut per_user: FxHashMap<i64, (i32, Vec<WeekTotals>)> = FxHashMap::default();
    for (uid, range) in groups {
        if let Some(weeks) = active_weeks(&events.events[range], from_week, scale) {
            per_user.insert(uid, weeks);
        }
    }
    left_out.report("weekly behaviour", explicit_end);
    let categories = categories::available(&ctx.config);
    let category_counts = if categories {
        categories::read(
            &ctx.config,
            &ctx.source,
            Some(week_start(from_week)),
            end,
            one_user,
            "reading the categories by week",
        )
        .distinct_by(|day| Some(week_of(Day(day))))
    } else {
        if announce {
            notice(
                format!(
                    "categories per week skipped: no order_items(order_id, product_id) and products(product_id, category) next to {}",
                    ctx.source.orders
                ),
                None,
            );
        }
        FxHashMap::default()
    };
    let mut ids: Vec<i64> = per_user.keys().copied().collect();
    ids.sort_unstable();
    let series = ids
        .into_iter()
        .filter_map(|id| {
            let (first_week, mut active) = per_user.remove(&id)?;
            let start = first_week.max(from_week);
            if start > through_week {
                return None;
            }
            // A user whose history starts before the range gets its first week as a zero week if
            // they bought nothing then, so the series starts at `from_week`.
            if first_week < from_week && !active.iter().any(|w| w.week == from_week) {
                active.push(WeekTotals {
                    week: from_week,
                    orders: 0,
                    spend: 0.0,
                    categories: None,
                });
            }
            if categories {
                for w in active.iter_mut() {
                    w.categories = Some(category_counts.get(&(id, w.week)).copied().unwrap_or(0));
                }
            }
            let rows = fill_weeks(&active, through_week, categories);
            Some((id, rows, (start - first_week) as usize))
        })
        .collect();
    Weeks { series }
}

fn rules(
    window_weeks: i32,
    z_threshold: f64,
    ratio_threshold: f64,
    robust_threshold: f64,
    min_history_weeks: i32,
    report_insufficient: bool,
) -> Rules {
    let rules = Rules {
        window: window_weeks.max(0) as usize,
        z: z_threshold,
        ratio: ratio_threshold,
        robust_z: robust_threshold,
        min_history: min_history_weeks.max(0) as usize,
        report_insufficient,
    };
    if window_weeks > 520 || min_history_weeks < 0 {
        raise(
            ERRCODE_INVALID_PARAMETER_VALUE,
            "window_weeks must be between 2 and 520 and min_history_weeks >= 0",
            None,
        );
    }
    if let Err(e) = rules.check() {
        raise(ERRCODE_INVALID_PARAMETER_VALUE, e, None);
    }
    rules
}

/// How many weeks a call reads or judges: at least one, at most `max`.
fn check_weeks(weeks: i32, max: i32) {
    if !(1..=max).contains(&weeks) {
        raise(
            ERRCODE_INVALID_PARAMETER_VALUE,
            format!("weeks must be between 1 and {max}, got {weeks}"),
            None,
        );
    }
}

fn trigger_names(f: &Finding) -> Vec<String> {
    f.triggers.iter().map(|t| t.name()).collect()
}

/// One user's weeks up to the last complete week before `as_of` (default today), zero weeks
/// included, from their first active week or `weeks` weeks back, whichever is later. Categories
/// are the distinct product categories of the week, NULL without order_items and products.
#[allow(clippy::type_complexity)]
#[pg_extern(stable, parallel_restricted)]
#[search_path(pg_catalog, pg_temp)]
fn user_behavior_weekly(
    user_id: Option<i64>,
    as_of: default!(Option<pgrx::datum::Date>, "NULL"),
    weeks: default!(Option<i32>, 26),
) -> TableIterator<
    'static,
    (
        name!(week_start, pgrx::datum::Date),
        name!(orders, i32),
        name!(spend, f64),
        name!(average_order_value, Option<f64>),
        name!(categories, Option<i32>),
    ),
> {
    let user_id = required(user_id, "user_id");
    let weeks = required(weeks, "weeks");
    check_weeks(weeks, 520);
    let ctx = Context::load(as_of);
    let last = last_complete_week(ctx.as_of);
    let read = read_weeks(
        &ctx,
        last - weeks + 1,
        last,
        Some(user_id),
        ctx.explicit_as_of,
        false,
    );
    let rows: Vec<_> = read
        .series
        .into_iter()
        .flat_map(|(_, rows, _)| rows)
        .map(|w| {
            (
                date_of(week_start(w.week)),
                w.orders as i32,
                w.spend,
                w.average_order_value,
                w.categories.map(|c| c as i32),
            )
        })
        .collect();
    TableIterator::new(rows)
}

/// One user's judged weeks (the last `weeks` complete ones), computed on the fly with the given
/// rules: the statistics, the score, the triggers that fired and whether the history sufficed.
#[allow(clippy::type_complexity, clippy::too_many_arguments)]
#[pg_extern(stable, parallel_restricted)]
#[search_path(pg_catalog, pg_temp)]
fn user_anomaly_history(
    user_id: Option<i64>,
    as_of: default!(Option<pgrx::datum::Date>, "NULL"),
    weeks: default!(Option<i32>, 12),
    window_weeks: default!(Option<i32>, 4),
    z_threshold: default!(Option<f64>, 3.0),
    ratio_threshold: default!(Option<f64>, 3.0),
    robust_threshold: default!(Option<f64>, 3.5),
    min_history_weeks: default!(Option<i32>, 4),
) -> TableIterator<
    'static,
    (
        name!(week_start, pgrx::datum::Date),
        name!(orders, i32),
        name!(spend, f64),
        name!(orders_z, Option<f64>),
        name!(spend_z, Option<f64>),
        name!(spend_robust_z, Option<f64>),
        name!(spend_ratio, Option<f64>),
        name!(anomaly_score, f64),
        name!(is_anomaly, bool),
        name!(triggers, Vec<String>),
        name!(insufficient_history, bool),
    ),
> {
    let user_id = required(user_id, "user_id");
    let weeks = required(weeks, "weeks");
    let window_weeks = required(window_weeks, "window_weeks");
    let z_threshold = required(z_threshold, "z_threshold");
    let ratio_threshold = required(ratio_threshold, "ratio_threshold");
    let robust_threshold = required(robust_threshold, "robust_threshold");
    let min_history_weeks = required(min_history_weeks, "min_history_weeks");
    let rules = rules(
        window_weeks,
        z_threshold,
        ratio_threshold,
        robust_threshold,
        min_history_weeks,
        false,
    );
    check_weeks(weeks, 520);
    let ctx = Context::load(as_of);
    let last = last_complete_week(ctx.as_of);
    let from = last - weeks + 1 - rules.window as i32;
    let read = read_weeks(&ctx, from, last, Some(user_id), ctx.explicit_as_of, false);
    let rows: Vec<_> = read
        .series
        .iter()
        .flat_map(|(_, series, earlier)| detect_after(series, *earlier, &rules))
        .filter(|f| f.week > last - weeks)
        .map(|f| {
            (
                date_of(week_start(f.week)),
                f.orders.value as i32,
                f.spend.value,
                f.orders.z,
                f.spend.z,
                f.spend.robust_z,
                f.spend.ratio,
                f.score,
                f.is_anomaly,
                trigger_names(&f),
                f.insufficient_history,
            )
        })
        .collect();
    TableIterator::new(rows)
}

/// Judges every user's last `weeks` complete weeks before `as_of` (default today) and replaces
/// the contents of `ml_user_anomalies_weekly` with the findings in one transaction.
#[allow(clippy::type_complexity, clippy::too_many_arguments)]
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn calculate_all_anomalies(
    as_of: default!(Option<pgrx::datum::Date>, "NULL"),
    weeks: default!(Option<i32>, 1),
    window_weeks: default!(Option<i32>, 4),
    z_threshold: default!(Option<f64>, 3.0),
    ratio_threshold: default!(Option<f64>, 3.0),
    robust_threshold: default!(Option<f64>, 3.5),
    min_history_weeks: default!(Option<i32>, 4),
    report_insufficient: default!(Option<bool>, false),
) -> TableIterator<
    'static,
    (
        name!(weeks_judged, i64),
        name!(anomalies, i64),
        name!(anomalous_users, i64),
        name!(insufficient_history, i64),
    ),
> {
    let weeks = required(weeks, "weeks");
    let window_weeks = required(window_weeks, "window_weeks");
    let z_threshold = required(z_threshold, "z_threshold");
    let ratio_threshold = required(ratio_threshold, "ratio_threshold");
    let robust_threshold = required(robust_threshold, "robust_threshold");
    let min_history_weeks = required(min_history_weeks, "min_history_weeks");
    let report_insufficient = required(report_insufficient, "report_insufficient");
    let rules = rules(
        window_weeks,
        z_threshold,
        ratio_threshold,
        robust_threshold,
        min_history_weeks,
        report_insufficient,
    );
    check_weeks(weeks, 52);
    let ctx = Context::load(as_of);
    crate::write::refresh::lock(&ctx.ext, "ml_user_anomalies_weekly");
    let last = last_complete_week(ctx.as_of);
    let from = last - weeks + 1 - rules.window as i32;
    let read = read_weeks(&ctx, from, last, None, ctx.explicit_as_of, true);
    let mut rows: Vec<(i64, Finding)> = Vec::new();
    for (id, series, earlier) in &read.series {
        for f in detect_after(series, *earlier, &rules) {
            if f.week > last - weeks {
                rows.push((*id, f));
            }
        }
    }
    results::write(&ctx.ext, &rows, ctx.as_of);
    let anomalous: std::collections::BTreeSet<i64> = rows
        .iter()
        .filter(|(_, f)| f.is_anomaly)
        .map(|(id, _)| *id)
        .collect();
    TableIterator::once((
        rows.len() as i64,
        rows.iter().filter(|(_, f)| f.is_anomaly).count() as i64,
        anomalous.len() as i64,
        rows.iter().filter(|(_, f)| f.insufficient_history).count() as i64,
    ))
}
