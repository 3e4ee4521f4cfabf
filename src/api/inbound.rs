//! `POST /api/v1/inbound`: a reply the host app received on a channel of
//! its own (its inbound email parser, its own SMS number), handed to
//! [`crate::inbound`] exactly as a channel webhook would.
//!
//! Invariants:
//! - Everything is validated before anything is written: the channel, the
//!   sender parsed for that channel (email address, E.164 phone, IGSID),
//!   `received_at` in RFC 3339 and not in the future. A bad field is a 422
//!   naming it, and stores nothing.
//! - The inbound row, its consent effect, the confirmation in the ledger and
//!   the idempotency record commit together; Slack hears about it after the
//!   commit, off the request path. A replay (same `Idempotency-Key`, same
//!   body) answers the first answer again and does nothing twice.
//! - Answers 200: the message's effects are applied when the answer leaves
//!   (only the confirmation and the Slack post follow).

use axum::{
    extract::State,
    http::{HeaderMap, Method, StatusCode, Uri},
    response::Response,
};
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::{ApiError, Caller, JsonBody, idempotency::Idempotency};
use crate::{
    inbound::{self, Applied, Inbound, InboundError, Reply},
    state::App,
};

/// The body of `POST /api/v1/inbound`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboundRequest {
    /// `email`, `sms`, `whatsapp` or `instagram`.
    pub channel: String,
    /// The sender: an email address, an E.164 phone number, or an IGSID.
    pub from: String,
    pub text: String,
    /// RFC 3339.
    pub received_at: String,
}

impl From<InboundError> for ApiError {
    fn from(e: InboundError) -> Self {
        match e {
            InboundError::Invalid { field, message } => ApiError::invalid(field, message),
            InboundError::Internal(e) => ApiError::Internal(e),
        }
    }
}

pub async fn create(
    State(app): State<App>,
    caller: Caller,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: JsonBody,
) -> Result<Response, ApiError> {
    let idempotency = Idempotency::new(&caller, &headers, &method, &uri, body.bytes())?;
    if let Some(stored) = idempotency.replay(&app.db, crate::clock::now()).await? {
        return Ok(stored.into_replay());
    }
    let request: InboundRequest = body.parse()?;
    let received_at = DateTime::parse_from_rfc3339(request.received_at.trim())
        .map_err(|e| {
            ApiError::invalid(
                "received_at",
                format!("received_at must be an RFC 3339 time, like 2026-11-26T14:03:00Z: {e}"),
            )
        })?
        .with_timezone(&Utc);
    let msg = Inbound::parse(&request.channel, &request.from, request.text, received_at)?;
    let mut applied: Option<Applied> = None;
    let executed = idempotency
        .execute(&app, StatusCode::OK, async |txn| {
            let a = inbound::apply(txn, &app, &msg, crate::clock::now()).await?;
            let o = &a.outcome;
            let body = serde_json::json!({
                "id": o.id,
                "contact_id": o.contact_id,
                "keyword": o.keyword.map(inbound::Keyword::as_str),
                "action": o.action.as_str(),
                "in_reply_to": o.in_reply_to,
                "reply": match &o.reply {
                    Reply::None => serde_json::Value::Null,
                    Reply::Queued(id) => serde_json::json!({"state": "queued", "id": id}),
                    Reply::Unavailable(why) => serde_json::json!({"state": "not_sent", "reason": why}),
                    Reply::InResponse(text) => serde_json::json!({"state": "in_response", "text": text}),
                    Reply::ByProvider => serde_json::json!({"state": "by_provider"}),
                },
            });
            applied = Some(a);
            Ok(body)
        })
        .await?;
    if !executed.replayed
        && let Some(a) = applied
    {
        a.finish(&app);
    }
    Ok(executed.response)
}
