//! What the RFM and segments pages show over time: sizes at each date of a period and the
//! migration matrix between its two ends. Both are computed live from the shop's orders
//! (`rfm_segment_sizes`, `rfm_segment_migration`, `cluster_sizes`, `cluster_migration`), so they
//! need a role that may read them; for an analyst the section says so instead of failing the page.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::error::ApiError;

/// The steps a page offers between the dates of its period.
pub const STEPS: &[(&str, &str)] = &[
    ("week", "1 week"),
    ("month", "1 month"),
    ("quarter", "3 months"),
];

/// Dates a page computes at most: each costs one read of the orders.
pub const MAX_DATES: i64 = 60;

/// The period of a page's "over time" section, from its form.
#[derive(Deserialize, Default, Clone)]
pub struct Period {
    pub from: Option<String>,
    pub to: Option<String>,
    pub step: Option<String>,
}

/// A period resolved against the page's data: dates as text (PostgreSQL parses them), the step
/// as an interval.
pub struct Resolved {
    pub from: String,
    pub to: String,
    pub step_name: String,
    pub step: &'static str,
}

/// The period asked for, or by default the year up to `as_of`, monthly.
pub async fn resolve(
    s: &AppState,
    role: &str,
    period: &Period,
    as_of: &str,
) -> Result<Resolved, ApiError> {
    let step_name = period
        .step
        .clone()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "month".into());
    let step = crate::api::one_of(
        "step",
        &step_name,
        &STEPS.iter().map(|s| s.0).collect::<Vec<_>>(),
    )?;
    let step = STEPS
        .iter()
        .find(|s| s.0 == step)
        .map_or("1 month", |s| s.1);
    let to = period
        .to
        .clone()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| as_of.to_string());
    let from = match period.from.clone().filter(|v| !v.is_empty()) {
        Some(f) => f,
        None => {
            let row = super::pages::rows(
                s,
                role,
                "SELECT ($1::text::date - interval '1 year')::date AS from_date",
                &[&to],
            )
            .await?;
            row[0]["from_date"].as_str().unwrap_or_default().to_string()
        }
    };
    Ok(Resolved {
        from,
        to,
        step_name,
        step,
    })
}

/// How many dates `resolved` spans, refused above [`MAX_DATES`].
pub async fn dates(s: &AppState, role: &str, r: &Resolved) -> Result<i64, ApiError> {
    let n = super::pages::rows(
        s,
        role,
        "SELECT count(*) AS n FROM generate_series($1::text::date, $2::text::date, $3::text::interval)",
        &[&r.from, &r.to, &r.step],
    )
    .await?;
    let n = n[0]["n"].as_i64().unwrap_or(0);
    if n > MAX_DATES {
        return Err(ApiError::bad_parameter(
            "step",
            format!(
                "{n} dates from {} to {} every {}: the page computes at most {MAX_DATES}; choose a longer step or a shorter period",
                r.from, r.to, r.step_name
            ),
        ));
    }
    Ok(n)
}

/// A stacked bar chart of `value` per `series` at each `date` of `rows`.
pub fn sizes_chart(rows: &Value, date: &str, series: &str, value: &str, y: &str) -> Value {
    let list = rows.as_array().cloned().unwrap_or_default();
    let mut dates: Vec<Value> = Vec::new();
    let mut names: Vec<Value> = Vec::new();
    for r in &list {
        if !dates.contains(&r[date]) {
            dates.push(r[date].clone());
        }
        if !names.contains(&r[series]) {
            names.push(r[series].clone());
        }
    }
    let datasets: Vec<Value> = names
        .iter()
        .map(|name| {
            let data: Vec<Value> = dates
                .iter()
                .map(|d| {
                    list.iter()
                        .find(|r| &r[date] == d && &r[series] == name)
                        .map_or(json!(0), |r| r[value].clone())
                })
                .collect();
            json!({"label": name, "data": data})
        })
        .collect();
    json!({"type": "bar", "stacked": true, "x": "date", "y": y, "labels": dates, "datasets": datasets})
}

