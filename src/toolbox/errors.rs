//! Errors and notices with a fitting SQLSTATE, a message naming the culprit, and a hint; the
//! checks of arguments that every capability makes the same way.

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::{PgLogLevel, PgSqlErrorCode};

pub use PgSqlErrorCode::*;

/// Raises an ERROR. Never returns: PostgreSQL unwinds the transaction.
pub fn raise(code: PgSqlErrorCode, message: impl Into<String>, hint: Option<String>) -> ! {
    let mut report = ErrorReport::new(code, message.into(), "cda_analytics");
    if let Some(hint) = hint {
        report = report.set_hint(hint);
    }
    report.report(PgLogLevel::ERROR);
    unreachable!("ERROR does not return")
}

/// Sends a NOTICE with an optional detail.
pub fn notice(message: impl Into<String>, detail: Option<String>) {
    let mut report = ErrorReport::new(
        ERRCODE_SUCCESSFUL_COMPLETION,
        message.into(),
        "cda_analytics",
    );
    if let Some(detail) = detail {
        report = report.set_detail(detail);
    }
    report.report(PgLogLevel::NOTICE);
}

/// Turns an SPI failure into an internal error that says what we were doing.
pub trait OrRaise<T> {
    fn or_raise(self, doing: &str) -> T;
}

impl<T> OrRaise<T> for Result<T, pgrx::spi::SpiError> {
    fn or_raise(self, doing: &str) -> T {
        match self {
            Ok(v) => v,
            Err(e) => raise(
                ERRCODE_INTERNAL_ERROR,
                format!("cda_analytics: {doing}: {e}"),
                None,
            ),
        }
    }
}

/// The name a model is stored under (clusters, CLV and churn models) must not be empty or blank.
pub fn require_model_name(model_name: &str) {
    if model_name.trim().is_empty() {
        raise(
            ERRCODE_INVALID_PARAMETER_VALUE,
            "model_name must not be empty",
            None,
        );
    }
}

/// For a core computation that stopped early because a cancel was pending: PostgreSQL's own
/// cancel (or terminate) is raised, and should the flag be gone by now, 57014 all the same, so
/// that a result cut short is never returned.
pub fn raise_cancelled() -> ! {
    pgrx::check_for_interrupts!();
    raise(
        ERRCODE_QUERY_CANCELED,
        "canceling statement due to user request",
        None,
    )
}

/// Where `what`'s time went, phase by phase, at DEBUG1 (`SET client_min_messages = debug1`).
pub fn debug_phases(what: &str, phases: &cda_analytics_core::phases::Phases) {
    pgrx::debug1!("{what}: {}", phases.summary());
}

/// The value of the argument `name` of a function that has other arguments that may be NULL:
/// this one may not (22004 otherwise, naming it). Functions whose every argument is required are
/// STRICT instead, and return NULL for a NULL argument.
pub fn required<T>(value: Option<T>, name: &str) -> T {
    match value {
        Some(v) => v,
        None => raise(
            ERRCODE_NULL_VALUE_NOT_ALLOWED,
            format!("{name} must not be NULL"),
            None,
        ),
    }
}
