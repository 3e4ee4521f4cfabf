//! One pass of a worker for one provider: claim a batch, run the
//! last-moment checks, call the provider under its rate limit, record every
//! outcome. Each step commits on its own; no transaction spans the provider
//! call.
//!
//! Every outcome update is guarded by `state = 'sending' AND locked_by = me`:
//! if this worker was presumed dead and its messages recovered, it records
//! nothing over the recovery's decision.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use futures::StreamExt;
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement, TransactionTrait, Value};

use super::{
    DispatcherSettings,
    checks::{self, Verdict},
    claim::{self, Claimed},
    ledger,
    limiter::RateLimiter,
    retry::RetryPolicy,
    settings::{CapsSettings, QuietHoursSettings},
};
use crate::domain::MessageState;
use crate::providers::{OutgoingMessage, Provider, SendOutcome};

/// Everything a worker needs, shared by all workers of a process.
pub struct Context {
    pub db: DatabaseConnection,
    pub limiter: RateLimiter,
    pub settings: DispatcherSettings,
    pub caps: CapsSettings,
    pub quiet: QuietHoursSettings,
    pub worker_id: String,
    pub alerts: std::sync::Arc<dyn super::alerts::Alerts>,
}

impl Context {
    fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            base: Duration::from_secs_f64(self.settings.retry_base_secs),
            max: Duration::from_secs(self.settings.retry_max_secs),
            max_attempts: self.settings.max_attempts,
        }
    }

    /// The provider's rate (its settings are applied when it is built);
    /// `None` is unlimited.
    pub fn rate_of(&self, provider: &dyn Provider) -> Option<f64> {
        provider.limits().requests_per_second.filter(|r| *r > 0.0)
    }

    fn max_batch(&self, provider: &dyn Provider) -> usize {
        provider.limits().max_batch.max(1)
    }

    /// How many to claim: a batch, but no more than about two seconds of
    /// work at the provider's rate, so claimed rows do not sit waiting.
    fn claim_size(&self, provider: &dyn Provider) -> usize {
        match self.rate_of(provider) {
            Some(rate) => {
                let per_two_seconds = (rate * 2.0).ceil() as usize * self.max_batch(provider);
                per_two_seconds.clamp(1, self.settings.batch_size.max(1))
            }
            None => self.settings.batch_size.max(1),
        }
    }
}

/// Processes one batch; returns how many messages were claimed.
pub async fn process_once(ctx: &Context, provider: &Arc<dyn Provider>) -> anyhow::Result<usize> {
    let now = crate::clock::now();
    let (claimed, facts) = claim::claim_with_facts(
        &ctx.db,
        provider.name(),
        &ctx.worker_id,
        ctx.claim_size(provider.as_ref()),
        now,
    )
    .await?;
    if claimed.is_empty() {
        return Ok(0);
    }
    let count = claimed.len();
    let verdicts = checks::check_batch(
        &ctx.db,
        &claimed,
        facts,
        &ctx.caps,
        &ctx.quiet,
        crate::clock::now(),
    )
    .await?;
    let mut to_send = Vec::with_capacity(count);
    let mut skipped: BTreeMap<&'static str, Vec<&str>> = BTreeMap::new();
    let mut deferred = Vec::new();
    for (m, v) in claimed.iter().zip(verdicts) {
        match v {
            Verdict::Send { to } => to_send.push((m, to)),
            Verdict::Skip(reason) => skipped
                .entry(reason.as_str())
                .or_default()
                .push(m.id.as_str()),
            Verdict::Defer(until) => deferred.push((m.id.as_str(), until)),
        }
    }
    if !skipped.is_empty() || !deferred.is_empty() {
        record_checks(ctx, &skipped, &deferred).await?;
    }
    if to_send.is_empty() {
        return Ok(count);
    }

    let outgoing: Vec<(usize, OutgoingMessage)> = to_send
        .iter()
        .enumerate()
        .map(|(i, (m, to))| {
            let content = serde_json::from_str(&m.payload).unwrap_or(serde_json::Value::Null);
            (
                i,
                OutgoingMessage {
                    id: m.id.clone(),
                    channel: m.channel,
                    kind: m.kind,
                    to: to.clone(),
                    content,
                },
            )
        })
        .collect();
    let outcomes = send_all(ctx, provider, outgoing).await?;
    let outcomes: Vec<(&Claimed, SendOutcome)> = outcomes
        .into_iter()
        .map(|(i, o)| (to_send[i].0, o))
        .collect();
    record_outcomes(ctx, provider.as_ref(), outcomes).await?;
    Ok(count)
}

