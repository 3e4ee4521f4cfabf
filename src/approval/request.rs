//! Creating a send: render every recipient's message, score and judge it,
//! then write the campaign with its messages — queued, or awaiting approval
//! with an `approvals` row — in one transaction.
//!
//! Invariants:
//! - Rendering happens before any write; a render error names the contact
//!   and the problem, and nothing is stored.
//! - The content hash covers the audience, every rendered payload and the
//!   schedule as written, so the same request hashes the same and any
//!   change to what a recipient would receive changes it.
//! - One campaign per `source` (unique): a repeated submit is answered from
//!   the stored campaign.

use std::collections::BTreeMap;

use anyhow::Context;
use chrono::{DateTime, Duration, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use sea_orm::{ConnectionTrait, FromQueryResult, Statement, Value};
use sha2::Digest;

use super::{
    Content, Schedule, SendRequest, SubmitError, Submitted,
    policy::{self, PolicyFacts, Verdict},
    revision_source,
    risk::{self, Risk},
    set_campaign_state, skip_awaiting,
};
use crate::{
    db::placeholders,
    dispatcher::ledger::{self, NewMessage},
    domain::{ApprovalState, CampaignState, Channel, MessageState},
    email::compose::ComposeError,
    state::App,
    templates::{Kind, Rendered, render_part},
};

/// A contact as rendering needs it.
#[derive(Debug, Clone, FromQueryResult)]
pub(crate) struct Recipient {
    pub id: i64,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub timezone: Option<String>,
    pub warmth: f64,
    pub metadata: String,
}

pub(crate) async fn load_recipients(
    conn: &impl ConnectionTrait,
    ids: &[i64],
) -> anyhow::Result<Vec<Recipient>> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        let sql = format!(
            "SELECT id, email, phone, first_name, last_name, timezone, warmth, metadata \
             FROM contacts WHERE id IN ({})",
            placeholders(1, chunk.len())
        );
        let rows = Recipient::find_by_statement(Statement::from_sql_and_values(
            conn.get_database_backend(),
            sql,
            chunk.iter().map(|i| Value::from(*i)),
        ))
        .all(conn)
        .await?;
        out.extend(rows);
    }
    out.sort_by_key(|r| r.id);
    Ok(out)
}

/// The template variables for one contact: its metadata (so `company`
/// and friends are top-level), its own fields, then the request's.
pub(crate) fn variables(c: &Recipient, extra: &serde_json::Value) -> serde_json::Value {
    let mut vars = serde_json::Map::new();
    if let Ok(serde_json::Value::Object(meta)) = serde_json::from_str(&c.metadata) {
        for (k, v) in &meta {
            vars.insert(k.clone(), v.clone());
        }
        vars.insert("metadata".into(), serde_json::Value::Object(meta));
    }
    vars.insert("contact_id".into(), c.id.into());
    for (k, v) in [
        ("first_name", &c.first_name),
        ("last_name", &c.last_name),
        ("email", &c.email),
        ("phone", &c.phone),
        ("timezone", &c.timezone),
    ] {
        if let Some(v) = v {
            vars.insert(k.into(), v.clone().into());
        }
    }
    if let Some(full) =
        crate::contacts::display::full_name(c.first_name.as_deref(), c.last_name.as_deref())
    {
        vars.insert("name".into(), full.into());
    }
    vars.insert("warmth".into(), c.warmth.round().into());
    if let serde_json::Value::Object(extra) = extra {
        for (k, v) in extra {
            vars.insert(k.clone(), v.clone());
        }
    }
    serde_json::Value::Object(vars)
}

/// When a message to a contact in `tz` is due under `schedule`.
pub fn due_at(
    schedule: &Schedule,
    tz: Option<&str>,
    default_tz: &str,
    now: DateTime<Utc>,
) -> DateTime<Utc> {
    match schedule {
        Schedule::Now => now,
        Schedule::At { at } => *at,
        Schedule::LocalTime { time } => {
            let tz: Tz = tz
                .and_then(|t| t.parse().ok())
                .or_else(|| default_tz.parse().ok())
                .unwrap_or(chrono_tz::UTC);
            let today = now.with_timezone(&tz).date_naive();
            for day in 0..3 {
                let date = today + Duration::days(day);
                if let Some(at) = local(tz, date, *time)
                    && at > now
                {
                    return at;
                }
            }
            now
        }
    }
}

