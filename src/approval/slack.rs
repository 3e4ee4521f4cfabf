//! The approval request in Slack: posted to the approvals channel, updated
//! in place as it is decided, with Details, a deny-reason modal, reminders
//! in its thread and a DM to the requester.
//!
//! Invariants:
//! - Slack is told after the database: every function here reads the
//!   committed state and renders it, so a retry or a late update can never
//!   show something that did not happen.
//! - A request that cannot be posted (no approvals channel, the bot not in
//!   it) is logged, audited and explained to the requester by DM when the
//!   requester is a person; it stays pending, nothing is sent, and the
//!   reminder loop posts it once the channel works.
//! - What a person hears about a click is phrased in one place,
//!   [`describe`].
//! - Addresses are masked; user text is escaped so it cannot mention
//!   `@channel`.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, FromQueryResult, Statement, Value};
use serde_json::json;
use slack_morphism::prelude::*;

use super::{
    Schedule,
    decision::{self, Choice, Outcome, Refusal},
    is_person, revision_source,
};
use crate::{
    domain::{ApprovalState, Channel, mask_addresses, sms_segments},
    slack::{actions, error::IngressError},
    state::App,
};

use crate::slack::mrkdwn::{escape, truncate};

/// Everything a request message shows, read from the database.
#[derive(Debug, Clone, FromQueryResult)]
pub(crate) struct RequestView {
    pub id: i64,
    pub campaign_id: i64,
    pub state: ApprovalState,
    pub requested_by: String,
    pub required_approvals: i32,
    pub risk: i32,
    pub risk_reasons: String,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub reason: Option<String>,
    pub slack_channel: Option<String>,
    pub slack_ts: Option<String>,
    pub created_at: DateTime<Utc>,
    pub name: String,
    pub channel: String,
    pub audience: String,
    pub schedule: String,
    pub source: Option<String>,
    pub revision: i32,
    pub campaign_state: crate::domain::CampaignState,
}

pub(crate) async fn load(
    conn: &impl ConnectionTrait,
    id: i64,
) -> anyhow::Result<Option<RequestView>> {
    Ok(RequestView::find_by_statement(Statement::from_sql_and_values(
        conn.get_database_backend(),
        "SELECT a.id AS id, a.campaign_id AS campaign_id, a.state AS state, a.requested_by AS requested_by, \
         a.required_approvals AS required_approvals, a.risk AS risk, a.risk_reasons AS risk_reasons, \
         a.decided_by AS decided_by, a.decided_at AS decided_at, a.reason AS reason, \
         a.slack_channel AS slack_channel, a.slack_ts AS slack_ts, a.created_at AS created_at, \
         c.name AS name, c.channel AS channel, c.audience AS audience, c.schedule AS schedule, \
         c.source AS source, c.revision AS revision, c.state AS campaign_state \
         FROM approvals a JOIN campaigns c ON c.id = a.campaign_id WHERE a.id = $1",
        [Value::from(id)],
    ))
    .one(conn)
    .await?)
}

impl RequestView {
    fn audience_ids(&self) -> Vec<i64> {
        serde_json::from_str::<serde_json::Value>(&self.audience)
            .ok()
            .and_then(|v| {
                v.get("contact_ids")
                    .and_then(|a| serde_json::from_value(a.clone()).ok())
            })
            .unwrap_or_default()
    }

    fn reasons(&self) -> Vec<String> {
        serde_json::from_str(&self.risk_reasons).unwrap_or_default()
    }

    fn schedule_text(&self) -> String {
        match serde_json::from_str::<Schedule>(&self.schedule) {
            Ok(Schedule::Now) | Err(_) => "as soon as approved".into(),
            Ok(Schedule::At { at }) => at.format("%Y-%m-%d %H:%M UTC").to_string(),
            Ok(Schedule::LocalTime { time }) => {
                format!("{} in each recipient's time zone", time.format("%H:%M"))
            }
        }
    }

    fn requester(&self) -> String {
        who(&self.requested_by)
    }
}

/// A Slack mention for a person, the automation's name otherwise.
fn who(id: &str) -> String {
    if is_person(id) {
        format!("<@{id}>")
    } else {
        format!("`{}`", escape(id))
    }
}

