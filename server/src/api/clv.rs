//! Predictive CLV: fitted models, holdout evaluation, the frequency x recency matrices of
//! lifetimes' plots, scored customers, one customer, purchase probabilities.

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

/// A fitted model of `ml_clv_models`: parameters with standard errors and how the fit went.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ClvModel {
    pub model_name: String,
    pub model: String,
    pub time_unit: String,
    pub calibration_end: String,
    /// Parameter name to estimate.
    pub parameters: serde_json::Value,
    /// Parameter name to standard error.
    pub std_errors: serde_json::Value,
    pub log_likelihood: f64,
    pub customers: i64,
    pub distinct_rows: i64,
    pub penalizer: f64,
    pub iterations: i32,
    pub gradient_norm: f64,
    pub starts: i32,
    pub starts_at_best: i32,
    pub fit_ms: f64,
    pub fitted_at: String,
}

/// A row of `clv_holdout_evaluation()`: calibration frequency against holdout purchases.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct HoldoutRow {
    pub frequency: String,
    pub customers: i64,
    pub actual_mean: Option<f64>,
    pub predicted_mean: Option<f64>,
    pub actual_total: f64,
    pub predicted_total: f64,
    pub mean_absolute_error: Option<f64>,
    pub rmse: Option<f64>,
}

/// A cell of the frequency x recency matrix.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct MatrixCell {
    pub frequency: i32,
    pub recency: f64,
    pub probability_alive: f64,
    pub expected_purchases: f64,
}

/// A scored customer of `ml_user_clv`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ClvCustomer {
    pub user_id: i64,
    pub frequency: i32,
    pub recency: f64,
    pub t: f64,
    pub monetary_value: Option<f64>,
    pub probability_alive: f64,
    pub expected_purchases: f64,
    pub probability_no_purchase: Option<f64>,
    pub expected_spend: Option<f64>,
    pub clv: Option<f64>,
    pub model_name: String,
    pub spend_model_name: Option<String>,
    pub time_unit: String,
    pub horizon_months: i32,
    pub monthly_discount: f64,
    pub as_of_date: String,
}

/// `clv_user()`: one customer's summary and predictions, now.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ClvPrediction {
    pub frequency: i32,
    pub recency: f64,
    pub t: f64,
    pub time_unit: String,
    pub monetary_value: Option<f64>,
    pub probability_alive: f64,
    pub expected_purchases: f64,
    pub probability_no_purchase: Option<f64>,
    pub expected_spend: Option<f64>,
    pub clv: Option<f64>,
}

/// P(N = n) over the horizon.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct PurchaseProbability {
    pub n: i32,
    pub probability: f64,
}

const MODEL_COLUMNS: &str = "model_name, model, time_unit, calibration_end, parameters, std_errors, \
    log_likelihood, customers, distinct_rows, penalizer, iterations, gradient_norm, starts, \
    starts_at_best, fit_ms, fitted_at";

/// Every fitted model.
#[utoipa::path(get, path = "/clv/models", tag = "clv",
    responses((status = 200, body = [ClvModel])), security(("bearer" = [])))]
pub async fn models(State(s): State<AppState>, Caller(role): Caller) -> Result<Response, ApiError> {
    let sql = format!(
        "SELECT {MODEL_COLUMNS} FROM {}.ml_clv_models ORDER BY model_name",
        s.db.schema()
    );
    Ok(json(s.db.rows(&role, &sql, &[]).await?))
}

/// One fitted model.
#[utoipa::path(get, path = "/clv/models/{model_name}", tag = "clv", params(("model_name" = String, Path)),
    responses((status = 200, body = ClvModel), (status = 404, body = ApiError)), security(("bearer" = [])))]
pub async fn model(
    State(s): State<AppState>,
    Caller(role): Caller,
    PathParam(name): PathParam<String>,
) -> Result<Response, ApiError> {
    let sql = format!(
        "SELECT {MODEL_COLUMNS} FROM {}.ml_clv_models WHERE model_name = $1",
        s.db.schema()
    );
    s.db.row(&role, &sql, &[&name])
        .await?
        .map(json)
        .ok_or_else(|| ApiError::not_found(format!("no CLV model named {name:?}")))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HoldoutQuery {
    pub model: String,
    /// The end of the holdout period (YYYY-MM-DD), after the model's calibration end.
    pub holdout_end: String,
    /// The last frequency bin, 1 to 50 (default 7).
    pub max_frequency: Option<i32>,
}

/// Calibration vs holdout: predicted against actual purchases per calibration frequency.
#[utoipa::path(get, path = "/clv/holdout", tag = "clv", params(HoldoutQuery),
    responses((status = 200, body = [HoldoutRow]), (status = 400, body = ApiError), (status = 404, body = ApiError)),
    security(("bearer" = [])))]
