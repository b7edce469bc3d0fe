//! The `cda-server` binary as an operator runs it: it refuses an unsafe configuration, logs each
//! request with its status and latency, and never logs a token or the database password.
//! Needs `CDA_TEST_PG` and the database that tests/api.rs leaves (it creates it if missing).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

const TOKEN: &str = "binary-test-token-0123456789abcdef";
const BOT_TOKEN: &str = "987654:binary-test-BOT-token";
const WEBHOOK_SECRET: &str = "binary-test-WEBHOOK-secret";

/// Posts a Telegram update for chat 7 to the webhook with `secret` in Telegram's header.
fn post_update(port: u16, secret: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let body =
        r#"{"update_id": 1, "message": {"message_id": 1, "chat": {"id": 7}, "text": "/summary"}}"#;
    write!(
        s,
        "POST /telegram/webhook HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         X-Telegram-Bot-Api-Secret-Token: {secret}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

fn http_get(port: u16, path: &str, token: Option<&str>) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn refuses_to_listen_beyond_loopback_without_keys() {
    let out = Command::new(env!("CARGO_BIN_EXE_cda-server"))
        .env_clear()
        .env("CDA_DATABASE_URL", "host=/nonexistent dbname=x")
        .env("CDA_LISTEN", "0.0.0.0:55499")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("without API keys"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_requests_but_never_secrets() {
    let base = std::env::var("CDA_TEST_PG")
        .expect("CDA_TEST_PG must name the test cluster (scripts/test.sh sets it)");
    let connect = async |db: &str| {
        let (client, conn) =
            tokio_postgres::connect(&format!("{base} dbname={db}"), tokio_postgres::NoTls)
                .await
                .unwrap();
        tokio::spawn(conn);
        client
    };
    // A login with a password, so that there is one to leak.
    let admin = connect("postgres").await;
    for statement in [
        "DROP DATABASE IF EXISTS cda_binary_test",
        "CREATE DATABASE cda_binary_test",
        "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'cda_binary_login') THEN
             CREATE ROLE cda_binary_login LOGIN PASSWORD 'sekrit-password-42'; END IF; END $$",
    ] {
        admin.batch_execute(statement).await.unwrap();
    }
    connect("cda_binary_test")
        .await
        .batch_execute(
            "CREATE EXTENSION cda_analytics;
             SELECT count(*) FROM grant_analytics_access('cda_binary_login', 'analyst');
             INSERT INTO cda_notifications (kind, body) VALUES ('digest', 'a digest for nobody');",
        )
        .await
        .unwrap();
    let port = 55498;
    let url =
        format!("{base} dbname=cda_binary_test user=cda_binary_login password=sekrit-password-42")
            .replace("user=postgres ", "");
    let mut child = Command::new(env!("CARGO_BIN_EXE_cda-server"))
        .env("CDA_DATABASE_URL", &url)
        .env("CDA_LISTEN", format!("127.0.0.1:{port}"))
        .env("CDA_API_KEYS", format!("{TOKEN}=cda_binary_login"))
        // A notifier whose Bot API cannot be reached: its failures are logged, its token not.
        .env("CDA_TELEGRAM_TOKEN", BOT_TOKEN)
        .env("CDA_TELEGRAM_CHATS", "42")
        .env("CDA_TELEGRAM_ROLE", "cda_binary_login")
        .env("CDA_TELEGRAM_API_URL", "http://127.0.0.1:9")
        // Commands by webhook: its secret is not logged either.
        .env(
            "CDA_TELEGRAM_WEBHOOK_URL",
            "https://shop.example/telegram/webhook",
        )
        .env("CDA_TELEGRAM_WEBHOOK_SECRET", WEBHOOK_SECRET)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = false;
    for _ in 0..100 {
        std::thread::sleep(Duration::from_millis(100));
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            ready = true;
            break;
        }
    }
    assert!(ready, "the server did not start");
    let ok = http_get(port, "/api/v1/configuration", Some(TOKEN));
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    let wrong = http_get(
        port,
        "/api/v1/configuration",
        Some("wrong-token-wrong-token-wrong"),
    );
    assert!(wrong.starts_with("HTTP/1.1 401"), "{wrong}");
    let missing = http_get(port, "/api/v1/ltv/summary", Some(TOKEN));
    assert!(missing.starts_with("HTTP/1.1 409"), "no LTV yet: {missing}");
    // The webhook takes Telegram's secret, and only that.
    let hook = post_update(port, WEBHOOK_SECRET);
    assert!(hook.starts_with("HTTP/1.1 200"), "{hook}");
    let guess = post_update(port, "a-guess");
    assert!(guess.starts_with("HTTP/1.1 401"), "{guess}");
    // The notifier's first round: three tries, one and two seconds apart.
    std::thread::sleep(Duration::from_millis(3500));
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        log.contains("Telegram notifier started")
            && log.contains("notification not delivered")
            && log.contains("registering the webhook failed"),
        "{log}"
    );
    for secret in [
        TOKEN,
        "wrong-token-wrong-token-wrong",
        "sekrit-password-42",
        BOT_TOKEN,
        "binary-test-BOT",
        WEBHOOK_SECRET,
        "a-guess",
    ] {
        assert!(!log.contains(secret), "a secret in the log:\n{log}");
    }
    assert!(
        log.contains("/api/v1/configuration") && log.contains("status=200"),
        "{log}"
    );
    assert!(
        log.contains("status=401") && log.contains("latency="),
        "{log}"
    );
}
