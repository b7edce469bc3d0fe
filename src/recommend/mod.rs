//! Recommendations: `evaluate_recommenders()` trains every recommender of
//! `cda_analytics_core::recommend` on the order items before a cutoff and measures them on the
//! window after it (the protocol of `products.md` 2.5), the baselines in the same table. The
//! lines come from the items read (counted orders, lines that cannot be a sale left out and
//! reported).

use pgrx::prelude::*;

use cda_analytics_core::recommend::data::Interactions;
use cda_analytics_core::recommend::evaluate::{Protocol, Spec, evaluate};
use cda_analytics_core::recommend::models::{Algorithm, TrainError, Weighting};
use cda_analytics_core::recommend::models::{popularity, train};

use crate::source::Context;
use crate::source::items::of_context;
use crate::toolbox::convert::{date_of, day_of_date};
use crate::toolbox::errors::*;
use crate::toolbox::workers::on_worker_threads;

mod store;

/// The models `evaluate_recommenders` knows, by name.
pub const MODELS: &[&str] = &[
    "popularity",
    "popularity_all",
    "buy_again",
    "item_knn_cosine",
    "item_knn_bm25",
    "ease",
    "default",
];

/// The parameters every recommender shares.
pub struct Parameters {
    pub lambda: f64,
    pub neighbours: usize,
    pub hybrid_weight: f64,
    pub popularity_days: i32,
    pub max_items: usize,
}

/// The model called `name` with `p`.
pub fn spec(name: &str, p: &Parameters) -> Spec {
    let (algorithm, days) = match name {
        "popularity" => (Algorithm::Popularity, Some(p.popularity_days)),
        "popularity_all" => (Algorithm::Popularity, None),
        "buy_again" => (Algorithm::BuyAgain, Some(p.popularity_days)),
        "item_knn_cosine" => (
            Algorithm::ItemKnn {
                weighting: Weighting::Cosine,
                k: p.neighbours,
            },
            Some(p.popularity_days),
        ),
        "item_knn_bm25" => (
            Algorithm::ItemKnn {
                weighting: Weighting::Bm25 { k1: 1.2, b: 0.75 },
                k: p.neighbours,
            },
            Some(p.popularity_days),
        ),
        "ease" => (
            Algorithm::Ease { lambda: p.lambda },
            Some(p.popularity_days),
        ),
        "default" => (
            Algorithm::Hybrid {
                lambda: p.lambda,
                weight: p.hybrid_weight,
            },
            Some(p.popularity_days),
        ),
        other => raise(
            ERRCODE_INVALID_PARAMETER_VALUE,
            format!("unknown recommender \"{other}\""),
            Some(format!("One of: {}.", MODELS.join(", "))),
        ),
    };
    Spec {
        name: name.to_string(),
        algorithm,
        popularity_days: days,
    }
}

/// Raises the error for a model that cannot be trained.
pub fn raise_train(e: TrainError) -> ! {
    match e {
        TrainError::TooManyItems { items, cap } => raise(
            ERRCODE_PROGRAM_LIMIT_EXCEEDED,
            format!("EASE needs a dense matrix of the catalogue: {items} products bought in the training window, more than max_items = {cap}"),
            Some("Raise max_items if the memory allows (8 bytes × items² twice), or use item_knn_bm25 or item_knn_cosine, which scale to any catalogue.".into()),
        ),
        TrainError::NotPositiveDefinite => raise(
            ERRCODE_INVALID_PARAMETER_VALUE,
            "lambda must be a positive number",
            None,
        ),
        TrainError::Stopped => raise_cancelled(),
    }
}

fn check(ok: bool, message: String) {
    if !ok {
        raise(ERRCODE_INVALID_PARAMETER_VALUE, message, None);
    }
}

