//! The labelled rows: weekly snapshot days, a time-based split into training and validation
//! snapshots with a gap so that no training label looks into the validation period, eligibility,
//! labels, features, and a BG/NBD model refitted at every snapshot day on the data up to it.

use rayon::prelude::*;

use super::features::{Btyd, N_FEATURES, btyd_summary, eligible, features_at, label};
use super::history::History;
use super::{ChurnError, Settings};
use crate::clv::fit::fit_transactions;
use crate::clv::{ModelError, ModelKind, Summary, TimeUnit, TransactionModel};

/// Snapshot days of each split, ascending.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshots {
    pub training: Vec<i32>,
    pub validation: Vec<i32>,
}

/// `weeks` weekly snapshot days ending at `as_of - label_days` (the last day whose label is
/// complete by `as_of`). The last `validation_weeks` of them validate. A training snapshot's label
/// must end by the first validation day, so the snapshots in between are left out.
pub fn plan(
    as_of: i32,
    weeks: i32,
    validation_weeks: i32,
    label_days: i32,
) -> Result<Snapshots, ChurnError> {
    if !(2..=520).contains(&weeks) {
        return Err(ChurnError::BadArgument(format!(
            "snapshot_weeks must be between 2 and 520, got {weeks}"
        )));
    }
    if !(1..weeks).contains(&validation_weeks) {
        return Err(ChurnError::BadArgument(format!(
            "validation_weeks must be between 1 and snapshot_weeks - 1 ({}), got {validation_weeks}",
            weeks - 1
        )));
    }
    let last = as_of - label_days;
    let days: Vec<i32> = (0..weeks).rev().map(|k| last - 7 * k).collect();
    let split = (weeks - validation_weeks) as usize;
    let validation = days[split..].to_vec();
    let training: Vec<i32> = days[..split]
        .iter()
        .copied()
        .filter(|&d| d + label_days <= validation[0])
        .collect();
    if training.is_empty() {
        return Err(ChurnError::BadArgument(format!(
            "no training snapshot is left: a training label needs {label_days} days before the first of the {validation_weeks} validation weeks, so snapshot_weeks must be at least {}",
            validation_weeks + (label_days + 6) / 7 + 1
        )));
    }
    Ok(Snapshots {
        training,
        validation,
    })
}

/// How a BG/NBD-family model is refitted at each snapshot.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BtydSpec {
    pub kind: ModelKind,
    pub unit: TimeUnit,
    pub penalizer: f64,
}

impl Default for BtydSpec {
    fn default() -> Self {
        BtydSpec {
            kind: ModelKind::BgNbd,
            unit: TimeUnit::Week,
            penalizer: 0.0,
        }
    }
}

/// The purchase model fitted on every customer's summary at `day` (customers whose first order is
/// on or before it), so its parameters see nothing after `day` either.
pub fn fit_btyd(
    histories: &[History],
    day: i32,
    spec: BtydSpec,
) -> Result<TransactionModel, ModelError> {
    let unit = spec.unit.days();
    let rows: Vec<Summary> = histories
        .par_iter()
        .filter_map(|h| btyd_summary(&h.upto(day), unit))
        .collect();
    let report = fit_transactions(spec.kind, &rows, spec.penalizer)?;
    TransactionModel::new(spec.kind, &report.params, spec.unit)
}

/// A customer's BG/NBD values at the view's day over the label window.
pub fn btyd_at(
    model: &TransactionModel,
    history: &History,
    day: i32,
    label_days: i32,
) -> Option<Btyd> {
    let row = btyd_summary(&history.upto(day), model.unit.days())?;
    let p_alive = model.probability_alive(&row).ok()?;
    let expected = model
        .expected_purchases(&row, label_days as f64 / model.unit.days())
        .ok()?;
    Some(Btyd {
        p_alive,
        expected_purchases: expected,
    })
}

/// Labelled rows, one per (customer, snapshot day).
#[derive(Debug, Clone, Default)]
pub struct Rows {
    pub user: Vec<i64>,
    pub day: Vec<i32>,
    pub label: Vec<bool>,
    pub x: Vec<[f64; N_FEATURES]>,
}

impl Rows {
    pub fn len(&self) -> usize {
        self.label.len()
    }

    pub fn is_empty(&self) -> bool {
        self.label.is_empty()
    }

    pub fn positives(&self) -> usize {
        self.label.iter().filter(|&&l| l).count()
    }

    fn extend(&mut self, other: Rows) {
        self.user.extend(other.user);
        self.day.extend(other.day);
        self.label.extend(other.label);
        self.x.extend(other.x);
    }
}

/// Eligible (customer, day) pairs over `days`.
pub fn count_eligible(histories: &[History], days: &[i32], settings: &Settings) -> usize {
    // A chunk at a time, so that a requested stop (`crate::stop`) skips the rest: the caller
    // asks again after the count and gives up.
    histories
        .par_chunks(4096)
        .map(|chunk| {
            if crate::stop::requested() {
                return 0;
            }
            chunk
                .iter()
                .map(|h| days.iter().filter(|&&d| eligible(h, d, settings)).count())
                .sum::<usize>()
        })
        .sum()
}

/// splitmix64: a fixed, well-mixed hash, so a sample is the same on every run and thread count.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Whether the row (user, day) is in a sample of `rate`, fixed by `seed`.
pub fn sampled(user: i64, day: i32, seed: u64, rate: f64) -> bool {
    if rate >= 1.0 {
        return true;
    }
    let h = mix(mix(user as u64 ^ seed) ^ (day as u32 as u64));
    ((h >> 11) as f64 / (1u64 << 53) as f64) < rate
}

/// The eligible rows at `days`, each kept with probability `rate`, with the BG/NBD values from
/// `models[i]` (fitted at `days[i]`) when given.
pub fn build(
    ids: &[i64],
    histories: &[History],
    days: &[i32],
    models: Option<&[TransactionModel]>,
    settings: &Settings,
    rate: f64,
    seed: u64,
) -> Rows {
    const CHUNK: usize = 4096;
    let parts: Vec<Rows> = ids
        .par_chunks(CHUNK)
        .zip(histories.par_chunks(CHUNK))
        .map(|(ids, histories)| {
            let mut rows = Rows::default();
            // A requested stop leaves the remaining chunks empty; the caller gives up after.
            if crate::stop::requested() {
                return rows;
            }
            for (&id, h) in ids.iter().zip(histories) {
                for (i, &d) in days.iter().enumerate() {
                    if !eligible(h, d, settings) || !sampled(id, d, seed, rate) {
                        continue;
                    }
                    let btyd = models.and_then(|m| btyd_at(&m[i], h, d, settings.label_days));
                    let Some(x) = features_at(&h.upto(d), btyd) else {
                        continue;
                    };
                    rows.user.push(id);
                    rows.day.push(d);
                    rows.label.push(label(h, d, settings));
                    rows.x.push(x);
                }
            }
            rows
        })
        .collect();
    let mut out = Rows::default();
    for p in parts {
        out.extend(p);
    }
    out
}
