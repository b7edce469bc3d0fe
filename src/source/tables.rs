//! The shop's tables as configured, resolved against the catalog: that the tables and columns
//! exist with usable types, their names quoted for the SQL the reads generate, and where the own
//! scans find each column. The date rule is in `crate::source`.

// Locks the source tables by name, through PostgreSQL's C functions.
#![allow(unsafe_code)]

use pgrx::prelude::*;

use super::config::Config;
use crate::toolbox::errors::*;
use crate::toolbox::ident::{qualified, quote_ident};

/// How a date-like column becomes a calendar date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateKind {
    TimestampTz,
    Timestamp,
    Date,
}

/// A configured source, checked against the catalog.
#[derive(Debug, Clone)]
pub struct Source {
    /// The users table, schema-qualified and quoted: for the SQL we generate and for messages.
    pub users: String,
    pub user_id: String,
    pub registered_at: String,
    pub registered_at_kind: DateKind,
    /// The orders table, likewise.
    pub orders: String,
    pub order_user_id: String,
    pub order_date: String,
    pub order_date_kind: DateKind,
    pub status: String,
    /// Whether two statuses are equal exactly when their bytes are (text or varchar under a
    /// deterministic collation), so that the read can compare them in Rust.
    pub status_is_plain_text: bool,
    pub amount: String,
    /// Decimal places kept from amounts: the numeric column's scale, 0 for integers, 2 otherwise.
    pub amount_scale: u32,
    /// Whether the amount is numeric already (else it is cast to numeric when read).
    pub amount_is_numeric: bool,
    /// Where the orders read by the extension's own scan finds its columns
    /// (src/read/purchases/orders_scan.rs): the table and the attribute numbers of the user id, date, status
    /// and amount, and the user id's type.
    pub orders_rel: pg_sys::Oid,
    pub order_columns: OrderColumns,
    /// Where the users read by the extension's own scan (src/read/purchases/users_scan.rs) finds its
    /// columns.
    pub users_rel: pg_sys::Oid,
    pub user_columns: UserColumns,
}

/// The attribute numbers of the users' id and signup columns, and the id's type.
#[derive(Debug, Clone, Copy)]
pub struct UserColumns {
    pub user_id: i16,
    pub registered_at: i16,
    pub user_id_type: pg_sys::Oid,
}

/// The attribute numbers of the orders' columns, and the user id's type.
#[derive(Debug, Clone, Copy)]
pub struct OrderColumns {
    pub user_id: i16,
    pub date: i16,
    pub status: i16,
    pub amount: i16,
    pub user_id_type: pg_sys::Oid,
}

pub(super) struct Column {
    pub(super) attnum: i16,
    pub(super) base_type: pg_sys::Oid,
    type_name: String,
    pub(super) category: String,
    is_enum: bool,
    typmod: i32,
    /// Whether the column's collation (if any) compares by bytes.
    deterministic: bool,
}

fn hint_for(setting: &str) -> Option<String> {
    // The item settings are changed by configure_items, the others by configure_source.
    let function = if super::items::SETTINGS.contains(&setting) {
        "configure_items"
    } else {
        "configure_source"
    };
    Some(format!(
        "Point cda_analytics at the right table or column, for example: SELECT * FROM {function}({setting} => '...');"
    ))
}

pub(super) fn find_table(schema: &str, table: &str, role: &str, setting: &str) -> pg_sys::Oid {
    let oid: Option<pg_sys::Oid> = Spi::connect(|c| {
        let t = c.select(
            "SELECT c.oid FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p', 'v', 'm', 'f')",
            None,
            &[schema.into(), table.into()],
        )?;
        if t.is_empty() { Ok(None) } else { t.first().get::<pg_sys::Oid>(1) }
    })
    .or_raise("looking up a source table");
    match oid {
        Some(oid) => oid,
        None => raise(
            ERRCODE_UNDEFINED_TABLE,
            format!("{role} table {} does not exist", qualified(schema, table)),
            hint_for(setting),
        ),
    }
}

