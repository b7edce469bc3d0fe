//! Pareto/NBD (Schmittlein, Morrison & Colombo 1987), in the form of Fader & Hardie's note 009,
//! eq. 22-23: both terms of the likelihood positive, so nothing cancels when t_x is close to T (the
//! form lifetimes uses subtracts two nearly equal hypergeometric terms there). Parameters are
//! `[r, alpha, s, beta]`, alpha and beta in the model's time unit.

use super::special::{ln_gamma, ln_hyp2f1, log_add_exp};
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
