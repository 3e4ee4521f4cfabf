//! What a provider's webhook is to warmline: a receiver that verifies a
//! request and turns it into provider-neutral [`DeliveryReport`]s, which the
//! one webhook route (`crate::webhooks`) applies to the ledger, and
//! [`InboundReport`]s (replies people sent), which it hands to
//! `crate::inbound::receive`, the one entry point for replies.
//!
//! A receiver serves one route (`/webhooks/<route>`, where a route may have
//! two segments: `twilio/status`); one provider may have several receivers.
//! It may answer in its provider's format ([`WebhookReceiver::answer`]:
//! Twilio expects TwiML) and refuse a bad signature with 401
//! ([`WebhookError::Unauthorized`]) or 403 ([`WebhookError::Forbidden`]), as
//! its provider documents.
//!
//! Invariants every receiver keeps:
//! - **Verify first.** [`WebhookReceiver::verify`] runs on the raw bytes
//!   before [`WebhookReceiver::parse`] reads anything; a missing, wrong or
//!   stale signature is [`WebhookError::Unauthorized`] and nothing is stored.
//! - **Stable event ids.** Each report carries the provider's own id for the
//!   event (a redelivery has the same one), which is how the ledger applies
//!   each event once.
//! - **Masked text.** Details shown to people (bounce diagnostics) have
//!   addresses masked before they leave the receiver.
//!
//! [`WebhookError`] is the one place a webhook's failure becomes an HTTP
//! status.

use axum::{
    Json,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Utc};
use serde_json::json;

/// A request as a receiver sees it: headers and the raw body, read under a
/// size limit, and where it was sent.
#[derive(Debug, Clone, Copy)]
pub struct WebhookRequest<'a> {
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    /// When it arrived: the reference for signature freshness.
    pub now: DateTime<Utc>,
    /// The request's path as received (`/webhooks/twilio/status`).
    pub path: &'a str,
    /// Its query string, without the `?`, when it had one.
    pub query: Option<&'a str>,
    /// `WARMLINE_PUBLIC_URL`: the base the provider was given, so a
    /// receiver whose provider signs the URL (Twilio) can rebuild it.
    pub public_url: Option<&'a url::Url>,
}

impl WebhookRequest<'_> {
    /// The URL the provider requested: the public base, the path and the
    /// query. `None` without `WARMLINE_PUBLIC_URL`. A base with a path
    /// (`https://host/warmline`) keeps it: a proxy strips it before us.
    pub fn public_url(&self) -> Option<String> {
        let base = self.public_url?;
        let mut url = format!("{}{}", base.as_str().trim_end_matches('/'), self.path);
        if let Some(q) = self.query {
            url.push('?');
            url.push_str(q);
        }
        Some(url)
    }
}

/// Who answers a keyword (STOP, START, HELP) that arrives by a webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReplyBy {
    /// warmline queues its confirmation as a message in the ledger.
    #[default]
    Ledger,
    /// The provider answers keywords itself (Twilio's Advanced Opt-Out):
    /// warmline records the consent change and sends nothing.
    Provider,
    /// warmline's confirmation goes back in the webhook's own answer
    /// (TwiML `<Message>`), never through the ledger.
    Response,
}

/// One message a person sent, as a provider's webhook reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct InboundReport {
    /// The provider's id for it (Twilio's `MessageSid`): a redelivery is
    /// applied once.
    pub event_id: String,
    pub channel: crate::domain::Channel,
    /// The sender as the provider names it (E.164 for SMS).
    pub from: String,
    pub text: String,
    pub received_at: DateTime<Utc>,
    pub replies: ReplyBy,
}

/// What the route did with a request's inbound messages, for
/// [`WebhookReceiver::answer`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Handled {
    /// Texts owed in the answer ([`ReplyBy::Response`]), in order.
    pub replies: Vec<String>,
}

/// A receiver's own answer to a request it handled (default: JSON).
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookAnswer {
    pub content_type: &'static str,
    pub body: String,
}

