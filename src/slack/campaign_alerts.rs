//! Campaign alerts in Slack: a hard bounce or a spam complaint is posted in
//! the campaign's thread, and a campaign the circuit breaker paused gets an
//! alert with Resume / Cancel buttons that only approvers can use.
//!
//! Invariants:
//! - Addresses are masked (`j***@example.com`), in the diagnostic text too.
//! - A campaign without a thread is reported in the approvals channel; with
//!   neither, the alert is only logged (the ledger and the audit log stay the
//!   truth either way: these are notifications, posted after the commit).
//! - A decision is applied in the database before the person hears back,
//!   once (see `dispatcher::breaker::decide`); non-approvers get an
//!   ephemeral refusal and nothing changes.

use serde_json::json;
use slack_morphism::prelude::*;

use super::{
    actions,
    error::IngressError,
    mrkdwn::{escape, truncate},
};
use crate::{
    dispatcher::breaker::{self, Decided, Decision, Tripped},
    state::App,
};

/// What happened to one campaign message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeKind {
    HardBounce,
    Complaint,
    /// The carrier filtered an SMS (Twilio 30007): the content or the
    /// sender is being blocked; posted in the approvals channel.
    CarrierFiltered,
}

/// A bounce or complaint to post in a campaign's thread.
#[derive(Debug, Clone)]
pub struct Notice {
    pub kind: NoticeKind,
    pub campaign_name: String,
    /// Already masked.
    pub masked_address: String,
    /// The provider's diagnostic, addresses masked.
    pub diagnostic: Option<String>,
    pub slack_channel: Option<String>,
    pub slack_ts: Option<String>,
}

/// The campaign's thread, else the approvals channel (top level).
fn destination(
    app: &App,
    channel: &Option<String>,
    ts: &Option<String>,
) -> Option<(String, Option<String>)> {
    match (channel, ts) {
        (Some(c), ts) if !c.is_empty() => Some((c.clone(), ts.clone())),
        _ => app
            .settings
            .slack
            .approvals_channel
            .clone()
            .map(|c| (c, None)),
    }
}

async fn post(
    app: &App,
    channel: String,
    thread_ts: Option<String>,
    content: SlackMessageContent,
    what: &str,
) -> anyhow::Result<()> {
    let mut req = SlackApiChatPostMessageRequest::new(channel.clone().into(), content);
    if let Some(ts) = thread_ts {
        req = req.with_thread_ts(ts.into());
    }
    match app.slack.post_message(req).await {
        Ok(_) => Ok(()),
        Err(e) => {
            if matches!(e.code(), Some("not_in_channel" | "channel_not_found")) {
                tracing::error!(
                    %channel,
                    "cannot post a {what}: invite the bot to the channel (/invite @warmline)"
                );
                Ok(())
            } else {
                Err(anyhow::Error::from(e).context(format!("posting a {what}")))
            }
        }
    }
}

/// Posts a bounce or complaint notice.
pub async fn post_notice(app: &App, notice: &Notice) -> anyhow::Result<()> {
    let Some((channel, thread_ts)) = destination(app, &notice.slack_channel, &notice.slack_ts)
    else {
        tracing::warn!(
            campaign = %notice.campaign_name,
            address = %notice.masked_address,
            kind = ?notice.kind,
            "campaign notice not posted: the campaign has no thread and no approvals channel is set"
        );
        return Ok(());
    };
    let name = escape(&notice.campaign_name);
    let address = escape(&notice.masked_address);
    let text = match notice.kind {
        NoticeKind::HardBounce => {
            let why = notice
                .diagnostic
                .as_deref()
                .filter(|d| !d.is_empty())
                .map(|d| format!(" ({})", escape(&truncate(d, 300))))
                .unwrap_or_default();
            format!(
                ":no_entry: Hard bounce in *{name}*: {address}{why}. The address is suppressed; warmline will not email it again."
            )
        }
        NoticeKind::Complaint => format!(
            ":rotating_light: Spam complaint in *{name}* from {address}. The address is suppressed; warmline will not email it again."
        ),
        NoticeKind::CarrierFiltered => {
            let why = notice
                .diagnostic
                .as_deref()
                .filter(|d| !d.is_empty())
                .map(|d| format!(" ({})", escape(&truncate(d, 300))))
                .unwrap_or_default();
            format!(
                ":warning: The carrier filtered an SMS of *{name}* to {address}{why}. Carriers block content or senders they read as spam: check the wording and links, and the sender's 10DLC registration, before sending more."
            )
        }
    };
    post(
        app,
        channel,
        thread_ts,
        SlackMessageContent::new().with_text(text),
        "campaign notice",
    )
    .await
}

