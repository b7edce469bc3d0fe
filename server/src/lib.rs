//! cda-server: the HTTP API over cda_analytics' SQL surface. It talks to PostgreSQL only through
//! SQL, as the caller's database role, so that PostgreSQL's grants decide what a request may do.

pub mod api;
pub mod auth;
pub mod config;
pub mod csv_output;
pub mod dashboard;
pub mod db;
pub mod error;
pub mod jobs;
pub mod notify;
pub mod paging;

use axum::Router;
use axum::extract::FromRef;
use axum::http::{Request, StatusCode};
use axum::response::IntoResponse;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use utoipa::OpenApi;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use auth::Auth;
use db::Db;
use error::ApiError;

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub auth: Auth,
    pub jobs: jobs::Jobs,
    pub sessions: dashboard::Sessions,
    pub pages: dashboard::PageCache,
    /// The Telegram webhook's receiving end, when commands come by webhook.
    pub telegram_webhook: Option<std::sync::Arc<notify::webhook::Webhook>>,
}

impl FromRef<AppState> for Auth {
    fn from_ref(state: &AppState) -> Auth {
        state.auth.clone()
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "cda_analytics API", description = "Customer analytics computed inside PostgreSQL: LTV, RFM, clusters, CLV, churn, anomalies, cohort retention, recommendations and price elasticity."),
    modifiers(&BearerAuth),
    tags(
        (name = "ltv", description = "Lifetime value"),
        (name = "rfm", description = "Recency, frequency, monetary segments"),
        (name = "clusters", description = "K-means segments"),
        (name = "clv", description = "Predictive customer lifetime value"),
        (name = "churn", description = "Churn and purchase prediction"),
        (name = "anomalies", description = "Unusual customer weeks"),
        (name = "cohorts", description = "Retention by acquisition cohort"),
        (name = "recommendations", description = "Products to show a customer"),
        (name = "elasticity", description = "How units move with the price paid"),
        (name = "customers", description = "Every result for one customer"),
        (name = "configuration", description = "What the extension reads"),
        (name = "jobs", description = "Long work started by the API"),
        (name = "system", description = "Health and readiness")
    )
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The API's routes and their OpenAPI description, from the same declarations.
pub fn routes() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let v1 = OpenApiRouter::new()
        .routes(routes!(api::ltv::summary))
        .routes(routes!(api::ltv::users))
        .routes(routes!(api::ltv::user))
        .routes(routes!(api::ltv::distribution))
        .routes(routes!(api::ltv::segments))
        .routes(routes!(api::ltv::insights))
        .routes(routes!(api::ltv::runs))
        .routes(routes!(api::ltv::cohorts))
        .routes(routes!(api::rfm::segments))
        .routes(routes!(api::rfm::grid))
        .routes(routes!(api::rfm::customers))
        .routes(routes!(api::rfm::customer))
        .routes(routes!(api::rfm::migration))
        .routes(routes!(api::rfm::sizes))
        .routes(routes!(api::clusters::models))
        .routes(routes!(api::clusters::model))
        .routes(routes!(api::clusters::sizes))
        .routes(routes!(api::clusters::sizes_over_time))
        .routes(routes!(api::clusters::migration))
        .routes(routes!(api::clv::models))
        .routes(routes!(api::clv::model))
        .routes(routes!(api::clv::holdout))
        .routes(routes!(api::clv::matrix))
        .routes(routes!(api::clv::customers))
        .routes(routes!(api::clv::customer))
        .routes(routes!(api::clv::purchase_probabilities))
        .routes(routes!(api::churn::summary))
        .routes(routes!(api::churn::high_risk))
        .routes(routes!(api::churn::customer))
        .routes(routes!(api::churn::models))
        .routes(routes!(api::churn::purchase_scores))
        .routes(routes!(api::recommendations::models))
        .routes(routes!(api::recommendations::customer))
        .routes(routes!(api::recommendations::similar))
        .routes(routes!(api::recommendations::evaluation))
        .routes(routes!(api::work::recommendations_train))
        .routes(routes!(api::work::recommendations_calculate))
        .routes(routes!(api::elasticity::estimates))
        .routes(routes!(api::elasticity::cells))
        .routes(routes!(api::elasticity::scenario))
        .routes(routes!(api::cohorts::retention))
        .routes(routes!(api::cohorts::summary))
        .routes(routes!(api::anomalies::latest))
        .routes(routes!(api::anomalies::weeks))
        .routes(routes!(api::anomalies::customer))
        .routes(routes!(api::customers::customer))
        .routes(routes!(api::settings::configuration))
        .routes(routes!(api::work::ltv_calculate))
        .routes(routes!(api::work::rfm_calculate))
        .routes(routes!(api::work::clusters_fit))
        .routes(routes!(api::work::clusters_assign))
        .routes(routes!(api::work::clv_fit))
        .routes(routes!(api::work::clv_calculate))
        .routes(routes!(api::work::churn_train))
        .routes(routes!(api::work::churn_score))
        .routes(routes!(api::work::purchase_score))
        .routes(routes!(api::work::anomalies_calculate))
        .routes(routes!(api::work::job))
        .routes(routes!(api::work::jobs));
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(api::system::health))
        .routes(routes!(api::system::ready))
        .nest("/api/v1", v1)
        .split_for_parts()
}

/// The whole application: the API, `/openapi.json`, JSON 404s, request logs with latency.
pub fn app(state: AppState) -> Router {
    let (router, openapi) = routes();
    let openapi = std::sync::Arc::new(openapi);
    router
        .merge(dashboard::routes())
        .route(
            notify::webhook::PATH,
            axum::routing::post(notify::webhook::receive),
        )
        .route(
            "/openapi.json",
            axum::routing::get(move || {
                let doc = openapi.clone();
                async move { axum::Json(doc.as_ref().clone()) }
            }),
        )
        .layer(axum::middleware::from_fn(csv_output::csv_on_request))
        .fallback(|| async {
            ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint").into_response()
        })
        .layer(
            // Method, path and query, status and latency; never headers (tokens live there).
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request<_>| {
                    tracing::info_span!("request", method = %req.method(), uri = %req.uri())
                })
                .on_request(())
                .on_response(
                    DefaultOnResponse::new()
                        .level(tracing::Level::INFO)
                        .latency_unit(tower_http::LatencyUnit::Micros),
                ),
        )
        .with_state(state)
}
