//! The single pass over users and orders that produces every user's LTV row.
//!
//! Users are registered first ([`LtvFold::add_user`]), then orders stream through
//! [`LtvFold::add_order`] in any order, then [`LtvFold::finish`] produces the rows. Per-user state
//! is a fixed-size struct, so memory grows with users, not orders. Every row that is not counted is
//! classified and counted in [`RunCounts`], so the caller can report it.

use rustc_hash::FxHashMap;

use super::segment::{Segment, SegmentThresholds};
use crate::calendar::Day;

/// The horizons, in calendar months after signup.
pub const HORIZON_MONTHS: [u32; 3] = [3, 6, 12];
/// Index of lifetime in the four-element per-horizon arrays (3m, 6m, 12m, lifetime).
pub const LIFETIME: usize = 3;

/// How an order's status was classified by the reader. Orders whose status is outside the
/// successful set are not read at all; a NULL status is read so that it can be counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusClass {
    Successful,
    Null,
}

/// One order as read from the source table. `amount` is in minor units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderRow {
    pub user_id: Option<i64>,
    pub day: Option<Day>,
    pub amount: Option<i64>,
    pub status: StatusClass,
}

/// Why an order was not counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderIssue {
    NullStatus,
    NullUserId,
    UnknownUser,
    NullDate,
    AfterAsOf,
    NullAmount,
    NegativeAmount,
    /// The order's user was left out of the run (see [`UserIssue`]).
    UserLeftOut,
}

/// Why a user was left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserIssue {
    NullUserId,
    NullSignup,
    SignupAfterAsOf,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FoldError {
    DuplicateUser(i64),
    RevenueOverflow(i64),
    DateOutOfRange(i64),
}

impl std::fmt::Display for FoldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FoldError::DuplicateUser(id) => {
                write!(f, "user_id {id} appears more than once in the users table")
            }
            FoldError::RevenueOverflow(id) => {
                write!(f, "revenue of user_id {id} overflows 64-bit minor units")
            }
            FoldError::DateOutOfRange(id) => {
                write!(
                    f,
                    "signup date of user_id {id} is outside the supported calendar range"
                )
            }
        }
    }
}

/// What a run read, counted and left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunCounts {
    pub users_read: i64,
    pub users_counted: i64,
    pub users_null_id: i64,
    pub users_null_signup: i64,
    pub users_signup_after_as_of: i64,
    pub orders_read: i64,
    pub orders_counted: i64,
    pub orders_before_signup: i64,
    pub orders_null_status: i64,
    pub orders_null_user: i64,
    pub orders_unknown_user: i64,
    pub orders_null_date: i64,
    pub orders_after_as_of: i64,
    pub orders_null_amount: i64,
    pub orders_negative_amount: i64,
    pub orders_of_left_out_users: i64,
    /// Amounts with more decimal places than the scale, rounded (counted by the reader).
    pub amounts_rounded: i64,
}

impl RunCounts {
    pub fn orders_skipped(&self) -> i64 {
        self.orders_null_status
            + self.orders_null_user
            + self.orders_unknown_user
            + self.orders_null_date
            + self.orders_after_as_of
            + self.orders_null_amount
            + self.orders_negative_amount
            + self.orders_of_left_out_users
    }

    pub fn users_skipped(&self) -> i64 {
        self.users_null_id + self.users_null_signup + self.users_signup_after_as_of
    }

    fn count_user_issue(&mut self, issue: UserIssue) {
        match issue {
            UserIssue::NullUserId => self.users_null_id += 1,
            UserIssue::NullSignup => self.users_null_signup += 1,
            UserIssue::SignupAfterAsOf => self.users_signup_after_as_of += 1,
        }
    }

    fn count_order_issue(&mut self, issue: OrderIssue) {
        match issue {
            OrderIssue::NullStatus => self.orders_null_status += 1,
            OrderIssue::NullUserId => self.orders_null_user += 1,
            OrderIssue::UnknownUser => self.orders_unknown_user += 1,
            OrderIssue::NullDate => self.orders_null_date += 1,
            OrderIssue::AfterAsOf => self.orders_after_as_of += 1,
            OrderIssue::NullAmount => self.orders_null_amount += 1,
            OrderIssue::NegativeAmount => self.orders_negative_amount += 1,
            OrderIssue::UserLeftOut => self.orders_of_left_out_users += 1,
        }
    }
}

