//! Cohort retention: `cohort_retention()` and its summary. Both read the shop's orders live, so
//! they need a role that may read them (an operator given SELECT on the source); an analyst gets
//! 403.

use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::{Params, json, one_of};
use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;

/// One cohort at one period number.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct CohortCell {
    pub cohort_start: String,
    pub cohort_size: i64,
    pub period_number: i32,
    pub active_customers: i64,
    pub retention: f64,
    pub orders: i64,
    /// Exact, as a decimal.
    pub revenue: f64,
    pub revenue_retention: Option<f64>,
    pub revenue_per_customer: f64,
    /// The cohort's empirical LTV curve.
    pub cumulative_revenue_per_customer: f64,
    pub is_complete: bool,
    pub is_left_censored: bool,
}

/// Mean retention at one period number over complete cells.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct CohortMean {
    pub period_number: i32,
    pub cohorts: i64,
    pub customers: i64,
    pub active_customers: i64,
    pub weighted_retention: f64,
    pub simple_retention: f64,
}

pub const PERIODS: &[&str] = &["day", "week", "month", "quarter"];
pub const TYPES: &[&str] = &["first_time", "recurring"];

#[derive(Deserialize, IntoParams, Default, Clone)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RetentionQuery {
    /// day, week, month (default) or quarter.
    pub period: Option<String>,
    /// Period numbers 0 to this, at most 1000 (default 12).
    pub max_periods: Option<i32>,
    /// The last day of data (YYYY-MM-DD, default today).
    pub as_of: Option<String>,
    /// first_time (default) or recurring.
    pub retention_type: Option<String>,
    /// "On or after": active in the period or a later one of the horizon (default false).
    pub cumulative: Option<bool>,
    /// The day the history is complete from (YYYY-MM-DD): earlier cohorts are left-censored.
    pub data_start: Option<String>,
    /// Summary only: average left-censored cohorts too (default false).
    pub include_censored: Option<bool>,
}

/// The arguments of `cohort_retention()` from a query, checked: `$1` to `$6`.
pub struct Arguments {
    pub period: String,
    pub max_periods: i32,
    pub as_of: Option<String>,
    pub retention_type: String,
    pub cumulative: bool,
    pub data_start: Option<String>,
}

impl RetentionQuery {
    pub fn arguments(&self) -> Result<Arguments, ApiError> {
        let period = one_of("period", self.period.as_deref().unwrap_or("month"), PERIODS)?;
        let kind = one_of(
            "retention_type",
            self.retention_type.as_deref().unwrap_or("first_time"),
            TYPES,
        )?;
        let max_periods = self.max_periods.unwrap_or(12);
        if !(0..=1000).contains(&max_periods) {
            return Err(ApiError::bad_parameter(
                "max_periods",
                format!("must be between 0 and 1000, got {max_periods}"),
            ));
        }
        Ok(Arguments {
            period: period.to_string(),
            max_periods,
            as_of: self.as_of.clone().filter(|s| !s.is_empty()),
            retention_type: kind.to_string(),
            cumulative: self.cumulative.unwrap_or(false),
            data_start: self.data_start.clone().filter(|s| !s.is_empty()),
        })
    }
}

/// The SQL of the cohort table, `$1` to `$6` as [`Arguments`]: the API and the dashboard read
/// the same.
pub fn retention_sql(ext: &str) -> String {
    format!(
        "SELECT * FROM {ext}.cohort_retention($1, $2, $3::text::date, $4, $5, $6::text::date) \
         ORDER BY cohort_start, period_number"
    )
}

/// The SQL of the summary, `$1` to `$6` as [`Arguments`] and `$7` include_censored.
pub fn summary_sql(ext: &str) -> String {
    format!(
        "SELECT * FROM {ext}.cohort_retention_summary($1, $2, $3::text::date, $4, $5, $6::text::date, $7) \
         ORDER BY period_number"
    )
}

/// Retention by acquisition (or recurring) cohort: every started cell, zeros included.
#[utoipa::path(get, path = "/cohorts/retention", tag = "cohorts", params(RetentionQuery),
    responses((status = 200, body = [CohortCell]), (status = 400, body = ApiError), (status = 403, body = ApiError)),
    security(("bearer" = [])))]
pub async fn retention(
    State(s): State<AppState>,
    Caller(role): Caller,
    Params(q): Params<RetentionQuery>,
) -> Result<Response, ApiError> {
    let a = q.arguments()?;
    Ok(json(
        s.db.rows(
            &role,
            &retention_sql(s.db.schema()),
            &[
                &a.period,
                &a.max_periods,
                &a.as_of,
                &a.retention_type,
                &a.cumulative,
                &a.data_start,
            ],
        )
        .await?,
    ))
}

/// Weighted and simple mean retention per period number over complete cells.
#[utoipa::path(get, path = "/cohorts/summary", tag = "cohorts", params(RetentionQuery),
    responses((status = 200, body = [CohortMean]), (status = 400, body = ApiError), (status = 403, body = ApiError)),
    security(("bearer" = [])))]
pub async fn summary(
    State(s): State<AppState>,
    Caller(role): Caller,
    Params(q): Params<RetentionQuery>,
) -> Result<Response, ApiError> {
    let a = q.arguments()?;
    let censored = q.include_censored.unwrap_or(false);
    Ok(json(
        s.db.rows(
            &role,
            &summary_sql(s.db.schema()),
            &[
                &a.period,
                &a.max_periods,
                &a.as_of,
                &a.retention_type,
                &a.cumulative,
                &a.data_start,
                &censored,
            ],
        )
        .await?,
    ))
}
