//! K-means over standardised snapshot features, fitted with linfa, seeded and reproducible.
//!
//! - k is given, or chosen by the silhouette over 2..=10: each candidate is fitted on a seeded
//!   sample of [`FitOptions::selection_points`] users and scored on a smaller one (the silhouette is
//!   quadratic); the highest score wins, the smaller k on a tie.
//! - The final model is fitted on every user, or on a seeded sample of
//!   [`FitOptions::max_fit_points`] when there are more (centroids of a sample that size differ
//!   from the full fit's by far less than the clusters' spread).
//! - Clusters are then numbered by their centroid's 180-day spend, highest first (then frequency,
//!   then recency), and named from where the centroid sits against the training mean, so cluster 1
//!   means the same thing on every date the model is applied to.

use linfa::DatasetBase;
use linfa::traits::Fit;
use linfa_clustering::{KMeans, KMeansInit};
use ndarray::Array2;
use rand_xoshiro::Xoshiro256Plus;
use rand_xoshiro::rand_core::{RngCore, SeedableRng};

use super::features::{FEATURES, FREQUENCY, MONETARY, RECENCY, Snapshot, Transform};
use super::silhouette::silhouette;

#[derive(Debug, Clone)]
pub struct FitOptions {
    /// None: choose by silhouette over `k_range`.
    pub k: Option<usize>,
    pub k_range: (usize, usize),
    pub seed: u64,
    pub n_runs: usize,
    pub max_iterations: u64,
    pub tolerance: f64,
    pub max_fit_points: usize,
    pub selection_points: usize,
    pub silhouette_points: usize,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            k: None,
            k_range: (2, 10),
            seed: 42,
            n_runs: 10,
            max_iterations: 300,
            tolerance: 1e-4,
            max_fit_points: 200_000,
            selection_points: 20_000,
            silhouette_points: 2_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum FitError {
    NoUsers,
    KTooSmall { k: usize },
    KTooLarge { k: usize, users: usize },
    TooFewDistinct { k: usize, distinct: usize },
    Failed(String),
}

impl FitError {
    /// A requested stop (`crate::stop`): the fit gave up, and the caller raises the cancel.
    fn stopped() -> FitError {
        FitError::Failed("stopped".into())
    }
}

impl std::fmt::Display for FitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FitError::NoUsers => write!(f, "no users with a successful order to cluster"),
            FitError::KTooSmall { k } => write!(f, "k must be at least 2, got {k}"),
            FitError::KTooLarge { k, users } => {
                write!(f, "k = {k} is more than the {users} users to cluster")
            }
            FitError::TooFewDistinct { k, distinct } => write!(
                f,
                "k = {k} clusters need at least {k} distinct feature vectors, the snapshot has {distinct}"
            ),
            FitError::Failed(e) => write!(f, "K-means failed: {e}"),
        }
    }
}

/// A fitted model: the preprocessing, and the centroids in standardised space, in cluster order.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    pub transform: Transform,
    pub centroids: Vec<Vec<f64>>,
    pub names: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct FitReport {
    pub model: Model,
    /// (k, silhouette) of every candidate when k was chosen; the chosen k alone otherwise.
    pub silhouette_by_k: Vec<(usize, f64)>,
    pub inertia: f64,
    pub fitted_on: usize,
    pub iterations_cap: u64,
}

fn distance2(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum()
}

impl Model {
    /// The nearest centroid (0-based cluster index; cluster numbers are this plus one) and the
    /// Euclidean distance to it in standardised units.
    pub fn assign(&self, snapshot: &Snapshot) -> (usize, f64) {
        let p = self.transform.apply(snapshot);
        let mut best = (0, f64::INFINITY);
        for (i, c) in self.centroids.iter().enumerate() {
            let d = distance2(&p, c);
            if d < best.1 {
                best = (i, d);
            }
        }
        (best.0, best.1.sqrt())
    }

