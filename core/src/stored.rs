//! Results tables that a refresh rewrites only where they changed. Each stored row carries a
//! fingerprint of its values ([`Fingerprint`]); a refresh computes the new rows' fingerprints,
//! reads the stored ones and writes only what [`changes`] lists. Used by the LTV and RFM
//! refreshes, whose stored rows leave out what moves with the as-of day by itself.

use twox_hash::XxHash3_128;

/// A 128-bit fingerprint built from a row's values in a fixed order. Two rows with equal
/// fingerprints are stored identically, but for an accidental equality at about 2^-128 per
/// changed row. Optional values carry a presence byte, so a `None` differs from a zero. The bytes
/// are gathered on the stack, fixed-size values with copies of known size, and spill to the heap
/// only for unusually long values: a refresh fingerprints every row, faster this way than with
/// a heap buffer per row (BENCHMARKS.md, "Measurements behind the code").
pub struct Fingerprint {
    inline: [u8; INLINE],
    len: usize,
    spill: Vec<u8>,
}

const INLINE: usize = 256;

impl Fingerprint {
    /// Starts a fingerprint; `version` is the format of the stored row (a release that stores a
    /// row differently bumps it, and its first refresh then rewrites every row) and `scale` the
    /// amount scale its numbers are written at.
    #[inline]
    pub fn new(version: u8, scale: u32) -> Self {
        let mut f = Fingerprint {
            inline: [0; INLINE],
            len: 0,
            spill: Vec::new(),
        };
        f.put([version]).put(scale.to_le_bytes());
        f
    }

    /// Appends a fixed-size value: one bound check and a copy of known size on the stack.
    #[inline]
    fn put<const N: usize>(&mut self, bytes: [u8; N]) -> &mut Self {
        if self.len + N <= INLINE {
            self.inline[self.len..self.len + N].copy_from_slice(&bytes);
            self.len += N;
            self
        } else {
            self.put_spilled(&bytes)
        }
    }

    /// Appends past the stack buffer: moves everything to the heap, and from then on `len` is
    /// over `INLINE` so that every later value comes here too.
    #[cold]
    fn put_spilled(&mut self, bytes: &[u8]) -> &mut Self {
        if self.len <= INLINE {
            self.spill.extend_from_slice(&self.inline[..self.len]);
            self.len = INLINE + 1;
        }
        self.spill.extend_from_slice(bytes);
        self
    }

    #[inline]
    pub fn i64(&mut self, v: i64) -> &mut Self {
        self.put(v.to_le_bytes())
    }

    #[inline]
    pub fn opt_i64(&mut self, v: Option<i64>) -> &mut Self {
        self.put([u8::from(v.is_some())]).i64(v.unwrap_or(0))
    }

    #[inline]
    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.put([u8::from(v)])
    }

    /// A variable-length value, prefixed by its length so that neighbours cannot run together.
    #[inline]
    pub fn bytes(&mut self, v: &[u8]) -> &mut Self {
        self.put((v.len() as u64).to_le_bytes());
        if self.len + v.len() <= INLINE {
            self.inline[self.len..self.len + v.len()].copy_from_slice(v);
            self.len += v.len();
            self
        } else {
            self.put_spilled(v)
        }
    }

    #[inline]
    pub fn finish(&self) -> [u8; 16] {
        let bytes = if self.len <= INLINE {
            &self.inline[..self.len]
        } else {
            &self.spill[..]
        };
        XxHash3_128::oneshot(bytes).to_le_bytes()
    }
}

/// A row's user id and the fingerprint of its values.
pub type IdPrint = (i64, [u8; 16]);

/// A row as it is stored: its user, its values' fingerprint, and where it lies in the table (a
/// number this module only hands back, so that the caller can remove the row without looking its
/// user up again).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredRow {
    pub id: i64,
    pub print: [u8; 16],
    pub place: u64,
}

/// What to write to make the stored rows equal the new ones.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// Indices into the new rows of those that are missing or stored with other values.
    pub write: Vec<usize>,
    /// The places of the stored rows to remove: those with other values (rewritten from `write`)
    /// and those no longer among the new rows.
    pub remove: Vec<u64>,
    /// Stored rows that stay as they are.
    pub unchanged: usize,
}

