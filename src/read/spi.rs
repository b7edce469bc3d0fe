//! Running the read aggregates' one-row queries through SPI with a generic plan.
//!
//! `SPI_execute_with_args` (what pgrx's `select` calls) plans with the parameter values folded
//! into the plan as constants. A parallel plan is then sent to every worker as text, and a bytea
//! constant is written and parsed there one decimal byte at a time: the purchases read passes
//! the encoded users table, which each worker then parsed before it read a row (BENCHMARKS.md,
//! "Measurements behind the code"). A generic plan keeps `$n` as parameters, which PostgreSQL
//! hands to the
//! workers in binary. The statement also runs without JIT compilation, and with the leader out of
//! the fold when the workers fill the cores ([`ReadSettings`]).

// Prepared, kept plans and settings through SPI's and the GUC machinery's C functions.
#![allow(unsafe_code)]

use std::ffi::CString;

use pgrx::datum::DatumWithOid;
use pgrx::pg_sys;

use crate::toolbox::errors::*;

/// Runs `sql` (one row, one bytea column expected) with `args` through a generic,
/// parallel-capable plan, and hands the first row's bytes to `f` (None when there is no row or
/// the value is NULL). Runs without a row limit: PostgreSQL never gives a statement with a row
/// limit parallel workers. Errors from PostgreSQL are raised as they are; `doing` names the step
/// for SPI failures.
pub fn one_bytea<T>(
    sql: &str,
    args: &[DatumWithOid<'_>],
    doing: &str,
    f: impl FnOnce(Option<&[u8]>) -> T,
) -> T {
    let csql = match CString::new(sql) {
        Ok(s) => s,
        Err(_) => raise(
            ERRCODE_INTERNAL_ERROR,
            format!("cda_analytics: {doing}: the query contains a NUL byte"),
            None,
        ),
    };
    let mut f = Some(f);
    // Whatever the query's final function handed over and `f` did not take is dropped on the way
    // out, an error unwinding through here included.
    let _drop_handed = DropHanded;
    let out = pgrx::Spi::connect(|_c| {
        // SAFETY: SPI is connected for the closure's duration; every pointer handed to SPI below
        // lives until the call that reads it returns, and the result is read before the plan is
        // freed and before the connection closes.
        unsafe {
            let types: Vec<pg_sys::Oid> = args.iter().map(|a| a.oid()).collect();
            let plan = kept_plan(sql, &csql, types)?;
            let mut values: Vec<pg_sys::Datum> = Vec::with_capacity(args.len());
            let mut nulls: Vec<std::os::raw::c_char> = Vec::with_capacity(args.len());
            for a in args {
                match a.datum() {
                    Some(d) => {
                        values.push(d.sans_lifetime());
                        nulls.push(b' ' as std::os::raw::c_char);
                    }
                    None => {
                        values.push(pg_sys::Datum::from(0usize));
                        nulls.push(b'n' as std::os::raw::c_char);
                    }
                }
            }
            // As pgrx does: read-only (the statement's snapshot) until this transaction writes.
            let read_only = pg_sys::GetCurrentTransactionIdIfAny() == pg_sys::InvalidTransactionId;
            pg_sys::SPI_tuptable = std::ptr::null_mut();
            let settings = ReadSettings::apply();
            let rc = pg_sys::SPI_execute_plan(
                plan,
                values.as_mut_ptr(),
                nulls.as_mut_ptr(),
                read_only,
                0,
            );
            settings.restore();
            if rc != pg_sys::SPI_OK_SELECT as i32 {
                return Err(rc);
            }
            let table = pg_sys::SPI_tuptable;
            let mut bytes: Option<&[u8]> = None;
            if !table.is_null() && pg_sys::SPI_processed > 0 {
                let mut is_null = false;
                let d = pg_sys::SPI_getbinval(*(*table).vals, (*table).tupdesc, 1, &mut is_null);
                if !is_null {
                    let v = pg_sys::pg_detoast_datum_packed(d.cast_mut_ptr());
                    bytes = Some(pgrx::varlena::varlena_to_byte_slice(v));
                }
            }
            Ok(f.take().map(|f| f(bytes)))
        }
    });
    match out {
        Ok(Some(v)) => v,
        Ok(None) => raise(
            ERRCODE_INTERNAL_ERROR,
            format!("cda_analytics: {doing}: no result"),
            None,
        ),
        Err(rc) => raise(
            ERRCODE_INTERNAL_ERROR,
            format!("cda_analytics: {doing}: SPI failed with code {rc}"),
            None,
        ),
    }
}

type PlanKey = (String, Vec<pg_sys::Oid>);

thread_local! {
    /// The read statements' prepared plans, by text and argument types, kept for the backend's
    /// life: preparing the statements again on every call was about a tenth of a single user's
    /// `calculate_user_ltv`. PostgreSQL's plan cache plans a kept statement again when a table it
    /// reads changes, as for any prepared statement.
    static PLANS: std::cell::RefCell<std::collections::HashMap<PlanKey, usize>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// Statements kept at most; beyond it (configurations changing many times in one session) the
/// kept plans are let go and prepared afresh.
const MAX_KEPT_PLANS: usize = 64;

/// The kept plan of `sql` with arguments of `types`, prepared (generic and parallel-capable) on
/// first use.
///
/// # Safety
/// SPI must be connected.
unsafe fn kept_plan(
    sql: &str,
    csql: &CString,
    mut types: Vec<pg_sys::Oid>,
) -> Result<pg_sys::SPIPlanPtr, i32> {
    let key = (sql.to_string(), types.clone());
    if let Some(plan) = PLANS.with(|p| p.borrow().get(&key).copied()) {
        return Ok(plan as pg_sys::SPIPlanPtr);
    }
    // SAFETY: SPI is connected; the types live across the call.
    unsafe {
        let plan = pg_sys::SPI_prepare_cursor(
            csql.as_ptr(),
            types.len() as i32,
            types.as_mut_ptr(),
            (pg_sys::CURSOR_OPT_PARALLEL_OK | pg_sys::CURSOR_OPT_GENERIC_PLAN) as i32,
        );
        if plan.is_null() {
            return Err(pg_sys::SPI_result);
        }
        let rc = pg_sys::SPI_keepplan(plan);
        if rc != 0 {
            pg_sys::SPI_freeplan(plan);
            return Err(rc);
        }
        PLANS.with(|p| {
            let mut plans = p.borrow_mut();
            if plans.len() >= MAX_KEPT_PLANS {
                for (_, old) in plans.drain() {
                    pg_sys::SPI_freeplan(old as pg_sys::SPIPlanPtr);
                }
            }
            plans.insert(key, plan as usize);
        });
        Ok(plan)
    }
}

/// The settings a read statement runs with, put back after it.
///
/// - **No JIT.** Each row's work is one call of an aggregate written in Rust, with raw datums
///   as its arguments: there is nothing for LLVM to speed up, but with `jit = on` a statement
///   over a million rows is costed above `jit_above_cost`, and the leader and every worker
///   compile its expressions first, which made the read slower (BENCHMARKS.md, "Measurements
///   behind the code").
/// - **The leader out of the fold** when the planned workers are at least the cores this
///   process may use: a fold's state is large (64 bytes per user for the LTV totals), so a
///   leader that folds too competes with its workers for the cores, builds a third state and
///   then merges it, which made the read slower (BENCHMARKS.md, "Measurements behind the code").
struct ReadSettings {
    /// The GUC nest level to pop, when a setting was changed here.
    nest_level: Option<i32>,
}

impl ReadSettings {
    /// Changes what needs changing for the next statement.
    ///
    /// # Safety
    /// Must run in a backend, inside a transaction, and be followed by
    /// [`ReadSettings::restore`] (an error in between is fine: aborting restores the settings).
    unsafe fn apply() -> Self {
        // SAFETY: plain reads of GUC variables in this backend.
        let (workers, participates, jit) = unsafe {
            (
                pg_sys::max_parallel_workers_per_gather.max(0) as usize,
                pg_sys::parallel_leader_participation,
                pg_sys::jit_enabled,
            )
        };
        let leader_off = participates && !leader_joins(workers);
        let mut changes = Vec::with_capacity(2);
        if leader_off {
            changes.push(c"parallel_leader_participation");
        }
        if jit {
            changes.push(c"jit");
        }
        if changes.is_empty() {
            return ReadSettings { nest_level: None };
        }
        // SAFETY: as a function's SET clause does (fmgr_security_definer): a new GUC nest
        // level, the values saved there, and popped by restore() or by the abort of an error.
        unsafe {
            let level = pg_sys::NewGUCNestLevel();
            for name in changes {
                pg_sys::set_config_option(
                    name.as_ptr(),
                    c"off".as_ptr(),
                    pg_sys::GucContext::PGC_USERSET,
                    pg_sys::GucSource::PGC_S_SESSION,
                    pg_sys::GucAction::GUC_ACTION_SAVE,
                    true,
                    0,
                    false,
                );
            }
            ReadSettings {
                nest_level: Some(level),
            }
        }
    }

    /// Puts the settings back as they were.
    ///
    /// # Safety
    /// As for [`ReadSettings::apply`].
    unsafe fn restore(self) {
        if let Some(level) = self.nest_level {
            // SAFETY: pops the level apply() pushed; nothing pushed one since.
            unsafe { pg_sys::AtEOXact_GUC(true, level) };
        }
    }
}

struct DropHanded;

impl Drop for DropHanded {
    fn drop(&mut self) {
        crate::read::aggregates::drop_handed();
    }
}

/// Whether the leader of a parallel read with `workers` workers should fold rows beside them:
/// when `parallel_leader_participation` allows it and the workers leave a core idle, and always
/// when there are no workers (see [`ReadSettings`] for why it stays out otherwise). The orders
/// scan (src/read/purchases/orders_scan.rs) decides by the same rule.
pub(crate) fn leader_joins(workers: usize) -> bool {
    // SAFETY: a plain read of a GUC variable in this backend.
    workers == 0 || (unsafe { pg_sys::parallel_leader_participation } && workers < cores())
}

/// The cores this process may use, looked up once: `available_parallelism` reads the cgroup
/// files on every call, which the per-user functions would pay on each call.
fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}
