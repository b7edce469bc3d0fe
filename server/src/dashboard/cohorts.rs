//! The cohorts page: retention by acquisition cohort as a heatmap (cohorts by period number,
//! incomplete cells marked), the mean retention curve over complete cells, and a form for the
//! period, horizon, as-of date, cohort type and "on or after". Computed live from the shop's
//! orders, so an analyst is told that its role may not read them.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use minijinja::context;
use serde::Deserialize;
use serde_json::{Value, json};

use super::pages::{data_end, live, parsed, show};
use super::{Viewer, render};
use crate::AppState;
use crate::api::cohorts::{PERIODS, RetentionQuery, TYPES, retention_sql, summary_sql};
use crate::api::one_of;
use crate::error::ApiError;

/// What a heatmap cell may show.
const SHOW: &[&str] = &[
    "retention",
    "revenue_retention",
    "cumulative_revenue_per_customer",
];
/// The page's widest table.
const MAX_PERIODS: i32 = 60;

#[derive(Deserialize, Default)]
pub struct CohortsQuery {
    period: Option<String>,
    max_periods: Option<i32>,
    as_of: Option<String>,
    retention_type: Option<String>,
    cumulative: Option<String>,
    data_start: Option<String>,
    show: Option<String>,
}

pub async fn cohorts(
    State(s): State<AppState>,
    viewer: Viewer,
    query: Result<Query<CohortsQuery>, QueryRejection>,
) -> Response {
    let page = async { cohorts_page(&s, &viewer, &parsed(query)?.0).await };
    show(&viewer, page.await)
}

async fn cohorts_page(
    s: &AppState,
    viewer: &Viewer,
    q: &CohortsQuery,
) -> Result<Response, ApiError> {
    let ext = s.db.schema();
    let role = &viewer.role;
    let shown = one_of("show", q.show.as_deref().unwrap_or("retention"), SHOW)?;
    let max_periods = q.max_periods.unwrap_or(12);
    if !(1..=MAX_PERIODS).contains(&max_periods) {
        return Err(ApiError::bad_parameter(
            "max_periods",
            format!("must be between 1 and {MAX_PERIODS} on this page, got {max_periods}"),
        ));
    }
    // By default, as of the date the LTV results are (the end of the shop's data in the demo).
    let as_of = match q.as_of.clone().filter(|a| !a.is_empty()) {
        Some(a) => a,
        None => data_end(s, role).await?,
    };
    let query = RetentionQuery {
        period: q.period.clone().filter(|p| !p.is_empty()),
        max_periods: Some(max_periods),
        as_of: Some(as_of.clone()),
        retention_type: q.retention_type.clone().filter(|t| !t.is_empty()),
        cumulative: Some(q.cumulative.as_deref() == Some("on")),
        data_start: q.data_start.clone(),
        include_censored: None,
    };
    let a = query.arguments()?;
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 6] = [
        &a.period,
        &a.max_periods,
        &a.as_of,
        &a.retention_type,
        &a.cumulative,
        &a.data_start,
    ];
    let cells = live(s, role, &retention_sql(ext), &params).await;
    let censored = false;
    let mut summary_params = params.to_vec();
    summary_params.push(&censored);
    let summary = live(s, role, &summary_sql(ext), &summary_params).await;
    let (heatmap, chart) = match (cells.get("rows"), summary.get("rows")) {
        (Some(cells), Some(summary)) => (
            heatmap(cells, shown, max_periods),
            Some(
                json!({"type": "line", "x": "periods since the cohort's first", "y": "% of the cohort active",
                "labels": summary.as_array().map(|a| a.iter().map(|m| m["period_number"].clone()).collect::<Vec<_>>()),
                "datasets": [
                    {"label": "weighted by cohort size",
                     "data": summary.as_array().map(|a| a.iter().map(|m| percent(&m["weighted_retention"])).collect::<Vec<_>>())},
                    {"label": "mean of cohorts",
                     "data": summary.as_array().map(|a| a.iter().map(|m| percent(&m["simple_retention"])).collect::<Vec<_>>())}]}),
            ),
        ),
        _ => (Value::Null, None),
    };
    let problem = [&cells, &summary]
        .into_iter()
        .find(|r| r.get("error").is_some())
        .cloned();
    Ok(render(
        "cohorts.html",
        "cohorts",
        Some(viewer),
        context! {
            problem, heatmap, chart, summary => summary.get("rows"),
            form => json!({
                "period": a.period, "periods": PERIODS, "max_periods": a.max_periods, "as_of": as_of,
                "retention_type": a.retention_type, "types": TYPES, "cumulative": a.cumulative,
                "data_start": a.data_start, "show": shown, "shows": SHOW,
            }),
        },
        StatusCode::OK,
    ))
}

fn percent(v: &Value) -> Value {
    v.as_f64()
        .map(|x| json!((x * 10000.0).round() / 100.0))
        .unwrap_or(Value::Null)
}

/// The cohort table as rows of cells: `shown` per period number, shaded against the largest
/// value after period 0 (which is 100% retention by definition).
fn heatmap(cells: &Value, shown: &str, max_periods: i32) -> Value {
    let list = cells.as_array().cloned().unwrap_or_default();
    let largest = list
        .iter()
        .filter(|c| c["period_number"] != 0 || shown == "cumulative_revenue_per_customer")
        .filter_map(|c| value_of(c, shown))
        .fold(0.0, f64::max);
    let mut rows: Vec<Value> = Vec::new();
    for c in &list {
        if rows
            .last()
            .is_none_or(|r| r["cohort_start"] != c["cohort_start"])
        {
            rows.push(
                json!({"cohort_start": c["cohort_start"], "cohort_size": c["cohort_size"],
                             "left_censored": c["is_left_censored"], "cells": []}),
            );
        }
        let text = match (shown, value_of(c, shown)) {
            (_, None) => String::new(),
            ("cumulative_revenue_per_customer", Some(x)) => format!("{x:.2}"),
            (_, Some(x)) => format!("{:.1}%", x * 100.0),
        };
        let heat = value_of(c, shown)
            .map(|x| ((x / largest.max(1e-12)).min(1.0) * 9.0).round() as i64)
            .unwrap_or(0);
        if let Some(cells) = rows.last_mut().and_then(|r| r["cells"].as_array_mut()) {
            cells.push(json!({"text": text, "heat": heat, "complete": c["is_complete"],
                              "active": c["active_customers"], "orders": c["orders"], "revenue": c["revenue"]}));
        }
    }
    json!({"periods": (0..=max_periods).collect::<Vec<_>>(), "rows": rows})
}

fn value_of(cell: &Value, shown: &str) -> Option<f64> {
    let v = &cell[shown];
    v.as_f64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}
