//! Predictive customer value: the customer-base ("buy till you die") models BG/NBD, MBG/NBD and
//! Pareto/NBD for purchase counts and dropout, and Gamma-Gamma for spend, fitted by maximum
//! likelihood on the per-customer summary (frequency, recency, T).
//!
//! Time is in a unit the caller picks ([`TimeUnit`]); every prediction takes its horizon in that
//! same unit, and the month used for CLV is a fixed number of days, so a weekly model can never be
//! read with a daily horizon by accident.

pub mod bgnbd;
pub mod evaluate;
pub mod fit;
pub mod gamma_gamma;
pub mod optimize;
pub mod pareto_nbd;
pub mod quadrature;
pub mod special;
pub mod summary;
pub mod value;

use special::Hyp2f1Error;

/// One customer's (or, with `weight`, several identical customers') calibration history:
/// x repeat purchase days, t_x from first to last purchase, T from first purchase to the end of
/// calibration, in the model's time unit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub frequency: f64,
    pub recency: f64,
    pub age: f64,
    pub weight: f64,
}

impl Summary {
    pub fn new(frequency: u32, recency: f64, age: f64) -> Summary {
        Summary {
            frequency: f64::from(frequency),
            recency,
            age,
            weight: 1.0,
        }
    }

    /// A brand-new customer: no repeat purchase, observed for no time.
    pub fn new_customer() -> Summary {
        Summary::new(0, 0.0, 0.0)
    }

    /// The established validity rules (lifetimes' `_check_inputs`): 0 ≤ t_x ≤ T, t_x = 0 when
    /// x = 0, and t_x > 0 when x > 0 (repeat purchases are on later days).
    pub fn check(&self) -> Result<(), ModelError> {
        let ok = self.frequency >= 0.0
            && self.frequency.fract() == 0.0
            && self.recency >= 0.0
            && self.age.is_finite()
            && self.recency <= self.age
            && ((self.frequency == 0.0) == (self.recency == 0.0))
            && self.weight > 0.0;
        if ok {
            Ok(())
        } else {
            Err(ModelError::InvalidSummary {
                frequency: self.frequency,
                recency: self.recency,
                age: self.age,
            })
        }
    }
}

/// The unit of every time in a fitted model and its predictions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeUnit {
    Day,
    Week,
}

impl TimeUnit {
    pub fn parse(name: &str) -> Option<TimeUnit> {
        match name {
            "day" | "days" => Some(TimeUnit::Day),
            "week" | "weeks" => Some(TimeUnit::Week),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            TimeUnit::Day => "day",
            TimeUnit::Week => "week",
        }
    }

    pub fn days(self) -> f64 {
        match self {
            TimeUnit::Day => 1.0,
            TimeUnit::Week => 7.0,
        }
    }

    /// A month is 365.25 / 12 days, in this unit.
    pub fn per_month(self) -> f64 {
        DAYS_PER_MONTH / self.days()
    }

    /// `amount` of `from` expressed in this unit.
    pub fn convert(self, amount: f64, from: TimeUnit) -> f64 {
        amount * from.days() / self.days()
    }
}

pub const DAYS_PER_MONTH: f64 = 365.25 / 12.0;

/// The models this crate fits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelKind {
    BgNbd,
    MbgNbd,
    ParetoNbd,
    GammaGamma,
}

impl ModelKind {
    pub const ALL: [ModelKind; 4] = [
        ModelKind::BgNbd,
        ModelKind::MbgNbd,
        ModelKind::ParetoNbd,
        ModelKind::GammaGamma,
    ];

    pub fn parse(name: &str) -> Option<ModelKind> {
        ModelKind::ALL.into_iter().find(|k| k.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            ModelKind::BgNbd => "bgnbd",
            ModelKind::MbgNbd => "mbgnbd",
            ModelKind::ParetoNbd => "pareto_nbd",
            ModelKind::GammaGamma => "gamma_gamma",
        }
    }

    pub fn param_names(self) -> &'static [&'static str] {
        match self {
            ModelKind::BgNbd | ModelKind::MbgNbd => &["r", "alpha", "a", "b"],
            ModelKind::ParetoNbd => &["r", "alpha", "s", "beta"],
            ModelKind::GammaGamma => &["p", "q", "v"],
        }
    }

    /// Whether the model predicts purchases (all but Gamma-Gamma, which predicts spend).
    pub fn is_transaction_model(self) -> bool {
        self != ModelKind::GammaGamma
    }

    /// A stored model's parameters, in [`ModelKind::param_names`] order, when there is one for
    /// each name and each is a finite positive number (every parameter of these models is);
    /// None for a row edited by hand or damaged.
    pub fn stored_params(self, stored: &[Option<f64>]) -> Option<Vec<f64>> {
        if stored.len() != self.param_names().len() {
            return None;
        }
        stored
            .iter()
            .map(|p| p.filter(|v| v.is_finite() && *v > 0.0))
            .collect()
    }
}

