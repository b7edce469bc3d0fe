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

mod common;
use common::{connect, conninfo, keyless_app, respond};

const ANALYST_TOKEN: &str = "analyst-token-0123456789";
const OPERATOR_TOKEN: &str = "operator-token-0123456789";
const DB: &str = "cda_server_test";

/// A fresh database with the extension, 500 users and their orders, a refresh, and the roles:
/// cda_api (the server's login, a member of both), cda_api_analyst and cda_api_operator.
async fn setup() -> (tokio_postgres::Client, axum::Router) {
    let admin = connect(&conninfo("postgres")).await;
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
    let sql = connect(&conninfo(DB)).await;
    load_cdnow(&sql).await;
    sql.batch_execute(
        "SET client_min_messages = warning;
         CREATE EXTENSION cda_analytics;
         SELECT calculate_all_ltv('1998-06-30');
         SELECT calculate_all_rfm('1998-06-30');
         SELECT count(*) FROM kmeans_fit('default', '1998-06-30', 4);
         SELECT calculate_all_clusters('default', '1998-06-30');
         SELECT count(*) FROM clv_fit('bg', 'bgnbd', 'week', '1997-09-30');
         SELECT count(*) FROM clv_fit('gg', 'gamma_gamma', 'week', '1997-09-30');
         SELECT calculate_all_clv('bg', 'gg', 12, 0.01, '1997-09-30');
         SELECT count(*) FROM churn_train('churn', as_of => '1998-06-30', snapshot_weeks => 20, btyd_model => 'none');
         SELECT calculate_all_churn('churn', '1998-06-30');
         SELECT count(*) FROM churn_train('purchase_30d', 'purchase', as_of => '1998-06-30', snapshot_weeks => 20, btyd_model => 'none');
         SELECT calculate_all_purchase('purchase_30d', '1998-06-30');
         SELECT calculate_all_anomalies('1998-06-30');
         SELECT count(*) FROM grant_analytics_access('cda_api_analyst', 'analyst');
         SELECT count(*) FROM grant_analytics_access('cda_api_operator', 'operator');
         -- CDNOW has no products: a made-up catalogue of 40, two lines per order, one chosen by
         -- the customer (so that customers repeat and products co-occur) and one by the order.
         CREATE TABLE products (product_id bigint PRIMARY KEY, category text);
         INSERT INTO products SELECT g, 'category ' || g % 5 FROM generate_series(1, 40) g;
         CREATE TABLE order_items (order_id bigint, product_id bigint, quantity int, unit_price numeric(12,2));
         INSERT INTO order_items
             SELECT order_id, user_id % 40 + 1, 1, 9.99 FROM orders
             UNION ALL SELECT order_id, (user_id + order_id) % 40 + 1, 2, 4.50 FROM orders;
         SELECT count(*) FROM train_recommender('default', as_of => '1998-06-30');
         SELECT count(*) FROM calculate_all_recommendations('default', 5, as_of => '1998-06-30');
         GRANT SELECT ON users, orders, order_items, products TO cda_api_operator;",
    )
    .await
    .unwrap();
    let server_conninfo = conninfo(DB).replace("user=postgres", "user=cda_api");
    let db = Db::connect(&server_conninfo, 4, 10_000, 600_000)
        .await
        .unwrap();
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
    (
        sql,
        app(AppState {
            db,
            auth,
            jobs: Default::default(),
            sessions: Default::default(),
            pages: Default::default(),
            telegram_webhook: None,
        }),
    )
}

/// The CDNOW purchases into users and orders, with the demo's own loader (demo/load_cdnow.sql),
/// the file passed as a parameter instead of psql's \\copy.
async fn load_cdnow(sql: &tokio_postgres::Client) {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../demo");
    let loader = std::fs::read_to_string(format!("{root}/load_cdnow.sql")).unwrap();
    let data = std::fs::read_to_string(format!("{root}/cdnow/CDNOW_master.txt")).unwrap();
    let (before, after) = loader
        .split_once("\\set load_cmd")
        .expect("the loader's \\copy step");
    let after =
        &after[after.find(":load_cmd").expect("the loader's :load_cmd") + ":load_cmd".len()..];
    sql.batch_execute(before).await.unwrap();
    sql.execute(
        "INSERT INTO cdnow_raw SELECT unnest(pg_catalog.string_to_array($1, E'\\n'))",
        &[&data],
    )
    .await
    .unwrap();
    sql.batch_execute(after).await.unwrap();
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
    let (status, headers, body, bytes) = respond(app, req.body(Body::empty()).unwrap()).await;
    if body.is_null() {
        panic!("{uri}: not JSON: {}", String::from_utf8_lossy(&bytes));
    }
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
            &format!("SELECT coalesce(json_agg(cda_row), '[]')::text FROM ({query}) cda_row"),
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
    every_capability_answers_as_the_sql_does(&sql, &app).await;
    mistakes_get_a_4xx_and_a_json_error(&app).await;
    the_openapi_document_lists_every_route(&app).await;
    long_work_runs_as_jobs(&sql, &app).await;
    cohorts_answer_as_the_sql_does(&sql, &app).await;
    recommendations_answer_as_the_sql_does(&sql, &app).await;
    elasticity_answers_as_the_sql_does(&sql, &app).await;
    the_dashboard_renders_every_page(&sql, &app).await;
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
    assert_eq!(r.body["extension_version"], env!("CARGO_PKG_VERSION"));

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
        "/api/v1/ltv/users/42?live=true&as_of=1998-06-30",
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
        "/api/v1/ltv/users/42?live=true&as_of=1998-06-30",
        Some(OPERATOR_TOKEN),
        &[],
    )
    .await;
    assert_eq!(live.status, StatusCode::OK);
    assert_eq!(
        live.body["lifetime_revenue"],
        stored.body["lifetime_revenue"]
    );

    // CSV on request: the same rows, the numbers with their digits.
    let mut req = Request::get("/api/v1/ltv/users?order=user_id&limit=3");
    req = req
        .header("authorization", format!("Bearer {ANALYST_TOKEN}"))
        .header("accept", "text/csv");
    let response = app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    assert!(response.headers().contains_key("content-range"));
    let csv = String::from_utf8(
        response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 4, "{csv}");
    assert!(
        lines[0].starts_with("user_id,signup_date,revenue_3m,"),
        "{csv}"
    );
    let revenue: String = sql
        .query_one(
            "SELECT lifetime_revenue::text FROM ml_user_ltv ORDER BY user_id LIMIT 1",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let column = lines[0]
        .split(',')
        .position(|c| c == "lifetime_revenue")
        .unwrap();
    assert_eq!(
        lines[1].split(',').nth(column),
        Some(revenue.as_str()),
        "{csv}"
    );

    // Runs.
    let r = get(app, "/api/v1/ltv/runs", a, &[("prefer", "count=exact")]).await;
    assert_eq!(r.body.as_array().unwrap().len(), 1);
    assert_eq!(r.headers["content-range"], "0-0/1");
}