/// One user's result row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserLtv {
    pub user_id: i64,
    pub signup: Day,
    /// Revenue in minor units: 3m, 6m, 12m, lifetime.
    pub revenue: [i64; 4],
    pub orders: [i64; 4],
    /// Average order value in minor units, rounded half away from zero; `None` without orders.
    pub avg_order_value: [Option<i64>; 4],
    pub first_order: Option<Day>,
    pub last_order: Option<Day>,
    pub days_since_last_order: Option<i32>,
    /// Whether the 3m, 6m and 12m horizons had fully elapsed on the as-of day.
    pub horizon_complete: [bool; 3],
    pub orders_before_signup: i64,
    pub segment: Segment,
}

#[derive(Debug, Clone)]
struct Accum {
    user_id: i64,
    signup: Day,
    horizon_end: [Day; 3],
    revenue: [i64; 4],
    orders: [u32; 4],
    first: Option<Day>,
    last: Option<Day>,
    before_signup: u32,
}

/// The fold over one run. See the module documentation.
#[derive(Debug)]
pub struct LtvFold {
    as_of: Day,
    index: FxHashMap<i64, u32>,
    users: Vec<Accum>,
    counts: RunCounts,
}

impl LtvFold {
    /// A fold for a run as of the end of day `as_of`.
    pub fn new(as_of: Day) -> Self {
        Self::with_capacity(as_of, 0)
    }

    pub fn with_capacity(as_of: Day, users: usize) -> Self {
        let mut index = FxHashMap::default();
        index.reserve(users);
        LtvFold {
            as_of,
            index,
            users: Vec::with_capacity(users),
            counts: RunCounts::default(),
        }
    }

    pub fn as_of(&self) -> Day {
        self.as_of
    }

    pub fn counts(&self) -> &RunCounts {
        &self.counts
    }

    /// Registers a user. Returns the issue when the user is left out; an error when the users
    /// table is inconsistent in a way that has no sensible result.
    pub fn add_user(
        &mut self,
        user_id: Option<i64>,
        signup: Option<Day>,
    ) -> Result<Option<UserIssue>, FoldError> {
        self.counts.users_read += 1;
        let issue = match (user_id, signup) {
            (None, _) => Some(UserIssue::NullUserId),
            (Some(_), None) => Some(UserIssue::NullSignup),
            (Some(_), Some(day)) if day > self.as_of => Some(UserIssue::SignupAfterAsOf),
            _ => None,
        };
        if let Some(issue) = issue {
            self.counts.count_user_issue(issue);
            // A left-out user still owns their orders: they must not be reported as orphans.
            if let Some(id) = user_id
                && self.index.insert(id, u32::MAX).is_some()
            {
                return Err(FoldError::DuplicateUser(id));
            }
            return Ok(Some(issue));
        }
        let (user_id, signup) = (user_id.unwrap_or_default(), signup.unwrap_or(Day(0)));
        let mut horizon_end = [signup; 3];
        for (end, months) in horizon_end.iter_mut().zip(HORIZON_MONTHS) {
            *end = signup
                .add_months(months)
                .ok_or(FoldError::DateOutOfRange(user_id))?;
        }
        let slot =
            u32::try_from(self.users.len()).map_err(|_| FoldError::DuplicateUser(user_id))?;
        if self.index.insert(user_id, slot).is_some() {
            return Err(FoldError::DuplicateUser(user_id));
        }
        self.users.push(Accum {
            user_id,
            signup,
            horizon_end,
            revenue: [0; 4],
            orders: [0; 4],
            first: None,
            last: None,
            before_signup: 0,
        });
        self.counts.users_counted += 1;
        Ok(None)
    }

