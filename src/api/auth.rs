//! Bearer-key authentication for the JSON API (`WARMLINE_API_KEYS`).
//!
//! Invariants:
//! - Runs as a layer on every API route, before any extractor reads the
//!   body: a request without a valid key gets 401 and nothing is parsed,
//!   stored or enqueued.
//! - Keys are compared in constant time: both sides are hashed with
//!   SHA-256 and the digests compared without an early exit, and every
//!   configured key is tried, so timing reveals neither a key's prefix nor
//!   which key matched.
//! - No keys configured means the API is off: 401 for everyone, with a
//!   message saying `WARMLINE_API_KEYS` is unset (never an open API).
//! - A key is never logged or echoed; past this layer a caller is known
//!   only by [`Caller`], the SHA-256 of its key.

use axum::{
    extract::{FromRequestParts, Request, State},
    http::{header, request::Parts},
    middleware::Next,
    response::{IntoResponse, Response},
};
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};

use super::error::ApiError;
use crate::state::App;

/// The authenticated caller: the SHA-256 of the key it presented. Scopes
/// per-caller records (idempotency keys) without storing the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    pub key_digest: [u8; 32],
}

/// The layer: checks `Authorization: Bearer <key>` against
/// `settings.api.keys`, then lets the request through with its [`Caller`].
pub async fn require_api_key(State(app): State<App>, mut req: Request, next: Next) -> Response {
    match authenticate(&app, req.headers().get(header::AUTHORIZATION)) {
        Ok(caller) => {
            req.extensions_mut().insert(caller);
            next.run(req).await
        }
        Err(e) => e.into_response(),
    }
}

fn authenticate(
    app: &App,
    authorization: Option<&axum::http::HeaderValue>,
) -> Result<Caller, ApiError> {
    let keys: Vec<[u8; 32]> = app
        .settings
        .api
        .keys
        .iter()
        .map(|k| k.expose_secret().trim())
        .filter(|k| !k.is_empty())
        .map(digest)
        .collect();
    if keys.is_empty() {
        return Err(ApiError::Unauthorized(
            "the API is disabled: WARMLINE_API_KEYS is unset (set it to one or more comma-separated keys)"
                .into(),
        ));
    }
    let presented = authorization
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token)
        .ok_or_else(|| {
            ApiError::Unauthorized("missing API key: send 'Authorization: Bearer <key>'".into())
        })?;
    let presented = digest(presented);
    // Try every key, no early exit.
    let matched = keys
        .iter()
        .fold(false, |found, k| found | constant_time_eq(k, &presented));
    if matched {
        Ok(Caller {
            key_digest: presented,
        })
    } else {
        Err(ApiError::Unauthorized("invalid API key".into()))
    }
}

/// The token of an `Authorization: Bearer <token>` value (scheme
/// case-insensitive, RFC 7235 §2.1).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

fn digest(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

/// Compares two digests without branching on their contents.
fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    // `black_box` keeps the optimiser from turning the fold into an early exit.
    std::hint::black_box(diff) == 0
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        // Only reachable on a route without the layer: a wiring mistake,
        // refused rather than served unauthenticated.
        parts.extensions.get::<Caller>().copied().ok_or_else(|| {
            ApiError::Unauthorized("this route is not behind the API key check".into())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_are_read_case_insensitively() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("Bearer"), None);
    }

    #[test]
    fn digests_compare_equal_only_when_equal() {
        let a = digest("key-1");
        assert!(constant_time_eq(&a, &digest("key-1")));
        assert!(!constant_time_eq(&a, &digest("key-2")));
    }
}
