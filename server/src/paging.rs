//! Paging as PostgREST does it: `limit` and `offset` parameters or a `Range: 0-24` header, a
//! `Content-Range: 0-24/total` answer (`*` for an unknown total), and `Prefer: count=exact` or
//! `count=estimated` to have the total counted.

use axum::http::HeaderMap;

use crate::error::ApiError;

/// The most rows one request returns.
pub const MAX_LIMIT: i64 = 1000;
pub const DEFAULT_LIMIT: i64 = 100;
/// The furthest a page may start: deeper paging belongs in a filter.
pub const MAX_OFFSET: i64 = 10_000_000;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Page {
    pub limit: i64,
    pub offset: i64,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Count {
    None,
    Exact,
    Estimated,
}

/// The page from the query parameters, or else from a `Range` header.
pub fn page(
    limit: Option<i64>,
    offset: Option<i64>,
    headers: &HeaderMap,
) -> Result<Page, ApiError> {
    let (mut lim, mut off) = (limit, offset);
    if lim.is_none()
        && off.is_none()
        && let Some(range) = headers.get(axum::http::header::RANGE)
    {
        let text = range
            .to_str()
            .map_err(|_| ApiError::bad_parameter("Range", "not valid text"))?;
        let spec = text.trim().trim_start_matches("items=");
        let (a, b) = spec
            .split_once('-')
            .ok_or_else(|| ApiError::bad_parameter("Range", "expected first-last, e.g. 0-24"))?;
        let first: i64 = a
            .trim()
            .parse()
            .map_err(|_| ApiError::bad_parameter("Range", "first is not a whole number"))?;
        off = Some(first);
        if !b.trim().is_empty() {
            let last: i64 = b
                .trim()
                .parse()
                .map_err(|_| ApiError::bad_parameter("Range", "last is not a whole number"))?;
            if last < first {
                return Err(ApiError::bad_parameter("Range", "last is before first"));
            }
            lim = Some(last - first + 1);
        }
    }
    let limit = lim.unwrap_or(DEFAULT_LIMIT);
    let offset = off.unwrap_or(0);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_parameter(
            "limit",
            format!("must be between 1 and {MAX_LIMIT}, got {limit}"),
        ));
    }
    if !(0..=MAX_OFFSET).contains(&offset) {
        return Err(ApiError::bad_parameter(
            "offset",
            format!("must be between 0 and {MAX_OFFSET}, got {offset}"),
        ));
    }
    Ok(Page { limit, offset })
}

/// What `Prefer` asks to count.
pub fn count(headers: &HeaderMap) -> Count {
    let mut out = Count::None;
    for value in headers.get_all("prefer") {
        for part in value.to_str().unwrap_or("").split(',') {
            match part.trim() {
                "count=exact" => out = Count::Exact,
                "count=estimated" | "count=planned" => out = Count::Estimated,
                _ => {}
            }
        }
    }
    out
}

/// `Content-Range` for `returned` rows of a page, out of `total` when known.
pub fn content_range(page: Page, returned: usize, total: Option<i64>) -> String {
    let total = total.map_or("*".to_string(), |t| t.to_string());
    if returned == 0 {
        format!("*/{total}")
    } else {
        format!(
            "{}-{}/{total}",
            page.offset,
            page.offset + returned as i64 - 1
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_from_parameters_or_range() {
        let none = HeaderMap::new();
        assert_eq!(
            page(None, None, &none).unwrap(),
            Page {
                limit: 100,
                offset: 0
            }
        );
        assert_eq!(
            page(Some(10), Some(20), &none).unwrap(),
            Page {
                limit: 10,
                offset: 20
            }
        );
        let mut range = HeaderMap::new();
        range.insert("range", "5-9".parse().unwrap());
        assert_eq!(
            page(None, None, &range).unwrap(),
            Page {
                limit: 5,
                offset: 5
            }
        );
        assert!(page(Some(0), None, &none).is_err());
        assert!(page(Some(1001), None, &none).is_err());
        assert!(page(None, Some(-1), &none).is_err());
        range.insert("range", "9-5".parse().unwrap());
        assert!(page(None, None, &range).is_err());
        assert_eq!(
            content_range(
                Page {
                    limit: 5,
                    offset: 5
                },
                5,
                Some(12)
            ),
            "5-9/12"
        );
        assert_eq!(
            content_range(
                Page {
                    limit: 5,
                    offset: 50
                },
                0,
                None
            ),
            "*/*"
        );
        let mut prefer = HeaderMap::new();
        prefer.insert("prefer", "return=minimal, count=exact".parse().unwrap());
        assert_eq!(count(&prefer), Count::Exact);
    }
}
