//! Weekly behaviour per user and anomaly detection on it (issue 6, anomaly half): a calendar of
//! weeks with zeros where a user bought nothing, so that drops show, and rules that each name
//! themselves when they fire. The SQL surface that reads orders into weeks and stores the
//! findings is not built yet.

pub mod detect;
pub mod weekly;

pub use detect::{Finding, Metric, MetricStats, Rules, Trigger, detect, detect_after};
pub use weekly::{WeekRow, WeekTotals, fill_weeks, week_of, week_start};
