//! Order statistics with PostgreSQL's exact definitions, so that a summary computed here equals the
//! one a user would get from plain SQL.

/// `percentile_cont(fraction) WITHIN GROUP (ORDER BY v)` over float8 values, with PostgreSQL's
/// arithmetic (`first + (second - first) * proportion`, see `percentile_cont_float8_final`).
/// `sorted` must be ascending. `None` for an empty input.
pub fn percentile_cont_sorted(sorted: &[f64], fraction: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let position = fraction * (sorted.len() - 1) as f64;
    let first_row = position.floor();
    let second_row = position.ceil();
    let first = sorted[first_row as usize];
    if first_row == second_row {
        return Some(first);
    }
    let second = sorted[second_row as usize];
    let proportion = position - first_row;
    Some(first + proportion * (second - first))
}

/// The same percentile without sorting the whole input: selects the two neighbouring order
/// statistics in linear time. Reorders `values`.
pub fn percentile_cont(values: &mut [f64], fraction: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let position = fraction * (values.len() - 1) as f64;
    let first_row = position.floor() as usize;
    let second_row = position.ceil() as usize;
    let (_, first, above) = values.select_nth_unstable_by(first_row, f64::total_cmp);
    let first = *first;
    if first_row == second_row {
        return Some(first);
    }
    // The next order statistic is the smallest value above the selected one.
    let second = above.iter().copied().fold(f64::INFINITY, f64::min);
    let proportion = position - first_row as f64;
    Some(first + proportion * (second - first))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn matches_postgres_examples() {
        // SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) FROM (VALUES (1),(2),(3),(4)) v(x) => 2.5
        assert_eq!(
            percentile_cont_sorted(&[1.0, 2.0, 3.0, 4.0], 0.5),
            Some(2.5)
        );
        // ... percentile_cont(0.95) over 1..4 => 3.85
        let p95 = percentile_cont_sorted(&[1.0, 2.0, 3.0, 4.0], 0.95).unwrap();
        assert!((p95 - 3.85).abs() < 1e-12);
        assert_eq!(percentile_cont_sorted(&[7.0], 0.95), Some(7.0));
        assert_eq!(percentile_cont_sorted(&[], 0.5), None);
    }

    proptest! {
        #[test]
        fn selection_equals_sorting(mut v in proptest::collection::vec(-1e6f64..1e6, 1..200), f in 0.0f64..=1.0) {
            let mut sorted = v.clone();
            sorted.sort_by(f64::total_cmp);
            prop_assert_eq!(percentile_cont(&mut v, f), percentile_cont_sorted(&sorted, f));
        }
    }
}