/// `date` at `time` in `tz`; in a DST gap, the first instant after it.
fn local(tz: Tz, date: chrono::NaiveDate, time: NaiveTime) -> Option<DateTime<Utc>> {
    let naive = date.and_time(time);
    tz.from_local_datetime(&naive)
        .earliest()
        .or_else(|| {
            tz.from_local_datetime(&(naive + Duration::hours(1)))
                .earliest()
        })
        .map(|t| t.with_timezone(&Utc))
}

/// A rendered send, before anything is written.
pub(crate) struct Prepared {
    pub recipients: Vec<Recipient>,
    /// One per recipient, in the same order; `state`/`source`/`campaign_id`
    /// are filled in when written.
    pub messages: Vec<NewMessage>,
    pub content_hash: String,
    pub template: Option<String>,
}

async fn prepare(app: &App, req: &SendRequest) -> Result<Prepared, SubmitError> {
    let mut ids = req.recipients.clone();
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return Err(SubmitError::NoRecipients);
    }
    let recipients = load_recipients(&app.db, &ids).await?;
    if let Some(missing) = ids.iter().find(|i| !recipients.iter().any(|r| r.id == **i)) {
        return Err(SubmitError::UnknownContact(*missing));
    }
    let channel = req.channel;
    let no_provider = || SubmitError::NoProvider(channel);
    let provider = app
        .dispatcher
        .registry()
        .for_channel(channel)
        .ok_or_else(no_provider)?;
    let mut whatsapp = None;
    let (template, kind) = match &req.content {
        Content::Template { name } => {
            let t = app
                .composer
                .catalog()
                .get(name)
                .ok_or_else(|| SubmitError::Render {
                    contact: ids[0],
                    problem: format!("no template named '{name}'"),
                })?;
            if t.channel != channel {
                return Err(SubmitError::WrongChannel {
                    template: name.clone(),
                    template_channel: t.channel,
                    channel,
                });
            }
            (Some(name.clone()), t.kind)
        }
        Content::Inline { .. } => (None, Kind::Marketing),
        Content::Whatsapp {
            template: name,
            language,
            parameters,
            ..
        } => {
            if channel != Channel::Whatsapp {
                return Err(SubmitError::WrongChannel {
                    template: name.clone(),
                    template_channel: Channel::Whatsapp,
                    channel,
                });
            }
            let chosen =
                crate::whatsapp::campaign::Chosen::load(&app.db, name, language, parameters)
                    .await
                    .map_err(|e| match e {
                        crate::whatsapp::campaign::ChoiceError::Infrastructure(e) => {
                            SubmitError::Infrastructure(e)
                        }
                        other => SubmitError::Render {
                            contact: ids[0],
                            problem: other.to_string(),
                        },
                    })?;
            let named = (Some(chosen.ledger_name()), chosen.kind());
            whatsapp = Some(chosen);
            named
        }
    };
    let default_tz = app.settings.quiet_hours.default_timezone.clone();
    let sms_sender = crate::sms::sender_name(&app.settings);
    let now = crate::clock::now();
    let mut messages = Vec::with_capacity(recipients.len());
    let mut hasher = sha2::Sha256::new();
    hasher.update(format!("channel:{}\n", req.channel));
    hasher.update(format!(
        "audience:{}\n",
        ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
    ));
    for c in &recipients {
        let render_err = |problem: String| SubmitError::Render {
            contact: c.id,
            problem,
        };
        let vars = variables(c, &req.variables);
        if let Some(wa) = &whatsapp {
            if c.phone.as_deref().is_none_or(str::is_empty) {
                return Err(SubmitError::NoAddress {
                    contact: c.id,
                    channel,
                    what: "phone number",
                });
            }
            // The ledger holds what is sent: the template with this
            // contact's parameters, and its text as the person reads it.
            let payload = wa
                .content(&vars)
                .map_err(|m| render_err(m.to_string()))?
                .to_payload();
            hasher.update(format!("{}:{}\n", c.id, payload));
            messages.push(NewMessage {
                source: String::new(),
                campaign_id: None,
                contact_id: Some(c.id),
                channel,
                kind,
                address: None,
                provider: provider.name().to_string(),
                payload,
                template: template.clone(),
                state: MessageState::AwaitingApproval,
                due_at: due_at(&req.schedule, c.timezone.as_deref(), &default_tz, now),
            });
            continue;
        }
        let rendered = match &req.content {
            Content::Template { name } => app
                .composer
                .catalog()
                .render(name, &vars)
                .map_err(|e| render_err(e.to_string()))?,
            Content::Inline { subject, body } => Rendered {
                subject: subject
                    .as_deref()
                    .map(|s| render_part("subject", s, &vars))
                    .transpose()
                    .map_err(|e| render_err(e.to_string()))?,
                text: render_part("text", body, &vars).map_err(|e| render_err(e.to_string()))?,
                html: None,
            },
            Content::Whatsapp { .. } => unreachable!("WhatsApp content is built above"),
        };
        let (payload, address) = if channel == Channel::Email {
            if c.email.as_deref().is_none_or(str::is_empty) {
                return Err(SubmitError::NoAddress {
                    contact: c.id,
                    channel,
                    what: "email address",
                });
            }
            let email = app
                .composer
                .compose(rendered, kind, Some(c.id))
                .await
                .map_err(|e| match e {
                    ComposeError::Infrastructure(e) => SubmitError::Infrastructure(e),
                    other => render_err(other.to_string()),
                })?;
            (email.to_payload(), None)
        } else {
            if c.phone.as_deref().is_none_or(str::is_empty) {
                return Err(SubmitError::NoAddress {
                    contact: c.id,
                    channel,
                    what: "phone number",
                });
            }
            let text = if channel == Channel::Sms {
                crate::sms::compose(&rendered.text, kind, &sms_sender)
            } else {
                rendered.text
            };
            (crate::sms::content(&text), None)
        };
        hasher.update(format!("{}:{}\n", c.id, payload));
        messages.push(NewMessage {
            source: String::new(),
            campaign_id: None,
            contact_id: Some(c.id),
            channel,
            kind,
            address,
            provider: provider.name().to_string(),
            payload,
            template: template.clone(),
            state: MessageState::AwaitingApproval,
            due_at: due_at(&req.schedule, c.timezone.as_deref(), &default_tz, now),
        });
    }
    if let Content::Whatsapp {
        split: Some(split), ..
    } = &req.content
    {
        // Over the messaging tier, by the sender's choice: the people not
        // already reached in the window go in daily parts, 24 h apart.
        let reached = crate::whatsapp::tier::already_reached(&app.db, &ids, now).await?;
        let new: Vec<usize> = (0..messages.len())
            .filter(|i| {
                !messages[*i]
                    .contact_id
                    .is_some_and(|c| reached.contains(&c))
            })
            .collect();
        for (i, day) in new.iter().zip(split.days(new.len())) {
            messages[*i].due_at += crate::whatsapp::tier::DailySplit::offset(day);
        }
        hasher.update(format!("split:{}/{}\n", split.first_day, split.per_day));
    }
    hasher.update(format!(
        "schedule:{}\n",
        serde_json::to_string(&req.schedule).expect("plain data serialises")
    ));
    Ok(Prepared {
        recipients,
        messages,
        content_hash: hex::encode(hasher.finalize()),
        template,
    })
}

