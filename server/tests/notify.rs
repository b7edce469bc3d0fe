//! The Telegram notifier against a stand-in Bot API on loopback that records every request and
//! answers as scripted (429 with retry_after, 502, 400, then OK), and a real PostgreSQL with the
//! extension (`CDA_TEST_PG`, as tests/api.rs): every queued message reaches every chat exactly
//! once, the rate limit is waited out, a refusal is reported without the token, a NOTIFY wakes
//! the sender at once, and nothing is sent twice.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use serde_json::{Value, json};

use axum::body::Body;
use axum::http::Request;

use cda_server::db::Db;
use cda_server::notify::webhook::{PATH, Webhook};
use cda_server::notify::{Commands, Notifier, Telegram};

mod common;
use common::{connect, conninfo, keyless_app, respond};

const TOKEN: &str = "123456:stand-in-SECRET-token";
const DB: &str = "cda_notify_test";
const COMMANDS_DB: &str = "cda_notify_commands_test";
const WEBHOOK_DB: &str = "cda_notify_webhook_test";
const WEBHOOK_SECRET: &str = "stand-in_webhook-SECRET";
const ROLE: &str = "cda_notify_operator";

/// What the stand-in saw and will answer next.
#[derive(Default)]
struct StandIn {
    /// (when, path, body) of every request.
    requests: Vec<(Instant, String, Value)>,
    /// Answers to give, first first; then 200 OK.
    script: Vec<(StatusCode, Value)>,
    next_message_id: i64,
    /// The updates getUpdates returns once; then none.
    updates: Vec<Value>,
    /// getUpdates answers 409 (a webhook is set) until deleteWebhook is called.
    webhook_set: bool,
}

type Shared = Arc<Mutex<StandIn>>;

async fn bot_api(
    State(state): State<Shared>,
    Path(path): Path<String>,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    if path.ends_with("/getUpdates") {
        let updates = {
            let mut s = state.lock().unwrap();
            s.requests.push((Instant::now(), path, body.clone()));
            if s.webhook_set {
                return (
                    StatusCode::CONFLICT,
                    Json(
                        json!({"ok": false, "error_code": 409, "description": "Conflict: can't use getUpdates method while webhook is active"}),
                    ),
                );
            }
            std::mem::take(&mut s.updates)
        };
        if updates.is_empty() {
            // A long poll that ends with nothing.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        return (StatusCode::OK, Json(json!({"ok": true, "result": updates})));
    }
    let mut s = state.lock().unwrap();
    s.requests
        .push((Instant::now(), path.clone(), body.clone()));
    if path.ends_with("/setWebhook") || path.ends_with("/deleteWebhook") {
        s.webhook_set = path.ends_with("/setWebhook");
        return (StatusCode::OK, Json(json!({"ok": true, "result": true})));
    }
    // A chat that does not exist is refused, whatever the script says.
    if body["chat_id"] == "33" {
        return (
            StatusCode::BAD_REQUEST,
            Json(
                json!({"ok": false, "error_code": 400, "description": "Bad Request: chat not found"}),
            ),
        );
    }
    if !s.script.is_empty() {
        let (status, answer) = s.script.remove(0);
        return (status, Json(answer));
    }
    s.next_message_id += 1;
    (
        StatusCode::OK,
        Json(
            json!({"ok": true, "result": {"message_id": s.next_message_id, "chat": {"id": body["chat_id"]}}}),
        ),
    )
}

async fn stand_in() -> (String, Shared) {
    let state: Shared = Arc::default();
    let app = axum::Router::new()
        .route("/{*path}", post(bot_api))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, state)
}

