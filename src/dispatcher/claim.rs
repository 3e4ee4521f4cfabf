//! Claiming due messages under a lease, worker heartbeats, and recovering
//! the messages of workers that died.
//!
//! A claim is one short transaction: `BEGIN IMMEDIATE` on SQLite (writers
//! serialise; a deferred transaction would fail at the read→write upgrade),
//! `FOR UPDATE SKIP LOCKED` on PostgreSQL (concurrent claimers take disjoint
//! rows). It marks the rows `sending`, stamps them with the worker's id and
//! commits — only then is the provider called, so no transaction is ever
//! open across a network call.
//!
//! Leases are tied to worker liveness: each worker heartbeats every
//! `heartbeat_secs`; a `sending` row whose worker has not heartbeaten for
//! `lease_secs` belongs to a dead worker. It is queued again when it was
//! never handed to the provider (`called_at` unset) or the provider takes an
//! idempotency key (a second call with the same key cannot send twice).
//! Otherwise the worker died during a key-less provider call: the message
//! becomes `ambiguous` and waits for a person.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, FromQueryResult,
    Statement, Value,
};

use super::{
    checks::{ContactRow, Facts},
    ledger,
};
use crate::domain::{Channel, MessageKind, MessageState};
use crate::providers::Registry;

/// What a worker picks up; the `messages_claim` partial index names the
/// same states, so the lists must stay literals (see `domain::sql`).
const CLAIMABLE: [MessageState; 2] = [MessageState::Queued, MessageState::Deferred];

/// The PostgreSQL claim: picks, marks `sending`, records the event and
/// reads the facts the checks need, in one statement. Built once.
static PG_CLAIM: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH picked AS (SELECT id FROM messages WHERE provider = $3 \
           AND state IN ({claimable}) AND next_attempt_at <= $2 \
           ORDER BY next_attempt_at LIMIT $4 FOR UPDATE SKIP LOCKED), \
         claimed AS (UPDATE messages m SET state = {sending}, locked_by = $1, called_at = NULL, \
           attempts = m.attempts + 1, updated_at = $2 FROM picked WHERE m.id = picked.id \
           RETURNING m.id, m.campaign_id, m.contact_id, m.channel, m.kind, m.address, \
             m.attempts, m.payload, m.provider, m.source), \
         events AS (INSERT INTO message_events (message_id, state, at, detail) \
           SELECT id, {sending}, $2, 'claimed by ' || $1::text || ', attempt ' || attempts \
           FROM claimed) \
         SELECT c.*, ct.email AS contact_email, ct.phone AS contact_phone, \
           ct.timezone AS contact_timezone, \
           (SELECT k.granted FROM consents k WHERE k.contact_id = c.contact_id \
              AND k.channel = c.channel ORDER BY k.id DESC LIMIT 1) AS consent_granted, \
           cap.day AS cap_day, cap.week AS cap_week, \
           lower(a.addr) AS check_address, \
           EXISTS (SELECT 1 FROM suppressions s WHERE s.channel = c.channel AND s.address IN \
             (lower(a.addr), 'sha256:' || encode(sha256(convert_to(lower(a.addr), 'UTF8')), 'hex'))) \
             AS suppressed \
         FROM claimed c \
         LEFT JOIN contacts ct ON ct.id = c.contact_id \
         CROSS JOIN LATERAL (SELECT COALESCE(c.address, \
           CASE WHEN c.channel = {email} THEN ct.email ELSE ct.phone END) AS addr) a \
         LEFT JOIN LATERAL (SELECT COUNT(*) FILTER (WHERE mm.sent_at > $5) AS day, COUNT(*) AS week \
           FROM messages mm WHERE mm.contact_id = c.contact_id AND mm.kind = {marketing} \
           AND mm.sent_at > $6) cap ON c.kind = {marketing}",
        claimable = MessageState::sql_list(&CLAIMABLE),
        sending = MessageState::Sending.sql(),
        email = Channel::Email.sql(),
        marketing = MessageKind::Marketing.sql(),
    )
});

/// The SQLite claim (`BEGIN IMMEDIATE` serialises claimers). Built once.
static SQLITE_CLAIM: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE messages SET state = {sending}, locked_by = $1, called_at = NULL, attempts = attempts + 1, updated_at = $2 \
         WHERE id IN (SELECT id FROM messages WHERE provider = $3 AND state IN ({claimable}) \
                      AND next_attempt_at <= $2 ORDER BY next_attempt_at LIMIT $4) \
         RETURNING id, campaign_id, contact_id, channel, kind, address, attempts, payload, provider, source",
        claimable = MessageState::sql_list(&CLAIMABLE),
        sending = MessageState::Sending.sql(),
    )
});