#[derive(Debug, FromQueryResult)]
struct Existing {
    id: i64,
    state: CampaignState,
    content_hash: Option<String>,
    revision: i32,
}

async fn find_by_source(
    conn: &impl ConnectionTrait,
    source: &str,
) -> anyhow::Result<Option<Existing>> {
    let lock = if crate::db::is_postgres(conn) {
        " FOR UPDATE"
    } else {
        ""
    };
    Ok(Existing::find_by_statement(Statement::from_sql_and_values(
        conn.get_database_backend(),
        format!("SELECT id, state, content_hash, revision FROM campaigns WHERE source = $1{lock}"),
        [Value::from(source.to_string())],
    ))
    .one(conn)
    .await?)
}

async fn pending_approval(
    conn: &impl ConnectionTrait,
    campaign_id: i64,
) -> anyhow::Result<Option<i64>> {
    #[derive(FromQueryResult)]
    struct Id {
        id: i64,
    }
    Ok(Id::find_by_statement(Statement::from_sql_and_values(
        conn.get_database_backend(),
        format!(
            "SELECT id FROM approvals WHERE campaign_id = $1 AND state = {pending} ORDER BY id DESC LIMIT 1",
            pending = ApprovalState::Pending.sql(),
        ),
        [Value::from(campaign_id)],
    ))
    .one(conn)
    .await?
    .map(|r| r.id))
}

