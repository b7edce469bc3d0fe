//! Cohort retention: customers grouped by the calendar period of their first successful order
//! (or, for the recurring type, by every period they were active in), and for each later period
//! how many of them ordered again, how often and for how much. The definitions are those of
//! `products.md` section 4.2 (PostHog's and Mixpanel's "first time" and "recurring" retention,
//! "on" and "on or after"), on calendar periods: weeks start on Monday.
//!
//! Revenue is summed exactly, in minor units; the ratios are computed from the exact sums.

use rustc_hash::FxHashMap;

use crate::calendar::Day;
use crate::events::Event;

/// The length of a cohort's periods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Day,
    Week,
    Month,
    Quarter,
}

impl Period {
    pub fn parse(name: &str) -> Option<Period> {
        match name {
            "day" => Some(Period::Day),
            "week" => Some(Period::Week),
            "month" => Some(Period::Month),
            "quarter" => Some(Period::Quarter),
            _ => None,
        }
    }

    /// A running number of the period holding `day`: consecutive periods have consecutive
    /// numbers, so the number of whole periods between two days is a difference.
    pub fn index(self, day: Day) -> i64 {
        match self {
            Period::Day => i64::from(day.0),
            // 2000-01-01 (day 0) was a Saturday: Monday 1999-12-27 is day -5.
            Period::Week => (i64::from(day.0) + 5).div_euclid(7),
            Period::Month | Period::Quarter => {
                let (y, m, _) = day.year_month_day().unwrap_or((2000, 1, 1));
                let months = i64::from(y) * 12 + i64::from(m) - 1;
                if self == Period::Month {
                    months
                } else {
                    months.div_euclid(3)
                }
            }
        }
    }

    /// The first day of period number `index`.
    pub fn start(self, index: i64) -> Option<Day> {
        let day = |d: i64| i32::try_from(d).ok().map(Day);
        match self {
            Period::Day => day(index),
            Period::Week => day(index * 7 - 5),
            Period::Month | Period::Quarter => {
                let months = if self == Period::Month {
                    index
                } else {
                    index * 3
                };
                let year = i32::try_from(months.div_euclid(12)).ok()?;
                Day::from_ymd(year, (months.rem_euclid(12) + 1) as u32, 1)
            }
        }
    }
}

/// Who makes a cohort.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The customers whose first successful order fell in the period.
    FirstTime,
    /// Every customer with a successful order in the period.
    Recurring,
}

impl Kind {
    pub fn parse(name: &str) -> Option<Kind> {
        match name {
            "first_time" => Some(Kind::FirstTime),
            "recurring" => Some(Kind::Recurring),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub period: Period,
    /// The last period number returned (0 is the cohort's own period).
    pub max_periods: u32,
    /// The last day of data: periods that have not started by it are not returned, and a period
    /// is complete when it ended by it.
    pub as_of: Day,
    pub kind: Kind,
    /// "On or after": a customer counts as active in period k when they ordered in k or a later
    /// period of the horizon (up to `max_periods`); its cells are complete once the whole
    /// horizon has ended.
    pub cumulative: bool,
    /// The first day the shop's history is complete from: a cohort starting before it, or the
    /// one holding the earliest order, is left-censored (it may hold customers acquired before
    /// the data begins).
    pub data_start: Option<Day>,
}

/// One cohort at one period number.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    pub cohort_start: Day,
    pub cohort_size: u64,
    pub period_number: u32,
    pub active: u64,
    pub orders: u64,
    /// Revenue of the cohort's orders in the period, in minor units.
    pub revenue: i128,
    /// Revenue of the cohort's orders in its period 0, in minor units.
    pub revenue_first: i128,
    /// Revenue of periods 0 to this one, in minor units.
    pub revenue_cumulative: i128,
    /// Whether the period (with `cumulative`, the whole horizon) has ended by as-of.
    pub is_complete: bool,
    pub is_left_censored: bool,
}

impl Cell {
    pub fn retention(&self) -> f64 {
        self.active as f64 / self.cohort_size as f64
    }