/// The shared parameters, checked.
fn parameters(
    lambda: Option<f64>,
    neighbours: Option<i32>,
    hybrid_weight: Option<f64>,
    popularity_days: Option<i32>,
    max_items: Option<i32>,
) -> Parameters {
    let (neighbours, max_items) = (
        required(neighbours, "neighbours"),
        required(max_items, "max_items"),
    );
    let p = Parameters {
        lambda: required(lambda, "lambda"),
        neighbours: neighbours.max(0) as usize,
        hybrid_weight: required(hybrid_weight, "hybrid_weight"),
        popularity_days: required(popularity_days, "popularity_days"),
        max_items: max_items.max(0) as usize,
    };
    check(
        p.lambda > 0.0 && p.lambda.is_finite(),
        format!("lambda must be a positive number, got {}", p.lambda),
    );
    check(
        (1..=1000).contains(&neighbours),
        format!("neighbours must be between 1 and 1000, got {neighbours}"),
    );
    check(
        p.hybrid_weight.is_finite() && p.hybrid_weight >= 0.0,
        format!(
            "hybrid_weight must be zero or positive, got {}",
            p.hybrid_weight
        ),
    );
    check(
        (1..=3660).contains(&p.popularity_days),
        format!(
            "popularity_days must be between 1 and 3660, got {}",
            p.popularity_days
        ),
    );
    check(
        (1..=20000).contains(&max_items),
        format!("max_items must be between 1 and 20000, got {max_items}"),
    );
    p
}

/// Trains each of `models` on the order lines before `cutoff` and measures it on the lines of
/// [cutoff, cutoff + horizon): hit rate, precision, recall, NDCG and MAP at each k of `ks`, and
/// catalogue coverage, in two modes (`all`: repeat purchases count; `new`: only products new to
/// the customer, whose own products are never recommended). Customers are evaluated when they
/// bought in both windows; buyers with no history are counted in `cold_start_buyers`.
#[allow(clippy::type_complexity, clippy::too_many_arguments)]
#[pg_extern(stable, parallel_restricted)]
#[search_path(pg_catalog, pg_temp)]
fn evaluate_recommenders(
    cutoff: Option<pgrx::datum::Date>,
    horizon: default!(Option<pgrx::datum::Interval>, "'90 days'"),
    ks: default!(Option<Vec<Option<i32>>>, "'{10,20}'"),
    models: default!(Option<Vec<Option<String>>>, "NULL"),
    lambda: default!(Option<f64>, 250.0),
    neighbours: default!(Option<i32>, 50),
    hybrid_weight: default!(Option<f64>, 0.2),
    popularity_days: default!(Option<i32>, 30),
    max_items: default!(Option<i32>, 5000),
) -> TableIterator<
    'static,
    (
        name!(model, String),
        name!(mode, String),
        name!(k, i32),
        name!(users, i64),
        name!(hit_rate, f64),
        name!(precision, f64),
        name!(recall, f64),
        name!(ndcg, f64),
        name!(map, f64),
        name!(coverage, f64),
        name!(cold_start_buyers, i64),
    ),
> {
    let cutoff = required(cutoff, "cutoff");
    let cutoff_day = day_of_date(cutoff, "cutoff");
    let horizon = required(horizon, "horizon");
    let ks = required(ks, "ks");
    let p = parameters(
        lambda,
        neighbours,
        hybrid_weight,
        popularity_days,
        max_items,
    );
    if ks.is_empty()
        || ks
            .iter()
            .any(|k| !k.is_some_and(|k| (1..=1000).contains(&k)))
    {
        raise(
            ERRCODE_INVALID_PARAMETER_VALUE,
            "ks must list one or more cutoffs k between 1 and 1000",
            Some("For example: ks => '{10,20}'".into()),
        );
    }
    let ks: Vec<usize> = ks.into_iter().flatten().map(|k| k as usize).collect();
    // The test window's last day: the cutoff plus the horizon, less a day.
    let end: pgrx::datum::Date = Spi::get_one_with_args(
        "SELECT ($1::pg_catalog.date + $2::pg_catalog.interval)::pg_catalog.date",
        &[cutoff.into(), horizon.into()],
    )
    .or_raise("adding the horizon")
    .unwrap_or(cutoff);
    let end_day = day_of_date(end, "cutoff + horizon");
    check(
        end_day.0 > cutoff_day.0 && end_day.0 - cutoff_day.0 <= 3660,
        "horizon must be at least a day and at most ten years".to_string(),
    );
    let names: Vec<String> = match models {
        None => MODELS.iter().map(|m| m.to_string()).collect(),
        Some(list) => list
            .into_iter()
            .map(|m| {
                m.unwrap_or_else(|| {
                    raise(
                        ERRCODE_NULL_VALUE_NOT_ALLOWED,
                        "models must not contain NULL",
                        None,
                    )
                })
            })
            .collect(),
    };
    let specs: Vec<Spec> = names.iter().map(|n| spec(n, &p)).collect();
    let ctx = Context::load(Some(date_of(cda_analytics_core::calendar::Day(
        end_day.0 - 1,
    ))));
    let mut phases = cda_analytics_core::phases::Phases::start();
    let items = of_context(&ctx);
    let read = crate::read::items::read_reported(&ctx, &items, None, "evaluate_recommenders");
    phases.mark("order lines read");
    let protocol = Protocol {
        cutoff: cutoff_day.0,
        end: end_day.0,
        ks,
        max_items: p.max_items,
    };
    let result = on_worker_threads(|| evaluate(&read.lines, &protocol, &specs));
    let e = result.unwrap_or_else(|e| raise_train(e));
    phases.mark("trained and evaluated");
    debug_phases("evaluate_recommenders", &phases);
    notice(
        format!(
            "evaluate_recommenders: trained on {} customers, {} products and {} customer-product pairs before {}; {} customers bought in the test window, {} of them with no history",
            e.train_users,
            e.train_items,
            e.train_pairs,
            cutoff_day,
            e.test_buyers,
            e.cold_start_buyers
        ),
        None,
    );
    let cold = e.cold_start_buyers as i64;
    let rows: Vec<_> = e
        .rows
        .into_iter()
        .map(|r| {
            (
                r.model,
                r.mode.name().to_string(),
                r.k as i32,
                r.users as i64,
                r.metrics.hit,
                r.metrics.precision,
                r.metrics.recall,
                r.metrics.ndcg,
                r.metrics.map,
                r.coverage,
                cold,
            )
        })
        .collect();
    TableIterator::new(rows)
}

