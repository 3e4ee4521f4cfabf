//! Contacts in Slack: finding one (`/warm contact`, `/warm log`), its card,
//! and what the card's buttons do — Show (from a list of matches), Nudge,
//! Log interaction, Opt out of a channel, and Forget (approvers only).
//!
//! This file is the entry point: which action ids and modals belong here,
//! and the routing of a click or a submission to the concern that owns it
//! (`card`, `nudge`, `log`, `forget`; `find` and `export` serve the
//! commands; `respond` is the Slack plumbing they share).
//!
//! Invariants:
//! - A modal is opened with `views.open` straight from the click, before any
//!   database work (a trigger id lives 3 s); anything that needs the
//!   database follows with `views.update` on the opened view.
//! - Every write a click causes is idempotent on its own, on top of the
//!   per-payload de-duplication in `dedup.rs`: opting out appends a
//!   revocation only when the channel is not already revoked (decided under
//!   the contact's lock), forgetting a forgotten contact finds nothing, and a
//!   nudge's source is its modal's view id, so a second submit of the same
//!   modal sends once.
//! - The person asking is a team member: cards show full addresses (the
//!   message is ephemeral to them). The audit log gets masked ones only.
//! - Only approvers may forget; the click is checked again, not only the
//!   command that showed the button.

pub mod card;
mod conversation;
pub mod export;
pub mod find;
pub mod forget;
pub mod log;
pub mod nudge;

use slack_morphism::prelude::*;

use self::log::LOG_MODAL;
use self::nudge::NUDGE_MODAL;
use super::actions;
use crate::slack::respond::{callback_id, ephemeral, private_metadata};
use crate::state::App;

/// Action ids handled here.
pub fn handles(action_id: &str) -> bool {
    [
        actions::CONTACT_SHOW,
        actions::CONTACT_NUDGE,
        actions::CONTACT_LOG,
        actions::CONTACT_OPT_OUT,
        actions::CONTACT_FORGET,
        actions::NUDGE_TEMPLATE,
    ]
    .contains(&action_id)
}

/// Whether a submitted view is one of ours.
pub fn owns_view(ev: &SlackInteractionViewSubmissionEvent) -> bool {
    matches!(
        callback_id(&ev.view.view).as_deref(),
        Some(LOG_MODAL | NUDGE_MODAL)
    )
}

/// One click on a contact card, a match list, a forget prompt or the nudge
/// modal's template select.
pub async fn on_action(
    app: &App,
    ev: &SlackInteractionBlockActionsEvent,
    action: &SlackInteractionActionInfo,
) -> anyhow::Result<()> {
    let Some(user) = ev.user.as_ref().map(|u| u.id.clone()) else {
        return Ok(());
    };
    let id = action.action_id.0.as_str();
    let value = action
        .value
        .clone()
        .or_else(|| action.selected_option.as_ref().map(|o| o.value.clone()))
        .unwrap_or_default();
    if id == actions::NUDGE_TEMPLATE {
        return nudge::preview_template(app, ev, value);
    }
    if id == actions::CONTACT_OPT_OUT {
        return card::opt_out(app, ev, &user, &value).await;
    }
    let Ok(contact_id) = value.parse::<i64>() else {
        tracing::debug!(action = id, "contact action without a contact id");
        return Ok(());
    };
    match id {
        actions::CONTACT_SHOW => {
            let app2 = app.clone();
            let channel = ev.channel.as_ref().map(|c| c.id.clone());
            app.spawn("show a contact card", async move {
                let content = card::card(&app2, contact_id).await?.unwrap_or_else(|| {
                    SlackMessageContent::new().with_text("That contact no longer exists.".into())
                });
                ephemeral(&app2, channel, user, content).await
            });
        }
        actions::CONTACT_LOG => log::open_log_modal(app, ev.trigger_id.clone(), contact_id),
        actions::CONTACT_NUDGE => nudge::open_nudge_modal(app, ev.trigger_id.clone(), contact_id),
        actions::CONTACT_FORGET => forget::forget(app, ev, user, contact_id).await?,
        _ => {}
    }
    Ok(())
}

/// A submitted log or nudge modal: errors go back into the modal on their
/// field; success replaces the modal with what happened.
pub async fn on_view_submission(
    app: &App,
    ev: &SlackInteractionViewSubmissionEvent,
) -> anyhow::Result<SlackInteractionResponse> {
    let values = crate::slack::modal_form::submitted(&ev.view);
    let Some(contact_id) = private_metadata(&ev.view.view).and_then(|m| m.parse::<i64>().ok())
    else {
        return Ok(SlackInteractionResponse::Empty);
    };
    let user = ev.user.id.0.clone();
    match callback_id(&ev.view.view).as_deref() {
        Some(LOG_MODAL) => log::submit_log(app, &values, contact_id, &user).await,
        Some(NUDGE_MODAL) => {
            nudge::submit_nudge(app, &values, contact_id, &user, &ev.view.state_params.id.0).await
        }
        _ => Ok(SlackInteractionResponse::Empty),
    }
}
