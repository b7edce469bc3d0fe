//! `cda-server`: loads the configuration (environment or `CDA_CONFIG`), connects to the
//! database, and serves the API until interrupted.

use cda_server::config::Config;
use cda_server::{AppState, app, auth::Auth, db::Db, notify};

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,tower_http=info".into()),
        )
        // Colours only for a terminal: a log file or a journal gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
    if let Err(e) = run().await {
        eprintln!("cda-server: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), String> {
    let config = Config::load().map_err(|e| e.to_string())?;
    let db = Db::connect(
        &config.database_url,
        config.pool_size,
        config.statement_timeout_ms,
        config.job_timeout_ms,
    )
    .await?;
    let mut telegram_webhook = None;
    if let Some(t) = &config.telegram {
        // Its own pool: a slow Telegram must not hold the API's connections.
        let db = Db::connect(
            &config.database_url,
            2,
            config.statement_timeout_ms,
            config.job_timeout_ms,
        )
        .await?;
        let notifier = std::sync::Arc::new(notify::Notifier {
            db,
            telegram: notify::Telegram::new(&t.api_url, &t.token)?,
            chats: t.chats.clone(),
            role: t.role.clone(),
            max_age_hours: t.max_age_hours.min(i32::MAX as u64) as i32,
            backoff: std::time::Duration::from_secs(1),
        });
        let commands = match (&t.webhook_url, &t.webhook_secret) {
            _ if !t.commands => notify::Commands::Off,
            (Some(url), Some(secret)) => {
                telegram_webhook = Some(std::sync::Arc::new(notify::webhook::Webhook {
                    notifier: notifier.clone(),
                    secret: secret.clone(),
                }));
                notify::Commands::Webhook {
                    url: url.clone(),
                    secret: secret.clone(),
                }
            }
            _ => notify::Commands::Polling,
        };
        tokio::spawn(notifier.run(
            config.database_url.clone(),
            std::time::Duration::from_secs(t.poll_seconds),
            commands,
        ));
        tracing::info!(chats = t.chats.len(), "Telegram notifier started");
    }
    let state = AppState {
        db,
        auth: Auth::new(config.api_keys.clone(), config.anonymous_role.clone()),
        jobs: Default::default(),
        sessions: Default::default(),
        pages: Default::default(),
        telegram_webhook,
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("listening on {}: {e}", config.listen))?;
    // The database URL may hold a password: only where the server listens is logged.
    tracing::info!(listen = %config.listen, keys = config.api_keys.len(), "cda-server ready");
    axum::serve(listener, app(state))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| e.to_string())
}