pub(super) fn find_column(
    rel: pg_sys::Oid,
    table_display: &str,
    column: &str,
    setting: &str,
) -> Column {
    let found = Spi::connect(|c| {
        let t = c.select(
            "SELECT b.oid, pg_catalog.format_type(a.atttypid, a.atttypmod), b.typcategory::text, \
                    b.typtype = 'e', a.atttypmod, \
                    COALESCE((SELECT co.collisdeterministic FROM pg_catalog.pg_collation co \
                              WHERE co.oid = a.attcollation), true), a.attnum \
             FROM pg_catalog.pg_attribute a \
             JOIN pg_catalog.pg_type t ON t.oid = a.atttypid \
             JOIN pg_catalog.pg_type b ON b.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END \
             WHERE a.attrelid = $1 AND a.attname = $2 AND a.attnum > 0 AND NOT a.attisdropped",
            None,
            &[rel.into(), column.into()],
        )?;
        if t.is_empty() {
            return Ok(None);
        }
        let row = t.first();
        Ok::<_, pgrx::spi::SpiError>(Some(Column {
            base_type: row.get::<pg_sys::Oid>(1)?.unwrap_or(pg_sys::InvalidOid),
            type_name: row.get::<String>(2)?.unwrap_or_default(),
            category: row.get::<String>(3)?.unwrap_or_default(),
            is_enum: row.get::<bool>(4)?.unwrap_or(false),
            typmod: row.get::<i32>(5)?.unwrap_or(-1),
            deterministic: row.get::<bool>(6)?.unwrap_or(false),
            attnum: row.get::<i16>(7)?.unwrap_or(0),
        }))
    })
    .or_raise("looking up a source column");
    match found {
        Some(col) => col,
        None => raise(
            ERRCODE_UNDEFINED_COLUMN,
            format!(
                "column {} of source table {table_display} does not exist",
                quote_ident(column)
            ),
            hint_for(setting),
        ),
    }
}

pub(super) fn wrong_type(
    column: &str,
    table: &str,
    col: &Column,
    expected: &str,
    setting: &str,
) -> ! {
    raise(
        ERRCODE_DATATYPE_MISMATCH,
        format!(
            "column {} of source table {table} has type {}, but {expected}",
            quote_ident(column),
            col.type_name
        ),
        hint_for(setting),
    )
}

fn integer_column(col: &Column, column: &str, table: &str, setting: &str) {
    if ![pg_sys::INT2OID, pg_sys::INT4OID, pg_sys::INT8OID].contains(&col.base_type) {
        wrong_type(
            column,
            table,
            col,
            "a user id must be smallint, integer or bigint",
            setting,
        );
    }
}

fn date_column(col: &Column, column: &str, table: &str, setting: &str) -> DateKind {
    match col.base_type {
        pg_sys::TIMESTAMPTZOID => DateKind::TimestampTz,
        pg_sys::TIMESTAMPOID => DateKind::Timestamp,
        pg_sys::DATEOID => DateKind::Date,
        _ => wrong_type(
            column,
            table,
            col,
            "it must be timestamptz, timestamp or date",
            setting,
        ),
    }
}

