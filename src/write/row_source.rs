//! Rows computed in Rust, handed to the INSERT that writes them, in the same backend. A refresh
//! parks what its row source needs (a pointer to the rows and their context) under a fresh token
//! and runs `INSERT ... SELECT ... FROM _x_pending_rows(token)`; the row source ([`row_source`])
//! takes it back by that token and type and writes its rows, varlenas built in [`RowBytes`].
//! Outside that INSERT, or with another token, there is nothing to take.

use cda_analytics_core::stored::IdPrint;

use crate::toolbox::token_slot::TokenSlot;

thread_local! {
    static PARKED: TokenSlot = const { TokenSlot::new() };
}

/// Unparks when the write ends, normally or by an error unwinding through it.
struct Unpark;

impl Drop for Unpark {
    fn drop(&mut self) {
        PARKED.with(TokenSlot::clear);
    }
}

/// Parks `payload` while `write` runs with its token.
pub fn park<P: Copy + 'static, R>(payload: P, write: impl FnOnce(i64) -> R) -> R {
    let token = PARKED.with(|p| p.put(payload));
    let _unpark = Unpark;
    write(token)
}

/// The payload parked under `token`, if it is a `P`.
fn take<P: Copy + 'static>(token: Option<i64>) -> Option<P> {
    PARKED.with(|p| p.get::<P>(token?))
}

/// A row source's result set in materialize mode.
pub struct RowsOut {
    store: *mut pgrx::pg_sys::Tuplestorestate,
    desc: pgrx::pg_sys::TupleDesc,
}

impl RowsOut {
    /// Appends one row; `values` and `nulls` have an entry per column. The values are copied, so
    /// their memory may be reused for the next row.
    ///
    /// # Safety
    /// Every datum must be valid for its column's type while this runs.
    pub unsafe fn put(&self, values: &mut [pgrx::pg_sys::Datum], nulls: &mut [bool]) {
        // SAFETY: store and desc come from InitMaterializedSRF on this call; the caller vouches
        // for the datums, and the slices have the row type's length (checked in row_source).
        unsafe {
            pgrx::pg_sys::tuplestore_putvalues(
                self.store,
                self.desc,
                values.as_mut_ptr(),
                nulls.as_mut_ptr(),
            )
        }
    }
}

/// What a row source `function` (internal to `caller`) starts with: the payload its INSERT parked
/// under the token in its argument, and its result set of `columns` columns. Any other call is an
/// error that says so.
///
/// # Safety
/// `fcinfo` must be the live call of a set-returning function whose only argument is the token.
pub unsafe fn row_source<P: Copy + 'static>(
    fcinfo: pgrx::pg_sys::FunctionCallInfo,
    function: &str,
    caller: &str,
    columns: usize,
) -> (P, RowsOut) {
    use crate::toolbox::errors::*;
    // SAFETY: argument 0 is the int8 token (STRICT, so never NULL).
    let token = unsafe { pgrx::fcinfo::pg_getarg::<i64>(fcinfo, 0) };
    let Some(payload) = take::<P>(token) else {
        raise(
            ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            format!("{function} is internal to {caller}"),
            None,
        );
    };
    // SAFETY: InitMaterializedSRF sets up resultinfo for this call, which the executor called in
    // materialize mode (the functions return TABLE and are read by an INSERT ... SELECT).
    unsafe {
        pgrx::pg_sys::InitMaterializedSRF(fcinfo, 0);
        let rsinfo = (*fcinfo).resultinfo as *mut pgrx::pg_sys::ReturnSetInfo;
        let desc = (*rsinfo).setDesc;
        if (*desc).natts as usize != columns {
            raise(
                ERRCODE_INTERNAL_ERROR,
                format!("{function}: unexpected row type"),
                None,
            );
        }
        (
            payload,
            RowsOut {
                store: (*rsinfo).setResult,
                desc,
            },
        )
    }
}

/// The variable-length values of one row (numerics in their storage format, texts), built in one
/// buffer: each is added at a 4-byte aligned offset, and their datums are taken once the row is
/// complete, since the buffer may move while it grows.
#[derive(Default)]
pub struct RowBytes(Vec<u8>);

impl RowBytes {
    pub fn clear(&mut self) {
        self.0.clear();
    }

    fn align(&mut self) -> usize {
        while !self.0.len().is_multiple_of(4) {
            self.0.push(0);
        }
        self.0.len()
    }

    /// A numeric of `minor` units at `scale`; returns its offset.
    pub fn numeric(&mut self, minor: i64, scale: u32) -> usize {
        let at = self.align();
        cda_analytics_core::pg_numeric::encode_minor(minor, scale, &mut self.0);
        at
    }

    /// A text (or bytea) with a 4-byte header; returns its offset.
    pub fn text(&mut self, text: &[u8]) -> usize {
        let at = self.align();
        self.0
            .extend_from_slice(&(((text.len() + 4) as u32) << 2).to_ne_bytes());
        self.0.extend_from_slice(text);
        at
    }

    /// The datum of the value at `at`, valid until the buffer next changes.
    pub fn datum(&self, at: usize) -> pgrx::pg_sys::Datum {
        pgrx::pg_sys::Datum::from(self.0[at..].as_ptr())
    }
}

/// The rows a refresh parks for its row source when it writes only some of them
/// (`crate::write::stored_rows`): all its rows with their `(user id, fingerprint)` pairs, and the
/// indices of those to write, or none for all of them.
pub struct Picked<T> {
    rows: *const T,
    new: *const IdPrint,
    len: usize,
    pick: *const usize,
    pick_len: usize,
}

// Pointers only: copying them never copies a T.
impl<T> Clone for Picked<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Picked<T> {}

impl<T> Picked<T> {
    /// `new` has an entry per row, in the same order; every index in `pick` is below its length.
    pub fn new(rows: &[T], new: &[IdPrint], pick: Option<&[usize]>) -> Self {
        Picked {
            rows: rows.as_ptr(),
            new: new.as_ptr(),
            len: rows.len().min(new.len()),
            pick: pick.map_or(std::ptr::null(), <[usize]>::as_ptr),
            pick_len: pick.map_or(0, <[usize]>::len),
        }
    }

    /// Calls `f` with each row to write and its fingerprint, in order.
    ///
    /// # Safety
    /// The slices given to [`Picked::new`] must still be alive and unchanged.
    pub unsafe fn for_each(self, mut f: impl FnMut(&T, &[u8; 16])) {
        // SAFETY: the caller vouches for the slices; indices out of range are skipped.
        let (rows, new) = unsafe {
            (
                std::slice::from_raw_parts(self.rows, self.len),
                std::slice::from_raw_parts(self.new, self.len),
            )
        };
        let mut put = |i: usize| {
            if let (Some(r), Some((_, print))) = (rows.get(i), new.get(i)) {
                f(r, print);
            }
        };
        if self.pick.is_null() {
            (0..self.len).for_each(put);
        } else {
            // SAFETY: as above.
            let pick = unsafe { std::slice::from_raw_parts(self.pick, self.pick_len) };
            pick.iter().for_each(|&i| put(i));
        }
    }
}
