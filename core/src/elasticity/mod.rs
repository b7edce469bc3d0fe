//! Price elasticity from transaction prices (what customers paid per unit), never list prices:
//! `products.md` section 3. The order lines become a panel of product × period cells (units sold,
//! the price buyers faced, orders: [`panel`]); the elasticity is β of
//! ln Q_it = β ln P_it + α_i + γ_t + ε_it, with product and period fixed effects (the period
//! effects absorb seasonality and shocks common to all products, which prices set in response
//! to demand would otherwise pass off as a price response), estimated within (Frisch-Waugh-
//! Lovell: both sides residualised on the fixed effects by alternating projections), standard
//! errors clustered by product ([`pooled`]). A single product's own elasticity cannot separate
//! its price from the period effects: [`single`] fits ln Q on ln P with an intercept and a linear
//! trend, heteroskedasticity-robust (HC1) standard errors, and is flagged as such. Every estimate
//! carries a reliability verdict; only `ok` is usable, and a positive elasticity never is.

use rustc_hash::FxHashMap;
use statrs::distribution::{ContinuousCDF, StudentsT};

use crate::cohorts::Period;
use crate::items::ItemLine;

/// How a cell's price is defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PriceDefinition {
    /// The commonest unit price among the period's small-quantity lines (at or below the
    /// product's median line quantity): the price a buyer faced, without quantity discounts.
    Base,
    /// Revenue / units: mixes quantity discounts and channels into "price".
    Average,
}

impl PriceDefinition {
    pub fn parse(name: &str) -> Option<PriceDefinition> {
        match name {
            "base" => Some(PriceDefinition::Base),
            "average" => Some(PriceDefinition::Average),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            PriceDefinition::Base => "base",
            PriceDefinition::Average => "average",
        }
    }
}

/// One product in one period with sales.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    pub product: i64,
    pub period: i64,
    pub units: f64,
    pub price: f64,
    pub orders: u64,
}

/// The product × period cells of `lines` (periods with sales only: ln 0 is undefined, so a
/// period without sales is not a cell, as the results say).
pub fn panel(lines: &[ItemLine], period: Period, price: PriceDefinition) -> Vec<Cell> {
    let mut by_product: FxHashMap<i64, Vec<&ItemLine>> = FxHashMap::default();
    for l in lines {
        by_product.entry(l.product).or_default().push(l);
    }
    let mut products: Vec<i64> = by_product.keys().copied().collect();
    products.sort_unstable();
    let mut out = Vec::new();
    for p in products {
        let lines = &by_product[&p];
        let mut quantities: Vec<f64> = lines.iter().map(|l| l.quantity).collect();
        quantities.sort_unstable_by(f64::total_cmp);
        let median = {
            let n = quantities.len();
            if n % 2 == 1 {
                quantities[n / 2]
            } else {
                (quantities[n / 2 - 1] + quantities[n / 2]) / 2.0
            }
        };
        let mut by_period: FxHashMap<i64, Vec<&ItemLine>> = FxHashMap::default();
        for l in lines {
            by_period
                .entry(period.index(crate::calendar::Day(l.day)))
                .or_default()
                .push(l);
        }
        let mut periods: Vec<i64> = by_period.keys().copied().collect();
        periods.sort_unstable();
        for t in periods {
            let lines = &by_period[&t];
            let units: f64 = lines.iter().map(|l| l.quantity).sum();
            let mut orders: Vec<i64> = lines.iter().map(|l| l.order).collect();
            orders.sort_unstable();
            orders.dedup();
            let cell_price = match price {
                PriceDefinition::Average => {
                    lines.iter().map(|l| l.quantity * l.unit_price).sum::<f64>() / units
                }
                PriceDefinition::Base => {
                    let small: Vec<f64> = lines
                        .iter()
                        .filter(|l| l.quantity <= median)
                        .map(|l| l.unit_price)
                        .collect();
                    let prices = if small.is_empty() {
                        lines.iter().map(|l| l.unit_price).collect()
                    } else {
                        small
                    };
                    mode(&prices)
                }
            };
            out.push(Cell {
                product: p,
                period: t,
                units,
                price: cell_price,
                orders: orders.len() as u64,
            });
        }
    }
    out
}

