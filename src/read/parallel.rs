//! What a read run in a parallel context of its own needs besides the scan: how many workers a
//! parallel plan would give the table, and the alignment of the chunks in the context's shared
//! memory. The orders scan (src/read/purchases/orders_scan.rs) starts its workers this way, as
//! parallel CREATE INDEX does.

// Reads the relation's options and PostgreSQL's settings through raw pointers.
#![allow(unsafe_code)]

use pgrx::pg_sys;

/// The workers a parallel plan would give a sequential scan of `rel`: the table's
/// `parallel_workers` option, else one for a table of `min_parallel_table_scan_size` and one
/// more for each tripling of it (compute_parallel_worker in the planner), at most
/// `max_parallel_workers_per_gather`.
pub unsafe fn planned_workers(rel: pg_sys::Relation) -> i32 {
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
pub fn buffer_align(bytes: usize) -> usize {
    bytes.div_ceil(32) * 32
}
