//! Special functions for the customer-base models, all in logarithms: the likelihoods and
//! predictions multiply gamma functions and powers that overflow f64 long before the quantities
//! of interest do (a customer with hundreds of purchases, a horizon of years).

pub use statrs::function::gamma::{digamma, ln_gamma};

/// ln B(a, b).
pub fn ln_beta(a: f64, b: f64) -> f64 {
    ln_gamma(a) + ln_gamma(b) - ln_gamma(a + b)
}

/// ln(e^x + e^y) without overflow; `-inf` is the empty term.
pub fn log_add_exp(x: f64, y: f64) -> f64 {
    if x == f64::NEG_INFINITY {
        return y;
    }
    if y == f64::NEG_INFINITY {
        return x;
    }
    let (hi, lo) = if x > y { (x, y) } else { (y, x) };
    hi + (lo - hi).exp().ln_1p()
}

/// ln(e^x + e^y) and the shares e^x / (e^x + e^y), e^y / (e^x + e^y), with one exp and one
/// ln_1p: the likelihoods' mixtures and their gradients' weights.
pub fn log_add_exp_weights(x: f64, y: f64) -> (f64, f64, f64) {
    if x >= y {
        let e = (y - x).exp();
        let total = 1.0 + e;
        (x + e.ln_1p(), 1.0 / total, e / total)
    } else {
        let e = (x - y).exp();
        let total = 1.0 + e;
        (y + e.ln_1p(), e / total, 1.0 / total)
    }
}

/// 1 / (1 + e^x), the form every "probability alive" takes, exact in both tails.
pub fn logistic_complement(x: f64) -> f64 {
    if x > 0.0 {
        let e = (-x).exp();
        e / (1.0 + e)
    } else {
        1.0 / (1.0 + x.exp())
    }
}

/// Why a hypergeometric value could not be computed to full precision.
#[derive(Debug, Clone, PartialEq)]
pub struct Hyp2f1Error {
    pub a: f64,
    pub b: f64,
    pub c: f64,
    pub z: f64,
}

impl std::fmt::Display for Hyp2f1Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the hypergeometric function 2F1({}, {}; {}; {}) did not converge",
            self.a, self.b, self.c, self.z
        )
    }
}

/// Series terms allowed per attempt. z within 1e-5 of 1 needs about this many terms in the
/// slower form; beyond it the other form is used.
const MAX_TERMS: usize = 2_000_000;
/// Rescale the running sum when it passes this, so terms that would overflow f64 stay finite.
const RESCALE_AT: f64 = 1e250;

/// ln ₂F₁(a, b; c; z) for 0 ≤ z < 1 and c > 0, where the value is positive (all the models' uses).
///
/// Two series: the Gauss series itself, and Euler's transform
/// ₂F₁(a, b; c; z) = (1 − z)^(c − a − b) ₂F₁(c − a, c − b; c; z). When a + b > c the Gauss series
/// diverges at z = 1 and, for a customer with many purchases, grows through e^700 before it turns;
/// Euler's transform then has small upper parameters and a large c and converges in a few terms.
/// Whichever form is tried first, a result is accepted only if its series converged without
/// cancelling more than six digits; otherwise the other form is tried, and if neither holds, an
/// error says so instead of a wrong number.
pub fn ln_hyp2f1(a: f64, b: f64, c: f64, z: f64) -> Result<f64, Hyp2f1Error> {
    let error = Hyp2f1Error { a, b, c, z };
    if !(0.0..1.0).contains(&z) || c <= 0.0 || !a.is_finite() || !b.is_finite() || !c.is_finite() {
        return Err(error);
    }
    if z == 0.0 {
        return Ok(0.0);
    }
    let direct = || ln_series(a, b, c, z);
    let euler = || ln_series(c - a, c - b, c, z).map(|s| s + (c - a - b) * (-z).ln_1p());
    let attempt = if a + b > c && z > 0.5 {
        euler().or_else(direct)
    } else {
        direct().or_else(euler)
    };
    attempt.ok_or(error)
}

