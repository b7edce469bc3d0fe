//! The API against a real PostgreSQL with the extension: every endpoint's status, shape and
//! values against the SQL functions, bad parameters, auth, and injection attempts. Needs
//! `CDA_TEST_PG` (a libpq connection string for a superuser of the test cluster), which
//! scripts/test.sh sets; the test creates its own database, shop and roles.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

use cda_server::{AppState, app, auth::Auth, config::ApiKey, db::Db};

const ANALYST_TOKEN: &str = "analyst-token-0123456789";
const OPERATOR_TOKEN: &str = "operator-token-0123456789";
const DB: &str = "cda_server_test";

fn admin_conninfo(db: &str) -> String {
    let base = std::env::var("CDA_TEST_PG")
        .expect("CDA_TEST_PG must name the test cluster (scripts/test.sh sets it)");
    format!("{base} dbname={db}")
}

async fn connect(conninfo: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(conninfo, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("connecting to {conninfo}: {e}"));
    tokio::spawn(conn);
    client
}

/// A fresh database with the extension, 500 users and their orders, a refresh, and the roles:
/// cda_api (the server's login, a member of both), cda_api_analyst and cda_api_operator.
async fn setup() -> (tokio_postgres::Client, axum::Router) {
    let admin = connect(&admin_conninfo("postgres")).await;
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {DB}"))
        .await
        .unwrap();
    admin
        .batch_execute(&format!("CREATE DATABASE {DB}"))
        .await
        .unwrap();
    admin
        .batch_execute(
            "DO $$ BEGIN
                 IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'cda_api_analyst') THEN
                     CREATE ROLE cda_api_analyst; END IF;
                 IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'cda_api_operator') THEN
                     CREATE ROLE cda_api_operator; END IF;
                 IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'cda_api') THEN
                     CREATE ROLE cda_api LOGIN; END IF;
             END $$;
             GRANT cda_api_analyst, cda_api_operator TO cda_api;",
        )
        .await
        .unwrap();
    let sql = connect(&admin_conninfo(DB)).await;
    sql.batch_execute(
        "CREATE EXTENSION cda_analytics;
         CREATE TABLE users (user_id bigint PRIMARY KEY, registered_at timestamptz NOT NULL);
         CREATE TABLE orders (order_id bigint, user_id bigint, created_at timestamptz, status text,
                              total_amount numeric(12,2), currency text);
         INSERT INTO users SELECT i, timestamptz '2023-01-01' + (i % 300) * interval '1 day'
         FROM generate_series(1, 500) i;
         INSERT INTO orders SELECT i, 1 + (i * 37) % 500, timestamptz '2023-02-01' + (i % 500) * interval '1 day',
                CASE WHEN i % 7 = 0 THEN 'cancelled' ELSE 'paid' END, ((i * 13) % 9000) / 100.0 + 0.01, 'USD'
         FROM generate_series(1, 4000) i;
         SET client_min_messages = warning;
         SELECT calculate_all_ltv('2024-06-30');
         SELECT count(*) FROM grant_analytics_access('cda_api_analyst', 'analyst');
         SELECT count(*) FROM grant_analytics_access('cda_api_operator', 'operator');
         GRANT SELECT ON users, orders TO cda_api_operator;",
    )
    .await
    .unwrap();
    let server_conninfo = admin_conninfo(DB).replace("user=postgres", "user=cda_api");
    let db = Db::connect(&server_conninfo, 4, 10_000).await.unwrap();
    let auth = Auth::new(
        vec![
            ApiKey {
                token: ANALYST_TOKEN.into(),
                role: "cda_api_analyst".into(),
            },
            ApiKey {
                token: OPERATOR_TOKEN.into(),
                role: "cda_api_operator".into(),
            },
        ],
        None,
    );
    (sql, app(AppState { db, auth }))
}

struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Value,
}

async fn get(app: &axum::Router, uri: &str, token: Option<&str>, extra: &[(&str, &str)]) -> Reply {
    let mut req = Request::get(uri);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    let response = app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("{uri}: not JSON ({e}): {}", String::from_utf8_lossy(&bytes)));
    Reply {
        status,
        headers,
        body,
    }
}

