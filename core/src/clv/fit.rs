//! Maximum-likelihood fits of the models, with the safeguards the libraries lack: distinct rows
//! with counts, time rescaled so every parameter is of order one, several starts, and a result
//! that is returned only if it converged to a proper interior maximum.

use rayon::prelude::*;

use super::bgnbd::BetaGeometric;
use super::gamma_gamma::{self, SpendRow};
use super::optimize::{self, Budget, Minimum, ValueGrad};
use super::{ModelError, ModelKind, Summary, pareto_nbd};

/// Rows per parallel chunk of a likelihood sum. Chunks are summed in their order, so a fit gives
/// the same digits whatever the number of threads.
const CHUNK: usize = 8192;

/// Σ over chunks of `f(chunk)`, in parallel when there is more than one chunk.
fn chunked<R: Sync, const K: usize>(
    rows: &[R],
    f: impl Fn(&[R]) -> Result<(f64, [f64; K]), ModelError> + Sync,
) -> Result<(f64, Vec<f64>), ModelError> {
    let parts: Vec<Result<(f64, [f64; K]), ModelError>> = if rows.len() > CHUNK {
        rows.par_chunks(CHUNK).map(&f).collect()
    } else {
        vec![f(rows)]
    };
    let mut value = 0.0;
    let mut grad = vec![0.0; K];
    for part in parts {
        let (v, g) = part?;
        value += v;
        for (total, gi) in grad.iter_mut().zip(g) {
            *total += gi;
        }
    }
    Ok((value, grad))
}

/// What a fit found, in the caller's units.
#[derive(Debug, Clone, PartialEq)]
pub struct FitReport {
    pub kind: ModelKind,
    pub params: Vec<f64>,
    pub std_errors: Vec<f64>,
    /// Σ ln L at the parameters, without the penalty, in the data's own units.
    pub log_likelihood: f64,
    /// Customers (the sum of the row weights).
    pub customers: f64,
    /// Distinct rows the likelihood ran over.
    pub distinct_rows: usize,
    pub iterations: usize,
    /// Largest gradient component of the mean negative log-likelihood at the optimum.
    pub gradient_norm: f64,
    pub starts: usize,
    /// How many starts reached the best optimum (to 1e-7 relative).
    pub starts_at_best: usize,
}

/// Parameters outside [1/BOUND, BOUND] (in rescaled units) mean the fit ran off along a ridge
/// toward a limit of the model, such as Gamma-Gamma's p → ∞, v → 0.
const DEGENERATE_BOUND: f64 = 1e6;

/// Collapses identical rows into one with their count as weight, sorted by frequency (which the
/// likelihoods use to share their gamma terms).
pub fn distinct_rows(rows: &[Summary]) -> Vec<Summary> {
    let mut sorted = rows.to_vec();
    sorted.sort_by(|a, b| {
        a.frequency
            .total_cmp(&b.frequency)
            .then(a.recency.total_cmp(&b.recency))
            .then(a.age.total_cmp(&b.age))
    });
    let mut out: Vec<Summary> = Vec::with_capacity(sorted.len());
    for row in sorted {
        match out.last_mut() {
            Some(last)
                if last.frequency == row.frequency
                    && last.recency == row.recency
                    && last.age == row.age =>
            {
                last.weight += row.weight
            }
            _ => out.push(row),
        }
    }
    out
}

/// Fits BG/NBD, MBG/NBD or Pareto/NBD. `penalizer` adds `penalizer · Σ θ²` to the mean negative
/// log-likelihood, with θ the parameters in time rescaled to the longest T (as lifetimes does).
pub fn fit_transactions(
    kind: ModelKind,
    rows: &[Summary],
    penalizer: f64,
) -> Result<FitReport, ModelError> {
    fit_transactions_within(kind, rows, penalizer, &Budget::unlimited())
}

