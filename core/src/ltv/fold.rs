//! The single pass over users and orders that produces every user's LTV row.
//!
//! Users are registered first ([`LtvFold::add_user`]), then orders stream through
//! [`LtvFold::add_order`] in any order, then [`LtvFold::finish`] produces the rows. Per-user state
//! is a fixed-size struct, so memory grows with users, not orders. Every row that is not counted is
//! classified and counted in [`RunCounts`], so the caller can report it.
//!
//! The fold is two parts that a parallel read uses separately: the users
//! ([`super::users::UserTable`], built once and shared) and the order sums
//! ([`super::totals::OrderTotals`], one per process, merged at the end).

use super::segment::{Segment, SegmentThresholds};
#[cfg(test)]
use super::totals::OrderBatch;
#[cfg(test)]
use super::totals::SLOT_BYTES;
use super::totals::{OrderTotals, Slot};
use super::users::{ABSENT, LEFT_OUT, UserTable};
use super::wire::{Reader, Writer};
use crate::calendar::Day;
use crate::left_out::{LeftOut, Reason};
use crate::money::AmountError;
use crate::stored::IdPrint;

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

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FoldError {
    DuplicateUser(i64),
    RevenueOverflow(i64),
    /// A user's order count (or count of orders before signup) would not fit its counter.
    OrderCountOverflow(i64),
    DateOutOfRange(i64),
    TooManyUsers,
    /// An order amount the reader could not turn into minor units, with the order's user.
    BadAmount {
        error: AmountError,
        user_id: Option<i64>,
    },
}

impl FoldError {
    /// Writes an optional error, for states that carry the first error they met.
    pub(crate) fn write_opt(error: &Option<FoldError>, w: &mut Writer) {
        let (kind, id) = match error {
            None => return w.u32(0),
            Some(FoldError::DuplicateUser(id)) => (1, *id),
            Some(FoldError::RevenueOverflow(id)) => (2, *id),
            Some(FoldError::DateOutOfRange(id)) => (3, *id),
            Some(FoldError::TooManyUsers) => (4, 0),
            Some(FoldError::OrderCountOverflow(id)) => (7, *id),
            Some(FoldError::BadAmount { error, user_id }) => {
                let (kind, text) = match error {
                    AmountError::NotANumber(t) => (5, t),
                    AmountError::Overflow(t) => (6, t),
                };
                w.u32(kind);
                w.u32(u32::from(user_id.is_some()));
                w.i64(user_id.unwrap_or_default());
                w.str(text);
                return;
            }
        };
        w.u32(kind);
        w.i64(id);
    }

    pub(crate) fn read_opt(r: &mut Reader<'_>) -> Result<Option<FoldError>, String> {
        Ok(Some(match r.u32()? {
            0 => return Ok(None),
            1 => FoldError::DuplicateUser(r.i64()?),
            2 => FoldError::RevenueOverflow(r.i64()?),
            3 => FoldError::DateOutOfRange(r.i64()?),
            4 => {
                r.i64()?;
                FoldError::TooManyUsers
            }
            7 => FoldError::OrderCountOverflow(r.i64()?),
            kind @ (5 | 6) => {
                let has_user = r.u32()? != 0;
                let user_id = r.i64()?;
                let text = r.str()?;
                FoldError::BadAmount {
                    error: if kind == 5 {
                        AmountError::NotANumber(text)
                    } else {
                        AmountError::Overflow(text)
                    },
                    user_id: has_user.then_some(user_id),
                }
            }
            _ => return Err("unknown error kind in state".into()),
        }))
    }
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
            FoldError::OrderCountOverflow(id) => {
                write!(
                    f,
                    "order count of user_id {id} overflows its 32-bit counter"
                )
            }
            FoldError::DateOutOfRange(id) => {
                write!(
                    f,
                    "signup date of user_id {id} is outside the supported calendar range"
                )
            }
            FoldError::TooManyUsers => write!(f, "more than 4,294,967,293 users"),
            FoldError::BadAmount { error, user_id } => match user_id {
                Some(id) => write!(f, "{error}: order of user_id {id}"),
                None => write!(f, "{error}: order of user_id NULL"),
            },
        }
    }
}