#[cfg(test)]
mod stored_params_tests {
    use super::ModelKind;

    #[test]
    fn stored_parameters_are_checked() {
        let k = ModelKind::GammaGamma;
        assert_eq!(
            k.stored_params(&[Some(1.0), Some(2.0), Some(3.0)]),
            Some(vec![1.0, 2.0, 3.0])
        );
        assert_eq!(k.stored_params(&[Some(1.0), Some(2.0)]), None);
        assert_eq!(k.stored_params(&[Some(1.0), None, Some(3.0)]), None);
        assert_eq!(k.stored_params(&[Some(1.0), Some(0.0), Some(3.0)]), None);
        assert_eq!(
            k.stored_params(&[Some(f64::NAN), Some(2.0), Some(3.0)]),
            None
        );
        assert_eq!(ModelKind::BgNbd.stored_params(&[Some(1.0); 3]), None);
    }
}

/// Why a fit or a prediction has no answer.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelError {
    NoCustomers,
    NoRepeatPurchases,
    NoRepeatCustomers,
    InvalidSummary {
        frequency: f64,
        recency: f64,
        age: f64,
    },
    InvalidSpend {
        frequency: f64,
        mean_spend: f64,
    },
    BadArgument(String),
    NotConverged {
        gradient_norm: f64,
        iterations: usize,
    },
    /// The fit spent its budget (time limit in seconds, if any; objective evaluations used).
    OverBudget {
        seconds: Option<f64>,
        evaluations: usize,
    },
    Degenerate {
        parameter: &'static str,
        value: f64,
    },
    NotAMaximum,
    Numerical(Hyp2f1Error),
    SpendUndefined {
        q: f64,
    },
    NotAvailable {
        what: &'static str,
        model: &'static str,
    },
    /// A stop was requested (`crate::stop`) before the work was done.
    Stopped,
}

impl From<Hyp2f1Error> for ModelError {
    fn from(e: Hyp2f1Error) -> Self {
        ModelError::Numerical(e)
    }
}

impl std::fmt::Display for ModelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ModelError::NoCustomers => write!(f, "no customers to fit on"),
            ModelError::NoRepeatPurchases => write!(
                f,
                "no customer has a repeat purchase, so the data say nothing about purchase rates"
            ),
            ModelError::NoRepeatCustomers => {
                write!(
                    f,
                    "no customer with a repeat purchase and a positive mean spend"
                )
            }
            ModelError::InvalidSummary {
                frequency,
                recency,
                age,
            } => write!(
                f,
                "invalid customer summary (frequency {frequency}, recency {recency}, T {age}): \
                 need a whole frequency >= 0, 0 <= recency <= T, and recency 0 exactly when frequency is 0"
            ),
            ModelError::InvalidSpend {
                frequency,
                mean_spend,
            } => write!(
                f,
                "invalid spend row (frequency {frequency}, mean spend {mean_spend}): need frequency >= 1 and a mean spend > 0"
            ),
            ModelError::BadArgument(message) => f.write_str(message),
            ModelError::NotConverged {
                gradient_norm,
                iterations,
            } => write!(
                f,
                "the maximum-likelihood fit did not converge (largest gradient component {gradient_norm:.3e} after {iterations} iterations)"
            ),
            // The evaluations used depend on the machine's speed when the time ran out: the
            // message names the limits only, so that it is the same everywhere.
            ModelError::OverBudget {
                seconds,
                evaluations: _,
            } => {
                write!(
                    f,
                    "the maximum-likelihood fit did not converge within its budget ("
                )?;
                if let Some(s) = seconds {
                    write!(f, "{s} s, ")?;
                }
                write!(
                    f,
                    "at most {} likelihood evaluations): the data may not fit the model",
                    optimize::MAX_EVALUATIONS
                )
            }
            ModelError::Degenerate { parameter, value } => {
                let limit = if value.is_infinite() {
                    "infinity".to_string()
                } else if *value == 0.0 {
                    "0".to_string()
                } else {
                    format!("{value:.0e}")
                };
                write!(
                    f,
                    "the fit runs off toward a degenerate limit ({parameter} -> {limit}): the data do not identify the model"
                )
            }
            ModelError::NotAMaximum => write!(
                f,
                "the fit stopped where the likelihood is not a maximum (its Hessian is not negative definite)"
            ),
            ModelError::Numerical(e) => write!(f, "{e}"),
            ModelError::SpendUndefined { q } => write!(
                f,
                "the Gamma-Gamma model has q = {q:.4} <= 1, so its population mean spend is infinite and expected spend is undefined"
            ),
            ModelError::NotAvailable { what, model } => {
                write!(f, "{what} is not available for the {model} model")
            }
            ModelError::Stopped => f.write_str("stopped on request"),
        }
    }
}

