//! Pareto/NBD (Schmittlein, Morrison & Colombo 1987), in the form of Fader & Hardie's note 009,
//! eq. 22-23: both terms of the likelihood positive, so nothing cancels when t_x is close to T (the
//! form lifetimes uses subtracts two nearly equal hypergeometric terms there). Parameters are
//! `[r, alpha, s, beta]`, alpha and beta in the model's time unit.

use super::special::{
    digamma, ln_gamma, ln_hyp2f1, ln_hyp2f1_grad, log_add_exp, log_add_exp_weights,
};
use rustc_hash::FxHashMap;

use super::{ModelError, Summary};

/// ln L for one customer, minus the x-only terms lnΓ(r + x) − lnΓ(r) (added by the caller).
fn ln_likelihood_rest(p: &[f64], row: &Summary) -> Result<f64, ModelError> {
    let [r, alpha, s, beta] = [p[0], p[1], p[2], p[3]];
    let x = row.frequency;
    let (big, small) = if alpha >= beta {
        (alpha, beta)
    } else {
        (beta, alpha)
    };
    let rsx = r + s + x;
    let (first_b, second_b) = if alpha >= beta {
        (s + 1.0, s)
    } else {
        (r + x, r + x + 1.0)
    };
    let at_recency = (big - small) / (big + row.recency);
    let at_age = (big - small) / (big + row.age);
    let ln_big_recency = (big + row.recency).ln();
    let term_recency = s.ln() - rsx.ln() + ln_hyp2f1(rsx, first_b, rsx + 1.0, at_recency)?;
    let term_age = (r + x).ln() - rsx.ln()
        + ln_hyp2f1(rsx, second_b, rsx + 1.0, at_age)?
        + rsx * (ln_big_recency - (big + row.age).ln());
    Ok(r * alpha.ln() + s * beta.ln() - rsx * ln_big_recency + log_add_exp(term_recency, term_age))
}

/// Σ weight · ln L, value only: the reference the tests check [`ln_likelihood_grad`] against;
/// fits use that one.
#[cfg(test)]
pub fn ln_likelihood(p: &[f64], rows: &[Summary]) -> Result<f64, ModelError> {
    let r = p[0];
    let mut total = 0.0;
    let mut cached_x = f64::NAN;
    let mut x_terms = 0.0;
    for row in rows {
        if row.frequency != cached_x {
            cached_x = row.frequency;
            x_terms = ln_gamma(r + cached_x) - ln_gamma(r);
        }
        total += row.weight * (x_terms + ln_likelihood_rest(p, row)?);
    }
    Ok(total)
}

/// ln L for one customer without lnΓ(r + x) − lnΓ(r), and its gradient in (r, alpha, s, beta).
/// The two hypergeometric terms of a customer's likelihood with their gradients in (a, b, c, z):
/// the first depends on (x, t_x) only and the second on (x, T) only, so customers who share
/// them share the work.
type Hyp = (f64, [f64; 4]);

fn hyp_terms(p: &[f64], x: f64, t: f64, first: bool) -> Result<Hyp, ModelError> {
    let [r, alpha, s, beta] = [p[0], p[1], p[2], p[3]];
    let (big, small) = if alpha >= beta {
        (alpha, beta)
    } else {
        (beta, alpha)
    };
    let rsx = r + s + x;
    let b = match (alpha >= beta, first) {
        (true, true) => s + 1.0,
        (true, false) => s,
        (false, true) => r + x,
        (false, false) => r + x + 1.0,
    };
    Ok(ln_hyp2f1_grad(
        rsx,
        b,
        rsx + 1.0,
        (big - small) / (big + t),
    )?)
}

/// Logarithms that are the same for every customer, or for every customer with the same x.
struct Logs {
    alpha: f64,
    beta: f64,
    s: f64,
    rsx: f64,
    rx: f64,
}

