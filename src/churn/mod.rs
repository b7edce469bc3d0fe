//! Churn and purchase prediction in SQL: labels and features at weekly snapshots, training and
//! evaluation with a time split (`churn_train`, stored in `ml_churn_models`), scoring every
//! customer (`calculate_all_churn` into `ml_churn_scores`, `calculate_all_purchase` into
//! `ml_purchase_scores`) and one customer (`churn_user`). The math is in
//! `cda_analytics_core::churn`.

mod read;
mod store;

use pgrx::prelude::*;
use rayon::prelude::*;

use cda_analytics_core::churn::dataset::{btyd_at, fit_btyd, plan};
use cda_analytics_core::churn::features::{CATEGORIES, FEATURES, eligible, features_at, label};
use cda_analytics_core::churn::model::Reason;
use cda_analytics_core::churn::pipeline::{Customers, TrainSpec, btyd_spec, train_on};
use cda_analytics_core::churn::{ChurnError, Settings, Target};
use cda_analytics_core::clv::{ModelKind, TimeUnit, TransactionModel};

use cda_analytics_core::calendar::Day;
use cda_analytics_core::phases::Phases;

use crate::source::Context;
use crate::toolbox::convert::date_of;
use crate::toolbox::errors::*;
use crate::toolbox::workers::on_worker_threads;
use read::Histories;
use store::{Run, Score, StoredModel};

/// `cda_analytics.training_memory`: the memory churn_train's rows and the classifiers' copies of
/// them may take, in kB (1 GB by default).
pub static TRAINING_MEMORY: pgrx::GucSetting<i32> = pgrx::GucSetting::<i32>::new(1 << 20);

fn raise_churn(e: ChurnError) -> ! {
    let hint = match &e {
        ChurnError::BadArgument(_) => None,
        ChurnError::NoEligible { .. } => Some(
            "Eligible means a first order at least min_tenure_days before the snapshot and an order in the active_days before it; check as_of, snapshot_weeks and the source tables (configure_source).".to_string(),
        ),
        ChurnError::SingleClass { .. } => Some(
            "A model needs both outcomes in every split: more snapshot weeks, another label_days, or more data.".to_string(),
        ),
        ChurnError::Fit(_) => None,
        ChurnError::TooMuchMemory { max_rows, .. } => Some(format!(
            "Lower max_training_rows (at most {max_rows} fit), or allow more: SET cda_analytics.training_memory = '4GB'. Nothing was trained, and the previous model stays."
        )),
    };
    let code = match e {
        ChurnError::BadArgument(_) => ERRCODE_INVALID_PARAMETER_VALUE,
        ChurnError::TooMuchMemory { .. } => ERRCODE_PROGRAM_LIMIT_EXCEEDED,
        _ => ERRCODE_DATA_EXCEPTION,
    };
    raise(code, e.to_string(), hint)
}

fn target_of(name: &str) -> Target {
    Target::parse(name).unwrap_or_else(|| {
        raise(
            ERRCODE_INVALID_PARAMETER_VALUE,
            format!("target must be 'churn' or 'purchase', got '{name}'"),
            None,
        )
    })
}

/// The purchase model refitted at every snapshot, or none.
fn btyd_of(name: &str) -> Option<ModelKind> {
    match name {
        "none" => None,
        _ => match ModelKind::parse(name) {
            Some(k) if k.is_transaction_model() => Some(k),
            _ => raise(
                ERRCODE_INVALID_PARAMETER_VALUE,
                format!(
                    "btyd_model must be 'bgnbd', 'mbgnbd', 'pareto_nbd' or 'none', got '{name}'"
                ),
                None,
            ),
        },
    }
}

fn settings_of(
    target: Target,
    label_days: Option<i32>,
    min_tenure_days: i32,
    active_days: i32,
) -> Settings {
    let s = Settings {
        target,
        label_days: label_days.unwrap_or(target.default_label_days()),
        min_tenure_days,
        active_days,
    };
    s.check().unwrap_or_else(|e| raise_churn(e));
    s
}

