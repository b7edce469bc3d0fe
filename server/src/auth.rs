//! Who is asking: a bearer token mapped to a database role, or the anonymous role when one is
//! configured. Tokens are compared in constant time and never logged.

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use subtle::ConstantTimeEq;

use crate::config::ApiKey;
use crate::error::ApiError;

#[derive(Clone, Default)]
pub struct Auth {
    keys: Vec<ApiKey>,
    anonymous: Option<String>,
}

impl Auth {
    pub fn new(keys: Vec<ApiKey>, anonymous: Option<String>) -> Auth {
        Auth { keys, anonymous }
    }

    /// The role for an `Authorization` header value (or its absence).
    pub fn role_for(&self, header: Option<&str>) -> Result<String, ApiError> {
        let unauthorized = |m: &str| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", m);
        let Some(header) = header else {
            return self.anonymous.clone().ok_or_else(|| {
                unauthorized("a bearer token is required")
                    .with_hint("Send Authorization: Bearer <token>.")
            });
        };
        let Some(token) = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
        else {
            return Err(unauthorized(
                "the Authorization header must be: Bearer <token>",
            ));
        };
        let token = token.trim().as_bytes();
        // Every key is compared, whichever matches, so that the time says nothing.
        let mut found: Option<&str> = None;
        for key in &self.keys {
            if bool::from(key.token.as_bytes().ct_eq(token)) {
                found = Some(&key.role);
            }
        }
        found
            .map(str::to_string)
            .ok_or_else(|| unauthorized("the bearer token is not valid"))
    }
}

/// The database role a request runs as.
pub struct Caller(pub String);

impl<S> FromRequestParts<S> for Caller
where
    S: Send + Sync,
    Auth: axum::extract::FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Caller, ApiError> {
        let auth = <Auth as axum::extract::FromRef<S>>::from_ref(state);
        let header = match parts.headers.get(axum::http::header::AUTHORIZATION) {
            Some(v) => Some(v.to_str().map_err(|_| {
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "the Authorization header is not valid text",
                )
            })?),
            None => None,
        };
        auth.role_for(header).map(Caller)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_map_to_roles() {
        let auth = Auth::new(
            vec![ApiKey {
                token: "0123456789abcdef".into(),
                role: "analyst".into(),
            }],
            None,
        );
        assert_eq!(
            auth.role_for(Some("Bearer 0123456789abcdef")).unwrap(),
            "analyst"
        );
        assert_eq!(
            auth.role_for(None).unwrap_err().status,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            auth.role_for(Some("Bearer 0123456789abcdeX"))
                .unwrap_err()
                .status,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            auth.role_for(Some("Basic abc")).unwrap_err().status,
            StatusCode::UNAUTHORIZED
        );
        let open = Auth::new(vec![], Some("web_anon".into()));
        assert_eq!(open.role_for(None).unwrap(), "web_anon");
    }
}
