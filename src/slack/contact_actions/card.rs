//! The contact card (warmth and why, last interactions, consent per
//! channel, stage and tags, and its buttons) and its "Opt out of a channel"
//! action.
//!
//! Invariants:
//! - The card shows full addresses: it is ephemeral to the team member who
//!   asked.
//! - Opting out appends a revocation only when the channel is not already
//!   revoked, decided under the contact's lock, so a repeated click changes
//!   nothing; the audit entry is written in the same transaction.

use serde::Serialize;
use serde_json::json;
use slack_morphism::prelude::*;

use crate::slack::respond::ephemeral;
use crate::{
    consent::{self, Source},
    contacts::{self, ContactView},
    slack::actions,
    slack::mrkdwn::{escape, truncate},
    state::App,
};

/// How many interactions the card shows.
const CARD_INTERACTIONS: usize = 5;

#[derive(Serialize)]
struct OptOut {
    channel: String,
    value: String,
}

/// The contact card of `id`; `None` when there is no such contact.
pub async fn card(app: &App, id: i64) -> anyhow::Result<Option<SlackMessageContent>> {
    let Some(view) = contacts::view(&app.db, id).await? else {
        return Ok(None);
    };
    Ok(Some(card_message(app, &view)?))
}

fn card_message(app: &App, v: &ContactView) -> anyhow::Result<SlackMessageContent> {
    let c = &v.contact;
    let name = c.display_name();
    let dash = || "—".to_string();
    let reasons = bullets(v.warmth_reasons.iter().map(|r| escape(r)));
    let interactions = if v.interactions.is_empty() {
        "None yet.".to_string()
    } else {
        bullets(v.interactions.iter().take(CARD_INTERACTIONS).map(|i| {
            let mut line = format!(
                "{} · {} ({})",
                i.occurred_at.format("%Y-%m-%d"),
                i.kind,
                i.direction
            );
            if let Some(s) = i.summary.as_deref().filter(|s| !s.is_empty()) {
                line.push_str(&format!(": {}", escape(&truncate(s, 200))));
            }
            line
        }))
    };
    let consent = bullets(v.consent.iter().map(|(channel, state)| {
        let suppressed = v
            .suppressions
            .iter()
            .find(|s| &s.channel == channel)
            .map(|s| format!(" · :no_entry: suppressed ({})", s.reason))
            .unwrap_or_default();
        match state {
            Some(s) => format!(
                "{channel}: {} since {} ({}){suppressed}",
                if s.granted {
                    ":white_check_mark: granted"
                } else {
                    ":x: revoked"
                },
                s.at.format("%Y-%m-%d"),
                escape(&s.source)
            ),
            None => format!("{channel}: — none recorded{suppressed}"),
        }
    }));
    let opt_out: Vec<OptOut> = v
        .consent
        .iter()
        .filter(|(_, s)| s.as_ref().is_some_and(|s| s.granted))
        .map(|(channel, _)| OptOut {
            channel: channel.clone(),
            value: format!("{}:{channel}", c.id),
        })
        .collect();
    let ctx = json!({
        "id": c.id.to_string(),
        "name": name,
        "first_name": c.first_name.clone().unwrap_or_else(|| name.clone()),
        "email": c.email.as_deref().map(escape).unwrap_or_else(dash),
        "phone": c.phone.clone().unwrap_or_else(dash),
        "warmth": v.warmth.round() as i64,
        "stage": c.pipeline_stage.as_deref().map(escape).unwrap_or_else(dash),
        "tags": if c.tags.is_empty() { dash() } else { escape(&c.tags.join(", ")) },
        "status": escape(&c.status),
        "reasons": reasons,
        "interactions": interactions,
        "consent": consent,
        "opt_out": opt_out,
        "nudge_action": actions::CONTACT_NUDGE,
        "log_action": actions::CONTACT_LOG,
        "opt_out_action": actions::CONTACT_OPT_OUT,
    });
    let blocks = app.blocks.message_blocks("contact_card.json.j2", ctx)?;
    Ok(SlackMessageContent::new()
        .with_text(format!("{name}: warmth {}/100", v.warmth.round()))
        .with_blocks(blocks))
}

/// "Opt out of a channel": a revocation in the ledger, in the clicker's
/// name, unless the channel is already revoked; audited.
pub(super) async fn opt_out(
    app: &App,
    ev: &SlackInteractionBlockActionsEvent,
    user: &SlackUserId,
    value: &str,
) -> anyhow::Result<()> {
    let Some((contact_id, channel)) = value
        .split_once(':')
        .and_then(|(id, ch)| Some((id.parse::<i64>().ok()?, ch.to_string())))
        .filter(|(_, ch)| crate::domain::Channel::parse(ch).is_some())
    else {
        return Ok(());
    };
    let text = match consent::lock_contact(&app.db, contact_id).await? {
        None => "That contact no longer exists.".to_string(),
        Some(txn) => {
            let already = consent::current(&txn, contact_id)
                .await?
                .get(&channel)
                .is_some_and(|c| !c.granted);
            if already {
                txn.rollback().await.ok();
                format!("{channel} was already opted out; nothing changed.")
            } else {
                consent::record(
                    &txn,
                    contact_id,
                    &channel,
                    false,
                    Source::SlackUser,
                    Some(&user.0),
                    Some("Opted out by a team member in Slack"),
                )
                .await?;
                crate::audit::record(
                    &txn,
                    &user.0,
                    "consent.revoked",
                    Some(&contact_id.to_string()),
                    json!({ "channel": channel, "source": Source::SlackUser.as_str() }),
                )
                .await?;
                txn.commit().await?;
                format!(
                    ":white_check_mark: Opted out of {channel}. Nothing more is sent there until they opt in again."
                )
            }
        }
    };
    let app2 = app.clone();
    let channel_id = ev.channel.as_ref().map(|c| c.id.clone());
    let user = user.clone();
    app.spawn("confirm an opt-out", async move {
        ephemeral(
            &app2,
            channel_id,
            user,
            SlackMessageContent::new().with_text(text),
        )
        .await
    });
    Ok(())
}

fn bullets(lines: impl Iterator<Item = String>) -> String {
    lines
        .map(|l| format!("• {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}