fn churn_band(p: f64) -> &'static str {
    match p {
        p if p >= 0.8 => "critical",
        p if p >= 0.6 => "high",
        p if p >= 0.4 => "medium",
        _ => "low",
    }
}

fn purchase_band(p: f64) -> &'static str {
    match p {
        p if p >= 0.6 => "high",
        p if p >= 0.3 => "medium",
        _ => "low",
    }
}

/// "recency_days = 143 (+1.21)": the feature, its value, and how much it raises the prediction
/// (log-odds for a logistic model, probability for a tree).
fn reason_text(r: &Reason) -> String {
    let value = if r.value.fract() == 0.0 && r.value.abs() < 1e15 {
        format!("{}", r.value as i64)
    } else {
        format!("{:.2}", r.value)
    };
    format!("{} = {value} (+{:.3})", r.feature, r.contribution)
}

/// Trains a churn (or purchase) model on weekly snapshots up to `as_of` and stores it as
/// `model_name`: the last `validation_weeks` snapshots validate, earlier ones whose label ends by
/// the first validation day train. Returns each scorer's validation metrics; the one kept has
/// `chosen`.
#[allow(clippy::type_complexity)]
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
#[allow(clippy::too_many_arguments)]
fn churn_train(
    model_name: default!(Option<&str>, "'churn'"),
    target: default!(Option<&str>, "'churn'"),
    as_of: default!(Option<pgrx::datum::Date>, "NULL"),
    snapshot_weeks: default!(Option<i32>, 26),
    validation_weeks: default!(Option<i32>, 4),
    label_days: default!(Option<i32>, "NULL"),
    min_tenure_days: default!(Option<i32>, 30),
    active_days: default!(Option<i32>, 180),
    btyd_model: default!(Option<&str>, "'bgnbd'"),
    max_training_rows: default!(Option<i64>, 500000),
    seed: default!(Option<i64>, 42),
) -> TableIterator<
    'static,
    (
        name!(scorer, String),
        name!(chosen, bool),
        name!(rows, i64),
        name!(positives, i64),
        name!(roc_auc, Option<f64>),
        name!(pr_auc, Option<f64>),
        name!(threshold, f64),
        name!(precision, Option<f64>),
        name!(recall, Option<f64>),
        name!(f1, Option<f64>),
        name!(top_decile_lift, Option<f64>),
        name!(true_positives, i64),
        name!(false_positives, i64),
        name!(true_negatives, i64),
        name!(false_negatives, i64),
    ),