    /// A stored model from its columns: the feature names, their scaling, the centroids in
    /// standardised space flattened row by row, and the cluster names. None when they do not
    /// make a model (a row edited by hand or damaged): an unknown feature, lengths that do not
    /// agree, no cluster, a scale that is not positive, a value that is not finite.
    pub fn from_stored(
        features: &[String],
        mean: Vec<f64>,
        scale: Vec<f64>,
        flat_centroids: &[f64],
        names: Vec<String>,
    ) -> Option<Model> {
        let used = features
            .iter()
            .map(|f| FEATURES.iter().position(|(n, _)| n == f))
            .collect::<Option<Vec<usize>>>()?;
        let d = used.len();
        let valid = d > 0
            && !names.is_empty()
            && mean.len() == d
            && scale.len() == d
            && flat_centroids.len() == d * names.len()
            && mean.iter().chain(flat_centroids).all(|v| v.is_finite())
            && scale.iter().all(|s| s.is_finite() && *s > 0.0);
        valid.then(|| Model {
            transform: Transform { used, mean, scale },
            centroids: flat_centroids.chunks(d).map(<[f64]>::to_vec).collect(),
            names,
        })
    }

    /// Each centroid in feature units.
    pub fn centroids_in_units(&self) -> Vec<Vec<f64>> {
        self.centroids
            .iter()
            .map(|c| self.transform.invert(c))
            .collect()
    }
}

/// Indices of a seeded sample of `m` of `n` items (all of them, in order, when m >= n).
fn sample(n: usize, m: usize, seed: u64) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..n).collect();
    if m >= n {
        return idx;
    }
    let mut rng = Xoshiro256Plus::seed_from_u64(seed);
    for i in 0..m {
        let j = i + (rng.next_u64() % (n - i) as u64) as usize;
        idx.swap(i, j);
    }
    idx.truncate(m);
    idx.sort_unstable();
    idx
}

