//! Predictive CLV in SQL: customer summaries, maximum-likelihood fits of BG/NBD, MBG/NBD,
//! Pareto/NBD and Gamma-Gamma stored by name, per-customer predictions, the `ml_user_clv`
//! refresh, and holdout evaluation. The models are in `cda_analytics_core::clv`.
//!
//! Every function that takes or returns a time says its unit in its signature: a weekly model
//! asked for a horizon in days converts it, so the well-known weekly-fit-daily-horizon mistake
//! cannot happen silently.

mod read;
mod store;

use pgrx::prelude::*;
use rayon::prelude::*;
use rustc_hash::FxHashMap;

use cda_analytics_core::clv::evaluate::holdout;
use cda_analytics_core::clv::fit::{fit_spend_within, fit_transactions_within};
use cda_analytics_core::clv::gamma_gamma::SpendRow;
use cda_analytics_core::clv::optimize::{Budget, MAX_EVALUATIONS};
use cda_analytics_core::clv::summary::CustomerSummary;
use cda_analytics_core::clv::value::{discounted, month_ends};
use cda_analytics_core::clv::{
    ModelError, ModelKind, SpendModel, Summary, TimeUnit, TransactionModel,
};

use crate::source::Context;
use crate::source::ext_schema;
use crate::toolbox::convert::{date_of, day_of_date};
use crate::toolbox::errors::*;
use crate::toolbox::workers::on_worker_threads;
use cda_analytics_core::phases::Phases;
use read::Window;
use store::{ClvRow, RunSettings, StoredModel};

/// Raises a model error with the SQLSTATE and hint that fit its cause.
fn raise_model(e: ModelError, what: &str) -> ! {
    let (code, hint) = match &e {
        ModelError::BadArgument(_) | ModelError::InvalidSummary { .. } => {
            (ERRCODE_INVALID_PARAMETER_VALUE, None)
        }
        ModelError::InvalidSpend { .. } => (ERRCODE_INVALID_PARAMETER_VALUE, None),
        ModelError::NoCustomers | ModelError::NoRepeatPurchases | ModelError::NoRepeatCustomers => (
            ERRCODE_DATA_EXCEPTION,
            Some("Check the calibration end date and the source tables (configure_source).".into()),
        ),
        ModelError::NotConverged { .. } | ModelError::Degenerate { .. } | ModelError::NotAMaximum => (
            ERRCODE_DATA_EXCEPTION,
            Some("No model was stored. A small penalizer (0.001 to 0.1) regularises the fit; more customers or a longer calibration period help too.".into()),
        ),
        ModelError::OverBudget { .. } => (
            ERRCODE_PROGRAM_LIMIT_EXCEEDED,
            Some("No model was stored. Customers who never drop out give the models no maximum: check clv_summary() for the calibration period. A fit that is merely slow can have more time: SET cda_analytics.fit_time_limit = '10min'.".into()),
        ),
        ModelError::Numerical(_) => (ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE, None),
        ModelError::SpendUndefined { .. } => (
            ERRCODE_DATA_EXCEPTION,
            Some("Refit the spend model with a penalizer, or on more customers.".into()),
        ),
        ModelError::NotAvailable { .. } => (ERRCODE_FEATURE_NOT_SUPPORTED, None),
        // The cancel itself is raised by on_worker_threads before a result is used.
        ModelError::Stopped => (ERRCODE_QUERY_CANCELED, None),
    };
    raise(code, format!("{what}: {e}"), hint)
}

/// `cda_analytics.fit_time_limit`: the wall-clock time one fit may take, in milliseconds (0: no
/// limit but the evaluations').
pub static FIT_TIME_LIMIT: pgrx::GucSetting<i32> = pgrx::GucSetting::<i32>::new(60_000);

fn fit_time_limit() -> Option<std::time::Duration> {
    let ms = FIT_TIME_LIMIT.get();
    (ms > 0).then(|| std::time::Duration::from_millis(ms as u64))
}

fn time_unit(name: &str, argument: &str) -> TimeUnit {
    TimeUnit::parse(name).unwrap_or_else(|| {
        raise(
            ERRCODE_INVALID_PARAMETER_VALUE,
            format!("{argument} must be 'day' or 'week', got '{name}'"),
            None,
        )
    })
}

