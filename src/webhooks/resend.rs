//! `POST /webhooks/resend`: Resend's delivery reports, Svix-signed.
//!
//! Order of work, each step refusing before the next can leave a trace:
//! 1. read the raw body, at most [`MAX_BODY_BYTES`] (413);
//! 2. the signing secret `RESEND_WEBHOOK_SECRET` (`whsec_…`): unset or not
//!    base64 is **503**, logged once. 503 rather than 401 because the
//!    sender did nothing wrong: Resend retries non-2xx answers for about
//!    17 hours (immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h), so events
//!    sent while an operator is still setting the secret are delivered once
//!    it is set, and Resend's dashboard shows "service unavailable", which
//!    points at us, not at a forged request;
//! 3. the signature ([`svix::verify`], 5-minute tolerance): 401;
//! 4. the JSON envelope `{"type", "data"}`: 400 naming what is wrong;
//! 5. one transaction: find our message (the `warmline_message_id` tag, else
//!    `messages.provider_message_id = data.email_id`), insert the event into
//!    `provider_events` keyed by the `svix-id` (`ON CONFLICT DO NOTHING`: a
//!    redelivery stops here with 200), apply its effects, commit;
//! 6. Slack notices, spawned after the commit.
//!
//! Effects (guarded moves; an event that cannot move the state is recorded
//! in `message_events` with the state unchanged, so order never matters):
//! - `email.sent`: recorded only (the dispatcher marked the message sent).
//! - `email.delivered`: `sent → delivered`.
//! - `email.opened` / `email.clicked`: recorded, counted. An open or click
//!   before `delivered` implies delivery (the mail reached a mailbox), so it
//!   moves `sent → delivered`; the late `delivered` then finds nothing to
//!   move. This keeps delivery rates right when reports come out of order.
//! - `email.bounced`, `bounce.type` Permanent: `sent|delivered → bounced`,
//!   the address suppressed (`hard_bounce`); Transient or Undetermined:
//!   recorded only (Resend keeps trying and reports a final bounce later).
//! - `email.complained`: `sent|delivered|bounced → complained`, the address
//!   suppressed (`complaint`).
//! - `email.delivery_delayed`: recorded with the reason.
//! - `email.failed`: `sent → failed` with Resend's reason — the provider
//!   accepted the request but never sent it. After `delivered` it is a
//!   contradiction and is recorded only.
//! - `email.suppressed`: Resend refused to send to an address on its
//!   suppression list: `sent → failed`, and the address is suppressed here
//!   too, so warmline stops spending sends on it.
//! - other types (`email.received`, `contact.*`, `domain.*`): stored, 200.
//!
//! A hard bounce or complaint that moved a campaign message posts a notice in
//! the campaign's thread and runs the circuit breaker ([`breaker::check`]).
//! An event for a message that is still `sending` (Resend's report beat the
//! worker's own record of the call) is refused with 503 and stores nothing:
//! Resend retries within seconds, when the message is `sent`.
//! An event for a message we do not know is stored, and answered 200.

use std::sync::atomic::{AtomicBool, Ordering};

use axum::{
    Json,
    body::Body,
    extract::State,
    http::{HeaderMap, header::CONTENT_LENGTH},
};
use chrono::{DateTime, Utc};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use sea_orm::{ConnectionTrait, DatabaseConnection, FromQueryResult, Statement, Value};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::json;

use super::{MAX_BODY_BYTES, WebhookError, svix};
use crate::{
    dispatcher::{
        breaker::{self, Tripped},
        ledger,
    },
    domain::MessageState,
    slack::campaign_alerts::{self, Notice, NoticeKind},
    state::App,
};

/// The provider name in `provider_events` and `[providers.resend]`.
pub const PROVIDER: &str = "resend";
/// The tag the Resend provider puts on every email: our ledger id.
pub const MESSAGE_TAG: &str = crate::providers::resend::MESSAGE_ID_TAG;
/// `suppressions.source` of what these webhooks suppress.
pub const SUPPRESSION_SOURCE: &str = "resend_webhook";

static WARNED_UNCONFIGURED: AtomicBool = AtomicBool::new(false);

