//! The per-customer summary the models are fitted on, from purchase days, with the established
//! definitions (lifetimes' `summary_data_from_transaction_data` and `calibration_and_holdout_data`):
//! purchases on the same day are one purchase; frequency counts repeat purchase days; recency runs
//! from the first to the last purchase day; T from the first purchase day to the calibration end;
//! monetary value is the mean spend of the repeat days, the first day left out.

use super::Summary;

/// A customer's calibration summary, holdout counts, and spend.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomerSummary {
    pub frequency: u32,
    pub recency: f64,
    pub age: f64,
    /// Mean spend of the repeat purchase days; `None` without a repeat purchase.
    pub monetary_value: Option<f64>,
    /// Purchase days in (calibration end, holdout end], when a holdout end was given.
    pub holdout_frequency: Option<u32>,
    /// Spend on those days.
    pub holdout_spend: Option<f64>,
}

impl CustomerSummary {
    pub fn model_row(&self) -> Summary {
        Summary::new(self.frequency, self.recency, self.age)
    }
}

/// Summarises one customer's successful purchases, given as (day number, amount) in any order.
/// `None` when the customer's first purchase is after `calibration_end` (not yet a customer
/// then), or there is no purchase at all.
pub fn summarize(
    purchases: &mut [(i32, f64)],
    calibration_end: i32,
    holdout_end: Option<i32>,
    unit_days: f64,
) -> Option<CustomerSummary> {
    purchases.sort_unstable_by_key(|p| p.0);
    let first = purchases.first()?.0;
    if first > calibration_end {
        return None;
    }
    let mut repeat_days = 0u32;
    let mut repeat_spend = 0.0;
    let mut last_day = first;
    let mut holdout_days = 0u32;
    let mut holdout_spend = 0.0;
    let mut previous = None;
    for &(day, amount) in purchases.iter() {
        let new_day = previous != Some(day);
        previous = Some(day);
        if day <= calibration_end {
            if day != first {
                repeat_spend += amount;
                if new_day {
                    repeat_days += 1;
                }
            }
            last_day = day;
        } else if holdout_end.is_some_and(|end| day <= end) {
            holdout_spend += amount;
            if new_day {
                holdout_days += 1;
            }
        }
    }
    Some(CustomerSummary {
        frequency: repeat_days,
        recency: f64::from(last_day - first) / unit_days,
        age: f64::from(calibration_end - first) / unit_days,
        monetary_value: (repeat_days > 0).then(|| repeat_spend / f64::from(repeat_days)),
        holdout_frequency: holdout_end.map(|_| holdout_days),
        holdout_spend: holdout_end.map(|_| holdout_spend),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_day_purchases_count_once_and_first_day_spend_is_left_out() {
        // Day 0 twice (first), day 7 twice, day 14, holdout day 30 twice and day 40 (past end).
        let mut p = vec![
            (14, 5.0),
            (0, 10.0),
            (7, 1.0),
            (0, 2.0),
            (7, 3.0),
            (30, 4.0),
            (40, 8.0),
            (30, 6.0),
        ];
        let s = summarize(&mut p, 21, Some(35), 7.0).unwrap();
        assert_eq!(s.frequency, 2);
        assert_eq!(s.recency, 2.0);
        assert_eq!(s.age, 3.0);
        assert_eq!(s.monetary_value, Some(4.5)); // (1+3 + 5) / 2 days
        assert_eq!(s.holdout_frequency, Some(1));
        assert_eq!(s.holdout_spend, Some(10.0));
    }

    #[test]
    fn one_time_buyer_and_late_customer() {
        let s = summarize(&mut [(3, 9.0)], 10, None, 1.0).unwrap();
        assert_eq!((s.frequency, s.recency, s.age), (0, 0.0, 7.0));
        assert_eq!(s.monetary_value, None);
        assert_eq!(s.holdout_frequency, None);
        assert!(summarize(&mut [(11, 9.0)], 10, Some(20), 1.0).is_none());
        assert!(summarize(&mut [], 10, None, 1.0).is_none());
    }
}
