//! L2-penalised logistic regression fitted by Newton's method: minimises
//! −Σ log-likelihood + ½·l2·|w|² (the intercept unpenalised, as linfa-logistic and scikit-learn
//! do). With a handful of standardised features the Hessian is tiny and Newton converges in a few
//! steps where linfa-logistic's L-BFGS, on the same loss, ran its 200 iterations on collinear
//! shop features, a hundred times slower (BENCHMARKS.md, "Measurements behind the code"); the
//! tests check that both land on the same weights.

use rayon::prelude::*;

use super::ChurnError;
use crate::clv::optimize::invert_spd;

/// Rows per parallel chunk; chunks are summed in order, so the result does not depend on threads.
const CHUNK: usize = 16_384;

/// 1 / (1 + e^-t), without overflow for large |t|.
pub fn sigmoid(t: f64) -> f64 {
    if t >= 0.0 {
        1.0 / (1.0 + (-t).exp())
    } else {
        let e = t.exp();
        e / (1.0 + e)
    }
}

/// −log σ(t), without overflow.
fn softplus_neg(t: f64) -> f64 {
    if t >= 0.0 {
        (-t).exp().ln_1p()
    } else {
        -t + t.exp().ln_1p()
    }
}

/// Loss, gradient and Hessian (row-major, k+1 square; the intercept last) at θ = (w, b).
fn derivatives(z: &[Vec<f64>], y: &[bool], theta: &[f64], l2: f64) -> (f64, Vec<f64>, Vec<f64>) {
    let k = theta.len();
    let parts: Vec<(f64, Vec<f64>, Vec<f64>)> = z
        .par_chunks(CHUNK)
        .zip(y.par_chunks(CHUNK))
        .map(|(zc, yc)| {
            let mut loss = 0.0;
            let mut g = vec![0.0; k];
            let mut h = vec![0.0; k * k];
            let mut x = vec![1.0; k];
            for (row, &label) in zc.iter().zip(yc) {
                x[..k - 1].copy_from_slice(row);
                let eta: f64 = x.iter().zip(theta).map(|(a, b)| a * b).sum();
                loss += if label {
                    softplus_neg(eta)
                } else {
                    softplus_neg(-eta)
                };
                let p = sigmoid(eta);
                let r = p - if label { 1.0 } else { 0.0 };
                let w = p * (1.0 - p);
                for i in 0..k {
                    g[i] += r * x[i];
                    let wi = w * x[i];
                    for j in 0..=i {
                        h[i * k + j] += wi * x[j];
                    }
                }
            }
            (loss, g, h)
        })
        .collect();
    let mut loss = 0.0;
    let mut g = vec![0.0; k];
    let mut h = vec![0.0; k * k];
    for (l, gp, hp) in parts {
        loss += l;
        g.iter_mut().zip(gp).for_each(|(a, b)| *a += b);
        h.iter_mut().zip(hp).for_each(|(a, b)| *a += b);
    }
    for i in 0..k {
        for j in 0..i {
            h[j * k + i] = h[i * k + j];
        }
    }
    for i in 0..k - 1 {
        loss += 0.5 * l2 * theta[i] * theta[i];
        g[i] += l2 * theta[i];
        h[i * k + i] += l2;
    }
    (loss, g, h)
}

fn loss_at(z: &[Vec<f64>], y: &[bool], theta: &[f64], l2: f64) -> f64 {
    let k = theta.len();
    let data: f64 = z
        .par_chunks(CHUNK)
        .zip(y.par_chunks(CHUNK))
        .map(|(zc, yc)| {
            zc.iter()
                .zip(yc)
                .map(|(row, &label)| {
                    let eta = theta[k - 1] + row.iter().zip(theta).map(|(a, b)| a * b).sum::<f64>();
                    if label {
                        softplus_neg(eta)
                    } else {
                        softplus_neg(-eta)
                    }
                })
                .sum::<f64>()
        })
        .collect::<Vec<f64>>()
        .into_iter()
        .sum();
    data + 0.5 * l2 * theta[..k - 1].iter().map(|t| t * t).sum::<f64>()
}

/// A fitted logistic regression.
#[derive(Debug, Clone, PartialEq)]
pub struct Fit {
    pub intercept: f64,
    pub weights: Vec<f64>,
    pub iterations: usize,
    /// The largest gradient component per row at the end.
    pub gradient: f64,
}

/// Fits the weights of rows `z` (standardised features) against `y`. `l2` must be positive:
/// it keeps the weights finite on separable data.
pub fn fit(z: &[Vec<f64>], y: &[bool], l2: f64) -> Result<Fit, ChurnError> {
    let Some(k) = z.first().map(|r| r.len() + 1) else {
        return Err(ChurnError::Fit("no rows".into()));
    };
    if !(l2.is_finite() && l2 > 0.0) {
        return Err(ChurnError::BadArgument(format!(
            "l2 must be positive, got {l2}"
        )));
    }
    let n = y.len() as f64;
    let positives = y.iter().filter(|&&l| l).count() as f64;
    // Start from the base rate: the intercept-only optimum.
    let mut theta = vec![0.0; k];
    theta[k - 1] = ((positives + 0.5) / (n - positives + 0.5)).ln();
    for iteration in 1..=100 {
        // Each Newton step passes over every row: a requested stop is seen between them.
        super::stop_if_requested()?;
        let (loss, g, h) = derivatives(z, y, &theta, l2);
        let gradient = g.iter().fold(0.0_f64, |m, v| m.max(v.abs())) / n;
        if gradient < 1e-10 {
            return Ok(done(theta, iteration - 1, gradient));
        }
        let Some(inv) = invert_spd(&h, k) else {
            return Err(ChurnError::Fit(
                "the Hessian is not positive definite".into(),
            ));
        };
        let step: Vec<f64> = (0..k)
            .map(|i| (0..k).map(|j| inv[i * k + j] * g[j]).sum())
            .collect();
        // Halve the step until the loss does not rise (Newton's full step almost always does).
        let mut scale = 1.0;
        let mut next;
        loop {
            next = theta
                .iter()
                .zip(&step)
                .map(|(t, s)| t - scale * s)
                .collect::<Vec<f64>>();
            if loss_at(z, y, &next, l2) <= loss + 1e-12 * loss.abs() || scale < 1e-10 {
                break;
            }
            scale *= 0.5;
        }
        let moved = step.iter().fold(0.0_f64, |m, s| m.max((scale * s).abs()));
        theta = next;
        if moved < 1e-12 {
            return Ok(done(theta, iteration, gradient));
        }
    }
    let (_, g, _) = derivatives(z, y, &theta, l2);
    let gradient = g.iter().fold(0.0_f64, |m, v| m.max(v.abs())) / n;
    if gradient < 1e-6 {
        return Ok(done(theta, 100, gradient));
    }
    Err(ChurnError::Fit(format!(
        "Newton's method did not converge in 100 steps (gradient {gradient:e} per row)"
    )))
}

fn done(mut theta: Vec<f64>, iterations: usize, gradient: f64) -> Fit {
    let intercept = theta.pop().unwrap_or(0.0);
    Fit {
        intercept,
        weights: theta,
        iterations,
        gradient,
    }
}