/// Calls the provider in batches of its size, under its rate limit (and
/// per-recipient pacing), with up to `concurrency` requests in flight.
async fn send_all(
    ctx: &Context,
    provider: &Arc<dyn Provider>,
    outgoing: Vec<(usize, OutgoingMessage)>,
) -> anyhow::Result<Vec<(usize, SendOutcome)>> {
    let max_batch = ctx.max_batch(provider.as_ref());
    let rate = ctx
        .rate_of(provider.as_ref())
        .map(|r| r * ctx.settings.rate_headroom);
    let pacing = provider.limits().per_recipient_interval;
    let chunks: Vec<Vec<(usize, OutgoingMessage)>> = {
        let mut chunks = Vec::new();
        let mut current = Vec::with_capacity(max_batch);
        for item in outgoing {
            current.push(item);
            if current.len() == max_batch {
                chunks.push(std::mem::take(&mut current));
            }
        }
        if !current.is_empty() {
            chunks.push(current);
        }
        chunks
    };
    let key = provider.name().to_string();
    let results: Vec<anyhow::Result<Vec<(usize, SendOutcome)>>> = futures::stream::iter(chunks)
        .map(|chunk| {
            let key = key.clone();
            async move {
                if let Some(rate) = rate {
                    ctx.limiter.acquire(&key, rate).await?;
                }
                let messages: Vec<OutgoingMessage> = chunk.iter().map(|(_, m)| m.clone()).collect();
                let dedupes_this_request = provider.takes_idempotency_key()
                    && (messages.len() == 1 || provider.batch_key_per_message());
                if !dedupes_this_request {
                    if !mark_called(ctx, &messages).await? {
                        // Our lease was taken over: the messages are no longer ours to send.
                        return Ok(Vec::new());
                    }
                    // The commit can stall (SQLite's write lock, an fsync),
                    // and a request that leaves late lands beside the next
                    // slots' requests: 13 in one second at 10/s, measured.
                    // A second schedule at the same rate spaces the moments
                    // requests actually leave. The first one still plans
                    // the work, so this wait is short, and only a crash
                    // inside it leaves a message ambiguous that was not sent.
                    if let Some(rate) = rate {
                        ctx.limiter.acquire(&departure_key(&key), rate).await?;
                    }
                }
                // Per-recipient pacing is the last wait before the request
                // leaves: taken earlier, the waits after it (the rate slot,
                // the commit, the departure schedule) differed between two
                // messages to one person, and they reached WhatsApp 5.5 s
                // apart under its 6-s pair limit. Two schedules per person:
                // `:to:` orders the requests (a slot `interval` apart), and
                // `:answered:` starts `interval` after the provider answered
                // the previous one, which it received before answering, so
                // a slow first request (a connection being opened) cannot
                // bring the next one closer than `interval` at its end. A
                // request that waited takes a fresh departure slot, so the
                // rate still holds. (A crash inside that wait leaves the
                // message ambiguous, as any crash after `called_at`; with
                // recipients interleaved it is rare.)
                let paced = |m: &OutgoingMessage| {
                    (
                        format!("{key}:to:{}", m.to),
                        format!("{key}:answered:{}", m.to),
                    )
                };
                if let Some(interval) = pacing {
                    let mut wait = Duration::ZERO;
                    for (_, m) in &chunk {
                        let (slot, answered) = paced(m);
                        let reserved = ctx
                            .limiter
                            .reserve(&slot, 1.0 / interval.as_secs_f64())
                            .await?;
                        if !reserved.is_zero() {
                            tokio::time::sleep(reserved).await;
                        }
                        wait = wait.max(reserved);
                        let after_answer = ctx.limiter.pending_wait(&answered).await?;
                        if !after_answer.is_zero() {
                            tokio::time::sleep(after_answer).await;
                        }
                        wait = wait.max(after_answer);
                    }
                    if !wait.is_zero()
                        && let Some(rate) = rate
                        && !dedupes_this_request
                    {
                        ctx.limiter.acquire(&departure_key(&key), rate).await?;
                    }
                }
                let mut outcomes = provider.send(&messages).await;
                if let Some(interval) = pacing {
                    for m in &messages {
                        ctx.limiter.penalize(&paced(m).1, interval).await?;
                    }
                }
                // A provider answering with the wrong number of outcomes is a
                // bug; treat the unanswered ones as retryable, never as sent.
                outcomes.resize(
                    messages.len(),
                    SendOutcome::Retryable {
                        error: "provider gave no outcome".into(),
                        retry_after: None,
                    },
                );
                let limited = outcomes.iter().find_map(|o| match o {
                    SendOutcome::RateLimited { retry_after } => Some(*retry_after),
                    _ => None,
                });
                if let Some(wait) = limited.or_else(|| provider.take_pushback()) {
                    ctx.limiter.penalize(&key, wait).await?;
                    ctx.limiter.penalize(&departure_key(&key), wait).await?;
                }
                Ok(chunk.into_iter().map(|(i, _)| i).zip(outcomes).collect())
            }
        })
        .buffer_unordered(ctx.settings.concurrency.max(1))
        .collect()
        .await;
    let mut all = Vec::new();
    for r in results {
        all.extend(r?);
    }
    Ok(all)
}