/// Trains a recommender on every counted order line up to `as_of` (default today) and stores it
/// as `model_name`, replacing a model of that name: its products with their popularity, and
/// each product's `neighbours` (item-kNN's similarities, or the largest weights of EASE's item
/// matrix). `algorithm` is one of evaluate_recommenders()'s models; `default` is EASE plus
/// `hybrid_weight` × the customer's own orders of each product.
#[allow(clippy::type_complexity, clippy::too_many_arguments)]
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn train_recommender(
    model_name: Option<&str>,
    algorithm: default!(Option<&str>, "'default'"),
    as_of: default!(Option<pgrx::datum::Date>, "NULL"),
    lambda: default!(Option<f64>, 250.0),
    neighbours: default!(Option<i32>, 50),
    hybrid_weight: default!(Option<f64>, 0.2),
    popularity_days: default!(Option<i32>, 30),
    max_items: default!(Option<i32>, 5000),
) -> TableIterator<
    'static,
    (
        name!(model_name, String),
        name!(algorithm, String),
        name!(customers, i64),
        name!(products, i64),
        name!(pairs, i64),
        name!(neighbours_stored, i64),
        name!(lines_left_out, i64),
    ),
> {
    let name = required(model_name, "model_name");
    require_model_name(name);
    let algorithm = required(algorithm, "algorithm");
    let p = parameters(
        lambda,
        neighbours,
        hybrid_weight,
        popularity_days,
        max_items,
    );
    let s = spec(algorithm, &p);
    let ctx = Context::load(as_of);
    crate::write::refresh::lock(&ctx.ext, "ml_recommender_models");
    let mut phases = cda_analytics_core::phases::Phases::start();
    let items = of_context(&ctx);
    let read = crate::read::items::read_reported(&ctx, &items, None, "train_recommender");
    phases.mark("order lines read");
    let end = ctx.as_of.0 + 1;
    let data = Interactions::build(&read.lines, None, end);
    if data.items.is_empty() {
        raise(
            ERRCODE_NO_DATA_FOUND,
            format!(
                "no counted order line up to {}: nothing to train on",
                ctx.as_of
            ),
            Some("Check the item source: SELECT * FROM order_items_report();".into()),
        );
    }
    let pop = match s.popularity_days {
        Some(days) => popularity(
            &data,
            &Interactions::build(&read.lines, Some(end - days), end),
        ),
        None => data.buyers.iter().map(|b| f64::from(*b)).collect(),
    };
    phases.mark("customers x products built");
    let model = on_worker_threads(|| train(&data, pop, s.algorithm, p.max_items))
        .unwrap_or_else(|e| raise_train(e));
    phases.mark("trained");
    let stored = store::store(
        &ctx.ext,
        name,
        algorithm,
        &p,
        ctx.as_of,
        &data,
        &model,
        read.left_out_total(),
    );
    phases.mark("stored");
    debug_phases(&format!("train_recommender('{algorithm}')"), &phases);
    TableIterator::once((
        name.to_string(),
        algorithm.to_string(),
        data.users.len() as i64,
        data.items.len() as i64,
        data.rows.iter().map(Vec::len).sum::<usize>() as i64,
        stored as i64,
        read.left_out_total() as i64,
    ))
}