/// What PostgreSQL says `sql` returns, as JSON, to compare an endpoint with.
async fn sql_json(sql: &tokio_postgres::Client, query: &str) -> Value {
    let text: String = sql
        .query_one(
            &format!("SELECT coalesce(json_agg(t), '[]')::text FROM ({query}) t"),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    serde_json::from_str(&text).unwrap()
}

// One test, one database: the checks run in turn on the same shop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api() {
    let (sql, app) = setup().await;
    the_api_answers_as_the_sql_does(&sql, &app).await;
    mistakes_get_a_4xx_and_a_json_error(&app).await;
    the_openapi_document_lists_every_route(&app).await;
}

async fn the_api_answers_as_the_sql_does(sql: &tokio_postgres::Client, app: &axum::Router) {
    let a = Some(ANALYST_TOKEN);

    // System.
    let r = get(app, "/health", None, &[]).await;
    assert_eq!(
        (r.status, r.body["status"].as_str()),
        (StatusCode::OK, Some("ok"))
    );
    let r = get(app, "/ready", None, &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["extension_version"], "0.1.0");

    // The summary, segments, distribution and insights equal their functions.
    let r = get(app, "/api/v1/ltv/summary", a, &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.body,
        sql_json(sql, "SELECT * FROM get_ltv_summary()").await
    );
    let r = get(app, "/api/v1/ltv/segments", a, &[]).await;
    assert_eq!(r.body, sql_json(sql, "SELECT * FROM ltv_segments()").await);
    let r = get(
        app,
        "/api/v1/ltv/distribution?metric=lifetime_revenue&bins=7",
        a,
        &[],
    )
    .await;
    assert_eq!(
        r.body,
        sql_json(sql, "SELECT * FROM ltv_distribution('lifetime_revenue', 7)").await
    );
    assert_eq!(r.body.as_array().unwrap().len(), 7);
    let r = get(app, "/api/v1/ltv/insights?cac_margin=0.25", a, &[]).await;
    assert_eq!(
        r.body,
        sql_json(sql, "SELECT * FROM get_ltv_insights(0.25)").await[0]
    );

    // Customers: filters, sort and paging against the view; money keeps its digits.
    let r = get(
        app,
        "/api/v1/ltv/users?segment=Medium&order=lifetime_revenue.desc&limit=5&offset=2",
        a,
        &[("prefer", "count=exact")],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let want = sql_json(sql, "SELECT * FROM ml_user_ltv WHERE segment = 'Medium' ORDER BY lifetime_revenue DESC NULLS LAST, user_id LIMIT 5 OFFSET 2").await;
    assert_eq!(r.body, want);
    let total: i64 = sql
        .query_one(
            "SELECT count(*) FROM ml_user_ltv WHERE segment = 'Medium'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(r.headers["content-range"], format!("2-6/{total}").as_str());
    let r = get(
        app,
        "/api/v1/ltv/users?min_revenue=100.5&max_revenue=400&order=user_id",
        a,
        &[("range", "0-9")],
    )
    .await;
    let want = sql_json(sql, "SELECT * FROM ml_user_ltv WHERE lifetime_revenue BETWEEN 100.5 AND 400 ORDER BY user_id LIMIT 10").await;
    assert_eq!(r.body, want);
    assert_eq!(r.headers["content-range"], "0-9/*");
    let text = serde_json::to_string(&r.body[0]["lifetime_revenue"]).unwrap();
    assert!(
        text.contains('.'),
        "money as a decimal with its digits: {text}"
    );

    // One customer, stored and live, equal; an unknown one is a 404.
    let stored = get(app, "/api/v1/ltv/users/42", a, &[]).await;
    assert_eq!(stored.status, StatusCode::OK);
    assert_eq!(stored.body["user_id"], 42);
    let r = get(app, "/api/v1/ltv/users/999999", a, &[]).await;
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    // Live reads the shop's tables: the analyst may not (403), the operator may.
    let r = get(
        app,
        "/api/v1/ltv/users/42?live=true&as_of=2024-06-30",
        a,
        &[],
    )
    .await;
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("42501"))
    );
    let live = get(
        app,
        "/api/v1/ltv/users/42?live=true&as_of=2024-06-30",
        Some(OPERATOR_TOKEN),
        &[],
    )
    .await;
    assert_eq!(live.status, StatusCode::OK);
    assert_eq!(
        live.body["lifetime_revenue"],
        stored.body["lifetime_revenue"]
    );

    // Runs.
    let r = get(app, "/api/v1/ltv/runs", a, &[("prefer", "count=exact")]).await;
    assert_eq!(r.body.as_array().unwrap().len(), 1);
    assert_eq!(r.headers["content-range"], "0-0/1");
}

