//! `/warm doctor`: the compliance doctor ([`crate::doctor`]) in Slack, one
//! line per check with ✅ or ❌ and its reason, visible only to the person
//! who asked. The checks only read settings and a handful of aggregate
//! queries, so they run inside Slack's 3 s.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::Serialize;
use slack_morphism::prelude::*;

use super::{CommandError, Invocation, Reply, Subcommand};
use crate::state::App;

pub struct Doctor;

#[derive(Serialize)]
struct ChannelSection {
    channel: String,
    lines: Vec<String>,
}

#[async_trait]
impl Subcommand for Doctor {
    fn name(&self) -> &'static str {
        "doctor"
    }
    fn summary(&self) -> &'static str {
        "Check each channel against the compliance checklist"
    }
    async fn run(&self, app: &App, _inv: &Invocation<'_>) -> Result<Reply, CommandError> {
        let checks = crate::doctor::run(app).await?;
        let failed = checks.iter().filter(|c| !c.passed).count();
        let mut by_channel: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for c in &checks {
            by_channel
                .entry(c.channel.clone())
                .or_default()
                .push(format!(
                    "{} *{}*: {}",
                    match (c.passed, c.warning) {
                        (false, _) => ":x:",
                        (true, true) => ":warning:",
                        (true, false) => ":white_check_mark:",
                    },
                    c.item,
                    c.reason
                ));
        }
        let sections: Vec<ChannelSection> = by_channel
            .into_iter()
            .map(|(channel, lines)| ChannelSection { channel, lines })
            .collect();
        let fallback = std::iter::once(format!(
            "Compliance doctor: {} passed, {failed} failed",
            checks.len() - failed
        ))
        .chain(checks.iter().map(|c| c.line()))
        .collect::<Vec<_>>()
        .join("\n");
        let blocks = app
            .blocks
            .message_blocks(
                "doctor.json.j2",
                serde_json::json!({
                    "sections": sections,
                    "passed": checks.len() - failed,
                    "failed": failed,
                    "command": &app.settings.slack.command,
                }),
            )
            .map_err(anyhow::Error::from)?;
        Ok(Reply::Ephemeral(
            SlackMessageContent::new()
                .with_text(fallback)
                .with_blocks(blocks),
        ))
    }
}
