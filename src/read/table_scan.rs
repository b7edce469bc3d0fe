//! Reading a table with the table access method's own scan, without the executor in between
//! ([`RawScan`]; the orders read of src/read/purchases/orders_scan.rs and the stored rows' read of
//! src/write/stored_rows.rs), and what that must respect: only a plain table that the current user
//! may read in full qualifies, with the snapshot SPI would have used; everything else is read
//! with SQL.

// Scans a table through its access method's function table, without the executor.
#![allow(unsafe_code)]

use pgrx::prelude::*;

use crate::source::DateKind;
use crate::source::tables::is_utc;
use crate::toolbox::errors::*;

/// Whether plain tables may be read with these scans (`cda_analytics.table_scans`).
pub static ENABLED: pgrx::GucSetting<bool> = pgrx::GucSetting::<bool>::new(true);

/// Why `relid` (named `display` in the reason) cannot be read with a scan of the extension's
/// own, or None when it can: `cda_analytics.table_scans` must be on, and it must be a plain,
/// permanent heap table without row security or child tables, which the current user may read
/// in full.
pub fn why_not(relid: pg_sys::Oid, display: &str) -> Option<String> {
    if !ENABLED.get() {
        return Some("cda_analytics.table_scans is off".into());
    }
    // SAFETY: catalog lookups by OID; the relation is opened (locked as any read of it would
    // be, until the transaction ends) and closed here.
    unsafe {
        if pg_sys::IsInParallelMode() {
            return Some("already in parallel mode".into());
        }
        if pg_sys::get_rel_relkind(relid) as u8 != pg_sys::RELKIND_RELATION {
            return Some(format!("{display} is not a plain table"));
        }
        if pg_sys::pg_class_aclcheck(
            relid,
            pg_sys::GetUserId(),
            pg_sys::ACL_SELECT as pg_sys::AclMode,
        ) != pg_sys::AclResult::ACLCHECK_OK
        {
            return Some(format!("the current user may not read all of {display}"));
        }
        let rel = pg_sys::table_open(relid, pg_sys::AccessShareLock as i32);
        let form = &*(*rel).rd_rel;
        let (security, children) = (form.relrowsecurity, form.relhassubclass);
        let (persistence, am) = (form.relpersistence as u8, form.relam);
        pg_sys::table_close(rel, pg_sys::NoLock as i32);
        // Parallel workers cannot see a temporary table's buffers, which are the leader's own.
        if persistence == pg_sys::RELPERSISTENCE_TEMP {
            return Some(format!("{display} is a temporary table"));
        }
        // Other access methods may scan in parallel differently, or not at all.
        if am != pg_sys::HEAP_TABLE_AM_OID {
            return Some(format!("{display} is not stored by the heap access method"));
        }
        if security {
            return Some(format!("{display} has row security enabled"));
        }
        if children {
            return Some(format!("{display} has child tables"));
        }
    }
    managed_elsewhere(relid, display)
}

/// Engines that keep a table's rows elsewhere than in its heap while the catalog still shows a
/// plain heap table: their catalog table, and a query on it that says whether the table `$1` is
/// one they manage. Citus keeps a distributed, reference or local-in-metadata table's rows in
/// shards (on other nodes, or in another table), and the coordinator's heap may hold stale rows
/// from before it was distributed; TimescaleDB keeps a hypertable's rows in its chunks, which
/// its own planner hook reads.
const ENGINES: [(&std::ffi::CStr, &std::ffi::CStr, &str, &str); 2] = [
    (
        c"pg_catalog",
        c"pg_dist_partition",
        "SELECT EXISTS (SELECT FROM pg_catalog.pg_dist_partition \
         WHERE logicalrelid::pg_catalog.oid = $1)",
        "Citus",
    ),
    (
        c"_timescaledb_catalog",
        c"hypertable",
        "SELECT EXISTS (SELECT FROM _timescaledb_catalog.hypertable h \
         JOIN pg_catalog.pg_class c ON c.relname = h.table_name \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace AND n.nspname = h.schema_name \
         WHERE c.oid = $1)",
        "TimescaleDB",
    ),
];

