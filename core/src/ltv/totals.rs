//! The per-user sums of a run's orders, one fixed-size slot per counted user.
//!
//! Orders can be folded in any order, in several processes at once, in one of two ways:
//!
//! - each process folds the orders it scans into its own [`OrderTotals`] against the shared
//!   [`UserTable`], and the parts are merged ([`OrderTotals::merge`]);
//! - every process folds into one array of slots in memory they share
//!   ([`OrderTotals::over_shared`]), each slot taken under its own lock for the few writes an
//!   order makes. Nothing is merged then but the counts: encoding, sending, decoding and adding
//!   up each worker's slots (64 bytes per user) cost more than the fold (BENCHMARKS.md,
//!   "Measurements behind the code").
//!
//! Memory is one slot per user, whatever the number of orders.

// The shared slots are raw memory that several processes write under per-slot locks.
#![allow(unsafe_code)]

use std::ptr::{NonNull, addr_of, addr_of_mut};
use std::sync::atomic::{AtomicU32, Ordering};

use super::fold::{FoldError, LIFETIME, OrderRow, RunCounts, StatusClass};
use super::users::{ABSENT, LEFT_OUT, Lookup, UserTable};
use super::wire::{Reader, Writer};
use crate::calendar::Day;
use crate::left_out::Reason;

const NO_FIRST: i32 = i32::MAX;
const NO_LAST: i32 = i32::MIN;
/// The bytes of one slot, and their alignment in shared memory.
pub const SLOT_BYTES: usize = std::mem::size_of::<Slot>();
/// The lock bit of [`Slot::guard`]; the other bits count orders before signup.
const LOCKED: u32 = 1 << 31;

/// One user's sums: exactly one cache line, holding everything folding an order reads or
/// writes (the user's signup day included), so an order costs one memory access.
#[derive(Debug, Clone, Copy, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C, align(64))]
pub struct Slot {
    /// Minor units: 3m, 6m, 12m, lifetime.
    pub(crate) revenue: [i64; 4],
    pub(crate) orders: [u32; 4],
    pub(crate) first: i32,
    pub(crate) last: i32,
    /// A copy of the user's signup day (or a marker), for the fold; never written after the
    /// slot is set up.
    pub(crate) signup: i32,
    /// The number of orders dated before signup, and in bit 31 the slot's lock: whoever folds
    /// an order into the slot sets it first, so that processes sharing the slots never mix
    /// their writes. It sits in this field because the slot has no spare byte.
    pub(crate) guard: u32,
}

impl Default for Slot {
    fn default() -> Self {
        Slot::EMPTY
    }
}

impl Slot {
    /// No user, no orders.
    pub(crate) const EMPTY: Slot = Slot {
        revenue: [0; 4],
        orders: [0; 4],
        first: NO_FIRST,
        last: NO_LAST,
        signup: ABSENT,
        guard: 0,
    };

    /// The slot of `users`' slot `s` before any order: its signup day (or marker) and no sums.
    fn empty(users: &UserTable, s: u32) -> Self {
        Slot {
            signup: users.slot_signup(s),
            ..Slot::default()
        }
    }

    pub fn first(&self) -> Option<Day> {
        (self.first != NO_FIRST).then_some(Day(self.first))
    }
    pub fn last(&self) -> Option<Day> {
        (self.last != NO_LAST).then_some(Day(self.last))
    }
    pub fn before_signup(&self) -> u32 {
        self.guard & !LOCKED
    }
}

/// Where the slots are.
#[derive(Debug, Clone)]
enum Slots {
    Owned(Vec<Slot>),
    /// Memory shared with the other processes folding the same run; see
    /// [`OrderTotals::over_shared`].
    Shared {
        base: NonNull<Slot>,
        len: usize,
    },
}

// SAFETY: shared slots are written only under their locks, from whichever thread or process;
// moving the view to another thread changes nothing about that (see OrderTotals::over_shared).
unsafe impl Send for Slots {}
// SAFETY: through a shared reference the slots are only read (OrderTotals::slots), which
// over_shared's contract allows once folding is over; every write takes `&mut OrderTotals`.
unsafe impl Sync for Slots {}

