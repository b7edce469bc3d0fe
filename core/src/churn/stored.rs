//! A churn model as the columns of its stored row hold it ([`StoredParts`]), and the checks that
//! turn those columns back into a [`Model`] that scoring can trust: a row edited by hand, or left
//! by an older version, is refused with what is wrong instead of scoring nonsense or panicking.

use super::features::FEATURES;
use super::model::{Classifier, Model, Node, Transform};
use super::{Settings, Target};

/// The stored columns of a model: the feature names and their scaling, the classifier's
/// parameters (a logistic regression's intercept and weights, or a tree's nodes as parallel
/// arrays), the decision threshold and the label settings.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StoredParts {
    pub target: String,
    pub classifier: String,
    pub features: Vec<String>,
    pub mean: Vec<f64>,
    pub scale: Vec<f64>,
    pub intercept: Option<f64>,
    pub weights: Vec<f64>,
    pub tree_feature: Vec<i32>,
    pub tree_threshold: Vec<f64>,
    pub tree_left: Vec<i32>,
    pub tree_right: Vec<i32>,
    pub tree_value: Vec<f64>,
    pub threshold: f64,
    pub label_days: i32,
    pub min_tenure_days: i32,
    pub active_days: i32,
}

impl StoredParts {
    /// The columns that store `model` trained with `settings`.
    pub fn of(model: &Model, settings: &Settings) -> StoredParts {
        let t = &model.transform;
        let mut parts = StoredParts {
            target: model.target.name().to_string(),
            classifier: model.classifier.kind().to_string(),
            features: t.columns.iter().map(|&c| FEATURES[c].to_string()).collect(),
            mean: t.mean.clone(),
            scale: t.scale.clone(),
            threshold: model.threshold,
            label_days: settings.label_days,
            min_tenure_days: settings.min_tenure_days,
            active_days: settings.active_days,
            ..StoredParts::default()
        };
        match &model.classifier {
            Classifier::Logistic { intercept, weights } => {
                parts.intercept = Some(*intercept);
                parts.weights = weights.clone();
            }
            Classifier::Tree { nodes } => {
                parts.tree_feature = nodes.iter().map(|n| n.feature as i32).collect();
                parts.tree_threshold = nodes.iter().map(|n| n.threshold).collect();
                parts.tree_left = nodes.iter().map(|n| n.left as i32).collect();
                parts.tree_right = nodes.iter().map(|n| n.right as i32).collect();
                parts.tree_value = nodes.iter().map(|n| n.value).collect();
            }
        }
        parts
    }

    /// The model and its label settings, or what is wrong with the columns.
    pub fn into_model(self) -> Result<(Model, Settings), &'static str> {
        let target = Target::parse(&self.target).ok_or("unknown target")?;
        let columns = self
            .features
            .iter()
            .map(|f| FEATURES.iter().position(|n| n == f))
            .collect::<Option<Vec<usize>>>()
            .ok_or("unknown feature")?;
        let k = columns.len();
        let scaled = self.mean.len() == k
            && self.scale.len() == k
            && self.mean.iter().all(|m| m.is_finite())
            && self.scale.iter().all(|s| s.is_finite() && *s > 0.0);
        if !scaled {
            return Err("feature scaling");
        }
        let classifier = match (self.classifier.as_str(), self.intercept) {
            ("logistic", Some(intercept))
                if self.weights.len() == k
                    && intercept.is_finite()
                    && self.weights.iter().all(|w| w.is_finite()) =>
            {
                Classifier::Logistic {
                    intercept,
                    weights: self.weights,
                }
            }
            ("tree", _) => Classifier::Tree {
                nodes: tree(&self, k).ok_or("tree nodes")?,
            },
            _ => return Err("classifier parameters"),
        };
        if !(0.0..=1.0).contains(&self.threshold) {
            return Err("decision threshold");
        }
        let settings = Settings {
            target,
            label_days: self.label_days,
            min_tenure_days: self.min_tenure_days,
            active_days: self.active_days,
        };
        if settings.check().is_err() {
            return Err("label settings");
        }
        let model = Model {
            target,
            transform: Transform {
                columns,
                mean: self.mean,
                scale: self.scale,
            },
            classifier,
            threshold: self.threshold,
        };
        Ok((model, settings))
    }
}

