//! The dashboard: server-rendered pages over the same SQL as the API, working with no internet
//! (Chart.js is served from the binary, pinned by its integrity). Filters are plain links and
//! forms. A page runs as the role of the browser's session (a token given once at /login, kept
//! server-side; the cookie holds only a random session id) or as the anonymous role when one is
//! configured.

mod cache;
mod cohorts;
mod elasticity;
mod over_time;
mod pages;
mod recommendations;

pub use cache::PageCache;

use std::collections::HashMap;
use std::io::Read;
use std::sync::{Arc, LazyLock, Mutex};

use axum::Router;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use minijinja::{Environment, Value};
use serde::Deserialize;

use crate::AppState;
use crate::error::ApiError;

/// The integrity of the vendored Chart.js, as the pages' `<script integrity>` pins it (a unit
/// test checks it against the file).
pub const CHART_SRI: &str =
    "sha384-Emf5ZVIUiarAdhkgtqK+5/Z5qIvM6QoVrS+qAVtfyZVuD5lIHrac0me485+Antp0";
pub const CHART_JS: &[u8] = include_bytes!("../../static/chart-4.6.1.umd.min.js");
const DASHBOARD_JS: &[u8] = include_bytes!("../../static/dashboard.js");
const DASHBOARD_CSS: &[u8] = include_bytes!("../../static/dashboard.css");

/// Scripts and styles come only from this server; nothing is framed.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   frame-ancestors 'none'; form-action 'self'; base-uri 'none'";

static TEMPLATES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    for (name, source) in [
        ("base.html", include_str!("../../templates/base.html")),
        ("login.html", include_str!("../../templates/login.html")),
        ("error.html", include_str!("../../templates/error.html")),
        (
            "overview.html",
            include_str!("../../templates/overview.html"),
        ),
        ("ltv.html", include_str!("../../templates/ltv.html")),
        ("runs.html", include_str!("../../templates/runs.html")),
        (
            "customer.html",
            include_str!("../../templates/customer.html"),
        ),
        ("rfm.html", include_str!("../../templates/rfm.html")),
        ("cohorts.html", include_str!("../../templates/cohorts.html")),
        (
            "elasticity.html",
            include_str!("../../templates/elasticity.html"),
        ),
        (
            "recommendations.html",
            include_str!("../../templates/recommendations.html"),
        ),
        ("charts.html", include_str!("../../templates/charts.html")),
        (
            "over_time.html",
            include_str!("../../templates/over_time.html"),
        ),
        ("clv.html", include_str!("../../templates/clv.html")),
        ("churn.html", include_str!("../../templates/churn.html")),
        (
            "segments.html",
            include_str!("../../templates/segments.html"),
        ),
        (
            "anomalies.html",
            include_str!("../../templates/anomalies.html"),
        ),
    ] {
        if let Err(e) = env.add_template(name, source) {
            // The templates are part of the binary: one that does not parse is a build defect,
            // caught by the tests that render every page.
            tracing::error!(template = name, error = %e, "a dashboard template does not parse");
        }
    }
    env.add_filter("num", |v: Value| format_number(&v, 0));
    env.add_filter("num2", |v: Value| format_number(&v, 2));
    env.add_filter("money", |v: Value| format_number(&v, 2));
    // A chart's value in its data table: whole numbers as such, others with 2 decimals.
    env.add_filter("value", |v: Value| {
        let whole = v.as_i64().is_some() && !v.to_string().contains('.');
        format_number(&v, if whole { 0 } else { 2 })
    });
    env
});

/// A number with thousands separators and `digits` decimals; "–" for none.
fn format_number(v: &Value, digits: usize) -> String {
    let Some(x) = v
        .as_str()
        .and_then(|s| s.parse::<f64>().ok())
        .or_else(|| f64::try_from(v.clone()).ok())
    else {
        return "–".into();
    };
    // A value that rounds to zero shows as 0, not -0.
    let x = if (x * 10f64.powi(digits as i32)).round() == 0.0 {
        0.0
    } else {
        x
    };
    let text = format!("{x:.digits$}");
    let (int, frac) = text
        .split_once('.')
        .map_or((text.as_str(), ""), |(a, b)| (a, b));
    let (sign, int) = int.strip_prefix('-').map_or(("", int), |i| ("-", i));
    let mut grouped = String::new();
    for (i, ch) in int.chars().enumerate() {
        if i > 0 && (int.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(ch);
    }
    if frac.is_empty() {
        format!("{sign}{grouped}")
    } else {
        format!("{sign}{grouped}.{frac}")
    }
}

/// The pages in the navigation, in order.
const NAV: &[(&str, &str, &str)] = &[
    ("overview", "/", "Overview"),
    ("ltv", "/ltv", "LTV"),
    ("rfm", "/rfm", "RFM"),
    ("segments", "/segments", "Segments"),
    ("clv", "/clv", "CLV"),
    ("churn", "/churn", "Churn"),
    ("anomalies", "/anomalies", "Anomalies"),
    ("cohorts", "/cohorts", "Cohorts"),
    ("recommendations", "/recommendations", "Recommendations"),
    ("elasticity", "/elasticity", "Elasticity"),
    ("runs", "/runs", "Runs"),
];

/// Who is looking: the session's role (or the anonymous role), and whether it logged in.
pub struct Viewer {
    pub role: String,
    pub logged_in: bool,
}

#[derive(Clone, Default)]
pub struct Sessions(Arc<Mutex<HashMap<String, String>>>);

impl Sessions {
    fn role(&self, id: &str) -> Option<String> {
        self.0.lock().ok()?.get(id).cloned()
    }

    fn open(&self, role: String) -> Option<String> {
        let mut bytes = [0u8; 32];
        std::fs::File::open("/dev/urandom")
            .ok()?
            .read_exact(&mut bytes)
            .ok()?;
        let id: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        self.0.lock().ok()?.insert(id.clone(), role);
        Some(id)
    }

    fn close(&self, id: &str) {
        if let Ok(mut m) = self.0.lock() {
            m.remove(id);
        }
    }
}

fn session_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix("cda_session=").map(str::to_string))
}

