//! Interactivity (`POST /slack/interactions`, and Socket Mode's interaction
//! events): buttons, modals and shortcuts. A repeated payload (double click,
//! retry) is recognised by its digest and has no second effect.

use axum::{
    body::Bytes,
    extract::State,
    response::{IntoResponse, Response},
};
use slack_morphism::prelude::*;

use super::actions;
use super::error::IngressError;
use crate::state::App;

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
                } else if action.action_id.0 == actions::AMBIGUOUS_SEND_AGAIN
                    || action.action_id.0 == actions::AMBIGUOUS_MARK_SENT
                {
                    resolve_ambiguous(app, &ev, action).await?;
                } else if action.action_id.0 == actions::BREAKER_RESUME
                    || action.action_id.0 == actions::BREAKER_CANCEL
                {
                    super::campaign_alerts::handle_action(app, &ev, action).await?;
                } else if crate::campaigns::reschedule::handles(&action.action_id.0) {
                    crate::campaigns::reschedule::handle_action(app, &ev, action).await?;
                } else if crate::campaigns::progress::handles(&action.action_id.0) {
                    crate::campaigns::progress::handle_action(app, &ev, action).await?;
                } else if [
                    actions::APPROVAL_APPROVE,
                    actions::APPROVAL_DENY,
                    actions::APPROVAL_DETAILS,
                ]
                .contains(&action.action_id.0.as_str())
                {
                    crate::approval::slack::handle_action(app, &ev, action).await?;
                } else if super::campaigns::handles(&action.action_id.0) {
                    super::campaigns::on_action(app, &ev, action).await?;
                } else if super::contact_actions::handles(&action.action_id.0) {
                    super::contact_actions::on_action(app, &ev, action).await?;
                } else if crate::inbound::answer::handles(&action.action_id.0) {
                    crate::inbound::answer::on_action(app, &ev, action).await?;
                } else if crate::inbound::link::handles(&action.action_id.0) {
                    crate::inbound::link::on_action(app, &ev, action).await?;
                } else {
                    tracing::debug!(action = %action.action_id.0, "no handler for action");
                }
            }
        }
        SlackInteractionEvent::ViewSubmission(ev)
            if crate::approval::slack::is_deny_submission(&ev) =>
        {
            return crate::approval::slack::handle_deny_submission(app, &ev).await;
        }
        SlackInteractionEvent::ViewSubmission(ev)
            if crate::campaigns::reschedule::owns_view(&ev) =>
        {
            return crate::campaigns::reschedule::on_view_submission(app, &ev).await;
        }
        SlackInteractionEvent::ViewSubmission(ev) if super::campaigns::owns_view(&ev) => {
            return Ok(super::campaigns::on_view_submission(app, &ev).await?);
        }
        SlackInteractionEvent::ViewSubmission(ev) if super::contact_actions::owns_view(&ev) => {
            return Ok(super::contact_actions::on_view_submission(app, &ev).await?);
        }
        SlackInteractionEvent::ViewSubmission(ev) if crate::inbound::answer::owns_view(&ev) => {
            return crate::inbound::answer::on_view_submission(app, &ev).await;
        }
        SlackInteractionEvent::ViewSubmission(ev) if crate::inbound::link::owns_view(&ev) => {
            return crate::inbound::link::on_view_submission(app, &ev).await;
        }
        other => {
            tracing::debug!(kind = ?std::mem::discriminant(&other), "ignoring an interaction type we do not use");
        }
    }
    Ok(SlackInteractionResponse::Empty)
}

/// An approver's decision on an ambiguous message. The decision is applied
/// before answering (a guarded state change, so two approvers clicking at once
/// decide once); the person hears back in an ephemeral message.
async fn resolve_ambiguous(
    app: &App,
    ev: &SlackInteractionBlockActionsEvent,
    action: &SlackInteractionActionInfo,
) -> Result<(), IngressError> {
    use crate::dispatcher::ledger::{self, Resolution};
    let (Some(user), Some(message_id)) =
        (ev.user.as_ref().map(|u| u.id.clone()), action.value.clone())
    else {
        return Ok(());
    };
    let text = if !app.settings.slack.approvers.contains(&user.0) {
        "Only approvers can decide what happens to an ambiguous message.".to_string()
    } else {
        let resolution = if action.action_id.0 == actions::AMBIGUOUS_SEND_AGAIN {
            Resolution::SendAgain
        } else {
            Resolution::MarkSent
        };
        let now = crate::clock::now();
        let decided =
            ledger::resolve_ambiguous(&app.db, &message_id, resolution, &user.0, now).await?;
        if decided {
            crate::audit::record(
                &app.db,
                &user.0,
                match resolution {
                    Resolution::SendAgain => "ambiguous.send_again",
                    Resolution::MarkSent => "ambiguous.mark_sent",
                },
                Some(&message_id),
                serde_json::json!({}),
            )
            .await?;
            if resolution == Resolution::SendAgain {
                app.dispatcher.wake();
            }
            match resolution {
                Resolution::SendAgain => format!("`{message_id}` is queued to be sent again."),
                Resolution::MarkSent => format!("`{message_id}` is recorded as sent."),
            }
        } else {
            format!("`{message_id}` was already decided; nothing changed.")
        }
    };
    if let Some(channel) = ev.channel.as_ref().map(|c| c.id.clone()) {
        let app2 = app.clone();
        app.spawn("answer an ambiguous-message decision", async move {
            app2.slack
                .post_ephemeral(SlackApiChatPostEphemeralRequest::new(
                    channel,
                    user,
                    SlackMessageContent::new().with_text(text),
                ))
                .await
                .map(|_| ())
                .map_err(anyhow::Error::from)
        });
    }
    Ok(())
}

fn team_of(event: &SlackInteractionEvent) -> Option<String> {
    let value = serde_json::to_value(event).ok()?;
    value
        .pointer("/team/id")
        .and_then(|v| v.as_str())
        .map(str::to_owned)
}
