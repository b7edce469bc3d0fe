//! The write wing: results into the extension's tables, in the caller's transaction, so that a
//! refresh commits whole or not at all.
//!
//! - [`refresh`]: the lock that serialises refreshes of a table, and the statements they run;
//! - [`stored_rows`]: rewriting only the stored rows whose fingerprints changed;
//! - [`row_source`]: rows computed in Rust handed to the INSERT that writes them, in memory.

pub mod refresh;
pub mod row_source;
pub mod stored_rows;
