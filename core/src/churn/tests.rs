use proptest::prelude::*;
use rand_xoshiro::Xoshiro256PlusPlus;
use rand_xoshiro::rand_core::{RngCore, SeedableRng};

use super::dataset::{BtydSpec, build, fit_btyd, plan, sampled};
use super::features::*;
use super::history::History;
use super::metrics::*;
use super::model::{TrainOptions, train};
use super::{ChurnError, Settings, Target};
use crate::clv::ModelKind;

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

// scikit-learn's documented examples: roc_auc_score and average_precision_score of
// y = [0, 0, 1, 1], scores = [0.1, 0.4, 0.35, 0.8] are 0.75 and 0.8333...
#[test]
fn metrics_match_scikit_learn_examples() {
    let y = [false, false, true, true];
    let s = [0.1, 0.4, 0.35, 0.8];
    assert!(close(roc_auc(&s, &y).unwrap(), 0.75, 1e-12));
    assert!(close(
        average_precision(&s, &y).unwrap(),
        0.833_333_333_333_333_4,
        1e-12
    ));
    // Ties count half, and a constant scorer is chance with the base rate as precision.
    let flat = [0.3; 4];
    assert!(close(roc_auc(&flat, &y).unwrap(), 0.5, 1e-12));
    assert!(close(average_precision(&flat, &y).unwrap(), 0.5, 1e-12));
    assert_eq!(roc_auc(&s, &[true; 4]), None);
    assert_eq!(average_precision(&s, &[false; 4]), None);
}

#[test]
fn confusion_matrix_threshold_and_lift() {
    let y = [
        true, false, true, false, false, false, false, false, false, false,
    ];
    let s = [0.9, 0.8, 0.7, 0.2, 0.1, 0.1, 0.1, 0.1, 0.1, 0.0];
    let m = evaluate(&s, &y, 0.7);
    assert_eq!(
        (
            m.true_positives,
            m.false_positives,
            m.true_negatives,
            m.false_negatives
        ),
        (2, 1, 7, 0)
    );
    assert!(close(m.precision.unwrap(), 2.0 / 3.0, 1e-12));
    assert!(close(m.recall.unwrap(), 1.0, 1e-12));
    assert!(close(m.f1.unwrap(), 0.8, 1e-12));
    // Top tenth is the one row scored 0.9, a positive: rate 1 against 0.2 overall.
    assert!(close(m.top_decile_lift.unwrap(), 5.0, 1e-12));
    // F1 is best at 0.7: {0.9, 0.8, 0.7} gives 0.8; 0.9 alone gives 2/3.
    assert_eq!(best_f1_threshold(&s, &y), 0.7);
    // A tie group across the cut counts at its own rate.
    let s2 = [0.5; 10];
    assert!(close(top_decile_lift(&s2, &y).unwrap(), 1.0, 1e-12));
}

fn settings(target: Target) -> Settings {
    Settings::new(target)
}

fn history(orders: &[(i32, f64)]) -> History {
    History::new(orders.to_vec(), vec![])
}

#[test]
fn labels_at_their_window_edges() {
    let d = 1000;
    let churn = settings(Target::Churn);
    let purchase = settings(Target::Purchase);
    // Orders on D itself belong to the past; the windows are (D, D + 60] and (D, D + 30].
    let on_d = history(&[(900, 1.0), (d, 1.0)]);
    assert!(label(&on_d, d, &churn));
    assert!(!label(&on_d, d, &purchase));
    let at_60 = history(&[(900, 1.0), (d + 60, 1.0)]);
    assert!(!label(&at_60, d, &churn));
    let at_61 = history(&[(900, 1.0), (d + 61, 1.0)]);
    assert!(label(&at_61, d, &churn));
    let at_30 = history(&[(900, 1.0), (d + 30, 1.0)]);
    assert!(label(&at_30, d, &purchase));
    let at_31 = history(&[(900, 1.0), (d + 31, 1.0)]);
    assert!(!label(&at_31, d, &purchase));
    let custom = Settings {
        label_days: 90,
        ..churn
    };
    assert!(!label(&at_61, d, &custom));
}

