//! `POST /webhooks/{route}` and `POST /webhooks/{provider}/{kind}`:
//! providers' reports, through each provider's
//! [`WebhookReceiver`](crate::providers::webhook::WebhookReceiver), applied
//! to the ledger by [`delivery`]; replies people sent, handed to
//! `crate::inbound` (the one entry point for replies).
//!
//! Order of work, each step refusing before the next can leave a trace:
//! 1. the route (one or two segments: `resend`, `twilio/status`) names a
//!    configured provider's receiver (404 otherwise);
//! 2. the raw body, at most [`MAX_BODY_BYTES`] (413);
//! 3. the receiver verifies the signature (503 without a secret, 401 or 403
//!    for a missing, wrong or stale one) — before anything is parsed or
//!    stored; it sees the path, the query and `WARMLINE_PUBLIC_URL`, for
//!    providers that sign the URL;
//! 4. the receiver parses the payload (400 naming what is wrong);
//! 5. each report is applied in its own transaction ([`delivery::apply`]):
//!    recorded once under its event id, effects only forward;
//! 6. each inbound message is recorded once under its event id and applied
//!    by `inbound::apply` in the same transaction ([`delivery::receive`]);
//! 7. Slack notices run after the commit, off the request path
//!    (`App::spawn`), so a slow Slack never delays the answer and a lost
//!    notice never loses the ledger change;
//! 8. the answer is JSON, or the receiver's own (Twilio: TwiML, carrying a
//!    keyword's confirmation when warmline answers it in the response).
//!
//! `GET /webhooks/{route}` is a subscription handshake ([`handshake`]):
//! the receiver answers it (Meta: the `hub.challenge` when the verify token
//! matches, else 403), or the route takes no GET (405). Nothing is stored.

pub mod delivery;
pub mod events;

use axum::{
    Json,
    body::Body,
    extract::{OriginalUri, Path, State},
    http::{HeaderMap, HeaderValue, header::CONTENT_LENGTH, header::CONTENT_TYPE},
    response::{IntoResponse, Response},
};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde_json::json;

use crate::providers::webhook::{Handled, MAX_BODY_BYTES, WebhookError};
use crate::{providers::webhook::WebhookRequest, slack::campaign_alerts, state::App};

/// `POST /webhooks/{route}`.
pub async fn handler(
    State(app): State<App>,
    Path(route): Path<String>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, WebhookError> {
    handle(app, route, uri, headers, body).await
}

/// `GET /webhooks/{route}`: the provider's subscription handshake.
pub async fn handshake(
    State(app): State<App>,
    Path(route): Path<String>,
    OriginalUri(uri): OriginalUri,
) -> Result<Response, WebhookError> {
    let receiver = app
        .dispatcher
        .registry()
        .webhook(&route)
        .ok_or(WebhookError::UnknownRoute(route))?;
    match receiver.handshake(uri.query()) {
        None => Ok(axum::http::StatusCode::METHOD_NOT_ALLOWED.into_response()),
        Some(Ok(challenge)) => Ok((
            [(CONTENT_TYPE, HeaderValue::from_static("text/plain"))],
            challenge,
        )
            .into_response()),
        Some(Err(e)) => Err(e),
    }
}

/// `POST /webhooks/{provider}/{kind}`: a provider with several receivers
/// (Twilio's `status` and `inbound`).
pub async fn handler_kind(
    State(app): State<App>,
    Path((provider, kind)): Path<(String, String)>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, WebhookError> {
    handle(app, format!("{provider}/{kind}"), uri, headers, body).await
}

async fn handle(
    app: App,
    route: String,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, WebhookError> {
    let receiver = app
        .dispatcher
        .registry()
        .webhook(&route)
        .ok_or(WebhookError::UnknownRoute(route))?;
    let bytes = read_body(&headers, body).await?;
    let request = WebhookRequest {
        headers: &headers,
        body: &bytes,
        now: crate::clock::now(),
        path: uri.path(),
        query: uri.query(),
        public_url: app.settings.server.public_url.as_ref(),
    };
    receiver.verify(&request)?;
    let reports = receiver.parse(&request)?;

    let provider = receiver.provider();
    let (mut matched, mut duplicate) = (false, !reports.is_empty());
    for report in &reports {
        let applied = delivery::apply(&app.db, receiver.as_ref(), report, &bytes).await?;
        if applied.duplicate {
            metrics::counter!("provider_events_duplicate_total", "provider" => provider)
                .increment(1);
            continue;
        }
        duplicate = false;
        matched |= applied.matched;
        metrics::counter!(
            "provider_events_total",
            "provider" => provider,
            "type" => report.status.label()
        )
        .increment(1);
        if applied.notices.is_empty() && applied.tripped.is_none() {
            continue;
        }
        let app2 = app.clone();
        let delivery::Applied {
            notices, tripped, ..
        } = applied;
        app.spawn("post campaign alerts from a provider webhook", async move {
            for notice in &notices {
                if let Err(e) = campaign_alerts::post_notice(&app2, notice).await {
                    tracing::error!(error = format!("{e:#}"), "cannot post a campaign notice");
                }
            }
            if let Some(t) = tripped {
                campaign_alerts::post_breaker_alert(&app2, &t).await?;
            }
            Ok(())
        });
    }
    let inbound = receiver.inbound(&request)?;
    let mut handled = Handled::default();
    for message in &inbound {
        if let Some(text) = delivery::receive(&app, receiver.as_ref(), message, &bytes).await? {
            handled.replies.push(text);
        }
    }
    if let Some(answer) = receiver.answer(&handled) {
        let mut response = answer.body.into_response();
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(answer.content_type));
        return Ok(response);
    }
    if duplicate {
        return Ok(Json(json!({"ok": true, "duplicate": true})).into_response());
    }
    Ok(Json(json!({"ok": true, "matched": matched})).into_response())
}

async fn read_body(headers: &HeaderMap, body: Body) -> Result<axum::body::Bytes, WebhookError> {
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES) {
        return Err(WebhookError::TooLarge(MAX_BODY_BYTES));
    }
    match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<LengthLimitError>() => Err(WebhookError::TooLarge(MAX_BODY_BYTES)),
        Err(_) => Err(WebhookError::Malformed(
            "could not read the request body".into(),
        )),
    }
}