/// Posts the breaker's alert with Resume / Cancel buttons.
pub async fn post_breaker_alert(app: &App, tripped: &Tripped) -> anyhow::Result<()> {
    let Some((channel, thread_ts)) = destination(app, &tripped.slack_channel, &tripped.slack_ts)
    else {
        tracing::warn!(
            campaign_id = tripped.campaign_id,
            "circuit breaker alert not posted: the campaign has no thread and no approvals channel is set"
        );
        return Ok(());
    };
    let c = &tripped.counts;
    let blocks = app.blocks.message_blocks(
        "breaker_alert.json.j2",
        json!({
            "campaign": escape(&truncate(&tripped.campaign_name, 200)),
            "campaign_id": tripped.campaign_id.to_string(),
            "reason": tripped.reason.describe(),
            "sends": c.sends,
            "bounced": c.bounced,
            "bounce_rate": c.percent(c.bounced),
            "complained": c.complained,
            "complaint_rate": c.percent(c.complained),
            "paused": tripped.paused_messages,
            "resume_action": actions::BREAKER_RESUME,
            "cancel_action": actions::BREAKER_CANCEL,
        }),
    )?;
    let text = format!(
        "Campaign {} paused itself: {}. An approver can resume or cancel it.",
        escape(&tripped.campaign_name),
        tripped.reason.describe()
    );
    post(
        app,
        channel,
        thread_ts,
        SlackMessageContent::new()
            .with_text(text)
            .with_blocks(blocks),
        "circuit breaker alert",
    )
    .await
}

/// An approver's Resume or Cancel on a breaker alert. The decision is
/// applied before answering; the person hears back in an ephemeral message.
pub async fn handle_action(
    app: &App,
    ev: &SlackInteractionBlockActionsEvent,
    action: &SlackInteractionActionInfo,
) -> Result<(), IngressError> {
    let Some(user) = ev.user.as_ref().map(|u| u.id.clone()) else {
        return Ok(());
    };
    let campaign_id = IngressError::id_in(
        action.value.as_deref(),
        "breaker action without a campaign id",
    )?;
    let decision = if action.action_id.0 == actions::BREAKER_RESUME {
        Decision::Resume
    } else {
        Decision::Cancel
    };
    // Approvers and the campaign's requester (issue: "for approvers and the requester").
    let text = if !crate::campaigns::progress::may_decide(app, campaign_id, &user.0).await? {
        "Only approvers and the campaign's requester can resume or cancel a campaign the circuit breaker paused.".to_string()
    } else {
        let decided =
            breaker::decide(&app.db, campaign_id, decision, &user.0, crate::clock::now()).await?;
        match decided {
            Decided::Resumed(n) => {
                app.dispatcher.wake();
                format!("Campaign {campaign_id} resumed; {n} message(s) are due again.")
            }
            Decided::Cancelled(n) => {
                format!("Campaign {campaign_id} cancelled; {n} message(s) will not be sent.")
            }
            Decided::Unchanged(state) => {
                format!("Campaign {campaign_id} is already {state}; nothing changed.")
            }
            Decided::NoSuchCampaign => format!("There is no campaign {campaign_id}."),
        }
    };
    if let Some(channel) = ev.channel.as_ref().map(|c| c.id.clone()) {
        let app2 = app.clone();
        app.spawn("answer a circuit breaker decision", async move {
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
