//! The orders read of a whole-run refresh as the extension's own parallel scan of the table.
//!
//! The aggregate query (src/ltv/aggregate.rs) pays the executor for every order: the scan and
//! aggregate nodes, a per-row expression that fills seven arguments (one of them a parameter
//! fetched again for every row), a call through fmgr and pgrx's error boundary, and a memory
//! context reset. For a plain table the caller may read in full, this module starts the
//! parallel workers itself, through PostgreSQL's parallel context as a parallel CREATE INDEX
//! does: each process takes blocks from the table access method's parallel scan, deforms the
//! four columns it reads, and folds each order straight into the shared slots
//! (src/ltv/shared_totals.rs). Only each process's counts come back.
//!
//! Anything else goes through the aggregate query, which has the executor's generality: a
//! view, a partitioned, inherited or temporary table, another table access method than heap,
//! row security on the table, a caller without SELECT on the whole table, a date that needs a
//! time zone or a cast, an amount that needs a cast, a status compared by its collation, a
//! single user's read, or a run without shared slots. So does everything when
//! `cda_analytics.parallel_scan` is off.

use cda_analytics_core::ltv::{
    FoldError, OrderBatch, OrderRow, OrderTotals, StatusClass, StatusSet, UserTable,
};
use cda_analytics_core::money::AmountError;
use cda_analytics_core::pg_numeric::decode_minor;
use pgrx::prelude::*;

use super::aggregate::{Order, fold_one};
use crate::aggregates::{day_of, varlena_bytes};
use crate::errors::*;
use crate::source::{DateKind, Source, is_utc};

/// Whether whole-run reads may use this scan (`cda_analytics.parallel_scan`).
pub static ENABLED: pgrx::GucSetting<bool> = pgrx::GucSetting::<bool>::new(true);

/// The keys of this scan's entries in the parallel context's table of contents.
const KEY_PARAMS: u64 = 0xCDA0_0000_0000_0001;
const KEY_SCAN: u64 = 0xCDA0_0000_0000_0002;
const KEY_USERS: u64 = 0xCDA0_0000_0000_0003;
const KEY_STATUSES: u64 = 0xCDA0_0000_0000_0004;
const KEY_RESULTS: u64 = 0xCDA0_0000_0000_0005;
/// Each process's counts (and first error) come back in this many bytes: the length, then
/// `OrderTotals::encode` of totals without slots.
const RESULT_BYTES: usize = 64 * 1024;
/// An error's quoted amount is cut to this many characters if the result would not fit.
const MAX_QUOTED: usize = 1000;
/// Rows read on the slow path (detoasted into a memory context of their own) between two
/// resets of that context.
const RESET_EVERY: u32 = 4096;

/// What every process of the scan needs besides the users and the statuses.
#[derive(Clone, Copy)]
#[repr(C)]
struct Params {
    relid: pg_sys::Oid,
    user_id: i16,
    date: i16,
    status: i16,
    amount: i16,
    user_id_type: pg_sys::Oid,
    scale: u32,
    users_len: usize,
    statuses_len: usize,
    participants: usize,
}

/// The scan a whole-run read can use, when it can: see the module's documentation.
pub struct Plan {
    params: Params,
}

/// The plan for reading `source`'s orders with this scan, or why the aggregate query must read
/// them.
pub fn plan(source: &Source, zone: &str) -> Result<Plan, String> {
    if !ENABLED.get() {
        return Err("cda_analytics.parallel_scan is off".into());
    }
    match source.order_date_kind {
        DateKind::Timestamp => {}
        DateKind::TimestampTz if is_utc(zone) => {}
        DateKind::TimestampTz => {
            return Err(format!(
                "the order dates are converted to the time zone {zone}"
            ));
        }
        DateKind::Date => return Err("the order date column is a date".into()),
    }
    if !source.status_is_plain_text {
        return Err("the statuses are compared by their type's or collation's equality".into());
    }
    if !source.amount_is_numeric {
        return Err("the amounts are cast to numeric".into());
    }
    let c = source.order_columns;
    if [c.user_id, c.date, c.status, c.amount]
        .iter()
        .any(|&a| a <= 0)
    {
        return Err("a column is not a plain column".into());
    }
    if let Some(why) = crate::table_scan::why_not(source.orders_rel, &source.orders) {
        return Err(why);
    }
    Ok(Plan {
        params: Params {
            relid: source.orders_rel,
            user_id: c.user_id,
            date: c.date,
            status: c.status,
            amount: c.amount,
            user_id_type: c.user_id_type,
            scale: source.amount_scale,
            users_len: 0,
            statuses_len: 0,
            participants: 0,
        },
    })
}

