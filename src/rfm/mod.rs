//! RFM as SQL: `rfm_segment` (scores for every user, nothing written), `calculate_all_rfm` (the
//! same into `ml_user_rfm`, atomically), `calculate_user_rfm` (one user against the latest run's
//! breakpoints). The math is `cda_analytics_core::rfm`; the orders are read by the purchases read
//! (`crate::read::purchases`, one parallel-capable pass, as for LTV), which gives each user's last
//! order, order count and revenue up to the as-of day. Summary, migration and sizes over dates are SQL, in sql/finalize.sql.

mod store;

use std::sync::Arc;

use pgrx::prelude::*;

use cda_analytics_core::calendar::Day;
use cda_analytics_core::left_out::Reason;
use cda_analytics_core::ltv::{Purchases, RunCounts};
use cda_analytics_core::money::div_round;
use cda_analytics_core::rfm::{
    Customer, Monetary, NO_ORDERS, SegmentRule, UNMATCHED, score_customers, score_one, segment_of,
};

use crate::read::purchases;
use crate::source::ext_schema;
use crate::source::{Config, Context, Source};
use crate::toolbox::convert::minor_numeric;
use crate::toolbox::errors::*;
use cda_analytics_core::phases::Phases;

/// Users as of a day: those with a successful order as customers to score, the others apart.
pub(crate) struct Population {
    pub customers: Vec<Customer>,
    pub without_orders: Vec<i64>,
    pub counts: RunCounts,
}

pub(crate) fn population(
    ext: &str,
    config: &Config,
    source: &Source,
    as_of: Day,
    one_user: Option<i64>,
) -> Population {
    let (rows, counts) = purchases::purchases(ext, config, source, as_of, one_user);
    population_of(&rows, counts)
}

/// Splits what the read found into customers and users without orders.
fn population_of(rows: &[Purchases], counts: RunCounts) -> Population {
    let mut customers = Vec::with_capacity(rows.len());
    let mut without_orders = Vec::new();
    for r in rows {
        match r.days_since_last_order {
            Some(days) if r.orders > 0 => customers.push(Customer {
                user_id: r.user_id,
                recency_days: days,
                frequency: r.orders,
                revenue: r.revenue,
            }),
            _ => without_orders.push(r.user_id),
        }
    }
    Population {
        customers,
        without_orders,
        counts,
    }
}

/// Reports what a read left out. Orders after an explicit as-of date are expected (a snapshot of
/// the past) and not reported; after today they are suspect, and are.
fn report(what: &str, counts: &RunCounts, source: &Source, explicit_as_of: bool) {
    purchases::report_skipped(what, counts, source, false, |r| {
        !(explicit_as_of && r == Reason::AfterEnd)
    });
}

fn monetary_mode(monetary: &str) -> Monetary {
    match Monetary::parse(monetary) {
        Some(m) => m,
        None => raise(
            ERRCODE_INVALID_PARAMETER_VALUE,
            format!("monetary must be 'total' or 'average', got '{monetary}'"),
            Some("'total' scores M on revenue, 'average' on average order value.".into()),
        ),
    }
}

/// One scored (or unscored) user, as the SQL functions return it.
pub(crate) struct RfmRow {
    pub user_id: i64,
    pub recency_days: Option<i32>,
    pub frequency: i64,
    pub revenue: i64,
    /// M in minor units as shown: revenue, or the average order value rounded to the amount's
    /// scale (the score compares the exact average).
    pub monetary: Option<i64>,
    pub scores: Option<[u8; 3]>,
    pub segment: Arc<str>,
}

/// Each of the 125 cells' segment under a map, found once per cell rather than once per user;
/// the rows share the names.
struct SegmentNames {
    rules: Vec<SegmentRule>,
    cells: Vec<Arc<str>>,
    no_orders: Arc<str>,
}