fn mentions(ids: &str) -> String {
    let people: Vec<String> = ids.split(',').filter(|s| !s.is_empty()).map(who).collect();
    match people.len() {
        0 => "nobody".into(),
        1 => people[0].clone(),
        _ => format!(
            "{} and {}",
            people[..people.len() - 1].join(", "),
            people[people.len() - 1]
        ),
    }
}

fn when(at: Option<DateTime<Utc>>) -> String {
    at.unwrap_or_else(Utc::now)
        .format("%Y-%m-%d %H:%M UTC")
        .to_string()
}

/// The first rendered message of the request, as its recipient gets it.
struct PreviewMessage {
    to: String,
    /// Empty for channels without subjects (SMS).
    subject: String,
    text: String,
    /// SMS: segments of this text, and the cost of the whole send.
    sms: Option<String>,
}

/// The first rendered message of the request. An SMS shows its final text,
/// sender name and STOP footer included, with its segments and the cost.
async fn preview(app: &App, v: &RequestView) -> anyhow::Result<PreviewMessage> {
    #[derive(FromQueryResult)]
    struct P {
        payload: String,
        first_name: Option<String>,
        last_name: Option<String>,
        email: Option<String>,
        phone: Option<String>,
    }
    let source = revision_source(v.source.as_deref().unwrap_or_default(), v.revision);
    let backend = app.db.get_database_backend();
    let row = P::find_by_statement(Statement::from_sql_and_values(
        backend,
        "SELECT m.payload AS payload, c.first_name AS first_name, c.last_name AS last_name, \
         c.email AS email, c.phone AS phone \
         FROM messages m LEFT JOIN contacts c ON c.id = m.contact_id \
         WHERE m.campaign_id = $1 AND m.source = $2 ORDER BY m.contact_id LIMIT 1",
        [Value::from(v.campaign_id), Value::from(source.clone())],
    ))
    .one(&app.db)
    .await?;
    let Some(row) = row else {
        return Ok(PreviewMessage {
            to: "nobody".into(),
            subject: String::new(),
            text: String::new(),
            sms: None,
        });
    };
    let sms = v.channel == Channel::Sms.as_str();
    // WhatsApp goes to a phone too, and has no subject.
    let phone = sms || v.channel == Channel::Whatsapp.as_str();
    let name = [row.first_name.as_deref(), row.last_name.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    let to = if !name.is_empty() {
        name
    } else if phone {
        crate::domain::mask_phone(row.phone.as_deref().unwrap_or_default())
    } else {
        crate::domain::mask_email(row.email.as_deref().unwrap_or_default())
    };
    let payload: serde_json::Value = serde_json::from_str(&row.payload).unwrap_or_default();
    let subject = payload
        .get("subject")
        .and_then(|s| s.as_str())
        .unwrap_or(if phone { "" } else { "(no subject)" });
    let text = payload
        .get("text")
        .and_then(|s| s.as_str())
        .unwrap_or_default();
    let sms = if sms {
        // Every message of the send, each counted on its own final text.
        #[derive(FromQueryResult)]
        struct Payload {
            payload: String,
        }
        let all = Payload::find_by_statement(Statement::from_sql_and_values(
            backend,
            "SELECT payload FROM messages WHERE campaign_id = $1 AND source = $2",
            [Value::from(v.campaign_id), Value::from(source)],
        ))
        .all(&app.db)
        .await?;
        let segments: usize = all
            .iter()
            .filter_map(|p| serde_json::from_str::<serde_json::Value>(&p.payload).ok())
            .map(|p| sms_segments(p.get("text").and_then(|t| t.as_str()).unwrap_or_default()).count)
            .sum();
        let price = app.settings.sms.price_per_segment;
        Some(format!(
            "*This text:* {}\n*Cost:* about {} ({segments} segment{} for {} recipient{} at ${price} a segment)",
            crate::sms::segments_words(&sms_segments(text)),
            crate::sms::dollars(crate::sms::cost(segments, price)),
            if segments == 1 { "" } else { "s" },
            all.len(),
            if all.len() == 1 { "" } else { "s" },
        ))
    } else {
        None
    };
    Ok(PreviewMessage {
        to: escape(&mask_addresses(&to)),
        subject: escape(&truncate(&mask_addresses(subject), 200)),
        // The end of a text carries its STOP footer: 1500 characters keep
        // any real SMS whole (ten segments are 1530 GSM-7 characters).
        text: escape(&truncate(&mask_addresses(text), 1500)),
        sms,
    })
}

fn status_line(v: &RequestView, so_far: &[String]) -> String {
    let needed = (v.required_approvals.max(1) as usize).saturating_sub(so_far.len());
    let rule = if v.required_approvals > 1 {
        "Two different approvers must approve"
    } else {
        "Only approvers can decide"
    };
    if so_far.is_empty() {
        format!(
            "Waiting for {needed} approver(s). {rule}; the requester cannot approve their own send."
        )
    } else {
        format!(
            "Approved so far by {}; waiting for {needed} more approver(s). {rule}.",
            mentions(&so_far.join(","))
        )
    }
}

/// The blocks and fallback text for the request in its current state.
async fn render(app: &App, v: &RequestView) -> anyhow::Result<SlackMessageContent> {
    let title = escape(&truncate(&v.name, 200));
    let audience = v.audience_ids().len();
    if v.state == ApprovalState::Pending {
        let so_far = decision::approvers_so_far(&app.db, v.id).await?;
        let message = preview(app, v).await?;
        let reasons = v.reasons();
        let reasons = if reasons.is_empty() {
            "• the approval policy".to_string()
        } else {
            reasons
                .iter()
                .map(|r| format!("• {}", escape(r)))
                .collect::<Vec<_>>()
                .join("\n")
        };
        let blocks = app.blocks.message_blocks(
            "approval_request.json.j2",
            json!({
                "requester": v.requester(),
                "title": title,
                "audience": audience,
                "channel": v.channel,
                "risk": v.risk,
                "schedule": v.schedule_text(),
                "reasons": reasons,
                "preview_to": message.to,
                "preview_subject": message.subject,
                "preview_text": message.text,
                "sms": message.sms,
                "approval_id": v.id.to_string(),
                "approve_action": actions::APPROVAL_APPROVE,
                "deny_action": actions::APPROVAL_DENY,
                "details_action": actions::APPROVAL_DETAILS,
                "status": status_line(v, &so_far),
            }),
        )?;
        return Ok(SlackMessageContent::new()
            .with_text(format!(
                "Approval needed: {} to {audience} contact(s), risk {}/10",
                v.name, v.risk
            ))
            .with_blocks(blocks));
    }
    let at = when(v.decided_at);
    let (header, outcome) = match v.state {
        ApprovalState::Approved => (
            "Approved",
            format!(
                ":white_check_mark: Approved by {} on {at}. The messages are queued.",
                mentions(v.decided_by.as_deref().unwrap_or_default())
            ),
        ),
        ApprovalState::Denied => (
            "Denied",
            format!(
                ":no_entry: Denied by {} on {at}. Nothing was sent.",
                mentions(v.decided_by.as_deref().unwrap_or_default())
            ),
        ),
        ApprovalState::Expired => (
            "Expired",
            format!(":hourglass: Expired on {at}: nobody decided in time. Nothing was sent."),
        ),
        ApprovalState::Void => (
            "Void: the draft changed",
            format!(
                ":wastebasket: Void since {at}: the draft was edited after this request, so this approval no longer applies. Nothing was sent from it; a new request replaces it."
            ),
        ),
        other => ("Decided", format!("{other} on {at}.")),
    };
    let reason = if v.state == ApprovalState::Denied {
        v.reason.as_deref().map(escape).unwrap_or_default()
    } else {
        String::new()
    };
    // Approved for later and not started: it can still be moved or
    // cancelled from here (campaigns::reschedule, campaigns::progress).
    let controls = v.state == ApprovalState::Approved
        && v.campaign_state == crate::domain::CampaignState::Scheduled
        && !crate::dispatcher::ledger::campaign_started(
            &app.db,
            v.campaign_id,
            crate::clock::now(),
        )
        .await?;
    let outcome = if v.state == ApprovalState::Approved
        && v.campaign_state == crate::domain::CampaignState::Cancelled
    {
        format!(
            "{outcome}\n:no_entry_sign: The campaign was cancelled since; nothing more of it is sent."
        )
    } else {
        outcome
    };
    let blocks = app.blocks.message_blocks(
        "approval_decided.json.j2",
        json!({
            "header": header,
            "requester": v.requester(),
            "title": title,
            "audience": audience,
            "channel": v.channel,
            "risk": v.risk,
            "schedule": v.schedule_text(),
            "outcome": outcome,
            "reason": truncate(&reason, 2000),
            "controls": controls,
            "campaign_id": v.campaign_id.to_string(),
            "cancel_action": actions::CAMPAIGN_CANCEL,
            "reschedule_action": actions::CAMPAIGN_RESCHEDULE,
        }),
    )?;
    Ok(SlackMessageContent::new()
        .with_text(format!("{}: {header}", v.name))
        .with_blocks(blocks))
}

/// Posts a new request to the approvals channel and remembers where.
/// With `tell_requester`, a failure is explained to the requester by DM.
pub async fn post_request(app: &App, id: i64) -> anyhow::Result<()> {
    post_request_with(app, id, true).await
}

pub(crate) async fn post_request_with(
    app: &App,
    id: i64,
    tell_requester: bool,
) -> anyhow::Result<()> {
    let Some(v) = load(&app.db, id).await? else {
        return Ok(());
    };
    if v.state != ApprovalState::Pending || v.slack_ts.is_some() {
        return Ok(());
    }
    let Some(channel) = app.settings.slack.approvals_channel.clone() else {
        return setup_problem(
            app,
            &v,
            tell_requester,
            "no approvals channel is configured",
            "An admin sets `WARMLINE_APPROVALS_CHANNEL` to the channel's id and restarts warmline.",
        )
        .await;
    };
    let content = render(app, &v).await?;
    match app
        .slack
        .post_message(SlackApiChatPostMessageRequest::new(
            channel.clone().into(),
            content,
        ))
        .await
    {
        Ok(resp) => {
            app.db
                .execute_raw(Statement::from_sql_and_values(
                    app.db.get_database_backend(),
                    "UPDATE approvals SET slack_channel = $1, slack_ts = $2 WHERE id = $3",
                    [
                        Value::from(resp.channel.0.clone()),
                        Value::from(resp.ts.0.clone()),
                        Value::from(v.id),
                    ],
                ))
                .await?;
            // The request is the campaign's thread (a newer request of an
            // edited draft replaces the older one's).
            crate::campaigns::thread::record(
                &app.db,
                v.campaign_id,
                &resp.channel.0,
                &resp.ts.0,
                false,
            )
            .await?;
            Ok(())
        }
        Err(e) if matches!(e.code(), Some("not_in_channel" | "channel_not_found")) => {
            setup_problem(
                app,
                &v,
                tell_requester,
                &format!("I cannot post in <#{channel}> ({})", e.code().unwrap_or_default()),
                "Invite me there with `/invite @warmline` (a private channel needs it), or fix `WARMLINE_APPROVALS_CHANNEL`. The request is kept and posted once I can.",
            )
            .await
        }
        Err(e) => Err(anyhow::Error::from(e).context("posting an approval request")),
    }
}

/// A request that cannot reach approvers: logged, audited, and explained
/// to the requester (when a person) — never silent.
async fn setup_problem(
    app: &App,
    v: &RequestView,
    tell_requester: bool,
    problem: &str,
    fix: &str,
) -> anyhow::Result<()> {
    tracing::error!(
        approval_id = v.id,
        campaign_id = v.campaign_id,
        problem,
        "approval request not posted: {fix}"
    );
    if !tell_requester {
        return Ok(());
    }
    crate::audit::record(
        &app.db,
        "warmline",
        "approval.not_posted",
        Some(&format!("approval:{}", v.id)),
        json!({"campaign_id": v.campaign_id, "problem": problem}),
    )
    .await?;
    if is_person(&v.requested_by) {
        let text = format!(
            ":warning: Your send *{}* needs approval, but {problem}. Nothing is sent until it is approved. {fix}",
            escape(&v.name)
        );
        dm(app, &v.requested_by, text).await?;
    }
    Ok(())
}

async fn dm(app: &App, user: &str, text: String) -> anyhow::Result<()> {
    app.slack
        .post_message(SlackApiChatPostMessageRequest::new(
            user.to_string().into(),
            SlackMessageContent::new().with_text(text),
        ))
        .await
        .map(|_| ())
        .map_err(|e| anyhow::Error::from(e).context("sending a DM to the requester"))
}

async fn ephemeral(app: &App, channel: &str, user: &str, text: String) -> anyhow::Result<()> {
    app.slack
        .post_ephemeral(SlackApiChatPostEphemeralRequest::new(
            channel.to_string().into(),
            user.to_string().into(),
            SlackMessageContent::new().with_text(text),
        ))
        .await
        .map(|_| ())
        .map_err(anyhow::Error::from)
}

/// Re-renders the request message in place (chat.update).
pub async fn update_request(app: &App, id: i64) -> anyhow::Result<()> {
    let Some(v) = load(&app.db, id).await? else {
        return Ok(());
    };
    let (Some(channel), Some(ts)) = (v.slack_channel.clone(), v.slack_ts.clone()) else {
        return Ok(());
    };
    let content = render(app, &v).await?;
    app.slack
        .update_message(SlackApiChatUpdateRequest::new(
            channel.into(),
            content,
            ts.into(),
        ))
        .await
        .map(|_| ())
        .map_err(|e| anyhow::Error::from(e).context("updating an approval request"))
}

/// Re-renders the approved request of a campaign, if it has one in Slack
/// (after the campaign was rescheduled, cancelled, paused…).
pub async fn update_campaign_request(app: &App, campaign_id: i64) -> anyhow::Result<()> {
    #[derive(FromQueryResult)]
    struct Id {
        id: i64,
    }
    let latest = Id::find_by_statement(Statement::from_sql_and_values(
        app.db.get_database_backend(),
        format!(
            "SELECT id FROM approvals WHERE campaign_id = $1 AND state = {} \
             AND slack_ts IS NOT NULL ORDER BY id DESC LIMIT 1",
            ApprovalState::Approved.sql()
        ),
        [Value::from(campaign_id)],
    ))
    .one(&app.db)
    .await?;
    match latest {
        Some(a) => update_request(app, a.id).await,
        None => Ok(()),
    }
}

/// What the person who clicked hears; the one place outcomes become words.
pub fn describe(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Approved { released, .. } => {
            format!("Approved. {released} message(s) are on their way.")
        }
        Outcome::Recorded { needed, .. } => format!(
            "Your approval is recorded. This send needs {needed} more approval(s) from a different approver."
        ),
        Outcome::Denied { .. } => "Denied. Nothing will be sent.".into(),
        Outcome::Refused(Refusal::NotApprover) => {
            "Only approvers can decide on approval requests; nothing changed.".into()
        }
        Outcome::Refused(Refusal::OwnRequest) => {
            "You cannot approve your own send; another approver has to. Nothing changed.".into()
        }
        Outcome::AlreadyDecided { state } => {
            format!("This request was already {state}; nothing changed.")
        }
        Outcome::AlreadyVoted => "You already decided on this request; nothing changed.".into(),
        Outcome::Void => "The draft changed after this request, so the approval is void. Nothing was sent; the new version needs its own approval.".into(),
        Outcome::NoSuchApproval => "There is no such approval request.".into(),
    }
}