/// How a whole-run refresh of LTV or RFM reads the configured orders: with the extension's own
/// parallel scan, or with an aggregate query and why. Runs of fewer than 16,384 users, and
/// servers without parallel workers, always read with the aggregate query.
#[pg_extern(stable, parallel_restricted)]
#[search_path(pg_catalog, pg_temp)]
fn orders_read_plan() -> String {
    let ctx = crate::context::Context::load(None);
    match plan(&ctx.source, &ctx.config.time_zone) {
        Ok(_) => "parallel scan".into(),
        Err(why) => format!("aggregate query: {why}"),
    }
}

/// Reads the orders with the scan into the shared slots named in front of `users_bytes` (the
/// bytes the aggregate query would pass to its processes, `users` encoded), and returns the
/// counts and first error of every process together.
pub fn run(plan: &Plan, users: &UserTable, users_bytes: &[u8], statuses: &[String]) -> OrderTotals {
    let statuses = encode_statuses(statuses);
    // SAFETY: the parallel context is created, used and destroyed here, in parallel mode, with
    // every pointer into its memory used only while it lives; an error in between aborts the
    // transaction, which ends parallel mode and destroys the context.
    unsafe {
        let rel = pg_sys::table_open(plan.params.relid, pg_sys::AccessShareLock as i32);
        let workers = planned_workers(rel);
        let snapshot = crate::table_scan::read_snapshot();

        pg_sys::EnterParallelMode();
        let pcxt = pg_sys::CreateParallelContext(
            c"cda_analytics".as_ptr(),
            c"cda_ltv_orders_worker".as_ptr(),
            workers,
        );
        let participants = workers as usize + 1;
        let scan_bytes = pg_sys::table_parallelscan_estimate(rel, snapshot);
        let e = &mut (*pcxt).estimator;
        for bytes in [
            std::mem::size_of::<Params>(),
            scan_bytes,
            users_bytes.len().max(1),
            statuses.len().max(1),
            participants * RESULT_BYTES,
        ] {
            e.space_for_chunks += buffer_align(bytes);
        }
        e.number_of_keys += 5;
        pg_sys::InitializeParallelDSM(pcxt);
        let toc = (*pcxt).toc;

        let params = Params {
            users_len: users_bytes.len(),
            statuses_len: statuses.len(),
            participants,
            ..plan.params
        };
        let p = pg_sys::shm_toc_allocate(toc, std::mem::size_of::<Params>()).cast::<Params>();
        p.write(params);
        pg_sys::shm_toc_insert(toc, KEY_PARAMS, p.cast());
        let scan =
            pg_sys::shm_toc_allocate(toc, scan_bytes).cast::<pg_sys::ParallelTableScanDescData>();
        pg_sys::table_parallelscan_initialize(rel, scan, snapshot);
        pg_sys::shm_toc_insert(toc, KEY_SCAN, scan.cast());
        for (key, bytes) in [
            (KEY_USERS, users_bytes),
            (KEY_STATUSES, statuses.as_slice()),
        ] {
            let to = pg_sys::shm_toc_allocate(toc, bytes.len().max(1)).cast::<u8>();
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), to, bytes.len());
            pg_sys::shm_toc_insert(toc, key, to.cast());
        }
        let results = pg_sys::shm_toc_allocate(toc, participants * RESULT_BYTES).cast::<u8>();
        std::ptr::write_bytes(results, 0, participants * RESULT_BYTES);
        pg_sys::shm_toc_insert(toc, KEY_RESULTS, results.cast());

        let shared = Shared::lookup(toc);

        pg_sys::LaunchParallelWorkers(pcxt);
        let launched = (*pcxt).nworkers_launched.max(0) as usize;
        let leader_scans = crate::spi_read::leader_joins(launched);
        if leader_scans {
            let part = scan_part(&shared, Some(users));
            shared.put_result(participants - 1, part);
        }
        pg_sys::WaitForParallelWorkersToFinish(pcxt);

        let mut total = OrderTotals::default();
        let mut bad = None;
        for i in 0..participants {
            match shared.result(i) {
                Ok(Some(part)) => total.merge(&part, None),
                Ok(None) => {}
                Err(e) => bad = Some(e),
            }
        }
        pg_sys::DestroyParallelContext(pcxt);
        pg_sys::ExitParallelMode();
        pg_sys::UnregisterSnapshot(snapshot);
        pg_sys::table_close(rel, pg_sys::NoLock as i32);
        if let Some(e) = bad {
            raise(
                ERRCODE_INTERNAL_ERROR,
                format!("cda_analytics: reading the orders: {e}"),
                None,
            );
        }
        pgrx::debug1!(
            "orders scan: {launched} of {workers} workers launched, leader scanned: {leader_scans}"
        );
        total
    }
}

