//! What the server is told: where the database is, where to listen, and which bearer tokens map
//! to which database roles. From the environment, or from a JSON file named by `CDA_CONFIG`
//! (its keys override nothing: a setting comes from one place). There are no default tokens.

use std::net::SocketAddr;

use serde::Deserialize;

/// A bearer token and the database role whose privileges a request carrying it gets.
#[derive(Clone, Deserialize)]
pub struct ApiKey {
    pub token: String,
    pub role: String,
}

// Tokens are secrets: never printed, not even in a debug dump of the configuration.
impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiKey {{ token: <hidden>, role: {:?} }}", self.role)
    }
}

/// Telegram notifications: the bot's token, the chats that get the digest, the Bot API's base URL
/// (a stand-in server in tests), the database role the notifier acts as (it records deliveries:
/// an operator), and how often it looks for messages when no NOTIFY woke it.
#[derive(Clone, Deserialize)]
pub struct Telegram {
    pub token: String,
    pub chats: Vec<String>,
    #[serde(default = "default_telegram_api")]
    pub api_url: String,
    pub role: String,
    #[serde(default = "default_poll_seconds")]
    pub poll_seconds: u64,
    /// Notifications older than this many hours are not sent (a chat added later does not get
    /// the whole history).
    #[serde(default = "default_max_age_hours")]
    pub max_age_hours: u64,
    /// Whether the chats' commands are read (long polling); off for a bot whose updates
    /// something else reads.
    #[serde(default = "default_commands")]
    pub commands: bool,
    /// The public HTTPS URL at which Telegram reaches this server's `/telegram/webhook` (through
    /// a reverse proxy): commands come by webhook instead of long polling.
    #[serde(default)]
    pub webhook_url: Option<String>,
    /// The secret Telegram sends with each update to the webhook (1-256 of A-Z a-z 0-9 _ -).
    #[serde(default)]
    pub webhook_secret: Option<String>,
}

fn default_commands() -> bool {
    true
}

// The bot token is a secret: never printed.
impl std::fmt::Debug for Telegram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telegram")
            .field("token", &"<hidden>")
            .field("chats", &self.chats)
            .field("api_url", &self.api_url)
            .field("role", &self.role)
            .field("poll_seconds", &self.poll_seconds)
            .field("max_age_hours", &self.max_age_hours)
            .field("commands", &self.commands)
            .field("webhook_url", &self.webhook_url)
            .field(
                "webhook_secret",
                &self.webhook_secret.as_ref().map(|_| "<hidden>"),
            )
            .finish()
    }
}

fn default_telegram_api() -> String {
    "https://api.telegram.org".into()
}

fn default_poll_seconds() -> u64 {
    60
}

fn default_max_age_hours() -> u64 {
    48
}