/// Locks the configured users and orders tables as a read of them would (ACCESS SHARE, until the
/// transaction ends), each found by name once any concurrent change of it has committed or
/// rolled back (a table dropped and created again is the new one). Called before the tables are
/// resolved, so that what [`resolve`] finds stays true while the transaction reads them: no
/// ALTER TABLE can change a column's type between the check and the read. A table that does not
/// exist is left for [`resolve`] to report. Returns whether a concurrent change of a table's
/// shape or contents (ALTER TABLE, TRUNCATE, VACUUM FULL, a table dropped) committed after the
/// statement's snapshot was taken, which that snapshot does not see: while a lock waited, or
/// just before it was asked for.
pub fn lock(config: &Config) -> bool {
    let mut waited = false;
    for (schema, table) in [
        (&config.users_schema, &config.users_table),
        (&config.orders_schema, &config.orders_table),
    ] {
        let (Ok(schema), Ok(table)) = (
            std::ffi::CString::new(schema.as_str()),
            std::ffi::CString::new(table.as_str()),
        ) else {
            continue;
        };
        // SAFETY: the names outlive the calls that read them; the RangeVar is palloc'd in the
        // current memory context and read only here. Missing schemas and tables give InvalidOid,
        // and so does a lock that is not free at once with RVR_SKIP_LOCKED; then the lock is
        // waited for.
        unsafe {
            let rv =
                pg_sys::makeRangeVar(schema.as_ptr().cast_mut(), table.as_ptr().cast_mut(), -1);
            let lock = pg_sys::AccessShareLock as pg_sys::LOCKMODE;
            let missing_ok = pg_sys::RVROption::RVR_MISSING_OK;
            let at_once = pg_sys::RangeVarGetRelidExtended(
                rv,
                lock,
                missing_ok | pg_sys::RVROption::RVR_SKIP_LOCKED,
                None,
                std::ptr::null_mut(),
            );
            if at_once == pg_sys::InvalidOid {
                let after_wait = pg_sys::RangeVarGetRelidExtended(
                    rv,
                    lock,
                    missing_ok,
                    None,
                    std::ptr::null_mut(),
                );
                waited |= after_wait != pg_sys::InvalidOid;
            }
            let oid = pg_sys::RangeVarGetRelidExtended(
                rv,
                pg_sys::NoLock as pg_sys::LOCKMODE,
                missing_ok,
                None,
                std::ptr::null_mut(),
            );
            waited |= oid != pg_sys::InvalidOid && changed_after_snapshot(oid);
        }
    }
    waited
}

/// Whether the table's catalog row was written by a transaction that the active snapshot does
/// not see: a change (a rewrite, a TRUNCATE, a table dropped and created again) that committed
/// after the statement began but before its lock was asked for, so that the lock did not wait.
/// Its rows are then invisible to that snapshot, as after a wait.
///
/// # Safety
/// In a transaction, with the table locked.
unsafe fn changed_after_snapshot(oid: pg_sys::Oid) -> bool {
    // SAFETY: a syscache lookup by OID, released before returning; the tuple's header is read
    // while the cache entry is pinned. Without an active snapshot there is nothing to compare.
    unsafe {
        if !pg_sys::ActiveSnapshotSet() {
            return false;
        }
        let tuple = pg_sys::SearchSysCache1(
            pg_sys::SysCacheIdentifier::RELOID as i32,
            pg_sys::Datum::from(oid),
        );
        if tuple.is_null() {
            return false;
        }
        let xmin = (*(*tuple).t_data).t_choice.t_heap.t_xmin;
        let unseen = pg_sys::TransactionIdIsNormal(xmin)
            && pg_sys::XidInMVCCSnapshot(xmin, pg_sys::GetActiveSnapshot());
        pg_sys::ReleaseSysCache(tuple);
        unseen
    }
}