/// The workers a parallel plan would give a sequential scan of `rel`: the table's
/// `parallel_workers` option, else one for a table of `min_parallel_table_scan_size` and one
/// more for each tripling of it (compute_parallel_worker in the planner), at most
/// `max_parallel_workers_per_gather`.
unsafe fn planned_workers(rel: pg_sys::Relation) -> i32 {
    // SAFETY: an open relation; plain reads of GUC variables.
    unsafe {
        let cap = pg_sys::max_parallel_workers_per_gather.max(0);
        let options = (*rel).rd_options.cast::<pg_sys::StdRdOptions>();
        if !options.is_null() && (*options).parallel_workers >= 0 {
            return (*options).parallel_workers.min(cap);
        }
        let blocks = i64::from(pg_sys::RelationGetNumberOfBlocksInFork(
            rel,
            pg_sys::ForkNumber::MAIN_FORKNUM,
        ));
        let threshold = i64::from(pg_sys::min_parallel_table_scan_size.max(1));
        if blocks < threshold {
            return 0;
        }
        let mut workers = 1;
        let mut next = threshold.saturating_mul(3);
        while blocks >= next && workers < cap {
            workers += 1;
            next = next.saturating_mul(3);
        }
        workers.min(cap)
    }
}

/// BUFFERALIGN: the chunks of a table of contents are aligned to 32 bytes.
fn buffer_align(bytes: usize) -> usize {
    bytes.div_ceil(32) * 32
}

/// The statuses as one byte string: for each, its length as a u32, then its bytes.
fn encode_statuses(statuses: &[String]) -> Vec<u8> {
    let mut out = Vec::new();
    for s in statuses {
        out.extend_from_slice(&(s.len() as u32).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
    }
    out
}

fn decode_statuses(mut bytes: &[u8]) -> Result<StatusSet, String> {
    let mut statuses = Vec::new();
    while let Some((len, rest)) = bytes.split_first_chunk::<4>() {
        let len = u32::from_le_bytes(*len) as usize;
        let Some((s, rest)) = rest.split_at_checked(len) else {
            return Err("truncated statuses".into());
        };
        statuses.push(s.to_vec());
        bytes = rest;
    }
    if !bytes.is_empty() {
        return Err("truncated statuses".into());
    }
    Ok(StatusSet::new(statuses))
}

/// The scan's entries in the table of contents, as one process sees them.
struct Shared<'a> {
    params: Params,
    scan: pg_sys::ParallelTableScanDesc,
    users: &'a [u8],
    statuses: &'a [u8],
    results: *mut u8,
}

