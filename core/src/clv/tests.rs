//! The published CDNOW results (Fader, Hardie & Lee 2005; the BTYD vignette; the lifetimes test
//! suite), reproduced from the sample's summary and transactions shipped in demo/cdnow.

use super::evaluate::holdout;
use super::fit::{fit_spend, fit_transactions, fit_transactions_within};
use super::gamma_gamma::SpendRow;
use super::summary::summarize;
use super::value::customer_value;
use super::*;

struct Customer {
    id: u32,
    row: Summary,
    zbar: f64,
}

fn cdnow_summary() -> Vec<Customer> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../demo/cdnow/cdnow_customers_summary_with_transactions.csv"
    );
    let text = std::fs::read_to_string(path).expect("CDNOW summary");
    text.lines()
        .skip(1)
        .map(|line| {
            let f: Vec<f64> = line.split(',').map(|v| v.parse().unwrap()).collect();
            Customer {
                id: f[0] as u32,
                row: Summary::new(f[1] as u32, f[2], f[3]),
                zbar: f[4],
            }
        })
        .collect()
}

fn rows(customers: &[Customer]) -> Vec<Summary> {
    customers.iter().map(|c| c.row).collect()
}

fn close(got: f64, want: f64, rel: f64) {
    assert!(
        (got - want).abs() <= rel * want.abs(),
        "got {got}, want {want} (rel {rel})"
    );
}

fn model(kind: ModelKind, params: [f64; 4]) -> TransactionModel {
    TransactionModel::new(kind, &params, TimeUnit::Week).unwrap()
}

/// The lifetimes test suite's BG/NBD parameters (FHL 2005, rounded).
const PAPER_BG: [f64; 4] = [0.243, 4.414, 0.793, 2.426];
/// BTYD's maximum-likelihood fits, with which its vignette prints its predictions.
const BTYD_BG: [f64; 4] = [0.2425982, 4.4136842, 0.7929899, 2.4261667];
const BTYD_PNBD: [f64; 4] = [0.5534, 10.5802, 0.6061, 11.6562];

#[test]
fn bgnbd_fit_reproduces_the_paper() {
    let fit = fit_transactions(ModelKind::BgNbd, &rows(&cdnow_summary()), 0.0).unwrap();
    for (got, want) in fit.params.iter().zip([0.2426, 4.4135, 0.7929, 2.4258]) {
        close(*got, want, 5e-4);
    }
    assert!((fit.log_likelihood - -9582.43).abs() < 0.01, "{fit:?}");
    // lifetimes' standard errors (autograd Hessian, delta method).
    for (got, want) in fit
        .std_errors
        .iter()
        .zip([0.012557, 0.378221, 0.185719, 0.705345])
    {
        close(*got, want, 0.01);
    }
    assert_eq!(fit.customers, 2357.0);
    assert!(fit.starts_at_best >= 2, "{fit:?}");
}