pub async fn holdout(
    State(s): State<AppState>,
    Caller(role): Caller,
    Params(q): Params<HoldoutQuery>,
) -> Result<Response, ApiError> {
    let max = q.max_frequency.unwrap_or(7);
    if !(1..=50).contains(&max) {
        return Err(ApiError::bad_parameter(
            "max_frequency",
            format!("must be between 1 and 50, got {max}"),
        ));
    }
    let sql = format!(
        "SELECT * FROM {}.clv_holdout_evaluation($1, $2::text::date, $3)",
        s.db.schema()
    );
    Ok(json(
        s.db.rows(&role, &sql, &[&q.model, &q.holdout_end, &max])
            .await?,
    ))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MatrixQuery {
    pub model: String,
    /// The customers' age T, in the model's time unit (default 52). Cells a history cannot have
    /// (more repeat purchase days than recency holds) are left out.
    pub t: Option<f64>,
    /// Horizon of the expected purchases, in the model's unit (default 52).
    pub horizon: Option<f64>,
    /// Frequencies 0 to this, at most 60 (default 20).
    pub max_frequency: Option<i32>,
    /// Recency steps from 0 to T, 2 to 60 (default 20).
    pub recency_steps: Option<i32>,
}

/// P(alive) and expected purchases on a frequency x recency grid, as lifetimes plots them.
#[utoipa::path(get, path = "/clv/matrix", tag = "clv", params(MatrixQuery),
    responses((status = 200, body = [MatrixCell]), (status = 400, body = ApiError), (status = 404, body = ApiError)),
    security(("bearer" = [])))]
pub async fn matrix(
    State(s): State<AppState>,
    Caller(role): Caller,
    Params(q): Params<MatrixQuery>,
) -> Result<Response, ApiError> {
    let t = q.t.unwrap_or(52.0);
    let horizon = q.horizon.unwrap_or(52.0);
    let max_f = q.max_frequency.unwrap_or(20);
    let steps = q.recency_steps.unwrap_or(20);
    if !(t.is_finite() && t > 0.0 && t <= 5218.0) {
        return Err(ApiError::bad_parameter(
            "t",
            "must be above 0 and at most 100 years",
        ));
    }
    if !(0..=60).contains(&max_f) {
        return Err(ApiError::bad_parameter(
            "max_frequency",
            "must be between 0 and 60",
        ));
    }
    if !(2..=60).contains(&steps) {
        return Err(ApiError::bad_parameter(
            "recency_steps",
            "must be between 2 and 60",
        ));
    }
    let sql = matrix_sql(s.db.schema());
    let body =
        s.db.rows(&role, &sql, &[&q.model, &t, &max_f, &steps, &horizon])
            .await?;
    if body == "[]" {
        return Err(ApiError::not_found(format!(
            "no CLV model named {:?}",
            q.model
        )));
    }
    Ok(json(body))
}

/// The frequency x recency grid of P(alive) and expected purchases: `$1` the model, `$2` the
/// customers' age T, `$3` the last frequency, `$4` the recency steps from 0 to T, `$5` the horizon
/// (T and the horizon in the model's unit). Cells a history cannot have are left out. The
/// dashboard's CLV matrices read the same rows.
pub fn matrix_sql(ext: &str) -> String {
    format!(
        "SELECT f AS frequency, r AS recency, p.probability_alive, p.expected_purchases \
         FROM {ext}.ml_clv_models m, generate_series(0, $3) f, \
              LATERAL (SELECT $2::float8 * i / ($4 - 1) AS r FROM generate_series(0, $4 - 1) i \
                       WHERE (f = 0 AND i = 0) \
                          OR (f > 0 AND i > 0 AND f <= $2::float8 * i / ($4 - 1) \
                                                       * CASE m.time_unit WHEN 'week' THEN 7 ELSE 1 END)) rr, \
              LATERAL {ext}.clv_predict($1, f, r, $2::float8, m.time_unit, $5::float8) p \
         WHERE m.model_name = $1 \
         ORDER BY f, r"
    )
}

const SORT: &[&str] = &[
    "user_id",
    "clv",
    "probability_alive",
    "expected_purchases",
    "expected_spend",
    "frequency",
    "recency",
];

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CustomersQuery {
    /// P(alive) at most this (0 to 1): customers likely lost.
    pub max_probability_alive: Option<f64>,
    /// `column[.asc|.desc]`: user_id, clv, probability_alive, expected_purchases, expected_spend,
    /// frequency, recency. Default clv.desc.
    pub order: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

/// Customers scored by the latest `calculate_all_clv()`.
#[utoipa::path(get, path = "/clv/customers", tag = "clv", params(CustomersQuery),
    responses((status = 200, body = [ClvCustomer], headers(("Content-Range" = String))), (status = 400, body = ApiError)),
    security(("bearer" = [])))]
