//! The silhouette coefficient (Rousseeuw 1987), as scikit-learn's `silhouette_score`: for each
//! point, a = mean distance to the other members of its cluster, b = the smallest mean distance to
//! another cluster's members, s = (b - a) / max(a, b), and s = 0 for a point alone in its cluster.
//! The score is the mean of s. Quadratic in the number of points: callers pass a sample.

fn distance(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).powi(2))
        .sum::<f64>()
        .sqrt()
}

/// `None` with fewer than two clusters among the labels.
pub fn silhouette(points: &[Vec<f64>], labels: &[usize], k: usize) -> Option<f64> {
    let n = points.len();
    let mut sizes = vec![0usize; k];
    for &l in labels {
        sizes[l] += 1;
    }
    if sizes.iter().filter(|&&s| s > 0).count() < 2 {
        return None;
    }
    let mut total = 0.0;
    let mut sums = vec![0.0; k];
    for i in 0..n {
        sums.iter_mut().for_each(|s| *s = 0.0);
        for j in 0..n {
            if i != j {
                sums[labels[j]] += distance(&points[i], &points[j]);
            }
        }
        let own = labels[i];
        if sizes[own] <= 1 {
            continue;
        }
        let a = sums[own] / (sizes[own] - 1) as f64;
        let b = (0..k)
            .filter(|&c| c != own && sizes[c] > 0)
            .map(|c| sums[c] / sizes[c] as f64)
            .fold(f64::INFINITY, f64::min);
        let m = a.max(b);
        if m > 0.0 {
            total += (b - a) / m;
        }
    }
    Some(total / n as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_definition_by_hand() {
        // Clusters {0, 1} and {4, 5, 10} on a line.
        let pts: Vec<Vec<f64>> = [0.0, 1.0, 4.0, 5.0, 10.0]
            .iter()
            .map(|&x| vec![x])
            .collect();
        let s = silhouette(&pts, &[0, 0, 1, 1, 1], 2).unwrap();
        let expected = {
            let s0: f64 = (19.0 / 3.0 - 1.0) / (19.0 / 3.0); // a = 1, b = (4 + 5 + 10) / 3
            let s1: f64 = (16.0 / 3.0 - 1.0) / (16.0 / 3.0); // a = 1, b = (3 + 4 + 9) / 3
            let s2: f64 = 0.0; // a = (1 + 6) / 2 = b = (4 + 3) / 2
            let s3: f64 = (4.5 - 3.0) / 4.5; // a = (1 + 5) / 2, b = (5 + 4) / 2
            let s4: f64 = (9.5 - 5.5) / 9.5; // a = (6 + 5) / 2, b = (10 + 9) / 2
            (s0 + s1 + s2 + s3 + s4) / 5.0
        };
        assert!((s - expected).abs() < 1e-12, "{s} vs {expected}");
        assert_eq!(silhouette(&pts, &[0; 5], 2), None);
    }
}
