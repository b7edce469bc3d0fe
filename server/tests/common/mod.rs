//! What the integration tests share: the test cluster's connection string and a connection.

/// A libpq connection string for database `db` of the test cluster (`CDA_TEST_PG`, which
/// scripts/test.sh sets, names a superuser of it).
pub fn conninfo(db: &str) -> String {
    let base = std::env::var("CDA_TEST_PG")
        .expect("CDA_TEST_PG must name the test cluster (scripts/test.sh sets it)");
    format!("{base} dbname={db}")
}

/// A connection to `conninfo`, driven on the test's runtime.
pub async fn connect(conninfo: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(conninfo, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("connecting to {conninfo}: {e}"));
    tokio::spawn(conn);
    client
}

/// Sends `req` to `app`; the status, the headers and the body as JSON (Null when it is not JSON).
pub async fn respond(
    app: &axum::Router,
    req: axum::http::Request<axum::body::Body>,
) -> (
    axum::http::StatusCode,
    axum::http::HeaderMap,
    serde_json::Value,
    Vec<u8>,
) {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let response = app.clone().oneshot(req).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    (status, headers, json, bytes.to_vec())
}
