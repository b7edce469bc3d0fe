//! LTV: the summary, customers (filters, sort, paging), one customer (stored or live), the
//! distribution, segments, insights and the refresh history.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::{Params, PathParam, json, one_of, order_by, paged};
use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::paging;

/// A row of `get_ltv_summary()`: a metric per horizon. Money is a JSON number with every digit
/// of the stored numeric.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct LtvSummaryRow {
    pub metric_name: String,
    pub value_3m: Option<f64>,
    pub value_6m: Option<f64>,
    pub value_12m: Option<f64>,
    pub value_lifetime: Option<f64>,
}

/// A customer's row of `ml_user_ltv`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct LtvUser {
    pub user_id: i64,
    pub signup_date: String,
    pub revenue_3m: f64,
    pub revenue_6m: f64,
    pub revenue_12m: f64,
    pub lifetime_revenue: f64,
    pub orders_3m: i32,
    pub orders_6m: i32,
    pub orders_12m: i32,
    pub orders_lifetime: i32,
    pub avg_order_value_3m: Option<f64>,
    pub avg_order_value_6m: Option<f64>,
    pub avg_order_value_12m: Option<f64>,
    pub avg_order_value_lifetime: Option<f64>,
    pub first_order_date: Option<String>,
    pub last_order_date: Option<String>,
    pub days_since_last_order: Option<i32>,
    pub horizon_3m_complete: bool,
    pub horizon_6m_complete: bool,
    pub horizon_12m_complete: bool,
    pub orders_before_signup: i32,
    pub segment: String,
    pub as_of_date: String,
    pub calculated_at: String,
}

/// A bin of `ltv_distribution()`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct DistributionBin {
    pub bin: i32,
    pub range_min: f64,
    pub range_max: f64,
    pub users: i64,
    pub percentage: f64,
}

/// A row of `ltv_segments()`: share of users beside share of revenue.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct SegmentRow {
    pub segment: String,
    pub min_lifetime_revenue: Option<f64>,
    pub users: i64,
    pub share_pct: Option<f64>,
    pub revenue: f64,
    pub revenue_share_pct: Option<f64>,
}

/// `get_ltv_insights()`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Insights {
    pub recommended_max_cac: Option<f64>,
    pub avg_ltv_6m: Option<f64>,
    pub cac_margin: f64,
    pub ltv_growth_12m_over_6m: Option<f64>,
    pub buyers_pct: Option<f64>,
    pub users: i64,
    pub buyers: i64,
}

/// A refresh of `ml_ltv_runs`: when, how long, what it read and what it left out, and why.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct LtvRun {
    pub run_id: i64,
    pub as_of_date: String,
    pub started_at: String,
    pub finished_at: String,
    pub duration_ms: f64,
    pub users: i64,
    pub orders_read: i64,
    pub orders_counted: i64,
    pub rows_written: i64,
    pub rows_removed: i64,
}

/// Summary per horizon from the last refresh.
#[utoipa::path(get, path = "/ltv/summary", tag = "ltv",
    responses((status = 200, body = [LtvSummaryRow]), (status = 409, description = "no refresh yet", body = ApiError)),
    security(("bearer" = [])))]
pub async fn summary(
    State(s): State<AppState>,
    Caller(role): Caller,
) -> Result<Response, ApiError> {
    let sql = format!("SELECT * FROM {}.get_ltv_summary()", s.db.schema());
    Ok(json(s.db.rows(&role, &sql, &[]).await?))
}

const USER_SORT: &[&str] = &[
    "user_id",
    "signup_date",
    "revenue_3m",
    "revenue_6m",
    "revenue_12m",
    "lifetime_revenue",
    "orders_lifetime",
    "avg_order_value_lifetime",
    "last_order_date",
    "days_since_last_order",
];