/// [`fit_transactions`] within `budget`: [`ModelError::OverBudget`] once it is spent.
pub fn fit_transactions_within(
    kind: ModelKind,
    rows: &[Summary],
    penalizer: f64,
    budget: &Budget,
) -> Result<FitReport, ModelError> {
    // A Pareto/NBD row costs two hypergeometric series: exploring pays off on a sample sooner.
    let sample_above = if kind == ModelKind::ParetoNbd {
        PARETO_SAMPLE_ABOVE
    } else {
        SAMPLE_ABOVE
    };
    fit_transactions_with(kind, rows, penalizer, sample_above, budget)
}

/// [`fit_transactions`], exploring on a sample when there are more than `sample_above`
/// distinct rows.
pub(crate) fn fit_transactions_with(
    kind: ModelKind,
    rows: &[Summary],
    penalizer: f64,
    sample_above: usize,
    budget: &Budget,
) -> Result<FitReport, ModelError> {
    if !kind.is_transaction_model() {
        return Err(ModelError::BadArgument(format!(
            "{} is a spend model; fit it on spend rows",
            kind.name()
        )));
    }
    check_penalizer(penalizer)?;
    for row in rows {
        row.check()?;
    }
    let rows = distinct_rows(rows);
    if rows.is_empty() {
        return Err(ModelError::NoCustomers);
    }
    if rows.iter().all(|r| r.frequency == 0.0) {
        return Err(ModelError::NoRepeatPurchases);
    }
    let scale = rows.iter().fold(0.0_f64, |m, r| m.max(r.age));
    let scale = if scale > 0.0 { scale } else { 1.0 };
    let scaled: Vec<Summary> = rows
        .iter()
        .map(|r| Summary {
            recency: r.recency / scale,
            age: r.age / scale,
            ..*r
        })
        .collect();
    let ln_likelihood = |p: &[f64], data: &[Summary]| -> Result<(f64, Vec<f64>), ModelError> {
        chunked(data, |chunk| match kind {
            ModelKind::BgNbd => Ok(BetaGeometric { modified: false }.ln_likelihood_grad(p, chunk)),
            ModelKind::MbgNbd => Ok(BetaGeometric { modified: true }.ln_likelihood_grad(p, chunk)),
            _ => pareto_nbd::ln_likelihood_grad(p, chunk),
        })
    };
    // The time-carrying parameters: alpha for all three, beta for Pareto/NBD.
    let time_params: &[usize] = if kind == ModelKind::ParetoNbd {
        &[1, 3]
    } else {
        &[1]
    };
    let starts = transaction_starts(kind, &scaled);
    let full = |p: &[f64]| ln_likelihood(p, &scaled);
    let sampled: Vec<Summary> = if scaled.len() > sample_above {
        // A quarter of the rows, at most SAMPLE_SIZE: enough to land within a few polishing
        // steps of the optimum.
        let size = (scaled.len() / 4).min(SAMPLE_SIZE);
        weighted_sample(
            &scaled,
            |r| r.weight,
            |r, w| Summary { weight: w, ..r },
            size,
        )
    } else {
        Vec::new()
    };
    let on_sample = |p: &[f64]| ln_likelihood(p, &sampled);
    let (natural, report) = fit_common(
        kind,
        &starts,
        penalizer,
        Likelihood {
            ln_likelihood: &full,
            customers: weight_total(&scaled),
        },
        (!sampled.is_empty()).then(|| Likelihood {
            ln_likelihood: &on_sample,
            customers: weight_total(&sampled),
        }),
        budget,
    )?;
    let mut params = natural;
    let mut std_errors = report.std_errors.clone();
    for &i in time_params {
        params[i] *= scale;
        std_errors[i] *= scale;
    }
    let log_likelihood = ln_likelihood(&params, &rows)?.0;
    Ok(FitReport {
        params,
        std_errors,
        log_likelihood,
        distinct_rows: rows.len(),
        ..report
    })
}