/// Compares the stored rows with the new rows' `(user id, fingerprint)` pairs (`new`, in the
/// rows' order). User ids are unique on both sides.
pub fn changes(stored: Vec<StoredRow>, new: &[IdPrint]) -> Changes {
    match changes_dense(&stored, new) {
        Some(c) => c,
        None => changes_merged(stored, new),
    }
}

/// [`changes`] when the new rows' ids run one by one from the first (a dense id sequence, the
/// rows in id order): each stored row finds its new row by arithmetic, with no sort and no merge.
/// None otherwise. The removals come in the stored rows' order.
fn changes_dense(stored: &[StoredRow], new: &[IdPrint]) -> Option<Changes> {
    let first = new.first()?.0;
    if !new
        .windows(2)
        .all(|w| w[0].0.checked_add(1) == Some(w[1].0))
    {
        return None;
    }
    const NOT_STORED: u8 = 0;
    const UNCHANGED: u8 = 1;
    const CHANGED: u8 = 2;
    let mut state = vec![NOT_STORED; new.len()];
    let mut out = Changes::default();
    for r in stored {
        let at =
            r.id.checked_sub(first)
                .and_then(|o| usize::try_from(o).ok())
                .filter(|&o| o < new.len());
        match at {
            // A second stored row of one id (which the primary key rules out) is removed too.
            Some(i) if state[i] == NOT_STORED => {
                if new[i].1 == r.print {
                    state[i] = UNCHANGED;
                    out.unchanged += 1;
                } else {
                    state[i] = CHANGED;
                    out.remove.push(r.place);
                }
            }
            _ => out.remove.push(r.place),
        }
    }
    out.write = (0..new.len()).filter(|&i| state[i] != UNCHANGED).collect();
    Some(out)
}

/// [`changes`] by sorting both sides by id and merging them.
fn changes_merged(mut stored: Vec<StoredRow>, new: &[IdPrint]) -> Changes {
    // Both sides usually come nearly in id order (the stored rows as a bulk insert laid them
    // down, with the few rewritten since at the end), which the stable sort's run detection
    // turns into a few merges.
    if !stored.is_sorted_by_key(|s| s.id) {
        stored.sort_by_key(|s| s.id);
    }
    let mut order: Vec<usize> = (0..new.len()).collect();
    if !new.is_sorted_by_key(|r| r.0) {
        order.sort_by_key(|&i| new[i].0);
    }
    let mut out = Changes::default();
    let mut s = stored.iter().peekable();
    for i in order {
        let id = new[i].0;
        while let Some(gone) = s.next_if(|x| x.id < id) {
            out.remove.push(gone.place);
        }
        match s.next_if(|x| x.id == id) {
            Some(same) if same.print == new[i].1 => out.unchanged += 1,
            Some(same) => {
                out.remove.push(same.place);
                out.write.push(i);
            }
            None => out.write.push(i),
        }
    }
    out.remove.extend(s.map(|x| x.place));
    out
}

const STORED_ROW_BYTES: usize = 32;

/// Stored rows as bytes, for an aggregate state that leaves its process.
pub fn encode_stored(rows: &[StoredRow]) -> Vec<u8> {
    let mut out = Vec::with_capacity(rows.len() * STORED_ROW_BYTES);
    for r in rows {
        out.extend_from_slice(&r.id.to_le_bytes());
        out.extend_from_slice(&r.print);
        out.extend_from_slice(&r.place.to_le_bytes());
    }
    out
}