/// A message a worker holds.
#[derive(Debug, Clone, FromQueryResult)]
pub struct Claimed {
    pub id: String,
    pub campaign_id: Option<i64>,
    pub contact_id: Option<i64>,
    pub channel: crate::domain::Channel,
    pub kind: crate::domain::MessageKind,
    pub address: Option<String>,
    pub attempts: i32,
    pub payload: String,
    pub provider: Option<String>,
    /// What decided the send (`campaign:42`, `inbound:7`, …).
    pub source: Option<String>,
}

/// Opens a transaction that will take row locks: `BEGIN IMMEDIATE` on
/// SQLite, a plain one on PostgreSQL, whose row-locking clause it returns
/// for the `SELECT`s that pick rows.
async fn begin_claiming(
    db: &DatabaseConnection,
) -> anyhow::Result<(DatabaseTransaction, &'static str)> {
    let backend = db.get_database_backend();
    let txn = crate::db::begin_write(db).await?;
    let lock = if backend == DbBackend::Postgres {
        "FOR UPDATE SKIP LOCKED"
    } else {
        ""
    };
    Ok((txn, lock))
}

/// A claimed message with the facts its last-moment checks need, as the
/// PostgreSQL claim statement reads them.
#[derive(FromQueryResult)]
struct ClaimedRow {
    #[sea_orm(nested)]
    message: Claimed,
    contact_email: Option<String>,
    contact_phone: Option<String>,
    contact_timezone: Option<String>,
    consent_granted: Option<bool>,
    cap_day: Option<i64>,
    cap_week: Option<i64>,
    /// The address (lower-cased by PostgreSQL) and whether it is suppressed.
    check_address: Option<String>,
    suppressed: bool,
}

/// Claims up to `limit` due messages of `provider` for `worker`.
pub async fn claim(
    db: &DatabaseConnection,
    provider: &str,
    worker: &str,
    limit: usize,
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<Claimed>> {
    Ok(claim_with_facts(db, provider, worker, limit, now).await?.0)
}

/// [`claim`], also returning the facts for the last-moment checks when the
/// back end reads them in the claim itself (PostgreSQL: one statement picks,
/// marks, records and reads, in one snapshot taken after the claim's own
/// start — so an opt-out committed before the claim is seen, exactly as a
/// separate check right after it would see it).
pub async fn claim_with_facts(
    db: &DatabaseConnection,
    provider: &str,
    worker: &str,
    limit: usize,
    now: DateTime<Utc>,
) -> anyhow::Result<(Vec<Claimed>, Option<Facts>)> {
    let backend = db.get_database_backend();
    let mut values = vec![
        Value::from(worker.to_string()),
        Value::from(now),
        Value::from(provider.to_string()),
        Value::from(limit as i64),
    ];
    if backend == DbBackend::Postgres {
        // The event text matches `ledger::record_events`' for a claim.
        // SKIP LOCKED keeps concurrent claimers on disjoint rows. The
        // suppression lookup mirrors `contacts::forget::suppression_hash`
        // for ASCII addresses; `checks::complete_facts` redoes the others.
        values.push(Value::from(now - chrono::Duration::days(1)));
        values.push(Value::from(now - chrono::Duration::days(7)));
        let rows = ClaimedRow::find_by_statement(Statement::from_sql_and_values(
            backend,
            PG_CLAIM.as_str(),
            values,
        ))
        .all(db)
        .await?;
        let mut facts = Facts::default();
        let mut claimed = Vec::with_capacity(rows.len());
        for r in rows {
            let m = r.message;
            if let Some(contact) = m.contact_id {
                facts.contacts.entry(contact).or_insert(ContactRow {
                    id: contact,
                    email: r.contact_email,
                    phone: r.contact_phone,
                    timezone: r.contact_timezone,
                });
                if let Some(granted) = r.consent_granted {
                    facts.consent.insert((contact, m.channel), granted);
                }
                if let (Some(day), Some(week)) = (r.cap_day, r.cap_week) {
                    facts.caps_used.insert(contact, (day, week));
                }
            }
            if let (true, Some(address)) = (r.suppressed, r.check_address) {
                facts.suppressed.insert((m.channel, address));
            }
            claimed.push(m);
        }
        return Ok((claimed, Some(facts)));
    }
    // SQLite: `BEGIN IMMEDIATE` serialises claimers.
    let txn = crate::db::begin_write(db).await?;
    let claimed = Claimed::find_by_statement(Statement::from_sql_and_values(
        backend,
        SQLITE_CLAIM.as_str(),
        values,
    ))
    .all(&txn)
    .await?;
    if !claimed.is_empty() {
        let detail = format!("claimed by {worker}");
        let events: Vec<(&str, MessageState, String)> = claimed
            .iter()
            .map(|m| {
                (
                    m.id.as_str(),
                    MessageState::Sending,
                    format!("{detail}, attempt {}", m.attempts),
                )
            })
            .collect();
        ledger::record_events(&txn, &events, now).await?;
    }
    txn.commit().await?;
    Ok((claimed, None))
}

/// Records that `worker` is alive.
pub async fn heartbeat(
    db: &impl ConnectionTrait,
    worker: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    db.execute_raw(Statement::from_sql_and_values(
        db.get_database_backend(),
        "INSERT INTO dispatcher_workers (id, started_at, heartbeat_at) VALUES ($1, $2, $2) \
         ON CONFLICT (id) DO UPDATE SET heartbeat_at = $2",
        [Value::from(worker.to_string()), Value::from(now)],
    ))
    .await?;
    Ok(())
}

/// Removes `worker` after a clean stop (its messages are all settled).
pub async fn retire(db: &impl ConnectionTrait, worker: &str) -> anyhow::Result<()> {
    db.execute_raw(Statement::from_sql_and_values(
        db.get_database_backend(),
        "DELETE FROM dispatcher_workers WHERE id = $1",
        [Value::from(worker.to_string())],
    ))
    .await?;
    Ok(())
}

#[derive(FromQueryResult)]
struct Orphan {
    id: String,
    provider: Option<String>,
    /// Set when a key-less provider was (about to be) called.
    called: bool,
}

/// What [`recover`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Recovered {
    pub requeued: usize,
    pub ambiguous: usize,
    /// The messages now waiting for a person.
    pub ambiguous_ids: Vec<String>,
}

