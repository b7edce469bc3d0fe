//! Commands from the allow-listed chats (the chats the digest goes to), read by long polling
//! (`getUpdates`) or received by webhook (`webhook`): `/summary`, `/churn`, `/anomalies`,
//! `/customer <id>`, answered from the results tables as the notifier's database role. A chat that is not on the list gets no
//! answer at all: the bot does not even confirm that it exists.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::{Notifier, SendError};

#[derive(Debug, PartialEq)]
pub enum Command {
    Summary,
    Churn,
    Anomalies,
    Customer(i64),
    /// `/customer` without a number.
    BadCustomer(String),
    Help,
}

/// The command in a message's text (`/churn`, `/churn@ShopBot`, `/customer 42`); None for text
/// that is not a command.
pub fn parse(text: &str) -> Option<Command> {
    let mut words = text.split_whitespace();
    let head = words.next()?.strip_prefix('/')?;
    let name = head.split('@').next().unwrap_or("").to_lowercase();
    Some(match name.as_str() {
        "summary" => Command::Summary,
        "churn" => Command::Churn,
        "anomalies" => Command::Anomalies,
        "customer" => match words.next() {
            Some(arg) => match arg.parse::<i64>() {
                Ok(id) => Command::Customer(id),
                Err(_) => Command::BadCustomer(arg.chars().take(40).collect()),
            },
            None => Command::BadCustomer(String::new()),
        },
        _ => Command::Help,
    })
}

const HELP: &str = "Commands:\n/summary - the latest LTV refresh and churn bands\n/churn - the customers most at risk\n/anomalies - the latest anomalous week\n/customer <id> - one customer's results";

fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A list's reply: `none` without rows, else a header (given "N customers", from the rows'
/// `total`) and a line per row.
fn listing(
    rows: &[Value],
    none: &str,
    header: impl Fn(String) -> String,
    line: impl Fn(&Value) -> String,
) -> String {
    let Some(first) = rows.first() else {
        return none.into();
    };
    let total = text(&first["total"]);
    let noun = if total == "1" {
        "customer"
    } else {
        "customers"
    };
    let mut out = header(format!("{total} {noun}"));
    for r in rows {
        out.push('\n');
        out.push_str(&line(r));
    }
    out
}

impl Notifier {
    /// The reply to `command`, from the results tables.
    pub async fn answer(&self, command: &Command) -> String {
        let ext = self.db.schema();
        let (sql, customer): (String, Option<i64>) = match command {
            Command::Help => return HELP.into(),
            Command::BadCustomer(arg) => {
                return format!("/customer needs a customer id (a number), got {arg:?}.");
            }
            Command::Summary => (
                format!(
                    "SELECT pg_catalog.to_char(r.as_of_date, 'YYYY-MM-DD') AS as_of, r.users, r.orders_counted, \
                            (SELECT round(s.revenue_sum / nullif(s.users_measured, 0), 2)::text \
                             FROM {ext}.ml_ltv_summary s WHERE s.horizon = '6m') AS avg_6m, \
                            (SELECT s.users_measured FROM {ext}.ml_ltv_summary s WHERE s.horizon = '6m') AS measured_6m, \
                            (SELECT s.users_with_orders FROM {ext}.ml_ltv_summary s WHERE s.horizon = 'lifetime') AS buyers, \
                            (SELECT s.revenue_sum::text FROM {ext}.ml_ltv_summary s WHERE s.horizon = 'lifetime') AS revenue, \
                            (SELECT pg_catalog.string_agg(b.risk_band || ' ' || b.n, ', ' \
                                    ORDER BY pg_catalog.array_position(ARRAY['critical', 'high', 'medium', 'low'], b.risk_band)) \
                             FROM (SELECT c.risk_band, count(*) AS n FROM {ext}.ml_churn_scores c GROUP BY 1) b) AS churn \
                     FROM {ext}.ltv_last_run r"
                ),
                None,
            ),
            Command::Churn => (
                format!(
                    "SELECT s.user_id, s.risk_band, round(100 * s.probability)::int AS pct, \
                            l.lifetime_revenue::text AS lifetime, count(*) OVER () AS total \
                     FROM {ext}.ml_churn_scores s LEFT JOIN {ext}.ml_user_ltv l ON l.user_id = s.user_id \
                     WHERE s.eligible AND s.risk_band IN ('critical', 'high') \
                     ORDER BY s.probability DESC, s.user_id LIMIT 10"
                ),
                None,
            ),
            Command::Anomalies => (
                format!(
                    "SELECT w.user_id, pg_catalog.to_char(w.week_start, 'YYYY-MM-DD') AS week, w.orders, \
                            round(w.spend::numeric, 2)::text AS spend, round(w.anomaly_score::numeric, 1)::text AS score, \
                            pg_catalog.array_to_string(w.triggers, ', ') AS triggers, count(*) OVER () AS total \
                     FROM {ext}.ml_user_anomalies_weekly w \
                     WHERE w.is_anomaly AND w.week_start = (SELECT max(x.week_start) FROM {ext}.ml_user_anomalies_weekly x WHERE x.is_anomaly) \
                     ORDER BY w.anomaly_score DESC, w.user_id LIMIT 10"
                ),
                None,
            ),
            Command::Customer(id) => (
                format!(
                    "SELECT c.lifetime_revenue::text AS lifetime_revenue, c.orders_lifetime, \
                            pg_catalog.to_char(c.last_order_date, 'YYYY-MM-DD') AS last_order, c.days_since_last_order, \
                            c.value_segment, c.rfm_segment, c.cluster_name, round(c.clv::numeric, 2)::text AS clv, \
                            round((100 * c.churn_probability)::numeric)::int AS churn_pct, c.churn_risk_band, c.anomalous_weeks \
                     FROM {ext}.customer_latest c WHERE c.user_id = $1"
                ),
                Some(*id),
            ),
        };
        let rows = match customer {
            Some(id) => self.db.rows(&self.role, &sql, &[&id]).await,
            None => self.db.rows(&self.role, &sql, &[]).await,
        };
        let rows: Vec<Value> = match rows {
            Ok(json) => serde_json::from_str(&json).unwrap_or_default(),
            Err(e) => return format!("Cannot answer: {}", e.message),
        };
        match command {
            Command::Summary => match rows.first() {
                None => "No LTV refresh has run yet.".into(),
                Some(r) => format!(
                    "LTV as of {}: {} users, {} orders counted.\n6-month LTV: average {} over {} customers whose 6 months elapsed.\nLifetime: {} buyers, revenue {}.\nChurn risk: {}.",
                    text(&r["as_of"]),
                    text(&r["users"]),
                    text(&r["orders_counted"]),
                    text(&r["avg_6m"]),
                    text(&r["measured_6m"]),
                    text(&r["buyers"]),
                    text(&r["revenue"]),
                    if r["churn"].is_null() {
                        "not scored".to_string()
                    } else {
                        text(&r["churn"])
                    }
                ),
            },
            Command::Churn => listing(
                &rows,
                "No customer is at high churn risk (or churn has not been scored).",
                |total| format!("At high churn risk: {total}, most likely first:"),
                |r| {
                    format!(
                        "{}: {}, {}%, lifetime revenue {}",
                        text(&r["user_id"]),
                        text(&r["risk_band"]),
                        text(&r["pct"]),
                        text(&r["lifetime"])
                    )
                },
            ),
            Command::Anomalies => listing(
                &rows,
                "No anomalies (or the anomalies have not been judged).",
                |total| {
                    format!(
                        "Anomalies in the week of {}: {total}, highest score first:",
                        rows.first().map(|r| text(&r["week"])).unwrap_or_default()
                    )
                },
                |r| {
                    format!(
                        "{}: {} orders, spend {}, score {} ({})",
                        text(&r["user_id"]),
                        text(&r["orders"]),
                        text(&r["spend"]),
                        text(&r["score"]),
                        text(&r["triggers"])
                    )
                },
            ),
            Command::Customer(id) => match rows.first() {
                None => format!("No results for customer {id}."),
                Some(r) => format!(
                    "Customer {id}\nLifetime revenue {} in {} orders; last order {} ({} days ago).\nValue segment {}; RFM {}; cluster {}.\nCLV {}; churn {} ({}%); anomalous weeks {}.",
                    text(&r["lifetime_revenue"]),
                    text(&r["orders_lifetime"]),
                    text(&r["last_order"]),
                    text(&r["days_since_last_order"]),
                    text(&r["value_segment"]),
                    text(&r["rfm_segment"]),
                    text(&r["cluster_name"]),
                    text(&r["clv"]),
                    text(&r["churn_risk_band"]),
                    text(&r["churn_pct"]),
                    text(&r["anomalous_weeks"])
                ),
            },
            Command::Help | Command::BadCustomer(_) => unreachable!("answered above"),
        }
    }