/// Each product's distinct orders among `lines`.
fn bought(lines: &[cda_analytics_core::items::ItemLine]) -> Vec<(i64, u32)> {
    let mut pairs: Vec<(i64, i64)> = lines.iter().map(|l| (l.product, l.order)).collect();
    pairs.sort_unstable();
    pairs.dedup();
    let mut out: Vec<(i64, u32)> = Vec::new();
    for (p, _) in pairs {
        match out.last_mut() {
            Some((q, n)) if *q == p => *n += 1,
            _ => out.push((p, 1)),
        }
    }
    out
}

/// The top `k` of `loaded` for a customer who bought `bought` (product, orders), with the
/// products of theirs that led to each (at most three); `scratch` is `Model::rank`'s.
fn top_for(
    loaded: &store::Loaded,
    bought: &[(i64, u32)],
    k: usize,
    exclude_purchased: bool,
    scratch: &mut Vec<f64>,
) -> Vec<(i64, f64, Vec<i64>)> {
    let row = loaded.row(bought);
    let owned = |j: usize| row.binary_search_by_key(&(j as u32), |r| r.0).is_ok();
    loaded
        .model
        .rank(Some(&row), k, |j| exclude_purchased && owned(j), scratch)
        .into_iter()
        .map(|(j, s)| {
            let why = loaded
                .model
                .explain(&row, j, 3)
                .into_iter()
                .map(|(i, _)| loaded.products[i as usize])
                .collect();
            (loaded.products[j as usize], s, why)
        })
        .collect()
}

fn check_k(k: i32) -> usize {
    check(
        (1..=1000).contains(&k),
        format!("k must be between 1 and 1000, got {k}"),
    );
    k as usize
}

/// The `k` products `model_name` recommends to `user_id` now, from everything they have bought
/// (a customer with no history gets the most popular products), best first, with the products of
/// theirs that led to each (`because_of`, empty for popularity). `exclude_purchased` leaves out
/// what they already bought.
#[allow(clippy::type_complexity)]
#[pg_extern(stable, parallel_restricted)]
#[search_path(pg_catalog, pg_temp)]
fn recommend(
    user_id: Option<i64>,
    k: default!(Option<i32>, 10),
    model_name: default!(Option<&str>, "'default'"),
    exclude_purchased: default!(Option<bool>, false),
) -> TableIterator<
    'static,
    (
        name!(rank, i32),
        name!(product_id, i64),
        name!(score, f64),
        name!(because_of, Vec<i64>),
    ),
> {
    let user = required(user_id, "user_id");
    let k = check_k(required(k, "k"));
    let name = required(model_name, "model_name");
    let exclude = required(exclude_purchased, "exclude_purchased");
    let ext = crate::source::ext_schema();
    let loaded = store::load(&ext, name);
    let ctx = Context::load(None);
    let items = of_context(&ctx);
    let read = crate::read::items::read(&ctx, &items, None, ctx.as_of, Some(user));
    let rows: Vec<_> = top_for(&loaded, &bought(&read.lines), k, exclude, &mut Vec::new())
        .into_iter()
        .enumerate()
        .map(|(r, (p, s, why))| (r as i32 + 1, p, s, why))
        .collect();
    TableIterator::new(rows)
}

/// The `k` products most similar to `product_id` in `model_name` (item-kNN's similarities, or
/// EASE's largest weights), best first; none when the model does not know the product.
#[allow(clippy::type_complexity)]
#[pg_extern(stable, parallel_safe)]
#[search_path(pg_catalog, pg_temp)]
fn similar_products(
    product_id: Option<i64>,
    k: default!(Option<i32>, 10),
    model_name: default!(Option<&str>, "'default'"),
) -> TableIterator<
    'static,
    (
        name!(rank, i32),
        name!(similar_product_id, i64),
        name!(weight, f64),
    ),
