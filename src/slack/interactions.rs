//! Interactivity (`POST /slack/interactions`, and Socket Mode's interaction
//! events): buttons, modals and shortcuts. A repeated payload (double click,
//! retry) is recognised by its digest and has no second effect.

use axum::{
    body::Bytes,
    extract::State,
    response::{IntoResponse, Response},
};
use slack_morphism::prelude::*;

use super::error::IngressError;
use crate::startup::App;

/// Action ids the bot's layouts use.
pub mod actions {
    /// The Home tab's "Refresh" button.
    pub const HOME_REFRESH: &str = "home_refresh";
}

/// `POST /slack/interactions` (already signature-checked). The body is a
/// form with one field, `payload`, holding the JSON.
pub async fn http_handler(State(app): State<App>, body: Bytes) -> Result<Response, IngressError> {
    let payload = url::form_urlencoded::parse(&body)
        .find(|(k, _)| k == "payload")
        .map(|(_, v)| v.into_owned())
        .ok_or_else(|| IngressError::Malformed("interaction body has no `payload` field".into()))?;
    let event: SlackInteractionEvent = serde_json::from_str(&payload)
        .map_err(|e| IngressError::Malformed(format!("malformed interaction payload: {e}")))?;
    let key = format!("interaction:{}", super::dedup::digest(payload.as_bytes()));
    let response = handle(&app, event, &key).await?;
    Ok(response.into_response())
}

/// Handles one interaction identified by `key`.
pub async fn handle(
    app: &App,
    event: SlackInteractionEvent,
    key: &str,
) -> Result<SlackInteractionResponse, IngressError> {
    let team = team_of(&event);
    if !super::dedup::first_time(&app.db, key, "interaction", team.as_deref()).await? {
        return Ok(SlackInteractionResponse::Empty);
    }
    match event {
        SlackInteractionEvent::BlockActions(ev) => {
            for action in ev.actions.iter().flatten() {
                metrics::counter!("slack_actions_total", "action" => action.action_id.0.clone())
                    .increment(1);
                if action.action_id.0 == actions::HOME_REFRESH
                    && let Some(user) = ev.user.as_ref().map(|u| u.id.clone())
                {
                    let app2 = app.clone();
                    app.spawn("refresh App Home", async move {
                        super::home::publish(&app2, &user)
                            .await
                            .map_err(anyhow::Error::from)
                    });
                } else {
                    tracing::debug!(action = %action.action_id.0, "no handler for action");
                }
            }
        }
        other => {
            tracing::debug!(kind = ?std::mem::discriminant(&other), "ignoring an interaction type we do not use");
        }
    }
    Ok(SlackInteractionResponse::Empty)
}

fn team_of(event: &SlackInteractionEvent) -> Option<String> {
    let value = serde_json::to_value(event).ok()?;
    value
        .pointer("/team/id")
        .and_then(|v| v.as_str())
        .map(str::to_owned)
}
