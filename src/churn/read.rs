//! Reading every customer's successful orders up to the as-of date through the order-events
//! aggregate (`crate::read::events`: the orders that cannot count are counted by why and reported,
//! as the other reads do), and, where the shop has `order_items` and `products`, the categories
//! bought on each day. Snapshots before the as-of date cut these histories in memory.

use cda_analytics_core::calendar::Day;
use cda_analytics_core::churn::history::History;

use crate::read::categories;
use crate::source::Context;

pub struct Histories {
    /// Customers (at least one counted order by the end day) in user id order.
    pub ids: Vec<i64>,
    pub histories: Vec<History>,
    /// Whether categories were read (else categories_180d is not a feature).
    pub categories: bool,
}

/// The histories up to `end`; `one_user` limits the read to one user.
pub fn histories(ctx: &Context, end: Day, one_user: Option<i64>, announce: bool) -> Histories {
    let (mut events, left_out) = crate::read::events::read(ctx, end, one_user);
    if announce {
        left_out.report("churn features", ctx.explicit_as_of);
    }
    let groups = crate::toolbox::workers::on_worker_threads(|| events.by_user());

    let categories = categories::available(&ctx.config);
    let mut bought = match categories {
        true => {
            categories::read(
                &ctx.config,
                &ctx.source,
                None,
                end,
                one_user,
                "reading the categories for churn features",
            )
            .bought
        }
        false => Default::default(),
    };

    let ids: Vec<i64> = groups.iter().map(|(id, _)| *id).collect();
    let mut bought_by_user: Vec<Vec<(i32, u32)>> = ids
        .iter()
        .map(|id| bought.remove(id).unwrap_or_default())
        .collect();
    let histories = crate::toolbox::workers::on_worker_threads(|| {
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
