//! `/warm status`: every integration (Slack, each channel's provider,
//! sender and webhook, the JSON API, error monitoring, the public URL),
//! each ✅ / ❌ / ➖ with the setting that fixes it; the same model as the
//! Home tab's setup section ([`setup_status`]). Ephemeral.

use async_trait::async_trait;
use slack_morphism::prelude::*;

use super::{CommandError, Invocation, Reply, Subcommand};
use crate::{slack::setup_status, state::App};

pub struct Status;

#[async_trait]
impl Subcommand for Status {
    fn name(&self) -> &'static str {
        "status"
    }
    fn summary(&self) -> &'static str {
        "Show which integrations are configured and what is missing"
    }
    async fn run(&self, app: &App, _inv: &Invocation<'_>) -> Result<Reply, CommandError> {
        let status = setup_status::gather(app, crate::clock::now()).await?;
        let blocks = app
            .blocks
            .message_blocks(
                "setup_status.json.j2",
                serde_json::json!({ "status": status.context(), "command": &app.settings.slack.command }),
            )
            .map_err(anyhow::Error::from)?;
        Ok(Reply::Ephemeral(
            SlackMessageContent::new()
                .with_text(status.summary())
                .with_blocks(blocks),
        ))
    }
}