> {
    let model_name = required(model_name, "model_name");
    let target = required(target, "target");
    let snapshot_weeks = required(snapshot_weeks, "snapshot_weeks");
    let validation_weeks = required(validation_weeks, "validation_weeks");
    let min_tenure_days = required(min_tenure_days, "min_tenure_days");
    let active_days = required(active_days, "active_days");
    let btyd_model = required(btyd_model, "btyd_model");
    let max_training_rows = required(max_training_rows, "max_training_rows");
    let seed = required(seed, "seed");
    require_model_name(model_name);
    if !(100..=50_000_000).contains(&max_training_rows) {
        raise(
            ERRCODE_INVALID_PARAMETER_VALUE,
            format!("max_training_rows must be between 100 and 50000000, got {max_training_rows}"),
            None,
        );
    }
    let target = target_of(target);
    let settings = settings_of(target, label_days, min_tenure_days, active_days);
    let btyd = btyd_of(btyd_model);
    let ctx = Context::load(as_of);
    let snapshots = plan(
        ctx.as_of.0,
        snapshot_weeks,
        validation_weeks,
        settings.label_days,
    )
    .unwrap_or_else(|e| raise_churn(e));
    crate::write::refresh::lock(&ctx.ext, "ml_churn_models");
    let mut phases = Phases::start();
    let h = read::histories(&ctx, ctx.as_of, None, true);
    phases.mark("read");
    let customers = Customers {
        ids: &h.ids,
        histories: &h.histories,
        categories: h.categories,
    };
    let spec = TrainSpec {
        snapshots,
        settings,
        btyd,
        max_rows: max_training_rows as usize,
        seed: seed as u64,
        memory_limit: Some(TRAINING_MEMORY.get().max(0) as usize * 1024),
    };
    let trained =
        on_worker_threads(|| train_on(&customers, &spec)).unwrap_or_else(|e| raise_churn(e));
    if let Some((kind, day, e)) = &trained.btyd_failure {
        notice(
            format!(
                "churn_train: {} could not be fitted on the data up to {}: {e}; p_alive and expected_purchases are left out, and there is no P(alive) baseline",
                kind.name(),
                date_of(Day(*day))
            ),
            None,
        );
    }
    let report = &trained.report;
    let snapshots = &spec.snapshots;
    notice(
        format!(
            "churn_train: {} training rows at {} snapshots ({} eligible, sample rate {:.4}), {} validation rows at {} snapshots; {} kept",
            trained.rows.0,
            snapshots.training.len(),
            trained.eligible.0,
            trained.sample_rate,
            trained.rows.1,
            snapshots.validation.len(),
            report.model.classifier.kind()
        ),
        None,
    );
    let t = &trained.phases;
    store::store(
        &ctx.ext,
        model_name,
        report,
        &Run {
            settings,
            btyd: trained.btyd,
            as_of: ctx.as_of,
            training: snapshots.training.clone(),
            validation: snapshots.validation.clone(),
            eligible_training: trained.eligible.0 as i64,
            eligible_validation: trained.eligible.1 as i64,
            sample_rate: trained.sample_rate,
            seed,
            phase_ms: [
                phases.ms("read"),
                t.ms("purchase model"),
                t.ms("rows"),
                t.ms("classifiers"),
            ],
        },
    );
    let chosen = report.model.classifier.kind();
    let rows: Vec<_> = report
        .candidates
        .iter()
        .map(|c| {
            let m = &c.validation;
            (
                c.scorer.to_string(),
                c.scorer == chosen,
                m.rows as i64,
                m.positives as i64,
                m.roc_auc,
                m.pr_auc,
                m.threshold,
                m.precision,
                m.recall,
                m.f1,
                m.top_decile_lift,
                m.true_positives as i64,
                m.false_positives as i64,
                m.true_negatives as i64,
                m.false_negatives as i64,
            )
        })
        .collect();
    TableIterator::new(rows)
}

/// The stored model's purchase model fitted on every customer up to the as-of day, when it uses
/// one; an error when the data cannot identify it.
fn fit_for_scoring(ctx: &Context, stored: &StoredModel, h: &Histories) -> Option<TransactionModel> {
    let day = ctx.as_of.0;
    stored.btyd.map(|kind| {
        on_worker_threads(|| fit_btyd(&h.histories, day, btyd_spec(kind))).unwrap_or_else(|e| {
            raise(
                ERRCODE_DATA_EXCEPTION,
                format!(
                    "churn model '{}' uses {} features, which cannot be fitted on the data up to {}: {e}",
                    stored.name,
                    kind.name(),
                    date_of(Day(day))
                ),
                Some("Train the model again with btyd_model => 'none'.".into()),
            )
        })
    })
}

