//! Finding a contact from what someone typed (`/warm contact`, `/warm log`,
//! `/warm nudge`), and the "which one?" list when a name matches several.
//!
//! Invariant: an email-shaped query matches that address exactly; only
//! anything else is searched as a name.

use serde_json::json;
use slack_morphism::prelude::*;

use crate::{contacts, slack::actions, slack::mrkdwn::escape, state::App};

/// How many matches of a name the list offers.
const MAX_MATCHES: u64 = 5;

/// What a query found.
pub enum Found {
    One(i64),
    Many(Vec<(i64, String, Option<String>)>),
    None,
}

/// An email-shaped query matches that address exactly; anything else is a
/// name searched word by word (warmest first).
pub async fn find(app: &App, query: &str) -> anyhow::Result<Found> {
    let query = query.trim();
    if query.contains('@') && !query.contains(char::is_whitespace) {
        return Ok(match contacts::find_by_email(&app.db, query).await? {
            Some(id) => Found::One(id),
            None => Found::None,
        });
    }
    let mut hits = contacts::search(&app.db, query, MAX_MATCHES + 1).await?;
    Ok(match hits.len() {
        0 => Found::None,
        1 => Found::One(hits[0].0),
        _ => {
            hits.truncate(MAX_MATCHES as usize + 1);
            Found::Many(hits)
        }
    })
}

/// The "which one?" list.
pub fn matches_message(
    app: &App,
    query: &str,
    mut hits: Vec<(i64, String, Option<String>)>,
) -> anyhow::Result<SlackMessageContent> {
    let more = hits.len() > MAX_MATCHES as usize;
    hits.truncate(MAX_MATCHES as usize);
    let matches: Vec<_> = hits
        .iter()
        .map(|(id, name, email)| {
            json!({
                "id": id.to_string(),
                "label": match email {
                    Some(e) => format!("*{}* · {}", escape(name), escape(e)),
                    None => format!("*{}*", escape(name)),
                },
            })
        })
        .collect();
    let blocks = app.blocks.message_blocks(
        "contact_matches.json.j2",
        json!({
            "query": escape(query),
            "matches": matches,
            "more": more,
            "show_action": actions::CONTACT_SHOW,
            "command": &app.settings.slack.command,
        }),
    )?;
    Ok(SlackMessageContent::new()
        .with_text(format!("Several contacts match “{query}”."))
        .with_blocks(blocks))
}
