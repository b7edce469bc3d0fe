//! The Bot API, as one bot: `sendMessage`, `getUpdates` and the webhook's `setWebhook` and
//! `deleteWebhook`, with the token kept out of every error.

use std::time::Duration;

use serde_json::json;

/// The Bot API, as one bot.
pub struct Telegram {
    client: reqwest::Client,
    api_url: String,
    token: String,
}

/// Why a message was not accepted.
#[derive(Debug, PartialEq)]
pub enum SendError {
    /// 429: wait this long first.
    RetryAfter(Duration),
    /// 5xx or the network: try again soon.
    Temporary(String),
    /// 409: the bot's updates go elsewhere (a webhook is set while we poll).
    Conflict(String),
    /// Any other refusal (400 chat not found, 403 blocked): not before the next round.
    Rejected(String),
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::RetryAfter(d) => write!(f, "rate limited: retry after {} s", d.as_secs()),
            SendError::Temporary(m) | SendError::Conflict(m) | SendError::Rejected(m) => {
                f.write_str(m)
            }
        }
    }
}

impl Telegram {
    pub fn new(api_url: &str, token: &str) -> Result<Telegram, String> {
        // reqwest is built without a default crypto provider: ring's, once per process. (rustls
        // deprecates it for lacking post-quantum key exchange; aws-lc-rs, which has it, needs a
        // C toolchain and cmake on every machine that builds the server. The Bot API is reached
        // with classical TLS 1.2/1.3 key exchange.)
        #[allow(deprecated)]
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| format!("building the HTTP client: {}", e.without_url()))?;
        Ok(Telegram {
            client,
            api_url: api_url.trim_end_matches('/').to_string(),
            token: token.to_string(),
        })
    }

    /// `text` with the token, should it appear, replaced.
    pub fn scrub(&self, text: &str) -> String {
        if self.token.is_empty() {
            text.to_string()
        } else {
            text.replace(&self.token, "<token>")
        }
    }

    /// Calls the Bot API's `method` with `body`; the `result` of an answer Telegram marked ok.
    /// A 429 is [`SendError::RetryAfter`], a 5xx or the network [`SendError::Temporary`], a 409
    /// [`SendError::Conflict`], any other refusal [`SendError::Rejected`]; no error carries the
    /// URL, which holds the token.
    async fn call(
        &self,
        method: &str,
        body: serde_json::Value,
        timeout: Option<Duration>,
    ) -> Result<serde_json::Value, SendError> {
        let url = format!("{}/bot{}/{method}", self.api_url, self.token);
        let mut request = self.client.post(url).json(&body);
        if let Some(t) = timeout {
            request = request.timeout(t);
        }
        let response = request
            .send()
            .await
            .map_err(|e| SendError::Temporary(self.scrub(&e.without_url().to_string())))?;
        let status = response.status();
        let mut answer: serde_json::Value =
            response.json().await.unwrap_or(serde_json::Value::Null);
        if status.is_success() && answer["ok"] == true {
            return Ok(answer["result"].take());
        }
        if status.as_u16() == 429 {
            let after = answer["parameters"]["retry_after"].as_u64().unwrap_or(1);
            return Err(SendError::RetryAfter(Duration::from_secs(
                after.clamp(1, 3600),
            )));
        }
        let message = format!(
            "Telegram answered {status}: {}",
            self.scrub(answer["description"].as_str().unwrap_or(""))
        );
        if status.is_server_error() {
            Err(SendError::Temporary(message))
        } else if status.as_u16() == 409 {
            Err(SendError::Conflict(message))
        } else {
            Err(SendError::Rejected(message))
        }
    }

    /// Sends `text` to `chat`; Telegram's message id when it accepted it.
    pub async fn send_message(&self, chat: &str, text: &str) -> Result<i64, SendError> {
        let body = json!({
            "chat_id": chat,
            "text": text,
            "link_preview_options": {"is_disabled": true},
        });
        let result = self.call("sendMessage", body, None).await?;
        Ok(result["message_id"].as_i64().unwrap_or(0))
    }

    /// The updates after `offset`, waiting up to `wait` for one (long polling): each update's id
    /// and, for a text message, its chat and text.
    pub async fn get_updates(
        &self,
        offset: i64,
        wait: Duration,
    ) -> Result<Vec<(i64, Option<(String, String)>)>, SendError> {
        let body = json!({
            "offset": offset,
            "timeout": wait.as_secs(),
            "allowed_updates": ["message"],
        });
        let result = self
            .call("getUpdates", body, Some(wait + Duration::from_secs(10)))
            .await?;
        Ok(result
            .as_array()
            .map(|updates| updates.iter().filter_map(parse_update).collect())
            .unwrap_or_default())
    }

    /// Has Telegram deliver the bot's updates to `url` (a webhook), with `secret` in the
    /// `X-Telegram-Bot-Api-Secret-Token` header of each; polling stops working until it is
    /// deleted.
    pub async fn set_webhook(&self, url: &str, secret: &str) -> Result<(), SendError> {
        let body = json!({
            "url": url,
            "secret_token": secret,
            "allowed_updates": ["message"],
        });
        self.call("setWebhook", body, None).await.map(|_| ())
    }

    /// Removes the webhook, so that updates can be polled again (pending ones are kept).
    pub async fn delete_webhook(&self) -> Result<(), SendError> {
        self.call(
            "deleteWebhook",
            json!({"drop_pending_updates": false}),
            None,
        )
        .await
        .map(|_| ())
    }
}

/// An update's id and, for a text message, its chat and text; None without an id.
pub fn parse_update(update: &serde_json::Value) -> Option<(i64, Option<(String, String)>)> {
    let id = update["update_id"].as_i64()?;
    let message = &update["message"];
    let text = message["text"].as_str().map(|t| {
        let chat = match &message["chat"]["id"] {
            serde_json::Value::Number(n) => n.to_string(),
            other => other.as_str().unwrap_or("").to_string(),
        };
        (chat, t.to_string())
    });
    Some((id, text))
}
