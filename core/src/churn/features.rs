//! Labels, eligibility and features at a snapshot day D. Every feature is computed from
//! [`History::upto`]`(D)`, a slice that ends at D, so no feature can see an order after D; the
//! labels are the only values that look past D. Windows are half-open, (D - w, D], as in the
//! snapshot features of the segmentation.

use super::history::{History, View};
use super::{Settings, Target};
use crate::clv::Summary;

pub const N_FEATURES: usize = 17;

/// Feature names, in column order.
pub const FEATURES: [&str; N_FEATURES] = [
    "recency_days",
    "frequency_90d",
    "frequency_180d",
    "monetary_90d",
    "monetary_180d",
    "aov_180d",
    "orders_lifetime",
    "revenue_lifetime",
    "tenure_days",
    "ipt_mean_days",
    "ipt_std_days",
    "recency_to_ipt",
    "spend_trend",
    "single_purchase_day",
    "categories_180d",
    "p_alive",
    "expected_purchases",
];

/// Which features a model sees through log1p: the counts, amounts and durations, whose tails
/// would otherwise dominate a linear model.
pub const LOG1P: [bool; N_FEATURES] = [
    true, true, true, true, true, true, true, true, true, true, true, true, false, false, true,
    false, true,
];

pub const CATEGORIES: usize = 14;
pub const P_ALIVE: usize = 15;
pub const EXPECTED_PURCHASES: usize = 16;

/// The BG/NBD values for a customer at D, from a model fitted on the data up to D.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Btyd {
    pub p_alive: f64,
    pub expected_purchases: f64,
}

/// Eligible at D: the first order at least `min_tenure_days` before D, and an order in
/// (D - active_days, D].
pub fn eligible(history: &History, day: i32, settings: &Settings) -> bool {
    let Some(first) = history.first_day() else {
        return false;
    };
    first <= day - settings.min_tenure_days && history.any_between(day - settings.active_days, day)
}

/// The label at D, from the orders in (D, D + label_days].
pub fn label(history: &History, day: i32, settings: &Settings) -> bool {
    let bought = history.any_between(day, day + settings.label_days);
    match settings.target {
        Target::Churn => !bought,
        Target::Purchase => bought,
    }
}

/// The BG/NBD summary at D in units of `unit_days`: repeat purchase days, first to last purchase,
/// first purchase to D. `None` before the first purchase.
pub fn btyd_summary(view: &View<'_>, unit_days: f64) -> Option<Summary> {
    let days = view.purchase_days();
    let first = *days.first()?;
    let last = *days.last()?;
    Some(Summary::new(
        (days.len() - 1) as u32,
        (last - first) as f64 / unit_days,
        (view.day - first) as f64 / unit_days,
    ))
}

/// The features at D, from the orders up to D. `None` when there is no order by D. Without
/// categories or a BG/NBD model their columns are 0 and left out of the model.
pub fn features_at(view: &View<'_>, btyd: Option<Btyd>) -> Option<[f64; N_FEATURES]> {
    let first = *view.days.first()?;
    let last = *view.days.last()?;
    let d = view.day;
    let (f90, m90) = view.window(90);
    let (f180, m180) = view.window(180);
    let purchase_days = view.purchase_days();
    let tenure = (d - first) as f64;
    let recency = (d - last) as f64;
    let gaps: Vec<f64> = purchase_days
        .windows(2)
        .map(|w| (w[1] - w[0]) as f64)
        .collect();
    // One purchase day has no gap yet: the time since it is the gap so far.
    let ipt_mean = if gaps.is_empty() {
        tenure
    } else {
        gaps.iter().sum::<f64>() / gaps.len() as f64
    };
    let ipt_std = if gaps.len() < 2 {
        0.0
    } else {
        let var =
            gaps.iter().map(|g| (g - ipt_mean).powi(2)).sum::<f64>() / (gaps.len() - 1) as f64;
        var.sqrt()
    };
    let earlier = view.spend_between(90, 180);
    let btyd = btyd.unwrap_or(Btyd {
        p_alive: 0.0,
        expected_purchases: 0.0,
    });
    Some([
        recency,
        f90 as f64,
        f180 as f64,
        m90,
        m180,
        if f180 > 0 { m180 / f180 as f64 } else { 0.0 },
        view.days.len() as f64,
        view.amounts.iter().sum(),
        tenure,
        ipt_mean,
        ipt_std,
        recency / ipt_mean.max(1.0),
        ((1.0 + m90.max(0.0)) / (1.0 + earlier.max(0.0))).ln(),
        if gaps.is_empty() { 1.0 } else { 0.0 },
        view.categories_in(180) as f64,
        btyd.p_alive,
        btyd.expected_purchases,
    ])
}
