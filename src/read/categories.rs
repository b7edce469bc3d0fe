//! The product categories each customer bought, by day, where the shop has
//! `order_items(order_id, product_id)` and `products(product_id, category)` in the orders table's
//! schema and its orders have an `order_id`. One read serves every capability that counts
//! categories: the snapshot feature `categories_180d`, the churn histories, and the anomalies'
//! categories per week. Only the orders the events read counts are joined (the same checks, in
//! SQL), and categories are told apart by their text.

use pgrx::prelude::*;
use rustc_hash::FxHashMap;

use cda_analytics_core::calendar::Day;

use crate::read::events::order_rows;
use crate::read::query::Params;
use crate::source::{Config, Source};
use crate::toolbox::errors::*;
use crate::toolbox::ident::quote_ident;

/// What [`read`] found.
#[derive(Default)]
pub struct Categories {
    /// Each customer's (day, category) pairs, one per order line, categories numbered from 0 in
    /// the order first met.
    pub bought: FxHashMap<i64, Vec<(i32, u32)>>,
}

/// Whether `order_items(order_id, product_id)` and `products(product_id, category)` sit in the
/// orders table's schema and the orders have an `order_id`.
pub fn available(config: &Config) -> bool {
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
            &[
                config.orders_schema.clone().into(),
                config.orders_table.clone().into(),
            ],
        )?;
        Ok::<_, pgrx::spi::SpiError>(t.first().get::<i64>(1)?.unwrap_or(0) == 5)
    })
    .or_raise("looking for order_items and products")
}

/// The categories bought in counted orders from `first` (when given) through `end`, by each
/// customer (only `one_user` when given). `doing` names the read in an error. The caller checks
/// [`available`] first.
pub fn read(
    config: &Config,
    source: &Source,
    first: Option<Day>,
    end: Day,
    one_user: Option<i64>,
    doing: &str,
) -> Categories {
    let mut params = Params::new();
    let (from, _) = order_rows(source, config, end, ", x.order_id", &mut params);
    let mut filter = String::new();
    if let Some(first) = first {
        filter.push_str(&format!(" AND o.day >= {}", params.bind(first.0)));
    }
    if let Some(id) = one_user {
        filter.push_str(&format!(" AND o.uid = {}", params.bind(id)));
    }
    let schema = quote_ident(&config.orders_schema);
    let sql = format!(
        "SELECT o.uid, pg_catalog.array_agg(o.day), pg_catalog.array_agg(p.category::pg_catalog.text) \
         FROM ({from}) o \
         JOIN {schema}.order_items i ON i.order_id = o.order_id \
         JOIN {schema}.products p ON p.product_id = i.product_id \
         WHERE o.problem = 0 AND p.category IS NOT NULL{filter} GROUP BY o.uid"
    );
    let mut names: FxHashMap<String, u32> = FxHashMap::default();
    let mut out = Categories::default();
    Spi::connect(|c| {
        for row in c.select(&sql, None, &params.args)? {
            let Some(uid) = row.get::<i64>(1)? else {
                continue;
            };
            let days: Vec<i32> = row.get(2)?.unwrap_or_default();
            let cats: Vec<String> = row.get(3)?.unwrap_or_default();
            let list = cats
                .into_iter()
                .zip(days)
                .map(|(c, d)| {
                    let next = names.len() as u32;
                    (d, *names.entry(c).or_insert(next))
                })
                .collect();
            out.bought.insert(uid, list);
        }
        Ok::<_, pgrx::spi::SpiError>(())
    })
    .or_raise(doing);
    out
}

impl Categories {
    /// How many distinct categories each customer bought in the days `key` maps to the same
    /// group (for example the week, or whether the day is recent), for the days it maps at all.
    pub fn distinct_by<K: std::hash::Hash + Eq + Copy>(
        &self,
        key: impl Fn(i32) -> Option<K>,
    ) -> FxHashMap<(i64, K), u32> {
        let mut seen: rustc_hash::FxHashSet<(i64, K, u32)> = Default::default();
        let mut out: FxHashMap<(i64, K), u32> = FxHashMap::default();
        for (&uid, list) in &self.bought {
            for &(day, cat) in list {
                if let Some(k) = key(day)
                    && seen.insert((uid, k, cat))
                {
                    *out.entry((uid, k)).or_default() += 1;
                }
            }
        }
        out
    }
}