fn ln_likelihood_rest_grad(
    p: &[f64],
    row: &Summary,
    logs: &Logs,
    (f1, g1): Hyp,
    (f2, g2): Hyp,
) -> (f64, [f64; 4]) {
    let [r, alpha, s, beta] = [p[0], p[1], p[2], p[3]];
    let x = row.frequency;
    let alpha_big = alpha >= beta;
    let (big, small) = if alpha_big {
        (alpha, beta)
    } else {
        (beta, alpha)
    };
    let rsx = r + s + x;
    let (mt, mt_age) = (big + row.recency, big + row.age);
    // ∂z/∂(big) and ∂z/∂(small) for z = (big − small)/(big + t).
    let dz = |t: f64| ((small + t) / ((big + t) * (big + t)), -1.0 / (big + t));
    let (dz1_big, dz1_small) = dz(row.recency);
    let (dz2_big, dz2_small) = dz(row.age);
    // (r, s) derivatives of the upper parameter b of each 2F1.
    let (db1, db2) = if alpha_big {
        ([0.0, 1.0], [0.0, 1.0])
    } else {
        ([1.0, 0.0], [1.0, 0.0])
    };
    let (ln_mt, ln_mt_age) = (mt.ln(), mt_age.ln());
    let t1 = logs.s - logs.rsx + f1;
    let t2 = logs.rx - logs.rsx + f2 + rsx * (ln_mt - ln_mt_age);
    let (mix, w1, w2) = log_add_exp_weights(t1, t2);
    let value = r * logs.alpha + s * logs.beta - rsx * ln_mt + mix;
    // d/dr and d/ds of each term (a = rsx and c = rsx + 1 move with both).
    let dt1_r = -1.0 / rsx + g1[0] + g1[1] * db1[0] + g1[2];
    let dt1_s = 1.0 / s - 1.0 / rsx + g1[0] + g1[1] * db1[1] + g1[2];
    let dt2_r = 1.0 / (r + x) - 1.0 / rsx + g2[0] + g2[1] * db2[0] + g2[2] + (ln_mt - ln_mt_age);
    let dt2_s = -1.0 / rsx + g2[0] + g2[1] * db2[1] + g2[2] + (ln_mt - ln_mt_age);
    // d/d(big) and d/d(small).
    let dt1_big = g1[3] * dz1_big;
    let dt1_small = g1[3] * dz1_small;
    let dt2_big = g2[3] * dz2_big + rsx * (1.0 / mt - 1.0 / mt_age);
    let dt2_small = g2[3] * dz2_small;
    let d_big = -rsx / mt + w1 * dt1_big + w2 * dt2_big;
    let d_small = w1 * dt1_small + w2 * dt2_small;
    let (d_alpha, d_beta) = if alpha_big {
        (d_big, d_small)
    } else {
        (d_small, d_big)
    };
    (
        value,
        [
            logs.alpha - ln_mt + w1 * dt1_r + w2 * dt2_r,
            r / alpha + d_alpha,
            logs.beta - ln_mt + w1 * dt1_s + w2 * dt2_s,
            s / beta + d_beta,
        ],
    )
}

/// Σ weight · ln L and its gradient in (r, alpha, s, beta), for the fit.
pub fn ln_likelihood_grad(p: &[f64], rows: &[Summary]) -> Result<(f64, [f64; 4]), ModelError> {
    let r = p[0];
    let psi_r = digamma(r);
    let mut total = 0.0;
    let mut grad = [0.0; 4];
    let mut cached_x = f64::NAN;
    let (mut x_terms, mut x_grad) = (0.0, 0.0);
    let mut first_key = (f64::NAN, f64::NAN);
    let mut first: Hyp = (0.0, [0.0; 4]);
    let mut seconds: FxHashMap<(u64, u64), Hyp> = FxHashMap::default();
    let mut logs = Logs {
        alpha: p[1].ln(),
        beta: p[3].ln(),
        s: p[2].ln(),
        rsx: 0.0,
        rx: 0.0,
    };
    for row in rows {
        if row.frequency != cached_x {
            cached_x = row.frequency;
            x_terms = ln_gamma(r + cached_x) - ln_gamma(r);
            x_grad = digamma(r + cached_x) - psi_r;
            logs.rsx = (r + p[2] + cached_x).ln();
            logs.rx = (r + cached_x).ln();
        }
        // Rows come sorted by (x, t_x, T): the first term repeats while (x, t_x) does; the second
        // is looked up by (x, T).
        if row.frequency != first_key.0 || row.recency != first_key.1 {
            first_key = (row.frequency, row.recency);
            first = hyp_terms(p, row.frequency, row.recency, true)?;
        }
        let key = (row.frequency.to_bits(), row.age.to_bits());
        let second = match seconds.get(&key) {
            Some(h) => *h,
            None => {
                let h = hyp_terms(p, row.frequency, row.age, false)?;
                seconds.insert(key, h);
                h
            }
        };
        let (v, g) = ln_likelihood_rest_grad(p, row, &logs, first, second);
        total += row.weight * (x_terms + v);
        grad[0] += row.weight * (x_grad + g[0]);
        for i in 1..4 {
            grad[i] += row.weight * g[i];
        }
    }
    Ok((total, grad))
}

