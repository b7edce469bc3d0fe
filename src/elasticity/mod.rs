//! Price elasticity: `price_elasticity()` reads the order lines of counted orders (transaction
//! prices, lines that cannot be a sale left out and reported), builds the product × period panel
//! and estimates per product, per category (pooled, product and period fixed effects, clustered
//! by product) or over everything; the math is `cda_analytics_core::elasticity`. Scenarios are the
//! SQL function `elasticity_scenario()` (sql/finalize.sql).

use pgrx::prelude::*;
use rustc_hash::FxHashMap;

use cda_analytics_core::cohorts::Period;
use cda_analytics_core::elasticity::{
    Cell, Estimate, PriceDefinition, Thresholds, panel, pooled, single,
};

use crate::source::Context;
use crate::source::items::of_context;
use crate::toolbox::convert::day_of_date;
use crate::toolbox::errors::*;

/// Said with every estimate.
const NOTE: &str = "observational: prices set in response to demand bias it; not causal unless prices were randomised";

type Row = (
    String,
    Option<i64>,
    Option<String>,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    i32,
    i32,
    i64,
    f64,
    i32,
    f64,
    f64,
    f64,
    Option<f64>,
    String,
    String,
    String,
    String,
    String,
);

fn row(
    level: &str,
    product: Option<i64>,
    category: Option<String>,
    e: &Estimate,
    price: PriceDefinition,
) -> Row {
    (
        level.to_string(),
        product,
        category,
        e.elasticity,
        e.std_error,
        e.ci_low,
        e.ci_high,
        e.p_value,
        e.n_periods as i32,
        e.n_products as i32,
        e.n_orders as i64,
        e.units,
        e.price_levels as i32,
        e.price_min,
        e.price_max,
        e.log_price_sd,
        e.r2_within,
        price.name().to_string(),
        if e.se_type == "HC1" {
            "ols_trend"
        } else {
            "ols_fe"
        }
        .to_string(),
        e.se_type.to_string(),
        e.reliability.name().to_string(),
        NOTE.to_string(),
    )
}

/// The period and the price definition named by a call's arguments.
fn period_and_price(period: Option<&str>, price: Option<&str>) -> (Period, PriceDefinition) {
    let p = match required(period, "period") {
        "week" => Period::Week,
        "month" => Period::Month,
        other => raise(
            ERRCODE_INVALID_PARAMETER_VALUE,
            format!("unknown period \"{other}\""),
            Some("One of: week, month.".into()),
        ),
    };
    let price_name = required(price, "price");
    let Some(definition) = PriceDefinition::parse(price_name) else {
        raise(
            ERRCODE_INVALID_PARAMETER_VALUE,
            format!("unknown price definition \"{price_name}\""),
            Some("One of: base (the commonest price of small-quantity lines), average (revenue / units).".into()),
        )
    };
    (p, definition)
}

/// Price elasticities from what customers paid: per `level` (`product`, `category` or `all`),
/// over `period`s (`week` or `month`) from `from_date` through `to_date` (default today), with
/// the cell price defined by `price` (`base`: the commonest price of small-quantity lines;
/// `average`: revenue / units). Category and all pool their products with product and period
/// fixed effects and cluster by product; a product alone is fitted with a trend (its period
/// effects cannot be told from its price). Each row has its interval, sizes, price variation and
/// a reliability verdict; only `ok` is usable.
#[allow(clippy::type_complexity, clippy::too_many_arguments)]
#[pg_extern(stable, parallel_restricted)]
#[search_path(pg_catalog, pg_temp)]
fn price_elasticity(
    level: default!(Option<&str>, "'category'"),
    period: default!(Option<&str>, "'week'"),
    price: default!(Option<&str>, "'base'"),
    from_date: default!(Option<pgrx::datum::Date>, "NULL"),
    to_date: default!(Option<pgrx::datum::Date>, "NULL"),
    min_periods: default!(Option<i32>, 12),
    min_price_levels: default!(Option<i32>, 2),
    min_log_price_sd: default!(Option<f64>, 0.05),
    min_orders: default!(Option<i32>, 30),
) -> TableIterator<
    'static,
    (
        name!(level, String),
        name!(product_id, Option<i64>),
        name!(category, Option<String>),
        name!(elasticity, Option<f64>),
        name!(std_error, Option<f64>),
        name!(ci_low, Option<f64>),
        name!(ci_high, Option<f64>),
        name!(p_value, Option<f64>),
        name!(n_periods, i32),
        name!(n_products, i32),
        name!(n_orders, i64),
        name!(units, f64),
        name!(price_levels, i32),
        name!(price_min, f64),
        name!(price_max, f64),
        name!(log_price_sd, f64),
        name!(r2_within, Option<f64>),
        name!(price_definition, String),
        name!(method, String),
        name!(se_type, String),
        name!(reliability, String),
        name!(note, String),
    ),
