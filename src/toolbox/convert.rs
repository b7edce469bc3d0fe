//! Conversions between the core's values and PostgreSQL's: day numbers and dates, timestamps'
//! microseconds and days, amounts in minor units and numerics.

use cda_analytics_core::calendar::Day;
use cda_analytics_core::money::format_minor;
use pgrx::datum::Date;
use pgrx::prelude::*;

use super::errors::*;

const MICROS_PER_DAY: i64 = 86_400_000_000;

/// The date of a day number (days since 2000-01-01, PostgreSQL's own epoch).
pub fn date_of(day: Day) -> Date {
    Date::saturating_from_raw(day.0)
}

/// The day number of the date given as `argument`, which must be finite.
pub fn day_of_date(date: Date, argument: &str) -> Day {
    if !date.is_finite() {
        raise(
            ERRCODE_INVALID_PARAMETER_VALUE,
            format!("{argument} must be a finite date"),
            None,
        );
    }
    Day(date.to_pg_epoch_days())
}

/// The day of a timestamp given as microseconds since 2000-01-01 (a `timestamp`, or a
/// `timestamptz` read in UTC); infinite timestamps have no day.
#[inline(always)]
pub fn day_of_micros(micros: Option<i64>) -> Option<Day> {
    match micros? {
        i64::MIN | i64::MAX => None,
        m => i32::try_from(m.div_euclid(MICROS_PER_DAY)).ok().map(Day),
    }
}

/// A numeric from its text, as the core formats amounts and averages.
pub fn numeric(text: &str) -> AnyNumeric {
    match AnyNumeric::try_from(text) {
        Ok(n) => n,
        Err(e) => raise(ERRCODE_INTERNAL_ERROR, format!("numeric {text}: {e}"), None),
    }
}

/// The numeric of `minor` units at `scale` decimal places.
pub fn minor_numeric(minor: i128, scale: u32) -> AnyNumeric {
    numeric(&format_minor(minor, scale))
}
