use rand_xoshiro::Xoshiro256PlusPlus;
use rand_xoshiro::rand_core::{RngCore, SeedableRng};

use super::*;

fn uniform(rng: &mut Xoshiro256PlusPlus) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

fn normal(rng: &mut Xoshiro256PlusPlus) -> f64 {
    let (u, v) = (uniform(rng).max(1e-300), uniform(rng));
    (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
}

/// A shop with a known elasticity of −1.5 whose prices are marked up in the peak weeks, when
/// demand is high anyway: 30 products over 104 weeks, some weeks without sales (`drop` of them).
fn synthetic(seed: u64, drop: f64) -> Vec<Cell> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut cells = Vec::new();
    for p in 0..30i64 {
        let base = 2.0 * uniform(&mut rng);
        let appeal = 3.0 + uniform(&mut rng);
        for t in 0..104i64 {
            let peak = if t % 52 >= 44 { 1.0 } else { 0.0 };
            let ln_p = base + 0.3 * peak + 0.1 * normal(&mut rng);
            let ln_q = appeal - 1.5 * ln_p
                + 1.2 * peak
                + 0.3 * (t as f64 / 8.0).sin()
                + 0.1 * normal(&mut rng);
            if uniform(&mut rng) < drop {
                continue;
            }
            cells.push(Cell {
                product: p,
                period: t,
                units: ln_q.exp(),
                price: ln_p.exp(),
                orders: 3,
            });
        }
    }
    cells
}

const LOOSE: Thresholds = Thresholds {
    min_periods: 12,
    min_price_levels: 2,
    min_log_price_sd: 0.05,
    min_orders: 30,
};

#[test]
fn period_effects_recover_the_elasticity_that_peak_pricing_hides() {
    let cells = synthetic(7, 0.0);
    let refs: Vec<&Cell> = cells.iter().collect();
    let e = pooled(&refs, &LOOSE);
    let beta = e.elasticity.unwrap();
    assert!((beta + 1.5).abs() < 0.03, "{beta}");
    assert!(
        e.ci_low.unwrap() < -1.5 && e.ci_high.unwrap() > -1.5,
        "{e:?}"
    );
    assert_eq!(e.reliability, Reliability::Ok);
    assert_eq!((e.n_products, e.n_periods, e.n_cells), (30, 104, 3120));
    // Product effects alone take the peak weeks' demand for a price response: the estimate is
    // far from −1.5, here even positive, the platform's failure.
    let mut by_product: FxHashMap<i64, (f64, f64, f64)> = FxHashMap::default();
    for c in &cells {
        let e = by_product.entry(c.product).or_default();
        e.0 += c.price.ln();
        e.1 += c.units.ln();
        e.2 += 1.0;
    }
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for c in &cells {
        let (sx, sy, n) = by_product[&c.product];
        let (x, y) = (c.price.ln() - sx / n, c.units.ln() - sy / n);
        sxy += x * y;
        sxx += x * x;
    }
    assert!(sxy / sxx > 0.0, "product effects only: {}", sxy / sxx);
}

/// OLS with a dummy for every product and period but the first of each, solved from the normal
/// equations with faer: independent of the alternating projections; and the clustered variance
/// from the full sandwich.
fn dummy_ols(cells: &[Cell]) -> (f64, f64) {
    let mut products: Vec<i64> = cells.iter().map(|c| c.product).collect();
    products.sort_unstable();
    products.dedup();
    let mut periods: Vec<i64> = cells.iter().map(|c| c.period).collect();
    periods.sort_unstable();
    periods.dedup();
    let k = 2 + (products.len() - 1) + (periods.len() - 1);
    let n = cells.len();
    let row = |c: &Cell| -> Vec<f64> {
        let mut r = vec![0.0; k];
        r[0] = c.price.ln();
        r[1] = 1.0;
        let p = products.binary_search(&c.product).unwrap();
        if p > 0 {
            r[1 + p] = 1.0;
        }
        let t = periods.binary_search(&c.period).unwrap();
        if t > 0 {
            r[1 + products.len() - 1 + t] = 1.0;
        }
        r
    };
    let xs: Vec<Vec<f64>> = cells.iter().map(row).collect();
    let xtx = faer::Mat::<f64>::from_fn(k, k, |i, j| xs.iter().map(|r| r[i] * r[j]).sum());
    let xty = faer::Mat::<f64>::from_fn(k, 1, |i, _| {
        xs.iter().zip(cells).map(|(r, c)| r[i] * c.units.ln()).sum()
    });
    use faer::linalg::solvers::DenseSolveCore;
    let inv = xtx.llt(faer::Side::Lower).unwrap().inverse();
    let b = &inv * &xty;
    let resid: Vec<f64> = xs
        .iter()
        .zip(cells)
        .map(|(r, c)| c.units.ln() - (0..k).map(|i| r[i] * b[(i, 0)]).sum::<f64>())
        .collect();
    // Meat: Σ_g (X_gᵀ u_g)(X_gᵀ u_g)ᵀ, only its first row and column are needed for β's variance
    // through inv's first row.
    let mut scores: FxHashMap<i64, Vec<f64>> = FxHashMap::default();
    for ((r, c), u) in xs.iter().zip(cells).zip(&resid) {
        let s = scores.entry(c.product).or_insert_with(|| vec![0.0; k]);
        for i in 0..k {
            s[i] += r[i] * u;
        }
    }
    let first: Vec<f64> = (0..k).map(|j| inv[(0, j)]).collect();
    let meat: f64 = scores
        .values()
        .map(|s| {
            let v: f64 = first.iter().zip(s).map(|(a, b)| a * b).sum();
            v * v
        })
        .sum();
    let g = products.len() as f64;
    let factor = g / (g - 1.0) * (n as f64 - 1.0) / (n - k) as f64;
    (b[(0, 0)], (factor * meat).sqrt())
}

