//! cda_analytics: customer analytics computed inside PostgreSQL.
//!
//! This crate is the SQL surface only: it reads the user's tables through SPI, hands the rows to
//! the pure-Rust core (`cda_analytics_core`), and writes the results. Each capability has its own
//! module here and in the core.
#![deny(unsafe_op_in_unsafe_fn)]

use pgrx::prelude::*;

/// The V1 calling-convention record of a C-callable function (PG_FUNCTION_INFO_V1 in C).
macro_rules! v1_finfo {
    ($finfo:ident) => {
        #[unsafe(no_mangle)]
        #[doc(hidden)]
        pub extern "C" fn $finfo() -> &'static pg_sys::Pg_finfo_record {
            const V1: pg_sys::Pg_finfo_record = pg_sys::Pg_finfo_record { api_version: 1 };
            &V1
        }
    };
}

mod aggregates;
mod anomaly;
mod catalog_cache;
mod churn;
mod clv;
mod config;
mod context;
mod errors;
mod events;
mod ltv;
mod pending;
mod results;
mod rfm;
mod segmentation;
mod source;
mod spi_read;
mod stored_rows;
mod table_scan;
mod token_slot;
mod workers;

::pgrx::pg_module_magic!(name, version);

/// Registers the extension's settings when a backend loads the library.
#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    pgrx::GucRegistry::define_bool_guc(
        c"cda_analytics.table_scans",
        c"Read plain tables with the extension's own scans: the orders of a whole-run refresh \
          with a parallel scan, the users and the stored results with a serial one.",
        c"When off, every table is read with an aggregate query through the executor, as it is \
          for sources the scans do not serve (views, partitioned tables, row security).",
        &table_scan::ENABLED,
        pgrx::GucContext::Userset,
        pgrx::GucFlags::default(),
    );
}

extension_sql_file!("../sql/bootstrap.sql", name = "bootstrap", bootstrap);
extension_sql_file!("../sql/ltv_aggregates.sql", name = "ltv_aggregates");
extension_sql_file!("../sql/finalize.sql", name = "finalize", finalize);

/// Required by `cargo pgrx test`.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    #[must_use]
    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![]
    }
}
