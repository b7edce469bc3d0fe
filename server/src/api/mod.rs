//! The API under `/api/v1`: each endpoint a fixed, parameterised query over the extension's
//! functions, results tables and views, run as the caller's role. Sort keys and metric names are
//! checked against allow-lists before they reach SQL; every other value is a query parameter.

pub mod anomalies;
pub mod churn;
pub mod clusters;
pub mod clv;
pub mod cohorts;
pub mod customers;
pub mod elasticity;
pub mod ltv;
pub mod recommendations;
pub mod rfm;
pub mod settings;
pub mod system;
pub mod work;

use axum::extract::{FromRequestParts, Path, Query};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::paging::{Page, content_range};

/// Query parameters, with a JSON 400 naming what is wrong (an unknown parameter included).
pub struct Params<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Params<T>, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(t)| Params(t))
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_parameter", e.body_text()))
    }
}

/// Path parameters, with a JSON 400 when one does not parse.
pub struct PathParam<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for PathParam<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<PathParam<T>, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(t)| PathParam(t))
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_parameter", e.body_text()))
    }
}

/// A JSON body made by PostgreSQL.
pub fn json(body: String) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// A page of rows with its `Content-Range`.
pub fn paged(body: String, page: Page, returned: usize, total: Option<i64>) -> Response {
    let range = content_range(page, returned, total);
    let mut response = json(body);
    if let Ok(v) = HeaderValue::from_str(&range) {
        response.headers_mut().insert(header::CONTENT_RANGE, v);
    }
    response
}

/// One of `allowed`, or a 400 listing them.
pub fn one_of<'a>(name: &str, value: &str, allowed: &[&'a str]) -> Result<&'a str, ApiError> {
    allowed
        .iter()
        .find(|a| **a == value)
        .copied()
        .ok_or_else(|| {
            ApiError::bad_parameter(name, format!("unknown value {value:?}"))
                .with_hint(format!("One of: {}.", allowed.join(", ")))
        })
}

/// An `order` parameter: `column` or `column.asc` / `column.desc`, the column from `allowed`.
pub fn order_by(value: Option<&str>, default: &str, allowed: &[&str]) -> Result<String, ApiError> {
    let value = value.unwrap_or(default);
    let (column, direction) = match value.rsplit_once('.') {
        Some((c, "asc")) => (c, "ASC"),
        Some((c, "desc")) => (c, "DESC"),
        _ => (value, "ASC"),
    };
    let column = one_of("order", column, allowed)?;
    Ok(format!("{column} {direction} NULLS LAST"))
}