/// K-means with k-means++ starts, the best of `opts.n_runs` runs by inertia. linfa runs the Lloyd
/// iterations, one call each (from the previous call's centroids), so that a cancel is seen
/// between iterations: a single linfa fit of every run at 200k users could not be interrupted
/// for seconds. Each run starts from its own seeded generator.
fn kmeans(
    points: &[Vec<f64>],
    k: usize,
    opts: &FitOptions,
) -> Result<(Vec<Vec<f64>>, f64), FitError> {
    let d = points.first().map_or(0, Vec::len);
    let flat: Vec<f64> = points.iter().flatten().copied().collect();
    let records = Array2::from_shape_vec((points.len(), d), flat)
        .map_err(|e| FitError::Failed(e.to_string()))?;
    let data = DatasetBase::from(records);
    let failed = |e: linfa_clustering::KMeansError| FitError::Failed(e.to_string());
    let step = |init: KMeansInit<f64>, run: u64| {
        let rng =
            Xoshiro256Plus::seed_from_u64(opts.seed ^ run.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        KMeans::params_with_rng(k, rng)
            .init_method(init)
            .n_runs(1)
            .max_n_iterations(1)
            .tolerance(opts.tolerance)
            .fit(&data)
            .map_err(failed)
    };
    let mut best: Option<(Array2<f64>, f64)> = None;
    for run in 0..opts.n_runs.max(1) as u64 {
        if crate::stop::requested() {
            return Err(FitError::stopped());
        }
        // The k-means++ start and the first iteration, then one iteration a call until the
        // centroids move less than the tolerance.
        let mut model = step(KMeansInit::KMeansPlusPlus, run)?;
        let mut iterations = 1;
        while iterations < opts.max_iterations {
            if crate::stop::requested() {
                return Err(FitError::stopped());
            }
            let before = model.centroids().clone();
            model = step(KMeansInit::Precomputed(before.clone()), run)?;
            iterations += 1;
            let shift = (&before - model.centroids())
                .iter()
                .map(|v| v * v)
                .sum::<f64>()
                .sqrt();
            if shift < opts.tolerance {
                break;
            }
        }
        let inertia = model.inertia();
        if best.as_ref().is_none_or(|(_, b)| inertia < *b) {
            best = Some((model.centroids().clone(), inertia));
        }
    }
    let (centroids, inertia) = best.ok_or_else(|| FitError::Failed("no run".into()))?;
    Ok((
        centroids.outer_iter().map(|row| row.to_vec()).collect(),
        inertia,
    ))
}

fn nearest(p: &[f64], centroids: &[Vec<f64>]) -> usize {
    let mut best = (0, f64::INFINITY);
    for (i, c) in centroids.iter().enumerate() {
        let d = distance2(p, c);
        if d < best.1 {
            best = (i, d);
        }
    }
    best.0
}

fn count_distinct(points: &[Vec<f64>], cap: usize) -> usize {
    let mut seen: rustc_hash::FxHashSet<Vec<u64>> = Default::default();
    for p in points {
        seen.insert(p.iter().map(|v| v.to_bits()).collect());
        if seen.len() >= cap {
            break;
        }
    }
    seen.len()
}

/// A word for where a standardised value sits: below -1.5, below -0.5, within half a standard
/// deviation of the mean, above 0.5, above 1.5.
fn level(z: f64, words: [&'static str; 5]) -> &'static str {
    match z {
        z if z <= -1.5 => words[0],
        z if z <= -0.5 => words[1],
        z if z < 0.5 => words[2],
        z if z < 1.5 => words[3],
        _ => words[4],
    }
}

/// The name of a centroid (standardised), from where it sits against the training mean (0).
fn describe(t: &Transform, c: &[f64]) -> String {
    let at = |feature: usize| t.used.iter().position(|&f| f == feature).map(|j| c[j]);
    let mut parts = Vec::new();
    if let Some(z) = at(RECENCY) {
        parts.push(level(
            z,
            ["very recent", "recent", "lapsing", "lapsed", "long lapsed"],
        ));
    }
    if let Some(z) = at(FREQUENCY) {
        parts.push(level(
            z,
            [
                "very rare",
                "rare",
                "occasional",
                "frequent",
                "very frequent",
            ],
        ));
    }
    if let Some(z) = at(MONETARY) {
        parts.push(level(
            z,
            [
                "lowest spend",
                "low spend",
                "mid spend",
                "high spend",
                "top spend",
            ],
        ));
    }
    parts.join(", ")
}

/// Fits a model on `snapshots` over the features `used` (indices into [`FEATURES`]).
pub fn fit(
    snapshots: &[Snapshot],
    used: Vec<usize>,
    opts: &FitOptions,
) -> Result<FitReport, FitError> {
    if snapshots.is_empty() {
        return Err(FitError::NoUsers);
    }
    if let Some(k) = opts.k {
        if k < 2 {
            return Err(FitError::KTooSmall { k });
        }
        if k > snapshots.len() {
            return Err(FitError::KTooLarge {
                k,
                users: snapshots.len(),
            });
        }
    }
    debug_assert!(used.iter().all(|&f| f < FEATURES.len()));
    // Input order must not matter: everything below works in user id order.
    let mut sorted: Vec<Snapshot> = snapshots.to_vec();
    sorted.sort_by_key(|s| s.user_id);
    let transform = Transform::fit(&sorted, used);
    let points: Vec<Vec<f64>> = sorted.iter().map(|s| transform.apply(s)).collect();
    let distinct = count_distinct(&points, opts.k_range.1.max(opts.k.unwrap_or(0)) + 1);
    if distinct < 2 {
        return Err(FitError::TooFewDistinct {
            k: opts.k.unwrap_or(2),
            distinct,
        });
    }
    let pick = |m: usize, salt: u64| -> Vec<Vec<f64>> {
        sample(points.len(), m, opts.seed ^ salt)
            .into_iter()
            .map(|i| points[i].clone())
            .collect()
    };

    let mut silhouette_by_k = Vec::new();
    let k = match opts.k {
        Some(k) => {
            if k > distinct {
                return Err(FitError::TooFewDistinct { k, distinct });
            }
            k
        }
        None => {
            let selection = pick(opts.selection_points, 0x5e1e);
            let scoring = pick(opts.silhouette_points, 0x5c0e);
            let hi = opts
                .k_range
                .1
                .min(distinct)
                .min(selection.len().saturating_sub(1));
            let mut best: Option<(usize, f64)> = None;
            for k in opts.k_range.0..=hi {
                if crate::stop::requested() {
                    return Err(FitError::stopped());
                }
                let (centroids, _) = kmeans(&selection, k, opts)?;
                let labels: Vec<usize> = scoring.iter().map(|p| nearest(p, &centroids)).collect();
                let Some(s) = silhouette(&scoring, &labels, k) else {
                    continue;
                };
                silhouette_by_k.push((k, s));
                if best.is_none_or(|(_, b)| s > b) {
                    best = Some((k, s));
                }
            }
            match best {
                Some((k, _)) => k,
                None => return Err(FitError::TooFewDistinct { k: 2, distinct }),
            }
        }
    };

    let training = pick(opts.max_fit_points, 0xf17);
    let (centroids, inertia) = kmeans(&training, k, opts)?;
    if opts.k.is_some() {
        let scoring = pick(opts.silhouette_points, 0x5c0e);
        let labels: Vec<usize> = scoring.iter().map(|p| nearest(p, &centroids)).collect();
        if let Some(s) = silhouette(&scoring, &labels, k) {
            silhouette_by_k.push((k, s));
        }
    }

    // Cluster order: by spend, then frequency, then recency (fewer days first), in feature units.
    let t = &transform;
    let key = |c: &Vec<f64>| {
        let at = |feature: usize| {
            t.used
                .iter()
                .position(|&f| f == feature)
                .map_or(0.0, |j| c[j])
        };
        (-at(MONETARY), -at(FREQUENCY), at(RECENCY))
    };
    let mut ordered = centroids;
    ordered.sort_by(|a, b| {
        let (ka, kb) = (key(a), key(b));
        ka.0.total_cmp(&kb.0)
            .then(ka.1.total_cmp(&kb.1))
            .then(ka.2.total_cmp(&kb.2))
    });
    let names = ordered
        .iter()
        .enumerate()
        .map(|(i, c)| format!("{}: {}", i + 1, describe(t, c)))
        .collect();
    Ok(FitReport {
        model: Model {
            transform,
            centroids: ordered,
            names,
        },
        silhouette_by_k,
        inertia,
        fitted_on: training.len(),
        iterations_cap: opts.max_iterations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_models_are_checked() {
        let features = vec![FEATURES[0].0.to_string(), FEATURES[2].0.to_string()];
        let names = vec!["a".to_string(), "b".to_string()];
        let ok = |mean: Vec<f64>, scale: Vec<f64>, flat: &[f64], names: Vec<String>| {
            Model::from_stored(&features, mean, scale, flat, names)
        };
        let m = ok(
            vec![0.0, 1.0],
            vec![1.0, 2.0],
            &[1.0, 2.0, 3.0, 4.0],
            names.clone(),
        )
        .unwrap();
        assert_eq!(m.transform.used, vec![0, 2]);
        assert_eq!(m.centroids, vec![vec![1.0, 2.0], vec![3.0, 4.0]]);
        assert!(
            ok(
                vec![0.0],
                vec![1.0, 2.0],
                &[1.0, 2.0, 3.0, 4.0],
                names.clone()
            )
            .is_none()
        );
        assert!(
            ok(
                vec![0.0, 1.0],
                vec![1.0, 0.0],
                &[1.0, 2.0, 3.0, 4.0],
                names.clone()
            )
            .is_none()
        );
        assert!(
            ok(
                vec![0.0, 1.0],
                vec![1.0, 2.0],
                &[1.0, 2.0, 3.0],
                names.clone()
            )
            .is_none()
        );
        assert!(
            ok(
                vec![0.0, 1.0],
                vec![1.0, 2.0],
                &[1.0, f64::NAN, 3.0, 4.0],
                names
            )
            .is_none()
        );
        assert!(ok(vec![0.0, 1.0], vec![1.0, 2.0], &[], vec![]).is_none());
        let unknown = vec!["nope".to_string()];
        assert!(
            Model::from_stored(&unknown, vec![0.0], vec![1.0], &[1.0], vec!["a".into()]).is_none()
        );
    }

    /// Three well separated groups of customers: big recent spenders, mid, lapsed small ones.
    fn groups(n_per: usize, seed: u64) -> Vec<Snapshot> {
        let mut rng = Xoshiro256Plus::seed_from_u64(seed);
        let mut u = || (rng.next_u64() % 1000) as f64 / 1000.0;
        let mut out = Vec::new();
        let mut id = 0;
        for (recency, freq, spend) in [(5.0, 8.0, 2000.0), (60.0, 3.0, 300.0), (300.0, 0.0, 0.0)] {
            for _ in 0..n_per {
                id += 1;
                let m = spend * (0.8 + 0.4 * u());
                let f: f64 = (freq + u()).floor();
                out.push(Snapshot {
                    user_id: id,
                    values: [
                        recency + 10.0 * u(),
                        f,
                        m,
                        if f > 0.0 { m / f } else { 0.0 },
                        1.0,
                    ],
                });
            }
        }
        out
    }

    #[test]
    fn finds_planted_groups_and_orders_them_by_value() {
        let data = groups(200, 7);
        let report = fit(&data, vec![0, 1, 2, 3], &FitOptions::default()).unwrap();
        let m = &report.model;
        assert_eq!(
            m.centroids.len(),
            3,
            "silhouette by k: {:?}",
            report.silhouette_by_k
        );
        let units = m.centroids_in_units();
        assert!(units[0][MONETARY] > units[1][MONETARY] && units[1][MONETARY] > units[2][MONETARY]);
        assert!(
            m.names[0].starts_with("1: recent") && m.names[0].ends_with("high spend"),
            "{:?}",
            m.names
        );
        // Each planted group lands in one cluster, in value order.
        for (i, s) in data.iter().enumerate() {
            assert_eq!(m.assign(s).0, i / 200);
        }
    }

    #[test]
    fn a_requested_stop_ends_the_fit_between_iterations() {
        let data = groups(200, 7);
        let opts = FitOptions {
            k: Some(3),
            ..FitOptions::default()
        };
        let stopped = crate::stop::stopping(|| fit(&data, vec![0, 1, 2, 3], &opts));
        assert_eq!(stopped.err(), Some(FitError::Failed("stopped".into())));
        assert!(fit(&data, vec![0, 1, 2, 3], &opts).is_ok());
    }

    #[test]
    fn same_input_and_seed_same_model_whatever_the_row_order() {
        let data = groups(100, 3);
        let opts = FitOptions {
            k: Some(4),
            ..FitOptions::default()
        };
        let a = fit(&data, vec![0, 1, 2, 3], &opts).unwrap().model;
        let mut reversed = data.clone();
        reversed.reverse();
        let b = fit(&reversed, vec![0, 1, 2, 3], &opts).unwrap().model;
        assert_eq!(a, b);
    }

    #[test]
    fn bad_k_and_empty_data_are_errors() {
        let data = groups(2, 1);
        let o = |k| FitOptions {
            k: Some(k),
            ..FitOptions::default()
        };
        assert_eq!(fit(&[], vec![0], &o(3)).unwrap_err(), FitError::NoUsers);
        assert_eq!(
            fit(&data, vec![0], &o(1)).unwrap_err(),
            FitError::KTooSmall { k: 1 }
        );
        assert_eq!(
            fit(&data, vec![0], &o(7)).unwrap_err(),
            FitError::KTooLarge { k: 7, users: 6 }
        );
        let same: Vec<Snapshot> = (0..5)
            .map(|i| Snapshot {
                user_id: i,
                values: [1.0; 5],
            })
            .collect();
        assert!(matches!(
            fit(&same, vec![0, 1], &o(2)).unwrap_err(),
            FitError::TooFewDistinct { .. }
        ));
    }

    #[test]
    fn sampling_is_seeded_and_sorted() {
        assert_eq!(sample(5, 10, 1), vec![0, 1, 2, 3, 4]);
        let a = sample(1000, 50, 9);
        assert_eq!(a, sample(1000, 50, 9));
        assert_eq!(a.len(), 50);
        assert!(a.windows(2).all(|w| w[0] < w[1]));
    }
}