/// Why the heap of `relid` may not be the table's truth, when an engine of [`ENGINES`] is
/// installed and manages it, or when it is installed and its catalog may not be read. No other
/// engine is known to hide rows behind a plain heap table (docs/read-path.md says what is and is
/// not checked).
fn managed_elsewhere(relid: pg_sys::Oid, display: &str) -> Option<String> {
    for (schema, table, sql, engine) in ENGINES {
        // SAFETY: catalog lookups by name; a missing schema or table is InvalidOid.
        let catalog = unsafe {
            let ns = pg_sys::get_namespace_oid(schema.as_ptr(), true);
            if ns == pg_sys::InvalidOid {
                continue;
            }
            pg_sys::get_relname_relid(table.as_ptr(), ns)
        };
        if catalog == pg_sys::InvalidOid {
            continue;
        }
        // SAFETY: a permission check by OID.
        let readable = unsafe {
            pg_sys::pg_class_aclcheck(
                catalog,
                pg_sys::GetUserId(),
                pg_sys::ACL_SELECT as pg_sys::AclMode,
            )
        } == pg_sys::AclResult::ACLCHECK_OK;
        if !readable {
            return Some(format!(
                "{engine} is installed and the current user may not read its catalog to tell \
                 whether it manages {display}"
            ));
        }
        // Read-only through a client: Spi::get_one would assign a transaction id.
        let managed =
            Spi::connect(|c| c.select(sql, None, &[relid.into()])?.first().get::<bool>(1))
                .or_raise(&format!("looking up {display} in {engine}'s catalog"));
        if managed == Some(true) {
            return Some(format!(
                "{display} is managed by {engine}, which keeps its rows outside its heap"
            ));
        }
    }
    None
}

/// Whether a date-like column reads in place (microseconds since 2000-01-01, taken as UTC), or
/// why it needs SQL: a `timestamptz` read in another time zone, or a `date`. `what` names the
/// column's values ("order date", "signup").
pub fn date_in_place(kind: DateKind, zone: &str, what: &str) -> Result<(), String> {
    match kind {
        DateKind::Timestamp => Ok(()),
        DateKind::TimestampTz if is_utc(zone) => Ok(()),
        DateKind::TimestampTz => Err(format!("the {what}s are converted to the time zone {zone}")),
        DateKind::Date => Err(format!("the {what} column is a date")),
    }
}

/// The snapshot a read statement run through SPI here would use, registered: the statement's
/// own while this transaction has written nothing, else a new one that sees the transaction's
/// earlier writes (as SPI takes for a statement that is not read-only). The caller unregisters
/// it.
///
/// # Safety
/// In a backend, inside a transaction, not in parallel mode.
pub unsafe fn read_snapshot() -> pg_sys::Snapshot {
    // SAFETY: as the caller vouches.
    unsafe {
        let active = pg_sys::GetActiveSnapshot();
        let snapshot = if pg_sys::GetCurrentTransactionIdIfAny() == pg_sys::InvalidTransactionId
            && !active.is_null()
        {
            active
        } else {
            pg_sys::CommandCounterIncrement();
            pg_sys::GetTransactionSnapshot()
        };
        pg_sys::RegisterSnapshot(snapshot)
    }
}

/// Why [`RawScan::read_run`] stopped.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Stop {
    /// It read as many rows as it was asked to.
    Full,
    /// The scan has no more rows.
    End,
    /// The row callback asked for the slow path: the row stays in the slot ([`RawScan::slow_row`]).
    Slow,
}

/// What [`RowReader::fast`] asks for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Step {
    Next,
    /// Hand this row to [`RowReader::slow`]: reading it needs calls into PostgreSQL (a value to
    /// detoast, an error to raise).
    Slow,
}

