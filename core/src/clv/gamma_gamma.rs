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

/// Σ weight · ln L and its gradient in (p, q, v).
pub fn ln_likelihood_grad(params: &[f64], rows: &[SpendRow]) -> (f64, [f64; 3]) {
    let [p, q, v] = [params[0], params[1], params[2]];
    let common = -ln_gamma(q) + q * v.ln();
    let psi_q = digamma(q);
    let mut total = 0.0;
    let mut grad = [0.0; 3];
    for row in rows {
        let (x, m, w) = (row.frequency, row.mean_spend, row.weight);
        let px = p * x;
        let ln_xmv = (x * m + v).ln();
        let psi_pxq = digamma(px + q);
        total += w
            * (common + ln_gamma(px + q) - ln_gamma(px) + (px - 1.0) * m.ln() + px * x.ln()
                - (px + q) * ln_xmv);
        grad[0] += w * x * (psi_pxq - digamma(px) + m.ln() + x.ln() - ln_xmv);
        grad[1] += w * (-psi_q + v.ln() + psi_pxq - ln_xmv);
        grad[2] += w * (q / v - (px + q) / (x * m + v));
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
