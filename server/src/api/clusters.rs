//! Clusters: stored K-means models, the latest assignment's sizes, sizes over dates, migration.

use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::{Params, PathParam, json};
use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;

/// A stored K-means model: its features, centroids (standardised and in units), names, the
/// silhouette of each candidate k.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ClusterModel {
    pub model_name: String,
    pub version: i32,
    pub k: i32,
    pub features: Vec<String>,
    pub centroids_in_units: Vec<f64>,
    pub cluster_names: Vec<String>,
    pub snapshot_date: String,
    pub fitted_on_users: i64,
    pub inertia: f64,
    pub candidate_k: Vec<i32>,
    pub candidate_silhouette: Vec<f64>,
    pub k_chosen_by: String,
    pub fitted_at: String,
}

/// Customers per cluster in the latest `calculate_all_clusters()`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ClusterSize {
    pub model_name: String,
    pub cluster: i32,
    pub cluster_name: String,
    pub users: i64,
    pub share: f64,
    pub mean_distance: f64,
    pub as_of_date: String,
}

/// Customers per cluster at each date.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ClusterSizeAt {
    pub snapshot_date: String,
    pub cluster: i32,
    pub cluster_name: String,
    pub users: i64,
    pub share: f64,
}

/// Customers moving between clusters of a model from one date to another.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ClusterMigration {
    pub from_cluster: String,
    pub to_cluster: String,
    pub users: i64,
}

/// Every stored model (the newest version of each name first).
#[utoipa::path(get, path = "/clusters/models", tag = "clusters",
    responses((status = 200, body = [ClusterModel])), security(("bearer" = [])))]
pub async fn models(State(s): State<AppState>, Caller(role): Caller) -> Result<Response, ApiError> {
    let sql = format!(
        "SELECT model_name, version, k, features, centroids_in_units, cluster_names, snapshot_date, \
                fitted_on_users, inertia, candidate_k, candidate_silhouette, k_chosen_by, fitted_at \
         FROM {}.ml_kmeans_models ORDER BY model_name, version DESC",
        s.db.schema()
    );
    Ok(json(s.db.rows(&role, &sql, &[]).await?))
}

/// One model by name (its newest version).
#[utoipa::path(get, path = "/clusters/models/{model_name}", tag = "clusters", params(("model_name" = String, Path)),
    responses((status = 200, body = ClusterModel), (status = 404, body = ApiError)), security(("bearer" = [])))]
pub async fn model(
    State(s): State<AppState>,
    Caller(role): Caller,
    PathParam(name): PathParam<String>,
) -> Result<Response, ApiError> {
    let sql = format!(
        "SELECT model_name, version, k, features, centroids_in_units, cluster_names, snapshot_date, \
                fitted_on_users, inertia, candidate_k, candidate_silhouette, k_chosen_by, fitted_at \
         FROM {}.ml_kmeans_models WHERE model_name = $1 ORDER BY version DESC LIMIT 1",
        s.db.schema()
    );
    s.db.row(&role, &sql, &[&name])
        .await?
        .map(json)
        .ok_or_else(|| ApiError::not_found(format!("no clustering model named {name:?}")))
}

/// Customers per cluster in the latest assignment.
#[utoipa::path(get, path = "/clusters/sizes", tag = "clusters",
    responses((status = 200, body = [ClusterSize])), security(("bearer" = [])))]
pub async fn sizes(State(s): State<AppState>, Caller(role): Caller) -> Result<Response, ApiError> {
    let sql = format!(
        "SELECT model_name, cluster, cluster_name, count(*) AS users, \
                round(count(*)::numeric / sum(count(*)) OVER (), 4) AS share, \
                round(avg(distance)::numeric, 4) AS mean_distance, max(as_of_date) AS as_of_date \
         FROM {}.ml_user_clusters GROUP BY model_name, cluster, cluster_name ORDER BY cluster",
        s.db.schema()
    );
    Ok(json(s.db.rows(&role, &sql, &[]).await?))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OverTimeQuery {
    pub model: String,
    pub from: String,
    pub to: String,
    /// A PostgreSQL interval of at least a day (default `1 month`); at most 1000 dates.
    pub step: Option<String>,
}

/// Customers per cluster of a model at each date from `from` to `to`.
#[utoipa::path(get, path = "/clusters/sizes-over-time", tag = "clusters", params(OverTimeQuery),
    responses((status = 200, body = [ClusterSizeAt]), (status = 400, body = ApiError), (status = 404, body = ApiError)),
    security(("bearer" = [])))]
pub async fn sizes_over_time(
    State(s): State<AppState>,
    Caller(role): Caller,
    Params(q): Params<OverTimeQuery>,
) -> Result<Response, ApiError> {
    let step = q.step.as_deref().unwrap_or("1 month");
    let sql = format!(
        "SELECT * FROM {}.cluster_sizes($1, $2::text::date, $3::text::date, $4::text::interval)",
        s.db.schema()
    );
    Ok(json(
        s.db.rows(&role, &sql, &[&q.model, &q.from, &q.to, &step])
            .await?,
    ))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MigrationQuery {
    pub model: String,
    pub from: String,
    pub to: String,
}

/// How customers moved between a model's clusters from one date to another.
#[utoipa::path(get, path = "/clusters/migration", tag = "clusters", params(MigrationQuery),
    responses((status = 200, body = [ClusterMigration]), (status = 400, body = ApiError), (status = 404, body = ApiError)),
    security(("bearer" = [])))]
pub async fn migration(
    State(s): State<AppState>,
    Caller(role): Caller,
    Params(q): Params<MigrationQuery>,
) -> Result<Response, ApiError> {
    let sql = format!(
        "SELECT * FROM {}.cluster_migration($1, $2::text::date, $3::text::date)",
        s.db.schema()
    );
    Ok(json(
        s.db.rows(&role, &sql, &[&q.model, &q.from, &q.to]).await?,
    ))
}