/// Tells everyone what a decision did: the clicker (ephemeral), the request
/// message (in place), the requester (DM).
pub async fn after_decision(
    app: &App,
    id: i64,
    user: &str,
    channel: Option<String>,
    outcome: &Outcome,
) -> anyhow::Result<()> {
    let quiet = matches!(outcome, Outcome::Approved { .. } | Outcome::Denied { .. });
    if !quiet && let Some(channel) = &channel {
        ephemeral(app, channel, user, describe(outcome)).await?;
    }
    if outcome.is_final() || matches!(outcome, Outcome::Recorded { .. }) {
        update_request(app, id).await?;
    }
    let Some(v) = load(&app.db, id).await? else {
        return Ok(());
    };
    if !is_person(&v.requested_by) {
        return Ok(());
    }
    let name = escape(&v.name);
    let text = match outcome {
        Outcome::Approved {
            approvers,
            released,
        } => format!(
            ":white_check_mark: Your send *{name}* was approved by {}. {released} message(s) are on their way.",
            mentions(&approvers.join(","))
        ),
        Outcome::Denied { reason } => format!(
            ":no_entry: Your send *{name}* was denied by <@{user}>. Reason: {}",
            escape(reason)
        ),
        _ => return Ok(()),
    };
    dm(app, &v.requested_by, text).await
}

