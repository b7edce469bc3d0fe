//! The users of a run, in a form every process of a parallel read can share.
//!
//! Built once from the users table ([`UserTable::add_user`]), encoded into one byte string
//! ([`UserTable::encode`]) that the order aggregate receives as a parameter, and decoded in every
//! process that folds orders. A user id maps to a dense slot; the per-slot accumulators of
//! [`super::totals::OrderTotals`] are plain vectors indexed by slot.

use rustc_hash::FxHashMap;

use super::fold::{FoldError, HORIZON_MONTHS, RunCounts, UserIssue};
use super::wire::{Reader, Writer};
use crate::calendar::Day;

/// What a user id maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// Not in the users table.
    Absent,
    /// In the users table but left out of the run (see [`UserIssue`]); their orders are not
    /// orphans.
    LeftOut,
    Slot(u32),
}

const ABSENT: u32 = u32::MAX;
const LEFT_OUT: u32 = u32::MAX - 1;
/// Slots stay below the two markers.
const MAX_SLOTS: usize = (u32::MAX - 1) as usize;

/// Id to slot. Shops number their users with a sequence, so the ids are usually dense: then a
/// direct table is one array load per order instead of a hash probe.
#[derive(Debug, Clone)]
enum IdIndex {
    Hashed(FxHashMap<i64, u32>),
    Dense { min: i64, slots: Vec<u32> },
}

impl IdIndex {
    fn get(&self, id: i64) -> u32 {
        match self {
            IdIndex::Hashed(map) => map.get(&id).copied().unwrap_or(ABSENT),
            IdIndex::Dense { min, slots } => id
                .checked_sub(*min)
                .and_then(|off| usize::try_from(off).ok())
                .and_then(|off| slots.get(off).copied())
                .unwrap_or(ABSENT),
        }
    }
}

/// The users of one run: who is counted (with their signup and horizon ends), who is left out.
#[derive(Debug, Clone)]
pub struct UserTable {
    as_of: Day,
    index: IdIndex,
    user_id: Vec<i64>,
    signup: Vec<Day>,
    horizon_end: Vec<[Day; 3]>,
    left_out: Vec<i64>,
    counts: RunCounts,
    /// The first inconsistency found; [`UserTable::check`] reports it.
    error: Option<FoldError>,
}

impl UserTable {
    pub fn new(as_of: Day) -> Self {
        UserTable {
            as_of,
            index: IdIndex::Hashed(FxHashMap::default()),
            user_id: Vec::new(),
            signup: Vec::new(),
            horizon_end: Vec::new(),
            left_out: Vec::new(),
            counts: RunCounts::default(),
            error: None,
        }
    }

    pub fn as_of(&self) -> Day {
        self.as_of
    }

    /// Number of counted users (slots).
    pub fn len(&self) -> usize {
        self.user_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.user_id.is_empty()
    }

    /// What was read and left out so far (users only).
    pub fn counts(&self) -> &RunCounts {
        &self.counts
    }

    /// The first inconsistency found while adding users, if any.
    pub fn check(&self) -> Result<(), FoldError> {
        self.error.clone().map_or(Ok(()), Err)
    }

    pub fn lookup(&self, id: i64) -> Lookup {
        match self.index.get(id) {
            ABSENT => Lookup::Absent,
            LEFT_OUT => Lookup::LeftOut,
            slot => Lookup::Slot(slot),
        }
    }

    pub fn user_id(&self, slot: u32) -> i64 {
        self.user_id[slot as usize]
    }

    pub fn signup(&self, slot: u32) -> Day {
        self.signup[slot as usize]
    }

    pub fn horizon_end(&self, slot: u32) -> [Day; 3] {
        self.horizon_end[slot as usize]
    }

    fn insert(&mut self, id: i64, slot: u32) -> Result<(), FoldError> {
        let map = match &mut self.index {
            IdIndex::Hashed(map) => map,
            // A decoded table is complete; adding to it is a programming error, not bad data.
            IdIndex::Dense { .. } => return Err(FoldError::DuplicateUser(id)),
        };
        if map.insert(id, slot).is_some() {
            return Err(FoldError::DuplicateUser(id));
        }
        Ok(())
    }

