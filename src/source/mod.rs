//! The source: where the shop's data is and what a run reads it as. The stored configuration
//! (`config`) and the SQL functions that change it (`configure`), the configured tables resolved
//! against the catalog (`tables`), a per-backend cache of those lookups and of the extension's
//! schema (`catalog_cache`), and the context every read starts from (`context`: the extension's
//! schema, the configuration, the resolved source, the as-of day). Each uses only those before
//! it in that order: config, tables, catalog_cache, context and configure.
//!
//! Date rule: a `timestamptz` becomes a date in the configured time zone (default UTC), never in
//! the session's TimeZone, so the same data gives the same dates whoever runs the refresh. A
//! `timestamp` or `date` column is taken as the local calendar date it already is.

pub mod catalog_cache;
pub mod config;
mod configure;
pub mod context;
pub mod items;
pub mod tables;

pub use catalog_cache::{ext_schema, source as validate};
pub use config::Config;
pub use context::Context;
pub use tables::{DateKind, Source};
