//! Recommendations: `evaluate_recommenders()` trains every recommender of
//! `cda_analytics_core::recommend` on the order items before a cutoff and measures them on the
//! window after it (the protocol of `products.md` 2.5), the baselines in the same table. The
//! lines come from the items read (counted orders, lines that cannot be a sale left out and
//! reported).

use pgrx::prelude::*;

use cda_analytics_core::recommend::evaluate::{Protocol, Spec, evaluate};
use cda_analytics_core::recommend::models::{Algorithm, TrainError, Weighting};

use crate::source::Context;
use crate::source::items::{ItemConfig, resolve};
use crate::toolbox::convert::{date_of, day_of_date};
use crate::toolbox::errors::*;
use crate::toolbox::workers::on_worker_threads;

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
        TrainError::Stopped => {
            pgrx::check_for_interrupts!();
            raise(ERRCODE_QUERY_CANCELED, "canceling statement due to user request", None)
        }
    }
}

fn check(ok: bool, message: String) {
    if !ok {
        raise(ERRCODE_INVALID_PARAMETER_VALUE, message, None);
    }
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
    let p = Parameters {
        lambda: required(lambda, "lambda"),
        neighbours: required(neighbours, "neighbours").max(0) as usize,
        hybrid_weight: required(hybrid_weight, "hybrid_weight"),
        popularity_days: required(popularity_days, "popularity_days"),
        max_items: required(max_items, "max_items").max(0) as usize,
    };
    check(
        p.lambda > 0.0 && p.lambda.is_finite(),
        format!("lambda must be a positive number, got {}", p.lambda),
    );
    check(
        (1..=1000).contains(&p.neighbours),
        format!(
            "neighbours must be between 1 and 1000, got {}",
            p.neighbours
        ),
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
        (1..=20000).contains(&p.max_items),
        format!("max_items must be between 1 and 20000, got {}", p.max_items),
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
    let items = resolve(&ctx.config, &ItemConfig::load(&ctx.ext, &ctx.config));
    let read = crate::read::items::read(&ctx, &items, None, ctx.as_of);
    if let Some(report) = read.report() {
        notice(format!("evaluate_recommenders: {report}"), None);
    }
    let protocol = Protocol {
        cutoff: cutoff_day.0,
        end: end_day.0,
        ks,
        max_items: p.max_items,
    };
    let result = on_worker_threads(|| evaluate(&read.lines, &protocol, &specs));
    let e = result.unwrap_or_else(|e| raise_train(e));
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
