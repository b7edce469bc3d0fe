//! Pareto/NBD (Schmittlein, Morrison & Colombo 1987), in the form of Fader & Hardie's note 009,
//! eq. 22-23: both terms of the likelihood positive, so nothing cancels when t_x is close to T (the
//! form lifetimes uses subtracts two nearly equal hypergeometric terms there). Parameters are
//! `[r, alpha, s, beta]`, alpha and beta in the model's time unit.

use super::special::{digamma, ln_gamma, ln_hyp2f1, ln_hyp2f1_grad, log_add_exp};
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
fn ln_likelihood_rest_grad(p: &[f64], row: &Summary) -> Result<(f64, [f64; 4]), ModelError> {
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
    let (z1, z2) = ((big - small) / mt, (big - small) / mt_age);
    // ∂z/∂(big) and ∂z/∂(small) for z = (big − small)/(big + t).
    let dz = |t: f64| ((small + t) / ((big + t) * (big + t)), -1.0 / (big + t));
    let (dz1_big, dz1_small) = dz(row.recency);
    let (dz2_big, dz2_small) = dz(row.age);
    // (r, s) derivatives of the upper parameter b of each 2F1.
    let (b1, db1, b2, db2) = if alpha_big {
        (s + 1.0, [0.0, 1.0], s, [0.0, 1.0])
    } else {
        (r + x, [1.0, 0.0], r + x + 1.0, [1.0, 0.0])
    };
    let (f1, g1) = ln_hyp2f1_grad(rsx, b1, rsx + 1.0, z1)?;
    let (f2, g2) = ln_hyp2f1_grad(rsx, b2, rsx + 1.0, z2)?;
    let (ln_mt, ln_mt_age) = (mt.ln(), mt_age.ln());
    let t1 = s.ln() - rsx.ln() + f1;
    let t2 = (r + x).ln() - rsx.ln() + f2 + rsx * (ln_mt - ln_mt_age);
    let mix = log_add_exp(t1, t2);
    let (w1, w2) = ((t1 - mix).exp(), (t2 - mix).exp());
    let value = r * alpha.ln() + s * beta.ln() - rsx * ln_mt + mix;
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
    Ok((
        value,
        [
            alpha.ln() - ln_mt + w1 * dt1_r + w2 * dt2_r,
            r / alpha + d_alpha,
            beta.ln() - ln_mt + w1 * dt1_s + w2 * dt2_s,
            s / beta + d_beta,
        ],
    ))
}

/// Σ weight · ln L and its gradient in (r, alpha, s, beta), for the fit.
pub fn ln_likelihood_grad(p: &[f64], rows: &[Summary]) -> Result<(f64, [f64; 4]), ModelError> {
    let r = p[0];
    let psi_r = digamma(r);
    let mut total = 0.0;
    let mut grad = [0.0; 4];
    let mut cached_x = f64::NAN;
    let (mut x_terms, mut x_grad) = (0.0, 0.0);
    for row in rows {
        if row.frequency != cached_x {
            cached_x = row.frequency;
            x_terms = ln_gamma(r + cached_x) - ln_gamma(r);
            x_grad = digamma(r + cached_x) - psi_r;
        }
        let (v, g) = ln_likelihood_rest_grad(p, row)?;
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
