//! Evaluation of a scorer on labelled rows, with scikit-learn's definitions: ROC AUC with tied
//! scores counted as half (the Mann-Whitney statistic), PR AUC as average precision (a step
//! function over the distinct thresholds, no interpolation), the confusion matrix at a threshold
//! (positive when score >= threshold), and top-decile lift.

/// A scorer's quality on one set of rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Metrics {
    pub rows: usize,
    pub positives: usize,
    pub roc_auc: Option<f64>,
    pub pr_auc: Option<f64>,
    pub threshold: f64,
    pub precision: Option<f64>,
    pub recall: Option<f64>,
    pub f1: Option<f64>,
    pub true_positives: usize,
    pub false_positives: usize,
    pub true_negatives: usize,
    pub false_negatives: usize,
    /// The positive rate among the top tenth by score over the overall rate.
    pub top_decile_lift: Option<f64>,
}

/// Indices by score, highest first (ties in index order).
fn by_score_desc(scores: &[f64]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    idx
}

/// Groups of equal score, highest first, as (positives, rows) per group.
fn tie_groups(scores: &[f64], labels: &[bool]) -> Vec<(usize, usize)> {
    let idx = by_score_desc(scores);
    let mut groups: Vec<(usize, usize)> = Vec::new();
    let mut previous: Option<f64> = None;
    for i in idx {
        if previous != Some(scores[i]) {
            groups.push((0, 0));
            previous = Some(scores[i]);
        }
        if let Some(g) = groups.last_mut() {
            g.0 += labels[i] as usize;
            g.1 += 1;
        }
    }
    groups
}

/// ROC AUC; `None` with a single class.
pub fn roc_auc(scores: &[f64], labels: &[bool]) -> Option<f64> {
    let p = labels.iter().filter(|&&l| l).count();
    let n = labels.len() - p;
    if p == 0 || n == 0 {
        return None;
    }
    // Each positive outranks the negatives in lower groups and ties half of its own group's.
    let mut negatives_below = n as f64;
    let mut wins = 0.0;
    for (pos, rows) in tie_groups(scores, labels) {
        let neg = (rows - pos) as f64;
        negatives_below -= neg;
        wins += pos as f64 * (negatives_below + 0.5 * neg);
    }
    Some(wins / (p as f64 * n as f64))
}

/// Average precision; `None` without a positive.
pub fn average_precision(scores: &[f64], labels: &[bool]) -> Option<f64> {
    let p = labels.iter().filter(|&&l| l).count();
    if p == 0 {
        return None;
    }
    let (mut tp, mut seen, mut ap) = (0usize, 0usize, 0.0);
    for (pos, rows) in tie_groups(scores, labels) {
        tp += pos;
        seen += rows;
        ap += (pos as f64 / p as f64) * (tp as f64 / seen as f64);
    }
    Some(ap)
}

/// The threshold among the scores with the highest F1 (the higher one on a tie); 0.5 without a
/// positive.
pub fn best_f1_threshold(scores: &[f64], labels: &[bool]) -> f64 {
    let p = labels.iter().filter(|&&l| l).count();
    if p == 0 {
        return 0.5;
    }
    let idx = by_score_desc(scores);
    let (mut tp, mut seen) = (0usize, 0usize);
    let mut best = (f64::NEG_INFINITY, 0.5);
    let mut k = 0;
    while k < idx.len() {
        let s = scores[idx[k]];
        while k < idx.len() && scores[idx[k]] == s {
            tp += labels[idx[k]] as usize;
            seen += 1;
            k += 1;
        }
        let f1 = 2.0 * tp as f64 / (seen + p) as f64;
        if f1 > best.0 {
            best = (f1, s);
        }
    }
    best.1
}

/// The positive rate among the top tenth (rounded up) over the overall rate; a tie group that
/// straddles the cut counts at its own positive rate.
pub fn top_decile_lift(scores: &[f64], labels: &[bool]) -> Option<f64> {
    let p = labels.iter().filter(|&&l| l).count();
    if p == 0 || labels.is_empty() {
        return None;
    }
    let k = labels.len().div_ceil(10);
    let (mut taken, mut positives) = (0usize, 0.0);
    for (pos, rows) in tie_groups(scores, labels) {
        let take = rows.min(k - taken);
        positives += pos as f64 * take as f64 / rows as f64;
        taken += take;
        if taken == k {
            break;
        }
    }
    Some((positives / k as f64) / (p as f64 / labels.len() as f64))
}

/// Every metric of `scores` against `labels`, the confusion matrix at `threshold`.
pub fn evaluate(scores: &[f64], labels: &[bool], threshold: f64) -> Metrics {
    let (mut tp, mut fp, mut tn, mut fneg) = (0, 0, 0, 0);
    for (&s, &l) in scores.iter().zip(labels) {
        match (s >= threshold, l) {
            (true, true) => tp += 1,
            (true, false) => fp += 1,
            (false, false) => tn += 1,
            (false, true) => fneg += 1,
        }
    }
    let ratio = |a: usize, b: usize| (b > 0).then(|| a as f64 / b as f64);
    let precision = ratio(tp, tp + fp);
    let recall = ratio(tp, tp + fneg);
    let f1 = ratio(2 * tp, 2 * tp + fp + fneg);
    Metrics {
        rows: labels.len(),
        positives: tp + fneg,
        roc_auc: roc_auc(scores, labels),
        pr_auc: average_precision(scores, labels),
        threshold,
        precision,
        recall,
        f1,
        true_positives: tp,
        false_positives: fp,
        true_negatives: tn,
        false_negatives: fneg,
        top_decile_lift: top_decile_lift(scores, labels),
    }
}
