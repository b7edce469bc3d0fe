//! The purchases read: the users, and their orders folded per user into
//! `cda_analytics_core::ltv`'s totals, for LTV and RFM. A whole run reads plain tables with the
//! extension's own scans (`users_scan`, and `orders_scan` in parallel workers into totals in
//! shared memory, `shared_totals`); a single user, and the sources those scans do not serve,
//! through aggregate queries (`query`, over the aggregates of `aggregate`).

mod aggregate;
pub mod orders_scan;
mod query;
mod shared_totals;
mod users_scan;

use cda_analytics_core::calendar::Day;
use cda_analytics_core::left_out::Reason;
use cda_analytics_core::ltv::{
    FoldError, OrderTotals, Purchases, RunCounts, SegmentThresholds, UserLtv, UserTable, finish,
};

use crate::read::aggregates::take_handed;
use crate::read::query::Params;
use crate::source::{Config, Source};
use crate::toolbox::errors::*;
use aggregate::decode_orders_result;
use cda_analytics_core::phases::Phases;

/// Runs a one-row, one-column aggregate query and hands its bytea result to `f` (None when the
/// aggregate saw no rows).
fn aggregate<T>(
    sql: &str,
    params: Params<'_>,
    doing: &str,
    f: impl FnOnce(Option<&[u8]>) -> T,
) -> T {
    crate::read::spi::one_bytea(sql, &params.args, doing, f)
}

/// Reads users, then successful (and NULL-status) orders, through the fold, into LTV rows.
/// `one_user` limits both reads to one user.
pub fn compute(
    ext: &str,
    config: &Config,
    source: &Source,
    as_of: Day,
    one_user: Option<i64>,
    thresholds: &SegmentThresholds,
) -> (Vec<UserLtv>, RunCounts) {
    read_with(ext, config, source, as_of, one_user, |users, totals| {
        finish(users, totals, thresholds)
    })
}

/// The same read, into each user's lifetime [`Purchases`] only.
pub fn purchases(
    ext: &str,
    config: &Config,
    source: &Source,
    as_of: Day,
    one_user: Option<i64>,
) -> (Vec<Purchases>, RunCounts) {
    read_with(ext, config, source, as_of, one_user, |users, totals| {
        cda_analytics_core::ltv::purchases(users, totals)
    })
}

/// Reads users and orders through the fold and hands the users and the folded totals to `rows`
/// (the shared totals stay mapped until it returns).
pub(crate) fn read_with<T>(
    ext: &str,
    config: &Config,
    source: &Source,
    as_of: Day,
    one_user: Option<i64>,
    rows: impl FnOnce(&UserTable, &OrderTotals) -> T,
) -> T {
    let mut phases = Phases::start();
    let zone = &config.time_zone;
    let (users, users_bytes) = read_users(ext, source, zone, as_of, one_user);
    phases.mark("users");
    if let Err(e) = users.check() {
        source.raise_bad_users(e);
    }

    let shared = match one_user {
        None => shared_totals::create(&users),
        Some(_) => None,
    };
    let users_bytes = match &shared {
        Some((segment, _)) => segment.users_param(&users_bytes),
        None => users_bytes,
    };
    phases.mark("shared totals");
    // A whole run into shared totals reads a plain table with the extension's own parallel
    // scan; anything else through the aggregate query (orders_scan says which).
    let scan = shared
        .as_ref()
        .and_then(|_| match orders_scan::plan(source, zone) {
            Ok(plan) => Some(plan),
            Err(why) => {
                pgrx::debug1!("orders read with the aggregate query: {why}");
                None
            }
        });
    let result = match scan {
        Some(plan) => {
            let totals = orders_scan::run(&plan, &users, &users_bytes, &config.successful_statuses);
            Some(totals.check().map(|()| totals))
        }
        None => {
            let mut params = Params::new();
            let sql = query::orders_sql(
                source,
                ext,
                zone,
                &config.successful_statuses,
                users_bytes,
                one_user,
                &mut params,
            );
            aggregate(&sql, params, "reading the orders", |bytes| {
                bytes.map(decode_orders_result)
            })
        }
    };
    let (segment, view) = shared.unzip();
    let totals = match (result, view) {
        (None, Some(view)) => view,
        (None, None) => OrderTotals::for_users(&users),
        (Some(Ok(t)), None) => t,
        // The workers folded into the shared slots and sent their counts.
        (Some(Ok(t)), Some(mut view)) => {
            view.merge(&t, Some(&users));
            view
        }
        (Some(Err(e @ FoldError::BadAmount { .. })), _) => raise(
            ERRCODE_DATA_EXCEPTION,
            format!("{e} in {}", source.orders),
            Some("Order amounts must be finite numbers; exclude bad rows with a view and point configure_source at it.".into()),
        ),
        (Some(Err(e)), _) => raise(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE, e.to_string(), None),
    };
    phases.mark("orders");
    let out = rows(&users, &totals);
    // The view into the segment goes before the segment.
    drop(totals);
    if let Some(segment) = segment {
        segment.detach();
    }
    phases.mark("rows");
    debug_phases("purchases read", &phases);
    out
}