/// The rows of [`encode_stored`].
pub fn decode_stored(bytes: &[u8]) -> Result<Vec<StoredRow>, String> {
    if !bytes.len().is_multiple_of(STORED_ROW_BYTES) {
        return Err(format!(
            "{} bytes are not whole (id, fingerprint, place) rows",
            bytes.len()
        ));
    }
    let word = |b: &[u8]| {
        let mut w = [0u8; 8];
        w.copy_from_slice(b);
        w
    };
    Ok(bytes
        .chunks_exact(STORED_ROW_BYTES)
        .map(|c| {
            let mut print = [0u8; 16];
            print.copy_from_slice(&c[8..24]);
            StoredRow {
                id: i64::from_le_bytes(word(&c[..8])),
                print,
                place: u64::from_le_bytes(word(&c[24..])),
            }
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

    /// A stored row whose place is its id plus 1000.
    fn stored_row(id: i64, print: [u8; 16]) -> StoredRow {
        StoredRow {
            id,
            print,
            place: id.wrapping_add(1000) as u64,
        }
    }

    #[test]
    fn known_changes() {
        let new: Vec<(i64, [u8; 16])> = [5, 1, 3, 9].map(|id| (id, print(id))).to_vec();
        // Places other than the ids, so that a mix-up shows.
        let stored = [(9, 9), (2, 5), (3, -3), (1, 1), (11, 1)]
            .map(|(id, v)| stored_row(id, print(v)))
            .to_vec();
        let c = changes(stored, &new);
        assert_eq!(c.unchanged, 2);
        assert_eq!(c.write, vec![2, 0]);
        assert_eq!(c.remove, vec![1002, 1003, 1011]);
        assert_eq!(changes(vec![], &[]), Changes::default());
        // A gap, a repeat or a step back in the new ids takes the merge.
        for ids in [[1, 3], [2, 2], [3, 2]] {
            let new = ids.map(|id| (id, print(id)));
            assert!(changes_dense(&[], &new).is_none());
        }
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
    fn long_values_spill_and_still_count() {
        let long = vec![7u8; 1000];
        let a = Fingerprint::new(1, 2).i64(5).bytes(&long).finish();
        assert_eq!(a, Fingerprint::new(1, 2).i64(5).bytes(&long).finish());
        let mut other = long.clone();
        other[999] = 8;
        assert_ne!(a, Fingerprint::new(1, 2).i64(5).bytes(&other).finish());
        // Crossing the inline size mid-value gives the hash of the same bytes.
        let mut all = vec![1u8];
        all.extend_from_slice(&2u32.to_le_bytes());
        all.extend_from_slice(&5i64.to_le_bytes());
        all.extend_from_slice(&1000u64.to_le_bytes());
        all.extend_from_slice(&long);
        assert_eq!(a, XxHash3_128::oneshot(&all).to_le_bytes());
    }

    #[test]
    fn stored_rows_round_trip() {
        let rows = vec![
            StoredRow {
                id: -3,
                print: [7u8; 16],
                place: u64::MAX,
            },
            stored_row(i64::MAX, print(2)),
        ];
        assert_eq!(decode_stored(&encode_stored(&rows)), Ok(rows));
        assert!(decode_stored(&[0u8; 31]).is_err());
    }

    proptest! {
        /// New rows with consecutive ids take the arithmetic path, which finds what the merge
        /// finds (removals in any order).
        #[test]
        fn dense_ids_give_what_the_merge_gives(
            start in -5i64..5,
            values in proptest::collection::vec(0i64..3, 1..40),
            stored in proptest::collection::vec((-10i64..50, 0i64..3), 0..50),
        ) {
            let new: Vec<(i64, [u8; 16])> = values.iter().enumerate()
                .map(|(i, &v)| (start + i as i64, print(v))).collect();
            // Unique stored ids, in a scrambled order, as a table holds them.
            let mut seen = std::collections::BTreeSet::new();
            let rows: Vec<StoredRow> = stored.iter().rev()
                .filter(|(id, _)| seen.insert(*id))
                .map(|&(id, v)| stored_row(id, print(v))).collect();
            let dense = changes_dense(&rows, &new);
            prop_assert!(dense.is_some());
            let mut dense = dense.unwrap();
            let mut merged = changes_merged(rows, &new);
            dense.remove.sort_unstable();
            merged.remove.sort_unstable();
            prop_assert_eq!(dense, merged);
        }

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
            let pairs: Vec<StoredRow> = stored.iter().map(|(&id, &v)| stored_row(id, print(v))).collect();
            let c = changes(pairs.clone(), &rows);

            let mut table: BTreeMap<i64, [u8; 16]> = pairs.into_iter().map(|r| (r.id, r.print)).collect();
            for place in &c.remove {
                let id = (*place as i64).wrapping_sub(1000);
                prop_assert!(table.remove(&id).is_some(), "removed a row that is not stored");
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