/// The longest horizon or holdout a prediction or an evaluation looks ahead: 100 years, as
/// `calculate_all_clv`'s 1,200 months. The models' series grow with the horizon, so a horizon
/// without bound (a date in the year 9999) would run for minutes without checking for a cancel.
const MAX_HORIZON_DAYS: f64 = 36_525.0;

/// A horizon given in `unit` (a finite number of at least 0 and at most 100 years), in the
/// model's unit.
fn horizon_in(model: &TransactionModel, horizon: f64, unit: TimeUnit) -> f64 {
    let horizon = finite(horizon, "horizon", 0.0);
    if horizon * unit.days() > MAX_HORIZON_DAYS {
        raise(
            ERRCODE_INVALID_PARAMETER_VALUE,
            format!(
                "horizon must be at most 100 years, got {horizon} {}s",
                unit.name()
            ),
            None,
        );
    }
    model.unit.convert(horizon, unit)
}

fn finite(value: f64, argument: &str, min: f64) -> f64 {
    if !(value.is_finite() && value >= min) {
        raise(
            ERRCODE_INVALID_PARAMETER_VALUE,
            format!("{argument} must be a finite number >= {min}, got {value}"),
            None,
        );
    }
    value
}

/// The transaction model stored as `name`, or an error when it is a spend model.
fn purchase_model(stored: &StoredModel) -> TransactionModel {
    TransactionModel::new(stored.kind, &stored.params, stored.unit).unwrap_or_else(|e| {
        raise(
            ERRCODE_WRONG_OBJECT_TYPE,
            format!("CLV model '{}': {e}", stored.name),
            Some("Purchase predictions need a bgnbd, mbgnbd or pareto_nbd model.".into()),
        )
    })
}

fn spend_model(stored: &StoredModel) -> SpendModel {
    match <[f64; 3]>::try_from(stored.params.as_slice()) {
        Ok(params) if stored.kind == ModelKind::GammaGamma => SpendModel { params },
        _ => raise(
            ERRCODE_WRONG_OBJECT_TYPE,
            format!(
                "CLV model '{}' is a {} model, not a spend model",
                stored.name,
                stored.kind.name()
            ),
            Some("Expected spend needs a gamma_gamma model.".into()),
        ),
    }
}

/// The history of one user as of a date, for the per-user predictions; an error when the user
/// has no purchase by then.
fn user_history(ctx: &Context, user_id: i64, unit: TimeUnit) -> CustomerSummary {
    let window = Window::as_of(ctx, unit);
    match read::summaries(ctx, window, Some(user_id), true).pop() {
        Some((_, s)) => s,
        None => raise(
            ERRCODE_NO_DATA_FOUND,
            format!("user {user_id} has no successful purchase on or before the as-of date"),
            Some(
                "The customer-base models predict for customers, who have made a first purchase."
                    .into(),
            ),
        ),
    }
}

/// Customer summaries: frequency (repeat purchase days), recency and T in `time_unit`, mean
/// repeat spend, and with `holdout_end`, each customer's purchase days and spend after the
/// calibration end.
#[allow(clippy::type_complexity)]
#[pg_extern(stable, parallel_restricted)]
#[search_path(pg_catalog, pg_temp)]
fn clv_summary(
    time_unit: Option<&str>,
    calibration_end: default!(Option<pgrx::datum::Date>, "NULL"),
    holdout_end: default!(Option<pgrx::datum::Date>, "NULL"),
) -> TableIterator<
    'static,
    (
        name!(user_id, i64),
        name!(frequency, i32),
        name!(recency, f64),
        name!(t, f64),
        name!(monetary_value, Option<f64>),
        name!(holdout_frequency, Option<i32>),
        name!(holdout_spend, Option<f64>),
        name!(holdout_duration, Option<f64>),
    ),
> {
    let time_unit = required(time_unit, "time_unit");
    let unit = self::time_unit(time_unit, "time_unit");
    let ctx = Context::load(calibration_end);
    let holdout_end = holdout_end.map(|d| day_of_date(d, "holdout_end"));
    if let Some(h) = holdout_end
        && h <= ctx.as_of
    {
        raise(
            ERRCODE_INVALID_PARAMETER_VALUE,
            "holdout_end must be after calibration_end",
            None,
        );
    }
    let window = Window {
        calibration_end: ctx.as_of,
        holdout_end,
        unit,
        explicit_end: ctx.explicit_as_of || holdout_end.is_some(),
    };
    let duration = holdout_end.map(|h| f64::from(h.0 - ctx.as_of.0) / unit.days());
    let rows = read::summaries(&ctx, window, None, true);
    TableIterator::new(rows.into_iter().map(move |(id, s)| {
        (
            id,
            s.frequency as i32,
            s.recency,
            s.age,
            s.monetary_value,
            s.holdout_frequency.map(|f| f as i32),
            s.holdout_spend,
            duration,
        )
    }))
}

