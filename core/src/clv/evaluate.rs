//! Holdout evaluation: predicted against actual repeat purchases per calibration frequency, the
//! table customer-base papers plot, and error figures over all customers.

use super::{ModelError, Summary, TransactionModel};

/// One calibration-frequency bin: customers with `frequency` repeat purchases (or more, for the
/// last bin), and their summed actual and predicted holdout purchases.
#[derive(Debug, Clone, PartialEq)]
pub struct HoldoutBin {
    pub frequency: u32,
    pub open_ended: bool,
    pub customers: u64,
    pub actual: f64,
    pub predicted: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HoldoutErrors {
    pub customers: u64,
    pub actual: f64,
    pub predicted: f64,
    pub mean_absolute_error: f64,
    pub root_mean_squared_error: f64,
}

/// Bins customers by calibration frequency 0, 1, …, `last_bin` − 1 and `last_bin`+.
pub fn holdout(
    model: &TransactionModel,
    customers: &[(Summary, u32)],
    duration: f64,
    last_bin: u32,
) -> Result<(Vec<HoldoutBin>, HoldoutErrors), ModelError> {
    let mut bins: Vec<HoldoutBin> = (0..=last_bin)
        .map(|f| HoldoutBin {
            frequency: f,
            open_ended: f == last_bin,
            customers: 0,
            actual: 0.0,
            predicted: 0.0,
        })
        .collect();
    let (mut abs, mut sq) = (0.0, 0.0);
    for (i, (row, actual)) in customers.iter().enumerate() {
        // Long horizons make each prediction a long series: a cancel is asked about as it goes.
        if i % 1024 == 0 && crate::stop::requested() {
            return Err(ModelError::Stopped);
        }
        let predicted = model.expected_purchases(row, duration)?;
        let actual = f64::from(*actual);
        let bin = &mut bins[(row.frequency as u32).min(last_bin) as usize];
        bin.customers += 1;
        bin.actual += actual;
        bin.predicted += predicted;
        abs += (predicted - actual).abs();
        sq += (predicted - actual).powi(2);
    }
    let n = customers.len() as f64;
    let errors = HoldoutErrors {
        customers: customers.len() as u64,
        actual: bins.iter().map(|b| b.actual).sum(),
        predicted: bins.iter().map(|b| b.predicted).sum(),
        mean_absolute_error: if n > 0.0 { abs / n } else { f64::NAN },
        root_mean_squared_error: if n > 0.0 { (sq / n).sqrt() } else { f64::NAN },
    };
    Ok((bins, errors))
}
