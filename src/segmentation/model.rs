//! Storing and loading fitted K-means models (`ml_kmeans_models`).

use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;

use cda_analytics_core::calendar::Day;
use cda_analytics_core::segmentation::features::FEATURES;
use cda_analytics_core::segmentation::{FitReport, Model, Transform};

use crate::toolbox::errors::*;

pub struct StoredModel {
    pub name: String,
    pub version: i32,
    pub model: Model,
}

fn float_array_2d(rows: &[Vec<f64>]) -> String {
    let inner: Vec<String> = rows
        .iter()
        .map(|r| {
            let v: Vec<String> = r.iter().map(|x| format!("{x:?}")).collect();
            format!("{{{}}}", v.join(","))
        })
        .collect();
    format!("{{{}}}", inner.join(","))
}

/// Stores a fitted model as the next version of `name` and returns the version.
#[allow(clippy::too_many_arguments)]
pub fn store(
    ext: &str,
    name: &str,
    report: &FitReport,
    chosen_by: &str,
    seed: i64,
    as_of: Day,
    users: i64,
) -> i32 {
    let m = &report.model;
    let t = &m.transform;
    let args: Vec<DatumWithOid<'_>> = vec![
        name.to_string().into(),
        (m.centroids.len() as i32).into(),
        t.names()
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<String>>()
            .into(),
        t.used
            .iter()
            .map(|&f| FEATURES[f].1)
            .collect::<Vec<bool>>()
            .into(),
        t.mean.clone().into(),
        t.scale.clone().into(),
        float_array_2d(&m.centroids).into(),
        float_array_2d(&m.centroids_in_units()).into(),
        m.names.clone().into(),
        seed.into(),
        as_of.0.into(),
        users.into(),
        (report.fitted_on as i64).into(),
        report.inertia.into(),
        report
            .silhouette_by_k
            .iter()
            .map(|&(k, _)| k as i32)
            .collect::<Vec<i32>>()
            .into(),
        report
            .silhouette_by_k
            .iter()
            .map(|&(_, s)| s)
            .collect::<Vec<f64>>()
            .into(),
        chosen_by.to_string().into(),
    ];
    let sql = format!(
        "INSERT INTO {ext}.ml_kmeans_models (model_name, version, k, features, log1p, feature_mean, feature_scale, \
             centroids, centroids_in_units, cluster_names, seed, snapshot_date, users_in_snapshot, fitted_on_users, \
             inertia, candidate_k, candidate_silhouette, k_chosen_by) \
         SELECT $1, coalesce((SELECT max(version) FROM {ext}.ml_kmeans_models WHERE model_name = $1), 0) + 1, \
             $2, $3, $4, $5, $6, $7::pg_catalog.float8[], $8::pg_catalog.float8[], $9, $10, DATE '2000-01-01' + $11, \
             $12, $13, $14, $15, $16, $17 \
         RETURNING version"
    );
    Spi::connect_mut(|c| c.update(&sql, None, &args)?.first().get::<i32>(1))
        .or_raise("storing the K-means model")
        .unwrap_or_default()
}

/// The latest version of a stored model.
pub fn load(ext: &str, name: &str) -> StoredModel {
    let sql = format!(
        "SELECT version, features, feature_mean, feature_scale, \
             ARRAY(SELECT pg_catalog.unnest(centroids)), cluster_names \
         FROM {ext}.ml_kmeans_models WHERE model_name = $1 ORDER BY version DESC LIMIT 1"
    );
    let found = Spi::connect(|c| {
        let t = c.select(&sql, None, &[name.to_string().into()])?;
        if t.is_empty() {
            return Ok(None);
        }
        let row = t.first();
        let features: Vec<String> = row.get(2)?.unwrap_or_default();
        let flat: Vec<f64> = row.get(5)?.unwrap_or_default();
        Ok::<_, pgrx::spi::SpiError>(Some((
            row.get::<i32>(1)?.unwrap_or_default(),
            features,
            row.get::<Vec<f64>>(3)?.unwrap_or_default(),
            row.get::<Vec<f64>>(4)?.unwrap_or_default(),
            flat,
            row.get::<Vec<String>>(6)?.unwrap_or_default(),
        )))
    })
    .or_raise("reading ml_kmeans_models");
    let Some((version, features, mean, scale, flat, names)) = found else {
        raise(
            ERRCODE_UNDEFINED_OBJECT,
            format!("no K-means model named '{name}'"),
            Some("Fit one first: SELECT * FROM kmeans_fit('name');".into()),
        );
    };
    let used: Option<Vec<usize>> = features
        .iter()
        .map(|f| FEATURES.iter().position(|(n, _)| n == f))
        .collect();
    let d = features.len();
    let valid = used.is_some()
        && d > 0
        && mean.len() == d
        && scale.len() == d
        && flat.len() == d * names.len()
        && !names.is_empty();
    let (Some(used), true) = (used, valid) else {
        raise(
            ERRCODE_DATA_CORRUPTED,
            format!("K-means model '{name}' version {version} in ml_kmeans_models is inconsistent"),
            Some("Fit the model again with kmeans_fit.".into()),
        );
    };
    StoredModel {
        name: name.to_string(),
        version,
        model: Model {
            transform: Transform { used, mean, scale },
            centroids: flat.chunks(d).map(<[f64]>::to_vec).collect(),
            names,
        },
    }
}
