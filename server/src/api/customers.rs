//! The customer 360: every result the extension holds for one customer, in one object.

use axum::extract::State;
use axum::response::Response;
use utoipa::ToSchema;

use super::{PathParam, json};
use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;

/// Every stored result for a customer; a part is null when that result was not computed for
/// them (no refresh of it yet, or not scored).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Customer360 {
    pub user_id: i64,
    pub ltv: Option<serde_json::Value>,
    pub rfm: Option<serde_json::Value>,
    pub cluster: Option<serde_json::Value>,
    pub clv: Option<serde_json::Value>,
    pub churn: Option<serde_json::Value>,
    pub purchase: Option<serde_json::Value>,
    /// The customer's anomalous weeks, newest first.
    pub anomalies: Vec<serde_json::Value>,
    /// The products stored for them by the last `calculate_all_recommendations()`, best first.
    pub recommendations: Vec<serde_json::Value>,
}

/// Every stored result for one customer (`$1`), one JSON column each: the API's customer 360
/// and the dashboard's customer page read the same.
pub fn customer_360_sql(ext: &str) -> String {
    format!(
        "SELECT $1::int8 AS user_id, \
           (SELECT row_to_json(cda_row) FROM {ext}.ml_user_ltv cda_row WHERE cda_row.user_id = $1) AS ltv, \
           (SELECT row_to_json(cda_row) FROM {ext}.ml_user_rfm cda_row WHERE cda_row.user_id = $1) AS rfm, \
           (SELECT row_to_json(cda_row) FROM {ext}.ml_user_clusters cda_row WHERE cda_row.user_id = $1) AS cluster, \
           (SELECT row_to_json(cda_row) FROM {ext}.ml_user_clv cda_row WHERE cda_row.user_id = $1) AS clv, \
           (SELECT row_to_json(cda_row) FROM {ext}.ml_churn_scores cda_row WHERE cda_row.user_id = $1) AS churn, \
           (SELECT row_to_json(cda_row) FROM {ext}.ml_purchase_scores cda_row WHERE cda_row.user_id = $1) AS purchase, \
           coalesce((SELECT json_agg(cda_row ORDER BY cda_row.week_start DESC) FROM {ext}.ml_user_anomalies_weekly cda_row \
                     WHERE cda_row.user_id = $1 AND cda_row.is_anomaly), '[]') AS anomalies, \
           coalesce((SELECT json_agg(cda_row ORDER BY cda_row.rank) FROM {ext}.ml_user_recommendations cda_row \
                     WHERE cda_row.user_id = $1), '[]') AS recommendations"
    )
}

/// Whether a row of [`customer_360_sql`] holds any result: a customer with none is not known
/// (404), for the API and the dashboard alike.
pub fn has_results(v: &serde_json::Value) -> bool {
    ["ltv", "rfm", "cluster", "clv", "churn", "purchase"]
        .iter()
        .any(|k| !v[*k].is_null())
        || ["anomalies", "recommendations"]
            .iter()
            .any(|k| v[*k].as_array().is_some_and(|a| !a.is_empty()))
}

/// One customer, every result joined.
#[utoipa::path(get, path = "/customers/{user_id}", tag = "customers", params(("user_id" = i64, Path)),
    responses((status = 200, body = Customer360), (status = 404, body = ApiError)), security(("bearer" = [])))]
pub async fn customer(
    State(s): State<AppState>,
    Caller(role): Caller,
    PathParam(user_id): PathParam<i64>,
) -> Result<Response, ApiError> {
    let sql = customer_360_sql(s.db.schema());
    let body =
        s.db.row(&role, &sql, &[&user_id])
            .await?
            .unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    if !has_results(&v) {
        return Err(ApiError::not_found(format!(
            "no results for user {user_id}"
        )));
    }
    Ok(json(body))
}
