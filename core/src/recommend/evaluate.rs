//! The evaluation protocol of `products.md` 2.5: train on the lines before a cutoff, test on the
//! window after it; a customer is evaluated when they bought in both; relevant = the distinct
//! products they bought in the test window; every list ranks the whole training catalogue. Two
//! modes: `all` (repeat purchases count) and `new` (only products the customer had not bought
//! before: their own are never recommended, and customers who bought nothing new are not
//! evaluated). Customers who buy in the test window with no history (cold start) are counted
//! apart: every model answers them with popularity.

use rayon::prelude::*;
use rustc_hash::FxHashMap;

use super::data::Interactions;
use super::metrics::{Totals, UserMetrics, at_k};
use super::models::{Algorithm, TrainError, popularity, train};
use crate::items::ItemLine;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    All,
    New,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::All => "all",
            Mode::New => "new",
        }
    }
}

/// One model's metrics in one mode at one k.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub model: String,
    pub mode: Mode,
    pub k: usize,
    pub users: u64,
    pub metrics: UserMetrics,
    /// Distinct items recommended to the evaluated customers / items in training.
    pub coverage: f64,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Evaluation {
    pub rows: Vec<Row>,
    pub train_users: usize,
    pub train_items: usize,
    pub train_pairs: usize,
    pub test_buyers: usize,
    pub cold_start_buyers: usize,
}

pub struct Protocol {
    /// The first day of the test window (training is before it).
    pub cutoff: i32,
    /// The day after the test window.
    pub end: i32,
    pub ks: Vec<usize>,
    /// EASE's cap on the catalogue.
    pub max_items: usize,
}

/// A model to evaluate.
#[derive(Debug, Clone)]
pub struct Spec {
    pub name: String,
    pub algorithm: Algorithm,
    /// Popularity (the cold-start answer, buy-again's second key) counts the buyers of this many
    /// days before the cutoff; None: of the whole training window.
    pub popularity_days: Option<i32>,
}

/// Evaluates each model of `models` on `lines` under `protocol`.
pub fn evaluate(
    lines: &[ItemLine],
    protocol: &Protocol,
    models: &[Spec],
) -> Result<Evaluation, TrainError> {
    let data = Interactions::build(lines, None, protocol.cutoff);
    let n = data.n_items();
    // Each test buyer's distinct products: training items by index, others numbered after them
    // (relevant, never recommendable).
    let mut unseen: FxHashMap<i64, u32> = FxHashMap::default();
    let mut truth: FxHashMap<i64, Vec<u32>> = FxHashMap::default();
    for l in lines
        .iter()
        .filter(|l| l.day >= protocol.cutoff && l.day < protocol.end)
    {
        let item = data.item_of(l.product).unwrap_or_else(|| {
            let next = n as u32 + unseen.len() as u32;
            *unseen.entry(l.product).or_insert(next)
        });
        truth.entry(l.user).or_default().push(item);
    }
    let mut evaluated: Vec<(usize, Vec<u32>)> = Vec::new();
    let mut cold = 0;
    for (user, mut items) in truth.iter().map(|(u, v)| (*u, v.clone())) {
        items.sort_unstable();
        items.dedup();
        match data.users.binary_search(&user) {
            Ok(u) => evaluated.push((u, items)),
            Err(_) => cold += 1,
        }
    }
    evaluated.sort_unstable_by_key(|e| e.0);
    let max_k = protocol.ks.iter().copied().max().unwrap_or(0);
    let mut out = Evaluation {
        train_users: data.users.len(),
        train_items: n,
        train_pairs: data.rows.iter().map(Vec::len).sum(),
        test_buyers: truth.len(),
        cold_start_buyers: cold,
        rows: Vec::new(),
    };
    for spec in models {
        let pop = match spec.popularity_days {
            Some(days) => popularity(
                &data,
                &Interactions::build(lines, Some(protocol.cutoff - days), protocol.cutoff),
            ),
            None => data.buyers.iter().map(|b| f64::from(*b)).collect(),
        };
        let model = train(&data, pop, spec.algorithm, protocol.max_items)?;
        for mode in [Mode::All, Mode::New] {
            let lists: Vec<Option<(Vec<u32>, Vec<u32>)>> = evaluated
                .par_iter()
                .map_init(Vec::new, |scratch, (u, relevant)| {
                    let row = &data.rows[*u];
                    let owned = |j: usize| row.binary_search_by_key(&(j as u32), |r| r.0).is_ok();
                    let relevant: Vec<u32> = match mode {
                        Mode::All => relevant.clone(),
                        Mode::New => relevant
                            .iter()
                            .copied()
                            .filter(|&i| (i as usize) >= n || !owned(i as usize))
                            .collect(),
                    };
                    if relevant.is_empty() {
                        return None;
                    }
                    let ranked: Vec<u32> = match mode {
                        Mode::All => model.rank(Some(row), max_k, |_| false, scratch),
                        Mode::New => model.rank(Some(row), max_k, owned, scratch),
                    }
                    .into_iter()
                    .map(|(j, _)| j)
                    .collect();
                    Some((ranked, relevant))
                })
                .collect();
            if crate::stop::requested() {
                return Err(TrainError::Stopped);
            }
            for &k in &protocol.ks {
                let mut totals = Totals::default();
                let mut shown = vec![false; n];
                for (ranked, relevant) in lists.iter().flatten() {
                    totals.add(at_k(ranked, relevant, k));
                    for &j in ranked.iter().take(k) {
                        shown[j as usize] = true;
                    }
                }
                out.rows.push(Row {
                    model: spec.name.clone(),
                    mode,
                    k,
                    users: totals.users,
                    metrics: totals.mean(),
                    coverage: shown.iter().filter(|s| **s).count() as f64 / n.max(1) as f64,
                });
            }
        }
    }
    Ok(out)
}
