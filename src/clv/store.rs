//! The CLV tables: fitted models by name (`ml_clv_models`) and the per-customer predictions
//! (`ml_user_clv`), written in the caller's transaction so a refresh commits whole or not at all.

// The row source `_clv_pending_rows`, a C-level set-returning function.
#![allow(unsafe_code)]

use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;

use cda_analytics_core::calendar::Day;
use cda_analytics_core::clv::fit::FitReport;
use cda_analytics_core::clv::{ModelKind, TimeUnit};

use crate::toolbox::errors::*;
use crate::toolbox::statement::{InsertRow, execute};
use crate::write::row_source::InsertFrom;

/// A stored model as the predictions need it.
pub struct StoredModel {
    pub name: String,
    pub kind: ModelKind,
    pub unit: TimeUnit,
    pub calibration_end: Day,
    pub params: Vec<f64>,
}

/// The parameters as a JSON object by name; a value that is not finite is null.
fn json_object(names: &[&str], values: &[f64]) -> String {
    let fields: serde_json::Map<String, serde_json::Value> = names
        .iter()
        .zip(values)
        .map(|(n, &v)| (n.to_string(), serde_json::Value::from(v)))
        .collect();
    serde_json::Value::Object(fields).to_string()
}

#[allow(clippy::too_many_arguments)]
pub fn store(
    ext: &str,
    name: &str,
    report: &FitReport,
    unit: TimeUnit,
    calibration_end: Day,
    penalizer: f64,
    fit_ms: f64,
) {
    let names = report.kind.param_names();
    let jsonb = "{}::pg_catalog.jsonb";
    let mut row = InsertRow::default();
    row.arg("model_name", name.to_string())
        .arg("model", report.kind.name().to_string())
        .arg("time_unit", unit.name().to_string())
        .arg_as(
            "calibration_end",
            calibration_end.0,
            "DATE '2000-01-01' + {}",
        )
        .arg_as("parameters", json_object(names, &report.params), jsonb)
        .arg_as("std_errors", json_object(names, &report.std_errors), jsonb)
        .arg("log_likelihood", report.log_likelihood)
        .arg("customers", report.customers.round() as i64)
        .arg("distinct_rows", report.distinct_rows as i64)
        .arg("penalizer", penalizer)
        .arg("iterations", report.iterations as i32)
        .arg("gradient_norm", report.gradient_norm)
        .arg("starts", report.starts as i32)
        .arg("starts_at_best", report.starts_at_best as i32)
        .arg("fit_ms", fit_ms);
    let (sql, args) = row.upsert(
        &format!("{ext}.ml_clv_models"),
        "model_name",
        &[("fitted_at", "pg_catalog.now()")],
        "",
    );
    Spi::connect_mut(|c| c.update(&sql, None, &args).map(|_| ())).or_raise("storing the CLV model");
}

/// The model stored as `name`; an error naming it when there is none, or when the stored row
/// is not a complete model (edited by hand).
pub fn load(ext: &str, name: &str) -> StoredModel {
    let sql = format!(
        "SELECT model, time_unit, calibration_end - DATE '2000-01-01' AS calibration_day, \
             ARRAY(SELECT (m.parameters ->> n)::pg_catalog.float8 FROM pg_catalog.unnest(CASE m.model \
                 WHEN 'pareto_nbd' THEN ARRAY['r','alpha','s','beta'] WHEN 'gamma_gamma' THEN ARRAY['p','q','v'] \
                 ELSE ARRAY['r','alpha','a','b'] END) WITH ORDINALITY AS k(n, i) ORDER BY k.i) AS params \
         FROM {ext}.ml_clv_models m WHERE m.model_name = $1"
    );
    let found = Spi::connect(|c| {
        let t = c.select(&sql, None, &[name.to_string().into()])?;
        if t.is_empty() {
            return Ok(None);
        }
        let row = t.first();
        Ok::<_, pgrx::spi::SpiError>(Some((
            row.get_by_name::<String, _>("model")?.unwrap_or_default(),
            row.get_by_name::<String, _>("time_unit")?
                .unwrap_or_default(),
            row.get_by_name::<i32, _>("calibration_day")?
                .unwrap_or_default(),
            row.get_by_name::<Vec<Option<f64>>, _>("params")?
                .unwrap_or_default(),
        )))
    })
    .or_raise("reading ml_clv_models");
    let Some((kind, unit, end, params)) = found else {
        raise(
            ERRCODE_UNDEFINED_OBJECT,
            format!("no CLV model named '{name}'"),
            Some("Fit one first, e.g. SELECT * FROM clv_fit('name', 'bgnbd', 'week');".into()),
        );
    };
    let kind = ModelKind::parse(&kind);
    let params = kind.and_then(|k| k.stored_params(&params));
    match (kind, TimeUnit::parse(&unit), params) {
        (Some(kind), Some(unit), Some(params)) => StoredModel {
            name: name.to_string(),
            kind,
            unit,
            calibration_end: Day(end),
            params,
        },
        _ => raise(
            ERRCODE_DATA_CORRUPTED,
            format!("CLV model '{name}' in ml_clv_models has missing or invalid parameters"),
            Some("Fit the model again with clv_fit.".into()),
        ),
    }
}

