//! The per-user sums of a run's orders, one fixed-size slot per counted user.
//!
//! Orders can be folded in any order, in several processes at once: each process folds the
//! orders it scans into its own [`OrderTotals`] against the shared [`UserTable`], and the parts
//! are merged ([`OrderTotals::merge`]). Memory is one slot per user, whatever the number of orders.

use super::fold::{FoldError, LIFETIME, OrderIssue, OrderRow, RunCounts, StatusClass};
use super::users::{ABSENT, LEFT_OUT, Lookup, UserTable};
use super::wire::{Reader, Writer};
use crate::calendar::Day;

const NO_FIRST: i32 = i32::MAX;
const NO_LAST: i32 = i32::MIN;
const SLOT_BYTES: usize = std::mem::size_of::<Slot>();

/// One user's sums: exactly one cache line, holding everything folding an order reads or
/// writes (the user's signup day included), so an order costs one memory access.
#[derive(Debug, Clone, Copy, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C, align(64))]
pub(crate) struct Slot {
    /// Minor units: 3m, 6m, 12m, lifetime.
    pub revenue: [i64; 4],
    pub orders: [u32; 4],
    pub first: i32,
    pub last: i32,
    /// A copy of the user's signup day (or a marker), for the fold in this process.
    pub signup: i32,
    pub before_signup: u32,
}

impl Default for Slot {
    fn default() -> Self {
        Slot {
            revenue: [0; 4],
            orders: [0; 4],
            first: NO_FIRST,
            last: NO_LAST,
            signup: ABSENT,
            before_signup: 0,
        }
    }
}

impl Slot {
    pub fn first(&self) -> Option<Day> {
        (self.first != NO_FIRST).then_some(Day(self.first))
    }
    pub fn last(&self) -> Option<Day> {
        (self.last != NO_LAST).then_some(Day(self.last))
    }
}

/// Per-user sums and run counts of the orders folded so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderTotals {
    pub(crate) slots: Vec<Slot>,
    counts: RunCounts,
    /// The first error met; folding stops there and [`OrderTotals::check`] reports it.
    error: Option<FoldError>,
}

impl OrderTotals {
    /// Empty totals for the users of `users`.
    pub fn for_users(users: &UserTable) -> Self {
        let slots = (0..users.slot_count() as u32)
            .map(|s| Slot {
                signup: users.slot_signup(s),
                ..Slot::default()
            })
            .collect();
        OrderTotals {
            slots,
            counts: RunCounts::default(),
            error: None,
        }
    }

    pub fn counts(&self) -> &RunCounts {
        &self.counts
    }

    pub fn check(&self) -> Result<(), FoldError> {
        self.error.clone().map_or(Ok(()), Err)
    }

    /// Records an error found outside the fold (an amount that could not be read), so that it
    /// travels with the totals to the process that reports it. The first error stays.
    pub fn fail(&mut self, error: FoldError) {
        if self.error.is_none() {
            self.error = Some(error);
        }
    }

    /// Folds one order in; `rounded` says the reader rounded its amount to the scale. Returns the
    /// issue when the order is not counted.
    pub fn add_order(
        &mut self,
        users: &UserTable,
        order: OrderRow,
        rounded: bool,
    ) -> Result<Option<OrderIssue>, FoldError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        self.counts.orders_read += 1;
        let (slot, day, amount) = match classify(users, &self.slots, &order) {
            Ok(v) => v,
            Err(issue) => {
                self.counts.count_order_issue(issue);
                return Ok(Some(issue));
            }
        };
        let acc = &mut self.slots[slot as usize];
        let Some(lifetime) = acc.revenue[LIFETIME].checked_add(amount) else {
            let e = FoldError::RevenueOverflow(users.user_id(slot));
            self.error = Some(e.clone());
            return Err(e);
        };
        acc.revenue[LIFETIME] = lifetime;
        acc.orders[LIFETIME] += 1;
        acc.first = acc.first.min(day.0);
        acc.last = acc.last.max(day.0);
        if day.0 < acc.signup {
            acc.before_signup += 1;
            self.counts.orders_before_signup += 1;
        } else {
            // Horizon sums never exceed the lifetime sum, which did not overflow.
            for (h, end) in users.horizon_end(acc.signup).iter().enumerate() {
                if day.0 <= *end {
                    acc.revenue[h] += amount;
                    acc.orders[h] += 1;
                }
            }
        }
        self.counts.orders_counted += 1;
        if rounded {
            self.counts.amounts_rounded += 1;
        }
        Ok(None)
    }

    /// Adds another part's sums and counts to these. Both must be for the same [`UserTable`].
    pub fn merge(&mut self, other: &OrderTotals, users: Option<&UserTable>) {
        // A bad amount is reported before any other error, whichever part met it.
        let bad_amount = |e: &Option<FoldError>| matches!(e, Some(FoldError::BadAmount { .. }));
        if self.error.is_none() || (bad_amount(&other.error) && !bad_amount(&self.error)) {
            self.error = other.error.clone();
        }
        self.counts.merge(&other.counts);
        if self.slots.len() < other.slots.len() {
            self.slots.resize(other.slots.len(), Slot::default());
        }
        for (slot, (a, b)) in self.slots.iter_mut().zip(&other.slots).enumerate() {
            for h in 0..4 {
                match a.revenue[h].checked_add(b.revenue[h]) {
                    Some(v) => a.revenue[h] = v,
                    None => {
                        if self.error.is_none() {
                            let id = users.map_or(slot as i64, |u| u.user_id(slot as u32));
                            self.error = Some(FoldError::RevenueOverflow(id));
                        }
                    }
                }
                a.orders[h] += b.orders[h];
            }
            a.first = a.first.min(b.first);
            a.last = a.last.max(b.last);
            a.before_signup += b.before_signup;
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(256 + self.slots.len() * SLOT_BYTES);
        w.tag(b"CDAO");
        self.counts.write(&mut w);
        FoldError::write_opt(&self.error, &mut w);
        w.u64(self.slots.len() as u64);
        // The bytes only travel between processes of one server (parallel workers and their
        // leader), so the slots are copied as they lie in memory: no per-field work for a
        // million users.
        let mut out = w.into_bytes();
        out.extend_from_slice(bytemuck::cast_slice(&self.slots));
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        let mut r = Reader::new(bytes);
        r.tag(b"CDAO")?;
        let counts = RunCounts::read(&mut r)?;
        let error = FoldError::read_opt(&mut r)?;
        let n = r.len(SLOT_BYTES)?;
        let raw = r.rest();
        if raw.len() != n * SLOT_BYTES {
            return Err("slots do not match their count".into());
        }
        let mut slots = vec![Slot::default(); n];
        bytemuck::cast_slice_mut::<Slot, u8>(&mut slots).copy_from_slice(raw);
        Ok(OrderTotals {
            slots,
            counts,
            error,
        })
    }
}