const MODEL_NAMES: &str = "'bgnbd', 'mbgnbd', 'pareto_nbd' or 'gamma_gamma'";

/// Fits `model` on the customers' summaries at `calibration_end` (default today) and stores it
/// as `model_name`, replacing a model of that name. Returns the parameters and their standard
/// errors. A fit that does not converge to a proper maximum is an error and stores nothing.
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn clv_fit(
    model_name: Option<&str>,
    model: Option<&str>,
    time_unit: Option<&str>,
    calibration_end: default!(Option<pgrx::datum::Date>, "NULL"),
    penalizer: default!(Option<f64>, 0.0),
) -> TableIterator<
    'static,
    (
        name!(parameter, String),
        name!(estimate, f64),
        name!(std_error, f64),
    ),
> {
    let model_name = required(model_name, "model_name");
    let model = required(model, "model");
    let time_unit = required(time_unit, "time_unit");
    let penalizer = required(penalizer, "penalizer");
    require_model_name(model_name);
    let Some(kind) = ModelKind::parse(model) else {
        raise(
            ERRCODE_INVALID_PARAMETER_VALUE,
            format!("unknown model '{model}'"),
            Some(format!("The models are {MODEL_NAMES}.")),
        );
    };
    let unit = self::time_unit(time_unit, "time_unit");
    let penalizer = finite(penalizer, "penalizer", 0.0);
    let ctx = Context::load(calibration_end);
    let window = Window::as_of(&ctx, unit);
    let customers = read::summaries(&ctx, window, None, true);
    let mut phases = Phases::start();
    let what = format!("fitting {} model '{model_name}'", kind.name());
    // The budget starts with the fit, after the read.
    let budget = Budget::new(fit_time_limit(), MAX_EVALUATIONS);
    let report = if kind == ModelKind::GammaGamma {
        let repeaters = customers.iter().filter(|(_, s)| s.frequency > 0);
        let rows: Vec<SpendRow> = repeaters
            .clone()
            .filter_map(|(_, s)| {
                s.monetary_value.filter(|m| *m > 0.0).map(|m| SpendRow {
                    frequency: f64::from(s.frequency),
                    mean_spend: m,
                    weight: 1.0,
                })
            })
            .collect();
        let zero = repeaters.count() - rows.len();
        if zero > 0 {
            notice(
                format!(
                    "Gamma-Gamma: left out {zero} repeat customers whose mean repeat spend is 0"
                ),
                Some("The model needs a positive mean spend.".into()),
            );
        }
        on_worker_threads(|| fit_spend_within(&rows, penalizer, &budget))
    } else {
        let rows: Vec<Summary> = customers.iter().map(|(_, s)| s.model_row()).collect();
        on_worker_threads(|| fit_transactions_within(kind, &rows, penalizer, &budget))
    }
    .unwrap_or_else(|e| raise_model(e, &what));
    phases.mark("fit");
    let fit_ms = phases.ms("fit");
    store::store(
        &ctx.ext, model_name, &report, unit, ctx.as_of, penalizer, fit_ms,
    );
    notice(
        format!(
            "{} fitted on {} customers ({} distinct rows): log-likelihood {:.2}; {} of {} starts reached the optimum",
            kind.name(),
            report.customers,
            report.distinct_rows,
            report.log_likelihood,
            report.starts_at_best,
            report.starts
        ),
        None,
    );
    let names = kind.param_names();
    let rows: Vec<(String, f64, f64)> = (0..names.len())
        .map(|i| (names[i].to_string(), report.params[i], report.std_errors[i]))
        .collect();
    TableIterator::new(rows)
}

/// Predictions for a summary the caller has: probability alive and expected repeat purchases in
/// the next `horizon`, with recency, T and the horizon all in `time_unit`.
#[pg_extern(stable, parallel_safe)]
#[search_path(pg_catalog, pg_temp)]
fn clv_predict(
    model_name: &str,
    frequency: i32,
    recency: f64,
    t: f64,
    time_unit: &str,
    horizon: f64,
) -> TableIterator<
    'static,
    (
        name!(probability_alive, f64),
        name!(expected_purchases, f64),
    ),
