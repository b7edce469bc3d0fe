//! Errors and notices with a fitting SQLSTATE, a message naming the culprit, and a hint.

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
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

/// Quotes an identifier for the SQL we generate. Always quoting is always correct (keywords,
/// capitals, spaces), where quoting only when needed would have to know every keyword.
pub fn quote_ident(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// `schema.table` with both parts quoted.
pub fn qualified(schema: &str, name: &str) -> String {
    format!("{}.{}", quote_ident(schema), quote_ident(name))
}

/// The schema this extension was created in, quoted, for schema-qualified SQL.
pub fn ext_schema() -> String {
    crate::catalog_cache::ext_schema(lookup_ext_schema)
}

fn lookup_ext_schema() -> String {
    let name: Option<String> = Spi::connect(|c| {
        let t = c.select(
            "SELECT n.nspname::text FROM pg_catalog.pg_extension e \
             JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'cda_analytics'",
            None,
            &[],
        )?;
        t.first().get::<String>(1)
    })
    .or_raise("looking up the extension schema");
    match name {
        Some(n) => quote_ident(&n),
        None => raise(
            ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            "extension cda_analytics is not installed in this database",
            None,
        ),
    }
}

/// The name a model is stored under (CLV and churn models) must not be empty.
pub fn require_model_name(model_name: &str) {
    if model_name.is_empty() {
        raise(
            ERRCODE_INVALID_PARAMETER_VALUE,
            "model_name must not be empty",
            None,
        );
    }
}