/// The migration matrix of `rows` (`from`, `to`, `count` columns) as table rows: one per
/// starting group, a cell per ending group with its count and share of the row, and the row's
/// total.
pub fn matrix(rows: &Value, from: &str, to: &str, count: &str) -> Value {
    let list = rows.as_array().cloned().unwrap_or_default();
    let mut labels: Vec<Value> = Vec::new();
    for r in &list {
        for key in [from, to] {
            if !labels.contains(&r[key]) {
                labels.push(r[key].clone());
            }
        }
    }
    labels.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
    let n = |a: &Value, b: &Value| -> i64 {
        list.iter()
            .find(|r| &r[from] == a && &r[to] == b)
            .and_then(|r| r[count].as_i64())
            .unwrap_or(0)
    };
    let body: Vec<Value> = labels
        .iter()
        .map(|a| {
            let total: i64 = labels.iter().map(|b| n(a, b)).sum();
            let cells: Vec<Value> = labels
                .iter()
                .map(|b| {
                    let k = n(a, b);
                    let share = if total > 0 { k as f64 / total as f64 } else { 0.0 };
                    json!({"users": k, "share": share * 100.0, "heat": (share * 9.0).round() as i64})
                })
                .collect();
            json!({"label": a, "cells": cells, "total": total})
        })
        .collect();
    json!({"labels": labels, "rows": body})
}

/// The "over time" section of a page: its period, the sizes at each date (table rows and a
/// chart) and the migration matrix from its first date to its last. `sizes_sql` and
/// `migration_sql` take the period as `$1` (from), `$2` (to) and, for the sizes, `$3` (step);
/// `model`, when given, is `$4` of the sizes and `$3` of the migration.
pub async fn section(
    s: &AppState,
    role: &str,
    period: &Period,
    as_of: &str,
    queries: &Queries<'_>,
) -> Result<Value, ApiError> {
    let r = resolve(s, role, period, as_of).await?;
    let base = json!({"from": r.from, "to": r.to, "step": r.step_name,
                      "steps": STEPS.iter().map(|s| s.0).collect::<Vec<_>>()});
    if let Err(e) = dates(s, role, &r).await {
        return Ok(merge(
            base,
            json!({"problem": {"error": e.message, "kind": "error"}}),
        ));
    }
    let (sizes, migration) = match queries.model {
        Some(m) => (
            super::pages::live(s, role, queries.sizes, &[&r.from, &r.to, &r.step, &m]).await,
            super::pages::live(s, role, queries.migration, &[&r.from, &r.to, &m]).await,
        ),
        None => (
            super::pages::live(s, role, queries.sizes, &[&r.from, &r.to, &r.step]).await,
            super::pages::live(s, role, queries.migration, &[&r.from, &r.to]).await,
        ),
    };
    let chart = sizes
        .get("rows")
        .map(|rows| sizes_chart(rows, "snapshot_date", queries.series, "users", "customers"));
    let matrix = migration
        .get("rows")
        .map(|rows| matrix(rows, queries.from_column, queries.to_column, "users"));
    Ok(merge(
        base,
        json!({
            "sizes_problem": problem(&sizes), "sizes_chart": chart,
            "migration_problem": problem(&migration), "matrix": matrix,
        }),
    ))
}

/// The SQL of a page's "over time" section.
pub struct Queries<'a> {
    pub sizes: &'a str,
    pub migration: &'a str,
    /// The column of the sizes that names a group.
    pub series: &'a str,
    pub from_column: &'a str,
    pub to_column: &'a str,
    pub model: Option<&'a str>,
}

/// A live section's problem (its error, hint and kind), or null when it has rows.
fn problem(section: &Value) -> Value {
    if section.get("rows").is_some() {
        Value::Null
    } else {
        section.clone()
    }
}

fn merge(mut a: Value, b: Value) -> Value {
    if let (Some(a), Value::Object(b)) = (a.as_object_mut(), b) {
        a.extend(b);
    }
    a
}
