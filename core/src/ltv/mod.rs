//! Retrospective lifetime value: what each customer has spent within fixed horizons after signup.
//!
//! Semantics (the original platform's, with its defects fixed):
//! - Horizon N months covers successful orders dated from the signup day up to signup plus N
//!   calendar months, that last day included ([`crate::calendar::Day::add_months`]).
//! - Lifetime covers every counted successful order, including those dated before signup.
//! - Orders dated before signup count in lifetime only, and are reported per user.
//! - Nothing after the as-of day is counted, so a run with a fixed as-of day is reproducible.
//! - A user with no orders has 0 orders and 0 revenue; average order value is `None` there.
//! - A horizon is complete when its last day is on or before the as-of day.

pub mod distribution;
mod fold;
mod segment;
mod statuses;
pub mod stored;
mod summary;
mod totals;
mod users;
pub(crate) mod wire;

pub use fold::{
    FoldError, HORIZON_MONTHS, LIFETIME, LtvFold, OrderRow, Purchases, RunCounts, StatusClass,
    UserLtv, finish, finish_fingerprinted, purchases,
};
pub use segment::{Segment, SegmentThresholds, ThresholdError};
pub use statuses::StatusSet;
pub use summary::{HorizonSummary, LtvSummary, Measured, summarize, summarize_measured};
pub use totals::{OrderBatch, OrderTotals, SLOT_BYTES, Slot};
pub use users::{Lookup, UserTable};
