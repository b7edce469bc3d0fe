//! Starting long work: refreshes, fits and training, each answered 202 with a job; and the jobs.
//! A role that may not execute the function is refused (403) before anything is queued, so a
//! reader cannot start a refresh.

use axum::Json;
use axum::extract::{FromRequest, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use utoipa::ToSchema;

use super::PathParam;
use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::jobs::{Arg, Job};

/// A JSON body, with a JSON 400 naming what is wrong (an unknown field included). An empty body
/// is an empty object.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Body<T>, ApiError> {
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_body", e.body_text()))?;
        let text: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &bytes
        };
        serde_json::from_slice(text)
            .map(Body)
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_body", e.to_string()))
    }
}

/// 202 with the job and where to follow it.
fn accepted(job: Job) -> Response {
    let location = format!("/api/v1/jobs/{}", job.id);
    (
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        Json(job),
    )
        .into_response()
}

/// Checks that `role` may run `signature` and starts `sql` as a job.
async fn start(
    s: &AppState,
    role: String,
    kind: &str,
    signature: &str,
    call: &str,
    args: Vec<Arg>,
) -> Result<Response, ApiError> {
    if !s.db.may_execute(&role, signature).await? {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "42501",
            format!("this role may not run {kind}"),
        )
        .with_hint("An operator role may: grant_analytics_access(role, 'operator')."));
    }
    let sql = format!("SELECT * FROM {}.{call}", s.db.schema());
    Ok(accepted(
        s.jobs.start(s.db.clone(), role, kind, sql, args).await,
    ))
}

fn text(v: Option<String>) -> Arg {
    Box::new(v)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AsOf {
    /// The as-of date (YYYY-MM-DD); default today.
    pub as_of: Option<String>,
}

/// Refreshes the LTV results (`calculate_all_ltv`).
#[utoipa::path(post, path = "/ltv/calculate", tag = "ltv", request_body = AsOf,
    responses((status = 202, body = Job), (status = 403, body = ApiError)), security(("bearer" = [])))]
pub async fn ltv_calculate(
    State(s): State<AppState>,
    Caller(role): Caller,
    Body(b): Body<AsOf>,
) -> Result<Response, ApiError> {
    start(
        &s,
        role,
        "ltv.calculate",
        "calculate_all_ltv(date)",
        "calculate_all_ltv($1::text::date) AS users",
        vec![text(b.as_of)],
    )
    .await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RfmRefresh {
    pub as_of: Option<String>,
    /// total (default) or average.
    pub monetary: Option<String>,
}

/// Refreshes the RFM results (`calculate_all_rfm`).
#[utoipa::path(post, path = "/rfm/calculate", tag = "rfm", request_body = RfmRefresh,
    responses((status = 202, body = Job), (status = 403, body = ApiError)), security(("bearer" = [])))]
pub async fn rfm_calculate(
    State(s): State<AppState>,
    Caller(role): Caller,
    Body(b): Body<RfmRefresh>,
) -> Result<Response, ApiError> {
    start(
        &s,
        role,
        "rfm.calculate",
        "calculate_all_rfm(date, text)",
        "calculate_all_rfm($1::text::date, coalesce($2::text, 'total')) AS customers",
        vec![text(b.as_of), text(b.monetary)],
    )
    .await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClusterFit {
    /// Default `default`.
    pub model_name: Option<String>,
    pub as_of: Option<String>,
    /// 2 to 20; default chosen by silhouette.
    pub k: Option<i32>,
    pub seed: Option<i64>,
}

/// Fits a K-means model (`kmeans_fit`).
#[utoipa::path(post, path = "/clusters/fit", tag = "clusters", request_body = ClusterFit,
    responses((status = 202, body = Job), (status = 403, body = ApiError)), security(("bearer" = [])))]
pub async fn clusters_fit(
    State(s): State<AppState>,
    Caller(role): Caller,
    Body(b): Body<ClusterFit>,
) -> Result<Response, ApiError> {
    start(&s, role, "clusters.fit", "kmeans_fit(text, date, integer, bigint)",
        "kmeans_fit(coalesce($1::text, 'default'), $2::text::date, $3::int4, coalesce($4::int8, 42))",
        vec![text(b.model_name), text(b.as_of), Box::new(b.k), Box::new(b.seed)]).await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClusterAssign {
    pub model_name: Option<String>,
    pub as_of: Option<String>,
}

/// Assigns every customer to a stored model's clusters (`calculate_all_clusters`).
#[utoipa::path(post, path = "/clusters/assign", tag = "clusters", request_body = ClusterAssign,
    responses((status = 202, body = Job), (status = 403, body = ApiError)), security(("bearer" = [])))]