/// Whether a scan goes on after a [`RowReader`]'s step.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Flow {
    Go,
    /// End the scan here (an error to raise once it has ended, say).
    Stop,
}

/// One row of a scan: its first columns' values and NULL flags, and its place.
pub struct Row<'a> {
    pub values: &'a [pg_sys::Datum],
    pub nulls: &'a [bool],
    pub tid: &'a pg_sys::ItemPointerData,
}

/// What a scan does with its rows, for [`RawScan::for_each_row`], which owns the protocol: every
/// row goes either to `fast` or to `slow`, never to neither, and interrupts are checked after
/// every run.
pub trait RowReader {
    /// Rows per run; each run is read inside one error boundary.
    const RUN: usize;

    /// A row whose first columns lie in the slot as stored. Reads them in place, or asks with
    /// [`Step::Slow`] for the row to be handed to [`RowReader::slow`] instead. Runs inside the
    /// boundary, so it must not call into PostgreSQL (a panic is caught there and resumed
    /// outside).
    fn fast(&mut self, row: Row<'_>) -> Step;

    /// A row the fast path could not read: one [`RowReader::fast`] handed over, or one whose
    /// columns PostgreSQL had to fill in (columns added after the row was written get their
    /// defaults here; the fast path never sees such a row). Runs outside the boundary, after
    /// [`RowReader::after_run`] for the run it ended, and may call into PostgreSQL.
    fn slow(&mut self, row: Row<'_>) -> Flow;

    /// After each run of fast rows, before the slow row that may have ended it.
    fn after_run(&mut self) -> Flow {
        Flow::Go
    }
}

type NextFn = unsafe extern "C-unwind" fn(
    pg_sys::TableScanDesc,
    pg_sys::ScanDirection::Type,
    *mut pg_sys::TupleTableSlot,
) -> bool;
type EndFn = unsafe extern "C-unwind" fn(pg_sys::TableScanDesc);

/// A table read through its access method's own scan, without the executor, in runs of rows
/// that share one error boundary. pgrx puts a boundary (a `sigsetjmp`, with its bookkeeping)
/// around every call into PostgreSQL, and a row costs two calls (the next row, its columns):
/// those boundaries were a fifth of the read (BENCHMARKS.md, "Measurements behind the code"). A
/// run instead calls the
/// access method's and the slot's functions through their tables, unguarded, inside one
/// boundary, and hands each row's first columns to a callback that calls nothing in PostgreSQL.
/// An ERROR raised in those functions then passes no Rust frame that has anything to drop.
pub struct RawScan {
    rel: pg_sys::Relation,
    scan: pg_sys::TableScanDesc,
    slot: *mut pg_sys::TupleTableSlot,
    next: NextFn,
    end: EndFn,
    natts: i32,
    /// The snapshot a serial scan registered, unregistered when it ends.
    snapshot: Option<pg_sys::Snapshot>,
}

impl RawScan {
    /// This process's part of the parallel scan `pscan` of `relid`, reading its first `natts`
    /// columns.
    ///
    /// # Safety
    /// In a process of the parallel context whose shared memory holds `pscan`.
    pub unsafe fn parallel(
        relid: pg_sys::Oid,
        pscan: pg_sys::ParallelTableScanDesc,
        natts: i32,
    ) -> Result<Self, String> {
        // SAFETY: as the caller vouches.
        unsafe {
            let rel = pg_sys::table_open(relid, pg_sys::AccessShareLock as i32);
            let (next, end) = Self::functions(rel)?;
            let scan = pg_sys::table_beginscan_parallel(rel, pscan);
            Ok(Self::started(rel, scan, next, end, natts, None))
        }
    }

    /// The whole of `relid`, reading its first `natts` columns, with a new snapshot as a read
    /// statement run through SPI here would take: it sees what was committed before it,
    /// including while this transaction waited for a lock.
    ///
    /// # Safety
    /// In a backend, inside a transaction, not in parallel mode.
    pub unsafe fn serial(relid: pg_sys::Oid, natts: i32) -> Result<Self, String> {
        // SAFETY: as the caller vouches.
        unsafe {
            let rel = pg_sys::table_open(relid, pg_sys::AccessShareLock as i32);
            let (next, end) = Self::functions(rel)?;
            pg_sys::CommandCounterIncrement();
            let snapshot = pg_sys::RegisterSnapshot(pg_sys::GetTransactionSnapshot());
            let scan = pg_sys::table_beginscan(rel, snapshot, 0, std::ptr::null_mut());
            Ok(Self::started(rel, scan, next, end, natts, Some(snapshot)))
        }
    }

    unsafe fn functions(rel: pg_sys::Relation) -> Result<(NextFn, EndFn), String> {
        // SAFETY: an open relation.
        let am = unsafe { &*(*rel).rd_tableam };
        match (am.scan_getnextslot, am.scan_end) {
            (Some(next), Some(end)) => Ok((next, end)),
            _ => Err("the table's access method cannot scan".into()),
        }
    }

    unsafe fn started(
        rel: pg_sys::Relation,
        scan: pg_sys::TableScanDesc,
        next: NextFn,
        end: EndFn,
        natts: i32,
        snapshot: Option<pg_sys::Snapshot>,
    ) -> Self {
        // SAFETY: an open relation.
        let slot = unsafe { pg_sys::table_slot_create(rel, std::ptr::null_mut()) };
        RawScan {
            rel,
            scan,
            slot,
            next,
            end,
            natts,
            snapshot,
        }
    }

    /// Checks that each column the caller decodes (attribute number, and the base types it may
    /// have) has one of those types in the relation as this scan opened it, and raises an error
    /// naming `table` otherwise. The caller resolved
    /// the columns under the lock it still holds (`crate::source::tables::lock`), so this holds
    /// unless something changed the table without that lock; then the read stops with an error
    /// rather than read a datum as a type it no longer has.
    pub fn check_columns(&self, table: &str, expected: &[(i16, &[pg_sys::Oid])]) {
        if let Err(e) = self.columns_as_expected(expected) {
            raise(
                ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                format!("{table} changed while it was read: {e}"),
                Some("Run it again.".into()),
            );
        }
    }

    fn columns_as_expected(&self, expected: &[(i16, &[pg_sys::Oid])]) -> Result<(), String> {
        // SAFETY: an open relation; its descriptor's attributes are read within its length.
        unsafe {
            let desc = (*self.rel).rd_att;
            let natts = (*desc).natts.max(0) as usize;
            let atts = (*desc).attrs.as_slice(natts);
            for &(attnum, types) in expected {
                let at = usize::try_from(attnum - 1).map_err(|_| "a system column".to_string())?;
                let ok = atts.get(at).is_some_and(|a| {
                    !a.attisdropped && types.contains(&pg_sys::getBaseType(a.atttypid))
                });
                if !ok {
                    return Err(format!("column {attnum} changed while the table was read"));
                }
            }
        }
        Ok(())
    }

    /// An estimate of the table's rows, for sizing what is read into.
    pub fn estimated_rows(&self) -> usize {
        // SAFETY: an open relation.
        let tuples = unsafe { (*(*self.rel).rd_rel).reltuples };
        if tuples > 0.0 {
            (tuples as usize).min(1 << 27)
        } else {
            0
        }
    }

    /// Reads every row into `rows` (see [`RowReader`]), then ends the scan. An error raised on
    /// the way leaves the scan to the transaction's abort.
    pub fn for_each_row<R: RowReader>(mut self, rows: &mut R) {
        loop {
            let stop = self.read_run(R::RUN, |values, nulls, tid| {
                rows.fast(Row { values, nulls, tid })
            });
            if rows.after_run() == Flow::Stop {
                break;
            }
            match stop {
                Stop::End => break,
                Stop::Full => {}
                Stop::Slow => {
                    let (values, nulls, tid) = self.slow_row();
                    let row = Row {
                        values,
                        nulls,
                        tid: &tid,
                    };
                    if rows.slow(row) == Flow::Stop {
                        break;
                    }
                }
            }
            check_for_interrupts!();
        }
        self.end();
    }

    /// Reads up to `max` rows, calling `row` with each one's first `natts` values, their NULL
    /// flags and its tid. `row` must not call into PostgreSQL: it runs inside the boundary (a
    /// panic in it is caught there and resumed outside).
    // The access method's and the slot's functions are called through their tables, inside the
    // one boundary of the run.
    #[allow(ffi_unwind_calls)]
    fn read_run(
        &mut self,
        max: usize,
        mut row: impl FnMut(&[pg_sys::Datum], &[bool], &pg_sys::ItemPointerData) -> Step,
    ) -> Stop {
        let (scan, slot, next, natts) = (self.scan, self.slot, self.next, self.natts);
        let forward = pg_sys::ScanDirection::ForwardScanDirection;
        // SAFETY: the scan and the slot are open and used by this scan only; the values are read
        // after the row was stored and before the next one replaces it.
        let read = unsafe {
            pg_sys::ffi::pg_guard_ffi_boundary(|| {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    for _ in 0..max {
                        if !next(scan, forward, slot) {
                            return Stop::End;
                        }
                        if i32::from((*slot).tts_nvalid) < natts {
                            match (*(*slot).tts_ops).getsomeattrs {
                                Some(deform) => deform(slot, natts),
                                None => return Stop::Slow,
                            }
                            // Columns added after the row was written are filled in by
                            // slot_getmissingattrs, on the slow path.
                            if i32::from((*slot).tts_nvalid) < natts {
                                return Stop::Slow;
                            }
                        }
                        let values = std::slice::from_raw_parts((*slot).tts_values, natts as usize);
                        let nulls = std::slice::from_raw_parts((*slot).tts_isnull, natts as usize);
                        if row(values, nulls, &(*slot).tts_tid) == Step::Slow {
                            return Stop::Slow;
                        }
                    }
                    Stop::Full
                }))
            })
        };
        read.unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    }

    /// The row a run stopped at with [`Stop::Slow`], with its first `natts` columns deformed
    /// (through PostgreSQL, so that missing columns get their defaults).
    fn slow_row(&self) -> (&[pg_sys::Datum], &[bool], pg_sys::ItemPointerData) {
        let slot = self.slot;
        // SAFETY: the slot holds the row the run stopped at.
        unsafe {
            if i32::from((*slot).tts_nvalid) < self.natts {
                pg_sys::slot_getsomeattrs_int(slot, self.natts);
            }
            (
                std::slice::from_raw_parts((*slot).tts_values, self.natts as usize),
                std::slice::from_raw_parts((*slot).tts_isnull, self.natts as usize),
                (*slot).tts_tid,
            )
        }
    }

    /// Ends the scan. An error before this leaves the scan to the transaction's abort.
    // The access method's end function is called through its table, inside a boundary.
    #[allow(ffi_unwind_calls)]
    fn end(self) {
        // SAFETY: the slot, scan and relation this scan opened, each released once.
        unsafe {
            pg_sys::ExecDropSingleTupleTableSlot(self.slot);
            let (end, scan) = (self.end, self.scan);
            pg_sys::ffi::pg_guard_ffi_boundary(|| end(scan));
            if let Some(snapshot) = self.snapshot {
                pg_sys::UnregisterSnapshot(snapshot);
            }
            pg_sys::table_close(self.rel, pg_sys::AccessShareLock as i32);
        }
    }
}

/// A smallint, integer or bigint datum (of type `type_oid`) as an i64.
#[inline(always)]
pub fn integer(datum: pg_sys::Datum, type_oid: pg_sys::Oid) -> i64 {
    let d = datum.value();
    match type_oid {
        pg_sys::INT2OID => i64::from(d as i16),
        pg_sys::INT4OID => i64::from(d as i32),
        _ => d as i64,
    }
}
