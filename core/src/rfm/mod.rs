//! RFM: recency, frequency and monetary value as of a day, each scored 1-5 by quintiles, and the
//! named segments those scores fall in.
//!
//! - R = days from the last successful order to the as-of day (0 = bought that day); fewer days
//!   is better, so the most recent customers score 5.
//! - F = number of successful orders up to the as-of day.
//! - M = their total revenue, or the average order value ([`Monetary`]), compared exactly.
//! - Only customers with at least one successful order are scored, against each other; users
//!   without one are reported apart ([`NO_ORDERS`]).
//! - Tie rule and breakpoints: [`score`].

pub mod score;
pub mod segments;

pub use score::{Ratio, score_against, score_at};
pub use segments::{DEFAULT_RULES, NO_ORDERS, SegmentRule, UNMATCHED, default_rules, segment_of};

use std::cmp::Ordering;

/// What M measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Monetary {
    Total,
    Average,
}

impl Monetary {
    pub fn parse(s: &str) -> Option<Monetary> {
        match s {
            "total" => Some(Monetary::Total),
            "average" => Some(Monetary::Average),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Monetary::Total => "total",
            Monetary::Average => "average",
        }
    }
}

/// A customer with at least one successful order up to the as-of day. Money in minor units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Customer {
    pub user_id: i64,
    pub recency_days: i32,
    pub frequency: i64,
    pub revenue: i64,
}

impl Customer {
    /// M as an exact fraction in minor units.
    pub fn monetary(&self, mode: Monetary) -> Ratio {
        match mode {
            Monetary::Total => Ratio {
                num: self.revenue,
                den: 1,
            },
            Monetary::Average => Ratio {
                num: self.revenue,
                den: self.frequency.max(1),
            },
        }
    }
}

/// For each of R, F and M, the smallest value (R: the most days) that reaches scores 2, 3, 4, 5.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Breakpoints {
    pub recency: [Option<i32>; 4],
    pub frequency: [Option<i64>; 4],
    pub monetary: [Option<Ratio>; 4],
}

fn recency_cmp(a: &i32, b: &i32) -> Ordering {
    b.cmp(a)
}

/// Scores every customer against the others: `[r, f, m]` per customer, in input order.
pub fn score_customers(customers: &[Customer], mode: Monetary) -> (Vec<[u8; 3]>, Breakpoints) {
    let r: Vec<i32> = customers.iter().map(|c| c.recency_days).collect();
    let f: Vec<i64> = customers.iter().map(|c| c.frequency).collect();
    let m: Vec<Ratio> = customers.iter().map(|c| c.monetary(mode)).collect();
    let (rs, rb) = score::score(&r, recency_cmp);
    let (fs, fb) = score::score(&f, i64::cmp);
    let (ms, mb) = score::score(&m, Ratio::cmp);
    let scores = (0..customers.len())
        .map(|i| [rs[i], fs[i], ms[i]])
        .collect();
    (
        scores,
        Breakpoints {
            recency: rb,
            frequency: fb,
            monetary: mb,
        },
    )
}

/// One customer's scores against breakpoints of an earlier scoring.
pub fn score_one(c: &Customer, mode: Monetary, bp: &Breakpoints) -> [u8; 3] {
    [
        score_against(&c.recency_days, &bp.recency, recency_cmp),
        score_against(&c.frequency, &bp.frequency, i64::cmp),
        score_against(&c.monetary(mode), &bp.monetary, Ratio::cmp),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(user_id: i64, recency_days: i32, frequency: i64, revenue: i64) -> Customer {
        Customer {
            user_id,
            recency_days,
            frequency,
            revenue,
        }
    }

    #[test]
    fn scores_and_rescoring_agree() {
        let cs: Vec<Customer> = (0..37)
            .map(|i| c(i, (i * 7 % 23) as i32, 1 + i % 4, 1000 + (i * 131 % 997)))
            .collect();
        for mode in [Monetary::Total, Monetary::Average] {
            let (scores, bp) = score_customers(&cs, mode);
            for (cust, s) in cs.iter().zip(&scores) {
                assert_eq!(&score_one(cust, mode, &bp), s);
            }
        }
    }

    #[test]
    fn average_mode_uses_order_value() {
        // Same total, different number of orders: equal M by total, different by average.
        let cs = [c(1, 5, 1, 1000), c(2, 5, 4, 1000)];
        let (t, _) = score_customers(&cs, Monetary::Total);
        assert_eq!(t[0][2], t[1][2]);
        let (a, _) = score_customers(&cs, Monetary::Average);
        assert!(a[0][2] > a[1][2]);
    }
}