/// Orders held back a few at a time so that their slots can be fetched from memory together:
/// with a million users the slots do not fit in any cache, and one order after another would
/// wait for one memory access after another.
#[derive(Debug, Default)]
pub struct OrderBatch {
    rows: Vec<(OrderRow, bool)>,
}

const BATCH: usize = 32;

impl OrderBatch {
    /// Adds an order; folds the held orders into `totals` when the batch is full.
    #[inline]
    pub fn push(
        &mut self,
        totals: &mut OrderTotals,
        users: &UserTable,
        row: OrderRow,
        rounded: bool,
    ) {
        if let Some(id) = row.user_id
            && let Lookup::Slot(slot) = users.lookup(id)
            && let Some(s) = totals.slots.get(slot as usize)
        {
            prefetch(s);
        }
        if self.rows.capacity() == 0 {
            self.rows.reserve_exact(BATCH);
        }
        self.rows.push((row, rounded));
        if self.rows.len() == BATCH {
            self.flush(totals, users);
        }
    }

    /// Folds the held orders into `totals`. Errors stay in `totals` ([`OrderTotals::check`]).
    pub fn flush(&mut self, totals: &mut OrderTotals, users: &UserTable) {
        for (row, rounded) in self.rows.drain(..) {
            let _ = totals.add_order(users, row, rounded);
        }
    }
}

#[inline]
fn prefetch<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint; it reads nothing and cannot fault.
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>((value as *const T).cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}

/// The slot, day and amount of an order that counts, or why it does not.
#[inline]
fn classify(
    users: &UserTable,
    slots: &[Slot],
    order: &OrderRow,
) -> Result<(u32, Day, i64), OrderIssue> {
    if order.status == StatusClass::Null {
        return Err(OrderIssue::NullStatus);
    }
    let user_id = order.user_id.ok_or(OrderIssue::NullUserId)?;
    let slot = match users.lookup(user_id) {
        Lookup::Absent => return Err(OrderIssue::UnknownUser),
        Lookup::LeftOut => return Err(OrderIssue::UserLeftOut),
        Lookup::Slot(slot) => slot,
    };
    match slots.get(slot as usize).map(|s| s.signup) {
        None | Some(ABSENT) => return Err(OrderIssue::UnknownUser),
        Some(LEFT_OUT) => return Err(OrderIssue::UserLeftOut),
        Some(_) => {}
    }
    let day = order.day.ok_or(OrderIssue::NullDate)?;
    if day > users.as_of() {
        return Err(OrderIssue::AfterAsOf);
    }
    match order.amount {
        None => Err(OrderIssue::NullAmount),
        Some(a) if a < 0 => Err(OrderIssue::NegativeAmount),
        Some(a) => Ok((slot, day, a)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::AmountError;

    #[test]
    fn errors_travel_in_the_encoding_and_a_bad_amount_wins_the_merge() {
        let bad = FoldError::BadAmount {
            error: AmountError::NotANumber("NaN".into()),
            user_id: Some(7),
        };
        let mut a = OrderTotals::default();
        a.fail(FoldError::RevenueOverflow(3));
        let mut b = OrderTotals::default();
        b.fail(bad.clone());
        b.fail(FoldError::RevenueOverflow(4));
        let b = OrderTotals::decode(&b.encode()).unwrap();
        assert_eq!(b.check(), Err(bad.clone()));
        a.merge(&b, None);
        assert_eq!(a.check(), Err(bad.clone()));
        assert_eq!(
            bad.to_string(),
            "amount \"NaN\" is not a finite number: order of user_id 7"
        );
        let none = FoldError::BadAmount {
            error: AmountError::Overflow("1e30".into()),
            user_id: None,
        };
        let mut c = OrderTotals::default();
        c.fail(none.clone());
        assert_eq!(OrderTotals::decode(&c.encode()).unwrap().check(), Err(none));
    }
}
