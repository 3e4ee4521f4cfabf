//! `/warm contact <email or name>`: the contact's card (warmth and why,
//! last interactions, consent per channel, stage and tags, and the Nudge,
//! Log interaction and Opt out buttons), visible only to the person asking.
//!
//! - An email matches that address exactly; a name is searched word by
//!   word. Several matches answer with a short list to pick from (a Show
//!   button each); none says so.
//! - `/warm contact export <email>`: everything warmline holds on the
//!   contact as JSON, in code blocks, when it fits one message (50 blocks of
//!   3,000 characters); otherwise it points to `warmline export-contact`.
//!   Uploading a file would need the `files:write` scope, which the bot
//!   does not ask for: a personal-data export belongs on the operator's
//!   machine, not in a Slack file that outlives the conversation.
//! - `/warm contact forget <email>`: approvers only; answers with a
//!   Forget button behind a confirm dialog, and only that click erases
//!   (see `slack::contact_actions::forget`).

use async_trait::async_trait;
use slack_morphism::prelude::*;

use super::{CommandError, Invocation, Reply, Subcommand};
use crate::{
    slack::contact_actions::{
        card::card,
        export::export_message,
        find::{Found, find, matches_message},
        forget::forget_prompt,
    },
    state::App,
};

pub struct Contact;

#[async_trait]
impl Subcommand for Contact {
    fn name(&self) -> &'static str {
        "contact"
    }
    fn args(&self) -> &'static str {
        "<email or name> | export <email> | forget <email>"
    }
    fn summary(&self) -> &'static str {
        "Show a contact's card; export or forget a contact"
    }
    async fn run(&self, app: &App, inv: &Invocation<'_>) -> Result<Reply, CommandError> {
        let command = &app.settings.slack.command;
        let (word, rest) = match inv.args.split_once(char::is_whitespace) {
            Some((w, r)) => (w.to_lowercase(), r.trim()),
            None => (inv.args.to_lowercase(), ""),
        };
        match word.as_str() {
            "" => Err(CommandError::Usage(format!(
                "Which contact? `{command} contact ada@example.com` or `{command} contact Ada Lovelace`."
            ))),
            "export" if !rest.is_empty() => export(app, rest).await,
            "forget" if !rest.is_empty() => forget(app, inv, rest).await,
            "export" | "forget" => Err(CommandError::Usage(format!(
                "Whose? `{command} contact {word} ada@example.com`."
            ))),
            _ => show(app, inv.args).await,
        }
    }
}

async fn show(app: &App, query: &str) -> Result<Reply, CommandError> {
    match find(app, query).await? {
        Found::One(id) => match card(app, id).await? {
            Some(content) => Ok(Reply::Ephemeral(content)),
            None => Err(not_found(query)),
        },
        Found::Many(hits) => Ok(Reply::Ephemeral(matches_message(app, query, hits)?)),
        Found::None => Err(not_found(query)),
    }
}

fn not_found(query: &str) -> CommandError {
    CommandError::Usage(format!("No contact matches “{query}”."))
}

/// Export and forget act on one person: an exact email, never a search.
async fn by_email(
    app: &App,
    email: &str,
) -> Result<(i64, crate::contacts::ContactView), CommandError> {
    if !email.contains('@') {
        return Err(CommandError::Usage(format!(
            "Give the contact's email address, not a name: “{email}”."
        )));
    }
    let id = crate::contacts::find_by_email(&app.db, email)
        .await?
        .ok_or_else(|| not_found(email))?;
    let view = crate::contacts::view(&app.db, id)
        .await?
        .ok_or_else(|| not_found(email))?;
    Ok((id, view))
}

async fn export(app: &App, email: &str) -> Result<Reply, CommandError> {
    let (id, view) = by_email(app, email).await?;
    let json = crate::contacts::export(&app.db, id)
        .await?
        .ok_or_else(|| not_found(email))?;
    let name = view.contact.display_name();
    match export_message(app, &name, &json)? {
        Ok(content) => Ok(Reply::Ephemeral(content)),
        Err(bytes) => Ok(Reply::Ephemeral(SlackMessageContent::new().with_text(
            format!(
                "The export of {name} is {bytes} bytes, too large for one Slack message. \
             On the server, run `warmline export-contact {email}`."
            ),
        ))),
    }
}

async fn forget(app: &App, inv: &Invocation<'_>, email: &str) -> Result<Reply, CommandError> {
    if !crate::approval::decision::is_approver(app, &inv.event.user_id.0).await {
        return Err(CommandError::Usage(
            "Only approvers can forget a contact.".into(),
        ));
    }
    let (id, view) = by_email(app, email).await?;
    let shown = view
        .contact
        .email
        .clone()
        .unwrap_or_else(|| email.to_string());
    Ok(Reply::Ephemeral(forget_prompt(
        app,
        id,
        &view.contact.display_name(),
        &shown,
    )?))
}
