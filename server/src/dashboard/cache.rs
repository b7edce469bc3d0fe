//! The cache of the dashboard's heavy pages (LTV and RFM read and sort every customer's result:
//! a second at a million customers). A page is kept per role and URL with the stamp of the
//! results it shows (the latest refresh's run id and the configuration that shapes it); a
//! request whose stamp is the same gets the kept page, so a refresh shows at once, and a page is
//! never older than [`MAX_AGE`] (for what the stamp does not cover: the live sections that read
//! the shop's orders).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;

use crate::AppState;

pub const MAX_AGE: Duration = Duration::from_secs(300);
const MAX_PAGES: usize = 256;
/// A page larger than this is not kept.
const MAX_PAGE_BYTES: usize = 4 << 20;

struct Kept {
    stamp: String,
    at: Instant,
    headers: HeaderMap,
    body: Bytes,
}

#[derive(Clone, Default)]
pub struct PageCache(Arc<Mutex<HashMap<(String, String), Kept>>>);

impl PageCache {
    fn get(&self, key: &(String, String), stamp: &str) -> Option<Response> {
        let pages = self.0.lock().ok()?;
        let kept = pages
            .get(key)
            .filter(|k| k.stamp == stamp && k.at.elapsed() < MAX_AGE)?;
        let mut r = Response::new(Body::from(kept.body.clone()));
        *r.headers_mut() = kept.headers.clone();
        r.headers_mut()
            .insert("x-cache", HeaderValue::from_static("hit"));
        Some(r)
    }

    fn put(&self, key: (String, String), stamp: String, headers: HeaderMap, body: Bytes) {
        let Ok(mut pages) = self.0.lock() else {
            return;
        };
        if pages.len() >= MAX_PAGES && !pages.contains_key(&key) {
            // Make room: the expired pages, else the oldest.
            pages.retain(|_, k| k.at.elapsed() < MAX_AGE);
            if pages.len() >= MAX_PAGES
                && let Some(oldest) = pages
                    .iter()
                    .min_by_key(|(_, k)| k.at)
                    .map(|(k, _)| k.clone())
            {
                pages.remove(&oldest);
            }
        }
        pages.insert(
            key,
            Kept {
                stamp,
                at: Instant::now(),
                headers,
                body,
            },
        );
    }
}

/// The page at `uri` for `role`: the kept one when the results' stamp (`stamp_sql`, one text
/// column, read as `role`) has not changed, else `page`'s answer, kept when it is a 200. When
/// the stamp cannot be read, the page is made and not kept.
pub async fn cached(
    s: &AppState,
    role: &str,
    uri: &str,
    stamp_sql: &str,
    page: impl AsyncFnOnce() -> Response,
) -> Response {
    let stamp = match s.db.rows(role, stamp_sql, &[]).await {
        Ok(text) => text,
        Err(_) => return page().await,
    };
    let key = (role.to_string(), uri.to_string());
    if let Some(hit) = s.pages.get(&key, &stamp) {
        return hit;
    }
    let response = page().await;
    if response.status() != StatusCode::OK {
        return response;
    }
    let (parts, body) = response.into_parts();
    match axum::body::to_bytes(body, MAX_PAGE_BYTES).await {
        Ok(bytes) => {
            s.pages
                .put(key, stamp, parts.headers.clone(), bytes.clone());
            Response::from_parts(parts, Body::from(bytes))
        }
        Err(_) => Response::from_parts(parts, Body::empty()),
    }
}
