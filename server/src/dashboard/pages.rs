//! The dashboard's pages: each reads what it shows with the same SQL the API uses, as the
//! viewer's role, and renders it.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use minijinja::context;
use serde::Deserialize;
use serde_json::{Value, json};

use super::cache::cached;
use super::over_time::{self, Period, Queries};
use super::{Viewer, error_page, render};
use crate::AppState;
use crate::api::ltv::{METRICS, SEGMENTS};
use crate::api::{one_of, order_by};
use crate::error::ApiError;
use crate::paging::Page;

/// The rows of `sql` as JSON values.
pub(super) async fn rows(
    s: &AppState,
    role: &str,
    sql: &str,
    params: &crate::db::Params<'_>,
) -> Result<Value, ApiError> {
    let text = s.db.rows(role, sql, params).await?;
    serde_json::from_str(&text)
        .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "json", "unreadable rows"))
}

/// Like [`rows`], but a result not computed yet (or not readable) is nothing rather than an
/// error: the overview shows what there is.
async fn rows_or_none(s: &AppState, role: &str, sql: &str) -> Value {
    rows(s, role, sql, &[]).await.unwrap_or(Value::Null)
}

/// The rows of a live section, or what stands in their place: `{rows}` or `{error, hint, kind}`,
/// where kind is `notice` for a role refused the source and `error` for anything else.
pub(super) async fn live(
    s: &AppState,
    role: &str,
    sql: &str,
    params: &crate::db::Params<'_>,
) -> Value {
    match rows(s, role, sql, params).await {
        Ok(rows) => json!({ "rows": rows }),
        Err(e) if e.code == "42501" => json!({
            "error": "This section is computed from the shop's orders, which your role may not read.",
            "hint": "Log in with an operator's token to see it.",
            "kind": "notice",
        }),
        Err(e) => json!({ "error": e.message, "hint": e.hint, "kind": "error" }),
    }
}

/// The day the shop's data ends as far as the results know: the latest LTV run's as-of date, or
/// today before any run. The default end of a page's live sections.
pub(super) async fn data_end(s: &AppState, role: &str) -> Result<String, ApiError> {
    let ext = s.db.schema();
    let day = rows(
        s,
        role,
        &format!(
            "SELECT coalesce((SELECT as_of_date FROM {ext}.ml_ltv_runs ORDER BY run_id DESC LIMIT 1), \
                             current_date)::text AS day"
        ),
        &[],
    )
    .await?;
    Ok(day[0]["day"].as_str().unwrap_or_default().to_string())
}

/// The page, or its error as a page.
pub(super) fn show(viewer: &Viewer, page: Result<Response, ApiError>) -> Response {
    page.unwrap_or_else(|e| error_page(viewer, e))
}

/// A page's query parameters or path: one that does not parse is a 400 page.
pub(super) fn parsed<T>(extracted: Result<T, impl std::fmt::Display>) -> Result<T, ApiError> {
    extracted.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_parameter", e.to_string()))
}

/// Column `key` of every row of a JSON array of rows (for a chart's labels or series).
fn column(rows: &Value, key: &str) -> Vec<Value> {
    rows.as_array()
        .map(|a| a.iter().map(|r| r[key].clone()).collect())
        .unwrap_or_default()
}

/// A customer list's pager: "first–last of total" and the links to the previous and next page,
/// made by `href` from an offset.
fn pager(
    offset: i64,
    returned: usize,
    total: i64,
    href: impl Fn(i64) -> String,
) -> (String, Option<String>, Option<String>) {
    let text = if returned == 0 {
        "no customers".to_string()
    } else {
        format!("{}–{} of {}", offset + 1, offset + returned as i64, total)
    };
    let prev = (offset > 0).then(|| href((offset - PAGE_SIZE).max(0)));
    let next = (offset + (returned as i64) < total).then(|| href(offset + PAGE_SIZE));
    (text, prev, next)
}

