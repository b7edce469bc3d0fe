//! The users of a run, in a form every process of a parallel read can share.
//!
//! Built once from the users table ([`UserTable::add_user`]), encoded into one byte string
//! ([`UserTable::encode`]) that the order aggregate receives as a parameter, and decoded in every
//! process that folds orders. A user id maps to a dense slot; the per-slot accumulators of
//! [`super::totals::OrderTotals`] are plain vectors indexed by slot.

use rustc_hash::FxHashMap;

use super::fold::{FoldError, HORIZON_MONTHS, RunCounts};
use super::wire::{Reader, Writer};
use crate::calendar::Day;
use crate::left_out::Reason;

/// Where a user id points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// Not in the users table.
    Absent,
    /// In the users table but left out of the run (see the user reasons of [`Reason`]); their orders are not
    /// orphans.
    LeftOut,
    /// A slot; with the dense layout it can still be a hole, which [`UserTable::slot_signup`]
    /// tells ([`ABSENT`], [`LEFT_OUT`]).
    Slot(u32),
}

/// Markers in place of a signup day, for slots that are not counted users.
pub const ABSENT: i32 = i32::MIN;
pub const LEFT_OUT: i32 = i32::MIN + 1;

/// Days from 2000-01-01 within which a signup's 12-month horizon end is always a valid date
/// (chrono's calendar reaches about 95 million days either way).
const SAFE_DAYS: i32 = 90_000_000;

/// Slots stay addressable by u32.
const MAX_SLOTS: usize = u32::MAX as usize;
/// Signup-day spans up to this many days get a precomputed horizon table (12 bytes a day).
const MAX_HORIZON_TABLE_DAYS: i64 = 1 << 20;

/// Id to slot. Shops number their users with a sequence, so ids are usually dense: then the
/// slot is the id minus the smallest id, and folding an order touches one cache line (the slot)
/// instead of an index and several per-user arrays.
#[derive(Debug, Clone)]
enum Layout {
    /// Still adding users; no lookups yet.
    Building,
    /// Slot i is the i-th counted user; left-out users map to `u32::MAX`.
    Hashed(FxHashMap<i64, u32>),
    /// Slot = id - min, for every id in [min, max].
    Dense { min: i64 },
}

/// Horizon end days by signup day, so that folding an order needs no calendar arithmetic.
#[derive(Debug, Clone, Default)]
struct HorizonTable {
    first_day: i32,
    ends: Vec<[i32; 3]>,
}

/// The users of one run: who is counted (with their signup day), who is left out.
#[derive(Debug, Clone)]
pub struct UserTable {
    as_of: Day,
    counts: RunCounts,
    /// The first inconsistency found; [`UserTable::check`] reports it.
    error: Option<FoldError>,
    /// Counted users in the order they were added, and the ids of those left out.
    ids: Vec<i64>,
    signups: Vec<Day>,
    left_out: Vec<i64>,
    layout: Layout,
    /// Per slot: the signup day, or [`ABSENT`] / [`LEFT_OUT`].
    slot_signup: Vec<i32>,
    horizons: HorizonTable,
}

impl UserTable {
    pub fn new(as_of: Day) -> Self {
        UserTable {
            as_of,
            counts: RunCounts::default(),
            error: None,
            ids: Vec::new(),
            signups: Vec::new(),
            left_out: Vec::new(),
            layout: Layout::Building,
            slot_signup: Vec::new(),
            horizons: HorizonTable::default(),
        }
    }

    pub fn as_of(&self) -> Day {
        self.as_of
    }

    /// Number of counted users.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// What was read and left out (users only).
    pub fn counts(&self) -> &RunCounts {
        &self.counts
    }

    /// The first inconsistency found while adding users, if any.
    pub fn check(&self) -> Result<(), FoldError> {
        self.error.clone().map_or(Ok(()), Err)
    }

    /// Makes room for `additional` more users, so that a read that knows about how many there
    /// are does not grow the table step by step.
    pub fn reserve(&mut self, additional: usize) {
        if matches!(self.layout, Layout::Building) {
            self.ids.reserve(additional);
            self.signups.reserve(additional);
        }
    }

