//! RFM: segments of the last refresh, the R x F grid, customers, migration and sizes over dates.

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

/// A segment of `rfm_segment_summary()`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct RfmSegment {
    pub segment: String,
    pub users: i64,
    pub share: f64,
    pub avg_recency_days: f64,
    pub avg_frequency: f64,
    pub avg_monetary: f64,
    pub revenue: f64,
    pub revenue_share: f64,
}

/// A cell of the R x F grid: customers and revenue with these scores.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct RfmCell {
    pub r_score: i16,
    pub f_score: i16,
    pub customers: i64,
    pub revenue: f64,
    pub avg_monetary: f64,
}

/// A customer's row of `ml_user_rfm`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct RfmCustomer {
    pub user_id: i64,
    pub recency_days: Option<i32>,
    pub frequency: i32,
    pub revenue: f64,
    pub monetary: Option<f64>,
    pub r_score: Option<i16>,
    pub f_score: Option<i16>,
    pub m_score: Option<i16>,
    pub rfm_cell: Option<String>,
    pub segment: Option<String>,
    pub as_of_date: String,
    pub run_id: i64,
}

/// Users moving from one segment to another between two dates.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Migration {
    pub from_segment: String,
    pub to_segment: String,
    pub users: i64,
}

/// Users per segment at each date.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct SegmentSize {
    pub snapshot_date: String,
    pub segment: String,
    pub users: i64,
    pub share: f64,
}

/// Customers per segment in the last refresh.
#[utoipa::path(get, path = "/rfm/segments", tag = "rfm",
    responses((status = 200, body = [RfmSegment]), (status = 409, body = ApiError)), security(("bearer" = [])))]
pub async fn segments(
    State(s): State<AppState>,
    Caller(role): Caller,
) -> Result<Response, ApiError> {
    let sql = format!("SELECT * FROM {}.rfm_segment_summary()", s.db.schema());
    Ok(json(s.db.rows(&role, &sql, &[]).await?))
}

/// The R x F grid of the last refresh (scores 1 to 5).
#[utoipa::path(get, path = "/rfm/grid", tag = "rfm",
    responses((status = 200, body = [RfmCell])), security(("bearer" = [])))]
pub async fn grid(State(s): State<AppState>, Caller(role): Caller) -> Result<Response, ApiError> {
    let sql = format!(
        "SELECT r_score, f_score, count(*) AS customers, sum(revenue) AS revenue, \
                round(avg(monetary), 2) AS avg_monetary \
         FROM {}.ml_user_rfm WHERE r_score IS NOT NULL \
         GROUP BY r_score, f_score ORDER BY r_score DESC, f_score DESC",
        s.db.schema()
    );
    Ok(json(s.db.rows(&role, &sql, &[]).await?))
}

const SORT: &[&str] = &[
    "user_id",
    "recency_days",
    "frequency",
    "revenue",
    "monetary",
    "rfm_cell",
];

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CustomersQuery {
    /// A segment name, as in the segment map.
    pub segment: Option<String>,
    /// Recency score 1 to 5.
    pub r_score: Option<i16>,
    /// Frequency score 1 to 5.
    pub f_score: Option<i16>,
    /// Monetary score 1 to 5.
    pub m_score: Option<i16>,
    /// `column[.asc|.desc]`: user_id, recency_days, frequency, revenue, monetary, rfm_cell.
    /// Default revenue.desc.
    pub order: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

pub(crate) fn score(name: &str, v: Option<i16>) -> Result<Option<i16>, ApiError> {
    match v {
        Some(x) if !(1..=5).contains(&x) => Err(ApiError::bad_parameter(
            name,
            format!("must be between 1 and 5, got {x}"),
        )),
        _ => Ok(v),
    }
}

/// The scored customers in `order`, by segment (`$1`) and R, F and M scores (`$2` to `$4`):
/// the API's list and the dashboard's.
pub(crate) fn customers_sql(ext: &str, order: &str) -> String {
    format!(
        "SELECT * FROM {ext}.ml_user_rfm \
         WHERE ($1::text IS NULL OR segment = $1) AND ($2::int2 IS NULL OR r_score = $2) \
           AND ($3::int2 IS NULL OR f_score = $3) AND ($4::int2 IS NULL OR m_score = $4) \
         ORDER BY {order}, user_id"
    )
}

/// Customers with their scores: by segment or cell, sorted and paged.
#[utoipa::path(get, path = "/rfm/customers", tag = "rfm", params(CustomersQuery),
    responses((status = 200, body = [RfmCustomer], headers(("Content-Range" = String))), (status = 400, body = ApiError)),
    security(("bearer" = [])))]