#[test]
fn bgnbd_predictions_reproduce_the_paper() {
    let fitted = fit_transactions(ModelKind::BgNbd, &rows(&cdnow_summary()), 0.0).unwrap();
    let m = model(ModelKind::BgNbd, fitted.params.clone().try_into().unwrap());
    let c1516 = Summary::new(26, 30.85714, 31.0);
    close(m.expected_purchases(&c1516, 52.0).unwrap(), 25.76, 1e-3);
    close(m.probability_alive(&c1516).unwrap(), 0.9689, 1e-4);
    close(m.expected_purchases_new(52.0).unwrap(), 1.444, 1e-3);
    // Customer 1 of the summary, lifetimes' test (Hardie's spreadsheet).
    close(
        m.expected_purchases(&Summary::new(2, 30.43, 38.86), 39.0)
            .unwrap(),
        1.226,
        1e-3,
    );

    let btyd = model(ModelKind::BgNbd, BTYD_BG);
    close(
        btyd.expected_purchases(&c1516, 52.0).unwrap(),
        25.75659,
        2e-5,
    );
    close(btyd.probability_alive(&c1516).unwrap(), 0.9688523, 2e-6);
    close(btyd.expected_purchases_new(52.0).unwrap(), 1.444004, 2e-5);
    // BTYD's "increasing frequency paradox": more purchases, same recency, lower expectation.
    for (x, want) in [
        (10, 0.3474606),
        (15, 0.04283391),
        (20, 0.004158973),
        (25, 0.0003583685),
    ] {
        close(
            btyd.expected_purchases(&Summary::new(x, 20.0, 39.0), 52.0)
                .unwrap(),
            want,
            1e-5,
        );
    }

    // Hardie's spreadsheet (lifetimes' test), computed at the maximum-likelihood parameters.
    let times = [0.1429, 1.0, 3.0, 31.8571, 32.0, 78.0];
    let want = [0.0078, 0.0532, 0.1506, 1.0405, 1.0437, 1.8576];
    for (t, w) in times.into_iter().zip(want) {
        assert!(
            (btyd.expected_purchases_new(t).unwrap() - w).abs() < 4e-4,
            "t={t}"
        );
    }

    let paper = model(ModelKind::BgNbd, PAPER_BG);
    let new = Summary::new_customer();
    close(
        paper.probability_of_purchases(&new, 10, 2.0).unwrap(),
        1.07869e-07,
        1e-4,
    );
    close(
        paper.probability_of_purchases(&new, 0, 39.0).unwrap(),
        0.5737864,
        1e-6,
    );
    let pmf30 = [
        0.0019995214,
        0.0015170236,
        0.0011633150,
        0.0009003148,
        0.0007023638,
        0.0005517902,
        0.0004361913,
        0.0003467171,
        0.0002769613,
        0.0002222260,
    ];
    for (n, want) in (11..=20).zip(pmf30) {
        close(
            paper.probability_of_purchases(&new, n, 30.0).unwrap(),
            want,
            1e-6,
        );
    }
}

#[test]
fn conditional_purchase_distribution_is_proper_and_its_mean_is_the_expectation() {
    for (kind, params) in [
        (ModelKind::BgNbd, PAPER_BG),
        (ModelKind::MbgNbd, PAPER_BG),
        (ModelKind::ParetoNbd, BTYD_PNBD),
        (ModelKind::ParetoNbd, [0.55, 10.6, 1.0, 11.7]),
    ] {
        let m = model(kind, params);
        for row in [
            Summary::new(0, 0.0, 20.0),
            Summary::new(2, 30.43, 38.86),
            Summary::new(26, 30.86, 31.0),
        ] {
            let t = 52.0;
            let probabilities: Vec<f64> = (0..400)
                .map(|n| m.probability_of_purchases(&row, n, t).unwrap())
                .collect();
            let total: f64 = probabilities.iter().sum();
            let mean: f64 = probabilities
                .iter()
                .enumerate()
                .map(|(n, p)| n as f64 * p)
                .sum();
            assert!((total - 1.0).abs() < 1e-9, "{kind:?} {row:?} total {total}");
            close(mean, m.expected_purchases(&row, t).unwrap(), 1e-7);
        }
    }
}

