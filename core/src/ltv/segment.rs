//! Value segments on lifetime revenue.

/// The five value segments, from the highest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Segment {
    Vip,
    High,
    Medium,
    Low,
    New,
}

impl Segment {
    pub const ALL: [Segment; 5] = [
        Segment::Vip,
        Segment::High,
        Segment::Medium,
        Segment::Low,
        Segment::New,
    ];

    /// The name stored in `ml_user_ltv.segment`.
    pub fn name(self) -> &'static str {
        match self {
            Segment::Vip => "VIP",
            Segment::High => "High",
            Segment::Medium => "Medium",
            Segment::Low => "Low",
            Segment::New => "New",
        }
    }
}

/// Lower bounds (inclusive) of lifetime revenue in minor units. The defaults are the original
/// platform's: VIP >= 1000, High >= 500, Medium >= 100, Low >= 50, otherwise New.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentThresholds {
    pub vip: i64,
    pub high: i64,
    pub medium: i64,
    pub low: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThresholdError(pub String);

impl std::fmt::Display for ThresholdError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl SegmentThresholds {
    /// Thresholds must be non-negative and strictly decreasing from VIP to Low, or some segment
    /// could never be reached.
    pub fn new(vip: i64, high: i64, medium: i64, low: i64) -> Result<Self, ThresholdError> {
        if low < 0 {
            return Err(ThresholdError(
                "segment thresholds must not be negative".into(),
            ));
        }
        if !(vip > high && high > medium && medium > low) {
            return Err(ThresholdError(
                "segment thresholds must decrease strictly: vip > high > medium > low".into(),
            ));
        }
        Ok(SegmentThresholds {
            vip,
            high,
            medium,
            low,
        })
    }

    /// The original platform's thresholds at the given scale.
    pub fn defaults(scale: u32) -> Self {
        let unit = crate::money::unit(scale);
        SegmentThresholds {
            vip: 1000 * unit,
            high: 500 * unit,
            medium: 100 * unit,
            low: 50 * unit,
        }
    }

    pub fn classify(&self, lifetime_minor: i64) -> Segment {
        if lifetime_minor >= self.vip {
            Segment::Vip
        } else if lifetime_minor >= self.high {
            Segment::High
        } else if lifetime_minor >= self.medium {
            Segment::Medium
        } else if lifetime_minor >= self.low {
            Segment::Low
        } else {
            Segment::New
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries_are_inclusive() {
        let t = SegmentThresholds::defaults(2);
        assert_eq!(t.classify(100_000), Segment::Vip);
        assert_eq!(t.classify(99_999), Segment::High);
        assert_eq!(t.classify(50_000), Segment::High);
        assert_eq!(t.classify(49_999), Segment::Medium);
        assert_eq!(t.classify(10_000), Segment::Medium);
        assert_eq!(t.classify(9_999), Segment::Low);
        assert_eq!(t.classify(5_000), Segment::Low);
        assert_eq!(t.classify(4_999), Segment::New);
        assert_eq!(t.classify(0), Segment::New);
    }

    #[test]
    fn rejects_unordered_or_negative_thresholds() {
        assert!(SegmentThresholds::new(10, 10, 5, 1).is_err());
        assert!(SegmentThresholds::new(10, 20, 5, 1).is_err());
        assert!(SegmentThresholds::new(10, 5, 2, -1).is_err());
        assert!(SegmentThresholds::new(10, 5, 2, 0).is_ok());
    }
}
