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

/// The server's app on database `db` with no API keys (every request anonymous and refused where
/// a role is needed), and the Telegram webhook `hook` when given.
pub async fn keyless_app(
    db: &str,
    hook: Option<std::sync::Arc<cda_server::notify::webhook::Webhook>>,
) -> axum::Router {
    cda_server::app(cda_server::AppState {
        db: cda_server::db::Db::connect(&conninfo(db), 2, 30_000, 60_000)
            .await
            .unwrap(),
        auth: cda_server::auth::Auth::new(vec![], None),
        jobs: Default::default(),
        sessions: Default::default(),
        pages: Default::default(),
        telegram_webhook: hook,
    })
}
