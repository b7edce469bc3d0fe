//! Snapshot features and stable K-means segments as SQL: `user_features` (the features at a
//! date), `kmeans_fit` (fit and store a model), `kmeans_assign` (a snapshot against a stored
//! model, never refitting), `calculate_all_clusters` (that into `ml_user_clusters`). The math is
//! `cda_analytics_core::segmentation`; migration and sizes over dates are SQL (sql/finalize.sql).

pub(crate) mod features;
pub(crate) mod model;

use pgrx::prelude::*;

use cda_analytics_core::segmentation::{FitError, FitOptions, fit};

use crate::source::context::as_of_day;
use crate::source::ext_schema;
use crate::source::{Config, Context};
use crate::toolbox::convert::numeric;
use crate::toolbox::errors::*;

/// Every user with a successful order up to `as_of` (default: today), with the snapshot features
/// used for clustering, from data up to that day only. `categories_180d` is NULL where the shop
/// has no `order_items` and `products` tables.
#[allow(clippy::type_complexity)]
#[pg_extern(stable, parallel_restricted)]
#[search_path(pg_catalog, pg_temp)]
fn user_features(
    as_of: default!(Option<pgrx::datum::Date>, "NULL"),
) -> TableIterator<
    'static,
    (
        name!(user_id, i64),
        name!(recency_days, i32),
        name!(frequency_90d, i32),
        name!(monetary_180d, AnyNumeric),
        name!(aov_180d, AnyNumeric),
        name!(categories_180d, Option<i32>),
    ),
> {
    let Context {
        config,
        source,
        as_of,
        explicit_as_of: explicit,
        snapshot: _snapshot,
        ..
    } = Context::load(as_of);
    let f = features::read(&config, &source, as_of, explicit, true);
    let categories = f.categories;
    let mut money_text = f.money_text;
    TableIterator::new(f.snapshots.into_iter().map(move |s| {
        let (m, aov) = money_text.remove(&s.user_id).unwrap_or_default();
        (
            s.user_id,
            s.values[0] as i32,
            s.values[1] as i32,
            numeric(&m),
            numeric(aov.as_deref().unwrap_or("0")),
            categories.then_some(s.values[4] as i32),
        )
    }))
}

/// The most clusters a model may have.
const MAX_K: i32 = 20;

/// Fits K-means on the snapshot at `as_of` (default: today) and stores it as the next version of
/// `model_name`. `k` NULL chooses k in 2..10 by silhouette. Same data and seed, same model.
/// Returns the clusters, in their fixed order, with size and centroid in feature units.
#[allow(clippy::type_complexity)]
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn kmeans_fit(
    model_name: default!(Option<String>, "'default'"),
    as_of: default!(Option<pgrx::datum::Date>, "NULL"),
    k: default!(Option<i32>, "NULL"),
    seed: default!(Option<i64>, "42"),
) -> TableIterator<
    'static,
    (
        name!(cluster, i32),
        name!(cluster_name, String),
        name!(users, i64),
        name!(share, f64),
        name!(recency_days, f64),
        name!(frequency_90d, f64),
        name!(monetary_180d, f64),
        name!(aov_180d, f64),
        name!(categories_180d, Option<f64>),
        name!(model_version, i32),
    ),
> {
    let model_name = required(model_name, "model_name");
    let seed = required(seed, "seed");
    require_model_name(&model_name);
    // Checked before the snapshot is read, which is most of the cost.
    if let Some(k) = k.filter(|&k| k < 2) {
        raise(
            ERRCODE_INVALID_PARAMETER_VALUE,
            format!("k must be at least 2, got {k}"),
            Some("Pass NULL to choose k by silhouette.".into()),
        );
    }
    // One K-means fit (linfa's, ten runs) cannot be interrupted, and its cost grows with k: the
    // bound keeps a fit within seconds, far above the handful of segments a shop can act on.
    if let Some(k) = k.filter(|&k| k > MAX_K) {
        raise(
            ERRCODE_INVALID_PARAMETER_VALUE,
            format!("k must be at most {MAX_K}, got {k}"),
            Some("Pass NULL to choose k by silhouette between 2 and 10.".into()),
        );
    }
    let Context {
        ext,
        config,
        source,
        as_of,
        explicit_as_of: explicit,
        snapshot: _snapshot,
    } = Context::load(as_of);
    let f = features::read(&config, &source, as_of, explicit, true);
    let used: Vec<usize> = if f.categories {
        vec![0, 1, 2, 3, 4]
    } else {
        vec![0, 1, 2, 3]
    };
    let opts = FitOptions {
        k: k.map(|k| k.max(0) as usize),
        seed: seed as u64,
        ..FitOptions::default()
    };
    if f.without_orders > 0 {
        notice(
            format!(
                "kmeans_fit: {} users without a successful order by the as-of date are not clustered",
                f.without_orders
            ),
            None,
        );
    }
    let snapshots = &f.snapshots;
    let report = match crate::toolbox::workers::on_worker_threads(|| fit(snapshots, used, &opts)) {
        Ok(r) => r,
        Err(e @ FitError::NoUsers) => raise(
            ERRCODE_NO_DATA_FOUND,
            format!(
                "{e} as of {}",
                as_of.to_naive().map(|d| d.to_string()).unwrap_or_default()
            ),
            Some(
                "K-means needs users with at least one successful order up to the as-of date."
                    .into(),
            ),
        ),
        Err(
            e @ (FitError::KTooSmall { .. }
            | FitError::KTooLarge { .. }
            | FitError::TooFewDistinct { .. }),
        ) => raise(
            ERRCODE_INVALID_PARAMETER_VALUE,
            e.to_string(),
            Some("Choose a smaller k, or pass NULL to choose k by silhouette.".into()),
        ),
        Err(e) => raise(ERRCODE_INTERNAL_ERROR, e.to_string(), None),
    };
    let chosen_by = if k.is_some() { "given" } else { "silhouette" };
    let version = model::store(
        &ext,
        &model_name,
        &report,
        chosen_by,
        seed,
        as_of,
        snapshots.len() as i64,
    );
    let m = &report.model;
    let mut sizes = vec![0i64; m.centroids.len()];
    for s in snapshots {
        sizes[m.assign(s).0] += 1;
    }
    let n = snapshots.len().max(1) as f64;
    let units = m.centroids_in_units();
    let categories = f.categories;
    let rows: Vec<_> = units
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            (
                (i + 1) as i32,
                m.names[i].clone(),
                sizes[i],
                sizes[i] as f64 / n,
                c[0],
                c[1],
                c[2],
                c[3],
                if categories { c.get(4).copied() } else { None },
                version,
            )
        })
        .collect();
    TableIterator::new(rows)
}