impl Shared<'_> {
    /// # Safety
    /// `toc` must be this scan's table of contents, filled in by [`run`].
    unsafe fn lookup(toc: *mut pg_sys::shm_toc) -> Self {
        // SAFETY: every key was inserted by run() with the sizes in the params.
        unsafe {
            let params = *pg_sys::shm_toc_lookup(toc, KEY_PARAMS, false).cast::<Params>();
            let bytes = |key, len| {
                std::slice::from_raw_parts(
                    pg_sys::shm_toc_lookup(toc, key, false)
                        .cast::<u8>()
                        .cast_const(),
                    len,
                )
            };
            Shared {
                params,
                scan: pg_sys::shm_toc_lookup(toc, KEY_SCAN, false).cast(),
                users: bytes(KEY_USERS, params.users_len),
                statuses: bytes(KEY_STATUSES, params.statuses_len),
                results: pg_sys::shm_toc_lookup(toc, KEY_RESULTS, false).cast(),
            }
        }
    }

    /// Leaves process `i`'s counts and first error for the leader.
    fn put_result(&self, i: usize, part: OrderTotals) {
        let mut bytes = part.encode();
        if bytes.len() > RESULT_BYTES - 8 {
            bytes = shortened(part).encode();
        }
        if i >= self.params.participants || bytes.len() > RESULT_BYTES - 8 {
            raise(
                ERRCODE_INTERNAL_ERROR,
                format!("cda_analytics: reading the orders: no room for the result of process {i}"),
                None,
            );
        }
        // SAFETY: region i of the results, RESULT_BYTES long, written by process i only.
        unsafe {
            let at = self.results.add(i * RESULT_BYTES);
            std::ptr::copy_nonoverlapping((bytes.len() as u64).to_le_bytes().as_ptr(), at, 8);
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), at.add(8), bytes.len());
        }
    }

    /// Process `i`'s counts, once every process has finished; None when it did not scan.
    fn result(&self, i: usize) -> Result<Option<OrderTotals>, String> {
        // SAFETY: region i of the results; every writer has finished.
        let region = unsafe {
            std::slice::from_raw_parts(
                self.results.add(i * RESULT_BYTES).cast_const(),
                RESULT_BYTES,
            )
        };
        let (len, rest) = region.split_at(8);
        let len = u64::from_le_bytes(len.try_into().unwrap_or_default()) as usize;
        if len == 0 {
            return Ok(None);
        }
        let bytes = rest.get(..len).ok_or("a result longer than its room")?;
        OrderTotals::decode(bytes).map(Some)
    }
}

/// The totals with the amount quoted by their error cut short, so that they fit the room for a
/// result.
fn shortened(part: OrderTotals) -> OrderTotals {
    let cut = |t: String| -> String {
        match t.char_indices().nth(MAX_QUOTED) {
            Some((at, _)) => format!("{}...", &t[..at]),
            None => t,
        }
    };
    let error = match part.check() {
        Err(FoldError::BadAmount { error, user_id }) => FoldError::BadAmount {
            error: match error {
                AmountError::NotANumber(t) => AmountError::NotANumber(cut(t)),
                AmountError::Overflow(t) => AmountError::Overflow(cut(t)),
            },
            user_id,
        },
        Err(e) => e,
        Ok(()) => return part,
    };
    let mut part = part;
    part.replace_error(error);
    part
}