/// What a run read, counted and left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunCounts {
    pub users_read: i64,
    pub users_counted: i64,
    pub orders_read: i64,
    pub orders_counted: i64,
    pub orders_before_signup: i64,
    /// Amounts with more decimal places than the scale, rounded (counted by the reader).
    pub amounts_rounded: i64,
    /// The users and orders left out, by why.
    pub left_out: LeftOut,
}

impl RunCounts {
    /// The plain counts in a fixed order, for merging and for the wire.
    fn fields_mut(&mut self) -> [&mut i64; 6] {
        [
            &mut self.users_read,
            &mut self.users_counted,
            &mut self.orders_read,
            &mut self.orders_counted,
            &mut self.orders_before_signup,
            &mut self.amounts_rounded,
        ]
    }

    /// Adds another part's counts to these.
    pub fn merge(&mut self, other: &RunCounts) {
        let mut plain = other.clone();
        for (a, b) in self.fields_mut().into_iter().zip(plain.fields_mut()) {
            *a += *b;
        }
        self.left_out.merge(&other.left_out);
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        let mut copy = self.clone();
        for v in copy.fields_mut() {
            w.i64(*v);
        }
        self.left_out.write(w);
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, String> {
        let mut c = RunCounts::default();
        for v in c.fields_mut() {
            *v = r.i64()?;
        }
        c.left_out = LeftOut::read(r)?;
        Ok(c)
    }

    /// Counts a user or an order left out.
    pub(crate) fn count(&mut self, reason: Reason) {
        self.left_out.add(reason, 1);
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
    pub first_order: Option<Day>,
    pub last_order: Option<Day>,
    pub days_since_last_order: Option<i32>,
    /// Whether the 3m, 6m and 12m horizons had fully elapsed on the as-of day.
    pub horizon_complete: [bool; 3],
    pub orders_before_signup: i64,
    pub segment: Segment,
}

impl UserLtv {
    /// Average order value in minor units per horizon, rounded half away from zero; `None`
    /// without orders. Derived rather than kept: a run holds a row per user, and the averages
    /// would make each a third larger.
    pub fn avg_order_value(&self) -> [Option<i64>; 4] {
        std::array::from_fn(|h| {
            u64::try_from(self.orders[h])
                .ok()
                .and_then(|n| crate::money::average(self.revenue[h], n))
        })
    }
}

/// The fold over one run, in one process: a [`UserTable`] and the [`OrderTotals`] over it. See the
/// module documentation. A parallel read uses the two parts directly.
#[derive(Debug)]
pub struct LtvFold {
    users: UserTable,
    totals: Option<OrderTotals>,
}

impl LtvFold {
    /// A fold for a run as of the end of day `as_of`.
    pub fn new(as_of: Day) -> Self {
        LtvFold {
            users: UserTable::new(as_of),
            totals: None,
        }
    }

    pub fn as_of(&self) -> Day {
        self.users.as_of()
    }

    /// Registers a user. Returns the issue when the user is left out; an error when the users
    /// table is inconsistent in a way that has no sensible result. Users come before orders.
    pub fn add_user(
        &mut self,
        user_id: Option<i64>,
        signup: Option<Day>,
    ) -> Result<Option<Reason>, FoldError> {
        self.users.add_user(user_id, signup)
    }

    /// Folds one order in. Returns the issue when the order is not counted.
    pub fn add_order(&mut self, order: OrderRow) -> Result<Option<Reason>, FoldError> {
        self.users.freeze();
        self.users.check()?;
        let users = &self.users;
        self.totals
            .get_or_insert_with(|| OrderTotals::for_users(users))
            .add_order(users, order, false)
    }

    /// The result rows, ordered by user_id, and what the run counted.
    pub fn finish(mut self, thresholds: &SegmentThresholds) -> (Vec<UserLtv>, RunCounts) {
        self.users.freeze();
        let totals = self
            .totals
            .unwrap_or_else(|| OrderTotals::for_users(&self.users));
        finish(&self.users, &totals, thresholds)
    }
}

/// The counted users' slots: (slot, signup day, sums).
fn counted<'a>(
    users: &'a UserTable,
    totals: &'a OrderTotals,
) -> impl Iterator<Item = (u32, i32, &'a Slot)> + 'a {
    static EMPTY: Slot = Slot::EMPTY;
    (0..users.slot_count() as u32).filter_map(move |slot| {
        let signup = users.slot_signup(slot);
        (signup != ABSENT && signup != LEFT_OUT).then(|| {
            (
                slot,
                signup,
                totals.slots().get(slot as usize).unwrap_or(&EMPTY),
            )
        })
    })
}

/// Everything the users and the orders counted.
fn run_counts(users: &UserTable, totals: &OrderTotals) -> RunCounts {
    let mut counts = users.counts().clone();
    counts.merge(totals.counts());
    counts
}

/// The result rows of a run, ordered by user_id, and everything it counted.
pub fn finish(
    users: &UserTable,
    totals: &OrderTotals,
    thresholds: &SegmentThresholds,
) -> (Vec<UserLtv>, RunCounts) {
    build_rows(users, totals, thresholds, |_| {})
}

/// [`finish`], with each row's `(user id, stored fingerprint)` ([`super::stored::fingerprint`] at
/// amount scale `scale`) in the same order: each fingerprint is taken as its row is built, while
/// the row is still in the cache, rather than in a second pass over a million rows.
pub fn finish_fingerprinted(
    users: &UserTable,
    totals: &OrderTotals,
    thresholds: &SegmentThresholds,
    scale: u32,
) -> (Vec<UserLtv>, Vec<IdPrint>, RunCounts) {
    let mut prints = Vec::with_capacity(users.len());
    let (rows, counts) = build_rows(users, totals, thresholds, |r| {
        prints.push((r.user_id, super::stored::fingerprint(r, scale)))
    });
    if !users.slots_sorted() {
        prints.sort_unstable_by_key(|p| p.0);
    }
    (rows, prints, counts)
}

/// The rows in user id order, calling `each` on every row as it is built (in slot order).
fn build_rows(
    users: &UserTable,
    totals: &OrderTotals,
    thresholds: &SegmentThresholds,
    mut each: impl FnMut(&UserLtv),
) -> (Vec<UserLtv>, RunCounts) {
    let as_of = users.as_of();
    let mut rows: Vec<UserLtv> = Vec::with_capacity(users.len());
    for (slot, signup, acc) in counted(users, totals) {
        let orders = acc.orders.map(i64::from);
        let last = acc.last();
        rows.push(UserLtv {
            user_id: users.user_id(slot),
            signup: Day(signup),
            revenue: acc.revenue,
            orders,
            first_order: acc.first(),
            last_order: last,
            days_since_last_order: last.map(|l| as_of.days_since(l)),
            horizon_complete: users.horizon_end(signup).map(|end| end <= as_of.0),
            orders_before_signup: i64::from(acc.before_signup()),
            segment: thresholds.classify(acc.revenue[LIFETIME]),
        });
        if let Some(row) = rows.last() {
            each(row);
        }
    }
    if !users.slots_sorted() {
        rows.sort_unstable_by_key(|r| r.user_id);
    }
    (rows, run_counts(users, totals))
}

/// A user's lifetime purchases as of the run's as-of date: what scores that need no horizons (RFM)
/// take from the read, without building whole LTV rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Purchases {
    pub user_id: i64,
    /// None for a user without orders.
    pub days_since_last_order: Option<i32>,
    pub orders: i64,
    /// Minor units.
    pub revenue: i64,
}

/// Every counted user's [`Purchases`], ordered by user_id (the lifetime columns of [`finish`]'s
/// rows), and everything the run counted.
pub fn purchases(users: &UserTable, totals: &OrderTotals) -> (Vec<Purchases>, RunCounts) {
    let as_of = users.as_of();
    let mut out: Vec<Purchases> = counted(users, totals)
        .map(|(slot, _, acc)| Purchases {
            user_id: users.user_id(slot),
            days_since_last_order: acc.last().map(|l| as_of.days_since(l)),
            orders: i64::from(acc.orders[LIFETIME]),
            revenue: acc.revenue[LIFETIME],
        })
        .collect();
    if !users.slots_sorted() {
        out.sort_unstable_by_key(|p| p.user_id);
    }
    (out, run_counts(users, totals))
}

#[cfg(test)]
// The property tests fold into shared slots over plain memory, as the processes of a run do.
#[allow(unsafe_code)]
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
        assert_eq!(r.avg_order_value(), [None; 4]);
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
            r.avg_order_value(),
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
                Some(Reason::NullStatus),
            ),
            (
                OrderRow {
                    user_id: None,
                    day,
                    amount: Some(1),
                    status: StatusClass::Successful,
                },
                Some(Reason::NullUserId),
            ),
            (
                OrderRow {
                    user_id: Some(99),
                    day,
                    amount: Some(1),
                    status: StatusClass::Successful,
                },
                Some(Reason::UnknownUser),
            ),
            (
                OrderRow {
                    user_id: Some(1),
                    day: None,
                    amount: Some(1),
                    status: StatusClass::Successful,
                },
                Some(Reason::NullDate),
            ),
            (order(1, d(2024, 1, 2), 1), Some(Reason::AfterEnd)),
            (
                OrderRow {
                    user_id: Some(1),
                    day,
                    amount: None,
                    status: StatusClass::Successful,
                },
                Some(Reason::NullAmount),
            ),
            (order(1, d(2023, 2, 1), -5), Some(Reason::NegativeAmount)),
            (order(1, d(2024, 1, 1), 0), None),
            (order(2, d(2023, 2, 1), 10), Some(Reason::OfLeftOutUser)),
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
                c.left_out.count(Reason::UserNullId),
                c.left_out.count(Reason::UserNullSignup),
                c.left_out.count(Reason::UserSignupAfterEnd)
            ),
            (4, 1, 1, 1, 1)
        );
        assert_eq!(c.orders_read, 9);
        assert_eq!(c.orders_counted, 1);
        assert_eq!(c.left_out.orders(), 8);
    }

    #[test]
    fn duplicate_users_are_an_error() {
        let mut fold = LtvFold::new(d(2024, 1, 1));
        fold.add_user(Some(7), Some(d(2023, 1, 1))).unwrap();
        fold.add_user(Some(7), Some(d(2023, 1, 2))).unwrap();
        assert_eq!(
            fold.add_order(order(7, d(2023, 1, 1), 100)),
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
            /// What a parallel read does (users encoded and decoded in every process, orders
            /// split over processes, each part encoded, decoded and merged) gives exactly the rows
            /// and counts of one serial fold.
            #[test]
            fn split_and_merged_parts_equal_one_serial_fold(
                users in proptest::collection::vec((0i64..40, proptest::option::of(0i32..800)), 0..30),
                orders in proptest::collection::vec(
                    (proptest::option::of(-2i64..45), proptest::option::of(-50i32..900),
                     proptest::option::of(-10i64..100_000), any::<bool>(), 0usize..3),
                    0..120),
                sparse in any::<bool>(),
                in_shared_memory in any::<bool>(),
            ) {
                let as_of = Day(700);
                let mut serial = LtvFold::new(as_of);
                let mut table = UserTable::new(as_of);
                for &(id, signup) in &users {
                    // Ids spread out in some cases, so that both slot layouts are exercised.
                    let id = if sparse { id * 1_000_003 } else { id };
                    let a = serial.add_user(Some(id), signup.map(Day));
                    let b = table.add_user(Some(id), signup.map(Day));
                    prop_assert_eq!(a, b);
                }
                table.freeze();
                prop_assume!(table.check().is_ok());
                let shared = UserTable::decode(&table.encode()).unwrap();
                // Either each part has its own slots, or all fold into one shared array.
                let mut memory = vec![Slot::default(); shared.slot_count()];
                let mut parts = if in_shared_memory {
                    let (base, len) = (memory.as_mut_ptr().cast::<u8>(), memory.len() * SLOT_BYTES);
                    // SAFETY: the memory outlives the parts, which fold one after another.
                    (0..3).map(|i| unsafe { OrderTotals::over_shared(base, len, &shared, i == 0) }.unwrap()).collect()
                } else {
                    vec![OrderTotals::for_users(&shared); 3]
                };
                let mut batches: Vec<OrderBatch> = (0..3).map(|_| OrderBatch::default()).collect();
                for &(user, day, amount, null_status, part) in &orders {
                    let row = OrderRow {
                        user_id: user.map(|u| if sparse { u * 1_000_003 } else { u }),
                        day: day.map(Day),
                        amount,
                        status: if null_status { StatusClass::Null } else { StatusClass::Successful },
                    };
                    serial.add_order(row).unwrap();
                    // Part 0 folds order by order, the others in batches.
                    if part == 0 {
                        parts[0].add_order(&shared, row, false).unwrap();
                    } else {
                        batches[part].push(&mut parts[part], &shared, row, false);
                    }
                }
                for (batch, part) in batches.iter_mut().zip(parts.iter_mut()) {
                    batch.flush(part, &shared);
                }
                // Parts sent between processes leave shared slots behind: the leader reads
                // them through a view of its own.
                let mut merged: Option<OrderTotals> = in_shared_memory.then(|| {
                    let (base, len) = (memory.as_mut_ptr().cast::<u8>(), memory.len() * SLOT_BYTES);
                    // SAFETY: as above; the parts are done folding.
                    unsafe { OrderTotals::over_shared(base, len, &shared, false) }.unwrap()
                });
                for part in &parts {
                    let part = OrderTotals::decode(&part.encode()).unwrap();
                    match &mut merged {
                        None => merged = Some(part),
                        Some(m) => m.merge(&part, Some(&shared)),
                    }
                }
                let thresholds = SegmentThresholds::defaults(2);
                let expected = serial.finish(&thresholds);
                let merged = merged.unwrap();
                let got = finish(&shared, &merged, &thresholds);
                // The purchases are the rows' lifetime columns, user for user.
                let (bought, bought_counts) = purchases(&shared, &merged);
                let lifetime: Vec<Purchases> = got.0.iter().map(|r| Purchases {
                    user_id: r.user_id,
                    days_since_last_order: r.days_since_last_order,
                    orders: r.orders[LIFETIME],
                    revenue: r.revenue[LIFETIME],
                }).collect();
                prop_assert_eq!(bought, lifetime);
                prop_assert_eq!(&bought_counts, &got.1);
                // The fingerprints taken as the rows are built are the rows' own, in their order.
                let (rows, prints, print_counts) = finish_fingerprinted(&shared, &merged, &thresholds, 2);
                prop_assert_eq!(&rows, &got.0);
                prop_assert_eq!(&print_counts, &got.1);
                let want: Vec<(i64, [u8; 16])> = got.0.iter()
                    .map(|r| (r.user_id, crate::ltv::stored::fingerprint(r, 2))).collect();
                prop_assert_eq!(prints, want);
                prop_assert_eq!(got, expected);
                drop(parts);
                drop(memory);
            }

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
                prop_assert_eq!(counts.orders_counted + counts.left_out.orders(), counts.orders_read);
                if let (Some(first), Some(last)) = (r.first_order, r.last_order) {
                    prop_assert!(first <= last && last <= as_of);
                }
            }
        }
    }
}
