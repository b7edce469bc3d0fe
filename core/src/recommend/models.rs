//! The recommenders, with the formulas of `products.md` section 2.3. Every one scores all the
//! items of its training window for a customer (x_u: the items they bought there, binary) and
//! ranks them by score, ties by product id.
//!
//! - popularity: distinct buyers of the item over the last `window_days` of training;
//! - buy-again: the customer's own orders of the item × 10⁶ + popularity, so their own items come
//!   first, by how often they bought them, then the rest by popularity;
//! - item-kNN: S = WᵀW with W the customers × items matrix weighted by cosine (each item's column
//!   of X scaled to unit length) or BM25 (c (K1+1) / (K1 ((1−B) + B len_i / avg len) + c) × idf_u,
//!   c the customer's orders of the item, len_i the item's orders, idf_u = ln(items) −
//!   ln(1 + the customer's items), as the `implicit` library weighs), the diagonal left out and
//!   each item's K largest similarities kept; s_u = x_u S;
//! - EASE (Steck 2019): G = XᵀX + λI, P = G⁻¹, B_ij = −P_ij / P_jj, B_jj = 0; s_u = x_u B;
//! - hybrid: EASE + w × the customer's orders of each item (repeat purchases and discovery in one
//!   list: the default).

use rayon::prelude::*;

