//! The delivery ledger: one row per recipient per send in `messages`, every
//! transition recorded in `message_events`.
//!
//! Invariants:
//! - Every send starts as a ledger row written by [`enqueue`], in the same
//!   transaction as whatever decided to send (an approval, a schedule, a
//!   trigger, an API call). Its id is derived from the send's source and the
//!   recipient, so enqueuing the same thing twice inserts nothing.
//! - Transitions are guarded by the expected current state (`UPDATE … WHERE
//!   state = …`), so two actors racing cannot both move a message, and a
//!   state never moves where [`MessageState::can_move_to`] forbids.
//! - A campaign is complete when none of its messages can still move by
//!   itself — a fact read from the ledger, never a flag that could lie.

use std::collections::BTreeMap;

use crate::db::placeholders;
use crate::domain::{CampaignState, Channel, MessageKind, MessageState, SkipReason};
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, FromQueryResult, Statement, Value};
use sha2::Digest;

/// The ledger id of the message that `source` sends to `recipient` on
/// `channel`: deterministic, so a repeat of the same decision is a no-op.
pub fn message_id(source: &str, recipient: &str, channel: &str) -> String {
    let digest =
        sha2::Sha256::digest(format!("{source}\u{1f}{recipient}\u{1f}{channel}").as_bytes());
    format!("msg_{}", &hex::encode(digest)[..32])
}

/// A message about to enter the ledger.
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// What decided this send: `campaign:42`, `api:<idempotency key>`,
    /// `trigger:cold:17:1`, … Part of the id.
    pub source: String,
    pub campaign_id: Option<i64>,
    pub contact_id: Option<i64>,
    pub channel: Channel,
    pub kind: MessageKind,
    pub address: Option<String>,
    /// The provider that will carry it.
    pub provider: String,
    /// Rendered content, provider-neutral JSON.
    pub payload: serde_json::Value,
    /// The template it was rendered from, when one was used.
    pub template: Option<String>,
    /// `Queued`, `Scheduled` or `AwaitingApproval`.
    pub state: MessageState,
    /// When it is due.
    pub due_at: DateTime<Utc>,
}

impl NewMessage {
    pub fn id(&self) -> String {
        let recipient = match (self.contact_id, &self.address) {
            (Some(c), _) => format!("contact:{c}"),
            (None, Some(a)) => format!("address:{}", a.to_lowercase()),
            (None, None) => "nobody".into(),
        };
        message_id(&self.source, &recipient, self.channel.as_str())
    }
}

/// Appends transition records.
pub async fn record_events(
    conn: &impl ConnectionTrait,
    events: &[(&str, MessageState, String)],
    at: DateTime<Utc>,
) -> anyhow::Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    if crate::db::is_postgres(conn) {
        // One statement with array parameters: constant SQL text, so the
        // server plans it once, whatever the batch size.
        let ids: Vec<String> = events.iter().map(|(id, _, _)| id.to_string()).collect();
        let states: Vec<String> = events
            .iter()
            .map(|(_, s, _)| s.as_str().to_string())
            .collect();
        let details: Vec<String> = events.iter().map(|(_, _, d)| d.clone()).collect();
        conn.execute_raw(Statement::from_sql_and_values(
            conn.get_database_backend(),
            "INSERT INTO message_events (message_id, state, at, detail) \
             SELECT m, s, $4, d FROM UNNEST($1::text[], $2::text[], $3::text[]) AS u(m, s, d)",
            [
                Value::from(ids),
                Value::from(states),
                Value::from(details),
                Value::from(at),
            ],
        ))
        .await?;
        return Ok(());
    }
    for chunk in events.chunks(200) {
        let mut values = Vec::with_capacity(chunk.len() * 3 + 1);
        values.push(Value::from(at));
        let rows: Vec<String> = chunk
            .iter()
            .enumerate()
            .map(|(i, (id, state, detail))| {
                values.push(Value::from(id.to_string()));
                values.push(Value::from(state.as_str()));
                values.push(Value::from(detail.clone()));
                let b = 2 + i * 3;
                format!("(${}, ${}, $1, ${})", b, b + 1, b + 2)
            })
            .collect();
        let sql = format!(
            "INSERT INTO message_events (message_id, state, at, detail) VALUES {}",
            rows.join(",")
        );
        conn.execute_raw(Statement::from_sql_and_values(
            conn.get_database_backend(),
            sql,
            values,
        ))
        .await?;
    }
    Ok(())
}