async fn mistakes_get_a_4xx_and_a_json_error(app: &axum::Router) {
    let a = Some(ANALYST_TOKEN);
    for (uri, status, code) in [
        ("/api/v1/ltv/summary", None, "unauthorized"),
        (
            "/api/v1/ltv/distribution?metric=password&bins=5",
            Some(StatusCode::BAD_REQUEST),
            "bad_parameter",
        ),
        (
            "/api/v1/ltv/distribution?bins=0",
            Some(StatusCode::BAD_REQUEST),
            "bad_parameter",
        ),
        (
            "/api/v1/ltv/distribution?bins=ten",
            Some(StatusCode::BAD_REQUEST),
            "bad_parameter",
        ),
        (
            "/api/v1/ltv/users?order=lifetime_revenue;DROP%20TABLE%20users",
            Some(StatusCode::BAD_REQUEST),
            "bad_parameter",
        ),
        (
            "/api/v1/ltv/users?segment=VIP'%20OR%201=1--",
            Some(StatusCode::BAD_REQUEST),
            "bad_parameter",
        ),
        (
            "/api/v1/ltv/users?min_revenue=1;DELETE%20FROM%20users",
            Some(StatusCode::BAD_REQUEST),
            "22P02",
        ),
        (
            "/api/v1/ltv/users?limit=5000",
            Some(StatusCode::BAD_REQUEST),
            "bad_parameter",
        ),
        (
            "/api/v1/ltv/users?offset=-1",
            Some(StatusCode::BAD_REQUEST),
            "bad_parameter",
        ),
        (
            "/api/v1/ltv/users?colour=red",
            Some(StatusCode::BAD_REQUEST),
            "bad_parameter",
        ),
        (
            "/api/v1/ltv/users/abc",
            Some(StatusCode::BAD_REQUEST),
            "bad_parameter",
        ),
        (
            "/api/v1/ltv/users/1?as_of=2024-01-01",
            Some(StatusCode::BAD_REQUEST),
            "bad_parameter",
        ),
        (
            "/api/v1/ltv/users/1?live=true&as_of=yesterday'--",
            Some(StatusCode::BAD_REQUEST),
            "22007",
        ),
        (
            "/api/v1/ltv/insights?cac_margin=NaN",
            Some(StatusCode::BAD_REQUEST),
            "22023",
        ),
        (
            "/api/v1/ltv/insights?cac_margin=-1",
            Some(StatusCode::BAD_REQUEST),
            "22023",
        ),
        (
            "/api/v1/nothing/here",
            Some(StatusCode::NOT_FOUND),
            "not_found",
        ),
    ] {
        let token = if status.is_none() { None } else { a };
        let r = get(app, uri, token, &[]).await;
        let want = status.unwrap_or(StatusCode::UNAUTHORIZED);
        assert_eq!(r.status, want, "{uri}: {}", r.body);
        assert_eq!(r.body["code"], code, "{uri}: {}", r.body);
        assert!(
            r.body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{uri}"
        );
    }
    // A wrong token is a 401 that does not echo it.
    let r = get(
        app,
        "/api/v1/ltv/summary",
        Some("not-a-valid-token-at-all"),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(!r.body.to_string().contains("not-a-valid"));
    assert_eq!(r.headers["www-authenticate"], "Bearer");
}

async fn the_openapi_document_lists_every_route(app: &axum::Router) {
    let r = get(app, "/openapi.json", None, &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = r.body["paths"].as_object().unwrap();
    for p in [
        "/health",
        "/ready",
        "/api/v1/ltv/summary",
        "/api/v1/ltv/users",
        "/api/v1/ltv/users/{user_id}",
        "/api/v1/ltv/distribution",
        "/api/v1/ltv/segments",
        "/api/v1/ltv/insights",
        "/api/v1/ltv/runs",
    ] {
        assert!(
            paths.contains_key(p),
            "{p} missing from {:?}",
            paths.keys().collect::<Vec<_>>()
        );
    }
    assert_eq!(
        paths.len(),
        9,
        "a route without a test here: {:?}",
        paths.keys().collect::<Vec<_>>()
    );
    // Every schema an endpoint names is in the components.
    let schemas = r.body["components"]["schemas"].as_object().unwrap();
    for s in [
        "LtvUser",
        "LtvSummaryRow",
        "DistributionBin",
        "SegmentRow",
        "Insights",
        "LtvRun",
        "ApiError",
    ] {
        assert!(schemas.contains_key(s), "schema {s} missing");
    }
}