#[test]
fn holdout_reproduces_the_published_totals_from_the_raw_transactions() {
    // CDNOW_sample.txt: master id, sample id, date, cds, dollars.
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../demo/cdnow/CDNOW_sample.txt"
    );
    let text = std::fs::read_to_string(path).unwrap();
    let day = |s: &str| {
        let d = chrono::NaiveDate::parse_from_str(s, "%Y%m%d").unwrap();
        crate::calendar::Day::from_naive(d).0
    };
    let mut by_customer: std::collections::BTreeMap<u32, Vec<(i32, f64)>> = Default::default();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        by_customer
            .entry(f[1].parse().unwrap())
            .or_default()
            .push((day(f[2]), f[4].parse().unwrap()));
    }
    let (cal_end, end) = (day("19970930"), day("19980630"));
    let published = cdnow_summary();
    let mut data = Vec::new();
    for c in &published {
        let s = summarize(by_customer.get_mut(&c.id).unwrap(), cal_end, Some(end), 7.0).unwrap();
        // The published file rounds to 2 decimals.
        assert_eq!(s.frequency as f64, c.row.frequency, "customer {}", c.id);
        assert!(
            (s.recency - c.row.recency).abs() <= 0.005 + 1e-9,
            "customer {}",
            c.id
        );
        assert!(
            (s.age - c.row.age).abs() <= 0.005 + 1e-9,
            "customer {}",
            c.id
        );
        assert!((s.monetary_value.unwrap_or(0.0) - c.zbar).abs() <= 0.005 + 1e-9);
        data.push((s.model_row(), s.holdout_frequency.unwrap()));
    }
    let fitted = fit_transactions(ModelKind::BgNbd, &rows(&published), 0.0).unwrap();
    let m = model(ModelKind::BgNbd, fitted.params.try_into().unwrap());
    let (bins, errors) = holdout(&m, &data, 39.0, 7).unwrap();
    assert_eq!(errors.actual, 1882.0);
    close(errors.predicted, 1653.42, 1e-3);
    // BTYD's table: customers, actual and expected means per calibration frequency 0..6, 7+.
    let counts = [1411, 439, 214, 100, 62, 38, 29, 64];
    let actual = [0.237, 0.697, 1.393, 1.560, 2.532, 2.947, 3.862, 6.359];
    let expected = [0.225, 0.523, 1.044, 1.520, 2.164, 2.654, 3.504, 6.157];
    for (i, bin) in bins.iter().enumerate() {
        assert_eq!(bin.customers, counts[i]);
        let n = bin.customers as f64;
        assert!((bin.actual / n - actual[i]).abs() < 6e-4, "bin {i}");
        assert!(
            (bin.predicted / n - expected[i]).abs() < 2e-3,
            "bin {i}: {}",
            bin.predicted / n
        );
    }
}

#[test]
fn mbgnbd_fit_reproduces_btydplus() {
    let fit = fit_transactions(ModelKind::MbgNbd, &rows(&cdnow_summary()), 0.0).unwrap();
    for (got, want) in fit.params.iter().zip([0.525, 6.183, 0.891, 1.614]) {
        close(*got, want, 1e-3);
    }
    assert!((fit.log_likelihood - -9582.133).abs() < 0.01, "{fit:?}");
    // Unlike BG/NBD, a one-time buyer can be gone.
    let m = model(ModelKind::MbgNbd, fit.params.try_into().unwrap());
    assert!(m.probability_alive(&Summary::new(0, 0.0, 39.0)).unwrap() < 1.0);
}

#[test]
fn pareto_nbd_fit_and_predictions_reproduce_btyd() {
    let fit = fit_transactions(ModelKind::ParetoNbd, &rows(&cdnow_summary()), 0.0).unwrap();
    for (got, want) in fit.params.iter().zip([0.55328, 10.5776, 0.60621, 11.6679]) {
        close(*got, want, 1e-3);
    }
    assert!((fit.log_likelihood - -9594.97).abs() < 0.01, "{fit:?}");
    let fitted = model(ModelKind::ParetoNbd, fit.params.try_into().unwrap());
    // lifetimes' test: E[X(t)] for t = 0..9 weeks, from BTYD's manual (lifetimes allows 0.01;
    // the manual's parameters are not printed).
    let want = [
        0.0, 0.05077821, 0.09916088, 0.14542507, 0.18979930, 0.23247466, 0.27361274, 0.31335159,
        0.35181024, 0.38909211,
    ];
    for (t, w) in want.into_iter().enumerate() {
        assert!((fitted.expected_purchases_new(t as f64).unwrap() - w).abs() < 5e-3);
    }

    close(fitted.expected_purchases_new(52.0).unwrap(), 1.473434, 1e-4);

    let btyd = model(ModelKind::ParetoNbd, BTYD_PNBD);
    let c1516 = Summary::new(26, 30.85714, 31.0);
    // The vignette prints its parameters to 4 digits, which moves this value by 1e-4.
    close(
        btyd.expected_purchases(&c1516, 52.0).unwrap(),
        25.45647,
        2e-4,
    );
    close(btyd.probability_alive(&c1516).unwrap(), 0.997874, 1e-5);
    for (x, want) in [
        (10, 0.7062289),
        (15, 0.1442396),
        (20, 0.02250658),
        (25, 0.00309267),
    ] {
        close(
            btyd.expected_purchases(&Summary::new(x, 20.0, 39.0), 52.0)
                .unwrap(),
            want,
            1e-3,
        );
    }
}

