//! Moving an approved campaign that has not started yet. The Reschedule
//! button (on the approval request once approved, and on the App Home tab)
//! opens a modal with a date and time; its submission moves the scheduled
//! messages' due time in the ledger. Cancelling such a campaign is the
//! progress message's Cancel ([`super::progress`]), the same action.
//!
//! Invariants:
//! - Only approvers and the campaign's requester may reschedule, the same
//!   rule as Pause / Resume / Cancel ([`super::progress::may_decide`]).
//! - Only a campaign in state `scheduled` of which nothing has started: no
//!   message is due or past `scheduled` (skipped ones aside). Once one is,
//!   the answer says so; Pause and Cancel still work in its thread.
//! - A move is one transaction under the campaign's row lock: the messages'
//!   `next_attempt_at`, the campaign's `schedule`, and the audit record
//!   (from, to). The time it already has changes nothing and is not
//!   audited, so a repeated submission takes effect once.
//! - The approval is bound to content, not time: the campaign's
//!   `content_hash` (what was approved) is left as it is and the approval
//!   stands; the audit log records who moved it.
//! - A time in the past is refused on the modal's field.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, FromQueryResult, Statement, Value};
use serde_json::json;
use slack_morphism::prelude::*;

use super::thread::schedule_words;
use crate::{
    approval::Schedule,
    dispatcher::ledger,
    domain::{CampaignState, MessageState},
    slack::{
        actions,
        error::IngressError,
        modal_form::{Values, errors, field},
        mrkdwn::escape as mrkdwn,
    },
    state::App,
};

/// The modal's date-and-time field (block id and action id).
const FIELD: &str = "send_at";

/// Why a reschedule was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Neither an approver nor the requester.
    NotAllowed,
    /// Something of the campaign is due or sent already.
    Started,
    /// The campaign is not scheduled (its state).
    NotScheduled(CampaignState),
    /// The new time is not ahead of now.
    Past,
}

impl Refusal {
    /// What the person hears.
    pub fn describe(&self) -> String {
        match self {
            Refusal::NotAllowed => "Only approvers and the person who requested this campaign can reschedule or cancel it.".into(),
            Refusal::Started => "This campaign has started sending, so it can no longer be rescheduled. It can still be paused or cancelled from its thread.".into(),
            Refusal::NotScheduled(CampaignState::AwaitingApproval) => "This campaign is still waiting for approval; change its schedule in the draft instead.".into(),
            Refusal::NotScheduled(CampaignState::Cancelled) => "This campaign was cancelled; nothing is left to reschedule.".into(),
            Refusal::NotScheduled(CampaignState::Running | CampaignState::Paused | CampaignState::Completed) => Refusal::Started.describe(),
            Refusal::NotScheduled(state) => format!("This campaign is {state}, not scheduled; nothing to reschedule."),
            Refusal::Past => "That time is in the past; choose one ahead.".into(),
        }
    }
}

/// What a reschedule did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Moved: this many messages are now due at the new time.
    Moved(u64),
    /// It already goes out at that time; nothing changed.
    Unchanged,
    Refused(Refusal),
    NoSuchCampaign,
}

#[derive(Debug, FromQueryResult)]
struct Campaign {
    name: String,
    state: CampaignState,
    schedule: Option<String>,
}

async fn load(
    conn: &impl ConnectionTrait,
    id: i64,
    lock: bool,
) -> anyhow::Result<Option<Campaign>> {
    let lock = if lock && crate::db::is_postgres(conn) {
        " FOR UPDATE"
    } else {
        ""
    };
    Ok(Campaign::find_by_statement(Statement::from_sql_and_values(
        conn.get_database_backend(),
        format!("SELECT name, state, schedule FROM campaigns WHERE id = $1{lock}"),
        [Value::from(id)],
    ))
    .one(conn)
    .await?)
}