    /// Answers one message: a command from an allow-listed chat gets its reply; anything else
    /// (another chat, plain text) gets nothing.
    pub async fn handle(&self, chat: &str, text: &str) {
        if !self.chats.iter().any(|c| c == chat) {
            tracing::info!(chat = %chat, "a message from a chat not on the list: ignored");
            return;
        }
        let Some(command) = parse(text) else {
            return;
        };
        let reply = self.answer(&command).await;
        if let Err(e) = self.send(chat, &reply).await {
            tracing::warn!(chat = %chat, error = %self.telegram.scrub(&e.to_string()), "a reply was not delivered");
        }
    }

    /// Reads commands forever by long polling, answering the allow-listed chats. A webhook left
    /// set (Telegram answers 409) is deleted, so that polling works again.
    pub async fn run_commands(self: Arc<Self>, wait: Duration) {
        let mut offset = 0i64;
        loop {
            match self.telegram.get_updates(offset, wait).await {
                Ok(updates) => {
                    for (id, message) in updates {
                        offset = offset.max(id + 1);
                        if let Some((chat, text)) = message {
                            self.handle(&chat, &text).await;
                        }
                    }
                }
                Err(SendError::RetryAfter(d)) => tokio::time::sleep(d).await,
                Err(SendError::Conflict(_)) => {
                    tracing::info!(
                        "a webhook is set for the bot: deleting it to read commands by polling"
                    );
                    if let Err(e) = self.telegram.delete_webhook().await {
                        tracing::warn!(error = %self.telegram.scrub(&e.to_string()), "deleting the webhook failed");
                        tokio::time::sleep(Duration::from_secs(5)).await;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %self.telegram.scrub(&e.to_string()), "reading Telegram updates failed");
                    tokio::time::sleep(Duration::from_secs(5)).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_commands() {
        assert_eq!(parse("/summary"), Some(Command::Summary));
        assert_eq!(parse("/Churn@ShopBot"), Some(Command::Churn));
        assert_eq!(parse("  /anomalies now"), Some(Command::Anomalies));
        assert_eq!(parse("/customer 42"), Some(Command::Customer(42)));
        assert_eq!(
            parse("/customer abc"),
            Some(Command::BadCustomer("abc".into()))
        );
        assert_eq!(
            parse("/customer"),
            Some(Command::BadCustomer(String::new()))
        );
        assert_eq!(parse("/start"), Some(Command::Help));
        assert_eq!(parse("hello"), None);
        assert_eq!(parse(""), None);
    }
}
