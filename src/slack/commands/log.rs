//! `/warm log <contact> <what happened>`: records an interaction from
//! Slack and answers with the contact's new warmth.
//!
//! The contact is the first word when it is an email (`/warm log
//! ada@example.com coffee in Lisbon`); otherwise the longest leading run of
//! words that names exactly one contact (`/warm log Ada Lovelace called
//! about the round`). The text may start with a kind and a colon —
//! `meeting:`, `call:`, `email:`, `message:`, `note:` — and is a `note`
//! otherwise (no guessing from "met" or "called": a wrong guess would skew
//! warmth silently). Direction is always outbound, the team's own doing; a
//! reply from them is logged with the card's "Log interaction" modal, which
//! asks. The time is now.

use async_trait::async_trait;
use slack_morphism::prelude::*;

use super::{CommandError, Invocation, Reply, Subcommand};
use crate::{
    interactions::{Direction, Kind},
    slack::contact_actions::{
        find::{Found, find},
        log::log_interaction,
    },
    slack::mrkdwn::escape,
    state::App,
};

pub struct Log;

/// How many leading words a name may have.
const MAX_NAME_WORDS: usize = 4;

#[async_trait]
impl Subcommand for Log {
    fn name(&self) -> &'static str {
        "log"
    }
    fn args(&self) -> &'static str {
        "<email or name> [meeting:|call:|email:|message:|note:] <what happened>"
    }
    fn summary(&self) -> &'static str {
        "Record an interaction with a contact"
    }
    async fn run(&self, app: &App, inv: &Invocation<'_>) -> Result<Reply, CommandError> {
        let command = &app.settings.slack.command;
        let usage = || {
            CommandError::Usage(format!(
                "Usage: `{command} log ada@example.com meeting: coffee in Lisbon`"
            ))
        };
        let words: Vec<&str> = inv.args.split_whitespace().collect();
        if words.len() < 2 {
            return Err(usage());
        }
        let (contact_id, used) = resolve(app, &words).await?;
        let rest = words[used..].join(" ");
        let (kind, summary) = parse_text(&rest);
        if summary.is_empty() {
            return Err(usage());
        }
        let user = &inv.event.user_id.0;
        let score = log_interaction(
            app,
            contact_id,
            user,
            kind,
            Direction::Outbound,
            Some(summary),
            crate::clock::now(),
        )
        .await?;
        let name = crate::contacts::view(&app.db, contact_id)
            .await?
            .map(|v| v.contact.display_name())
            .unwrap_or_default();
        let reason = score
            .reasons
            .first()
            .map(|r| format!(" ({})", escape(r)))
            .unwrap_or_default();
        Ok(Reply::Ephemeral(SlackMessageContent::new().with_text(
            format!(
                ":white_check_mark: Logged a {} with *{}*. Warmth is now *{}*/100{reason}.",
                kind.as_str(),
                escape(&name),
                score.value.round()
            ),
        )))
    }
}

/// The contact the leading words name, and how many words that took.
async fn resolve(app: &App, words: &[&str]) -> Result<(i64, usize), CommandError> {
    if words[0].contains('@') {
        return match find(app, words[0]).await? {
            Found::One(id) => Ok((id, 1)),
            _ => Err(CommandError::Usage(format!(
                "No contact has the email {}.",
                words[0]
            ))),
        };
    }
    // Longest name first, so "Ada Lovelace" wins over "Ada".
    let max = MAX_NAME_WORDS.min(words.len() - 1);
    let mut ambiguous = None;
    for n in (1..=max).rev() {
        let name = words[..n].join(" ");
        match find(app, &name).await? {
            Found::One(id) => return Ok((id, n)),
            Found::Many(_) if ambiguous.is_none() => ambiguous = Some(name),
            _ => {}
        }
    }
    Err(CommandError::Usage(match ambiguous {
        Some(name) => format!("Several contacts match “{name}”; use their email."),
        None => format!("No contact matches “{}”.", words[0]),
    }))
}

/// `meeting: coffee` → (meeting, "coffee"); anything else is a note.
pub fn parse_text(text: &str) -> (Kind, String) {
    if let Some((head, rest)) = text.split_once(':')
        && let Some(kind) = Kind::parse(&head.trim().to_lowercase())
    {
        return (kind, rest.trim().to_string());
    }
    (Kind::Note, text.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leading_kind_is_read_and_anything_else_is_a_note() {
        assert_eq!(
            parse_text("Meeting: coffee"),
            (Kind::Meeting, "coffee".into())
        );
        assert_eq!(
            parse_text("call:quick sync"),
            (Kind::Call, "quick sync".into())
        );
        assert_eq!(
            parse_text("met at: the cafe"),
            (Kind::Note, "met at: the cafe".into())
        );
        assert_eq!(
            parse_text("sent the deck"),
            (Kind::Note, "sent the deck".into())
        );
    }
}
