//! BG/NBD (Fader, Hardie & Lee 2005) and its modification MBG/NBD (Batislam et al. 2007), which
//! differ only in whether a customer may drop out right after the first purchase. Parameters are
//! `[r, alpha, a, b]`, alpha in the model's time unit.

use super::special::{
    digamma, ln_beta, ln_gamma, ln_hyp2f1, ln_hyp2f1_many, log_add_exp_weights, logistic_complement,
};
use super::{ModelError, Summary};

/// The BG/NBD family: `modified` = false is BG/NBD, true is MBG/NBD.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BetaGeometric {
    pub modified: bool,
}

impl BetaGeometric {
    /// Extra dropout opportunities in the posterior of p: MBG/NBD has one at time zero.
    fn dropout_offset(self) -> f64 {
        if self.modified { 1.0 } else { 0.0 }
    }

    /// Σ weight · ln L over rows sorted by frequency (the gamma terms depend on x only): the
    /// value-only form the tests check [`Self::ln_likelihood_grad`] against; fits use that one.
    #[cfg(test)]
    pub fn ln_likelihood(self, p: &[f64], rows: &[Summary]) -> f64 {
        use super::special::log_add_exp;
        let [r, alpha, a, b] = [p[0], p[1], p[2], p[3]];
        let (ln_alpha, ln_a) = (alpha.ln(), a.ln());
        let common = -ln_gamma(r) + r * ln_alpha + ln_gamma(a + b) - ln_gamma(b);
        let mut total = 0.0;
        let mut cached_x = f64::NAN;
        let mut x_terms = 0.0;
        for row in rows {
            let x = row.frequency;
            if x != cached_x {
                cached_x = x;
                x_terms = if self.modified {
                    ln_gamma(r + x) + ln_gamma(b + x + 1.0) - ln_gamma(a + b + x + 1.0)
                } else {
                    ln_gamma(r + x) + ln_gamma(b + x) - ln_gamma(a + b + x)
                };
            }
            let a3 = -(r + x) * (alpha + row.age).ln();
            let rest = if self.modified {
                // ln(e^{A3} (1 + a/(b+x) ((α+T)/(α+t_x))^{r+x}))
                let a4 = ln_a - (b + x).ln() - (r + x) * (alpha + row.recency).ln();
                log_add_exp(a3, a4)
            } else if x > 0.0 {
                let a4 = ln_a - (b + x - 1.0).ln() - (r + x) * (alpha + row.recency).ln();
                log_add_exp(a3, a4)
            } else {
                a3
            };
            total += row.weight * (common + x_terms + rest);
        }
        total
    }

    /// Σ weight · ln L and its gradient in (r, alpha, a, b), for the fit.
    pub fn ln_likelihood_grad(self, p: &[f64], rows: &[Summary]) -> (f64, [f64; 4]) {
        let [r, alpha, a, b] = [p[0], p[1], p[2], p[3]];
        let extra = self.dropout_offset();
        let (ln_alpha, ln_a) = (alpha.ln(), a.ln());
        let common = -ln_gamma(r) + r * ln_alpha + ln_gamma(a + b) - ln_gamma(b);
        let psi_ab = digamma(a + b);
        let common_grad = [
            -digamma(r) + ln_alpha,
            r / alpha,
            psi_ab,
            psi_ab - digamma(b),
        ];
        let mut total = 0.0;
        let mut grad = [0.0; 4];
        let mut cached_x = f64::NAN;
        let mut x_terms = 0.0;
        let mut x_grad = [0.0; 4];
        for row in rows {
            let x = row.frequency;
            if x != cached_x {
                cached_x = x;
                let (bx, abx) = (b + x + extra, a + b + x + extra);
                x_terms = ln_gamma(r + x) + ln_gamma(bx) - ln_gamma(abx);
                let psi_abx = digamma(abx);
                x_grad = [digamma(r + x), 0.0, -psi_abx, digamma(bx) - psi_abx];
            }
            let ln_at = (alpha + row.age).ln();
            let a3 = -(r + x) * ln_at;
            let w = row.weight;
            let mut g = [-ln_at, -(r + x) / (alpha + row.age), 0.0, 0.0];
            let rest = if self.modified || x > 0.0 {
                let d = if self.modified { x } else { x - 1.0 };
                let ln_ar = (alpha + row.recency).ln();
                let a4 = ln_a - (b + d).ln() - (r + x) * ln_ar;
                let (rest, w3, w4) = log_add_exp_weights(a3, a4);
                g = [
                    w3 * g[0] - w4 * ln_ar,
                    w3 * g[1] - w4 * (r + x) / (alpha + row.recency),
                    w4 / a,
                    -w4 / (b + d),
                ];
                rest
            } else {
                a3
            };
            total += w * (common + x_terms + rest);
            for i in 0..4 {
                grad[i] += w * (common_grad[i] + x_grad[i] + g[i]);
            }
        }
        (total, grad)
    }

    /// ln of the odds "dropped out" : "alive" after the history; −inf when the model has no
    /// dropout opportunity yet (BG/NBD with no repeat purchase).
    fn ln_dropout_odds(self, p: &[f64], row: &Summary) -> f64 {
        let [r, alpha, a, b] = [p[0], p[1], p[2], p[3]];
        let x = row.frequency;
        let denominator = if self.modified {
            b + x
        } else if x > 0.0 {
            b + x - 1.0
        } else {
            return f64::NEG_INFINITY;
        };
        a.ln() - denominator.ln() + (r + x) * ((alpha + row.age).ln() - (alpha + row.recency).ln())
    }

    pub fn probability_alive(self, p: &[f64], row: &Summary) -> f64 {
        logistic_complement(self.ln_dropout_odds(p, row))
    }

