//! Anomaly rules on a user's weekly series, for orders and spend: a z-score against the trailing
//! window, its robust variant (median and MAD), the week-over-week ratio, and a drop to zero after
//! a run of active weeks. Every rule that fires is named in the finding; the score is the largest
//! rule value in units of its own threshold, so a score of 1 or more means a rule fired.
//!
//! Unlike the platform this replaces: the trailing window is calendar weeks (zero weeks count), so
//! a drop to zero can be seen; a window without spread gives no z-score instead of one divided by
//! a floor of 0.01; users without enough history are flagged and not reported.

use super::weekly::WeekRow;

/// The detection settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rules {
    /// Trailing weeks the current week is compared with.
    pub window: usize,
    /// |z| at or above this fires.
    pub z: f64,
    /// A week-over-week ratio at or above this, or at or below its inverse, fires.
    pub ratio: f64,
    /// |modified z| (0.6745 (x − median) / MAD, Iglewicz-Hoaglin) at or above this fires.
    pub robust_z: f64,
    /// Weeks of history (since the first active week) needed before a week is judged.
    pub min_history: usize,
    /// Report anomalies of users with too little history too.
    pub report_insufficient: bool,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            window: 4,
            z: 3.0,
            ratio: 3.0,
            robust_z: 3.5,
            min_history: 4,
            report_insufficient: false,
        }
    }
}

impl Rules {
    pub fn check(&self) -> Result<(), String> {
        if self.window < 2 {
            return Err(format!(
                "the window must be at least 2 weeks, got {}",
                self.window
            ));
        }
        for (name, v) in [
            ("z", self.z),
            ("ratio", self.ratio),
            ("robust_z", self.robust_z),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(format!(
                    "the {name} threshold must be a finite number > 0, got {v}"
                ));
            }
        }
        if self.ratio <= 1.0 {
            return Err(format!(
                "the ratio threshold must be above 1, got {}",
                self.ratio
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    Orders,
    Spend,
}

impl Metric {
    pub fn name(self) -> &'static str {
        match self {
            Metric::Orders => "orders",
            Metric::Spend => "spend",
        }
    }

    fn of(self, w: &WeekRow) -> f64 {
        match self {
            Metric::Orders => f64::from(w.orders),
            Metric::Spend => w.spend,
        }
    }
}

/// A rule that fired, for one metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Trigger {
    ZHigh(Metric),
    ZLow(Metric),
    RobustHigh(Metric),
    RobustLow(Metric),
    Jump(Metric),
    Drop(Metric),
    DropToZero(Metric),
}

impl Trigger {
    /// The name a finding lists, e.g. `spend_z_high`.
    pub fn name(self) -> String {
        let (m, rule) = match self {
            Trigger::ZHigh(m) => (m, "z_high"),
            Trigger::ZLow(m) => (m, "z_low"),
            Trigger::RobustHigh(m) => (m, "robust_z_high"),
            Trigger::RobustLow(m) => (m, "robust_z_low"),
            Trigger::Jump(m) => (m, "ratio_jump"),
            Trigger::Drop(m) => (m, "ratio_drop"),
            Trigger::DropToZero(m) => (m, "drop_to_zero"),
        };
        format!("{}_{rule}", m.name())
    }
}

/// One metric of one week against its trailing window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricStats {
    pub value: f64,
    pub mean: f64,
    /// Sample standard deviation of the window; z is None when it is 0.
    pub std: f64,
    pub z: Option<f64>,
    pub median: f64,
    pub mad: f64,
    pub robust_z: Option<f64>,
    pub previous: f64,
    /// value / previous week's value; None when the previous week was 0.
    pub ratio: Option<f64>,
}

/// One judged week of one user.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub week: i32,
    /// Distinct categories bought that week, when known (not judged: breadth is reported).
    pub categories: Option<u32>,
    pub orders: MetricStats,
    pub spend: MetricStats,
    pub score: f64,
    pub triggers: Vec<Trigger>,
    /// Fewer than `min_history` weeks before this one.
    pub insufficient_history: bool,
    /// A rule fired and the history suffices (or insufficient history is reported too).
    pub is_anomaly: bool,
}

fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