> {
    let unit = self::time_unit(time_unit, "time_unit");
    let stored = store::load(&ext_schema(), model_name);
    let model = purchase_model(&stored);
    if frequency < 0 {
        raise(
            ERRCODE_INVALID_PARAMETER_VALUE,
            format!("frequency must be >= 0, got {frequency}"),
            None,
        );
    }
    // Repeat purchases are counted in distinct days after the first purchase day, so a history
    // with more of them than recency has days cannot happen.
    let recency_days = recency * unit.days();
    if f64::from(frequency) > recency_days + 1e-9 {
        raise(
            ERRCODE_INVALID_PARAMETER_VALUE,
            format!(
                "frequency {frequency} is more repeat purchase days than a recency of {recency} {}s{} holds",
                unit.name(),
                match unit {
                    TimeUnit::Day => String::new(),
                    _ => format!(" ({recency_days} days)"),
                }
            ),
            Some("frequency counts the days with a purchase after the first purchase day, and recency runs from the first to the last of them: see clv_summary().".into()),
        );
    }
    let row = Summary::new(
        frequency as u32,
        model.unit.convert(recency, unit),
        model.unit.convert(t, unit),
    );
    let what = format!("predicting with '{model_name}'");
    row.check().unwrap_or_else(|e| raise_model(e, &what));
    let horizon = horizon_in(&model, horizon, unit);
    let alive = model
        .probability_alive(&row)
        .unwrap_or_else(|e| raise_model(e, &what));
    let expected = model
        .expected_purchases(&row, horizon)
        .unwrap_or_else(|e| raise_model(e, &what));
    TableIterator::once((alive, expected))
}

/// One user's predictions from their purchases up to `as_of` (default today): the summary,
/// probability alive, expected purchases in the next `horizon` (in `horizon_unit`), the chance of
/// none, and with a spend model, expected spend per purchase and the CLV over the horizon's
/// months.
#[allow(clippy::type_complexity)]
#[pg_extern(stable, parallel_restricted)]
#[search_path(pg_catalog, pg_temp)]
fn clv_user(
    model_name: Option<&str>,
    user_id: Option<i64>,
    horizon: Option<f64>,
    horizon_unit: Option<&str>,
    spend_model: default!(Option<&str>, "NULL"),
    as_of: default!(Option<pgrx::datum::Date>, "NULL"),
) -> TableIterator<
    'static,
    (
        name!(frequency, i32),
        name!(recency, f64),
        name!(t, f64),
        name!(time_unit, String),
        name!(monetary_value, Option<f64>),
        name!(probability_alive, f64),
        name!(expected_purchases, f64),
        name!(probability_no_purchase, Option<f64>),
        name!(expected_spend, Option<f64>),
    ),
> {
    let model_name = required(model_name, "model_name");
    let user_id = required(user_id, "user_id");
    let horizon = required(horizon, "horizon");
    let horizon_unit = required(horizon_unit, "horizon_unit");
    let unit = self::time_unit(horizon_unit, "horizon_unit");
    let ctx = Context::load(as_of);
    let stored = store::load(&ctx.ext, model_name);
    let model = purchase_model(&stored);
    let spend = spend_model.map(|n| self::spend_model(&store::load(&ctx.ext, n)));
    let horizon = horizon_in(&model, horizon, unit);
    let s = user_history(&ctx, user_id, model.unit);
    let row = s.model_row();
    let what = format!("predicting user {user_id} with '{model_name}'");
    let alive = model
        .probability_alive(&row)
        .unwrap_or_else(|e| raise_model(e, &what));
    let expected = model
        .expected_purchases(&row, horizon)
        .unwrap_or_else(|e| raise_model(e, &what));
    let none = model.probability_of_purchases(&row, 0, horizon).ok();
    let spend = spend.map(|m| {
        m.expected_spend(f64::from(s.frequency), s.monetary_value.unwrap_or(0.0))
            .unwrap_or_else(|e| raise_model(e, &what))
    });
    TableIterator::once((
        s.frequency as i32,
        s.recency,
        s.age,
        model.unit.name().to_string(),
        s.monetary_value,
        alive,
        expected,
        none,
        spend,
    ))
}

