//! The periodic decay pass: recomputes every contact's warmth at `now`, so
//! scores fall as time passes without new interactions, and reports the
//! contacts whose score crossed a trigger threshold ([`Crossing`]).
//!
//! How it stays cheap (target: 100,000 contacts with 1,000,000 interactions
//! in under 2 s, `warmline bench warmth`):
//! - contacts are walked in id order, `batch_contacts` at a time; for each
//!   batch, one query reads the contact rows and one reads their
//!   interactions inside the horizon (`[now − 8 half-lives, now]`), with kind
//!   and direction as small integers; the model runs in Rust;
//! - only rows whose stored score (rounded to 0.1) or reasons change are
//!   written, with one multi-row `UPDATE … FROM (VALUES …)` per 1,000 rows on
//!   SQLite and one `UPDATE … FROM UNNEST(…)` per batch on PostgreSQL, so a
//!   pass that finds nothing changed writes nothing.
//!
//! Invariants:
//! - after a pass, every contact's stored score equals what
//!   [`super::refresh_contact_with`] would store at the same `now` (the same
//!   query bounds and the same pure model);
//! - each batch is one transaction: on SQLite it takes the write lock up
//!   front (`BEGIN IMMEDIATE`), so no `record` can commit between the read
//!   and the write; on PostgreSQL it is REPEATABLE READ, so a row a
//!   concurrent `record` changed after the read fails the write with a
//!   serialization error and the batch is retried;
//! - `warmth_updated_at` is the time of the last write of a contact's score;
//!   an unchanged contact keeps its old one.

use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, Utc};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, FromQueryResult, IsolationLevel,
    Statement, TransactionOptions, TransactionTrait, Value,
};

use super::{Crossing, INBOUND_SQL, KIND_SQL, event_from_codes, model};

/// What one pass did.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Contacts recomputed.
    pub contacts: u64,
    /// Interactions read (those inside the horizon).
    pub interactions: u64,
    /// Contacts whose score or reasons changed and were written.
    pub updated: u64,
    /// Contacts that crossed a threshold, in contact id order.
    pub crossings: Vec<Crossing>,
    pub elapsed: Duration,
}

/// Recomputes every contact with the process's parameters and batch size
/// ([`super::params`], [`super::batch_contacts`]).
pub async fn recompute_all(db: &DatabaseConnection, now: DateTime<Utc>) -> anyhow::Result<Stats> {
    recompute_all_with(db, now, &super::params(), super::batch_contacts()).await
}

