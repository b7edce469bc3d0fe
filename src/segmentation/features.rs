//! Reading snapshot features at day D (definitions in `cda_analytics_core::segmentation::features`)
//! from the order events (`crate::events`: every order that cannot count is counted by its problem
//! and reported, never summed), with money summed exactly in the amount's smallest unit; and,
//! where the shop has `order_items` and `products` next to its orders, one grouped query for the
//! categories. The shared pieces of the reads (the users, the orders' problems, the report of what
//! was left out) live here too.

use pgrx::prelude::*;
use rustc_hash::FxHashMap;

use cda_analytics_core::calendar::Day;
use cda_analytics_core::known_users::KnownUsers;
use cda_analytics_core::money::{div_round, format_minor};
use cda_analytics_core::segmentation::Snapshot;

use crate::config::Config;
use crate::errors::*;
use crate::source::{Params, Source, day_expr, text_array_literal, timestamp_expr};

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
pub(crate) struct LeftOut {
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

pub struct Features {
    /// Users with at least one counted order up to D, in user id order.
    pub snapshots: Vec<Snapshot>,
    /// Whether categories_180d was computed (else it is 0 and must not be used).
    pub categories: bool,
    /// Users on D (signed up by then) without a counted order: not in the snapshot.
    pub without_orders: i64,
    /// `monetary_180d` and `aov_180d` as numeric text, for display.
    pub money_text: FxHashMap<i64, (String, Option<String>)>,
}

/// Every user with an id (or only `one`): whether they had signed up by the as-of day. Read
/// through the `_known_users` aggregate (src/events.rs), which takes the signup as a timestamp and
/// finds its day in Rust, as the order reads do.
pub(crate) fn users(source: &Source, zone: &str, as_of: Day, one: Option<i64>) -> KnownUsers {
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
    let ext = crate::errors::ext_schema();
    let sql = format!(
        "SELECT {ext}._known_users(u.{id}::pg_catalog.int8, {ts}, {d}) FROM {users} u{filter}",
        id = source.user_id,
        users = source.users,
    );
    let pairs = crate::spi_read::one_bytea(&sql, &params.args, "reading the users", |bytes| {
        bytes.map(crate::events::known_users_result)
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

/// Whether `order_items(order_id, product_id)` and `products(product_id, category)` sit in the
/// orders table's schema and the orders have an `order_id`.
pub(crate) fn category_tables(config: &Config) -> bool {
    Spi::connect(|c| {
        let t = c.select(
            "SELECT count(*) FROM pg_catalog.pg_attribute a \
             JOIN pg_catalog.pg_class r ON r.oid = a.attrelid \
             JOIN pg_catalog.pg_namespace n ON n.oid = r.relnamespace \
             WHERE n.nspname = $1 AND a.attnum > 0 AND NOT a.attisdropped AND r.relkind IN ('r','p','v','m','f') AND ( \
                 (r.relname = $2 AND a.attname = 'order_id') OR \
                 (r.relname = 'order_items' AND a.attname IN ('order_id', 'product_id')) OR \
                 (r.relname = 'products' AND a.attname IN ('product_id', 'category')))",
            None,
            &[config.orders_schema.clone().into(), config.orders_table.clone().into()],
        )?;
        Ok::<_, pgrx::spi::SpiError>(t.first().get::<i64>(1)?.unwrap_or(0) == 5)
    })
    .or_raise("looking for order_items and products")
}

/// The index in [`PROBLEMS`] of an order of `x`, as SQL, checks in that order. With `day` (the
/// order's day expression and the bound last day) the day checks are made here, and with
/// `amounts` the amount checks; without them, the caller makes those checks itself (the
/// order-events aggregate, on the order's timestamp and numeric, after the status and user
/// checks, so the order of checks is the same).
pub(crate) fn problem_sql(source: &Source, day: Option<(&str, &str)>, amounts: bool) -> String {
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
pub(crate) fn orders_from(source: &Source, config: &Config) -> String {
    // A constant, not a parameter, which the executor would fetch again for every order.
    let statuses = text_array_literal(&config.successful_statuses);
    format!(
        "FROM {orders} x WHERE (x.{status}::pg_catalog.text = ANY ({statuses}) OR x.{status} IS NULL)",
        orders = source.orders,
        status = source.status,
    )
}

/// The orders as rows of (user, day, amount, problem); the shared FROM/WHERE of the grouped reads.
pub(crate) fn order_rows(
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

/// `explicit_as_of`: orders after an explicit as-of date are expected and not reported; after
/// today they are suspect, and are.
/// `announce`: say with a NOTICE when categories are skipped.
pub fn read(
    config: &Config,
    source: &Source,
    as_of: Day,
    explicit_as_of: bool,
    announce: bool,
) -> Features {
    let known = users(source, &config.time_zone, as_of, None);
    let ext = crate::errors::ext_schema();
    let (mut events, left_out) =
        crate::events::read_with(&ext, config, source, as_of, None, &known);
    let groups = crate::workers::on_worker_threads(|| events.by_user());
    let scale = source.amount_scale.min(15);
    let unit = 10f64.powi(scale as i32);
    let mut not_registered = 0i64;
    // user -> (last day, orders 90d, spend 180d and orders 180d in minor units)
    let mut per_user: FxHashMap<i64, (i32, i64, i128, i64)> = FxHashMap::default();
    for (uid, range) in groups {
        let orders = &events.events[range];
        if !known.get(uid).unwrap_or(false) {
            not_registered += orders.len() as i64;
            continue;
        }
        let Some(last) = orders.last() else {
            continue;
        };
        let (mut f90, mut m180, mut c180) = (0i64, 0i128, 0i64);
        for e in orders {
            if e.day > as_of.0 - 180 {
                m180 += (e.amount * unit).round() as i128;
                c180 += 1;
                if e.day > as_of.0 - 90 {
                    f90 += 1;
                }
            }
        }
        per_user.insert(uid, (last.day, f90, m180, c180));
    }

    let categories = category_tables(config);
    let mut cats: FxHashMap<i64, i64> = FxHashMap::default();
    if categories {
        let mut params = Params::new();
        let (from, d) = order_rows(source, config, as_of, ", x.order_id", &mut params);
        let schema = quote_ident(&config.orders_schema);
        let sql = format!(
            "SELECT o.uid, count(DISTINCT p.category) FROM ({from}) o \
             JOIN {schema}.order_items i ON i.order_id = o.order_id \
             JOIN {schema}.products p ON p.product_id = i.product_id \
             WHERE o.problem = 0 AND o.day > {d} - 180 AND p.category IS NOT NULL GROUP BY o.uid"
        );
        Spi::connect(|c| {
            for row in c.select(&sql, None, &params.args)? {
                if let (Some(u), Some(n)) = (row.get::<i64>(1)?, row.get::<i64>(2)?) {
                    cats.insert(u, n);
                }
            }
            Ok::<_, pgrx::spi::SpiError>(())
        })
        .or_raise("reading the categories for snapshot features");
    } else if announce {
        notice(
            format!(
                "categories_180d skipped: no order_items(order_id, product_id) and products(product_id, category) next to {}",
                source.orders
            ),
            Some("The other features are computed; clusters are fitted without categories.".into()),
        );
    }

    let mut ids: Vec<i64> = per_user.keys().copied().collect();
    ids.sort_unstable();
    let mut snapshots = Vec::with_capacity(ids.len());
    let mut money_text = FxHashMap::default();
    for id in ids {
        let Some((last, f90, m180, c180)) = per_user.remove(&id) else {
            continue;
        };
        // The average order value rounded half away from zero to the amount's scale, as
        // PostgreSQL's round(numeric, scale) does.
        let aov = (c180 > 0).then(|| div_round(m180, i128::from(c180)));
        snapshots.push(Snapshot {
            user_id: id,
            values: [
                (as_of.0 - last) as f64,
                f90 as f64,
                m180 as f64 / unit,
                aov.map_or(0.0, |a| a as f64 / unit),
                cats.get(&id).copied().unwrap_or(0) as f64,
            ],
        });
        money_text.insert(
            id,
            (
                // No order in the 180 days: 0, as the SQL sum's NULL was shown.
                if c180 > 0 {
                    format_minor(m180, scale)
                } else {
                    "0".into()
                },
                aov.map(|a| format_minor(a, scale)),
            ),
        );
    }
    let registered = known.registered() as i64;
    let without_orders = registered - snapshots.len() as i64;
    left_out.report(
        "snapshot features",
        explicit_as_of,
        (!explicit_as_of && not_registered > 0).then(|| {
            format!("{not_registered} orders of users who signed up after the as-of date")
        }),
    );
    Features {
        snapshots,
        categories,
        without_orders,
        money_text,
    }
}
