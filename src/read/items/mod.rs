//! The items read: every line of the counted orders (the orders the events read counts, by the
//! same checks, in SQL) of users in the users table, as (user, day, order, product, quantity,
//! unit price), with the lines that cannot be a sale counted by why
//! (`cda_analytics_core::items::ItemProblem`) and left out. Recommendations and price elasticity
//! start from it. The lines are gathered by one aggregate (`aggregate`: `_order_lines`), in
//! parallel workers where the planner splits the join.

pub mod aggregate;

use pgrx::prelude::*;

use cda_analytics_core::calendar::Day;
use cda_analytics_core::items::{ItemLine, ItemProblem, Items};

use crate::read::aggregates::take_or_decode;
use crate::read::events::{order_rows, users};
use crate::read::query::Params;
use crate::source::Context;
use crate::source::items::ItemSource;
use crate::toolbox::errors::*;

/// The lines of counted orders from `first` (when given) through `end`, of every customer or of
/// `one_user`.
pub fn read(
    ctx: &Context,
    items: &ItemSource,
    first: Option<Day>,
    end: Day,
    one_user: Option<i64>,
) -> Items {
    let known = users(&ctx.source, &ctx.config.time_zone, end, one_user);
    let mut params = Params::new();
    let (from, _) = order_rows(
        &ctx.source,
        &ctx.config,
        end,
        &format!(", x.{}::pg_catalog.int8 AS order_id", items.order_id),
        &mut params,
    );
    let mut first_filter = first
        .map(|f| format!(" AND o.day >= {}", params.bind(f.0)))
        .unwrap_or_default();
    if let Some(id) = one_user {
        first_filter.push_str(&format!(" AND o.uid = {}", params.bind(id)));
    }
    // A number that is missing, not positive, not a number or infinite cannot be a sale.
    let bad = |col: &str| {
        format!(
            "i.{col} IS NULL OR NOT (i.{col}::pg_catalog.float8 > 0 AND i.{col}::pg_catalog.float8 < 'Infinity')"
        )
    };
    let not_a_product = match &items.non_product {
        Some(c) => format!(
            "WHEN p.{c} IS TRUE THEN {} ",
            ItemProblem::NotAProduct.code()
        ),
        None => String::new(),
    };
    let ext = crate::source::ext_schema();
    let sql = format!(
        "SELECT {ext}._order_lines(o.uid, o.day, i.{iorder}::pg_catalog.int8, i.{iproduct}::pg_catalog.int8, \
                i.{qty}::pg_catalog.float8, i.{price}::pg_catalog.float8, \
                CASE WHEN {bad_qty} THEN {q} WHEN {bad_price} THEN {pr} \
                     WHEN p.{pid} IS NULL THEN {unknown} {not_a_product}ELSE 0 END) \
         FROM ({from}) o \
         JOIN {items_table} i ON i.{iorder} = o.order_id \
         LEFT JOIN {products} p ON p.{pid} = i.{iproduct} \
         WHERE o.problem = 0{first_filter}",
        iorder = items.item_order_id,
        iproduct = items.item_product_id,
        qty = items.quantity,
        price = items.unit_price,
        bad_qty = bad(&items.quantity),
        bad_price = bad(&items.unit_price),
        q = ItemProblem::BadQuantity.code(),
        pr = ItemProblem::BadPrice.code(),
        pid = items.product_id,
        unknown = ItemProblem::UnknownProduct.code(),
        items_table = items.items,
        products = items.products,
    );
    // Decoded in place: the bytes are the SPI result's, gone when the connection closes.
    let decoded: Option<Result<Items, String>> =
        crate::read::spi::one_bytea(&sql, &params.args, "reading the order items", |bytes| {
            bytes.map(|b| take_or_decode(b, Items::decode))
        });
    let mut out = match decoded {
        None => Items::default(),
        Some(Ok(items)) => items,
        Some(Err(e)) => raise(
            ERRCODE_INTERNAL_ERROR,
            format!("{}: {e}", aggregate::WHAT),
            None,
        ),
    };
    // Lines of orders of users missing from the users table are left out, as in every read.
    out.lines.retain(|l| known.contains(l.user));
    out
}

/// [`read`] of every customer from `first` through the context's as-of day, the lines left out
/// reported in a NOTICE headed by `who` (the calling function).
pub fn read_reported(ctx: &Context, items: &ItemSource, first: Option<Day>, who: &str) -> Items {
    let read = read(ctx, items, first, ctx.as_of, None);
    if let Some(report) = read.report() {
        notice(format!("{who}: {report}"), None);
    }
    read
}

/// Each product's category, as text (NULL categories are left out).
pub fn categories(items: &ItemSource) -> rustc_hash::FxHashMap<i64, String> {
    let sql = format!(
        "SELECT p.{pid}::pg_catalog.int8, p.{cat}::pg_catalog.text FROM {products} p \
         WHERE p.{pid} IS NOT NULL AND p.{cat} IS NOT NULL",
        pid = items.product_id,
        cat = items.category,
        products = items.products,
    );
    let mut out = rustc_hash::FxHashMap::default();
    Spi::connect(|c| {
        for row in c.select(&sql, None, &[])? {
            if let (Some(id), Some(cat)) = (row.get::<i64>(1)?, row.get::<String>(2)?) {
                out.insert(id, cat);
            }
        }
        Ok::<_, pgrx::spi::SpiError>(())
    })
    .or_raise("reading the product categories");
    out
}

/// What the items read of the counted orders up to `as_of` (default today) finds: the lines
/// that count, the lines left out by why, and the products, categories, customers and orders of
/// the counted lines.
#[pg_extern(stable, parallel_restricted)]
#[search_path(pg_catalog, pg_temp)]
fn order_items_report(
    as_of: default!(Option<pgrx::datum::Date>, "NULL"),
) -> TableIterator<'static, (name!(item, String), name!(count, i64))> {
    let ctx = Context::load(as_of);
    let items = crate::source::items::of_context(&ctx);
    let read = read(&ctx, &items, None, ctx.as_of, None);
    let distinct = |f: fn(&ItemLine) -> i64| {
        let mut v: Vec<i64> = read.lines.iter().map(f).collect();
        v.sort_unstable();
        v.dedup();
        v.len() as i64
    };
    let category = categories(&items);
    let mut named: Vec<&String> = read
        .lines
        .iter()
        .filter_map(|l| category.get(&l.product))
        .collect();
    named.sort_unstable();
    named.dedup();
    let mut rows = vec![
        ("lines counted".to_string(), read.lines.len() as i64),
        ("products".to_string(), distinct(|l| l.product)),
        ("categories".to_string(), named.len() as i64),
        ("customers".to_string(), distinct(|l| l.user)),
        ("orders".to_string(), distinct(|l| l.order)),
    ];
    for (p, n) in ItemProblem::ALL.iter().zip(read.left_out) {
        rows.push((format!("left out: {}", p.label()), n as i64));
    }
    TableIterator::new(rows)
}
