//! The churn tables: trained models by name (`ml_churn_models`) with their metrics
//! (`ml_churn_model_metrics`), and the per-customer scores (`ml_churn_scores`,
//! `ml_purchase_scores`), written in the caller's transaction so a refresh commits whole or not
//! at all.

use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;

use cda_analytics_core::calendar::Day;
use cda_analytics_core::churn::features::LOG1P;
use cda_analytics_core::churn::metrics::Metrics;
use cda_analytics_core::churn::model::{Classifier, Model, TrainReport};
use cda_analytics_core::churn::stored::StoredParts;
use cda_analytics_core::churn::{Settings, Target};
use cda_analytics_core::clv::ModelKind;

use crate::toolbox::errors::*;
use crate::toolbox::statement::{InsertRow, execute};

/// What a training run was, beside the model itself.
pub struct Run {
    pub settings: Settings,
    pub btyd: Option<ModelKind>,
    pub as_of: Day,
    pub training: Vec<i32>,
    pub validation: Vec<i32>,
    pub eligible_training: i64,
    pub eligible_validation: i64,
    pub sample_rate: f64,
    pub seed: i64,
    /// Reading, purchase-model fits, features, classifiers.
    pub phase_ms: [f64; 4],
}

/// A stored model as scoring needs it.
pub struct StoredModel {
    pub name: String,
    pub version: i32,
    pub model: Model,
    pub settings: Settings,
    pub btyd: Option<ModelKind>,
    /// The purchase model as the latest scoring refresh fitted it: (as-of day, parameters).
    pub btyd_fit: Option<(i32, Vec<f64>)>,
}

/// Stores the model as `name` (replacing it, next version) with every scorer's metrics, and
/// returns the version.
pub fn store(ext: &str, name: &str, report: &TrainReport, run: &Run) -> i32 {
    let m = &report.model;
    let p = StoredParts::of(m, &run.settings);
    let tree = matches!(m.classifier, Classifier::Tree { .. });
    let days =
        "ARRAY(SELECT DATE '2000-01-01' + d FROM pg_catalog.unnest({}::pg_catalog.int4[]) d)";
    let mut row = InsertRow::default();
    row.arg("model_name", name.to_string())
        .expr("version", "1")
        .arg("target", p.target)
        .arg("classifier", p.classifier)
        .arg("features", p.features)
        .arg(
            "log1p",
            m.transform
                .columns
                .iter()
                .map(|&c| LOG1P[c])
                .collect::<Vec<bool>>(),
        )
        .arg("feature_mean", p.mean)
        .arg("feature_scale", p.scale)
        .arg("intercept", p.intercept)
        .arg("weights", (!tree).then_some(p.weights))
        .arg("tree_feature", tree.then_some(p.tree_feature))
        .arg("tree_threshold", tree.then_some(p.tree_threshold))
        .arg("tree_left", tree.then_some(p.tree_left))
        .arg("tree_right", tree.then_some(p.tree_right))
        .arg("tree_value", tree.then_some(p.tree_value))
        .arg("threshold", p.threshold)
        .arg("label_days", p.label_days)
        .arg("min_tenure_days", p.min_tenure_days)
        .arg("active_days", p.active_days)
        .arg("btyd_model", run.btyd.map(|k| k.name().to_string()))
        .arg_as("as_of_date", run.as_of.0, "DATE '2000-01-01' + {}")
        .arg_as("training_snapshots", run.training.clone(), days)
        .arg_as("validation_snapshots", run.validation.clone(), days)
        .arg("eligible_training_rows", run.eligible_training)
        .arg("eligible_validation_rows", run.eligible_validation)
        .arg("sample_rate", run.sample_rate)
        .arg("seed", run.seed)
        .arg("train_ms", run.phase_ms.iter().sum::<f64>())
        .arg("phase_ms", run.phase_ms.to_vec());
    let (sql, args) = row.upsert(
        &format!("{ext}.ml_churn_models AS m"),
        "model_name",
        &[
            ("version", "m.version + 1"),
            ("btyd_fit_as_of", "NULL"),
            ("btyd_fit_parameters", "NULL"),
            ("trained_at", "pg_catalog.clock_timestamp()"),
        ],
        " RETURNING version",
    );
    let version = Spi::connect_mut(|c| {
        c.update(&sql, None, &args)?
            .first()
            .get::<i32>(1)
            .map(|v| v.unwrap_or(1))
    })
    .or_raise("storing the churn model");
    execute(
        &format!("DELETE FROM {ext}.ml_churn_model_metrics WHERE model_name = $1"),
        &[name.to_string().into()],
        "replacing the churn model's metrics",
    );
    let chosen = m.classifier.kind();
    for c in &report.candidates {
        for (split, metrics) in [("training", &c.training), ("validation", &c.validation)] {
            store_metrics(ext, name, c.scorer, split, c.scorer == chosen, metrics);
        }
    }
    version
}

