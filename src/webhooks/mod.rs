//! `POST /webhooks/{route}`: providers' reports, through each provider's
//! [`WebhookReceiver`](crate::providers::webhook::WebhookReceiver), applied
//! to the ledger by [`delivery`].
//!
//! Order of work, each step refusing before the next can leave a trace:
//! 1. the route names a configured provider's receiver (404 otherwise);
//! 2. the raw body, at most [`MAX_BODY_BYTES`] (413);
//! 3. the receiver verifies the signature (503 without a secret, 401 for a
//!    missing, wrong or stale one) — before anything is parsed or stored;
//! 4. the receiver parses the payload (400 naming what is wrong);
//! 5. each report is applied in its own transaction ([`delivery::apply`]):
//!    recorded once under its event id, effects only forward;
//! 6. Slack notices run after the commit, off the request path
//!    (`App::spawn`), so a slow Slack never delays the answer and a lost
//!    notice never loses the ledger change.

pub mod delivery;
pub mod events;

use axum::{
    Json,
    body::Body,
    extract::{Path, State},
    http::{HeaderMap, header::CONTENT_LENGTH},
};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde_json::json;

use crate::providers::webhook::{MAX_BODY_BYTES, WebhookError};
use crate::{providers::webhook::WebhookRequest, slack::campaign_alerts, state::App};

/// `POST /webhooks/{route}`.
pub async fn handler(
    State(app): State<App>,
    Path(route): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<serde_json::Value>, WebhookError> {
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
    if duplicate {
        return Ok(Json(json!({"ok": true, "duplicate": true})));
    }
    Ok(Json(json!({"ok": true, "matched": matched})))
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
