//! `/warm campaign`, `/warm drafts` and `/warm nudge <contact>`: composing
//! sends from Slack.
//!
//! - `campaign` opens the composer modal with the command's trigger id at
//!   once (no database work first; see `slack::campaigns`).
//! - `drafts` lists the person's saved drafts with Open buttons; a click
//!   brings its own fresh trigger id to reopen the modal.
//! - `nudge` finds one contact and opens the very Nudge modal of the
//!   contact card (`contact_actions::nudge::open_nudge_modal`); several matches
//!   answer with the list to pick from.

use async_trait::async_trait;
use slack_morphism::prelude::*;

use super::{CommandError, Invocation, Reply, Subcommand};
use crate::{
    slack::{
        campaigns,
        contact_actions::{
            find::{Found, find, matches_message},
            nudge::open_nudge_modal,
        },
    },
    state::App,
};

pub struct Campaign;

#[async_trait]
impl Subcommand for Campaign {
    fn name(&self) -> &'static str {
        "campaign"
    }
    fn summary(&self) -> &'static str {
        "Compose a campaign: audience, message, schedule, preview, approval"
    }
    async fn run(&self, app: &App, inv: &Invocation<'_>) -> Result<Reply, CommandError> {
        campaigns::open_new(app, inv.event.trigger_id.clone());
        Ok(Reply::Ephemeral(
            SlackMessageContent::new().with_text("Opening the campaign composer…".into()),
        ))
    }
}

pub struct Drafts;

#[async_trait]
impl Subcommand for Drafts {
    fn name(&self) -> &'static str {
        "drafts"
    }
    fn summary(&self) -> &'static str {
        "List your campaign drafts, to reopen and edit or send"
    }
    async fn run(&self, app: &App, inv: &Invocation<'_>) -> Result<Reply, CommandError> {
        Ok(Reply::Ephemeral(
            campaigns::drafts_message(app, &inv.event.user_id.0).await?,
        ))
    }
}

pub struct Nudge;

#[async_trait]
impl Subcommand for Nudge {
    fn name(&self) -> &'static str {
        "nudge"
    }
    fn args(&self) -> &'static str {
        "<email or name>"
    }
    fn summary(&self) -> &'static str {
        "Draft a message to one contact from a template, editable before it goes"
    }
    async fn run(&self, app: &App, inv: &Invocation<'_>) -> Result<Reply, CommandError> {
        let command = &app.settings.slack.command;
        if inv.args.is_empty() {
            return Err(CommandError::Usage(format!(
                "Whom? `{command} nudge ada@example.com` or `{command} nudge Ada Lovelace`."
            )));
        }
        // The lookup is one indexed query; the modal opens right after it,
        // well within the trigger id's 3 s.
        match find(app, inv.args).await? {
            Found::One(id) => {
                open_nudge_modal(app, inv.event.trigger_id.clone(), id);
                Ok(Reply::Ephemeral(
                    SlackMessageContent::new().with_text("Opening the nudge…".into()),
                ))
            }
            Found::Many(hits) => Ok(Reply::Ephemeral(matches_message(app, inv.args, hits)?)),
            Found::None => Err(CommandError::Usage(format!(
                "No contact matches “{}”.",
                inv.args
            ))),
        }
    }
}
