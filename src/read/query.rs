//! The pieces of the SQL that reads a source: numbered parameters, and a date-like column as a
//! timestamp or a day number in the configured time zone (the date rule of `crate::source`).

use crate::source::tables::{DateKind, is_utc};

/// The numbered parameters of a generated statement.
pub struct Params<'a> {
    pub args: Vec<pgrx::datum::DatumWithOid<'a>>,
}

impl<'a> Params<'a> {
    pub fn new() -> Self {
        Params { args: Vec::new() }
    }

    /// Binds a value and returns its placeholder.
    pub fn bind(&mut self, value: impl Into<pgrx::datum::DatumWithOid<'a>>) -> String {
        self.args.push(value.into());
        format!("${}", self.args.len())
    }
}

/// A date-like column as the timestamp the read aggregates take: a `timestamptz` as is when the
/// zone is UTC, else as local time in the configured zone; a `timestamp` as is; a `date` as its
/// midnight. The aggregates take the day from it.
pub fn timestamp_expr(column: &str, kind: DateKind, zone: &str, params: &mut Params<'_>) -> String {
    match kind {
        DateKind::TimestampTz if is_utc(zone) => column.to_string(),
        DateKind::TimestampTz => {
            let tz = params.bind(zone.to_string());
            format!("({column} AT TIME ZONE {tz}::pg_catalog.text)")
        }
        DateKind::Timestamp => column.to_string(),
        DateKind::Date => format!("{column}::pg_catalog.timestamp"),
    }
}

/// A date-like column as a day number (days since 2000-01-01) in the configured zone, NULL when
/// NULL or infinite, for the queries that group by day in SQL.
pub fn day_expr(column: &str, kind: DateKind, zone: &str, params: &mut Params<'_>) -> String {
    // Unlike the read aggregates, SQL turns a timestamptz into a date in the session's TimeZone,
    // so the configured zone is always spelled out, UTC included.
    let ts = match kind {
        DateKind::TimestampTz => {
            let tz = params.bind(zone.to_string());
            format!("({column} AT TIME ZONE {tz}::pg_catalog.text)")
        }
        DateKind::Timestamp => column.to_string(),
        DateKind::Date => format!("{column}::pg_catalog.timestamp"),
    };
    format!(
        "(CASE WHEN pg_catalog.isfinite({ts}) THEN {ts}::pg_catalog.date - DATE '2000-01-01' END)"
    )
}
