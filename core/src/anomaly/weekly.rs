//! Weeks as PostgreSQL's `date_trunc('week', ...)` counts them (Monday to Sunday), and a user's
//! weekly series with every week present.

use crate::calendar::Day;

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