/// A tree's nodes from their parallel arrays, when they make a tree over `k` features that every
/// walk from the root leaves: children after their parent, within the nodes.
fn tree(p: &StoredParts, k: usize) -> Option<Vec<Node>> {
    let n = p.tree_value.len();
    let lengths = [
        p.tree_feature.len(),
        p.tree_threshold.len(),
        p.tree_left.len(),
        p.tree_right.len(),
    ];
    if n == 0 || lengths.iter().any(|&l| l != n) {
        return None;
    }
    (0..n)
        .map(|i| {
            let index = |v: i32| usize::try_from(v).ok();
            let (feature, left, right) = (
                index(p.tree_feature[i])?,
                index(p.tree_left[i])?,
                index(p.tree_right[i])?,
            );
            // A leaf has 0 for both children; an inner node's come after it.
            let leaf = left == 0 && right == 0;
            let inner = left > i && right > i && left < n && right < n;
            let ok = feature < k
                && (leaf || (inner && p.tree_threshold[i].is_finite()))
                && (0.0..=1.0).contains(&p.tree_value[i]);
            ok.then_some(Node {
                feature,
                threshold: p.tree_threshold[i],
                left,
                right,
                value: p.tree_value[i],
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logistic() -> StoredParts {
        StoredParts {
            target: "churn".into(),
            classifier: "logistic".into(),
            features: vec![FEATURES[0].into(), FEATURES[3].into()],
            mean: vec![1.0, 2.0],
            scale: vec![0.5, 1.5],
            intercept: Some(-0.25),
            weights: vec![0.75, -1.0],
            threshold: 0.4,
            label_days: 90,
            min_tenure_days: 30,
            active_days: 365,
            ..StoredParts::default()
        }
    }

    fn tree3() -> StoredParts {
        StoredParts {
            classifier: "tree".into(),
            intercept: None,
            weights: vec![],
            tree_feature: vec![1, 0, 0],
            tree_threshold: vec![0.5, 0.0, 0.0],
            tree_left: vec![1, 0, 0],
            tree_right: vec![2, 0, 0],
            tree_value: vec![0.5, 0.2, 0.9],
            ..logistic()
        }
    }

    #[test]
    fn stored_models_come_back_as_they_were() {
        for parts in [logistic(), tree3()] {
            let (model, settings) = parts.clone().into_model().unwrap();
            assert_eq!(StoredParts::of(&model, &settings), parts);
        }
    }

    #[test]
    fn damaged_columns_are_refused_with_what_is_wrong() {
        let cases: Vec<(StoredParts, &str)> = vec![
            (
                StoredParts {
                    target: "nope".into(),
                    ..logistic()
                },
                "unknown target",
            ),
            (
                StoredParts {
                    features: vec!["nope".into(), FEATURES[3].into()],
                    ..logistic()
                },
                "unknown feature",
            ),
            (
                StoredParts {
                    scale: vec![0.5],
                    ..logistic()
                },
                "feature scaling",
            ),
            (
                StoredParts {
                    scale: vec![0.5, 0.0],
                    ..logistic()
                },
                "feature scaling",
            ),
            (
                StoredParts {
                    mean: vec![f64::NAN, 0.0],
                    ..logistic()
                },
                "feature scaling",
            ),
            (
                StoredParts {
                    weights: vec![1.0],
                    ..logistic()
                },
                "classifier parameters",
            ),
            (
                StoredParts {
                    intercept: None,
                    ..logistic()
                },
                "classifier parameters",
            ),
            (
                StoredParts {
                    classifier: "forest".into(),
                    ..logistic()
                },
                "classifier parameters",
            ),
            (
                StoredParts {
                    tree_left: vec![1, 0],
                    ..tree3()
                },
                "tree nodes",
            ),
            (
                StoredParts {
                    tree_feature: vec![2, 0, 0],
                    ..tree3()
                },
                "tree nodes",
            ),
            // A child before its parent would make a walk that never ends.
            (
                StoredParts {
                    tree_left: vec![1, 0, 1],
                    tree_right: vec![2, 0, 1],
                    ..tree3()
                },
                "tree nodes",
            ),
            (
                StoredParts {
                    tree_right: vec![3, 0, 0],
                    ..tree3()
                },
                "tree nodes",
            ),
            (
                StoredParts {
                    tree_value: vec![0.5, 1.5, 0.9],
                    ..tree3()
                },
                "tree nodes",
            ),
            (
                StoredParts {
                    tree_value: vec![],
                    ..tree3()
                },
                "tree nodes",
            ),
            (
                StoredParts {
                    threshold: 1.5,
                    ..logistic()
                },
                "decision threshold",
            ),
            (
                StoredParts {
                    label_days: 0,
                    ..logistic()
                },
                "label settings",
            ),
        ];
        for (parts, wrong) in cases {
            assert_eq!(parts.clone().into_model().err(), Some(wrong), "{parts:?}");
        }
    }
}
