//! Applies providers' delivery reports ([`DeliveryReport`]) to the ledger:
//! the one place a webhook moves a message, whichever provider sent it.
//!
//! In one transaction: find our message (by the ledger id the provider
//! echoes, else by its own message id), insert the event into
//! `provider_events` keyed by (provider, event id) with `ON CONFLICT DO
//! NOTHING` (a redelivery stops here, answered 200), apply its effects,
//! commit. Slack notices are returned, to be posted after the commit.
//!
//! Effects (guarded moves; a report that cannot move the state is recorded
//! in `message_events` with the state unchanged, so order never matters):
//! - `Sent`: recorded only (the dispatcher marked the message sent), but it
//!   settles an `ambiguous` message as sent — as does any report only a
//!   provider that accepted the message would send.
//! - `Delivered`: `sent → delivered`.
//! - `Opened` / `Clicked`: recorded, counted. An open or click before
//!   `delivered` implies delivery (the mail reached a mailbox), so it moves
//!   `sent → delivered`; the late `delivered` then finds nothing to move.
//! - `Bounced` permanent: `sent|delivered → bounced`, the address
//!   suppressed (`hard_bounce`); not permanent: recorded only (the provider
//!   keeps trying and reports a final bounce later).
//! - `Complained`: `sent|delivered|bounced → complained`, the address
//!   suppressed (`complaint`).
//! - `Delayed`: recorded.
//! - `Failed`: `sent → failed` with the provider's reason; after
//!   `delivered` it is a contradiction and is recorded only.
//! - `Suppressed`: the provider refused an address on its own list:
//!   `sent → failed`, and the address is suppressed here too.
//! - `Undelivered`: the network did not deliver it (SMS carrier errors):
//!   `sent → failed`, or `sent|delivered → bounced` when it counts as a
//!   bounce (the circuit breaker runs, the address is not suppressed); with
//!   `alert`, a notice goes to the approvals channel (carrier filtering).
//! - `Other`: stored, 200.
//!
//! A hard bounce or complaint that moved a campaign message yields a notice
//! for the campaign's thread and runs the circuit breaker
//! ([`breaker::check`]). A report for a message that is still `sending` (the
//! provider's report beat the worker's own record of the call) is refused
//! with [`WebhookError::NotYet`] and stores nothing: the provider retries
//! within seconds, when the message is `sent`. A report for a message we do
//! not know is stored, and answered 200.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, FromQueryResult, Statement, Value};

use crate::{
    dispatcher::{
        breaker::{self, Tripped},
        ledger,
    },
    domain::MessageState,
    providers::webhook::{
        DeliveryReport, InboundReport, ReportStatus, SuppressedBecause, WebhookError,
        WebhookReceiver,
    },
    slack::campaign_alerts::{Notice, NoticeKind},
};

/// What one report did.
#[derive(Debug, Default)]
pub struct Applied {
    /// Already recorded: nothing was done.
    pub duplicate: bool,
    /// It concerned one of our messages.
    pub matched: bool,
    /// Notices for campaign threads, to post after the commit.
    pub notices: Vec<Notice>,
    /// The campaign's circuit breaker tripped.
    pub tripped: Option<Tripped>,
}

#[derive(Debug, FromQueryResult)]
struct Msg {
    id: String,
    state: String,
    campaign_id: Option<i64>,
    channel: String,
    address: Option<String>,
}

#[derive(Debug, FromQueryResult)]
struct CampaignThread {
    name: String,
    slack_channel: Option<String>,
    slack_ts: Option<String>,
}

