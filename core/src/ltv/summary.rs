//! The LTV summary: averages, median, 95th percentile and buyer counts per horizon.
//!
//! A horizon's figures cover only users whose horizon had fully elapsed on the as-of day, so that
//! young users with a partial window don't drag the averages down; lifetime covers every user.
//! Percentiles follow PostgreSQL's `percentile_cont` exactly (see [`crate::stats`]), on the same
//! float8 values PostgreSQL would convert the numeric column to.

use super::fold::{LIFETIME, UserLtv};

#[derive(Debug, Clone, PartialEq)]
pub struct HorizonSummary {
    /// Users whose horizon is complete (all users for lifetime).
    pub users_measured: i64,
    /// Measured users with at least one order in the horizon.
    pub users_with_orders: i64,
    /// Sum of revenue over measured users, in minor units. Average = sum / users_measured.
    pub revenue_sum: i128,
    pub median: Option<f64>,
    pub p95: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LtvSummary {
    /// 3m, 6m, 12m, lifetime.
    pub horizons: [HorizonSummary; 4],
    pub users_total: i64,
    /// Among users whose 12-month horizon is complete: sum of their 6-month and 12-month revenue.
    /// Growth compares the same users at both horizons, never two different cohorts.
    pub cohort_12m_revenue_6m: i128,
    pub cohort_12m_revenue_12m: i128,
}

/// Each horizon's revenue over its measured users (horizon elapsed; every user for lifetime),
/// with how many of them ordered in it and the 12-month cohort's sums: what the summary and the
/// stored histograms are computed from, gathered in one pass over the rows. A pass per horizon
/// and per figure read the rows (112 bytes each) eight times over, for the summary and again for
/// the histograms (BENCHMARKS.md, "Measurements behind the code").
#[derive(Debug, Default)]
pub struct Measured {
    /// Minor units, in row order (until [`summarize_measured`] selects in them).
    pub revenue: [Vec<i64>; 4],
    pub with_orders: [i64; 4],
    pub users_total: i64,
    pub cohort_12m_revenue_6m: i128,
    pub cohort_12m_revenue_12m: i128,
}

impl Measured {
    pub fn gather(rows: &[UserLtv]) -> Self {
        let mut m = Measured {
            users_total: rows.len() as i64,
            ..Measured::default()
        };
        // Untouched capacity costs no memory: the pages of a large allocation are mapped as
        // they are first written.
        for values in &mut m.revenue {
            values.reserve_exact(rows.len());
        }
        for r in rows {
            for h in 0..4 {
                if h == LIFETIME || r.horizon_complete[h] {
                    m.revenue[h].push(r.revenue[h]);
                    m.with_orders[h] += i64::from(r.orders[h] > 0);
                }
            }
            if r.horizon_complete[2] {
                m.cohort_12m_revenue_6m += i128::from(r.revenue[1]);
                m.cohort_12m_revenue_12m += i128::from(r.revenue[2]);
            }
        }
        m
    }
}

/// Summarises the rows of a run. `scale` is the number of decimal places of the minor units.
pub fn summarize(rows: &[UserLtv], scale: u32) -> LtvSummary {
    summarize_measured(&mut Measured::gather(rows), scale)
}

/// The summary of what [`Measured::gather`] took from a run's rows; reorders the values.
pub fn summarize_measured(m: &mut Measured, scale: u32) -> LtvSummary {
    let unit = crate::money::unit(scale) as f64;
    let horizons = std::array::from_fn(|h| {
        let values = &mut m.revenue[h];
        HorizonSummary {
            users_measured: values.len() as i64,
            users_with_orders: m.with_orders[h],
            revenue_sum: values.iter().map(|&v| i128::from(v)).sum(),
            median: percentile(values, 0.5, unit),
            p95: percentile(values, 0.95, unit),
        }
    });
    LtvSummary {
        horizons,
        users_total: m.users_total,
        cohort_12m_revenue_6m: m.cohort_12m_revenue_6m,
        cohort_12m_revenue_12m: m.cohort_12m_revenue_12m,
    }
}

/// [`percentile_cont`] over the values in currency units (`minor / unit`), selecting among the
/// integers: the division is monotonic, so the order statistics are the same values, and i64
/// compares faster than f64's total order. i64 -> f64 is exact below 2^53 minor units and the
/// division is correctly rounded, so each is the same double as PostgreSQL's numeric -> float8.
/// Reorders `values`.
fn percentile(values: &mut [i64], fraction: f64, unit: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let position = fraction * (values.len() - 1) as f64;
    let (first_row, second_row) = (position.floor() as usize, position.ceil() as usize);
    let (_, first, above) = values.select_nth_unstable(first_row);
    let first = *first as f64 / unit;
    if first_row == second_row {
        return Some(first);
    }
    // The next order statistic is the smallest value above the selected one.
    let second = above
        .iter()
        .min()
        .map_or(f64::INFINITY, |&v| v as f64 / unit);
    Some(first + (position - first_row as f64) * (second - first))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::Day;
    use crate::ltv::{LtvFold, OrderRow, SegmentThresholds, StatusClass};

    #[test]
    fn immature_users_are_left_out_of_horizon_figures() {
        let as_of = Day::from_ymd(2024, 1, 1).unwrap();
        let mut fold = LtvFold::new(as_of);
        // Mature for every horizon.
        fold.add_user(Some(1), Day::from_ymd(2022, 1, 1)).unwrap();
        // Signed up two months ago: measured for lifetime only.
        fold.add_user(Some(2), Day::from_ymd(2023, 11, 1)).unwrap();
        // Mature, never bought.
        fold.add_user(Some(3), Day::from_ymd(2022, 6, 1)).unwrap();
        let o = |user, y, m, d, amount| OrderRow {
            user_id: Some(user),
            day: Day::from_ymd(y, m, d),
            amount: Some(amount),
            status: StatusClass::Successful,
        };
        fold.add_order(o(1, 2022, 1, 5, 10_000)).unwrap();
        fold.add_order(o(1, 2022, 9, 5, 5_000)).unwrap();
        fold.add_order(o(2, 2023, 11, 2, 2_000)).unwrap();
        let (rows, _) = fold.finish(&SegmentThresholds::defaults(2));
        let s = summarize(&rows, 2);
        assert_eq!(s.users_total, 3);
        let h3 = &s.horizons[0];
        assert_eq!(
            (h3.users_measured, h3.users_with_orders, h3.revenue_sum),
            (2, 1, 10_000)
        );
        assert_eq!(h3.median, Some(50.0));
        let life = &s.horizons[LIFETIME];
        assert_eq!(
            (
                life.users_measured,
                life.users_with_orders,
                life.revenue_sum
            ),
            (3, 2, 17_000)
        );
        assert_eq!(life.median, Some(20.0));
        // sorted 0, 20, 150: position 1.9 -> 20 + 0.9 * 130
        assert!((life.p95.unwrap() - 137.0).abs() < 1e-9);
        assert_eq!(
            (s.cohort_12m_revenue_6m, s.cohort_12m_revenue_12m),
            (10_000, 15_000)
        );
    }

    proptest::proptest! {
        #[test]
        fn percentiles_of_minor_units_are_those_of_the_currency_values(
            mut v in proptest::collection::vec(-1_000_000_000i64..1_000_000_000, 1..300),
            f in 0.0f64..=1.0,
            scale in 0u32..=4,
        ) {
            let unit = crate::money::unit(scale) as f64;
            let mut floats: Vec<f64> = v.iter().map(|&x| x as f64 / unit).collect();
            proptest::prop_assert_eq!(
                percentile(&mut v, f, unit),
                crate::stats::percentile_cont(&mut floats, f)
            );
        }
    }

    #[test]
    fn empty_run_has_no_percentiles() {
        let s = summarize(&[], 2);
        assert_eq!(s.users_total, 0);
        assert_eq!(s.horizons[0].median, None);
        assert_eq!(s.horizons[LIFETIME].users_measured, 0);
    }
}
