//! The users table as the order-events reads need it: which user ids exist, and whether each had
//! signed up by the end of the read. Shops number their users with a sequence, so the ids are
//! usually dense; then a lookup is one byte of an array indexed by id (1 MB for a million users,
//! which stays in cache while ten million orders are checked), and a hash map otherwise.

use rustc_hash::FxHashMap;

/// Ids spread over at most this many times the number of users, plus a margin, are laid out
/// densely.
const DENSE_SPREAD: i64 = 4;
const DENSE_MARGIN: i64 = 4096;

const ABSENT: u8 = 0;
const NOT_REGISTERED: u8 = 1;
const REGISTERED: u8 = 2;

#[derive(Debug)]
enum Layout {
    Dense { min: i64, marks: Vec<u8> },
    Sparse(FxHashMap<i64, bool>),
}

/// User ids and whether each had signed up by the read's end.
#[derive(Debug)]
pub struct KnownUsers {
    layout: Layout,
    len: usize,
    registered: usize,
}

impl KnownUsers {
    /// From (user id, signed up by the end) pairs; the first id seen twice is the error.
    pub fn build(users: &[(i64, bool)]) -> Result<Self, i64> {
        let len = users.len();
        let registered = users.iter().filter(|(_, r)| *r).count();
        let (Some(min), Some(max)) = (
            users.iter().map(|u| u.0).min(),
            users.iter().map(|u| u.0).max(),
        ) else {
            return Ok(KnownUsers {
                layout: Layout::Sparse(FxHashMap::default()),
                len: 0,
                registered: 0,
            });
        };
        let span = (max as i128 - min as i128 + 1) as u128;
        let limit = (len as i128 * DENSE_SPREAD as i128 + DENSE_MARGIN as i128) as u128;
        let layout = if span <= limit {
            let mut marks = vec![ABSENT; span as usize];
            for &(id, r) in users {
                let m = &mut marks[(id - min) as usize];
                if *m != ABSENT {
                    return Err(id);
                }
                *m = if r { REGISTERED } else { NOT_REGISTERED };
            }
            Layout::Dense { min, marks }
        } else {
            let mut map = FxHashMap::with_capacity_and_hasher(len, Default::default());
            for &(id, r) in users {
                if map.insert(id, r).is_some() {
                    return Err(id);
                }
            }
            Layout::Sparse(map)
        };
        Ok(KnownUsers {
            layout,
            len,
            registered,
        })
    }

    /// Whether the user had signed up by the end, or None for an id not in the users table.
    #[inline]
    pub fn get(&self, id: i64) -> Option<bool> {
        match &self.layout {
            Layout::Dense { min, marks } => {
                let i = id.checked_sub(*min)?;
                match usize::try_from(i).ok().and_then(|i| marks.get(i)) {
                    Some(&REGISTERED) => Some(true),
                    Some(&NOT_REGISTERED) => Some(false),
                    _ => None,
                }
            }
            Layout::Sparse(map) => map.get(&id).copied(),
        }
    }

    #[inline]
    pub fn contains(&self, id: i64) -> bool {
        self.get(id).is_some()
    }

    /// Number of users.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of users who had signed up by the end.
    pub fn registered(&self) -> usize {
        self.registered
    }

    /// The pairs as bytes (9 a user), for a read whose result cannot stay in memory.
    pub fn encode_pairs(users: &[(i64, bool)]) -> Vec<u8> {
        let mut out = Vec::with_capacity(4 + users.len() * 9);
        out.extend_from_slice(b"CDAK");
        for &(id, r) in users {
            out.extend_from_slice(&id.to_le_bytes());
            out.push(u8::from(r));
        }
        out
    }

    /// [`KnownUsers::encode_pairs`]'s bytes back into pairs.
    pub fn decode_pairs(bytes: &[u8]) -> Result<Vec<(i64, bool)>, String> {
        let body = bytes
            .strip_prefix(b"CDAK")
            .ok_or_else(|| "not a users list".to_string())?;
        if body.len() % 9 != 0 {
            return Err("truncated users list".into());
        }
        Ok(body
            .chunks_exact(9)
            .map(|c| {
                let mut id = [0u8; 8];
                id.copy_from_slice(&c[..8]);
                (i64::from_le_bytes(id), c[8] != 0)
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn dense(k: &KnownUsers) -> bool {
        matches!(k.layout, Layout::Dense { .. })
    }

    #[test]
    fn dense_and_sparse_ids_answer_the_same() {
        let seq: Vec<(i64, bool)> = (1..=1000).map(|i| (i, i % 3 != 0)).collect();
        let k = KnownUsers::build(&seq).unwrap();
        assert!(dense(&k));
        assert_eq!((k.len(), k.registered()), (1000, 667));
        assert_eq!(k.get(3), Some(false));
        assert_eq!(k.get(4), Some(true));
        for id in [0, -5, 1001, i64::MIN, i64::MAX] {
            assert_eq!(k.get(id), None, "{id}");
        }
        let far: Vec<(i64, bool)> = vec![(i64::MIN, true), (0, false), (i64::MAX, true)];
        let k = KnownUsers::build(&far).unwrap();
        assert!(!dense(&k));
        assert_eq!(k.get(i64::MIN), Some(true));
        assert_eq!(k.get(0), Some(false));
        assert_eq!(k.get(1), None);
        assert!(KnownUsers::build(&[]).unwrap().is_empty());
    }

    #[test]
    fn a_duplicate_id_is_the_error() {
        assert_eq!(
            KnownUsers::build(&[(1, true), (2, true), (1, false)]).unwrap_err(),
            1
        );
        assert_eq!(
            KnownUsers::build(&[(1, true), (i64::MAX, true), (i64::MAX, false)]).unwrap_err(),
            i64::MAX
        );
    }

    proptest! {
        #[test]
        fn lookups_equal_a_hash_map(ids in proptest::collection::hash_set(-3000i64..3000, 0..400),
                                    far in any::<bool>(), probes in proptest::collection::vec(-4000i64..4000, 50)) {
            let mut users: Vec<(i64, bool)> = ids.iter().map(|&i| (i, i % 2 == 0)).collect();
            if far {
                users.push((i64::MAX - 7, true));
            }
            let k = KnownUsers::build(&users).unwrap();
            let map: FxHashMap<i64, bool> = users.iter().copied().collect();
            for p in probes.into_iter().chain(users.iter().map(|u| u.0)) {
                prop_assert_eq!(k.get(p), map.get(&p).copied());
            }
            let decoded = KnownUsers::decode_pairs(&KnownUsers::encode_pairs(&users)).unwrap();
            prop_assert_eq!(decoded, users);
        }
    }
}