impl std::error::Error for ModelError {}

/// A fitted purchase model (BG/NBD, MBG/NBD or Pareto/NBD) with its parameters in `unit`.
#[derive(Debug, Clone, PartialEq)]
pub struct TransactionModel {
    pub kind: ModelKind,
    pub params: [f64; 4],
    pub unit: TimeUnit,
}

impl TransactionModel {
    pub fn new(kind: ModelKind, params: &[f64], unit: TimeUnit) -> Result<Self, ModelError> {
        if !kind.is_transaction_model() {
            return Err(ModelError::BadArgument(format!(
                "{} is a spend model, not a purchase model",
                kind.name()
            )));
        }
        let params: [f64; 4] = params
            .try_into()
            .map_err(|_| ModelError::BadArgument(format!("{} has 4 parameters", kind.name())))?;
        if params.iter().any(|p| !(p.is_finite() && *p > 0.0)) {
            return Err(ModelError::BadArgument(format!(
                "{} parameters must be positive and finite, got {params:?}",
                kind.name()
            )));
        }
        Ok(TransactionModel { kind, params, unit })
    }

    fn family(&self) -> Option<bgnbd::BetaGeometric> {
        match self.kind {
            ModelKind::BgNbd => Some(bgnbd::BetaGeometric { modified: false }),
            ModelKind::MbgNbd => Some(bgnbd::BetaGeometric { modified: true }),
            _ => None,
        }
    }

    pub fn probability_alive(&self, row: &Summary) -> Result<f64, ModelError> {
        row.check()?;
        match self.family() {
            Some(f) => Ok(f.probability_alive(&self.params, row)),
            None => pareto_nbd::probability_alive(&self.params, row),
        }
    }

    /// Expected repeat purchases in the next `t` units after the history.
    pub fn expected_purchases(&self, row: &Summary, t: f64) -> Result<f64, ModelError> {
        row.check()?;
        check_horizon(t)?;
        match self.family() {
            Some(f) => f.expected_purchases(&self.params, row, t),
            None => pareto_nbd::expected_purchases(&self.params, row, t),
        }
    }

    /// Expected repeat purchases in the next `t` units for each t of `ts`, sharing work between
    /// them where the model allows.
    pub fn expected_purchases_many(
        &self,
        row: &Summary,
        ts: &[f64],
    ) -> Result<Vec<f64>, ModelError> {
        row.check()?;
        for &t in ts {
            check_horizon(t)?;
        }
        match self.family() {
            Some(f) => f.expected_purchases_many(&self.params, row, ts),
            None => ts
                .iter()
                .map(|&t| pareto_nbd::expected_purchases(&self.params, row, t))
                .collect(),
        }
    }

    /// Expected repeat purchases of a customer acquired now, over `t` units.
    pub fn expected_purchases_new(&self, t: f64) -> Result<f64, ModelError> {
        check_horizon(t)?;
        match self.family() {
            Some(f) => f.expected_purchases_new(&self.params, t),
            None => Ok(pareto_nbd::expected_purchases_new(&self.params, t)),
        }
    }

    /// P(exactly n repeat purchases in the next `t` units | history).
    pub fn probability_of_purchases(
        &self,
        row: &Summary,
        n: u32,
        t: f64,
    ) -> Result<f64, ModelError> {
        row.check()?;
        check_horizon(t)?;
        match self.family() {
            Some(f) => Ok(f.probability_of_purchases(&self.params, row, n, t)),
            None => pareto_nbd::probability_of_purchases(&self.params, row, n, t),
        }
    }
}

fn check_horizon(t: f64) -> Result<(), ModelError> {
    if t.is_finite() && t >= 0.0 {
        Ok(())
    } else {
        Err(ModelError::BadArgument(format!(
            "the horizon must be a finite number >= 0, got {t}"
        )))
    }
}

/// A fitted Gamma-Gamma spend model.
#[derive(Debug, Clone, PartialEq)]
pub struct SpendModel {
    pub params: [f64; 3],
}

impl SpendModel {
    /// E[M | x, m̄]; `mean_spend` is ignored when `frequency` is 0 (the population mean).
    pub fn expected_spend(&self, frequency: f64, mean_spend: f64) -> Result<f64, ModelError> {
        gamma_gamma::expected_spend(&self.params, frequency, mean_spend)
    }
}

#[cfg(test)]
mod tests;