/// A block action on a request: Approve, Deny or Details.
pub async fn handle_action(
    app: &App,
    ev: &SlackInteractionBlockActionsEvent,
    action: &SlackInteractionActionInfo,
) -> Result<(), IngressError> {
    let Some(user) = ev.user.as_ref().map(|u| u.id.0.clone()) else {
        return Ok(());
    };
    let id = IngressError::id_in(
        action.value.as_deref(),
        "approval action without an approval id",
    )?;
    let channel = ev.channel.as_ref().map(|c| c.id.0.clone());
    let app2 = app.clone();
    match action.action_id.0.as_str() {
        actions::APPROVAL_APPROVE => app.spawn("decide an approval", async move {
            let outcome =
                decision::decide(&app2, id, &user, Choice::Approve, crate::clock::now()).await?;
            after_decision(&app2, id, &user, channel, &outcome).await?;
            republish_home(&app2, &user, &outcome).await
        }),
        actions::APPROVAL_DENY => {
            // The trigger id dies in 3 s: open the modal first, before any
            // other work; only a user-group lookup may come before it.
            let trigger = ev.trigger_id.clone();
            let listed = app.settings.slack.approvers.contains(&user);
            app.spawn("open the deny reason modal", async move {
                if listed || decision::is_approver(&app2, &user).await {
                    open_deny_modal(&app2, trigger, id).await
                } else if let Some(channel) = channel {
                    ephemeral(
                        &app2,
                        &channel,
                        &user,
                        describe(&Outcome::Refused(Refusal::NotApprover)),
                    )
                    .await
                } else {
                    Ok(())
                }
            })
        }
        actions::APPROVAL_DETAILS => app.spawn("show approval details", async move {
            match channel {
                Some(channel) => post_details(&app2, id, &channel, &user).await,
                None => Ok(()),
            }
        }),
        _ => {}
    }
    Ok(())
}