/// Why the campaign cannot be rescheduled now, if it cannot (the permission
/// aside): the rule the button and the submission both apply.
async fn not_movable(
    conn: &impl ConnectionTrait,
    id: i64,
    c: &Campaign,
    now: DateTime<Utc>,
) -> anyhow::Result<Option<Refusal>> {
    if c.state != CampaignState::Scheduled {
        return Ok(Some(Refusal::NotScheduled(c.state)));
    }
    if ledger::campaign_started(conn, id, now).await? {
        return Ok(Some(Refusal::Started));
    }
    Ok(None)
}

/// Moves campaign `id` to `at` for `actor`, once, audited, in one
/// transaction. The caller has checked that `actor` may.
pub async fn reschedule(
    db: &DatabaseConnection,
    id: i64,
    at: DateTime<Utc>,
    actor: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<Outcome> {
    if at <= now {
        return Ok(Outcome::Refused(Refusal::Past));
    }
    let txn = crate::db::begin_write(db).await?;
    let Some(c) = load(&txn, id, true).await? else {
        return Ok(Outcome::NoSuchCampaign);
    };
    if let Some(why) = not_movable(&txn, id, &c, now).await? {
        return Ok(Outcome::Refused(why));
    }
    let to = Schedule::At { at };
    let before = c
        .schedule
        .as_deref()
        .and_then(|s| serde_json::from_str::<Schedule>(s).ok());
    if before.as_ref() == Some(&to) {
        return Ok(Outcome::Unchanged);
    }
    let backend = txn.get_database_backend();
    let moved = txn
        .execute_raw(Statement::from_sql_and_values(
            backend,
            format!(
                "UPDATE messages SET next_attempt_at = $1, updated_at = $2 \
                 WHERE campaign_id = $3 AND state = {}",
                MessageState::Scheduled.sql()
            ),
            [Value::from(at), Value::from(now), Value::from(id)],
        ))
        .await?
        .rows_affected();
    txn.execute_raw(Statement::from_sql_and_values(
        backend,
        "UPDATE campaigns SET schedule = $1, updated_at = $2 WHERE id = $3",
        [
            Value::from(serde_json::to_string(&to).expect("plain data serialises")),
            Value::from(now),
            Value::from(id),
        ],
    ))
    .await?;
    crate::audit::record(
        &txn,
        actor,
        "campaign.reschedule",
        Some(&format!("campaign:{id}")),
        json!({
            "from": before,
            "to": to,
            "messages": moved,
            "approval": "kept: an approval covers the content, not the time",
        }),
    )
    .await?;
    txn.commit().await?;
    tracing::info!(campaign_id = id, actor, %at, moved, "campaign rescheduled");
    Ok(Outcome::Moved(moved))
}

// ------------------------------------------------------------------ Slack

/// Whether an action id is the Reschedule button.
pub fn handles(action_id: &str) -> bool {
    action_id == actions::CAMPAIGN_RESCHEDULE
}

/// Whether a `view_submission` comes from the reschedule modal.
pub fn owns_view(ev: &SlackInteractionViewSubmissionEvent) -> bool {
    match &ev.view.view {
        SlackView::Modal(m) => m
            .callback_id
            .as_ref()
            .is_some_and(|c| c.0 == actions::CAMPAIGN_RESCHEDULE_SUBMIT),
        SlackView::Home(_) => false,
    }
}

fn result_modal(app: &App, title: &str, text: String) -> anyhow::Result<SlackView> {
    Ok(app.blocks.view(
        "modal_result.json.j2",
        json!({ "title": title, "text": text }),
    )?)
}

/// A click on Reschedule: the modal, or a view saying why not. Only reads
/// come before `views.open` (and a user-group lookup, as for Deny).
pub async fn handle_action(
    app: &App,
    ev: &SlackInteractionBlockActionsEvent,
    action: &SlackInteractionActionInfo,
) -> Result<(), IngressError> {
    let Some(user) = ev.user.as_ref().map(|u| u.id.0.clone()) else {
        return Ok(());
    };
    let id = IngressError::id_in(action.value.as_deref(), "reschedule without a campaign id")?;
    let trigger = ev.trigger_id.clone();
    let app2 = app.clone();
    app.spawn("open the reschedule modal", async move {
        let now = crate::clock::now();
        let view = match load(&app2.db, id, false).await? {
            None => result_modal(&app2, "Not found", "That campaign no longer exists.".into())?,
            Some(c) => {
                let why = if super::progress::may_decide(&app2, id, &user).await? {
                    not_movable(&app2.db, id, &c, now).await?
                } else {
                    Some(Refusal::NotAllowed)
                };
                match why {
                    Some(why) => result_modal(&app2, "Cannot reschedule", why.describe())?,
                    None => {
                        let current = c
                            .schedule
                            .as_deref()
                            .and_then(|s| serde_json::from_str::<Schedule>(s).ok());
                        let initial = match current {
                            Some(Schedule::At { at }) => Some(at.timestamp()),
                            _ => None,
                        };
                        let name: String = c.name.chars().take(200).collect();
                        app2.blocks.view(
                            "campaign_reschedule_modal.json.j2",
                            json!({
                                "callback_id": actions::CAMPAIGN_RESCHEDULE_SUBMIT,
                                "campaign_id": id.to_string(),
                                "name": mrkdwn(&name),
                                "when": schedule_words(c.schedule.as_deref()),
                                "field": FIELD,
                                "initial": initial,
                            }),
                        )?
                    }
                }
            }
        };
        app2.slack
            .views_open(SlackApiViewsOpenRequest::new(trigger, view))
            .await
            .map(|_| ())
            .map_err(|e| anyhow::Error::from(e).context("opening the reschedule modal"))
    });
    Ok(())
}

fn picked(values: &Values) -> Option<DateTime<Utc>> {
    field(values, FIELD)
        .and_then(|v| v.selected_date_time.as_ref())
        .and_then(|t| DateTime::<Utc>::from_timestamp(t.0.as_second(), 0))
}

/// The modal's submission: refused on the field (past, not allowed,
/// started), or applied at once (a database write) and answered with a
/// result view; the request message and the person's Home follow.
pub async fn on_view_submission(
    app: &App,
    ev: &SlackInteractionViewSubmissionEvent,
) -> Result<SlackInteractionResponse, IngressError> {
    let SlackView::Modal(modal) = &ev.view.view else {
        return Ok(SlackInteractionResponse::Empty);
    };
    let id = IngressError::id_in(
        modal.private_metadata.as_deref(),
        "reschedule modal without a campaign id",
    )?;
    let values = crate::slack::modal_form::submitted(&ev.view);
    let user = ev.user.id.0.clone();
    let now = crate::clock::now();
    let Some(at) = picked(&values) else {
        return Ok(errors(vec![(FIELD, "Choose the date and time.".into())]));
    };
    if at <= now {
        return Ok(errors(vec![(FIELD, Refusal::Past.describe())]));
    }
    if !super::progress::may_decide(app, id, &user).await? {
        return Ok(errors(vec![(FIELD, Refusal::NotAllowed.describe())]));
    }
    let text = match reschedule(&app.db, id, at, &user, now).await? {
        Outcome::Refused(why) => return Ok(errors(vec![(FIELD, why.describe())])),
        Outcome::NoSuchCampaign => "That campaign no longer exists.".to_string(),
        Outcome::Unchanged => format!(
            "It already goes out at {}; nothing changed.",
            at.format("%Y-%m-%d %H:%M UTC")
        ),
        Outcome::Moved(n) => {
            let app2 = app.clone();
            let who = ev.user.id.clone();
            app.spawn("show a rescheduled campaign", async move {
                crate::approval::slack::update_campaign_request(&app2, id).await?;
                crate::slack::home::publish(&app2, &who).await?;
                Ok(())
            });
            format!(
                ":calendar: Rescheduled: {n} message(s) now go out at {}. The approval stands; the change is in the audit log.",
                at.format("%Y-%m-%d %H:%M UTC")
            )
        }
    };
    let view = result_modal(app, "Rescheduled", text)?;
    Ok(SlackInteractionResponse::ViewSubmission(
        SlackViewSubmissionResponse::Update(SlackViewSubmissionUpdateResponse::new(view)),
    ))
}
