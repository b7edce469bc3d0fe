//! The orders read of a whole-run refresh as the extension's own parallel scan of the table.
//!
//! The aggregate query (src/read/purchases/aggregate.rs) pays the executor for every order: the scan and
//! aggregate nodes, a per-row expression that fills seven arguments (one of them a parameter
//! fetched again for every row), a call through fmgr and pgrx's error boundary, and a memory
//! context reset. For a plain table the caller may read in full, this module starts the
//! parallel workers itself, through PostgreSQL's parallel context as a parallel CREATE INDEX
//! does: each process takes blocks from the table access method's parallel scan, deforms the
//! four columns it reads, and folds each order straight into the shared slots
//! (src/read/purchases/shared_totals.rs). Only each process's counts come back.
//!
//! Anything else goes through the aggregate query, which has the executor's generality: a
//! view, a partitioned, inherited or temporary table, another table access method than heap,
//! row security on the table, a caller without SELECT on the whole table, a date that needs a
//! time zone or a cast, an amount that needs a cast, a status compared by its collation, a
//! single user's read, or a run without shared slots. So does everything when
//! `cda_analytics.table_scans` is off.

// A parallel context of its own: shared memory, workers, and the scan's entry point.
#![allow(unsafe_code)]

use cda_analytics_core::ltv::{
    FoldError, OrderBatch, OrderRow, OrderTotals, StatusClass, StatusSet, UserTable,
};
use cda_analytics_core::money::AmountError;
use pgrx::prelude::*;

use super::aggregate::{Order, fold_one, order_row};
use crate::read::aggregates::{inline_bytes, varlena_bytes};
use crate::read::table_scan::{Flow, RawScan, Row, RowReader, Step, integer};
use crate::source::{DateKind, Source};
use crate::toolbox::errors::*;

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
    /// The date's type: timestamp, or timestamptz (read in UTC).
    date_type: pg_sys::Oid,
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
    if let Some(why) = crate::read::table_scan::why_not(source.orders_rel, &source.orders) {
        return Err(why);
    }
    crate::read::table_scan::date_in_place(source.order_date_kind, zone, "order date")?;
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
    Ok(Plan {
        params: Params {
            relid: source.orders_rel,
            user_id: c.user_id,
            date: c.date,
            status: c.status,
            amount: c.amount,
            user_id_type: c.user_id_type,
            date_type: match source.order_date_kind {
                DateKind::TimestampTz => pg_sys::TIMESTAMPTZOID,
                _ => pg_sys::TIMESTAMPOID,
            },
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
    let ctx = crate::source::context::Context::load(None);
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
        let workers = crate::read::parallel::planned_workers(rel);
        let snapshot = crate::read::table_scan::read_snapshot();

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
            e.space_for_chunks += crate::read::parallel::buffer_align(bytes);
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
        let leader_scans = crate::read::spi::leader_joins(launched);
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
    let (totals, attached) =
        super::shared_totals::totals_for(shared.users, users).unwrap_or_else(|e| bad_state(e));
    if !totals.is_shared() {
        bad_state("no shared totals".into());
    }
    let statuses = decode_statuses(shared.statuses).unwrap_or_else(|e| bad_state(e));
    let p = shared.params;
    let natts = i32::from(p.user_id.max(p.date).max(p.status).max(p.amount));
    // SAFETY: in a process of the context run() created, whose memory holds the scan.
    let scan =
        unsafe { RawScan::parallel(p.relid, shared.scan, natts) }.unwrap_or_else(|e| bad_state(e));
    let expected = [
        (p.user_id, &[p.user_id_type][..]),
        (p.date, &[p.date_type][..]),
        (p.status, &[pg_sys::TEXTOID, pg_sys::VARCHAROID][..]),
        (p.amount, &[pg_sys::NUMERICOID][..]),
    ];
    scan.check_columns("the orders table", &expected);
    let none = OrderRow {
        user_id: None,
        day: None,
        amount: None,
        status: StatusClass::Null,
    };
    let mut reader = Orders {
        totals,
        batch: OrderBatch::default(),
        users,
        statuses: &statuses,
        params: p,
        ahead: [(none, false); READ_AHEAD],
        n: 0,
        slow_cx: pgrx::PgMemoryContexts::new("cda_analytics orders scan"),
        slow_rows: 0,
    };
    scan.for_each_row(&mut reader);
    let Orders {
        mut totals,
        mut batch,
        slow_cx,
        ..
    } = reader;
    drop(slow_cx);
    batch.flush(&mut totals, users);
    let part = totals.without_slots();
    drop(totals);
    if let Some(a) = attached {
        a.detach();
    }
    part
}

/// One process's fold of the orders it scans.
struct Orders<'a> {
    totals: OrderTotals,
    batch: OrderBatch,
    users: &'a UserTable,
    statuses: &'a StatusSet,
    params: Params,
    /// The orders of the current run read in place, folded in after it.
    ahead: [(OrderRow, bool); READ_AHEAD],
    n: usize,
    /// Amounts or statuses stored compressed or out of line are detoasted into this context,
    /// emptied now and then.
    slow_cx: pgrx::PgMemoryContexts,
    slow_rows: u32,
}

impl RowReader for Orders<'_> {
    const RUN: usize = READ_AHEAD;

    fn fast(&mut self, row: Row<'_>) -> Step {
        match in_place(row.values, row.nulls, &self.params, self.statuses) {
            InPlace::Skip => Step::Next,
            InPlace::Row(order, rounded) => {
                self.ahead[self.n] = (order, rounded);
                self.n += 1;
                Step::Next
            }
            InPlace::Slow => Step::Slow,
        }
    }

    // After an error the totals take no more orders; it is checked once per run.
    fn after_run(&mut self) -> Flow {
        for &(order, rounded) in &self.ahead[..self.n] {
            self.batch
                .push(&mut self.totals, self.users, order, rounded);
        }
        self.n = 0;
        match self.totals.check() {
            Ok(()) => Flow::Go,
            Err(_) => Flow::Stop,
        }
    }

    fn slow(&mut self, row: Row<'_>) -> Flow {
        self.slow_rows += 1;
        if self.slow_rows == RESET_EVERY {
            self.slow_rows = 0;
            // SAFETY: nothing read from it is used past the row it was read for.
            unsafe { self.slow_cx.reset() };
        }
        let Orders {
            totals,
            batch,
            users,
            statuses,
            params,
            slow_cx,
            ..
        } = self;
        // SAFETY: the row's columns, used (and detoasted into the scratch context) before the
        // next row.
        let failed = unsafe {
            slow_cx.switch_to(|_| {
                if let Some(order) = slot_order(row.values, row.nulls, params, statuses) {
                    fold_one(totals, batch, users, order, params.scale);
                }
                totals.check().is_err()
            })
        };
        match failed {
            true => Flow::Stop,
            false => Flow::Go,
        }
    }
}

