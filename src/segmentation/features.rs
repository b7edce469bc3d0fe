//! Reading snapshot features at day D (definitions in `cda_analytics_core::segmentation::features`)
//! from the order events (`crate::read::events`: every order that cannot count is counted by why
//! and reported, never summed), with money summed exactly in the amount's smallest unit; and,
//! where the shop has `order_items` and `products` next to its orders, the categories
//! (`crate::read::categories`).

use rustc_hash::FxHashMap;

use cda_analytics_core::calendar::Day;
use cda_analytics_core::left_out::Reason;
use cda_analytics_core::money::format_minor;
use cda_analytics_core::segmentation::Snapshot;
use cda_analytics_core::segmentation::features::snapshot_of;

use crate::read::{categories, events};
use crate::source::{Config, Source};
use crate::toolbox::errors::*;

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
    let known = events::users(source, &config.time_zone, as_of, None);
    let ext = crate::source::ext_schema();
    let (mut events, left_out) = events::read_with(&ext, config, source, as_of, None, &known);
    let groups = crate::toolbox::workers::on_worker_threads(|| events.by_user());
    let scale = source.amount_scale.min(15);
    let mut not_registered = 0i64;
    // The customers on D: their orders, in user id order.
    let mut customers = Vec::with_capacity(groups.len());
    for (uid, range) in groups {
        if known.get(uid).unwrap_or(false) {
            customers.push((uid, range));
        } else {
            not_registered += range.len() as i64;
        }
    }

    let categories = categories::available(config);
    let mut cats: FxHashMap<i64, u32> = FxHashMap::default();
    if categories {
        // The last 180 days, as the other 180-day features.
        let bought = categories::read(
            config,
            source,
            Some(Day(as_of.0 - 179)),
            as_of,
            None,
            "reading the categories for snapshot features",
        );
        cats = bought
            .distinct_by(|_| Some(()))
            .into_iter()
            .map(|((uid, ()), n)| (uid, n))
            .collect();
    } else if announce {
        notice(
            format!(
                "categories_180d skipped: no order_items(order_id, product_id) and products(product_id, category) next to {}",
                source.orders
            ),
            Some("The other features are computed; clusters are fitted without categories.".into()),
        );
    }

    let mut snapshots = Vec::with_capacity(customers.len());
    let mut money_text = FxHashMap::default();
    for (id, range) in customers {
        let categories_180d = cats.get(&id).copied().unwrap_or(0);
        let Some((snapshot, money)) =
            snapshot_of(id, &events.events[range], as_of, scale, categories_180d)
        else {
            continue;
        };
        snapshots.push(snapshot);
        money_text.insert(
            id,
            (
                // No order in the 180 days: 0, as the SQL sum's NULL was shown.
                match money.aov_180d {
                    Some(_) => format_minor(money.monetary_180d, scale),
                    None => "0".into(),
                },
                money.aov_180d.map(|a| format_minor(a, scale)),
            ),
        );
    }
    let registered = known.registered() as i64;
    let without_orders = registered - snapshots.len() as i64;
    // Orders of users who signed up after the as-of date: their users are left out.
    let mut left_out = left_out;
    left_out.counts.add(Reason::OfLeftOutUser, not_registered);
    left_out.report("snapshot features", explicit_as_of);
    Features {
        snapshots,
        categories,
        without_orders,
        money_text,
    }
}