    /// Registers a user. Returns the issue when the user is left out. After the first error
    /// (a duplicate id, a date out of range) the table stops changing and [`UserTable::check`]
    /// reports that error.
    pub fn add_user(
        &mut self,
        user_id: Option<i64>,
        signup: Option<Day>,
    ) -> Result<Option<Reason>, FoldError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        let result = self.add_user_inner(user_id, signup);
        if let Err(e) = &result {
            self.error = Some(e.clone());
        }
        result
    }

    fn add_user_inner(
        &mut self,
        user_id: Option<i64>,
        signup: Option<Day>,
    ) -> Result<Option<Reason>, FoldError> {
        if !matches!(self.layout, Layout::Building) {
            return Err(FoldError::TooManyUsers);
        }
        self.counts.users_read += 1;
        let issue = match (user_id, signup) {
            (None, _) => Some(Reason::UserNullId),
            (Some(_), None) => Some(Reason::UserNullSignup),
            (Some(_), Some(day)) if day > self.as_of => Some(Reason::UserSignupAfterEnd),
            _ => None,
        };
        if let Some(issue) = issue {
            self.counts.count(issue);
            if let Some(id) = user_id {
                self.left_out.push(id);
            }
            return Ok(Some(issue));
        }
        let (Some(id), Some(signup)) = (user_id, signup) else {
            return Ok(None);
        };
        // Every horizon end exists within about 246,000 years of 2000; only signups near the
        // calendar's limits need the (slower) check.
        if !(-SAFE_DAYS..=SAFE_DAYS).contains(&signup.0) {
            for months in HORIZON_MONTHS {
                signup
                    .add_months(months)
                    .ok_or(FoldError::DateOutOfRange(id))?;
            }
        }
        if self.ids.len() >= MAX_SLOTS {
            return Err(FoldError::TooManyUsers);
        }
        self.ids.push(id);
        self.signups.push(signup);
        self.counts.users_counted += 1;
        Ok(None)
    }

    /// Ends adding users and lays the slots out for lookups. Idempotent. A user id met twice is
    /// found here rather than as users are added (a hash lookup per user was a visible cost:
    /// BENCHMARKS.md, "Measurements behind the code"); [`UserTable::check`] then reports it.
    pub fn freeze(&mut self) {
        if let Err(id) = self.lay_out()
            && self.error.is_none()
        {
            self.error = Some(FoldError::DuplicateUser(id));
        }
    }

    /// Lays the slots out; an id met twice on the way is the error.
    fn lay_out(&mut self) -> Result<(), i64> {
        if !matches!(self.layout, Layout::Building) {
            return Ok(());
        }
        let all = || self.ids.iter().chain(&self.left_out);
        let entries = self.ids.len() + self.left_out.len();
        let (min, max) = (all().min().copied(), all().max().copied());
        let span = match (min, max) {
            (Some(lo), Some(hi)) => (i128::from(hi) - i128::from(lo) + 1) as u128,
            _ => 0,
        };
        // Dense when holes cost at most half a slot per user (slots are 64 bytes).
        let dense =
            entries > 0 && span <= (entries as u128) * 3 / 2 + 1024 && span <= MAX_SLOTS as u128;
        if let (true, Some(min)) = (dense, min) {
            let mut slot_signup = vec![ABSENT; span as usize];
            let marks = self
                .ids
                .iter()
                .zip(self.signups.iter().map(|d| d.0))
                .chain(self.left_out.iter().map(|id| (id, LEFT_OUT)));
            for (&id, mark) in marks {
                let slot = &mut slot_signup[(id - min) as usize];
                if *slot != ABSENT {
                    return Err(id);
                }
                *slot = mark;
            }
            self.slot_signup = slot_signup;
            self.layout = Layout::Dense { min };
        } else {
            let mut map = FxHashMap::default();
            map.reserve(entries);
            let slots = self
                .ids
                .iter()
                .enumerate()
                .map(|(slot, id)| (id, slot as u32))
                .chain(self.left_out.iter().map(|id| (id, u32::MAX)));
            for (&id, slot) in slots {
                if map.insert(id, slot).is_some() {
                    return Err(id);
                }
            }
            self.slot_signup = self.signups.iter().map(|d| d.0).collect();
            self.layout = Layout::Hashed(map);
        }
        self.horizons = horizon_table(&self.signups);
        Ok(())
    }

    /// Where an order's user id points. The table must be frozen.
    #[inline]
    pub fn lookup(&self, id: i64) -> Lookup {
        match &self.layout {
            Layout::Dense { min } => match id.checked_sub(*min) {
                Some(off) if (off as u64) < self.slot_signup.len() as u64 => {
                    Lookup::Slot(off as u32)
                }
                _ => Lookup::Absent,
            },
            Layout::Hashed(map) => match map.get(&id) {
                None => Lookup::Absent,
                Some(&u32::MAX) => Lookup::LeftOut,
                Some(&slot) => Lookup::Slot(slot),
            },
            Layout::Building => Lookup::Absent,
        }
    }

    /// Number of slots (with the dense layout, holes included).
    pub fn slot_count(&self) -> usize {
        self.slot_signup.len()
    }

    /// A slot's signup day, or [`ABSENT`] / [`LEFT_OUT`].
    #[inline]
    pub fn slot_signup(&self, slot: u32) -> i32 {
        self.slot_signup[slot as usize]
    }

    /// The user id of a counted user's slot.
    pub fn user_id(&self, slot: u32) -> i64 {
        match &self.layout {
            Layout::Dense { min } => min + i64::from(slot),
            _ => self.ids[slot as usize],
        }
    }

    /// Whether slots are in user id order.
    pub fn slots_sorted(&self) -> bool {
        matches!(self.layout, Layout::Dense { .. })
    }

    /// The last days of the 3, 6 and 12-month horizons of a signup day.
    #[inline]
    pub fn horizon_end(&self, signup: i32) -> [i32; 3] {
        let t = &self.horizons;
        match usize::try_from(i64::from(signup) - i64::from(t.first_day)) {
            Ok(i) if i < t.ends.len() => t.ends[i],
            // Outside the table only when the signup span was too wide to tabulate.
            _ => HORIZON_MONTHS.map(|m| Day(signup).add_months(m).map_or(i32::MAX, |d| d.0)),
        }
    }

    /// The table as bytes, for [`UserTable::decode`] in another process.
    pub fn encode(&self) -> Vec<u8> {
        let n = self.ids.len();
        let mut w = Writer::with_capacity(256 + n * 12 + self.left_out.len() * 8);
        w.tag(b"CDAU");
        w.i32(self.as_of.0);
        self.counts.write(&mut w);
        FoldError::write_opt(&self.error, &mut w);
        w.u64(n as u64);
        w.u64(self.left_out.len() as u64);
        for &id in &self.ids {
            w.i64(id);
        }
        for signup in &self.signups {
            w.i32(signup.0);
        }
        for &id in &self.left_out {
            w.i64(id);
        }
        w.into_bytes()
    }

    /// Rebuilds a frozen table from [`UserTable::encode`]'s bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        let mut r = Reader::new(bytes);
        r.tag(b"CDAU")?;
        let as_of = Day(r.i32()?);
        let counts = RunCounts::read(&mut r)?;
        let error = FoldError::read_opt(&mut r)?;
        let n = r.len(12)?;
        let n_left = r.len(8)?;
        let mut ids = Vec::with_capacity(n);
        for _ in 0..n {
            ids.push(r.i64()?);
        }
        let mut signups = Vec::with_capacity(n);
        for _ in 0..n {
            signups.push(Day(r.i32()?));
        }
        let mut left_out = Vec::with_capacity(n_left);
        for _ in 0..n_left {
            left_out.push(r.i64()?);
        }
        r.end()?;
        if n > MAX_SLOTS {
            return Err("too many users".into());
        }
        let mut table = UserTable {
            as_of,
            counts,
            error,
            ids,
            signups,
            left_out,
            layout: Layout::Building,
            slot_signup: Vec::new(),
            horizons: HorizonTable::default(),
        };
        // An id met twice becomes the table's error, which the caller reports with the source's
        // names, as for a table frozen in this process.
        table.freeze();
        Ok(table)
    }
}