/// The customers' scores at the as-of day with a stored model and, when it uses one, its
/// purchase model fitted to that day.
fn score_all(
    ctx: &Context,
    stored: &StoredModel,
    btyd: Option<&TransactionModel>,
    h: &Histories,
) -> Vec<Score> {
    let day = ctx.as_of.0;
    if stored.model.transform.columns.contains(&CATEGORIES) && !h.categories {
        notice(
            format!(
                "churn model '{}' was trained with categories_180d, but order_items and products are gone: it is 0 for everyone",
                stored.name
            ),
            None,
        );
    }
    let band = match stored.model.target {
        Target::Churn => churn_band,
        Target::Purchase => purchase_band,
    };
    on_worker_threads(|| {
        h.ids
            .par_iter()
            .zip(h.histories.par_iter())
            .filter_map(|(&id, history)| {
                let b = btyd.and_then(|m| btyd_at(m, history, day, stored.settings.label_days));
                let x = features_at(&history.upto(day), b)?;
                let p = stored.model.probability(&x).clamp(0.0, 1.0);
                Some(Score {
                    user_id: id,
                    probability: p,
                    band: band(p),
                    eligible: eligible(history, day, &stored.settings),
                    reasons: stored
                        .model
                        .reasons(&x, 3)
                        .iter()
                        .map(reason_text)
                        .collect(),
                })
            })
            .collect()
    })
}

/// Scores every customer with `model_name`, which must predict `want`, into its scores table.
/// Returns (customers, eligible, mean probability, at or above the threshold, model version),
/// the row of `calculate_all_churn` and `calculate_all_purchase`.
fn refresh(
    model_name: &str,
    as_of: Option<pgrx::datum::Date>,
    want: Target,
) -> (i64, i64, Option<f64>, i64, i32) {
    let ctx = Context::load(as_of);
    let stored = store::load(&ctx.ext, model_name);
    if stored.model.target != want {
        raise(
            ERRCODE_WRONG_OBJECT_TYPE,
            format!(
                "model '{model_name}' predicts {}, not {}",
                stored.model.target.name(),
                want.name()
            ),
            Some(format!(
                "Use calculate_all_{}('{model_name}').",
                stored.model.target.name()
            )),
        );
    }
    let table = match want {
        Target::Churn => "ml_churn_scores",
        Target::Purchase => "ml_purchase_scores",
    };
    crate::write::refresh::lock(&ctx.ext, table);
    let h = read::histories(&ctx, ctx.as_of, None, true);
    let btyd = fit_for_scoring(&ctx, &stored, &h);
    let scores = score_all(&ctx, &stored, btyd.as_ref(), &h);
    store::replace(&ctx.ext, &stored, ctx.as_of, &scores);
    if let Some(m) = &btyd {
        store::remember_btyd(&ctx.ext, model_name, ctx.as_of, &m.params);
    }
    let n = scores.len();
    (
        n as i64,
        scores.iter().filter(|s| s.eligible).count() as i64,
        (n > 0).then(|| scores.iter().map(|s| s.probability).sum::<f64>() / n as f64),
        scores
            .iter()
            .filter(|s| s.probability >= stored.model.threshold)
            .count() as i64,
        stored.version,
    )
}

/// Scores every customer (a successful order by the as-of day) with a churn model and replaces
/// `ml_churn_scores` in one transaction.
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn calculate_all_churn(
    model_name: default!(Option<&str>, "'churn'"),
    as_of: default!(Option<pgrx::datum::Date>, "NULL"),
) -> TableIterator<
    'static,
    (
        name!(customers, i64),
        name!(eligible, i64),
        name!(mean_probability, Option<f64>),
        name!(above_threshold, i64),
        name!(model_version, i32),
    ),
> {
    let model_name = required(model_name, "model_name");
    TableIterator::once(refresh(model_name, as_of, Target::Churn))
}

/// Scores every customer with a purchase model and replaces `ml_purchase_scores`.
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn calculate_all_purchase(
    model_name: default!(Option<&str>, "'purchase'"),
    as_of: default!(Option<pgrx::datum::Date>, "NULL"),
) -> TableIterator<
    'static,
    (
        name!(customers, i64),
        name!(eligible, i64),
        name!(mean_probability, Option<f64>),
        name!(above_threshold, i64),
        name!(model_version, i32),
    ),
