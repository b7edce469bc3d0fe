//! Trained recommenders in `ml_recommender_models` and `ml_recommender_products` (each product's
//! popularity and neighbours; `ml_recommender_neighbors` is a view of them): written whole in
//! the caller's transaction (a model trained again replaces its rows), and read back as a core
//! model over the stored products.
//!
//! A backend keeps the last model it read: reading 100,000 products' neighbour lists takes
//! seconds, and `recommend()` is called once per customer. The kept model is the one whose row
//! in `ml_recommender_models` has the same version (its `xmin` and `ctid`, which every
//! train_recommender() changes, since it deletes and inserts the row) and is visible to the
//! caller's snapshot, so a model trained again, or a training rolled back, is read afresh.

use std::cell::RefCell;
use std::rc::Rc;

use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;

use cda_analytics_core::calendar::Day;
use cda_analytics_core::recommend::data::Interactions;
use cda_analytics_core::recommend::models::Model;

use super::{Parameters, spec};
use crate::toolbox::errors::*;
use crate::toolbox::statement::execute;

/// A stored model: its products (ascending, the model's item indexes) and the scorer.
pub struct Loaded {
    pub products: Vec<i64>,
    pub model: Model,
}

impl Loaded {
    /// The customer's row of the model's items (item index, orders) from their products and
    /// order counts; products the model does not know are left out.
    pub fn row(&self, bought: &[(i64, u32)]) -> Vec<(u32, u32)> {
        let mut row: Vec<(u32, u32)> = bought
            .iter()
            .filter_map(|&(p, c)| self.products.binary_search(&p).ok().map(|i| (i as u32, c)))
            .collect();
        row.sort_unstable();
        row
    }
}

/// Stores `model`, trained on `data` up to `as_of`, as `name`, keeping `neighbours` per product.
#[allow(clippy::too_many_arguments)]
pub fn store(
    ext: &str,
    name: &str,
    algorithm: &str,
    p: &Parameters,
    as_of: Day,
    data: &Interactions,
    model: &Model,
    left_out: u64,
) -> usize {
    execute(
        &format!("DELETE FROM {ext}.ml_recommender_models WHERE model_name = $1"),
        &[name.into()],
        "replacing the model",
    );
    let pairs: usize = data.rows.iter().map(Vec::len).sum();
    execute(
        &format!(
            "INSERT INTO {ext}.ml_recommender_models (model_name, algorithm, parameters, as_of_date, customers, \
                 products, pairs, lines_left_out, trained_at) \
             VALUES ($1, $2, pg_catalog.jsonb_build_object('lambda', $3::float8, 'neighbours', $4::int4, \
                 'hybrid_weight', $5::float8, 'popularity_days', $6::int4, 'max_items', $7::int4), \
                 DATE '2000-01-01' + $8, $9, $10, $11, $12, pg_catalog.now())"
        ),
        &[
            name.into(),
            algorithm.into(),
            p.lambda.into(),
            (p.neighbours as i32).into(),
            p.hybrid_weight.into(),
            p.popularity_days.into(),
            (p.max_items as i32).into(),
            as_of.0.into(),
            (data.users.len() as i64).into(),
            (data.items.len() as i64).into(),
            (pairs as i64).into(),
            (left_out as i64).into(),
        ],
        "storing the model",
    );
    // Each product's neighbours as a slice [start + 1 : start + count] of two flat arrays.
    let lists = model.neighbour_lists(p.neighbours);
    let (mut start, mut count, mut neighbour, mut weight) = (vec![], vec![], vec![], vec![]);
    for list in &lists {
        start.push(neighbour.len() as i32);
        count.push(list.len() as i32);
        for &(j, w) in list {
            neighbour.push(data.items[j as usize]);
            weight.push(w);
        }
    }
    let stored = neighbour.len();
    let args: Vec<DatumWithOid<'_>> = vec![
        name.into(),
        data.items.clone().into(),
        model.popularity.clone().into(),
        start.into(),
        count.into(),
        neighbour.into(),
        weight.into(),
    ];
    execute(
        &format!(
            "INSERT INTO {ext}.ml_recommender_products (model_name, product_id, popularity, neighbor_ids, weights) \
             SELECT $1, p, s, coalesce(($6::pg_catalog.int8[])[o + 1 : o + n], '{{}}'), \
                    coalesce(($7::pg_catalog.float8[])[o + 1 : o + n], '{{}}') \
             FROM ROWS FROM (pg_catalog.unnest($2::pg_catalog.int8[]), pg_catalog.unnest($3::pg_catalog.float8[]), \
                             pg_catalog.unnest($4::pg_catalog.int4[]), pg_catalog.unnest($5::pg_catalog.int4[])) \
                  AS t(p, s, o, n)"
        ),
        &args,
        "storing the model's products and neighbours",
    );
    stored
}