/// Two starts, run in parallel: one from the data's mean purchase rate (r = 1, alpha = T̄/x̄, so
/// the mean rate r/alpha matches), one fixed, far from it. Agreement between them is reported;
/// disagreement means a likelihood with several optima. Pareto/NBD starts with beta = alpha,
/// where its hypergeometric terms are exactly 1, instead of far apart, where their series need
/// hundreds of terms.
fn transaction_starts(kind: ModelKind, scaled: &[Summary]) -> Vec<Vec<f64>> {
    let total = weight_total(scaled);
    let mean_x = scaled.iter().map(|r| r.weight * r.frequency).sum::<f64>() / total;
    let mean_t = scaled.iter().map(|r| r.weight * r.age).sum::<f64>() / total;
    let alpha = (mean_t / mean_x.max(1e-6)).clamp(1e-3, 1e3);
    if kind == ModelKind::ParetoNbd {
        vec![vec![1.0, alpha, 1.0, alpha], vec![1.0, 1.0, 1.0, 1.0]]
    } else {
        vec![vec![1.0, alpha, 1.0, 3.0], vec![1.0, 1.0, 1.0, 1.0]]
    }
}

/// Fits Gamma-Gamma on customers with x ≥ 1 and a mean repeat spend > 0. Money is rescaled to
/// the mean of the mean spends during the fit (the likelihood only shifts by a constant), so v
/// starts near its optimum's order whatever the currency.
pub fn fit_spend(rows: &[SpendRow], penalizer: f64) -> Result<FitReport, ModelError> {
    fit_spend_within(rows, penalizer, &Budget::unlimited())
}

/// [`fit_spend`] within `budget`: [`ModelError::OverBudget`] once it is spent.
pub fn fit_spend_within(
    rows: &[SpendRow],
    penalizer: f64,
    budget: &Budget,
) -> Result<FitReport, ModelError> {
    check_penalizer(penalizer)?;
    for row in rows {
        if !(row.frequency >= 1.0
            && row.frequency.fract() == 0.0
            && row.mean_spend > 0.0
            && row.mean_spend.is_finite()
            && row.weight > 0.0)
        {
            return Err(ModelError::InvalidSpend {
                frequency: row.frequency,
                mean_spend: row.mean_spend,
            });
        }
    }
    if rows.is_empty() {
        return Err(ModelError::NoRepeatCustomers);
    }
    let total = weight_total_spend(rows);
    let scale = rows.iter().map(|r| r.weight * r.mean_spend).sum::<f64>() / total;
    let scaled_rows: Vec<SpendRow> = rows
        .iter()
        .map(|r| SpendRow {
            mean_spend: r.mean_spend / scale,
            ..*r
        })
        .collect();
    let mut scaled = gamma_gamma::prepare(&scaled_rows);
    // Sorted by frequency, the likelihood shares its gamma terms between rows.
    // (Positive floats order as their bits do.)
    scaled.sort_unstable_by_key(|r| (r.frequency.to_bits(), r.mean_spend.to_bits()));
    // Two starts, run in parallel: p = q = v = 1 (on the scaled money), and one far from it.
    let starts = vec![vec![1.0, 1.0, 1.0], vec![5.0, 5.0, 5.0]];
    let full = |p: &[f64]| {
        chunked(&scaled, |chunk| {
            Ok(gamma_gamma::ln_likelihood_grad(p, chunk))
        })
    };
    let sampled: Vec<gamma_gamma::Prepared> = if scaled.len() > SAMPLE_ABOVE {
        weighted_sample(
            &scaled,
            |r| r.weight,
            |r, w| gamma_gamma::Prepared { weight: w, ..r },
            SAMPLE_SIZE,
        )
    } else {
        Vec::new()
    };
    let on_sample = |p: &[f64]| {
        chunked(&sampled, |chunk| {
            Ok(gamma_gamma::ln_likelihood_grad(p, chunk))
        })
    };
    let (mut params, report) = fit_common(
        ModelKind::GammaGamma,
        &starts,
        penalizer,
        Likelihood {
            ln_likelihood: &full,
            customers: total,
        },
        (!sampled.is_empty()).then(|| Likelihood {
            ln_likelihood: &on_sample,
            customers: sampled.iter().map(|r| r.weight).sum(),
        }),
        budget,
    )?;
    params[2] *= scale;
    let mut std_errors = report.std_errors.clone();
    std_errors[2] *= scale;
    // With money in units of `scale`, ln L changes by −ln(scale) per customer.
    let scaled_ll = full(&report.params)?.0;
    Ok(FitReport {
        std_errors,
        log_likelihood: scaled_ll - total * scale.ln(),
        distinct_rows: rows.len(),
        params,
        ..report
    })
}