/// Rows read in place per call across the error boundary.
const READ_AHEAD: usize = 256;

/// A row as [`in_place`] read it.
enum InPlace {
    /// Its status does not count.
    Skip,
    /// The order, and whether its amount was rounded.
    Row(OrderRow, bool),
    /// Reading it needs calls into PostgreSQL: a value to detoast, or a bad amount to report
    /// with its user ([`slot_order`] and `fold_one`).
    Slow,
}

/// Reads an order from its columns where they lie, calling nothing in PostgreSQL (it runs
/// inside the scan's error boundary, `RowReader::fast`).
#[inline(always)]
fn in_place(values: &[pg_sys::Datum], nulls: &[bool], p: &Params, statuses: &StatusSet) -> InPlace {
    // SAFETY: the values of the row in the slot, which stays pinned while they are read.
    let order = order_in(values, nulls, p, statuses, |d| unsafe { inline_bytes(d) });
    match order {
        None => InPlace::Slow,
        Some(None) => InPlace::Skip,
        // A bad amount is reported with its user by fold_one, on the slow path.
        Some(Some(order)) => match order_row(&order, p.scale) {
            Ok((row, rounded)) => InPlace::Row(row, rounded),
            Err(_) => InPlace::Slow,
        },
    }
}

/// The order in a row's columns, detoasting what needs it into the current memory context, or
/// None when its status does not count.
///
/// # Safety
/// `values` and `nulls` must be the scan's columns of a row that stays pinned while the order
/// is used.
unsafe fn slot_order<'a>(
    values: &[pg_sys::Datum],
    nulls: &[bool],
    p: &Params,
    statuses: &StatusSet,
) -> Option<Order<'a>> {
    order_in(values, nulls, p, statuses, |d| {
        // SAFETY: as the caller vouches, a value of the row that stays pinned.
        Some(unsafe { varlena_bytes(d) })
    })
    .flatten()
}

/// The order in a row's columns, its status and amount read by `bytes`: None when `bytes`
/// cannot read one, Some(None) when the status does not count.
#[inline(always)]
fn order_in<'a>(
    values: &[pg_sys::Datum],
    nulls: &[bool],
    p: &Params,
    statuses: &StatusSet,
    bytes: impl Fn(pg_sys::Datum) -> Option<&'a [u8]>,
) -> Option<Option<Order<'a>>> {
    let at = |n: i16| (n - 1) as usize;
    let status = if nulls[at(p.status)] {
        StatusClass::Null
    } else if statuses.contains(bytes(values[at(p.status)])?) {
        StatusClass::Successful
    } else {
        return Some(None);
    };
    let amount = match nulls[at(p.amount)] {
        true => None,
        false => Some(bytes(values[at(p.amount)])?),
    };
    let user_id = (!nulls[at(p.user_id)]).then(|| integer(values[at(p.user_id)], p.user_id_type));
    Some(Some(Order {
        user_id,
        micros: (!nulls[at(p.date)]).then(|| values[at(p.date)].value() as i64),
        amount,
        status,
    }))
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
