//! A contact as a person or the host CRM reads it: the stored fields, the
//! current warmth with its reasons, current consent per channel, the
//! suppressions of its addresses, and its latest messages and
//! interactions. Shared by `GET /api/v1/contacts/…` and Slack's contact
//! card.
//!
//! Invariants:
//! - Read-only, and derived from the same sources the dispatcher checks:
//!   consent from the ledger ([`crate::consent::current`]), suppressions by
//!   address (a suppression outlives a contact's edits and overrides its
//!   consent), so what a view shows is what a send would meet.
//! - Every consent channel appears, `null` when the ledger has no row for
//!   it (no consent): a card can always show all four.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, EntityTrait, FromQueryResult, Statement, Value};
use serde::Serialize;

use super::Contact;
use crate::{db::entities::contacts, domain::Channel};

/// How many of the latest messages and interactions a view carries.
pub const LATEST: i64 = 10;

#[derive(Debug, Clone, Serialize)]
pub struct ContactView {
    #[serde(flatten)]
    pub contact: Contact,
    /// 0–100, as last computed.
    pub warmth: f64,
    /// The score's top reasons, in words; never empty.
    pub warmth_reasons: Vec<String>,
    pub last_interaction_at: Option<DateTime<Utc>>,
    /// Every channel; `None` when the ledger has no row for it.
    pub consent: BTreeMap<String, Option<ConsentState>>,
    pub suppressions: Vec<Suppression>,
    /// Newest first, at most [`LATEST`].
    pub messages: Vec<MessageSummary>,
    /// Newest first, at most [`LATEST`].
    pub interactions: Vec<InteractionSummary>,
}

impl ContactView {
    /// Whether a send on `channel` could go out as far as consent and
    /// suppression go (granted, and no suppression on that channel).
    pub fn reachable_on(&self, channel: &str) -> bool {
        let granted = self
            .consent
            .get(channel)
            .and_then(Option::as_ref)
            .is_some_and(|c| c.granted);
        granted && !self.suppressions.iter().any(|s| s.channel == channel)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConsentState {
    pub granted: bool,
    /// As stored: `api:pricing form`, `import:contacts.csv`, `reply_keyword`, …
    pub source: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, FromQueryResult)]
pub struct Suppression {
    pub channel: String,
    pub address: String,
    /// `hard_bounce`, `complaint`, `carrier_opt_out`, …
    pub reason: String,
    pub source: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, FromQueryResult)]
pub struct MessageSummary {
    pub id: String,
    pub channel: String,
    pub template: Option<String>,
    pub state: String,
    /// Why a `skipped` message was not sent; else `None`.
    pub skip_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, FromQueryResult)]
pub struct InteractionSummary {
    pub id: i64,
    pub kind: String,
    pub direction: String,
    pub occurred_at: DateTime<Utc>,
    pub summary: Option<String>,
    pub source: String,
    pub channel: Option<String>,
}

#[derive(FromQueryResult)]
struct WarmthRow {
    warmth: f64,
    warmth_reasons: Option<String>,
    last_interaction_at: Option<DateTime<Utc>>,
}

/// The stored reasons; for a contact not scored yet (created since the last
/// decay pass and with no interaction, which scores at once), what the
/// model says of its history, so the reasons are never empty.
fn reasons(w: &WarmthRow) -> Vec<String> {
    let stored: Vec<String> = w
        .warmth_reasons
        .as_deref()
        .and_then(|r| serde_json::from_str(r).ok())
        .unwrap_or_default();
    if !stored.is_empty() {
        return stored;
    }
    crate::warmth::model::score(
        &[],
        w.last_interaction_at,
        crate::clock::now(),
        &crate::warmth::params(),
    )
    .reasons
}

/// The contact's view, or `None` when no contact has this id (never
/// existed, or was forgotten).
pub async fn view(conn: &impl ConnectionTrait, id: i64) -> anyhow::Result<Option<ContactView>> {
    let Some(model) = contacts::Entity::find_by_id(id).one(conn).await? else {
        return Ok(None);
    };
    let backend = conn.get_database_backend();
    let warmth = WarmthRow::find_by_statement(Statement::from_sql_and_values(
        backend,
        "SELECT warmth, warmth_reasons, last_interaction_at FROM contacts WHERE id = $1",
        [Value::from(id)],
    ))
    .one(conn)
    .await?
    .ok_or_else(|| anyhow::anyhow!("contact {id} vanished while being read"))?;
    let current = crate::consent::current(conn, id).await?;
    let consent = Channel::ALL
        .iter()
        .map(|ch| ch.as_str())
        .map(|ch| {
            let state = current.get(ch).map(|c| ConsentState {
                granted: c.granted,
                source: c.source.clone(),
                at: c.at,
            });
            (ch.to_string(), state)
        })
        .collect();
    let suppressions = suppressions(conn, &model).await?;
    let messages = MessageSummary::find_by_statement(Statement::from_sql_and_values(
        backend,
        "SELECT id, channel, template, state, skip_reason, created_at, sent_at FROM messages \
         WHERE contact_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2",
        [Value::from(id), Value::from(LATEST)],
    ))
    .all(conn)
    .await?;
    let interactions = InteractionSummary::find_by_statement(Statement::from_sql_and_values(
        backend,
        "SELECT id, kind, direction, occurred_at, summary, source, channel FROM interactions \
         WHERE contact_id = $1 ORDER BY occurred_at DESC, id DESC LIMIT $2",
        [Value::from(id), Value::from(LATEST)],
    ))
    .all(conn)
    .await?;
    Ok(Some(ContactView {
        contact: model.into(),
        warmth: warmth.warmth,
        warmth_reasons: reasons(&warmth),
        last_interaction_at: warmth.last_interaction_at,
        consent,
        suppressions,
        messages,
        interactions,
    }))
}

/// Suppressions linked to the contact or to one of its addresses (stored
/// lower-cased, see `dispatcher::ledger::suppress`).
pub(super) async fn suppressions(
    conn: &impl ConnectionTrait,
    m: &contacts::Model,
) -> anyhow::Result<Vec<Suppression>> {
    let email = m.email.as_deref().map(str::to_lowercase);
    let phone = m.phone.as_deref().map(str::to_lowercase);
    Ok(
        Suppression::find_by_statement(Statement::from_sql_and_values(
            conn.get_database_backend(),
            "SELECT channel, address, reason, source, created_at FROM suppressions \
         WHERE contact_id = $1 OR address = $2 OR address = $3 ORDER BY id",
            [Value::from(m.id), Value::from(email), Value::from(phone)],
        ))
        .all(conn)
        .await?,
    )
}
