//! Errors as PostgREST answers them: a JSON body `{code, message, details, hint}` with the HTTP
//! status that fits the SQLSTATE the extension raised. A user's mistake is a 4xx, never a 500;
//! a 500 means a fault of the server or the database, and its body says no more than that.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ApiError {
    #[serde(skip)]
    pub status: StatusCode,
    /// The SQLSTATE for a database error, else a short name (`bad_parameter`, `unauthorized`).
    pub code: String,
    pub message: String,
    pub details: Option<String>,
    pub hint: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code: code.into(),
            message: message.into(),
            details: None,
            hint: None,
        }
    }

    pub fn bad_parameter(name: &str, message: impl std::fmt::Display) -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_parameter",
            format!("{name}: {message}"),
        )
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> ApiError {
        self.hint = Some(hint.into());
        self
    }
}

/// The HTTP status for a SQLSTATE: the class first, then the codes that need their own.
pub fn status_for(sqlstate: &str) -> StatusCode {
    match sqlstate {
        // Unknown model, user or result: what was asked for does not exist.
        "42704" | "P0002" | "02000" => StatusCode::NOT_FOUND,
        "42501" => StatusCode::FORBIDDEN,
        // An undefined role in SET ROLE: the token names a role the database does not have.
        "28000" | "28P01" => StatusCode::UNAUTHORIZED,
        // No results yet, or the source is misconfigured: the request is fine, the state is not.
        "55000" | "55P03" | "42P01" | "42703" | "40001" | "40P01" => StatusCode::CONFLICT,
        "57014" => StatusCode::GATEWAY_TIMEOUT,
        "54000" => StatusCode::PAYLOAD_TOO_LARGE,
        "0A000" => StatusCode::BAD_REQUEST,
        s if s.starts_with("22") => StatusCode::BAD_REQUEST,
        s if s.starts_with("23") => StatusCode::CONFLICT,
        s if s.starts_with("53") || s.starts_with("08") || s.starts_with("57P") => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<tokio_postgres::Error> for ApiError {
    fn from(e: tokio_postgres::Error) -> ApiError {
        match e.as_db_error() {
            Some(db) => {
                let code = db.code().code();
                let status = status_for(code);
                if status == StatusCode::INTERNAL_SERVER_ERROR {
                    // Logged for the operator; the client learns only that it was not its fault.
                    tracing::error!(sqlstate = code, message = db.message(), "database error");
                    return ApiError::new(status, code, "internal error");
                }
                ApiError {
                    status,
                    code: code.to_string(),
                    message: db.message().to_string(),
                    details: db.detail().map(str::to_string),
                    hint: db.hint().map(str::to_string),
                }
            }
            None => {
                tracing::error!(error = %e, "database connection error");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "database_unavailable",
                    "the database is not reachable",
                )
            }
        }
    }
}

impl From<deadpool_postgres::PoolError> for ApiError {
    fn from(e: deadpool_postgres::PoolError) -> ApiError {
        tracing::error!(error = %e, "no database connection");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "database_unavailable",
            "no database connection is available",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(&self)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_the_sqlstate() {
        assert_eq!(status_for("22023"), StatusCode::BAD_REQUEST);
        assert_eq!(status_for("22004"), StatusCode::BAD_REQUEST);
        assert_eq!(status_for("42704"), StatusCode::NOT_FOUND);
        assert_eq!(status_for("42501"), StatusCode::FORBIDDEN);
        assert_eq!(status_for("55000"), StatusCode::CONFLICT);
        assert_eq!(status_for("57014"), StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(status_for("53200"), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(status_for("XX000"), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
