//! The capture sinks: in sandbox mode, one provider per channel that
//! "sends" by writing the message into the outbox (`sandbox_outbox`)
//! instead of a network. Everything before the provider is the real thing:
//! the ledger, consent and suppression checks, quiet hours, caps, the
//! limiter and retries.
//!
//! Invariants:
//! - A sink takes the ledger id as its idempotency key, per message: the
//!   row's primary key is the message id and a repeat is `ON CONFLICT DO
//!   NOTHING`, so a retry after a crash captures nothing twice, exactly as
//!   an idempotent provider would deduplicate it.
//! - It declares limits like the providers it stands in for (a batch
//!   endpoint for email, one message per request elsewhere) so the
//!   dispatcher's batching and pacing are exercised, not bypassed.
//! - Its provider message id is `sbx-<ledger id>`; the feedback webhooks
//!   ([`super::feedback`]) name messages by it, as providers do.

use std::sync::Arc;

use anyhow::Context;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, FromQueryResult, Statement, Value};
use serde::Serialize;

use super::workspace::Workspace;
use crate::{
    domain::{Channel, sms_segments},
    providers::{Limits, OutgoingMessage, Provider, SendOutcome},
};

/// The sink's name for a channel: its `messages.provider`, its webhook route.
pub const fn sink_name(channel: Channel) -> &'static str {
    match channel {
        Channel::Email => "sandbox-email",
        Channel::Sms => "sandbox-sms",
        Channel::Whatsapp => "sandbox-whatsapp",
        Channel::Instagram => "sandbox-instagram",
    }
}

/// The provider message id a sink gives a ledger message.
pub fn provider_message_id(ledger_id: &str) -> String {
    format!("sbx-{ledger_id}")
}

/// A capture sink for one channel.
pub struct CaptureSink {
    channel: Channel,
    db: DatabaseConnection,
    workspace: Arc<Workspace>,
}

impl CaptureSink {
    pub fn new(channel: Channel, db: DatabaseConnection, workspace: Arc<Workspace>) -> Self {
        Self {
            channel,
            db,
            workspace,
        }
    }

    async fn capture(&self, m: &OutgoingMessage) -> anyhow::Result<()> {
        let db = &self.db;
        db.execute_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            "INSERT INTO sandbox_outbox \
             (message_id, channel, provider, kind, recipient, content, captured_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (message_id) DO NOTHING",
            [
                Value::from(m.id.as_str()),
                Value::from(m.channel.as_str()),
                Value::from(sink_name(self.channel)),
                Value::from(m.kind.as_str()),
                Value::from(m.to.as_str()),
                Value::from(m.content.to_string()),
                Value::from(crate::clock::now()),
            ],
        ))
        .await
        .context("writing to the sandbox outbox")?;
        Ok(())
    }
}

#[async_trait]
impl Provider for CaptureSink {
    fn name(&self) -> &str {
        sink_name(self.channel)
    }

    fn label(&self) -> &str {
        "the sandbox outbox"
    }

    fn channel(&self) -> Channel {
        self.channel
    }

    fn limits(&self) -> Limits {
        Limits {
            requests_per_second: Some(10.0),
            max_batch: if self.channel == Channel::Email {
                100
            } else {
                1
            },
            per_recipient_interval: None,
        }
    }

    fn takes_idempotency_key(&self) -> bool {
        true
    }

    async fn send(&self, batch: &[OutgoingMessage]) -> Vec<SendOutcome> {
        let mut outcomes = Vec::with_capacity(batch.len());
        for m in batch {
            outcomes.push(match self.capture(m).await {
                Ok(()) => SendOutcome::Accepted {
                    provider_message_id: Some(provider_message_id(&m.id)),
                },
                // The database is the sink's "network": a failure is one
                // the dispatcher should retry.
                Err(e) => SendOutcome::Retryable {
                    error: format!("{e:#}"),
                    retry_after: None,
                },
            });
        }
        self.workspace.touch();
        outcomes
    }

    fn without_webhook(&self) -> &'static str {
        "the sandbox page simulates its delivery reports"
    }
}

/// One captured message, as the page shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Capture {
    pub id: String,
    pub message_id: String,
    pub channel: String,
    pub provider: String,
    pub kind: String,
    pub to: String,
    pub captured_at: DateTime<Utc>,
    pub subject: Option<String>,
    pub from: Option<String>,
    pub reply_to: Option<String>,
    pub headers: serde_json::Map<String, serde_json::Value>,
    pub text: Option<String>,
    pub html_url: Option<String>,
    pub segments: Option<usize>,
    pub encoding: Option<crate::domain::SmsEncoding>,
    /// The ledger's state of the message now.
    pub state: String,
    pub events: Vec<CaptureEvent>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CaptureEvent {
    pub at: DateTime<Utc>,
    #[serde(rename = "type")]
    pub kind: String,
    pub detail: Option<String>,
}