/// The commonest value (to a tenth of a cent), ties to the lower one.
fn mode(values: &[f64]) -> f64 {
    let mut keys: Vec<i64> = values.iter().map(|v| (v * 1000.0).round() as i64).collect();
    keys.sort_unstable();
    let (mut best, mut best_n, mut i) = (keys[0], 0, 0);
    while i < keys.len() {
        let j = keys[i..].iter().take_while(|k| **k == keys[i]).count();
        if j > best_n {
            best = keys[i];
            best_n = j;
        }
        i += j;
    }
    best as f64 / 1000.0
}

/// The thresholds below which an estimate is not made.
#[derive(Debug, Clone, Copy)]
pub struct Thresholds {
    pub min_periods: usize,
    pub min_price_levels: usize,
    pub min_log_price_sd: f64,
    pub min_orders: u64,
}

/// Whether an estimate may be used, and if not why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reliability {
    Ok,
    InsufficientData,
    InsufficientPriceVariation,
    NotSignificant,
    ImplausiblePositive,
    Imprecise,
    Extreme,
}

impl Reliability {
    pub fn name(self) -> &'static str {
        match self {
            Reliability::Ok => "ok",
            Reliability::InsufficientData => "insufficient_data",
            Reliability::InsufficientPriceVariation => "insufficient_price_variation",
            Reliability::NotSignificant => "not_significant",
            Reliability::ImplausiblePositive => "implausible_positive",
            Reliability::Imprecise => "imprecise",
            Reliability::Extreme => "extreme",
        }
    }
}

/// An elasticity estimate and what it rests on.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    pub elasticity: Option<f64>,
    pub std_error: Option<f64>,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    pub p_value: Option<f64>,
    pub n_periods: usize,
    pub n_products: usize,
    pub n_cells: usize,
    pub n_orders: u64,
    pub units: f64,
    /// Distinct prices (to a tenth of a cent) held in at least two cells.
    pub price_levels: usize,
    pub price_min: f64,
    pub price_max: f64,
    /// The standard deviation of ln P within products (after removing each product's mean).
    pub log_price_sd: f64,
    pub r2_within: Option<f64>,
    /// `cluster:product` or `HC1`.
    pub se_type: &'static str,
    pub reliability: Reliability,
}

/// What the cells show before any fit: sizes and price variation.
fn describe(cells: &[&Cell], se_type: &'static str) -> Estimate {
    let mut periods: Vec<i64> = cells.iter().map(|c| c.period).collect();
    periods.sort_unstable();
    periods.dedup();
    let mut products: Vec<i64> = cells.iter().map(|c| c.product).collect();
    products.sort_unstable();
    products.dedup();
    let mut held: FxHashMap<(i64, i64), usize> = FxHashMap::default();
    for c in cells {
        *held
            .entry((c.product, (c.price * 1000.0).round() as i64))
            .or_default() += 1;
    }
    let mut levels: Vec<i64> = held
        .iter()
        .filter(|(_, n)| **n >= 2)
        .map(|((_, p), _)| *p)
        .collect();
    levels.sort_unstable();
    levels.dedup();
    // ln P within products.
    let mut mean: FxHashMap<i64, (f64, usize)> = FxHashMap::default();
    for c in cells {
        let e = mean.entry(c.product).or_default();
        e.0 += c.price.ln();
        e.1 += 1;
    }
    let within: Vec<f64> = cells
        .iter()
        .map(|c| {
            let (s, n) = mean[&c.product];
            c.price.ln() - s / n as f64
        })
        .collect();
    let sd = if within.len() > 1 {
        (within.iter().map(|x| x * x).sum::<f64>() / (within.len() - 1) as f64).sqrt()
    } else {
        0.0
    };
    Estimate {
        elasticity: None,
        std_error: None,
        ci_low: None,
        ci_high: None,
        p_value: None,
        n_periods: periods.len(),
        n_products: products.len(),
        n_cells: cells.len(),
        n_orders: cells.iter().map(|c| c.orders).sum(),
        units: cells.iter().map(|c| c.units).sum(),
        price_levels: levels.len(),
        price_min: cells.iter().map(|c| c.price).fold(f64::INFINITY, f64::min),
        price_max: cells
            .iter()
            .map(|c| c.price)
            .fold(f64::NEG_INFINITY, f64::max),
        log_price_sd: sd,
        r2_within: None,
        se_type,
        reliability: Reliability::InsufficientData,
    }
}

