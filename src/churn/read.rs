//! Reading every customer's successful orders up to the as-of date through the order-events
//! aggregate (`crate::events`: the orders that cannot count are counted by problem and reported,
//! as the other reads do), and, where the shop has `order_items` and `products`, the categories
//! bought on each day. Snapshots before the as-of date cut these histories in memory.

use pgrx::prelude::*;
use rustc_hash::FxHashMap;

use cda_analytics_core::calendar::Day;
use cda_analytics_core::churn::history::History;

use crate::context::Context;
use crate::errors::*;
use crate::segmentation::features::{category_tables, order_rows};
use crate::source::Params;

pub struct Histories {
    /// Customers (at least one counted order by the end day) in user id order.
    pub ids: Vec<i64>,
    pub histories: Vec<History>,
    /// Whether categories were read (else categories_180d is not a feature).
    pub categories: bool,
}

/// The histories up to `end`; `one_user` limits the read to one user.
pub fn histories(ctx: &Context, end: Day, one_user: Option<i64>, announce: bool) -> Histories {
    let (mut events, left_out) = crate::events::read(ctx, end, one_user);
    if announce {
        left_out.report("churn features", ctx.explicit_as_of, None);
    }
    let groups = crate::workers::on_worker_threads(|| events.by_user());

    let categories = category_tables(&ctx.config);
    let mut bought: FxHashMap<i64, Vec<(i32, u32)>> = FxHashMap::default();
    if categories {
        let mut params = Params::new();
        let (from, _) = order_rows(&ctx.source, &ctx.config, end, ", x.order_id", &mut params);
        let filter = match one_user {
            Some(id) => format!(" AND o.uid = {}", params.bind(id)),
            None => String::new(),
        };
        let schema = quote_ident(&ctx.config.orders_schema);
        let sql = format!(
            "SELECT o.uid, pg_catalog.array_agg(o.day), pg_catalog.array_agg(p.category::pg_catalog.text) \
             FROM ({from}) o \
             JOIN {schema}.order_items i ON i.order_id = o.order_id \
             JOIN {schema}.products p ON p.product_id = i.product_id \
             WHERE o.problem = 0 AND p.category IS NOT NULL{filter} GROUP BY o.uid"
        );
        let mut names: FxHashMap<String, u32> = FxHashMap::default();
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
                bought.insert(uid, list);
            }
            Ok::<_, pgrx::spi::SpiError>(())
        })
        .or_raise("reading the categories for churn features");
    }

    let ids: Vec<i64> = groups.iter().map(|(id, _)| *id).collect();
    let mut bought_by_user: Vec<Vec<(i32, u32)>> = ids
        .iter()
        .map(|id| bought.remove(id).unwrap_or_default())
        .collect();
    let histories = crate::workers::on_worker_threads(|| {
        use rayon::prelude::*;
        groups
            .par_iter()
            .zip(bought_by_user.par_iter_mut())
            .map(|((_, range), cats)| {
                let orders = events.events[range.clone()]
                    .iter()
                    .map(|e| (e.day, e.amount))
                    .collect();
                History::new(orders, std::mem::take(cats))
            })
            .collect()
    });
    Histories {
        ids,
        histories,
        categories,
    }
}