pub fn probability_alive(p: &[f64], row: &Summary) -> Result<f64, ModelError> {
    let [r, alpha, s, beta] = [p[0], p[1], p[2], p[3]];
    let x = row.frequency;
    // P(alive) = L(alive through T) / L, both without the common gamma terms.
    let ln_alive = r * alpha.ln() + s * beta.ln()
        - (r + x) * (alpha + row.age).ln()
        - s * (beta + row.age).ln();
    Ok((ln_alive - ln_likelihood_rest(p, row)?).exp().min(1.0))
}

/// (1 − y^(s−1)) / (s − 1) for y in (0, 1], with its limit −ln y at s = 1.
fn one_minus_power_over(s: f64, ln_y: f64) -> f64 {
    let k = s - 1.0;
    if k.abs() < 1e-12 {
        -ln_y
    } else {
        -(k * ln_y).exp_m1() / k
    }
}

pub fn expected_purchases(p: &[f64], row: &Summary, t: f64) -> Result<f64, ModelError> {
    if t == 0.0 {
        return Ok(0.0);
    }
    let [r, alpha, s, beta] = [p[0], p[1], p[2], p[3]];
    let x = row.frequency;
    let alive = probability_alive(p, row)?;
    let ln_y = (beta + row.age).ln() - (beta + row.age + t).ln();
    Ok(alive * (r + x) * (beta + row.age) / (alpha + row.age) * one_minus_power_over(s, ln_y))
}

pub fn expected_purchases_new(p: &[f64], t: f64) -> f64 {
    let [r, alpha, s, beta] = [p[0], p[1], p[2], p[3]];
    let ln_y = beta.ln() - (beta + t).ln();
    r * beta / alpha * one_minus_power_over(s, ln_y)
}

/// P(Y(t) = n | x, t_x, T): the chance of exactly n repeat purchases in (T, T + t].
///
/// Given alive at T, the posteriors are λ ~ Gamma(r + x, α + T) and μ ~ Gamma(s, β + T),
/// independent, and purchases are Poisson at rate λ until the exponential lifetime ends. So the
/// count is negative binomial over the whole window if the customer outlives it, and over
/// (T, T + τ] if they leave at τ: the first term is closed-form, the second a one-dimensional
/// integral of a smooth density, taken by composite Gauss-Legendre quadrature. A customer already
/// gone makes none.
pub fn probability_of_purchases(
    p: &[f64],
    row: &Summary,
    n: u32,
    t: f64,
) -> Result<f64, ModelError> {
    let alive = probability_alive(p, row)?;
    let gone = if n == 0 { 1.0 - alive } else { 0.0 };
    if t == 0.0 {
        return Ok(gone + if n == 0 { alive } else { 0.0 });
    }
    let [r, alpha, s, beta] = [p[0], p[1], p[2], p[3]];
    let shape = r + row.frequency;
    let n = f64::from(n);
    let (at, bt) = (alpha + row.age, beta + row.age);
    let (ln_at, ln_bt) = (at.ln(), bt.ln());
    let ln_coef = ln_gamma(shape + n) - ln_gamma(shape) - ln_gamma(n + 1.0);
    // NB(n) for a window of length tau.
    let nb = |tau: f64| -> f64 {
        if tau <= 0.0 {
            return if n == 0.0 { 1.0 } else { 0.0 };
        }
        let ln_end = (at + tau).ln();
        let ln_n = if n > 0.0 {
            n * (tau.ln() - ln_end)
        } else {
            0.0
        };
        (ln_coef + shape * (ln_at - ln_end) + ln_n).exp()
    };
    let survives = (s * (ln_bt - (bt + t).ln())).exp() * nb(t);
    // E[μ e^{−μτ}] under the posterior: the density of leaving at τ.
    let leaves_at = |tau: f64| s / bt * ((s + 1.0) * (ln_bt - (bt + tau).ln())).exp();
    let leaves = super::quadrature::integrate(|tau| leaves_at(tau) * nb(tau), 0.0, t);
    Ok(gone + alive * (survives + leaves))
}
