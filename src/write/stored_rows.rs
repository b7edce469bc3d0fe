//! Results tables rewritten only where they changed (core's `stored`): the stored rows'
//! fingerprints are read through the aggregate `_stored_fingerprints(user_id, fingerprint,
//! ctid)`, so a million rows cost one scan and no per-row SPI work, and [`replace_changed`]
//! deletes and inserts only the rows whose fingerprints differ. The LTV and RFM refreshes write
//! this way.

// Reads the stored rows with a RawScan and a C-level aggregate.
#![allow(unsafe_code)]

use cda_analytics_core::phases::Phases;
use cda_analytics_core::stored::{
    Changes, IdPrint, StoredRow, changes, decode_stored, encode_stored,
};
use pgrx::fcinfo::{pg_arg_is_null, pg_getarg_datum_raw};
use pgrx::prelude::*;

use crate::read::aggregates::{
    hand_over_state, i64_arg, inline_bytes, keep, state_arg, take_or_decode, varlena_arg,
    varlena_bytes,
};
use crate::read::table_scan::{Flow, RawScan, Row, RowReader, Step};
use crate::toolbox::errors::*;
use crate::toolbox::settings::with_settings;
use crate::toolbox::statement::execute as run;

type Rows = Vec<StoredRow>;

/// How many stored rows a refresh wrote and removed (a changed row counts in both).
#[derive(Clone, Copy, Default)]
pub struct Written {
    pub rows_written: usize,
    pub rows_removed: usize,
}

/// Removing this many rows by id costs about as much as clearing a small table; beyond it, and
/// beyond a quarter of the table, one DELETE of everything and a bulk INSERT are cheaper.
const REWRITE_ALL_ABOVE: usize = 1000;

/// Makes `ext.table` (keyed by `user_id`, with a `fingerprint` column) hold the rows whose
/// `(user id, fingerprint)` pairs are `new`: removes the stored rows that differ or are gone, then
/// calls `insert` with the indices into `new` of the rows to write (None: all of them, after one
/// DELETE of everything, when more than a quarter of the table and over [`REWRITE_ALL_ABOVE`]
/// rows go). `insert` is not called when nothing is to be written. DELETE rather than TRUNCATE:
/// TRUNCATE is not MVCC-safe (a concurrent REPEATABLE READ reader would see an empty table) and
/// would block readers until commit.
/// `stored` is what [`read`] found, read after the table's lock was taken.
pub fn replace_changed(
    ext: &str,
    table: &str,
    stored: Stored,
    new: &[IdPrint],
    insert: impl FnOnce(Option<&[usize]>),
) -> Written {
    let Stored { rows: stored, read } = stored;
    let stored_len = stored.len();
    let mut phases = Phases::start();
    let Changes { write, remove, .. } = changes(stored, new);
    phases.mark("changes");
    let everything = remove.len() > REWRITE_ALL_ABOVE && remove.len() * 4 > stored_len;
    let written = if everything {
        run(
            &format!("DELETE FROM {ext}.{table}"),
            &[],
            &format!("clearing {table}"),
        );
        insert(None);
        Written {
            rows_written: new.len(),
            rows_removed: stored_len,
        }
    } else {
        let written = Written {
            rows_written: write.len(),
            rows_removed: remove.len(),
        };
        if !remove.is_empty() {
            // The rows are removed where the read found them: the table's lock (taken before
            // the read, see crate::write::refresh::lock) keeps every other writer and VACUUM
            // out, so they are still there. The planner prices each tid as a random page read
            // and would scan the whole table past a few thousand of them, several times slower
            // than the TID scan (BENCHMARKS.md, "Measurements behind the code"), so the scan is
            // chosen for it; JIT is off as it would compile the plan for its inflated cost.
            let tids: Vec<pg_sys::ItemPointerData> = remove.into_iter().map(tid).collect();
            with_settings(&[("enable_seqscan", "off"), ("jit", "off")], || {
                run(
                    &format!("DELETE FROM {ext}.{table} WHERE ctid = ANY ($1)"),
                    &[tids.into()],
                    &format!("removing changed rows from {table}"),
                )
            });
        }
        if !write.is_empty() {
            insert(Some(&write));
        }
        written
    };
    phases.mark("writes");
    pgrx::debug1!(
        "{table}: {}, {} ({} written, {} removed)",
        read.summary(),
        phases.summary(),
        written.rows_written,
        written.rows_removed
    );
    written
}

