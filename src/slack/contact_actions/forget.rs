//! Forgetting a contact from Slack: the confirmation prompt
//! (`/warm contact forget`) and its Forget button.
//!
//! Invariants:
//! - Only approvers may forget; the click is checked again, not only the
//!   command that showed the button.
//! - Forgetting a forgotten contact finds nothing and changes nothing.

use serde_json::json;
use slack_morphism::prelude::*;

use crate::slack::respond::ephemeral;
use crate::{approval, contacts, slack::actions, slack::mrkdwn::escape, state::App};

/// The confirmation an approver gets before forgetting.
pub fn forget_prompt(
    app: &App,
    id: i64,
    name: &str,
    email: &str,
) -> anyhow::Result<SlackMessageContent> {
    let blocks = app.blocks.message_blocks(
        "contact_forget.json.j2",
        json!({
            "id": id.to_string(),
            "name": escape(name),
            "email": escape(email),
            "forget_action": actions::CONTACT_FORGET,
        }),
    )?;
    Ok(SlackMessageContent::new()
        .with_text(format!("Forget {name}? Confirm with the button."))
        .with_blocks(blocks))
}

/// Forget, on an approver's confirmed click. `contacts::forget` erases in
/// one transaction and writes the audit entry; a second click finds nothing.
pub(super) async fn forget(
    app: &App,
    ev: &SlackInteractionBlockActionsEvent,
    user: SlackUserId,
    contact_id: i64,
) -> anyhow::Result<()> {
    let text = if !approval::decision::is_approver(app, &user.0).await {
        "Only approvers can forget a contact.".to_string()
    } else if contacts::forget(&app.db, contact_id, &format!("slack:{}", user.0)).await? {
        ":white_check_mark: Forgotten. Only hashed tombstones remain, so an import cannot bring them back.".to_string()
    } else {
        "That contact was already forgotten; nothing changed.".to_string()
    };
    let app2 = app.clone();
    let channel = ev.channel.as_ref().map(|c| c.id.clone());
    app.spawn("confirm a forget", async move {
        ephemeral(
            &app2,
            channel,
            user,
            SlackMessageContent::new().with_text(text),
        )
        .await
    });
    Ok(())
}
