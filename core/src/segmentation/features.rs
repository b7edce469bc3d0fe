//! Snapshot features of a user with at least one successful order up to day D, from data up to
//! D only (the windows end on D, D included):
//! - `recency_days`: D minus the day of the last successful order;
//! - `frequency_90d`: successful orders in the 90 days ending on D;
//! - `monetary_180d`: their revenue over the 180 days ending on D;
//! - `aov_180d`: `monetary_180d` per order over those 180 days, 0 without one;
//! - `categories_180d`: distinct product categories ordered over those 180 days, where the shop
//!   has order items and products.
//!
//! Money is compressed with log1p before standardising, as spend is heavy-tailed.

use crate::calendar::Day;
use crate::events::Event;
use crate::money::div_round;

/// The feature names, in column order, and whether each is money (log1p before scaling).
pub const FEATURES: [(&str, bool); 5] = [
    ("recency_days", false),
    ("frequency_90d", false),
    ("monetary_180d", true),
    ("aov_180d", true),
    ("categories_180d", false),
];

/// Index of each feature in [`FEATURES`].
pub const RECENCY: usize = 0;
pub const FREQUENCY: usize = 1;
pub const MONETARY: usize = 2;

/// The money of a snapshot in the amounts' minor units, exactly: `monetary_180d`, and
/// `aov_180d` rounded half away from zero to the amounts' scale (as PostgreSQL's
/// `round(numeric, scale)`), None without an order in the 180 days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotMoney {
    pub monetary_180d: i128,
    pub aov_180d: Option<i128>,
}

/// A user's snapshot at `as_of` from their counted orders, sorted by day and none after `as_of`
/// (the events read gives them so), with amounts at `scale` decimal places (at most 15);
/// `categories_180d` comes from the categories read. None without an order.
pub fn snapshot_of(
    user_id: i64,
    orders: &[Event],
    as_of: Day,
    scale: u32,
    categories_180d: u32,
) -> Option<(Snapshot, SnapshotMoney)> {
    let last = orders.last()?;
    let unit = 10f64.powi(scale.min(15) as i32);
    let (mut f90, mut m180, mut c180) = (0i64, 0i128, 0i64);
    for e in orders.iter().filter(|e| e.day > as_of.0 - 180) {
        // Each amount back to its exact minor units, so that the sum is the decimal sum.
        m180 += (e.amount * unit).round() as i128;
        c180 += 1;
        if e.day > as_of.0 - 90 {
            f90 += 1;
        }
    }
    let aov = (c180 > 0).then(|| div_round(m180, i128::from(c180)));
    let snapshot = Snapshot {
        user_id,
        values: [
            f64::from(as_of.0 - last.day),
            f90 as f64,
            m180 as f64 / unit,
            aov.map_or(0.0, |a| a as f64 / unit),
            f64::from(categories_180d),
        ],
    };
    let money = SnapshotMoney {
        monetary_180d: m180,
        aov_180d: aov,
    };
    Some((snapshot, money))
}

/// One user's features (values in currency units for money).
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub user_id: i64,
    pub values: [f64; 5],
}

/// The preprocessing of a model: which features it uses, and the standardisation fitted on the
/// training snapshot (mean and standard deviation after log1p).
#[derive(Debug, Clone, PartialEq)]
pub struct Transform {
    /// Indices into [`FEATURES`].
    pub used: Vec<usize>,
    pub mean: Vec<f64>,
    pub scale: Vec<f64>,
}

fn raw(snapshot: &Snapshot, feature: usize) -> f64 {
    let v = snapshot.values[feature];
    if FEATURES[feature].1 {
        v.max(0.0).ln_1p()
    } else {
        v
    }
}

