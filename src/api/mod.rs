//! The JSON API the host CRM calls, under `/api/v1/`.
//!
//! Shared by every endpoint (messages now, contacts and interactions next):
//! - [`auth`]: bearer keys from `WARMLINE_API_KEYS`, checked by a layer on
//!   every API route before any body is read.
//! - [`error`]: one [`ApiError`] and one JSON error shape, `{"error":
//!   {"code", "message", "field"?}}`; 422 names the field, 400 says why the
//!   JSON does not parse.
//! - [`JsonBody`]: the body as raw bytes (the idempotency fingerprint needs
//!   them) that parses into any `deny_unknown_fields` type with our errors,
//!   never axum's plain-text rejections.
//! - [`idempotency`]: the `Idempotency-Key` header, recorded in the same
//!   transaction as the request's effects.
//!
//! Adding an endpoint: a handler taking `Caller`, `JsonBody` and the request
//! parts, calling [`idempotency::Idempotency::execute`] for anything it
//! writes, and one `.route` line in [`router`].

pub mod auth;
pub mod contacts;
pub mod error;
pub mod idempotency;
pub mod inbound;
pub mod messages;

use axum::{
    Router,
    body::Bytes,
    extract::{FromRequest, Request},
    http::{StatusCode, header},
    routing::{any, get, post},
};

pub use auth::Caller;
pub use error::ApiError;

use crate::state::App;

/// Every `/api/v1` route, behind the API key layer. Merged into
/// the router in `crate::startup`.
pub fn router(app: App) -> Router<App> {
    Router::new()
        .route(
            "/api/v1/messages",
            post(messages::create).fallback(method_not_allowed),
        )
        .route(
            "/api/v1/messages/{id}",
            get(messages::show).fallback(method_not_allowed),
        )
        .route(
            "/api/v1/inbound",
            post(inbound::create).fallback(method_not_allowed),
        )
        .route(
            "/api/v1/contacts",
            post(contacts::upsert)
                .get(contacts::find)
                .fallback(method_not_allowed),
        )
        .route(
            "/api/v1/contacts/{id}",
            get(contacts::show).fallback(method_not_allowed),
        )
        .route(
            "/api/v1/interactions",
            post(contacts::record_interaction).fallback(method_not_allowed),
        )
        // Unknown API paths answer in the API's shape, not axum's empty 404.
        .route("/api/v1/{*rest}", any(not_found))
        .route_layer(axum::middleware::from_fn_with_state(
            app,
            auth::require_api_key,
        ))
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such API endpoint".into())
}

async fn method_not_allowed(method: axum::http::Method) -> ApiError {
    ApiError::MethodNotAllowed(format!("{method} is not allowed on this endpoint"))
}

/// A JSON request body, kept as the bytes received.
#[derive(Debug, Clone)]
pub struct JsonBody(pub Bytes);

impl JsonBody {
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    /// Parses the body; see [`error::parse_json`] for which errors name what.
    pub fn parse<T: serde::de::DeserializeOwned>(&self) -> Result<T, ApiError> {
        error::parse_json(&self.0)
    }
}

impl FromRequest<App> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, app: &App) -> Result<Self, ApiError> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !is_json(content_type) {
            return Err(ApiError::MalformedJson(
                "expected a JSON body with 'Content-Type: application/json'".into(),
            ));
        }
        match Bytes::from_request(req, app).await {
            Ok(bytes) => Ok(Self(bytes)),
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError::TooLarge(app.settings.server.max_body_bytes))
            }
            Err(e) => Err(ApiError::MalformedJson(format!(
                "could not read the body: {}",
                e.body_text()
            ))),
        }
    }
}

/// `application/json`, with parameters, or any `+json` type.
fn is_json(content_type: &str) -> bool {
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn json_content_types() {
        assert!(super::is_json("application/json"));
        assert!(super::is_json("Application/JSON; charset=utf-8"));
        assert!(super::is_json("application/merge-patch+json"));
        assert!(!super::is_json("text/plain"));
        assert!(!super::is_json(""));
    }
}