#[test]
fn gamma_gamma_fit_reproduces_the_paper() {
    let customers = cdnow_summary();
    let spend: Vec<SpendRow> = customers
        .iter()
        .filter(|c| c.row.frequency > 0.0)
        .map(|c| SpendRow {
            frequency: c.row.frequency,
            mean_spend: c.zbar,
            weight: 1.0,
        })
        .collect();
    assert_eq!(spend.len(), 946);
    let fit = fit_spend(&spend, 0.0).unwrap();
    for (got, want) in fit.params.iter().zip([6.248802, 3.744588, 15.447748]) {
        close(*got, want, 1e-4);
    }
    assert!((fit.log_likelihood - -4055.923).abs() < 0.01, "{fit:?}");
    for (got, want) in fit.std_errors.iter().zip([1.1897, 0.2902, 4.1600]) {
        close(*got, want, 0.01);
    }
    let m = SpendModel {
        params: fit.params.clone().try_into().unwrap(),
    };
    let first_ten = [
        24.65, 18.91, 35.17, 35.17, 35.17, 71.46, 18.91, 35.17, 27.28, 35.17,
    ];
    // The sheet's values are cut, not rounded, to cents (customer 1: 24.658...).
    for (c, want) in customers.iter().zip(first_ten) {
        let got = m.expected_spend(c.row.frequency, c.zbar).unwrap();
        assert!(
            (0.0..0.01).contains(&(got - want)),
            "customer {}: {got}",
            c.id
        );
    }
    // The Quickstart's mean over all customers; one-time buyers get the population mean.
    let mean: f64 = customers
        .iter()
        .map(|c| m.expected_spend(c.row.frequency, c.zbar).unwrap())
        .sum::<f64>()
        / customers.len() as f64;
    close(mean, 35.2529588256, 1e-5);
}

#[test]
fn gamma_gamma_without_spend_heterogeneity_is_an_error_not_a_model() {
    // Every customer spends the same: the likelihood rises toward p → ∞, v → 0 without end.
    let spend: Vec<SpendRow> = (1..=50)
        .map(|i| SpendRow {
            frequency: f64::from(i % 7 + 1),
            mean_spend: 20.0,
            weight: 1.0,
        })
        .collect();
    let err = fit_spend(&spend, 0.0).unwrap_err();
    assert!(
        matches!(
            err,
            ModelError::Degenerate { .. } | ModelError::NotConverged { .. }
        ),
        "{err:?}"
    );
    assert!(matches!(
        SpendModel {
            params: [6.0, 0.9, 15.0]
        }
        .expected_spend(2.0, 10.0),
        Err(ModelError::SpendUndefined { .. })
    ));
}

#[test]
fn penalizer_shrinks_the_parameters() {
    let data = rows(&cdnow_summary());
    let free = fit_transactions(ModelKind::BgNbd, &data, 0.0).unwrap();
    let penalized = fit_transactions(ModelKind::BgNbd, &data, 0.1).unwrap();
    let norm = |p: &[f64]| p.iter().map(|v| v * v).sum::<f64>();
    assert!(norm(&penalized.params) < norm(&free.params));
    assert!(penalized.log_likelihood < free.log_likelihood);
}