/// The limiter key that spaces the requests of a key-less provider at the
/// moment they leave (after `called_at` is committed).
fn departure_key(key: &str) -> String {
    format!("{key}:departure")
}

/// Marks a chunk as handed to a key-less provider, committed before the
/// call: a crash from here on leaves the messages ambiguous, and one before
/// it leaves them safely re-sendable. False if any is no longer ours.
async fn mark_called(ctx: &Context, messages: &[OutgoingMessage]) -> anyhow::Result<bool> {
    let mut values = vec![
        Value::from(crate::clock::now()),
        Value::from(ctx.worker_id.clone()),
    ];
    values.extend(messages.iter().map(|m| Value::from(m.id.clone())));
    let sql = format!(
        "UPDATE messages SET called_at = $1 WHERE state = {sending} AND locked_by = $2 AND id IN ({})",
        crate::db::placeholders(3, messages.len()),
        sending = MessageState::Sending.sql(),
    );
    let r = ctx
        .db
        .execute_raw(Statement::from_sql_and_values(
            ctx.db.get_database_backend(),
            sql,
            values,
        ))
        .await?;
    Ok(r.rows_affected() == messages.len() as u64)
}

async fn record_checks(
    ctx: &Context,
    skipped: &BTreeMap<&'static str, Vec<&str>>,
    deferred: &[(&str, DateTime<Utc>)],
) -> anyhow::Result<()> {
    let now = crate::clock::now();
    let txn = ctx.db.begin().await?;
    let backend = txn.get_database_backend();
    for (reason, ids) in skipped {
        for chunk in ids.chunks(400) {
            let mut values = vec![
                Value::from(*reason),
                Value::from(now),
                Value::from(ctx.worker_id.clone()),
            ];
            values.extend(chunk.iter().map(|i| Value::from(i.to_string())));
            let n = chunk.len();
            txn.execute_raw(Statement::from_sql_and_values(
                backend,
                format!(
                    "UPDATE messages SET state = {skipped}, skip_reason = $1, updated_at = $2, locked_by = NULL \
                     WHERE state = {sending} AND locked_by = $3 AND id IN ({})",
                    crate::db::placeholders(4, n),
                    skipped = MessageState::Skipped.sql(),
                    sending = MessageState::Sending.sql(),
                ),
                values,
            ))
            .await?;
            let events: Vec<(&str, MessageState, String)> = chunk
                .iter()
                .map(|id| (*id, MessageState::Skipped, format!("skipped: {reason}")))
                .collect();
            ledger::record_events(&txn, &events, now).await?;
            metrics::counter!("dispatcher_skipped_total", "reason" => *reason).increment(n as u64);
        }
    }
    for (id, until) in deferred {
        // A deferral is not an attempt: give back the one the claim counted.
        txn.execute_raw(Statement::from_sql_and_values(
            backend,
            format!(
                "UPDATE messages SET state = {deferred}, next_attempt_at = $1, attempts = attempts - 1, \
                 updated_at = $2, locked_by = NULL WHERE id = $3 AND state = {sending} AND locked_by = $4",
                deferred = MessageState::Deferred.sql(),
                sending = MessageState::Sending.sql(),
            ),
            [
                Value::from(*until),
                Value::from(now),
                Value::from(id.to_string()),
                Value::from(ctx.worker_id.clone()),
            ],
        ))
        .await?;
        ledger::record_events(
            &txn,
            &[(
                id,
                MessageState::Deferred,
                format!("quiet hours in the recipient's time zone; due {until}"),
            )],
            now,
        )
        .await?;
    }
    metrics::counter!("dispatcher_deferred_total").increment(deferred.len() as u64);
    txn.commit().await?;
    Ok(())
}