use super::data::Interactions;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Weighting {
    Cosine,
    Bm25 { k1: f64, b: f64 },
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Algorithm {
    Popularity,
    BuyAgain,
    ItemKnn { weighting: Weighting, k: usize },
    Ease { lambda: f64 },
    Hybrid { lambda: f64, weight: f64 },
}

#[derive(Debug, Clone, PartialEq)]
pub enum TrainError {
    /// EASE needs a dense items × items matrix: more items than the cap.
    TooManyItems {
        items: usize,
        cap: usize,
    },
    /// The Gram matrix is not positive definite (λ ≤ 0).
    NotPositiveDefinite,
    Stopped,
}

/// A trained recommender over the items of its training [`Interactions`].
#[derive(Debug, Clone)]
pub struct Model {
    pub algorithm: Algorithm,
    /// Per item: the popularity score (distinct buyers in the recent window), the cold-start
    /// answer and buy-again's second key.
    pub popularity: Vec<f64>,
    /// Every item by popularity, best first, ties by index: the ranking of everything a
    /// customer's own items do not score, read in order instead of sorted per customer.
    by_popularity: Vec<u32>,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    Popularity,
    BuyAgain,
    /// Per item: its neighbours (item, similarity), best first; the hybrid's weight on own
    /// orders (a stored EASE model is its pruned B).
    Neighbours {
        s: Vec<Vec<(u32, f64)>>,
        weight: f64,
    },
    /// B, items × items, row-major; the hybrid's weight on own orders.
    Dense {
        b: Vec<f64>,
        weight: f64,
    },
}

/// Distinct buyers per item of `data` among the lines in its last `window_days` (`recent`: the
/// same customers × items restricted to that window, built by the caller), over `data`'s items.
pub fn popularity(data: &Interactions, recent: &Interactions) -> Vec<f64> {
    data.items
        .iter()
        .map(|p| {
            recent
                .item_of(*p)
                .map_or(0.0, |i| f64::from(recent.buyers[i as usize]))
        })
        .collect()
}

/// Trains `algorithm` on `data`; `popularity` from [`popularity`]. EASE refuses more than
/// `max_items` items.
pub fn train(
    data: &Interactions,
    popularity: Vec<f64>,
    algorithm: Algorithm,
    max_items: usize,
) -> Result<Model, TrainError> {
    let kind = match algorithm {
        Algorithm::Popularity => Kind::Popularity,
        Algorithm::BuyAgain => Kind::BuyAgain,
        Algorithm::ItemKnn { weighting, k } => Kind::Neighbours {
            s: knn(data, weighting, k)?,
            weight: 0.0,
        },
        Algorithm::Ease { lambda } => Kind::Dense {
            b: ease(data, lambda, max_items)?,
            weight: 0.0,
        },
        Algorithm::Hybrid { lambda, weight } => Kind::Dense {
            b: ease(data, lambda, max_items)?,
            weight,
        },
    };
    Ok(Model {
        algorithm,
        by_popularity: ranking(&popularity),
        popularity,
        kind,
    })
}

/// The weights W (per user row: item, weight) of item-kNN.
fn weights(data: &Interactions, weighting: Weighting) -> Vec<Vec<(u32, f64)>> {
    match weighting {
        Weighting::Cosine => data
            .rows
            .iter()
            .map(|row| {
                row.iter()
                    .map(|&(i, _)| (i, 1.0 / f64::from(data.buyers[i as usize]).sqrt()))
                    .collect()
            })
            .collect(),
        Weighting::Bm25 { k1, b } => {
            let n = data.n_items() as f64;
            let mut len = vec![0.0f64; data.n_items()];
            for row in &data.rows {
                for &(i, c) in row {
                    len[i as usize] += f64::from(c);
                }
            }
            let avg = len.iter().sum::<f64>() / n.max(1.0);
            data.rows
                .iter()
                .map(|row| {
                    let idf = n.ln() - (1.0 + row.len() as f64).ln();
                    row.iter()
                        .map(|&(i, c)| {
                            let c = f64::from(c);
                            let norm = (1.0 - b) + b * len[i as usize] / avg;
                            (i, c * (k1 + 1.0) / (k1 * norm + c) * idf)
                        })
                        .collect()
                })
                .collect()
        }
    }
}

/// Rows as one flat vector and each row's start (with the end as a last start).
fn compressed(rows: Vec<Vec<(u32, f64)>>) -> (Vec<usize>, Vec<(u32, f64)>) {
    let mut at = Vec::with_capacity(rows.len() + 1);
    let mut flat = Vec::with_capacity(rows.iter().map(Vec::len).sum());
    for row in rows {
        at.push(flat.len());
        flat.extend(row);
    }
    at.push(flat.len());
    (at, flat)
}

/// The K largest similarities of every item (the diagonal left out), by value then item.
fn knn(
    data: &Interactions,
    weighting: Weighting,
    k: usize,
) -> Result<Vec<Vec<(u32, f64)>>, TrainError> {
    let n = data.n_items();
    // W and its transpose (items × users, to find each item's buyers) as flat compressed rows:
    // the inner loop below walks them, and one allocation per row scattered them in memory.
    let (w_at, w) = compressed(weights(data, weighting));
    let mut per_item = vec![0usize; n + 1];
    for &(i, _) in &w {
        per_item[i as usize + 1] += 1;
    }
    for i in 0..n {
        per_item[i + 1] += per_item[i];
    }
    let mut next = per_item.clone();
    let mut t = vec![(0u32, 0.0f64); w.len()];
    for u in 0..w_at.len() - 1 {
        for &(i, x) in &w[w_at[u]..w_at[u + 1]] {
            t[next[i as usize]] = (u as u32, x);
            next[i as usize] += 1;
        }
    }
    let by_item = |i: usize| &t[per_item[i]..per_item[i + 1]];
    let row_of = |u: u32| &w[w_at[u as usize]..w_at[u as usize + 1]];
    let out: Vec<Option<Vec<(u32, f64)>>> = (0..n)
        .into_par_iter()
        .map_init(
            || (vec![0.0f64; n], Vec::<u32>::new()),
            |(acc, touched), i| {
                if i % 256 == 0 && crate::stop::requested() {
                    return None;
                }
                for &(u, wi) in by_item(i) {
                    for &(j, wj) in row_of(u) {
                        if j as usize != i {
                            if acc[j as usize] == 0.0 {
                                touched.push(j);
                            }
                            acc[j as usize] += wi * wj;
                        }
                    }
                }
                let best: Vec<(u32, f64)> = touched
                    .iter()
                    .map(|&j| (j, acc[j as usize]))
                    .filter(|&(_, s)| s != 0.0)
                    .collect();
                for &j in touched.iter() {
                    acc[j as usize] = 0.0;
                }
                touched.clear();
                // The k best without sorting every co-bought item (tens of thousands for a
                // product of heavy buyers).
                Some(keep_best(best, k))
            },
        )
        .collect();
    out.into_iter()
        .map(|o| o.ok_or(TrainError::Stopped))
        .collect()
}

/// EASE's B, items × items, row-major.
fn ease(data: &Interactions, lambda: f64, max_items: usize) -> Result<Vec<f64>, TrainError> {
    let n = data.n_items();
    if n > max_items {
        return Err(TrainError::TooManyItems {
            items: n,
            cap: max_items,
        });
    }
    if !(lambda > 0.0 && lambda.is_finite()) {
        return Err(TrainError::NotPositiveDefinite);
    }
    let mut g = vec![0.0f64; n * n];
    for row in &data.rows {
        for &(i, _) in row {
            let base = i as usize * n;
            for &(j, _) in row {
                g[base + j as usize] += 1.0;
            }
        }
    }
    if crate::stop::requested() {
        return Err(TrainError::Stopped);
    }
    let gram = faer::Mat::<f64>::from_fn(n, n, |i, j| {
        g[i * n + j] + if i == j { lambda } else { 0.0 }
    });
    drop(g);
    let llt = gram
        .llt(faer::Side::Lower)
        .map_err(|_| TrainError::NotPositiveDefinite)?;
    drop(gram);
    if crate::stop::requested() {
        return Err(TrainError::Stopped);
    }
    use faer::linalg::solvers::DenseSolveCore;
    let p = llt.inverse();
    let mut b = vec![0.0f64; n * n];
    for i in 0..n {
        for j in 0..n {
            if i != j {
                b[i * n + j] = -p[(i, j)] / p[(j, j)];
            }
        }
    }
    Ok(b)
}

impl Model {
    /// The scores of every item for a customer with training row `row` (None: a customer with no
    /// history, who gets popularity).
    pub fn scores(&self, row: Option<&[(u32, u32)]>, out: &mut [f64]) {
        let Some(row) = row.filter(|r| !r.is_empty()) else {
            out.copy_from_slice(&self.popularity);
            return;
        };
        match &self.kind {
            Kind::Popularity => out.copy_from_slice(&self.popularity),
            Kind::BuyAgain => {
                out.copy_from_slice(&self.popularity);
                for &(i, c) in row {
                    out[i as usize] += f64::from(c) * 1e6;
                }
            }
            Kind::Neighbours { s, weight } => {
                out.fill(0.0);
                for &(i, _) in row {
                    for &(j, v) in &s[i as usize] {
                        out[j as usize] += v;
                    }
                }
                if *weight != 0.0 {
                    for &(i, c) in row {
                        out[i as usize] += weight * f64::from(c);
                    }
                }
            }
            Kind::Dense { b, weight } => {
                let n = out.len();
                out.fill(0.0);
                for &(i, _) in row {
                    let r = &b[i as usize * n..(i as usize + 1) * n];
                    for (o, v) in out.iter_mut().zip(r) {
                        *o += v;
                    }
                }
                if *weight != 0.0 {
                    for &(i, c) in row {
                        out[i as usize] += weight * f64::from(c);
                    }
                }
            }
        }
    }

    /// The `k` best items for a customer with training row `row` (None: no history), skipping
    /// the indexes `skip` says: the same list as [`top`] over [`Model::scores`], found without
    /// scoring and sorting the whole catalogue where the model is sparse. Popularity is read in
    /// its precomputed order; buy-again puts the customer's own items into it; item-kNN scores
    /// only the neighbours of the customer's items, and every other item scores exactly zero, so
    /// they follow in index order. `scratch` holds a score per item between calls (all zero).
    pub fn rank(
        &self,
        row: Option<&[(u32, u32)]>,
        k: usize,
        skip: impl Fn(usize) -> bool,
        scratch: &mut Vec<f64>,
    ) -> Vec<(u32, f64)> {
        let n = self.popularity.len();
        let row = row.filter(|r| !r.is_empty());
        // Scored items (index, score), best first, merged with the rest in popularity order.
        let merge = |mut scored: Vec<(u32, f64)>, scored_at: &dyn Fn(usize) -> bool| {
            scored.retain(|&(j, _)| !skip(j as usize));
            scored.sort_unstable_by(best_first);
            let mut rest = self
                .by_popularity
                .iter()
                .map(|&j| (j, self.popularity[j as usize]))
                .filter(|&(j, _)| !scored_at(j as usize) && !skip(j as usize))
                .peekable();
            let mut scored = scored.into_iter().peekable();
            let mut out = Vec::with_capacity(k);
            while out.len() < k {
                let next = match (scored.peek(), rest.peek()) {
                    (Some(a), Some(b)) if best_first(a, b).is_le() => scored.next(),
                    (Some(_), Some(_)) => rest.next(),
                    (Some(_), None) => scored.next(),
                    (None, Some(_)) => rest.next(),
                    (None, None) => None,
                };
                match next {
                    Some(x) => out.push(x),
                    None => break,
                }
            }
            out
        };
        match (&self.kind, row) {
            (Kind::Popularity, _) | (_, None) => merge(Vec::new(), &|_| false),
            (Kind::BuyAgain, Some(row)) => {
                let own: Vec<(u32, f64)> = row
                    .iter()
                    .map(|&(i, c)| (i, self.popularity[i as usize] + f64::from(c) * 1e6))
                    .collect();
                let owned = |j: usize| row.binary_search_by_key(&(j as u32), |r| r.0).is_ok();
                merge(own, &owned)
            }
            (Kind::Neighbours { s, weight }, Some(row)) => {
                scratch.resize(n, 0.0);
                let mut touched: Vec<u32> = Vec::new();
                let mut add = |j: u32, v: f64, scratch: &mut Vec<f64>| {
                    let x = &mut scratch[j as usize];
                    if *x == 0.0 {
                        touched.push(j);
                    }
                    *x += v;
                };
                // In the order Model::scores adds, so that the sums are the same to the bit.
                for &(i, _) in row {
                    for &(j, v) in &s[i as usize] {
                        add(j, v, scratch);
                    }
                }
                if *weight != 0.0 {
                    for &(i, c) in row {
                        add(i, weight * f64::from(c), scratch);
                    }
                }
                touched.sort_unstable();
                touched.dedup();
                // Every other item scores zero: they rank by index, between the positive and
                // the negative scores.
                let (positive, negative): (Vec<_>, Vec<_>) = touched
                    .iter()
                    .map(|&j| (j, scratch[j as usize]))
                    .filter(|&(_, v)| v != 0.0)
                    .partition(|&(_, v)| v > 0.0);
                let mut out = merge_zero(positive, negative, n, k, &skip, scratch);
                for &j in &touched {
                    scratch[j as usize] = 0.0;
                }
                out.truncate(k);
                out
            }
            (Kind::Dense { .. }, Some(row)) => {
                scratch.resize(n, 0.0);
                self.scores(Some(row), scratch);
                let out = top(scratch, k, skip);
                scratch.fill(0.0);
                out
            }
        }
    }

    /// Item `i`'s most similar items, best first: its neighbours, or for EASE the K largest
    /// weights of its row of B; none for popularity and buy-again.
    pub fn similar(&self, i: u32, k: usize) -> Vec<(u32, f64)> {
        match &self.kind {
            Kind::Neighbours { s, .. } => s[i as usize].iter().take(k).copied().collect(),
            Kind::Dense { b, .. } => {
                let n = self.popularity.len();
                let row = &b[i as usize * n..(i as usize + 1) * n];
                top(row, k, |j| j == i as usize)
            }
            _ => Vec::new(),
        }
    }
}

impl Model {
    /// A model from stored parts: `neighbours` per item (for item-kNN, and for EASE and the
    /// hybrid their pruned B), `popularity` per item.
    pub fn from_parts(
        algorithm: Algorithm,
        popularity: Vec<f64>,
        neighbours: Vec<Vec<(u32, f64)>>,
    ) -> Model {
        let kind = match algorithm {
            Algorithm::Popularity => Kind::Popularity,
            Algorithm::BuyAgain => Kind::BuyAgain,
            Algorithm::ItemKnn { .. } | Algorithm::Ease { .. } => Kind::Neighbours {
                s: neighbours,
                weight: 0.0,
            },
            Algorithm::Hybrid { weight, .. } => Kind::Neighbours {
                s: neighbours,
                weight,
            },
        };
        Model {
            algorithm,
            by_popularity: ranking(&popularity),
            popularity,
            kind,
        }
    }

    /// What to store of the model: each item's `k` neighbours (item-kNN's own, or the `k`
    /// largest weights of its row of EASE's B); none for popularity and buy-again.
    pub fn neighbour_lists(&self, k: usize) -> Vec<Vec<(u32, f64)>> {
        let n = self.popularity.len();
        match &self.kind {
            Kind::Popularity | Kind::BuyAgain => vec![Vec::new(); n],
            Kind::Neighbours { s, .. } => s
                .iter()
                .map(|l| l.iter().take(k).copied().collect())
                .collect(),
            Kind::Dense { .. } => (0..n as u32).map(|i| self.similar(i, k)).collect(),
        }
    }

    /// Which of the customer's items (`row`) led to item `j`, by their contribution to its
    /// score, largest first: at most `n`, only those that raised it.
    pub fn explain(&self, row: &[(u32, u32)], j: u32, n: usize) -> Vec<(u32, f64)> {
        let mut parts: Vec<(u32, f64)> = match &self.kind {
            Kind::Neighbours { s, weight } => row
                .iter()
                .map(|&(i, c)| {
                    let link = s[i as usize]
                        .iter()
                        .find(|(x, _)| *x == j)
                        .map_or(0.0, |(_, v)| *v);
                    let own = if i == j { weight * f64::from(c) } else { 0.0 };
                    (i, link + own)
                })
                .collect(),
            Kind::Dense { b, weight } => {
                let n_items = self.popularity.len();
                row.iter()
                    .map(|&(i, c)| {
                        let own = if i == j { weight * f64::from(c) } else { 0.0 };
                        (i, b[i as usize * n_items + j as usize] + own)
                    })
                    .collect()
            }
            Kind::BuyAgain => row
                .iter()
                .filter(|&&(i, _)| i == j)
                .map(|&(i, c)| (i, f64::from(c)))
                .collect(),
            Kind::Popularity => Vec::new(),
        };
        parts.retain(|p| p.1 > 0.0);
        parts.sort_unstable_by(best_first);
        parts.truncate(n);
        parts
    }
}

/// The `k` best of: the `positive` scores, then every item whose score in `scratch` is zero (by
/// index), then the `negative` scores, skipping what `skip` says.
fn merge_zero(
    mut positive: Vec<(u32, f64)>,
    mut negative: Vec<(u32, f64)>,
    n: usize,
    k: usize,
    skip: &impl Fn(usize) -> bool,
    scratch: &[f64],
) -> Vec<(u32, f64)> {
    positive.retain(|&(j, _)| !skip(j as usize));
    let mut out = keep_best(positive, k);
    let mut j = 0;
    while out.len() < k && j < n {
        if scratch[j] == 0.0 && !skip(j) {
            out.push((j as u32, 0.0));
        }
        j += 1;
    }
    if out.len() < k {
        negative.retain(|&(j, _)| !skip(j as usize));
        negative.sort_unstable_by(best_first);
        out.extend(negative);
    }
    out
}

/// The order of every ranking here: higher score first, ties by the smaller index.
fn best_first(a: &(u32, f64), b: &(u32, f64)) -> std::cmp::Ordering {
    b.1.total_cmp(&a.1).then(a.0.cmp(&b.0))
}

/// The indexes of `scores`, best first, ties by index.
fn ranking(scores: &[f64]) -> Vec<u32> {
    let mut order: Vec<u32> = (0..scores.len() as u32).collect();
    order.sort_unstable_by(|&a, &b| best_first(&(a, scores[a as usize]), &(b, scores[b as usize])));
    order
}

/// The `k` best of `scores` by score then index, skipping the indexes `skip` says.
pub fn top(scores: &[f64], k: usize, skip: impl Fn(usize) -> bool) -> Vec<(u32, f64)> {
    let all: Vec<(u32, f64)> = scores
        .iter()
        .enumerate()
        .filter(|(j, _)| !skip(*j))
        .map(|(j, s)| (j as u32, *s))
        .collect();
    keep_best(all, k)
}

/// The `k` best of `all`, best first: selected, then only they sorted.
fn keep_best(mut all: Vec<(u32, f64)>, k: usize) -> Vec<(u32, f64)> {
    if all.len() > k {
        all.select_nth_unstable_by(k, best_first);
        all.truncate(k);
    }
    all.sort_unstable_by(best_first);
    all
}
