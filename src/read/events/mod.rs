//! The order-events read: every counted order up to an end day as (user, day, amount), from
//! one parallel aggregate over the orders (`aggregate`: `_order_events`), with the orders that
//! cannot count counted by why ([`LeftOut`]) and reported, never summed; and the users known on
//! that day (`_known_users`). Segmentation, CLV, churn and anomalies start from it. It streams
//! the orders once, in parallel workers where the planner splits the scan, where a grouped
//! `array_agg` per user sorted or spilled 10 million orders (8 to 16 s against about 2 s).

pub mod aggregate;

use cda_analytics_core::calendar::Day;
use cda_analytics_core::events::Events;
use cda_analytics_core::known_users::KnownUsers;

use crate::read::aggregates::take_or_decode;
use crate::read::query::{Params, day_expr, timestamp_expr};
use crate::source::{Config, Context, Source};
use crate::toolbox::errors::*;
use crate::toolbox::ident::text_array_literal;

/// Why an order was left out, in the order the checks run; 0 is "counted".
const PROBLEMS: [&str; 8] = [
    "",
    "orders with a NULL status",
    "orders with a NULL user id",
    "orders with a NULL or infinite date",
    "orders dated after the as-of date",
    "orders with a NULL amount",
    "orders with a negative amount",
    "orders with a non-finite amount",
];
const UNKNOWN_USER: &str = "orders whose user id is not in the users table";
const AFTER_AS_OF: usize = 4;

/// The orders a grouped read over [`order_rows`] left out, by problem, and the report of them.
#[derive(Default)]
pub struct LeftOut {
    by_problem: [i64; PROBLEMS.len()],
    unknown_user: i64,
}

impl LeftOut {
    /// Counts a group of `n` orders with `problem`; true when the group is to be left out.
    pub fn problem(&mut self, problem: usize, n: i64) -> bool {
        if problem == 0 {
            return false;
        }
        self.by_problem[problem.min(PROBLEMS.len() - 1)] += n;
        true
    }

    /// Counts orders whose user id is not in the users table.
    pub fn unknown_user(&mut self, n: i64) {
        self.unknown_user += n;
    }

    /// The report's items. Orders after an explicit end date are expected there and not listed;
    /// after today they are suspect, and are.
    fn items(&self, explicit_end: bool) -> Vec<String> {
        self.by_problem
            .iter()
            .enumerate()
            .filter(|&(i, &n)| i != 0 && !(explicit_end && i == AFTER_AS_OF) && n > 0)
            .map(|(i, n)| format!("{n} {}", PROBLEMS[i]))
            .chain((self.unknown_user > 0).then(|| format!("{} {UNKNOWN_USER}", self.unknown_user)))
            .collect()
    }

    /// A NOTICE "`what`: left out ..." when anything was.
    pub fn report(&self, what: &str, explicit_end: bool, more: Option<String>) {
        let items: Vec<String> = self.items(explicit_end).into_iter().chain(more).collect();
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

/// The index in [`PROBLEMS`] of an order of `x`, as SQL, checks in that order. With `day` (the
/// order's day expression and the bound last day) the day checks are made here, and with
/// `amounts` the amount checks; without them, the caller makes those checks itself (the
/// order-events aggregate, on the order's timestamp and numeric, after the status and user
/// checks, so the order of checks is the same).
pub fn problem_sql(source: &Source, day: Option<(&str, &str)>, amounts: bool) -> String {
    let amount = format!("x.{}::pg_catalog.numeric", source.amount);
    let day_checks = day
        .map(|(day, d)| format!("WHEN {day} IS NULL THEN 3 WHEN {day} > {d} THEN 4 "))
        .unwrap_or_default();
    let amount_checks = if amounts {
        format!(
            "WHEN x.{amt} IS NULL THEN 5 WHEN {amount} < 0 THEN 6 \
             WHEN {amount} IN ('NaN', 'Infinity') THEN 7 ",
            amt = source.amount
        )
    } else {
        String::new()
    };
    format!(
        "CASE WHEN x.{status} IS NULL THEN 1 WHEN x.{uid} IS NULL THEN 2 {day_checks}{amount_checks}ELSE 0 END",
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
/// grouped by user; the orders left out are counted in the returned [`LeftOut`].
pub fn read(ctx: &Context, end: Day, one_user: Option<i64>) -> (Events, LeftOut) {
    let t0 = std::time::Instant::now();
    let known = users(&ctx.source, &ctx.config.time_zone, end, one_user);
    pgrx::debug1!(
        "users read: {} in {:.1} ms",
        known.len(),
        t0.elapsed().as_secs_f64() * 1000.0
    );
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
) -> (Events, LeftOut) {
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
    let t0 = std::time::Instant::now();
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
    let t1 = std::time::Instant::now();
    let mut left_out = LeftOut::default();
    for (problem, &n) in events.left_out.iter().enumerate() {
        left_out.problem(problem, n);
    }
    // Orders of users missing from the users table are counted, not kept.
    let before = events.events.len();
    events.events.retain(|e| known.contains(e.user));
    left_out.unknown_user((before - events.events.len()) as i64);
    pgrx::debug1!(
        "order events: {} read and decoded in {:.1} ms, users checked in {:.1} ms",
        before,
        (t1 - t0).as_secs_f64() * 1000.0,
        t1.elapsed().as_secs_f64() * 1000.0
    );
    (events, left_out)
}
