//! Training from customers' histories to a model, in one call: count the eligible rows at the
//! training and validation snapshots, refit the purchase model at every snapshot (or go on
//! without it when it cannot be fitted), build both splits' rows sampled down to a cap, choose
//! the feature columns the data supports, and train and compare the classifiers.
//! `churn_train` in the extension reads the histories, calls [`train_on`] on its worker threads,
//! and stores what comes back.

use super::dataset::{BtydSpec, Rows, Snapshots, build, count_eligible, fit_btyd};
use super::features::{CATEGORIES, EXPECTED_PURCHASES, N_FEATURES, P_ALIVE};
use super::history::History;
use super::model::{TrainOptions, TrainReport, train};
use super::{ChurnError, Settings};
use crate::clv::{ModelError, ModelKind, TimeUnit, TransactionModel};
use crate::phases::Phases;

/// The customers' histories, in user id order.
pub struct Customers<'a> {
    pub ids: &'a [i64],
    pub histories: &'a [History],
    /// Whether the histories carry categories (else `categories_180d` is no feature).
    pub categories: bool,
}

/// What to train.
pub struct TrainSpec {
    pub snapshots: Snapshots,
    pub settings: Settings,
    /// The purchase model refitted at each snapshot for `p_alive` and `expected_purchases`.
    pub btyd: Option<ModelKind>,
    /// The most rows each split keeps; more eligible rows are sampled down to it.
    pub max_rows: usize,
    pub seed: u64,
    /// The memory the kept rows and the classifiers' copies of them may take, in bytes (at
    /// [`BYTES_PER_ROW`] a row); `None` for no limit.
    pub memory_limit: Option<usize>,
}

/// What one kept row costs while training, in bytes: its features, label, user and day (153),
/// the growth slack of the vectors that collect them, and the classifiers' own copies (the
/// standardised design matrix, the tree's dataset, the scores). Measured: churn_train's peak
/// memory over its backend's baseline, divided by the rows it kept, was 459 bytes (read of the
/// histories included) at 200k users with 2.0M training and 0.52M validation rows
/// (BENCHMARKS.md); the estimate keeps a third in hand.
pub const BYTES_PER_ROW: usize = 600;

/// A trained model and how it was made.
pub struct Trained {
    pub report: TrainReport,
    /// The purchase model whose values are features, when one was asked for and fitted.
    pub btyd: Option<ModelKind>,
    /// The purchase model asked for that could not be fitted, the first snapshot day where it
    /// failed, and why; training went on without its features.
    pub btyd_failure: Option<(ModelKind, i32, ModelError)>,
    /// Eligible rows at the training and validation snapshots, before sampling.
    pub eligible: (usize, usize),
    /// The share of the eligible training rows kept.
    pub sample_rate: f64,
    /// The rows each split kept.
    pub rows: (usize, usize),
    /// `purchase model`, `rows` and `classifiers`.
    pub phases: Phases,
}

/// How the purchase models of training and scoring are fitted: in weeks, unpenalised.
pub fn btyd_spec(kind: ModelKind) -> BtydSpec {
    BtydSpec {
        kind,
        unit: TimeUnit::Week,
        penalizer: 0.0,
    }
}

/// The purchase model fitted at each of `days`, or the first day where it cannot be fitted.
fn fit_each(
    histories: &[History],
    days: &[i32],
    kind: ModelKind,
) -> Result<Vec<TransactionModel>, (i32, ModelError)> {
    days.iter()
        .map(|&d| fit_btyd(histories, d, btyd_spec(kind)).map_err(|e| (d, e)))
        .collect()
}

/// Trains on `customers` as `spec` says; the errors say which split has no eligible rows or a
/// single class, or what failed to fit.
pub fn train_on(customers: &Customers<'_>, spec: &TrainSpec) -> Result<Trained, ChurnError> {
    let mut phases = Phases::start();
    let (h, s, settings) = (customers.histories, &spec.snapshots, &spec.settings);
    let eligible_t = count_eligible(h, &s.training, settings);
    let eligible_v = count_eligible(h, &s.validation, settings);
    super::stop_if_requested()?;
    if eligible_t == 0 {
        return Err(ChurnError::NoEligible { split: "training" });
    }
    if eligible_v == 0 {
        return Err(ChurnError::NoEligible {
            split: "validation",
        });
    }
    super::stop_if_requested()?;
    let kept = eligible_t.min(spec.max_rows) + eligible_v.min(spec.max_rows);
    if let Some(limit) = spec.memory_limit {
        let needed = kept.saturating_mul(BYTES_PER_ROW);
        if needed > limit {
            return Err(ChurnError::TooMuchMemory {
                rows: kept,
                needed,
                limit,
                max_rows: limit / BYTES_PER_ROW / 2,
            });
        }
    }
    let cap = spec.max_rows as f64;
    let rate_t = (cap / eligible_t as f64).min(1.0);
    let rate_v = (cap / eligible_v as f64).min(1.0);

    let mut btyd_failure = None;
    let fitted = spec.btyd.and_then(|kind| {
        let both =
            fit_each(h, &s.training, kind).and_then(|t| Ok((t, fit_each(h, &s.validation, kind)?)));
        match both {
            Ok(models) => Some((kind, models)),
            Err((day, e)) => {
                btyd_failure = Some((kind, day, e));
                None
            }
        }
    });
    phases.mark("purchase model");
    super::stop_if_requested()?;

    let (models_t, models_v) = match &fitted {
        Some((_, (t, v))) => (Some(t.as_slice()), Some(v.as_slice())),
        None => (None, None),
    };
    let ids = customers.ids;
    let training: Rows = build(ids, h, &s.training, models_t, settings, rate_t, spec.seed);
    let validation: Rows = build(ids, h, &s.validation, models_v, settings, rate_v, spec.seed);
    let columns: Vec<usize> = (0..N_FEATURES)
        .filter(|&c| c != CATEGORIES || customers.categories)
        .filter(|&c| (c != P_ALIVE && c != EXPECTED_PURCHASES) || fitted.is_some())
        .collect();
    phases.mark("rows");
    super::stop_if_requested()?;

    let report = train(
        settings.target,
        &training,
        &validation,
        &columns,
        &TrainOptions::default(),
    )?;
    phases.mark("classifiers");
    Ok(Trained {
        report,
        btyd: fitted.map(|(k, _)| k),
        btyd_failure,
        eligible: (eligible_t, eligible_v),
        sample_rate: rate_t,
        rows: (training.len(), validation.len()),
        phases,
    })
}