fn stats(metric: Metric, window: &[WeekRow], current: &WeekRow) -> MetricStats {
    let values: Vec<f64> = window.iter().map(|w| metric.of(w)).collect();
    let value = metric.of(current);
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    let std = variance.sqrt();
    let mut sorted = values.clone();
    sorted.sort_by(f64::total_cmp);
    let med = median(&sorted);
    let mut deviations: Vec<f64> = values.iter().map(|v| (v - med).abs()).collect();
    deviations.sort_by(f64::total_cmp);
    let mad = median(&deviations);
    let previous = *values.last().unwrap_or(&0.0);
    MetricStats {
        value,
        mean,
        std,
        z: (std > 0.0).then(|| (value - mean) / std),
        median: med,
        mad,
        robust_z: (mad > 0.0).then(|| 0.6745 * (value - med) / mad),
        previous,
        ratio: (previous > 0.0).then(|| value / previous),
    }
}

/// The rules for one metric: the triggers that fire and the largest rule value in threshold units.
fn judge(
    metric: Metric,
    s: &MetricStats,
    window: &[WeekRow],
    rules: &Rules,
) -> (Vec<Trigger>, f64) {
    let mut triggers = Vec::new();
    let mut score: f64 = 0.0;
    if let Some(z) = s.z {
        score = score.max(z.abs() / rules.z);
        if z >= rules.z {
            triggers.push(Trigger::ZHigh(metric));
        } else if z <= -rules.z {
            triggers.push(Trigger::ZLow(metric));
        }
    }
    if let Some(r) = s.robust_z {
        score = score.max(r.abs() / rules.robust_z);
        if r >= rules.robust_z {
            triggers.push(Trigger::RobustHigh(metric));
        } else if r <= -rules.robust_z {
            triggers.push(Trigger::RobustLow(metric));
        }
    }
    if let Some(ratio) = s.ratio.filter(|r| *r > 0.0) {
        score = score.max(ratio.ln().abs() / rules.ratio.ln());
        if ratio >= rules.ratio {
            triggers.push(Trigger::Jump(metric));
        } else if ratio <= 1.0 / rules.ratio {
            triggers.push(Trigger::Drop(metric));
        }
    }
    // Every week of the window active, and nothing now.
    if s.value == 0.0 && window.iter().all(|w| metric.of(w) > 0.0) {
        score = score.max(1.0);
        triggers.push(Trigger::DropToZero(metric));
    }
    (triggers, score)
}

/// Judges every week of a user's series (from [`super::fill_weeks`]) from its third week on:
/// the first two have too little before them to compare with.
pub fn detect(series: &[WeekRow], rules: &Rules) -> Vec<Finding> {
    detect_after(series, 0, rules)
}