/// ln ₂F₁(a, b; c; z) at several z at once, into `out`. The series' coefficients
/// (a)ₙ(b)ₙ/((c)ₙ n!) do not depend on z, so one pass over them serves every z: a customer's
/// expected purchases at each month of a CLV horizon cost little more than at the last month.
/// The form (Gauss or Euler) is chosen by the largest z; a z whose sum cancels or does not
/// converge is computed on its own by [`ln_hyp2f1`].
pub fn ln_hyp2f1_many(
    a: f64,
    b: f64,
    c: f64,
    zs: &[f64],
    out: &mut [f64],
) -> Result<(), Hyp2f1Error> {
    let zmax = zs.iter().fold(0.0_f64, |m, &z| m.max(z));
    let valid = c > 0.0 && a.is_finite() && b.is_finite() && c.is_finite();
    if !valid || zs.iter().any(|z| !(0.0..1.0).contains(z)) {
        return Err(Hyp2f1Error { a, b, c, z: zmax });
    }
    let euler = a + b > c && zmax > 0.5;
    let (sa, sb) = if euler { (c - a, c - b) } else { (a, b) };
    let k = zs.len();
    let mut sums = vec![1.0_f64; k];
    let mut powers = vec![1.0_f64; k];
    let mut largest = vec![1.0_f64; k];
    let mut done = vec![false; k];
    let mut remaining = k;
    let mut coef = 1.0_f64;
    let mut ln_scale = 0.0_f64;
    for n in 0..MAX_TERMS {
        if remaining == 0 {
            break;
        }
        let nf = n as f64;
        coef *= (sa + nf) * (sb + nf) / ((c + nf) * (nf + 1.0));
        for i in 0..k {
            if done[i] {
                continue;
            }
            powers[i] *= zs[i];
            let term = coef * powers[i];
            sums[i] += term;
            largest[i] = largest[i].max(sums[i].abs());
            let ratio = (sa + nf + 1.0) * (sb + nf + 1.0) / ((c + nf + 1.0) * (nf + 2.0)) * zs[i];
            if term == 0.0
                || (ratio.abs() < 1.0 && term.abs() < 1e-16 * sums[i].abs() * (1.0 - zs[i]))
            {
                done[i] = true;
                remaining -= 1;
            }
        }
        // One scale for every sum, so that terms that would overflow f64 stay finite.
        if coef.abs() > RESCALE_AT {
            coef /= RESCALE_AT;
            for i in 0..k {
                sums[i] /= RESCALE_AT;
                largest[i] /= RESCALE_AT;
            }
            ln_scale += RESCALE_AT.ln();
        }
    }
    for i in 0..k {
        let z = zs[i];
        out[i] = if z == 0.0 {
            0.0
        } else {
            let series = if done[i] {
                finish(sums[i], largest[i], ln_scale)
            } else {
                None
            };
            match series {
                Some(v) if euler => v + (c - a - b) * (-z).ln_1p(),
                Some(v) => v,
                None => ln_hyp2f1(a, b, c, z)?,
            }
        };
    }
    Ok(())
}

/// ln of the Gauss series Σ (a)ₙ(b)ₙ/((c)ₙ n!) zⁿ, or None when it does not converge within
/// [`MAX_TERMS`], is not positive, or loses more than six digits to cancellation.
fn ln_series(a: f64, b: f64, c: f64, z: f64) -> Option<f64> {
    let mut term = 1.0_f64;
    let mut sum = 1.0_f64;
    let mut largest = 1.0_f64;
    let mut ln_scale = 0.0_f64;
    for n in 0..MAX_TERMS {
        let n = n as f64;
        let ratio = (a + n) * (b + n) / ((c + n) * (n + 1.0)) * z;
        term *= ratio;
        sum += term;
        largest = largest.max(sum.abs());
        if sum.abs() > RESCALE_AT {
            term /= RESCALE_AT;
            sum /= RESCALE_AT;
            largest /= RESCALE_AT;
            ln_scale += RESCALE_AT.ln();
        }
        if term == 0.0 {
            break;
        }
        // Past the peak the terms fall at least geometrically with ratio → z, so the tail is
        // below term · 1/(1 − z).
        if ratio.abs() < 1.0 && term.abs() < 1e-16 * sum.abs() * (1.0 - z) {
            return finish(sum, largest, ln_scale);
        }
        if !sum.is_finite() {
            return None;
        }
    }
    if term == 0.0 {
        return finish(sum, largest, ln_scale);
    }
    None
}

