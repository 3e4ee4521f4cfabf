//! What recording an inbound message reads and writes besides the consent
//! ledger: the `inbound_messages` row, the message it answers, the
//! contact's trigger sequences and pending trigger messages, and the
//! contact's name for the notice.
//!
//! Invariant: every function runs inside the caller's transaction; none
//! commits.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, FromQueryResult, Statement, Value};

use super::*;

/// Inserts the row, the contact found by a subquery. Returns its id and
/// the contact.
pub(super) async fn insert(
    txn: &DatabaseTransaction,
    msg: &Inbound,
    keyword: Option<Keyword>,
    now: DateTime<Utc>,
) -> Result<(i64, Option<i64>), InboundError> {
    let backend = txn.get_database_backend();
    let (lookup, key) = match &msg.from {
        // Import and the messages API compare emails lower-cased too.
        Sender::Email(e) => (
            "SELECT id FROM contacts WHERE LOWER(email) = $7 ORDER BY id LIMIT 1",
            e.as_str().to_lowercase(),
        ),
        Sender::Phone(p) => (
            "SELECT id FROM contacts WHERE phone = $7 ORDER BY id LIMIT 1",
            p.as_str().to_string(),
        ),
        // Contacts have no Instagram column: the IGSID is looked for in
        // `metadata.instagram_id` (an import column of that name lands
        // there). Metadata is always a JSON object; SQLite checks anyway,
        // since a malformed value would fail the whole statement.
        Sender::Instagram(id) if backend == DbBackend::Postgres => (
            "SELECT id FROM contacts WHERE (metadata::jsonb ->> 'instagram_id') = $7 ORDER BY id LIMIT 1",
            id.clone(),
        ),
        Sender::Instagram(id) => (
            "SELECT id FROM contacts WHERE CASE WHEN json_valid(metadata) \
             THEN CAST(json_extract(metadata, '$.instagram_id') AS TEXT) END = $7 ORDER BY id LIMIT 1",
            id.clone(),
        ),
    };
    #[derive(FromQueryResult)]
    struct Row {
        id: i64,
        contact_id: Option<i64>,
    }
    let row = Row::find_by_statement(Statement::from_sql_and_values(
        backend,
        format!(
            "INSERT INTO inbound_messages (contact_id, channel, from_address, text, keyword, confirmed, received_at, created_at) \
             VALUES (({lookup}), $1, $2, $3, $4, $5, $6, $8) RETURNING id, contact_id"
        ),
        [
            Value::from(msg.channel.as_str()),
            Value::from(msg.from.as_str()),
            Value::from(msg.text.clone()),
            Value::from(keyword.map(|k| k.as_str().to_string())),
            Value::from(false),
            Value::from(msg.received_at),
            Value::from(key),
            Value::from(now),
        ],
    ))
    .one(txn)
    .await?
    .ok_or_else(|| anyhow::anyhow!("INSERT … RETURNING returned no row"))?;
    Ok((row.id, row.contact_id))
}

/// The latest message we sent this contact (or this address) on this
/// channel, with its campaign's Slack thread.
#[derive(Debug, FromQueryResult)]
pub(super) struct Answered {
    pub(super) id: String,
    pub(super) campaign_name: Option<String>,
    pub(super) slack_channel: Option<String>,
    pub(super) slack_ts: Option<String>,
}