#[test]
fn eligibility_at_its_edges() {
    let d = 1000;
    let s = settings(Target::Churn);
    // First order exactly 30 days before D: eligible; 29: not yet.
    assert!(eligible(&history(&[(d - 30, 1.0)]), d, &s));
    assert!(!eligible(&history(&[(d - 29, 1.0)]), d, &s));
    // Last order exactly 180 days before D is outside (D - 180, D]; 179 is inside.
    assert!(!eligible(
        &history(&[(d - 400, 1.0), (d - 180, 1.0)]),
        d,
        &s
    ));
    assert!(eligible(&history(&[(d - 400, 1.0), (d - 179, 1.0)]), d, &s));
    // Orders after D do not make a customer eligible at D.
    assert!(!eligible(&history(&[(d + 1, 1.0)]), d, &s));
    assert!(!eligible(&history(&[]), d, &s));
    let loose = Settings {
        min_tenure_days: 0,
        active_days: 365,
        ..s
    };
    assert!(eligible(&history(&[(d - 300, 1.0)]), d, &loose));
}

#[test]
fn features_on_a_hand_built_history() {
    let d = 1000;
    let h = History::new(
        vec![
            (d - 300, 40.0),
            (d - 180, 10.0), // just outside 180 days
            (d - 179, 20.0), // just inside
            (d - 90, 30.0),  // just outside 90 days
            (d - 89, 5.0),
            (d - 89, 7.0),   // same day: two orders, one purchase day
            (d, 8.0),        // on D: counted
            (d + 1, 1000.0), // after D: never seen
        ],
        vec![(d - 200, 1), (d - 179, 2), (d - 89, 2), (d, 3), (d + 1, 4)],
    );
    let x = features_at(&h.upto(d), None).unwrap();
    let f = |name: &str| x[FEATURES.iter().position(|&n| n == name).unwrap()];
    assert_eq!(f("recency_days"), 0.0);
    assert_eq!(f("frequency_90d"), 3.0);
    assert_eq!(f("frequency_180d"), 5.0);
    assert_eq!(f("monetary_90d"), 20.0);
    assert_eq!(f("monetary_180d"), 70.0);
    assert_eq!(f("aov_180d"), 14.0);
    assert_eq!(f("orders_lifetime"), 7.0);
    assert_eq!(f("revenue_lifetime"), 120.0);
    assert_eq!(f("tenure_days"), 300.0);
    // Purchase days -300, -180, -179, -90, -89, 0: gaps 120, 1, 89, 1, 89.
    assert_eq!(f("ipt_mean_days"), 60.0);
    let var = [120.0f64, 1.0, 89.0, 1.0, 89.0]
        .iter()
        .map(|g| (g - 60.0).powi(2))
        .sum::<f64>()
        / 4.0;
    assert!(close(f("ipt_std_days"), var.sqrt(), 1e-12));
    assert_eq!(f("recency_to_ipt"), 0.0);
    // Spend (D-90, D] = 20 against (D-180, D-90] = 50.
    assert!(close(f("spend_trend"), (21.0f64 / 51.0).ln(), 1e-12));
    assert_eq!(f("single_purchase_day"), 0.0);
    // Categories in (D-180, D]: 2 and 3.
    assert_eq!(f("categories_180d"), 2.0);

    let one = history(&[(d - 40, 25.0)]);
    let x = features_at(&one.upto(d), None).unwrap();
    assert_eq!(
        x[FEATURES.iter().position(|&n| n == "ipt_mean_days").unwrap()],
        40.0
    );
    assert_eq!(
        x[FEATURES
            .iter()
            .position(|&n| n == "single_purchase_day")
            .unwrap()],
        1.0
    );
    assert!(features_at(&history(&[(d + 5, 1.0)]).upto(d), None).is_none());
}

fn arb_history() -> impl Strategy<Value = Vec<(i32, f64)>> {
    prop::collection::vec((0i32..2000, 0.0f64..500.0), 0..40)
}