/// The value segments, as the refresh names them.
pub(crate) const SEGMENTS: &[&str] = &["VIP", "High", "Medium", "Low", "New"];

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UsersQuery {
    /// One of the value segments: VIP, High, Medium, Low, New.
    pub segment: Option<String>,
    /// Lifetime revenue at least this (a decimal).
    pub min_revenue: Option<String>,
    /// Lifetime revenue at most this (a decimal).
    pub max_revenue: Option<String>,
    /// `column`, `column.asc` or `column.desc`; columns: user_id, signup_date, revenue_3m,
    /// revenue_6m, revenue_12m, lifetime_revenue, orders_lifetime, avg_order_value_lifetime,
    /// last_order_date, days_since_last_order. Default lifetime_revenue.desc.
    pub order: Option<String>,
    /// 1 to 1000 (default 100); or send `Range: 0-99`.
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

/// The customers of the last refresh in `order`, filtered by segment (`$1`) and lifetime revenue
/// from `$2` to `$3` (decimals as text): the API's list and the dashboard's.
pub(crate) fn users_sql(ext: &str, order: &str) -> String {
    format!(
        "SELECT * FROM {ext}.ml_user_ltv \
         WHERE ($1::text IS NULL OR segment = $1) \
           AND ($2::text IS NULL OR lifetime_revenue >= $2::numeric) \
           AND ($3::text IS NULL OR lifetime_revenue <= $3::numeric) \
         ORDER BY {order}, user_id"
    )
}

/// Customers with their LTV: filtered, sorted and paged. `Prefer: count=exact` adds the total
/// to `Content-Range`.
#[utoipa::path(get, path = "/ltv/users", tag = "ltv", params(UsersQuery),
    responses((status = 200, body = [LtvUser], headers(("Content-Range" = String))),
              (status = 400, body = ApiError)),
    security(("bearer" = [])))]
pub async fn users(
    State(s): State<AppState>,
    Caller(role): Caller,
    headers: HeaderMap,
    Params(q): Params<UsersQuery>,
) -> Result<Response, ApiError> {
    let page = paging::page(q.limit, q.offset, &headers)?;
    let order = order_by(q.order.as_deref(), "lifetime_revenue.desc", USER_SORT)?;
    let segment = q
        .segment
        .as_deref()
        .map(|v| one_of("segment", v, SEGMENTS))
        .transpose()?;
    let sql = users_sql(s.db.schema(), &order);
    let (body, n, total) =
        s.db.page(
            &role,
            &sql,
            &[&segment, &q.min_revenue, &q.max_revenue],
            page,
            paging::count(&headers),
        )
        .await?;
    Ok(paged(body, page, n, total))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UserQuery {
    /// Compute from the source tables now (as of `as_of`, default today) instead of the stored row.
    pub live: Option<bool>,
    /// The as-of date of a live computation (YYYY-MM-DD).
    pub as_of: Option<String>,
}

/// One customer's LTV: the stored row of the last refresh, or computed live.
#[utoipa::path(get, path = "/ltv/users/{user_id}", tag = "ltv", params(("user_id" = i64, Path), UserQuery),
    responses((status = 200, body = LtvUser), (status = 404, body = ApiError)),
    security(("bearer" = [])))]
pub async fn user(
    State(s): State<AppState>,
    Caller(role): Caller,
    PathParam(user_id): PathParam<i64>,
    Params(q): Params<UserQuery>,
) -> Result<Response, ApiError> {
    let live = q.live.unwrap_or(false);
    if q.as_of.is_some() && !live {
        return Err(ApiError::bad_parameter(
            "as_of",
            "applies to live=true only",
        ));
    }
    let row = if live {
        let sql = format!(
            "SELECT * FROM {}.calculate_user_ltv($1, $2::text::date)",
            s.db.schema()
        );
        s.db.row(&role, &sql, &[&user_id, &q.as_of]).await?
    } else {
        let sql = format!(
            "SELECT * FROM {}.ml_user_ltv WHERE user_id = $1",
            s.db.schema()
        );
        s.db.row(&role, &sql, &[&user_id]).await?
    };
    row.map(json)
        .ok_or_else(|| ApiError::not_found(format!("no LTV row for user {user_id}")))
}

/// The metrics a distribution can bin.
pub(crate) const METRICS: &[&str] = &[
    "revenue_3m",
    "revenue_6m",
    "revenue_12m",
    "lifetime_revenue",
    "orders_3m",
    "orders_6m",
    "orders_12m",
    "orders_lifetime",
    "avg_order_value_lifetime",
];

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DistributionQuery {
    /// The metric to bin (default revenue_6m).
    pub metric: Option<String>,
    /// Number of bins, 1 to 100 (default 10).
    pub bins: Option<i32>,
}

/// The histogram of a metric over the customers of the last refresh.
#[utoipa::path(get, path = "/ltv/distribution", tag = "ltv", params(DistributionQuery),
    responses((status = 200, body = [DistributionBin]), (status = 400, body = ApiError)),
    security(("bearer" = [])))]
pub async fn distribution(
    State(s): State<AppState>,
    Caller(role): Caller,
    Params(q): Params<DistributionQuery>,
) -> Result<Response, ApiError> {
    let metric = one_of(
        "metric",
        q.metric.as_deref().unwrap_or("revenue_6m"),
        METRICS,
    )?;
    let bins = q.bins.unwrap_or(10);
    if !(1..=100).contains(&bins) {
        return Err(ApiError::bad_parameter(
            "bins",
            format!("must be between 1 and 100, got {bins}"),
        ));
    }
    let sql = format!("SELECT * FROM {}.ltv_distribution($1, $2)", s.db.schema());
    Ok(json(s.db.rows(&role, &sql, &[&metric, &bins]).await?))
}

