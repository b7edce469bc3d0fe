//! The configuration in effect.

use axum::extract::State;
use axum::response::Response;
use utoipa::ToSchema;

use super::json;
use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;

/// A setting of `cda_configuration()`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Setting {
    pub setting: String,
    pub value: String,
}

/// The source tables, columns, statuses, time zone and LTV thresholds in effect.
#[utoipa::path(get, path = "/configuration", tag = "configuration",
    responses((status = 200, body = [Setting])), security(("bearer" = [])))]
pub async fn configuration(
    State(s): State<AppState>,
    Caller(role): Caller,
) -> Result<Response, ApiError> {
    let sql = format!("SELECT * FROM {}.cda_configuration()", s.db.schema());
    Ok(json(s.db.rows(&role, &sql, &[]).await?))
}