impl SegmentNames {
    fn new(rules: Vec<SegmentRule>) -> Self {
        let cells = (0..125u8)
            .map(|i| Arc::from(segment_of(&rules, 1 + i / 25, 1 + i / 5 % 5, 1 + i % 5)))
            .collect();
        SegmentNames {
            rules,
            cells,
            no_orders: Arc::from(NO_ORDERS),
        }
    }

    fn of(&self, [r, f, m]: [u8; 3]) -> Arc<str> {
        let cell = (usize::from(r) * 25 + usize::from(f) * 5 + usize::from(m)).checked_sub(31);
        match cell.and_then(|c| self.cells.get(c)) {
            Some(name) => name.clone(),
            None => Arc::from(segment_of(&self.rules, r, f, m)),
        }
    }
}

impl RfmRow {
    pub fn cell(&self) -> Option<String> {
        self.scores.map(|[r, f, m]| format!("{r}{f}{m}"))
    }
}

fn shown_monetary(c: &Customer, mode: Monetary) -> i64 {
    match mode {
        Monetary::Total => c.revenue,
        Monetary::Average => div_round(c.revenue as i128, c.frequency.max(1) as i128) as i64,
    }
}

fn scored_row(c: &Customer, scores: [u8; 3], mode: Monetary, names: &SegmentNames) -> RfmRow {
    RfmRow {
        user_id: c.user_id,
        recency_days: Some(c.recency_days),
        frequency: c.frequency,
        revenue: c.revenue,
        monetary: Some(shown_monetary(c, mode)),
        scores: Some(scores),
        segment: names.of(scores),
    }
}

fn unscored_row(user_id: i64, names: &SegmentNames) -> RfmRow {
    RfmRow {
        user_id,
        recency_days: None,
        frequency: 0,
        revenue: 0,
        monetary: None,
        scores: None,
        segment: names.no_orders.clone(),
    }
}

pub(crate) struct Scored {
    pub rows: Vec<RfmRow>,
    pub breakpoints: cda_analytics_core::rfm::Breakpoints,
    pub counts: RunCounts,
    pub custom_map: bool,
}

/// Every user as of `as_of`, scored: customers first in user id order, then users without orders.
fn score_all(ext: &str, config: &Config, source: &Source, as_of: Day, mode: Monetary) -> Scored {
    let (rules, custom_map) = store::rules(ext);
    let names = SegmentNames::new(rules);
    let p = population(ext, config, source, as_of, None);
    score_population(p, mode, &names, custom_map)
}

/// Scores a whole population against itself. Calls nothing in PostgreSQL, so that it can run on
/// the worker threads.
fn score_population(
    mut p: Population,
    mode: Monetary,
    names: &SegmentNames,
    custom_map: bool,
) -> Scored {
    p.customers.sort_unstable_by_key(|c| c.user_id);
    p.without_orders.sort_unstable();
    let (scores, breakpoints) = score_customers(&p.customers, mode);
    let mut rows: Vec<RfmRow> = p
        .customers
        .iter()
        .zip(scores)
        .map(|(c, s)| scored_row(c, s, mode, names))
        .collect();
    rows.extend(p.without_orders.iter().map(|&id| unscored_row(id, names)));
    Scored {
        rows,
        breakpoints,
        counts: p.counts,
        custom_map,
    }
}

type RfmTuple = (
    i64,
    Option<i32>,
    i64,
    AnyNumeric,
    Option<AnyNumeric>,
    Option<i16>,
    Option<i16>,
    Option<i16>,
    Option<String>,
    String,
);

fn to_tuple(r: RfmRow, scale: u32) -> RfmTuple {
    let cell = r.cell();
    let score = |i: usize| r.scores.map(|s| s[i] as i16);
    (
        r.user_id,
        r.recency_days,
        r.frequency,
        minor_numeric(i128::from(r.revenue), scale),
        r.monetary.map(|m| minor_numeric(i128::from(m), scale)),
        score(0),
        score(1),
        score(2),
        cell,
        r.segment.to_string(),
    )
}