> {
    let model_name = required(model_name, "model_name");
    TableIterator::once(refresh(model_name, as_of, Target::Purchase))
}

/// One customer's prediction, computed now with a stored model (churn or purchase).
#[pg_extern(stable, parallel_restricted)]
#[search_path(pg_catalog, pg_temp)]
fn churn_user(
    user_id: Option<i64>,
    model_name: default!(Option<&str>, "'churn'"),
    as_of: default!(Option<pgrx::datum::Date>, "NULL"),
) -> TableIterator<
    'static,
    (
        name!(target, String),
        name!(probability, f64),
        name!(band, String),
        name!(eligible, bool),
        name!(top_reasons, Vec<String>),
        name!(model_version, i32),
    ),
> {
    let user_id = required(user_id, "user_id");
    let model_name = required(model_name, "model_name");
    let ctx = Context::load(as_of);
    let stored = store::load(&ctx.ext, model_name);
    // The purchase model the latest scoring refresh fitted to this day, if there is one;
    // otherwise it is fitted here on every customer's history, which means reading them all.
    let remembered = match (stored.btyd, &stored.btyd_fit) {
        (Some(kind), Some((day, params))) if *day == ctx.as_of.0 => {
            TransactionModel::new(kind, params, TimeUnit::Week).ok()
        }
        _ => None,
    };
    let read_all = stored.btyd.is_some() && remembered.is_none();
    let h = read::histories(&ctx, ctx.as_of, (!read_all).then_some(user_id), false);
    let Ok(i) = h.ids.binary_search(&user_id) else {
        raise(
            ERRCODE_NO_DATA_FOUND,
            format!("user {user_id} has no successful order on or before the as-of date"),
            Some("Churn and purchase models score customers, who have ordered.".into()),
        );
    };
    let fitted = if read_all {
        fit_for_scoring(&ctx, &stored, &h)
    } else {
        remembered
    };
    let one = Histories {
        ids: vec![user_id],
        histories: vec![h.histories[i].clone()],
        categories: h.categories,
    };
    let scores = score_all(&ctx, &stored, fitted.as_ref(), &one);
    let rows: Vec<_> = scores
        .into_iter()
        .map(|s| {
            (
                stored.model.target.name().to_string(),
                s.probability,
                s.band.to_string(),
                s.eligible,
                s.reasons,
                stored.version,
            )
        })
        .collect();
    TableIterator::new(rows)
}

/// The labelled rows of a training run: every eligible customer at every snapshot, with its
/// split ('training' or 'validation') and label.
#[pg_extern(stable, parallel_restricted)]
#[search_path(pg_catalog, pg_temp)]
#[allow(clippy::too_many_arguments)]
fn churn_labels(
    target: default!(Option<&str>, "'churn'"),
    as_of: default!(Option<pgrx::datum::Date>, "NULL"),
    snapshot_weeks: default!(Option<i32>, 26),
    validation_weeks: default!(Option<i32>, 4),
    label_days: default!(Option<i32>, "NULL"),
    min_tenure_days: default!(Option<i32>, 30),
    active_days: default!(Option<i32>, 180),
) -> TableIterator<
    'static,
    (
        name!(snapshot_date, pgrx::datum::Date),
        name!(split, String),
        name!(user_id, i64),
        name!(label, bool),
    ),