fn horizon_table(signups: &[Day]) -> HorizonTable {
    let (Some(lo), Some(hi)) = (signups.iter().min(), signups.iter().max()) else {
        return HorizonTable::default();
    };
    if i64::from(hi.0) - i64::from(lo.0) >= MAX_HORIZON_TABLE_DAYS {
        return HorizonTable::default();
    }
    let ends = (lo.0..=hi.0)
        .map(|d| HORIZON_MONTHS.map(|m| Day(d).add_months(m).map_or(i32::MAX, |e| e.0)))
        .collect();
    HorizonTable {
        first_day: lo.0,
        ends,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(ids: &[i64]) -> UserTable {
        let mut t = UserTable::new(Day(10_000));
        for &id in ids {
            t.add_user(Some(id), Some(Day(9_000))).unwrap();
        }
        t.add_user(Some(-5), None).unwrap();
        t.freeze();
        t
    }

    /// What a lookup means, whatever the layout.
    fn resolve(t: &UserTable, id: i64) -> Option<i32> {
        match t.lookup(id) {
            Lookup::Absent => None,
            Lookup::LeftOut => Some(LEFT_OUT),
            Lookup::Slot(s) => match t.slot_signup(s) {
                ABSENT => None,
                signup => {
                    if signup != LEFT_OUT {
                        assert_eq!(t.user_id(s), id);
                    }
                    Some(signup)
                }
            },
        }
    }

    #[test]
    fn encode_decode_keeps_every_lookup_dense_or_hashed() {
        for ids in [vec![3, 1, 2, 7], vec![1, 1 << 40, -(1 << 50), 42]] {
            let t = table(&ids);
            let back = UserTable::decode(&t.encode()).unwrap();
            for probe in [
                -5,
                0,
                1,
                2,
                3,
                4,
                7,
                42,
                1 << 40,
                -(1 << 50),
                i64::MIN,
                i64::MAX,
            ] {
                let expected = if probe == -5 {
                    Some(LEFT_OUT)
                } else if ids.contains(&probe) {
                    Some(9_000)
                } else {
                    None
                };
                assert_eq!(resolve(&back, probe), expected, "id {probe}");
                assert_eq!(resolve(&t, probe), expected, "id {probe}");
            }
            assert_eq!(back.counts(), t.counts());
            assert_eq!(back.len(), ids.len());
        }
        assert!(
            UserTable::decode(&table(&[3, 1, 2]).encode())
                .unwrap()
                .slots_sorted()
        );
        assert!(
            !UserTable::decode(&table(&[1, 1 << 40]).encode())
                .unwrap()
                .slots_sorted()
        );
    }

    #[test]
    fn decode_rejects_duplicate_ids_in_either_layout() {
        for ids in [vec![1, 2, 1], vec![1, 1_000_000_000_000, 1]] {
            let mut t = UserTable::new(Day(10_000));
            for &id in &ids {
                t.ids.push(id);
                t.signups.push(Day(9_000));
            }
            assert_eq!(
                UserTable::decode(&t.encode()).unwrap().check(),
                Err(FoldError::DuplicateUser(1))
            );
        }
        // A left-out id counts too.
        let mut t = table(&[1, 2]);
        t.left_out.push(2);
        assert_eq!(
            UserTable::decode(&t.encode()).unwrap().check(),
            Err(FoldError::DuplicateUser(2))
        );
    }

    #[test]
    fn signups_whose_horizons_leave_the_calendar_are_an_error() {
        use chrono::NaiveDate;
        let epoch = NaiveDate::from_ymd_opt(2000, 1, 1).unwrap();
        let last = (NaiveDate::MAX - epoch).num_days() as i32;
        let first = (NaiveDate::MIN - epoch).num_days() as i32;
        for (day, ok) in [
            (SAFE_DAYS, true),
            (-SAFE_DAYS, true),
            (last - 400, true),
            (last - 300, false),
            (last, false),
            (first, true),
            (first - 1, false),
        ] {
            let mut t = UserTable::new(Day(i32::MAX));
            let got = t.add_user(Some(1), Some(Day(day)));
            assert_eq!(
                got.is_ok(),
                ok,
                "signup day {day}: {got:?} (calendar {first}..={last})"
            );
            if !ok {
                assert_eq!(got, Err(FoldError::DateOutOfRange(1)));
            }
        }
    }

    #[test]
    fn decode_rejects_truncated_or_foreign_bytes() {
        let bytes = table(&[1, 2]).encode();
        assert!(UserTable::decode(&bytes[..bytes.len() - 1]).is_err());
        assert!(UserTable::decode(b"nonsense").is_err());
    }

    #[test]
    fn the_first_error_sticks_and_travels() {
        let mut t = UserTable::new(Day(i32::MAX));
        t.add_user(Some(1), Some(Day(1))).unwrap();
        let far = Day(i32::MAX - 10);
        assert_eq!(
            t.add_user(Some(2), Some(far)),
            Err(FoldError::DateOutOfRange(2))
        );
        assert_eq!(
            t.add_user(Some(3), Some(Day(2))),
            Err(FoldError::DateOutOfRange(2))
        );
        assert_eq!(t.check(), Err(FoldError::DateOutOfRange(2)));
        let back = UserTable::decode(&t.encode()).unwrap();
        assert_eq!(back.check(), Err(FoldError::DateOutOfRange(2)));
    }

    #[test]
    fn a_duplicate_id_is_found_when_the_table_is_frozen() {
        for ids in [vec![1, 2, 1], vec![5, 1 << 40, 5]] {
            let mut t = UserTable::new(Day(10_000));
            for &id in &ids {
                t.add_user(Some(id), Some(Day(1))).unwrap();
            }
            assert_eq!(t.check(), Ok(()));
            t.freeze();
            assert_eq!(t.check(), Err(FoldError::DuplicateUser(ids[0])));
            let back = UserTable::decode(&t.encode()).unwrap();
            assert_eq!(back.check(), Err(FoldError::DuplicateUser(ids[0])));
        }
        // Against a user left out, too.
        let mut t = UserTable::new(Day(10_000));
        t.add_user(Some(4), None).unwrap();
        t.add_user(Some(4), Some(Day(1))).unwrap();
        t.freeze();
        assert_eq!(t.check(), Err(FoldError::DuplicateUser(4)));
    }
}