async fn record_outcomes(
    ctx: &Context,
    provider: &dyn Provider,
    outcomes: Vec<(&Claimed, SendOutcome)>,
) -> anyhow::Result<()> {
    let now = crate::clock::now();
    let name = provider.name().to_string();
    let policy = ctx.retry_policy();
    let me = ctx.worker_id.clone();
    let pg = crate::db::is_postgres(&ctx.db);
    let sent: Vec<(&str, Option<String>)> = outcomes
        .iter()
        .filter_map(|(m, o)| match o {
            SendOutcome::Accepted {
                provider_message_id,
            } => Some((m.id.as_str(), provider_message_id.clone())),
            _ => None,
        })
        .collect();
    if pg && sent.len() == outcomes.len() {
        // The common case is one autocommitted statement: no transaction
        // to open, nothing else to write.
        mark_sent_postgres(&ctx.db, &sent, &name, &me, now).await?;
        metrics::counter!("dispatcher_sent_total", "provider" => name).increment(sent.len() as u64);
        return Ok(());
    }
    let txn = ctx.db.begin().await?;
    let backend = txn.get_database_backend();
    let mut attention = Vec::new();
    let mut events: Vec<(&str, MessageState, String)> = Vec::new();
    let (mut failed, mut retried, mut limited) = (0u64, 0u64, 0u64);
    for (m, outcome) in &outcomes {
        let guard_values = |extra: Vec<Value>| {
            let mut v = extra;
            v.push(Value::from(m.id.clone()));
            v.push(Value::from(me.clone()));
            v
        };
        match outcome {
            // Recorded together below.
            SendOutcome::Accepted { .. } => {}
            SendOutcome::RateLimited { retry_after } => {
                limited += 1;
                let due = now + chrono::Duration::from_std(*retry_after).unwrap_or_default();
                txn.execute_raw(Statement::from_sql_and_values(
                    backend,
                    format!(
                        "UPDATE messages SET state = {queued}, next_attempt_at = $1, attempts = attempts - 1, \
                         updated_at = $2, locked_by = NULL WHERE id = $3 AND state = {sending} AND locked_by = $4",
                        queued = MessageState::Queued.sql(),
                        sending = MessageState::Sending.sql(),
                    ),
                    guard_values(vec![Value::from(due), Value::from(now)]),
                ))
                .await?;
                events.push((
                    m.id.as_str(),
                    MessageState::Queued,
                    format!("rate limited by {name}; due {due}"),
                ));
            }
            SendOutcome::Retryable { error, retry_after }
                if !policy.exhausted(m.attempts as u32) =>
            {
                retried += 1;
                let delay = policy.delay(m.attempts as u32, *retry_after);
                let due = now + chrono::Duration::from_std(delay).unwrap_or_default();
                txn.execute_raw(Statement::from_sql_and_values(
                    backend,
                    format!(
                        "UPDATE messages SET state = {queued}, next_attempt_at = $1, last_error = $2, \
                         updated_at = $3, locked_by = NULL WHERE id = $4 AND state = {sending} AND locked_by = $5",
                        queued = MessageState::Queued.sql(),
                        sending = MessageState::Sending.sql(),
                    ),
                    guard_values(vec![Value::from(due), Value::from(error.clone()), Value::from(now)]),
                ))
                .await?;
                events.push((
                    m.id.as_str(),
                    MessageState::Queued,
                    format!("attempt {} failed ({error}); retrying at {due}", m.attempts),
                ));
            }
            SendOutcome::Retryable { error, .. }
            | SendOutcome::Permanent { error }
            | SendOutcome::Refused { error, .. } => {
                failed += 1;
                let why = match outcome {
                    SendOutcome::Retryable { .. } => {
                        format!("gave up after {} attempts: {error}", m.attempts)
                    }
                    _ => format!("permanent error: {error}"),
                };
                txn.execute_raw(Statement::from_sql_and_values(
                    backend,
                    format!(
                        "UPDATE messages SET state = {failed}, last_error = $1, updated_at = $2, locked_by = NULL \
                         WHERE id = $3 AND state = {sending} AND locked_by = $4",
                        failed = MessageState::Failed.sql(),
                        sending = MessageState::Sending.sql(),
                    ),
                    guard_values(vec![Value::from(why.clone()), Value::from(now)]),
                ))
                .await?;
                if let SendOutcome::Refused { problem, .. } = outcome {
                    // In the transaction that fails the message: the contact
                    // is never left half-updated by a crash. After the
                    // UPDATE, so that on SQLite the transaction holds the
                    // write lock before `record` reads (a read first would
                    // take a snapshot a concurrent commit can invalidate:
                    // SQLITE_BUSY_SNAPSHOT, and the message stuck in
                    // `sending` until its lease ran out).
                    super::recipient::record(&txn, m, &name, *problem, error, now).await?;
                }
                tracing::warn!(message = %m.id, provider = %name, error = %why, "message failed");
                attention.push(super::alerts::Attention::Failed {
                    message_id: m.id.clone(),
                    error: why.clone(),
                });
                events.push((m.id.as_str(), MessageState::Failed, why));
            }
        }
    }
    if pg {
        if !sent.is_empty() {
            mark_sent_postgres(&txn, &sent, &name, &me, now).await?;
        }
    } else {
        for chunk in sent.chunks(300) {
            let mut values = vec![Value::from(now), Value::from(me.clone())];
            let rows: Vec<String> = chunk
                .iter()
                .enumerate()
                .map(|(i, (id, pid))| {
                    values.push(Value::from(id.to_string()));
                    values.push(Value::from(pid.clone().unwrap_or_default()));
                    format!("(${}, ${})", 3 + i * 2, 4 + i * 2)
                })
                .collect();
            txn.execute_raw(Statement::from_sql_and_values(
                backend,
                format!(
                    "UPDATE messages SET state = {sent}, sent_at = $1, updated_at = $1, locked_by = NULL, \
                     provider_message_id = v.column2 FROM (VALUES {}) AS v \
                     WHERE messages.id = v.column1 AND messages.state = {sending} AND messages.locked_by = $2",
                    rows.join(","),
                    sent = MessageState::Sent.sql(),
                    sending = MessageState::Sending.sql(),
                ),
                values,
            ))
            .await?;
            events.extend(
                chunk
                    .iter()
                    .map(|(id, _)| (*id, MessageState::Sent, format!("accepted by {name}"))),
            );
        }
    }
    ledger::record_events(&txn, &events, now).await?;
    txn.commit().await?;
    if !attention.is_empty() {
        ctx.alerts.attention(attention).await;
    }
    metrics::counter!("dispatcher_sent_total", "provider" => name.clone())
        .increment(sent.len() as u64);
    metrics::counter!("dispatcher_failed_total", "provider" => name.clone()).increment(failed);
    metrics::counter!("dispatcher_retried_total", "provider" => name.clone()).increment(retried);
    metrics::counter!("dispatcher_rate_limited_total", "provider" => name).increment(limited);
    Ok(())
}

