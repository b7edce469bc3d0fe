//! Storing and loading fitted K-means models (`ml_kmeans_models`).

use pgrx::prelude::*;

use cda_analytics_core::calendar::Day;
use cda_analytics_core::segmentation::features::FEATURES;
use cda_analytics_core::segmentation::{FitReport, Model};

use crate::toolbox::errors::*;
use crate::toolbox::statement::InsertRow;

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
    let floats = "{}::pg_catalog.float8[]";
    let mut row = InsertRow::default();
    // The model name is the first parameter, which the version's expression reads.
    row.arg("model_name", name.to_string())
        .expr(
            "version",
            &format!(
                "coalesce((SELECT max(version) FROM {ext}.ml_kmeans_models WHERE model_name = $1), 0) + 1"
            ),
        )
        .arg("k", m.centroids.len() as i32)
        .arg(
            "features",
            t.names().iter().map(|s| s.to_string()).collect::<Vec<String>>(),
        )
        .arg(
            "log1p",
            t.used.iter().map(|&f| FEATURES[f].1).collect::<Vec<bool>>(),
        )
        .arg("feature_mean", t.mean.clone())
        .arg("feature_scale", t.scale.clone())
        .arg_as("centroids", float_array_2d(&m.centroids), floats)
        .arg_as(
            "centroids_in_units",
            float_array_2d(&m.centroids_in_units()),
            floats,
        )
        .arg("cluster_names", m.names.clone())
        .arg("seed", seed)
        .arg_as("snapshot_date", as_of.0, "DATE '2000-01-01' + {}")
        .arg("users_in_snapshot", users)
        .arg("fitted_on_users", report.fitted_on as i64)
        .arg("inertia", report.inertia)
        .arg(
            "candidate_k",
            report
                .silhouette_by_k
                .iter()
                .map(|&(k, _)| k as i32)
                .collect::<Vec<i32>>(),
        )
        .arg(
            "candidate_silhouette",
            report
                .silhouette_by_k
                .iter()
                .map(|&(_, s)| s)
                .collect::<Vec<f64>>(),
        )
        .arg("k_chosen_by", chosen_by.to_string());
    let (sql, args) = row.statement(&format!("{ext}.ml_kmeans_models"), " RETURNING version");
    Spi::connect_mut(|c| c.update(&sql, None, &args)?.first().get::<i32>(1))
        .or_raise("storing the K-means model")
        .unwrap_or_default()
}

/// The latest version of a stored model.
pub fn load(ext: &str, name: &str) -> StoredModel {
    let sql = format!(
        "SELECT version, features, feature_mean, feature_scale, \
             ARRAY(SELECT pg_catalog.unnest(centroids)) AS centroids, cluster_names \
         FROM {ext}.ml_kmeans_models WHERE model_name = $1 ORDER BY version DESC LIMIT 1"
    );
    let found = Spi::connect(|c| {
        let t = c.select(&sql, None, &[name.to_string().into()])?;
        if t.is_empty() {
            return Ok(None);
        }
        let row = t.first();
        Ok::<_, pgrx::spi::SpiError>(Some((
            row.get_by_name::<i32, _>("version")?.unwrap_or_default(),
            row.get_by_name::<Vec<String>, _>("features")?
                .unwrap_or_default(),
            row.get_by_name::<Vec<f64>, _>("feature_mean")?
                .unwrap_or_default(),
            row.get_by_name::<Vec<f64>, _>("feature_scale")?
                .unwrap_or_default(),
            row.get_by_name::<Vec<f64>, _>("centroids")?
                .unwrap_or_default(),
            row.get_by_name::<Vec<String>, _>("cluster_names")?
                .unwrap_or_default(),
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
    let Some(model) = Model::from_stored(&features, mean, scale, &flat, names) else {
        raise(
            ERRCODE_DATA_CORRUPTED,
            format!("K-means model '{name}' version {version} in ml_kmeans_models is inconsistent"),
            Some("Fit the model again with kmeans_fit.".into()),
        );
    };
    StoredModel {
        name: name.to_string(),
        version,
        model,
    }
}