/// One process's part of the scan: folds the orders of the blocks it takes into the shared
/// slots, and returns its counts (without slots) and first error. The leader passes the users
/// it has; a worker decodes them from the shared memory.
///
/// # Safety
/// In a process of the parallel context that [`run`] created, while it lives.
unsafe fn scan_part(shared: &Shared<'_>, leader_users: Option<&UserTable>) -> OrderTotals {
    let bad_state = |e: String| -> ! {
        raise(
            ERRCODE_INTERNAL_ERROR,
            format!("cda_analytics: reading the orders: bad users state ({e})"),
            None,
        )
    };
    let decoded;
    let users = match leader_users {
        Some(users) => users,
        None => {
            decoded = UserTable::decode(super::shared_totals::split(shared.users).1)
                .unwrap_or_else(|e| bad_state(e));
            &decoded
        }
    };
    let (mut totals, attached) =
        super::shared_totals::totals_for(shared.users, users).unwrap_or_else(|e| bad_state(e));
    if !totals.is_shared() {
        bad_state("no shared totals".into());
    }
    let statuses = decode_statuses(shared.statuses).unwrap_or_else(|e| bad_state(e));
    let p = shared.params;
    let mut batch = OrderBatch::default();
    // SAFETY: the relation is opened and closed here, the scan and the slot ended and dropped
    // here; the slot's values are read only after it was filled and before the next row.
    unsafe {
        let rel = pg_sys::table_open(p.relid, pg_sys::AccessShareLock as i32);
        let am = &*(*rel).rd_tableam;
        let (Some(next), Some(end)) = (am.scan_getnextslot, am.scan_end) else {
            bad_state("the table's access method cannot scan".into())
        };
        let scan = pg_sys::table_beginscan_parallel(rel, shared.scan);
        let slot = pg_sys::table_slot_create(rel, std::ptr::null_mut());
        let natts = i32::from(p.user_id.max(p.date).max(p.status).max(p.amount));
        // Amounts or statuses stored compressed or out of line are detoasted into this context,
        // emptied now and then.
        let rows_cx = pg_sys::AllocSetContextCreateInternal(
            pg_sys::CurrentMemoryContext,
            c"cda_analytics orders scan".as_ptr(),
            pg_sys::ALLOCSET_DEFAULT_MINSIZE as usize,
            pg_sys::ALLOCSET_DEFAULT_INITSIZE as usize,
            pg_sys::ALLOCSET_DEFAULT_MAXSIZE as usize,
        );
        let caller_cx = pg_sys::MemoryContextSwitchTo(rows_cx);
        let reader = InPlace {
            scan,
            slot,
            next,
            natts,
            params: p,
            statuses: &statuses,
        };
        let none = OrderRow {
            user_id: None,
            day: None,
            amount: None,
            status: StatusClass::Null,
        };
        let mut ahead = [(none, false); READ_AHEAD];
        let mut slow_rows = 0u32;
        loop {
            // One boundary for a run of rows (see InPlace): a boundary per call into the
            // access method and the slot cost about a tenth of the scan.
            let read = pg_sys::ffi::pg_guard_ffi_boundary(|| {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| reader.read(&mut ahead)))
            });
            let (n, stop) = read.unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            // After an error the totals take no more orders; it is checked once per run.
            for &(row, rounded) in &ahead[..n] {
                batch.push(&mut totals, users, row, rounded);
            }
            if totals.check().is_err() {
                break;
            }
            match stop {
                Stop::End => break,
                Stop::Full => {}
                Stop::Slow => {
                    // The row the slot holds needs calls into PostgreSQL: missing columns
                    // filled in, a value detoasted, or a bad amount reported.
                    slow_rows += 1;
                    if slow_rows == RESET_EVERY {
                        slow_rows = 0;
                        pg_sys::MemoryContextReset(rows_cx);
                    }
                    if i32::from((*slot).tts_nvalid) < natts {
                        pg_sys::slot_getsomeattrs_int(slot, natts);
                    }
                    if let Some(order) = slot_order(slot, &p, &statuses) {
                        fold_one(&mut totals, &mut batch, users, order, p.scale);
                        if totals.check().is_err() {
                            break;
                        }
                    }
                }
            }
            check_for_interrupts!();
        }
        pg_sys::MemoryContextSwitchTo(caller_cx);
        pg_sys::MemoryContextDelete(rows_cx);
        pg_sys::ExecDropSingleTupleTableSlot(slot);
        pg_sys::ffi::pg_guard_ffi_boundary(|| end(scan));
        pg_sys::table_close(rel, pg_sys::AccessShareLock as i32);
    }
    batch.flush(&mut totals, users);
    let part = totals.without_slots();
    drop(totals);
    if let Some(a) = attached {
        a.detach();
    }
    part
}