pub async fn customers(
    State(s): State<AppState>,
    Caller(role): Caller,
    headers: HeaderMap,
    Params(q): Params<CustomersQuery>,
) -> Result<Response, ApiError> {
    let page = paging::page(q.limit, q.offset, &headers)?;
    let order = order_by(q.order.as_deref(), "clv.desc", SORT)?;
    let sql = format!(
        "SELECT * FROM {}.ml_user_clv WHERE ($1::float8 IS NULL OR probability_alive <= $1) \
         ORDER BY {order}, user_id",
        s.db.schema()
    );
    let (body, n, total) =
        s.db.page(
            &role,
            &sql,
            &[&q.max_probability_alive],
            page,
            paging::count(&headers),
        )
        .await?;
    Ok(paged(body, page, n, total))
}

const UNITS: &[&str] = &["day", "week"];

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CustomerQuery {
    pub model: String,
    /// A spend model (Gamma-Gamma) for expected spend and CLV.
    pub spend_model: Option<String>,
    /// Default 52.
    pub horizon: Option<f64>,
    /// day or week (default week).
    pub horizon_unit: Option<String>,
    pub as_of: Option<String>,
}

/// One customer's predictions from their purchases now (reads the shop's tables).
#[utoipa::path(get, path = "/clv/customers/{user_id}", tag = "clv", params(("user_id" = i64, Path), CustomerQuery),
    responses((status = 200, body = ClvPrediction), (status = 400, body = ApiError), (status = 404, body = ApiError)),
    security(("bearer" = [])))]
pub async fn customer(
    State(s): State<AppState>,
    Caller(role): Caller,
    PathParam(user_id): PathParam<i64>,
    Params(q): Params<CustomerQuery>,
) -> Result<Response, ApiError> {
    let unit = one_of(
        "horizon_unit",
        q.horizon_unit.as_deref().unwrap_or("week"),
        UNITS,
    )?;
    let horizon = q.horizon.unwrap_or(52.0);
    let sql = format!(
        "SELECT * FROM {}.clv_user($1::text, $2::int8, $3::float8, $4::text, $5::text, $6::text::date)",
        s.db.schema()
    );
    s.db.row(
        &role,
        &sql,
        &[
            &q.model,
            &user_id,
            &horizon,
            &unit,
            &q.spend_model,
            &q.as_of,
        ],
    )
    .await?
    .map(json)
    .ok_or_else(|| ApiError::not_found(format!("no purchases for user {user_id}")))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ProbabilitiesQuery {
    pub model: String,
    pub horizon: Option<f64>,
    pub horizon_unit: Option<String>,
    /// The largest n, 0 to 100 (default 10).
    pub max_n: Option<i32>,
    pub as_of: Option<String>,
}

/// The probability of exactly n purchases over the horizon, for n = 0 to max_n.
#[utoipa::path(get, path = "/clv/customers/{user_id}/purchase-probabilities", tag = "clv",
    params(("user_id" = i64, Path), ProbabilitiesQuery),
    responses((status = 200, body = [PurchaseProbability]), (status = 400, body = ApiError), (status = 404, body = ApiError)),
    security(("bearer" = [])))]
pub async fn purchase_probabilities(
    State(s): State<AppState>,
    Caller(role): Caller,
    PathParam(user_id): PathParam<i64>,
    Params(q): Params<ProbabilitiesQuery>,
) -> Result<Response, ApiError> {
    let unit = one_of(
        "horizon_unit",
        q.horizon_unit.as_deref().unwrap_or("week"),
        UNITS,
    )?;
    let max_n = q.max_n.unwrap_or(10);
    if !(0..=100).contains(&max_n) {
        return Err(ApiError::bad_parameter(
            "max_n",
            "must be between 0 and 100",
        ));
    }
    let horizon = q.horizon.unwrap_or(52.0);
    let sql = format!(
        "SELECT * FROM {}.clv_purchase_probabilities($1::text, $2::int8, $3::float8, $4::text, $5::int4, $6::text::date)",
        s.db.schema()
    );
    Ok(json(
        s.db.rows(
            &role,
            &sql,
            &[&q.model, &user_id, &horizon, &unit, &max_n, &q.as_of],
        )
        .await?,
    ))
}