/// [`detect`] for a series that starts `earlier_weeks` weeks after the user's first active week
/// (a refresh reads only the weeks it needs): history is counted from that first week. A week
/// with fewer than `window` weeks before it in the series is compared with the weeks there are
/// (at least two), and is flagged as short history when it has fewer than `min_history`.
pub fn detect_after(series: &[WeekRow], earlier_weeks: usize, rules: &Rules) -> Vec<Finding> {
    if rules.window < 2 {
        return Vec::new();
    }
    (2..series.len())
        .map(|i| {
            let window = &series[i.saturating_sub(rules.window)..i];
            let current = &series[i];
            let orders = stats(Metric::Orders, window, current);
            let spend = stats(Metric::Spend, window, current);
            let (mut triggers, score_o) = judge(Metric::Orders, &orders, window, rules);
            let (spend_triggers, score_s) = judge(Metric::Spend, &spend, window, rules);
            triggers.extend(spend_triggers);
            let insufficient_history =
                earlier_weeks + i < rules.min_history || window.len() < rules.window;
            Finding {
                week: current.week,
                categories: current.categories,
                orders,
                spend,
                score: score_o.max(score_s),
                is_anomaly: !triggers.is_empty()
                    && (!insufficient_history || rules.report_insufficient),
                triggers,
                insufficient_history,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::weekly::{WeekTotals, fill_weeks};
    use super::*;

    fn series(spend: &[f64]) -> Vec<WeekRow> {
        let active: Vec<WeekTotals> = spend
            .iter()
            .enumerate()
            .filter(|(_, s)| **s > 0.0)
            .map(|(i, s)| WeekTotals {
                week: i as i32,
                orders: 1,
                spend: *s,
                categories: None,
            })
            .collect();
        fill_weeks(&active, spend.len() as i32 - 1, false)
    }

    fn names(f: &Finding) -> Vec<String> {
        f.triggers.iter().map(|t| t.name()).collect()
    }

    #[test]
    fn a_spike_fires_the_z_and_ratio_rules_and_names_them() {
        let s = series(&[10.0, 12.0, 11.0, 9.0, 10.0, 60.0]);
        let f = detect(&s, &Rules::default());
        assert_eq!(f.len(), 4);
        let spike = &f[3];
        assert!(spike.is_anomaly);
        // Window 12, 11, 9, 10: mean 10.5, sample std 1.29; z = 38.3; ratio 6.
        assert!((spike.spend.z.unwrap() - 49.5 / (5.0f64 / 3.0).sqrt()).abs() < 1e-9);
        assert_eq!(spike.spend.ratio, Some(6.0));
        let n = names(spike);
        assert!(n.contains(&"spend_z_high".to_string()));
        assert!(n.contains(&"spend_ratio_jump".to_string()));
        assert!(n.contains(&"spend_robust_z_high".to_string()));
        // One order every week: the orders rules stay quiet (no spread, ratio 1).
        assert!(!n.iter().any(|t| t.starts_with("orders")));
        assert!(spike.score >= 1.0);
        // The calm week before it fired nothing; the weeks before that had short windows.
        assert!(!f[2].is_anomaly && f[2].triggers.is_empty() && f[2].score < 1.0);
        assert!(
            f[0].insufficient_history && f[1].insufficient_history && !f[2].insufficient_history
        );
    }

    #[test]
    fn a_drop_to_zero_after_steady_weeks_is_seen() {
        let s = series(&[10.0, 10.0, 10.0, 10.0, 0.0]);
        let f = detect(&s, &Rules::default());
        let drop = f.last().unwrap();
        assert_eq!(drop.spend.value, 0.0);
        assert_eq!(drop.spend.z, None, "no spread in the window: no z-score");
        let n = names(drop);
        assert!(n.contains(&"spend_drop_to_zero".to_string()));
        assert!(n.contains(&"orders_drop_to_zero".to_string()));
        assert!(drop.is_anomaly);
        // A buyer every other week: a zero week is their normal.
        let sparse = series(&[10.0, 0.0, 10.0, 0.0, 10.0, 0.0]);
        assert!(detect(&sparse, &Rules::default()).iter().all(|f| {
            !f.triggers
                .iter()
                .any(|t| matches!(t, Trigger::DropToZero(_)))
        }));
    }

    #[test]
    fn short_histories_are_flagged_and_not_reported_unless_asked() {
        let s = series(&[10.0, 10.0, 10.0, 90.0]);
        let rules = Rules {
            window: 3,
            min_history: 8,
            ..Rules::default()
        };
        let f = detect(&s, &rules);
        assert_eq!(f.len(), 2);
        let last = f.last().unwrap();
        assert!(last.insufficient_history);
        assert!(!last.triggers.is_empty() && !last.is_anomaly);
        let reported = detect(
            &s,
            &Rules {
                report_insufficient: true,
                ..rules
            },
        );
        assert!(reported.last().unwrap().is_anomaly);
        // The same weeks cut from a longer history are judged.
        assert!(
            !detect_after(&s, 10, &rules)
                .last()
                .unwrap()
                .insufficient_history
        );
    }

    #[test]
    fn a_drop_by_ratio_and_a_low_z() {
        let s = series(&[40.0, 42.0, 38.0, 40.0, 41.0, 39.0, 5.0]);
        let f = detect(&s, &Rules::default());
        let last = f.last().unwrap();
        let n = names(last);
        assert!(n.contains(&"spend_ratio_drop".to_string()), "{n:?}");
        assert!(n.contains(&"spend_z_low".to_string()), "{n:?}");
    }

    #[test]
    fn robust_z_resists_an_outlier_in_the_window() {
        // The window holds an earlier outlier: the z-score's spread is inflated by it and misses
        // the new spike; median and MAD are not.
        let s = series(&[10.0, 11.0, 200.0, 10.0, 9.0, 10.0, 11.0, 10.0, 12.0, 40.0]);
        let rules = Rules {
            window: 8,
            ..Rules::default()
        };
        let last = detect(&s, &rules).pop().unwrap();
        assert!(last.spend.z.unwrap() < 3.0);
        assert!(last.triggers.contains(&Trigger::RobustHigh(Metric::Spend)));
    }

    #[test]
    fn bad_rules_are_errors() {
        assert!(
            Rules {
                window: 1,
                ..Rules::default()
            }
            .check()
            .is_err()
        );
        assert!(
            Rules {
                ratio: 1.0,
                ..Rules::default()
            }
            .check()
            .is_err()
        );
        assert!(
            Rules {
                z: f64::NAN,
                ..Rules::default()
            }
            .check()
            .is_err()
        );
        assert!(Rules::default().check().is_ok());
    }
}