/// Rows read in place per call across the error boundary.
const READ_AHEAD: usize = 256;

/// Why [`InPlace::read`] stopped.
#[derive(Clone, Copy)]
enum Stop {
    /// It took [`READ_AHEAD`] rows from the scan.
    Full,
    /// The scan has no more rows.
    End,
    /// The slot holds a row that needs calls into PostgreSQL to read ([`slot_order`]).
    Slow,
}

/// Reads the rows of one process's scan in place, calling only the access method's and the
/// slot's own functions (through their tables, not pgrx's bindings) and decoding that calls
/// nothing in PostgreSQL. An ERROR raised in those functions therefore leaves no Rust frame
/// with anything to drop, and a run of rows can share one error boundary: a boundary (a
/// `sigsetjmp`) for each of the two calls a row needs cost about a tenth of the scan.
struct InPlace<'a> {
    scan: pg_sys::TableScanDesc,
    slot: *mut pg_sys::TupleTableSlot,
    next: unsafe extern "C-unwind" fn(
        pg_sys::TableScanDesc,
        pg_sys::ScanDirection::Type,
        *mut pg_sys::TupleTableSlot,
    ) -> bool,
    natts: i32,
    params: Params,
    statuses: &'a StatusSet,
}

impl InPlace<'_> {
    /// Fills `out` with the successful (or NULL-status) orders of up to [`READ_AHEAD`] rows and
    /// says why it stopped. To be called inside an error boundary.
    ///
    /// # Safety
    /// The scan and the slot must be open, and the slot used by this scan only.
    unsafe fn read(&self, out: &mut [(OrderRow, bool); READ_AHEAD]) -> (usize, Stop) {
        let p = &self.params;
        let at = |n: i16| (n - 1) as usize;
        let mut n = 0;
        // SAFETY: as the caller vouches; the slot's values are read after it was filled and
        // before the next row replaces them.
        unsafe {
            let slot = self.slot;
            for _ in 0..READ_AHEAD {
                if !(self.next)(self.scan, pg_sys::ScanDirection::ForwardScanDirection, slot) {
                    return (n, Stop::End);
                }
                if i32::from((*slot).tts_nvalid) < self.natts {
                    match (*(*slot).tts_ops).getsomeattrs {
                        Some(deform) => deform(slot, self.natts),
                        None => return (n, Stop::Slow),
                    }
                    // Columns added after the row was written are filled in by
                    // slot_getmissingattrs, on the slow path.
                    if i32::from((*slot).tts_nvalid) < self.natts {
                        return (n, Stop::Slow);
                    }
                }
                let values = std::slice::from_raw_parts((*slot).tts_values, self.natts as usize);
                let nulls = std::slice::from_raw_parts((*slot).tts_isnull, self.natts as usize);
                let status = if nulls[at(p.status)] {
                    StatusClass::Null
                } else {
                    match inline_bytes(values[at(p.status)]) {
                        None => return (n, Stop::Slow),
                        Some(s) if self.statuses.contains(s) => StatusClass::Successful,
                        Some(_) => continue,
                    }
                };
                let amount = if nulls[at(p.amount)] {
                    None
                } else {
                    match inline_bytes(values[at(p.amount)]).map(|a| decode_minor(a, p.scale)) {
                        Some(Ok(parsed)) => Some(parsed),
                        // Detoasted, or reported with its user, on the slow path.
                        None | Some(Err(_)) => return (n, Stop::Slow),
                    }
                };
                let row = OrderRow {
                    user_id: user_id(values[at(p.user_id)], nulls[at(p.user_id)], p),
                    day: day_of((!nulls[at(p.date)]).then(|| values[at(p.date)].value() as i64)),
                    amount: amount.map(|a| a.minor),
                    status,
                };
                out[n] = (row, amount.is_some_and(|a| a.rounded));
                n += 1;
            }
        }
        (n, Stop::Full)
    }
}