    /// Folds one order in. Returns the issue when the order is not counted.
    pub fn add_order(&mut self, order: OrderRow) -> Result<Option<OrderIssue>, FoldError> {
        self.counts.orders_read += 1;
        let issue = self.classify(&order);
        if let Some(issue) = issue {
            self.counts.count_order_issue(issue);
            return Ok(Some(issue));
        }
        // classify() returned None, so every field is present and the user is registered.
        let (Some(user_id), Some(day), Some(amount)) = (order.user_id, order.day, order.amount)
        else {
            return Ok(None);
        };
        let Some(&slot) = self.index.get(&user_id) else {
            return Ok(None);
        };
        let acc = &mut self.users[slot as usize];
        let overflow = FoldError::RevenueOverflow(user_id);
        acc.revenue[LIFETIME] = acc.revenue[LIFETIME]
            .checked_add(amount)
            .ok_or(overflow.clone())?;
        acc.orders[LIFETIME] += 1;
        acc.first = Some(acc.first.map_or(day, |f| f.min(day)));
        acc.last = Some(acc.last.map_or(day, |l| l.max(day)));
        if day < acc.signup {
            acc.before_signup += 1;
            self.counts.orders_before_signup += 1;
        } else {
            for h in 0..3 {
                if day <= acc.horizon_end[h] {
                    acc.revenue[h] = acc.revenue[h].checked_add(amount).ok_or(overflow.clone())?;
                    acc.orders[h] += 1;
                }
            }
        }
        self.counts.orders_counted += 1;
        Ok(None)
    }

    fn classify(&self, order: &OrderRow) -> Option<OrderIssue> {
        if order.status == StatusClass::Null {
            return Some(OrderIssue::NullStatus);
        }
        let Some(user_id) = order.user_id else {
            return Some(OrderIssue::NullUserId);
        };
        match self.index.get(&user_id) {
            None => return Some(OrderIssue::UnknownUser),
            Some(&u32::MAX) => return Some(OrderIssue::UserLeftOut),
            Some(_) => {}
        }
        let Some(day) = order.day else {
            return Some(OrderIssue::NullDate);
        };
        if day > self.as_of {
            return Some(OrderIssue::AfterAsOf);
        }
        match order.amount {
            None => Some(OrderIssue::NullAmount),
            Some(a) if a < 0 => Some(OrderIssue::NegativeAmount),
            Some(_) => None,
        }
    }

    /// Counts an amount the reader had to round (more decimal places than the scale).
    pub fn note_rounded_amount(&mut self) {
        self.counts.amounts_rounded += 1;
    }

