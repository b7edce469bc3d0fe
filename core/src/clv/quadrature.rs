//! Composite Gauss-Legendre quadrature for the smooth one-dimensional integrals of the models.

use std::sync::OnceLock;

const ORDER: usize = 10;
const PANELS: usize = 32;

/// The nodes and weights of the ORDER-point Gauss-Legendre rule on [−1, 1], by Newton's method on
/// the Legendre polynomial (Golub-Welsch would need an eigen-solver for the same numbers).
fn rule() -> &'static ([f64; ORDER], [f64; ORDER]) {
    static RULE: OnceLock<([f64; ORDER], [f64; ORDER])> = OnceLock::new();
    RULE.get_or_init(|| {
        let mut nodes = [0.0; ORDER];
        let mut weights = [0.0; ORDER];
        let n = ORDER as f64;
        for i in 0..ORDER {
            let mut x = (std::f64::consts::PI * (i as f64 + 0.75) / (n + 0.5)).cos();
            let mut derivative = 0.0;
            for _ in 0..100 {
                // P_n(x) and P_n'(x) by the three-term recurrence.
                let (mut p0, mut p1) = (1.0, x);
                for k in 2..=ORDER {
                    let k = k as f64;
                    let p2 = ((2.0 * k - 1.0) * x * p1 - (k - 1.0) * p0) / k;
                    p0 = p1;
                    p1 = p2;
                }
                derivative = n * (x * p1 - p0) / (x * x - 1.0);
                let step = p1 / derivative;
                x -= step;
                if step.abs() < 1e-16 {
                    break;
                }
            }
            nodes[i] = x;
            weights[i] = 2.0 / ((1.0 - x * x) * derivative * derivative);
        }
        (nodes, weights)
    })
}

/// ∫ f over [a, b], on PANELS equal panels of ORDER points each.
pub fn integrate(f: impl Fn(f64) -> f64, a: f64, b: f64) -> f64 {
    let (nodes, weights) = rule();
    let width = (b - a) / PANELS as f64;
    let mut total = 0.0;
    for panel in 0..PANELS {
        let mid = a + width * (panel as f64 + 0.5);
        let half = width / 2.0;
        for (x, w) in nodes.iter().zip(weights) {
            total += w * f(mid + half * x);
        }
    }
    total * width / 2.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integrates_known_functions() {
        let close = |a: f64, b: f64, rel: f64| assert!((a - b).abs() < rel * b.abs(), "{a} vs {b}");
        close(
            integrate(|x| x.powi(7), 0.0, 2.0),
            2f64.powi(8) / 8.0,
            1e-14,
        );
        close(
            integrate(f64::exp, -1.0, 3.0),
            3f64.exp() - (-1f64).exp(),
            1e-14,
        );
        // A long window over a density that falls by 100x: equal panels still give 9 digits.
        close(
            integrate(|x| 1.0 / (1.0 + x), 0.0, 100.0),
            101f64.ln(),
            1e-9,
        );
    }
}