async fn setup(name: &str) -> tokio_postgres::Client {
    let admin = connect(&conninfo("postgres")).await;
    // One statement each: DROP and CREATE DATABASE cannot run in a multi-statement batch.
    for sql in [
        format!("DROP DATABASE IF EXISTS {name}"),
        format!("CREATE DATABASE {name}"),
    ] {
        admin.batch_execute(&sql).await.unwrap();
    }
    admin
        .batch_execute(&format!(
            "DO $$ BEGIN
                 IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{ROLE}') THEN CREATE ROLE {ROLE}; END IF;
             END $$;"
        ))
        .await
        .unwrap();
    let db = connect(&conninfo(name)).await;
    db.batch_execute(&format!(
        "SET client_min_messages = warning;
         CREATE EXTENSION cda_analytics;
         SELECT count(*) FROM grant_analytics_access('{ROLE}', 'operator');"
    ))
    .await
    .unwrap();
    db
}

async fn deliveries(db: &tokio_postgres::Client) -> Vec<(i64, String, String)> {
    db.query(
        "SELECT notification_id, recipient, provider_message_id FROM cda_notification_deliveries ORDER BY 1, 2",
        &[],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2)))
    .collect()
}

#[tokio::test]
async fn sends_each_message_to_each_chat_once_through_rate_limits_and_errors() {
    let db = setup(DB).await;
    let (url, state) = stand_in().await;
    db.batch_execute(
        "INSERT INTO cda_notifications (kind, body) VALUES ('digest', 'cda_analytics digest: one'),
                                                           ('digest', 'cda_analytics digest: two')",
    )
    .await
    .unwrap();
    // Telegram first says slow down (retry after 1 s), then fails once on its side.
    state.lock().unwrap().script = vec![
        (
            StatusCode::TOO_MANY_REQUESTS,
            json!({"ok": false, "error_code": 429, "description": "Too Many Requests: retry after 1",
                   "parameters": {"retry_after": 1}}),
        ),
        (
            StatusCode::BAD_GATEWAY,
            json!({"ok": false, "error_code": 502, "description": "Bad Gateway"}),
        ),
    ];
    let server_db = Db::connect(&conninfo(DB), 2, 30_000, 60_000).await.unwrap();
    let notifier = Notifier {
        db: server_db,
        telegram: Telegram::new(&url, TOKEN).unwrap(),
        chats: vec!["11".into(), "22".into(), "33".into()],
        role: ROLE.into(),
        max_age_hours: 48,
        backoff: Duration::from_millis(20),
    };

    let round = notifier.send_pending().await.unwrap();
    assert_eq!(round.delivered, 4, "two messages to two chats: {round:?}");
    // Chat 33 does not exist: refused twice (once per message), reported without the token.
    assert_eq!(round.failed.len(), 2, "{round:?}");
    for (_, chat, why) in &round.failed {
        assert_eq!(chat, "33");
        assert!(
            why.contains("400") && why.contains("chat not found"),
            "{why}"
        );
        assert!(!why.contains("SECRET"), "the token in an error: {why}");
    }
    let got = deliveries(&db).await;
    assert_eq!(got.len(), 4);
    assert!(
        got.iter()
            .all(|(_, chat, id)| chat != "33" && !id.is_empty())
    );
    {
        let s = state.lock().unwrap();
        // 429, then the same message again after at least retry_after; 502, then again.
        let sends: Vec<_> = s
            .requests
            .iter()
            .filter(|(_, path, _)| path == &format!("bot{TOKEN}/sendMessage"))
            .collect();
        assert_eq!(
            sends.len(),
            8,
            "4 accepted, 1 rate-limited, 1 failed, 2 refused"
        );
        assert_eq!(
            sends[0].2, sends[1].2,
            "the rate-limited message is the one sent again"
        );
        assert!(
            sends[1].0 - sends[0].0 >= Duration::from_secs(1),
            "retry_after was not waited out"
        );
        assert_eq!(
            sends[1].2, sends[2].2,
            "the 502'd message is the one sent again"
        );
        // Oldest first, each chat its copy, the text as queued.
        let accepted: Vec<(String, String)> = s
            .requests
            .iter()
            .skip(3)
            .filter(|(_, _, b)| b["chat_id"] != "33")
            .map(|(_, _, b)| {
                (
                    b["chat_id"].as_str().unwrap().to_string(),
                    b["text"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(
            accepted,
            [
                ("22", "cda_analytics digest: one"),
                ("11", "cda_analytics digest: two"),
                ("22", "cda_analytics digest: two")
            ]
            .map(|(a, b)| (a.to_string(), b.to_string()))
        );
    }

    // Nothing new for the chats that got it: only the refused chat is tried again.
    let before = state.lock().unwrap().requests.len();
    let round = notifier.send_pending().await.unwrap();
    assert_eq!(round.delivered, 0);
    assert_eq!(state.lock().unwrap().requests.len(), before + 2);

    // Telegram unreachable: a temporary failure after the retries, no token in the error.
    let unreachable = Notifier {
        db: Db::connect(&conninfo(DB), 1, 30_000, 60_000).await.unwrap(),
        telegram: Telegram::new("http://127.0.0.1:9", TOKEN).unwrap(),
        chats: vec!["44".into()],
        role: ROLE.into(),
        max_age_hours: 48,
        backoff: Duration::from_millis(10),
    };
    let round = unreachable.send_pending().await.unwrap();
    assert_eq!(round.delivered, 0);
    assert_eq!(round.failed.len(), 2);
    assert!(
        round
            .failed
            .iter()
            .all(|(_, _, why)| !why.contains("SECRET"))
    );

    // A NOTIFY wakes the sender at once (the poll is an hour).
    let chats_before = deliveries(&db).await.len();
    tokio::spawn(Arc::new(notifier_for(DB, &url).await).run(
        conninfo(DB),
        Duration::from_secs(3600),
        Commands::Off,
    ));
    // Let the first round (at start) and the LISTEN happen.
    tokio::time::sleep(Duration::from_millis(500)).await;
    db.batch_execute(
        "INSERT INTO cda_notifications (kind, body) VALUES ('digest', 'cda_analytics digest: three');
         SELECT pg_notify('cda_notifications', 'new')",
    )
    .await
    .unwrap();
    let start = Instant::now();
    while deliveries(&db).await.len() < chats_before + 2 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the NOTIFY did not wake the sender"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let got = deliveries(&db).await;
    assert_eq!(got.len(), chats_before + 2);
    let texts: Vec<String> = state
        .lock()
        .unwrap()
        .requests
        .iter()
        .filter_map(|(_, _, b)| b["text"].as_str().map(String::from))
        .filter(|t| t.ends_with("three"))
        .collect();
    assert_eq!(texts.len(), 2, "each chat once");
}

/// Ten customers with one order each, an LTV refresh, and two churn scores (5 critical).
async fn shop(db: &tokio_postgres::Client) {
    db.batch_execute(
        "CREATE TABLE users (user_id bigint PRIMARY KEY, registered_at timestamptz NOT NULL);
         CREATE TABLE orders (order_id bigint PRIMARY KEY, user_id bigint, created_at timestamptz,
                              status text, total_amount numeric(12,2));
         INSERT INTO users SELECT i, '2023-01-01' FROM generate_series(1, 10) i;
         INSERT INTO orders SELECT i, i, '2023-03-01'::timestamptz + i * interval '1 day', 'paid', 10 * i
         FROM generate_series(1, 10) i;
         SET client_min_messages = warning;
         SELECT calculate_all_ltv('2024-06-30');
         INSERT INTO ml_churn_scores (user_id, probability, risk_band, eligible, top_reasons, model_name,
                                      model_version, as_of_date, scored_at)
         VALUES (5, 0.93, 'critical', true, '{}', 'churn', 1, '2024-06-30', now()),
                (6, 0.20, 'low', true, '{}', 'churn', 1, '2024-06-30', now());",
    )
    .await
    .unwrap();
}

/// A notifier for the chats 11 and 22 of database `db`, through the Bot API at `url`.
async fn notifier_for(db: &str, url: &str) -> Notifier {
    Notifier {
        db: Db::connect(&conninfo(db), 2, 30_000, 60_000).await.unwrap(),
        telegram: Telegram::new(url, TOKEN).unwrap(),
        chats: vec!["11".into(), "22".into()],
        role: ROLE.into(),
        max_age_hours: 48,
        backoff: Duration::from_millis(20),
    }
}

/// The replies the stand-in was asked to send, as (chat, text).
fn replies(state: &Shared) -> Vec<(String, String)> {
    state
        .lock()
        .unwrap()
        .requests
        .iter()
        .filter(|(_, path, _)| path.ends_with("/sendMessage"))
        .map(|(_, _, b)| (text_of(&b["chat_id"]), text_of(&b["text"])))
        .collect()
}

#[tokio::test]
async fn answers_commands_from_the_listed_chats_only() {
    let db = setup(COMMANDS_DB).await;
    shop(&db).await;
    let (url, state) = stand_in().await;
    let update = |id: i64, chat: i64, text: &str| json!({"update_id": id, "message": {"message_id": id, "chat": {"id": chat, "type": "private"}, "text": text}});
    state.lock().unwrap().updates = vec![
        update(100, 11, "/summary"),
        update(101, 999, "/summary"),
        update(102, 22, "/customer 5"),
        update(103, 11, "/customer abc"),
        update(104, 11, "/churn@ShopBot"),
        update(105, 11, "/whatever"),
        update(106, 11, "just words"),
    ];
    let notifier = notifier_for(COMMANDS_DB, &url).await;
    tokio::spawn(Arc::new(notifier).run_commands(Duration::from_secs(1)));
    let replies = || replies(&state);
    let start = Instant::now();
    while replies().len() < 5 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "replies: {:?}",
            replies()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The next poll asks for what follows the last update.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got = replies();
    assert_eq!(got.len(), 5, "plain text gets no reply: {got:?}");
    assert!(
        got.iter().all(|(chat, _)| chat != "999"),
        "a chat not on the list was answered"
    );
    assert_eq!(got[0].0, "11");
    assert!(
        got[0]
            .1
            .starts_with("LTV as of 2024-06-30: 10 users, 10 orders counted.")
            && got[0].1.contains("Churn risk: critical 1, low 1."),
        "{}",
        got[0].1
    );
    assert_eq!(got[1].0, "22");
    assert!(
        got[1]
            .1
            .starts_with("Customer 5\nLifetime revenue 50.00 in 1 orders")
            && got[1].1.contains("churn critical (93%)"),
        "{}",
        got[1].1
    );
    assert!(got[2].1.contains("needs a customer id"), "{}", got[2].1);
    assert!(
        got[3].1.starts_with("At high churn risk: 1 customer,")
            && got[3]
                .1
                .contains("5: critical, 93%, lifetime revenue 50.00"),
        "{}",
        got[3].1
    );
    assert!(got[4].1.starts_with("Commands:"), "{}", got[4].1);
    let offsets: Vec<i64> = state
        .lock()
        .unwrap()
        .requests
        .iter()
        .filter(|(_, path, _)| path.ends_with("/getUpdates"))
        .filter_map(|(_, _, b)| b["offset"].as_i64())
        .collect();
    assert_eq!(offsets[0], 0);
    assert!(offsets[1..].iter().all(|o| *o == 107), "{offsets:?}");
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Posts `body` to the webhook with `secret` in Telegram's header; the status and the JSON.
async fn post_update(app: &axum::Router, body: &str, secret: Option<&str>) -> (StatusCode, Value) {
    let mut req = Request::post(PATH).header("content-type", "application/json");
    if let Some(s) = secret {
        req = req.header("X-Telegram-Bot-Api-Secret-Token", s);
    }
    let (status, _, json, _) = respond(app, req.body(Body::from(body.to_string())).unwrap()).await;
    (status, json)
}

#[tokio::test]
async fn answers_commands_by_webhook_and_polls_again_after_one() {
    let db = setup(WEBHOOK_DB).await;
    shop(&db).await;
    let (url, state) = stand_in().await;
    let notifier = Arc::new(notifier_for(WEBHOOK_DB, &url).await);

    // Registering: the public URL, the secret, messages only.
    notifier
        .clone()
        .register_webhook(
            "https://shop.example/telegram/webhook".into(),
            WEBHOOK_SECRET.into(),
        )
        .await;
    let set: Vec<Value> = state
        .lock()
        .unwrap()
        .requests
        .iter()
        .filter(|(_, path, _)| path == &format!("bot{TOKEN}/setWebhook"))
        .map(|(_, _, b)| b.clone())
        .collect();
    assert_eq!(
        set,
        vec![json!({"url": "https://shop.example/telegram/webhook",
                    "secret_token": WEBHOOK_SECRET, "allowed_updates": ["message"]})]
    );

    let server = keyless_app(
        WEBHOOK_DB,
        Some(Arc::new(Webhook {
            notifier: notifier.clone(),
            secret: WEBHOOK_SECRET.into(),
        })),
    )
    .await;
    let update = |id: i64, chat: i64, text: &str| {
        json!({"update_id": id, "message": {"message_id": id, "chat": {"id": chat, "type": "private"}, "text": text}})
            .to_string()
    };

    // Not from Telegram, or not an update: 4xx with a JSON error, and nothing is answered.
    let (status, body) = post_update(&server, &update(1, 11, "/summary"), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["code"], "unauthorized", "{body}");
    let (status, _) = post_update(&server, &update(2, 11, "/summary"), Some("a-guess")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = post_update(&server, "{not json", Some(WEBHOOK_SECRET)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = post_update(&server, r#"{"message": {}}"#, Some(WEBHOOK_SECRET)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    // A server without a webhook has no such endpoint.
    let plain = keyless_app(WEBHOOK_DB, None).await;
    let (status, body) =
        post_update(&plain, &update(3, 11, "/summary"), Some(WEBHOOK_SECRET)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    // From Telegram: accepted at once; only the listed chat's command is answered.
    for (id, chat, text) in [
        (10, 999, "/summary"),
        (11, 11, "/customer 5"),
        (12, 22, "just words"),
    ] {
        let (status, body) =
            post_update(&server, &update(id, chat, text), Some(WEBHOOK_SECRET)).await;
        assert_eq!((status, &body), (StatusCode::OK, &json!({"ok": true})));
    }
    let start = Instant::now();
    while replies(&state).is_empty() {
        assert!(start.elapsed() < Duration::from_secs(10), "no reply");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got = replies(&state);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].0, "11");
    assert!(
        got[0]
            .1
            .starts_with("Customer 5\nLifetime revenue 50.00 in 1 orders"),
        "{}",
        got[0].1
    );

    // Back to polling while the webhook is still set: Telegram answers 409, the poller deletes
    // the webhook and reads the commands.
    state.lock().unwrap().updates = vec![json!({"update_id": 20, "message": {"message_id": 20,
        "chat": {"id": 22, "type": "private"}, "text": "/summary"}})];
    tokio::spawn(notifier.clone().run_commands(Duration::from_secs(1)));
    let start = Instant::now();
    while replies(&state).len() < 2 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no reply by polling after a webhook: {:?}",
            state
                .lock()
                .unwrap()
                .requests
                .iter()
                .map(|(_, p, _)| p.replace(TOKEN, "<token>"))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let paths: Vec<String> = state
        .lock()
        .unwrap()
        .requests
        .iter()
        .map(|(_, p, _)| p.rsplit('/').next().unwrap_or("").to_string())
        .collect();
    let deleted = paths
        .iter()
        .position(|p| p == "deleteWebhook")
        .expect("deleteWebhook");
    assert_eq!(paths[deleted - 1], "getUpdates", "{paths:?}");
    let got = replies(&state);
    assert_eq!(got[1].0, "22");
    assert!(
        got[1].1.starts_with("LTV as of 2024-06-30: 10 users"),
        "{}",
        got[1].1
    );
}