/// The decider's Home lists what waits for them: after their click it is
/// published again (whether they clicked there or in the approvals
/// channel), so it never offers a request that is decided.
async fn republish_home(app: &App, user: &str, outcome: &Outcome) -> anyhow::Result<()> {
    if !matches!(outcome, Outcome::Refused(_)) {
        crate::slack::home::publish(app, &SlackUserId::new(user.to_string())).await?;
    }
    Ok(())
}

async fn open_deny_modal(app: &App, trigger: SlackTriggerId, id: i64) -> anyhow::Result<()> {
    let title = load(&app.db, id)
        .await?
        .map(|v| escape(&truncate(&v.name, 200)))
        .unwrap_or_default();
    let view = app.blocks.view(
        "deny_reason_modal.json.j2",
        json!({
            "callback_id": actions::APPROVAL_DENY_REASON,
            "approval_id": id.to_string(),
            "title": title,
        }),
    )?;
    app.slack
        .views_open(SlackApiViewsOpenRequest::new(trigger, view))
        .await
        .map(|_| ())
        .map_err(|e| anyhow::Error::from(e).context("opening the deny reason modal"))
}

/// Whether a `view_submission` comes from the deny reason modal.
pub fn is_deny_submission(ev: &SlackInteractionViewSubmissionEvent) -> bool {
    match &ev.view.view {
        SlackView::Modal(m) => m
            .callback_id
            .as_ref()
            .is_some_and(|c| c.0 == actions::APPROVAL_DENY_REASON),
        SlackView::Home(_) => false,
    }
}