#[test]
fn extreme_customers_give_finite_answers() {
    let m = model(ModelKind::BgNbd, PAPER_BG);
    // lifetimes: P(alive) for x = 1000, t_x = 10, T = 100 is 0, without overflow.
    let gone = Summary::new(1000, 10.0, 100.0);
    assert_eq!(m.probability_alive(&gone).unwrap(), 0.0);
    assert_eq!(m.expected_purchases(&gone, 52.0).unwrap(), 0.0);
    // A very active customer: hundreds of purchases, the last one at T.
    for kind in [ModelKind::BgNbd, ModelKind::MbgNbd] {
        let m = model(kind, PAPER_BG);
        let busy = Summary::new(500, 100.0, 100.0);
        let e = m.expected_purchases(&busy, 52.0).unwrap();
        // About 5 purchases a week for a year, minus the chance of dropping out.
        assert!(e.is_finite() && e > 100.0 && e < 300.0, "{kind:?} {e}");
        let long = m.expected_purchases(&busy, 5200.0).unwrap();
        assert!(long.is_finite() && long > e, "{kind:?} {long}");
    }
    let p = model(ModelKind::ParetoNbd, BTYD_PNBD);
    for x in [300, 1000, 5000] {
        let row = Summary::new(x, 99.0, 100.0);
        let e = p.expected_purchases(&row, 52.0).unwrap();
        assert!(e.is_finite() && e > 0.0, "{x}: {e}");
        assert!(p.probability_alive(&Summary::new(x, 10.0, 100.0)).unwrap() < 1e-6);
    }
}

#[test]
fn singular_parameters_are_limits_not_nans() {
    // a = 1 (BG/NBD, MBG/NBD) and s = 1 (Pareto/NBD) divide 0 by 0 in the textbook formulas.
    let row = Summary::new(3, 20.0, 39.0);
    for kind in [ModelKind::BgNbd, ModelKind::MbgNbd] {
        let at = |a: f64| model(kind, [0.24, 4.4, a, 2.4]);
        let exact = at(1.0).expected_purchases(&row, 52.0).unwrap();
        let near = at(1.0 + 1e-3).expected_purchases(&row, 52.0).unwrap();
        assert!(
            exact.is_finite() && (exact - near).abs() < 1e-3 * near,
            "{kind:?}"
        );
        let new = at(1.0).expected_purchases_new(52.0).unwrap();
        close(
            new,
            at(1.0 - 1e-3).expected_purchases_new(52.0).unwrap(),
            1e-3,
        );
    }
    let at = |s: f64| model(ModelKind::ParetoNbd, [0.55, 10.6, s, 11.7]);
    let exact = at(1.0).expected_purchases(&row, 52.0).unwrap();
    close(
        exact,
        at(1.0 + 1e-6).expected_purchases(&row, 52.0).unwrap(),
        1e-5,
    );
    close(
        at(1.0).expected_purchases_new(52.0).unwrap(),
        at(1.0 - 1e-6).expected_purchases_new(52.0).unwrap(),
        1e-5,
    );
}

#[test]
fn clv_discounts_monthly_increments() {
    let m = model(ModelKind::BgNbd, PAPER_BG);
    let row = Summary::new(2, 30.43, 38.86);
    // No discount: the increments telescope to spend × E[Y(12 months)].
    let undiscounted = customer_value(&m, &row, 20.0, 12, 0.0).unwrap();
    let horizon = 12.0 * TimeUnit::Week.per_month();
    close(
        undiscounted,
        20.0 * m.expected_purchases(&row, horizon).unwrap(),
        1e-12,
    );
    let discounted = customer_value(&m, &row, 20.0, 12, 0.01).unwrap();
    assert!(discounted < undiscounted && discounted > undiscounted / 1.01f64.powi(12));
    // The same model in days gives the same value: the month is fixed in days.
    let daily = TransactionModel::new(
        ModelKind::BgNbd,
        &[PAPER_BG[0], PAPER_BG[1] * 7.0, PAPER_BG[2], PAPER_BG[3]],
        TimeUnit::Day,
    )
    .unwrap();
    let row_days = Summary::new(2, 30.43 * 7.0, 38.86 * 7.0);
    close(
        customer_value(&daily, &row_days, 20.0, 12, 0.01).unwrap(),
        discounted,
        1e-9,
    );
}

