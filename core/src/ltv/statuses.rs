//! The successful statuses, as the orders fold matches each order's status against them.

/// A set of statuses compared by their bytes (what `=` means for text under a deterministic
/// collation). A status of at most 16 bytes is matched by its length and two integers loaded
/// from its ends: at ten million orders, a `memcmp` call per candidate status was a visible part
/// of the fold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusSet {
    short: Vec<(usize, [u64; 2])>,
    long: Vec<Vec<u8>>,
}

impl StatusSet {
    pub fn new(statuses: impl IntoIterator<Item = Vec<u8>>) -> Self {
        let mut set = StatusSet::default();
        for s in statuses {
            match key(&s) {
                Some(k) => set.short.push((s.len(), k)),
                None => set.long.push(s),
            }
        }
        set
    }

    #[inline(always)]
    pub fn contains(&self, status: &[u8]) -> bool {
        match key(status) {
            Some(k) => self
                .short
                .iter()
                .any(|&(len, sk)| len == status.len() && sk == k),
            None => self.long.iter().any(|s| s.as_slice() == status),
        }
    }
}

/// Two integers that, with the length, determine a string of at most 16 bytes: its first and
/// last 8 (or 4) bytes, which overlap for shorter strings and together cover every byte.
#[inline(always)]
fn key(b: &[u8]) -> Option<[u64; 2]> {
    let n = b.len();
    Some(match n {
        0 => [0, 0],
        1..=3 => [
            u64::from(b[0]) | u64::from(b[n / 2]) << 8 | u64::from(b[n - 1]) << 16,
            0,
        ],
        4..=7 => [u32_at(b, 0), u32_at(b, n - 4)],
        8..=16 => [u64_at(b, 0), u64_at(b, n - 8)],
        _ => return None,
    })
}

#[inline(always)]
fn u32_at(b: &[u8], i: usize) -> u64 {
    u64::from(u32::from_le_bytes(
        b[i..i + 4].try_into().unwrap_or_default(),
    ))
}

#[inline(always)]
fn u64_at(b: &[u8], i: usize) -> u64 {
    u64::from_le_bytes(b[i..i + 8].try_into().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_usual_statuses() {
        let set = StatusSet::new(["paid", "shipped", "completed"].map(|s| s.as_bytes().to_vec()));
        for s in ["paid", "shipped", "completed"] {
            assert!(set.contains(s.as_bytes()), "{s}");
        }
        for s in [
            "",
            "PAID",
            "paid ",
            "pai",
            "cancelled",
            "complete",
            "completed!",
            "refunded",
        ] {
            assert!(!set.contains(s.as_bytes()), "{s}");
        }
        let long = StatusSet::new([b"delivered to the customer".to_vec()]);
        assert!(long.contains(b"delivered to the customer"));
        assert!(!long.contains(b"delivered to the customer."));
        assert!(!StatusSet::default().contains(b""));
        assert!(StatusSet::new([Vec::new()]).contains(b""));
    }

    proptest! {
        /// Matching by key equals comparing the bytes, for every length around the cut-offs.
        /// Strings over a two-letter alphabet make equal and nearly equal strings common.
        #[test]
        fn contains_equals_comparing_bytes(
            set in prop::collection::vec(prop::collection::vec(prop::sample::select(vec![b'a', b'b']), 0..20), 0..6),
            probe in prop::collection::vec(prop::sample::select(vec![b'a', b'b']), 0..20),
        ) {
            let expected = set.contains(&probe);
            prop_assert_eq!(StatusSet::new(set.clone()).contains(&probe), expected);
        }
    }
}
