//! The price elasticity page: the estimates of a level with their intervals (a floating bar per
//! estimate) and verdicts, and the cells behind one (price against units, log scales). Read
//! live from the orders: an operator's; the analyst is told.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use minijinja::context;
use serde::Deserialize;
use serde_json::{Value, json};

use super::pages::{live, parsed, show};
use super::{Viewer, render};
use crate::AppState;
use crate::api::elasticity::{
    EstimateQuery, LEVELS, PERIODS, PRICES, cells_sql, checked, estimates_sql,
};
use crate::error::ApiError;

#[derive(Deserialize, Default)]
pub struct ElasticityQuery {
    level: Option<String>,
    period: Option<String>,
    price: Option<String>,
    from: Option<String>,
    to: Option<String>,
    /// The category or product whose cells to plot.
    category: Option<String>,
    product_id: Option<i64>,
}

pub async fn elasticity(
    State(s): State<AppState>,
    viewer: Viewer,
    query: Result<Query<ElasticityQuery>, QueryRejection>,
) -> Response {
    let page = async { page(&s, &viewer, &parsed(query)?.0).await };
    show(&viewer, page.await)
}

fn nonempty(v: &Option<String>) -> Option<String> {
    v.clone().filter(|x| !x.is_empty())
}

async fn page(s: &AppState, viewer: &Viewer, q: &ElasticityQuery) -> Result<Response, ApiError> {
    let ext = s.db.schema();
    let role = &viewer.role;
    let query = EstimateQuery {
        level: nonempty(&q.level),
        period: nonempty(&q.period),
        price: nonempty(&q.price),
        from: nonempty(&q.from),
        to: nonempty(&q.to),
    };
    let (level, period, price) = checked(&query)?;
    let estimates = live(
        s,
        role,
        &estimates_sql(ext),
        &[&level, &period, &price, &query.from, &query.to],
    )
    .await;
    let list = estimates.get("rows").cloned().unwrap_or(Value::Null);
    let rows = list.as_array().cloned().unwrap_or_default();
    // Verdict counts, and the estimates shown: every category (or the one pooled row), the
    // usable products only (there may be thousands).
    let mut counts: Vec<(String, usize)> = Vec::new();
    for r in &rows {
        let v = r["reliability"].as_str().unwrap_or("").to_string();
        match counts.iter_mut().find(|c| c.0 == v) {
            Some(c) => c.1 += 1,
            None => counts.push((v, 1)),
        }
    }
    counts.sort();
    let shown: Vec<Value> = rows
        .iter()
        .filter(|r| level != "product" || r["reliability"] == "ok")
        .cloned()
        .collect();
    let with_estimate: Vec<&Value> = shown
        .iter()
        .filter(|r| r["elasticity"].is_number())
        .collect();
    let name = |r: &Value| -> Value {
        match level.as_str() {
            "product" => r["product_id"].clone(),
            "category" => r["category"].clone(),
            _ => json!("all products"),
        }
    };
    let chart = (!with_estimate.is_empty()).then(|| {
        json!({"type": "bar", "floating": true, "x": level, "y": "elasticity",
            "labels": with_estimate.iter().map(|r| name(r)).collect::<Vec<_>>(),
            "datasets": [
                {"label": "95% interval", "order": 1, "data": with_estimate.iter().map(|r| json!([r["ci_low"], r["ci_high"]])).collect::<Vec<_>>()},
                {"label": "elasticity", "type": "line", "showLine": false, "pointRadius": 4,
                 "data": with_estimate.iter().map(|r| r["elasticity"].clone()).collect::<Vec<_>>()}]})
    });
    // The cells of the chosen category or product (by default the first shown).
    let target_category = nonempty(&q.category).or_else(|| {
        (level == "category")
            .then(|| {
                shown
                    .first()
                    .and_then(|r| r["category"].as_str())
                    .map(str::to_string)
            })
            .flatten()
    });
    let target_product = q.product_id.or_else(|| {
        (level == "product")
            .then(|| shown.first().and_then(|r| r["product_id"].as_i64()))
            .flatten()
    });
    let cells = if target_category.is_some() || target_product.is_some() {
        let (category, product) = if target_product.is_some() {
            (None, target_product)
        } else {
            (target_category.clone(), None)
        };
        let c = live(
            s,
            role,
            &cells_sql(ext),
            &[&product, &category, &period, &price, &query.from, &query.to],
        )
        .await;
        c.get("rows").map(|rows| {
            let list = rows.as_array().cloned().unwrap_or_default();
            json!({"type": "scatter", "x": "price paid", "y": "units", "logx": true, "logy": true,
                   "labels": list.iter().map(|c| json!(format!("{} {}", c["product_id"], c["period_start"].as_str().unwrap_or("")))).collect::<Vec<_>>(),
                   "datasets": [{"label": "product × period",
                                 "data": list.iter().map(|c| json!({"x": c["price"], "y": c["units"]})).collect::<Vec<_>>()}]})
        })
    } else {
        None
    };
    let problem = estimates.get("error").map(|_| estimates.clone());
    Ok(render(
        "elasticity.html",
        "elasticity",
        Some(viewer),
        context! {
            problem, counts, shown, chart, cells,
            cells_of => target_product.map(|p| format!("product {p}")).or(target_category),
            form => json!({"level": level, "levels": LEVELS, "period": period, "periods": PERIODS,
                           "price": price, "prices": PRICES, "from": query.from, "to": query.to}),
        },
        StatusCode::OK,
    ))
}
