//! Weeks as PostgreSQL's `date_trunc('week', ...)` counts them (Monday to Sunday), and a user's
//! weekly series with every week present.

use crate::calendar::Day;
use crate::events::Event;

/// 2000-01-03, the first Monday on or after PostgreSQL's date epoch, as a day number.
const FIRST_MONDAY: i32 = 2;

/// The week a day falls in, numbered from the week starting 2000-01-03.
pub fn week_of(day: Day) -> i32 {
    (day.0 - FIRST_MONDAY).div_euclid(7)
}

/// The Monday that starts a week.
pub fn week_start(week: i32) -> Day {
    Day(week * 7 + FIRST_MONDAY)
}

/// One active week of one user: successful orders, their spend (the orders' totals, never
/// multiplied by their items), and distinct categories when known.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WeekTotals {
    pub week: i32,
    pub orders: u32,
    pub spend: f64,
    pub categories: Option<u32>,
}

/// A user's first active week and their active weeks from `from_week` on, from their counted
/// orders sorted by day, with amounts at `scale` decimal places (at most 15): each week's orders,
/// and its spend summed in minor units, so that a week's total is the exact decimal sum. None
/// without an order.
pub fn active_weeks(
    orders: &[Event],
    from_week: i32,
    scale: u32,
) -> Option<(i32, Vec<WeekTotals>)> {
    let first = week_of(Day(orders.first()?.day));
    let unit = 10f64.powi(scale.min(15) as i32);
    let mut active: Vec<WeekTotals> = Vec::new();
    let mut minor: Vec<i64> = Vec::new();
    for e in orders.iter().filter(|e| week_of(Day(e.day)) >= from_week) {
        let week = week_of(Day(e.day));
        if active.last().is_none_or(|w| w.week != week) {
            active.push(WeekTotals {
                week,
                orders: 0,
                spend: 0.0,
                categories: None,
            });
            minor.push(0);
        }
        if let (Some(w), Some(m)) = (active.last_mut(), minor.last_mut()) {
            w.orders = w.orders.saturating_add(1);
            *m = m.saturating_add((e.amount * unit).round() as i64);
        }
    }
    for (w, m) in active.iter_mut().zip(minor) {
        w.spend = m as f64 / unit;
    }
    Some((first, active))
}

/// One week of a user's series: active or not.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WeekRow {
    pub week: i32,
    pub orders: u32,
    pub spend: f64,
    /// NULL in a week without orders.
    pub average_order_value: Option<f64>,
    pub categories: Option<u32>,
}

/// The user's weeks from their first active week through `through`, with zero weeks where they
/// bought nothing. `active` is in any order; weeks after `through` are left out.
pub fn fill_weeks(active: &[WeekTotals], through: i32, categories_known: bool) -> Vec<WeekRow> {
    let mut active: Vec<WeekTotals> = active
        .iter()
        .copied()
        .filter(|w| w.week <= through)
        .collect();
    active.sort_unstable_by_key(|w| w.week);
    let Some(first) = active.first().map(|w| w.week) else {
        return Vec::new();
    };
    let mut out = Vec::with_capacity((through - first + 1) as usize);
    let mut next = active.iter().peekable();
    for week in first..=through {
        match next.peek() {
            Some(w) if w.week == week => {
                out.push(WeekRow {
                    week,
                    orders: w.orders,
                    spend: w.spend,
                    average_order_value: (w.orders > 0).then(|| w.spend / f64::from(w.orders)),
                    categories: w.categories.or(categories_known.then_some(0)),
                });
                next.next();
            }
            _ => out.push(WeekRow {
                week,
                orders: 0,
                spend: 0.0,
                average_order_value: None,
                categories: categories_known.then_some(0),
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Every order from `from_week` on lands in its week, once: the weeks' orders and
        /// cents add up to those orders', each week holds the orders whose day it covers, and
        /// the weeks come in order.
        #[test]
        fn orders_land_in_their_weeks(
            mut orders in proptest::collection::vec((-30i32..300, 0i64..500_000), 1..50),
            from_week in -3i32..30,
        ) {
            orders.sort();
            let events: Vec<Event> = orders
                .iter()
                .map(|&(day, cents)| Event { user: 1, day, amount: cents as f64 / 100.0 })
                .collect();
            let (first, weeks) = active_weeks(&events, from_week, 2).unwrap();
            prop_assert_eq!(first, week_of(Day(orders[0].0)));
            prop_assert!(weeks.windows(2).all(|w| w[0].week < w[1].week));
            for w in &weeks {
                let inside: Vec<i64> = orders
                    .iter()
                    .filter(|o| (week_start(w.week).0..week_start(w.week + 1).0).contains(&o.0))
                    .map(|o| o.1)
                    .collect();
                prop_assert!(w.week >= from_week);
                prop_assert_eq!(w.orders as usize, inside.len());
                prop_assert_eq!((w.spend * 100.0).round() as i64, inside.iter().sum::<i64>());
            }
            let counted = orders.iter().filter(|o| week_of(Day(o.0)) >= from_week).count();
            prop_assert_eq!(weeks.iter().map(|w| w.orders as usize).sum::<usize>(), counted);
        }
    }

    #[test]
    fn weeks_start_on_monday() {
        let monday = Day::from_ymd(2024, 1, 1).unwrap();
        let sunday = Day::from_ymd(2024, 1, 7).unwrap();
        let next_monday = Day::from_ymd(2024, 1, 8).unwrap();
        assert_eq!(week_of(monday), week_of(sunday));
        assert_eq!(week_of(next_monday), week_of(monday) + 1);
        assert_eq!(week_start(week_of(sunday)), monday);
        // Before the epoch too.
        let old = Day::from_ymd(1997, 1, 1).unwrap(); // a Wednesday
        assert_eq!(
            week_start(week_of(old)),
            Day::from_ymd(1996, 12, 30).unwrap()
        );
    }

    #[test]
    fn zero_weeks_fill_the_gaps_and_run_to_the_end() {
        let active = [
            WeekTotals {
                week: 12,
                orders: 1,
                spend: 5.0,
                categories: None,
            },
            WeekTotals {
                week: 10,
                orders: 2,
                spend: 30.0,
                categories: None,
            },
            WeekTotals {
                week: 20,
                orders: 1,
                spend: 1.0,
                categories: None,
            },
        ];
        let weeks = fill_weeks(&active, 14, false);
        assert_eq!(
            weeks.iter().map(|w| w.week).collect::<Vec<_>>(),
            vec![10, 11, 12, 13, 14]
        );
        assert_eq!(
            weeks.iter().map(|w| w.orders).collect::<Vec<_>>(),
            vec![2, 0, 1, 0, 0]
        );
        assert_eq!(weeks[0].average_order_value, Some(15.0));
        assert_eq!(weeks[1].average_order_value, None);
        assert_eq!(weeks[1].categories, None);
        assert_eq!(fill_weeks(&active, 14, true)[1].categories, Some(0));
        assert!(fill_weeks(&active, 9, false).is_empty());
    }
}
