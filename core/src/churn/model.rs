//! The classifiers: L2-regularised logistic regression ([`super::logistic`]) on standardised features,
//! and a decision tree (linfa-trees) whose leaves carry the training rows' positive rate. Both
//! explain a prediction by their own per-feature contributions: the logistic's weight times the
//! standardised value (log-odds relative to the average training row), the tree's change in
//! rate at each split on the row's path (Saabas), which sum to the prediction.

use linfa::prelude::*;
use linfa_trees::{DecisionTree, SplitQuality};
use ndarray::{Array1, Array2};

use super::ChurnError;
use super::Target;
use super::dataset::Rows;
use super::features::{FEATURES, LOG1P, N_FEATURES, P_ALIVE};
use super::logistic::sigmoid;
use super::metrics::{Metrics, best_f1_threshold, evaluate};

/// log1p (where [`LOG1P`] says) and standardisation of the columns a model uses.
#[derive(Debug, Clone, PartialEq)]
pub struct Transform {
    pub columns: Vec<usize>,
    pub mean: Vec<f64>,
    pub scale: Vec<f64>,
}

fn raw(x: &[f64; N_FEATURES], c: usize) -> f64 {
    if LOG1P[c] {
        x[c].max(0.0).ln_1p()
    } else {
        x[c]
    }
}

impl Transform {
    /// Means and standard deviations of `columns` over `rows`; a constant column gets scale 1.
    pub fn fit(rows: &[[f64; N_FEATURES]], columns: &[usize]) -> Transform {
        let n = rows.len().max(1) as f64;
        let mut mean = vec![0.0; columns.len()];
        let mut scale = vec![0.0; columns.len()];
        for (j, &c) in columns.iter().enumerate() {
            let m = rows.iter().map(|x| raw(x, c)).sum::<f64>() / n;
            let v = rows.iter().map(|x| (raw(x, c) - m).powi(2)).sum::<f64>() / n;
            mean[j] = m;
            scale[j] = if v.sqrt() > 1e-12 { v.sqrt() } else { 1.0 };
        }
        Transform {
            columns: columns.to_vec(),
            mean,
            scale,
        }
    }

    pub fn apply(&self, x: &[f64; N_FEATURES]) -> Vec<f64> {
        self.columns
            .iter()
            .enumerate()
            .map(|(j, &c)| (raw(x, c) - self.mean[j]) / self.scale[j])
            .collect()
    }

    fn matrix(&self, rows: &[[f64; N_FEATURES]]) -> Array2<f64> {
        let mut m = Array2::zeros((rows.len(), self.columns.len()));
        for (i, x) in rows.iter().enumerate() {
            for (j, z) in self.apply(x).into_iter().enumerate() {
                m[[i, j]] = z;
            }
        }
        m
    }
}

/// A decision tree in flat form. `left == 0` marks a leaf (the root is never a child).
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Index into the transformed row.
    pub feature: usize,
    pub threshold: f64,
    pub left: usize,
    pub right: usize,
    /// The training rows' positive rate at this node, smoothed (positives + 1) / (rows + 2).
    pub value: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Classifier {
    Logistic { intercept: f64, weights: Vec<f64> },
    Tree { nodes: Vec<Node> },
}

impl Classifier {
    pub fn kind(&self) -> &'static str {
        match self {
            Classifier::Logistic { .. } => "logistic",
            Classifier::Tree { .. } => "tree",
        }
    }

    /// The path of node indices from the root to a leaf.
    fn path(nodes: &[Node], z: &[f64]) -> Vec<usize> {
        let mut path = vec![0];
        let mut i = 0;
        while let Some(n) = nodes.get(i).filter(|n| n.left != 0) {
            i = if z[n.feature] < n.threshold {
                n.left
            } else {
                n.right
            };
            path.push(i);
        }
        path
    }

    pub fn probability(&self, z: &[f64]) -> f64 {
        match self {
            Classifier::Logistic { intercept, weights } => {
                sigmoid(intercept + weights.iter().zip(z).map(|(w, v)| w * v).sum::<f64>())
            }
            Classifier::Tree { nodes } => Self::path(nodes, z)
                .last()
                .and_then(|&i| nodes.get(i))
                .map_or(0.5, |n| n.value),
        }
    }

    /// Each used column's part in the prediction: log-odds for the logistic, probability for
    /// the tree.
    pub fn contributions(&self, z: &[f64]) -> Vec<f64> {
        match self {
            Classifier::Logistic { weights, .. } => {
                weights.iter().zip(z).map(|(w, v)| w * v).collect()
            }
            Classifier::Tree { nodes } => {
                let mut out = vec![0.0; z.len()];
                let path = Self::path(nodes, z);
                for w in path.windows(2) {
                    let (parent, child) = (&nodes[w[0]], &nodes[w[1]]);
                    out[parent.feature] += child.value - parent.value;
                }
                out
            }
        }
    }
}

