//! cda_analytics: customer analytics computed inside PostgreSQL.
//!
//! The math lives in the pure-Rust core (`cda_analytics_core`); this crate is the pipeline around
//! it, from the shop's tables to the results tables, and the SQL functions that run it:
//!
//! - [`source`]: where the shop's data is (the stored configuration, the tables resolved against
//!   the catalog) and the context every read starts from;
//! - [`read`]: reading the source into the core's inputs: the purchases (users and orders folded
//!   per user, for LTV and RFM), the order events (every counted order as user, day and amount,
//!   for segmentation, CLV, churn and anomalies) and the categories bought, through aggregate
//!   queries or the extension's own table scans;
//! - [`write`]: writing results: the refresh lock and statements, the rewrite of only the stored
//!   rows that changed, the in-memory row sources of the INSERTs;
//! - [`toolbox`]: what all of them use and that knows nothing about shops (errors, quoting,
//!   conversions, settings, worker threads).
//!
//! Each capability ([`ltv`], [`rfm`], [`segmentation`], [`clv`], [`churn`], [`anomaly`]) has a
//! folder here, as in the core: its SQL functions, its own reads built on [`read`], and its results
//! tables. A capability uses the wings and the core, never another capability. A new capability
//! gets a folder in `core/src` for its math and one here, reads through [`read`] (adding a read
//! there when a second capability would need it too), and writes through [`write`]; its tables
//! go in sql/bootstrap.sql and its SQL-language functions in sql/finalize.sql.
//!
//! The wings depend one way: [`toolbox`] on nothing of ours, [`source`] on the toolbox, [`read`]
//! on the source, [`write`] on the read wing (it reads the stored rows it rewrites).

use pgrx::prelude::*;

// pgrx turns a Rust panic into a PostgreSQL error by unwinding to its error boundary; with
// panic = "abort" a panic would take the whole server down.
#[cfg(not(panic = "unwind"))]
compile_error!("cda_analytics must be built with panic = \"unwind\"");

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

/// Declares a row source's columns as a module: `COLUMNS`, the
/// [`write::row_source::Column`]s in order, and for each column a constant named as the column
/// that holds its index, by which [`write::row_source::RowWriter`] sets its value.
macro_rules! row_columns {
    ($(#[$doc:meta])* $vis:vis mod $m:ident { $($col:ident: $ty:ident),* $(,)? }) => {
        $(#[$doc])*
        #[allow(non_upper_case_globals, dead_code)]
        $vis mod $m {
            pub const COLUMNS: &[$crate::write::row_source::Column] = &[
                $($crate::write::row_source::Column {
                    name: stringify!($col),
                    type_oid: pgrx::pg_sys::$ty,
                }),*
            ];
            row_columns!(@index 0usize; $($col)*);
        }
    };
    (@index $i:expr; $first:ident $($rest:ident)*) => {
        pub const $first: usize = $i;
        row_columns!(@index $i + 1usize; $($rest)*);
    };
    (@index $i:expr;) => {};
}

mod read;
mod source;
mod toolbox;
mod write;

mod anomaly;
mod churn;
mod clv;
mod cohorts;
mod elasticity;
mod ltv;
mod recommend;
mod rfm;
mod segmentation;

::pgrx::pg_module_magic!(name, version);

/// Registers the extension's settings when a backend loads the library, and reserves their
/// prefix: a misspelt `cda_analytics.*` setting is then an error instead of a silent no-op.
#[pg_guard]
#[allow(unsafe_code)]
pub extern "C-unwind" fn _PG_init() {
    pgrx::GucRegistry::define_int_guc(
        c"cda_analytics.fit_time_limit",
        c"The longest a CLV model fit (clv_fit) may run before it stops with an error.",
        c"A fit that has not converged by then stops with error 54000 and stores nothing; every \
          fit is also bounded to a fixed number of likelihood evaluations. 0 means no time limit.",
        &clv::FIT_TIME_LIMIT,
        0,
        i32::MAX,
        pgrx::GucContext::Userset,
        pgrx::GucFlags::UNIT_MS,
    );
    pgrx::GucRegistry::define_int_guc(
        c"cda_analytics.training_memory",
        c"The memory churn_train may take for its rows and the classifiers' copies of them.",
        c"Estimated from the rows it would keep (both splits, at most max_training_rows each) \
          before any is built; above it, churn_train stops with error 54000 and trains nothing.",
        &churn::TRAINING_MEMORY,
        1024,
        i32::MAX,
        pgrx::GucContext::Userset,
        pgrx::GucFlags::UNIT_KB,
    );
    pgrx::GucRegistry::define_bool_guc(
        c"cda_analytics.table_scans",
        c"Read plain tables with the extension's own scans: the orders of a whole-run refresh \
          with a parallel scan, the users and the stored results with a serial one.",
        c"When off, every table is read with an aggregate query through the executor, as it is \
          for sources the scans do not serve (views, partitioned tables, row security).",
        &read::table_scan::ENABLED,
        pgrx::GucContext::Userset,
        pgrx::GucFlags::default(),
    );
    // SAFETY: a C string that outlives the call, in _PG_init as PostgreSQL expects.
    unsafe { pg_sys::MarkGUCPrefixReserved(c"cda_analytics".as_ptr()) };
    cda_analytics_core::stop::set_hook(toolbox::workers::cancel_pending);
}

extension_sql_file!("../sql/bootstrap.sql", name = "bootstrap", bootstrap);
extension_sql_file!("../sql/read_aggregates.sql", name = "read_aggregates");
extension_sql_file!("../sql/row_sources.sql", name = "row_sources");
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
