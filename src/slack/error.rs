//! The one place Slack ingress errors become HTTP responses.
//!
//! Slack shows nothing useful for a 4xx, but operators and fakes read the
//! body, so it names the problem; it never echoes secrets or payloads.

use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum IngressError {
    /// Missing, wrong or stale signature. Nothing was recorded.
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("request body is larger than {0} bytes")]
    TooLarge(usize),
    /// A verified request whose payload we cannot read.
    #[error("{0}")]
    Malformed(String),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl IngressError {
    /// The row id a button's `value` or a modal's `private_metadata`
    /// carries; `missing` names what arrived without one.
    pub fn id_in(value: Option<&str>, missing: &str) -> Result<i64, Self> {
        value
            .and_then(|v| v.parse::<i64>().ok())
            .ok_or_else(|| Self::Malformed(missing.into()))
    }
}

impl IntoResponse for IngressError {
    fn into_response(self) -> Response {
        let status = match &self {
            IngressError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            IngressError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            IngressError::Malformed(_) => StatusCode::BAD_REQUEST,
            IngressError::Unexpected(e) => {
                tracing::error!(error = format!("{e:#}"), "Slack request failed");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        let message = match &self {
            IngressError::Unexpected(_) => "internal error".to_string(),
            other => other.to_string(),
        };
        (status, Json(json!({"ok": false, "error": message}))).into_response()
    }
}
