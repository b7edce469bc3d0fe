//! Ranking metrics at k, as Microsoft Recommenders defines them (python_evaluation.py): per user,
//! then the mean over users.
//!
//! - hit rate: whether any of the top k is relevant;
//! - precision: hits / k;
//! - recall: hits / |relevant|;
//! - NDCG: Σ over hits at rank r of 1 / log2(r + 1), over the same for the first
//!   min(|relevant|, k) ranks (binary gain);
//! - MAP: Σ over hits at rank r of (hits up to r) / r, over min(|relevant|, k).

/// The metrics of one user's list.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct UserMetrics {
    pub hit: f64,
    pub precision: f64,
    pub recall: f64,
    pub ndcg: f64,
    pub map: f64,
}

/// The metrics of `ranked` (best first; only the first `k` count) against `relevant` (sorted,
/// distinct, not empty).
pub fn at_k(ranked: &[u32], relevant: &[u32], k: usize) -> UserMetrics {
    debug_assert!(!relevant.is_empty());
    let mut hits = 0usize;
    let mut dcg = 0.0;
    let mut ap = 0.0;
    for (r, item) in ranked.iter().take(k).enumerate() {
        if relevant.binary_search(item).is_ok() {
            hits += 1;
            dcg += 1.0 / ((r + 2) as f64).log2();
            ap += hits as f64 / (r + 1) as f64;
        }
    }
    let ideal = relevant.len().min(k);
    let idcg: f64 = (0..ideal).map(|r| 1.0 / ((r + 2) as f64).log2()).sum();
    UserMetrics {
        hit: if hits > 0 { 1.0 } else { 0.0 },
        precision: hits as f64 / k as f64,
        recall: hits as f64 / relevant.len() as f64,
        ndcg: if idcg > 0.0 { dcg / idcg } else { 0.0 },
        map: if ideal > 0 { ap / ideal as f64 } else { 0.0 },
    }
}

/// Sums of [`UserMetrics`] over users, for the mean.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Totals {
    pub users: u64,
    pub sum: UserMetrics,
}

impl Totals {
    pub fn add(&mut self, m: UserMetrics) {
        self.users += 1;
        self.sum.hit += m.hit;
        self.sum.precision += m.precision;
        self.sum.recall += m.recall;
        self.sum.ndcg += m.ndcg;
        self.sum.map += m.map;
    }

    pub fn mean(&self) -> UserMetrics {
        let n = self.users.max(1) as f64;
        UserMetrics {
            hit: self.sum.hit / n,
            precision: self.sum.precision / n,
            recall: self.sum.recall / n,
            ndcg: self.sum.ndcg / n,
            map: self.sum.map / n,
        }
    }
}