/// The deny modal's `view_submission`: a reason is required; the decision
/// runs after the answer (the modal closes at once).
pub async fn handle_deny_submission(
    app: &App,
    ev: &SlackInteractionViewSubmissionEvent,
) -> Result<SlackInteractionResponse, IngressError> {
    let view = serde_json::to_value(&ev.view)
        .map_err(|e| IngressError::Malformed(format!("unreadable view: {e}")))?;
    let id = IngressError::id_in(
        view.pointer("/private_metadata").and_then(|v| v.as_str()),
        "deny modal without an approval id",
    )?;
    let reason = view
        .pointer("/state/values/reason/reason/value")
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .trim()
        .to_string();
    if reason.is_empty() {
        return Ok(SlackInteractionResponse::ViewSubmission(
            SlackViewSubmissionResponse::Errors(SlackViewSubmissionErrorsResponse::new(
                HashMap::from([(
                    "reason".to_string(),
                    "Say why, so the requester knows what to change.".to_string(),
                )]),
            )),
        ));
    }
    let user = ev.user.id.0.clone();
    let app2 = app.clone();
    app.spawn("deny an approval", async move {
        let outcome = decision::decide(
            &app2,
            id,
            &user,
            Choice::Deny { reason },
            crate::clock::now(),
        )
        .await?;
        let channel = load(&app2.db, id)
            .await?
            .and_then(|v| v.slack_channel)
            .or_else(|| app2.settings.slack.approvals_channel.clone());
        after_decision(&app2, id, &user, channel, &outcome).await?;
        republish_home(&app2, &user, &outcome).await
    });
    Ok(SlackInteractionResponse::Empty)
}