fn store_metrics(ext: &str, name: &str, scorer: &str, split: &str, chosen: bool, m: &Metrics) {
    let mut row = InsertRow::default();
    row.arg("model_name", name.to_string())
        .arg("scorer", scorer.to_string())
        .arg("split", split.to_string())
        .arg("chosen", chosen)
        .arg("rows", m.rows as i64)
        .arg("positives", m.positives as i64)
        .arg("roc_auc", m.roc_auc)
        .arg("pr_auc", m.pr_auc)
        .arg("threshold", m.threshold)
        .arg("precision", m.precision)
        .arg("recall", m.recall)
        .arg("f1", m.f1)
        .arg("true_positives", m.true_positives as i64)
        .arg("false_positives", m.false_positives as i64)
        .arg("true_negatives", m.true_negatives as i64)
        .arg("false_negatives", m.false_negatives as i64)
        .arg("top_decile_lift", m.top_decile_lift);
    let (sql, args) = row.statement(&format!("{ext}.ml_churn_model_metrics"), "");
    execute(&sql, &args, "storing the churn model's metrics");
}

fn corrupt(name: &str, what: &str) -> ! {
    raise(
        ERRCODE_DATA_CORRUPTED,
        format!("churn model '{name}' in ml_churn_models is not a complete model: {what}"),
        Some("Train it again with churn_train.".into()),
    )
}

/// The model stored as `name`; an error naming it when there is none or the row is incomplete.
pub fn load(ext: &str, name: &str) -> StoredModel {
    let sql = format!(
        "SELECT version, target, classifier, features, feature_mean, feature_scale, intercept, weights, \
             tree_feature, tree_threshold, tree_left, tree_right, tree_value, threshold, label_days, \
             min_tenure_days, active_days, btyd_model, \
             btyd_fit_as_of - DATE '2000-01-01' AS btyd_fit_day, btyd_fit_parameters \
         FROM {ext}.ml_churn_models WHERE model_name = $1"
    );
    type Found = (i32, StoredParts, Option<String>, Option<(i32, Vec<f64>)>);
    let found: Option<Found> = Spi::connect(|c| {
        let t = c.select(&sql, None, &[name.to_string().into()])?;
        if t.is_empty() {
            return Ok(None);
        }
        let r = t.first();
        let parts = StoredParts {
            target: r.get_by_name("target")?.unwrap_or_default(),
            classifier: r.get_by_name("classifier")?.unwrap_or_default(),
            features: r.get_by_name("features")?.unwrap_or_default(),
            mean: r.get_by_name("feature_mean")?.unwrap_or_default(),
            scale: r.get_by_name("feature_scale")?.unwrap_or_default(),
            intercept: r.get_by_name("intercept")?,
            weights: r.get_by_name("weights")?.unwrap_or_default(),
            tree_feature: r.get_by_name("tree_feature")?.unwrap_or_default(),
            tree_threshold: r.get_by_name("tree_threshold")?.unwrap_or_default(),
            tree_left: r.get_by_name("tree_left")?.unwrap_or_default(),
            tree_right: r.get_by_name("tree_right")?.unwrap_or_default(),
            tree_value: r.get_by_name("tree_value")?.unwrap_or_default(),
            threshold: r.get_by_name("threshold")?.unwrap_or(0.5),
            label_days: r.get_by_name("label_days")?.unwrap_or(0),
            min_tenure_days: r.get_by_name("min_tenure_days")?.unwrap_or(0),
            active_days: r.get_by_name("active_days")?.unwrap_or(0),
        };
        let btyd_fit = r
            .get_by_name::<i32, _>("btyd_fit_day")?
            .zip(r.get_by_name::<Vec<f64>, _>("btyd_fit_parameters")?);
        Ok::<_, pgrx::spi::SpiError>(Some((
            r.get_by_name("version")?.unwrap_or(1),
            parts,
            r.get_by_name("btyd_model")?,
            btyd_fit,
        )))
    })
    .or_raise("reading ml_churn_models");
    let Some((version, parts, btyd, btyd_fit)) = found else {
        raise(
            ERRCODE_UNDEFINED_OBJECT,
            format!("no churn model named '{name}'"),
            Some("Train one first, e.g. SELECT * FROM churn_train('churn');".into()),
        );
    };
    let (model, settings) = parts
        .into_model()
        .unwrap_or_else(|what| corrupt(name, what));
    StoredModel {
        name: name.to_string(),
        version,
        model,
        settings,
        btyd: btyd.as_deref().and_then(ModelKind::parse),
        btyd_fit,
    }
}

