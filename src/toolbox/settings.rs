//! Settings changed for the length of one piece of work, as a function's SET clause changes them.

// Opens and closes a GUC nest level, as a function's SET clause does.
#![allow(unsafe_code)]

use std::ffi::CString;

use pgrx::pg_sys;

use super::errors::*;

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