pub async fn overview(State(s): State<AppState>, viewer: Viewer) -> Response {
    let ext = s.db.schema();
    let role = &viewer.role;
    let insights = rows_or_none(&s, role, &format!("SELECT * FROM {ext}.get_ltv_insights()")).await;
    let summary = rows_or_none(&s, role, &format!("SELECT * FROM {ext}.get_ltv_summary()")).await;
    let churn = rows_or_none(&s, role, &format!("SELECT * FROM {ext}.churn_summary()")).await;
    let weeks = rows_or_none(&s, role, &format!("SELECT * FROM {ext}.anomaly_summary()")).await;
    let ltv_12m = summary
        .as_array()
        .and_then(|a| a.iter().find(|m| m["metric_name"] == "Average LTV"))
        .map(|m| m["value_12m"].clone());
    let at_risk: i64 = churn
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|b| b["risk_band"] == "high" || b["risk_band"] == "critical")
                .filter_map(|b| b["customers"].as_i64())
                .sum()
        })
        .unwrap_or(0);
    let anomalies = weeks
        .as_array()
        .and_then(|a| {
            a.iter()
                .max_by_key(|w| w["week_start"].as_str().map(str::to_string))
        })
        .map(|w| w["anomalies"].clone());
    let freshness_sql = format!(
        "SELECT 'LTV' AS what, (SELECT as_of_date::text FROM {ext}.ml_ltv_runs ORDER BY run_id DESC LIMIT 1) AS as_of, \
                (SELECT finished_at::text FROM {ext}.ml_ltv_runs ORDER BY run_id DESC LIMIT 1) AS computed_at \
         UNION ALL SELECT 'RFM', (SELECT as_of_date::text FROM {ext}.ml_rfm_runs ORDER BY run_id DESC LIMIT 1), \
                (SELECT finished_at::text FROM {ext}.ml_rfm_runs ORDER BY run_id DESC LIMIT 1) \
         UNION ALL SELECT 'Clusters', (SELECT max(as_of_date)::text FROM {ext}.ml_user_clusters), \
                (SELECT max(fitted_at)::text FROM {ext}.ml_kmeans_models) \
         UNION ALL SELECT 'CLV', (SELECT max(as_of_date)::text FROM {ext}.ml_user_clv), \
                (SELECT max(fitted_at)::text FROM {ext}.ml_clv_models) \
         UNION ALL SELECT 'Churn', (SELECT max(as_of_date)::text FROM {ext}.ml_churn_scores), \
                (SELECT max(scored_at)::text FROM {ext}.ml_churn_scores) \
         UNION ALL SELECT 'Purchase', (SELECT max(as_of_date)::text FROM {ext}.ml_purchase_scores), \
                (SELECT max(scored_at)::text FROM {ext}.ml_purchase_scores) \
         UNION ALL SELECT 'Anomalies', (SELECT max(as_of_date)::text FROM {ext}.ml_user_anomalies_weekly), NULL"
    );
    let freshness = match rows(&s, role, &freshness_sql, &[]).await {
        Ok(f) => f,
        Err(e) => return error_page(&viewer, e),
    };
    let kpi = json!({
        "users": insights[0]["users"],
        "buyers": insights[0]["buyers"],
        "ltv_12m": ltv_12m,
        "cac": insights[0]["recommended_max_cac"],
        "at_risk": if churn.is_null() { Value::Null } else { at_risk.into() },
        "anomalies": anomalies,
    });
    render(
        "overview.html",
        "overview",
        Some(&viewer),
        context! { kpi, freshness },
        StatusCode::OK,
    )
}

/// The customer table's columns: (column, label, numeric).
const COLUMNS: &[(&str, &str, bool)] = &[
    ("user_id", "user", false),
    ("signup_date", "signed up", false),
    ("orders_lifetime", "orders", true),
    ("lifetime_revenue", "lifetime revenue", true),
    ("revenue_12m", "12-month revenue", true),
    ("last_order_date", "last order", false),
    ("segment", "segment", false),
];
const PAGE_SIZE: i64 = 50;

#[derive(Deserialize, Default)]
pub struct LtvQuery {
    metric: Option<String>,
    bins: Option<i32>,
    segment: Option<String>,
    min_revenue: Option<String>,
    max_revenue: Option<String>,
    order: Option<String>,
    offset: Option<i64>,
}

/// The query string of the LTV page with `changes` applied.
fn ltv_href(q: &LtvQuery, order: &str, offset: i64) -> String {
    let bins = q.bins.map(|b| b.to_string());
    let offset = (offset > 0).then(|| offset.to_string());
    href(
        "/ltv",
        &[
            ("metric", q.metric.as_deref()),
            ("bins", bins.as_deref()),
            ("segment", q.segment.as_deref()),
            ("min_revenue", q.min_revenue.as_deref()),
            ("max_revenue", q.max_revenue.as_deref()),
            ("order", Some(order)),
            ("offset", offset.as_deref()),
        ],
    )
}

/// A page's link: `path` with the query parameters that have a value, encoded.
fn href(path: &str, params: &[(&str, Option<&str>)]) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (key, value) in params {
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            query.append_pair(key, v);
        }
    }
    format!("{path}?{}", query.finish())
}

/// What the LTV page shows changes with a refresh (a new run) or with the configuration.
fn ltv_stamp(ext: &str) -> String {
    format!(
        "SELECT (SELECT max(run_id) FROM {ext}.ml_ltv_runs) AS run, \
                (SELECT md5(string_agg(c::text, ',' ORDER BY c::text)) FROM {ext}.cda_config c) AS config"
    )
}

pub async fn ltv(
    State(s): State<AppState>,
    viewer: Viewer,
    uri: Uri,
    query: Result<Query<LtvQuery>, QueryRejection>,
) -> Response {
    let stamp = ltv_stamp(s.db.schema());
    cached(&s, &viewer.role, &uri.to_string(), &stamp, async || {
        let page = async { ltv_page(&s, &viewer, &parsed(query)?.0).await };
        show(&viewer, page.await)
    })
    .await
}

