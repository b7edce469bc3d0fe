//! Reading snapshot features at day D (definitions in `cda_analytics_core::segmentation::features`)
//! from the order events (`crate::read::events`: every order that cannot count is counted by why
//! and reported, never summed), with money summed exactly in the amount's smallest unit; and,
//! where the shop has `order_items` and `products` next to its orders, the categories
//! (`crate::read::categories`).

use rustc_hash::FxHashMap;

use cda_analytics_core::calendar::Day;
use cda_analytics_core::left_out::Reason;
use cda_analytics_core::money::{div_round, format_minor};
use cda_analytics_core::segmentation::Snapshot;

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
                f64::from(cats.get(&id).copied().unwrap_or(0)),
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
