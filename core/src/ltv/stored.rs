//! What a refresh has to change in the stored results. A stored row keeps only what does not move
//! with the as-of day by itself (`days_since_last_order` is derived from `last_order_date` when
//! read), so a day's refresh changes the rows of the users who ordered, crossed a horizon or
//! changed segment, not every row. Each stored row carries a [`fingerprint`] of its values, and
//! [`changes`] compares the new rows with the stored fingerprints.

use twox_hash::XxHash3_128;

use super::UserLtv;

/// Part of every fingerprint: a release that stores a row differently bumps it, and its first
/// refresh then rewrites every row.
const FINGERPRINT_VERSION: u8 = 1;

/// A 128-bit hash of everything a stored row holds, including the amount scale its numbers are
/// written at. Two rows with the same fingerprint are stored identically, with the chance of an
/// accidental equal fingerprint at about 2^-128 per changed row.
pub fn fingerprint(row: &UserLtv, scale: u32) -> [u8; 16] {
    let mut b = [0u8; 160];
    let mut at = 0;
    let mut put = |bytes: &[u8]| {
        b[at..at + bytes.len()].copy_from_slice(bytes);
        at += bytes.len();
    };
    put(&[FINGERPRINT_VERSION]);
    put(&scale.to_le_bytes());
    put(&row.user_id.to_le_bytes());
    put(&row.signup.0.to_le_bytes());
    for v in row.revenue.iter().chain(&row.orders) {
        put(&v.to_le_bytes());
    }
    for v in row.avg_order_value {
        put(&[u8::from(v.is_some())]);
        put(&v.unwrap_or(0).to_le_bytes());
    }
    for d in [row.first_order, row.last_order] {
        put(&[u8::from(d.is_some())]);
        put(&d.map_or(0, |d| d.0).to_le_bytes());
    }
    for h in row.horizon_complete {
        put(&[u8::from(h)]);
    }
    put(&row.orders_before_signup.to_le_bytes());
    put(row.segment.name().as_bytes());
    XxHash3_128::oneshot(&b[..at]).to_le_bytes()
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

/// Compares the stored `(user id, fingerprint)` pairs with the new `rows`, whose fingerprints are
/// `fingerprints` (same order). User ids are unique on both sides.
pub fn changes(
    mut stored: Vec<(i64, [u8; 16])>,
    rows: &[UserLtv],
    fingerprints: &[[u8; 16]],
) -> Changes {
    stored.sort_unstable_by_key(|s| s.0);
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_unstable_by_key(|&i| rows[i].user_id);
    let mut out = Changes::default();
    let mut s = stored.iter().peekable();
    for i in order {
        let id = rows[i].user_id;
        while let Some(&&(gone, _)) = s.peek().filter(|x| x.0 < id) {
            out.remove.push(gone);
            s.next();
        }
        match s.peek() {
            Some(&&(same, print)) if same == id => {
                s.next();
                if print == fingerprints[i] {
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
    use crate::calendar::Day;
    use crate::ltv::Segment;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn row(user_id: i64) -> UserLtv {
        UserLtv {
            user_id,
            signup: Day(8000),
            revenue: [100, 200, 300, 400],
            orders: [1, 2, 3, 4],
            avg_order_value: [Some(100), Some(100), Some(100), Some(100)],
            first_order: Some(Day(8001)),
            last_order: Some(Day(8100)),
            days_since_last_order: Some(10),
            horizon_complete: [true, true, false],
            orders_before_signup: 0,
            segment: Segment::Low,
        }
    }

    #[test]
    fn every_stored_value_moves_the_fingerprint() {
        let base = row(7);
        let edits: Vec<fn(&mut UserLtv)> = vec![
            |r| r.user_id = 8,
            |r| r.signup = Day(8001),
            |r| r.revenue[0] = 101,
            |r| r.revenue[3] = 401,
            |r| r.orders[1] = 3,
            |r| r.orders[3] = 5,
            |r| r.avg_order_value[2] = None,
            |r| r.avg_order_value[3] = Some(0),
            |r| r.first_order = None,
            |r| r.last_order = Some(Day(8101)),
            |r| r.horizon_complete[2] = true,
            |r| r.orders_before_signup = 1,
            |r| r.segment = Segment::Medium,
        ];
        let print = fingerprint(&base, 2);
        assert_ne!(print, fingerprint(&base, 3), "the amount scale");
        for (n, edit) in edits.iter().enumerate() {
            let mut r = base.clone();
            edit(&mut r);
            assert_ne!(print, fingerprint(&r, 2), "edit {n}");
        }
        // Derived when read, so not part of what is stored.
        let mut r = base.clone();
        r.days_since_last_order = Some(11);
        assert_eq!(print, fingerprint(&r, 2));
    }

    #[test]
    fn a_none_differs_from_a_zero() {
        let mut a = row(1);
        let mut b = row(1);
        a.avg_order_value[0] = None;
        b.avg_order_value[0] = Some(0);
        assert_ne!(fingerprint(&a, 2), fingerprint(&b, 2));
        a.first_order = None;
        b.first_order = Some(Day(0));
        assert_ne!(fingerprint(&a, 2), fingerprint(&b, 2));
    }

    #[test]
    fn known_changes() {
        let rows: Vec<UserLtv> = [5, 1, 3, 9].map(row).to_vec();
        let prints: Vec<[u8; 16]> = rows.iter().map(|r| fingerprint(r, 2)).collect();
        let mut other = row(3);
        other.revenue[3] = 1;
        let stored = vec![
            (9, prints[3]),
            (2, prints[0]),
            (3, fingerprint(&other, 2)),
            (1, prints[1]),
            (11, prints[1]),
        ];
        let c = changes(stored, &rows, &prints);
        assert_eq!(c.unchanged, 2);
        assert_eq!(c.write, vec![2, 0]);
        assert_eq!(c.remove, vec![2, 3, 11]);
        assert_eq!(changes(vec![], &[], &[]), Changes::default());
    }

    #[test]
    fn pairs_round_trip() {
        let pairs = vec![(-3, [7u8; 16]), (i64::MAX, fingerprint(&row(2), 2))];
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
            let make = |id: i64, v: i64| {
                let mut r = row(id);
                r.revenue[3] = v;
                r
            };
            let mut rows: Vec<UserLtv> = new.iter().map(|(&id, &v)| make(id, v)).collect();
            rows.sort_by_key(|r| (r.user_id.wrapping_mul(shuffle as i64 | 1), r.user_id));
            let prints: Vec<[u8; 16]> = rows.iter().map(|r| fingerprint(r, 2)).collect();
            let pairs: Vec<(i64, [u8; 16])> =
                stored.iter().map(|(&id, &v)| (id, fingerprint(&make(id, v), 2))).collect();
            let c = changes(pairs, &rows, &prints);

            let mut table: BTreeMap<i64, [u8; 16]> =
                stored.iter().map(|(&id, &v)| (id, fingerprint(&make(id, v), 2))).collect();
            for id in &c.remove {
                prop_assert!(table.remove(id).is_some(), "removed a row that is not stored");
            }
            for &i in &c.write {
                prop_assert!(table.insert(rows[i].user_id, prints[i]).is_none(), "wrote over a row");
            }
            let want: BTreeMap<i64, [u8; 16]> =
                rows.iter().zip(&prints).map(|(r, p)| (r.user_id, *p)).collect();
            prop_assert_eq!(&table, &want);
            let same = new.iter().filter(|(id, v)| stored.get(id) == Some(v)).count();
            prop_assert_eq!(c.unchanged, same);
            prop_assert_eq!(c.write.len(), new.len() - same);
        }
    }
}
