//! Rows computed in Rust, handed to the INSERT that writes them, in the same backend. A refresh
//! parks what its row source needs (a pointer to the rows and their context) under a fresh token
//! and runs `INSERT ... SELECT ... FROM _x_pending_rows(token)` ([`InsertFrom`]); the row source
//! ([`row_source`]) takes it back by that token and type and writes its rows ([`RowWriter`]),
//! each value set by its column's name. Outside that INSERT, or with another token, there is
//! nothing to take.

// The row sources fill a tuplestore through PostgreSQL's C functions.
#![allow(unsafe_code)]

use cda_analytics_core::calendar::Day;
use cda_analytics_core::stored::IdPrint;
use pgrx::pg_sys;

use crate::toolbox::errors::*;
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

/// A column of a row source: its name, which is also the results table's column it fills, and
/// its type. A row source's columns are declared once, with `row_columns!`, and give the
/// INSERT's column list ([`InsertFrom`]), the check of the function's declared result
/// ([`row_source`]) and the constants by which each value is set ([`RowWriter`]).
#[derive(Clone, Copy, Debug)]
pub struct Column {
    pub name: &'static str,
    pub type_oid: pg_sys::Oid,
}

/// What a row source `function` (internal to `caller`) starts with: the payload its INSERT parked
/// under the token in its argument, and the writer of its rows, whose `columns` must be those the
/// function is declared to return (by name and type, in order). Any other call is an error that
/// says so.
///
/// # Safety
/// `fcinfo` must be the live call of a set-returning function whose only argument is the token.
pub unsafe fn row_source<'c, P: Copy + 'static>(
    fcinfo: pg_sys::FunctionCallInfo,
    function: &str,
    caller: &str,
    columns: &'c [Column],
) -> (P, RowWriter<'c>) {
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
    // materialize mode (the functions return TABLE and are read by an INSERT ... SELECT); the
    // descriptor's attributes are read within its length.
    let (store, desc) = unsafe {
        pg_sys::InitMaterializedSRF(fcinfo, 0);
        let rsinfo = (*fcinfo).resultinfo as *mut pg_sys::ReturnSetInfo;
        let desc = (*rsinfo).setDesc;
        let natts = (*desc).natts as usize;
        let declared = (*desc).attrs.as_slice(natts);
        let matches = natts == columns.len()
            && columns.len() <= 64
            && declared.iter().zip(columns).all(|(att, col)| {
                att.atttypid == col.type_oid
                    && std::ffi::CStr::from_ptr(att.attname.data.as_ptr()).to_bytes()
                        == col.name.as_bytes()
            });
        if !matches {
            raise(
                ERRCODE_INTERNAL_ERROR,
                format!("{function}: its declared columns are not the ones it writes"),
                Some(
                    "The extension's SQL and library are from different versions: reinstall it."
                        .into(),
                ),
            );
        }
        ((*rsinfo).setResult, desc)
    };
    let n = columns.len();
    (
        payload,
        RowWriter {
            store,
            desc,
            columns,
            values: vec![pg_sys::Datum::from(0usize); n],
            nulls: vec![false; n],
            set: 0,
            varlenas: Vec::with_capacity(n),
            bytes: RowBytes::default(),
            function: function.to_string(),
        },
    )
}

/// A row source's rows, written one at a time into its result set: each value is set by its
/// column's constant (`row_columns!`), checked against the column's type, and a row goes out
/// only once every column has a value or a NULL.
pub struct RowWriter<'c> {
    store: *mut pg_sys::Tuplestorestate,
    desc: pg_sys::TupleDesc,
    columns: &'c [Column],
    values: Vec<pg_sys::Datum>,
    nulls: Vec<bool>,
    /// The columns set in the current row, a bit each.
    set: u64,
    /// The varlena values of the current row: the column and the value's offset in `bytes`.
    varlenas: Vec<(usize, usize)>,
    bytes: RowBytes,
    function: String,
}

