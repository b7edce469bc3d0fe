//! The read wing: the shop's tables into the core's inputs.
//!
//! - [`purchases`]: users and their orders folded per user (`cda_analytics_core::ltv`'s totals),
//!   for LTV and RFM; a whole run reads plain tables with the extension's own scans, anything
//!   else with aggregate queries;
//! - [`events`]: every counted order as (user, day, amount), for segmentation, CLV, churn and
//!   anomalies, and the users known on a day;
//! - [`categories`]: the product categories each customer bought, by day, where the shop has
//!   `order_items` and `products`;
//!
//! and what they are built on: [`query`] (the pieces of the generated SQL), [`spi`] (one-row
//! aggregate queries with kept generic plans), [`aggregates`] (what the C-level aggregates
//! share), [`table_scan`] (a table read through its access method, and when that is allowed) and
//! [`parallel`] (the parallel context of the orders scan).
//!
//! Every read counts what it leaves out by `cda_analytics_core::left_out::Reason` and reports it.

pub mod aggregates;
pub mod categories;
pub mod events;
pub mod items;
pub mod parallel;
pub mod purchases;
pub mod query;
pub mod spi;
pub mod table_scan;