async fn ltv_page(s: &AppState, viewer: &Viewer, q: &LtvQuery) -> Result<Response, ApiError> {
    let ext = s.db.schema();
    let role = &viewer.role;
    let metric = one_of(
        "metric",
        q.metric.as_deref().unwrap_or("revenue_6m"),
        METRICS,
    )?;
    let bins = q.bins.unwrap_or(10);
    if !(1..=100).contains(&bins) {
        return Err(ApiError::bad_parameter("bins", "must be between 1 and 100"));
    }
    let segment = q
        .segment
        .as_deref()
        .filter(|v| !v.is_empty())
        .map(|v| one_of("segment", v, SEGMENTS))
        .transpose()?;
    let order_text = q
        .order
        .clone()
        .unwrap_or_else(|| "lifetime_revenue.desc".into());
    let sortable: Vec<&str> = COLUMNS.iter().map(|c| c.0).collect();
    let order = order_by(Some(&order_text), "lifetime_revenue.desc", &sortable)?;
    let offset = q.offset.unwrap_or(0).clamp(0, crate::paging::MAX_OFFSET);
    let page = Page {
        limit: PAGE_SIZE,
        offset,
    };
    let min = q.min_revenue.clone().filter(|v| !v.is_empty());
    let max = q.max_revenue.clone().filter(|v| !v.is_empty());

    let run = rows(s, role, &format!(
        "SELECT as_of_date, finished_at, users, orders_counted FROM {ext}.ml_ltv_runs ORDER BY run_id DESC LIMIT 1"), &[]).await?;
    if run.as_array().is_none_or(|a| a.is_empty()) {
        return Err(
            ApiError::new(StatusCode::CONFLICT, "55000", "no LTV results yet").with_hint(
                "An operator runs SELECT calculate_all_ltv(); or POST /api/v1/ltv/calculate.",
            ),
        );
    }
    let summary = rows(
        s,
        role,
        &format!("SELECT * FROM {ext}.get_ltv_summary()"),
        &[],
    )
    .await?;
    let histogram_rows = rows(
        s,
        role,
        &format!("SELECT * FROM {ext}.ltv_distribution($1, $2)"),
        &[&metric, &bins],
    )
    .await?;
    let segments = rows(s, role, &format!("SELECT * FROM {ext}.ltv_segments()"), &[]).await?;
    let insights = rows(
        s,
        role,
        &format!("SELECT * FROM {ext}.get_ltv_insights()"),
        &[],
    )
    .await?;
    let cohorts = rows(s, role, &crate::api::ltv::cohorts_sql(ext), &[]).await?;
    let (users_text, returned, total) =
        s.db.page(
            role,
            &crate::api::ltv::users_sql(ext, &order),
            &[&segment, &min, &max],
            page,
            crate::paging::Count::Exact,
        )
        .await?;
    let users: Value = serde_json::from_str(&users_text).unwrap_or(Value::Null);

    let bars = |key: &str| column(&histogram_rows, key);
    let labels: Vec<String> = histogram_rows
        .as_array()
        .map(|a| {
            a.iter()
                .map(|b| format!("{}–{}", b["range_min"], b["range_max"]))
                .collect()
        })
        .unwrap_or_default();
    let histogram = json!({"type": "bar", "labels": labels, "x": metric, "y": "users",
                           "datasets": [{"label": "users", "data": bars("users")}]});
    let seg = |key: &str| column(&segments, key);
    let segments_chart = json!({"type": "bar", "labels": seg("segment"), "y": "%",
        "datasets": [{"label": "share of users", "data": seg("share_pct")},
                     {"label": "share of revenue", "data": seg("revenue_share_pct")}]});
    let (current_col, current_dir) = order_text
        .rsplit_once('.')
        .unwrap_or((order_text.as_str(), "asc"));
    let columns: Vec<Value> = COLUMNS
        .iter()
        .map(|(col, label, numeric)| {
            let next = if *col == current_col && current_dir == "desc" { format!("{col}.asc") } else { format!("{col}.desc") };
            let sorted = if *col == current_col { if current_dir == "desc" { "▼" } else { "▲" } } else { "" };
            json!({"label": label, "class": if *numeric { "num" } else { "" }, "sort_href": ltv_href(q, &next, 0), "sorted": sorted})
        })
        .collect();
    let total = total.unwrap_or(0);
    let (range_text, prev_href, next_href) =
        pager(offset, returned, total, |o| ltv_href(q, &order_text, o));
    Ok(render(
        "ltv.html",
        "ltv",
        Some(viewer),
        context! {
            run => run[0], summary, histogram, segments, segments_chart, insights => insights[0], cohorts,
            users, columns, range_text, prev_href, next_href,
            metrics => METRICS, metric, bins, segment_names => SEGMENTS, segment,
            min_revenue => min, max_revenue => max, order => order_text,
        },
        StatusCode::OK,
    ))
}

