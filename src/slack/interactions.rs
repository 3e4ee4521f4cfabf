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
use crate::state::App;

/// Action ids the bot's layouts use.
pub mod actions {
    /// The Home tab's "Refresh" button.
    pub const HOME_REFRESH: &str = "home_refresh";
    /// On a delivery alert: send an ambiguous message again.
    pub const AMBIGUOUS_SEND_AGAIN: &str = "ambiguous_send_again";
    /// On a delivery alert: record an ambiguous message as sent.
    pub const AMBIGUOUS_MARK_SENT: &str = "ambiguous_mark_sent";
    /// On a circuit breaker alert: resume the paused campaign.
    pub const BREAKER_RESUME: &str = "breaker_resume";
    /// On a circuit breaker alert: cancel the paused campaign.
    pub const BREAKER_CANCEL: &str = "breaker_cancel";
    /// On a campaign's progress message: pause / resume / cancel it.
    pub const CAMPAIGN_PAUSE: &str = "campaign_pause";
    pub const CAMPAIGN_RESUME: &str = "campaign_resume";
    pub const CAMPAIGN_CANCEL: &str = "campaign_cancel";
    /// On an approval request: approve (after Slack's confirm dialog).
    pub const APPROVAL_APPROVE: &str = "approval_approve";
    /// On an approval request: deny (opens the reason modal).
    pub const APPROVAL_DENY: &str = "approval_deny";
    /// On an approval request: the whole audience and risk, ephemeral.
    pub const APPROVAL_DETAILS: &str = "approval_details";
    /// `callback_id` of the deny reason modal.
    pub const APPROVAL_DENY_REASON: &str = "approval_deny_reason";
    /// In the list of matches of `/warm contact`: show that contact's card.
    pub const CONTACT_SHOW: &str = "contact_show";
    /// On a contact card: open the nudge modal.
    pub const CONTACT_NUDGE: &str = "contact_nudge";
    /// On a contact card: open the log-interaction modal.
    pub const CONTACT_LOG: &str = "contact_log";
    /// On a contact card: revoke one channel's consent (confirmed).
    pub const CONTACT_OPT_OUT: &str = "contact_opt_out";
    /// On a forget prompt: erase the contact (approvers, confirmed).
    pub const CONTACT_FORGET: &str = "contact_forget";
    /// In the nudge modal: the template select (re-renders the preview).
    pub const NUDGE_TEMPLATE: &str = "nudge_template";
    /// In `/warm drafts`: reopen a draft in the campaign modal.
    pub const CAMPAIGN_OPEN: &str = "campaign_open";
    /// In the campaign preview: save the draft.
    pub const CAMPAIGN_SAVE: &str = "campaign_save";
    /// In the campaign preview: back to the form.
    pub const CAMPAIGN_EDIT: &str = "campaign_edit";
    /// On an approved request of a campaign not started yet, and on the
    /// Home tab: open the reschedule modal.
    pub const CAMPAIGN_RESCHEDULE: &str = "campaign_reschedule";
    /// `callback_id` of the reschedule modal.
    pub const CAMPAIGN_RESCHEDULE_SUBMIT: &str = "campaign_reschedule_submit";
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
        let now = chrono::Utc::now();
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