/// [`recompute_all`] with explicit parameters and batch size.
pub async fn recompute_all_with(
    db: &DatabaseConnection,
    now: DateTime<Utc>,
    p: &model::Params,
    batch: usize,
) -> anyhow::Result<Stats> {
    let started = Instant::now();
    let mut stats = Stats::default();
    let mut after = i64::MIN;
    loop {
        let mut attempt = 0;
        let done = loop {
            let txn = begin(db).await?;
            match recompute_batch(&txn, after, now, p, batch.max(1)).await {
                Ok(b) => match txn.commit().await {
                    Ok(()) => break b,
                    Err(e) if is_retryable(&e.to_string()) && attempt < 5 => attempt += 1,
                    Err(e) => return Err(e.into()),
                },
                Err(e) if is_retryable(&format!("{e:#}")) && attempt < 5 => {
                    txn.rollback().await.ok();
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        };
        let Some(last) = done.last_id else { break };
        after = last;
        stats.contacts += done.contacts;
        stats.interactions += done.interactions;
        stats.updated += done.updated;
        stats.crossings.extend(done.crossings);
    }
    stats.elapsed = started.elapsed();
    Ok(stats)
}

/// A concurrent `record` won the race for a row (PostgreSQL), or a deadlock
/// was broken: the batch is safe to redo from scratch.
fn is_retryable(msg: &str) -> bool {
    msg.contains("could not serialize") || msg.contains("deadlock detected")
}

async fn begin(db: &DatabaseConnection) -> anyhow::Result<DatabaseTransaction> {
    if crate::db::is_postgres(db) {
        Ok(db
            .begin_with_options(TransactionOptions {
                isolation_level: Some(IsolationLevel::RepeatableRead),
                ..Default::default()
            })
            .await?)
    } else {
        crate::db::begin_write(db).await
    }
}

#[derive(Default)]
struct Batch {
    last_id: Option<i64>,
    contacts: u64,
    interactions: u64,
    updated: u64,
    crossings: Vec<Crossing>,
}

#[derive(FromQueryResult)]
struct ContactRow {
    id: i64,
    warmth: f64,
    warmth_reasons: String,
    computed: i32,
    last_interaction_at: Option<DateTime<Utc>>,
}

#[derive(FromQueryResult)]
struct InteractionRow {
    contact_id: i64,
    k: i32,
    d: i32,
    occurred_at: DateTime<Utc>,
}

/// A contact whose stored score changes.
struct Change {
    id: i64,
    value: f64,
    reasons: String,
}

async fn recompute_batch(
    txn: &DatabaseTransaction,
    after: i64,
    now: DateTime<Utc>,
    p: &model::Params,
    batch: usize,
) -> anyhow::Result<Batch> {
    let backend = txn.get_database_backend();
    let contacts = ContactRow::find_by_statement(Statement::from_sql_and_values(
        backend,
        "SELECT id, warmth, warmth_reasons, \
         CASE WHEN warmth_updated_at IS NULL THEN 0 ELSE 1 END AS computed, last_interaction_at \
         FROM contacts WHERE id > $1 ORDER BY id LIMIT $2",
        [Value::from(after), Value::from(batch as i64)],
    ))
    .all(txn)
    .await
    .context("reading contacts")?;
    let (Some(first), Some(last)) = (contacts.first(), contacts.last()) else {
        return Ok(Batch::default());
    };
    let mut rows = InteractionRow::find_by_statement(Statement::from_sql_and_values(
        backend,
        format!(
            "SELECT contact_id, {KIND_SQL} AS k, {INBOUND_SQL} AS d, occurred_at FROM interactions \
             WHERE contact_id >= $1 AND contact_id <= $2 AND occurred_at >= $3 AND occurred_at <= $4"
        ),
        [
            Value::from(first.id),
            Value::from(last.id),
            Value::from(now - p.horizon()),
            Value::from(now),
        ],
    ))
    .all(txn)
    .await
    .context("reading interactions")?;
    rows.sort_unstable_by_key(|r| r.contact_id);

    let mut out = Batch {
        last_id: Some(last.id),
        contacts: contacts.len() as u64,
        interactions: rows.len() as u64,
        ..Batch::default()
    };
    let mut changes = Vec::new();
    let mut events = Vec::new();
    let mut next = 0;
    for c in &contacts {
        // Both lists are in contact id order: a merge join.
        while next < rows.len() && rows[next].contact_id < c.id {
            next += 1;
        }
        events.clear();
        while next < rows.len() && rows[next].contact_id == c.id {
            let r = &rows[next];
            events.push(event_from_codes(r.occurred_at, r.k, r.d));
            next += 1;
        }
        let o = model::score(&events, c.last_interaction_at, now, p);
        let reasons = serde_json::to_string(&o.reasons)?;
        if c.computed == 1 && o.value == c.warmth && reasons == c.warmth_reasons {
            continue;
        }
        if c.computed == 1
            && let Some(x) = Crossing::between(c.id, c.warmth, o.value)
        {
            out.crossings.push(x);
        }
        changes.push(Change {
            id: c.id,
            value: o.value,
            reasons,
        });
    }
    out.updated = changes.len() as u64;
    write(txn, &changes, now).await.context("writing scores")?;
    Ok(out)
}

async fn write(
    txn: &DatabaseTransaction,
    changes: &[Change],
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    if changes.is_empty() {
        return Ok(());
    }
    let backend = txn.get_database_backend();
    if crate::db::is_postgres(txn) {
        // Array parameters: one constant statement, planned once.
        txn.execute_raw(Statement::from_sql_and_values(
            backend,
            "UPDATE contacts SET warmth = v.w, warmth_reasons = v.r, warmth_updated_at = $4 \
             FROM UNNEST($1::bigint[], $2::float8[], $3::text[]) AS v(id, w, r) \
             WHERE contacts.id = v.id",
            [
                Value::from(changes.iter().map(|c| c.id).collect::<Vec<i64>>()),
                Value::from(changes.iter().map(|c| c.value).collect::<Vec<f64>>()),
                Value::from(
                    changes
                        .iter()
                        .map(|c| c.reasons.clone())
                        .collect::<Vec<String>>(),
                ),
                Value::from(now),
            ],
        ))
        .await?;
        return Ok(());
    }
    // SQLite (≥ 3.33 for UPDATE … FROM): 3 values a row plus one, well under
    // the 32,766 bound-parameter limit.
    for chunk in changes.chunks(1_000) {
        let mut values = Vec::with_capacity(chunk.len() * 3 + 1);
        values.push(Value::from(now));
        let rows: Vec<String> = chunk
            .iter()
            .enumerate()
            .map(|(i, c)| {
                values.push(Value::from(c.id));
                values.push(Value::from(c.value));
                values.push(Value::from(c.reasons.clone()));
                let b = 2 + i * 3;
                format!("(${}, ${}, ${})", b, b + 1, b + 2)
            })
            .collect();
        txn.execute_raw(Statement::from_sql_and_values(
            backend,
            format!(
                "UPDATE contacts SET warmth = v.column2, warmth_reasons = v.column3, \
                 warmth_updated_at = $1 FROM (VALUES {}) AS v WHERE contacts.id = v.column1",
                rows.join(",")
            ),
            values,
        ))
        .await?;
    }
    Ok(())
}