> {
    let target = required(target, "target");
    let snapshot_weeks = required(snapshot_weeks, "snapshot_weeks");
    let validation_weeks = required(validation_weeks, "validation_weeks");
    let min_tenure_days = required(min_tenure_days, "min_tenure_days");
    let active_days = required(active_days, "active_days");
    let target = target_of(target);
    let settings = settings_of(target, label_days, min_tenure_days, active_days);
    let ctx = Context::load(as_of);
    let snapshots = plan(
        ctx.as_of.0,
        snapshot_weeks,
        validation_weeks,
        settings.label_days,
    )
    .unwrap_or_else(|e| raise_churn(e));
    let h = read::histories(&ctx, ctx.as_of, None, true);
    let mut rows = Vec::new();
    for (split, days) in [
        ("training", &snapshots.training),
        ("validation", &snapshots.validation),
    ] {
        for &d in days.iter() {
            for (&id, history) in h.ids.iter().zip(&h.histories) {
                if eligible(history, d, &settings) {
                    rows.push((
                        date_of(Day(d)),
                        split.to_string(),
                        id,
                        label(history, d, &settings),
                    ));
                }
            }
        }
    }
    TableIterator::new(rows)
}

/// The features of every customer (or one) at `as_of`, from the orders up to it only, as the
/// models see them before log1p and scaling. `eligible` uses the default rules (first order 30
/// days before, an order in the last 180 days). p_alive and expected_purchases (over 60 days)
/// come from `btyd_model` fitted on the data up to `as_of`; NULL with 'none' or when it cannot
/// be fitted.
#[allow(clippy::type_complexity)]
#[pg_extern(stable, parallel_restricted)]
#[search_path(pg_catalog, pg_temp)]
fn churn_features(
    as_of: default!(Option<pgrx::datum::Date>, "NULL"),
    user_id: default!(Option<i64>, "NULL"),
    btyd_model: default!(Option<&str>, "'bgnbd'"),
) -> TableIterator<
    'static,
    (
        name!(user_id, i64),
        name!(eligible, bool),
        name!(recency_days, f64),
        name!(frequency_90d, f64),
        name!(frequency_180d, f64),
        name!(monetary_90d, f64),
        name!(monetary_180d, f64),
        name!(aov_180d, f64),
        name!(orders_lifetime, f64),
        name!(revenue_lifetime, f64),
        name!(tenure_days, f64),
        name!(ipt_mean_days, f64),
        name!(ipt_std_days, f64),
        name!(recency_to_ipt, f64),
        name!(spend_trend, f64),
        name!(single_purchase_day, f64),
        name!(categories_180d, Option<f64>),
        name!(p_alive, Option<f64>),
        name!(expected_purchases, Option<f64>),
    ),
> {
    let btyd_model = required(btyd_model, "btyd_model");
    let btyd = btyd_of(btyd_model);
    let ctx = Context::load(as_of);
    let day = ctx.as_of.0;
    // One customer's features need only their orders, unless the purchase model is fitted on
    // everyone's.
    let h = read::histories(&ctx, ctx.as_of, user_id.filter(|_| btyd.is_none()), true);
    let settings = Settings::new(Target::Churn);
    let model = btyd.and_then(|kind| {
        on_worker_threads(|| fit_btyd(&h.histories, day, btyd_spec(kind)))
            .map_err(|e| {
                notice(
                    format!(
                        "churn_features: {} could not be fitted on the data up to {}: {e}",
                        kind.name(),
                        date_of(Day(day))
                    ),
                    None,
                )
            })
            .ok()
    });
    let mut rows = Vec::new();
    for (&id, history) in h.ids.iter().zip(&h.histories) {
        if user_id.is_some_and(|u| u != id) {
            continue;
        }
        let b = model
            .as_ref()
            .and_then(|m| btyd_at(m, history, day, settings.label_days));
        let Some(x) = features_at(&history.upto(day), b) else {
            continue;
        };
        debug_assert_eq!(FEATURES.len(), 17);
        rows.push((
            id,
            eligible(history, day, &settings),
            x[0],
            x[1],
            x[2],
            x[3],
            x[4],
            x[5],
            x[6],
            x[7],
            x[8],
            x[9],
            x[10],
            x[11],
            x[12],
            x[13],
            h.categories.then_some(x[CATEGORIES]),
            b.map(|b| b.p_alive),
            b.map(|b| b.expected_purchases),
        ));
    }
    TableIterator::new(rows)
}