async fn every_capability_answers_as_the_sql_does(
    sql: &tokio_postgres::Client,
    app: &axum::Router,
) {
    let a = Some(ANALYST_TOKEN);
    let o = Some(OPERATOR_TOKEN);
    // (endpoint, token, the SQL it must equal)
    let cases: &[(&str, Option<&str>, &str)] = &[
        (
            "/api/v1/rfm/segments",
            a,
            "SELECT * FROM rfm_segment_summary()",
        ),
        (
            "/api/v1/rfm/grid",
            a,
            "SELECT r_score, f_score, count(*) AS customers, sum(revenue) AS revenue, round(avg(monetary), 2) AS avg_monetary FROM ml_user_rfm WHERE r_score IS NOT NULL GROUP BY 1, 2 ORDER BY 1 DESC, 2 DESC",
        ),
        (
            "/api/v1/rfm/customers?segment=Champions&order=monetary.desc&limit=7",
            a,
            "SELECT * FROM ml_user_rfm WHERE segment = 'Champions' ORDER BY monetary DESC NULLS LAST, user_id LIMIT 7",
        ),
        (
            "/api/v1/rfm/customers?r_score=5&f_score=4",
            a,
            "SELECT * FROM ml_user_rfm WHERE r_score = 5 AND f_score = 4 ORDER BY revenue DESC NULLS LAST, user_id LIMIT 100",
        ),
        (
            "/api/v1/rfm/migration?from=1998-01-31&to=1998-06-30",
            o,
            "SELECT * FROM rfm_segment_migration('1998-01-31', '1998-06-30')",
        ),
        (
            "/api/v1/rfm/sizes?from=1998-01-31&to=1998-06-30&step=2%20months",
            o,
            "SELECT * FROM rfm_segment_sizes('1998-01-31', '1998-06-30', '2 months')",
        ),
        (
            "/api/v1/clusters/sizes",
            a,
            "SELECT model_name, cluster, cluster_name, count(*) AS users, round(count(*)::numeric / sum(count(*)) OVER (), 4) AS share, round(avg(distance)::numeric, 4) AS mean_distance, max(as_of_date) AS as_of_date FROM ml_user_clusters GROUP BY 1, 2, 3 ORDER BY 2",
        ),
        (
            "/api/v1/clusters/migration?model=default&from=1997-09-30&to=1998-06-30",
            o,
            "SELECT * FROM cluster_migration('default', '1997-09-30', '1998-06-30')",
        ),
        (
            "/api/v1/clusters/sizes-over-time?model=default&from=1997-09-30&to=1998-06-30",
            o,
            "SELECT * FROM cluster_sizes('default', '1997-09-30', '1998-06-30', '1 month')",
        ),
        (
            "/api/v1/clv/holdout?model=bg&holdout_end=1998-06-30&max_frequency=5",
            o,
            "SELECT * FROM clv_holdout_evaluation('bg', '1998-06-30', 5)",
        ),
        (
            "/api/v1/clv/customers?order=probability_alive.asc&limit=9",
            a,
            "SELECT * FROM ml_user_clv ORDER BY probability_alive ASC NULLS LAST, user_id LIMIT 9",
        ),
        (
            "/api/v1/clv/customers/5/purchase-probabilities?model=bg&max_n=4&as_of=1997-09-30",
            o,
            "SELECT * FROM clv_purchase_probabilities('bg', 5, 52, 'week', 4, '1997-09-30')",
        ),
        ("/api/v1/churn/summary", a, "SELECT * FROM churn_summary()"),
        (
            "/api/v1/churn/high-risk?threshold=0.3&limit=10",
            a,
            "SELECT user_id, probability, risk_band, eligible, top_reasons, model_name, model_version, as_of_date FROM ml_churn_scores WHERE probability >= 0.3 AND eligible ORDER BY probability DESC NULLS LAST, user_id LIMIT 10",
        ),
        (
            "/api/v1/anomalies/latest?min_score=0&limit=20",
            a,
            "SELECT * FROM latest_anomalies(0, 20)",
        ),
        (
            "/api/v1/anomalies/weeks",
            a,
            "SELECT * FROM anomaly_summary()",
        ),
        (
            "/api/v1/anomalies/customers/7",
            a,
            "SELECT week_start, orders, spend, anomaly_score, is_anomaly, triggers, insufficient_history FROM ml_user_anomalies_weekly WHERE user_id = 7 ORDER BY week_start DESC",
        ),
        (
            "/api/v1/configuration",
            a,
            "SELECT * FROM cda_configuration()",
        ),
    ];
    for (uri, token, query) in cases {
        let r = get(app, uri, *token, &[]).await;
        assert_eq!(r.status, StatusCode::OK, "{uri}: {}", r.body);
        let want = sql_json(sql, query).await;
        assert_eq!(r.body, want, "{uri}");
        assert!(
            !want.as_array().unwrap().is_empty(),
            "{uri}: the shop gives no rows to compare"
        );
    }
    // Objects: the first row of their SQL.
    for (uri, token, query) in [
        (
            "/api/v1/rfm/customers/3",
            a,
            "SELECT * FROM ml_user_rfm WHERE user_id = 3",
        ),
        (
            "/api/v1/clusters/models/default",
            a,
            "SELECT model_name, version, k, features, centroids_in_units, cluster_names, snapshot_date, fitted_on_users, inertia, candidate_k, candidate_silhouette, k_chosen_by, fitted_at FROM ml_kmeans_models WHERE model_name = 'default' ORDER BY version DESC LIMIT 1",
        ),
        (
            "/api/v1/clv/models/bg",
            a,
            "SELECT model_name, model, time_unit, calibration_end, parameters, std_errors, log_likelihood, customers, distinct_rows, penalizer, iterations, gradient_norm, starts, starts_at_best, fit_ms, fitted_at FROM ml_clv_models WHERE model_name = 'bg'",
        ),
        (
            "/api/v1/clv/customers/5?model=bg&spend_model=gg&as_of=1997-09-30",
            o,
            "SELECT * FROM clv_user('bg', 5, 52, 'week', 'gg', '1997-09-30')",
        ),
        (
            "/api/v1/churn/customers/11",
            a,
            "SELECT user_id, probability, risk_band, eligible, top_reasons, model_name, model_version, as_of_date FROM ml_churn_scores WHERE user_id = 11",
        ),
    ] {
        let r = get(app, uri, token, &[]).await;
        assert_eq!(r.status, StatusCode::OK, "{uri}: {}", r.body);
        assert_eq!(r.body, sql_json(sql, query).await[0], "{uri}");
    }
    let r = get(app, "/api/v1/clv/customers?limit=1", a, &[]).await;
    assert!(
        r.body[0].is_object() && r.body[0]["t"].is_number(),
        "rows are objects: {}",
        r.body
    );
    // Lists of models, and the matrix: one cell per valid (frequency, recency), each equal to
    // clv_predict.
    let r = get(app, "/api/v1/clv/models", a, &[]).await;
    assert_eq!(r.body.as_array().unwrap().len(), 2);
    let r = get(app, "/api/v1/clusters/models", a, &[]).await;
    assert_eq!(r.body[0]["k"], 4);
    let r = get(app, "/api/v1/churn/models", a, &[]).await;
    assert!(!r.body[0]["metrics"].as_array().unwrap().is_empty());
    let r = get(
        app,
        "/api/v1/clv/matrix?model=bg&t=30&max_frequency=5&recency_steps=4&horizon=10",
        a,
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let cells = r.body.as_array().unwrap();
    assert!(cells.len() > 10 && cells.len() <= 6 * 4, "{}", cells.len());
    for c in cells {
        let want = sql_json(
            sql,
            &format!(
                "SELECT * FROM clv_predict('bg', {}, {}, 30, 'week', 10)",
                c["frequency"], c["recency"]
            ),
        )
        .await;
        assert_eq!(c["probability_alive"], want[0]["probability_alive"]);
    }
    // The customer 360 joins them all.
    let r = get(app, "/api/v1/customers/11", a, &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    for part in ["ltv", "rfm", "cluster", "clv", "churn"] {
        assert_eq!(r.body[part]["user_id"], 11, "{part}: {}", r.body);
    }
    assert_eq!(
        r.body["rfm"],
        sql_json(sql, "SELECT * FROM ml_user_rfm WHERE user_id = 11").await[0]
    );
    let r = get(app, "/api/v1/customers/99999", a, &[]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
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
        (
            "/api/v1/rfm/customers?r_score=6",
            Some(StatusCode::BAD_REQUEST),
            "bad_parameter",
        ),
        (
            "/api/v1/rfm/migration?from=1998-01-01",
            Some(StatusCode::BAD_REQUEST),
            "bad_parameter",
        ),
        (
            "/api/v1/rfm/sizes?from=1990-01-01&to=1998-01-01&step=1%20day",
            Some(StatusCode::PAYLOAD_TOO_LARGE),
            "54000",
        ),
        (
            "/api/v1/clv/models/nope",
            Some(StatusCode::NOT_FOUND),
            "not_found",
        ),
        (
            "/api/v1/clv/holdout?model=nope&holdout_end=1998-06-30",
            Some(StatusCode::NOT_FOUND),
            "42704",
        ),
        (
            "/api/v1/clv/matrix?model=bg&max_frequency=500",
            Some(StatusCode::BAD_REQUEST),
            "bad_parameter",
        ),
        (
            "/api/v1/clv/matrix?model=bg&t=NaN",
            Some(StatusCode::BAD_REQUEST),
            "bad_parameter",
        ),
        (
            "/api/v1/churn/high-risk?threshold=2",
            Some(StatusCode::BAD_REQUEST),
            "bad_parameter",
        ),
        (
            "/api/v1/churn/high-risk?band=purple",
            Some(StatusCode::BAD_REQUEST),
            "bad_parameter",
        ),
        (
            "/api/v1/anomalies/latest?limit=0",
            Some(StatusCode::BAD_REQUEST),
            "bad_parameter",
        ),
        (
            "/api/v1/clusters/models/x'%20OR%20'1'='1",
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
    let tested = [
        "/health",
        "/ready",
        "/api/v1/ltv/summary",
        "/api/v1/ltv/users",
        "/api/v1/ltv/users/{user_id}",
        "/api/v1/ltv/distribution",
        "/api/v1/ltv/segments",
        "/api/v1/ltv/insights",
        "/api/v1/ltv/runs",
        "/api/v1/ltv/cohorts",
        "/api/v1/rfm/segments",
        "/api/v1/rfm/grid",
        "/api/v1/rfm/customers",
        "/api/v1/rfm/customers/{user_id}",
        "/api/v1/rfm/migration",
        "/api/v1/rfm/sizes",
        "/api/v1/clusters/models",
        "/api/v1/clusters/models/{model_name}",
        "/api/v1/clusters/sizes",
        "/api/v1/clusters/sizes-over-time",
        "/api/v1/clusters/migration",
        "/api/v1/clv/models",
        "/api/v1/clv/models/{model_name}",
        "/api/v1/clv/holdout",
        "/api/v1/clv/matrix",
        "/api/v1/clv/customers",
        "/api/v1/clv/customers/{user_id}",
        "/api/v1/clv/customers/{user_id}/purchase-probabilities",
        "/api/v1/churn/summary",
        "/api/v1/churn/high-risk",
        "/api/v1/churn/customers/{user_id}",
        "/api/v1/churn/models",
        "/api/v1/purchase/scores",
        "/api/v1/anomalies/latest",
        "/api/v1/anomalies/weeks",
        "/api/v1/anomalies/customers/{user_id}",
        "/api/v1/cohorts/retention",
        "/api/v1/cohorts/summary",
        "/api/v1/recommendations/models",
        "/api/v1/recommendations/customers/{user_id}",
        "/api/v1/recommendations/products/{product_id}/similar",
        "/api/v1/recommendations/evaluation",
        "/api/v1/recommendations/train",
        "/api/v1/recommendations/calculate",
        "/api/v1/elasticity",
        "/api/v1/elasticity/cells",
        "/api/v1/elasticity/scenario",
        "/api/v1/customers/{user_id}",
        "/api/v1/configuration",
        "/api/v1/ltv/calculate",
        "/api/v1/rfm/calculate",
        "/api/v1/clusters/fit",
        "/api/v1/clusters/assign",
        "/api/v1/clv/fit",
        "/api/v1/clv/calculate",
        "/api/v1/churn/train",
        "/api/v1/churn/score",
        "/api/v1/purchase/score",
        "/api/v1/anomalies/calculate",
        "/api/v1/jobs",
        "/api/v1/jobs/{id}",
    ];
    for p in tested {
        assert!(paths.contains_key(p), "{p} missing from the document");
    }
    assert_eq!(
        paths.len(),
        tested.len(),
        "a route this test does not know: {:?}",
        paths.keys().collect::<Vec<_>>()
    );
    // Every operation has a summary and a success response (200, or 202 for a job).
    for (p, item) in paths {
        let ops: Vec<&Value> = ["get", "post"]
            .iter()
            .filter_map(|m| item.get(*m))
            .collect();
        assert!(!ops.is_empty(), "{p} has no operation");
        for op in ops {
            let r = &op["responses"];
            assert!(
                r["200"].is_object() || r["202"].is_object(),
                "{p} has no success response"
            );
            assert!(
                op["summary"].as_str().is_some_and(|s| !s.is_empty()),
                "{p} has no summary"
            );
        }
    }
    // Every schema an endpoint names is in the components.
    let schemas = r.body["components"]["schemas"].as_object().unwrap();
    let text = r.body.to_string();
    for piece in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = &piece[..piece.find('"').unwrap()];
        assert!(
            schemas.contains_key(name),
            "schema {name} is referenced but missing"
        );
    }
    for s in [
        "LtvUser",
        "ApiError",
        "Customer360",
        "ClvModel",
        "ChurnScore",
        "RfmCustomer",
    ] {
        assert!(schemas.contains_key(s), "schema {s} missing");
    }
}

async fn send(
    app: &axum::Router,
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: &str,
) -> Reply {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json");
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let (status, headers, body, _) =
        respond(app, req.body(Body::from(body.to_string())).unwrap()).await;
    Reply {
        status,
        headers,
        body,
    }
}

/// Polls a job until it has finished (at most a minute).
async fn finished(app: &axum::Router, id: &Value, token: Option<&str>) -> Value {
    for _ in 0..600 {
        let r = get(app, &format!("/api/v1/jobs/{id}"), token, &[]).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        if r.body["finished_at"].is_number() {
            return r.body;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("job {id} did not finish within a minute");
}

async fn long_work_runs_as_jobs(sql: &tokio_postgres::Client, app: &axum::Router) {
    let (a, o) = (Some(ANALYST_TOKEN), Some(OPERATOR_TOKEN));
    // A reader cannot start a refresh: refused before anything is queued.
    let r = send(app, "POST", "/api/v1/ltv/calculate", a, "{}").await;
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("42501")),
        "{}",
        r.body
    );
    assert!(
        get(app, "/api/v1/jobs", a, &[])
            .await
            .body
            .as_array()
            .unwrap()
            .is_empty()
    );
    // A body with a field the endpoint does not know, or not JSON: 400.
    let r = send(
        app,
        "POST",
        "/api/v1/ltv/calculate",
        o,
        r#"{"as_of": "1998-05-31", "force": true}"#,
    )
    .await;
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_body"))
    );
    let r = send(app, "POST", "/api/v1/ltv/calculate", o, "as_of=1998-05-31").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // The operator's refresh: 202 with where to follow it, then the result.
    let runs_before: i64 = sql
        .query_one("SELECT count(*) FROM ml_ltv_runs", &[])
        .await
        .unwrap()
        .get(0);
    let r = send(
        app,
        "POST",
        "/api/v1/ltv/calculate",
        o,
        r#"{"as_of": "1998-05-31"}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let id = r.body["id"].clone();
    assert_eq!(r.headers["location"], format!("/api/v1/jobs/{id}").as_str());
    let job = finished(app, &id, o).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["result"], serde_json::json!([{"users": 23570}]));
    let runs_after: i64 = sql
        .query_one("SELECT count(*) FROM ml_ltv_runs", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(runs_after, runs_before + 1);
    // Another role does not see it.
    let r = get(app, &format!("/api/v1/jobs/{id}"), a, &[]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // A fit that fails reports the extension's error, with the status the API would give it.
    let r = send(
        app,
        "POST",
        "/api/v1/clv/fit",
        o,
        r#"{"model_name": "x", "model": "nope"}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let job = finished(app, &r.body["id"], o).await;
    assert_eq!(job["status"], "failed");
    assert_eq!(job["error"]["code"], "22023", "{job}");
    assert_eq!(job["error"]["status"], 400);
    assert!(job["error"]["message"].as_str().unwrap().contains("nope"));

    // Two refreshes of the same kind at once both finish (the extension serialises them), and
    // the other kinds run too.
    let first = send(
        app,
        "POST",
        "/api/v1/rfm/calculate",
        o,
        r#"{"as_of": "1998-05-31"}"#,
    )
    .await;
    let second = send(
        app,
        "POST",
        "/api/v1/rfm/calculate",
        o,
        r#"{"as_of": "1998-06-30"}"#,
    )
    .await;
    let anomalies = send(
        app,
        "POST",
        "/api/v1/anomalies/calculate",
        o,
        r#"{"as_of": "1998-06-30", "weeks": 2}"#,
    )
    .await;
    let assign = send(
        app,
        "POST",
        "/api/v1/clusters/assign",
        o,
        r#"{"as_of": "1998-06-30"}"#,
    )
    .await;
    let score = send(
        app,
        "POST",
        "/api/v1/churn/score",
        o,
        r#"{"as_of": "1998-06-30"}"#,
    )
    .await;
    for r in [&first, &second, &anomalies, &assign, &score] {
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
        let job = finished(app, &r.body["id"], o).await;
        assert_eq!(job["status"], "succeeded", "{job}");
    }
    let as_of: String = sql
        .query_one(
            "SELECT as_of_date::text FROM ml_rfm_runs ORDER BY run_id DESC LIMIT 1",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(as_of == "1998-05-31" || as_of == "1998-06-30");

    // Progress: a refresh that waits for another refresh of the same results (here a session
    // holding the lock a refresh takes) says so and for whom; once the lock is released it
    // runs and succeeds.
    let holder = connect(&conninfo(DB)).await;
    let holder_pid: i32 = holder
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    holder
        .batch_execute("BEGIN; LOCK TABLE ml_user_rfm_rows IN SHARE ROW EXCLUSIVE MODE")
        .await
        .unwrap();
    let r = send(
        app,
        "POST",
        "/api/v1/rfm/calculate",
        o,
        r#"{"as_of": "1998-06-30"}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let id = r.body["id"].clone();
    let mut waiting = Value::Null;
    for _ in 0..100 {
        let job = get(app, &format!("/api/v1/jobs/{id}"), o, &[]).await.body;
        if job["progress"]["phase"] == "waiting for a lock" {
            waiting = job;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(waiting["status"], "running", "{waiting}");
    assert_eq!(
        waiting["progress"]["waiting_for_pids"],
        serde_json::json!([holder_pid]),
        "{waiting}"
    );
    assert!(waiting["progress"]["statement_seconds"].as_f64().unwrap() >= 0.0);
    holder.batch_execute("COMMIT").await.unwrap();
    let job = finished(app, &id, o).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert!(job["progress"].is_null(), "{job}");

    let jobs = get(app, "/api/v1/jobs", o, &[]).await.body;
    assert_eq!(jobs.as_array().unwrap().len(), 8);
}

async fn cohorts_answer_as_the_sql_does(sql: &tokio_postgres::Client, app: &axum::Router) {
    let (a, o) = (Some(ANALYST_TOKEN), Some(OPERATOR_TOKEN));
    for (uri, query) in [
        (
            "/api/v1/cohorts/retention?as_of=1998-06-30",
            "SELECT * FROM cohort_retention(as_of => '1998-06-30') ORDER BY cohort_start, period_number",
        ),
        (
            "/api/v1/cohorts/retention?period=week&max_periods=8&as_of=1997-06-30&retention_type=recurring&cumulative=true",
            "SELECT * FROM cohort_retention('week', 8, '1997-06-30', 'recurring', true) ORDER BY cohort_start, period_number",
        ),
        (
            "/api/v1/cohorts/summary?as_of=1998-06-30&data_start=1997-01-01",
            "SELECT * FROM cohort_retention_summary(as_of => '1998-06-30', data_start => '1997-01-01') ORDER BY period_number",
        ),
        (
            "/api/v1/cohorts/summary?as_of=1998-06-30&include_censored=true",
            "SELECT * FROM cohort_retention_summary(as_of => '1998-06-30', include_censored => true) ORDER BY period_number",
        ),
    ] {
        let r = get(app, uri, o, &[]).await;
        assert_eq!(r.status, StatusCode::OK, "{uri}: {}", r.body);
        let expected = sql_json(sql, query).await;
        assert!(!expected.as_array().unwrap().is_empty(), "{uri}");
        assert_eq!(r.body, expected, "{uri}");
    }
    // Reading the orders live needs a role that may: the analyst may not.
    let r = get(app, "/api/v1/cohorts/retention?as_of=1998-06-30", a, &[]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    // Mistakes.
    for uri in [
        "/api/v1/cohorts/retention?period=year",
        "/api/v1/cohorts/retention?max_periods=1001",
        "/api/v1/cohorts/retention?max_periods=-1",
        "/api/v1/cohorts/retention?retention_type=rolling",
        "/api/v1/cohorts/retention?as_of=1998-13-01",
        "/api/v1/cohorts/retention?as_of=infinity",
        "/api/v1/cohorts/retention?cumulative=maybe",
        "/api/v1/cohorts/summary?data_start=1997-02-30",
        "/api/v1/cohorts/retention?periods=3",
    ] {
        let r = get(app, uri, o, &[]).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{uri}: {}", r.body);
        assert!(r.body["message"].is_string(), "{uri}");
    }
}

async fn recommendations_answer_as_the_sql_does(sql: &tokio_postgres::Client, app: &axum::Router) {
    let (a, o) = (Some(ANALYST_TOKEN), Some(OPERATOR_TOKEN));
    for (uri, token, query) in [
        (
            "/api/v1/recommendations/models",
            a,
            "SELECT * FROM ml_recommender_models ORDER BY model_name",
        ),
        (
            "/api/v1/recommendations/customers/12",
            a,
            "SELECT rank, product_id, score, because_of, model_name, as_of_date, computed_at \
             FROM ml_user_recommendations WHERE user_id = 12 ORDER BY rank",
        ),
        (
            "/api/v1/recommendations/customers/12?live=true&k=7&exclude_purchased=true",
            o,
            "SELECT * FROM recommend(12, 7, 'default', true)",
        ),
        (
            "/api/v1/recommendations/products/3/similar?k=4",
            a,
            "SELECT * FROM similar_products(3, 4)",
        ),
        (
            "/api/v1/recommendations/evaluation?cutoff=1998-01-01&horizon=180%20days&k=20",
            o,
            "SELECT * FROM evaluate_recommenders('1998-01-01', '180 days', '{20}')",
        ),
    ] {
        let r = get(app, uri, token, &[]).await;
        assert_eq!(r.status, StatusCode::OK, "{uri}: {}", r.body);
        let expected = sql_json(sql, query).await;
        assert!(!expected.as_array().unwrap().is_empty(), "{uri}");
        assert_eq!(r.body, expected, "{uri}");
    }
    // Live lists and the evaluation read the orders: not the analyst's.
    for uri in [
        "/api/v1/recommendations/customers/12?live=true",
        "/api/v1/recommendations/evaluation?cutoff=1998-01-01",
    ] {
        let r = get(app, uri, a, &[]).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{uri}: {}", r.body);
    }
    for (uri, status) in [
        (
            "/api/v1/recommendations/customers/12?k=3",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/v1/recommendations/customers/12?live=true&k=0",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/v1/recommendations/customers/12?live=true&model=nope",
            StatusCode::NOT_FOUND,
        ),
        (
            "/api/v1/recommendations/customers/99999999",
            StatusCode::NOT_FOUND,
        ),
        (
            "/api/v1/recommendations/products/3/similar?k=1001",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/v1/recommendations/products/x/similar",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/v1/recommendations/evaluation",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/v1/recommendations/evaluation?cutoff=someday",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/v1/recommendations/evaluation?cutoff=1998-01-01&horizon=0%20days",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/v1/recommendations/evaluation?cutoff=1998-01-01&lambda=-1",
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let r = get(app, uri, o, &[]).await;
        assert_eq!(r.status, status, "{uri}: {}", r.body);
        assert!(r.body["message"].is_string(), "{uri}");
    }
    // Training and the refresh are jobs: an operator's, refused to the analyst.
    let r = send(app, "POST", "/api/v1/recommendations/train", a, "{}").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = send(
        app,
        "POST",
        "/api/v1/recommendations/train",
        o,
        r#"{"model_name": "knn", "algorithm": "item_knn_bm25", "as_of": "1998-06-30", "neighbours": 10}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let job = finished(app, &r.body["id"], o).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["result"][0]["algorithm"], "item_knn_bm25");
    let r = send(
        app,
        "POST",
        "/api/v1/recommendations/calculate",
        o,
        r#"{"model_name": "knn", "k": 3, "as_of": "1998-06-30"}"#,
    )
    .await;
    let job = finished(app, &r.body["id"], o).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let stored = sql_json(
        sql,
        "SELECT count(*) AS n, max(rank) AS k, min(model_name) AS model FROM ml_user_recommendations",
    )
    .await;
    assert_eq!(stored[0]["k"], 3);
    assert_eq!(stored[0]["model"], "knn");
}

async fn elasticity_answers_as_the_sql_does(sql: &tokio_postgres::Client, app: &axum::Router) {
    let (a, o) = (Some(ANALYST_TOKEN), Some(OPERATOR_TOKEN));
    for (uri, token, query) in [
        (
            "/api/v1/elasticity?to=1998-06-30",
            o,
            "SELECT * FROM price_elasticity('category', to_date => '1998-06-30') \
             ORDER BY level, category NULLS FIRST, product_id NULLS FIRST",
        ),
        (
            "/api/v1/elasticity?level=product&period=month&price=average&from=1997-03-01&to=1998-06-30",
            o,
            "SELECT * FROM price_elasticity('product', 'month', 'average', '1997-03-01', '1998-06-30') \
             ORDER BY level, category NULLS FIRST, product_id NULLS FIRST",
        ),
        (
            "/api/v1/elasticity/cells?product_id=3&to=1998-06-30",
            o,
            "SELECT * FROM elasticity_cells(3, to_date => '1998-06-30') ORDER BY product_id, period_start",
        ),
    ] {
        let r = get(app, uri, token, &[]).await;
        assert_eq!(r.status, StatusCode::OK, "{uri}: {}", r.body);
        let expected = sql_json(sql, query).await;
        assert!(!expected.as_array().unwrap().is_empty(), "{uri}");
        assert_eq!(r.body, expected, "{uri}");
    }
    // A scenario is a pure computation: the analyst may.
    let r = get(
        app,
        "/api/v1/elasticity/scenario?beta=-2&ci_low=-2.5&ci_high=-1.5&dp=-0.15",
        a,
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!((r.body["dq"].as_f64().unwrap() - (0.85f64.powf(-2.0) - 1.0)).abs() < 1e-12);
    assert_eq!(r.body["usable"], true);
    let r = get(app, "/api/v1/elasticity?to=1998-06-30", a, &[]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    for uri in [
        "/api/v1/elasticity?level=shop",
        "/api/v1/elasticity?period=day",
        "/api/v1/elasticity?price=list",
        "/api/v1/elasticity?to=1998-02-30",
        "/api/v1/elasticity/cells?period=week",
        "/api/v1/elasticity/cells?product_id=3&category=x",
        "/api/v1/elasticity/scenario?beta=-2&ci_low=-3&ci_high=-1&dp=-1.5",
        "/api/v1/elasticity/scenario?beta=-2",
    ] {
        let r = get(app, uri, o, &[]).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{uri}: {}", r.body);
    }
}

async fn page(
    app: &axum::Router,
    uri: &str,
    cookie: Option<&str>,
) -> (StatusCode, axum::http::HeaderMap, String) {
    let mut req = Request::get(uri);
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    let response = app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8_lossy(&bytes).to_string())
}

async fn the_dashboard_renders_every_page(sql: &tokio_postgres::Client, app: &axum::Router) {
    // Without a session (and no anonymous role), a page sends the browser to the login form.
    let (status, headers, _) = page(app, "/ltv", None).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers["location"], "/login");
    let (status, _, body) = page(app, "/login", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("name=\"token\""));
    // A wrong token is refused; the right one opens a session whose cookie holds no token.
    let login = |token: &str| {
        Request::post("/login")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(format!("token={token}")))
            .unwrap()
    };
    let r = app
        .clone()
        .oneshot(login("not-the-token-at-all"))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = app.clone().oneshot(login(ANALYST_TOKEN)).await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let set_cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"));
    assert!(!set_cookie.contains(ANALYST_TOKEN));
    let cookie = set_cookie.split(';').next().unwrap().to_string();
    let c = Some(cookie.as_str());

    // Every page: HTML, the CSP, Chart.js pinned by its integrity, and its figures.
    let users: i64 = sql
        .query_one("SELECT count(*) FROM ml_user_ltv", &[])
        .await
        .unwrap()
        .get(0);
    let as_of: String = sql
        .query_one(
            "SELECT as_of_date::text FROM ml_ltv_runs ORDER BY run_id DESC LIMIT 1",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    for (uri, must) in [
        ("/", vec!["Overview", "Freshness", "Recommended max CAC"]),
        (
            "/ltv",
            vec![
                "Lifetime value",
                as_of.as_str(),
                "Signup-month cohorts",
                "data-chart=\"histogram\"",
            ],
        ),
        (
            "/ltv?metric=lifetime_revenue&bins=5&segment=VIP&order=user_id.asc&offset=0",
            vec!["VIP", "lifetime_revenue"],
        ),
        ("/runs", vec!["Refresh history", "data-chart=\"durations\""]),
        ("/customers/11", vec!["Customer 11", "Lifetime revenue"]),
        ("/rfm", vec!["RFM segments", "Champions", "heat-"]),
        ("/rfm?r_score=5&f_score=5", vec!["R 5, F 5"]),
        (
            "/clv",
            vec![
                "Predictive CLV",
                "P(alive) by frequency and recency",
                "heat-",
            ],
        ),
        (
            "/clv?model=bg",
            vec!["bg", "Top customers by predicted CLV"],
        ),
        (
            "/churn",
            vec!["Churn risk", "Validation", "logistic", "Confusion matrix"],
        ),
        // The analyst may not read the orders the cohorts are computed from: told so.
        ("/cohorts", vec!["Cohort retention", "class=\"notice\""]),
        (
            "/recommendations",
            vec![
                "Recommendations",
                "because the customer bought",
                "class=\"notice\"",
            ],
        ),
        ("/customers/12", vec!["Recommended next"]),
        ("/elasticity", vec!["Price elasticity", "class=\"notice\""]),
    ] {
        let (status, headers, body) = page(app, uri, c).await;
        assert_eq!(status, StatusCode::OK, "{uri}: {body}");
        assert!(
            headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        assert!(
            headers["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("script-src 'self'")
        );
        assert!(body.contains(cda_server::dashboard::CHART_SRI), "{uri}");
        for m in must {
            assert!(body.contains(m), "{uri} lacks {m:?}");
        }
    }
    let (_, _, body) = page(app, "/ltv", c).await;
    let formatted = {
        let t = users.to_string();
        let mut g = String::new();
        for (i, ch) in t.chars().enumerate() {
            if i > 0 && (t.len() - i).is_multiple_of(3) {
                g.push(',');
            }
            g.push(ch);
        }
        g
    };
    assert!(
        body.contains(&format!("of {users}")) || body.contains(&formatted),
        "the customer count"
    );
    // Mistakes are pages with their status, not 500s.
    for (uri, status) in [
        ("/ltv?bins=0", StatusCode::BAD_REQUEST),
        ("/ltv?metric=x", StatusCode::BAD_REQUEST),
        ("/ltv?offset=abc", StatusCode::BAD_REQUEST),
        ("/customers/99999", StatusCode::NOT_FOUND),
        ("/customers/abc", StatusCode::BAD_REQUEST),
        ("/rfm?r_score=9", StatusCode::BAD_REQUEST),
        ("/clv?model=nope", StatusCode::NOT_FOUND),
        ("/segments?model=nope", StatusCode::NOT_FOUND),
        ("/cohorts?max_periods=0", StatusCode::BAD_REQUEST),
        ("/recommendations?user_id=abc", StatusCode::BAD_REQUEST),
        ("/elasticity?level=shop", StatusCode::BAD_REQUEST),
        ("/cohorts?period=year", StatusCode::BAD_REQUEST),
        ("/cohorts?show=password", StatusCode::BAD_REQUEST),
    ] {
        let (got, _, body) = page(app, uri, c).await;
        assert_eq!(got, status, "{uri}: {body}");
        assert!(body.contains("<h1>"), "{uri}");
    }
    // The assets are served from the binary; the vendored Chart.js is the pinned file.
    for (uri, kind) in [
        ("/static/chart-4.6.1.umd.min.js", "text/javascript"),
        ("/static/dashboard.js", "text/javascript"),
        ("/static/dashboard.css", "text/css"),
    ] {
        let (status, headers, _) = page(app, uri, None).await;
        assert_eq!(status, StatusCode::OK, "{uri}");
        assert_eq!(headers["content-type"], kind);
    }
    use base64::Engine;
    use sha2::Digest;
    let digest = sha2::Sha384::digest(cda_server::dashboard::CHART_JS);
    let sri = format!(
        "sha384-{}",
        base64::engine::general_purpose::STANDARD.encode(digest)
    );
    assert_eq!(sri, cda_server::dashboard::CHART_SRI);
    // The heavy pages are kept until the results change: the second load is the kept page; a
    // refresh (a new run) makes the next one fresh, with the new as-of date. A mistake is never
    // kept.
    let uri = "/rfm?segment=Champions";
    let (_, first, before) = page(app, uri, c).await;
    assert!(first.get("x-cache").is_none());
    let (_, again, kept) = page(app, uri, c).await;
    assert_eq!(again["x-cache"], "hit");
    assert_eq!(before, kept);
    sql.batch_execute("SELECT calculate_all_rfm('1998-04-30')")
        .await
        .unwrap();
    let (_, after, fresh) = page(app, uri, c).await;
    assert!(after.get("x-cache").is_none());
    assert!(fresh.contains("As of 1998-04-30"), "{fresh}");
    sql.batch_execute("SELECT calculate_all_rfm('1998-06-30')")
        .await
        .unwrap();
    for _ in 0..2 {
        let (status, headers, _) = page(app, "/rfm?r_score=9", c).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(headers.get("x-cache").is_none());
    }
    // Logging out ends the session.
    let (status, _, _) = page(app, "/logout", c).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _, _) = page(app, "/ltv", c).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
}

/// `/ready` (the check an orchestrator runs) is a 503 with a JSON error once the extension is
/// dropped under the running server (it refuses to start without it); the update that a new
/// package needs is checked by pg_test/upgrade/upgrade.sh, which has an older catalog to show.
#[tokio::test]
async fn not_ready_without_the_extension() {
    let admin = connect(&conninfo("postgres")).await;
    for sql in [
        "DROP DATABASE IF EXISTS cda_api_no_extension",
        "CREATE DATABASE cda_api_no_extension",
    ] {
        admin.batch_execute(sql).await.unwrap();
    }
    let db = connect(&conninfo("cda_api_no_extension")).await;
    db.batch_execute("SET client_min_messages = warning; CREATE EXTENSION cda_analytics")
        .await
        .unwrap();
    let app = keyless_app("cda_api_no_extension", None).await;
    let r = get(&app, "/ready", None, &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    db.batch_execute("DROP EXTENSION cda_analytics")
        .await
        .unwrap();
    let r = get(&app, "/ready", None, &[]).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
    assert_eq!(r.body["code"], "extension_missing", "{}", r.body);
    assert_eq!(r.body["hint"], "CREATE EXTENSION cda_analytics;");
}
