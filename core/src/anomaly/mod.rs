//! Weekly behaviour per user and anomaly detection on it: each user's orders bucketed into
//! Monday-to-Sunday weeks, a calendar of weeks with zeros where a user bought nothing, so that
//! drops show ([`weekly`]), and rules that each name themselves when they fire ([`detect`]).

pub mod detect;
pub mod weekly;

pub use detect::{Finding, Metric, MetricStats, Rules, Trigger, detect, detect_after};
pub use weekly::{WeekRow, WeekTotals, active_weeks, fill_weeks, week_of, week_start};