/// P(exactly n repeat purchases in the next `horizon`) for n = 0..max_n, for one user as of a
/// date (BG/NBD and MBG/NBD).
#[pg_extern(stable, parallel_restricted)]
#[search_path(pg_catalog, pg_temp)]
fn clv_purchase_probabilities(
    model_name: Option<&str>,
    user_id: Option<i64>,
    horizon: Option<f64>,
    horizon_unit: Option<&str>,
    max_n: default!(Option<i32>, 10),
    as_of: default!(Option<pgrx::datum::Date>, "NULL"),
) -> TableIterator<'static, (name!(n, i32), name!(probability, f64))> {
    let model_name = required(model_name, "model_name");
    let user_id = required(user_id, "user_id");
    let horizon = required(horizon, "horizon");
    let horizon_unit = required(horizon_unit, "horizon_unit");
    let max_n = required(max_n, "max_n");
    let unit = self::time_unit(horizon_unit, "horizon_unit");
    if !(0..=10_000).contains(&max_n) {
        raise(
            ERRCODE_INVALID_PARAMETER_VALUE,
            format!("max_n must be between 0 and 10000, got {max_n}"),
            None,
        );
    }
    let ctx = Context::load(as_of);
    let model = purchase_model(&store::load(&ctx.ext, model_name));
    let horizon = horizon_in(&model, horizon, unit);
    let row = user_history(&ctx, user_id, model.unit).model_row();
    let what = format!("predicting user {user_id} with '{model_name}'");
    let rows: Vec<(i32, f64)> = (0..=max_n)
        .map(|n| {
            // Each probability is a series over the horizon: long ones add up over max_n.
            pgrx::check_for_interrupts!();
            let p = model
                .probability_of_purchases(&row, n as u32, horizon)
                .unwrap_or_else(|e| raise_model(e, &what));
            (n, p)
        })
        .collect();
    TableIterator::new(rows)
}

/// Expected repeat purchases of a newly acquired customer over `horizon` (in `horizon_unit`).
#[pg_extern(stable, parallel_safe)]
#[search_path(pg_catalog, pg_temp)]
fn clv_expected_purchases_new(model_name: &str, horizon: f64, horizon_unit: &str) -> f64 {
    let unit = self::time_unit(horizon_unit, "horizon_unit");
    let model = purchase_model(&store::load(&ext_schema(), model_name));
    let horizon = horizon_in(&model, horizon, unit);
    model
        .expected_purchases_new(horizon)
        .unwrap_or_else(|e| raise_model(e, &format!("predicting with '{model_name}'")))
}

/// Gamma-Gamma's expected spend per purchase for a customer with `frequency` repeat purchases of
/// mean value `monetary_value` (the population mean when frequency is 0).
#[pg_extern(stable, parallel_safe)]
#[search_path(pg_catalog, pg_temp)]
fn clv_expected_spend(
    model_name: Option<&str>,
    frequency: Option<i32>,
    monetary_value: default!(Option<f64>, "NULL"),
) -> f64 {
    let model_name = required(model_name, "model_name");
    let frequency = required(frequency, "frequency");
    let model = spend_model(&store::load(&ext_schema(), model_name));
    let m = monetary_value.unwrap_or(0.0);
    if frequency < 0 || (frequency > 0 && !(m.is_finite() && m >= 0.0)) {
        raise(
            ERRCODE_INVALID_PARAMETER_VALUE,
            format!(
                "need frequency >= 0 and a finite monetary_value >= 0, got {frequency} and {m}"
            ),
            None,
        );
    }
    model
        .expected_spend(f64::from(frequency), m)
        .unwrap_or_else(|e| raise_model(e, &format!("predicting spend with '{model_name}'")))
}

/// Scores every customer as of `as_of` (default today) with a purchase model and, optionally, a
/// spend model, and replaces the contents of `ml_user_clv` with the results in one transaction.
/// Returns what it did, with the time of each phase.
#[allow(clippy::type_complexity)]
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn calculate_all_clv(
    model_name: Option<&str>,
    spend_model: default!(Option<&str>, "NULL"),
    horizon_months: default!(Option<i32>, 12),
    monthly_discount: default!(Option<f64>, 0.01),
    as_of: default!(Option<pgrx::datum::Date>, "NULL"),
) -> TableIterator<
    'static,
    (
        name!(customers, i64),
        name!(expected_purchases, f64),
        name!(total_clv, Option<f64>),
        name!(read_ms, f64),
        name!(score_ms, f64),
        name!(write_ms, f64),
    ),