/// Takes back the `sending` messages of dead workers. `everyone_else_dead`
/// (SQLite, one process by design) treats every other worker as dead at once,
/// which is what makes a restart resume immediately.
pub async fn recover(
    db: &DatabaseConnection,
    registry: &Registry,
    me: &str,
    lease_secs: u64,
    everyone_else_dead: bool,
    now: DateTime<Utc>,
) -> anyhow::Result<Recovered> {
    let backend = db.get_database_backend();
    let cutoff = now - chrono::Duration::seconds(lease_secs as i64);
    let dead = if everyone_else_dead {
        "(locked_by IS NULL OR locked_by <> $1)".to_string()
    } else {
        "(locked_by IS NULL OR (locked_by <> $1 AND locked_by NOT IN \
           (SELECT id FROM dispatcher_workers WHERE heartbeat_at > $2)))"
            .to_string()
    };
    let (txn, lock) = begin_claiming(db).await?;
    let orphans = Orphan::find_by_statement(Statement::from_sql_and_values(
        backend,
        format!(
            "SELECT id, provider, called_at IS NOT NULL AS called FROM messages \
             WHERE state = {sending} AND {dead} LIMIT 5000 {lock}",
            sending = MessageState::Sending.sql(),
        ),
        [Value::from(me.to_string()), Value::from(cutoff)],
    ))
    .all(&txn)
    .await?;
    let mut result = Recovered::default();
    if orphans.is_empty() {
        txn.commit().await?;
        return Ok(result);
    }
    // Safe to send again: never handed to the provider, or handed to one
    // that deduplicates each message by key. (`called_at` is only written
    // for requests the provider cannot deduplicate: a key-less provider, or
    // a batch whose key covers only the request as a whole.)
    let (retry, ambiguous): (Vec<&Orphan>, Vec<&Orphan>) = orphans.iter().partition(|o| {
        !o.called
            || o.provider
                .as_deref()
                .and_then(|p| registry.get(p))
                .is_some_and(|p| p.takes_idempotency_key() && p.batch_key_per_message())
    });
    for (group, state, detail) in [
        (
            retry,
            MessageState::Queued,
            "worker lost; sending again (never handed to the provider, or with the same idempotency key)",
        ),
        (
            ambiguous,
            MessageState::Ambiguous,
            "worker lost during the provider call; the provider takes no idempotency key, so a person must decide",
        ),
    ] {
        for chunk in group.chunks(500) {
            let ids: Vec<&str> = chunk.iter().map(|o| o.id.as_str()).collect();
            let moved =
                ledger::set_state(&txn, &ids, MessageState::Sending, state, detail, now).await?;
            match state {
                MessageState::Queued => result.requeued += moved.len(),
                _ => {
                    result.ambiguous += moved.len();
                    result.ambiguous_ids.extend(moved);
                }
            }
        }
    }
    txn.commit().await?;
    if result.ambiguous > 0 {
        metrics::counter!("dispatcher_ambiguous_total").increment(result.ambiguous as u64);
        tracing::warn!(
            count = result.ambiguous,
            "messages marked ambiguous after a worker was lost"
        );
    }
    Ok(result)
}
