//! Everything warmline holds on one contact, as one JSON document: the
//! answer to a subject access request (GDPR Art. 15) and a portable copy
//! (Art. 20). `warmline export-contact <email>` prints it; Slack's
//! `/warm contact export` posts it.
//!
//! Invariants:
//! - Complete: the contact row, every consent ledger row (time, channel,
//!   granted, source, actor, text — the proof of consent, Art. 7(1)),
//!   interactions, messages with their events and provider events,
//!   suppressions, inbound messages and trigger runs. A table that holds
//!   data about a contact and is not exported here is a bug.
//! - Messages and inbound messages are found by contact id *and* by
//!   address: a transactional email sent before the contact existed, or a
//!   reply from an unknown sender, is still theirs.
//! - Read-only; times are RFC 3339 UTC; stored JSON (payloads, tags,
//!   metadata) is embedded as JSON, not as strings.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, EntityTrait, FromQueryResult, Statement, Value};
use serde::Serialize;
use serde_json::json;

use super::{Contact, view::Suppression};
use crate::db::entities::contacts;

#[derive(Serialize, FromQueryResult)]
struct ConsentRow {
    id: i64,
    channel: String,
    granted: bool,
    source: String,
    actor: Option<String>,
    consent_text: Option<String>,
    recorded_at: DateTime<Utc>,
}

#[derive(Serialize, FromQueryResult)]
struct InteractionRow {
    id: i64,
    kind: String,
    direction: String,
    occurred_at: DateTime<Utc>,
    summary: Option<String>,
    source: String,
    channel: Option<String>,
    created_at: DateTime<Utc>,
}

#[derive(FromQueryResult)]
struct MessageRow {
    id: String,
    campaign_id: Option<i64>,
    channel: String,
    kind: String,
    template: Option<String>,
    state: String,
    skip_reason: Option<String>,
    address: Option<String>,
    provider: Option<String>,
    provider_message_id: Option<String>,
    attempts: i32,
    last_error: Option<String>,
    payload: String,
    created_at: DateTime<Utc>,
    sent_at: Option<DateTime<Utc>>,
    updated_at: DateTime<Utc>,
}

#[derive(Serialize, FromQueryResult)]
struct EventRow {
    state: String,
    at: DateTime<Utc>,
    detail: Option<String>,
}

#[derive(FromQueryResult)]
struct ProviderEventRow {
    provider: String,
    event_id: String,
    kind: String,
    payload: String,
    received_at: DateTime<Utc>,
}

#[derive(Serialize, FromQueryResult)]
struct InboundRow {
    id: i64,
    channel: String,
    from_address: String,
    text: String,
    keyword: Option<String>,
    in_reply_to: Option<String>,
    received_at: DateTime<Utc>,
}

#[derive(Serialize, FromQueryResult)]
struct TriggerRunRow {
    id: i64,
    trigger: String,
    crossing: String,
    step: i32,
    state: String,
    stopped_reason: Option<String>,
    next_step_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

#[derive(FromQueryResult)]
struct WarmthRow {
    warmth: f64,
    warmth_reasons: Option<String>,
    warmth_updated_at: Option<DateTime<Utc>>,
    last_interaction_at: Option<DateTime<Utc>>,
}

/// Stored JSON text as JSON; text that does not parse stays a string.
fn embedded(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|_| serde_json::Value::String(text.to_string()))
}

/// The contact's addresses, lower-cased as suppressions and look-ups
/// compare them: `[email, phone]`, each possibly `None`.
pub(super) fn addresses(m: &contacts::Model) -> [Option<String>; 2] {
    [
        m.email.as_deref().map(str::to_lowercase),
        m.phone.as_deref().map(str::to_lowercase),
    ]
}