/// The verdict on an estimate from its interval.
fn verdict(beta: f64, low: f64, high: f64) -> Reliability {
    if beta > 0.0 && low > 0.0 {
        Reliability::ImplausiblePositive
    } else if beta.abs() > 10.0 {
        Reliability::Extreme
    } else if low <= 0.0 && high >= 0.0 {
        Reliability::NotSignificant
    } else if high - low > 2.0 {
        Reliability::Imprecise
    } else {
        Reliability::Ok
    }
}

/// Residualises `values` on the product and period fixed effects of `cells` by alternating
/// projections (exact for a balanced panel after one round; for an unbalanced one, iterated until
/// nothing moves by more than 1e-13).
fn absorb(
    cells: &[&Cell],
    values: &[f64],
    product_of: &[usize],
    period_of: &[usize],
    np: usize,
    nt: usize,
) -> Vec<f64> {
    let mut v = values.to_vec();
    let (mut count_p, mut count_t) = (vec![0.0f64; np], vec![0.0f64; nt]);
    for i in 0..cells.len() {
        count_p[product_of[i]] += 1.0;
        count_t[period_of[i]] += 1.0;
    }
    for _ in 0..10_000 {
        // A cancel ends the projections early; the caller raises it before any result is used.
        if crate::stop::requested() {
            break;
        }
        let mut moved = 0.0f64;
        for (group, count) in [(product_of, &count_p), (period_of, &count_t)] {
            let mut sum = vec![0.0f64; count.len()];
            for (i, x) in v.iter().enumerate() {
                sum[group[i]] += x;
            }
            for (i, x) in v.iter_mut().enumerate() {
                let m = sum[group[i]] / count[group[i]];
                *x -= m;
                moved = moved.max(m.abs());
            }
        }
        if moved < 1e-13 {
            break;
        }
    }
    v
}

/// The pooled elasticity of `cells` (one category's products, or all): product and period fixed
/// effects, standard errors clustered by product with the small-sample factor
/// G/(G−1) × (N−1)/(N−K), K counting the elasticity and every fixed effect, as an OLS with a
/// dummy per product and per period does; the interval from Student's t with G − 1 degrees of
/// freedom.
pub fn pooled(cells: &[&Cell], t: &Thresholds) -> Estimate {
    let mut e = describe(cells, "cluster:product");
    let mut products: Vec<i64> = cells.iter().map(|c| c.product).collect();
    products.sort_unstable();
    products.dedup();
    let mut periods: Vec<i64> = cells.iter().map(|c| c.period).collect();
    periods.sort_unstable();
    periods.dedup();
    let (np, nt, n) = (products.len(), periods.len(), cells.len());
    let k = np + nt; // β, an intercept with np − 1 product and nt − 1 period effects
    if e.n_periods < t.min_periods || e.n_orders < t.min_orders || np < 2 || n <= k {
        return e;
    }
    if e.price_levels < t.min_price_levels || e.log_price_sd < t.min_log_price_sd {
        e.reliability = Reliability::InsufficientPriceVariation;
        return e;
    }
    let product_of: Vec<usize> = cells
        .iter()
        .map(|c| products.binary_search(&c.product).unwrap_or(0))
        .collect();
    let period_of: Vec<usize> = cells
        .iter()
        .map(|c| periods.binary_search(&c.period).unwrap_or(0))
        .collect();
    let y: Vec<f64> = cells.iter().map(|c| c.units.ln()).collect();
    let x: Vec<f64> = cells.iter().map(|c| c.price.ln()).collect();
    let y = absorb(cells, &y, &product_of, &period_of, np, nt);
    let x = absorb(cells, &x, &product_of, &period_of, np, nt);
    let sxx: f64 = x.iter().map(|v| v * v).sum();
    if sxx <= 1e-12 {
        e.reliability = Reliability::InsufficientPriceVariation;
        return e;
    }
    let beta = x.iter().zip(&y).map(|(a, b)| a * b).sum::<f64>() / sxx;
    let resid: Vec<f64> = x.iter().zip(&y).map(|(a, b)| b - beta * a).collect();
    let ssr: f64 = resid.iter().map(|r| r * r).sum();
    let tss: f64 = y.iter().map(|v| v * v).sum();
    let mut score = vec![0.0f64; np];
    for i in 0..n {
        score[product_of[i]] += x[i] * resid[i];
    }
    let g = np as f64;
    let factor = g / (g - 1.0) * (n as f64 - 1.0) / (n - k) as f64;
    let var = factor * score.iter().map(|s| s * s).sum::<f64>() / (sxx * sxx);
    finish(&mut e, beta, var.sqrt(), g - 1.0, tss, ssr);
    e
}

