//! The slash command (`/warm` by default): parsing, de-duplication, and a
//! registry of subcommands, one per file. The usage message is generated from
//! the registry, so it always lists every subcommand the bot has.
//!
//! Slack gives a command 3 s. A subcommand either answers from memory
//! (usage, status) or records what it must and hands slow work to
//! [`App::spawn`], then answers.

mod campaign;
mod contact;
mod doctor;
mod help;
mod log;
mod status;
mod whatsapp;

use async_trait::async_trait;
use axum::{
    Json,
    body::Bytes,
    extract::State,
    response::{IntoResponse, Response},
};
use serde::Serialize;
use slack_morphism::prelude::*;

use super::error::IngressError;
use crate::state::App;

/// One subcommand of the slash command.
#[async_trait]
pub trait Subcommand: Send + Sync {
    /// The word after the command, e.g. `status`.
    fn name(&self) -> &'static str;
    /// Arguments, as shown in the usage message (may be empty).
    fn args(&self) -> &'static str {
        ""
    }
    /// One line on what it does.
    fn summary(&self) -> &'static str;
    async fn run(&self, app: &App, inv: &Invocation<'_>) -> Result<Reply, CommandError>;
}

/// Every subcommand, in the order the usage message lists them: the one
/// list the dispatcher and the usage message read, and that the manifest's
/// `usage_hint` is tested against.
pub const SUBCOMMANDS: &[&dyn Subcommand] = &[
    &help::Help,
    &status::Status,
    &contact::Contact,
    &campaign::Campaign,
    &campaign::Drafts,
    &campaign::Nudge,
    &log::Log,
    &whatsapp::Whatsapp,
    &doctor::Doctor,
];

pub struct Invocation<'a> {
    pub event: &'a SlackCommandEvent,
    /// The text after the subcommand's name, trimmed.
    pub args: &'a str,
}

/// What the command answers with.
pub enum Reply {
    /// Visible only to the person who typed the command.
    Ephemeral(SlackMessageContent),
}

/// Why a subcommand could not do what was asked; shown to the user.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl CommandError {
    /// The one place command errors become a message for the user.
    fn into_reply(self) -> Reply {
        let text = match self {
            CommandError::Usage(m) => format!(":warning: {m}"),
            CommandError::Unexpected(e) => {
                tracing::error!(error = format!("{e:#}"), "slash command failed");
                ":x: Something went wrong on our side; it has been logged. Please try again."
                    .to_string()
            }
        };
        Reply::Ephemeral(SlackMessageContent::new().with_text(text))
    }
}

impl Reply {
    fn into_response(self) -> SlackCommandEventResponse {
        match self {
            Reply::Ephemeral(content) => SlackCommandEventResponse::new(content)
                .with_response_type(SlackMessageResponseType::Ephemeral),
        }
    }
}

/// `POST /slack/commands` (already signature-checked).
pub async fn http_handler(State(app): State<App>, body: Bytes) -> Result<Response, IngressError> {
    let event: SlackCommandEvent = serde_urlencoded::from_bytes(&body)
        .map_err(|e| IngressError::Malformed(format!("malformed slash command payload: {e}")))?;
    Ok(match handle(&app, &event).await? {
        Some(reply) => Json(reply).into_response(),
        // A repeat: acknowledged, nothing shown, nothing done.
        None => axum::http::StatusCode::OK.into_response(),
    })
}

/// Handles one slash command; `None` for a repeat of one already handled.
/// Socket Mode and HTTP both come here.
pub async fn handle(
    app: &App,
    event: &SlackCommandEvent,
) -> Result<Option<SlackCommandEventResponse>, IngressError> {
    let key = format!("command:{}", event.trigger_id.0);
    if !super::dedup::first_time(&app.db, &key, "command", Some(&event.team_id.0)).await? {
        return Ok(None);
    }
    let text = event.text.as_deref().unwrap_or("").trim();
    let (word, args) = match text.split_once(char::is_whitespace) {
        Some((w, rest)) => (w, rest.trim()),
        None => (text, ""),
    };
    let word = word.to_lowercase();
    let found = SUBCOMMANDS.iter().find(|s| s.name() == word);
    metrics::counter!(
        "slack_commands_total",
        "subcommand" => found.map(|s| s.name()).unwrap_or(if word.is_empty() { "help" } else { "unknown" })
    )
    .increment(1);
    let reply = match found {
        Some(sub) => {
            let inv = Invocation { event, args };
            sub.run(app, &inv)
                .await
                .unwrap_or_else(CommandError::into_reply)
        }
        None if word.is_empty() => usage(app, None),
        None => usage(app, Some(&word)),
    };
    Ok(Some(reply.into_response()))
}

#[derive(Serialize)]
struct UsageLine {
    usage: String,
    summary: &'static str,
}

/// The usage message, listing every subcommand. `unknown` is what the user
/// typed when it matched no subcommand.
pub fn usage(app: &App, unknown: Option<&str>) -> Reply {
    let command = &app.settings.slack.command;
    let lines: Vec<UsageLine> = SUBCOMMANDS
        .iter()
        .map(|s| UsageLine {
            usage: format!("{command} {} {}", s.name(), s.args())
                .trim_end()
                .to_string(),
            summary: s.summary(),
        })
        .collect();
    let notice = unknown.map(|w| format!("I don't know `{command} {w}`."));
    let fallback = std::iter::once(
        notice
            .clone()
            .unwrap_or_else(|| format!("How to use {command}:")),
    )
    .chain(
        lines
            .iter()
            .map(|l| format!("• {} — {}", l.usage, l.summary)),
    )
    .collect::<Vec<_>>()
    .join("\n");
    let ctx = serde_json::json!({ "command": command, "subcommands": lines, "notice": notice });
    let content = match app.blocks.message_blocks("usage.json.j2", ctx) {
        Ok(blocks) => SlackMessageContent::new()
            .with_text(fallback)
            .with_blocks(blocks),
        Err(e) => {
            tracing::error!(error = %e, "usage layout failed; answering in plain text");
            SlackMessageContent::new().with_text(fallback)
        }
    };
    Reply::Ephemeral(content)
}