#[test]
fn bad_inputs_are_errors() {
    let bad = [
        Summary::new(2, 40.0, 39.0),
        Summary::new(0, 3.0, 39.0),
        Summary::new(2, 0.0, 39.0),
        Summary::new(1, -1.0, 39.0),
    ];
    for row in bad {
        assert!(fit_transactions(ModelKind::BgNbd, &[row], 0.0).is_err());
        assert!(
            model(ModelKind::BgNbd, PAPER_BG)
                .probability_alive(&row)
                .is_err()
        );
    }
    assert_eq!(
        fit_transactions(ModelKind::ParetoNbd, &[], 0.0).unwrap_err(),
        ModelError::NoCustomers
    );
    assert!(fit_transactions(ModelKind::BgNbd, &[Summary::new(0, 0.0, 1.0)], -1.0).is_err());
    assert!(
        TransactionModel::new(ModelKind::BgNbd, &[0.2, -1.0, 0.8, 2.4], TimeUnit::Day).is_err()
    );
    assert!(TransactionModel::new(ModelKind::GammaGamma, &[1.0, 1.0, 1.0], TimeUnit::Day).is_err());
    assert!(
        model(ModelKind::BgNbd, PAPER_BG)
            .expected_purchases_new(f64::NAN)
            .is_err()
    );
    assert_eq!(
        fit_spend(&[], 0.0).unwrap_err(),
        ModelError::NoRepeatCustomers
    );
}

#[test]
fn likelihood_gradients_match_finite_differences() {
    let rows = vec![
        Summary::new(0, 0.0, 30.0),
        Summary::new(2, 30.43, 38.86),
        Summary::new(26, 30.86, 31.0),
        Summary::new(300, 99.0, 100.0),
        Summary {
            weight: 3.0,
            ..Summary::new(1, 5.0, 20.0)
        },
    ];
    let check = |name: &str, p: &[f64], f: &dyn Fn(&[f64]) -> f64, g: &[f64]| {
        for i in 0..p.len() {
            let h = 1e-6 * p[i];
            let mut up = p.to_vec();
            let mut down = p.to_vec();
            up[i] += h;
            down[i] -= h;
            let fd = (f(&up) - f(&down)) / (2.0 * h);
            assert!(
                (g[i] - fd).abs() <= 1e-5 * fd.abs().max(1.0),
                "{name} {p:?} d{i}: {} vs {fd}",
                g[i]
            );
        }
    };
    for modified in [false, true] {
        let m = super::bgnbd::BetaGeometric { modified };
        for p in [[0.24, 4.4, 0.79, 2.4], [1.5, 0.3, 3.0, 0.5]] {
            let (v, g) = m.ln_likelihood_grad(&p, &rows);
            assert!((v - m.ln_likelihood(&p, &rows)).abs() < 1e-9 * v.abs());
            check("bg", &p, &|q| m.ln_likelihood(q, &rows), &g);
        }
    }
    // Both branches of Pareto/NBD: alpha >= beta and alpha < beta.
    for p in [
        [0.55, 12.6, 0.6, 10.7],
        [0.55, 10.6, 0.6, 11.7],
        [2.0, 1.0, 1.3, 30.0],
    ] {
        let (v, g) = pareto_nbd::ln_likelihood_grad(&p, &rows).unwrap();
        let value = |q: &[f64]| pareto_nbd::ln_likelihood(q, &rows).unwrap();
        assert!((v - value(&p)).abs() < 1e-9 * v.abs());
        check("pnbd", &p, &value, &g);
    }
    let spend = [
        SpendRow {
            frequency: 1.0,
            mean_spend: 12.0,
            weight: 1.0,
        },
        SpendRow {
            frequency: 7.0,
            mean_spend: 40.5,
            weight: 2.0,
        },
    ];
    for p in [[6.2, 3.7, 15.4], [0.8, 1.2, 0.3]] {
        let (v, g) = gamma_gamma::ln_likelihood_grad(&p, &gamma_gamma::prepare(&spend));
        assert!((v - gamma_gamma::ln_likelihood(&p, &spend)).abs() < 1e-9 * v.abs());
        check("gg", &p, &|q| gamma_gamma::ln_likelihood(q, &spend), &g);
    }
}