pub async fn clusters_assign(
    State(s): State<AppState>,
    Caller(role): Caller,
    Body(b): Body<ClusterAssign>,
) -> Result<Response, ApiError> {
    start(
        &s,
        role,
        "clusters.assign",
        "calculate_all_clusters(text, date)",
        "calculate_all_clusters(coalesce($1::text, 'default'), $2::text::date) AS customers",
        vec![text(b.model_name), text(b.as_of)],
    )
    .await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClvFit {
    pub model_name: String,
    /// bgnbd, mbgnbd, pareto_nbd or gamma_gamma.
    pub model: String,
    /// day or week (default week).
    pub time_unit: Option<String>,
    pub calibration_end: Option<String>,
    pub penalizer: Option<f64>,
}

/// Fits a CLV model (`clv_fit`).
#[utoipa::path(post, path = "/clv/fit", tag = "clv", request_body = ClvFit,
    responses((status = 202, body = Job), (status = 400, body = ApiError), (status = 403, body = ApiError)),
    security(("bearer" = [])))]
pub async fn clv_fit(
    State(s): State<AppState>,
    Caller(role): Caller,
    Body(b): Body<ClvFit>,
) -> Result<Response, ApiError> {
    start(&s, role, "clv.fit", "clv_fit(text, text, text, date, double precision)",
        "clv_fit($1::text, $2::text, coalesce($3::text, 'week'), $4::text::date, coalesce($5::float8, 0))",
        vec![Box::new(b.model_name), Box::new(b.model), text(b.time_unit), text(b.calibration_end),
             Box::new(b.penalizer)]).await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClvRefresh {
    pub model_name: String,
    pub spend_model: Option<String>,
    pub horizon_months: Option<i32>,
    pub monthly_discount: Option<f64>,
    pub as_of: Option<String>,
}

/// Scores every customer with a fitted model (`calculate_all_clv`).
#[utoipa::path(post, path = "/clv/calculate", tag = "clv", request_body = ClvRefresh,
    responses((status = 202, body = Job), (status = 403, body = ApiError)), security(("bearer" = [])))]
pub async fn clv_calculate(
    State(s): State<AppState>,
    Caller(role): Caller,
    Body(b): Body<ClvRefresh>,
) -> Result<Response, ApiError> {
    start(&s, role, "clv.calculate", "calculate_all_clv(text, text, integer, double precision, date)",
        "calculate_all_clv($1::text, $2::text, coalesce($3::int4, 12), coalesce($4::float8, 0.01), $5::text::date)",
        vec![Box::new(b.model_name), text(b.spend_model), Box::new(b.horizon_months),
             Box::new(b.monthly_discount), text(b.as_of)]).await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChurnTrain {
    pub model_name: Option<String>,
    /// churn (default) or purchase.
    pub target: Option<String>,
    pub as_of: Option<String>,
    pub snapshot_weeks: Option<i32>,
    pub validation_weeks: Option<i32>,
    /// bgnbd (default), pareto_nbd or none.
    pub btyd_model: Option<String>,
}

/// Trains a churn or purchase model (`churn_train`).
#[utoipa::path(post, path = "/churn/train", tag = "churn", request_body = ChurnTrain,
    responses((status = 202, body = Job), (status = 403, body = ApiError)), security(("bearer" = [])))]
pub async fn churn_train(
    State(s): State<AppState>,
    Caller(role): Caller,
    Body(b): Body<ChurnTrain>,
) -> Result<Response, ApiError> {
    start(&s, role, "churn.train",
        "churn_train(text, text, date, integer, integer, integer, integer, integer, text, bigint, bigint)",
        "churn_train(model_name => coalesce($1::text, 'churn'), target => coalesce($2::text, 'churn'), \
         as_of => $3::text::date, snapshot_weeks => coalesce($4::int4, 26), \
         validation_weeks => coalesce($5::int4, 4), btyd_model => coalesce($6::text, 'bgnbd'))",
        vec![text(b.model_name), text(b.target), text(b.as_of), Box::new(b.snapshot_weeks),
             Box::new(b.validation_weeks), text(b.btyd_model)]).await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Score {
    pub model_name: Option<String>,
    pub as_of: Option<String>,
}

/// Scores every customer with a churn model (`calculate_all_churn`).
#[utoipa::path(post, path = "/churn/score", tag = "churn", request_body = Score,
    responses((status = 202, body = Job), (status = 403, body = ApiError)), security(("bearer" = [])))]
pub async fn churn_score(
    State(s): State<AppState>,
    Caller(role): Caller,
    Body(b): Body<Score>,
) -> Result<Response, ApiError> {
    start(
        &s,
        role,
        "churn.score",
        "calculate_all_churn(text, date)",
        "calculate_all_churn(coalesce($1::text, 'churn'), $2::text::date)",
        vec![text(b.model_name), text(b.as_of)],
    )
    .await
}

/// Scores every customer with a purchase model (`calculate_all_purchase`).
#[utoipa::path(post, path = "/purchase/score", tag = "churn", request_body = Score,
    responses((status = 202, body = Job), (status = 403, body = ApiError)), security(("bearer" = [])))]
