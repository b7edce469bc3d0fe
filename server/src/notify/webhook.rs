//! Commands by webhook, the alternative to long polling for a server that Telegram can reach over
//! HTTPS (through a reverse proxy that terminates TLS and forwards [`PATH`]).
//!
//! - At start the notifier registers the public URL with `setWebhook`, with a secret that
//!   Telegram sends back in the `X-Telegram-Bot-Api-Secret-Token` header of every update.
//! - [`receive`] serves `POST /telegram/webhook`. A request without that secret gets a 401, a
//!   body that is not an update a 400, both as JSON errors; the route is not an API endpoint
//!   and takes no API key.
//! - An accepted update is answered with 200 at once, and the reply is sent on its own task with
//!   the notifier's retries. Telegram resends an update that was not answered in time, and the
//!   reply must not hold the request open.
//! - Only the allow-listed chats are answered, as with polling ([`Notifier::handle`]). Telegram
//!   stops honouring `getUpdates` while a webhook is set; the polling loop deletes a webhook it
//!   finds.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use super::{Notifier, SendError};
use crate::AppState;
use crate::error::ApiError;

/// Where Telegram posts the updates on this server.
pub const PATH: &str = "/telegram/webhook";

/// The header in which Telegram returns the webhook's secret.
pub const SECRET_HEADER: &str = "x-telegram-bot-api-secret-token";

/// The webhook's receiving end: the notifier that answers, and the secret that proves a request
/// comes from Telegram.
pub struct Webhook {
    pub notifier: Arc<Notifier>,
    pub secret: String,
}

/// Whether `secret` is a secret Telegram accepts: 1 to 256 characters of `A-Z`, `a-z`, `0-9`,
/// `_` and `-`.
pub fn valid_secret(secret: &str) -> bool {
    (1..=256).contains(&secret.len())
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl Notifier {
    /// Registers `url` as the bot's webhook. Retries while Telegram is unreachable or limits the
    /// rate; a refusal (a URL Telegram will not call) is logged and ends the attempt.
    pub async fn register_webhook(self: Arc<Self>, url: String, secret: String) {
        let mut wait = self.backoff;
        loop {
            match self.telegram.set_webhook(&url, &secret).await {
                Ok(()) => {
                    tracing::info!("Telegram webhook registered; commands arrive at {PATH}");
                    return;
                }
                Err(SendError::RetryAfter(d)) => tokio::time::sleep(d).await,
                Err(SendError::Temporary(e)) => {
                    tracing::warn!(error = %self.telegram.scrub(&e), "registering the webhook failed; retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(300));
                }
                Err(e) => {
                    tracing::error!(error = %self.telegram.scrub(&e.to_string()), "Telegram refused the webhook: commands will not be answered");
                    return;
                }
            }
        }
    }
}

/// `POST /telegram/webhook`: one update from Telegram.
pub async fn receive(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let Some(hook) = state.telegram_webhook.clone() else {
        return Err(ApiError::not_found("no Telegram webhook is configured"));
    };
    let given = headers
        .get(SECRET_HEADER)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    if !bool::from(given.ct_eq(hook.secret.as_bytes())) {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "this endpoint takes updates from Telegram only",
        )
        .with_hint(
            "Telegram sends the secret given to setWebhook in X-Telegram-Bot-Api-Secret-Token",
        ));
    }
    let update: Value = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("the body is not JSON: {e}"),
        )
    })?;
    let Some((_, message)) = super::telegram::parse_update(&update) else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "the body is not a Telegram update (no update_id)",
        ));
    };
    if let Some((chat, text)) = message {
        let notifier = hook.notifier.clone();
        tokio::spawn(async move { notifier.handle(&chat, &text).await });
    }
    Ok(Json(json!({"ok": true})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_telegram_accepts() {
        assert!(valid_secret("a-Secret_0123456789"));
        assert!(valid_secret(&"x".repeat(256)));
        assert!(!valid_secret(""));
        assert!(!valid_secret(&"x".repeat(257)));
        assert!(!valid_secret("with space"));
        assert!(!valid_secret("semi;colon"));
    }
}
