//! Churn and purchase prediction: risk bands, high-risk customers with reasons, one customer,
//! trained models with their validation metrics, purchase scores.

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

/// Customers per risk band in the latest `calculate_all_churn()`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct RiskBand {
    pub risk_band: String,
    pub customers: i64,
    pub share: f64,
    pub mean_probability: f64,
    pub eligible: i64,
}

/// A scored customer with the reasons behind the score.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ChurnScore {
    pub user_id: i64,
    pub probability: f64,
    pub risk_band: String,
    pub eligible: bool,
    pub top_reasons: Vec<String>,
    pub model_name: String,
    pub model_version: i32,
    pub as_of_date: String,
}

/// A trained model and its scorers' metrics on each split, beside the P(alive) baseline.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ChurnModel {
    pub model_name: String,
    pub version: i32,
    pub target: String,
    pub classifier: String,
    pub features: Vec<String>,
    pub weights: Option<Vec<f64>>,
    pub threshold: f64,
    pub label_days: i32,
    pub as_of_date: String,
    pub trained_at: String,
    pub metrics: Vec<serde_json::Value>,
}

/// Customers per risk band.
#[utoipa::path(get, path = "/churn/summary", tag = "churn",
    responses((status = 200, body = [RiskBand])), security(("bearer" = [])))]
pub async fn summary(
    State(s): State<AppState>,
    Caller(role): Caller,
) -> Result<Response, ApiError> {
    let sql = format!("SELECT * FROM {}.churn_summary()", s.db.schema());
    Ok(json(s.db.rows(&role, &sql, &[]).await?))
}

const SORT: &[&str] = &["user_id", "probability"];
const BANDS: &[&str] = &["critical", "high", "medium", "low"];

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ScoresQuery {
    /// Probability at least this, 0 to 1 (default 0.6).
    pub threshold: Option<f64>,
    /// critical, high, medium or low.
    pub band: Option<String>,
    /// Also customers no longer eligible (lapsed beyond the active window).
    pub include_lapsed: Option<bool>,
    /// `probability[.asc|.desc]` or `user_id`; default probability.desc.
    pub order: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

/// Customers at risk, every one scored (not the first few hundred), with reasons; paged.
#[utoipa::path(get, path = "/churn/high-risk", tag = "churn", params(ScoresQuery),
    responses((status = 200, body = [ChurnScore], headers(("Content-Range" = String))), (status = 400, body = ApiError)),
    security(("bearer" = [])))]
pub async fn high_risk(
    State(s): State<AppState>,
    Caller(role): Caller,
    headers: HeaderMap,
    Params(q): Params<ScoresQuery>,
) -> Result<Response, ApiError> {
    scores(&s, &role, &headers, q, "ml_churn_scores", "risk_band", 0.6).await
}

/// A page of the scores in `table` (whose band column is `band_column`) at or above the
/// threshold (`default_threshold` unless given), filtered, sorted and paged.
async fn scores(
    s: &AppState,
    role: &str,
    headers: &HeaderMap,
    q: ScoresQuery,
    table: &str,
    band_column: &str,
    default_threshold: f64,
) -> Result<Response, ApiError> {
    let page = paging::page(q.limit, q.offset, headers)?;
    let threshold = q.threshold.unwrap_or(default_threshold);
    if !(0.0..=1.0).contains(&threshold) {
        return Err(ApiError::bad_parameter(
            "threshold",
            "must be between 0 and 1",
        ));
    }
    let band = q
        .band
        .as_deref()
        .map(|b| one_of("band", b, BANDS))
        .transpose()?;
    let order = order_by(q.order.as_deref(), "probability.desc", SORT)?;
    let sql = format!(
        "SELECT user_id, probability, {band_column} AS risk_band, eligible, top_reasons, model_name, \
                model_version, as_of_date \
         FROM {}.{table} \
         WHERE probability >= $1 AND ($2::text IS NULL OR {band_column} = $2) AND (eligible OR $3) \
         ORDER BY {order}, user_id",
        s.db.schema()
    );
    let lapsed = q.include_lapsed.unwrap_or(false);
    let (body, n, total) =
        s.db.page(
            role,
            &sql,
            &[&threshold, &band, &lapsed],
            page,
            paging::count(headers),
        )
        .await?;
    Ok(paged(body, page, n, total))
}

/// One customer's stored churn score, with reasons.
#[utoipa::path(get, path = "/churn/customers/{user_id}", tag = "churn", params(("user_id" = i64, Path)),
    responses((status = 200, body = ChurnScore), (status = 404, body = ApiError)), security(("bearer" = [])))]
pub async fn customer(
    State(s): State<AppState>,
    Caller(role): Caller,
    PathParam(user_id): PathParam<i64>,
) -> Result<Response, ApiError> {
    let sql = format!(
        "SELECT user_id, probability, risk_band, eligible, top_reasons, model_name, model_version, as_of_date \
         FROM {}.ml_churn_scores WHERE user_id = $1",
        s.db.schema()
    );
    s.db.row(&role, &sql, &[&user_id])
        .await?
        .map(json)
        .ok_or_else(|| ApiError::not_found(format!("no churn score for user {user_id}")))
}

/// Trained models, each with its scorers' metrics (training and validation splits).
#[utoipa::path(get, path = "/churn/models", tag = "churn",
    responses((status = 200, body = [ChurnModel])), security(("bearer" = [])))]
pub async fn models(State(s): State<AppState>, Caller(role): Caller) -> Result<Response, ApiError> {
    let sql = format!(
        "SELECT m.model_name, m.version, m.target, m.classifier, m.features, m.weights, m.threshold, \
                m.label_days, m.as_of_date, m.trained_at, \
                coalesce((SELECT json_agg(x ORDER BY x.split, x.scorer) FROM {ext}.ml_churn_model_metrics x \
                          WHERE x.model_name = m.model_name), '[]') AS metrics \
         FROM {ext}.ml_churn_models m ORDER BY m.model_name",
        ext = s.db.schema()
    );
    Ok(json(s.db.rows(&role, &sql, &[]).await?))
}

/// Purchase scores of the latest `calculate_all_purchase()`, most likely buyers first.
#[utoipa::path(get, path = "/purchase/scores", tag = "churn", params(ScoresQuery),
    responses((status = 200, body = [ChurnScore], headers(("Content-Range" = String))), (status = 400, body = ApiError)),
    security(("bearer" = [])))]
pub async fn purchase_scores(
    State(s): State<AppState>,
    Caller(role): Caller,
    headers: HeaderMap,
    Params(q): Params<ScoresQuery>,
) -> Result<Response, ApiError> {
    scores(&s, &role, &headers, q, "ml_purchase_scores", "band", 0.0).await
}