> {
    let model_name = required(model_name, "model_name");
    let horizon_months = required(horizon_months, "horizon_months");
    let monthly_discount = required(monthly_discount, "monthly_discount");
    if !(0..=1200).contains(&horizon_months) {
        raise(
            ERRCODE_INVALID_PARAMETER_VALUE,
            format!("horizon_months must be between 0 and 1200, got {horizon_months}"),
            None,
        );
    }
    if !(monthly_discount.is_finite() && monthly_discount > -1.0) {
        raise(
            ERRCODE_INVALID_PARAMETER_VALUE,
            format!("monthly_discount must be a finite number > -1, got {monthly_discount}"),
            None,
        );
    }
    let ctx = Context::load(as_of);
    let stored = store::load(&ctx.ext, model_name);
    let model = purchase_model(&stored);
    let spend = spend_model.map(|n| self::spend_model(&store::load(&ctx.ext, n)));
    crate::write::refresh::lock(&ctx.ext, "ml_user_clv");
    let mut phases = Phases::start();
    let window = Window::as_of(&ctx, model.unit);
    let customers = read::summaries(&ctx, window, None, true);
    phases.mark("read");
    let horizon = f64::from(horizon_months) * model.unit.per_month();
    let scored: Result<Vec<ClvRow>, ModelError> = on_worker_threads(|| {
        score_all(
            &model,
            spend.as_ref(),
            &customers,
            horizon,
            horizon_months,
            monthly_discount,
        )
    });
    let rows = scored.unwrap_or_else(|e| raise_model(e, &format!("scoring with '{model_name}'")));
    phases.mark("score");
    store::replace(
        &ctx.ext,
        &rows,
        &RunSettings {
            model: &stored,
            spend_model,
            horizon_months,
            monthly_discount,
            as_of: ctx.as_of,
        },
    );
    phases.mark("write");
    let total_clv = spend
        .as_ref()
        .map(|_| rows.iter().filter_map(|r| r.clv).sum::<f64>());
    TableIterator::once((
        rows.len() as i64,
        rows.iter().map(|r| r.expected_purchases).sum(),
        total_clv,
        phases.ms("read"),
        phases.ms("score"),
        phases.ms("write"),
    ))
}

/// What a purchase model says about one (frequency, recency, T): the same for every customer with
/// that history, so it is computed once per distinct history.
struct Outlook {
    probability_alive: f64,
    /// Expected purchases by the end of each month of the horizon.
    cumulative: Vec<f64>,
    probability_no_purchase: Option<f64>,
}

fn outlook(
    model: &TransactionModel,
    row: &Summary,
    ends: &[f64],
    horizon: f64,
) -> Result<Outlook, ModelError> {
    Ok(Outlook {
        probability_alive: model.probability_alive(row)?,
        cumulative: model.expected_purchases_many(row, ends)?,
        probability_no_purchase: model.probability_of_purchases(row, 0, horizon).ok(),
    })
}

/// Scores every customer: the model's outlook once per distinct history (one-time buyers of the
/// same age, for example, share theirs), then each customer's spend and CLV from it.
fn score_all(
    model: &TransactionModel,
    spend: Option<&SpendModel>,
    customers: &[(i64, CustomerSummary)],
    horizon: f64,
    months: i32,
    discount: f64,
) -> Result<Vec<ClvRow>, ModelError> {
    let mut index: FxHashMap<(u32, u64, u64), usize> = FxHashMap::default();
    let mut histories: Vec<Summary> = Vec::new();
    let slots: Vec<usize> = customers
        .iter()
        .map(|(_, s)| {
            let key = (s.frequency, s.recency.to_bits(), s.age.to_bits());
            *index.entry(key).or_insert_with(|| {
                histories.push(s.model_row());
                histories.len() - 1
            })
        })
        .collect();
    let ends = month_ends(model, months as u32);
    let outlooks: Vec<Outlook> = histories
        .par_iter()
        .with_min_len(256)
        .map(|row| outlook(model, row, &ends, horizon))
        .collect::<Result<_, _>>()?;
    customers
        .par_iter()
        .zip(slots)
        .with_min_len(4096)
        .map(|((user_id, s), slot)| {
            let o = &outlooks[slot];
            let expected_spend = spend
                .map(|m| m.expected_spend(f64::from(s.frequency), s.monetary_value.unwrap_or(0.0)))
                .transpose()?;
            Ok(ClvRow {
                user_id: *user_id,
                frequency: s.frequency as i32,
                recency: s.recency,
                age: s.age,
                monetary_value: s.monetary_value,
                probability_alive: o.probability_alive,
                expected_purchases: o.cumulative.last().copied().unwrap_or(0.0),
                probability_no_purchase: o.probability_no_purchase,
                expected_spend,
                clv: expected_spend.map(|m| discounted(&o.cumulative, m, discount)),
            })
        })
        .collect()
}