    /// Registers a user. Returns the issue when the user is left out. After the first error
    /// (a duplicate id, a date out of range) the table stops changing and [`UserTable::check`]
    /// reports that error.
    pub fn add_user(
        &mut self,
        user_id: Option<i64>,
        signup: Option<Day>,
    ) -> Result<Option<UserIssue>, FoldError> {
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
            if let Some(id) = user_id {
                self.insert(id, LEFT_OUT)?;
                self.left_out.push(id);
            }
            return Ok(Some(issue));
        }
        let (Some(id), Some(signup)) = (user_id, signup) else {
            return Ok(None);
        };
        let mut horizon_end = [signup; 3];
        for (end, months) in horizon_end.iter_mut().zip(HORIZON_MONTHS) {
            *end = signup
                .add_months(months)
                .ok_or(FoldError::DateOutOfRange(id))?;
        }
        if self.user_id.len() >= MAX_SLOTS {
            return Err(FoldError::TooManyUsers);
        }
        self.insert(id, self.user_id.len() as u32)?;
        self.user_id.push(id);
        self.signup.push(signup);
        self.horizon_end.push(horizon_end);
        self.counts.users_counted += 1;
        Ok(None)
    }

    /// The table as bytes, for [`UserTable::decode`] in another process.
    pub fn encode(&self) -> Vec<u8> {
        let n = self.user_id.len();
        let mut w = Writer::with_capacity(64 + n * 24 + self.left_out.len() * 8);
        w.tag(b"CDAU");
        w.i32(self.as_of.0);
        self.counts.write(&mut w);
        match &self.error {
            None => w.u32(0),
            Some(e) => {
                let (kind, id) = e.to_wire();
                w.u32(kind);
                w.i64(id);
            }
        }
        w.u64(n as u64);
        w.u64(self.left_out.len() as u64);
        for &id in &self.user_id {
            w.i64(id);
        }
        for (signup, ends) in self.signup.iter().zip(&self.horizon_end) {
            w.i32(signup.0);
            for end in ends {
                w.i32(end.0);
            }
        }
        for &id in &self.left_out {
            w.i64(id);
        }
        w.into_bytes()
    }

    /// Rebuilds a table from [`UserTable::encode`]'s bytes, choosing the direct index when the
    /// ids are dense enough.
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        let mut r = Reader::new(bytes);
        r.tag(b"CDAU")?;
        let as_of = Day(r.i32()?);
        let counts = RunCounts::read(&mut r)?;
        let error = match r.u32()? {
            0 => None,
            kind => Some(FoldError::from_wire(kind, r.i64()?)?),
        };
        let n = r.len(24)?;
        let n_left = r.len(8)?;
        let mut user_id = Vec::with_capacity(n);
        for _ in 0..n {
            user_id.push(r.i64()?);
        }
        let mut signup = Vec::with_capacity(n);
        let mut horizon_end = Vec::with_capacity(n);
        for _ in 0..n {
            signup.push(Day(r.i32()?));
            horizon_end.push([Day(r.i32()?), Day(r.i32()?), Day(r.i32()?)]);
        }
        let mut left_out = Vec::with_capacity(n_left);
        for _ in 0..n_left {
            left_out.push(r.i64()?);
        }
        r.end()?;
        if n > MAX_SLOTS {
            return Err("too many users".into());
        }
        let index = build_index(&user_id, &left_out)?;
        Ok(UserTable {
            as_of,
            index,
            user_id,
            signup,
            horizon_end,
            left_out,
            counts,
            error,
        })
    }
}

fn build_index(user_id: &[i64], left_out: &[i64]) -> Result<IdIndex, String> {
    let entries = user_id.len() + left_out.len();
    let all = || user_id.iter().chain(left_out);
    let (Some(&min), Some(&max)) = (all().min(), all().max()) else {
        return Ok(IdIndex::Hashed(FxHashMap::default()));
    };
    let span = (i128::from(max) - i128::from(min) + 1) as u128;
    // Up to four array entries per user: 16 bytes per user at most, and never more than 1 GiB.
    let dense = span <= (entries as u128) * 4 + 1024 && span <= (1 << 28);
    let duplicate = |id: i64| format!("user_id {id} appears twice");
    if dense {
        let mut slots = vec![ABSENT; span as usize];
        let mut set = |id: i64, value: u32| {
            let cell = &mut slots[(id - min) as usize];
            if *cell != ABSENT {
                return Err(duplicate(id));
            }
            *cell = value;
            Ok(())
        };
        for (slot, &id) in user_id.iter().enumerate() {
            set(id, slot as u32)?;
        }
        for &id in left_out {
            set(id, LEFT_OUT)?;
        }
        Ok(IdIndex::Dense { min, slots })
    } else {
        let mut map = FxHashMap::default();
        map.reserve(entries);
        for (slot, &id) in user_id.iter().enumerate() {
            if map.insert(id, slot as u32).is_some() {
                return Err(duplicate(id));
            }
        }
        for &id in left_out {
            if map.insert(id, LEFT_OUT).is_some() {
                return Err(duplicate(id));
            }
        }
        Ok(IdIndex::Hashed(map))
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
        t
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
                assert_eq!(back.lookup(probe), t.lookup(probe), "id {probe}");
            }
            assert_eq!(back.counts(), t.counts());
            assert_eq!(back.len(), ids.len());
        }
        assert!(matches!(
            UserTable::decode(&table(&[3, 1, 2]).encode())
                .unwrap()
                .index,
            IdIndex::Dense { .. }
        ));
        assert!(matches!(
            UserTable::decode(&table(&[1, 1 << 40]).encode())
                .unwrap()
                .index,
            IdIndex::Hashed(_)
        ));
    }

    #[test]
    fn decode_rejects_truncated_or_foreign_bytes() {
        let bytes = table(&[1, 2]).encode();
        assert!(UserTable::decode(&bytes[..bytes.len() - 1]).is_err());
        assert!(UserTable::decode(b"nonsense").is_err());
    }

    #[test]
    fn the_first_error_sticks_and_travels() {
        let mut t = UserTable::new(Day(10_000));
        t.add_user(Some(1), Some(Day(1))).unwrap();
        assert_eq!(
            t.add_user(Some(1), Some(Day(2))),
            Err(FoldError::DuplicateUser(1))
        );
        assert_eq!(
            t.add_user(Some(2), Some(Day(2))),
            Err(FoldError::DuplicateUser(1))
        );
        assert_eq!(t.check(), Err(FoldError::DuplicateUser(1)));
        let back = UserTable::decode(&t.encode()).unwrap();
        assert_eq!(back.check(), Err(FoldError::DuplicateUser(1)));
    }
}
