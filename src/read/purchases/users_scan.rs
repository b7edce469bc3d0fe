//! The users read of a whole-run refresh as a scan of the table's own
//! (`crate::read::table_scan::RawScan`): each row's id and signup day go straight into the users
//! table, with no executor, expression or function call per user in between, which was nearly
//! all the aggregate query's cost (BENCHMARKS.md, "Measurements behind the code").
//!
//! The aggregate query remains for a single user's read and for the sources the scan does not
//! serve (src/read/table_scan.rs says which), a signup that needs converting to the configured time
//! zone or is a date, and when `cda_analytics.table_scans` is off.

// Starts a RawScan, whose caller vouches for the transaction state.
#![allow(unsafe_code)]

use cda_analytics_core::calendar::Day;
use cda_analytics_core::ltv::UserTable;
use pgrx::prelude::*;

use crate::read::table_scan::{Flow, RawScan, Row, RowReader, Step, integer};
use crate::source::{DateKind, Source};
use crate::toolbox::convert::day_of_micros;
use crate::toolbox::errors::*;

/// Whether a whole run may read `source`'s users with the scan, or why not.
pub fn plan(source: &Source, zone: &str) -> Result<(), String> {
    if let Some(why) = crate::read::table_scan::why_not(source.users_rel, &source.users) {
        return Err(why);
    }
    crate::read::table_scan::date_in_place(source.registered_at_kind, zone, "signup")?;
    let c = source.user_columns;
    if c.user_id <= 0 || c.registered_at <= 0 {
        return Err("a column is not a plain column".into());
    }
    Ok(())
}

/// Every user of `source` with their signup day, as of `as_of`, in a table not yet frozen.
pub fn read(source: &Source, as_of: Day) -> UserTable {
    let c = source.user_columns;
    let natts = i32::from(c.user_id.max(c.registered_at));
    // SAFETY: a backend in a transaction, not in parallel mode (plan() checked it).
    let scan = unsafe { RawScan::serial(source.users_rel, natts) }.unwrap_or_else(|e| {
        raise(
            ERRCODE_INTERNAL_ERROR,
            format!("cda_analytics: reading {}: {e}", source.users),
            None,
        )
    });
    let signup_type = match source.registered_at_kind {
        DateKind::TimestampTz => pg_sys::TIMESTAMPTZOID,
        _ => pg_sys::TIMESTAMPOID,
    };
    let expected = [
        (c.user_id, &[c.user_id_type][..]),
        (c.registered_at, &[signup_type][..]),
    ];
    scan.check_columns(&source.users, &expected);
    let mut users = UserTable::new(as_of);
    users.reserve(scan.estimated_rows());
    let mut reader = Users {
        users,
        id_at: (c.user_id - 1) as usize,
        id_type: c.user_id_type,
        signup_at: (c.registered_at - 1) as usize,
    };
    scan.for_each_row(&mut reader);
    reader.users
}

/// The users read so far, and where each row holds the id and the signup.
struct Users {
    users: UserTable,
    id_at: usize,
    id_type: pg_sys::Oid,
    signup_at: usize,
}

impl Users {
    fn add(&mut self, row: Row<'_>) {
        let (values, nulls) = (row.values, row.nulls);
        let id = (!nulls[self.id_at]).then(|| integer(values[self.id_at], self.id_type));
        // Microseconds since 2000-01-01 (a timestamp, or a timestamptz read in UTC).
        let micros = (!nulls[self.signup_at]).then(|| values[self.signup_at].value() as i64);
        // A duplicate or an out-of-range date stays in the table; the caller reports it.
        let _ = self.users.add_user(id, day_of_micros(micros));
    }
}

impl RowReader for Users {
    const RUN: usize = 1024;

    fn fast(&mut self, row: Row<'_>) -> Step {
        self.add(row);
        Step::Next
    }

    // Only rows written before a column was added come here, with its default filled in.
    fn slow(&mut self, row: Row<'_>) -> Flow {
        self.add(row);
        Flow::Go
    }
}