/// The export of contact `id`, or `None` when there is no such contact.
pub async fn export(
    conn: &impl ConnectionTrait,
    id: i64,
) -> anyhow::Result<Option<serde_json::Value>> {
    let Some(model) = contacts::Entity::find_by_id(id).one(conn).await? else {
        return Ok(None);
    };
    let backend = conn.get_database_backend();
    let stmt = |sql: &str, values: Vec<Value>| Statement::from_sql_and_values(backend, sql, values);
    let [email, phone] = addresses(&model);
    let by_contact_or_address = || {
        vec![
            Value::from(id),
            Value::from(email.clone()),
            Value::from(phone.clone()),
        ]
    };

    let warmth = WarmthRow::find_by_statement(stmt(
        "SELECT warmth, warmth_reasons, warmth_updated_at, last_interaction_at FROM contacts WHERE id = $1",
        vec![Value::from(id)],
    ))
    .one(conn)
    .await?
    .ok_or_else(|| anyhow::anyhow!("contact {id} vanished while being exported"))?;
    let consent_ledger = ConsentRow::find_by_statement(stmt(
        "SELECT id, channel, granted, source, actor, consent_text, recorded_at FROM consents \
         WHERE contact_id = $1 ORDER BY id",
        vec![Value::from(id)],
    ))
    .all(conn)
    .await?;
    let current = crate::consent::current(conn, id).await?;
    let interactions = InteractionRow::find_by_statement(stmt(
        "SELECT id, kind, direction, occurred_at, summary, source, channel, created_at \
         FROM interactions WHERE contact_id = $1 ORDER BY occurred_at, id",
        vec![Value::from(id)],
    ))
    .all(conn)
    .await?;
    let message_rows = MessageRow::find_by_statement(stmt(
        "SELECT id, campaign_id, channel, kind, template, state, skip_reason, address, provider, \
         provider_message_id, attempts, last_error, payload, created_at, sent_at, updated_at \
         FROM messages WHERE contact_id = $1 OR LOWER(address) = $2 OR LOWER(address) = $3 \
         ORDER BY created_at, id",
        by_contact_or_address(),
    ))
    .all(conn)
    .await?;
    let mut messages = Vec::with_capacity(message_rows.len());
    for m in message_rows {
        let events = EventRow::find_by_statement(stmt(
            "SELECT state, at, detail FROM message_events WHERE message_id = $1 ORDER BY id",
            vec![Value::from(m.id.clone())],
        ))
        .all(conn)
        .await?;
        let provider_events = ProviderEventRow::find_by_statement(stmt(
            "SELECT provider, event_id, kind, payload, received_at FROM provider_events \
             WHERE message_id = $1 ORDER BY id",
            vec![Value::from(m.id.clone())],
        ))
        .all(conn)
        .await?;
        messages.push(json!({
            "id": m.id,
            "campaign_id": m.campaign_id,
            "channel": m.channel,
            "kind": m.kind,
            "template": m.template,
            "state": m.state,
            "skip_reason": m.skip_reason,
            "address": m.address,
            "provider": m.provider,
            "provider_message_id": m.provider_message_id,
            "attempts": m.attempts,
            "last_error": m.last_error,
            "payload": embedded(&m.payload),
            "created_at": m.created_at,
            "sent_at": m.sent_at,
            "updated_at": m.updated_at,
            "events": events,
            "provider_events": provider_events.into_iter().map(|e| json!({
                "provider": e.provider,
                "event_id": e.event_id,
                "kind": e.kind,
                "payload": embedded(&e.payload),
                "received_at": e.received_at,
            })).collect::<Vec<_>>(),
        }));
    }
    let suppressions = super::view::suppressions(conn, &model).await?;
    let inbound = InboundRow::find_by_statement(stmt(
        "SELECT id, channel, from_address, text, keyword, in_reply_to, received_at \
         FROM inbound_messages WHERE contact_id = $1 OR LOWER(from_address) = $2 \
         OR LOWER(from_address) = $3 ORDER BY received_at, id",
        by_contact_or_address(),
    ))
    .all(conn)
    .await?;
    let trigger_runs = TriggerRunRow::find_by_statement(stmt(
        "SELECT id, \"trigger\", crossing, step, state, stopped_reason, next_step_at, created_at, \
         updated_at FROM trigger_runs WHERE contact_id = $1 ORDER BY id",
        vec![Value::from(id)],
    ))
    .all(conn)
    .await?;

    let contact = Contact::from(model);
    Ok(Some(json!({
        "exported_at": crate::clock::now(),
        "contact": contact,
        "warmth": {
            "value": warmth.warmth,
            "reasons": warmth.warmth_reasons.as_deref().map(embedded).unwrap_or_else(|| json!([])),
            "computed_at": warmth.warmth_updated_at,
            "last_interaction_at": warmth.last_interaction_at,
        },
        "consent": {
            "current": current.into_iter().map(|(channel, c)| (channel, json!({
                "granted": c.granted,
                "source": c.source,
                "at": c.at,
            }))).collect::<serde_json::Map<_, _>>(),
            "ledger": consent_ledger.into_iter().map(|r| json!({
                "id": r.id,
                "channel": r.channel,
                "granted": r.granted,
                "source": r.source,
                "actor": r.actor,
                "text": r.consent_text,
                "recorded_at": r.recorded_at,
            })).collect::<Vec<_>>(),
        },
        "interactions": interactions,
        "messages": messages,
        "suppressions": suppressions.into_iter().collect::<Vec<Suppression>>(),
        "inbound_messages": inbound,
        "trigger_runs": trigger_runs,
    })))
}