/// Every user's R, F and M as of `as_of` (default: today in the configured time zone), scored 1-5
/// against each other, with the named segment; users without a successful order come last, with
/// segment 'No Orders' and no scores. Writes nothing.
#[allow(clippy::type_complexity)]
#[pg_extern(stable, parallel_restricted)]
#[search_path(pg_catalog, pg_temp)]
fn rfm_segment(
    as_of: default!(Option<pgrx::datum::Date>, "NULL"),
    monetary: default!(Option<String>, "'total'"),
) -> TableIterator<
    'static,
    (
        name!(user_id, i64),
        name!(recency_days, Option<i32>),
        name!(frequency, i64),
        name!(revenue, AnyNumeric),
        name!(monetary, Option<AnyNumeric>),
        name!(r_score, Option<i16>),
        name!(f_score, Option<i16>),
        name!(m_score, Option<i16>),
        name!(rfm_cell, Option<String>),
        name!(segment, String),
    ),
> {
    let monetary = required(monetary, "monetary");
    let mode = monetary_mode(&monetary);
    let Context {
        ext,
        config,
        source,
        as_of,
        explicit_as_of: explicit,
        snapshot: _snapshot,
    } = Context::load(as_of);
    let scored = score_all(&ext, &config, &source, as_of, mode);
    report("rfm_segment", &scored.counts, &source, explicit);
    let scale = source.amount_scale;
    TableIterator::new(scored.rows.into_iter().map(move |r| to_tuple(r, scale)))
}

/// Recomputes every user's RFM scores and segment as of `as_of` (default: today) and replaces the
/// contents of `ml_user_rfm` in one transaction, rewriting only the stored rows that changed, with
/// a row in `ml_rfm_runs` holding the breakpoints. Returns the number of users in the results.
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn calculate_all_rfm(
    as_of: default!(Option<pgrx::datum::Date>, "NULL"),
    monetary: default!(Option<String>, "'total'"),
) -> i64 {
    let monetary = required(monetary, "monetary");
    let mut phases = Phases::start();
    let mode = monetary_mode(&monetary);
    let Context {
        ext,
        config,
        source,
        as_of,
        explicit_as_of: explicit,
        snapshot: _snapshot,
    } = Context::load(as_of);
    crate::write::refresh::lock(&ext, "ml_user_rfm_rows");
    let (rules, custom_map) = store::rules(&ext);
    let names = SegmentNames::new(rules);
    let scale = source.amount_scale;
    // The scores, rows and fingerprints are computed on the worker threads while this thread
    // reads the stored fingerprints.
    let ((scored, new), stored) =
        purchases::read_with(&ext, &config, &source, as_of, None, |users, totals| {
            crate::toolbox::workers::beside(
                || {
                    let (bought, counts) = cda_analytics_core::ltv::purchases(users, totals);
                    let p = population_of(&bought, counts);
                    let scored = score_population(p, mode, &names, custom_map);
                    let new = store::fingerprints(&scored.rows, as_of, scale);
                    (scored, new)
                },
                || crate::write::stored_rows::read(&ext, "ml_user_rfm_rows"),
            )
        });
    phases.mark("read and score");
    let written = store::replace(&ext, &scored.rows, &new, stored, as_of, scale);
    let run_id = store::record_run(&ext, as_of, mode, &scored, scale, phases.elapsed(), written);
    store::set_as_of(&ext, as_of, run_id);
    phases.mark("write");
    debug_phases("calculate_all_rfm", &phases);
    report("calculate_all_rfm", &scored.counts, &source, explicit);
    let unmatched = scored
        .rows
        .iter()
        .filter(|r| &*r.segment == UNMATCHED)
        .count();
    if unmatched > 0 {
        notice(
            format!(
                "calculate_all_rfm: {unmatched} users matched no rule of rfm_segment_map and are in segment '{UNMATCHED}'"
            ),
            None,
        );
    }
    scored.rows.len() as i64
}