/// ln ₂F₁(a, b; c; z) and its partial derivatives with respect to a, b, c and z, by the same
/// choice of series as [`ln_hyp2f1`]. The derivatives are summed alongside the series: the n-th
/// term's derivative in a is the term times Σ_{k<n} 1/(a + k), and so on, so the gradient of a
/// likelihood costs little more than its value.
pub fn ln_hyp2f1_grad(a: f64, b: f64, c: f64, z: f64) -> Result<(f64, [f64; 4]), Hyp2f1Error> {
    let error = Hyp2f1Error { a, b, c, z };
    if !(0.0..1.0).contains(&z) || c <= 0.0 || !a.is_finite() || !b.is_finite() || !c.is_finite() {
        return Err(error);
    }
    if z == 0.0 {
        return Ok((0.0, [0.0, 0.0, 0.0, a * b / c]));
    }
    let direct = || ln_series_grad(a, b, c, z);
    let euler = || {
        // ln F = (c − a − b) ln(1 − z) + ln S(c − a, c − b; c; z)
        ln_series_grad(c - a, c - b, c, z).map(|(v, [da, db, dc, dz])| {
            let l = (-z).ln_1p();
            (
                v + (c - a - b) * l,
                [
                    -l - da,
                    -l - db,
                    l + da + db + dc,
                    -(c - a - b) / (1.0 - z) + dz,
                ],
            )
        })
    };
    let attempt = if a + b > c && z > 0.5 {
        euler().or_else(direct)
    } else {
        direct().or_else(euler)
    };
    attempt.ok_or(error)
}

fn ln_series_grad(a: f64, b: f64, c: f64, z: f64) -> Option<(f64, [f64; 4])> {
    let mut term = 1.0_f64;
    let mut sum = 1.0_f64;
    let mut largest = 1.0_f64;
    let mut ln_scale = 0.0_f64;
    // Σ term·∂ln(term)/∂(a, b, c) and Σ n·term, scaled with the sum.
    let (mut sa, mut sb, mut sc, mut sz) = (0.0, 0.0, 0.0, 0.0);
    let (mut ha, mut hb, mut hc) = (0.0, 0.0, 0.0);
    for n in 0..MAX_TERMS {
        let n = n as f64;
        let ratio = (a + n) * (b + n) / ((c + n) * (n + 1.0)) * z;
        ha += 1.0 / (a + n);
        hb += 1.0 / (b + n);
        hc += 1.0 / (c + n);
        term *= ratio;
        sum += term;
        sa += term * ha;
        sb += term * hb;
        sc -= term * hc;
        sz += term * (n + 1.0);
        largest = largest.max(sum.abs());
        if sum.abs() > RESCALE_AT {
            term /= RESCALE_AT;
            sum /= RESCALE_AT;
            largest /= RESCALE_AT;
            sa /= RESCALE_AT;
            sb /= RESCALE_AT;
            sc /= RESCALE_AT;
            sz /= RESCALE_AT;
            ln_scale += RESCALE_AT.ln();
        }
        if term == 0.0 {
            break;
        }
        // The derivative sums weight the n-th term by up to n + harmonic sums; their tails
        // shrink like term·n/(1 − z)².
        let weight = (n + 2.0).max(ha.abs() + hb.abs() + hc.abs());
        if ratio.abs() < 1.0 && term.abs() * weight < 1e-16 * sum.abs() * (1.0 - z) * (1.0 - z) {
            return finish(sum, largest, ln_scale)
                .map(|v| (v, [sa / sum, sb / sum, sc / sum, sz / (z * sum)]));
        }
        if !sum.is_finite() {
            return None;
        }
    }
    if term == 0.0 {
        return finish(sum, largest, ln_scale)
            .map(|v| (v, [sa / sum, sb / sum, sc / sum, sz / (z * sum)]));
    }
    None
}