/// A ridge toward a limit of the model (the supremum is at infinity, as for Gamma-Gamma when every
/// customer spends alike) can stop BFGS at a finite point where the slope is below tolerance.
/// Walk far along the flattest direction of the log-likelihood: at a true maximum that costs
/// likelihood; along a ridge it costs almost none, or gains.
fn ridge_check(
    objective: &ValueGrad<'_>,
    theta: &[f64],
    hessian: &[f64],
    value: f64,
    customers: f64,
    names: &[&'static str],
) -> Result<(), ModelError> {
    const STEP: f64 = 4.0; // a factor e^4 ≈ 55 on the parameters
    const MIN_COST: f64 = 0.01; // in total log-likelihood
    let n = theta.len();
    let (values, vectors) = optimize::symmetric_eigen(hessian, n);
    let flattest = (0..n)
        .min_by(|&a, &b| values[a].total_cmp(&values[b]))
        .unwrap_or(0);
    let direction: Vec<f64> = (0..n).map(|i| vectors[i * n + flattest]).collect();
    for sign in [1.0, -1.0] {
        let far: Vec<f64> = theta
            .iter()
            .zip(&direction)
            .map(|(t, d)| t + sign * STEP * d)
            .collect();
        let cost = (objective(&far).0 - value) * customers;
        if cost.is_nan() || cost < MIN_COST {
            let (i, _) = direction
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
                .unwrap_or((0, &0.0));
            let toward = if sign * direction[i] > 0.0 {
                f64::INFINITY
            } else {
                0.0
            };
            return Err(ModelError::Degenerate {
                parameter: names[i],
                value: toward,
            });
        }
    }
    Ok(())
}

fn check_penalizer(penalizer: f64) -> Result<(), ModelError> {
    if penalizer.is_finite() && penalizer >= 0.0 {
        Ok(())
    } else {
        Err(ModelError::BadArgument(format!(
            "the penalizer must be a finite number >= 0, got {penalizer}"
        )))
    }
}

fn weight_total(rows: &[Summary]) -> f64 {
    rows.iter().map(|r| r.weight).sum()
}

fn weight_total_spend(rows: &[SpendRow]) -> f64 {
    rows.iter().map(|r| r.weight).sum()
}

/// Runs BFGS on the log-parameters from every start, keeps the best converged optimum, and
/// checks it: not degenerate, a proper maximum. Returns the natural parameters (in the rescaled
/// units) and a report whose log-likelihood the caller fills in the original units.
/// Σ ln L and its gradient at the given parameters.
type LnLikelihood<'a> = dyn Fn(&[f64]) -> Result<(f64, Vec<f64>), ModelError> + Sync + 'a;

/// A likelihood (with gradient) over one set of rows, and their total weight.
pub(crate) struct Likelihood<'a> {
    pub ln_likelihood: &'a LnLikelihood<'a>,
    pub customers: f64,
}

