//! Maximum-likelihood fits of the models, with the safeguards the libraries lack: distinct rows
//! with counts, time rescaled so every parameter is of order one, several starts, and a result
//! that is returned only if it converged to a proper interior maximum.

use super::bgnbd::BetaGeometric;
use super::gamma_gamma::{self, SpendRow};
use super::optimize::{self, Minimum};
use super::{ModelError, ModelKind, Summary, pareto_nbd};

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
    let ln_likelihood = |p: &[f64], data: &[Summary]| -> Result<f64, ModelError> {
        match kind {
            ModelKind::BgNbd => Ok(BetaGeometric { modified: false }.ln_likelihood(p, data)),
            ModelKind::MbgNbd => Ok(BetaGeometric { modified: true }.ln_likelihood(p, data)),
            ModelKind::ParetoNbd => pareto_nbd::ln_likelihood(p, data),
            ModelKind::GammaGamma => unreachable!("rejected above"),
        }
    };
    // The time-carrying parameters: alpha for all three, beta for Pareto/NBD.
    let time_params: &[usize] = if kind == ModelKind::ParetoNbd {
        &[1, 3]
    } else {
        &[1]
    };
    let starts: [[f64; 4]; 3] = [
        [1.0, 1.0, 1.0, 1.0],
        [1.0, 3.0, 1.0, 3.0],
        [0.1, 1.0, 0.5, 5.0],
    ];
    let starts: Vec<Vec<f64>> = starts.iter().map(|s| s.to_vec()).collect();
    let (natural, report) = fit_common(
        kind,
        &starts,
        penalizer,
        |p| ln_likelihood(p, &scaled),
        weight_total(&scaled),
    )?;
    let mut params = natural;
    let mut std_errors = report.std_errors.clone();
    for &i in time_params {
        params[i] *= scale;
        std_errors[i] *= scale;
    }
    let log_likelihood = ln_likelihood(&params, &rows)?;
    Ok(FitReport {
        params,
        std_errors,
        log_likelihood,
        distinct_rows: rows.len(),
        ..report
    })
}

/// Fits Gamma-Gamma on customers with x ≥ 1 and a mean repeat spend > 0. Money is rescaled to
/// the mean of the mean spends during the fit (the likelihood only shifts by a constant), so v
/// starts near its optimum's order whatever the currency.
pub fn fit_spend(rows: &[SpendRow], penalizer: f64) -> Result<FitReport, ModelError> {
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
    let scaled: Vec<SpendRow> = rows
        .iter()
        .map(|r| SpendRow {
            mean_spend: r.mean_spend / scale,
            ..*r
        })
        .collect();
    let starts = vec![
        vec![1.0, 1.0, 1.0],
        vec![5.0, 5.0, 5.0],
        vec![0.5, 2.0, 0.5],
    ];
    let (mut params, report) = fit_common(
        ModelKind::GammaGamma,
        &starts,
        penalizer,
        |p| Ok(gamma_gamma::ln_likelihood(p, &scaled)),
        total,
    )?;
    params[2] *= scale;
    let mut std_errors = report.std_errors.clone();
    std_errors[2] *= scale;
    Ok(FitReport {
        std_errors,
        log_likelihood: gamma_gamma::ln_likelihood(&params, rows),
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
    objective: &dyn Fn(&[f64]) -> f64,
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
        let cost = (objective(&far) - value) * customers;
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
fn fit_common(
    kind: ModelKind,
    starts: &[Vec<f64>],
    penalizer: f64,
    ln_likelihood: impl Fn(&[f64]) -> Result<f64, ModelError>,
    customers: f64,
) -> Result<(Vec<f64>, FitReport), ModelError> {
    let objective = |theta: &[f64]| -> f64 {
        let p: Vec<f64> = theta.iter().map(|t| t.exp()).collect();
        match ln_likelihood(&p) {
            Ok(ll) => -ll / customers + penalizer * p.iter().map(|v| v * v).sum::<f64>(),
            Err(_) => f64::NAN,
        }
    };
    let runs: Vec<Minimum> = starts
        .iter()
        .map(|s| {
            let theta: Vec<f64> = s.iter().map(|v| v.ln()).collect();
            optimize::bfgs(&objective, &theta)
        })
        .collect();
    let best = runs
        .iter()
        .filter(|m| m.value.is_finite())
        .min_by(|a, b| a.value.total_cmp(&b.value));
    let Some(best) = best else {
        // Every start failed to evaluate: surface the numerical reason.
        let p: Vec<f64> = starts[0].clone();
        ln_likelihood(&p)?;
        return Err(ModelError::NotConverged {
            gradient_norm: f64::NAN,
            iterations: 0,
        });
    };
    let names = kind.param_names();
    for (i, theta) in best.x.iter().enumerate() {
        let value = theta.exp();
        if !(1.0 / DEGENERATE_BOUND..=DEGENERATE_BOUND).contains(&value) {
            return Err(ModelError::Degenerate {
                parameter: names[i],
                value,
            });
        }
    }
    if !best.converged {
        return Err(ModelError::NotConverged {
            gradient_norm: best.gradient_norm,
            iterations: best.iterations,
        });
    }
    let hessian = optimize::hessian(&objective, &best.x);
    let n = best.x.len();
    let covariance = optimize::invert_spd(&hessian, n).ok_or(ModelError::NotAMaximum)?;
    ridge_check(&objective, &best.x, &hessian, best.value, customers, names)?;
    let params: Vec<f64> = best.x.iter().map(|t| t.exp()).collect();
    // Delta method from log-parameters: se(p) = p · sqrt(Var θ), with Var θ = H⁻¹ / N for the
    // Hessian H of the mean objective.
    let std_errors = (0..n)
        .map(|i| params[i] * (covariance[i * n + i] / customers).sqrt())
        .collect();
    let starts_at_best = runs
        .iter()
        .filter(|m| m.converged && (m.value - best.value).abs() <= 1e-7 * best.value.abs().max(1.0))
        .count();
    let report = FitReport {
        kind,
        params: params.clone(),
        std_errors,
        log_likelihood: f64::NAN,
        customers,
        distinct_rows: 0,
        iterations: runs.iter().map(|m| m.iterations).sum(),
        gradient_norm: best.gradient_norm,
        starts: starts.len(),
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
        let flat = |t: &[f64]| t[0] * t[0] + 1e-4 * t[1] * t[1];
        let h = optimize::hessian(&flat, &at);
        assert_eq!(
            ridge_check(&flat, &at, &h, 0.0, 1.0, &names),
            Err(ModelError::Degenerate {
                parameter: "y",
                value: f64::INFINITY
            })
        );
        let bowl = |t: &[f64]| t[0] * t[0] + t[1] * t[1];
        let h = optimize::hessian(&bowl, &at);
        assert_eq!(ridge_check(&bowl, &at, &h, 0.0, 1.0, &names), Ok(()));
    }
}
