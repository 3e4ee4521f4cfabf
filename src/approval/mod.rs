//! Approval: what needs a person before it is sent, and the loop that asks
//! them in Slack.
//!
//! Every producer of sends — triggers, nudges, campaigns — calls [`submit`]
//! with a [`SendRequest`]. It renders every recipient's message at once,
//! scores the send's risk ([`risk`]), applies the policy ([`policy`]) and
//! either queues the messages or asks for approval ([`request`]); the
//! request is posted to the approvals channel ([`slack`]), decided there
//! ([`decision`]), and reminded of or expired when nobody decides
//! ([`reminders`]).
//!
//! Invariants:
//! - Nothing enters the ledger unrendered: a template or variable error fails
//!   `submit` with a message naming it, and nothing is stored.
//! - A send that needs approval is in the ledger as `awaiting_approval`
//!   (which no worker claims), in the same transaction as its `approvals`
//!   row; the approval moves exactly those messages to `queued`/`scheduled`
//!   in the same transaction as the approval's own state change.
//! - An approval is bound to the content hash it was asked for (audience,
//!   rendered content, schedule). Submitting the same source with different
//!   content voids the pending approval, skips its messages and asks again;
//!   a decision on an approval whose campaign hash changed voids it too.
//! - Exactly one decision takes effect: each approver's vote is a unique row
//!   in `approval_decisions`, and the approval's state only leaves `pending`
//!   through `UPDATE … WHERE state = 'pending'`, under a row lock.
//! - Slack is told after the commit (`App::spawn`); a failure to post is
//!   logged and reported to the requester, never silently dropped.

pub mod decision;
pub mod policy;
pub mod reminders;
pub mod request;
pub mod risk;
pub mod slack;

use chrono::{DateTime, NaiveTime, Utc};
use sea_orm::{ConnectionTrait, Statement, Value};
use serde::{Deserialize, Serialize};

use crate::{
    domain::{CampaignState, Channel, MessageState, SkipReason},
    state::App,
};

/// When a send goes out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Schedule {
    Now,
    At {
        at: DateTime<Utc>,
    },
    /// At this local time in each recipient's own time zone, on the first
    /// day it is still ahead.
    LocalTime {
        time: NaiveTime,
    },
}

/// What the message says: a template from `templates/`, or a subject and
/// body written by a person (minijinja, with the contact's fields).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Content {
    Template {
        name: String,
    },
    Inline {
        subject: Option<String>,
        body: String,
    },
    /// An approved WhatsApp template of the business account
    /// (`whatsapp_templates`), its `{{n}}` filled from the contact fields
    /// `parameters[n-1]` names (`whatsapp::mapping`). Older drafts, which
    /// never had this variant, read as before.
    Whatsapp {
        template: String,
        language: String,
        parameters: Vec<String>,
        /// Set when the sender chose to split a campaign over the
        /// messaging tier across days.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        split: Option<crate::whatsapp::tier::DailySplit>,
    },
}

/// One send to one or more contacts, about to be decided on.
#[derive(Debug, Clone)]
pub struct SendRequest {
    /// Shown to approvers: "Cold revival, step 1: Ada Lovelace".
    pub name: String,
    pub channel: Channel,
    /// A Slack user id, or the automation that asks (`trigger:cold`).
    pub requested_by: String,
    pub recipients: Vec<i64>,
    pub content: Content,
    /// Extra template variables on top of each contact's own fields.
    pub variables: serde_json::Value,
    pub schedule: Schedule,
    /// What decided this send (`trigger:cold:17:2026-11-01T…:0`); part of
    /// every message id, so submitting the same thing twice sends once.
    pub source: String,
}

/// What became of a submitted send.
#[derive(Debug, Clone, PartialEq)]
pub enum Submitted {
    /// The policy let it go straight out: its messages are in the ledger.
    Queued { campaign_id: i64, messages: usize },
    /// Posted to the approvals channel; nothing sends until it is approved.
    AwaitingApproval { campaign_id: i64, approval_id: i64 },
}