#[test]
fn equals_an_ols_with_dummies_on_an_unbalanced_panel() {
    for (seed, drop) in [(1, 0.0), (2, 0.3), (3, 0.6)] {
        let cells = synthetic(seed, drop);
        let refs: Vec<&Cell> = cells.iter().collect();
        let e = pooled(&refs, &LOOSE);
        let (beta, se) = dummy_ols(&cells);
        assert!(
            (e.elasticity.unwrap() - beta).abs() < 1e-6,
            "{seed}: {e:?} vs {beta}"
        );
        assert!(
            (e.std_error.unwrap() - se).abs() < 1e-6,
            "{seed}: {e:?} vs {se}"
        );
    }
}

#[test]
fn verdicts() {
    assert_eq!(verdict(-1.5, -1.8, -1.2), Reliability::Ok);
    assert_eq!(verdict(1.2, 0.4, 2.0), Reliability::ImplausiblePositive);
    assert_eq!(verdict(-0.5, -1.2, 0.2), Reliability::NotSignificant);
    assert_eq!(verdict(-2.0, -3.5, -0.5), Reliability::Imprecise);
    assert_eq!(verdict(-12.0, -13.0, -11.0), Reliability::Extreme);
    // Too little: few periods, or a price that never moves.
    let cells = synthetic(4, 0.0);
    let few: Vec<&Cell> = cells.iter().filter(|c| c.period < 8).collect();
    assert_eq!(
        pooled(&few, &LOOSE).reliability,
        Reliability::InsufficientData
    );
    let flat: Vec<Cell> = cells
        .iter()
        .map(|c| Cell {
            price: 2.5,
            ..c.clone()
        })
        .collect();
    let refs: Vec<&Cell> = flat.iter().collect();
    let e = pooled(&refs, &LOOSE);
    assert_eq!(e.reliability, Reliability::InsufficientPriceVariation);
    assert_eq!(e.elasticity, None);
}

#[test]
fn a_single_product_with_a_trend() {
    // ln Q = 5 − 2 ln P + 0.01 t exactly: the trend is absorbed, β is −2.
    let cells: Vec<Cell> = (0..40)
        .map(|t| {
            let ln_p = 1.0 + 0.2 * ((t * 7 % 5) as f64);
            Cell {
                product: 1,
                period: t,
                units: (5.0 - 2.0 * ln_p + 0.01 * t as f64).exp(),
                price: ln_p.exp(),
                orders: 2,
            }
        })
        .collect();
    let refs: Vec<&Cell> = cells.iter().collect();
    let e = single(&refs, &LOOSE);
    assert!((e.elasticity.unwrap() + 2.0).abs() < 1e-9, "{e:?}");
    assert_eq!(e.se_type, "HC1");
}

#[test]
fn the_panel_takes_transaction_prices() {
    let line = |day: i32, order: i64, quantity: f64, unit_price: f64| ItemLine {
        user: 1,
        day,
        order,
        product: 9,
        quantity,
        unit_price,
    };
    // Monday 2024-01-01 is day 8766. Small lines (at or below the median quantity 6) at 2.95
    // twice and 2.55 once in week 1: the base price is 2.95; the big trade line at 2.55 counts in
    // the units and the average price only.
    let monday = 8766;
    let lines = [
        line(monday, 1, 6.0, 2.95),
        line(monday + 1, 2, 4.0, 2.95),
        line(monday + 2, 3, 6.0, 2.55),
        line(monday + 3, 4, 32.0, 2.55),
        line(monday + 7, 5, 6.0, 2.75),
    ];
    let base = panel(&lines, Period::Week, PriceDefinition::Base);
    assert_eq!(base.len(), 2);
    assert_eq!(
        (base[0].units, base[0].price, base[0].orders),
        (48.0, 2.95, 4)
    );
    assert_eq!(base[1].price, 2.75);
    let avg = panel(&lines, Period::Week, PriceDefinition::Average);
    let expected = (6.0 * 2.95 + 4.0 * 2.95 + 6.0 * 2.55 + 32.0 * 2.55) / 48.0;
    assert!((avg[0].price - expected).abs() < 1e-12);
}

#[test]
fn scenarios_are_exact_in_the_log_log_model() {
    // β = −2, price −15%: units +38.4%, not +30%.
    let (dq, drev) = scenario(-2.0, -0.15);
    assert!((dq - (0.85f64.powf(-2.0) - 1.0)).abs() < 1e-15);
    assert!((dq - 0.384).abs() < 0.001);
    assert!((drev - (0.85f64.powf(-1.0) - 1.0)).abs() < 1e-15);
}