/// Checks the configuration's values and every configured table and column, and returns what
/// is needed to read them. Raises a clear error for the first thing wrong. The caller has
/// [`lock`]ed the tables.
pub fn resolve(config: &Config) -> Source {
    config.check_values();
    let users_display = qualified(&config.users_schema, &config.users_table);
    let orders_display = qualified(&config.orders_schema, &config.orders_table);
    let users_rel = find_table(
        &config.users_schema,
        &config.users_table,
        "users",
        "users_table",
    );
    let orders_rel = find_table(
        &config.orders_schema,
        &config.orders_table,
        "orders",
        "orders_table",
    );

    let uid = find_column(
        users_rel,
        &users_display,
        &config.user_id_column,
        "user_id_column",
    );
    integer_column(
        &uid,
        &config.user_id_column,
        &users_display,
        "user_id_column",
    );
    let reg = find_column(
        users_rel,
        &users_display,
        &config.registered_at_column,
        "registered_at_column",
    );
    let registered_at_kind = date_column(
        &reg,
        &config.registered_at_column,
        &users_display,
        "registered_at_column",
    );

    let ouid = find_column(
        orders_rel,
        &orders_display,
        &config.order_user_id_column,
        "order_user_id_column",
    );
    integer_column(
        &ouid,
        &config.order_user_id_column,
        &orders_display,
        "order_user_id_column",
    );
    let odate = find_column(
        orders_rel,
        &orders_display,
        &config.order_date_column,
        "order_date_column",
    );
    let order_date_kind = date_column(
        &odate,
        &config.order_date_column,
        &orders_display,
        "order_date_column",
    );
    let status = find_column(
        orders_rel,
        &orders_display,
        &config.status_column,
        "status_column",
    );
    if !(status.category == "S" || status.is_enum) {
        wrong_type(
            &config.status_column,
            &orders_display,
            &status,
            "a status must be text, varchar or an enum",
            "status_column",
        );
    }
    let amount = find_column(
        orders_rel,
        &orders_display,
        &config.amount_column,
        "amount_column",
    );
    let amount_scale = match amount.base_type {
        pg_sys::NUMERICOID if amount.typmod >= 4 => {
            // numeric(p, s): typmod = ((p << 16) | s) + VARHDRSZ; PG 15 allows a negative s.
            let scale = ((amount.typmod - 4) & 0xffff) as i16;
            let max = cda_analytics_core::money::MAX_SCALE;
            // Money is summed exactly at the column's scale, in 64-bit minor units: more decimal
            // places than that would be rounded silently, so the column is refused instead.
            if scale > max as i16 {
                raise(
                    ERRCODE_FEATURE_NOT_SUPPORTED,
                    format!(
                        "column {} of source table {orders_display} has {scale} decimal places, but amounts are summed exactly at {max} at most",
                        quote_ident(&config.amount_column)
                    ),
                    Some(format!(
                        "Point configure_source at a view that casts the amount, for example {}::numeric(20,{max}).",
                        quote_ident(&config.amount_column)
                    )),
                );
            }
            scale.max(0) as u32
        }
        pg_sys::INT2OID | pg_sys::INT4OID | pg_sys::INT8OID => 0,
        pg_sys::NUMERICOID | pg_sys::FLOAT4OID | pg_sys::FLOAT8OID => 2,
        _ => wrong_type(
            &config.amount_column,
            &orders_display,
            &amount,
            "an amount must be numeric, integer or floating point",
            "amount_column",
        ),
    };

    Source {
        users: users_display,
        user_id: quote_ident(&config.user_id_column),
        registered_at: quote_ident(&config.registered_at_column),
        registered_at_kind,
        orders: orders_display,
        order_user_id: quote_ident(&config.order_user_id_column),
        order_date: quote_ident(&config.order_date_column),
        order_date_kind,
        status: quote_ident(&config.status_column),
        // char(n) is compared without its trailing blanks, an enum by its label's text; a
        // domain over text takes its base type's equality.
        status_is_plain_text: matches!(status.base_type, pg_sys::TEXTOID | pg_sys::VARCHAROID)
            && status.deterministic,
        amount: quote_ident(&config.amount_column),
        amount_scale,
        amount_is_numeric: amount.base_type == pg_sys::NUMERICOID,
        orders_rel,
        order_columns: OrderColumns {
            user_id: ouid.attnum,
            date: odate.attnum,
            status: status.attnum,
            amount: amount.attnum,
            user_id_type: ouid.base_type,
        },
        users_rel,
        user_columns: UserColumns {
            user_id: uid.attnum,
            registered_at: reg.attnum,
            user_id_type: uid.base_type,
        },
    }
}

/// Whether a time zone name is UTC under another spelling: then a `timestamptz` already holds
/// the UTC wall clock and needs no conversion per row. PostgreSQL matches zone names
/// case-insensitively.
pub fn is_utc(zone: &str) -> bool {
    let zone = zone.to_ascii_lowercase();
    let zone = zone.strip_prefix("etc/").unwrap_or(&zone);
    ["utc", "uct", "gmt", "universal", "zulu", "greenwich"].contains(&zone)
}