pub async fn runs(State(s): State<AppState>, viewer: Viewer) -> Response {
    let ext = s.db.schema();
    let ltv = rows(
        &s,
        &viewer.role,
        &format!("SELECT * FROM {ext}.ml_ltv_runs ORDER BY run_id DESC LIMIT 50"),
        &[],
    )
    .await;
    let rfm = rows(
        &s,
        &viewer.role,
        &format!("SELECT * FROM {ext}.ml_rfm_runs ORDER BY run_id DESC LIMIT 50"),
        &[],
    )
    .await;
    let (ltv_runs, rfm_runs) = match (ltv, rfm) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return error_page(&viewer, e),
    };
    let chrono: Vec<&Value> = ltv_runs
        .as_array()
        .map(|a| a.iter().rev().collect())
        .unwrap_or_default();
    let durations = json!({"type": "line", "x": "run", "y": "seconds",
        "labels": chrono.iter().map(|r| r["run_id"].clone()).collect::<Vec<_>>(),
        "datasets": [{"label": "seconds", "data": chrono.iter().map(|r| r["duration_ms"].as_f64().map(|ms| ms / 1000.0)).collect::<Vec<_>>()}]});
    let left_out_keys = [
        "users_skipped_null_id",
        "users_skipped_null_signup",
        "users_skipped_signup_after_as_of",
        "orders_skipped_null_status",
        "orders_skipped_null_user",
        "orders_skipped_unknown_user",
        "orders_skipped_null_date",
        "orders_skipped_after_as_of",
        "orders_skipped_null_amount",
        "orders_skipped_negative_amount",
        "orders_skipped_user_left_out",
    ];
    render(
        "runs.html",
        "runs",
        Some(&viewer),
        context! { ltv_runs, rfm_runs, durations, left_out_keys },
        StatusCode::OK,
    )
}

pub async fn customer(
    State(s): State<AppState>,
    viewer: Viewer,
    path: Result<Path<i64>, PathRejection>,
) -> Response {
    let page = async { customer_page(&s, &viewer, parsed(path)?.0).await };
    show(&viewer, page.await)
}

