//! The Slack notice about one inbound message: where it goes (the answered
//! campaign's thread, else the approvals channel) and what it says.
//!
//! Invariants: the sender's address is masked and the text is escaped for
//! mrkdwn, so a reply cannot mention `@channel` or forge a link; a channel
//! the bot is not in is logged, not retried.

use slack_morphism::prelude::*;

use super::*;
use crate::slack::mrkdwn::{escape, truncate};

/// What is posted to Slack about one inbound message.
#[derive(Debug, Clone)]
pub(super) struct Notice {
    pub(super) inbound_id: i64,
    pub(super) channel: Channel,
    pub(super) masked_from: String,
    pub(super) contact_name: Option<String>,
    pub(super) known: bool,
    pub(super) text: String,
    pub(super) action: Action,
    pub(super) consent_changed: bool,
    pub(super) reply: Reply,
    pub(super) campaign_name: Option<String>,
    pub(super) slack_channel: Option<String>,
    pub(super) slack_ts: Option<String>,
}

impl Notice {
    /// The campaign's thread, else the approvals channel (top level).
    fn destination(&self, app: &App) -> Option<(String, Option<String>)> {
        match (&self.slack_channel, &self.slack_ts) {
            (Some(c), Some(ts)) if !c.is_empty() && !ts.is_empty() => {
                Some((c.clone(), Some(ts.clone())))
            }
            _ => app
                .settings
                .slack
                .approvals_channel
                .clone()
                .map(|c| (c, None)),
        }
    }

    pub(super) fn text(&self) -> String {
        let who = match (&self.contact_name, self.known) {
            (Some(name), _) => format!("*{}* ({})", escape(name), escape(&self.masked_from)),
            (None, true) => escape(&self.masked_from),
            (None, false) => format!("an unknown sender ({})", escape(&self.masked_from)),
        };
        let about = self
            .campaign_name
            .as_deref()
            .map(|c| format!(" to *{}*", escape(c)))
            .unwrap_or_default();
        let quoted = truncate(self.text.trim(), SLACK_QUOTE_CHARS);
        let quoted = if quoted.is_empty() {
            "> _(no text)_".to_string()
        } else {
            quoted
                .lines()
                .map(|l| format!("> {}", escape(l)))
                .collect::<Vec<_>>()
                .join("\n")
        };
        let label = self.channel.label();
        let effect = match (self.action, self.consent_changed) {
            (Action::Revoked, true) => format!("\n:no_entry_sign: Opted out of {label}."),
            (Action::Revoked, false) => {
                format!("\n:no_entry_sign: Already opted out of {label}; no new confirmation.")
            }
            (Action::Restored, true) => format!("\n:white_check_mark: Opted back in to {label}."),
            (Action::Restored, false) => {
                format!("\n:white_check_mark: Already opted in to {label}.")
            }
            (Action::Help, _) => "\nAsked for help.".to_string(),
            (Action::None, _) => String::new(),
        };
        let unsent = match &self.reply {
            Reply::Unavailable(why) => format!(" (No reply sent: {}.)", escape(why)),
            Reply::ByProvider if self.action != Action::None => {
                " (The provider answers keywords itself.)".to_string()
            }
            _ => String::new(),
        };
        format!(":speech_balloon: {who} replied by {label}{about}:\n{quoted}{effect}{unsent}")
    }
}

pub(super) async fn post_to_slack(app: &App, notice: &Notice) -> anyhow::Result<()> {
    let Some((channel, thread_ts)) = notice.destination(app) else {
        tracing::info!(
            inbound_id = notice.inbound_id,
            from = %notice.masked_from,
            "inbound message not posted: it answers no campaign thread and no approvals channel is set"
        );
        return Ok(());
    };
    let text = notice.text();
    let mut content = SlackMessageContent::new().with_text(text.clone());
    // An ordinary reply can be answered from Slack: on SMS from a known
    // contact (consent is theirs), on WhatsApp and Instagram from anyone
    // who wrote (they opened the conversation). An unknown Instagram
    // sender can also be linked to a contact.
    let carried = super::answer::answerable(app, notice.channel);
    let answer = notice.action == Action::None
        && carried
        && (notice.known || notice.channel != Channel::Sms && notice.channel != Channel::Email);
    let link = !notice.known && notice.channel == Channel::Instagram;
    if answer || link {
        content = content.with_blocks(super::answer::blocks(
            app,
            &text,
            notice.inbound_id,
            answer,
            link,
        )?);
    }
    let mut req = SlackApiChatPostMessageRequest::new(channel.clone().into(), content);
    if let Some(ts) = thread_ts {
        req = req.with_thread_ts(ts.into());
    }
    match app.slack.post_message(req).await {
        Ok(_) => Ok(()),
        Err(e) if matches!(e.code(), Some("not_in_channel" | "channel_not_found")) => {
            tracing::error!(
                %channel,
                "cannot post an inbound message: invite the bot to the channel (/invite @warmline)"
            );
            Ok(())
        }
        Err(e) => Err(anyhow::Error::from(e).context("posting an inbound message")),
    }
}
