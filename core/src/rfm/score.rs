//! Quintile scores 1-5 with one tie rule: a value's score depends only on how many values are
//! strictly worse than it, so equal values always get equal scores.
//!
//! `score = 1 + floor(5 * worse / n)`, where `worse` is the number of scored users whose value is
//! strictly worse and `n` the number of scored users. In SQL:
//! `1 + floor(5 * (rank() OVER (ORDER BY v) - 1) / count(*) OVER ())` (ascending for "higher is
//! better"). When all values differ this is NTILE(5) up to where the remainder goes; with ties, a
//! tie group takes the score of the position where it starts, so the lowest value always scores 1
//! (a one-time buyer has F = 1 however many one-time buyers there are) and a large tie group can
//! leave a score unused rather than split equal customers.

use std::cmp::Ordering;

/// The score a value at `worse` (values strictly worse than it) among `n` gets.
pub fn score_at(worse: usize, n: usize) -> u8 {
    debug_assert!(worse < n);
    (1 + (5 * worse as u128 / n as u128)) as u8
}

/// Scores `values` (higher is better under `cmp`), and returns the breakpoints: for each score
/// s in 2..=5, the smallest scored value whose score is at least s (`None` when no value reached
/// s). A value x then scores `1 + #{s : x >= breakpoint[s]}`, for members and newcomers alike.
pub fn score<T: Clone>(
    values: &[T],
    cmp: impl Fn(&T, &T) -> Ordering,
) -> (Vec<u8>, [Option<T>; 4]) {
    let n = values.len();
    // The values are sorted together with their positions rather than through an index
    // array: the comparisons then read memory in order, not a million random places.
    let mut order: Vec<(T, u32)> = values.iter().cloned().zip(0..n as u32).collect();
    order.sort_unstable_by(|a, b| cmp(&a.0, &b.0));
    let mut scores = vec![0u8; n];
    let mut breakpoints: [Option<T>; 4] = [None, None, None, None];
    let mut start = 0;
    while start < n {
        let first = &order[start].0;
        let mut end = start + 1;
        while end < n && cmp(&order[end].0, first) == Ordering::Equal {
            end += 1;
        }
        let s = score_at(start, n);
        for (_, i) in &order[start..end] {
            scores[*i as usize] = s;
        }
        for (slot, bp) in breakpoints.iter_mut().enumerate() {
            if bp.is_none() && s as usize >= slot + 2 {
                *bp = Some(first.clone());
            }
        }
        start = end;
    }
    (scores, breakpoints)
}

/// A value's score against stored breakpoints (see [`score`]).
pub fn score_against<T>(
    value: &T,
    breakpoints: &[Option<T>; 4],
    cmp: impl Fn(&T, &T) -> Ordering,
) -> u8 {
    1 + breakpoints
        .iter()
        .filter(|bp| bp.as_ref().is_some_and(|b| cmp(value, b) != Ordering::Less))
        .count() as u8
}

/// An average order value as the exact fraction revenue / orders (orders > 0), so that averages
/// compare without rounding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ratio {
    pub num: i64,
    pub den: i64,
}

impl Ord for Ratio {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.num as i128 * other.den as i128).cmp(&(other.num as i128 * self.den as i128))
    }
}

impl PartialOrd for Ratio {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn distinct_values_fill_quintiles() {
        let v: Vec<i64> = (1..=10).collect();
        let (s, bp) = score(&v, i64::cmp);
        assert_eq!(s, vec![1, 1, 2, 2, 3, 3, 4, 4, 5, 5]);
        assert_eq!(bp, [Some(3), Some(5), Some(7), Some(9)]);
    }

    #[test]
    fn ties_share_the_score_where_they_start() {
        // Six one-time buyers out of ten: all score 1; the next value starts at 60% => 4.
        let v = [1, 1, 1, 1, 1, 1, 2, 2, 3, 9];
        let (s, bp) = score(&v, i64::cmp);
        assert_eq!(s, vec![1, 1, 1, 1, 1, 1, 4, 4, 5, 5]);
        assert_eq!(bp, [Some(2), Some(2), Some(2), Some(3)]);
        let all_same = [7i64; 5];
        assert_eq!(
            score(&all_same, i64::cmp),
            (vec![1; 5], [None, None, None, None])
        );
    }

    #[test]
    fn reversed_order_for_recency() {
        // Fewer days since the last order is better.
        let days = [0, 10, 10, 300, 50];
        let (s, bp) = score(&days, |a: &i32, b: &i32| b.cmp(a));
        assert_eq!(s, vec![5, 3, 3, 1, 2]);
        assert_eq!(bp, [Some(50), Some(10), Some(0), Some(0)]);
    }

    #[test]
    fn ratios_compare_exactly() {
        let a = Ratio { num: 1, den: 3 };
        let b = Ratio {
            num: 333_333_333,
            den: 1_000_000_000,
        };
        assert!(a > b);
        assert_eq!(Ratio { num: 2, den: 6 }.cmp(&a), Ordering::Equal);
    }

    proptest! {
        #[test]
        fn scores_follow_the_rule(v in proptest::collection::vec(0i64..20, 1..200)) {
            let (s, bp) = score(&v, i64::cmp);
            let n = v.len();
            for (i, x) in v.iter().enumerate() {
                let worse = v.iter().filter(|y| *y < x).count();
                prop_assert_eq!(s[i], score_at(worse, n));
                prop_assert_eq!(score_against(x, &bp, i64::cmp), s[i]);
                prop_assert!((1..=5).contains(&s[i]));
            }
            // Monotone: a better value never scores lower.
            for i in 0..n { for j in 0..n {
                if v[i] < v[j] { prop_assert!(s[i] <= s[j]); }
            }}
        }
    }
}