pub async fn purchase_score(
    State(s): State<AppState>,
    Caller(role): Caller,
    Body(b): Body<Score>,
) -> Result<Response, ApiError> {
    start(
        &s,
        role,
        "purchase.score",
        "calculate_all_purchase(text, date)",
        "calculate_all_purchase(coalesce($1::text, 'purchase'), $2::text::date)",
        vec![text(b.model_name), text(b.as_of)],
    )
    .await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnomalyRefresh {
    pub as_of: Option<String>,
    /// Weeks to judge, 1 to 52 (default 1).
    pub weeks: Option<i32>,
}

/// Refreshes the weekly anomalies (`calculate_all_anomalies`).
#[utoipa::path(post, path = "/anomalies/calculate", tag = "anomalies", request_body = AnomalyRefresh,
    responses((status = 202, body = Job), (status = 403, body = ApiError)), security(("bearer" = [])))]
pub async fn anomalies_calculate(
    State(s): State<AppState>,
    Caller(role): Caller,
    Body(b): Body<AnomalyRefresh>,
) -> Result<Response, ApiError> {
    start(&s, role, "anomalies.calculate",
        "calculate_all_anomalies(date, integer, integer, double precision, double precision, double precision, integer, boolean)",
        "calculate_all_anomalies($1::text::date, coalesce($2::int4, 1))",
        vec![text(b.as_of), Box::new(b.weeks)]).await
}

/// A job started by this role: queued, running, succeeded (with the result) or failed (with the
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecommenderTrain {
    /// Default `default`.
    pub model_name: Option<String>,
    /// popularity, popularity_all, buy_again, item_knn_cosine, item_knn_bm25, ease or default.
    pub algorithm: Option<String>,
    pub as_of: Option<String>,
    pub lambda: Option<f64>,
    pub neighbours: Option<i32>,
    pub hybrid_weight: Option<f64>,
    pub popularity_days: Option<i32>,
}

/// Trains and stores a recommender (`train_recommender`).
#[utoipa::path(post, path = "/recommendations/train", tag = "recommendations", request_body = RecommenderTrain,
    responses((status = 202, body = Job), (status = 403, body = ApiError)), security(("bearer" = [])))]
pub async fn recommendations_train(
    State(s): State<AppState>,
    Caller(role): Caller,
    Body(b): Body<RecommenderTrain>,
) -> Result<Response, ApiError> {
    start(&s, role, "recommendations.train",
        "train_recommender(text, text, date, double precision, integer, double precision, integer, integer)",
        "train_recommender(coalesce($1::text, 'default'), coalesce($2::text, 'default'), $3::text::date, \
         coalesce($4::float8, 250), coalesce($5::int4, 50), coalesce($6::float8, 0.2), coalesce($7::int4, 30))",
        vec![text(b.model_name), text(b.algorithm), text(b.as_of), Box::new(b.lambda), Box::new(b.neighbours),
             Box::new(b.hybrid_weight), Box::new(b.popularity_days)]).await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecommendationsRefresh {
    pub model_name: Option<String>,
    pub k: Option<i32>,
    pub exclude_purchased: Option<bool>,
    pub as_of: Option<String>,
}

/// Writes every customer's top k (`calculate_all_recommendations`).
#[utoipa::path(post, path = "/recommendations/calculate", tag = "recommendations", request_body = RecommendationsRefresh,
    responses((status = 202, body = Job), (status = 403, body = ApiError)), security(("bearer" = [])))]
pub async fn recommendations_calculate(
    State(s): State<AppState>,
    Caller(role): Caller,
    Body(b): Body<RecommendationsRefresh>,
) -> Result<Response, ApiError> {
    start(
        &s,
        role,
        "recommendations.calculate",
        "calculate_all_recommendations(text, integer, boolean, date)",
        "calculate_all_recommendations(coalesce($1::text, 'default'), coalesce($2::int4, 10), \
         coalesce($3::bool, false), $4::text::date)",
        vec![
            text(b.model_name),
            Box::new(b.k),
            Box::new(b.exclude_purchased),
            text(b.as_of),
        ],
    )
    .await
}

/// error).
#[utoipa::path(get, path = "/jobs/{id}", tag = "jobs", params(("id" = u64, Path)),
    responses((status = 200, body = Job), (status = 404, body = ApiError)), security(("bearer" = [])))]
pub async fn job(
    State(s): State<AppState>,
    Caller(role): Caller,
    PathParam(id): PathParam<u64>,
) -> Result<Json<Job>, ApiError> {
    Ok(Json(s.jobs.get(&s.db, id, &role).await?))
}

/// This role's jobs, newest first.
#[utoipa::path(get, path = "/jobs", tag = "jobs",
    responses((status = 200, body = [Job])), security(("bearer" = [])))]
pub async fn jobs(State(s): State<AppState>, Caller(role): Caller) -> Json<Vec<Job>> {
    Json(s.jobs.list(&role).await)
}
