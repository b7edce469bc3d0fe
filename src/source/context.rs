//! What every function that reads the source starts from: the extension's schema, the stored
//! configuration, the source checked against the catalog, and the as-of day.

use pgrx::prelude::*;

use cda_analytics_core::calendar::Day;

use super::{Config, Source, ext_schema, validate};
use crate::toolbox::convert::day_of_date;
use crate::toolbox::errors::*;

pub struct Context {
    pub ext: String,
    pub config: Config,
    pub source: Source,
    pub as_of: Day,
    /// Whether the caller gave the as-of date: orders after it are then expected (a snapshot of
    /// the past), where orders after today are suspect.
    pub explicit_as_of: bool,
}

impl Context {
    pub fn load(as_of: Option<pgrx::datum::Date>) -> Context {
        let ext = ext_schema();
        let config = Config::load(&ext);
        let source = validate(&config);
        let explicit_as_of = as_of.is_some();
        let as_of = as_of_day(as_of, &config.time_zone);
        Context {
            ext,
            config,
            source,
            as_of,
            explicit_as_of,
        }
    }
}

/// The as-of day: the given date, or today in the configured time zone.
pub fn as_of_day(as_of: Option<pgrx::datum::Date>, time_zone: &str) -> Day {
    if let Some(d) = as_of {
        return day_of_date(d, "as_of");
    }
    let today = Spi::connect(|c| {
        c.select(
            "SELECT ((pg_catalog.now() AT TIME ZONE $1)::pg_catalog.date - DATE '2000-01-01')",
            None,
            &[time_zone.into()],
        )?
        .first()
        .get::<i32>(1)
    })
    .or_raise("reading today's date");
    Day(today.unwrap_or_default())
}
