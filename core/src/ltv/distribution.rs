//! Equal-width histograms of one LTV metric, computed at refresh time so that
//! `ltv_distribution()` reads a few stored rows instead of scanning every user.
//!
//! The definition is the SQL one (sql/finalize.sql, `_ltv_distribution_live`), in exact integer
//! arithmetic: over the values above 0 (of users whose horizon has elapsed), bins of equal width
//! between the minimum and the maximum; a value goes to bin floor((x - lo) * k / (hi - lo)) + 1,
//! the maximum to the last bin; one bin when every value is equal. Bounds and percentages are
//! rounded half away from zero to 2 decimal places. The tests in pg_test compare both.

use super::fold::{LIFETIME, UserLtv};
use crate::money::div_round;

/// The metrics `ltv_distribution()` accepts, with the horizon index they read.
pub const METRICS: [(&str, usize); 4] = [
    ("revenue_3m", 0),
    ("revenue_6m", 1),
    ("revenue_12m", 2),
    ("lifetime_revenue", LIFETIME),
];

/// Bin counts stored at refresh time; others are computed when asked for.
pub const STORED_BINS: [u32; 4] = [10, 20, 50, 100];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bin {
    pub bin: u32,
    /// Hundredths of a currency unit.
    pub range_min: i128,
    pub range_max: i128,
    pub users: i64,
    /// Hundredths of a percent.
    pub percentage: i128,
}

/// The histogram of `metric` (an index into the revenue arrays) with `bins` bins; `scale` is the
/// number of decimal places of the minor units.
pub fn histogram(rows: &[UserLtv], horizon: usize, bins: u32, scale: u32) -> Vec<Bin> {
    let values = rows
        .iter()
        .filter(|r| horizon == LIFETIME || r.horizon_complete[horizon])
        .map(|r| r.revenue[horizon])
        .filter(|&x| x > 0);
    let (mut lo, mut hi, mut n) = (i64::MAX, i64::MIN, 0i64);
    for x in values.clone() {
        lo = lo.min(x);
        hi = hi.max(x);
        n += 1;
    }
    if n == 0 || bins == 0 {
        return Vec::new();
    }
    let k = if hi == lo { 1 } else { i128::from(bins) };
    let (lo, hi) = (i128::from(lo), i128::from(hi));
    let mut users = vec![0i64; k as usize];
    for x in values {
        let b = if k == 1 {
            0
        } else {
            ((i128::from(x) - lo) * k / (hi - lo)).min(k - 1)
        };
        users[b as usize] += 1;
    }
    // Minor units to hundredths: multiply by 100 and divide by 10^scale, rounding once.
    let unit = i128::from(crate::money::unit(scale));
    let hundredths = |num: i128, den: i128| div_round(num * 100, den * unit);
    (1..=k)
        .map(|i| {
            let upper = if i == k {
                hundredths(hi, 1)
            } else {
                hundredths(lo * k + (hi - lo) * i, k)
            };
            Bin {
                bin: i as u32,
                range_min: hundredths(lo * k + (hi - lo) * (i - 1), k),
                range_max: upper,
                users: users[(i - 1) as usize],
                percentage: div_round(i128::from(users[(i - 1) as usize]) * 10_000, i128::from(n)),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::Day;
    use crate::ltv::Segment;

    fn row(lifetime: i64) -> UserLtv {
        UserLtv {
            user_id: 1,
            signup: Day(0),
            revenue: [0, 0, 0, lifetime],
            orders: [0; 4],
            avg_order_value: [None; 4],
            first_order: None,
            last_order: None,
            days_since_last_order: None,
            horizon_complete: [false; 3],
            orders_before_signup: 0,
            segment: Segment::New,
        }
    }

    #[test]
    fn bins_split_the_range_and_the_maximum_is_in_the_last() {
        let rows: Vec<UserLtv> = [0, 100, 200, 250, 1100].into_iter().map(row).collect();
        let h = histogram(&rows, LIFETIME, 4, 2);
        // lo 1.00, hi 11.00, width 2.50
        assert_eq!(
            h.iter()
                .map(|b| (b.range_min, b.range_max, b.users))
                .collect::<Vec<_>>(),
            vec![(100, 350, 3), (350, 600, 0), (600, 850, 0), (850, 1100, 1)]
        );
        assert_eq!(h[0].percentage, 7500);
        // Users with 0 and users whose horizon is open are not counted.
        assert!(histogram(&rows, 0, 4, 2).is_empty());
    }

    #[test]
    fn equal_values_make_one_bin() {
        let rows: Vec<UserLtv> = [500, 500].into_iter().map(row).collect();
        let h = histogram(&rows, LIFETIME, 10, 2);
        assert_eq!(h.len(), 1);
        assert_eq!(
            (h[0].range_min, h[0].range_max, h[0].users, h[0].percentage),
            (500, 500, 2, 10_000)
        );
    }
}