/// Finds (and on PostgreSQL locks) the message a report is about: by our
/// ledger id when the provider echoes it, else by the provider's id.
async fn find_message(
    conn: &impl ConnectionTrait,
    report: &DeliveryReport,
) -> anyhow::Result<Option<Msg>> {
    let lock = if crate::db::is_postgres(conn) {
        " FOR UPDATE OF m"
    } else {
        ""
    };
    let select = "SELECT m.id, m.state, m.campaign_id, m.channel, COALESCE(m.address, c.email) AS address \
                  FROM messages m LEFT JOIN contacts c ON c.id = m.contact_id WHERE";
    let one = |sql: String, key: String| {
        Msg::find_by_statement(Statement::from_sql_and_values(
            conn.get_database_backend(),
            sql,
            [Value::from(key)],
        ))
        .one(conn)
    };
    if let Some(id) = &report.ledger_id
        && let Some(m) = one(format!("{select} m.id = $1{lock}"), id.clone()).await?
    {
        return Ok(Some(m));
    }
    match &report.provider_message_id {
        Some(pid) => Ok(one(
            format!("{select} m.provider_message_id = $1 LIMIT 1{lock}"),
            pid.clone(),
        )
        .await?),
        None => Ok(None),
    }
}

/// Records the event; false when it was already recorded.
async fn insert_event(
    conn: &impl ConnectionTrait,
    provider: &str,
    event_id: &str,
    message_id: Option<&str>,
    kind: &str,
    payload: &[u8],
    now: DateTime<Utc>,
) -> anyhow::Result<bool> {
    #[derive(FromQueryResult)]
    struct Id {
        #[allow(dead_code)]
        id: i64,
    }
    let row = Id::find_by_statement(Statement::from_sql_and_values(
        conn.get_database_backend(),
        "INSERT INTO provider_events (provider, event_id, message_id, kind, payload, received_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (provider, event_id) DO NOTHING RETURNING id",
        [
            Value::from(provider.to_string()),
            Value::from(event_id.to_string()),
            Value::from(message_id.map(str::to_string)),
            Value::from(kind.to_string()),
            Value::from(String::from_utf8_lossy(payload).into_owned()),
            Value::from(now),
        ],
    ))
    .one(conn)
    .await?;
    Ok(row.is_some())
}

/// Records an event about a message without moving it.
async fn note(
    conn: &impl ConnectionTrait,
    m: &Msg,
    current: MessageState,
    detail: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    ledger::record_events(conn, &[(m.id.as_str(), current, detail.to_string())], now).await
}

