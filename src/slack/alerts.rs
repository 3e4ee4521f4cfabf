//! The dispatcher's [`Alerts`] in Slack: failed and ambiguous messages are
//! posted to the approvals channel (else the digest channel), ambiguous ones
//! with "Send again" / "Mark as sent" buttons that approvers answer (see
//! `interactions.rs`). Message ids are shown; recipients' addresses are not.

use async_trait::async_trait;
use serde_json::json;
use slack_morphism::prelude::*;

use super::{actions, api::SlackApi, blocks::Blocks};
use crate::dispatcher::alerts::{Alerts, Attention};

pub struct SlackAlerts {
    slack: SlackApi,
    blocks: Blocks,
    channel: String,
}

impl SlackAlerts {
    pub fn new(slack: SlackApi, channel: String) -> Self {
        Self {
            slack,
            blocks: Blocks::new(),
            channel,
        }
    }
}

/// Items per Slack message: two blocks each keeps well under 50.
const PER_MESSAGE: usize = 15;

#[async_trait]
impl Alerts for SlackAlerts {
    async fn attention(&self, items: Vec<Attention>) {
        for chunk in items.chunks(PER_MESSAGE) {
            let failed: Vec<_> = chunk
                .iter()
                .filter_map(|i| match i {
                    Attention::Failed { message_id, error } => {
                        Some(json!({"id": message_id, "error": error}))
                    }
                    _ => None,
                })
                .collect();
            let ambiguous: Vec<_> = chunk
                .iter()
                .filter_map(|i| match i {
                    Attention::Ambiguous { message_id } => Some(json!({"id": message_id})),
                    _ => None,
                })
                .collect();
            let text = format!(
                "{} message(s) failed and {} are ambiguous; they need a person.",
                failed.len(),
                ambiguous.len()
            );
            let blocks = match self.blocks.message_blocks(
                "delivery_alert.json.j2",
                json!({
                    "failed": failed,
                    "ambiguous": ambiguous,
                    "send_again_action": actions::AMBIGUOUS_SEND_AGAIN,
                    "mark_sent_action": actions::AMBIGUOUS_MARK_SENT,
                }),
            ) {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(error = %e, "delivery alert layout failed");
                    continue;
                }
            };
            let req = SlackApiChatPostMessageRequest::new(
                self.channel.clone().into(),
                SlackMessageContent::new()
                    .with_text(text)
                    .with_blocks(blocks),
            );
            if let Err(e) = self.slack.post_message(req).await {
                match e.code() {
                    Some("not_in_channel" | "channel_not_found") => tracing::error!(
                        channel = %self.channel,
                        "cannot post delivery alerts: invite the bot to the approvals channel (/invite @warmline)"
                    ),
                    _ => tracing::error!(error = %e, "cannot post a delivery alert"),
                }
            }
        }
    }
}