impl RowWriter<'_> {
    #[inline(always)]
    fn value(&mut self, col: usize, type_oid: pg_sys::Oid, value: Option<pg_sys::Datum>) {
        if self.columns.get(col).map(|c| c.type_oid) != Some(type_oid) {
            self.wrong_type(col);
        }
        self.nulls[col] = value.is_none();
        self.values[col] = value.unwrap_or(pg_sys::Datum::from(0usize));
        self.set |= 1 << col;
    }

    #[cold]
    fn wrong_type(&self, col: usize) -> ! {
        let name = self.columns.get(col).map_or("?", |c| c.name);
        raise(
            ERRCODE_INTERNAL_ERROR,
            format!(
                "{}: column {name} is set with a value of another type",
                self.function
            ),
            None,
        )
    }

    pub fn int8(&mut self, col: usize, v: i64) {
        self.value(col, pg_sys::INT8OID, Some(pg_sys::Datum::from(v)));
    }

    pub fn int4(&mut self, col: usize, v: Option<i32>) {
        self.value(col, pg_sys::INT4OID, v.map(pg_sys::Datum::from));
    }

    pub fn int2(&mut self, col: usize, v: Option<i16>) {
        self.value(col, pg_sys::INT2OID, v.map(pg_sys::Datum::from));
    }

    pub fn float8(&mut self, col: usize, v: Option<f64>) {
        self.value(
            col,
            pg_sys::FLOAT8OID,
            v.map(|v| pg_sys::Datum::from(v.to_bits())),
        );
    }

    pub fn boolean(&mut self, col: usize, v: bool) {
        self.value(col, pg_sys::BOOLOID, Some(pg_sys::Datum::from(v)));
    }

    /// A date, from its day number (days since 2000-01-01).
    pub fn date(&mut self, col: usize, v: Option<Day>) {
        self.value(col, pg_sys::DATEOID, v.map(|d| pg_sys::Datum::from(d.0)));
    }

    /// A numeric of `minor` units at `scale`, built in numeric's storage format (no numeric
    /// arithmetic per row).
    pub fn numeric(&mut self, col: usize, minor: Option<i64>, scale: u32) {
        let at = minor.map(|m| self.bytes.numeric(m, scale));
        self.varlena(col, pg_sys::NUMERICOID, at);
    }

    /// A text value.
    pub fn text(&mut self, col: usize, v: Option<&[u8]>) {
        let at = v.map(|t| self.bytes.text(t));
        self.varlena(col, pg_sys::TEXTOID, at);
    }

    /// A bytea value.
    pub fn bytea(&mut self, col: usize, v: Option<&[u8]>) {
        let at = v.map(|t| self.bytes.text(t));
        self.varlena(col, pg_sys::BYTEAOID, at);
    }

    /// A text value built by the caller, which lives until the row source returns.
    ///
    /// # Safety
    /// `datum` must be a valid text datum for that long.
    pub unsafe fn text_datum(&mut self, col: usize, datum: pg_sys::Datum) {
        self.value(col, pg_sys::TEXTOID, Some(datum));
    }

    fn varlena(&mut self, col: usize, type_oid: pg_sys::Oid, at: Option<usize>) {
        // The datum is taken once the row is complete, as the buffer may move while it grows.
        self.value(col, type_oid, None);
        if let Some(at) = at {
            self.nulls[col] = false;
            self.varlenas.push((col, at));
        }
    }

    /// Appends the row set so far, and starts the next. Every column must have been set.
    pub fn put(&mut self) {
        let all = if self.columns.len() == 64 {
            u64::MAX
        } else {
            (1u64 << self.columns.len()) - 1
        };
        if self.set != all {
            let missing = (0..self.columns.len())
                .find(|&c| self.set & (1 << c) == 0)
                .map_or("?", |c| self.columns[c].name);
            raise(
                ERRCODE_INTERNAL_ERROR,
                format!("{}: column {missing} is not set", self.function),
                None,
            );
        }
        for &(col, at) in &self.varlenas {
            self.values[col] = self.bytes.datum(at);
        }
        // SAFETY: store and desc come from InitMaterializedSRF on this call, whose descriptor
        // has these columns (checked in row_source); every datum was set by a setter of its
        // column's type, the varlenas live in `bytes` until it is cleared below, and the values
        // are copied into the store.
        unsafe {
            pg_sys::tuplestore_putvalues(
                self.store,
                self.desc,
                self.values.as_mut_ptr(),
                self.nulls.as_mut_ptr(),
            )
        };
        self.set = 0;
        self.varlenas.clear();
        self.bytes.clear();
    }
}

/// `INSERT INTO table (columns) SELECT p.columns FROM function($1) p`, the column list from the
/// row source's [`Column`]s, with the SELECT expressions that differ and the columns that do not
/// come from the row source.
pub struct InsertFrom {
    table: String,
    function: String,
    columns: Vec<String>,
    selects: Vec<String>,
}

impl InsertFrom {
    /// `table` and `function` schema-qualified.
    pub fn new(table: &str, function: &str, columns: &[Column]) -> Self {
        InsertFrom {
            table: table.to_string(),
            function: function.to_string(),
            columns: columns.iter().map(|c| c.name.to_string()).collect(),
            selects: columns.iter().map(|c| format!("p.{}", c.name)).collect(),
        }
    }

    /// Column `name` of the row source is written as `expr` (over `p`, the row source's row).
    pub fn select(mut self, name: &str, expr: &str) -> Self {
        if let Some(i) = self.columns.iter().position(|c| c == name) {
            self.selects[i] = expr.to_string();
        }
        self
    }

    /// Column `name` of the table, not in the row source, is written as `expr`.
    pub fn extra(mut self, name: &str, expr: &str) -> Self {
        self.columns.push(name.to_string());
        self.selects.push(expr.to_string());
        self
    }

    /// The statement; `$1` is the token.
    pub fn sql(&self) -> String {
        format!(
            "INSERT INTO {} ({}) SELECT {} FROM {}($1) p",
            self.table,
            self.columns.join(", "),
            self.selects.join(", "),
            self.function
        )
    }
}

/// The variable-length values of one row (numerics in their storage format, texts), built in one
/// buffer: each is added at a 4-byte aligned offset, and their datums are taken once the row is
/// complete, since the buffer may move while it grows.
#[derive(Default)]
struct RowBytes(Vec<u8>);

impl RowBytes {
    fn clear(&mut self) {
        self.0.clear();
    }

    fn align(&mut self) -> usize {
        while !self.0.len().is_multiple_of(4) {
            self.0.push(0);
        }
        self.0.len()
    }

    /// A numeric of `minor` units at `scale`; returns its offset.
    fn numeric(&mut self, minor: i64, scale: u32) -> usize {
        let at = self.align();
        cda_analytics_core::pg_numeric::encode_minor(minor, scale, &mut self.0);
        at
    }

    /// A text (or bytea) with a 4-byte header; returns its offset.
    fn text(&mut self, text: &[u8]) -> usize {
        let at = self.align();
        self.0
            .extend_from_slice(&(((text.len() + 4) as u32) << 2).to_ne_bytes());
        self.0.extend_from_slice(text);
        at
    }

    /// The datum of the value at `at`, valid until the buffer next changes.
    fn datum(&self, at: usize) -> pg_sys::Datum {
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