/// Writes new messages (skipping ids already present) and their first
/// event. Returns how many were new. Call inside the caller's transaction.
pub async fn enqueue(
    conn: &impl ConnectionTrait,
    messages: &[NewMessage],
    now: DateTime<Utc>,
) -> anyhow::Result<u64> {
    let backend = conn.get_database_backend();
    let pg = crate::db::is_postgres(conn);
    let mut inserted_total = 0;
    for chunk in messages.chunks(80) {
        let mut values = Vec::with_capacity(chunk.len() * 13);
        let mut rows = Vec::with_capacity(chunk.len());
        for m in chunk {
            let b = values.len() + 1;
            values.extend([
                Value::from(m.id()),
                Value::from(m.campaign_id),
                Value::from(m.contact_id),
                Value::from(m.channel.as_str()),
                Value::from(m.kind.as_str()),
                Value::from(m.state.as_str()),
                Value::from(m.provider.clone()),
                Value::from(m.due_at),
                Value::from(m.payload.to_string()),
                Value::from(m.address.clone()),
                Value::from(m.source.clone()),
                Value::from(m.template.clone()),
                Value::from(now),
            ]);
            // `updated_at` reuses the `created_at` parameter.
            rows.push(format!("({}, ${})", placeholders(b, 13), b + 12));
        }
        let insert = format!(
            "INSERT INTO messages (id, campaign_id, contact_id, channel, kind, state, provider, next_attempt_at, \
             payload, address, source, template, created_at, updated_at) VALUES {} ON CONFLICT (id) DO NOTHING",
            rows.join(",")
        );
        #[derive(FromQueryResult)]
        struct Id {
            id: String,
        }
        if pg {
            // One statement: the rows, their first events and the workers'
            // wake-up (delivered at commit) — one round trip, and atomic even
            // when the caller passes a bare connection. The final SELECT
            // refers to `wake` because PostgreSQL skips a SELECT CTE nothing
            // reads; it notifies only when something new went in.
            values.push(Value::from(now));
            let sql = format!(
                "WITH ins AS ({insert} RETURNING id, state), \
                 ev AS (INSERT INTO message_events (message_id, state, at, detail) \
                   SELECT id, state, ${at}, 'entered the ledger' FROM ins), \
                 wake AS (SELECT pg_notify('warmline_dispatch', '') FROM (SELECT 1 FROM ins LIMIT 1) AS any_new) \
                 SELECT id FROM ins WHERE (SELECT COUNT(*) FROM wake) >= 0",
                at = values.len()
            );
            let new_ids =
                Id::find_by_statement(Statement::from_sql_and_values(backend, sql, values))
                    .all(conn)
                    .await?;
            inserted_total += new_ids.len() as u64;
            continue;
        }
        let sql = format!("{insert} RETURNING id");
        let new_ids = Id::find_by_statement(Statement::from_sql_and_values(backend, sql, values))
            .all(conn)
            .await?;
        if !new_ids.is_empty() {
            let by_id: BTreeMap<String, MessageState> =
                chunk.iter().map(|m| (m.id(), m.state)).collect();
            let events: Vec<(&str, MessageState, String)> = new_ids
                .iter()
                .map(|i| {
                    let state = by_id.get(&i.id).copied().unwrap_or(MessageState::Queued);
                    (i.id.as_str(), state, "entered the ledger".to_string())
                })
                .collect();
            record_events(conn, &events, now).await?;
        }
        inserted_total += new_ids.len() as u64;
    }
    Ok(inserted_total)
}

