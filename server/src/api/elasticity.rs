//! Price elasticity: the estimates (`price_elasticity`), the cells behind one
//! (`elasticity_cells`), both read live from the orders (an operator's), and the scenario of a
//! price change (`elasticity_scenario`, a pure function).

use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::{Params, json, one_of};
use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;

/// One estimate.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ElasticityEstimate {
    /// product, category or all.
    pub level: String,
    pub product_id: Option<i64>,
    pub category: Option<String>,
    pub elasticity: Option<f64>,
    pub std_error: Option<f64>,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    pub p_value: Option<f64>,
    pub n_periods: i32,
    pub n_products: i32,
    pub n_orders: i64,
    pub units: f64,
    pub price_levels: i32,
    pub price_min: f64,
    pub price_max: f64,
    pub log_price_sd: f64,
    pub r2_within: Option<f64>,
    pub price_definition: String,
    pub method: String,
    pub se_type: String,
    /// ok, insufficient_data, insufficient_price_variation, not_significant,
    /// implausible_positive, imprecise or extreme: only ok is usable.
    pub reliability: String,
    pub note: String,
}

/// A product in a period with sales.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ElasticityCell {
    pub product_id: i64,
    pub period_start: String,
    pub units: f64,
    pub price: f64,
    pub orders: i64,
}

/// What a price change does.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Scenario {
    pub dq: Option<f64>,
    pub dq_low: Option<f64>,
    pub dq_high: Option<f64>,
    pub drevenue: Option<f64>,
    pub usable: Option<bool>,
    pub reason: Option<String>,
}

pub const LEVELS: &[&str] = &["product", "category", "all"];
pub const PERIODS: &[&str] = &["week", "month"];
pub const PRICES: &[&str] = &["base", "average"];

#[derive(Deserialize, IntoParams, Default, Clone)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EstimateQuery {
    /// product, category (default) or all.
    pub level: Option<String>,
    /// week (default) or month.
    pub period: Option<String>,
    /// base (default) or average.
    pub price: Option<String>,
    /// YYYY-MM-DD.
    pub from: Option<String>,
    /// YYYY-MM-DD, default today.
    pub to: Option<String>,
}

/// The SQL of the estimates: `$1` level, `$2` period, `$3` price, `$4` from, `$5` to.
pub fn estimates_sql(ext: &str) -> String {
    format!(
        "SELECT * FROM {ext}.price_elasticity($1, $2, $3, $4::text::date, $5::text::date) \
         ORDER BY level, category NULLS FIRST, product_id NULLS FIRST"
    )
}

/// Checked arguments of an estimate: level, period, price.
pub fn checked(q: &EstimateQuery) -> Result<(String, String, String), ApiError> {
    Ok((
        one_of("level", q.level.as_deref().unwrap_or("category"), LEVELS)?.to_string(),
        one_of("period", q.period.as_deref().unwrap_or("week"), PERIODS)?.to_string(),
        one_of("price", q.price.as_deref().unwrap_or("base"), PRICES)?.to_string(),
    ))
}

/// Price elasticities per product, per category or over all products.
#[utoipa::path(get, path = "/elasticity", tag = "elasticity", params(EstimateQuery),
    responses((status = 200, body = [ElasticityEstimate]), (status = 400, body = ApiError), (status = 403, body = ApiError)),
    security(("bearer" = [])))]
pub async fn estimates(
    State(s): State<AppState>,
    Caller(role): Caller,
    Params(q): Params<EstimateQuery>,
) -> Result<Response, ApiError> {
    let (level, period, price) = checked(&q)?;
    Ok(json(
        s.db.rows(
            &role,
            &estimates_sql(s.db.schema()),
            &[&level, &period, &price, &q.from, &q.to],
        )
        .await?,
    ))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CellsQuery {
    pub product_id: Option<i64>,
    pub category: Option<String>,
    pub period: Option<String>,
    pub price: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
}

/// The SQL of the cells: `$1` product, `$2` category, `$3` period, `$4` price, `$5` from, `$6` to.
pub fn cells_sql(ext: &str) -> String {
    format!(
        "SELECT * FROM {ext}.elasticity_cells($1, $2, $3, $4, $5::text::date, $6::text::date) \
         ORDER BY product_id, period_start"
    )
}

/// The cells behind an estimate: a product's (or a category's) periods with their units and price.
#[utoipa::path(get, path = "/elasticity/cells", tag = "elasticity", params(CellsQuery),
    responses((status = 200, body = [ElasticityCell]), (status = 400, body = ApiError), (status = 403, body = ApiError)),
    security(("bearer" = [])))]
pub async fn cells(
    State(s): State<AppState>,
    Caller(role): Caller,
    Params(q): Params<CellsQuery>,
) -> Result<Response, ApiError> {
    let period = one_of("period", q.period.as_deref().unwrap_or("week"), PERIODS)?;
    let price = one_of("price", q.price.as_deref().unwrap_or("base"), PRICES)?;
    if q.product_id.is_none() == q.category.is_none() {
        return Err(ApiError::bad_parameter(
            "product_id, category",
            "give exactly one of them",
        ));
    }
    Ok(json(
        s.db.rows(
            &role,
            &cells_sql(s.db.schema()),
            &[&q.product_id, &q.category, &period, &price, &q.from, &q.to],
        )
        .await?,
    ))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ScenarioQuery {
    pub beta: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    /// The price change, as a fraction (-0.1 for -10%), above -1.
    pub dp: f64,
    /// The estimate's reliability (default ok).
    pub reliability: Option<String>,
}

/// What a price change does to units and revenue under an estimate, exactly in the log-log model.
#[utoipa::path(get, path = "/elasticity/scenario", tag = "elasticity", params(ScenarioQuery),
    responses((status = 200, body = Scenario), (status = 400, body = ApiError)), security(("bearer" = [])))]
pub async fn scenario(
    State(s): State<AppState>,
    Caller(role): Caller,
    Params(q): Params<ScenarioQuery>,
) -> Result<Response, ApiError> {
    if !(q.dp > -1.0 && q.dp.is_finite()) {
        return Err(ApiError::bad_parameter("dp", "must be above -1"));
    }
    let sql = format!(
        "SELECT * FROM {}.elasticity_scenario($1, $2, $3, $4, coalesce($5::text, 'ok'))",
        s.db.schema()
    );
    let row =
        s.db.row(
            &role,
            &sql,
            &[&q.beta, &q.ci_low, &q.ci_high, &q.dp, &q.reliability],
        )
        .await?;
    row.map(json)
        .ok_or_else(|| ApiError::not_found("no scenario"))
}