/// Holdout evaluation of a purchase model: customers of its calibration period binned by
/// calibration frequency (0 .. max_frequency − 1, then max_frequency and more), with actual and
/// predicted purchases in (calibration end, holdout_end]; a last row 'all' with the totals, the
/// mean absolute error and the root mean squared error per customer.
#[allow(clippy::type_complexity)]
#[pg_extern(stable, parallel_restricted)]
#[search_path(pg_catalog, pg_temp)]
fn clv_holdout_evaluation(
    model_name: &str,
    holdout_end: pgrx::datum::Date,
    max_frequency: default!(i32, 7),
) -> TableIterator<
    'static,
    (
        name!(frequency, String),
        name!(customers, i64),
        name!(actual_mean, Option<f64>),
        name!(predicted_mean, Option<f64>),
        name!(actual_total, f64),
        name!(predicted_total, f64),
        name!(mean_absolute_error, Option<f64>),
        name!(rmse, Option<f64>),
    ),
> {
    if !(1..=1000).contains(&max_frequency) {
        raise(
            ERRCODE_INVALID_PARAMETER_VALUE,
            format!("max_frequency must be between 1 and 1000, got {max_frequency}"),
            None,
        );
    }
    let ext = ext_schema();
    let stored = store::load(&ext, model_name);
    let model = purchase_model(&stored);
    let end = day_of_date(holdout_end, "holdout_end");
    if end <= stored.calibration_end {
        raise(
            ERRCODE_INVALID_PARAMETER_VALUE,
            format!(
                "holdout_end must be after the model's calibration end ({})",
                date_of(stored.calibration_end)
            ),
            None,
        );
    }
    if f64::from(end.0 - stored.calibration_end.0) > MAX_HORIZON_DAYS {
        raise(
            ERRCODE_INVALID_PARAMETER_VALUE,
            format!(
                "holdout_end must be at most 100 years after the model's calibration end ({})",
                date_of(stored.calibration_end)
            ),
            None,
        );
    }
    let ctx = Context::load(Some(date_of(stored.calibration_end)));
    let window = Window {
        calibration_end: stored.calibration_end,
        holdout_end: Some(end),
        unit: model.unit,
        explicit_end: true,
    };
    let customers: Vec<(Summary, u32)> = read::summaries(&ctx, window, None, true)
        .into_iter()
        .map(|(_, s)| (s.model_row(), s.holdout_frequency.unwrap_or(0)))
        .collect();
    let duration = f64::from(end.0 - stored.calibration_end.0) / model.unit.days();
    let (bins, errors) =
        on_worker_threads(|| holdout(&model, &customers, duration, max_frequency as u32))
            .unwrap_or_else(|e| raise_model(e, &format!("evaluating '{model_name}'")));
    let mean = |total: f64, n: u64| (n > 0).then(|| total / n as f64);
    let mut rows: Vec<_> = bins
        .iter()
        .map(|b| {
            (
                if b.open_ended {
                    format!("{}+", b.frequency)
                } else {
                    b.frequency.to_string()
                },
                b.customers as i64,
                mean(b.actual, b.customers),
                mean(b.predicted, b.customers),
                b.actual,
                b.predicted,
                None,
                None,
            )
        })
        .collect();
    rows.push((
        "all".to_string(),
        errors.customers as i64,
        mean(errors.actual, errors.customers),
        mean(errors.predicted, errors.customers),
        errors.actual,
        errors.predicted,
        (errors.customers > 0).then_some(errors.mean_absolute_error),
        (errors.customers > 0).then_some(errors.root_mean_squared_error),
    ));
    TableIterator::new(rows)
}