/// Draws BG/NBD customers with continuous purchase times, so nearly every row is distinct.
fn simulate_bgnbd(params: [f64; 4], customers: usize, seed: u64) -> Vec<Summary> {
    use rand_xoshiro::Xoshiro256PlusPlus;
    use rand_xoshiro::rand_core::{RngCore, SeedableRng};
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut uniform = move || (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 + 1e-300;
    // Marsaglia-Tsang, with the shape < 1 boost.
    fn gamma(shape: f64, u: &mut dyn FnMut() -> f64) -> f64 {
        if shape < 1.0 {
            return gamma(shape + 1.0, u) * u().powf(1.0 / shape);
        }
        let d = shape - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        loop {
            let n = (-2.0 * u().ln()).sqrt() * (2.0 * std::f64::consts::PI * u()).cos();
            let v = (1.0 + c * n).powi(3);
            if v > 0.0 && u().ln() < 0.5 * n * n + d - d * v + d * v.ln() {
                return d * v;
            }
        }
    }
    let [r, alpha, a, b] = params;
    (0..customers)
        .map(|_| {
            let lambda = gamma(r, &mut uniform) / alpha;
            let ga = gamma(a, &mut uniform);
            let p = ga / (ga + gamma(b, &mut uniform));
            let age = 10.0 + 90.0 * uniform();
            let (mut t, mut x, mut last) = (0.0, 0u32, 0.0);
            loop {
                t += -uniform().ln() / lambda;
                if t > age {
                    break;
                }
                x += 1;
                last = t;
                if uniform() < p {
                    break;
                }
            }
            Summary::new(x, last, age)
        })
        .collect()
}

#[test]
fn large_fits_explore_on_a_sample_and_land_on_the_full_data_optimum() {
    let truth = [0.243, 4.414, 0.793, 2.426];
    let data = simulate_bgnbd(truth, 60_000, 7);
    assert!(super::fit::distinct_rows(&data).len() > 40_000);
    let sampled = fit_transactions(ModelKind::BgNbd, &data, 0.0).unwrap();
    let full = super::fit::fit_transactions_with(
        ModelKind::BgNbd,
        &data,
        0.0,
        usize::MAX,
        &super::optimize::Budget::unlimited(),
    )
    .unwrap();
    for (s, f) in sampled.params.iter().zip(&full.params) {
        close(*s, *f, 1e-5);
    }
    assert!(
        (sampled.log_likelihood - full.log_likelihood).abs() < 1e-6 * full.log_likelihood.abs()
    );
    // And the simulation's parameters come back, within a few standard errors.
    for ((p, se), t) in sampled.params.iter().zip(&sampled.std_errors).zip(truth) {
        assert!(((p - t) / se).abs() < 4.0, "{p} vs {t} (se {se})");
    }
}

#[test]
fn many_horizons_equal_one_at_a_time() {
    let ts: Vec<f64> = (1..=12)
        .map(|i| f64::from(i) * TimeUnit::Week.per_month())
        .collect();
    for (kind, params) in [
        (ModelKind::BgNbd, PAPER_BG),
        (ModelKind::MbgNbd, PAPER_BG),
        (ModelKind::BgNbd, [0.24, 4.4, 1.0, 2.4]),
        (ModelKind::ParetoNbd, BTYD_PNBD),
    ] {
        let m = model(kind, params);
        for row in [
            Summary::new(0, 0.0, 39.0),
            Summary::new(2, 30.43, 38.86),
            Summary::new(500, 100.0, 100.0),
        ] {
            let many = m.expected_purchases_many(&row, &ts).unwrap();
            for (t, got) in ts.iter().zip(many) {
                close(got, m.expected_purchases(&row, *t).unwrap(), 1e-10);
            }
        }
    }
}

#[test]
fn pareto_nbd_purchase_distribution_equals_lifetimes() {
    // lifetimes 0.11.3, ParetoNBDFitter.conditional_probability_of_n_purchases_up_to_time(n, 52,
    // x, t_x, T) at BTYD's parameters, for n = 0, 1, 2, 5, 20.
    let m = model(ModelKind::ParetoNbd, BTYD_PNBD);
    let cases = [
        (
            Summary::new(26, 30.85714, 31.0),
            [
                0.023865194864004256,
                0.020526110307381766,
                0.019419916053187297,
                0.016624351589189217,
                0.017936712778208314,
            ],
        ),
        (
            Summary::new(2, 30.43, 38.86),
            [
                0.3685265247124102,
                0.1920416104359078,
                0.1461647460431178,
                0.04583096459429957,
                1.2254789106635099e-05,
            ],
        ),
        (
            Summary::new(0, 0.0, 20.0),
            [
                0.8480732940758313,
                0.07935046581352931,
                0.03418438009177625,
                0.00509554862241487,
                2.4219741068849217e-06,
            ],
        ),
    ];
    for (row, want) in cases {
        for (n, w) in [0, 1, 2, 5, 20].into_iter().zip(want) {
            close(m.probability_of_purchases(&row, n, 52.0).unwrap(), w, 1e-6);
        }
    }
}

/// Customers who buy steadily until the end and never drop out, as the benchmark's generated
/// shop does: the likelihood has no maximum (the dropout rate runs toward 0), and the fit must
/// say so within its budget rather than run for ever.
fn never_dropping_out(customers: u32) -> Vec<Summary> {
    (0..customers)
        .map(|i| {
            let age = 20.0 + f64::from(i % 80);
            let rate = 0.2 + f64::from(i % 7) * 0.1;
            let frequency = (age * rate).floor().max(1.0) as u32;
            // The last purchase within a week of the end.
            Summary::new(frequency, age - f64::from(i % 3) * 0.3, age)
        })
        .collect()
}

#[test]
fn a_fit_that_cannot_converge_ends_within_its_budget() {
    let data = never_dropping_out(5_000);
    for kind in [ModelKind::ParetoNbd, ModelKind::BgNbd] {
        // A budget of ten evaluations is spent long before any fit converges.
        let budget = super::optimize::Budget::new(None, 10);
        match super::fit::fit_transactions_within(kind, &data, 0.0, &budget) {
            Err(ModelError::OverBudget { evaluations, .. }) => assert_eq!(evaluations, 10),
            other => panic!("{kind:?}: {other:?}"),
        }
        // No time at all: the fit ends at once, naming its limit.
        let budget = super::optimize::Budget::new(Some(std::time::Duration::ZERO), 1_000_000);
        let started = std::time::Instant::now();
        let e = super::fit::fit_transactions_within(kind, &data, 0.0, &budget).unwrap_err();
        assert!(started.elapsed().as_secs_f64() < 1.0);
        assert!(
            e.to_string().contains("within its budget (0 s, at most"),
            "{e}"
        );
        // With the default evaluations, the fit ends with an error, never a wrong model.
        let e = fit_transactions(kind, &data, 0.0).unwrap_err();
        assert!(
            matches!(
                e,
                ModelError::OverBudget { .. }
                    | ModelError::Degenerate { .. }
                    | ModelError::NotConverged { .. }
                    | ModelError::NotAMaximum
            ),
            "{kind:?}: {e:?}"
        );
    }
    // A fit that converges stays well inside the default budget.
    let budget = super::optimize::Budget::new(None, super::optimize::MAX_EVALUATIONS);
    fit_transactions_within(ModelKind::ParetoNbd, &rows(&cdnow_summary()), 0.0, &budget).unwrap();
    assert!(budget.evaluations() < 2_000, "{}", budget.evaluations());
}