> {
    let product = required(product_id, "product_id");
    let k = check_k(required(k, "k"));
    let loaded = store::load(
        &crate::source::ext_schema(),
        required(model_name, "model_name"),
    );
    let rows: Vec<_> = match loaded.products.binary_search(&product) {
        Ok(i) => loaded
            .model
            .similar(i as u32, k)
            .into_iter()
            .enumerate()
            .map(|(r, (j, w))| (r as i32 + 1, loaded.products[j as usize], w))
            .collect(),
        Err(_) => Vec::new(),
    };
    TableIterator::new(rows)
}

/// Writes every customer's top `k` (customers with a counted order line up to `as_of`, default
/// today) into `ml_user_recommendations`, replacing its contents in one transaction.
#[allow(clippy::type_complexity)]
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn calculate_all_recommendations(
    model_name: default!(Option<&str>, "'default'"),
    k: default!(Option<i32>, 10),
    exclude_purchased: default!(Option<bool>, false),
    as_of: default!(Option<pgrx::datum::Date>, "NULL"),
) -> TableIterator<'static, (name!(customers, i64), name!(rows, i64))> {
    let name = required(model_name, "model_name");
    let k = check_k(required(k, "k"));
    let exclude = required(exclude_purchased, "exclude_purchased");
    let ctx = Context::load(as_of);
    crate::write::refresh::lock(&ctx.ext, "ml_user_recommendations");
    let kept = store::load(&ctx.ext, name);
    let loaded: &store::Loaded = &kept;
    let items = of_context(&ctx);
    let read =
        crate::read::items::read_reported(&ctx, &items, None, "calculate_all_recommendations");
    let mut lines = read.lines;
    lines.sort_unstable_by_key(|l| l.user);
    let by_user: Vec<&[cda_analytics_core::items::ItemLine]> =
        lines.chunk_by(|a, b| a.user == b.user).collect();
    let lists: Vec<(i64, Vec<(i64, f64, Vec<i64>)>)> = on_worker_threads(|| {
        use rayon::prelude::*;
        by_user
            .par_iter()
            .map_init(Vec::new, |scratch, l| {
                (l[0].user, top_for(loaded, &bought(l), k, exclude, scratch))
            })
            .collect()
    });
    let (mut user, mut rank, mut product, mut score, mut why) =
        (vec![], vec![], vec![], vec![], vec![]);
    for (u, list) in &lists {
        for (r, (p, s, w)) in list.iter().enumerate() {
            user.push(*u);
            rank.push(r as i32 + 1);
            product.push(*p);
            score.push(*s);
            why.push(
                w.iter()
                    .map(|x| x.to_string())
                    .collect::<Vec<_>>()
                    .join(","),
            );
        }
    }
    let rows = user.len() as i64;
    crate::toolbox::statement::execute(
        &format!("DELETE FROM {}.ml_user_recommendations", ctx.ext),
        &[],
        "clearing ml_user_recommendations",
    );
    let args: Vec<pgrx::datum::DatumWithOid<'_>> = vec![
        user.into(),
        rank.into(),
        product.into(),
        score.into(),
        why.into(),
        name.into(),
        ctx.as_of.0.into(),
    ];
    crate::toolbox::statement::execute(
        &format!(
            "INSERT INTO {}.ml_user_recommendations (user_id, rank, product_id, score, because_of, model_name, \
                 as_of_date, computed_at) \
             SELECT u, r, p, s, pg_catalog.string_to_array(w, ',')::pg_catalog.int8[], $6, \
                 DATE '2000-01-01' + $7, pg_catalog.now() \
             FROM ROWS FROM (pg_catalog.unnest($1::pg_catalog.int8[]), pg_catalog.unnest($2::pg_catalog.int4[]), \
                 pg_catalog.unnest($3::pg_catalog.int8[]), pg_catalog.unnest($4::pg_catalog.float8[]), \
                 pg_catalog.unnest($5::pg_catalog.text[])) AS t(u, r, p, s, w)",
            ctx.ext
        ),
        &args,
        "writing ml_user_recommendations",
    );
    TableIterator::once((lists.len() as i64, rows))
}