fn finish(sum: f64, largest: f64, ln_scale: f64) -> Option<f64> {
    if sum > 0.0 && largest / sum < 1e6 {
        Some(sum.ln() + ln_scale)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(got: f64, want: f64, rel: f64) {
        assert!(
            (got - want).abs() <= rel * want.abs().max(1e-300),
            "got {got}, want {want}"
        );
    }

    #[test]
    fn hyp2f1_closed_forms() {
        // 2F1(1,1;2;z) = -ln(1-z)/z
        for z in [1e-6_f64, 0.1, 0.5, 0.9, 0.999, 0.9999] {
            let want = -(-z).ln_1p() / z;
            close(ln_hyp2f1(1.0, 1.0, 2.0, z).unwrap().exp(), want, 1e-12);
        }
        // 2F1(a,b;b;z) = (1-z)^-a
        for (a, z) in [
            (0.25, 0.3_f64),
            (26.24, 0.62),
            (300.0, 0.95),
            (0.5, 0.999_999),
        ] {
            let want = -a * (-z).ln_1p();
            close(ln_hyp2f1(a, 3.5, 3.5, z).unwrap(), want, 1e-12);
        }
        // 2F1(1/2,1/2;3/2;z^2) = asin(z)/z
        for z in [0.2_f64, 0.7, 0.99] {
            close(
                ln_hyp2f1(0.5, 0.5, 1.5, z * z).unwrap().exp(),
                z.asin() / z,
                1e-12,
            );
        }
    }

    #[test]
    fn hyp2f1_large_parameters_stay_finite() {
        // A BG/NBD customer with 500 repeat purchases and a long horizon: the Gauss series
        // passes e^700; the value itself is (1-z)^(c-a-b) times a modest factor.
        let (r, a, b, x) = (0.24, 0.79, 2.43, 500.0);
        let z = 0.9;
        let got = ln_hyp2f1(r + x, b + x, a + b + x - 1.0, z).unwrap();
        assert!(got.is_finite() && got > 700.0, "{got}");
        // Against the Gauss series itself at a smaller z where both forms work.
        let small = 0.3;
        let direct = ln_series(r + x, b + x, a + b + x - 1.0, small).unwrap();
        close(
            ln_hyp2f1(r + x, b + x, a + b + x - 1.0, small).unwrap(),
            direct,
            1e-12,
        );
    }

    #[test]
    fn hyp2f1_rejects_outside_the_domain() {
        assert!(ln_hyp2f1(1.0, 1.0, 2.0, 1.0).is_err());
        assert!(ln_hyp2f1(1.0, 1.0, 2.0, -0.1).is_err());
        assert!(ln_hyp2f1(1.0, 1.0, 0.0, 0.5).is_err());
        assert!(ln_hyp2f1(f64::NAN, 1.0, 2.0, 0.5).is_err());
        // Too close to 1 for either series (about 1e10 terms): an error, not a partial sum.
        assert!(ln_hyp2f1(1.0, 1.0, 2.0, 1.0 - 1e-9).is_err());
    }

    #[test]
    fn hyp2f1_gradient_matches_finite_differences() {
        let cases = [
            (1.3, 0.7, 2.3, 0.4),
            (27.1, 1.6, 28.1, 0.08),
            (0.6, 2.4, 1.8, 0.95),
            (500.2, 502.4, 503.0, 0.9),
            (12.0, 3.0, 13.0, 0.999),
        ];
        for (a, b, c, z) in cases {
            let (v, g) = ln_hyp2f1_grad(a, b, c, z).unwrap();
            close(v, ln_hyp2f1(a, b, c, z).unwrap(), 1e-12);
            let x = [a, b, c, z];
            for i in 0..4 {
                let h = 1e-6 * x[i].abs().max(1e-3);
                let mut up = x;
                let mut down = x;
                up[i] += h;
                down[i] -= h;
                let fd = (ln_hyp2f1(up[0], up[1], up[2], up[3]).unwrap()
                    - ln_hyp2f1(down[0], down[1], down[2], down[3]).unwrap())
                    / (2.0 * h);
                assert!(
                    (g[i] - fd).abs() <= 1e-6 * fd.abs().max(1.0),
                    "{x:?} d{i}: {} vs {fd}",
                    g[i]
                );
            }
        }
    }

    #[test]
    fn many_z_at_once_equals_one_at_a_time() {
        let cases: [(f64, f64, f64); 4] = [
            (0.24, 2.4, 2.2),
            (26.24, 28.4, 29.2),
            (500.2, 502.4, 503.0),
            (3.0, 0.7, 1.2),
        ];
        let zs = [0.0, 0.05, 0.3, 0.5, 0.62, 0.9, 0.99];
        for (a, b, c) in cases {
            let mut out = [0.0; 7];
            ln_hyp2f1_many(a, b, c, &zs, &mut out).unwrap();
            for (z, got) in zs.iter().zip(out) {
                close(got, ln_hyp2f1(a, b, c, *z).unwrap(), 1e-12);
            }
        }
    }

    #[test]
    fn log_add_exp_and_logistic_tails() {
        close(log_add_exp(1000.0, 1000.0), 1000.0 + 2f64.ln(), 1e-15);
        assert_eq!(log_add_exp(f64::NEG_INFINITY, 3.0), 3.0);
        assert_eq!(logistic_complement(1e5), 0.0);
        assert_eq!(logistic_complement(-1e5), 1.0);
        close(logistic_complement(0.0), 0.5, 1e-15);
        for (x, y) in [(3.0, -2.0), (-700.0, 1.0), (0.5, 0.5)] {
            let (v, wx, wy) = log_add_exp_weights(x, y);
            close(v, log_add_exp(x, y), 1e-15);
            close(wx, (x - v).exp(), 1e-12);
            close(wy, (y - v).exp(), 1e-12);
        }
    }
}