    /// The result rows, ordered by user_id, and what the run counted.
    pub fn finish(self, thresholds: &SegmentThresholds) -> (Vec<UserLtv>, RunCounts) {
        let as_of = self.as_of;
        let mut rows: Vec<UserLtv> = self
            .users
            .into_iter()
            .map(|acc| {
                let orders = acc.orders.map(i64::from);
                let mut avg_order_value = [None; 4];
                for h in 0..4 {
                    if orders[h] > 0 {
                        let avg = crate::money::div_round(
                            i128::from(acc.revenue[h]),
                            i128::from(orders[h]),
                        );
                        // An average never exceeds the sum it came from, so it fits.
                        avg_order_value[h] = i64::try_from(avg).ok();
                    }
                }
                UserLtv {
                    user_id: acc.user_id,
                    signup: acc.signup,
                    revenue: acc.revenue,
                    orders,
                    avg_order_value,
                    first_order: acc.first,
                    last_order: acc.last,
                    days_since_last_order: acc.last.map(|l| as_of.days_since(l)),
                    horizon_complete: acc.horizon_end.map(|end| end <= as_of),
                    orders_before_signup: i64::from(acc.before_signup),
                    segment: thresholds.classify(acc.revenue[LIFETIME]),
                }
            })
            .collect();
        rows.sort_unstable_by_key(|r| r.user_id);
        (rows, self.counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, dd: u32) -> Day {
        Day::from_ymd(y, m, dd).unwrap()
    }

    fn order(user: i64, day: Day, amount: i64) -> OrderRow {
        OrderRow {
            user_id: Some(user),
            day: Some(day),
            amount: Some(amount),
            status: StatusClass::Successful,
        }
    }

    fn run(signup: Day, as_of: Day, orders: &[(Day, i64)]) -> UserLtv {
        let mut fold = LtvFold::new(as_of);
        fold.add_user(Some(1), Some(signup)).unwrap();
        for &(day, amount) in orders {
            fold.add_order(order(1, day, amount)).unwrap();
        }
        let (rows, _) = fold.finish(&SegmentThresholds::defaults(2));
        rows.into_iter().next().unwrap()
    }

    #[test]
    fn horizon_last_day_is_included_and_next_day_is_not() {
        let signup = d(2023, 1, 15);
        let r = run(
            signup,
            d(2024, 6, 1),
            &[(d(2023, 4, 15), 1000), (d(2023, 4, 16), 2000)],
        );
        assert_eq!(r.revenue, [1000, 3000, 3000, 3000]);
        assert_eq!(r.orders, [1, 2, 2, 2]);
    }

    #[test]
    fn month_end_signup_uses_clamped_horizon_end() {
        // Jan 31 + 3 months = Apr 30; + 1 month would be Feb 28.
        let signup = d(2023, 1, 31);
        let r = run(
            signup,
            d(2024, 6, 1),
            &[
                (d(2023, 4, 30), 100),
                (d(2023, 5, 1), 200),
                (d(2023, 7, 31), 400),
                (d(2023, 8, 1), 800),
            ],
        );
        assert_eq!(r.revenue[0], 100);
        // 6m ends Jul 31, inclusive.
        assert_eq!(r.revenue[1], 100 + 200 + 400);
        assert_eq!(r.revenue[2], 100 + 200 + 400 + 800);
    }

    #[test]
    fn leap_day_signup_ends_on_feb_28_a_year_later() {
        let signup = d(2024, 2, 29);
        let r = run(
            signup,
            d(2026, 1, 1),
            &[(d(2025, 2, 28), 100), (d(2025, 3, 1), 200)],
        );
        assert_eq!(r.revenue[2], 100);
        assert_eq!(r.revenue[LIFETIME], 300);
    }

    #[test]
    fn signup_day_counts_and_earlier_orders_count_in_lifetime_only() {
        let signup = d(2023, 3, 10);
        let r = run(
            signup,
            d(2024, 6, 1),
            &[(d(2023, 3, 9), 500), (d(2023, 3, 10), 700)],
        );
        assert_eq!(r.revenue, [700, 700, 700, 1200]);
        assert_eq!(r.orders, [1, 1, 1, 2]);
        assert_eq!(r.orders_before_signup, 1);
        assert_eq!(r.first_order, Some(d(2023, 3, 9)));
    }

    #[test]
    fn no_orders_means_zero_not_one_and_no_average() {
        let r = run(d(2023, 3, 10), d(2024, 6, 1), &[]);
        assert_eq!(r.orders, [0; 4]);
        assert_eq!(r.revenue, [0; 4]);
        assert_eq!(r.avg_order_value, [None; 4]);
        assert_eq!(r.days_since_last_order, None);
        assert_eq!(r.segment, Segment::New);
    }

    #[test]
    fn horizon_completion_is_relative_to_as_of() {
        let signup = d(2024, 1, 10);
        // 3m ends 2024-04-10: complete on that day, not the day before.
        assert_eq!(
            run(signup, d(2024, 4, 9), &[]).horizon_complete,
            [false, false, false]
        );
        assert_eq!(
            run(signup, d(2024, 4, 10), &[]).horizon_complete,
            [true, false, false]
        );
        assert_eq!(
            run(signup, d(2025, 1, 10), &[]).horizon_complete,
            [true, true, true]
        );
    }

    #[test]
    fn average_order_value_rounds_half_up_and_days_since_is_from_as_of() {
        let signup = d(2023, 1, 1);
        let r = run(
            signup,
            d(2023, 12, 31),
            &[
                (d(2023, 1, 2), 100),
                (d(2023, 1, 3), 101),
                (d(2023, 12, 1), 100),
            ],
        );
        // 301 / 3 = 100.33 -> 100; 201 / 2 = 100.5 -> 101
        assert_eq!(
            r.avg_order_value,
            [Some(101), Some(101), Some(100), Some(100)]
        );
        assert_eq!(r.days_since_last_order, Some(30));
    }

    #[test]
    fn every_skipped_order_is_classified_and_counted() {
        let as_of = d(2024, 1, 1);
        let mut fold = LtvFold::new(as_of);
        fold.add_user(Some(1), Some(d(2023, 1, 1))).unwrap();
        fold.add_user(Some(2), None).unwrap();
        fold.add_user(None, Some(d(2023, 1, 1))).unwrap();
        fold.add_user(Some(3), Some(d(2024, 2, 1))).unwrap();
        let day = Some(d(2023, 2, 1));
        let cases = [
            (
                OrderRow {
                    user_id: Some(1),
                    day,
                    amount: Some(1),
                    status: StatusClass::Null,
                },
                Some(OrderIssue::NullStatus),
            ),
            (
                OrderRow {
                    user_id: None,
                    day,
                    amount: Some(1),
                    status: StatusClass::Successful,
                },
                Some(OrderIssue::NullUserId),
            ),
            (
                OrderRow {
                    user_id: Some(99),
                    day,
                    amount: Some(1),
                    status: StatusClass::Successful,
                },
                Some(OrderIssue::UnknownUser),
            ),
            (
                OrderRow {
                    user_id: Some(1),
                    day: None,
                    amount: Some(1),
                    status: StatusClass::Successful,
                },
                Some(OrderIssue::NullDate),
            ),
            (order(1, d(2024, 1, 2), 1), Some(OrderIssue::AfterAsOf)),
            (
                OrderRow {
                    user_id: Some(1),
                    day,
                    amount: None,
                    status: StatusClass::Successful,
                },
                Some(OrderIssue::NullAmount),
            ),
            (
                order(1, d(2023, 2, 1), -5),
                Some(OrderIssue::NegativeAmount),
            ),
            (order(1, d(2024, 1, 1), 0), None),
            (order(2, d(2023, 2, 1), 10), Some(OrderIssue::UserLeftOut)),
        ];
        for (row, expected) in cases {
            assert_eq!(fold.add_order(row).unwrap(), expected, "{row:?}");
        }
        let (rows, c) = fold.finish(&SegmentThresholds::defaults(2));
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].orders[LIFETIME], 1);
        assert_eq!(
            (
                c.users_read,
                c.users_counted,
                c.users_null_id,
                c.users_null_signup,
                c.users_signup_after_as_of
            ),
            (4, 1, 1, 1, 1)
        );
        assert_eq!(c.orders_read, 9);
        assert_eq!(c.orders_counted, 1);
        assert_eq!(c.orders_skipped(), 8);
    }

    #[test]
    fn duplicate_users_are_an_error() {
        let mut fold = LtvFold::new(d(2024, 1, 1));
        fold.add_user(Some(7), Some(d(2023, 1, 1))).unwrap();
        assert_eq!(
            fold.add_user(Some(7), Some(d(2023, 1, 2))),
            Err(FoldError::DuplicateUser(7))
        );
    }

    #[test]
    fn overflow_is_an_error_not_a_wrap() {
        let mut fold = LtvFold::new(d(2024, 1, 1));
        fold.add_user(Some(7), Some(d(2023, 1, 1))).unwrap();
        fold.add_order(order(7, d(2023, 1, 1), i64::MAX)).unwrap();
        assert_eq!(
            fold.add_order(order(7, d(2023, 1, 1), 1)),
            Err(FoldError::RevenueOverflow(7))
        );
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn horizons_nest_and_sums_add_up(
                signup in 0i32..3000,
                as_of_offset in 0i32..1500,
                orders in proptest::collection::vec((-100i32..900, 0i64..100_000), 0..60),
            ) {
                let signup = Day(signup);
                let as_of = Day(signup.0 + as_of_offset);
                let mut fold = LtvFold::new(as_of);
                fold.add_user(Some(1), Some(signup)).unwrap();
                let mut expected_lifetime = 0;
                let mut expected_count = 0;
                for &(offset, amount) in &orders {
                    let day = Day(signup.0 + offset);
                    if fold.add_order(order(1, day, amount)).unwrap().is_none() {
                        expected_lifetime += amount;
                        expected_count += 1;
                    } else {
                        prop_assert!(day > as_of);
                    }
                }
                let (rows, counts) = fold.finish(&SegmentThresholds::defaults(2));
                let r = &rows[0];
                prop_assert!(r.revenue[0] <= r.revenue[1] && r.revenue[1] <= r.revenue[2] && r.revenue[2] <= r.revenue[3]);
                prop_assert!(r.orders[0] <= r.orders[1] && r.orders[1] <= r.orders[2] && r.orders[2] <= r.orders[3]);
                prop_assert_eq!(r.revenue[LIFETIME], expected_lifetime);
                prop_assert_eq!(r.orders[LIFETIME], expected_count);
                prop_assert_eq!(counts.orders_counted + counts.orders_skipped(), counts.orders_read);
                if let (Some(first), Some(last)) = (r.first_order, r.last_order) {
                    prop_assert!(first <= last && last <= as_of);
                }
            }
        }
    }
}
