//! The Events API (`POST /slack/events`, and Socket Mode's push events):
//! `url_verification` is answered with its challenge; each event callback is
//! de-duplicated on `(team_id, event_id)` — Slack retries up to three times
//! when it thinks we were slow — and its work is handed to a task.

use axum::{
    Json,
    body::Bytes,
    extract::State,
    response::{IntoResponse, Response},
};
use serde_json::json;
use slack_morphism::prelude::*;

use super::error::IngressError;
use crate::state::App;

/// `POST /slack/events` (already signature-checked).
pub async fn http_handler(State(app): State<App>, body: Bytes) -> Result<Response, IngressError> {
    let event: SlackPushEvent = serde_json::from_slice(&body)
        .map_err(|e| IngressError::Malformed(format!("malformed event payload: {e}")))?;
    match event {
        SlackPushEvent::UrlVerification(v) => {
            Ok(Json(json!({ "challenge": v.challenge })).into_response())
        }
        SlackPushEvent::EventCallback(cb) => {
            handle_callback(&app, cb).await?;
            Ok(axum::http::StatusCode::OK.into_response())
        }
        SlackPushEvent::AppRateLimited(r) => {
            tracing::warn!(minute = ?r.minute_rate_limited, "Slack paused event delivery: app_rate_limited");
            Ok(axum::http::StatusCode::OK.into_response())
        }
    }
}

/// Records the event and hands its work to a task. A repeat does nothing.
pub async fn handle_callback(app: &App, cb: SlackPushEventCallback) -> Result<(), IngressError> {
    let key = format!("event:{}:{}", cb.team_id.0, cb.event_id.0);
    if !super::dedup::first_time(&app.db, &key, "event", Some(&cb.team_id.0)).await? {
        return Ok(());
    }
    match cb.event {
        SlackEventCallbackBody::AppHomeOpened(ev) => {
            metrics::counter!("slack_events_total", "type" => "app_home_opened").increment(1);
            if ev.tab.as_deref() == Some("home") || ev.tab.is_none() {
                let app2 = app.clone();
                app.spawn("publish App Home", async move {
                    super::home::publish(&app2, &ev.user)
                        .await
                        .map_err(anyhow::Error::from)
                });
            }
        }
        other => {
            metrics::counter!("slack_events_total", "type" => "other").increment(1);
            tracing::debug!(event = ?std::mem::discriminant(&other), "ignoring an event type we do not use");
        }
    }
    Ok(())
}
