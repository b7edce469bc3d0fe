//! Churn and purchase prediction on rolling weekly snapshots: each customer's order history
//! ([`history`]), labels and features at a snapshot day D computed from the orders up to D only
//! ([`features`]), the time-split data set with BG/NBD refitted at every snapshot ([`dataset`]),
//! classifiers trained with linfa and explained by their own contributions ([`model`]), and the
//! evaluation metrics ([`metrics`]).

pub mod dataset;
pub mod features;
pub mod history;
pub mod logistic;
pub mod metrics;
pub mod model;
pub mod pipeline;
pub mod stored;
#[cfg(test)]
mod tests;

use std::fmt;

/// What is predicted at a snapshot day D.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// No successful order in (D, D + label days].
    Churn,
    /// At least one successful order in (D, D + label days].
    Purchase,
}

impl Target {
    pub fn parse(name: &str) -> Option<Target> {
        match name {
            "churn" => Some(Target::Churn),
            "purchase" => Some(Target::Purchase),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Target::Churn => "churn",
            Target::Purchase => "purchase",
        }
    }

    /// The label window's default length in days.
    pub fn default_label_days(self) -> i32 {
        match self {
            Target::Churn => 60,
            Target::Purchase => 30,
        }
    }
}

/// The label and eligibility rules.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    pub target: Target,
    pub label_days: i32,
    /// Eligible at D: the first order at least this many days before D ...
    pub min_tenure_days: i32,
    /// ... and an order in the last this many days, (D - active_days, D].
    pub active_days: i32,
}

impl Settings {
    pub fn new(target: Target) -> Settings {
        Settings {
            target,
            label_days: target.default_label_days(),
            min_tenure_days: 30,
            active_days: 180,
        }
    }

    pub fn check(&self) -> Result<(), ChurnError> {
        if !(1..=3660).contains(&self.label_days) {
            return Err(ChurnError::BadArgument(format!(
                "label_days must be between 1 and 3660, got {}",
                self.label_days
            )));
        }
        if !(0..=36600).contains(&self.min_tenure_days) {
            return Err(ChurnError::BadArgument(format!(
                "min_tenure_days must be between 0 and 36600, got {}",
                self.min_tenure_days
            )));
        }
        if !(1..=36600).contains(&self.active_days) {
            return Err(ChurnError::BadArgument(format!(
                "active_days must be between 1 and 36600, got {}",
                self.active_days
            )));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ChurnError {
    BadArgument(String),
    /// No customer is eligible at any snapshot of the named split.
    NoEligible {
        split: &'static str,
    },
    /// Every labelled row of the split has the same label.
    SingleClass {
        split: &'static str,
        rows: usize,
        positives: usize,
    },
    /// The classifier could not be fitted.
    Fit(String),
    /// The rows to keep (both splits) would take more memory than allowed: `max_rows` a split
    /// would fit.
    TooMuchMemory {
        rows: usize,
        needed: usize,
        limit: usize,
        max_rows: usize,
    },
}

impl fmt::Display for ChurnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChurnError::BadArgument(m) => f.write_str(m),
            ChurnError::NoEligible { split } => {
                write!(f, "no customer is eligible at any {split} snapshot")
            }
            ChurnError::SingleClass {
                split,
                rows,
                positives,
            } => write!(
                f,
                "the {split} snapshots have a single class: {positives} of {rows} rows are positive"
            ),
            ChurnError::Fit(m) => write!(f, "the classifier could not be fitted: {m}"),
            ChurnError::TooMuchMemory {
                rows,
                needed,
                limit,
                max_rows,
            } => write!(
                f,
                "training on {rows} rows would take about {} MB, more than the {} MB allowed; at most {max_rows} rows a split fit",
                needed.div_ceil(1 << 20),
                limit >> 20
            ),
        }
    }
}

impl std::error::Error for ChurnError {}

/// The error when a stop is requested (`crate::stop`): training gives up between its phases,
/// classifiers and Newton steps, and the caller raises the cancel itself.
pub(crate) fn stop_if_requested() -> Result<(), ChurnError> {
    match crate::stop::requested() {
        true => Err(ChurnError::Fit("stopped".into())),
        false => Ok(()),
    }
}