/// What an identical repeat of a stored send answers.
async fn replay(
    conn: &impl ConnectionTrait,
    source: &str,
    c: &Existing,
) -> Result<Submitted, SubmitError> {
    if c.state == CampaignState::AwaitingApproval
        && let Some(approval_id) = pending_approval(conn, c.id).await?
    {
        return Ok(Submitted::AwaitingApproval {
            campaign_id: c.id,
            approval_id,
        });
    }
    if CampaignState::GOING.contains(&c.state) {
        let n = crate::db::count(
            conn,
            "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM messages WHERE campaign_id = $1 AND source = $2",
            vec![
                Value::from(c.id),
                Value::from(revision_source(source, c.revision)),
            ],
        )
        .await?;
        return Ok(Submitted::Queued {
            campaign_id: c.id,
            messages: n as usize,
        });
    }
    Err(SubmitError::AlreadyDecided {
        source_key: source.to_string(),
        campaign_id: c.id,
        state: c.state,
    })
}

pub(crate) async fn submit(app: &App, req: SendRequest) -> Result<Submitted, SubmitError> {
    let mut p = prepare(app, &req).await?;
    let warmths: Vec<f64> = p.recipients.iter().map(|r| r.warmth).collect();
    let (risk, new_content) = risk::assess_send(
        &app.db,
        p.template.as_deref(),
        req.channel,
        &req.requested_by,
        &req.source,
        &warmths,
    )
    .await?;
    let below_floor = p
        .recipients
        .iter()
        .filter(|r| r.warmth < f64::from(app.settings.approval.warmth_floor))
        .count();
    let verdict = policy::decide(
        &app.settings.approval,
        &PolicyFacts {
            recipients: p.recipients.len(),
            risk: risk.score,
            new_content,
            below_floor,
        },
    );
    let now = crate::clock::now();
    let txn = crate::db::begin_write(&app.db).await?;
    let (campaign_id, revision, voided) = match find_by_source(&txn, &req.source).await? {
        Some(c) if c.content_hash.as_deref() == Some(p.content_hash.as_str()) => {
            let outcome = replay(&txn, &req.source, &c).await;
            txn.commit().await.context("committing a replayed send")?;
            return outcome;
        }
        Some(c) if c.state == CampaignState::AwaitingApproval => {
            // An edited draft: the old approval saw other content.
            let old = pending_approval(&txn, c.id).await?;
            if let Some(old) = old {
                txn.execute_raw(Statement::from_sql_and_values(
                    txn.get_database_backend(),
                    format!(
                        "UPDATE approvals SET state = {void}, decided_at = $1, reason = $2 \
                         WHERE id = $3 AND state = {pending}",
                        pending = ApprovalState::Pending.sql(),
                        void = ApprovalState::Void.sql(),
                    ),
                    [
                        Value::from(now),
                        Value::from("the draft was edited after the request"),
                        Value::from(old),
                    ],
                ))
                .await
                .context("voiding the edited draft's approval")?;
                crate::audit::record(
                    &txn,
                    &req.requested_by,
                    "approval.void",
                    Some(&format!("approval:{old}")),
                    serde_json::json!({"campaign_id": c.id, "why": "draft edited"}),
                )
                .await?;
            }
            skip_awaiting(
                &txn,
                c.id,
                "the draft was edited; replaced by a new revision",
                now,
            )
            .await?;
            let revision = c.revision + 1;
            update_campaign(&txn, c.id, &req, &p, revision, now).await?;
            (c.id, revision, old)
        }
        Some(c) => {
            let err = SubmitError::AlreadyDecided {
                source_key: req.source.clone(),
                campaign_id: c.id,
                state: c.state,
            };
            txn.rollback()
                .await
                .context("rolling back a decided send")?;
            return Err(err);
        }
        None => (insert_campaign(&txn, &req, &p, now).await?, 1, None),
    };
    let source = revision_source(&req.source, revision);
    for m in &mut p.messages {
        m.source = source.clone();
        m.campaign_id = Some(campaign_id);
    }
    let outcome = match verdict {
        Verdict::Send => {
            for m in &mut p.messages {
                m.state = if m.due_at > now {
                    MessageState::Scheduled
                } else {
                    MessageState::Queued
                };
            }
            let n = ledger::enqueue(&txn, &p.messages, now).await?;
            let state = if p
                .messages
                .iter()
                .all(|m| m.state == MessageState::Scheduled)
            {
                CampaignState::Scheduled
            } else {
                CampaignState::Running
            };
            set_campaign_state(&txn, campaign_id, state, now).await?;
            crate::audit::record(
                &txn,
                &req.requested_by,
                "campaign.queued",
                Some(&format!("campaign:{campaign_id}")),
                serde_json::json!({
                    "messages": n,
                    "risk": risk.score,
                    "reasons": risk.reasons,
                    "policy": "no approval needed",
                }),
            )
            .await?;
            Submitted::Queued {
                campaign_id,
                messages: p.messages.len(),
            }
        }
        Verdict::Approve { approvers, why } => {
            ledger::enqueue(&txn, &p.messages, now).await?;
            set_campaign_state(&txn, campaign_id, CampaignState::AwaitingApproval, now).await?;
            let approval_id = insert_approval(
                &txn,
                campaign_id,
                &req,
                &p.content_hash,
                approvers,
                &risk,
                now,
            )
            .await?;
            crate::audit::record(
                &txn,
                &req.requested_by,
                "approval.requested",
                Some(&format!("approval:{approval_id}")),
                serde_json::json!({
                    "campaign_id": campaign_id,
                    "recipients": p.messages.len(),
                    "risk": risk.score,
                    "reasons": risk.reasons,
                    "why": why,
                    "approvers": approvers,
                }),
            )
            .await?;
            Submitted::AwaitingApproval {
                campaign_id,
                approval_id,
            }
        }
    };
    txn.commit().await.context("committing a submitted send")?;
    if let Some(old) = voided {
        let app2 = app.clone();
        app.spawn("mark an edited draft's request void", async move {
            super::slack::update_request(&app2, old).await
        });
    }
    match outcome {
        Submitted::Queued { campaign_id, .. } => {
            app.dispatcher.wake();
            let app2 = app.clone();
            app.spawn("start a campaign's thread", async move {
                crate::campaigns::thread::open(&app2, campaign_id).await
            });
        }
        Submitted::AwaitingApproval { approval_id, .. } => {
            let app2 = app.clone();
            app.spawn("post an approval request", async move {
                super::slack::post_request(&app2, approval_id).await
            });
        }
    }
    tracing::info!(
        campaign_id,
        source = %req.source,
        recipients = p.messages.len(),
        risk = risk.score,
        outcome = ?outcome,
        "send submitted"
    );
    Ok(outcome)
}