> {
    let level = required(level, "level");
    if !["product", "category", "all"].contains(&level) {
        raise(
            ERRCODE_INVALID_PARAMETER_VALUE,
            format!("unknown level \"{level}\""),
            Some("One of: product, category, all.".into()),
        );
    }
    let (p, definition) = period_and_price(period, price);
    let (min_periods, min_levels, min_sd, min_orders) = (
        required(min_periods, "min_periods"),
        required(min_price_levels, "min_price_levels"),
        required(min_log_price_sd, "min_log_price_sd"),
        required(min_orders, "min_orders"),
    );
    if min_periods < 3 || min_levels < 1 || !(min_sd >= 0.0 && min_sd.is_finite()) || min_orders < 0
    {
        raise(
            ERRCODE_INVALID_PARAMETER_VALUE,
            format!(
                "thresholds out of range: min_periods {min_periods} (at least 3), min_price_levels {min_levels} (at least 1), min_log_price_sd {min_sd} (zero or more), min_orders {min_orders} (zero or more)"
            ),
            None,
        );
    }
    let thresholds = Thresholds {
        min_periods: min_periods as usize,
        min_price_levels: min_levels as usize,
        min_log_price_sd: min_sd,
        min_orders: min_orders as u64,
    };
    let first = from_date.map(|d| day_of_date(d, "from_date"));
    let ctx = Context::load(to_date);
    if first.is_some_and(|f| f.0 > ctx.as_of.0) {
        raise(
            ERRCODE_INVALID_PARAMETER_VALUE,
            format!("from_date is after to_date ({})", ctx.as_of),
            None,
        );
    }
    let items = of_context(&ctx);
    let read = crate::read::items::read_reported(&ctx, &items, first, "price_elasticity");
    let categories = crate::read::items::categories(&items);
    let cells: Vec<Cell> = panel(&read.lines, p, definition);
    // The fits stop early on a cancel (cda_analytics_core::stop): raise it after each, before an
    // estimate cut short is returned.
    let mut rows: Vec<Row> = Vec::new();
    match level {
        "all" => {
            let refs: Vec<&Cell> = cells.iter().collect();
            rows.push(row(
                "all",
                None,
                None,
                &pooled(&refs, &thresholds),
                definition,
            ));
        }
        "category" => {
            let mut by: FxHashMap<&str, Vec<&Cell>> = FxHashMap::default();
            for c in &cells {
                if let Some(cat) = categories.get(&c.product) {
                    by.entry(cat.as_str()).or_default().push(c);
                }
            }
            let mut names: Vec<&str> = by.keys().copied().collect();
            names.sort_unstable();
            for name in names {
                let e = pooled(&by[name], &thresholds);
                pgrx::check_for_interrupts!();
                rows.push(row(
                    "category",
                    None,
                    Some(name.to_string()),
                    &e,
                    definition,
                ));
            }
        }
        _ => {
            for group in cells.chunk_by(|a, b| a.product == b.product) {
                pgrx::check_for_interrupts!();
                let refs: Vec<&Cell> = group.iter().collect();
                rows.push(row(
                    "product",
                    Some(group[0].product),
                    categories.get(&group[0].product).cloned(),
                    &single(&refs, &thresholds),
                    definition,
                ));
            }
        }
    }
    TableIterator::new(rows)
}

/// The cells behind an estimate: for `product_id` (or every product of `category`), each period
/// with sales from `from_date` through `to_date` (default today), its units, the price buyers
/// faced (`price` as in `price_elasticity`) and its orders: the points of a price × units plot.
#[allow(clippy::type_complexity, clippy::too_many_arguments)]
#[pg_extern(stable, parallel_restricted)]
#[search_path(pg_catalog, pg_temp)]
fn elasticity_cells(
    product_id: default!(Option<i64>, "NULL"),
    category: default!(Option<&str>, "NULL"),
    period: default!(Option<&str>, "'week'"),
    price: default!(Option<&str>, "'base'"),
    from_date: default!(Option<pgrx::datum::Date>, "NULL"),
    to_date: default!(Option<pgrx::datum::Date>, "NULL"),
) -> TableIterator<
    'static,
    (
        name!(product_id, i64),
        name!(period_start, pgrx::datum::Date),
        name!(units, f64),
        name!(price, f64),
        name!(orders, i64),
    ),
> {
    if product_id.is_none() == category.is_none() {
        raise(
            ERRCODE_INVALID_PARAMETER_VALUE,
            "give either product_id or category",
            None,
        );
    }
    let (p, definition) = period_and_price(period, price);
    let first = from_date.map(|d| day_of_date(d, "from_date"));
    let ctx = Context::load(to_date);
    let items = of_context(&ctx);
    let categories = crate::read::items::categories(&items);
    let mut read = crate::read::items::read(&ctx, &items, first, ctx.as_of, None);
    read.lines.retain(|l| match (product_id, category) {
        (Some(id), _) => l.product == id,
        (None, Some(c)) => categories.get(&l.product).is_some_and(|x| x == c),
        _ => false,
    });
    let rows: Vec<_> = panel(&read.lines, p, definition)
        .into_iter()
        .filter_map(|c| {
            let start = p.start(c.period)?;
            Some((
                c.product,
                crate::toolbox::convert::date_of(start),
                c.units,
                c.price,
                c.orders as i64,
            ))
        })
        .collect();
    TableIterator::new(rows)
}
