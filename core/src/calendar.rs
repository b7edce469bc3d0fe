//! Calendar days as PostgreSQL counts them, and calendar-month arithmetic.
//!
//! A [`Day`] is the number of days since 2000-01-01, the same integer PostgreSQL stores in a
//! `date`, so values cross the SQL boundary without conversion.

use chrono::{Datelike, Months, NaiveDate};

/// Days since 2000-01-01 (PostgreSQL's date epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Day(pub i32);

fn pg_epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(2000, 1, 1).expect("2000-01-01 is a valid date")
}

impl Day {
    /// The day for a calendar date, or `None` for an impossible date.
    pub fn from_ymd(year: i32, month: u32, day: u32) -> Option<Day> {
        NaiveDate::from_ymd_opt(year, month, day).map(Day::from_naive)
    }

    pub fn from_naive(date: NaiveDate) -> Day {
        // chrono's range (about +/- 262,000 years) fits in i32 days.
        Day((date - pg_epoch()).num_days() as i32)
    }

    /// The calendar date, or `None` outside chrono's range.
    pub fn to_naive(self) -> Option<NaiveDate> {
        pg_epoch().checked_add_signed(chrono::TimeDelta::days(i64::from(self.0)))
    }

    /// This day plus `months` calendar months, clamped to the last day of the target month, as
    /// PostgreSQL's `date + interval 'N months'` does: Jan 31 + 1 month is Feb 28 (Feb 29 in a
    /// leap year), and Feb 29 + 12 months is Feb 28. `None` only outside the supported range.
    pub fn add_months(self, months: u32) -> Option<Day> {
        let date = self.to_naive()?;
        date.checked_add_months(Months::new(months))
            .map(Day::from_naive)
    }

    /// Whole days from `earlier` to `self` (negative if `self` is earlier).
    pub fn days_since(self, earlier: Day) -> i32 {
        self.0 - earlier.0
    }

    pub fn year_month_day(self) -> Option<(i32, u32, u32)> {
        self.to_naive().map(|d| (d.year(), d.month(), d.day()))
    }
}

impl std::fmt::Display for Day {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.to_naive() {
            Some(d) => write!(f, "{}", d.format("%Y-%m-%d")),
            None => write!(f, "day {}", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, dd: u32) -> Day {
        Day::from_ymd(y, m, dd).unwrap()
    }

    #[test]
    fn epoch_is_zero_like_postgres() {
        assert_eq!(d(2000, 1, 1), Day(0));
        assert_eq!(d(1999, 12, 31), Day(-1));
        // SELECT '1997-01-01'::date - '2000-01-01'::date  =>  -1095
        assert_eq!(d(1997, 1, 1), Day(-1095));
    }

    #[test]
    fn month_end_clamps_like_postgres_interval() {
        // SELECT '2023-01-31'::date + interval '1 month'  =>  2023-02-28
        assert_eq!(d(2023, 1, 31).add_months(1), Some(d(2023, 2, 28)));
        assert_eq!(d(2024, 1, 31).add_months(1), Some(d(2024, 2, 29)));
        assert_eq!(d(2023, 8, 31).add_months(3), Some(d(2023, 11, 30)));
        assert_eq!(d(2023, 11, 30).add_months(3), Some(d(2024, 2, 29)));
        assert_eq!(d(2023, 3, 31).add_months(6), Some(d(2023, 9, 30)));
    }

    #[test]
    fn leap_day_plus_a_year_is_feb_28() {
        assert_eq!(d(2024, 2, 29).add_months(12), Some(d(2025, 2, 28)));
        assert_eq!(d(2024, 2, 29).add_months(48), Some(d(2028, 2, 29)));
        assert_eq!(d(2024, 2, 29).add_months(3), Some(d(2024, 5, 29)));
    }

    #[test]
    fn ordinary_days_keep_their_day_of_month() {
        assert_eq!(d(2023, 5, 15).add_months(3), Some(d(2023, 8, 15)));
        assert_eq!(d(2023, 10, 15).add_months(6), Some(d(2024, 4, 15)));
        assert_eq!(d(2023, 12, 1).add_months(12), Some(d(2024, 12, 1)));
    }

    #[test]
    fn display_and_difference() {
        assert_eq!(d(1997, 3, 5).to_string(), "1997-03-05");
        assert_eq!(d(1998, 6, 30).days_since(d(1998, 6, 1)), 29);
    }
}
