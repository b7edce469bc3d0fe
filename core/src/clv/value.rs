//! Customer lifetime value from a purchase model and a spend model: the expected purchases of each
//! future month, times the expected spend, discounted monthly (the formula of lifetimes and
//! pymc-marketing, with the month a fixed 365.25 / 12 days in the model's own unit).

use super::{ModelError, SpendModel, Summary, TransactionModel};

/// Σ_{i=1..months} spend · (E[Y(i·m)] − E[Y((i−1)·m)]) / (1 + d)^i, m = one month in the model's
/// unit. With `expected_spend` from Gamma-Gamma this is the standard CLV.
pub fn customer_value(
    model: &TransactionModel,
    row: &Summary,
    expected_spend: f64,
    months: u32,
    monthly_discount: f64,
) -> Result<f64, ModelError> {
    if !(monthly_discount.is_finite() && monthly_discount > -1.0) {
        return Err(ModelError::BadArgument(format!(
            "the monthly discount rate must be a finite number > -1, got {monthly_discount}"
        )));
    }
    let cumulative = model.expected_purchases_many(row, &month_ends(model, months))?;
    Ok(discounted(&cumulative, expected_spend, monthly_discount))
}

/// The ends of the next `months` months, in the model's unit.
pub fn month_ends(model: &TransactionModel, months: u32) -> Vec<f64> {
    let month = model.unit.per_month();
    (1..=months).map(|i| f64::from(i) * month).collect()
}

/// The discounted value of cumulative expected purchases at the ends of successive months.
pub fn discounted(cumulative: &[f64], expected_spend: f64, monthly_discount: f64) -> f64 {
    let mut previous = 0.0;
    let mut value = 0.0;
    let mut discount = 1.0;
    for &c in cumulative {
        discount /= 1.0 + monthly_discount;
        value += expected_spend * (c - previous) * discount;
        previous = c;
    }
    value
}

/// The spend to multiply by: Gamma-Gamma's conditional expectation for the customer.
pub fn expected_spend(
    spend: &SpendModel,
    frequency: u32,
    monetary_value: Option<f64>,
) -> Result<f64, ModelError> {
    spend.expected_spend(f64::from(frequency), monetary_value.unwrap_or(0.0))
}
