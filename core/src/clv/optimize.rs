//! Maximum likelihood: BFGS on log-parameters with the models' analytic gradients, and the
//! Hessian at the optimum (central differences of the gradient) for standard errors.
//!
//! The models have three or four parameters and smooth likelihoods; the log-parameters keep every
//! trial point positive without bounds.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// An objective with its gradient.
pub type ValueGrad<'a> = dyn Fn(&[f64]) -> (f64, Vec<f64>) + Sync + 'a;

/// How much work one fit may do, shared by its starts (which run in parallel): a number of
/// objective evaluations and a wall-clock deadline. A likelihood that never settles (a Pareto/NBD
/// fit to customers who never drop out runs toward a limit for ever) ends with a clear error
/// instead of holding its locks for hours.
#[derive(Debug)]
pub struct Budget {
    deadline: Option<Instant>,
    limit: Option<Duration>,
    max_evaluations: usize,
    used: AtomicUsize,
    exhausted: AtomicBool,
}

/// Objective evaluations one fit may use across its starts: a converging fit uses a few hundred.
pub const MAX_EVALUATIONS: usize = 20_000;

impl Budget {
    /// At most `max_evaluations` evaluations, and no evaluation begun after `limit` from now.
    pub fn new(limit: Option<Duration>, max_evaluations: usize) -> Budget {
        Budget {
            deadline: limit.map(|l| Instant::now() + l),
            limit,
            max_evaluations,
            used: AtomicUsize::new(0),
            exhausted: AtomicBool::new(false),
        }
    }

    /// No limit but the evaluations'.
    pub fn unlimited() -> Budget {
        Budget::new(None, MAX_EVALUATIONS)
    }