/// A provider's webhook endpoint.
pub trait WebhookReceiver: Send + Sync {
    /// The path segment: `POST /webhooks/<route>`.
    fn route(&self) -> &'static str;
    /// The provider's name as stored (`provider_events.provider`).
    fn provider(&self) -> &'static str;
    /// Whether it receives the reports of the provider named `provider`
    /// (`Registry::webhook_of`). One receiver may serve several providers:
    /// Meta's one app webhook carries WhatsApp's and Instagram's.
    fn serves(&self, provider: &str) -> bool {
        self.provider() == provider
    }
    /// `GET /webhooks/<route>`: a subscription handshake, for providers
    /// that verify the URL before posting to it (Meta's `hub.mode`,
    /// `hub.verify_token`, `hub.challenge`). `None`: the route takes no GET
    /// (405); `Some(Ok(body))`: 200 `text/plain` with `body`; `Some(Err(e))`:
    /// `e`'s status (a wrong token is [`WebhookError::Forbidden`], 403).
    fn handshake(&self, _query: Option<&str>) -> Option<Result<String, WebhookError>> {
        None
    }
    /// How people call it in the ledger's notes ("Resend").
    fn label(&self) -> &'static str;
    /// `suppressions.source` for what its reports suppress.
    fn suppression_source(&self) -> &'static str;
    /// Whether it has what verification needs (a signing secret): without
    /// it every request is refused, and the doctor says so.
    fn is_configured(&self) -> bool;
    /// The setting that gives it its signing secret (`RESEND_WEBHOOK_SECRET`),
    /// named where people are told what to set; never its value.
    fn secret_setting(&self) -> &'static str;
    /// Checks the signature over the raw request. Errors:
    /// [`WebhookError::NotConfigured`] without a secret,
    /// [`WebhookError::Unauthorized`] for a bad or stale signature.
    fn verify(&self, request: &WebhookRequest<'_>) -> Result<(), WebhookError>;
    /// Reads a verified request's delivery reports. A payload that cannot
    /// be read is [`WebhookError::Malformed`] naming the problem (never the
    /// payload).
    fn parse(&self, request: &WebhookRequest<'_>) -> Result<Vec<DeliveryReport>, WebhookError>;
    /// Reads a verified request's inbound messages (replies), which the
    /// route hands to `crate::inbound::receive`. Most receivers carry none.
    fn inbound(&self, _request: &WebhookRequest<'_>) -> Result<Vec<InboundReport>, WebhookError> {
        Ok(Vec::new())
    }
    /// The answer to a handled request, when the provider expects its own
    /// format (Twilio: TwiML); `None` answers JSON.
    fn answer(&self, _handled: &Handled) -> Option<WebhookAnswer> {
        None
    }
}

/// One event a provider reports about one message.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryReport {
    /// The provider's id for this event; the dedupe key.
    pub event_id: String,
    /// The provider's own name for the event type, stored as reported.
    pub type_name: String,
    /// Our ledger id, where the provider echoes it (a tag, metadata).
    pub ledger_id: Option<String>,
    /// The provider's id for the message, as the send recorded it.
    pub provider_message_id: Option<String>,
    /// The recipient the provider names, for suppression when the ledger
    /// has no address.
    pub recipient: Option<String>,
    pub status: ReportStatus,
}

/// What happened, in the ledger's terms.
#[derive(Debug, Clone, PartialEq)]
pub enum ReportStatus {
    /// The provider handed it on (evidence it was sent; state unchanged).
    Sent,
    Delivered,
    /// Delivery is being retried by the provider; a note only.
    Delayed,
    Opened,
    Clicked {
        link: Option<String>,
    },
    /// `permanent`: the address is suppressed. `detail` is masked.
    Bounced {
        permanent: bool,
        detail: String,
    },
    /// A spam complaint: the address is suppressed.
    Complained,
    /// The provider gave up on it.
    Failed {
        reason: String,
    },
    /// The network did not deliver it (SMS `undelivered`, with the
    /// carrier's error). The message fails; with `counts_as_bounce` it moves
    /// to `bounced` instead, so the campaign's circuit breaker counts it as
    /// it counts hard bounces, but the address is not suppressed (the
    /// handset may be back tomorrow). `alert`: people must hear of it (Twilio
    /// 30007, carrier filtering: the content or the sender is being
    /// blocked), in the approvals channel.
    Undelivered {
        detail: String,
        counts_as_bounce: bool,
        alert: bool,
    },
    /// The provider refused it because the address is on its own list.
    Suppressed {
        reason: SuppressedBecause,
        detail: String,
    },
    /// An event that concerns no message's state (stored, not applied).
    Other,
}

/// Why a provider's own suppression list holds an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SuppressedBecause {
    Complaint,
    HardBounce,
    Other,
}

