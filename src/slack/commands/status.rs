//! `/warm status`: which integrations are configured and which are missing
//! (the same checklist as the Home tab).

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
        let items = setup_status::items(&app.settings);
        let missing = items.iter().filter(|i| !i.ok).count();
        let fallback = format!(
            "Setup: {} configured, {missing} missing",
            items.len() - missing
        );
        let blocks = app
            .blocks
            .message_blocks(
                "setup_status.json.j2",
                serde_json::json!({ "items": items, "missing": missing, "command": &app.settings.slack.command }),
            )
            .map_err(anyhow::Error::from)?;
        Ok(Reply::Ephemeral(
            SlackMessageContent::new()
                .with_text(fallback)
                .with_blocks(blocks),
        ))
    }
}