impl Source {
    /// The error for a users table that cannot serve as one row per user (a duplicate id), for
    /// every read of the users.
    pub fn raise_bad_users(&self, e: impl std::fmt::Display) -> ! {
        raise(
            ERRCODE_DATA_EXCEPTION,
            format!("{e} ({})", self.users),
            Some("user ids must be unique; point configure_source at a table or view with one row per user".into()),
        )
    }
}

/// Checks that `role`, which set the configuration, may read every table and column the
/// configuration names (SELECT on the table, or on each of those columns): when it sets it, and
/// before every read of the tables, so that a refresh run by a more privileged role (the owner,
/// a superuser's scheduled job) never copies into the results what the configuring role may
/// not read. Error 42501 names the role, the table and the column otherwise.
pub fn check_readable(source: &Source, role: &str) {
    let u = source.user_columns;
    let o = source.order_columns;
    let columns = [
        (source.users_rel, u.user_id, source.users.as_str()),
        (source.users_rel, u.registered_at, source.users.as_str()),
        (source.orders_rel, o.user_id, source.orders.as_str()),
        (source.orders_rel, o.date, source.orders.as_str()),
        (source.orders_rel, o.status, source.orders.as_str()),
        (source.orders_rel, o.amount, source.orders.as_str()),
    ];
    check_columns_readable(role, &columns, "configure_source");
}

/// Checks that `role` may read each of `columns` (table, attribute number, table as shown), as
/// [`check_readable`] does for the orders and users; `setter` names the function that set them.
pub(super) fn check_columns_readable(
    role: &str,
    columns: &[(pg_sys::Oid, i16, &str)],
    setter: &str,
) {
    let rels: Vec<pg_sys::Oid> = columns.iter().map(|c| c.0).collect();
    let attnums: Vec<i16> = columns.iter().map(|c| c.1).collect();
    // One query: whether the role still exists, and the first column it may not read (a NULL
    // role reads nothing, and is reported as gone).
    let denied: Result<Option<i32>, String> = Spi::connect(|c| {
        let row = c
            .select(
                "SELECT r.oid IS NULL AS gone, \
                        (SELECT min(x.i)::pg_catalog.int4 \
                         FROM ROWS FROM (pg_catalog.unnest($2::pg_catalog.oid[]), \
                                         pg_catalog.unnest($3::pg_catalog.int2[])) \
                              WITH ORDINALITY AS x(rel, col, i) \
                         WHERE NOT pg_catalog.has_column_privilege(r.oid, x.rel, x.col, 'SELECT')) AS first \
                 FROM (SELECT (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = $1) AS oid) r",
                None,
                &[role.into(), rels.into(), attnums.into()],
            )?
            .first();
        if row.get_by_name::<bool, _>("gone")?.unwrap_or(true) {
            return Ok(Err(format!(
                "role \"{role}\", which set the configuration, no longer exists"
            )));
        }
        Ok::<_, pgrx::spi::SpiError>(Ok(row.get_by_name::<i32, _>("first")?))
    })
    .or_raise("checking the configuring role's privileges");
    let message = match denied {
        Ok(None) => return,
        Ok(Some(i)) => {
            let (rel, attnum, table) = columns[((i - 1).max(0) as usize).min(columns.len() - 1)];
            // SAFETY: a catalog lookup by OID and attribute number; NULL for none.
            let name = unsafe {
                let n = pg_sys::get_attname(rel, attnum, true);
                if n.is_null() {
                    format!("{attnum}")
                } else {
                    quote_ident(&std::ffi::CStr::from_ptr(n).to_string_lossy())
                }
            };
            format!(
                "role \"{role}\", which set the configuration, may not read column {name} of {table}"
            )
        }
        Err(m) => m,
    };
    raise(
        ERRCODE_INSUFFICIENT_PRIVILEGE,
        message,
        Some(format!(
            "The role that sets the source ({setter}) must be able to SELECT every table and column it names, and keep that privilege: grant it, or have such a role set the configuration again."
        )),
    );
}