/// A capture with its message's ledger state; callers add the filter.
const CAPTURES: &str = "SELECT o.message_id, o.channel, o.provider, o.kind, o.recipient, \
     o.content, o.captured_at, m.state \
     FROM sandbox_outbox o LEFT JOIN messages m ON m.id = o.message_id";

#[derive(FromQueryResult)]
struct Row {
    message_id: String,
    channel: String,
    provider: String,
    kind: String,
    recipient: String,
    content: String,
    captured_at: DateTime<Utc>,
    state: Option<String>,
}

#[derive(FromQueryResult)]
struct EventRow {
    message_id: String,
    state: String,
    at: DateTime<Utc>,
    detail: Option<String>,
}

/// The newest `limit` captures, newest first, with their ledger events.
pub async fn list(db: &DatabaseConnection, limit: u64) -> anyhow::Result<Vec<Capture>> {
    let backend = db.get_database_backend();
    let rows = Row::find_by_statement(Statement::from_sql_and_values(
        backend,
        format!("{CAPTURES} ORDER BY o.captured_at DESC, o.message_id DESC LIMIT $1"),
        [Value::from(limit as i64)],
    ))
    .all(db)
    .await
    .context("reading the sandbox outbox")?;
    let ids: Vec<Value> = rows
        .iter()
        .map(|r| Value::from(r.message_id.as_str()))
        .collect();
    let mut events: std::collections::HashMap<String, Vec<CaptureEvent>> = Default::default();
    if !ids.is_empty() {
        let sql = format!(
            "SELECT message_id, state, at, detail FROM message_events \
             WHERE message_id IN ({}) ORDER BY id",
            crate::db::placeholders(1, ids.len())
        );
        for e in EventRow::find_by_statement(Statement::from_sql_and_values(backend, sql, ids))
            .all(db)
            .await
            .context("reading the outbox's ledger events")?
        {
            events.entry(e.message_id).or_default().push(CaptureEvent {
                at: e.at,
                kind: e.state,
                detail: e.detail,
            });
        }
    }
    Ok(rows
        .into_iter()
        .map(|r| {
            let events = events.remove(&r.message_id).unwrap_or_default();
            to_capture(r, events)
        })
        .collect())
}

/// One capture's email HTML, if it has one.
pub async fn html(db: &DatabaseConnection, message_id: &str) -> anyhow::Result<Option<String>> {
    Ok(find(db, message_id)
        .await?
        .and_then(|(_, content)| content["html"].as_str().map(str::to_string)))
}

/// One capture's channel and content.
pub async fn find(
    db: &DatabaseConnection,
    message_id: &str,
) -> anyhow::Result<Option<(Capture, serde_json::Value)>> {
    let row = Row::find_by_statement(Statement::from_sql_and_values(
        db.get_database_backend(),
        format!("{CAPTURES} WHERE o.message_id = $1"),
        [Value::from(message_id)],
    ))
    .one(db)
    .await
    .context("reading a sandbox capture")?;
    Ok(row.map(|r| {
        let content = serde_json::from_str(&r.content).unwrap_or(serde_json::Value::Null);
        (to_capture(r, Vec::new()), content)
    }))
}

/// How many messages the outbox holds.
pub async fn count(db: &DatabaseConnection) -> anyhow::Result<i64> {
    crate::db::count(
        db,
        "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM sandbox_outbox",
        vec![],
    )
    .await
}

fn to_capture(r: Row, events: Vec<CaptureEvent>) -> Capture {
    let content: serde_json::Value =
        serde_json::from_str(&r.content).unwrap_or(serde_json::Value::Null);
    let text_of = |k: &str| content[k].as_str().map(str::to_string);
    let text = text_of("text").or_else(|| text_of("body"));
    let is_email = r.channel == Channel::Email.as_str();
    let segments = (!is_email).then(|| sms_segments(text.as_deref().unwrap_or_default()));
    Capture {
        id: r.message_id.clone(),
        html_url: (is_email && content["html"].is_string())
            .then(|| format!("/sandbox/outbox/{}/html", r.message_id)),
        message_id: r.message_id,
        channel: r.channel,
        provider: r.provider,
        kind: r.kind,
        to: r.recipient,
        captured_at: r.captured_at,
        subject: text_of("subject"),
        from: text_of("from"),
        reply_to: text_of("reply_to"),
        headers: content["headers"].as_object().cloned().unwrap_or_default(),
        text,
        segments: segments.map(|s| s.count),
        encoding: segments.map(|s| s.encoding),
        state: r.state.unwrap_or_else(|| "unknown".into()),
        events,
    }
}