    /// E[Y(t) | x, t_x, T]: expected repeat purchases in (T, T + t].
    pub fn expected_purchases(self, p: &[f64], row: &Summary, t: f64) -> Result<f64, ModelError> {
        if t == 0.0 {
            return Ok(0.0);
        }
        let alive = self.probability_alive(p, row);
        let [r, alpha, _, b] = [p[0], p[1], p[2], p[3]];
        let x = row.frequency;
        let (aa, bb) = (r + x, b + x + self.dropout_offset());
        let z = t / (alpha + row.age + t);
        let ln_power = aa * (-z).ln_1p();
        let conditional = around_one(p[2], |a| {
            let c = a + b + x - 1.0 + self.dropout_offset();
            let ln_f = ln_hyp2f1(aa, bb, c, z)?;
            Ok(c / (a - 1.0) * -(ln_power + ln_f).exp_m1())
        })?;
        Ok(alive * conditional)
    }

    /// E[Y(t) | x, t_x, T] at several horizons at once (the months of a CLV), sharing the
    /// hypergeometric series between them.
    pub fn expected_purchases_many(
        self,
        p: &[f64],
        row: &Summary,
        ts: &[f64],
    ) -> Result<Vec<f64>, ModelError> {
        let a = p[2];
        if (a - 1.0).abs() < 1e-3 {
            // Near the removable singularity: the one-at-a-time path interpolates.
            return ts
                .iter()
                .map(|&t| self.expected_purchases(p, row, t))
                .collect();
        }
        let alive = self.probability_alive(p, row);
        let [r, alpha, _, b] = [p[0], p[1], p[2], p[3]];
        let x = row.frequency;
        let (aa, bb) = (r + x, b + x + self.dropout_offset());
        let c = a + b + x - 1.0 + self.dropout_offset();
        let zs: Vec<f64> = ts.iter().map(|&t| t / (alpha + row.age + t)).collect();
        let mut ln_f = vec![0.0; zs.len()];
        ln_hyp2f1_many(aa, bb, c, &zs, &mut ln_f)?;
        Ok(zs
            .iter()
            .zip(ln_f)
            .map(|(&z, lf)| {
                if z == 0.0 {
                    0.0
                } else {
                    alive * c / (a - 1.0) * -(aa * (-z).ln_1p() + lf).exp_m1()
                }
            })
            .collect())
    }

    /// E[X(t)] for a customer just acquired (x = 0 at T = 0).
    pub fn expected_purchases_new(self, p: &[f64], t: f64) -> Result<f64, ModelError> {
        if t == 0.0 {
            return Ok(0.0);
        }
        let [r, alpha, _, b] = [p[0], p[1], p[2], p[3]];
        let z = t / (alpha + t);
        around_one(p[2], |a| {
            let (bb, c, lead) = if self.modified {
                (b + 1.0, a + b, b)
            } else {
                (b, a + b - 1.0, a + b - 1.0)
            };
            let ln_f = ln_hyp2f1(r, bb, c, z)?;
            Ok(lead / (a - 1.0) * -(r * (-z).ln_1p() + ln_f).exp_m1())
        })
    }

    /// P(Y(t) = n | x, t_x, T): the chance of exactly n repeat purchases in (T, T + t].
    ///
    /// Given alive at T, the posterior of the purchase rate is Gamma(r + x, α + T) and that of
    /// the dropout probability Beta(a, b + x (+1 for MBG)), independent; purchases in the window
    /// are then Poisson until a dropout that follows a purchase. A customer already gone makes
    /// none. With x = 0 and T = 0 this is the published unconditional P(X(t) = n).
    pub fn probability_of_purchases(self, p: &[f64], row: &Summary, n: u32, t: f64) -> f64 {
        let alive = self.probability_alive(p, row);
        let [r, alpha, a, b] = [p[0], p[1], p[2], p[3]];
        let shape = r + row.frequency;
        let b_post = b + row.frequency + self.dropout_offset();
        let ln_q = (alpha + row.age).ln() - (alpha + row.age + t).ln(); // ln(α+T)/(α+T+t)
        let ln_one_minus_q = t.ln() - (alpha + row.age + t).ln();
        let ln_nb = |j: f64| {
            ln_gamma(shape + j) - ln_gamma(shape) - ln_gamma(j + 1.0)
                + shape * ln_q
                + if j > 0.0 { j * ln_one_minus_q } else { 0.0 }
        };
        let n = f64::from(n);
        let ln_b0 = ln_beta(a, b_post);
        let mut value = (ln_beta(a, b_post + n) - ln_b0 + ln_nb(n)).exp();
        if n > 0.0 {
            let below: f64 = (0..n as u32).map(|j| ln_nb(f64::from(j)).exp()).sum();
            let tail = (1.0 - below).max(0.0);
            value += (ln_beta(a + 1.0, b_post + n - 1.0) - ln_b0).exp() * tail;
        }
        let gone = if n == 0.0 { 1.0 - alive } else { 0.0 };
        gone + alive * value
    }
}

/// The expectations have the factor 1/(a − 1) with a removable singularity at a = 1: evaluate on
/// both sides and interpolate, instead of dividing 0 by 0.
fn around_one(a: f64, f: impl Fn(f64) -> Result<f64, ModelError>) -> Result<f64, ModelError> {
    const HALF_WIDTH: f64 = 1e-4;
    if (a - 1.0).abs() >= HALF_WIDTH {
        return f(a);
    }
    let (lo, hi) = (f(1.0 - HALF_WIDTH)?, f(1.0 + HALF_WIDTH)?);
    let w = (a - (1.0 - HALF_WIDTH)) / (2.0 * HALF_WIDTH);
    Ok(lo + w * (hi - lo))
}