/// Assigns every user of the snapshot at `as_of` (default: today) to the nearest cluster of the
/// latest stored version of `model_name`, with that model's scaling: no refit, so clusters keep
/// their numbers and names from date to date.
#[allow(clippy::type_complexity)]
#[pg_extern(stable, parallel_restricted)]
#[search_path(pg_catalog, pg_temp)]
fn kmeans_assign(
    model_name: default!(Option<String>, "'default'"),
    as_of: default!(Option<pgrx::datum::Date>, "NULL"),
) -> TableIterator<
    'static,
    (
        name!(user_id, i64),
        name!(cluster, i32),
        name!(cluster_name, String),
        name!(distance, f64),
        name!(model_version, i32),
    ),
> {
    let model_name = required(model_name, "model_name");
    let Context {
        ext,
        config,
        source,
        as_of,
        explicit_as_of: explicit,
        snapshot: _snapshot,
    } = Context::load(as_of);
    let stored = model::load(&ext, &model_name);
    let f = features::read(&config, &source, as_of, explicit, false);
    if stored.model.transform.used.contains(&4) && !f.categories {
        raise(
            ERRCODE_UNDEFINED_TABLE,
            format!(
                "K-means model '{}' uses categories_180d, but there are no order_items and products tables next to {}",
                stored.name, source.orders
            ),
            Some("Fit a model on the data as it is now.".into()),
        );
    }
    let version = stored.version;
    let model = stored.model;
    TableIterator::new(f.snapshots.into_iter().map(move |s| {
        let (c, d) = model.assign(&s);
        (
            s.user_id,
            (c + 1) as i32,
            model.names[c].clone(),
            d,
            version,
        )
    }))
}

/// Replaces the contents of `ml_user_clusters` with `kmeans_assign(model_name, as_of)`, atomically.
/// Returns the number of users written.
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn calculate_all_clusters(
    model_name: default!(Option<String>, "'default'"),
    as_of: default!(Option<pgrx::datum::Date>, "NULL"),
) -> i64 {
    let model_name = required(model_name, "model_name");
    let ext = ext_schema();
    let config = Config::load(&ext);
    let as_of = as_of_day(as_of, &config.time_zone);
    crate::write::refresh::lock(&ext, "ml_user_clusters");
    crate::toolbox::statement::execute(
        &format!("DELETE FROM {ext}.ml_user_clusters"),
        &[],
        "clearing ml_user_clusters",
    );
    let args: Vec<pgrx::datum::DatumWithOid<'_>> = vec![model_name.into(), as_of.0.into()];
    let written = Spi::connect_mut(|c| {
        c.update(
        &format!(
            "WITH written AS (INSERT INTO {ext}.ml_user_clusters (user_id, cluster, cluster_name, distance, \
                 model_name, model_version, as_of_date) \
             SELECT a.user_id, a.cluster, a.cluster_name, a.distance, $1, a.model_version, DATE '2000-01-01' + $2 \
             FROM {ext}.kmeans_assign($1, DATE '2000-01-01' + $2) a RETURNING 1) \
             SELECT pg_catalog.count(*) FROM written"
        ),
        None,
        &args,
        )?
        .first()
        .get::<i64>(1)
    })
    .or_raise("writing ml_user_clusters");
    written.unwrap_or_default()
}