#[derive(Clone, Debug, Deserialize)]
pub struct Config {
    /// A libpq connection string or URL (`postgres://user:password@host/db`).
    pub database_url: String,
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    #[serde(default)]
    pub api_keys: Vec<ApiKey>,
    /// The role of requests without a token; none means such requests get 401.
    #[serde(default)]
    pub anonymous_role: Option<String>,
    /// Each request's statement_timeout, in milliseconds.
    #[serde(default = "default_timeout")]
    pub statement_timeout_ms: u64,
    /// Each job's statement_timeout (refreshes, fits, training), in milliseconds.
    #[serde(default = "default_job_timeout")]
    pub job_timeout_ms: u64,
    #[serde(default = "default_pool")]
    pub pool_size: usize,
    /// Telegram notifications; none when not configured.
    #[serde(default)]
    pub telegram: Option<Telegram>,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

fn default_timeout() -> u64 {
    30_000
}

fn default_job_timeout() -> u64 {
    3_600_000
}

fn default_pool() -> usize {
    8
}

#[derive(Debug)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Config {
    /// From `CDA_CONFIG` (a JSON file) when set, else from the environment:
    /// `CDA_DATABASE_URL`, `CDA_LISTEN`, `CDA_API_KEYS` (`token=role,token=role`),
    /// `CDA_ANONYMOUS_ROLE`, `CDA_STATEMENT_TIMEOUT_MS`, `CDA_JOB_TIMEOUT_MS`, `CDA_POOL_SIZE`,
    /// and for Telegram `CDA_TELEGRAM_TOKEN`, `CDA_TELEGRAM_CHATS` (chat ids, comma-separated),
    /// `CDA_TELEGRAM_ROLE`, `CDA_TELEGRAM_API_URL`, `CDA_TELEGRAM_POLL_SECONDS`,
    /// `CDA_TELEGRAM_MAX_AGE_HOURS`, `CDA_TELEGRAM_COMMANDS` (`off` to not read commands),
    /// `CDA_TELEGRAM_WEBHOOK_URL` and `CDA_TELEGRAM_WEBHOOK_SECRET` (commands by webhook).
    pub fn load() -> Result<Config, ConfigError> {
        let config = match std::env::var("CDA_CONFIG") {
            Ok(path) => {
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| ConfigError(format!("reading {path}: {e}")))?;
                serde_json::from_str(&text)
                    .map_err(|e| ConfigError(format!("{path} is not a valid configuration: {e}")))?
            }
            Err(_) => Self::from_env(|k| std::env::var(k).ok())?,
        };
        config.check()?;
        Ok(config)
    }

    /// The configuration from variables looked up by `get`.
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let database_url = get("CDA_DATABASE_URL")
            .ok_or_else(|| ConfigError("CDA_DATABASE_URL is not set".into()))?;
        let listen = match get("CDA_LISTEN") {
            Some(s) => s
                .parse()
                .map_err(|e| ConfigError(format!("CDA_LISTEN {s:?}: {e}")))?,
            None => default_listen(),
        };
        let mut api_keys = Vec::new();
        for pair in get("CDA_API_KEYS").unwrap_or_default().split(',') {
            let pair = pair.trim();
            if pair.is_empty() {
                continue;
            }
            let Some((token, role)) = pair.split_once('=') else {
                return Err(ConfigError(
                    "CDA_API_KEYS must be token=role pairs separated by commas".into(),
                ));
            };
            api_keys.push(ApiKey {
                token: token.trim().to_string(),
                role: role.trim().to_string(),
            });
        }
        let number = |name: &str, default: u64| -> Result<u64, ConfigError> {
            match get(name) {
                Some(s) => s
                    .parse()
                    .map_err(|_| ConfigError(format!("{name} must be a whole number, got {s:?}"))),
                None => Ok(default),
            }
        };
        let telegram = match get("CDA_TELEGRAM_TOKEN").filter(|t| !t.is_empty()) {
            None => None,
            Some(token) => Some(Telegram {
                token,
                chats: get("CDA_TELEGRAM_CHATS")
                    .unwrap_or_default()
                    .split(',')
                    .map(|c| c.trim().to_string())
                    .filter(|c| !c.is_empty())
                    .collect(),
                api_url: get("CDA_TELEGRAM_API_URL").unwrap_or_else(default_telegram_api),
                role: get("CDA_TELEGRAM_ROLE").unwrap_or_default(),
                poll_seconds: number("CDA_TELEGRAM_POLL_SECONDS", default_poll_seconds())?,
                max_age_hours: number("CDA_TELEGRAM_MAX_AGE_HOURS", default_max_age_hours())?,
                commands: !matches!(
                    get("CDA_TELEGRAM_COMMANDS").as_deref(),
                    Some("off" | "false" | "0")
                ),
                webhook_url: get("CDA_TELEGRAM_WEBHOOK_URL").filter(|u| !u.is_empty()),
                webhook_secret: get("CDA_TELEGRAM_WEBHOOK_SECRET").filter(|s| !s.is_empty()),
            }),
        };
        Ok(Config {
            telegram,
            database_url,
            listen,
            api_keys,
            anonymous_role: get("CDA_ANONYMOUS_ROLE").filter(|r| !r.is_empty()),
            statement_timeout_ms: number("CDA_STATEMENT_TIMEOUT_MS", default_timeout())?,
            job_timeout_ms: number("CDA_JOB_TIMEOUT_MS", default_job_timeout())?,
            pool_size: number("CDA_POOL_SIZE", default_pool() as u64)? as usize,
        })
    }

    /// Refuses what would be unsafe: listening beyond loopback with no tokens (every request
    /// would be anonymous), tokens too short to be secrets, a token given twice.
    pub fn check(&self) -> Result<(), ConfigError> {
        if !self.listen.ip().is_loopback() && self.api_keys.is_empty() {
            return Err(ConfigError(format!(
                "refusing to listen on {} without API keys: set CDA_API_KEYS, or listen on loopback",
                self.listen
            )));
        }
        for (i, key) in self.api_keys.iter().enumerate() {
            if key.token.len() < 16 {
                return Err(ConfigError(format!(
                    "API key {} (role {}) is shorter than 16 characters",
                    i + 1,
                    key.role
                )));
            }
            if key.role.is_empty() {
                return Err(ConfigError(format!("API key {} has no role", i + 1)));
            }
            if self.api_keys[..i].iter().any(|k| k.token == key.token) {
                return Err(ConfigError(format!("API key {} is given twice", i + 1)));
            }
        }
        if self.statement_timeout_ms == 0 || self.job_timeout_ms == 0 {
            return Err(ConfigError("the timeouts must be positive".into()));
        }
        if let Some(t) = &self.telegram {
            if t.chats.is_empty() {
                return Err(ConfigError(
                    "Telegram needs the chats to send to: set CDA_TELEGRAM_CHATS".into(),
                ));
            }
            if let Some(c) = t.chats.iter().find(|c| c.parse::<i64>().is_err()) {
                return Err(ConfigError(format!(
                    "Telegram chat ids are numbers, got {c:?}"
                )));
            }
            if t.role.is_empty() {
                return Err(ConfigError(
                    "Telegram needs the database role the notifier acts as (an operator): set CDA_TELEGRAM_ROLE".into(),
                ));
            }
            if !(t.api_url.starts_with("https://")
                || t.api_url.starts_with("http://127.0.0.1")
                || t.api_url.starts_with("http://localhost"))
            {
                return Err(ConfigError(
                    "the Telegram API URL must be https (plain http only on loopback, for a stand-in)".into(),
                ));
            }
            if t.poll_seconds == 0 {
                return Err(ConfigError(
                    "CDA_TELEGRAM_POLL_SECONDS must be positive".into(),
                ));
            }
            if let Some(url) = &t.webhook_url {
                if !url.starts_with("https://") {
                    return Err(ConfigError(
                        "CDA_TELEGRAM_WEBHOOK_URL must be https (Telegram calls only HTTPS webhooks)"
                            .into(),
                    ));
                }
                if !t.commands {
                    return Err(ConfigError(
                        "CDA_TELEGRAM_WEBHOOK_URL receives commands, but CDA_TELEGRAM_COMMANDS is off"
                            .into(),
                    ));
                }
                match &t.webhook_secret {
                    Some(secret) if crate::notify::webhook::valid_secret(secret) => {}
                    Some(_) => {
                        return Err(ConfigError(
                            "CDA_TELEGRAM_WEBHOOK_SECRET must be 1 to 256 characters of A-Z, a-z, 0-9, _ and -"
                                .into(),
                        ));
                    }
                    None => {
                        return Err(ConfigError(
                            "a webhook needs CDA_TELEGRAM_WEBHOOK_SECRET, so that only Telegram can post commands"
                                .into(),
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: std::collections::HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn reads_keys_and_refuses_what_is_unsafe() {
        let c = Config::from_env(env(&[
            ("CDA_DATABASE_URL", "postgres://localhost/x"),
            (
                "CDA_API_KEYS",
                "aaaaaaaaaaaaaaaa=analyst, bbbbbbbbbbbbbbbb=operator",
            ),
        ]))
        .unwrap();
        assert_eq!(c.api_keys.len(), 2);
        assert_eq!(c.api_keys[1].role, "operator");
        c.check().unwrap();
        assert!(
            !format!("{c:?}").contains("aaaa"),
            "a token in a debug dump"
        );

        let open = Config::from_env(env(&[
            ("CDA_DATABASE_URL", "postgres://localhost/x"),
            ("CDA_LISTEN", "0.0.0.0:8080"),
        ]))
        .unwrap();
        assert!(open.check().unwrap_err().0.contains("without API keys"));
        let short = Config::from_env(env(&[
            ("CDA_DATABASE_URL", "postgres://localhost/x"),
            ("CDA_API_KEYS", "short=analyst"),
        ]))
        .unwrap();
        assert!(short.check().is_err());
        assert!(Config::from_env(env(&[])).is_err());
    }

    #[test]
    fn reads_telegram_and_hides_its_token() {
        let base = [
            ("CDA_DATABASE_URL", "postgres://localhost/x"),
            ("CDA_TELEGRAM_TOKEN", "123456:SECRET-token-value"),
        ];
        let c = Config::from_env(env(&[
            base[0],
            base[1],
            ("CDA_TELEGRAM_CHATS", " 42, -1001 "),
            ("CDA_TELEGRAM_ROLE", "operator"),
        ]))
        .unwrap();
        c.check().unwrap();
        let t = c.telegram.as_ref().unwrap();
        assert_eq!(t.chats, ["42", "-1001"]);
        assert_eq!(t.api_url, "https://api.telegram.org");
        assert!(
            !format!("{c:?}").contains("SECRET"),
            "a token in a debug dump"
        );
        let no_chats =
            Config::from_env(env(&[base[0], base[1], ("CDA_TELEGRAM_ROLE", "op")])).unwrap();
        assert!(
            no_chats
                .check()
                .unwrap_err()
                .0
                .contains("CDA_TELEGRAM_CHATS")
        );
        let bad_chat = Config::from_env(env(&[
            base[0],
            base[1],
            ("CDA_TELEGRAM_CHATS", "@channel"),
            ("CDA_TELEGRAM_ROLE", "op"),
        ]))
        .unwrap();
        assert!(bad_chat.check().is_err());
        let plain = Config::from_env(env(&[
            base[0],
            base[1],
            ("CDA_TELEGRAM_CHATS", "1"),
            ("CDA_TELEGRAM_ROLE", "op"),
            ("CDA_TELEGRAM_API_URL", "http://api.example"),
        ]))
        .unwrap();
        assert!(plain.check().unwrap_err().0.contains("https"));
        assert!(
            Config::from_env(env(&[base[0]]))
                .unwrap()
                .telegram
                .is_none()
        );
    }

    #[test]
    fn reads_the_webhook_and_hides_its_secret() {
        let with = |extra: &[(&str, &str)]| {
            let mut vars = vec![
                ("CDA_DATABASE_URL", "postgres://localhost/x"),
                ("CDA_TELEGRAM_TOKEN", "123456:token"),
                ("CDA_TELEGRAM_CHATS", "42"),
                ("CDA_TELEGRAM_ROLE", "operator"),
            ];
            vars.extend_from_slice(extra);
            Config::from_env(env(&vars)).unwrap()
        };
        let url = (
            "CDA_TELEGRAM_WEBHOOK_URL",
            "https://shop.example/telegram/webhook",
        );
        let c = with(&[url, ("CDA_TELEGRAM_WEBHOOK_SECRET", "Webhook-SECRET_1")]);
        c.check().unwrap();
        let t = c.telegram.as_ref().unwrap();
        assert_eq!(t.webhook_url.as_deref(), Some(url.1));
        assert!(
            !format!("{c:?}").contains("Webhook-SECRET"),
            "a webhook secret in a debug dump"
        );
        let refused = |extra: &[(&str, &str)]| with(extra).check().unwrap_err().0;
        assert!(refused(&[url]).contains("CDA_TELEGRAM_WEBHOOK_SECRET"));
        assert!(
            refused(&[url, ("CDA_TELEGRAM_WEBHOOK_SECRET", "has spaces")])
                .contains("1 to 256 characters")
        );
        assert!(
            refused(&[
                ("CDA_TELEGRAM_WEBHOOK_URL", "http://shop.example/hook"),
                ("CDA_TELEGRAM_WEBHOOK_SECRET", "s")
            ])
            .contains("https")
        );
        assert!(
            refused(&[
                url,
                ("CDA_TELEGRAM_WEBHOOK_SECRET", "s"),
                ("CDA_TELEGRAM_COMMANDS", "off")
            ])
            .contains("CDA_TELEGRAM_COMMANDS")
        );
    }
}