/// One product's own elasticity: ln Q on ln P with an intercept and a linear trend in periods,
/// HC1 standard errors, Student's t with n − 3 degrees of freedom. Without period effects it
/// cannot tell a price response from a seasonal one: the pooled estimate of its category is the
/// better guide.
pub fn single(cells: &[&Cell], t: &Thresholds) -> Estimate {
    let mut e = describe(cells, "HC1");
    let n = cells.len();
    if e.n_periods < t.min_periods || e.n_orders < t.min_orders || n <= 3 {
        return e;
    }
    if e.price_levels < t.min_price_levels || e.log_price_sd < t.min_log_price_sd {
        e.reliability = Reliability::InsufficientPriceVariation;
        return e;
    }
    // FWL on [1, period]: residualise ln Q and ln P on an intercept and the trend.
    let tr: Vec<f64> = cells.iter().map(|c| c.period as f64).collect();
    let resid_on_trend = |v: &[f64]| -> Vec<f64> {
        let (mt, mv) = (mean(&tr), mean(v));
        let stt: f64 = tr.iter().map(|a| (a - mt) * (a - mt)).sum();
        let stv: f64 = tr.iter().zip(v).map(|(a, b)| (a - mt) * (b - mv)).sum();
        let slope = if stt > 0.0 { stv / stt } else { 0.0 };
        tr.iter()
            .zip(v)
            .map(|(a, b)| b - mv - slope * (a - mt))
            .collect()
    };
    let y = resid_on_trend(&cells.iter().map(|c| c.units.ln()).collect::<Vec<_>>());
    let x = resid_on_trend(&cells.iter().map(|c| c.price.ln()).collect::<Vec<_>>());
    let sxx: f64 = x.iter().map(|v| v * v).sum();
    if sxx <= 1e-12 {
        e.reliability = Reliability::InsufficientPriceVariation;
        return e;
    }
    let beta = x.iter().zip(&y).map(|(a, b)| a * b).sum::<f64>() / sxx;
    let resid: Vec<f64> = x.iter().zip(&y).map(|(a, b)| b - beta * a).collect();
    let ssr: f64 = resid.iter().map(|r| r * r).sum();
    let tss: f64 = y.iter().map(|v| v * v).sum();
    let meat: f64 = x.iter().zip(&resid).map(|(a, r)| a * a * r * r).sum();
    let var = n as f64 / (n - 3) as f64 * meat / (sxx * sxx);
    finish(&mut e, beta, var.sqrt(), (n - 3) as f64, tss, ssr);
    e
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

fn finish(e: &mut Estimate, beta: f64, se: f64, df: f64, tss: f64, ssr: f64) {
    let t = StudentsT::new(0.0, 1.0, df).ok();
    let q = t.as_ref().map_or(1.96, |d| d.inverse_cdf(0.975));
    let p = t
        .as_ref()
        .filter(|_| se > 0.0)
        .map(|d| 2.0 * (1.0 - d.cdf((beta / se).abs())));
    let (low, high) = (beta - q * se, beta + q * se);
    e.elasticity = Some(beta);
    e.std_error = Some(se);
    e.ci_low = Some(low);
    e.ci_high = Some(high);
    e.p_value = p;
    e.r2_within = (tss > 0.0).then(|| 1.0 - ssr / tss);
    e.reliability = verdict(beta, low, high);
}

/// What a price change `dp` (−0.1 for −10%) does to units and revenue under elasticity `beta`
/// in the log-log model: (1 + dp)^β − 1 and (1 + dp)^(1+β) − 1, exactly, not β × dp.
pub fn scenario(beta: f64, dp: f64) -> (f64, f64) {
    (
        (1.0 + dp).powf(beta) - 1.0,
        (1.0 + dp).powf(1.0 + beta) - 1.0,
    )
}

#[cfg(test)]
mod tests;