fn campaign_values(
    req: &SendRequest,
    p: &Prepared,
) -> (String, Option<String>, Option<String>, String) {
    let audience =
        serde_json::json!({ "contact_ids": p.recipients.iter().map(|r| r.id).collect::<Vec<_>>() })
            .to_string();
    let (subject, body) = match &req.content {
        Content::Inline { subject, body } => (subject.clone(), Some(body.clone())),
        Content::Template { .. } | Content::Whatsapp { .. } => (None, None),
    };
    let schedule = serde_json::to_string(&req.schedule).expect("plain data serialises");
    (audience, subject, body, schedule)
}

async fn insert_campaign(
    conn: &impl ConnectionTrait,
    req: &SendRequest,
    p: &Prepared,
    now: DateTime<Utc>,
) -> anyhow::Result<i64> {
    #[derive(FromQueryResult)]
    struct Id {
        id: i64,
    }
    let (audience, subject, body, schedule) = campaign_values(req, p);
    let row = Id::find_by_statement(Statement::from_sql_and_values(
        conn.get_database_backend(),
        format!(
            "INSERT INTO campaigns (name, channel, state, created_by, audience, subject, body, template, \
             schedule, content_hash, source, revision, created_at, updated_at) \
             VALUES ($1, $2, {draft}, $3, $4, $5, $6, $7, $8, $9, $10, 1, $11, $11) RETURNING id",
            draft = CampaignState::Draft.sql(),
        ),
        [
            Value::from(req.name.clone()),
            Value::from(req.channel),
            Value::from(req.requested_by.clone()),
            Value::from(audience),
            Value::from(subject),
            Value::from(body),
            Value::from(p.template.clone()),
            Value::from(schedule),
            Value::from(p.content_hash.clone()),
            Value::from(req.source.clone()),
            Value::from(now),
        ],
    ))
    .one(conn)
    .await?
    .ok_or_else(|| anyhow::anyhow!("inserting a campaign returned no id"))?;
    Ok(row.id)
}