/// The stored rows of a results table, as [`read`] found them.
pub struct Stored {
    rows: Rows,
    read: Phases,
}

/// Every stored row of `ext.table`, for [`replace_changed`]. A fingerprint that is not 16 bytes
/// (a row edited by hand) matches nothing, so that row is rewritten.
pub fn read(ext: &str, table: &str) -> Stored {
    let mut read = Phases::start();
    let rows = read_rows(ext, table);
    read.mark("stored fingerprints");
    Stored { rows, read }
}

fn read_rows(ext: &str, table: &str) -> Rows {
    match own_scan(ext, table) {
        Ok((relid, columns)) => scan_rows(relid, columns),
        Err(why) => {
            pgrx::debug1!("{table} read with the aggregate query: {why}");
            aggregate_rows(ext, table)
        }
    }
}

/// The attribute numbers of the user id (bigint) and fingerprint (bytea) columns.
#[derive(Clone, Copy)]
struct Columns {
    user_id: i16,
    fingerprint: i16,
}

/// The table and its columns when [`scan_rows`] may read it (see `crate::read::table_scan`), or why
/// not.
fn own_scan(ext: &str, table: &str) -> Result<(pg_sys::Oid, Columns), String> {
    let name = format!("{ext}.{table}");
    let relid = Spi::connect(|c| {
        c.select(
            "SELECT pg_catalog.to_regclass($1)::pg_catalog.oid",
            None,
            &[name.clone().into()],
        )?
        .first()
        .get::<pg_sys::Oid>(1)
    })
    .or_raise(&format!("looking up {table}"))
    .ok_or_else(|| format!("{name} does not exist"))?;
    let column = |col: &std::ffi::CStr, type_oid: pg_sys::Oid| {
        // SAFETY: catalog lookups by OID and name.
        let attnum = unsafe { pg_sys::get_attnum(relid, col.as_ptr()) };
        // SAFETY: as above.
        let type_of = |attnum| unsafe { pg_sys::get_atttype(relid, attnum) };
        match attnum > 0 && type_of(attnum) == type_oid {
            true => Ok(attnum),
            false => Err(format!("{name} has no {col:?} column of the expected type")),
        }
    };
    let columns = Columns {
        user_id: column(c"user_id", pg_sys::INT8OID)?,
        fingerprint: column(c"fingerprint", pg_sys::BYTEAOID)?,
    };
    match crate::read::table_scan::why_not(relid, &name) {
        Some(why) => Err(why),
        None => Ok((relid, columns)),
    }
}

/// Every row's id, fingerprint and place, read with the table access method's own scan: through
/// the aggregate query nearly all the cost was the executor's and the function call's work per
/// row (BENCHMARKS.md, "Measurements behind the code").
fn scan_rows(relid: pg_sys::Oid, c: Columns) -> Rows {
    let natts = i32::from(c.user_id.max(c.fingerprint));
    // SAFETY: a backend in a transaction, not in parallel mode (table_scan::why_not says so).
    let scan = unsafe { RawScan::serial(relid, natts) }
        .unwrap_or_else(|e| raise(ERRCODE_INTERNAL_ERROR, format!("cda_analytics: {e}"), None));
    let mut reader = StoredReader {
        rows: Rows::with_capacity(scan.estimated_rows()),
        id_at: (c.user_id - 1) as usize,
        print_at: (c.fingerprint - 1) as usize,
    };
    scan.for_each_row(&mut reader);
    reader.rows
}

/// The stored rows read so far, and where each row holds the id and the fingerprint.
struct StoredReader {
    rows: Rows,
    id_at: usize,
    print_at: usize,
}

impl RowReader for StoredReader {
    const RUN: usize = 1024;

    fn fast(&mut self, row: Row<'_>) -> Step {
        let (values, nulls) = (row.values, row.nulls);
        if nulls[self.id_at] {
            return Step::Next;
        }
        let print = match nulls[self.print_at] {
            true => None,
            // SAFETY: a value of the row in the slot, copied before the next row.
            false => match unsafe { inline_bytes(values[self.print_at]) } {
                Some(b) => Some(b),
                None => return Step::Slow,
            },
        };
        let id = values[self.id_at].value() as i64;
        self.rows.push(stored_row(id, print, row.tid));
        Step::Next
    }

