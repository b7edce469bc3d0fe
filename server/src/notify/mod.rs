//! The notifier: sends what the database queued in `cda_notifications` (the daily digest of
//! `queue_digest()`, which a pg_cron job fills after the nightly refreshes) to the configured
//! Telegram chats with the Bot API's `sendMessage`.
//!
//! - Woken by `NOTIFY cda_notifications` on a connection of its own, with polling as the safety
//!   net (a lost connection, a NOTIFY sent while the server was down).
//! - A delivery is recorded in `cda_notification_deliveries` only after Telegram accepted the
//!   message: a failure leaves it pending, to be sent at the next round, and nothing is sent
//!   twice once recorded. (A crash between Telegram's answer and the record resends that one
//!   message: the window is one round trip to the database.)
//! - A 429 is honoured: the notifier waits the `retry_after` Telegram names before it tries
//!   again. A 5xx or a network error is retried after a short back-off; a 4xx (a chat that does
//!   not exist, a bot that was blocked) is reported and retried only at the next round.
//! - The same chats may send commands (`commands`): `/summary`, `/churn`, `/anomalies`,
//!   `/customer <id>`, read by long polling or received by webhook (`webhook`); other chats get
//!   no answer.
//! - The bot token is part of every request's URL, so no error carries a URL, and any text that
//!   reaches a log passes [`Telegram::scrub`] first.

pub mod commands;
pub mod telegram;
pub mod webhook;

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::db::Db;
pub use telegram::{SendError, Telegram};

/// How the chats' commands reach the notifier.
pub enum Commands {
    /// Not read (something else reads the bot's updates).
    Off,
    /// Long polling with `getUpdates` (the default: works behind any firewall).
    Polling,
    /// Telegram posts them to `url`, which must reach this server's [`webhook::PATH`], with
    /// `secret` in a header.
    Webhook { url: String, secret: String },
}

/// One message for one chat, not yet delivered.
#[derive(Deserialize)]
struct Pending {
    notification_id: i64,
    body: String,
    chat: String,
}

/// What a round did.
#[derive(Debug, Default)]
pub struct Round {
    pub delivered: usize,
    /// The deliveries that failed, as (notification, chat, why), scrubbed.
    pub failed: Vec<(i64, String, String)>,
}

pub struct Notifier {
    pub db: Db,
    pub telegram: Telegram,
    pub chats: Vec<String>,
    /// The database role the notifier acts as: it reads the outbox and records deliveries.
    pub role: String,
    pub max_age_hours: i32,
    /// The first back-off after a 5xx or a network error (doubled each time, three tries).
    pub backoff: Duration,
}

impl Notifier {
    /// Sends `text` to `chat`, waiting out up to five rate limits and trying twice more after a
    /// 5xx or a network error, `backoff` then twice that apart; Telegram's message id.
    pub async fn send(&self, chat: &str, text: &str) -> Result<i64, SendError> {
        let (mut limited, mut temporary) = (0, 0);
        loop {
            match self.telegram.send_message(chat, text).await {
                Err(SendError::RetryAfter(wait)) if limited < 5 => {
                    tracing::info!(wait_s = wait.as_secs(), "Telegram rate limit: waiting");
                    tokio::time::sleep(wait).await;
                    limited += 1;
                }
                Err(SendError::Temporary(_)) if temporary < 2 => {
                    tokio::time::sleep(self.backoff * 2u32.pow(temporary)).await;
                    temporary += 1;
                }
                sent => return sent,
            }
        }
    }

    /// Sends every notification not yet delivered to each chat (the newest `max_age_hours`),
    /// oldest first.
    pub async fn send_pending(&self) -> Result<Round, String> {
        let ext = self.db.schema();
        let sql = format!(
            "SELECT n.notification_id, n.body, c.chat \
             FROM {ext}.cda_notifications n CROSS JOIN pg_catalog.unnest($1::text[]) AS c(chat) \
             WHERE n.created_at > pg_catalog.now() - pg_catalog.make_interval(hours => $2) \
               AND NOT EXISTS (SELECT FROM {ext}.cda_notification_deliveries d \
                               WHERE d.notification_id = n.notification_id AND d.channel = 'telegram' \
                                 AND d.recipient = c.chat) \
             ORDER BY n.notification_id, c.chat"
        );
        let rows = self
            .db
            .rows(&self.role, &sql, &[&self.chats, &self.max_age_hours])
            .await
            .map_err(|e| format!("reading the outbox: {}", e.message))?;
        let pending: Vec<Pending> =
            serde_json::from_str(&rows).map_err(|e| format!("reading the outbox: {e}"))?;
        let record = format!(
            "INSERT INTO {ext}.cda_notification_deliveries (notification_id, channel, recipient, provider_message_id) \
             VALUES ($1, 'telegram', $2, $3) ON CONFLICT DO NOTHING"
        );
        let mut round = Round::default();
        for p in pending {
            match self.send(&p.chat, &p.body).await {
                Ok(message_id) => {
                    let id = message_id.to_string();
                    self.db
                        .execute(&self.role, &record, &[&p.notification_id, &p.chat, &id])
                        .await
                        .map_err(|e| format!("recording a delivery: {}", e.message))?;
                    round.delivered += 1;
                }
                Err(e) => {
                    let why = self.telegram.scrub(&e.to_string());
                    tracing::warn!(
                        notification = p.notification_id,
                        chat = %p.chat,
                        error = %why,
                        "notification not delivered; it is tried again at the next round"
                    );
                    round.failed.push((p.notification_id, p.chat.clone(), why));
                }
            }
        }
        Ok(round)
    }

    /// Sends forever: a round at start, on every NOTIFY cda_notifications and every `poll`;
    /// also reads the chats' commands as `commands` says.
    pub async fn run(self: Arc<Self>, database_url: String, poll: Duration, commands: Commands) {
        match commands {
            Commands::Off => {}
            Commands::Polling => {
                tokio::spawn(self.clone().run_commands(Duration::from_secs(25)));
            }
            Commands::Webhook { url, secret } => {
                tokio::spawn(self.clone().register_webhook(url, secret));
            }
        }
        let wake = Arc::new(tokio::sync::Notify::new());
        tokio::spawn(listen(database_url, wake.clone()));
        loop {
            match self.send_pending().await {
                Ok(round) if round.delivered > 0 => {
                    tracing::info!(delivered = round.delivered, "notifications sent")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %self.telegram.scrub(&e), "notifier round failed"),
            }
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(poll) => {}
            }
        }
    }
}

/// LISTENs for cda_notifications on a connection of its own and wakes the sender on each
/// notification; connects again after a loss (polling covers the gap).
async fn listen(database_url: String, wake: Arc<tokio::sync::Notify>) {
    loop {
        match tokio_postgres::connect(&database_url, tokio_postgres::NoTls).await {
            Ok((client, mut connection)) => {
                let wake_on = wake.clone();
                let driver = tokio::spawn(async move {
                    loop {
                        match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                            Some(Ok(tokio_postgres::AsyncMessage::Notification(_))) => {
                                wake_on.notify_one()
                            }
                            Some(Ok(_)) => {}
                            Some(Err(_)) | None => break,
                        }
                    }
                });
                match client.batch_execute("LISTEN cda_notifications").await {
                    Ok(()) => {
                        // Anything queued while no one listened.
                        wake.notify_one();
                        let _ = driver.await;
                    }
                    Err(e) => tracing::warn!(error = %e, "LISTEN cda_notifications failed"),
                }
                drop(client);
            }
            Err(e) => tracing::warn!(error = %e, "the notifier cannot connect to listen"),
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}