thread_local! {
    /// The last model read: its version (schema, name, row version) and the model.
    static KEPT: RefCell<Option<(String, Rc<Loaded>)>> = const { RefCell::new(None) };
}

/// The stored model `name`; 42704 when there is none. The backend's kept model when its row is
/// the same version, else read and kept.
pub fn load(ext: &str, name: &str) -> Rc<Loaded> {
    let head = Spi::connect(|c| {
        let t = c.select(
            &format!(
                "SELECT algorithm, (parameters->>'lambda')::float8, (parameters->>'neighbours')::int4, \
                        (parameters->>'hybrid_weight')::float8, (parameters->>'popularity_days')::int4, \
                        (parameters->>'max_items')::int4, xmin::pg_catalog.text || ctid::pg_catalog.text \
                 FROM {ext}.ml_recommender_models WHERE model_name = $1"
            ),
            None,
            &[name.into()],
        )?;
        if t.is_empty() {
            return Ok(None);
        }
        let r = t.first();
        Ok::<_, pgrx::spi::SpiError>(Some((
            r.get::<String>(1)?.unwrap_or_default(),
            format!("{ext}\0{name}\0{}", r.get::<String>(7)?.unwrap_or_default()),
            Parameters {
                lambda: r.get::<f64>(2)?.unwrap_or(250.0),
                neighbours: r.get::<i32>(3)?.unwrap_or(50).max(1) as usize,
                hybrid_weight: r.get::<f64>(4)?.unwrap_or(0.2),
                popularity_days: r.get::<i32>(5)?.unwrap_or(30),
                max_items: r.get::<i32>(6)?.unwrap_or(5000).max(1) as usize,
            },
        )))
    })
    .or_raise("reading the model");
    let Some((algorithm, version, p)) = head else {
        raise(
            ERRCODE_UNDEFINED_OBJECT,
            format!("no recommender named \"{name}\""),
            Some(format!(
                "Train it first: SELECT * FROM train_recommender('{}');",
                name.replace('\'', "''")
            )),
        )
    };
    if let Some(kept) = KEPT.with(|k| {
        k.borrow()
            .as_ref()
            .filter(|(v, _)| *v == version)
            .map(|(_, m)| Rc::clone(m))
    }) {
        return kept;
    }
    // Let the kept model go before reading the next, so that two are never held at once.
    KEPT.with(|k| k.borrow_mut().take());
    let (products, popularity, neighbours) = Spi::connect(|c| {
        let mut products: Vec<i64> = Vec::new();
        let mut popularity: Vec<f64> = Vec::new();
        let mut lists: Vec<(Vec<i64>, Vec<f64>)> = Vec::new();
        for r in c.select(
            &format!(
                "SELECT product_id, popularity, neighbor_ids, weights FROM {ext}.ml_recommender_products \
                 WHERE model_name = $1 ORDER BY product_id"
            ),
            None,
            &[name.into()],
        )? {
            products.push(r.get::<i64>(1)?.unwrap_or(0));
            popularity.push(r.get::<f64>(2)?.unwrap_or(0.0));
            lists.push((
                r.get::<Vec<Option<i64>>>(3)?
                    .unwrap_or_default()
                    .into_iter()
                    .flatten()
                    .collect(),
                r.get::<Vec<Option<f64>>>(4)?
                    .unwrap_or_default()
                    .into_iter()
                    .flatten()
                    .collect(),
            ));
        }
        // Neighbours as the model's item indexes; a neighbour the model does not list (edited
        // by hand) is left out.
        let neighbours: Vec<Vec<(u32, f64)>> = lists
            .iter()
            .map(|(ids, ws)| {
                ids.iter()
                    .zip(ws)
                    .filter_map(|(n, w)| products.binary_search(n).ok().map(|j| (j as u32, *w)))
                    .collect()
            })
            .collect();
        Ok::<_, pgrx::spi::SpiError>((products, popularity, neighbours))
    })
    .or_raise("reading the model's products and neighbours");
    let algo = spec(&algorithm, &p).algorithm;
    let loaded = Rc::new(Loaded {
        products,
        model: Model::from_parts(algo, popularity, neighbours),
    });
    KEPT.with(|k| *k.borrow_mut() = Some((version, Rc::clone(&loaded))));
    loaded
}