impl Likelihood<'_> {
    /// The mean negative log-likelihood plus the penalty, and its gradient, in log-parameters.
    fn objective(&self, penalizer: f64, theta: &[f64]) -> (f64, Vec<f64>) {
        let p: Vec<f64> = theta.iter().map(|t| t.exp()).collect();
        match (self.ln_likelihood)(&p) {
            Ok((ll, g)) => (
                -ll / self.customers + penalizer * p.iter().map(|v| v * v).sum::<f64>(),
                (0..p.len())
                    .map(|i| (-g[i] / self.customers + 2.0 * penalizer * p[i]) * p[i])
                    .collect(),
            ),
            Err(_) => (f64::NAN, vec![f64::NAN; p.len()]),
        }
    }
}

/// Distinct rows above which the starts run on a sample first.
const SAMPLE_ABOVE: usize = 40_000;
const PARETO_SAMPLE_ABOVE: usize = 800;
const SAMPLE_SIZE: usize = 20_000;

/// A systematic sample of about `target` rows with probability proportional to weight: walk the
/// rows, and take one each time the running weight passes a multiple of the step, with weight
/// step × times taken. Totals over the sample estimate totals over all rows without bias, and
/// the rows' order (by frequency, then recency and T) spreads it over the whole range.
pub(crate) fn weighted_sample<R: Copy>(
    rows: &[R],
    weight: impl Fn(&R) -> f64,
    reweight: impl Fn(R, f64) -> R,
    target: usize,
) -> Vec<R> {
    let total: f64 = rows.iter().map(&weight).sum();
    let step = total / target as f64;
    let mut next = step / 2.0;
    let mut running = 0.0;
    let mut out = Vec::with_capacity(target + 1);
    for row in rows {
        running += weight(row);
        let mut taken = 0.0;
        while running > next {
            taken += 1.0;
            next += step;
        }
        if taken > 0.0 {
            out.push(reweight(*row, taken * step));
        }
    }
    out
}

/// Runs BFGS on the log-parameters from every start (in parallel), keeps the best optimum, and
/// checks it: converged, not degenerate, a proper maximum. With a `sample`, the starts run on it
/// and the best is then polished on all rows from the sample's curvature, which takes a few
/// iterations instead of dozens. Returns the natural parameters (in the rescaled units) and a
/// report whose log-likelihood the caller fills in the original units.
fn fit_common(
    kind: ModelKind,
    starts: &[Vec<f64>],
    penalizer: f64,
    full: Likelihood<'_>,
    sample: Option<Likelihood<'_>>,
    budget: &Budget,
) -> Result<(Vec<f64>, FitReport), ModelError> {
    let customers = full.customers;
    let objective = |theta: &[f64]| full.objective(penalizer, theta);
    let explore = sample.as_ref().unwrap_or(&full);
    let explore_objective = |theta: &[f64]| explore.objective(penalizer, theta);
    let mut runs: Vec<Minimum> = starts
        .par_iter()
        .map(|s| {
            let theta: Vec<f64> = s.iter().map(|v| v.ln()).collect();
            optimize::bfgs(&explore_objective, &theta, budget)
        })
        .collect();
    let over_budget = || ModelError::OverBudget {
        seconds: budget.limit().map(|l| l.as_secs_f64()),
        evaluations: budget.evaluations(),
    };
    if budget.exhausted() {
        return Err(over_budget());
    }
    if sample.is_some() {
        let best = runs
            .iter()
            .filter(|m| m.value.is_finite())
            .min_by(|a, b| a.value.total_cmp(&b.value))
            .cloned();
        if let Some(best) = best {
            let polished =
                optimize::bfgs_from(&objective, &best.x, Some(&best.inverse_hessian), budget);
            if budget.exhausted() {
                return Err(over_budget());
            }
            // Only the polished optimum speaks for all rows; the sample runs count starts.
            let agree = runs
                .iter()
                .filter(|m| {
                    m.converged && (m.value - best.value).abs() <= 1e-7 * best.value.abs().max(1.0)
                })
                .count();
            let iterations = runs.iter().map(|m| m.iterations).sum::<usize>();
            runs = vec![Minimum {
                iterations: iterations + polished.iterations,
                ..polished
            }];
            return finish_fit(kind, starts.len(), agree, &runs[0], &objective, customers);
        }
    }
    let best = runs
        .iter()
        .filter(|m| m.value.is_finite())
        .min_by(|a, b| a.value.total_cmp(&b.value));
    let Some(best) = best else {
        // Every start failed to evaluate: surface the numerical reason.
        let p: Vec<f64> = starts[0].clone();
        (full.ln_likelihood)(&p)?;
        return Err(ModelError::NotConverged {
            gradient_norm: f64::NAN,
            iterations: 0,
        });
    };
    let agree = runs
        .iter()
        .filter(|m| m.converged && (m.value - best.value).abs() <= 1e-7 * best.value.abs().max(1.0))
        .count();
    let mut best = best.clone();
    best.iterations = runs.iter().map(|m| m.iterations).sum();
    finish_fit(kind, starts.len(), agree, &best, &objective, customers)
}