/// Moves `m` to `to` when the ledger allows it from where it is; otherwise
/// records the report with the state unchanged. Returns whether it moved.
async fn advance(
    conn: &impl ConnectionTrait,
    m: &Msg,
    current: MessageState,
    to: MessageState,
    detail: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<bool> {
    if current.can_move_to(to) {
        let moved = ledger::set_state(conn, &[m.id.as_str()], current, to, detail, now).await?;
        if !moved.is_empty() {
            return Ok(true);
        }
    }
    note(
        conn,
        m,
        current,
        &format!("{detail} (reported while {current}; state unchanged)"),
        now,
    )
    .await?;
    Ok(false)
}

/// Applies one verified report in one transaction: records it under its
/// event id (a redelivery stops there), finds the message, moves it
/// forward, suppresses the address where the report says so, and collects
/// the Slack notices and breaker trips to post after the commit.
pub async fn apply(
    db: &DatabaseConnection,
    receiver: &dyn WebhookReceiver,
    report: &DeliveryReport,
    payload: &[u8],
) -> Result<Applied, WebhookError> {
    let now = crate::clock::now();
    let txn = crate::db::begin_write(db).await?;
    let message = find_message(&txn, report).await?;
    let inserted = insert_event(
        &txn,
        receiver.provider(),
        &report.event_id,
        message.as_ref().map(|m| m.id.as_str()),
        &report.type_name,
        payload,
        now,
    )
    .await?;
    if !inserted {
        txn.rollback().await.map_err(anyhow::Error::from)?;
        return Ok(Applied {
            duplicate: true,
            ..Default::default()
        });
    }
    let Some(m) = message else {
        txn.commit().await.map_err(anyhow::Error::from)?;
        tracing::info!(
            provider = receiver.provider(),
            event = %report.type_name,
            "provider event for a message warmline does not know; stored"
        );
        return Ok(Applied::default());
    };
    let Some(current) = MessageState::parse(&m.state) else {
        txn.commit().await.map_err(anyhow::Error::from)?;
        return Ok(Applied {
            matched: true,
            ..Default::default()
        });
    };
    if current == MessageState::Sending && report.status.changes_state() {
        // Rolling back un-records the event, so the provider's retry applies it.
        txn.rollback().await.map_err(anyhow::Error::from)?;
        return Err(WebhookError::NotYet);
    }
    let label = receiver.label();
    let source = receiver.suppression_source();
    // A message left ambiguous by a crash (it may or may not have gone out)
    // is resolved by the provider's own report that it handled it: that
    // is evidence, not a guess, and it never sends anything again.
    let current = if current == MessageState::Ambiguous && report.status.is_evidence_of_sending() {
        let detail = format!("{label} reported this message: it was sent (resolves the ambiguity)");
        if advance(&txn, &m, current, MessageState::Sent, &detail, now).await? {
            MessageState::Sent
        } else {
            current
        }
    } else {
        current
    };
    let mut applied = Applied {
        matched: true,
        ..Default::default()
    };
    let address = m.address.clone().or_else(|| report.recipient.clone());
    let mut outcome: Option<(NoticeKind, Option<String>)> = None;
    // A bounce-like outcome with no notice still feeds the breaker.
    let mut breaker_due = false;
    match &report.status {
        ReportStatus::Sent | ReportStatus::Other => {}
        ReportStatus::Delivered => {
            advance(
                &txn,
                &m,
                current,
                MessageState::Delivered,
                MessageState::Delivered.as_str(),
                now,
            )
            .await?;
        }
        ReportStatus::Opened | ReportStatus::Clicked { .. } => {
            let what = if report.status == ReportStatus::Opened {
                "an open"
            } else {
                "a click"
            };
            let mut state = current;
            if current == MessageState::Sent
                && advance(
                    &txn,
                    &m,
                    current,
                    MessageState::Delivered,
                    &format!("delivered (inferred from {what})"),
                    now,
                )
                .await?
            {
                state = MessageState::Delivered;
            }
            let detail = match &report.status {
                ReportStatus::Clicked { link: Some(link) } => format!("clicked {link}"),
                ReportStatus::Clicked { link: None } => "clicked".to_string(),
                _ => "opened".to_string(),
            };
            note(&txn, &m, state, &detail, now).await?;
        }
        ReportStatus::Delayed => {
            let detail =
                format!("delivery delayed: the receiving server deferred it; {label} keeps trying");
            note(&txn, &m, current, &detail, now).await?;
        }
        ReportStatus::Bounced { permanent, detail } => {
            if *permanent {
                let moved = advance(
                    &txn,
                    &m,
                    current,
                    MessageState::Bounced,
                    &format!("hard bounce ({detail})"),
                    now,
                )
                .await?;
                if let Some(a) = &address {
                    ledger::suppress(&txn, &m.channel, a, "hard_bounce", source, now).await?;
                }
                if moved {
                    outcome = Some((NoticeKind::HardBounce, Some(detail.clone())));
                }
            } else {
                let detail = format!("soft bounce ({detail}); not suppressed");
                note(&txn, &m, current, &detail, now).await?;
            }
        }
        ReportStatus::Complained => {
            let moved = advance(
                &txn,
                &m,
                current,
                MessageState::Complained,
                "spam complaint",
                now,
            )
            .await?;
            if let Some(a) = &address {
                ledger::suppress(&txn, &m.channel, a, "complaint", source, now).await?;
            }
            if moved {
                outcome = Some((NoticeKind::Complaint, None));
            }
        }
        ReportStatus::Failed { reason } => {
            let detail = format!("{label} failed to send it: {reason}");
            advance(&txn, &m, current, MessageState::Failed, &detail, now).await?;
        }
        ReportStatus::Undelivered {
            detail,
            counts_as_bounce,
            alert,
        } => {
            let text = format!("{label} could not deliver it: {detail}");
            let to = if *counts_as_bounce {
                MessageState::Bounced
            } else {
                MessageState::Failed
            };
            let moved = advance(&txn, &m, current, to, &text, now).await?;
            if moved && *alert {
                outcome = Some((NoticeKind::CarrierFiltered, Some(detail.clone())));
            } else if moved && *counts_as_bounce {
                breaker_due = true;
            }
        }
        ReportStatus::Suppressed { reason, detail } => {
            let detail = format!("{label} suppressed it: {detail}");
            advance(&txn, &m, current, MessageState::Failed, &detail, now).await?;
            if let Some(a) = &address {
                let ours = match reason {
                    SuppressedBecause::Complaint => "complaint",
                    SuppressedBecause::HardBounce => "hard_bounce",
                    SuppressedBecause::Other => "provider_suppressed",
                };
                ledger::suppress(&txn, &m.channel, a, ours, source, now).await?;
            }
        }
    }
    let masked = |a: &str| {
        if m.channel == "email" {
            crate::domain::mask_email(a)
        } else {
            crate::domain::mask_phone(a)
        }
    };
    if let (Some((kind, diagnostic)), Some(campaign_id)) = (outcome, m.campaign_id) {
        let thread = CampaignThread::find_by_statement(Statement::from_sql_and_values(
            txn.get_database_backend(),
            "SELECT name, slack_channel, slack_ts FROM campaigns WHERE id = $1",
            [Value::from(campaign_id)],
        ))
        .one(&txn)
        .await
        .map_err(anyhow::Error::from)?;
        if let Some(thread) = thread {
            applied.notices.push(Notice {
                kind,
                campaign_name: thread.name,
                masked_address: address
                    .as_deref()
                    .map(masked)
                    .unwrap_or_else(|| "an unknown address".into()),
                diagnostic,
                // Carrier filtering concerns the sender, not one thread:
                // it goes to the approvals channel.
                slack_channel: thread
                    .slack_channel
                    .filter(|_| kind != NoticeKind::CarrierFiltered),
                slack_ts: thread
                    .slack_ts
                    .filter(|_| kind != NoticeKind::CarrierFiltered),
            });
        }
        applied.tripped = breaker::check(&txn, campaign_id, now).await?;
    } else if let (true, Some(campaign_id)) = (breaker_due, m.campaign_id) {
        applied.tripped = breaker::check(&txn, campaign_id, now).await?;
    }
    txn.commit().await.map_err(anyhow::Error::from)?;
    Ok(applied)
}

/// Receives one inbound message a webhook carried: records it in
/// `provider_events` under (provider, event id) and applies it with
/// `inbound::apply` in the same transaction, so a redelivery is applied
/// once; then posts it to Slack (`inbound::Applied::finish`). Returns the
/// text owed in the webhook's answer, if any.
pub async fn receive(
    app: &crate::state::App,
    receiver: &dyn WebhookReceiver,
    report: &InboundReport,
    payload: &[u8],
) -> Result<Option<String>, WebhookError> {
    use crate::inbound::{Inbound, InboundError, Reply};
    let now = crate::clock::now();
    let msg = Inbound::parse(
        report.channel.as_str(),
        &report.from,
        report.text.clone(),
        report.received_at,
    )
    .map_err(|e| WebhookError::Malformed(e.to_string()))?
    .replied_by(report.replies);
    let txn = crate::db::begin_write(&app.db).await?;
    let inserted = insert_event(
        &txn,
        receiver.provider(),
        &report.event_id,
        None,
        "inbound",
        payload,
        now,
    )
    .await?;
    if !inserted {
        txn.rollback().await.map_err(anyhow::Error::from)?;
        metrics::counter!("provider_events_duplicate_total", "provider" => receiver.provider())
            .increment(1);
        return Ok(None);
    }
    let applied = match crate::inbound::apply(&txn, app, &msg, now).await {
        Ok(a) => a,
        Err(e) => {
            txn.rollback().await.map_err(anyhow::Error::from)?;
            return Err(match e {
                InboundError::Invalid { message, .. } => WebhookError::Malformed(message),
                InboundError::Internal(e) => WebhookError::Unexpected(e),
            });
        }
    };
    txn.commit().await.map_err(anyhow::Error::from)?;
    metrics::counter!("provider_events_total", "provider" => receiver.provider(), "type" => "inbound")
        .increment(1);
    Ok(match applied.finish(app).reply {
        Reply::InResponse(text) => Some(text),
        _ => None,
    })
}
