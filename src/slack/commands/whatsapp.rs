//! `/warm whatsapp templates`: syncs the business account's templates
//! ([`crate::whatsapp::sync`]) and lists each one — name, language,
//! category, status, the body's first line, and why warmline cannot send
//! it when it cannot.
//!
//! The sync calls the Graph API, which may take longer than Slack's 3 s:
//! the command answers at once and posts the list as an ephemeral message
//! once the sync is done. A failed sync still lists the stored set, with
//! when it was last synced and the error.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use slack_morphism::prelude::*;

use super::{CommandError, Invocation, Reply, Subcommand};
use crate::{
    slack::mrkdwn::escape,
    state::App,
    whatsapp::{
        sync::{self, SyncError},
        templates::{self, Template},
    },
};

pub struct Whatsapp;

/// How many templates the message lists (Slack allows 50 blocks).
const MAX_LISTED: usize = 40;

#[derive(Serialize)]
struct Line {
    text: String,
}

#[async_trait]
impl Subcommand for Whatsapp {
    fn name(&self) -> &'static str {
        "whatsapp"
    }
    fn args(&self) -> &'static str {
        "templates"
    }
    fn summary(&self) -> &'static str {
        "Sync and list the WhatsApp message templates campaigns can use"
    }
    async fn run(&self, app: &App, inv: &Invocation<'_>) -> Result<Reply, CommandError> {
        if !inv.args.eq_ignore_ascii_case("templates") {
            return Err(CommandError::Usage(format!(
                "Use `{} whatsapp templates`.",
                app.settings.slack.command
            )));
        }
        if !app.settings.providers.whatsapp.enabled() {
            return Ok(Reply::Ephemeral(
                SlackMessageContent::new().with_text(SyncError::NotConfigured.to_string()),
            ));
        }
        let channel = inv.event.channel_id.clone();
        let user = inv.event.user_id.clone();
        let app2 = app.clone();
        app.spawn("sync and list WhatsApp templates", async move {
            let outcome = sync::sync(&app2).await;
            let content = message(&app2, outcome).await?;
            crate::slack::respond::ephemeral(&app2, Some(channel), user, content).await
        });
        Ok(Reply::Ephemeral(SlackMessageContent::new().with_text(
            ":hourglass_flowing_sand: Syncing the WhatsApp templates from the business account…"
                .into(),
        )))
    }
}

/// The list after a sync (or its failure).
pub async fn message(
    app: &App,
    outcome: Result<sync::Synced, SyncError>,
) -> anyhow::Result<SlackMessageContent> {
    let all = templates::all(&app.db).await?;
    let synced_at = templates::synced_at(&app.db).await?;
    let (headline, error) = match &outcome {
        Ok(s) => (
            format!(
                ":white_check_mark: Synced {} WhatsApp template{} ({} page{}).",
                s.stored,
                if s.stored == 1 { "" } else { "s" },
                s.pages,
                if s.pages == 1 { "" } else { "s" }
            ),
            None,
        ),
        Err(e) => (
            format!(
                ":x: The sync failed; {}.",
                match synced_at {
                    Some(at) => format!("these are the templates stored at {}", when(at)),
                    None => "no templates were ever synced".into(),
                }
            ),
            Some(escape(&e.to_string())),
        ),
    };
    let skipped = match &outcome {
        Ok(s) if !s.skipped.is_empty() => Some(format!(
            "Skipped (not readable as templates): {}",
            escape(&s.skipped.join("; "))
        )),
        _ => None,
    };
    let lines: Vec<Line> = all.iter().take(MAX_LISTED).map(line).collect();
    let more = all.len().saturating_sub(MAX_LISTED);
    let fallback = std::iter::once(headline.clone())
        .chain(error.clone())
        .chain(all.iter().take(MAX_LISTED).map(|t| {
            format!(
                "{} ({}) · {} · {}",
                t.name,
                t.language,
                t.category.label(),
                t.status
            )
        }))
        .collect::<Vec<_>>()
        .join("\n");
    let blocks = app.blocks.message_blocks(
        "whatsapp_templates.json.j2",
        serde_json::json!({
            "headline": headline,
            "error": error,
            "skipped": skipped,
            "templates": lines,
            "more": (more > 0).then(|| format!("…and {more} more.")),
            "synced_at": synced_at.map(when),
            "command": app.settings.slack.command,
        }),
    )?;
    Ok(SlackMessageContent::new()
        .with_text(fallback)
        .with_blocks(blocks))
}

fn when(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// "*spring_offer* (en_US) · Marketing · APPROVED" and the body's first
/// line; why it cannot be sent, when it cannot.
fn line(t: &Template) -> Line {
    let first: String = t
        .body
        .lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(150)
        .collect();
    let usable = match t.usable() {
        Ok(()) => format!(
            ":white_check_mark: usable in campaigns ({} parameter{})",
            t.parameter_count,
            if t.parameter_count == 1 { "" } else { "s" }
        ),
        Err(why) => format!(":no_entry_sign: warmline cannot send it: {}", escape(&why)),
    };
    Line {
        text: format!(
            "*{}* ({}) · {} · {}\n>{}\n{usable}",
            escape(&t.name),
            escape(&t.language),
            t.category.label(),
            escape(&t.status),
            escape(&first)
        ),
    }
}