/// Why [`submit`] did not accept a send. Every variant but
/// [`SubmitError::Infrastructure`] is the engine refusing this send itself
/// (the same request would be refused again); `Infrastructure` is a
/// database or other service failing, which may pass.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("a send needs at least one recipient")]
    NoRecipients,
    #[error("no contact with id {0}")]
    UnknownContact(i64),
    #[error("contact {contact} has no {what} to send {channel} to")]
    NoAddress {
        contact: i64,
        channel: Channel,
        what: &'static str,
    },
    #[error("no {0} provider is configured")]
    NoProvider(Channel),
    #[error("template '{template}' is for {template_channel}, not {channel}")]
    WrongChannel {
        template: String,
        template_channel: Channel,
        channel: Channel,
    },
    /// A template or variable problem, for one recipient.
    #[error("cannot render the message for contact {contact}: {problem}")]
    Render { contact: i64, problem: String },
    #[error(
        "'{source_key}' was already {state} (campaign {campaign_id}); a different send needs a new source"
    )]
    AlreadyDecided {
        source_key: String,
        campaign_id: i64,
        state: CampaignState,
    },
    /// The database (or another service) failed; nothing was decided.
    #[error(transparent)]
    Infrastructure(#[from] anyhow::Error),
}

/// Applies the approval policy to `req`: queues it, or asks for approval.
///
/// Submitting the same `source` again with the same content returns the
/// first outcome and changes nothing. With different content while the
/// first is still awaiting approval, the old approval is voided (its Slack
/// request says so) and a new one is asked for.
pub async fn submit(app: &App, req: SendRequest) -> Result<Submitted, SubmitError> {
    request::submit(app, req).await
}

/// Whether `id` is a Slack user (`U…`/`W…`) rather than an automation.
pub fn is_person(id: &str) -> bool {
    id.len() >= 3
        && (id.starts_with('U') || id.starts_with('W'))
        && id
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

/// The ledger source of a campaign's messages: the request's source, and a
/// revision suffix once a pending draft was edited (new ledger ids).
pub(crate) fn revision_source(source: &str, revision: i32) -> String {
    if revision <= 1 {
        source.to_string()
    } else {
        format!("{source}#r{revision}")
    }
}

/// Skips (reason `cancelled`) every message of the campaign still awaiting
/// approval. Returns how many.
pub(crate) async fn skip_awaiting(
    conn: &impl ConnectionTrait,
    campaign_id: i64,
    detail: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<u64> {
    let backend = conn.get_database_backend();
    conn.execute_raw(Statement::from_sql_and_values(
        backend,
        format!(
            "INSERT INTO message_events (message_id, state, at, detail) \
             SELECT id, {skipped}, $1, $2 FROM messages WHERE campaign_id = $3 AND state = {awaiting_approval}",
            skipped = MessageState::Skipped.sql(),
            awaiting_approval = MessageState::AwaitingApproval.sql(),
        ),
        [
            Value::from(now),
            Value::from(detail.to_string()),
            Value::from(campaign_id),
        ],
    ))
    .await?;
    let r = conn
        .execute_raw(Statement::from_sql_and_values(
            backend,
            format!(
                "UPDATE messages SET state = {skipped}, skip_reason = $1, updated_at = $2 \
                 WHERE campaign_id = $3 AND state = {awaiting_approval}",
                skipped = MessageState::Skipped.sql(),
                awaiting_approval = MessageState::AwaitingApproval.sql(),
            ),
            [
                Value::from(SkipReason::Cancelled.as_str()),
                Value::from(now),
                Value::from(campaign_id),
            ],
        ))
        .await?;
    Ok(r.rows_affected())
}

pub(crate) use crate::dispatcher::ledger::set_campaign_state;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slack_users_are_told_from_automations() {
        assert!(is_person("U0ASKER"));
        assert!(is_person("W123ABC"));
        assert!(!is_person("trigger:cold"));
        assert!(!is_person("api"));
        assert!(!is_person("Ux"));
    }

    #[test]
    fn the_first_revision_keeps_the_source() {
        assert_eq!(revision_source("trigger:1", 1), "trigger:1");
        assert_eq!(revision_source("trigger:1", 3), "trigger:1#r3");
    }
}