async fn update_campaign(
    conn: &impl ConnectionTrait,
    id: i64,
    req: &SendRequest,
    p: &Prepared,
    revision: i32,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let (audience, subject, body, schedule) = campaign_values(req, p);
    conn.execute_raw(Statement::from_sql_and_values(
        conn.get_database_backend(),
        "UPDATE campaigns SET name = $1, audience = $2, subject = $3, body = $4, template = $5, \
         schedule = $6, content_hash = $7, revision = $8, updated_at = $9 WHERE id = $10",
        [
            Value::from(req.name.clone()),
            Value::from(audience),
            Value::from(subject),
            Value::from(body),
            Value::from(p.template.clone()),
            Value::from(schedule),
            Value::from(p.content_hash.clone()),
            Value::from(revision),
            Value::from(now),
            Value::from(id),
        ],
    ))
    .await?;
    Ok(())
}

async fn insert_approval(
    conn: &impl ConnectionTrait,
    campaign_id: i64,
    req: &SendRequest,
    content_hash: &str,
    approvers: u8,
    risk: &Risk,
    now: DateTime<Utc>,
) -> anyhow::Result<i64> {
    #[derive(FromQueryResult)]
    struct Id {
        id: i64,
    }
    let row = Id::find_by_statement(Statement::from_sql_and_values(
        conn.get_database_backend(),
        format!(
            "INSERT INTO approvals (campaign_id, state, requested_by, content_hash, required_approvals, \
             risk, risk_reasons, created_at) VALUES ($1, {pending}, $2, $3, $4, $5, $6, $7) RETURNING id",
            pending = ApprovalState::Pending.sql(),
        ),
        [
            Value::from(campaign_id),
            Value::from(req.requested_by.clone()),
            Value::from(content_hash.to_string()),
            Value::from(i32::from(approvers)),
            Value::from(i32::from(risk.score)),
            Value::from(serde_json::to_string(&risk.reasons).expect("strings serialise")),
            Value::from(now),
        ],
    ))
    .one(conn)
    .await?
    .ok_or_else(|| anyhow::anyhow!("inserting an approval returned no id"))?;
    Ok(row.id)
}

