//! CSV on request: a response that is a JSON array of rows becomes CSV when the request asks for
//! `Accept: text/csv` (as PostgREST does). Values are written as PostgreSQL gave them: numbers
//! with all their digits, text unquoted, NULL as an empty field, arrays and objects as JSON.

use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::value::RawValue;

use crate::error::ApiError;

/// The largest JSON body turned into CSV (1,000 rows of the widest table stay far below it).
const MAX_BODY: usize = 64 << 20;

fn wants_csv(req: &Request) -> bool {
    req.headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|p| p.trim().starts_with("text/csv")))
}

/// The middleware.
pub async fn csv_on_request(req: Request, next: Next) -> Response {
    let csv = wants_csv(&req);
    let response = next.run(req).await;
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !csv || response.status() != StatusCode::OK || !is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_BODY).await else {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            "the answer is too large for CSV",
        )
        .into_response();
    };
    match to_csv(&bytes) {
        Ok(text) => {
            parts.headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            );
            parts.headers.remove(header::CONTENT_LENGTH);
            Response::from_parts(parts, Body::from(text))
        }
        Err(e) => e.into_response(),
    }
}

/// A row as PostgreSQL wrote it: its columns in order, each value's JSON text untouched.
struct Row(Vec<(String, Box<RawValue>)>);

impl<'de> serde::Deserialize<'de> for Row {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Row, D::Error> {
        struct Columns;
        impl<'de> serde::de::Visitor<'de> for Columns {
            type Value = Row;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a row object")
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(self, mut m: M) -> Result<Row, M::Error> {
                let mut columns = Vec::new();
                while let Some(entry) = m.next_entry::<String, Box<RawValue>>()? {
                    columns.push(entry);
                }
                Ok(Row(columns))
            }
        }
        d.deserialize_map(Columns)
    }
}

/// A field's text: a string unquoted, NULL empty, anything else its JSON text as written.
fn field(raw: &RawValue) -> Result<String, serde_json::Error> {
    let text = raw.get();
    match text.as_bytes().first() {
        Some(b'"') => serde_json::from_str::<String>(text),
        _ if text == "null" => Ok(String::new()),
        _ => Ok(text.to_string()),
    }
}

/// A JSON array of objects as CSV, with the first row's columns as the header.
pub fn to_csv(json: &[u8]) -> Result<String, ApiError> {
    let not_a_table = || {
        ApiError::new(
            StatusCode::NOT_ACCEPTABLE,
            "not_a_table",
            "this endpoint does not return a table; ask for application/json",
        )
    };
    let rows: Vec<Row> = serde_json::from_slice(json).map_err(|_| not_a_table())?;
    let mut out = csv::Writer::from_writer(Vec::new());
    let failed = |e: csv::Error| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "csv",
            format!("writing CSV: {e}"),
        )
    };
    if let Some(first) = rows.first() {
        out.write_record(first.0.iter().map(|(k, _)| k.as_str()))
            .map_err(failed)?;
    }
    for row in &rows {
        let fields: Result<Vec<String>, _> = row.0.iter().map(|(_, v)| field(v)).collect();
        out.write_record(fields.map_err(|_| not_a_table())?)
            .map_err(failed)?;
    }
    let bytes = out
        .into_inner()
        .map_err(|e| failed(e.into_error().into()))?;
    String::from_utf8(bytes).map_err(|_| not_a_table())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_become_csv_with_their_digits() {
        let json = br#"[{"user_id":1,"revenue":12345678901234567890.10,"segment":"VIP, \"top\"","tags":["a","b"],"note":null},
                        {"user_id":2,"revenue":0.00,"segment":"New","tags":[],"note":"x"}]"#;
        let csv = to_csv(json).unwrap();
        assert_eq!(
            csv,
            "user_id,revenue,segment,tags,note\n\
             1,12345678901234567890.10,\"VIP, \"\"top\"\"\",\"[\"\"a\"\",\"\"b\"\"]\",\n\
             2,0.00,New,[],x\n"
        );
        assert_eq!(to_csv(b"[]").unwrap(), "");
        assert_eq!(
            to_csv(br#"{"a":1}"#).unwrap_err().status,
            StatusCode::NOT_ACCEPTABLE
        );
    }
}