async fn customer_page(s: &AppState, viewer: &Viewer, user_id: i64) -> Result<Response, ApiError> {
    let ext = s.db.schema();
    let sql = crate::api::customers::customer_360_sql(ext);
    let c = rows(s, &viewer.role, &sql, &[&user_id]).await?[0].clone();
    if !crate::api::customers::has_results(&c) {
        return Err(ApiError::not_found(format!(
            "no results for customer {user_id}"
        )));
    }
    let weeks = rows(s, &viewer.role, &format!(
        "SELECT week_start, orders, spend, anomaly_score, is_anomaly, triggers FROM {ext}.ml_user_anomalies_weekly \
         WHERE user_id = $1 ORDER BY week_start"), &[&user_id]).await?;
    // Anomalous weeks are a series of their own, in red, stacked on the others.
    let spend = |anomalous: bool| -> Vec<Value> {
        weeks
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|w| {
                        if (w["is_anomaly"] == true) == anomalous {
                            w["spend"].clone()
                        } else {
                            json!(0)
                        }
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let weeks_chart = json!({"type": "bar", "stacked": true, "x": "week", "y": "spend",
        "labels": column(&weeks, "week_start"),
        "datasets": [{"label": "spend", "data": spend(false)},
                     {"label": "spend in an anomalous week", "data": spend(true), "color": "#dc2626"}]});
    let weeks = if weeks.as_array().is_some_and(|a| a.is_empty()) {
        Value::Null
    } else {
        weeks
    };
    Ok(render(
        "customer.html",
        "customer",
        Some(viewer),
        context! { c, weeks, weeks_chart },
        StatusCode::OK,
    ))
}

#[derive(Deserialize, Default)]
pub struct RfmQuery {
    segment: Option<String>,
    r_score: Option<i16>,
    f_score: Option<i16>,
    offset: Option<i64>,
    from: Option<String>,
    to: Option<String>,
    step: Option<String>,
}

impl RfmQuery {
    fn period(&self) -> Period {
        Period {
            from: self.from.clone(),
            to: self.to.clone(),
            step: self.step.clone(),
        }
    }
}

fn rfm_href(q: &RfmQuery, offset: i64) -> String {
    let (r, f) = (
        q.r_score.map(|r| r.to_string()),
        q.f_score.map(|f| f.to_string()),
    );
    let offset = (offset > 0).then(|| offset.to_string());
    href(
        "/rfm",
        &[
            ("segment", q.segment.as_deref()),
            ("r_score", r.as_deref()),
            ("f_score", f.as_deref()),
            ("offset", offset.as_deref()),
            ("from", q.from.as_deref()),
            ("to", q.to.as_deref()),
            ("step", q.step.as_deref()),
        ],
    )
}

pub async fn rfm(
    State(s): State<AppState>,
    viewer: Viewer,
    uri: Uri,
    query: Result<Query<RfmQuery>, QueryRejection>,
) -> Response {
    // The segments come from the latest run's scores through the segment map.
    let ext = s.db.schema();
    let stamp = format!(
        "SELECT (SELECT max(run_id) FROM {ext}.ml_rfm_runs) AS run, \
                (SELECT md5(string_agg(m::text, ',' ORDER BY m::text)) FROM {ext}.rfm_segment_map m) AS map, \
                (SELECT md5(string_agg(c::text, ',' ORDER BY c::text)) FROM {ext}.cda_config c) AS config"
    );
    cached(&s, &viewer.role, &uri.to_string(), &stamp, async || {
        let page = async { rfm_page(&s, &viewer, &parsed(query)?.0).await };
        show(&viewer, page.await)
    })
    .await
}

async fn rfm_page(s: &AppState, viewer: &Viewer, q: &RfmQuery) -> Result<Response, ApiError> {
    let ext = s.db.schema();
    let role = &viewer.role;
    crate::api::rfm::score("r_score", q.r_score)?;
    crate::api::rfm::score("f_score", q.f_score)?;
    let run = rows(s, role, &format!(
        "SELECT as_of_date, finished_at, customers_scored, monetary FROM {ext}.ml_rfm_runs ORDER BY run_id DESC LIMIT 1"), &[]).await?;
    if run.as_array().is_none_or(|a| a.is_empty()) {
        return Err(
            ApiError::new(StatusCode::CONFLICT, "55000", "no RFM results yet").with_hint(
                "An operator runs SELECT calculate_all_rfm(); or POST /api/v1/rfm/calculate.",
            ),
        );
    }
    let segments = rows(
        s,
        role,
        &format!("SELECT * FROM {ext}.rfm_segment_summary()"),
        &[],
    )
    .await?;
    let cells = rows(
        s,
        role,
        &format!(
            "SELECT r_score, f_score, count(*) AS customers FROM {ext}.ml_user_rfm \
         WHERE r_score IS NOT NULL GROUP BY 1, 2"
        ),
        &[],
    )
    .await?;
    let count = |r: i64, f: i64| -> i64 {
        cells
            .as_array()
            .and_then(|a| a.iter().find(|c| c["r_score"] == r && c["f_score"] == f))
            .and_then(|c| c["customers"].as_i64())
            .unwrap_or(0)
    };
    let largest = (1..=5)
        .flat_map(|r| (1..=5).map(move |f| (r, f)))
        .map(|(r, f)| count(r, f))
        .max()
        .unwrap_or(0)
        .max(1);
    let grid: Vec<Value> = (1..=5)
        .rev()
        .map(|r| {
            let cells: Vec<Value> = (1..=5)
                .map(|f| {
                    let n = count(r, f);
                    json!({"f": f, "customers": n, "heat": (n * 9 + largest - 1) / largest})
                })
                .collect();
            json!({"r": r, "cells": cells})
        })
        .collect();
    let over = over_time::section(
        s,
        role,
        &q.period(),
        run[0]["as_of_date"].as_str().unwrap_or_default(),
        &Queries {
            sizes: &format!("SELECT * FROM {ext}.rfm_segment_sizes($1::text::date, $2::text::date, $3::text::interval)"),
            migration: &format!("SELECT * FROM {ext}.rfm_segment_migration($1::text::date, $2::text::date)"),
            series: "segment",
            from_column: "from_segment",
            to_column: "to_segment",
            model: None,
        },
    )
    .await?;
    let col = |k: &str| column(&segments, k);
    let segments_chart = json!({"type": "bar", "labels": col("segment"), "y": "%",
        "datasets": [{"label": "share of customers", "data": col("share")},
                     {"label": "share of revenue", "data": col("revenue_share")}]});
    let offset = q.offset.unwrap_or(0).clamp(0, crate::paging::MAX_OFFSET);
    let page = Page {
        limit: PAGE_SIZE,
        offset,
    };
    let segment = q.segment.clone().filter(|s| !s.is_empty());
    let (text, returned, total) =
        s.db.page(
            role,
            &crate::api::rfm::customers_sql(ext, "revenue DESC NULLS LAST"),
            &[&segment, &q.r_score, &q.f_score, &None::<i16>],
            page,
            crate::paging::Count::Exact,
        )
        .await?;
    let customers: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let total = total.unwrap_or(0);
    let (range_text, prev_href, next_href) = pager(offset, returned, total, |o| rfm_href(q, o));
    let mut filters = Vec::new();
    if let Some(sg) = &segment {
        filters.push(sg.clone());
    }
    if let Some(r) = q.r_score {
        filters.push(format!("R {r}"));
    }
    if let Some(f) = q.f_score {
        filters.push(format!("F {f}"));
    }
    Ok(render(
        "rfm.html",
        "rfm",
        Some(viewer),
        context! {
            run => run[0], segments, segments_chart, grid, customers, range_text, prev_href, next_href, over,
            filter_text => filters.join(", "),
        },
        StatusCode::OK,
    ))
}

#[derive(Deserialize, Default)]
pub struct ClvQuery {
    model: Option<String>,
    holdout_end: Option<String>,
}

pub async fn clv(
    State(s): State<AppState>,
    viewer: Viewer,
    query: Result<Query<ClvQuery>, QueryRejection>,
) -> Response {
    let page = async { clv_page(&s, &viewer, &parsed(query)?.0).await };
    show(&viewer, page.await)
}

/// The frequency x recency matrices of a purchase model, as lifetimes plots them: customers
/// first seen a year ago, frequencies 0 to 12, recency in 8 steps, purchases over the next year.
const MATRIX_DAYS: f64 = 364.0;
const MATRIX_MAX_FREQUENCY: i32 = 12;
const MATRIX_RECENCY_STEPS: i32 = 8;

/// The cells of a matrix (rows of `api::clv::matrix_sql`) laid out as table rows for column
/// `key`, shaded by the share of `largest`.
fn matrix_rows(cells: &Value, recencies: &[f64], key: &str, largest: f64) -> Value {
    let grid: Vec<Value> = (0..=i64::from(MATRIX_MAX_FREQUENCY))
        .map(|f| {
            let row: Vec<Value> = recencies
                .iter()
                .map(|r| {
                    let x = cells
                        .as_array()
                        .and_then(|a| {
                            a.iter().find(|c| {
                                c["frequency"] == f
                                    && (c["recency"].as_f64().unwrap_or(-1.0) - r).abs() < 1e-9
                            })
                        })
                        .and_then(|c| c[key].as_f64());
                    match x {
                        Some(x) => json!({"text": format!("{x:.2}"),
                                          "heat": (x / largest.max(1e-12) * 9.0).round() as i64}),
                        None => json!({"text": "", "heat": 0}),
                    }
                })
                .collect();
            json!({"frequency": f, "cells": row})
        })
        .collect();
    Value::from(grid)
}

async fn clv_page(s: &AppState, viewer: &Viewer, q: &ClvQuery) -> Result<Response, ApiError> {
    let ext = s.db.schema();
    let role = &viewer.role;
    let models = rows(s, role, &format!(
        "SELECT model_name, model, time_unit, calibration_end, parameters, std_errors, log_likelihood, \
                customers, fitted_at FROM {ext}.ml_clv_models ORDER BY model_name"), &[]).await?;
    let transaction_models: Vec<&Value> = models
        .as_array()
        .map(|a| a.iter().filter(|m| m["model"] != "gamma_gamma").collect())
        .unwrap_or_default();
    let chosen = match q.model.as_deref().filter(|m| !m.is_empty()) {
        Some(name) => Some(
            transaction_models
                .iter()
                .find(|m| m["model_name"] == name)
                .ok_or_else(|| ApiError::not_found(format!("no purchase model named {name:?}")))?,
        ),
        None => transaction_models.first(),
    };
    let mut view = json!({});
    if let Some(m) = chosen {
        let unit = m["time_unit"].as_str().unwrap_or("week").to_string();
        let t = if unit == "week" {
            MATRIX_DAYS / 7.0
        } else {
            MATRIX_DAYS
        };
        let name = m["model_name"].as_str().unwrap_or_default().to_string();
        let cells = rows(
            s,
            role,
            &crate::api::clv::matrix_sql(ext),
            &[&name, &t, &MATRIX_MAX_FREQUENCY, &MATRIX_RECENCY_STEPS, &t],
        )
        .await?;
        let recencies: Vec<f64> = (0..MATRIX_RECENCY_STEPS)
            .map(|i| t * f64::from(i) / f64::from(MATRIX_RECENCY_STEPS - 1))
            .collect();
        let most = column(&cells, "expected_purchases")
            .iter()
            .filter_map(Value::as_f64)
            .fold(0.0, f64::max);
        // The holdout runs to the end of the period the LTV results are as of, unless asked.
        let holdout_end = match q.holdout_end.clone().filter(|h| !h.is_empty()) {
            Some(h) => h,
            None => data_end(s, role).await?,
        };
        let holdout = live(
            s,
            role,
            &format!("SELECT * FROM {ext}.clv_holdout_evaluation($1, $2::text::date)"),
            &[&name, &holdout_end],
        )
        .await;
        let bins: Vec<Value> = holdout["rows"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|b| b["frequency"] != "all")
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        let bins = Value::from(bins);
        let holdout_chart = holdout.get("rows").map(|_| {
            json!({"type": "bar", "x": "repeat purchases in the calibration period",
                   "y": "mean purchases in the holdout period", "labels": column(&bins, "frequency"),
                   "datasets": [{"label": "actual", "data": column(&bins, "actual_mean")},
                                {"label": "predicted", "data": column(&bins, "predicted_mean")}]})
        });
        view = json!({
            "model": name, "unit": unit, "t": t, "recencies": recencies,
            "alive": matrix_rows(&cells, &recencies, "probability_alive", 1.0),
            "purchases": matrix_rows(&cells, &recencies, "expected_purchases", most),
            "holdout_end": holdout_end, "holdout": holdout, "holdout_chart": holdout_chart,
            "calibration_end": m["calibration_end"],
        });
    }
    let top = rows(
        s,
        role,
        &format!("SELECT * FROM {ext}.ml_user_clv ORDER BY clv DESC NULLS LAST, user_id LIMIT 20"),
        &[],
    )
    .await?;
    let scored = top.get(0).cloned();
    Ok(render(
        "clv.html",
        "clv",
        Some(viewer),
        context! { models, view, top, scored },
        StatusCode::OK,
    ))
}

pub async fn churn(State(s): State<AppState>, viewer: Viewer) -> Response {
    show(&viewer, churn_page(&s, &viewer).await)
}

async fn churn_page(s: &AppState, viewer: &Viewer) -> Result<Response, ApiError> {
    let ext = s.db.schema();
    let churn = scores_card(
        s,
        &viewer.role,
        "ml_churn_scores",
        "risk_band",
        &format!("SELECT * FROM {ext}.churn_summary()"),
    )
    .await?;
    let purchase = scores_card(
        s,
        &viewer.role,
        "ml_purchase_scores",
        "band",
        &format!(
            "SELECT band AS risk_band, count(*) AS customers, \
                    round(count(*)::numeric / sum(count(*)) OVER (), 4)::float8 AS share, \
                    round(avg(probability)::numeric, 4)::float8 AS mean_probability, \
                    count(*) FILTER (WHERE eligible) AS eligible \
             FROM {ext}.ml_purchase_scores GROUP BY band \
             ORDER BY array_position(ARRAY['high', 'medium', 'low'], band)"
        ),
    )
    .await?;
    Ok(render(
        "churn.html",
        "churn",
        Some(viewer),
        context! { churn, purchase },
        StatusCode::OK,
    ))
}

/// What the churn page shows of one kind of score (`ml_churn_scores` or `ml_purchase_scores`):
/// its bands (`bands_sql`), the scoring model with its validation metrics beside the P(alive)
/// baseline, the chosen scorer's confusion matrix, the feature weights, and the 20 customers
/// with the highest probability, with reasons.
async fn scores_card(
    s: &AppState,
    role: &str,
    table: &str,
    band_column: &str,
    bands_sql: &str,
) -> Result<Value, ApiError> {
    let ext = s.db.schema();
    let top = rows(s, role, &format!(
        "SELECT user_id, probability, {band_column} AS band, top_reasons, model_name, model_version, as_of_date \
         FROM {ext}.{table} WHERE eligible ORDER BY probability DESC, user_id LIMIT 20"), &[]).await?;
    let Some(first) = top.get(0).cloned() else {
        return Ok(json!({"top": []}));
    };
    let bands = rows(s, role, bands_sql, &[]).await?;
    let name = first["model_name"].as_str().unwrap_or_default().to_string();
    let model = rows(
        s,
        role,
        &format!(
            "SELECT model_name, version, classifier, features, weights, label_days, trained_at, as_of_date \
             FROM {ext}.ml_churn_models WHERE model_name = $1"
        ),
        &[&name],
    )
    .await?
    .get(0)
    .cloned();
    let validation = rows(s, role, &format!(
        "SELECT * FROM {ext}.ml_churn_model_metrics WHERE model_name = $1 AND split = 'validation' \
         ORDER BY chosen DESC, roc_auc DESC NULLS LAST"), &[&name]).await?;
    let chosen = validation
        .as_array()
        .and_then(|a| a.iter().find(|m| m["chosen"] == true).cloned());
    let col = |k: &str| column(&bands, k);
    let bands_chart = json!({"type": "bar", "x": "band", "labels": col("risk_band"), "y": "customers",
        "datasets": [{"label": "customers", "data": col("customers")}]});
    let weights_chart = model.as_ref().and_then(|m| {
        let weights = m["weights"].as_array()?;
        let features = m["features"].as_array()?;
        Some(
            json!({"type": "bar", "x": "feature", "labels": features, "y": "weight",
                    "datasets": [{"label": "weight", "data": weights}]}),
        )
    });
    Ok(json!({
        "top": top, "bands": bands, "bands_chart": bands_chart, "model": model,
        "validation": validation, "chosen": chosen, "weights_chart": weights_chart,
        "as_of": first["as_of_date"],
    }))
}

#[derive(Deserialize, Default)]
pub struct SegmentsQuery {
    model: Option<String>,
    from: Option<String>,
    to: Option<String>,
    step: Option<String>,
}

pub async fn segments(
    State(s): State<AppState>,
    viewer: Viewer,
    query: Result<Query<SegmentsQuery>, QueryRejection>,
) -> Response {
    let page = async { segments_page(&s, &viewer, &parsed(query)?.0).await };
    show(&viewer, page.await)
}

async fn segments_page(
    s: &AppState,
    viewer: &Viewer,
    q: &SegmentsQuery,
) -> Result<Response, ApiError> {
    let ext = s.db.schema();
    let role = &viewer.role;
    let models = rows(s, role, &format!(
        "SELECT DISTINCT ON (model_name) model_name, version, k, features, centroids_in_units, cluster_names, \
                snapshot_date, fitted_on_users, candidate_k, candidate_silhouette, k_chosen_by, fitted_at \
         FROM {ext}.ml_kmeans_models ORDER BY model_name, version DESC"), &[]).await?;
    let list = models.as_array().cloned().unwrap_or_default();
    let model = match q.model.as_deref().filter(|m| !m.is_empty()) {
        Some(name) => Some(
            list.iter()
                .find(|m| m["model_name"] == name)
                .cloned()
                .ok_or_else(|| {
                    ApiError::not_found(format!("no clustering model named {name:?}"))
                })?,
        ),
        None => list.first().cloned(),
    };
    let (mut profiles, mut sizes_chart, mut silhouette_chart, mut assigned_as_of, mut over) = (
        Vec::new(),
        Value::Null,
        Value::Null,
        Value::Null,
        Value::Null,
    );
    if let Some(m) = &model {
        let name = m["model_name"].as_str().unwrap_or_default().to_string();
        let sizes = rows(s, role, &format!(
            "SELECT cluster, count(*) AS users, count(*)::float8 / sum(count(*)) OVER () AS share, \
                    max(as_of_date) AS as_of_date \
             FROM {ext}.ml_user_clusters WHERE model_name = $1 GROUP BY cluster ORDER BY cluster"), &[&name]).await?;
        let k = m["k"].as_u64().unwrap_or(0) as usize;
        let features = m["features"].as_array().map(Vec::len).unwrap_or(0);
        let centroids = m["centroids_in_units"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let names = m["cluster_names"].as_array().cloned().unwrap_or_default();
        for c in 0..k {
            let size = sizes
                .as_array()
                .and_then(|a| a.iter().find(|r| r["cluster"] == (c + 1) as u64));
            profiles.push(json!({
                "name": names.get(c).cloned().unwrap_or(Value::Null),
                // float8[k][features] comes as nested arrays; a flat array is cut in rows.
                "values": match centroids.first() {
                    Some(Value::Array(_)) => centroids.get(c).cloned().unwrap_or(Value::Null),
                    _ => centroids
                        .get(c * features..(c + 1) * features)
                        .map(|v| Value::Array(v.to_vec()))
                        .unwrap_or(Value::Null),
                },
                "users": size.map(|r| r["users"].clone()).unwrap_or(Value::Null),
                "share": size.map(|r| r["share"].clone()).unwrap_or(json!(0)),
            }));
        }
        assigned_as_of = sizes
            .get(0)
            .map(|r| r["as_of_date"].clone())
            .unwrap_or(Value::Null);
        sizes_chart = json!({"type": "bar", "y": "customers",
            "labels": names, "datasets": [{"label": "customers", "data": profiles.iter().map(|p| p["users"].clone()).collect::<Vec<_>>()}]});
        let as_of = assigned_as_of
            .as_str()
            .or(m["snapshot_date"].as_str())
            .unwrap_or_default();
        let period = Period {
            from: q.from.clone(),
            to: q.to.clone(),
            step: q.step.clone(),
        };
        over = over_time::section(
            s,
            role,
            &period,
            as_of,
            &Queries {
                sizes: &format!("SELECT snapshot_date, cluster, cluster_name, users FROM {ext}.cluster_sizes($4, $1::text::date, $2::text::date, $3::text::interval)"),
                migration: &format!("SELECT * FROM {ext}.cluster_migration($3, $1::text::date, $2::text::date)"),
                series: "cluster_name",
                from_column: "from_cluster",
                to_column: "to_cluster",
                model: Some(&name),
            },
        )
        .await?;
        // A curve needs more than the one k given.
        if m["candidate_k"].as_array().is_some_and(|a| a.len() > 1) {
            silhouette_chart = json!({"type": "line", "x": "k", "y": "silhouette", "labels": m["candidate_k"],
                "datasets": [{"label": "silhouette", "data": m["candidate_silhouette"]}]});
        }
    }
    Ok(render(
        "segments.html",
        "segments",
        Some(viewer),
        context! {
            models, model, profiles, sizes_chart, silhouette_chart, assigned_as_of, over,
        },
        StatusCode::OK,
    ))
}

pub async fn anomalies(State(s): State<AppState>, viewer: Viewer) -> Response {
    let ext = s.db.schema();
    let weeks = rows(
        &s,
        &viewer.role,
        &format!("SELECT * FROM {ext}.anomaly_summary()"),
        &[],
    )
    .await;
    let latest = rows(
        &s,
        &viewer.role,
        &format!("SELECT * FROM {ext}.latest_anomalies(1, 50)"),
        &[],
    )
    .await;
    let as_of = rows(
        &s,
        &viewer.role,
        &format!("SELECT max(as_of_date) AS as_of FROM {ext}.ml_user_anomalies_weekly"),
        &[],
    )
    .await;
    let (weeks, latest, as_of) = match (weeks, latest, as_of) {
        (Ok(w), Ok(l), Ok(a)) => (w, l, a[0]["as_of"].clone()),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return error_page(&viewer, e),
    };
    let col = |k: &str| column(&weeks, k);
    let weeks_chart = json!({"type": "bar", "x": "week", "y": "customers", "labels": col("week_start"),
        "datasets": [{"label": "anomalies", "data": col("anomalies")}]});
    render(
        "anomalies.html",
        "anomalies",
        Some(&viewer),
        context! { weeks, latest, as_of, weeks_chart },
        StatusCode::OK,
    )
}