/// Value segments: share of users beside share of revenue.
#[utoipa::path(get, path = "/ltv/segments", tag = "ltv",
    responses((status = 200, body = [SegmentRow])), security(("bearer" = [])))]
pub async fn segments(
    State(s): State<AppState>,
    Caller(role): Caller,
) -> Result<Response, ApiError> {
    let sql = format!("SELECT * FROM {}.ltv_segments()", s.db.schema());
    Ok(json(s.db.rows(&role, &sql, &[]).await?))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct InsightsQuery {
    /// The share of the 6-month LTV to spend on acquiring a customer, 0 to 1 (default: the
    /// configured one).
    pub cac_margin: Option<String>,
}

/// Recommended acquisition cost and growth figures.
#[utoipa::path(get, path = "/ltv/insights", tag = "ltv", params(InsightsQuery),
    responses((status = 200, body = Insights), (status = 400, body = ApiError)),
    security(("bearer" = [])))]
pub async fn insights(
    State(s): State<AppState>,
    Caller(role): Caller,
    Params(q): Params<InsightsQuery>,
) -> Result<Response, ApiError> {
    let sql = format!(
        "SELECT * FROM {}.get_ltv_insights($1::text::numeric)",
        s.db.schema()
    );
    s.db.row(&role, &sql, &[&q.cac_margin])
        .await?
        .map(json)
        .ok_or_else(|| ApiError::not_found("no LTV results yet"))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RunsQuery {
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

/// A signup-month cohort: average revenue per user after 3, 6 and 12 months over the users
/// whose horizon is complete, and whether it is complete for all of them.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Cohort {
    /// YYYY-MM.
    pub cohort: String,
    pub users: i64,
    pub buyers: i64,
    pub avg_revenue_3m: Option<f64>,
    pub complete_3m: bool,
    pub avg_revenue_6m: Option<f64>,
    pub complete_6m: bool,
    pub avg_revenue_12m: Option<f64>,
    pub complete_12m: bool,
    pub avg_lifetime_revenue: f64,
}

/// The cohort table of the last LTV refresh, by signup month.
pub fn cohorts_sql(ext: &str) -> String {
    format!(
        "SELECT to_char(date_trunc('month', signup_date), 'YYYY-MM') AS cohort, count(*) AS users, \
                count(*) FILTER (WHERE orders_lifetime > 0) AS buyers, \
                round(avg(revenue_3m) FILTER (WHERE horizon_3m_complete), 2) AS avg_revenue_3m, \
                bool_and(horizon_3m_complete) AS complete_3m, \
                round(avg(revenue_6m) FILTER (WHERE horizon_6m_complete), 2) AS avg_revenue_6m, \
                bool_and(horizon_6m_complete) AS complete_6m, \
                round(avg(revenue_12m) FILTER (WHERE horizon_12m_complete), 2) AS avg_revenue_12m, \
                bool_and(horizon_12m_complete) AS complete_12m, \
                round(avg(lifetime_revenue), 2) AS avg_lifetime_revenue \
         FROM {ext}.ml_user_ltv GROUP BY 1 ORDER BY 1"
    )
}

/// Signup-month cohorts: revenue per user over the horizons that have fully elapsed, an
/// immature cell marked by its `complete_*` flag.
#[utoipa::path(get, path = "/ltv/cohorts", tag = "ltv",
    responses((status = 200, body = [Cohort])), security(("bearer" = [])))]
pub async fn cohorts(
    State(s): State<AppState>,
    Caller(role): Caller,
) -> Result<Response, ApiError> {
    Ok(json(
        s.db.rows(&role, &cohorts_sql(s.db.schema()), &[]).await?,
    ))
}

/// Refresh history, newest first.
#[utoipa::path(get, path = "/ltv/runs", tag = "ltv", params(RunsQuery),
    responses((status = 200, body = [LtvRun], headers(("Content-Range" = String)))),
    security(("bearer" = [])))]
pub async fn runs(
    State(s): State<AppState>,
    Caller(role): Caller,
    headers: HeaderMap,
    Params(q): Params<RunsQuery>,
) -> Result<Response, ApiError> {
    let page = paging::page(q.limit, q.offset, &headers)?;
    let sql = format!(
        "SELECT * FROM {}.ml_ltv_runs ORDER BY run_id DESC",
        s.db.schema()
    );
    let (body, n, total) =
        s.db.page(&role, &sql, &[], page, paging::count(&headers))
            .await?;
    Ok(paged(body, page, n, total))
}