impl ReportStatus {
    /// Whether the event would move a message's state or suppress its address.
    pub fn changes_state(&self) -> bool {
        match self {
            ReportStatus::Delivered
            | ReportStatus::Opened
            | ReportStatus::Clicked { .. }
            | ReportStatus::Complained
            | ReportStatus::Failed { .. }
            | ReportStatus::Undelivered { .. }
            | ReportStatus::Suppressed { .. } => true,
            ReportStatus::Bounced { permanent, .. } => *permanent,
            ReportStatus::Sent | ReportStatus::Delayed | ReportStatus::Other => false,
        }
    }

    /// Events a provider only sends for a message it accepted: they settle
    /// an ambiguous message as sent.
    pub fn is_evidence_of_sending(&self) -> bool {
        matches!(
            self,
            ReportStatus::Sent
                | ReportStatus::Delivered
                | ReportStatus::Delayed
                | ReportStatus::Opened
                | ReportStatus::Clicked { .. }
                | ReportStatus::Bounced { .. }
                | ReportStatus::Undelivered { .. }
                | ReportStatus::Complained
        )
    }

    /// The metrics label: bounded.
    pub fn label(&self) -> &'static str {
        match self {
            ReportStatus::Sent => "sent",
            ReportStatus::Delivered => "delivered",
            ReportStatus::Delayed => "delivery_delayed",
            ReportStatus::Opened => "opened",
            ReportStatus::Clicked { .. } => "clicked",
            ReportStatus::Bounced { .. } => "bounced",
            ReportStatus::Complained => "complained",
            ReportStatus::Failed { .. } => "failed",
            ReportStatus::Undelivered { .. } => "undelivered",
            ReportStatus::Suppressed { .. } => "suppressed",
            ReportStatus::Other => "other",
        }
    }
}

/// The largest webhook body read; providers' events are a few KiB.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// No provider answers this route: 404.
    #[error("no webhook receiver at /webhooks/{0}")]
    UnknownRoute(String),
    /// The receiver has no (valid) signing secret: 503, so the provider keeps
    /// retrying until an operator sets it (a 401 would make it give up on a
    /// genuine event).
    #[error("webhook receiver is not configured: {0}")]
    NotConfigured(&'static str),
    /// Missing, wrong or stale signature. Nothing was recorded.
    #[error("signature refused: {0}")]
    Unauthorized(String),
    /// The same, answered 403 where the provider's documentation says so
    /// (Twilio).
    #[error("signature refused: {0}")]
    Forbidden(String),
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
        let (status, reason) = match &self {
            WebhookError::UnknownRoute(_) => (StatusCode::NOT_FOUND, "unknown_route"),
            WebhookError::NotConfigured(_) => (StatusCode::SERVICE_UNAVAILABLE, "not_configured"),
            WebhookError::NotYet => (StatusCode::SERVICE_UNAVAILABLE, "not_yet"),
            WebhookError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "signature"),
            WebhookError::Forbidden(_) => (StatusCode::FORBIDDEN, "signature"),
            WebhookError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            WebhookError::Malformed(_) => (StatusCode::BAD_REQUEST, "malformed"),
            WebhookError::Unexpected(e) => {
                tracing::error!(error = format!("{e:#}"), "webhook failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "error")
            }
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