proptest! {
    // No feature reads data after D: any orders added after D leave every feature at D, the
    // eligibility at D and the BG/NBD summary at D as they were.
    #[test]
    fn no_feature_reads_after_d(past in arb_history(), future in arb_history(), d in 0i32..2000) {
        let before: Vec<(i32, f64)> = past.iter().copied().filter(|o| o.0 <= d).collect();
        let after: Vec<(i32, f64)> = future.iter().map(|&(day, a)| (d + 1 + day, a)).collect();
        let cats: Vec<(i32, u32)> = before.iter().enumerate().map(|(i, o)| (o.0, i as u32 % 5)).collect();
        let cats_after: Vec<(i32, u32)> = after.iter().map(|o| (o.0, 9)).collect();
        let only_past = History::new(before.clone(), cats.clone());
        let with_future = History::new(
            before.into_iter().chain(after).collect(),
            cats.into_iter().chain(cats_after).collect(),
        );
        let a = features_at(&only_past.upto(d), None);
        let b = features_at(&with_future.upto(d), None);
        prop_assert_eq!(a, b);
        let s = Settings::new(Target::Churn);
        prop_assert_eq!(eligible(&only_past, d, &s), eligible(&with_future, d, &s));
        prop_assert_eq!(btyd_summary(&only_past.upto(d), 7.0), btyd_summary(&with_future.upto(d), 7.0));
    }
}

#[test]
fn the_time_split_leaves_a_gap_as_long_as_the_label() {
    let s = plan(1000, 26, 4, 60).unwrap();
    assert_eq!(s.validation, vec![919, 926, 933, 940]);
    assert_eq!(*s.training.last().unwrap(), 856);
    assert!(s.training.iter().all(|&d| d + 60 <= s.validation[0]));
    assert_eq!(s.training.len(), 14);
    assert!(matches!(
        plan(1000, 5, 4, 60),
        Err(ChurnError::BadArgument(_))
    ));
    assert!(matches!(
        plan(1000, 10, 10, 60),
        Err(ChurnError::BadArgument(_))
    ));
}

#[test]
fn sampling_is_fixed_by_seed_and_near_its_rate() {
    let kept = (0..100_000).filter(|&u| sampled(u, 500, 7, 0.25)).count();
    assert!((24_000..26_000).contains(&kept), "{kept}");
    let again = (0..100_000).filter(|&u| sampled(u, 500, 7, 0.25)).count();
    assert_eq!(kept, again);
    assert!(sampled(1, 1, 1, 1.0));
}

