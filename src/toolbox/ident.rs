//! Quoting names and literals into the SQL the extension generates.

// quote_literal_cstr, PostgreSQL's own quoting.
#![allow(unsafe_code)]

use pgrx::pg_sys;

use super::errors::*;

/// Quotes an identifier for the SQL we generate. Always quoting is always correct (keywords,
/// capitals, spaces), where quoting only when needed would have to know every keyword.
pub fn quote_ident(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// `schema.table` with both parts quoted.
pub fn qualified(schema: &str, name: &str) -> String {
    format!("{}.{}", quote_ident(schema), quote_ident(name))
}

/// `ARRAY['a', 'b']::pg_catalog.text[]`, each value quoted by PostgreSQL's own quote_literal.
/// `what` names the values in the error for one that holds a NUL byte.
pub fn text_array_literal(values: &[String], what: &str) -> String {
    let quoted: Vec<String> = values
        .iter()
        .map(|v| {
            let Ok(c) = std::ffi::CString::new(v.as_str()) else {
                raise(
                    ERRCODE_INVALID_PARAMETER_VALUE,
                    format!("{what} {v:?} contains a NUL byte"),
                    None,
                );
            };
            // SAFETY: a C string in, a palloc'd C string out, copied before the next call.
            unsafe { std::ffi::CStr::from_ptr(pg_sys::quote_literal_cstr(c.as_ptr())) }
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    format!("ARRAY[{}]::pg_catalog.text[]", quoted.join(", "))
}
