//! Gamma-Gamma spend model (Fader, Hardie & Lee 2005; note 025), fitted on customers with at least
//! one repeat purchase. Parameters `[p, q, v]`, v in the currency of the amounts.

use super::ModelError;
use super::special::{digamma, ln_gamma};

/// One customer's repeat purchases: how many (x ≥ 1) and their mean value (> 0).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpendRow {
    pub frequency: f64,
    pub mean_spend: f64,
    pub weight: f64,
}

/// Σ weight · ln L, value only: the reference the tests check [`ln_likelihood_grad`] against;
/// fits use that one.
#[cfg(test)]
pub fn ln_likelihood(params: &[f64], rows: &[SpendRow]) -> f64 {
    let [p, q, v] = [params[0], params[1], params[2]];
    let common = -ln_gamma(q) + q * v.ln();
    rows.iter()
        .map(|row| {
            let (x, m) = (row.frequency, row.mean_spend);
            let px = p * x;
            row.weight
                * (common + ln_gamma(px + q) - ln_gamma(px) + (px - 1.0) * m.ln() + px * x.ln()
                    - (px + q) * (x * m + v).ln())
        })
        .sum()
}

/// A spend row with the logarithms that do not change during a fit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prepared {
    pub frequency: f64,
    pub mean_spend: f64,
    pub weight: f64,
    pub(crate) ln_mean_spend: f64,
}

pub fn prepare(rows: &[SpendRow]) -> Vec<Prepared> {
    rows.iter()
        .map(|r| Prepared {
            frequency: r.frequency,
            mean_spend: r.mean_spend,
            weight: r.weight,
            ln_mean_spend: r.mean_spend.ln(),
        })
        .collect()
}

/// Σ weight · ln L and its gradient in (p, q, v). The gamma-function terms depend on the
/// frequency only, so rows sorted by frequency (as the fit sorts them) share them.
pub fn ln_likelihood_grad(params: &[f64], rows: &[Prepared]) -> (f64, [f64; 3]) {
    let [p, q, v] = [params[0], params[1], params[2]];
    let (ln_v, psi_q) = (v.ln(), digamma(q));
    let common = -ln_gamma(q) + q * ln_v;
    let mut total = 0.0;
    let mut grad = [0.0; 3];
    let mut cached_x = f64::NAN;
    // lnΓ(px+q) − lnΓ(px) + px ln x, ψ(px+q), ψ(px) − ln x.
    let (mut gammas, mut psi_pxq, mut psi_px) = (0.0, 0.0, 0.0);
    for row in rows {
        let (x, m, w) = (row.frequency, row.mean_spend, row.weight);
        let px = p * x;
        if x != cached_x {
            cached_x = x;
            let ln_x = x.ln();
            gammas = ln_gamma(px + q) - ln_gamma(px) + px * ln_x;
            psi_pxq = digamma(px + q);
            psi_px = digamma(px) - ln_x;
        }
        let ln_m = row.ln_mean_spend;
        let xmv = x * m + v;
        let ln_xmv = xmv.ln();
        total += w * (common + gammas + (px - 1.0) * ln_m - (px + q) * ln_xmv);
        grad[0] += w * x * (psi_pxq - psi_px + ln_m - ln_xmv);
        grad[1] += w * (-psi_q + ln_v + psi_pxq - ln_xmv);
        grad[2] += w * (q / v - (px + q) / xmv);
    }
    (total, grad)
}

/// E[M | x, m̄]: the customer's expected mean spend per transaction, a weighted mean of the
/// population mean p·v/(q − 1) and the customer's own mean. With q ≤ 1 the population mean is
/// infinite, so there is no expectation to give.
pub fn expected_spend(params: &[f64], frequency: f64, mean_spend: f64) -> Result<f64, ModelError> {
    let [p, q, v] = [params[0], params[1], params[2]];
    if q <= 1.0 {
        return Err(ModelError::SpendUndefined { q });
    }
    let px = p * frequency;
    let own = if frequency > 0.0 {
        px * mean_spend
    } else {
        0.0
    };
    Ok((p * v + own) / (px + q - 1.0))
}
