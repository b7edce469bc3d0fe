//! The order-events read: every counted order up to an end day as (user, day, amount), from
//! one parallel aggregate over the orders (`aggregate`: `_order_events`), with the orders that
//! cannot count counted by why (`cda_analytics_core::left_out`) and reported, never summed; and
//! the users known on that day (`_known_users`). Segmentation, CLV, churn and anomalies start from it. It streams
//! the orders once, in parallel workers where the planner splits the scan, where a grouped
//! `array_agg` per user sorted or spilled the orders, several times slower (BENCHMARKS.md,
//! "Measurements behind the code").

pub mod aggregate;

use cda_analytics_core::calendar::Day;
use cda_analytics_core::events::Events;
use cda_analytics_core::known_users::KnownUsers;
use cda_analytics_core::left_out::{LeftOut, Reason};

use crate::read::aggregates::take_or_decode;
use crate::read::query::{Params, day_expr, timestamp_expr};
use crate::source::{Config, Context, Source};
use crate::toolbox::errors::*;
use crate::toolbox::ident::text_array_literal;
use cda_analytics_core::phases::Phases;

/// The orders a read left out, by why, and the report of them.
pub struct Report {
    pub counts: LeftOut,
    /// The users table, as the report names it.
    users: String,
}

impl Report {
    /// A NOTICE "`what`: left out ..." when anything was. Orders after an explicit end date,
    /// and the orders of users who signed up after it, are expected there and not listed; after
    /// today they are suspect, and are.
    pub fn report(&self, what: &str, explicit_end: bool) {
        let expected =
            |r: Reason| explicit_end && matches!(r, Reason::AfterEnd | Reason::OfLeftOutUser);
        let items = self.counts.items(&self.users, |r| !expected(r));
        if !items.is_empty() {
            notice(format!("{what}: left out {}", items.join("; ")), None);
        }
    }
}

/// Every user with an id (or only `one`): whether they had signed up by the as-of day. Read
/// through the `_known_users` aggregate, which takes the signup as a timestamp and
/// finds its day in Rust, as the order reads do.
pub fn users(source: &Source, zone: &str, as_of: Day, one: Option<i64>) -> KnownUsers {
    let mut params = Params::new();
    let ts = timestamp_expr(
        &format!("u.{}", source.registered_at),
        source.registered_at_kind,
        zone,
        &mut params,
    );
    let d = params.bind(as_of.0);
    let filter = match one {
        Some(id) => format!(" WHERE u.{} = {}", source.user_id, params.bind(id)),
        None => String::new(),
    };
    let ext = crate::source::ext_schema();
    let sql = format!(
        "SELECT {ext}._known_users(u.{id}::pg_catalog.int8, {ts}, {d}) FROM {users} u{filter}",
        id = source.user_id,
        users = source.users,
    );
    let pairs = crate::read::spi::one_bytea(&sql, &params.args, "reading the users", |bytes| {
        bytes.map(aggregate::known_users_result)
    });
    let pairs = match pairs {
        None => Vec::new(),
        Some(Ok(p)) => p,
        Some(Err(e)) => raise(ERRCODE_INTERNAL_ERROR, format!("_known_users: {e}"), None),
    };
    match KnownUsers::build(&pairs) {
        Ok(k) => k,
        Err(id) => source.raise_bad_users(cda_analytics_core::ltv::FoldError::DuplicateUser(id)),
    }
}

/// The [`Reason::code`] of an order of `x` left out, or 0 when it counts, as SQL, with the checks
/// in the order the events aggregate makes them. With `day` (the order's day expression and the
/// bound last day) the day checks are made here, and with `amounts` the amount checks; without
/// them, the caller makes those checks itself (the events aggregate, on the order's timestamp and
/// numeric, after the status and user checks, so the order of checks is the same).
pub fn problem_sql(source: &Source, day: Option<(&str, &str)>, amounts: bool) -> String {
    let code = |r: Reason| r.code();
    let amount = format!("x.{}::pg_catalog.numeric", source.amount);
    let day_checks = day
        .map(|(day, d)| {
            format!(
                "WHEN {day} IS NULL THEN {} WHEN {day} > {d} THEN {} ",
                code(Reason::NullDate),
                code(Reason::AfterEnd)
            )
        })
        .unwrap_or_default();
    let amount_checks = if amounts {
        format!(
            "WHEN x.{amt} IS NULL THEN {} WHEN {amount} < 0 THEN {} \
             WHEN {amount} IN ('NaN', 'Infinity') THEN {} ",
            code(Reason::NullAmount),
            code(Reason::NegativeAmount),
            code(Reason::NonFiniteAmount),
            amt = source.amount
        )
    } else {
        String::new()
    };
    format!(
        "CASE WHEN x.{status} IS NULL THEN {} WHEN x.{uid} IS NULL THEN {} {day_checks}{amount_checks}ELSE 0 END",
        code(Reason::NullStatus),
        code(Reason::NullUserId),
        status = source.status,
        uid = source.order_user_id,
    )
}