struct Rng(Xoshiro256PlusPlus);
impl Rng {
    fn uniform(&mut self) -> f64 {
        ((self.0.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    fn exp(&mut self, mean: f64) -> f64 {
        -self.uniform().ln() * mean
    }
}

/// A shop whose buyers all purchase about monthly (20 days plus an exponential 10) until they
/// leave, after an exponential lifetime of 300 days, and whose orders in the 90 days before they
/// leave are a third of their usual value: a warning in the order values that frequency and
/// recency, and so BG/NBD's P(alive), cannot see before the orders stop.
fn planted_shop(customers: usize, seed: u64) -> (Vec<i64>, Vec<History>) {
    let mut rng = Rng(Xoshiro256PlusPlus::seed_from_u64(seed));
    let mut ids = Vec::new();
    let mut histories = Vec::new();
    for id in 0..customers {
        let aov = 20.0 + 60.0 * rng.uniform();
        let mut day = rng.uniform() * 500.0;
        let end = day + rng.exp(300.0);
        let mut orders = Vec::new();
        while day < 900.0 && day < end {
            let warning = if day > end - 90.0 { 1.0 / 3.0 } else { 1.0 };
            let amount = aov * warning * (0.8 + 0.4 * rng.uniform());
            orders.push((day as i32, (amount * 100.0).round() / 100.0));
            day += 20.0 + rng.exp(10.0);
        }
        ids.push(id as i64);
        histories.push(History::new(orders, vec![]));
    }
    (ids, histories)
}

#[test]
fn a_planted_signal_is_learned_and_beats_p_alive() {
    let (ids, histories) = planted_shop(6000, 11);
    let s = Settings::new(Target::Churn);
    let snapshots = plan(900, 30, 6, s.label_days).unwrap();
    let fit_at = |days: &[i32]| -> Vec<_> {
        days.iter()
            .map(|&d| fit_btyd(&histories, d, BtydSpec::default()).unwrap())
            .collect()
    };
    let mt = fit_at(&snapshots.training);
    let mv = fit_at(&snapshots.validation);
    let training = build(&ids, &histories, &snapshots.training, Some(&mt), &s, 1.0, 1);
    let validation = build(
        &ids,
        &histories,
        &snapshots.validation,
        Some(&mv),
        &s,
        1.0,
        1,
    );
    let columns: Vec<usize> = (0..N_FEATURES).filter(|&c| c != CATEGORIES).collect();
    let report = train(
        Target::Churn,
        &training,
        &validation,
        &columns,
        &TrainOptions::default(),
    )
    .unwrap();
    let auc = |name: &str| {
        report
            .candidates
            .iter()
            .find(|c| c.scorer == name)
            .unwrap()
            .validation
            .roc_auc
            .unwrap()
    };
    let (logistic, tree, baseline) = (auc("logistic"), auc("tree"), auc("p_alive"));
    assert!(logistic > 0.95, "logistic {logistic}");
    assert!(
        logistic > baseline + 0.03,
        "logistic {logistic} against P(alive) {baseline}"
    );
    assert!(tree > 0.9, "tree {tree}");
    // The best validation AUC is the model kept.
    assert_eq!(
        report.model.classifier.kind(),
        if logistic >= tree { "logistic" } else { "tree" }
    );
    let model = &report.model;
    assert!(model.threshold > 0.0 && model.threshold < 1.0);
    // The customers about to leave are told apart by their falling order values, and that is
    // what their reasons say (recent spend low against lifetime spend, in some combination of
    // the money features); reasons only ever raise the prediction.
    const MONEY: [&str; 5] = [
        "spend_trend",
        "monetary_90d",
        "monetary_180d",
        "aov_180d",
        "revenue_lifetime",
    ];
    // The logistic's contributions are its log-odds: with the intercept they sum to logit(p).
    if let super::model::Classifier::Logistic { intercept, .. } = &model.classifier {
        let x = &validation.x[0];
        let z = model.transform.apply(x);
        let logit = intercept + model.classifier.contributions(&z).iter().sum::<f64>();
        assert!(close(
            1.0 / (1.0 + (-logit).exp()),
            model.probability(x),
            1e-12
        ));
    }
    let mut warned = 0;
    for (x, &churned) in validation.x.iter().zip(&validation.label) {
        let p = model.probability(x);
        let reasons = model.reasons(x, 3);
        assert!(reasons.iter().all(|r| r.contribution > 0.0));
        assert!(
            reasons
                .windows(2)
                .all(|w| w[0].contribution >= w[1].contribution)
        );
        if churned && p >= model.threshold && x[0] < 20.0 {
            warned += 1;
            assert!(
                reasons.iter().any(|r| MONEY.contains(&r.feature)),
                "{reasons:?}"
            );
        }
    }
    assert!(warned > 100, "{warned}");
}

#[test]
fn a_single_class_or_no_rows_is_an_error() {
    let (ids, histories) = planted_shop(300, 3);
    let s = Settings::new(Target::Churn);
    let days = [700, 707];
    let rows = build(&ids, &histories, &days, None, &s, 1.0, 1);
    let mut one_class = rows.clone();
    one_class.label.iter_mut().for_each(|l| *l = true);
    let columns: Vec<usize> = (0..CATEGORIES).collect();
    assert!(matches!(
        train(
            Target::Churn,
            &one_class,
            &rows,
            &columns,
            &TrainOptions::default()
        ),
        Err(ChurnError::SingleClass {
            split: "training",
            ..
        })
    ));
    let empty = build(&ids, &histories, &[-5000], None, &s, 1.0, 1);
    assert!(matches!(
        train(
            Target::Churn,
            &rows,
            &empty,
            &columns,
            &TrainOptions::default()
        ),
        Err(ChurnError::NoEligible {
            split: "validation"
        })
    ));
}

#[test]
fn a_tree_explains_by_the_rate_changes_on_its_path() {
    use super::model::{Classifier, Node};
    let leaf = |value| Node {
        feature: 0,
        threshold: 0.0,
        left: 0,
        right: 0,
        value,
    };
    let tree = Classifier::Tree {
        nodes: vec![
            Node {
                feature: 1,
                threshold: 0.5,
                left: 1,
                right: 2,
                value: 0.3,
            },
            leaf(0.1),
            Node {
                feature: 0,
                threshold: -1.0,
                left: 3,
                right: 4,
                value: 0.5,
            },
            leaf(0.2),
            leaf(0.8),
        ],
    };
    let z = [0.0, 2.0];
    assert_eq!(tree.probability(&z), 0.8);
    let c = tree.contributions(&z);
    // Root 0.3 -> 0.5 on feature 1, then 0.5 -> 0.8 on feature 0: 0.3 + 0.3 + 0.2 = 0.8.
    assert!(close(c[1], 0.2, 1e-12) && close(c[0], 0.3, 1e-12));
    assert_eq!(tree.probability(&[0.0, 0.0]), 0.1);
}

// The Newton fit and linfa-logistic's L-BFGS minimise the same loss: run long enough, linfa lands
// on the same weights.
#[test]
fn newton_logistic_matches_linfa_logistic() {
    use linfa::prelude::*;
    use linfa_logistic::LogisticRegression;
    use ndarray::{Array1, Array2};
    let (ids, histories) = planted_shop(2000, 5);
    let s = Settings::new(Target::Churn);
    let snapshots = plan(900, 20, 4, s.label_days).unwrap();
    let training = build(&ids, &histories, &snapshots.training, None, &s, 1.0, 1);
    let columns: Vec<usize> = (0..CATEGORIES).collect();
    let t = super::model::Transform::fit(&training.x, &columns);
    let rows: Vec<Vec<f64>> = training.x.iter().map(|x| t.apply(x)).collect();
    let newton = super::logistic::fit(&rows, &training.label, 1.0).unwrap();
    assert!(newton.iterations < 20, "{}", newton.iterations);
    assert!(newton.gradient < 1e-9);
    let mut z = Array2::zeros((rows.len(), columns.len()));
    for (i, r) in rows.iter().enumerate() {
        for (j, v) in r.iter().enumerate() {
            z[[i, j]] = *v;
        }
    }
    let data = Dataset::new(z, Array1::from_vec(training.label.clone()));
    let linfa = LogisticRegression::default()
        .alpha(1.0)
        .gradient_tolerance(1e-8)
        .max_iterations(5000)
        .fit(&data)
        .unwrap();
    let sign = if linfa.labels().pos.class { 1.0 } else { -1.0 };
    for (a, b) in newton.weights.iter().zip(linfa.params()) {
        assert!(
            close(*a, sign * b, 1e-3 * (1.0 + a.abs())),
            "{:?} against {:?}",
            newton.weights,
            linfa.params()
        );
    }
    assert!(close(
        newton.intercept,
        sign * linfa.intercept(),
        1e-3 * (1.0 + newton.intercept.abs())
    ));
}

#[test]
fn logistic_regression_edge_cases() {
    // Perfectly separable rows: the penalty keeps the weights finite.
    let z: Vec<Vec<f64>> = (0..100).map(|i| vec![i as f64 / 50.0 - 1.0]).collect();
    let y: Vec<bool> = (0..100).map(|i| i >= 50).collect();
    let f = super::logistic::fit(&z, &y, 1.0).unwrap();
    assert!(f.weights[0].is_finite() && f.weights[0] > 1.0, "{f:?}");
    assert!(super::logistic::fit(&z, &y, 0.0).is_err());
    assert!(super::logistic::fit(&[], &[], 1.0).is_err());
    // A feature without information gets (nearly) no weight; the intercept is the log-odds.
    let z: Vec<Vec<f64>> = (0..400)
        .map(|i| vec![if i % 2 == 0 { 1.0 } else { -1.0 }])
        .collect();
    let y: Vec<bool> = (0..400).map(|i| (i / 2) % 4 == 0).collect();
    let f = super::logistic::fit(&z, &y, 1e-6).unwrap();
    assert!(f.weights[0].abs() < 1e-6);
    assert!(close(f.intercept, (0.25f64 / 0.75).ln(), 1e-6));
}

#[test]
fn the_training_pipeline_samples_to_its_cap_and_goes_on_without_a_purchase_model_it_cannot_fit() {
    use super::pipeline::{Customers, TrainSpec, train_on};
    let (ids, histories) = planted_shop(3000, 5);
    let s = Settings::new(Target::Churn);
    let spec = |btyd, max_rows| TrainSpec {
        snapshots: plan(900, 20, 4, s.label_days).unwrap(),
        settings: s,
        btyd,
        max_rows,
        seed: 42,
        memory_limit: None,
    };
    let all = Customers {
        ids: &ids,
        histories: &histories,
        categories: false,
    };
    let t = train_on(&all, &spec(Some(ModelKind::BgNbd), 2000)).unwrap();
    assert_eq!(t.btyd, Some(ModelKind::BgNbd));
    assert!(t.btyd_failure.is_none());
    assert!(t.eligible.0 > 2000 && t.sample_rate < 1.0);
    assert!((t.rows.0 as f64 - 2000.0).abs() < 300.0, "{:?}", t.rows);
    assert!(t.report.model.transform.columns.contains(&P_ALIVE));
    assert!(!t.report.model.transform.columns.contains(&CATEGORIES));
    assert!(t.phases.ms("classifiers") > 0.0);
    // The same seed, the same rows and model.
    let again = train_on(&all, &spec(Some(ModelKind::BgNbd), 2000)).unwrap();
    assert_eq!(again.rows, t.rows);
    assert_eq!(again.report.model, t.report.model);

    // Ten customers are too few to fit BG/NBD at every snapshot: training goes on without it.
    let few = Customers {
        ids: &ids[..10],
        histories: &histories[..10],
        categories: false,
    };
    match train_on(&few, &spec(Some(ModelKind::BgNbd), 2000)) {
        Ok(t) => {
            assert!(t.btyd.is_none());
            assert!(t.btyd_failure.is_some());
            assert!(!t.report.model.transform.columns.contains(&P_ALIVE));
        }
        // Or so few rows that a split has one class: an error that says so.
        Err(e) => assert!(matches!(
            e,
            ChurnError::SingleClass { .. } | ChurnError::NoEligible { .. }
        )),
    }
    let none = Customers {
        ids: &[],
        histories: &[],
        categories: false,
    };
    assert!(matches!(
        train_on(&none, &spec(None, 2000)),
        Err(ChurnError::NoEligible { split: "training" })
    ));
}

#[test]
fn a_requested_stop_ends_training_before_its_next_phase() {
    use super::pipeline::{Customers, TrainSpec, train_on};
    let (ids, histories) = planted_shop(500, 3);
    let s = Settings::new(Target::Churn);
    let spec = TrainSpec {
        snapshots: plan(900, 20, 4, s.label_days).unwrap(),
        settings: s,
        btyd: None,
        max_rows: 2000,
        seed: 1,
        memory_limit: None,
    };
    let all = Customers {
        ids: &ids,
        histories: &histories,
        categories: false,
    };
    let stopped = crate::stop::stopping(|| train_on(&all, &spec));
    assert!(matches!(stopped, Err(ChurnError::Fit(ref m)) if m == "stopped"));
}

#[test]
fn training_that_would_take_more_memory_than_allowed_is_refused_before_it_starts() {
    use super::pipeline::{BYTES_PER_ROW, Customers, TrainSpec, train_on};
    let (ids, histories) = planted_shop(3000, 5);
    let s = Settings::new(Target::Churn);
    let all = Customers {
        ids: &ids,
        histories: &histories,
        categories: false,
    };
    let spec = |memory_limit| TrainSpec {
        snapshots: plan(900, 20, 4, s.label_days).unwrap(),
        settings: s,
        btyd: None,
        max_rows: 2000,
        seed: 42,
        memory_limit,
    };
    // Both splits keep at most 2,000 rows: 4,000 rows fit in exactly their bytes, not one less.
    let needed = 4000 * BYTES_PER_ROW;
    match train_on(&all, &spec(Some(needed - 1))) {
        Err(ChurnError::TooMuchMemory { rows, max_rows, .. }) => {
            assert_eq!(rows, 4000);
            assert_eq!(max_rows, (needed - 1) / BYTES_PER_ROW / 2);
        }
        other => panic!("{:?}", other.map(|t| t.rows)),
    }
    assert!(train_on(&all, &spec(Some(needed))).is_ok());
}
