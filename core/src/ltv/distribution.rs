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
    histograms(rows, horizon, &[bins], scale)
        .pop()
        .unwrap_or_default()
}

/// The histograms of one metric (a horizon's revenue) for each bin count in `bins`.
pub fn histograms(rows: &[UserLtv], horizon: usize, bins: &[u32], scale: u32) -> Vec<Vec<Bin>> {
    let values: Vec<i64> = rows
        .iter()
        .filter(|r| horizon == LIFETIME || r.horizon_complete[horizon])
        .map(|r| r.revenue[horizon])
        .collect();
    histograms_of(&values, bins, scale)
}

/// The histograms of a horizon's revenue over its measured users ([`super::Measured`]) for each
/// bin count in `bins`; only values above 0 are binned. When every bin count divides the largest
/// (as [`STORED_BINS`] do) each value is binned once, at the largest count, and the coarser
/// histograms add up its bins: bin i of k holds floor(x * k / span) = floor(floor(x * f / span)
/// / (f / k)) for the finest count f.
pub fn histograms_of(measured: &[i64], bins: &[u32], scale: u32) -> Vec<Vec<Bin>> {
    let mut values: Vec<i64> = Vec::with_capacity(measured.len());
    let (mut lo, mut hi) = (i64::MAX, i64::MIN);
    for &x in measured {
        if x > 0 {
            values.push(x);
            lo = lo.min(x);
            hi = hi.max(x);
        }
    }
    let n = values.len() as i64;
    if n == 0 {
        return bins.iter().map(|_| Vec::new()).collect();
    }
    let span = hi - lo;
    let finest = bins.iter().copied().max().unwrap_or(0);
    let nested = finest > 0 && bins.iter().all(|&b| b > 0 && finest % b == 0);
    let fine = match (span, nested) {
        (0, _) | (_, false) => None,
        (_, true) => Some(counts(&values, lo, span, i64::from(finest))),
    };
    bins.iter()
        .map(|&b| {
            if b == 0 {
                return Vec::new();
            }
            let users = match (span, &fine) {
                (0, _) => vec![n],
                (_, Some(fine)) => fine
                    .chunks(fine.len() / b as usize)
                    .map(|c| c.iter().sum())
                    .collect(),
                (_, None) => counts(&values, lo, span, i64::from(b)),
            };
            bins_of(lo, hi, n, &users, scale)
        })
        .collect()
}

/// How many of `values` fall in each of `k` equal-width bins over [lo, lo + span].
fn counts(values: &[i64], lo: i64, span: i64, k: i64) -> Vec<i64> {
    let mut users = vec![0i64; k as usize];
    let binner = Binner::new(span, k);
    for &x in values {
        users[binner.bin(x - lo) as usize] += 1;
    }
    users
}

/// Bin `i` (0-based) of `k` over [lo, lo + span] holds x with floor((x - lo) * k / span) = i: a
/// float estimate, made exact by comparing with the bin's edges in integers. The refresh bins
/// every user's value per histogram, where a 128-bit division per value would be a visible cost
/// (BENCHMARKS.md, "Measurements behind the code").
struct Binner {
    span: i64,
    k: i64,
    /// k / span, so that the estimate multiplies rather than divides.
    factor: f64,
}

impl Binner {
    fn new(span: i64, k: i64) -> Self {
        Binner {
            span,
            k,
            factor: k as f64 / span as f64,
        }
    }

    #[inline]
    fn bin(&self, offset: i64) -> i64 {
        let (span, k) = (self.span, self.k);
        let scaled = i128::from(offset) * i128::from(k);
        let edge = |b: i64| i128::from(b) * i128::from(span);
        let mut b = ((offset as f64 * self.factor) as i64).clamp(0, k - 1);
        while b < k - 1 && scaled >= edge(b + 1) {
            b += 1;
        }
        while b > 0 && scaled < edge(b) {
            b -= 1;
        }
        b
    }
}

#[cfg(test)]
fn bin_of(offset: i64, span: i64, k: i64) -> i64 {
    Binner::new(span, k).bin(offset)
}

/// The histogram's bins from the values' range [lo, hi], their number and each bin's count.
fn bins_of(lo: i64, hi: i64, n: i64, users: &[i64], scale: u32) -> Vec<Bin> {
    let (k, lo, hi) = (users.len() as i128, i128::from(lo), i128::from(hi));
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

    proptest::proptest! {
        /// The estimate made exact agrees with the division, up to the largest amounts.
        #[test]
        fn bin_of_is_the_floor_of_the_division(
            span in 1i64..=i64::MAX,
            at in 0.0f64..=1.0,
            k in 2i64..=200,
        ) {
            let offset = (((span as f64) * at) as i64).clamp(0, span);
            let want = |o: i64| (i128::from(o) * i128::from(k) / i128::from(span)).min(i128::from(k) - 1) as i64;
            // The value and its neighbours, which may sit on either side of an edge.
            for o in [offset, offset.saturating_sub(1).max(0), offset.saturating_add(1).min(span)] {
                proptest::prop_assert_eq!(bin_of(o, span, k), want(o));
            }
        }
    }

    #[test]
    fn bin_of_on_every_edge_of_small_ranges() {
        for span in 1..60i64 {
            for k in 2..15i64 {
                for o in 0..=span {
                    assert_eq!(
                        bin_of(o, span, k),
                        (o * k / span).min(k - 1),
                        "{o} {span} {k}"
                    );
                }
            }
        }
    }

    #[test]
    fn histograms_equal_one_at_a_time() {
        let rows: Vec<UserLtv> = (0..500).map(|i| row((i * 7919) % 1000)).collect();
        let all = histograms(&rows, LIFETIME, &STORED_BINS, 2);
        for (h, b) in all.iter().zip(STORED_BINS) {
            assert_eq!(h, &histogram(&rows, LIFETIME, b, 2));
            assert_eq!(h.iter().map(|x| x.users).sum::<i64>(), 499);
        }
    }

    #[test]
    fn nested_bin_counts_equal_binning_each_count() {
        // Bin counts that do not all divide the largest go one by one; the stored ones nest.
        for seed in 0..20u64 {
            let rows: Vec<UserLtv> = (0..400u64)
                .map(|i| row(((i * 7919 + seed * 104_729) % 100_003) as i64 * (1 + seed as i64)))
                .collect();
            let nested = histograms(&rows, LIFETIME, &STORED_BINS, 2);
            let apart = histograms(&rows, LIFETIME, &[10, 20, 50, 100, 7], 2);
            assert_eq!(&nested[..], &apart[..4]);
        }
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