/// Checks the chosen optimum and reports it.
fn finish_fit(
    kind: ModelKind,
    starts: usize,
    starts_at_best: usize,
    best: &Minimum,
    objective: &ValueGrad<'_>,
    customers: f64,
) -> Result<(Vec<f64>, FitReport), ModelError> {
    let names = kind.param_names();
    for (i, theta) in best.x.iter().enumerate() {
        let value = theta.exp();
        if !(1.0 / DEGENERATE_BOUND..=DEGENERATE_BOUND).contains(&value) {
            // Where on the ridge the search stopped says nothing; which way it ran does.
            return Err(ModelError::Degenerate {
                parameter: names[i],
                value: if value > 1.0 { f64::INFINITY } else { 0.0 },
            });
        }
    }
    if !best.converged {
        return Err(ModelError::NotConverged {
            gradient_norm: best.gradient_norm,
            iterations: best.iterations,
        });
    }
    let hessian = optimize::hessian(objective, &best.x);
    let n = best.x.len();
    let covariance = optimize::invert_spd(&hessian, n).ok_or(ModelError::NotAMaximum)?;
    ridge_check(objective, &best.x, &hessian, best.value, customers, names)?;
    let params: Vec<f64> = best.x.iter().map(|t| t.exp()).collect();
    // Delta method from log-parameters: se(p) = p · sqrt(Var θ), with Var θ = H⁻¹ / N for the
    // Hessian H of the mean objective.
    let std_errors = (0..n)
        .map(|i| params[i] * (covariance[i * n + i] / customers).sqrt())
        .collect();
    let report = FitReport {
        kind,
        params: params.clone(),
        std_errors,
        log_likelihood: f64::NAN,
        customers,
        distinct_rows: 0,
        iterations: best.iterations,
        gradient_norm: best.gradient_norm,
        starts,
        starts_at_best,
    };
    Ok((params, report))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flat_direction_is_a_ridge_and_a_curved_one_is_not() {
        let names = ["x", "y"];
        let at = [0.0, 0.0];
        let flat = |t: &[f64]| {
            (
                t[0] * t[0] + 1e-4 * t[1] * t[1],
                vec![2.0 * t[0], 2e-4 * t[1]],
            )
        };
        let h = optimize::hessian(&flat, &at);
        assert_eq!(
            ridge_check(&flat, &at, &h, 0.0, 1.0, &names),
            Err(ModelError::Degenerate {
                parameter: "y",
                value: f64::INFINITY
            })
        );
        let bowl = |t: &[f64]| (t[0] * t[0] + t[1] * t[1], vec![2.0 * t[0], 2.0 * t[1]]);
        let h = optimize::hessian(&bowl, &at);
        assert_eq!(ridge_check(&bowl, &at, &h, 0.0, 1.0, &names), Ok(()));
    }
}
