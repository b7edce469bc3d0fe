//! The CLV tables: fitted models by name (`ml_clv_models`) and the per-customer predictions
//! (`ml_user_clv`), written in the caller's transaction so a refresh commits whole or not at all.

use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;

use cda_analytics_core::calendar::Day;
use cda_analytics_core::clv::fit::FitReport;
use cda_analytics_core::clv::{ModelKind, TimeUnit};

use crate::toolbox::errors::*;
use crate::write::refresh::execute;

/// A stored model as the predictions need it.
pub struct StoredModel {
    pub name: String,
    pub kind: ModelKind,
    pub unit: TimeUnit,
    pub calibration_end: Day,
    pub params: Vec<f64>,
}

fn json_object(names: &[&str], values: &[f64]) -> String {
    let fields: Vec<String> = names
        .iter()
        .zip(values)
        .map(|(n, v)| {
            if v.is_finite() {
                format!("\"{n}\": {v:?}")
            } else {
                format!("\"{n}\": null")
            }
        })
        .collect();
    format!("{{{}}}", fields.join(", "))
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
    let args: Vec<DatumWithOid<'_>> = vec![
        name.to_string().into(),
        report.kind.name().to_string().into(),
        unit.name().to_string().into(),
        calibration_end.0.into(),
        json_object(names, &report.params).into(),
        json_object(names, &report.std_errors).into(),
        report.log_likelihood.into(),
        (report.customers.round() as i64).into(),
        (report.distinct_rows as i64).into(),
        penalizer.into(),
        (report.iterations as i32).into(),
        report.gradient_norm.into(),
        (report.starts as i32).into(),
        (report.starts_at_best as i32).into(),
        fit_ms.into(),
    ];
    let sql = format!(
        "INSERT INTO {ext}.ml_clv_models (model_name, model, time_unit, calibration_end, parameters, std_errors, \
             log_likelihood, customers, distinct_rows, penalizer, iterations, gradient_norm, starts, starts_at_best, fit_ms) \
         VALUES ($1, $2, $3, DATE '2000-01-01' + $4, $5::pg_catalog.jsonb, $6::pg_catalog.jsonb, $7, $8, $9, $10, $11, \
             $12, $13, $14, $15) \
         ON CONFLICT (model_name) DO UPDATE SET model = excluded.model, time_unit = excluded.time_unit, \
             calibration_end = excluded.calibration_end, parameters = excluded.parameters, \
             std_errors = excluded.std_errors, log_likelihood = excluded.log_likelihood, \
             customers = excluded.customers, distinct_rows = excluded.distinct_rows, penalizer = excluded.penalizer, \
             iterations = excluded.iterations, gradient_norm = excluded.gradient_norm, starts = excluded.starts, \
             starts_at_best = excluded.starts_at_best, fit_ms = excluded.fit_ms, fitted_at = pg_catalog.now()"
    );
    Spi::connect_mut(|c| c.update(&sql, None, &args).map(|_| ())).or_raise("storing the CLV model");
}

/// The model stored as `name`; an error naming it when there is none, or when the stored row
/// is not a complete model (edited by hand).
pub fn load(ext: &str, name: &str) -> StoredModel {
    let sql = format!(
        "SELECT model, time_unit, calibration_end - DATE '2000-01-01', \
             ARRAY(SELECT (m.parameters ->> n)::pg_catalog.float8 FROM pg_catalog.unnest(CASE m.model \
                 WHEN 'pareto_nbd' THEN ARRAY['r','alpha','s','beta'] WHEN 'gamma_gamma' THEN ARRAY['p','q','v'] \
                 ELSE ARRAY['r','alpha','a','b'] END) WITH ORDINALITY AS k(n, i) ORDER BY k.i) \
         FROM {ext}.ml_clv_models m WHERE m.model_name = $1"
    );
    let found = Spi::connect(|c| {
        let t = c.select(&sql, None, &[name.to_string().into()])?;
        if t.is_empty() {
            return Ok(None);
        }
        let row = t.first();
        Ok::<_, pgrx::spi::SpiError>(Some((
            row.get::<String>(1)?.unwrap_or_default(),
            row.get::<String>(2)?.unwrap_or_default(),
            row.get::<i32>(3)?.unwrap_or_default(),
            row.get::<Vec<Option<f64>>>(4)?.unwrap_or_default(),
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
    let params: Option<Vec<f64>> = params
        .into_iter()
        .map(|p| p.filter(|v| v.is_finite() && *v > 0.0))
        .collect();
    match (ModelKind::parse(&kind), TimeUnit::parse(&unit), params) {
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
/// of ten arrays of a million values costs four times the INSERT itself.
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
    let sql = format!(
        "INSERT INTO {ext}.ml_user_clv (user_id, frequency, recency, t, monetary_value, probability_alive, \
             expected_purchases, probability_no_purchase, expected_spend, clv, model_name, spend_model_name, \
             time_unit, horizon_months, monthly_discount, as_of_date) \
         SELECT p.*, $2, $3, $4, $5, $6, DATE '2000-01-01' + $7 FROM {ext}._clv_pending_rows($1) p"
    );
    execute(&sql, &args, "writing ml_user_clv");
}

/// The rows being written, parked by [`replace`] for `_clv_pending_rows` (see
/// `crate::write::row_source`).
#[derive(Clone, Copy)]
struct Pending {
    rows: *const ClvRow,
    len: usize,
}

const PENDING_COLUMNS: usize = 10;

v1_finfo!(pg_finfo_cda_clv_pending_rows);
/// `_clv_pending_rows(token)`: the rows [`replace`] is writing, as the ten per-customer columns
/// of `ml_user_clv`, in materialize mode. Every column is passed by value.
#[unsafe(no_mangle)]
#[pg_guard]
pub unsafe extern "C-unwind" fn cda_clv_pending_rows(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    // SAFETY: called by the executor as the set-returning `_clv_pending_rows(token)`.
    let (Pending { rows, len }, out) = unsafe {
        crate::write::row_source::row_source::<Pending>(
            fcinfo,
            "_clv_pending_rows",
            "calculate_all_clv()",
            PENDING_COLUMNS,
        )
    };
    // SAFETY: replace keeps the slice alive and unchanged while its INSERT, the only caller with
    // the token, runs.
    let rows = unsafe { std::slice::from_raw_parts(rows, len) };
    let mut values = [pg_sys::Datum::from(0usize); PENDING_COLUMNS];
    let mut nulls = [false; PENDING_COLUMNS];
    let float = |v: f64| pg_sys::Datum::from(v.to_bits());
    for r in rows {
        values[0] = pg_sys::Datum::from(r.user_id);
        values[1] = pg_sys::Datum::from(r.frequency);
        values[2] = float(r.recency);
        values[3] = float(r.age);
        values[5] = float(r.probability_alive);
        values[6] = float(r.expected_purchases);
        for (col, v) in [
            (4, r.monetary_value),
            (7, r.probability_no_purchase),
            (8, r.expected_spend),
            (9, r.clv),
        ] {
            nulls[col] = v.is_none();
            values[col] = float(v.unwrap_or(0.0));
        }
        // SAFETY: every column is passed by value.
        unsafe { out.put(&mut values, &mut nulls) };
    }
    pg_sys::Datum::from(0usize)
}