/// `POST /webhooks/resend`.
pub async fn handler(
    State(app): State<App>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<serde_json::Value>, WebhookError> {
    let bytes = read_body(&headers, body).await?;
    let secret = secret(&app)?;
    let signed = svix::SignedHeaders::from_headers(&headers)?;
    let event_id = svix::verify(&secret, &signed, &bytes, Utc::now().timestamp())?.to_string();
    let event = parse(&bytes)?;
    let applied = apply(&app.db, &event_id, &event, &bytes).await?;
    if applied.duplicate {
        metrics::counter!("email_events_duplicate_total").increment(1);
        return Ok(Json(json!({"ok": true, "duplicate": true})));
    }
    metrics::counter!("email_events_total", "type" => event.kind.label()).increment(1);
    if !applied.notices.is_empty() || applied.tripped.is_some() {
        let app2 = app.clone();
        let Applied {
            notices, tripped, ..
        } = applied;
        app.spawn("post campaign alerts from a Resend webhook", async move {
            for notice in &notices {
                if let Err(e) = campaign_alerts::post_notice(&app2, notice).await {
                    tracing::error!(error = format!("{e:#}"), "cannot post a campaign notice");
                }
            }
            if let Some(t) = tripped {
                campaign_alerts::post_breaker_alert(&app2, &t).await?;
            }
            Ok(())
        });
        return Ok(Json(json!({"ok": true, "matched": true})));
    }
    Ok(Json(json!({"ok": true, "matched": applied.matched})))
}

async fn read_body(headers: &HeaderMap, body: Body) -> Result<axum::body::Bytes, WebhookError> {
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES) {
        return Err(WebhookError::TooLarge(MAX_BODY_BYTES));
    }
    match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<LengthLimitError>() => Err(WebhookError::TooLarge(MAX_BODY_BYTES)),
        Err(_) => Err(WebhookError::Malformed(
            "could not read the request body".into(),
        )),
    }
}

fn secret(app: &App) -> Result<svix::Secret, WebhookError> {
    let configured = app
        .settings
        .providers
        .get(PROVIDER)
        .and_then(|p| p.webhook_secret.as_ref());
    let result = match configured {
        None => Err("RESEND_WEBHOOK_SECRET is not set"),
        Some(s) => svix::Secret::parse(s.expose_secret())
            .map_err(|_| "RESEND_WEBHOOK_SECRET is not `whsec_` followed by base64"),
    };
    result.map_err(|problem| {
        // Once per process: Resend retries, and every retry would repeat it.
        if !WARNED_UNCONFIGURED.swap(true, Ordering::Relaxed) {
            tracing::error!(
                "Resend webhooks are refused with 503: {problem} (copy the signing secret from Resend's webhook settings)"
            );
        }
        WebhookError::NotConfigured(problem)
    })
}

/// Resend's event types, as far as they matter here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sent,
    Delivered,
    DeliveryDelayed,
    Bounced,
    Complained,
    Opened,
    Clicked,
    Failed,
    Suppressed,
    Other,
}

impl Kind {
    pub fn parse(t: &str) -> Self {
        match t {
            "email.sent" => Kind::Sent,
            "email.delivered" => Kind::Delivered,
            "email.delivery_delayed" => Kind::DeliveryDelayed,
            "email.bounced" => Kind::Bounced,
            "email.complained" => Kind::Complained,
            "email.opened" => Kind::Opened,
            "email.clicked" => Kind::Clicked,
            "email.failed" => Kind::Failed,
            "email.suppressed" => Kind::Suppressed,
            _ => Kind::Other,
        }
    }

    /// The metrics label: bounded, whatever types Resend adds.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Sent => "sent",
            Kind::Delivered => "delivered",
            Kind::DeliveryDelayed => "delivery_delayed",
            Kind::Bounced => "bounced",
            Kind::Complained => "complained",
            Kind::Opened => "opened",
            Kind::Clicked => "clicked",
            Kind::Failed => "failed",
            Kind::Suppressed => "suppressed",
            Kind::Other => "other",
        }
    }
}

#[derive(Debug, Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    kind: String,
    data: serde_json::Value,
}