/// Records accepted messages as sent, with their events, in one statement
/// with array parameters (constant SQL text, planned once whatever the
/// batch size). Guarded like every outcome: only this worker's `sending` rows.
async fn mark_sent_postgres(
    conn: &impl ConnectionTrait,
    sent: &[(&str, Option<String>)],
    provider: &str,
    me: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let ids: Vec<String> = sent.iter().map(|(id, _)| id.to_string()).collect();
    let pids: Vec<String> = sent
        .iter()
        .map(|(_, p)| p.clone().unwrap_or_default())
        .collect();
    conn.execute_raw(Statement::from_sql_and_values(
        conn.get_database_backend(),
        format!(
            "WITH sent AS (UPDATE messages SET state = {sent}, sent_at = $1, updated_at = $1, locked_by = NULL, \
               provider_message_id = v.pid FROM UNNEST($3::text[], $4::text[]) AS v(id, pid) \
               WHERE messages.id = v.id AND messages.state = {sending} AND messages.locked_by = $2 \
               RETURNING messages.id) \
             INSERT INTO message_events (message_id, state, at, detail) \
             SELECT id, {sent}, $1, 'accepted by ' || $5::text FROM sent",
            sent = MessageState::Sent.sql(),
            sending = MessageState::Sending.sql(),
        ),
        [
            Value::from(now),
            Value::from(me.to_string()),
            Value::from(ids),
            Value::from(pids),
            Value::from(provider.to_string()),
        ],
    ))
    .await?;
    Ok(())
}
