//! Anomalies: the latest week's, per week, and one customer's weeks.

use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::{Params, PathParam, json};
use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;

/// An anomalous customer-week with the rules that fired.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Anomaly {
    pub user_id: i64,
    pub week_start: String,
    pub orders: i32,
    pub spend: f64,
    pub anomaly_score: f64,
    pub triggers: Vec<String>,
}

/// A week of `anomaly_summary()`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct AnomalyWeek {
    pub week_start: String,
    pub users_judged: i64,
    pub anomalies: i64,
    pub insufficient_history: i64,
    pub mean_score: Option<f64>,
    pub max_score: Option<f64>,
    pub top_triggers: Vec<String>,
}

/// A customer's stored week.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct CustomerWeek {
    pub week_start: String,
    pub orders: i32,
    pub spend: f64,
    pub anomaly_score: Option<f64>,
    pub is_anomaly: bool,
    pub triggers: Vec<String>,
    pub insufficient_history: bool,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LatestQuery {
    /// Score at least this (default 1).
    pub min_score: Option<f64>,
    /// 1 to 1000 (default 100).
    pub limit: Option<i32>,
}

/// The latest week's anomalies, highest score first.
#[utoipa::path(get, path = "/anomalies/latest", tag = "anomalies", params(LatestQuery),
    responses((status = 200, body = [Anomaly]), (status = 400, body = ApiError)), security(("bearer" = [])))]
pub async fn latest(
    State(s): State<AppState>,
    Caller(role): Caller,
    Params(q): Params<LatestQuery>,
) -> Result<Response, ApiError> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_parameter(
            "limit",
            "must be between 1 and 1000",
        ));
    }
    let min = q.min_score.unwrap_or(1.0);
    let sql = format!("SELECT * FROM {}.latest_anomalies($1, $2)", s.db.schema());
    Ok(json(s.db.rows(&role, &sql, &[&min, &limit]).await?))
}

/// Anomalies per week, with the rules that fired most.
#[utoipa::path(get, path = "/anomalies/weeks", tag = "anomalies",
    responses((status = 200, body = [AnomalyWeek])), security(("bearer" = [])))]
pub async fn weeks(State(s): State<AppState>, Caller(role): Caller) -> Result<Response, ApiError> {
    let sql = format!("SELECT * FROM {}.anomaly_summary()", s.db.schema());
    Ok(json(s.db.rows(&role, &sql, &[]).await?))
}

/// One customer's stored weeks, newest first.
#[utoipa::path(get, path = "/anomalies/customers/{user_id}", tag = "anomalies", params(("user_id" = i64, Path)),
    responses((status = 200, body = [CustomerWeek])), security(("bearer" = [])))]
pub async fn customer(
    State(s): State<AppState>,
    Caller(role): Caller,
    PathParam(user_id): PathParam<i64>,
) -> Result<Response, ApiError> {
    let sql = format!(
        "SELECT week_start, orders, spend, anomaly_score, is_anomaly, triggers, insufficient_history \
         FROM {}.ml_user_anomalies_weekly WHERE user_id = $1 ORDER BY week_start DESC",
        s.db.schema()
    );
    Ok(json(s.db.rows(&role, &sql, &[&user_id]).await?))
}