impl Transform {
    /// Fits the standardisation (population standard deviation, as scikit-learn's StandardScaler);
    /// a constant feature keeps scale 1 so that it does not divide by zero.
    pub fn fit(snapshots: &[Snapshot], used: Vec<usize>) -> Transform {
        let n = snapshots.len().max(1) as f64;
        let mut mean = Vec::with_capacity(used.len());
        let mut scale = Vec::with_capacity(used.len());
        for &f in &used {
            let m = snapshots.iter().map(|s| raw(s, f)).sum::<f64>() / n;
            let var = snapshots
                .iter()
                .map(|s| (raw(s, f) - m).powi(2))
                .sum::<f64>()
                / n;
            let sd = var.sqrt();
            mean.push(m);
            scale.push(if sd > 1e-12 && sd.is_finite() {
                sd
            } else {
                1.0
            });
        }
        Transform { used, mean, scale }
    }

    pub fn apply(&self, snapshot: &Snapshot) -> Vec<f64> {
        self.used
            .iter()
            .enumerate()
            .map(|(j, &f)| (raw(snapshot, f) - self.mean[j]) / self.scale[j])
            .collect()
    }

    /// A standardised point back in feature units (money un-logged).
    pub fn invert(&self, point: &[f64]) -> Vec<f64> {
        self.used
            .iter()
            .enumerate()
            .map(|(j, &f)| {
                let v = point[j] * self.scale[j] + self.mean[j];
                if FEATURES[f].1 { v.exp_m1() } else { v }
            })
            .collect()
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.used.iter().map(|&f| FEATURES[f].0).collect()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    proptest! {
        /// Against the definitions, computed another way: amounts given in cents, the money
        /// sums are the cents' sums, and each count and window as the module says.
        #[test]
        fn snapshots_follow_their_definitions(
            mut orders in proptest::collection::vec((0i32..400, 0i64..1_000_000), 1..40),
            as_of in 380i32..420,
        ) {
            orders.sort();
            let events: Vec<Event> = orders
                .iter()
                .map(|&(day, cents)| Event { user: 1, day, amount: cents as f64 / 100.0 })
                .collect();
            let (snap, money) = snapshot_of(1, &events, Day(as_of), 2, 3).unwrap();
            let recent: Vec<i64> = orders.iter().filter(|o| as_of - o.0 < 180).map(|o| o.1).collect();
            let cents: i64 = recent.iter().sum();
            prop_assert_eq!(money.monetary_180d, i128::from(cents));
            let n = recent.len() as i64;
            let aov = (n > 0).then(|| {
                // Half away from zero, as round(numeric, 2).
                (i128::from(cents) * 2 + i128::from(n)) / (2 * i128::from(n))
            });
            prop_assert_eq!(money.aov_180d, aov);
            prop_assert_eq!(snap.values[0], f64::from(as_of - orders.last().unwrap().0));
            prop_assert_eq!(snap.values[1], orders.iter().filter(|o| as_of - o.0 < 90).count() as f64);
            prop_assert_eq!(snap.values[4], 3.0);
        }
    }

    #[test]
    fn no_orders_no_snapshot() {
        assert_eq!(snapshot_of(1, &[], Day(10), 2, 0), None);
    }

    use super::*;

    #[test]
    fn standardises_and_inverts() {
        let s = |id, v: [f64; 5]| Snapshot {
            user_id: id,
            values: v,
        };
        let data = [
            s(1, [10.0, 1.0, 99.0, 99.0, 1.0]),
            s(2, [30.0, 3.0, 9.0, 3.0, 1.0]),
        ];
        let t = Transform::fit(&data, vec![0, 1, 2, 3, 4]);
        let a = t.apply(&data[0]);
        let b = t.apply(&data[1]);
        assert!((a[0] + 1.0).abs() < 1e-12 && (b[0] - 1.0).abs() < 1e-12);
        // The constant feature keeps scale 1 and centres to 0.
        assert_eq!(t.scale[4], 1.0);
        assert_eq!(a[4], 0.0);
        let back = t.invert(&a);
        for (x, y) in back.iter().zip(data[0].values) {
            assert!((x - y).abs() < 1e-9, "{x} vs {y}");
        }
    }
}