/// A trained model: what it predicts, its features' transform, classifier, and the threshold at
/// which a probability counts as positive.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    pub target: Target,
    pub transform: Transform,
    pub classifier: Classifier,
    pub threshold: f64,
}

/// A feature's part in one prediction.
#[derive(Debug, Clone, PartialEq)]
pub struct Reason {
    pub feature: &'static str,
    pub value: f64,
    pub contribution: f64,
}

impl Model {
    pub fn probability(&self, x: &[f64; N_FEATURES]) -> f64 {
        self.classifier.probability(&self.transform.apply(x))
    }

    /// The `k` features that raise this prediction the most, largest first; only those that
    /// raise it.
    pub fn reasons(&self, x: &[f64; N_FEATURES], k: usize) -> Vec<Reason> {
        let z = self.transform.apply(x);
        let mut parts: Vec<(usize, f64)> = self
            .classifier
            .contributions(&z)
            .into_iter()
            .enumerate()
            .filter(|&(_, c)| c > 1e-9)
            .collect();
        parts.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        parts
            .into_iter()
            .take(k)
            .map(|(j, c)| {
                let col = self.transform.columns[j];
                Reason {
                    feature: FEATURES[col],
                    value: x[col],
                    contribution: c,
                }
            })
            .collect()
    }
}

/// How the classifiers are fitted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainOptions {
    /// L2 penalty on the logistic weights (on the summed log-loss).
    pub l2: f64,
    pub tree_depth: usize,
    /// Rows the tree is grown on at most (an evenly spaced subset beyond that).
    pub tree_rows: usize,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            l2: 1.0,
            tree_depth: 6,
            tree_rows: 200_000,
        }
    }
}

/// One scorer's evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub scorer: &'static str,
    /// On the training rows (in-sample): the threshold was chosen there.
    pub training: Metrics,
    pub validation: Metrics,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TrainReport {
    pub model: Model,
    /// The logistic, the tree, and the P(alive) baseline where the rows have it.
    pub candidates: Vec<Candidate>,
}

fn check_classes(rows: &Rows, split: &'static str) -> Result<(), ChurnError> {
    if rows.is_empty() {
        return Err(ChurnError::NoEligible { split });
    }
    let positives = rows.positives();
    if positives == 0 || positives == rows.len() {
        return Err(ChurnError::SingleClass {
            split,
            rows: rows.len(),
            positives,
        });
    }
    Ok(())
}

fn fit_logistic(z: &Array2<f64>, y: &[bool], l2: f64) -> Result<Classifier, ChurnError> {
    let rows: Vec<Vec<f64>> = z.rows().into_iter().map(|r| r.to_vec()).collect();
    let fit = super::logistic::fit(&rows, y, l2)?;
    if fit.weights.iter().any(|w| !w.is_finite()) || !fit.intercept.is_finite() {
        return Err(ChurnError::Fit("non-finite logistic weights".into()));
    }
    Ok(Classifier::Logistic {
        intercept: fit.intercept,
        weights: fit.weights,
    })
}

fn flatten(node: &linfa_trees::TreeNode<f64, bool>, nodes: &mut Vec<Node>) -> usize {
    let at = nodes.len();
    let (feature, threshold, _) = node.split();
    nodes.push(Node {
        feature,
        threshold,
        left: 0,
        right: 0,
        value: 0.5,
    });
    if !node.is_leaf() {
        let children = node.children();
        if let (Some(Some(l)), Some(Some(r))) = (children.first(), children.get(1)) {
            let left = flatten(l, nodes);
            let right = flatten(r, nodes);
            nodes[at].left = left;
            nodes[at].right = right;
        }
    }
    at
}

