//! Logging an interaction by a team member: the write itself (shared with
//! `/warm log`) and the card's "Log interaction" modal, opened and
//! submitted.
//!
//! Invariants:
//! - The modal is opened from the click before any database work; the
//!   contact's name follows with `views.update`.
//! - A submission is checked whole (kind, direction, summary, a time not in
//!   the future) and its problems answered on their fields before anything
//!   is written.

use chrono::{DateTime, Utc};
use serde_json::json;
use slack_morphism::prelude::*;

use crate::slack::respond::{result_view, update_view};
use crate::{
    contacts,
    interactions::{Direction, Kind, NewInteraction},
    slack::modal_form::{Values, errors, field, option_of, text_of},
    slack::mrkdwn::escape,
    state::App,
};

/// Callback id of the log-interaction modal.
pub(super) const LOG_MODAL: &str = "contact_log_modal";

/// Records an interaction by a team member and returns the new warmth.
pub async fn log_interaction(
    app: &App,
    contact_id: i64,
    user: &str,
    kind: Kind,
    direction: Direction,
    summary: Option<String>,
    occurred_at: DateTime<Utc>,
) -> anyhow::Result<crate::warmth::Score> {
    let now = crate::clock::now();
    let txn = crate::db::begin_write(&app.db).await?;
    let result = crate::interactions::record(
        &txn,
        &NewInteraction {
            contact_id,
            kind,
            direction,
            occurred_at,
            summary,
            source: format!("slack:{user}"),
            channel: None,
        },
        now,
    )
    .await;
    match result {
        Ok((_, score)) => {
            txn.commit().await?;
            Ok(score)
        }
        Err(e) => {
            txn.rollback().await.ok();
            Err(e)
        }
    }
}

pub(super) fn open_log_modal(app: &App, trigger: SlackTriggerId, contact_id: i64) {
    let app2 = app.clone();
    app.spawn("open the log-interaction modal", async move {
        // Open first, with what the click carried; the name follows.
        let kinds: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
        let modal = |name: &str| {
            app2.blocks.view(
                "log_interaction_modal.json.j2",
                json!({
                    "callback_id": LOG_MODAL,
                    "contact_id": contact_id.to_string(),
                    "name": escape(name),
                    "kinds": kinds,
                }),
            )
        };
        let opened = app2
            .slack
            .views_open(SlackApiViewsOpenRequest::new(
                trigger,
                modal("this contact")?,
            ))
            .await?;
        if let Some(v) = contacts::view(&app2.db, contact_id).await? {
            update_view(
                &app2,
                opened.view.state_params.id.clone(),
                Some(opened.view.state_params.hash.clone()),
                modal(&v.contact.display_name())?,
            )
            .await?;
        }
        Ok(())
    });
}

pub(super) async fn submit_log(
    app: &App,
    values: &Values,
    contact_id: i64,
    user: &str,
) -> anyhow::Result<SlackInteractionResponse> {
    let kind = option_of(values, "kind").and_then(|k| Kind::parse(&k));
    let direction = option_of(values, "direction").and_then(|d| Direction::parse(&d));
    let summary = text_of(values, "summary");
    let when = field(values, "when").and_then(|v| v.selected_date_time.as_ref().map(|t| t.0));
    let now = crate::clock::now();
    let mut problems = Vec::new();
    if kind.is_none() {
        problems.push(("kind", "Choose what happened.".to_string()));
    }
    if direction.is_none() {
        problems.push(("direction", "Choose who reached out.".to_string()));
    }
    match &summary {
        None => problems.push(("summary", "Say what happened, in a few words.".to_string())),
        Some(s) if s.chars().count() > 2000 => {
            problems.push(("summary", "Keep it under 2,000 characters.".to_string()))
        }
        _ => {}
    }
    let occurred_at = match when {
        None => now,
        Some(ts) => match DateTime::<Utc>::from_timestamp(ts.as_second(), 0) {
            Some(t) if t <= now + chrono::Duration::minutes(5) => t,
            Some(_) => {
                problems.push((
                    "when",
                    "That is in the future; log what already happened.".to_string(),
                ));
                now
            }
            None => {
                problems.push(("when", "Not a time warmline can read.".to_string()));
                now
            }
        },
    };
    if !problems.is_empty() {
        return Ok(errors(problems));
    }
    if !contacts::exists(&app.db, contact_id).await? {
        return result_view(app, "Not logged", "That contact no longer exists.".into());
    }
    let score = log_interaction(
        app,
        contact_id,
        user,
        kind.expect("checked"),
        direction.expect("checked"),
        summary,
        occurred_at,
    )
    .await?;
    result_view(
        app,
        "Logged",
        format!(
            ":white_check_mark: Logged. Warmth is now *{}*/100.{}",
            score.value.round(),
            score
                .reasons
                .first()
                .map(|r| format!("\n_{}_", escape(r)))
                .unwrap_or_default()
        ),
    )
}