/// The whole audience and the risk, as an ephemeral message.
async fn post_details(app: &App, id: i64, channel: &str, user: &str) -> anyhow::Result<()> {
    const SHOWN: usize = 50;
    let Some(v) = load(&app.db, id).await? else {
        return ephemeral(app, channel, user, describe(&Outcome::NoSuchApproval)).await;
    };
    let ids = v.audience_ids();
    let people = super::request::load_recipients(&app.db, &ids[..ids.len().min(SHOWN)]).await?;
    let mut text = format!(
        "*{}* ({}), requested by {}: {} contact(s) by {}, {}.\n*Risk {}/10*\n",
        escape(&v.name),
        v.state,
        v.requester(),
        ids.len(),
        v.channel,
        v.schedule_text(),
        v.risk
    );
    for r in v.reasons() {
        text.push_str(&format!("• {}\n", escape(&r)));
    }
    text.push_str("*Audience*\n");
    for p in &people {
        let name = [p.first_name.as_deref(), p.last_name.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        text.push_str(&format!(
            "• {} — {} — warmth {:.0}\n",
            escape(if name.is_empty() { "(no name)" } else { &name }),
            crate::domain::mask_email(p.email.as_deref().unwrap_or_default()),
            p.warmth
        ));
    }
    if ids.len() > SHOWN {
        text.push_str(&format!("… and {} more\n", ids.len() - SHOWN));
    }
    ephemeral(app, channel, user, truncate(&text, 3500)).await
}

/// Reminds the approvers in the request's thread.
pub(crate) async fn remind(app: &App, id: i64, now: DateTime<Utc>) -> anyhow::Result<()> {
    let Some(v) = load(&app.db, id).await? else {
        return Ok(());
    };
    let (Some(channel), Some(ts)) = (v.slack_channel.clone(), v.slack_ts.clone()) else {
        return Ok(());
    };
    let hours = (now - v.created_at).num_minutes() as f64 / 60.0;
    let mut who: Vec<String> = app
        .settings
        .slack
        .approvers
        .iter()
        .filter(|a| **a != v.requested_by)
        .map(|a| format!("<@{a}>"))
        .collect();
    if let Some(group) = &app.settings.approval.approver_group {
        who.push(format!("<!subteam^{group}>"));
    }
    let who = if who.is_empty() {
        "An approver".to_string()
    } else {
        who.join(" ")
    };
    let text = format!(
        ":bell: Reminder: *{}* has waited {hours:.1} hour(s) for a decision. {who} can approve or deny it above.",
        escape(&v.name)
    );
    app.slack
        .post_message(
            SlackApiChatPostMessageRequest::new(
                channel.into(),
                SlackMessageContent::new().with_text(text),
            )
            .with_thread_ts(ts.into()),
        )
        .await
        .map(|_| ())
        .map_err(|e| anyhow::Error::from(e).context("posting an approval reminder"))
}

/// After an expiry: the request in place, and the requester told.
pub(crate) async fn expired(app: &App, id: i64) -> anyhow::Result<()> {
    update_request(app, id).await?;
    let Some(v) = load(&app.db, id).await? else {
        return Ok(());
    };
    if is_person(&v.requested_by) {
        dm(
            app,
            &v.requested_by,
            format!(
                ":hourglass: Your send *{}* expired without a decision. Nothing was sent; submit it again to ask anew.",
                escape(&v.name)
            ),
        )
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn people_are_mentioned_and_automations_named() {
        assert_eq!(mentions("U1AAA,U2BBB"), "<@U1AAA> and <@U2BBB>");
        assert_eq!(mentions("trigger:cold"), "`trigger:cold`");
        assert_eq!(mentions(""), "nobody");
    }

    #[test]
    fn every_outcome_has_words() {
        for o in [
            Outcome::Void,
            Outcome::AlreadyVoted,
            Outcome::Refused(Refusal::OwnRequest),
            Outcome::Refused(Refusal::NotApprover),
        ] {
            assert!(!describe(&o).is_empty());
        }
        assert!(describe(&Outcome::Refused(Refusal::NotApprover)).contains("Only approvers"));
    }
}