/// Remembers the purchase model a scoring refresh fitted, for per-customer calls on that date.
pub fn remember_btyd(ext: &str, name: &str, as_of: Day, params: &[f64]) {
    execute(
        &format!(
            "UPDATE {ext}.ml_churn_models SET btyd_fit_as_of = DATE '2000-01-01' + $2, btyd_fit_parameters = $3 \
             WHERE model_name = $1"
        ),
        &[
            name.to_string().into(),
            as_of.0.into(),
            params.to_vec().into(),
        ],
        "remembering the purchase model's fit",
    );
}

/// One customer's score.
pub struct Score {
    pub user_id: i64,
    pub probability: f64,
    pub band: &'static str,
    pub eligible: bool,
    pub reasons: Vec<String>,
}

/// Replaces the contents of the target's scores table with `rows`.
pub fn replace(ext: &str, model: &StoredModel, as_of: Day, rows: &[Score]) {
    let table = match model.model.target {
        Target::Churn => "ml_churn_scores",
        Target::Purchase => "ml_purchase_scores",
    };
    let band = match model.model.target {
        Target::Churn => "risk_band",
        Target::Purchase => "band",
    };
    execute(
        &format!("DELETE FROM {ext}.{table}"),
        &[],
        &format!("clearing {table}"),
    );
    let args: Vec<DatumWithOid<'_>> = vec![
        rows.iter().map(|r| r.user_id).collect::<Vec<i64>>().into(),
        rows.iter()
            .map(|r| r.probability)
            .collect::<Vec<f64>>()
            .into(),
        rows.iter()
            .map(|r| r.band.to_string())
            .collect::<Vec<String>>()
            .into(),
        rows.iter()
            .map(|r| r.eligible)
            .collect::<Vec<bool>>()
            .into(),
        rows.iter()
            .map(|r| r.reasons.join("\u{1f}"))
            .collect::<Vec<String>>()
            .into(),
        model.name.clone().into(),
        model.version.into(),
        as_of.0.into(),
    ];
    execute(
        &format!(
            "INSERT INTO {ext}.{table} (user_id, probability, {band}, eligible, top_reasons, model_name, model_version, \
                 as_of_date, scored_at) \
             SELECT u, p, b, e, CASE WHEN r = '' THEN '{{}}'::pg_catalog.text[] \
                 ELSE pg_catalog.string_to_array(r, pg_catalog.chr(31)) END, $6, $7, DATE '2000-01-01' + $8, \
                 pg_catalog.now() \
             FROM ROWS FROM (pg_catalog.unnest($1::pg_catalog.int8[]), pg_catalog.unnest($2::pg_catalog.float8[]), \
                 pg_catalog.unnest($3::pg_catalog.text[]), pg_catalog.unnest($4::pg_catalog.bool[]), \
                 pg_catalog.unnest($5::pg_catalog.text[])) AS t(u, p, b, e, r)"
        ),
        &args,
        &format!("writing {table}"),
    );
}
