//! Results tables that a refresh rewrites only where they changed. Each stored row carries a
//! fingerprint of its values ([`Fingerprint`]); a refresh computes the new rows' fingerprints,
//! reads the stored ones and writes only what [`changes`] lists. Used by the LTV and RFM
//! refreshes, whose stored rows leave out what moves with the as-of day by itself.

use twox_hash::XxHash3_128;

/// A 128-bit fingerprint built from a row's values in a fixed order. Two rows with equal
/// fingerprints are stored identically, but for an accidental equality at about 2^-128 per
/// changed row. Optional values carry a presence byte, so a `None` differs from a zero.
pub struct Fingerprint(Vec<u8>);

impl Fingerprint {
    /// Starts a fingerprint; `version` is the format of the stored row (a release that stores a
    /// row differently bumps it, and its first refresh then rewrites every row) and `scale` the
    /// amount scale its numbers are written at.
    pub fn new(version: u8, scale: u32) -> Self {
        let mut b = Vec::with_capacity(160);
        b.push(version);
        b.extend_from_slice(&scale.to_le_bytes());
        Fingerprint(b)
    }

    pub fn i64(mut self, v: i64) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub fn opt_i64(mut self, v: Option<i64>) -> Self {
        self.0.push(u8::from(v.is_some()));
        self.i64(v.unwrap_or(0))
    }

    pub fn bool(mut self, v: bool) -> Self {
        self.0.push(u8::from(v));
        self
    }

    /// A variable-length value, prefixed by its length so that neighbours cannot run together.
    pub fn bytes(mut self, v: &[u8]) -> Self {
        self.0.extend_from_slice(&(v.len() as u64).to_le_bytes());
        self.0.extend_from_slice(v);
        self
    }

    pub fn finish(self) -> [u8; 16] {
        XxHash3_128::oneshot(&self.0).to_le_bytes()
    }
}

/// What to write to make the stored rows equal the new ones.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// Indices into the new rows of those that are missing or stored with other values.
    pub write: Vec<usize>,
    /// Stored users to remove: those with other values (rewritten from `write`) and those no
    /// longer among the new rows.
    pub remove: Vec<i64>,
    /// Stored rows that stay as they are.
    pub unchanged: usize,
}

/// Compares the stored `(user id, fingerprint)` pairs with the new rows' pairs (`new`, in the
/// rows' order). User ids are unique on both sides.
pub fn changes(mut stored: Vec<(i64, [u8; 16])>, new: &[(i64, [u8; 16])]) -> Changes {
    stored.sort_unstable_by_key(|s| s.0);
    let mut order: Vec<usize> = (0..new.len()).collect();
    order.sort_unstable_by_key(|&i| new[i].0);
    let mut out = Changes::default();
    let mut s = stored.iter().peekable();
    for i in order {
        let id = new[i].0;
        while let Some(&&(gone, _)) = s.peek().filter(|x| x.0 < id) {
            out.remove.push(gone);
            s.next();
        }
        match s.peek() {
            Some(&&(same, print)) if same == id => {
                s.next();
                if print == new[i].1 {
                    out.unchanged += 1;
                } else {
                    out.remove.push(id);
                    out.write.push(i);
                }
            }
            _ => out.write.push(i),
        }
    }
    out.remove.extend(s.map(|x| x.0));
    out
}

/// `(user id, fingerprint)` pairs as bytes, for an aggregate state that leaves its process.
pub fn encode_pairs(pairs: &[(i64, [u8; 16])]) -> Vec<u8> {
    let mut out = Vec::with_capacity(pairs.len() * 24);
    for (id, print) in pairs {
        out.extend_from_slice(&id.to_le_bytes());
        out.extend_from_slice(print);
    }
    out
}

/// The pairs of [`encode_pairs`].
pub fn decode_pairs(bytes: &[u8]) -> Result<Vec<(i64, [u8; 16])>, String> {
    if !bytes.len().is_multiple_of(24) {
        return Err(format!(
            "{} bytes are not whole (id, fingerprint) pairs",
            bytes.len()
        ));
    }
    Ok(bytes
        .chunks_exact(24)
        .map(|c| {
            let (id, print) = c.split_at(8);
            let mut p = [0u8; 16];
            p.copy_from_slice(print);
            (i64::from_le_bytes(id.try_into().unwrap_or_default()), p)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn print(v: i64) -> [u8; 16] {
        Fingerprint::new(1, 2).i64(v).finish()
    }

    #[test]
    fn known_changes() {
        let new: Vec<(i64, [u8; 16])> = [5, 1, 3, 9].map(|id| (id, print(id))).to_vec();
        let stored = vec![
            (9, print(9)),
            (2, print(5)),
            (3, print(-3)),
            (1, print(1)),
            (11, print(1)),
        ];
        let c = changes(stored, &new);
        assert_eq!(c.unchanged, 2);
        assert_eq!(c.write, vec![2, 0]);
        assert_eq!(c.remove, vec![2, 3, 11]);
        assert_eq!(changes(vec![], &[]), Changes::default());
    }

    #[test]
    fn values_do_not_run_together() {
        let a = Fingerprint::new(1, 2).bytes(b"ab").bytes(b"c").finish();
        let b = Fingerprint::new(1, 2).bytes(b"a").bytes(b"bc").finish();
        assert_ne!(a, b);
        assert_ne!(
            Fingerprint::new(1, 2).opt_i64(None).finish(),
            Fingerprint::new(1, 2).opt_i64(Some(0)).finish()
        );
        assert_ne!(
            Fingerprint::new(1, 2).finish(),
            Fingerprint::new(2, 2).finish()
        );
        assert_ne!(
            Fingerprint::new(1, 2).finish(),
            Fingerprint::new(1, 3).finish()
        );
    }

    #[test]
    fn pairs_round_trip() {
        let pairs = vec![(-3, [7u8; 16]), (i64::MAX, print(2))];
        assert_eq!(decode_pairs(&encode_pairs(&pairs)), Ok(pairs));
        assert!(decode_pairs(&[0u8; 23]).is_err());
    }

    proptest! {
        /// Applying the changes to the stored rows gives exactly the new rows, and nothing equal
        /// is rewritten.
        #[test]
        fn applying_the_changes_gives_the_new_rows(
            stored in proptest::collection::btree_map(0i64..60, 0i64..4, 0..40),
            new in proptest::collection::btree_map(0i64..60, 0i64..4, 0..40),
            shuffle in any::<u64>(),
        ) {
            let mut rows: Vec<(i64, [u8; 16])> = new.iter().map(|(&id, &v)| (id, print(v))).collect();
            rows.sort_by_key(|r| (r.0.wrapping_mul(shuffle as i64 | 1), r.0));
            let pairs: Vec<(i64, [u8; 16])> = stored.iter().map(|(&id, &v)| (id, print(v))).collect();
            let c = changes(pairs.clone(), &rows);

            let mut table: BTreeMap<i64, [u8; 16]> = pairs.into_iter().collect();
            for id in &c.remove {
                prop_assert!(table.remove(id).is_some(), "removed a row that is not stored");
            }
            for &i in &c.write {
                prop_assert!(table.insert(rows[i].0, rows[i].1).is_none(), "wrote over a row");
            }
            let want: BTreeMap<i64, [u8; 16]> = rows.iter().copied().collect();
            prop_assert_eq!(&table, &want);
            let same = new.iter().filter(|(id, v)| stored.get(id) == Some(v)).count();
            prop_assert_eq!(c.unchanged, same);
            prop_assert_eq!(c.write.len(), new.len() - same);
        }
    }
}