    /// Revenue in this period over revenue in period 0; None when period 0 had none.
    pub fn revenue_retention(&self) -> Option<f64> {
        (self.revenue_first != 0).then(|| self.revenue as f64 / self.revenue_first as f64)
    }
}

/// A cell's counts while they are gathered: active customers, orders, revenue in minor units.
type Counts = (u64, u64, i128);

/// Why a cohort table cannot be made.
#[derive(Debug, Clone, PartialEq)]
pub enum CohortError {
    /// More cells than [`MAX_CELLS`].
    TooManyCells(u64),
    /// A cancel was asked for ([`crate::stop`]).
    Stopped,
}

/// The most cells one call returns.
pub const MAX_CELLS: u64 = 1_000_000;

/// The cohort table of `events` (every counted order: user, day, amount in currency units) with
/// amounts in minor units at `scale` decimals, cohorts in order of start and each cohort's cells
/// by period number. Orders after `as_of` are ignored.
pub fn retention(events: &[Event], scale: u32, opts: &Options) -> Result<Vec<Cell>, CohortError> {
    let p = opts.period;
    let last = p.index(opts.as_of);
    let unit = 10f64.powi(scale as i32);
    let kept = || events.iter().filter(|e| e.day <= opts.as_of.0);
    // Each day's period index, looked up in a table over the days of the data rather than found
    // from the calendar once per order (the months and quarters need the date).
    let (lo, hi) = kept().fold((i32::MAX, i32::MIN), |(lo, hi), e| {
        (lo.min(e.day), hi.max(e.day))
    });
    let index: Vec<i64> = if lo <= hi {
        (lo..=hi).map(|d| p.index(Day(d))).collect()
    } else {
        Vec::new()
    };
    let earliest = index.first().copied();
    // Every order as (user, period index, minor units), sorted by user and period: each
    // customer's orders are then one run, in period order.
    // (The period as its offset from the first, and the amount as i64, keep a record at 24
    // bytes: the sort is most of the time.)
    let first = earliest.unwrap_or(0);
    let mut orders: Vec<(i64, u32, i64)> = kept()
        .map(|e| {
            (
                e.user,
                (index[(e.day - lo) as usize] - first) as u32,
                (e.amount * unit).round() as i64,
            )
        })
        .collect();
    {
        use rayon::slice::ParallelSliceMut;
        orders.par_sort_unstable_by_key(|o| (o.0, o.1));
    }
    let censored_before = match opts.data_start {
        Some(d) => Some(p.index(d)),
        None => earliest.map(|k| k + 1),
    };
    // Per (cohort period, period number): active, orders, revenue; and the cohort sizes.
    let width = opts.max_periods as usize + 1;
    let mut cohorts: FxHashMap<i64, (u64, Vec<Counts>)> = FxHashMap::default();
    let mut periods: Vec<i64> = Vec::new();
    for (i, orders) in orders.chunk_by(|a, b| a.0 == b.0).enumerate() {
        if i % 65536 == 0 && crate::stop::requested() {
            return Err(CohortError::Stopped);
        }
        periods.clear();
        periods.extend(orders.iter().map(|o| first + i64::from(o.1)));
        periods.dedup();
        let starts: &[i64] = match opts.kind {
            Kind::FirstTime => &periods[..1],
            Kind::Recurring => &periods,
        };
        for &c in starts {
            let (size, cells) = cohorts
                .entry(c)
                .or_insert_with(|| (0, vec![(0, 0, 0); width]));
            *size += 1;
            // Orders and revenue per period number; the orders are in period order, so the
            // customer is counted active once per period number, at its first order.
            let mut previous = None;
            for &(_, offset, minor) in orders {
                let k = first + i64::from(offset);
                if k < c {
                    continue;
                }
                let n = (k - c) as usize;
                if n >= width {
                    break;
                }
                cells[n].1 += 1;
                cells[n].2 += i128::from(minor);
                if !opts.cumulative && previous != Some(n) {
                    cells[n].0 += 1;
                }
                previous = Some(n);
            }
            if opts.cumulative {
                // Active at n or later within the horizon: every n up to the last active one.
                let horizon = c + opts.max_periods as i64;
                if let Some(l) = periods.iter().rev().find(|&&k| k <= horizon) {
                    for cell in &mut cells[..=(l - c) as usize] {
                        cell.0 += 1;
                    }
                }
            }
        }
    }
    let mut starts: Vec<i64> = cohorts.keys().copied().collect();
    starts.sort_unstable();
    let started: u64 = starts
        .iter()
        .map(|c| ((last - c + 1).clamp(0, width as i64)) as u64)
        .sum();
    if started > MAX_CELLS {
        return Err(CohortError::TooManyCells(started));
    }
    let mut out = Vec::with_capacity(started as usize);
    for c in starts {
        let (size, cells) = &cohorts[&c];
        let Some(cohort_start) = p.start(c) else {
            continue;
        };
        let left_censored = censored_before.is_some_and(|b| c < b);
        let mut cumulative = 0i128;
        for (n, &(active, orders, revenue)) in cells.iter().enumerate() {
            let k = c + n as i64;
            if k > last {
                break;
            }
            cumulative += revenue;
            // A period is complete when its last day is on or before as-of. "On or after" looks
            // at the whole horizon, so its cells are complete only once the horizon has ended.
            let ended = |k: i64| {
                p.start(k + 1)
                    .is_some_and(|next| next.0 <= opts.as_of.0 + 1)
            };
            let complete = if opts.cumulative {
                ended(c + opts.max_periods as i64)
            } else {
                ended(k)
            };
            out.push(Cell {
                cohort_start,
                cohort_size: *size,
                period_number: n as u32,
                active,
                orders,
                revenue,
                revenue_first: cells[0].2,
                revenue_cumulative: cumulative,
                is_complete: complete,
                is_left_censored: left_censored,
            });
        }
    }
    Ok(out)
}

/// The mean retention at one period number over cohorts.
#[derive(Debug, Clone, PartialEq)]
pub struct Mean {
    pub period_number: u32,
    /// Cohorts averaged: those whose cell is complete and which are not left-censored.
    pub cohorts: u64,
    pub customers: u64,
    pub active: u64,
    /// Σ active / Σ size.
    pub weighted: f64,
    /// The mean of the cohorts' retentions.
    pub simple: f64,
}

/// Weighted and simple mean retention per period number over the complete cells of cohorts
/// that are not left-censored (`include_censored` takes those too).
pub fn summary(cells: &[Cell], include_censored: bool) -> Vec<Mean> {
    let mut by_n: Vec<(u64, u64, u64, f64)> = Vec::new();
    for c in cells
        .iter()
        .filter(|c| c.is_complete && (include_censored || !c.is_left_censored))
    {
        let n = c.period_number as usize;
        if by_n.len() <= n {
            by_n.resize(n + 1, (0, 0, 0, 0.0));
        }
        let s = &mut by_n[n];
        s.0 += 1;
        s.1 += c.cohort_size;
        s.2 += c.active;
        s.3 += c.retention();
    }
    by_n.iter()
        .enumerate()
        .filter(|(_, s)| s.0 > 0)
        .map(|(n, s)| Mean {
            period_number: n as u32,
            cohorts: s.0,
            customers: s.1,
            active: s.2,
            weighted: s.2 as f64 / s.1 as f64,
            simple: s.3 / s.0 as f64,
        })
        .collect()
}

#[cfg(test)]
mod tests;