    fn slow(&mut self, row: Row<'_>) -> Flow {
        let (values, nulls) = (row.values, row.nulls);
        // SAFETY: as above; a stored fingerprint of another length is detoasted (into the
        // caller's memory context) only to be found wrong.
        let print =
            (!nulls[self.print_at]).then(|| unsafe { varlena_bytes(values[self.print_at]) });
        if !nulls[self.id_at] {
            let id = values[self.id_at].value() as i64;
            self.rows.push(stored_row(id, print, row.tid));
        }
        Flow::Go
    }
}

/// The same rows through the aggregate query, for a table the own scan may not read.
fn aggregate_rows(ext: &str, table: &str) -> Rows {
    let sql =
        format!("SELECT {ext}._stored_fingerprints(user_id, fingerprint, ctid) FROM {ext}.{table}");
    crate::read::spi::one_bytea(&sql, &[], &format!("reading {table}"), |bytes| {
        let Some(b) = bytes else {
            return Ok(Vec::new());
        };
        take_or_decode(b, decode_stored)
    })
    .unwrap_or_else(|e| {
        raise(
            ERRCODE_INTERNAL_ERROR,
            format!("_stored_fingerprints: {e}"),
            None,
        )
    })
}

/// A stored row as either read finds it. A fingerprint of another length (a row edited by hand)
/// stays all zeros, which no row hashes to in practice, so that row gets rewritten.
fn stored_row(id: i64, print: Option<&[u8]>, tid: &pg_sys::ItemPointerData) -> StoredRow {
    let mut p = [0u8; 16];
    if let Some(b) = print.filter(|b| b.len() == 16) {
        p.copy_from_slice(b);
    }
    StoredRow {
        id,
        print: p,
        place: place(tid),
    }
}

/// A row's place (block and offset of its ctid) as one number, for core's [`StoredRow`].
fn place(t: &pg_sys::ItemPointerData) -> u64 {
    let (block, offset) = pgrx::itemptr::item_pointer_get_both(*t);
    (u64::from(block) << 16) | u64::from(offset)
}

/// The ctid of a [`place`].
fn tid(place: u64) -> pg_sys::ItemPointerData {
    let mut t = pg_sys::ItemPointerData::default();
    pgrx::itemptr::item_pointer_set_all(&mut t, (place >> 16) as u32, place as u16);
    t
}

// ---- _stored_fingerprints(user_id int8, fingerprint bytea, ctid tid) -> bytea

v1_finfo!(pg_finfo_cda_stored_fingerprints_sfunc);
#[unsafe(no_mangle)]
#[pg_guard]
pub unsafe extern "C-unwind" fn cda_stored_fingerprints_sfunc(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    // SAFETY: PostgreSQL calls `cda_stored_fingerprints_sfunc` with the arguments that sql/read_aggregates.sql declares
    // for it; the states in them are this module's own, made by `keep`.
    unsafe {
        let state = match state_arg::<Rows>(fcinfo, 0) {
            Some(s) => s,
            None => &mut *keep(fcinfo, "_stored_fingerprints", Rows::new()).cast_mut_ptr::<Rows>(),
        };
        if let Some(id) = i64_arg(fcinfo, 1)
            && !pg_arg_is_null(fcinfo, 3)
        {
            let ctid = &*pg_getarg_datum_raw(fcinfo, 3).cast_mut_ptr::<pg_sys::ItemPointerData>();
            state.push(stored_row(id, varlena_arg(fcinfo, 2), ctid));
        }
        pg_sys::Datum::from(state as *mut Rows)
    }
}

v1_finfo!(pg_finfo_cda_stored_fingerprints_final);
#[unsafe(no_mangle)]
#[pg_guard]
pub unsafe extern "C-unwind" fn cda_stored_fingerprints_final(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    // SAFETY: the state is the aggregate's rows.
    unsafe { hand_over_state::<Rows>(fcinfo, |r| encode_stored(r)) }
}