/// One user's R, F and M as of `as_of` (default: today), scored against the breakpoints of the
/// latest `calculate_all_rfm` run (and with its monetary option), so no other user is read. No
/// row when the user does not exist or was left out.
#[allow(clippy::type_complexity)]
#[pg_extern(stable, parallel_restricted)]
#[search_path(pg_catalog, pg_temp)]
fn calculate_user_rfm(
    user_id: Option<i64>,
    as_of: default!(Option<pgrx::datum::Date>, "NULL"),
) -> TableIterator<
    'static,
    (
        name!(user_id, i64),
        name!(recency_days, Option<i32>),
        name!(frequency, i64),
        name!(revenue, AnyNumeric),
        name!(monetary, Option<AnyNumeric>),
        name!(r_score, Option<i16>),
        name!(f_score, Option<i16>),
        name!(m_score, Option<i16>),
        name!(rfm_cell, Option<String>),
        name!(segment, String),
        name!(run_id, i64),
    ),
> {
    let Some(user_id) = user_id else {
        return TableIterator::new(Vec::new());
    };
    let Context {
        ext,
        config,
        source,
        as_of,
        explicit_as_of: explicit,
        snapshot: _snapshot,
    } = Context::load(as_of);
    let run = store::latest_run(&ext);
    let names = SegmentNames::new(store::rules(&ext).0);
    let p = population(&ext, &config, &source, as_of, Some(user_id));
    report("calculate_user_rfm", &p.counts, &source, explicit);
    let rows: Vec<RfmRow> = p
        .customers
        .iter()
        .map(|c| {
            scored_row(
                c,
                score_one(c, run.mode, &run.breakpoints),
                run.mode,
                &names,
            )
        })
        .chain(p.without_orders.iter().map(|&id| unscored_row(id, &names)))
        .collect();
    let scale = source.amount_scale;
    let run_id = run.run_id;
    TableIterator::new(rows.into_iter().map(move |r| {
        let t = to_tuple(r, scale);
        (t.0, t.1, t.2, t.3, t.4, t.5, t.6, t.7, t.8, t.9, run_id)
    }))
}

/// The segment map in effect: the rows of `rfm_segment_map`, or the default map when it is empty.
#[allow(clippy::type_complexity)]
#[pg_extern(stable, parallel_safe)]
#[search_path(pg_catalog, pg_temp)]
fn rfm_segment_rules() -> TableIterator<
    'static,
    (
        name!(priority, i32),
        name!(segment, String),
        name!(r_min, i16),
        name!(r_max, i16),
        name!(f_min, i16),
        name!(f_max, i16),
        name!(m_min, i16),
        name!(m_max, i16),
        name!(source, String),
    ),
> {
    let (rules, custom) = store::rules(&ext_schema());
    let source = if custom { "rfm_segment_map" } else { "default" };
    TableIterator::new(rules.into_iter().enumerate().map(move |(i, r)| {
        (
            (i + 1) as i32,
            r.name,
            r.r.0 as i16,
            r.r.1 as i16,
            r.f.0 as i16,
            r.f.1 as i16,
            r.m.0 as i16,
            r.m.1 as i16,
            source.to_string(),
        )
    }))
}

/// The segment that R, F and M scores fall in under the map in effect (first matching rule), for
/// re-labelling stored scores or checking a custom map.
#[pg_extern(stable, strict, parallel_safe)]
#[search_path(pg_catalog, pg_temp)]
fn rfm_segment_name(r_score: i32, f_score: i32, m_score: i32) -> String {
    for (name, v) in [
        ("r_score", r_score),
        ("f_score", f_score),
        ("m_score", m_score),
    ] {
        if !(1..=5).contains(&v) {
            raise(
                ERRCODE_INVALID_PARAMETER_VALUE,
                format!("{name} must be between 1 and 5, got {v}"),
                None,
            );
        }
    }
    let (rules, _) = store::rules(&ext_schema());
    segment_of(&rules, r_score as u8, f_score as u8, m_score as u8).to_string()
}