/// A send scheduled "now" approved late: its messages move by the delay,
/// keeping their offsets from one another, so parts due a day apart (a
/// WhatsApp campaign split across days to fit the messaging tier) stay a
/// day apart from the first part's real start. Messages all due together
/// simply become due now.
async fn shift_to_now(
    conn: &impl ConnectionTrait,
    campaign_id: i64,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    #[derive(FromQueryResult)]
    struct Row {
        id: String,
        next_attempt_at: Option<DateTime<Utc>>,
    }
    let backend = conn.get_database_backend();
    let rows = Row::find_by_statement(Statement::from_sql_and_values(
        backend,
        format!(
            "SELECT id, next_attempt_at FROM messages WHERE campaign_id = $1 AND state = {awaiting_approval}",
            awaiting_approval = MessageState::AwaitingApproval.sql(),
        ),
        [Value::from(campaign_id)],
    ))
    .all(conn)
    .await?;
    let dues = || rows.iter().filter_map(|r| r.next_attempt_at);
    let (Some(first), Some(last)) = (dues().min(), dues().max()) else {
        return Ok(());
    };
    let delay = now - first;
    // All due together (no parts), or approved in time: the release below
    // makes them due now as it always has.
    if first == last || delay <= Duration::zero() {
        return Ok(());
    }
    let mut by_due: BTreeMap<DateTime<Utc>, Vec<String>> = BTreeMap::new();
    for r in rows {
        if let Some(at) = r.next_attempt_at {
            by_due.entry(at + delay).or_default().push(r.id);
        }
    }
    for (due, ids) in by_due {
        for chunk in ids.chunks(500) {
            let mut values = vec![Value::from(due)];
            values.extend(chunk.iter().map(|i| Value::from(i.clone())));
            conn.execute_raw(Statement::from_sql_and_values(
                backend,
                format!(
                    "UPDATE messages SET next_attempt_at = $1 WHERE id IN ({})",
                    placeholders(2, chunk.len())
                ),
                values,
            ))
            .await?;
        }
    }
    Ok(())
}