/// A page's answer when no role can be had: off to the login form.
pub struct ToLogin;

impl IntoResponse for ToLogin {
    fn into_response(self) -> Response {
        Redirect::to("/login").into_response()
    }
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = ToLogin;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Viewer, ToLogin> {
        if let Some(role) = session_id(&parts.headers).and_then(|id| s.sessions.role(&id)) {
            return Ok(Viewer {
                role,
                logged_in: true,
            });
        }
        match s.auth.role_for(None) {
            Ok(role) => Ok(Viewer {
                role,
                logged_in: false,
            }),
            Err(_) => Err(ToLogin),
        }
    }
}

/// Renders `template` with the layout's values and `ctx`, as an HTML answer with the CSP.
pub fn render(
    template: &str,
    page: &str,
    viewer: Option<&Viewer>,
    ctx: Value,
    status: StatusCode,
) -> Response {
    let nav: Vec<Value> = NAV
        .iter()
        .map(|(key, href, label)| minijinja::context! { key, href, label })
        .collect();
    let base = minijinja::context! {
        page,
        nav,
        chart_sri => Value::from_safe_string(CHART_SRI.to_string()),
        role => viewer.map(|v| v.role.clone()).unwrap_or_default(),
        logged_in => viewer.is_some_and(|v| v.logged_in),
    };
    let html = TEMPLATES
        .get_template(template)
        .and_then(|t| t.render(minijinja::context! { ..base, ..ctx }));
    match html {
        Ok(html) => {
            let mut r = (status, Html(html)).into_response();
            r.headers_mut().insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CSP),
            );
            r
        }
        Err(e) => {
            tracing::error!(template, error = %e, "rendering a dashboard page");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page could not be rendered",
            )
                .into_response()
        }
    }
}

/// An API error as a page.
pub fn error_page(viewer: &Viewer, e: ApiError) -> Response {
    let title = match e.status.as_u16() {
        403 => "Not allowed",
        404 => "Not found",
        409 => "Nothing to show yet",
        400 => "Bad request",
        _ => "Something went wrong",
    };
    render(
        "error.html",
        "",
        Some(viewer),
        minijinja::context! { title, message => e.message, hint => e.hint },
        e.status,
    )
}

fn asset(body: &'static [u8], content_type: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
}

async fn login_form(State(s): State<AppState>) -> Response {
    let _ = &s;
    render(
        "login.html",
        "login",
        None,
        minijinja::context! {},
        StatusCode::OK,
    )
}

async fn login(State(s): State<AppState>, axum::Form(form): axum::Form<LoginForm>) -> Response {
    let header_value = format!("Bearer {}", form.token);
    let Ok(role) = s.auth.role_for(Some(&header_value)) else {
        return render(
            "login.html",
            "login",
            None,
            minijinja::context! { message => "That token is not valid." },
            StatusCode::UNAUTHORIZED,
        );
    };
    let Some(id) = s.sessions.open(role) else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "no session could be opened",
        )
            .into_response();
    };
    let cookie = format!("cda_session={id}; HttpOnly; SameSite=Strict; Path=/");
    let mut r = Redirect::to("/").into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

async fn logout(State(s): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(id) = session_id(&headers) {
        s.sessions.close(&id);
    }
    let mut r = Redirect::to("/login").into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("cda_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"),
    );
    r
}

/// The dashboard's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(pages::overview))
        .route("/ltv", get(pages::ltv))
        .route("/rfm", get(pages::rfm))
        .route("/clv", get(pages::clv))
        .route("/churn", get(pages::churn))
        .route("/segments", get(pages::segments))
        .route("/anomalies", get(pages::anomalies))
        .route("/cohorts", get(cohorts::cohorts))
        .route("/recommendations", get(recommendations::recommendations))
        .route("/elasticity", get(elasticity::elasticity))
        .route("/runs", get(pages::runs))
        .route("/customers/{user_id}", get(pages::customer))
        .route("/login", get(login_form).post(login))
        .route("/logout", get(logout))
        .route(
            "/static/chart-4.6.1.umd.min.js",
            get(|| async { asset(CHART_JS, "text/javascript") }),
        )
        .route(
            "/static/dashboard.js",
            get(|| async { asset(DASHBOARD_JS, "text/javascript") }),
        )
        .route(
            "/static/dashboard.css",
            get(|| async { asset(DASHBOARD_CSS, "text/css") }),
        )
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_grouped() {
        assert_eq!(format_number(&Value::from(1234567.891), 2), "1,234,567.89");
        assert_eq!(format_number(&Value::from(-1234), 0), "-1,234");
        assert_eq!(format_number(&Value::from(12), 2), "12.00");
        assert_eq!(format_number(&Value::from(-0.001), 2), "0.00");
        assert_eq!(format_number(&Value::from(()), 2), "–");
    }

    #[test]
    fn every_template_parses() {
        for name in [
            "base.html",
            "login.html",
            "error.html",
            "overview.html",
            "ltv.html",
            "runs.html",
            "customer.html",
            "rfm.html",
            "clv.html",
            "churn.html",
            "segments.html",
            "anomalies.html",
        ] {
            TEMPLATES
                .get_template(name)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}
