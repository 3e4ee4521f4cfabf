//! Inbound provider webhooks: delivery reports that move the ledger on.
//!
//! Today one provider reports back: Resend (`POST /webhooks/resend`,
//! [`resend`]), signed with Svix's scheme ([`svix`]).
//!
//! Invariants every receiver keeps:
//! - **Verify first.** The raw body is read (bounded by [`MAX_BODY_BYTES`])
//!   and its signature checked before anything is parsed or stored; a
//!   missing, wrong or stale signature is 401 and leaves no trace.
//! - **One effect per event.** The provider's event id goes into
//!   `provider_events` (unique per provider) with `ON CONFLICT DO NOTHING`,
//!   in the same transaction as the event's effects: a redelivery inserts
//!   nothing and so changes nothing, yet is answered 200 so the provider
//!   stops retrying.
//! - **Never backwards.** Effects are guarded `UPDATE`s allowed by
//!   [`MessageState::can_move_to`](crate::domain::MessageState::can_move_to);
//!   an event that arrives after a later one is recorded, not applied.
//! - **Committed before 200.** Slack notices run after the commit, off the
//!   request path (`App::spawn`), so a slow Slack never delays the answer and
//!   a lost notice never loses the ledger change.
//!
//! [`WebhookError`] is the one place these receivers' failures become HTTP
//! statuses.

pub mod resend;
pub mod svix;

use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::json;

/// The largest webhook body read; Resend's events are a few KiB.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The receiver has no (valid) signing secret: 503, so the provider keeps
    /// retrying until an operator sets it (see [`resend`] for why not 401).
    #[error("webhook receiver is not configured: {0}")]
    NotConfigured(&'static str),
    /// Missing, wrong or stale signature. Nothing was recorded.
    #[error("signature refused: {0}")]
    Unauthorized(#[from] svix::SignatureError),
    #[error("request body is larger than {0} bytes")]
    TooLarge(usize),
    /// A verified request whose payload we cannot read; the text names the
    /// problem (never the payload).
    #[error("{0}")]
    Malformed(String),
    /// The event is genuine but its message is mid-send: the dispatcher has
    /// not recorded the provider's answer yet. Nothing was recorded; the
    /// provider's retry (seconds later) applies it.
    #[error("the message is still being sent; retry later")]
    NotYet,
    /// A database failure. The transaction rolled back, so the provider's
    /// retry is safe.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl IntoResponse for WebhookError {
    fn into_response(self) -> Response {
        let status = match &self {
            WebhookError::NotConfigured(_) | WebhookError::NotYet => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            WebhookError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            WebhookError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            WebhookError::Malformed(_) => StatusCode::BAD_REQUEST,
            WebhookError::Unexpected(e) => {
                tracing::error!(error = format!("{e:#}"), "webhook failed");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        let reason = match &self {
            WebhookError::NotConfigured(_) => "not_configured",
            WebhookError::Unauthorized(_) => "signature",
            WebhookError::TooLarge(_) => "too_large",
            WebhookError::Malformed(_) => "malformed",
            WebhookError::NotYet => "not_yet",
            WebhookError::Unexpected(_) => "error",
        };
        metrics::counter!("webhook_requests_rejected_total", "reason" => reason).increment(1);
        let message = match &self {
            WebhookError::Unexpected(_) => "internal error".to_string(),
            other => other.to_string(),
        };
        let mut response = (status, Json(json!({"ok": false, "error": message}))).into_response();
        if matches!(self, WebhookError::NotYet) {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, 5.into());
        }
        response
    }
}
