//! Writing `ml_user_anomalies_weekly`: the rows reach the INSERT through the row source
//! `_anomaly_pending_rows`, which reads them from this backend's memory
//! (`crate::write::row_source`).

// The row source `_anomaly_pending_rows`, a C-level set-returning function.
#![allow(unsafe_code)]

use pgrx::IntoDatum;
use pgrx::prelude::*;
use rustc_hash::FxHashMap;

use cda_analytics_core::anomaly::{Finding, week_start};
use cda_analytics_core::calendar::Day;

use crate::toolbox::statement::execute;
use crate::write::row_source::InsertFrom;

/// Replaces the table's rows; the caller holds the lock. DELETE, not TRUNCATE, so that readers
/// keep the previous rows until commit. An `unnest` of fourteen arrays of millions of values
/// cost more than the INSERT itself.
pub fn write(ext: &str, rows: &[(i64, Finding)], as_of: Day) {
    execute(
        &format!("DELETE FROM {ext}.ml_user_anomalies_weekly"),
        &[],
        "clearing ml_user_anomalies_weekly",
    );
    let pending = Pending {
        rows: rows.as_ptr(),
        len: rows.len(),
    };
    crate::write::row_source::park(pending, |token| {
        // Triggers travel as one comma-joined text per row; trigger names have no commas.
        let sql = InsertFrom::new(
            &format!("{ext}.ml_user_anomalies_weekly"),
            &format!("{ext}._anomaly_pending_rows"),
            row::COLUMNS,
        )
        .select(
            "triggers",
            "CASE WHEN p.triggers = '' THEN '{}'::pg_catalog.text[] \
             ELSE pg_catalog.string_to_array(p.triggers, ',') END",
        )
        .extra("as_of_date", "DATE '2000-01-01' + $2")
        .sql();
        execute(
            &sql,
            &[token.into(), as_of.0.into()],
            "writing ml_user_anomalies_weekly",
        );
    });
}

/// The rows being written, parked by [`write`] for `_anomaly_pending_rows`.
#[derive(Clone, Copy)]
struct Pending {
    rows: *const (i64, Finding),
    len: usize,
}

row_columns! {
    /// The columns of `_anomaly_pending_rows`: `ml_user_anomalies_weekly`'s, the triggers as one
    /// comma-joined text.
    mod row {
        user_id: INT8OID,
        week_start: DATEOID,
        orders: INT4OID,
        spend: FLOAT8OID,
        categories: INT4OID,
        orders_z: FLOAT8OID,
        spend_z: FLOAT8OID,
        spend_robust_z: FLOAT8OID,
        orders_ratio: FLOAT8OID,
        spend_ratio: FLOAT8OID,
        anomaly_score: FLOAT8OID,
        is_anomaly: BOOLOID,
        triggers: TEXTOID,
        insufficient_history: BOOLOID,
    }
}

v1_finfo!(pg_finfo_cda_anomaly_pending_rows);
/// `_anomaly_pending_rows(token)`: the rows [`write`] is writing, in materialize mode.
///
/// # Safety
/// Called by the executor as the set-returning `_anomaly_pending_rows(token)`.
#[unsafe(no_mangle)]
#[pg_guard]
pub unsafe extern "C-unwind" fn cda_anomaly_pending_rows(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    // SAFETY: as the caller vouches.
    let (Pending { rows, len }, mut out) = unsafe {
        crate::write::row_source::row_source::<Pending>(
            fcinfo,
            "_anomaly_pending_rows",
            "calculate_all_anomalies()",
            row::COLUMNS,
        )
    };
    // SAFETY: write keeps the slice alive and unchanged while its INSERT, the only caller with
    // the token, runs.
    let rows = unsafe { std::slice::from_raw_parts(rows, len) };
    // The few distinct trigger lists are built as text once each, in this call's memory context.
    let mut texts: FxHashMap<String, pg_sys::Datum> = FxHashMap::default();
    for (id, f) in rows {
        out.int8(row::user_id, *id);
        out.date(row::week_start, Some(week_start(f.week)));
        out.int4(row::orders, Some(f.orders.value as i32));
        out.float8(row::spend, Some(f.spend.value));
        out.int4(row::categories, f.categories.map(|c| c as i32));
        out.float8(row::orders_z, f.orders.z);
        out.float8(row::spend_z, f.spend.z);
        out.float8(row::spend_robust_z, f.spend.robust_z);
        out.float8(row::orders_ratio, f.orders.ratio);
        out.float8(row::spend_ratio, f.spend.ratio);
        out.float8(row::anomaly_score, Some(f.score));
        out.boolean(row::is_anomaly, f.is_anomaly);
        let joined = super::trigger_names(f).join(",");
        let text = match texts.get(&joined) {
            Some(&d) => d,
            None => {
                let d = joined
                    .as_str()
                    .into_datum()
                    .unwrap_or(pg_sys::Datum::from(0usize));
                texts.insert(joined, d);
                d
            }
        };
        // SAFETY: the texts live in this call's memory context until it returns.
        unsafe { out.text_datum(row::triggers, text) };
        out.boolean(row::insufficient_history, f.insufficient_history);
        out.put();
    }
    pg_sys::Datum::from(0usize)
}