/// Moves `ids` from `from` to `to`, only those still in `from`. Returns the
/// ids moved. Queued messages become due now; a worker's lock is released.
pub async fn set_state(
    conn: &impl ConnectionTrait,
    ids: &[&str],
    from: MessageState,
    to: MessageState,
    detail: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<String>> {
    debug_assert!(from.can_move_to(to), "{from} → {to}");
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    #[derive(FromQueryResult)]
    struct Id {
        id: String,
    }
    let mut moved = Vec::new();
    for chunk in ids.chunks(500) {
        let mut values = vec![
            Value::from(to.as_str()),
            Value::from(now),
            Value::from(from.as_str()),
        ];
        values.extend(chunk.iter().map(|i| Value::from(i.to_string())));
        let due = if to == MessageState::Queued {
            ", next_attempt_at = $2"
        } else {
            ""
        };
        let sql = format!(
            "UPDATE messages SET state = $1, updated_at = $2, locked_by = NULL{due} \
             WHERE state = $3 AND id IN ({}) RETURNING id",
            placeholders(4, chunk.len())
        );
        let rows = Id::find_by_statement(Statement::from_sql_and_values(
            conn.get_database_backend(),
            sql,
            values,
        ))
        .all(conn)
        .await?;
        let events: Vec<(&str, MessageState, String)> = rows
            .iter()
            .map(|r| (r.id.as_str(), to, detail.to_string()))
            .collect();
        record_events(conn, &events, now).await?;
        moved.extend(rows.into_iter().map(|r| r.id));
    }
    Ok(moved)
}

/// Moves every message of a campaign in one of `from` to `to`.
async fn move_campaign(
    conn: &impl ConnectionTrait,
    campaign_id: i64,
    from: &[MessageState],
    to: MessageState,
    skip_reason: Option<SkipReason>,
    detail: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<u64> {
    let backend = conn.get_database_backend();
    let states = from
        .iter()
        .map(|s| format!("'{}'", s.as_str()))
        .collect::<Vec<_>>()
        .join(",");
    conn.execute_raw(Statement::from_sql_and_values(
        backend,
        format!(
            "INSERT INTO message_events (message_id, state, at, detail) \
             SELECT id, $1, $2, $3 FROM messages WHERE campaign_id = $4 AND state IN ({states})"
        ),
        [
            Value::from(to.as_str()),
            Value::from(now),
            Value::from(detail.to_string()),
            Value::from(campaign_id),
        ],
    ))
    .await?;
    let due = if to == MessageState::Queued {
        ", next_attempt_at = $2"
    } else {
        ""
    };
    let result = conn
        .execute_raw(Statement::from_sql_and_values(
            backend,
            format!(
                "UPDATE messages SET state = $1, updated_at = $2, skip_reason = $3{due} \
                 WHERE campaign_id = $4 AND state IN ({states})"
            ),
            [
                Value::from(to.as_str()),
                Value::from(now),
                Value::from(skip_reason.map(|r| r.as_str().to_string())),
                Value::from(campaign_id),
            ],
        ))
        .await?;
    Ok(result.rows_affected())
}

/// Sets a campaign's state (the ledger's flow control and the approval
/// engine's decisions both go through here).
pub(crate) async fn set_campaign_state(
    conn: &impl ConnectionTrait,
    campaign_id: i64,
    state: CampaignState,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    conn.execute_raw(Statement::from_sql_and_values(
        conn.get_database_backend(),
        "UPDATE campaigns SET state = $1, updated_at = $2 WHERE id = $3",
        [
            Value::from(state),
            Value::from(now),
            Value::from(campaign_id),
        ],
    ))
    .await?;
    Ok(())
}

/// Pauses a campaign: nothing more of it is claimed. Messages already
/// claimed finish; nothing is lost or skipped.
pub async fn pause_campaign(
    conn: &impl ConnectionTrait,
    campaign_id: i64,
    actor: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<u64> {
    set_campaign_state(conn, campaign_id, CampaignState::Paused, now).await?;
    move_campaign(
        conn,
        campaign_id,
        &[
            MessageState::Queued,
            MessageState::Deferred,
            MessageState::Scheduled,
        ],
        MessageState::Paused,
        None,
        &format!("campaign paused by {actor}"),
        now,
    )
    .await
}

/// Resumes a paused campaign: its paused messages are due again.
pub async fn resume_campaign(
    conn: &impl ConnectionTrait,
    campaign_id: i64,
    actor: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<u64> {
    set_campaign_state(conn, campaign_id, CampaignState::Running, now).await?;
    let n = move_campaign(
        conn,
        campaign_id,
        &[MessageState::Paused],
        MessageState::Queued,
        None,
        &format!("campaign resumed by {actor}"),
        now,
    )
    .await?;
    notify(conn).await?;
    Ok(n)
}

/// Cancels a campaign: every message not yet claimed is skipped (cancelled).
pub async fn cancel_campaign(
    conn: &impl ConnectionTrait,
    campaign_id: i64,
    actor: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<u64> {
    set_campaign_state(conn, campaign_id, CampaignState::Cancelled, now).await?;
    move_campaign(
        conn,
        campaign_id,
        &[
            MessageState::AwaitingApproval,
            MessageState::Scheduled,
            MessageState::Held,
            MessageState::Queued,
            MessageState::Deferred,
            MessageState::Paused,
        ],
        MessageState::Skipped,
        Some(SkipReason::Cancelled),
        &format!("campaign cancelled by {actor}"),
        now,
    )
    .await
}

/// Wakes workers in other processes (PostgreSQL); a no-op on SQLite.
pub async fn notify(conn: &impl ConnectionTrait) -> anyhow::Result<()> {
    if crate::db::is_postgres(conn) {
        conn.execute_unprepared("NOTIFY warmline_dispatch").await?;
    }
    Ok(())
}

/// Scheduled messages whose time has come: queued when on time (within
/// `grace`), held for a person when warmline was down and they are later
/// than that. Returns (queued, held).
pub async fn promote_scheduled(
    conn: &impl ConnectionTrait,
    grace: chrono::Duration,
    now: DateTime<Utc>,
) -> anyhow::Result<(u64, u64)> {
    let backend = conn.get_database_backend();
    // Late ones first, so the second statement only sees those on time.
    let late_detail = "schedule came due while warmline was down; waiting for a person to confirm";
    conn.execute_raw(Statement::from_sql_and_values(
        backend,
        format!(
            "INSERT INTO message_events (message_id, state, at, detail) \
             SELECT id, {held}, $1, $3 FROM messages WHERE state = {scheduled} AND next_attempt_at < $2",
            held = MessageState::Held.sql(),
            scheduled = MessageState::Scheduled.sql(),
        ),
        [Value::from(now), Value::from(now - grace), Value::from(late_detail)],
    ))
    .await?;
    let held = conn
        .execute_raw(Statement::from_sql_and_values(
            backend,
            format!(
                "UPDATE messages SET state = {held}, updated_at = $1 WHERE state = {scheduled} AND next_attempt_at < $2",
                held = MessageState::Held.sql(),
                scheduled = MessageState::Scheduled.sql(),
            ),
            [Value::from(now), Value::from(now - grace)],
        ))
        .await?
        .rows_affected();
    conn.execute_raw(Statement::from_sql_and_values(
        backend,
        format!(
            "INSERT INTO message_events (message_id, state, at, detail) \
             SELECT id, {queued}, $1, 'scheduled time reached' FROM messages WHERE state = {scheduled} AND next_attempt_at <= $1",
            queued = MessageState::Queued.sql(),
            scheduled = MessageState::Scheduled.sql(),
        ),
        [Value::from(now)],
    ))
    .await?;
    let queued = conn
        .execute_raw(Statement::from_sql_and_values(
            backend,
            format!(
                "UPDATE messages SET state = {queued}, updated_at = $1 WHERE state = {scheduled} AND next_attempt_at <= $1",
                queued = MessageState::Queued.sql(),
                scheduled = MessageState::Scheduled.sql(),
            ),
            [Value::from(now)],
        ))
        .await?
        .rows_affected();
    let counts = [held, queued];
    Ok((counts[1], counts[0]))
}

/// A person confirms held (stale) messages of a campaign: they are due now.
pub async fn confirm_held(
    conn: &impl ConnectionTrait,
    campaign_id: i64,
    actor: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<u64> {
    let n = move_campaign(
        conn,
        campaign_id,
        &[MessageState::Held],
        MessageState::Queued,
        None,
        &format!("late schedule confirmed by {actor}"),
        now,
    )
    .await?;
    notify(conn).await?;
    Ok(n)
}

/// A person's decision on an ambiguous message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    SendAgain,
    MarkSent,
}

/// Applies a person's decision; false when the message was not ambiguous
/// (already resolved by someone else).
pub async fn resolve_ambiguous(
    conn: &impl ConnectionTrait,
    id: &str,
    resolution: Resolution,
    actor: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let (to, detail) = match resolution {
        Resolution::SendAgain => (MessageState::Queued, format!("{actor} chose to send again")),
        Resolution::MarkSent => (MessageState::Sent, format!("{actor} marked it as sent")),
    };
    let moved = set_state(conn, &[id], MessageState::Ambiguous, to, &detail, now).await?;
    if to == MessageState::Queued && !moved.is_empty() {
        notify(conn).await?;
    }
    Ok(!moved.is_empty())
}

/// Message counts per state for a campaign.
pub async fn campaign_progress(
    conn: &impl ConnectionTrait,
    campaign_id: i64,
) -> anyhow::Result<BTreeMap<MessageState, i64>> {
    #[derive(FromQueryResult)]
    struct Row {
        state: MessageState,
        n: i64,
    }
    let rows = Row::find_by_statement(Statement::from_sql_and_values(
        conn.get_database_backend(),
        "SELECT state, CAST(COUNT(*) AS BIGINT) AS n FROM messages WHERE campaign_id = $1 GROUP BY state",
        [Value::from(campaign_id)],
    ))
    .all(conn)
    .await?;
    Ok(rows.into_iter().map(|r| (r.state, r.n)).collect())
}

/// True when no message of the campaign can still move by itself.
pub async fn campaign_complete(
    conn: &impl ConnectionTrait,
    campaign_id: i64,
) -> anyhow::Result<bool> {
    let progress = campaign_progress(conn, campaign_id).await?;
    Ok(progress.keys().all(|s| s.is_settled()))
}

/// Suppresses an address on a channel (bounce, complaint, carrier opt-out).
/// Addresses are stored lower-cased; suppressing twice is harmless.
pub async fn suppress(
    conn: &impl ConnectionTrait,
    channel: &str,
    address: &str,
    reason: &str,
    source: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    conn.execute_raw(Statement::from_sql_and_values(
        conn.get_database_backend(),
        "INSERT INTO suppressions (contact_id, channel, address, reason, source, created_at) \
         VALUES ((SELECT id FROM contacts WHERE LOWER(email) = $2 OR phone = $2 LIMIT 1), $1, $2, $3, $4, $5) \
         ON CONFLICT (channel, address) DO NOTHING",
        [
            Value::from(channel),
            Value::from(address.trim().to_lowercase()),
            Value::from(reason),
            Value::from(source),
            Value::from(now),
        ],
    ))
    .await?;
    Ok(())
}

/// Whether any message of the campaign is due or past `scheduled` (skipped
/// and never-approved ones aside): after that it can no longer be moved.
pub async fn campaign_started(
    conn: &impl ConnectionTrait,
    campaign_id: i64,
    now: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let sql = format!(
        "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM messages WHERE campaign_id = $1 \
         AND (state NOT IN ({not_started}) OR (state = {scheduled} AND next_attempt_at <= $2))",
        not_started = MessageState::sql_list(&[
            MessageState::Scheduled,
            MessageState::Skipped,
            MessageState::AwaitingApproval,
        ]),
        scheduled = MessageState::Scheduled.sql(),
    );
    let n = crate::db::count(conn, &sql, vec![Value::from(campaign_id), Value::from(now)]).await?;
    Ok(n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_deterministic_and_distinct() {
        let a = message_id("campaign:1", "contact:7", "email");
        assert_eq!(a, message_id("campaign:1", "contact:7", "email"));
        assert_ne!(a, message_id("campaign:1", "contact:8", "email"));
        assert_ne!(a, message_id("campaign:2", "contact:7", "email"));
        assert_ne!(a, message_id("campaign:1", "contact:7", "sms"));
        assert!(a.starts_with("msg_") && a.len() == 36);
    }
}