impl Default for Slots {
    fn default() -> Self {
        Slots::Owned(Vec::new())
    }
}

/// Per-user sums and run counts of the orders folded so far.
#[derive(Debug, Clone, Default)]
pub struct OrderTotals {
    slots: Slots,
    counts: RunCounts,
    /// The first error met; folding stops there and [`OrderTotals::check`] reports it.
    error: Option<FoldError>,
}

impl PartialEq for OrderTotals {
    fn eq(&self, other: &Self) -> bool {
        self.counts == other.counts && self.error == other.error && self.slots() == other.slots()
    }
}

impl Eq for OrderTotals {}

/// Takes a slot's lock and returns the rest of its guard word.
#[inline]
fn lock(guard: &AtomicU32) -> u32 {
    loop {
        let v = guard.load(Ordering::Relaxed);
        if v & LOCKED == 0
            && guard
                .compare_exchange_weak(v, v | LOCKED, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        {
            return v;
        }
        std::hint::spin_loop();
    }
}

/// Runs `f` on the sums of the slot at `p` under the slot's lock; `f` gets the count of orders
/// before signup and returns the new count (or an error, which leaves the slot unchanged if `f`
/// wrote nothing before failing).
///
/// # Safety
/// `p` must point to a live slot whose fields other than `guard` and `signup` are only accessed
/// under its lock, and whose `signup` is not written while slots are folded into.
#[inline]
unsafe fn with_locked<T>(
    p: *mut Slot,
    f: impl FnOnce(&mut [i64; 4], &mut [u32; 4], &mut i32, &mut i32, u32) -> Result<(u32, T), T>,
) -> T {
    // SAFETY: as the caller vouches; the field references exist only while the lock is held.
    unsafe {
        let guard = AtomicU32::from_ptr(addr_of_mut!((*p).guard));
        let held = lock(guard);
        let (kept, out) = match f(
            &mut *addr_of_mut!((*p).revenue),
            &mut *addr_of_mut!((*p).orders),
            &mut *addr_of_mut!((*p).first),
            &mut *addr_of_mut!((*p).last),
            held,
        ) {
            Ok((count, out)) => (count, out),
            Err(out) => (held, out),
        };
        guard.store(kept, Ordering::Release);
        out
    }
}

impl OrderTotals {
    /// Empty totals for the users of `users`.
    pub fn for_users(users: &UserTable) -> Self {
        let slots = (0..users.slot_count() as u32)
            .map(|s| Slot::empty(users, s))
            .collect();
        OrderTotals {
            slots: Slots::Owned(slots),
            counts: RunCounts::default(),
            error: None,
        }
    }

    /// The bytes of shared memory that [`OrderTotals::over_shared`] needs for `users`.
    pub fn shared_bytes(users: &UserTable) -> usize {
        users.slot_count() * SLOT_BYTES
    }

    /// Totals whose slots are the `len` bytes at `base`, shared with other processes (or
    /// threads) folding the same run: every order folded anywhere lands in the same slots, and
    /// only the counts stay per process. `set_up` writes empty slots for `users` first; the
    /// others attach to slots already set up. Fails when the memory does not fit `users`.
    ///
    /// # Safety
    /// `base` must be valid for reads and writes of `len` bytes for as long as the totals (and
    /// their clones) live. While anyone folds into the memory, it must be written only through
    /// totals made here for the same `users`; the slots must be set up once, before anyone
    /// else attaches; and the slots are read ([`finish`](super::finish), [`OrderTotals::merge`],
    /// [`OrderTotals::encode`] of owned totals) only after every process has stopped folding.
    pub unsafe fn over_shared(
        base: *mut u8,
        len: usize,
        users: &UserTable,
        set_up: bool,
    ) -> Result<Self, String> {
        let n = users.slot_count();
        if len != n * SLOT_BYTES {
            return Err(format!("shared totals of {len} bytes for {n} slots"));
        }
        if !(base as usize).is_multiple_of(SLOT_BYTES) {
            return Err("shared totals are not aligned".into());
        }
        let base = NonNull::new(base.cast::<Slot>()).ok_or("shared totals at null")?;
        if set_up {
            for s in 0..n {
                // SAFETY: s < n, within the memory the caller vouches for.
                unsafe { base.as_ptr().add(s).write(Slot::empty(users, s as u32)) };
            }
        }
        Ok(OrderTotals {
            slots: Slots::Shared { base, len: n },
            counts: RunCounts::default(),
            error: None,
        })
    }

    /// The counts and error without the slots: what a process that folded into shared slots
    /// hands on once it lets go of the shared memory.
    pub fn without_slots(&self) -> Self {
        OrderTotals {
            slots: Slots::default(),
            counts: self.counts.clone(),
            error: self.error.clone(),
        }
    }

    /// Whether the slots are in shared memory.
    pub fn is_shared(&self) -> bool {
        matches!(self.slots, Slots::Shared { .. })
    }

    /// The slots, once nobody folds into them any more (see [`OrderTotals::over_shared`]).
    pub fn slots(&self) -> &[Slot] {
        match &self.slots {
            Slots::Owned(v) => v,
            // SAFETY: over_shared's contract: valid memory, no writer left when slots are read.
            Slots::Shared { base, len } => unsafe {
                std::slice::from_raw_parts(base.as_ptr(), *len)
            },
        }
    }

    /// A pointer to slot `i`, when there is one.
    #[inline]
    fn slot_ptr(&mut self, i: u32) -> Option<*mut Slot> {
        let i = i as usize;
        match &mut self.slots {
            Slots::Owned(v) => v.get_mut(i).map(|s| s as *mut Slot),
            // SAFETY: i < len, within the memory over_shared was given.
            Slots::Shared { base, len } => (i < *len).then(|| unsafe { base.as_ptr().add(i) }),
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

    /// Puts `error` in the place of the error these totals hold.
    pub fn replace_error(&mut self, error: FoldError) {
        self.error = Some(error);
    }

    /// Folds one order in; `rounded` says the reader rounded its amount to the scale. Returns the
    /// issue when the order is not counted.
    pub fn add_order(
        &mut self,
        users: &UserTable,
        order: OrderRow,
        rounded: bool,
    ) -> Result<Option<Reason>, FoldError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        self.counts.orders_read += 1;
        let (p, signup, day, amount) = match self.classify(users, &order) {
            Ok(v) => v,
            Err(issue) => {
                self.counts.count(issue);
                return Ok(Some(issue));
            }
        };
        let horizon_end = users.horizon_end(signup);
        // SAFETY: p is a live slot of these totals; every write to it goes through with_locked.
        let before_signup = unsafe {
            with_locked(p, |revenue, orders, first, last, before| {
                let Some(lifetime) = revenue[LIFETIME].checked_add(amount) else {
                    return Err(Err(OverflowOf::Revenue));
                };
                let early = day.0 < signup;
                let Some(count) = orders[LIFETIME].checked_add(1) else {
                    return Err(Err(OverflowOf::Orders));
                };
                if early && before + 1 >= LOCKED {
                    return Err(Err(OverflowOf::Orders));
                }
                revenue[LIFETIME] = lifetime;
                orders[LIFETIME] = count;
                *first = (*first).min(day.0);
                *last = (*last).max(day.0);
                if early {
                    return Ok((before + 1, Ok(true)));
                }
                // Horizon sums never exceed the lifetime sum and count, which did not overflow.
                for (h, end) in horizon_end.iter().enumerate() {
                    if day.0 <= *end {
                        revenue[h] += amount;
                        orders[h] += 1;
                    }
                }
                Ok((before, Ok(false)))
            })
        };
        match before_signup {
            Ok(early) => {
                if early {
                    self.counts.orders_before_signup += 1;
                }
            }
            Err(of) => {
                let id = order.user_id.unwrap_or_default();
                let e = match of {
                    OverflowOf::Revenue => FoldError::RevenueOverflow(id),
                    OverflowOf::Orders => FoldError::OrderCountOverflow(id),
                };
                self.error = Some(e.clone());
                return Err(e);
            }
        }
        self.counts.orders_counted += 1;
        if rounded {
            self.counts.amounts_rounded += 1;
        }
        Ok(None)
    }

    /// The slot, signup, day and amount of an order that counts, or why it does not.
    #[inline]
    fn classify(
        &mut self,
        users: &UserTable,
        order: &OrderRow,
    ) -> Result<(*mut Slot, i32, Day, i64), Reason> {
        if order.status == StatusClass::Null {
            return Err(Reason::NullStatus);
        }
        let user_id = order.user_id.ok_or(Reason::NullUserId)?;
        let slot = match users.lookup(user_id) {
            Lookup::Absent => return Err(Reason::UnknownUser),
            Lookup::LeftOut => return Err(Reason::OfLeftOutUser),
            Lookup::Slot(slot) => slot,
        };
        let p = self.slot_ptr(slot).ok_or(Reason::UnknownUser)?;
        // SAFETY: a live slot; signup is not written while orders are folded.
        let signup = unsafe { addr_of!((*p).signup).read() };
        match signup {
            ABSENT => return Err(Reason::UnknownUser),
            LEFT_OUT => return Err(Reason::OfLeftOutUser),
            _ => {}
        }
        let day = order.day.ok_or(Reason::NullDate)?;
        if day > users.as_of() {
            return Err(Reason::AfterEnd);
        }
        match order.amount {
            None => Err(Reason::NullAmount),
            Some(a) if a < 0 => Err(Reason::NegativeAmount),
            Some(a) => Ok((p, signup, day, a)),
        }
    }

    /// Adds another part's sums and counts to these. Both must be for the same [`UserTable`],
    /// and nobody may be folding into either any more.
    ///
    /// Shared slots hold every part folded into them, so they are added once: totals over the
    /// same shared memory merge their counts only, and owned totals with no slots (a part that
    /// folded into shared memory, sent between processes) become a view of the other's.
    pub fn merge(&mut self, other: &OrderTotals, users: Option<&UserTable>) {
        // A bad amount is reported before any other error, whichever part met it.
        let bad_amount = |e: &Option<FoldError>| matches!(e, Some(FoldError::BadAmount { .. }));
        if self.error.is_none() || (bad_amount(&other.error) && !bad_amount(&self.error)) {
            self.error = other.error.clone();
        }
        self.counts.merge(&other.counts);
        match (&mut self.slots, &other.slots) {
            (Slots::Shared { base: a, .. }, Slots::Shared { base: b, .. }) if a == b => return,
            (Slots::Owned(mine), Slots::Shared { .. }) if mine.is_empty() => {
                self.slots = other.slots.clone();
                return;
            }
            (Slots::Owned(mine), _) if mine.len() < other.slots().len() => {
                mine.resize(other.slots().len(), Slot::default());
            }
            _ => {}
        }
        for (slot, b) in other.slots().iter().enumerate() {
            let Some(p) = self.slot_ptr(slot as u32) else {
                break;
            };
            // SAFETY: a live slot of these totals, written only through with_locked.
            let overflow = unsafe {
                with_locked(p, |revenue, orders, first, last, before| {
                    let mut overflow = false;
                    for h in 0..4 {
                        match revenue[h].checked_add(b.revenue[h]) {
                            Some(v) => revenue[h] = v,
                            None => overflow = true,
                        }
                        orders[h] = orders[h].saturating_add(b.orders[h]);
                    }
                    *first = (*first).min(b.first);
                    *last = (*last).max(b.last);
                    let count = (before + b.before_signup()).min(LOCKED - 1);
                    Ok((count, overflow))
                })
            };
            if overflow && self.error.is_none() {
                let id = users.map_or(slot as i64, |u| u.user_id(slot as u32));
                self.error = Some(FoldError::RevenueOverflow(id));
            }
        }
    }

    /// The totals as bytes, for [`OrderTotals::decode`] in another process of the same server.
    /// Shared slots are not copied: the receiver reaches them in the shared memory.
    pub fn encode(&self) -> Vec<u8> {
        let slots: &[Slot] = match &self.slots {
            Slots::Owned(v) => v,
            Slots::Shared { .. } => &[],
        };
        let mut w = Writer::with_capacity(256 + slots.len() * SLOT_BYTES);
        w.tag(b"CDAO");
        self.counts.write(&mut w);
        FoldError::write_opt(&self.error, &mut w);
        w.u64(slots.len() as u64);
        // The bytes only travel between processes of one server (parallel workers and their
        // leader), so the slots are copied as they lie in memory: no per-field work for a
        // million users.
        let mut out = w.into_bytes();
        out.extend_from_slice(bytemuck::cast_slice(slots));
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
        if slots.iter().any(|s| s.guard & LOCKED != 0) {
            return Err("a slot was sent locked".into());
        }
        Ok(OrderTotals {
            slots: Slots::Owned(slots),
            counts,
            error,
        })
    }
}

/// What overflowed in a slot.
enum OverflowOf {
    Revenue,
    Orders,
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
            && let Some(p) = totals.slot_ptr(slot)
        {
            prefetch(p);
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
fn prefetch<T>(p: *mut T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint; it reads nothing and cannot fault.
    unsafe {
        use std::arch::x86_64::{_MM_HINT_ET0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_ET0>(p.cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
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

    /// Memory standing in for a shared segment: slot-aligned, as a segment's mapping is.
    fn shared_memory(users: &UserTable) -> Vec<Slot> {
        vec![Slot::default(); users.slot_count()]
    }

    fn users(n: i64, signup: Day) -> UserTable {
        let mut t = UserTable::new(Day(signup.0 + 1000));
        for id in 0..n {
            t.add_user(Some(id), Some(signup)).unwrap();
        }
        t.freeze();
        t
    }

    fn row(user: i64, day: i32, amount: i64) -> OrderRow {
        OrderRow {
            user_id: Some(user),
            day: Some(Day(day)),
            amount: Some(amount),
            status: StatusClass::Successful,
        }
    }

    #[test]
    fn threads_folding_into_shared_slots_lose_no_order() {
        // Few users and many threads, so that the threads meet on the same slots all the time.
        let signup = Day(100);
        let table = users(5, signup);
        let mut memory = shared_memory(&table);
        let (base, len) = (memory.as_mut_ptr().cast::<u8>(), memory.len() * SLOT_BYTES);
        // SAFETY: the memory outlives the totals; every writer is a shared-totals fold.
        let set_up = unsafe { OrderTotals::over_shared(base, len, &table, true) }.unwrap();
        let orders: Vec<OrderRow> = (0..40_000i64)
            .map(|i| row(i % 5, 50 + (i % 400) as i32, i % 97))
            .collect();
        let base_addr = base as usize;
        let parts: Vec<OrderTotals> = std::thread::scope(|scope| {
            let handles: Vec<_> = orders
                .chunks(10_000)
                .map(|chunk| {
                    let table = &table;
                    scope.spawn(move || {
                        // SAFETY: as above; set up before the threads started.
                        let mut t = unsafe {
                            OrderTotals::over_shared(base_addr as *mut u8, len, table, false)
                        }
                        .unwrap();
                        let mut batch = OrderBatch::default();
                        for &o in chunk {
                            batch.push(&mut t, table, o, false);
                        }
                        batch.flush(&mut t, table);
                        OrderTotals::decode(&t.encode()).unwrap()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut merged = set_up;
        for part in &parts {
            assert!(part.slots().is_empty(), "shared slots are not sent");
            merged.merge(part, Some(&table));
        }
        let mut serial = OrderTotals::for_users(&table);
        for &o in &orders {
            serial.add_order(&table, o, false).unwrap();
        }
        assert_eq!(merged.slots(), serial.slots());
        assert_eq!(merged.counts(), serial.counts());
        assert_eq!(merged.counts().orders_before_signup, 40_000 / 400 * 50);
        assert!(merged.slots().iter().all(|s| s.guard & LOCKED == 0));
        drop(memory);
    }

    #[test]
    fn a_part_that_folded_into_shared_slots_is_added_once() {
        let table = users(3, Day(10));
        let mut memory = shared_memory(&table);
        let (base, len) = (memory.as_mut_ptr().cast::<u8>(), memory.len() * SLOT_BYTES);
        // SAFETY: the memory outlives the totals, which fold one after another.
        let mut a = unsafe { OrderTotals::over_shared(base, len, &table, true) }.unwrap();
        // SAFETY: as for the first.
        let mut b = unsafe { OrderTotals::over_shared(base, len, &table, false) }.unwrap();
        a.add_order(&table, row(0, 20, 5), false).unwrap();
        b.add_order(&table, row(0, 30, 7), false).unwrap();
        let expected = a.slots().to_vec();
        // The same memory twice, and a leader that folded nothing taking a worker's view.
        let mut leader = OrderTotals::default();
        leader.merge(&b, Some(&table));
        leader.merge(&a, Some(&table));
        assert!(leader.is_shared());
        assert_eq!(leader.slots(), &expected[..]);
        assert_eq!(leader.slots()[0].revenue[LIFETIME], 12);
        assert_eq!(leader.counts().orders_counted, 2);
        // What a process hands on when it lets go of the shared memory: its counts only.
        let sent = b.without_slots();
        assert!(sent.slots().is_empty() && !sent.is_shared());
        assert_eq!(sent.counts(), b.counts());
        // Owned totals from a private fold add into the shared slots.
        let mut own = OrderTotals::for_users(&table);
        own.add_order(&table, row(2, 40, 9), false).unwrap();
        a.merge(&own, Some(&table));
        assert_eq!(a.slots()[2].revenue[LIFETIME], 9);
        assert_eq!(a.slots()[0].revenue[LIFETIME], 12);
        drop(memory);
    }

    #[test]
    fn shared_memory_must_fit_the_users() {
        let table = users(4, Day(10));
        let mut memory = shared_memory(&table);
        let base = memory.as_mut_ptr().cast::<u8>();
        let len = memory.len() * SLOT_BYTES;
        // SAFETY: each call only checks its arguments and fails before touching the memory.
        unsafe {
            let short = OrderTotals::over_shared(base, len - SLOT_BYTES, &table, true);
            assert_eq!(short.unwrap_err(), "shared totals of 192 bytes for 4 slots");
            let skewed = OrderTotals::over_shared(base.add(8), len, &table, true);
            assert_eq!(skewed.unwrap_err(), "shared totals are not aligned");
        }
        drop(memory);
    }

    #[test]
    fn counters_that_would_wrap_are_an_error() {
        let table = users(2, Day(100));
        let mut t = OrderTotals::for_users(&table);
        let Slots::Owned(slots) = &mut t.slots else {
            unreachable!()
        };
        slots[0].orders[LIFETIME] = u32::MAX;
        slots[1].guard = LOCKED - 1;
        slots[1].orders[LIFETIME] = 1;
        let mut other = t.clone();
        assert_eq!(
            t.add_order(&table, row(0, 150, 1), false),
            Err(FoldError::OrderCountOverflow(0))
        );
        assert_eq!(
            other.add_order(&table, row(1, 50, 1), false),
            Err(FoldError::OrderCountOverflow(1))
        );
        // The failed orders changed nothing, and the slots were left unlocked.
        assert_eq!(other.slots()[1].orders[LIFETIME], 1);
        assert_eq!(other.slots()[1].guard, LOCKED - 1);
        let e = FoldError::OrderCountOverflow(1);
        let mut sent = OrderTotals::default();
        sent.fail(e.clone());
        assert_eq!(OrderTotals::decode(&sent.encode()).unwrap().check(), Err(e));
    }

    #[test]
    fn a_slot_sent_locked_is_refused() {
        let table = users(1, Day(10));
        let mut t = OrderTotals::for_users(&table);
        let Slots::Owned(slots) = &mut t.slots else {
            unreachable!()
        };
        slots[0].guard = LOCKED;
        assert_eq!(
            OrderTotals::decode(&t.encode()).unwrap_err(),
            "a slot was sent locked"
        );
    }
}