fn fit_tree(z: &Array2<f64>, y: &[bool], options: &TrainOptions) -> Result<Classifier, ChurnError> {
    let step = y.len().div_ceil(options.tree_rows.max(1)).max(1);
    let picked: Vec<usize> = (0..y.len()).step_by(step).collect();
    let sub = z.select(ndarray::Axis(0), &picked);
    let targets = Array1::from_iter(picked.iter().map(|&i| y[i]));
    let min_leaf = (picked.len() / 200).max(20) as f32;
    let data = Dataset::new(sub.clone(), targets);
    let tree = DecisionTree::params()
        .split_quality(SplitQuality::Gini)
        .max_depth(Some(options.tree_depth))
        .min_weight_leaf(min_leaf)
        .min_weight_split(2.0 * min_leaf)
        .fit(&data)
        .map_err(|e| ChurnError::Fit(e.to_string()))?;
    let mut nodes = Vec::new();
    flatten(tree.root_node(), &mut nodes);
    // Rates from every training row, not only the grown-on subset.
    let mut counts = vec![(0usize, 0usize); nodes.len()];
    for (i, row) in z.rows().into_iter().enumerate() {
        let zr: Vec<f64> = row.to_vec();
        for n in Classifier::path(&nodes, &zr) {
            counts[n].0 += y[i] as usize;
            counts[n].1 += 1;
        }
    }
    for (n, (p, t)) in nodes.iter_mut().zip(counts) {
        n.value = (p as f64 + 1.0) / (t as f64 + 2.0);
    }
    Ok(Classifier::Tree { nodes })
}

fn scores(classifier: &Classifier, z: &Array2<f64>) -> Vec<f64> {
    z.rows()
        .into_iter()
        .map(|r| classifier.probability(&r.to_vec()))
        .collect()
}

/// Trains the logistic regression and the tree on `training`, evaluates both (and the P(alive)
/// baseline when `columns` has it) on `validation`, and keeps the one with the higher validation
/// ROC AUC. Each scorer's threshold is the one with the best F1 on the training rows.
pub fn train(
    target: Target,
    training: &Rows,
    validation: &Rows,
    columns: &[usize],
    options: &TrainOptions,
) -> Result<TrainReport, ChurnError> {
    check_classes(training, "training")?;
    check_classes(validation, "validation")?;
    let transform = Transform::fit(&training.x, columns);
    let zt = transform.matrix(&training.x);
    let zv = transform.matrix(&validation.x);
    super::stop_if_requested()?;
    let logistic = fit_logistic(&zt, &training.label, options.l2)?;
    super::stop_if_requested()?;
    let tree = fit_tree(&zt, &training.label, options)?;
    super::stop_if_requested()?;

    let mut candidates = Vec::new();
    let mut best: Option<(f64, Classifier, f64)> = None;
    for classifier in [logistic, tree] {
        let st = scores(&classifier, &zt);
        let sv = scores(&classifier, &zv);
        let threshold = best_f1_threshold(&st, &training.label);
        let c = Candidate {
            scorer: classifier.kind(),
            training: evaluate(&st, &training.label, threshold),
            validation: evaluate(&sv, &validation.label, threshold),
        };
        let auc = c.validation.roc_auc.unwrap_or(0.0);
        candidates.push(c);
        if best.as_ref().is_none_or(|b| auc > b.0) {
            best = Some((auc, classifier, threshold));
        }
    }
    if columns.contains(&P_ALIVE) {
        let baseline = |rows: &Rows| -> Vec<f64> {
            rows.x
                .iter()
                .map(|x| match target {
                    Target::Churn => 1.0 - x[P_ALIVE],
                    Target::Purchase => x[P_ALIVE],
                })
                .collect()
        };
        let st = baseline(training);
        let threshold = best_f1_threshold(&st, &training.label);
        candidates.push(Candidate {
            scorer: "p_alive",
            training: evaluate(&st, &training.label, threshold),
            validation: evaluate(&baseline(validation), &validation.label, threshold),
        });
    }
    let Some((_, classifier, threshold)) = best else {
        return Err(ChurnError::Fit("no classifier".into()));
    };
    Ok(TrainReport {
        model: Model {
            target,
            transform,
            classifier,
            threshold,
        },
        candidates,
    })
}
