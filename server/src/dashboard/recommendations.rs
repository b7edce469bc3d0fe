//! The recommendations page: the trained models, a customer's stored list with the products that
//! led to each, a product's most similar products, and the evaluation of every recommender
//! against the baselines (computed live from the orders: an operator's; the analyst is told).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use minijinja::context;
use serde::Deserialize;
use serde_json::{Value, json};

use super::pages::{live, parsed, rows, show};
use super::{Viewer, render};
use crate::AppState;
use crate::api::recommendations::evaluation_sql;
use crate::error::ApiError;

#[derive(Deserialize, Default)]
pub struct RecommendationsQuery {
    user_id: Option<i64>,
    product_id: Option<i64>,
    model: Option<String>,
    cutoff: Option<String>,
    horizon: Option<String>,
}

pub async fn recommendations(
    State(s): State<AppState>,
    viewer: Viewer,
    query: Result<Query<RecommendationsQuery>, QueryRejection>,
) -> Response {
    let page = async { page(&s, &viewer, &parsed(query)?.0).await };
    show(&viewer, page.await)
}

async fn page(
    s: &AppState,
    viewer: &Viewer,
    q: &RecommendationsQuery,
) -> Result<Response, ApiError> {
    let ext = s.db.schema();
    let role = &viewer.role;
    let models = rows(
        s,
        role,
        &format!("SELECT * FROM {ext}.ml_recommender_models ORDER BY model_name"),
        &[],
    )
    .await?;
    let model = q.model.clone().filter(|m| !m.is_empty()).or_else(|| {
        models
            .get(0)
            .and_then(|m| m["model_name"].as_str())
            .map(str::to_string)
    });
    // The stored list of one customer (by default the first one stored).
    let user_id = match q.user_id {
        Some(u) => Some(u),
        None => rows(
            s,
            role,
            &format!("SELECT min(user_id) AS u FROM {ext}.ml_user_recommendations"),
            &[],
        )
        .await?[0]["u"]
            .as_i64(),
    };
    let list = match user_id {
        Some(u) => rows(
            s,
            role,
            &format!(
                "SELECT rank, product_id, score, because_of, model_name, as_of_date FROM {ext}.ml_user_recommendations \
                 WHERE user_id = $1 ORDER BY rank"
            ),
            &[&u],
        )
        .await?,
        None => Value::Array(Vec::new()),
    };
    // A product's neighbours (by default the customer's first recommendation).
    let product_id = q
        .product_id
        .or_else(|| list.get(0).and_then(|r| r["product_id"].as_i64()));
    let similar = match (product_id, &model) {
        (Some(p), Some(m)) => {
            rows(
                s,
                role,
                &format!("SELECT * FROM {ext}.similar_products($1, 10, $2)"),
                &[&p, m],
            )
            .await?
        }
        _ => Value::Array(Vec::new()),
    };
    // The evaluation: by default the 90 days before the model's as-of date.
    let cutoff = match q.cutoff.clone().filter(|c| !c.is_empty()) {
        Some(c) => Some(c),
        None => match models.get(0).and_then(|m| m["as_of_date"].as_str()) {
            Some(day) => rows(s, role, "SELECT ($1::text::date - 90)::text AS d", &[&day]).await?
                [0]["d"]
                .as_str()
                .map(str::to_string),
            None => None,
        },
    };
    let (evaluation, chart, cutoff) = match cutoff {
        Some(cutoff) => {
            let k = Some(20i32);
            let (lambda, neighbours) = (None::<f64>, None::<i32>);
            let result = live(
                s,
                role,
                &evaluation_sql(ext),
                &[&cutoff, &q.horizon, &k, &lambda, &neighbours],
            )
            .await;
            let chart = result.get("rows").map(|r| {
                let mode = |m: &str| -> Vec<Value> {
                    r.as_array()
                        .map(|a| {
                            a.iter()
                                .filter(|x| x["mode"] == m)
                                .map(|x| x["ndcg"].clone())
                                .collect()
                        })
                        .unwrap_or_default()
                };
                let names: Vec<Value> = r
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter(|x| x["mode"] == "all")
                            .map(|x| x["model"].clone())
                            .collect()
                    })
                    .unwrap_or_default();
                json!({"type": "bar", "x": "model", "y": "NDCG@20", "labels": names,
                       "datasets": [{"label": "repeats count (all)", "data": mode("all")},
                                    {"label": "new products only", "data": mode("new")}]})
            });
            (result, chart, Some(cutoff))
        }
        None => (Value::Null, None, None),
    };
    Ok(render(
        "recommendations.html",
        "recommendations",
        Some(viewer),
        context! {
            models, model, user_id, list, product_id, similar, evaluation, chart, cutoff,
            horizon => q.horizon.clone().filter(|h| !h.is_empty()).unwrap_or_else(|| "90 days".into()),
        },
        StatusCode::OK,
    ))
}