/// The users, frozen, and their encoding, which the orders read passes on to every process. A
/// whole run reads a plain table with a scan of its own; anything else, and a single user,
/// through the aggregate query (users_scan says which).
fn read_users(
    ext: &str,
    source: &Source,
    zone: &str,
    as_of: Day,
    one_user: Option<i64>,
) -> (UserTable, Vec<u8>) {
    let scan = match one_user {
        None => users_scan::plan(source, zone)
            .map_err(|why| pgrx::debug1!("users read with the aggregate query: {why}"))
            .is_ok(),
        Some(_) => false,
    };
    let frozen = |mut t: UserTable| {
        t.freeze();
        let bytes = t.encode();
        (t, bytes)
    };
    if scan {
        return frozen(users_scan::read(source, as_of));
    }
    let mut params = Params::new();
    let sql = query::users_sql(source, ext, zone, as_of.0, one_user, &mut params);
    let users = aggregate(&sql, params, "reading the users", |bytes| match bytes {
        None => Ok(frozen(UserTable::new(as_of))),
        Some(b) => match take_handed::<UserTable>(b) {
            Some(t) => Ok(frozen(t)),
            None => UserTable::decode(b).map(|t| (t, b.to_vec())),
        },
    });
    users.unwrap_or_else(|e| {
        raise(
            ERRCODE_INTERNAL_ERROR,
            format!("cda_analytics: users: {e}"),
            None,
        )
    })
}

/// One NOTICE listing everything a run left out or adjusted, so nothing is dropped silently.
/// Orders before signup are counted, not dropped: `with_info` mentions them for whole runs, while
/// a single user's row already shows them in `orders_before_signup`.
pub fn report_skipped(
    what: &str,
    c: &RunCounts,
    source: &Source,
    with_info: bool,
    listed: impl Fn(Reason) -> bool,
) {
    let orders = &source.orders;
    let items = c.left_out.items(&source.users, listed);
    let mut notes = Vec::new();
    if !items.is_empty() {
        notes.push(format!("left out: {}", items.join("; ")));
    }
    if with_info && c.orders_before_signup > 0 {
        notes.push(format!(
            "{} orders dated before their user's signup counted in lifetime only",
            c.orders_before_signup
        ));
    }
    if c.amounts_rounded > 0 {
        notes.push(format!(
            "{} amounts had more decimal places than {orders} keeps and were rounded half away from zero",
            c.amounts_rounded
        ));
    }
    if !notes.is_empty() {
        notice(
            format!("{what}: {}", notes.join("; ")),
            Some(format!(
                "{} users and {} orders read; {} orders counted.",
                c.users_read, c.orders_read, c.orders_counted
            )),
        );
    }
}
