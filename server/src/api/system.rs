//! Liveness, readiness and the API's own description.

use axum::Json;
use axum::extract::State;
use axum::response::IntoResponse;
use serde::Serialize;

use crate::AppState;
use crate::error::ApiError;

#[derive(Serialize, utoipa::ToSchema)]
pub struct Health {
    pub status: &'static str,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Ready {
    pub status: &'static str,
    /// The version of the extension installed in the database.
    pub extension_version: String,
    /// The version of this server.
    pub server_version: &'static str,
}

/// The process is up.
#[utoipa::path(get, path = "/health", tag = "system", responses((status = 200, body = Health)))]
pub async fn health() -> impl IntoResponse {
    Json(Health { status: "ok" })
}

/// The database answers and the extension is installed at the version of its installed files
/// (503 `extension_missing` or `extension_update_needed` otherwise).
#[utoipa::path(get, path = "/ready", tag = "system",
    responses((status = 200, body = Ready), (status = 503, body = ApiError)))]
pub async fn ready(State(state): State<AppState>) -> Result<Json<Ready>, ApiError> {
    Ok(Json(Ready {
        status: "ready",
        extension_version: state.db.version().await?,
        server_version: env!("CARGO_PKG_VERSION"),
    }))
}
