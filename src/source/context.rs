//! What every function that reads the source starts from: the extension's schema, the stored
//! configuration, the source checked against the catalog, and the as-of day.

// Makes a new snapshot the active one after a lock waited (`FreshSnapshot`).
#![allow(unsafe_code)]

use pgrx::prelude::*;

use cda_analytics_core::calendar::Day;

use super::{Config, Source, ext_schema, validate};
use crate::toolbox::convert::day_of_date;
use crate::toolbox::errors::*;

pub struct Context {
    pub ext: String,
    pub config: Config,
    pub source: Source,
    pub as_of: Day,
    /// Whether the caller gave the as-of date: orders after it are then expected (a snapshot of
    /// the past), where orders after today are suspect.
    pub explicit_as_of: bool,
    /// A snapshot taken after the source tables were locked, active while the context lives,
    /// when a lock had to wait for a concurrent change: see [`Context::load`].
    pub snapshot: Option<FreshSnapshot>,
}

impl Context {
    /// The context of a read as of `as_of`. The source tables are locked first; when a lock had
    /// to wait for a concurrent change that committed meanwhile (an ALTER TABLE that rewrote the
    /// table, a table dropped and created again), the statement's snapshot predates it: it would
    /// see the catalog as it was and none of the rewritten rows. Then a new snapshot is made the
    /// active one for as long as the context lives, so that the catalog is resolved, and the
    /// rows read, as they are now. Keep the context (or its `snapshot`) alive while reading.
    pub fn load(as_of: Option<pgrx::datum::Date>) -> Context {
        let ext = ext_schema();
        let config = Config::load(&ext);
        let snapshot = super::tables::lock(&config).then(FreshSnapshot::push);
        let source = validate(&config);
        let explicit_as_of = as_of.is_some();
        let as_of = as_of_day(as_of, &config.time_zone);
        Context {
            ext,
            config,
            source,
            as_of,
            explicit_as_of,
            snapshot,
        }
    }
}

/// A new snapshot made the active one while this lives (after a command counter increment, so
/// that the transaction's own earlier writes are in it, as SPI does for a statement that is not
/// read-only). In READ COMMITTED it sees what committed before it was taken; in REPEATABLE READ
/// and SERIALIZABLE it is the transaction's snapshot, as any statement's is.
pub struct FreshSnapshot {
    snapshot: pg_sys::Snapshot,
}

impl FreshSnapshot {
    pub fn push() -> FreshSnapshot {
        // SAFETY: in a backend inside a transaction; the snapshot is copied onto the active
        // stack by PushActiveSnapshot and popped by Drop (or by the abort of an error).
        unsafe {
            pg_sys::CommandCounterIncrement();
            pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot());
            FreshSnapshot {
                snapshot: pg_sys::GetActiveSnapshot(),
            }
        }
    }
}

impl Drop for FreshSnapshot {
    fn drop(&mut self) {
        // An error unwinding through here leaves the stack to the transaction's abort, which
        // pops everything pushed in it; only a snapshot still on top is ours to pop.
        if std::thread::panicking() {
            return;
        }
        // SAFETY: pops the snapshot push() made active, when it is still the active one.
        unsafe {
            if pg_sys::ActiveSnapshotSet() && pg_sys::GetActiveSnapshot() == self.snapshot {
                pg_sys::PopActiveSnapshot();
            }
        }
    }
}

/// The as-of day: the given date, or today in the configured time zone.
pub fn as_of_day(as_of: Option<pgrx::datum::Date>, time_zone: &str) -> Day {
    if let Some(d) = as_of {
        return day_of_date(d, "as_of");
    }
    let today = Spi::connect(|c| {
        c.select(
            "SELECT ((pg_catalog.now() AT TIME ZONE $1)::pg_catalog.date - DATE '2000-01-01')",
            None,
            &[time_zone.into()],
        )?
        .first()
        .get::<i32>(1)
    })
    .or_raise("reading today's date");
    Day(today.unwrap_or_default())
}