pub async fn customers(
    State(s): State<AppState>,
    Caller(role): Caller,
    headers: HeaderMap,
    Params(q): Params<CustomersQuery>,
) -> Result<Response, ApiError> {
    let page = paging::page(q.limit, q.offset, &headers)?;
    let order = order_by(q.order.as_deref(), "revenue.desc", SORT)?;
    let (r, f, m) = (
        score("r_score", q.r_score)?,
        score("f_score", q.f_score)?,
        score("m_score", q.m_score)?,
    );
    let sql = customers_sql(s.db.schema(), &order);
    let (body, n, total) =
        s.db.page(
            &role,
            &sql,
            &[&q.segment, &r, &f, &m],
            page,
            paging::count(&headers),
        )
        .await?;
    Ok(paged(body, page, n, total))
}

/// One customer's stored RFM row.
#[utoipa::path(get, path = "/rfm/customers/{user_id}", tag = "rfm", params(("user_id" = i64, Path)),
    responses((status = 200, body = RfmCustomer), (status = 404, body = ApiError)), security(("bearer" = [])))]
pub async fn customer(
    State(s): State<AppState>,
    Caller(role): Caller,
    PathParam(user_id): PathParam<i64>,
) -> Result<Response, ApiError> {
    let sql = format!(
        "SELECT * FROM {}.ml_user_rfm WHERE user_id = $1",
        s.db.schema()
    );
    s.db.row(&role, &sql, &[&user_id])
        .await?
        .map(json)
        .ok_or_else(|| ApiError::not_found(format!("no RFM row for user {user_id}")))
}

const MONETARY: &[&str] = &["total", "average"];

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MigrationQuery {
    /// The earlier date (YYYY-MM-DD).
    pub from: String,
    /// The later date (YYYY-MM-DD).
    pub to: String,
    /// total (default) or average spend as M.
    pub monetary: Option<String>,
}

/// How customers moved between segments from one date to another, each date scored on its own.
#[utoipa::path(get, path = "/rfm/migration", tag = "rfm", params(MigrationQuery),
    responses((status = 200, body = [Migration]), (status = 400, body = ApiError)), security(("bearer" = [])))]
pub async fn migration(
    State(s): State<AppState>,
    Caller(role): Caller,
    Params(q): Params<MigrationQuery>,
) -> Result<Response, ApiError> {
    let monetary = one_of(
        "monetary",
        q.monetary.as_deref().unwrap_or("total"),
        MONETARY,
    )?;
    let sql = format!(
        "SELECT * FROM {}.rfm_segment_migration($1::text::date, $2::text::date, $3)",
        s.db.schema()
    );
    Ok(json(
        s.db.rows(&role, &sql, &[&q.from, &q.to, &monetary]).await?,
    ))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SizesQuery {
    pub from: String,
    pub to: String,
    /// A PostgreSQL interval of at least a day (default `1 month`); at most 1000 dates.
    pub step: Option<String>,
    pub monetary: Option<String>,
}

/// Customers per segment at each date from `from` to `to`.
#[utoipa::path(get, path = "/rfm/sizes", tag = "rfm", params(SizesQuery),
    responses((status = 200, body = [SegmentSize]), (status = 400, body = ApiError), (status = 413, body = ApiError)),
    security(("bearer" = [])))]
pub async fn sizes(
    State(s): State<AppState>,
    Caller(role): Caller,
    Params(q): Params<SizesQuery>,
) -> Result<Response, ApiError> {
    let monetary = one_of(
        "monetary",
        q.monetary.as_deref().unwrap_or("total"),
        MONETARY,
    )?;
    let step = q.step.as_deref().unwrap_or("1 month");
    let sql = format!(
        "SELECT * FROM {}.rfm_segment_sizes($1::text::date, $2::text::date, $3::text::interval, $4)",
        s.db.schema()
    );
    Ok(json(
        s.db.rows(&role, &sql, &[&q.from, &q.to, &step, &monetary])
            .await?,
    ))
}