/// A varlena's bytes when they are stored inline and uncompressed, as nearly all amounts and
/// statuses are; None when reading them needs PostgreSQL (detoasting).
///
/// # Safety
/// `datum` must point to a varlena that outlives `'a`.
#[inline(always)]
unsafe fn inline_bytes<'a>(datum: pg_sys::Datum) -> Option<&'a [u8]> {
    use pgrx::varlena::{varatt_is_1b, varatt_is_1b_e, varatt_is_4b_u};
    // SAFETY: as the caller vouches.
    unsafe {
        let raw = datum.cast_mut_ptr::<pg_sys::varlena>();
        let inline = varatt_is_4b_u(raw) || (varatt_is_1b(raw) && !varatt_is_1b_e(raw));
        inline.then(|| varlena_bytes(datum))
    }
}

/// The user id column's value as an i64, whatever its integer type.
#[inline(always)]
fn user_id(datum: pg_sys::Datum, null: bool, p: &Params) -> Option<i64> {
    (!null).then(|| {
        let d = datum.value();
        match p.user_id_type {
            pg_sys::INT2OID => i64::from(d as i16),
            pg_sys::INT4OID => i64::from(d as i32),
            _ => d as i64,
        }
    })
}

/// The order in the slot (its columns deformed), or None when its status does not count.
///
/// # Safety
/// The slot must hold a row with the scan's columns deformed; the amount and status may be
/// detoasted into the current memory context.
unsafe fn slot_order<'a>(
    slot: *mut pg_sys::TupleTableSlot,
    p: &Params,
    statuses: &StatusSet,
) -> Option<Order<'a>> {
    let natts = i32::from(p.user_id.max(p.date).max(p.status).max(p.amount)) as usize;
    let at = |n: i16| (n - 1) as usize;
    // SAFETY: as the caller vouches.
    unsafe {
        let values = std::slice::from_raw_parts((*slot).tts_values, natts);
        let nulls = std::slice::from_raw_parts((*slot).tts_isnull, natts);
        let status = if nulls[at(p.status)] {
            StatusClass::Null
        } else if statuses.contains(varlena_bytes(values[at(p.status)])) {
            StatusClass::Successful
        } else {
            return None;
        };
        Some(Order {
            user_id: user_id(values[at(p.user_id)], nulls[at(p.user_id)], p),
            micros: (!nulls[at(p.date)]).then(|| values[at(p.date)].value() as i64),
            amount: (!nulls[at(p.amount)]).then(|| varlena_bytes(values[at(p.amount)])),
            status,
        })
    }
}

/// The entry point of the scan's parallel workers, looked up by name by PostgreSQL.
///
/// # Safety
/// Called by PostgreSQL's parallel worker machinery with the context [`run`] created.
#[unsafe(no_mangle)]
#[pg_guard]
pub unsafe extern "C-unwind" fn cda_ltv_orders_worker(
    _seg: *mut pg_sys::dsm_segment,
    toc: *mut pg_sys::shm_toc,
) {
    // SAFETY: as the caller vouches.
    unsafe {
        let shared = Shared::lookup(toc);
        let part = scan_part(&shared, None);
        let i = pg_sys::ParallelWorkerNumber;
        match usize::try_from(i) {
            Ok(i) => shared.put_result(i, part),
            Err(_) => raise(
                ERRCODE_INTERNAL_ERROR,
                format!("cda_analytics: reading the orders: worker number {i}"),
                None,
            ),
        }
    }
}
