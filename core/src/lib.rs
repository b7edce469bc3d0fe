//! The analytics of cda_analytics as plain Rust: no PostgreSQL, no SPI, so every formula is
//! testable with `cargo test` in milliseconds. The extension crate (`src/`) reads rows from the
//! database, feeds them here, and writes back what comes out.
//!
//! Each capability has one module: [`ltv`] for retrospective lifetime value, [`rfm`] for RFM
//! scores and named segments, [`segmentation`] for snapshot features and stable K-means clusters. Shared value types
//! live in [`calendar`] (days) and [`money`] (exact amounts in minor units).

pub mod anomaly;
pub mod calendar;
pub mod churn;
pub mod clv;
pub mod cohorts;
pub mod elasticity;
pub mod events;
pub mod items;
pub mod known_users;
pub mod left_out;
pub mod ltv;
pub mod money;
pub mod pg_numeric;
pub mod phases;
pub mod recommend;
pub mod rfm;
pub mod segmentation;
pub mod stats;
pub mod stop;
pub mod stored;
