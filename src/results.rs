//! What every refresh of a results table does the same way: run its statements in the caller's
//! transaction, and take the table's lock before reading the source.

use pgrx::datum::DatumWithOid;
use std::ffi::CString;

use pgrx::prelude::*;

use crate::errors::*;

/// Runs one writing statement; an SPI failure becomes an error that says what was being done.
pub fn execute(sql: &str, args: &[DatumWithOid<'_>], doing: &str) {
    Spi::connect_mut(|c| c.update(sql, None, args).map(|_| ())).or_raise(doing);
}

/// Runs `f` with `settings` (name, value) in force and puts the previous values back after it,
/// as a function's SET clause does; an error in `f` aborts the transaction, which puts them back.
pub fn with_settings<R>(settings: &[(&str, &str)], f: impl FnOnce() -> R) -> R {
    // SAFETY: a GUC nest level opened here is closed here (or by the transaction's abort).
    let level = unsafe { pg_sys::NewGUCNestLevel() };
    for &(name, value) in settings {
        let (Ok(name), Ok(value)) = (CString::new(name), CString::new(value)) else {
            raise(
                ERRCODE_INTERNAL_ERROR,
                format!("setting {name}: not a C string"),
                None,
            );
        };
        // SAFETY: both strings outlive the call, which copies them.
        unsafe {
            pg_sys::set_config_option(
                name.as_ptr(),
                value.as_ptr(),
                pg_sys::GucContext::PGC_USERSET,
                pg_sys::GucSource::PGC_S_SESSION,
                pg_sys::GucAction::GUC_ACTION_SAVE,
                true,
                pg_sys::PGERROR as i32,
                false,
            );
        }
    }
    let out = f();
    // SAFETY: closes the level opened above; later levels were closed by whoever opened them.
    unsafe { pg_sys::AtEOXact_GUC(true, level) };
    out
}

/// Serialises refreshes of `table` (in the extension's schema `ext`): SHARE ROW EXCLUSIVE
/// conflicts with itself and with writers, but not with readers, who keep reading the previous
/// results while a refresh runs. Taken before the refresh reads its source, so a refresh that
/// waited for another reads what that one committed instead of overwriting it with older results.
pub fn lock(ext: &str, table: &str) {
    execute(
        &format!("LOCK TABLE {ext}.{table} IN SHARE ROW EXCLUSIVE MODE"),
        &[],
        &format!("locking {table}"),
    );
}