/// One customer's row of `ml_user_clv`.
pub struct ClvRow {
    pub user_id: i64,
    pub frequency: i32,
    pub recency: f64,
    pub age: f64,
    pub monetary_value: Option<f64>,
    pub probability_alive: f64,
    pub expected_purchases: f64,
    pub probability_no_purchase: Option<f64>,
    pub expected_spend: Option<f64>,
    pub clv: Option<f64>,
}

/// The settings every row of a refresh shares.
pub struct RunSettings<'a> {
    pub model: &'a StoredModel,
    pub spend_model: Option<&'a str>,
    pub horizon_months: i32,
    pub monthly_discount: f64,
    pub as_of: Day,
}

/// Replaces the contents of `ml_user_clv` with `rows`; the caller holds the table's lock
/// ([`crate::write::refresh::lock`]).
/// DELETE, not TRUNCATE, so that readers keep the previous rows until commit. The rows reach the
/// INSERT through `_clv_pending_rows`, which reads them from this backend's memory: an `unnest`
/// of ten arrays costs more than the INSERT itself (BENCHMARKS.md, "Measurements behind the
/// code").
pub fn replace(ext: &str, rows: &[ClvRow], run: &RunSettings<'_>) {
    execute(
        &format!("DELETE FROM {ext}.ml_user_clv"),
        &[],
        "clearing ml_user_clv",
    );
    let pending = Pending {
        rows: rows.as_ptr(),
        len: rows.len(),
    };
    crate::write::row_source::park(pending, |token| write_parked(ext, token, run));
}

fn write_parked(ext: &str, token: i64, run: &RunSettings<'_>) {
    let args: Vec<DatumWithOid<'_>> = vec![
        token.into(),
        run.model.name.clone().into(),
        run.spend_model.map(str::to_string).into(),
        run.model.unit.name().to_string().into(),
        run.horizon_months.into(),
        run.monthly_discount.into(),
        run.as_of.0.into(),
    ];
    let sql = InsertFrom::new(
        &format!("{ext}.ml_user_clv"),
        &format!("{ext}._clv_pending_rows"),
        row::COLUMNS,
    )
    .extra("model_name", "$2")
    .extra("spend_model_name", "$3")
    .extra("time_unit", "$4")
    .extra("horizon_months", "$5")
    .extra("monthly_discount", "$6")
    .extra("as_of_date", "DATE '2000-01-01' + $7")
    .sql();
    execute(&sql, &args, "writing ml_user_clv");
}

/// The rows being written, parked by [`replace`] for `_clv_pending_rows` (see
/// `crate::write::row_source`).
#[derive(Clone, Copy)]
struct Pending {
    rows: *const ClvRow,
    len: usize,
}

row_columns! {
    /// The columns of `_clv_pending_rows`: `ml_user_clv`'s per-customer columns.
    mod row {
        user_id: INT8OID,
        frequency: INT4OID,
        recency: FLOAT8OID,
        t: FLOAT8OID,
        monetary_value: FLOAT8OID,
        probability_alive: FLOAT8OID,
        expected_purchases: FLOAT8OID,
        probability_no_purchase: FLOAT8OID,
        expected_spend: FLOAT8OID,
        clv: FLOAT8OID,
    }
}

v1_finfo!(pg_finfo_cda_clv_pending_rows);
/// `_clv_pending_rows(token)`: the rows [`replace`] is writing, as the per-customer columns of
/// `ml_user_clv`, in materialize mode. Every column is passed by value.
///
/// # Safety
/// Called by the executor as the set-returning `_clv_pending_rows(token)`.
#[unsafe(no_mangle)]
#[pg_guard]
pub unsafe extern "C-unwind" fn cda_clv_pending_rows(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    // SAFETY: as the caller vouches.
    let (Pending { rows, len }, mut out) = unsafe {
        crate::write::row_source::row_source::<Pending>(
            fcinfo,
            "_clv_pending_rows",
            "calculate_all_clv()",
            row::COLUMNS,
        )
    };
    // SAFETY: replace keeps the slice alive and unchanged while its INSERT, the only caller with
    // the token, runs.
    let rows = unsafe { std::slice::from_raw_parts(rows, len) };
    for r in rows {
        out.int8(row::user_id, r.user_id);
        out.int4(row::frequency, Some(r.frequency));
        out.float8(row::recency, Some(r.recency));
        out.float8(row::t, Some(r.age));
        out.float8(row::monetary_value, r.monetary_value);
        out.float8(row::probability_alive, Some(r.probability_alive));
        out.float8(row::expected_purchases, Some(r.expected_purchases));
        out.float8(row::probability_no_purchase, r.probability_no_purchase);
        out.float8(row::expected_spend, r.expected_spend);
        out.float8(row::clv, r.clv);
        out.put();
    }
    pg_sys::Datum::from(0usize)
}