/// `data` of an `email.*` event; unknown fields are ignored.
#[derive(Debug, Default, Deserialize)]
struct EmailData {
    #[serde(default)]
    email_id: Option<String>,
    #[serde(default)]
    to: Option<Recipients>,
    #[serde(default)]
    tags: Option<Tags>,
    #[serde(default)]
    bounce: Option<Bounce>,
    #[serde(default)]
    click: Option<Click>,
    #[serde(default)]
    failed: Option<Failed>,
    #[serde(default)]
    suppressed: Option<Suppressed>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Recipients {
    One(String),
    Many(Vec<String>),
}

/// Webhooks carry tags as an object; the send API takes `[{name, value}]`.
/// Both are read.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Tags {
    Map(std::collections::BTreeMap<String, serde_json::Value>),
    List(Vec<Tag>),
}

#[derive(Debug, Deserialize)]
struct Tag {
    name: String,
    value: serde_json::Value,
}

#[derive(Debug, Deserialize)]
struct Bounce {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(rename = "subType", default)]
    sub_type: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(rename = "diagnosticCode", default)]
    diagnostic_code: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
struct Click {
    #[serde(default)]
    link: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Failed {
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Suppressed {
    #[serde(default)]
    reason: Option<String>,
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

impl EmailData {
    fn tagged_message_id(&self) -> Option<String> {
        let value = match self.tags.as_ref()? {
            Tags::Map(m) => m.get(MESSAGE_TAG)?.clone(),
            Tags::List(l) => l.iter().find(|t| t.name == MESSAGE_TAG)?.value.clone(),
        };
        value
            .as_str()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    }

    fn first_recipient(&self) -> Option<String> {
        match self.to.as_ref()? {
            Recipients::One(a) => Some(a.clone()),
            Recipients::Many(v) => v.first().cloned(),
        }
    }
}

impl Bounce {
    fn is_permanent(&self) -> bool {
        self.kind.as_deref() == Some("Permanent")
    }

    /// `Permanent/General: smtp; 550 …`, addresses masked.
    fn describe(&self) -> String {
        let kind = self.kind.as_deref().unwrap_or("Undetermined");
        let sub = self.sub_type.as_deref().unwrap_or("Undetermined");
        let diag = self
            .diagnostic_code
            .as_ref()
            .map(|d| d.join("; "))
            .filter(|d| !d.is_empty())
            .or_else(|| self.message.clone())
            .unwrap_or_default();
        let diag = campaign_alerts::mask_addresses(&diag);
        if diag.is_empty() {
            format!("{kind}/{sub}")
        } else {
            format!("{kind}/{sub}: {diag}")
        }
    }
}

/// A verified event, parsed.
#[derive(Debug)]
pub struct Event {
    pub kind: Kind,
    pub type_name: String,
    data: EmailData,
}

fn parse(bytes: &[u8]) -> Result<Event, WebhookError> {
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| WebhookError::Malformed(format!("the body is not JSON: {e}")))?;
    let envelope: Envelope = serde_json::from_value(value).map_err(|e| {
        WebhookError::Malformed(format!(
            "not a Resend event (`type` string and `data` object): {e}"
        ))
    })?;
    if !envelope.data.is_object() {
        return Err(WebhookError::Malformed(
            "not a Resend event: `data` is not an object".into(),
        ));
    }
    let kind = Kind::parse(&envelope.kind);
    let data: EmailData = if kind == Kind::Other {
        EmailData::default()
    } else {
        serde_json::from_value(envelope.data).map_err(|e| {
            WebhookError::Malformed(format!("`data` of {} is malformed: {e}", envelope.kind))
        })?
    };
    if kind == Kind::Bounced && data.bounce.is_none() {
        return Err(WebhookError::Malformed(
            "email.bounced without `data.bounce`".into(),
        ));
    }
    Ok(Event {
        kind,
        type_name: envelope.kind,
        data,
    })
}

/// What one event did.
#[derive(Debug, Default)]
struct Applied {
    duplicate: bool,
    matched: bool,
    notices: Vec<Notice>,
    tripped: Option<Tripped>,
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

/// Finds (and on PostgreSQL locks) the message an event is about.
async fn find_message(
    conn: &impl ConnectionTrait,
    data: &EmailData,
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
    if let Some(id) = data.tagged_message_id()
        && let Some(m) = one(format!("{select} m.id = $1{lock}"), id).await?
    {
        return Ok(Some(m));
    }
    match data.email_id.as_deref().map(str::trim) {
        Some(email_id) if !email_id.is_empty() => Ok(one(
            format!("{select} m.provider_message_id = $1 LIMIT 1{lock}"),
            email_id.to_string(),
        )
        .await?),
        _ => Ok(None),
    }
}

/// Records the event; false when it was already recorded.
async fn insert_event(
    conn: &impl ConnectionTrait,
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
            Value::from(PROVIDER),
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

/// Whether the event would move a message's state or suppress its address.
fn changes_state(event: &Event) -> bool {
    match event.kind {
        Kind::Delivered
        | Kind::Opened
        | Kind::Clicked
        | Kind::Complained
        | Kind::Failed
        | Kind::Suppressed => true,
        Kind::Bounced => event.data.bounce.as_ref().is_some_and(Bounce::is_permanent),
        Kind::Sent | Kind::DeliveryDelayed | Kind::Other => false,
    }
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

/// Events Resend only sends for an email it accepted.
fn is_evidence_of_sending(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::Sent
            | Kind::Delivered
            | Kind::DeliveryDelayed
            | Kind::Opened
            | Kind::Clicked
            | Kind::Bounced
            | Kind::Complained
    )
}

async fn apply(
    db: &DatabaseConnection,
    event_id: &str,
    event: &Event,
    payload: &[u8],
) -> Result<Applied, WebhookError> {
    let now = Utc::now();
    let txn = crate::db::begin_write(db).await?;
    let message = find_message(&txn, &event.data).await?;
    let inserted = insert_event(
        &txn,
        event_id,
        message.as_ref().map(|m| m.id.as_str()),
        &event.type_name,
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
            event = %event.type_name,
            "Resend event for a message warmline does not know; stored"
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
    if current == MessageState::Sending && changes_state(event) {
        // Rolling back un-records the event, so Resend's retry applies it.
        txn.rollback().await.map_err(anyhow::Error::from)?;
        return Err(WebhookError::NotYet);
    }
    // A message left ambiguous by a crash (it may or may not have gone out)
    // is resolved by the provider's own report that it handled it: that
    // is evidence, not a guess, and it never sends anything again.
    let current = if current == MessageState::Ambiguous && is_evidence_of_sending(event.kind) {
        if advance(
            &txn,
            &m,
            current,
            MessageState::Sent,
            "Resend reported this email: it was sent (resolves the ambiguity)",
            now,
        )
        .await?
        {
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
    let address = m.address.clone().or_else(|| event.data.first_recipient());
    let mut outcome: Option<(NoticeKind, Option<String>)> = None;
    match event.kind {
        Kind::Sent | Kind::Other => {}
        Kind::Delivered => {
            advance(&txn, &m, current, MessageState::Delivered, "delivered", now).await?;
        }
        Kind::Opened | Kind::Clicked => {
            let what = if event.kind == Kind::Opened {
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
            let detail = match (&event.kind, event.data.click.as_ref()) {
                (Kind::Clicked, Some(Click { link: Some(link) })) => format!("clicked {link}"),
                (Kind::Clicked, _) => "clicked".to_string(),
                _ => "opened".to_string(),
            };
            note(&txn, &m, state, &detail, now).await?;
        }
        Kind::DeliveryDelayed => {
            note(
                &txn,
                &m,
                current,
                "delivery delayed: the receiving server deferred it; Resend keeps trying",
                now,
            )
            .await?;
        }
        Kind::Bounced => {
            let bounce = event.data.bounce.as_ref().expect("checked by parse");
            let detail = bounce.describe();
            if bounce.is_permanent() {
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
                    ledger::suppress(&txn, &m.channel, a, "hard_bounce", SUPPRESSION_SOURCE, now)
                        .await?;
                }
                if moved {
                    outcome = Some((NoticeKind::HardBounce, Some(detail)));
                }
            } else {
                note(
                    &txn,
                    &m,
                    current,
                    &format!("soft bounce ({detail}); not suppressed"),
                    now,
                )
                .await?;
            }
        }
        Kind::Complained => {
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
                ledger::suppress(&txn, &m.channel, a, "complaint", SUPPRESSION_SOURCE, now).await?;
            }
            if moved {
                outcome = Some((NoticeKind::Complaint, None));
            }
        }
        Kind::Failed => {
            let reason = event
                .data
                .failed
                .as_ref()
                .and_then(|f| f.reason.clone())
                .unwrap_or_else(|| "no reason given".into());
            advance(
                &txn,
                &m,
                current,
                MessageState::Failed,
                &format!("Resend failed to send it: {reason}"),
                now,
            )
            .await?;
        }
        Kind::Suppressed => {
            let s = event.data.suppressed.as_ref();
            let reason = s
                .and_then(|s| s.reason.clone())
                .unwrap_or_else(|| "unknown".into());
            let mut detail = format!("Resend suppressed it: {reason}");
            if let Some(list) = s.and_then(|s| s.kind.as_deref()) {
                detail.push_str(&format!(" ({list})"));
            }
            if let Some(message) = s.and_then(|s| s.message.as_deref()) {
                detail.push_str(&format!(": {}", campaign_alerts::mask_addresses(message)));
            }
            advance(&txn, &m, current, MessageState::Failed, &detail, now).await?;
            if let Some(a) = &address {
                let ours = match reason.as_str() {
                    "previous_complaint" => "complaint",
                    "previous_bounce" => "hard_bounce",
                    _ => "provider_suppressed",
                };
                ledger::suppress(&txn, &m.channel, a, ours, SUPPRESSION_SOURCE, now).await?;
            }
        }
    }
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
                    .map(crate::domain::mask_email)
                    .unwrap_or_else(|| "an unknown address".into()),
                diagnostic,
                slack_channel: thread.slack_channel,
                slack_ts: thread.slack_ts,
            });
        }
        applied.tripped = breaker::check(&txn, campaign_id, now).await?;
    }
    txn.commit().await.map_err(anyhow::Error::from)?;
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_are_checked_and_named() {
        let err = |body: &str| match parse(body.as_bytes()) {
            Err(WebhookError::Malformed(m)) => m,
            other => panic!("{body}: {other:?}"),
        };
        assert!(err("{not json").contains("not JSON"));
        assert!(err(r#"{"data": {}}"#).contains("`type`"));
        assert!(err(r#"{"type": "email.sent", "data": 3}"#).contains("`data` is not an object"));
        assert!(err(r#"{"type": "email.bounced", "data": {"email_id": "x"}}"#).contains("bounce"));
        assert!(err(r#"{"type": "email.sent", "data": {"email_id": 7}}"#).contains("email.sent"));
    }

    #[test]
    fn tags_are_read_in_both_shapes() {
        let ev = parse(
            br#"{"type":"email.delivered","data":{"email_id":"e1","tags":{"warmline_message_id":"msg_1"}}}"#,
        )
        .unwrap();
        assert_eq!(ev.data.tagged_message_id().as_deref(), Some("msg_1"));
        let ev = parse(
            br#"{"type":"email.delivered","data":{"tags":[{"name":"warmline_message_id","value":"msg_2"}]}}"#,
        )
        .unwrap();
        assert_eq!(ev.data.tagged_message_id().as_deref(), Some("msg_2"));
        let ev = parse(br#"{"type":"contact.created","data":{"id":"c"}}"#).unwrap();
        assert_eq!(ev.kind, Kind::Other);
    }

    #[test]
    fn bounce_descriptions_mask_addresses() {
        let ev = parse(
            br#"{"type":"email.bounced","data":{"bounce":{"type":"Permanent","subType":"General","diagnosticCode":["smtp; 550 5.1.1 <jane@example.com> user unknown"]}}}"#,
        )
        .unwrap();
        let b = ev.data.bounce.unwrap();
        assert!(b.is_permanent());
        assert_eq!(
            b.describe(),
            "Permanent/General: smtp; 550 5.1.1 j***@example.com user unknown"
        );
    }
}
