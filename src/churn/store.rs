//! The churn tables: trained models by name (`ml_churn_models`) with their metrics
//! (`ml_churn_model_metrics`), and the per-customer scores (`ml_churn_scores`,
//! `ml_purchase_scores`), written in the caller's transaction so a refresh commits whole or not
//! at all.

use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;

use cda_analytics_core::calendar::Day;
use cda_analytics_core::churn::features::{FEATURES, LOG1P};
use cda_analytics_core::churn::metrics::Metrics;
use cda_analytics_core::churn::model::{Classifier, Model, Node, TrainReport, Transform};
use cda_analytics_core::churn::{Settings, Target};
use cda_analytics_core::clv::ModelKind;

use crate::toolbox::errors::*;
use crate::write::refresh::execute;

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

fn days(d: &[i32]) -> Vec<i32> {
    d.to_vec()
}

/// Stores the model as `name` (replacing it, next version) with every scorer's metrics, and
/// returns the version.
pub fn store(ext: &str, name: &str, report: &TrainReport, run: &Run) -> i32 {
    let m = &report.model;
    let t = &m.transform;
    let (intercept, weights, tree) = match &m.classifier {
        Classifier::Logistic { intercept, weights } => {
            (Some(*intercept), Some(weights.clone()), None)
        }
        Classifier::Tree { nodes } => (None, None, Some(nodes)),
    };
    let tree_col = |f: &dyn Fn(&Node) -> i32| tree.map(|n| n.iter().map(f).collect::<Vec<i32>>());
    let tree_val = |f: &dyn Fn(&Node) -> f64| tree.map(|n| n.iter().map(f).collect::<Vec<f64>>());
    let args: Vec<DatumWithOid<'_>> = vec![
        name.to_string().into(),
        m.target.name().to_string().into(),
        m.classifier.kind().to_string().into(),
        t.columns
            .iter()
            .map(|&c| FEATURES[c].to_string())
            .collect::<Vec<String>>()
            .into(),
        t.columns
            .iter()
            .map(|&c| LOG1P[c])
            .collect::<Vec<bool>>()
            .into(),
        t.mean.clone().into(),
        t.scale.clone().into(),
        intercept.into(),
        weights.into(),
        tree_col(&|n| n.feature as i32).into(),
        tree_val(&|n| n.threshold).into(),
        tree_col(&|n| n.left as i32).into(),
        tree_col(&|n| n.right as i32).into(),
        tree_val(&|n| n.value).into(),
        m.threshold.into(),
        run.settings.label_days.into(),
        run.settings.min_tenure_days.into(),
        run.settings.active_days.into(),
        run.btyd.map(|k| k.name().to_string()).into(),
        run.as_of.0.into(),
        days(&run.training).into(),
        days(&run.validation).into(),
        run.eligible_training.into(),
        run.eligible_validation.into(),
        run.sample_rate.into(),
        run.seed.into(),
        run.phase_ms.iter().sum::<f64>().into(),
        run.phase_ms.to_vec().into(),
    ];
    let sql = format!(
        "INSERT INTO {ext}.ml_churn_models AS m (model_name, version, target, classifier, features, log1p, \
             feature_mean, feature_scale, intercept, weights, tree_feature, tree_threshold, tree_left, tree_right, \
             tree_value, threshold, label_days, min_tenure_days, active_days, btyd_model, as_of_date, \
             training_snapshots, validation_snapshots, eligible_training_rows, eligible_validation_rows, \
             sample_rate, seed, train_ms, phase_ms) \
         VALUES ($1, 1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, \
             DATE '2000-01-01' + $20, \
             ARRAY(SELECT DATE '2000-01-01' + d FROM pg_catalog.unnest($21::pg_catalog.int4[]) d), \
             ARRAY(SELECT DATE '2000-01-01' + d FROM pg_catalog.unnest($22::pg_catalog.int4[]) d), \
             $23, $24, $25, $26, $27, $28) \
         ON CONFLICT (model_name) DO UPDATE SET version = m.version + 1, target = excluded.target, \
             classifier = excluded.classifier, features = excluded.features, log1p = excluded.log1p, \
             feature_mean = excluded.feature_mean, feature_scale = excluded.feature_scale, \
             intercept = excluded.intercept, weights = excluded.weights, tree_feature = excluded.tree_feature, \
             tree_threshold = excluded.tree_threshold, tree_left = excluded.tree_left, \
             tree_right = excluded.tree_right, tree_value = excluded.tree_value, threshold = excluded.threshold, \
             label_days = excluded.label_days, min_tenure_days = excluded.min_tenure_days, \
             active_days = excluded.active_days, btyd_model = excluded.btyd_model, \
             as_of_date = excluded.as_of_date, training_snapshots = excluded.training_snapshots, \
             validation_snapshots = excluded.validation_snapshots, \
             eligible_training_rows = excluded.eligible_training_rows, \
             eligible_validation_rows = excluded.eligible_validation_rows, sample_rate = excluded.sample_rate, \
             seed = excluded.seed, train_ms = excluded.train_ms, phase_ms = excluded.phase_ms, \
             btyd_fit_as_of = NULL, btyd_fit_parameters = NULL, trained_at = pg_catalog.clock_timestamp() \
         RETURNING version"
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
    let args: Vec<DatumWithOid<'_>> = vec![
        name.to_string().into(),
        scorer.to_string().into(),
        split.to_string().into(),
        chosen.into(),
        (m.rows as i64).into(),
        (m.positives as i64).into(),
        m.roc_auc.into(),
        m.pr_auc.into(),
        m.threshold.into(),
        m.precision.into(),
        m.recall.into(),
        m.f1.into(),
        (m.true_positives as i64).into(),
        (m.false_positives as i64).into(),
        (m.true_negatives as i64).into(),
        (m.false_negatives as i64).into(),
        m.top_decile_lift.into(),
    ];
    execute(
        &format!(
            "INSERT INTO {ext}.ml_churn_model_metrics (model_name, scorer, split, chosen, rows, positives, roc_auc, \
                 pr_auc, threshold, precision, recall, f1, true_positives, false_positives, true_negatives, \
                 false_negatives, top_decile_lift) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"
        ),
        &args,
        "storing the churn model's metrics",
    );
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
             min_tenure_days, active_days, btyd_model, btyd_fit_as_of - DATE '2000-01-01', btyd_fit_parameters \
         FROM {ext}.ml_churn_models WHERE model_name = $1"
    );
    type Row = (
        i32,
        String,
        String,
        Vec<String>,
        Vec<f64>,
        Vec<f64>,
        Option<f64>,
        Vec<f64>,
        Vec<i32>,
        Vec<f64>,
        Vec<i32>,
        Vec<i32>,
        Vec<f64>,
        f64,
        [i32; 3],
        Option<String>,
        Option<(i32, Vec<f64>)>,
    );
    let found: Option<Row> = Spi::connect(|c| {
        let t = c.select(&sql, None, &[name.to_string().into()])?;
        if t.is_empty() {
            return Ok(None);
        }
        let r = t.first();
        Ok::<_, pgrx::spi::SpiError>(Some((
            r.get::<i32>(1)?.unwrap_or(1),
            r.get::<String>(2)?.unwrap_or_default(),
            r.get::<String>(3)?.unwrap_or_default(),
            r.get::<Vec<String>>(4)?.unwrap_or_default(),
            r.get::<Vec<f64>>(5)?.unwrap_or_default(),
            r.get::<Vec<f64>>(6)?.unwrap_or_default(),
            r.get::<f64>(7)?,
            r.get::<Vec<f64>>(8)?.unwrap_or_default(),
            r.get::<Vec<i32>>(9)?.unwrap_or_default(),
            r.get::<Vec<f64>>(10)?.unwrap_or_default(),
            r.get::<Vec<i32>>(11)?.unwrap_or_default(),
            r.get::<Vec<i32>>(12)?.unwrap_or_default(),
            r.get::<Vec<f64>>(13)?.unwrap_or_default(),
            r.get::<f64>(14)?.unwrap_or(0.5),
            [
                r.get::<i32>(15)?.unwrap_or(0),
                r.get::<i32>(16)?.unwrap_or(0),
                r.get::<i32>(17)?.unwrap_or(0),
            ],
            r.get::<String>(18)?,
            r.get::<i32>(19)?.zip(r.get::<Vec<f64>>(20)?),
        )))
    })
    .or_raise("reading ml_churn_models");
    let Some((
        version,
        target,
        classifier,
        features,
        mean,
        scale,
        intercept,
        weights,
        tf,
        tt,
        tl,
        tr,
        tv,
        threshold,
        s,
        btyd,
        btyd_fit,
    )) = found
    else {
        raise(
            ERRCODE_UNDEFINED_OBJECT,
            format!("no churn model named '{name}'"),
            Some("Train one first, e.g. SELECT * FROM churn_train('churn');".into()),
        );
    };
    let Some(target) = Target::parse(&target) else {
        corrupt(name, "unknown target")
    };
    let columns: Vec<usize> = features
        .iter()
        .map(|f| {
            FEATURES
                .iter()
                .position(|n| n == f)
                .unwrap_or_else(|| corrupt(name, "unknown feature"))
        })
        .collect();
    let k = columns.len();
    if mean.len() != k || scale.len() != k || scale.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
        corrupt(name, "feature scaling");
    }
    let classifier = match (classifier.as_str(), intercept) {
        ("logistic", Some(intercept)) if weights.len() == k => {
            Classifier::Logistic { intercept, weights }
        }
        ("tree", _) => {
            let n = tv.len();
            let ok = [tf.len(), tt.len(), tl.len(), tr.len()].iter().all(|&l| l == n)
                && n > 0
                && tf.iter().all(|&f| f >= 0 && (f as usize) < k)
                && tl.iter().chain(&tr).all(|&i| i >= 0 && (i as usize) < n)
                // Children come after their parent, so walking down always ends.
                && tl.iter().zip(&tr).enumerate().all(|(i, (&l, &r))| l == 0 || (l as usize > i && r as usize > i));
            if !ok {
                corrupt(name, "tree nodes");
            }
            Classifier::Tree {
                nodes: (0..n)
                    .map(|i| Node {
                        feature: tf[i] as usize,
                        threshold: tt[i],
                        left: tl[i] as usize,
                        right: tr[i] as usize,
                        value: tv[i],
                    })
                    .collect(),
            }
        }
        _ => corrupt(name, "classifier parameters"),
    };
    let settings = Settings {
        target,
        label_days: s[0],
        min_tenure_days: s[1],
        active_days: s[2],
    };
    if settings.check().is_err() {
        corrupt(name, "label settings");
    }
    StoredModel {
        name: name.to_string(),
        version,
        model: Model {
            target,
            transform: Transform {
                columns,
                mean,
                scale,
            },
            classifier,
            threshold,
        },
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