pub(super) async fn answered_message(
    txn: &DatabaseTransaction,
    msg: &Inbound,
    contact_id: Option<i64>,
) -> Result<Option<Answered>, InboundError> {
    // "Sent or later": the provider took it. `sent_at` may be unset on rows
    // moved by hand, so the last update stands in for it.
    Ok(Answered::find_by_statement(Statement::from_sql_and_values(
        txn.get_database_backend(),
        format!(
            "SELECT m.id, c.name AS campaign_name, c.slack_channel, c.slack_ts \
             FROM messages m LEFT JOIN campaigns c ON c.id = m.campaign_id \
             WHERE m.channel = $1 AND m.state IN ({accepted}) \
               AND (m.contact_id = $2 OR LOWER(m.address) = $3) \
             ORDER BY COALESCE(m.sent_at, m.updated_at) DESC, m.id DESC LIMIT 1",
            accepted = MessageState::sql_list(MessageState::ACCEPTED),
        ),
        [
            Value::from(msg.channel.as_str()),
            Value::from(contact_id),
            Value::from(msg.from.as_str().to_lowercase()),
        ],
    ))
    .one(txn)
    .await?)
}

/// Stops every active trigger sequence of the contact. `trigger_runs` has
/// no channel: a reply anywhere means the person is in touch.
pub(super) async fn stop_trigger_runs(
    txn: &DatabaseTransaction,
    contact: i64,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<u64, InboundError> {
    let r = txn
        .execute_raw(Statement::from_sql_and_values(
            txn.get_database_backend(),
            "UPDATE trigger_runs SET state = 'stopped', stopped_reason = $1, updated_at = $2 \
             WHERE contact_id = $3 AND state = 'active'",
            [Value::from(reason), Value::from(now), Value::from(contact)],
        ))
        .await?;
    Ok(r.rows_affected())
}

/// Skips the contact's trigger messages on `channel` that no worker holds
/// yet (`sending` ones are in flight and finish).
pub(super) async fn cancel_trigger_messages(
    txn: &DatabaseTransaction,
    contact: i64,
    channel: Channel,
    now: DateTime<Utc>,
) -> Result<u64, InboundError> {
    let pending = [
        MessageState::AwaitingApproval,
        MessageState::Scheduled,
        MessageState::Held,
        MessageState::Queued,
        MessageState::Deferred,
        MessageState::Paused,
    ];
    debug_assert!(pending.iter().all(|s| s.can_move_to(MessageState::Skipped)));
    let states = pending
        .iter()
        .map(|s| format!("'{}'", s.as_str()))
        .collect::<Vec<_>>()
        .join(", ");
    #[derive(FromQueryResult)]
    struct Id {
        id: String,
    }
    let ids = Id::find_by_statement(Statement::from_sql_and_values(
        txn.get_database_backend(),
        format!(
            "UPDATE messages SET state = $1, skip_reason = $2, updated_at = $3, locked_by = NULL \
             WHERE contact_id = $4 AND channel = $5 AND source LIKE 'trigger:%' AND state IN ({states}) \
             RETURNING id"
        ),
        [
            Value::from(MessageState::Skipped.as_str()),
            Value::from(SkipReason::Cancelled.as_str()),
            Value::from(now),
            Value::from(contact),
            Value::from(channel.as_str()),
        ],
    ))
    .all(txn)
    .await?;
    let detail = format!(
        "skipped: {} (the contact replied on {})",
        SkipReason::Cancelled.as_str(),
        channel.as_str()
    );
    let events: Vec<(&str, MessageState, String)> = ids
        .iter()
        .map(|i| (i.id.as_str(), MessageState::Skipped, detail.clone()))
        .collect();
    ledger::record_events(txn, &events, now).await?;
    Ok(ids.len() as u64)
}

pub(super) async fn contact_name(
    txn: &DatabaseTransaction,
    contact: i64,
) -> Result<Option<String>, InboundError> {
    #[derive(FromQueryResult)]
    struct Name {
        first_name: Option<String>,
        last_name: Option<String>,
    }
    let row = Name::find_by_statement(Statement::from_sql_and_values(
        txn.get_database_backend(),
        "SELECT first_name, last_name FROM contacts WHERE id = $1",
        [Value::from(contact)],
    ))
    .one(txn)
    .await?;
    Ok(row.and_then(|n| {
        crate::contacts::display::full_name(n.first_name.as_deref(), n.last_name.as_deref())
    }))
}
