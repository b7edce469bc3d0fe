//! Recommendations: the trained models, one customer's list (stored by the last
//! `calculate_all_recommendations()`, or live from their current history), similar products, and
//! the evaluation against the baselines. Training and the refresh are jobs (`api::work`).

use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::{Params, PathParam, json};
use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;

/// A trained recommender.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct RecommenderModel {
    pub model_name: String,
    pub algorithm: String,
    pub parameters: serde_json::Value,
    pub as_of_date: String,
    pub customers: i64,
    pub products: i64,
    pub pairs: i64,
    pub lines_left_out: i64,
    pub trained_at: String,
}

/// A recommended product.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Recommendation {
    pub rank: i32,
    pub product_id: i64,
    pub score: f64,
    /// The customer's own products that led to it, most first.
    pub because_of: Vec<i64>,
}

/// A similar product.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct SimilarProduct {
    pub rank: i32,
    pub similar_product_id: i64,
    pub weight: f64,
}

/// One model's metrics in one mode at one k.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct RecommenderMetrics {
    pub model: String,
    /// all (repeat purchases count) or new (products new to the customer).
    pub mode: String,
    pub k: i32,
    pub users: i64,
    pub hit_rate: f64,
    pub precision: f64,
    pub recall: f64,
    pub ndcg: f64,
    pub map: f64,
    pub coverage: f64,
    pub cold_start_buyers: i64,
}

/// Every trained recommender.
#[utoipa::path(get, path = "/recommendations/models", tag = "recommendations",
    responses((status = 200, body = [RecommenderModel])), security(("bearer" = [])))]
pub async fn models(State(s): State<AppState>, Caller(role): Caller) -> Result<Response, ApiError> {
    let sql = format!(
        "SELECT * FROM {}.ml_recommender_models ORDER BY model_name",
        s.db.schema()
    );
    Ok(json(s.db.rows(&role, &sql, &[]).await?))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CustomerQuery {
    /// Score the customer's current history now (needs a role that may read the orders)
    /// instead of reading the stored list.
    pub live: Option<bool>,
    /// Live only: how many (1 to 1000, default 10).
    pub k: Option<i32>,
    /// Live only: the model (default `default`).
    pub model: Option<String>,
    /// Live only: leave out what the customer already bought (default false).
    pub exclude_purchased: Option<bool>,
}

/// One customer's recommendations: the stored list, or live.
#[utoipa::path(get, path = "/recommendations/customers/{user_id}", tag = "recommendations",
    params(("user_id" = i64, Path), CustomerQuery),
    responses((status = 200, body = [Recommendation]), (status = 400, body = ApiError), (status = 404, body = ApiError)),
    security(("bearer" = [])))]
pub async fn customer(
    State(s): State<AppState>,
    Caller(role): Caller,
    PathParam(user_id): PathParam<i64>,
    Params(q): Params<CustomerQuery>,
) -> Result<Response, ApiError> {
    let ext = s.db.schema();
    if q.live.unwrap_or(false) {
        let sql = format!(
            "SELECT * FROM {ext}.recommend($1, coalesce($2::int4, 10), coalesce($3::text, 'default'), \
             coalesce($4::bool, false))"
        );
        return Ok(json(
            s.db.rows(
                &role,
                &sql,
                &[&user_id, &q.k, &q.model, &q.exclude_purchased],
            )
            .await?,
        ));
    }
    if q.k.is_some() || q.model.is_some() || q.exclude_purchased.is_some() {
        return Err(ApiError::bad_parameter(
            "k, model, exclude_purchased",
            "apply to live=true only: the stored list is the refresh's",
        ));
    }
    let sql = format!(
        "SELECT rank, product_id, score, because_of, model_name, as_of_date, computed_at \
         FROM {ext}.ml_user_recommendations WHERE user_id = $1 ORDER BY rank"
    );
    let body = s.db.rows(&role, &sql, &[&user_id]).await?;
    if body == "[]" {
        return Err(ApiError::not_found(format!(
            "no stored recommendations for user {user_id}"
        ))
        .with_hint("An operator runs SELECT * FROM calculate_all_recommendations(); or ask with live=true."));
    }
    Ok(json(body))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SimilarQuery {
    /// 1 to 1000 (default 10).
    pub k: Option<i32>,
    /// The model (default `default`).
    pub model: Option<String>,
}

/// The products most similar to one, in a stored model.
#[utoipa::path(get, path = "/recommendations/products/{product_id}/similar", tag = "recommendations",
    params(("product_id" = i64, Path), SimilarQuery),
    responses((status = 200, body = [SimilarProduct]), (status = 400, body = ApiError), (status = 404, body = ApiError)),
    security(("bearer" = [])))]
pub async fn similar(
    State(s): State<AppState>,
    Caller(role): Caller,
    PathParam(product_id): PathParam<i64>,
    Params(q): Params<SimilarQuery>,
) -> Result<Response, ApiError> {
    let sql = format!(
        "SELECT * FROM {}.similar_products($1, coalesce($2::int4, 10), coalesce($3::text, 'default'))",
        s.db.schema()
    );
    Ok(json(
        s.db.rows(&role, &sql, &[&product_id, &q.k, &q.model])
            .await?,
    ))
}

#[derive(Deserialize, IntoParams, Clone, Default)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EvaluationQuery {
    /// Train before this day, test from it (YYYY-MM-DD).
    pub cutoff: String,
    /// The test window, a PostgreSQL interval (default `90 days`, at most ten years).
    pub horizon: Option<String>,
    /// One k (1 to 1000); default 10 and 20.
    pub k: Option<i32>,
    pub lambda: Option<f64>,
    pub neighbours: Option<i32>,
}

/// The SQL of an evaluation: `$1` cutoff, `$2` horizon, `$3` k, `$4` lambda, `$5` neighbours.
pub fn evaluation_sql(ext: &str) -> String {
    format!(
        "SELECT * FROM {ext}.evaluate_recommenders($1::text::date, coalesce($2::text, '90 days')::interval, \
             CASE WHEN $3::int4 IS NULL THEN '{{10,20}}'::int4[] ELSE ARRAY[$3::int4] END, \
             lambda => coalesce($4::float8, 250), neighbours => coalesce($5::int4, 50))"
    )
}

/// Every recommender trained before `cutoff` and measured after it, the baselines in the same
/// table (reads the orders live: an operator's).
#[utoipa::path(get, path = "/recommendations/evaluation", tag = "recommendations", params(EvaluationQuery),
    responses((status = 200, body = [RecommenderMetrics]), (status = 400, body = ApiError), (status = 403, body = ApiError)),
    security(("bearer" = [])))]
pub async fn evaluation(
    State(s): State<AppState>,
    Caller(role): Caller,
    Params(q): Params<EvaluationQuery>,
) -> Result<Response, ApiError> {
    Ok(json(
        s.db.rows(
            &role,
            &evaluation_sql(s.db.schema()),
            &[&q.cutoff, &q.horizon, &q.k, &q.lambda, &q.neighbours],
        )
        .await?,
    ))
}