/// Moves an approved campaign's messages out of `awaiting_approval`: due
/// ones to `queued`, future ones to `scheduled`. A local-time schedule is
/// recomputed from `now`, so a late approval does not send at the wrong
/// hour. Returns how many moved. Runs in the approval's transaction.
pub(crate) async fn release(
    conn: &impl ConnectionTrait,
    campaign_id: i64,
    default_tz: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<u64> {
    let backend = conn.get_database_backend();
    #[derive(FromQueryResult)]
    struct Sched {
        schedule: String,
    }
    let schedule = Sched::find_by_statement(Statement::from_sql_and_values(
        backend,
        "SELECT schedule FROM campaigns WHERE id = $1",
        [Value::from(campaign_id)],
    ))
    .one(conn)
    .await?
    .and_then(|s| serde_json::from_str::<Schedule>(&s.schedule).ok())
    .unwrap_or(Schedule::Now);
    if let Schedule::LocalTime { .. } = schedule {
        #[derive(FromQueryResult)]
        struct Row {
            id: String,
            timezone: Option<String>,
        }
        let rows = Row::find_by_statement(Statement::from_sql_and_values(
            backend,
            format!(
                "SELECT m.id, c.timezone FROM messages m LEFT JOIN contacts c ON c.id = m.contact_id \
                 WHERE m.campaign_id = $1 AND m.state = {awaiting_approval}",
                awaiting_approval = MessageState::AwaitingApproval.sql(),
            ),
            [Value::from(campaign_id)],
        ))
        .all(conn)
        .await?;
        let mut by_due: BTreeMap<DateTime<Utc>, Vec<String>> = BTreeMap::new();
        for r in rows {
            by_due
                .entry(due_at(&schedule, r.timezone.as_deref(), default_tz, now))
                .or_default()
                .push(r.id);
        }
        for (due, ids) in by_due {
            for chunk in ids.chunks(500) {
                let mut values = vec![Value::from(due)];
                values.extend(chunk.iter().map(|i| Value::from(i.clone())));
                conn.execute_raw(Statement::from_sql_and_values(
                    backend,
                    format!(
                        "UPDATE messages SET next_attempt_at = $1 WHERE id IN ({})",
                        placeholders(2, chunk.len())
                    ),
                    values,
                ))
                .await?;
            }
        }
    }
    if let Schedule::Now = schedule {
        shift_to_now(conn, campaign_id, now).await?;
    }
    let mut moved = 0;
    for (to, cond, set_due) in [
        (MessageState::Scheduled, "next_attempt_at > $2", ""),
        (MessageState::Queued, "1 = 1", ", next_attempt_at = $2"),
    ] {
        conn.execute_raw(Statement::from_sql_and_values(
            backend,
            format!(
                "INSERT INTO message_events (message_id, state, at, detail) \
                 SELECT id, $1, $2, {approved} FROM messages \
                 WHERE campaign_id = $3 AND state = {awaiting_approval} AND {cond}",
                approved = ApprovalState::Approved.sql(),
                awaiting_approval = MessageState::AwaitingApproval.sql(),
            ),
            [Value::from(to), Value::from(now), Value::from(campaign_id)],
        ))
        .await?;
        moved += conn
            .execute_raw(Statement::from_sql_and_values(
                backend,
                format!(
                    "UPDATE messages SET state = $1, updated_at = $2{set_due} \
                     WHERE campaign_id = $3 AND state = {awaiting_approval} AND {cond}",
                    awaiting_approval = MessageState::AwaitingApproval.sql(),
                ),
                [Value::from(to), Value::from(now), Value::from(campaign_id)],
            ))
            .await?
            .rows_affected();
    }
    ledger::notify(conn).await?;
    Ok(moved)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Timelike;

    #[test]
    fn local_time_is_the_next_time_ahead_in_the_contacts_zone() {
        // Arrange: 10:00 UTC is 11:00 in Paris (winter).
        let now = Utc.with_ymd_and_hms(2026, 11, 26, 10, 0, 0).unwrap();
        let nine = Schedule::LocalTime {
            time: NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
        };
        let noon = Schedule::LocalTime {
            time: NaiveTime::from_hms_opt(12, 0, 0).unwrap(),
        };

        // Act
        let tomorrow = due_at(&nine, Some("Europe/Paris"), "UTC", now);
        let today = due_at(&noon, Some("Europe/Paris"), "UTC", now);
        let fallback = due_at(&noon, None, "America/New_York", now);

        // Assert
        assert_eq!(
            tomorrow,
            Utc.with_ymd_and_hms(2026, 11, 27, 8, 0, 0).unwrap()
        );
        assert_eq!(today, Utc.with_ymd_and_hms(2026, 11, 26, 11, 0, 0).unwrap());
        assert_eq!(fallback.hour(), 17, "noon in New York is 17:00 UTC");
    }

    #[test]
    fn a_time_in_a_dst_gap_moves_past_it() {
        // 02:30 does not exist in New York on 2026-03-08.
        let now = Utc.with_ymd_and_hms(2026, 3, 8, 5, 0, 0).unwrap();
        let s = Schedule::LocalTime {
            time: NaiveTime::from_hms_opt(2, 30, 0).unwrap(),
        };
        let due = due_at(&s, Some("America/New_York"), "UTC", now);
        assert_eq!(due, Utc.with_ymd_and_hms(2026, 3, 8, 7, 30, 0).unwrap());
    }

    #[test]
    fn variables_layer_metadata_contact_then_request() {
        let c = Recipient {
            id: 7,
            email: Some("ada@example.com".into()),
            phone: None,
            first_name: Some("Ada".into()),
            last_name: Some("Lovelace".into()),
            timezone: None,
            warmth: 41.6,
            metadata: r#"{"company": "Analytical", "first_name": "ignored"}"#.into(),
        };
        let v = variables(
            &c,
            &serde_json::json!({"topic": "engines", "company": "Babbage & Co"}),
        );
        assert_eq!(v["first_name"], "Ada");
        assert_eq!(v["name"], "Ada Lovelace");
        assert_eq!(v["company"], "Babbage & Co");
        assert_eq!(v["metadata"]["company"], "Analytical");
        assert_eq!(v["topic"], "engines");
        assert_eq!(v["warmth"], 42.0);
    }
}
