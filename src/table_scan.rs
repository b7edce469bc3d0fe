//! What reading a table with the table access method's own scan, without the executor in
//! between, must respect (src/ltv/orders_scan.rs): only a plain table that the current user may
//! read in full qualifies, with the snapshot SPI would have used; everything else is read with
//! SQL.

use pgrx::prelude::*;

/// Why `relid` (named `display` in the reason) cannot be read with a parallel scan of its own,
/// or None when it can: it must be a plain, permanent heap table without row security or child
/// tables, which the current user may read in full.
pub fn why_not(relid: pg_sys::Oid, display: &str) -> Option<String> {
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
    None
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