    /// Takes one evaluation from the budget: false once it is spent (and from then on).
    fn spend(&self) -> bool {
        if self.exhausted.load(Ordering::Relaxed) {
            return false;
        }
        let over_count = self.used.fetch_add(1, Ordering::Relaxed) >= self.max_evaluations;
        let over_time = self.deadline.is_some_and(|d| Instant::now() >= d);
        if over_count || over_time {
            self.exhausted.store(true, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// Whether the budget ran out.
    pub fn exhausted(&self) -> bool {
        self.exhausted.load(Ordering::Relaxed)
    }

    /// Evaluations used (or refused once the budget ran out).
    pub fn evaluations(&self) -> usize {
        self.used.load(Ordering::Relaxed).min(self.max_evaluations)
    }

    /// The time limit, if any.
    pub fn limit(&self) -> Option<Duration> {
        self.limit
    }
}

const HESSIAN_STEP: f64 = 1e-5;
const MAX_ITERATIONS: usize = 1000;
/// Converged when the largest gradient component of the mean negative log-likelihood is below this.
pub const GRADIENT_TOLERANCE: f64 = 1e-6;

/// Where one BFGS run ended.
#[derive(Debug, Clone)]
pub struct Minimum {
    pub x: Vec<f64>,
    pub value: f64,
    pub gradient_norm: f64,
    pub iterations: usize,
    pub converged: bool,
    /// The final inverse Hessian approximation, row-major: a good first guess for a polish of
    /// the same objective on more data.
    pub inverse_hessian: Vec<f64>,
}

fn inf_norm(v: &[f64]) -> f64 {
    v.iter().fold(0.0, |m, g| m.max(g.abs()))
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Minimises `f` from `start` by BFGS with a backtracking (Armijo) line search. A non-finite
/// value at a trial point counts as "too far", so the search backs off instead of failing.
pub fn bfgs(f: &ValueGrad<'_>, start: &[f64], budget: &Budget) -> Minimum {
    bfgs_from(f, start, None, budget)
}

/// BFGS from `start` with an initial inverse Hessian (else the identity, rescaled after the
/// first step).
pub fn bfgs_from(
    f: &ValueGrad<'_>,
    start: &[f64],
    initial: Option<&[f64]>,
    budget: &Budget,
) -> Minimum {
    let n = start.len();
    let mut x = start.to_vec();
    let (mut fx, mut g) = f(&x);
    // Inverse Hessian approximation, row-major.
    let mut h = vec![0.0; n * n];
    for i in 0..n {
        h[i * n + i] = 1.0;
    }
    let mut first_step = true;
    if let Some(initial) = initial.filter(|m| m.len() == n * n && m.iter().all(|v| v.is_finite())) {
        h.copy_from_slice(initial);
        first_step = false;
    }
    if !fx.is_finite() {
        return Minimum {
            x,
            value: fx,
            gradient_norm: f64::INFINITY,
            iterations: 0,
            converged: false,
            inverse_hessian: h,
        };
    }
    let mut stalled = 0;
    for iteration in 0..MAX_ITERATIONS {
        let gnorm = inf_norm(&g);
        // Each iteration evaluates the likelihood over every distinct row: a cancel is asked
        // about before each one, and the fit ends unconverged, as when its budget is spent.
        if crate::stop::requested() || budget.exhausted() {
            return Minimum {
                x,
                value: fx,
                gradient_norm: gnorm,
                iterations: iteration,
                converged: false,
                inverse_hessian: h,
            };
        }
        if gnorm < GRADIENT_TOLERANCE {
            return Minimum {
                x,
                value: fx,
                gradient_norm: gnorm,
                iterations: iteration,
                converged: true,
                inverse_hessian: h,
            };
        }
        let mut direction: Vec<f64> = (0..n)
            .map(|i| -(0..n).map(|j| h[i * n + j] * g[j]).sum::<f64>())
            .collect();
        let mut slope = dot(&direction, &g);
        if slope >= 0.0 {
            // Lost positive definiteness: restart from steepest descent.
            for i in 0..n {
                for j in 0..n {
                    h[i * n + j] = if i == j { 1.0 } else { 0.0 };
                }
            }
            direction = g.iter().map(|v| -v).collect();
            slope = dot(&direction, &g);
        }
        // Keep the first trial inside a unit box in log space: a factor of e per parameter.
        let longest = inf_norm(&direction);
        let mut step = if longest > 1.0 { 1.0 / longest } else { 1.0 };
        let mut accepted = None;
        for _ in 0..60 {
            if crate::stop::requested() || !budget.spend() {
                break;
            }
            let trial: Vec<f64> = x
                .iter()
                .zip(&direction)
                .map(|(xi, di)| xi + step * di)
                .collect();
            let (ft, gt) = f(&trial);
            if ft.is_finite() && ft <= fx + 1e-4 * step * slope && gt.iter().all(|v| v.is_finite())
            {
                accepted = Some((trial, ft, gt));
                break;
            }
            step *= 0.5;
        }
        let Some((next, fnext, gnext)) = accepted else {
            // No decrease along a descent direction: at the precision floor of the objective.
            return Minimum {
                x,
                value: fx,
                gradient_norm: gnorm,
                iterations: iteration,
                converged: gnorm < 100.0 * GRADIENT_TOLERANCE,
                inverse_hessian: h,
            };
        };
        let s: Vec<f64> = next.iter().zip(&x).map(|(a, b)| a - b).collect();
        let y: Vec<f64> = gnext.iter().zip(&g).map(|(a, b)| a - b).collect();
        let sy = dot(&s, &y);
        if sy > 1e-12 * dot(&s, &s).sqrt() * dot(&y, &y).sqrt() && sy > 0.0 {
            if first_step {
                let scale = sy / dot(&y, &y);
                for v in h.iter_mut() {
                    *v *= scale;
                }
                first_step = false;
            }
            // H ← (I − ρ s yᵀ) H (I − ρ y sᵀ) + ρ s sᵀ
            let rho = 1.0 / sy;
            let hy: Vec<f64> = (0..n)
                .map(|i| (0..n).map(|j| h[i * n + j] * y[j]).sum())
                .collect();
            let yhy = dot(&y, &hy);
            for i in 0..n {
                for j in 0..n {
                    h[i * n + j] += -rho * (s[i] * hy[j] + hy[i] * s[j])
                        + (rho * rho * yhy + rho) * s[i] * s[j];
                }
            }
        }
        let improvement = fx - fnext;
        x = next;
        fx = fnext;
        g = gnext;
        if improvement <= 1e-15 * fx.abs().max(1.0) {
            stalled += 1;
            if stalled >= 5 {
                let gnorm = inf_norm(&g);
                return Minimum {
                    x,
                    value: fx,
                    gradient_norm: gnorm,
                    iterations: iteration + 1,
                    converged: gnorm < 100.0 * GRADIENT_TOLERANCE,
                    inverse_hessian: h,
                };
            }
        } else {
            stalled = 0;
        }
    }
    let gnorm = inf_norm(&g);
    Minimum {
        x,
        value: fx,
        gradient_norm: gnorm,
        iterations: MAX_ITERATIONS,
        converged: false,
        inverse_hessian: h,
    }
}

/// The Hessian of `f` at `x` by central differences of its gradient, symmetrised, row-major.
pub fn hessian(f: &ValueGrad<'_>, x: &[f64]) -> Vec<f64> {
    let n = x.len();
    let h = HESSIAN_STEP;
    let mut out = vec![0.0; n * n];
    let mut p = x.to_vec();
    for i in 0..n {
        p[i] = x[i] + h;
        let up = f(&p).1;
        p[i] = x[i] - h;
        let down = f(&p).1;
        p[i] = x[i];
        for j in 0..n {
            out[i * n + j] += (up[j] - down[j]) / (4.0 * h);
            out[j * n + i] += (up[j] - down[j]) / (4.0 * h);
        }
    }
    out
}

/// The inverse of a symmetric positive-definite matrix by Cholesky, or None if it is not
/// positive definite (a saddle or a flat direction: no standard errors exist there).
pub fn invert_spd(m: &[f64], n: usize) -> Option<Vec<f64>> {
    let mut l = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let mut sum = m[i * n + j];
            for k in 0..j {
                sum -= l[i * n + k] * l[j * n + k];
            }
            if i == j {
                if sum.is_nan() || sum <= 0.0 || !sum.is_finite() {
                    return None;
                }
                l[i * n + i] = sum.sqrt();
            } else {
                l[i * n + j] = sum / l[j * n + j];
            }
        }
    }
    // Solve L Lᵀ X = I column by column.
    let mut inv = vec![0.0; n * n];
    for col in 0..n {
        let mut y = vec![0.0; n];
        for i in 0..n {
            let mut sum = if i == col { 1.0 } else { 0.0 };
            for k in 0..i {
                sum -= l[i * n + k] * y[k];
            }
            y[i] = sum / l[i * n + i];
        }
        for i in (0..n).rev() {
            let mut sum = y[i];
            for k in i + 1..n {
                sum -= l[k * n + i] * inv[k * n + col];
            }
            inv[i * n + col] = sum / l[i * n + i];
        }
    }
    Some(inv)
}

/// Eigenvalues and unit eigenvectors (as columns, row-major) of a small symmetric matrix, by
/// cyclic Jacobi rotations.
pub fn symmetric_eigen(m: &[f64], n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut a = m.to_vec();
    let mut v = vec![0.0; n * n];
    for i in 0..n {
        v[i * n + i] = 1.0;
    }
    for _sweep in 0..100 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i * n + j] * a[i * n + j])
            .sum();
        if off < 1e-30 {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[p * n + q];
                if apq.abs() < 1e-300 {
                    continue;
                }
                let theta = (a[q * n + q] - a[p * n + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let (akp, akq) = (a[k * n + p], a[k * n + q]);
                    a[k * n + p] = c * akp - s * akq;
                    a[k * n + q] = s * akp + c * akq;
                }
                for k in 0..n {
                    let (apk, aqk) = (a[p * n + k], a[q * n + k]);
                    a[p * n + k] = c * apk - s * aqk;
                    a[q * n + k] = s * apk + c * aqk;
                }
                for k in 0..n {
                    let (vkp, vkq) = (v[k * n + p], v[k * n + q]);
                    v[k * n + p] = c * vkp - s * vkq;
                    v[k * n + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    ((0..n).map(|i| a[i * n + i]).collect(), v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bfgs_finds_the_rosenbrock_minimum() {
        let f = |p: &[f64]| {
            let value = (1.0 - p[0]).powi(2) + 100.0 * (p[1] - p[0] * p[0]).powi(2);
            let dx = -2.0 * (1.0 - p[0]) - 400.0 * p[0] * (p[1] - p[0] * p[0]);
            let dy = 200.0 * (p[1] - p[0] * p[0]);
            (value, vec![dx, dy])
        };
        let m = bfgs(&f, &[-1.2, 1.0], &Budget::unlimited());
        assert!(m.converged, "{m:?}");
        assert!(
            (m.x[0] - 1.0).abs() < 1e-5 && (m.x[1] - 1.0).abs() < 1e-5,
            "{m:?}"
        );
    }

    #[test]
    fn a_requested_stop_ends_the_iterations_unconverged() {
        let evaluations = std::sync::atomic::AtomicUsize::new(0);
        let f = |p: &[f64]| {
            evaluations.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let value = (1.0 - p[0]).powi(2) + 100.0 * (p[1] - p[0] * p[0]).powi(2);
            let dx = -2.0 * (1.0 - p[0]) - 400.0 * p[0] * (p[1] - p[0] * p[0]);
            let dy = 200.0 * (p[1] - p[0] * p[0]);
            (value, vec![dx, dy])
        };
        let m = crate::stop::stopping(|| bfgs(&f, &[-1.2, 1.0], &Budget::unlimited()));
        assert!(!m.converged);
        assert_eq!(m.iterations, 0);
        // Only the start was evaluated; without the stop the fit takes dozens of evaluations.
        assert_eq!(evaluations.load(std::sync::atomic::Ordering::Relaxed), 1);
        assert!(bfgs(&f, &[-1.2, 1.0], &Budget::unlimited()).converged);
    }

    #[test]
    fn hessian_and_inverse_of_a_quadratic() {
        let f = |p: &[f64]| {
            let value = 2.0 * p[0] * p[0] + p[0] * p[1] + 3.0 * p[1] * p[1];
            (value, vec![4.0 * p[0] + p[1], p[0] + 6.0 * p[1]])
        };
        let h = hessian(&f, &[0.3, -0.2]);
        let want = [4.0, 1.0, 1.0, 6.0];
        for (g, w) in h.iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "{h:?}");
        }
        let inv = invert_spd(&h, 2).unwrap();
        let det = 23.0;
        let want_inv = [6.0 / det, -1.0 / det, -1.0 / det, 4.0 / det];
        for (g, w) in inv.iter().zip(want_inv) {
            assert!((g - w).abs() < 1e-6, "{inv:?}");
        }
        assert!(invert_spd(&[1.0, 2.0, 2.0, 1.0], 2).is_none());
    }

    #[test]
    fn eigen_decomposition_reconstructs_the_matrix() {
        let m = [4.0, 1.0, 0.5, 1.0, 3.0, 0.2, 0.5, 0.2, 1e-6];
        let (values, vectors) = symmetric_eigen(&m, 3);
        for i in 0..3 {
            for j in 0..3 {
                let back: f64 = (0..3)
                    .map(|k| vectors[i * 3 + k] * values[k] * vectors[j * 3 + k])
                    .sum();
                assert!((back - m[i * 3 + j]).abs() < 1e-12, "{values:?}");
            }
        }
    }
}
