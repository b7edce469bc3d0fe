//! Named RFM segments: a list of score boxes, first match wins.
//!
//! The widely copied 11-segment table (Champions ... Lost, rfm R package and Putler) cannot be
//! used as is under "first match wins": Potential Loyalist (R3-5 F1-3 M1-3) hides New Customers
//! and Promising, At Risk hides Can't Lose Them, and Hibernating and Lost are the same box. The
//! default map below keeps the eleven names and their meaning, in the same order, with ranges
//! chosen so that every segment is reachable and every one of the 125 score cells has a segment
//! (a test checks both).

/// One rule: inclusive score ranges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentRule {
    pub name: String,
    pub r: (u8, u8),
    pub f: (u8, u8),
    pub m: (u8, u8),
}

impl SegmentRule {
    pub fn matches(&self, r: u8, f: u8, m: u8) -> bool {
        let within = |v: u8, (lo, hi): (u8, u8)| lo <= v && v <= hi;
        within(r, self.r) && within(f, self.f) && within(m, self.m)
    }
}

/// The segment of users whose scores match no rule of a user-supplied map.
pub const UNMATCHED: &str = "Others";
/// The segment of users without a successful order: they have no R, F or M to score.
pub const NO_ORDERS: &str = "No Orders";

/// An inclusive score range.
type Range = (u8, u8);

/// The default map, in priority order: (name, R, F, M).
pub const DEFAULT_RULES: [(&str, Range, Range, Range); 11] = [
    ("Champions", (4, 5), (4, 5), (4, 5)),
    ("Loyal Customers", (3, 5), (3, 5), (3, 5)),
    ("Potential Loyalist", (4, 5), (2, 5), (1, 5)),
    ("New Customers", (5, 5), (1, 1), (1, 5)),
    ("Promising", (4, 4), (1, 1), (1, 5)),
    ("Need Attention", (3, 3), (2, 5), (1, 5)),
    ("About To Sleep", (2, 3), (1, 1), (1, 5)),
    ("At Risk", (2, 2), (2, 5), (1, 5)),
    ("Can't Lose Them", (1, 1), (4, 5), (4, 5)),
    ("Hibernating", (1, 1), (2, 5), (1, 5)),
    ("Lost", (1, 1), (1, 1), (1, 5)),
];

pub fn default_rules() -> Vec<SegmentRule> {
    DEFAULT_RULES
        .iter()
        .map(|&(name, r, f, m)| SegmentRule {
            name: name.to_string(),
            r,
            f,
            m,
        })
        .collect()
}

/// The first rule matching the scores, or [`UNMATCHED`].
pub fn segment_of(rules: &[SegmentRule], r: u8, f: u8, m: u8) -> &str {
    rules
        .iter()
        .find(|rule| rule.matches(r, f, m))
        .map_or(UNMATCHED, |rule| rule.name.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_map_covers_every_cell_and_reaches_every_segment() {
        let rules = default_rules();
        let mut reached = std::collections::BTreeSet::new();
        for r in 1..=5 {
            for f in 1..=5 {
                for m in 1..=5 {
                    let s = segment_of(&rules, r, f, m);
                    assert_ne!(s, UNMATCHED, "cell {r}{f}{m} has no segment");
                    reached.insert(s.to_string());
                }
            }
        }
        assert_eq!(reached.len(), 11);
    }

    #[test]
    fn first_match_wins() {
        let rules = default_rules();
        assert_eq!(segment_of(&rules, 5, 5, 5), "Champions");
        assert_eq!(segment_of(&rules, 5, 5, 3), "Loyal Customers");
        assert_eq!(segment_of(&rules, 5, 5, 1), "Potential Loyalist");
        assert_eq!(segment_of(&rules, 5, 1, 5), "New Customers");
        assert_eq!(segment_of(&rules, 4, 1, 1), "Promising");
        assert_eq!(segment_of(&rules, 3, 2, 2), "Need Attention");
        assert_eq!(segment_of(&rules, 3, 1, 4), "About To Sleep");
        assert_eq!(segment_of(&rules, 2, 5, 5), "At Risk");
        assert_eq!(segment_of(&rules, 1, 5, 5), "Can't Lose Them");
        assert_eq!(segment_of(&rules, 1, 5, 3), "Hibernating");
        assert_eq!(segment_of(&rules, 1, 1, 5), "Lost");
        assert_eq!(segment_of(&[], 1, 1, 1), UNMATCHED);
    }
}