/// The FROM and WHERE of every read of the orders `x`: successful statuses, and NULL statuses,
/// which are read to be counted.
pub fn orders_from(source: &Source, config: &Config) -> String {
    // A constant, not a parameter, which the executor would fetch again for every order.
    let statuses = text_array_literal(&config.successful_statuses, "status");
    format!(
        "FROM {orders} x WHERE (x.{status}::pg_catalog.text = ANY ({statuses}) OR x.{status} IS NULL)",
        orders = source.orders,
        status = source.status,
    )
}

/// The orders as rows of (user, day, amount, problem); the shared FROM/WHERE of the grouped reads.
pub fn order_rows(
    source: &Source,
    config: &Config,
    as_of: Day,
    extra: &str,
    params: &mut Params<'_>,
) -> (String, String) {
    let day = day_expr(
        &format!("x.{}", source.order_date),
        source.order_date_kind,
        &config.time_zone,
        params,
    );
    // The last day as a constant, as the statuses are (orders_from).
    let d = as_of.0.to_string();
    let problem = problem_sql(source, Some((&day, &d)), true);
    let from = orders_from(source, config);
    let from = format!(
        "SELECT x.{uid}::pg_catalog.int8 AS uid, {day} AS day, x.{amt}::pg_catalog.numeric AS amt, \
                {problem} AS problem{extra} {from}",
        uid = source.order_user_id,
        amt = source.amount,
    );
    (from, d)
}

/// Every counted order up to `end` of users in the users table (one user's with `one_user`),
/// grouped by user; the orders left out are counted in the returned [`Report`].
pub fn read(ctx: &Context, end: Day, one_user: Option<i64>) -> (Events, Report) {
    let mut phases = Phases::start();
    let known = users(&ctx.source, &ctx.config.time_zone, end, one_user);
    phases.mark("users");
    debug_phases(&format!("events read, {} users", known.len()), &phases);
    read_with(&ctx.ext, &ctx.config, &ctx.source, end, one_user, &known)
}

/// [`read`] against a users table the caller has read (`known`: user id to whether they had
/// signed up by `end`).
pub fn read_with(
    ext: &str,
    config: &Config,
    source: &Source,
    end: Day,
    one_user: Option<i64>,
    known: &KnownUsers,
) -> (Events, Report) {
    let mut params = Params::new();
    let ts = timestamp_expr(
        &format!("x.{}", source.order_date),
        source.order_date_kind,
        &config.time_zone,
        &mut params,
    );
    // A constant, as the statuses are (orders_from): a parameter is fetched again for every order.
    let end_day = end.0;
    let uid = format!("x.{}", source.order_user_id);
    let problem = problem_sql(source, None, false);
    let from = orders_from(source, config);
    let filter = match one_user {
        Some(id) => format!(" AND {uid}::pg_catalog.int8 = {}", params.bind(id)),
        None => String::new(),
    };
    let sql = format!(
        "SELECT {ext}._order_events({uid}::pg_catalog.int8, {ts}, x.{amt}::pg_catalog.numeric, \
                {problem}, {end_day}) {from}{filter}",
        amt = source.amount,
    );
    let mut phases = Phases::start();
    // Decoded in place: the bytes are the SPI result's, gone when the connection closes.
    let decoded: Option<Result<Events, String>> =
        crate::read::spi::one_bytea(&sql, &params.args, "reading the orders", |bytes| {
            bytes.map(|b| take_or_decode(b, Events::decode))
        });
    let mut events = match decoded {
        None => Events::default(),
        Some(Ok(e)) => e,
        Some(Err(e)) => raise(
            ERRCODE_INTERNAL_ERROR,
            format!("{}: {e}", aggregate::WHAT),
            None,
        ),
    };
    phases.mark("orders read and decoded");
    // Orders of users missing from the users table are counted, not kept.
    let before = events.events.len();
    events.events.retain(|e| known.contains(e.user));
    let mut counts = events.left_out;
    counts.add(Reason::UnknownUser, (before - events.events.len()) as i64);
    let left_out = Report {
        counts,
        users: source.users.clone(),
    };
    phases.mark("users checked");
    debug_phases(&format!("events read, {before} orders"), &phases);
    (events, left_out)
}
