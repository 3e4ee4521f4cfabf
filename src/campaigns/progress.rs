//! A running campaign as its Slack thread shows it: one progress message,
//! posted in the approval request's thread and edited in place while the
//! counts change, with Pause / Resume / Cancel buttons; and, once nothing of
//! the campaign can still move, a final edit and one summary (sent,
//! delivered, bounced, complained, unsubscribed, skipped with reasons,
//! failed, ambiguous).
//!
//! Invariants:
//! - Every number is read from the ledger (`messages`, `consents`), never
//!   from a counter; completion is [`ledger::campaign_complete`]. "Sent" is
//!   what the provider accepted (`sent` + `delivered` + `bounced` +
//!   `complained`); the other three are its later outcomes.
//! - One progress message per campaign, and at most one edit per
//!   `[campaigns] progress_interval_secs`, across processes: the right to
//!   post or edit is claimed first with a guarded `UPDATE campaigns … WHERE
//!   progress_edited_at <= now - interval` (a lease for the first post), and
//!   only the process whose update matched calls Slack. Unchanged counts are
//!   not edited at all.
//! - The summary is claimed with `UPDATE … SET summary_posted_at = now WHERE
//!   summary_posted_at IS NULL` before it is posted: once per campaign, on
//!   restarts and with several processes. A post Slack refused releases the
//!   claim, so the next tick tries again.
//! - A decision (Pause / Resume / Cancel) is allowed to approvers and the
//!   campaign's requester, applied in one transaction with its audit record
//!   after locking the campaign row, and only from a state it changes: a
//!   second click finds nothing to do and says so. Others get an ephemeral
//!   refusal and nothing changes.
//! - [`tick`] takes `now`, so tests drive time without sleeping.
//! - Slack's per-channel pace is kept by the Web API wrapper
//!   (`slack::api`, about one post or edit per second per channel); this
//!   module only decides what to post.

use std::{collections::BTreeMap, time::Duration};

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, FromQueryResult, Statement, Value};
use serde::Serialize;
use serde_json::json;
use slack_morphism::prelude::*;

use crate::{
    dispatcher::ledger,
    domain::{CampaignState, MessageState},
    slack::{actions, error::IngressError},
    state::App,
};

/// How long a first post may take before another process may try it.
const POST_LEASE_SECS: i64 = 60;

/// Consent sources that mean "the recipient unsubscribed".
const UNSUBSCRIBE_SOURCES: &str = "'one_click_unsubscribe', 'preferences_page', 'reply_keyword'";

/// A campaign's numbers, from the ledger.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub total: i64,
    /// Accepted by the provider (including what was later delivered,
    /// bounced or complained about).
    pub sent: i64,
    pub delivered: i64,
    pub bounced: i64,
    pub complained: i64,
    pub failed: i64,
    pub ambiguous: i64,
    /// Skipped, by reason (`no_consent`, `cancelled`, …).
    pub skipped: BTreeMap<String, i64>,
    /// Held by a pause.
    pub paused: i64,
    /// Not yet settled and not paused (waiting, scheduled, being sent).
    pub waiting: i64,
    /// Recipients who unsubscribed after the campaign started sending.
    pub unsubscribed: i64,
}

impl Counts {
    pub fn skipped_total(&self) -> i64 {
        self.skipped.values().sum()
    }

    /// Messages with an outcome.
    pub fn done(&self) -> i64 {
        self.sent + self.failed + self.ambiguous + self.skipped_total()
    }

    /// "2 no consent, 1 cancelled".
    pub fn skipped_reasons(&self) -> String {
        self.skipped
            .iter()
            .map(|(reason, n)| format!("{n} {}", reason.replace('_', " ")))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Reads a campaign's counts.
pub async fn counts(conn: &impl ConnectionTrait, campaign_id: i64) -> anyhow::Result<Counts> {
    #[derive(FromQueryResult)]
    struct Row {
        state: MessageState,
        reason: String,
        n: i64,
    }
    let backend = conn.get_database_backend();
    let rows = Row::find_by_statement(Statement::from_sql_and_values(
        backend,
        "SELECT state, COALESCE(skip_reason, '') AS reason, CAST(COUNT(*) AS BIGINT) AS n \
         FROM messages WHERE campaign_id = $1 GROUP BY state, skip_reason",
        [Value::from(campaign_id)],
    ))
    .all(conn)
    .await?;
    let mut c = Counts::default();
    for r in rows {
        c.total += r.n;
        match r.state {
            MessageState::Sent => c.sent += r.n,
            MessageState::Delivered => {
                c.sent += r.n;
                c.delivered += r.n;
            }
            MessageState::Bounced => {
                c.sent += r.n;
                c.bounced += r.n;
            }
            MessageState::Complained => {
                c.sent += r.n;
                c.complained += r.n;
            }
            MessageState::Failed => c.failed += r.n,
            MessageState::Ambiguous => c.ambiguous += r.n,
            MessageState::Skipped => {
                let reason = if r.reason.is_empty() {
                    "other".to_string()
                } else {
                    r.reason
                };
                *c.skipped.entry(reason).or_default() += r.n;
            }
            MessageState::Paused => c.paused += r.n,
            _ => c.waiting += r.n,
        }
    }
    // Revocations by the recipients themselves, after this campaign's first
    // send, on the campaign's channel, of recipients the provider accepted.
    // Timestamps are compared as stored (one format on both backends).
    c.unsubscribed = crate::db::count(
        conn,
        &format!(
            "SELECT CAST(COUNT(DISTINCT c.contact_id) AS BIGINT) AS n FROM consents c \
             WHERE c.granted = $2 AND c.source IN ({UNSUBSCRIBE_SOURCES}) \
             AND c.contact_id IN (SELECT m.contact_id FROM messages m WHERE m.campaign_id = $1 \
               AND m.contact_id IS NOT NULL AND m.channel = c.channel \
               AND m.state IN ({accepted})) \
             AND c.recorded_at >= (SELECT MIN(e.at) FROM message_events e \
               JOIN messages m2 ON m2.id = e.message_id \
               WHERE m2.campaign_id = $1 AND e.state = {sending})",
            accepted = MessageState::sql_list(MessageState::ACCEPTED),
            sending = MessageState::Sending.sql(),
        ),
        vec![Value::from(campaign_id), Value::from(false)],
    )
    .await?;
    Ok(c)
}

/// What the progress message says about the campaign's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Sending,
    Paused,
    Cancelled,
    Finished,
}

impl Status {
    fn of(campaign_state: CampaignState, complete: bool) -> Self {
        match (campaign_state, complete) {
            (CampaignState::Cancelled, _) => Status::Cancelled,
            (_, true) => Status::Finished,
            (CampaignState::Paused, _) => Status::Paused,
            _ => Status::Sending,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Sending => "sending",
            Status::Paused => "paused",
            Status::Cancelled => "cancelled",
            Status::Finished => "finished",
        }
    }
}

#[derive(Debug, Clone, FromQueryResult)]
struct Campaign {
    id: i64,
    name: String,
    state: CampaignState,
    created_by: String,
    slack_channel: Option<String>,
    slack_ts: Option<String>,
    progress_ts: Option<String>,
    progress_counts: Option<String>,
}

const CAMPAIGN_COLUMNS: &str =
    "id, name, state, created_by, slack_channel, slack_ts, progress_ts, progress_counts";

async fn campaign(conn: &impl ConnectionTrait, id: i64) -> anyhow::Result<Option<Campaign>> {
    Ok(Campaign::find_by_statement(Statement::from_sql_and_values(
        conn.get_database_backend(),
        format!("SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE id = $1"),
        [Value::from(id)],
    ))
    .one(conn)
    .await?)
}

/// Everything one rendering of the progress message needs.
struct View {
    counts: Counts,
    status: Status,
    complete: bool,
}

impl View {
    async fn read(conn: &impl ConnectionTrait, c: &Campaign) -> anyhow::Result<Self> {
        let counts = counts(conn, c.id).await?;
        let complete = ledger::campaign_complete(conn, c.id).await?;
        Ok(Self {
            status: Status::of(c.state, complete),
            counts,
            complete,
        })
    }

    /// What is compared to decide whether an edit is needed.
    fn digest(&self) -> String {
        json!({"status": self.status.as_str(), "counts": self.counts}).to_string()
    }
}

/// The campaign's name, cut and escaped so it cannot mention `@channel`.
fn name_of(c: &Campaign) -> String {
    use crate::slack::mrkdwn::{escape, truncate};
    escape(&truncate(&c.name, 200))
}

fn progress_content(app: &App, c: &Campaign, v: &View) -> anyhow::Result<SlackMessageContent> {
    let k = &v.counts;
    let status = v.status;
    let buttons = !v.complete && status != Status::Cancelled;
    let blocks = app.blocks.message_blocks(
        "campaign_progress.json.j2",
        json!({
            "campaign": name_of(c),
            "campaign_id": c.id.to_string(),
            "status": status.as_str(),
            "done": k.done(),
            "total": k.total,
            "sent": k.sent,
            "delivered": k.delivered,
            "bounced": k.bounced,
            "complained": k.complained,
            "failed": k.failed,
            "ambiguous": k.ambiguous,
            "skipped": k.skipped_total(),
            "waiting": k.waiting,
            "paused": k.paused,
            // Only a running campaign pauses (see `decide`).
            "show_pause": buttons && status == Status::Sending && c.state == CampaignState::Running,
            "show_resume": buttons && status == Status::Paused,
            "show_cancel": buttons,
            "pause_action": actions::CAMPAIGN_PAUSE,
            "resume_action": actions::CAMPAIGN_RESUME,
            "cancel_action": actions::CAMPAIGN_CANCEL,
        }),
    )?;
    let text = format!(
        "{}: {} of {} done ({})",
        name_of(c),
        k.done(),
        k.total,
        status.as_str()
    );
    Ok(SlackMessageContent::new()
        .with_text(text)
        .with_blocks(blocks))
}

fn summary_content(app: &App, c: &Campaign, v: &View) -> anyhow::Result<SlackMessageContent> {
    let k = &v.counts;
    let blocks = app.blocks.message_blocks(
        "campaign_summary.json.j2",
        json!({
            "campaign": name_of(c),
            "status": v.status.as_str(),
            "total": k.total,
            "sent": k.sent,
            "delivered": k.delivered,
            "bounced": k.bounced,
            "complained": k.complained,
            "unsubscribed": k.unsubscribed,
            "skipped": k.skipped_total(),
            "skipped_reasons": k.skipped_reasons(),
            "failed": k.failed,
            "ambiguous": k.ambiguous,
        }),
    )?;
    let text = format!(
        "{} {}: {} sent, {} delivered, {} bounced, {} complained, {} unsubscribed, {} skipped, {} failed, {} ambiguous",
        name_of(c),
        v.status.as_str(),
        k.sent,
        k.delivered,
        k.bounced,
        k.complained,
        k.unsubscribed,
        k.skipped_total(),
        k.failed,
        k.ambiguous
    );
    Ok(SlackMessageContent::new()
        .with_text(text)
        .with_blocks(blocks))
}

/// Runs a guarded `UPDATE campaigns … RETURNING progress_ts`: `Some` when
/// this caller won the claim (with the message ts as it is now).
async fn claim(
    conn: &impl ConnectionTrait,
    sql: &str,
    values: Vec<Value>,
) -> anyhow::Result<Option<Option<String>>> {
    #[derive(FromQueryResult)]
    struct Claimed {
        progress_ts: Option<String>,
    }
    Ok(Claimed::find_by_statement(Statement::from_sql_and_values(
        conn.get_database_backend(),
        format!("{sql} RETURNING progress_ts"),
        values,
    ))
    .one(conn)
    .await?
    .map(|c| c.progress_ts))
}

/// What one tick did, by campaign id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tick {
    pub posted: Vec<i64>,
    pub edited: Vec<i64>,
    pub summarised: Vec<i64>,
}

/// Posts, edits and summarises what is due at `now`.
pub async fn tick(app: &App, now: DateTime<Utc>) -> anyhow::Result<Tick> {
    // Campaigns with a thread, not yet summarised, of which something has
    // left approval and its schedule (so there is progress to show).
    let due = Campaign::find_by_statement(Statement::from_sql_and_values(
        app.db.get_database_backend(),
        format!(
            "SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE slack_channel IS NOT NULL \
             AND slack_ts IS NOT NULL AND summary_posted_at IS NULL \
             AND state IN ({live}) \
             AND EXISTS (SELECT 1 FROM messages m WHERE m.campaign_id = campaigns.id \
               AND m.state NOT IN ({not_started})) ORDER BY id",
            live = CampaignState::sql_list(&[
                CampaignState::Running,
                CampaignState::Scheduled,
                CampaignState::Paused,
                CampaignState::Cancelled,
                CampaignState::Completed,
            ]),
            not_started = MessageState::sql_list(&[
                MessageState::AwaitingApproval,
                MessageState::Scheduled,
                MessageState::Held,
            ]),
        ),
        [],
    ))
    .all(&app.db)
    .await?;
    let mut done = Tick::default();
    for c in due {
        if let Err(e) = report(app, &c, now, &mut done).await {
            tracing::warn!(campaign_id = c.id, error = %format!("{e:#}"), "campaign progress not reported; retrying next tick");
        }
    }
    Ok(done)
}

async fn report(
    app: &App,
    c: &Campaign,
    now: DateTime<Utc>,
    done: &mut Tick,
) -> anyhow::Result<()> {
    let (Some(channel), Some(thread)) = (c.slack_channel.clone(), c.slack_ts.clone()) else {
        return Ok(());
    };
    let view = View::read(&app.db, c).await?;
    let digest = view.digest();
    let lease = now - chrono::Duration::seconds(POST_LEASE_SECS);
    let interval = chrono::Duration::seconds(
        i64::try_from(app.settings.campaigns.progress_interval_secs).unwrap_or(i64::MAX / 2),
    );

    if view.complete {
        // The summary claim also covers the final edit; a first post still
        // in flight elsewhere (inside its lease) is waited for.
        let Some(ts) = claim(
            &app.db,
            "UPDATE campaigns SET summary_posted_at = $2, progress_edited_at = $2, progress_counts = $3 \
             WHERE id = $1 AND summary_posted_at IS NULL \
             AND (progress_ts IS NOT NULL OR progress_edited_at IS NULL OR progress_edited_at <= $4)",
            vec![
                Value::from(c.id),
                Value::from(now),
                Value::from(digest),
                Value::from(lease),
            ],
        )
        .await?
        else {
            return Ok(());
        };
        let result = async {
            let content = progress_content(app, c, &view)?;
            match ts {
                // Best effort: a progress message someone deleted must not
                // keep the summary from being posted.
                Some(ts) => {
                    if let Err(e) = edit(app, &channel, &ts, content).await {
                        tracing::warn!(campaign_id = c.id, error = %format!("{e:#}"), "final progress edit failed");
                    }
                }
                None => {
                    let ts = post(app, &channel, &thread, content).await?;
                    store_ts(app, c.id, &ts).await?;
                }
            }
            post(app, &channel, &thread, summary_content(app, c, &view)?).await?;
            anyhow::Ok(())
        }
        .await;
        if let Err(e) = result {
            // Release the claim: the next tick tries again.
            app.db
                .execute_raw(Statement::from_sql_and_values(
                    app.db.get_database_backend(),
                    "UPDATE campaigns SET summary_posted_at = NULL WHERE id = $1",
                    [Value::from(c.id)],
                ))
                .await?;
            return Err(e);
        }
        done.summarised.push(c.id);
        return Ok(());
    }

    match &c.progress_ts {
        None => {
            let claimed = claim(
                &app.db,
                "UPDATE campaigns SET progress_edited_at = $2, progress_counts = $3 WHERE id = $1 \
                 AND progress_ts IS NULL AND (progress_edited_at IS NULL OR progress_edited_at <= $4)",
                vec![
                    Value::from(c.id),
                    Value::from(now),
                    Value::from(digest),
                    Value::from(lease),
                ],
            )
            .await?;
            if claimed.is_none() {
                return Ok(());
            }
            let ts = post(app, &channel, &thread, progress_content(app, c, &view)?).await?;
            store_ts(app, c.id, &ts).await?;
            done.posted.push(c.id);
        }
        Some(_) if c.progress_counts.as_deref() == Some(digest.as_str()) => {}
        Some(_) => {
            let claimed = claim(
                &app.db,
                "UPDATE campaigns SET progress_edited_at = $2, progress_counts = $3 WHERE id = $1 \
                 AND progress_ts IS NOT NULL AND summary_posted_at IS NULL \
                 AND (progress_edited_at IS NULL OR progress_edited_at <= $4)",
                vec![
                    Value::from(c.id),
                    Value::from(now),
                    Value::from(digest),
                    Value::from(now - interval),
                ],
            )
            .await?;
            if let Some(Some(ts)) = claimed {
                edit(app, &channel, &ts, progress_content(app, c, &view)?).await?;
                done.edited.push(c.id);
            }
        }
    }
    Ok(())
}

async fn store_ts(app: &App, campaign_id: i64, ts: &str) -> anyhow::Result<()> {
    app.db
        .execute_raw(Statement::from_sql_and_values(
            app.db.get_database_backend(),
            "UPDATE campaigns SET progress_ts = $2 WHERE id = $1",
            [Value::from(campaign_id), Value::from(ts.to_string())],
        ))
        .await?;
    Ok(())
}

async fn post(
    app: &App,
    channel: &str,
    thread_ts: &str,
    content: SlackMessageContent,
) -> anyhow::Result<String> {
    let req = SlackApiChatPostMessageRequest::new(channel.to_string().into(), content)
        .with_thread_ts(thread_ts.to_string().into());
    match app.slack.post_message(req).await {
        Ok(resp) => Ok(resp.ts.0),
        Err(e) => {
            if matches!(e.code(), Some("not_in_channel" | "channel_not_found")) {
                tracing::error!(
                    %channel,
                    "cannot post campaign progress: invite the bot to the channel (/invite @warmline)"
                );
            }
            Err(anyhow::Error::from(e).context("posting campaign progress"))
        }
    }
}

async fn edit(
    app: &App,
    channel: &str,
    ts: &str,
    content: SlackMessageContent,
) -> anyhow::Result<()> {
    app.slack
        .update_message(SlackApiChatUpdateRequest::new(
            channel.to_string().into(),
            content,
            ts.to_string().into(),
        ))
        .await
        .map(|_| ())
        .map_err(|e| anyhow::Error::from(e).context("editing campaign progress"))
}

/// Edits the progress message now, whatever the interval (after a person's
/// decision, which they expect to see at once). The channel's pace still
/// holds: it is kept by the Web API wrapper.
pub async fn refresh(app: &App, campaign_id: i64, now: DateTime<Utc>) -> anyhow::Result<()> {
    let Some(c) = campaign(&app.db, campaign_id).await? else {
        return Ok(());
    };
    let (Some(channel), Some(ts)) = (c.slack_channel.clone(), c.progress_ts.clone()) else {
        return Ok(());
    };
    let view = View::read(&app.db, &c).await?;
    app.db
        .execute_raw(Statement::from_sql_and_values(
            app.db.get_database_backend(),
            "UPDATE campaigns SET progress_edited_at = $2, progress_counts = $3 WHERE id = $1",
            [
                Value::from(campaign_id),
                Value::from(now),
                Value::from(view.digest()),
            ],
        ))
        .await?;
    edit(app, &channel, &ts, progress_content(app, &c, &view)?).await
}

/// The periodic job: [`tick`] every `[campaigns] progress_interval_secs`.
pub struct ProgressJob;

#[async_trait::async_trait]
impl crate::jobs::Periodic for ProgressJob {
    fn name(&self) -> &'static str {
        "campaign_progress"
    }

    fn period(&self, app: &App) -> Result<Duration, &'static str> {
        Ok(Duration::from_secs(
            app.settings.campaigns.progress_interval_secs.max(1),
        ))
    }

    async fn tick(&self, app: &App, now: DateTime<Utc>) -> anyhow::Result<()> {
        tick(app, now).await.map(|_| ())
    }
}

// ------------------------------------------------------------- decisions

/// A person's button on the progress message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    Pause,
    Resume,
    Cancel,
}

impl Choice {
    fn of(action_id: &str) -> Option<Self> {
        match action_id {
            actions::CAMPAIGN_PAUSE => Some(Choice::Pause),
            actions::CAMPAIGN_RESUME => Some(Choice::Resume),
            actions::CAMPAIGN_CANCEL => Some(Choice::Cancel),
            _ => None,
        }
    }

    fn audit_action(self) -> &'static str {
        match self {
            Choice::Pause => "campaign.pause",
            Choice::Resume => "campaign.resume",
            Choice::Cancel => "campaign.cancel",
        }
    }
}

/// The `block_id` of the Reschedule / Cancel buttons on an approved
/// request (`blocks/approval_decided.json.j2`), to tell where a click was.
const SCHEDULED_CONTROLS: &str = "scheduled_controls";

/// Whether an action id is one of the progress message's buttons.
pub fn handles(action_id: &str) -> bool {
    Choice::of(action_id).is_some()
}

/// What a decision did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decided {
    /// Applied; this many messages moved.
    Changed(Choice, u64),
    /// Nothing to do from the campaign's state (someone decided first).
    Unchanged(CampaignState),
    NoSuchCampaign,
}

/// Applies `choice` by `actor` once, audited, in one transaction.
pub async fn decide(
    db: &sea_orm::DatabaseConnection,
    campaign_id: i64,
    choice: Choice,
    actor: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<Decided> {
    decide_via(db, campaign_id, choice, actor, "progress_message", now).await
}

/// [`decide`], recording where the button was (`progress_message`,
/// `approval_request`, `home`).
pub async fn decide_via(
    db: &sea_orm::DatabaseConnection,
    campaign_id: i64,
    choice: Choice,
    actor: &str,
    via: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<Decided> {
    #[derive(FromQueryResult)]
    struct State {
        state: CampaignState,
    }
    let txn = crate::db::begin_write(db).await?;
    let lock = if crate::db::is_postgres(&txn) {
        " FOR UPDATE"
    } else {
        ""
    };
    let Some(current) = State::find_by_statement(Statement::from_sql_and_values(
        txn.get_database_backend(),
        format!("SELECT state FROM campaigns WHERE id = $1{lock}"),
        [Value::from(campaign_id)],
    ))
    .one(&txn)
    .await?
    else {
        return Ok(Decided::NoSuchCampaign);
    };
    // Pause only a running campaign: resuming moves paused messages to
    // "due now", which would lose a scheduled campaign's schedule.
    let n = match (choice, current.state) {
        (Choice::Pause, CampaignState::Running) => {
            ledger::pause_campaign(&txn, campaign_id, actor, now).await?
        }
        (Choice::Resume, CampaignState::Paused) => {
            ledger::resume_campaign(&txn, campaign_id, actor, now).await?
        }
        (
            Choice::Cancel,
            CampaignState::Running | CampaignState::Scheduled | CampaignState::Paused,
        ) => ledger::cancel_campaign(&txn, campaign_id, actor, now).await?,
        (_, state) => return Ok(Decided::Unchanged(state)),
    };
    crate::audit::record(
        &txn,
        actor,
        choice.audit_action(),
        Some(&format!("campaign:{campaign_id}")),
        json!({"via": via, "messages": n}),
    )
    .await?;
    txn.commit().await?;
    Ok(Decided::Changed(choice, n))
}

/// Whether `user` may pause, resume or cancel the campaign: an approver or
/// the person who requested it.
pub async fn may_decide(app: &App, campaign_id: i64, user: &str) -> anyhow::Result<bool> {
    if crate::approval::decision::is_approver(app, user).await {
        return Ok(true);
    }
    Ok(campaign(&app.db, campaign_id)
        .await?
        .is_some_and(|c| c.created_by == user))
}

/// A click on Pause / Resume / Cancel — on the progress message, on an
/// approved request not started yet (Cancel), or on the Home tab. The
/// decision is applied before answering; the progress message and the
/// approved request are then edited in place, the person's Home is
/// published again, and they hear back in an ephemeral message where the
/// click came from a channel.
pub async fn handle_action(
    app: &App,
    ev: &SlackInteractionBlockActionsEvent,
    action: &SlackInteractionActionInfo,
) -> Result<(), IngressError> {
    let Some(user) = ev.user.as_ref().map(|u| u.id.clone()) else {
        return Ok(());
    };
    let Some(choice) = Choice::of(&action.action_id.0) else {
        return Ok(());
    };
    let campaign_id = IngressError::id_in(
        action.value.as_deref(),
        "campaign action without a campaign id",
    )?;
    let now = crate::clock::now();
    let from_home = matches!(&ev.container, SlackInteractionActionContainer::View(_));
    let via = if from_home {
        "home"
    } else if action
        .block_id
        .as_ref()
        .is_some_and(|b| b.0 == SCHEDULED_CONTROLS)
    {
        "approval_request"
    } else {
        "progress_message"
    };
    let mut changed = false;
    let text = if !may_decide(app, campaign_id, &user.0).await? {
        "Only approvers and the person who requested this campaign can pause, resume or cancel it."
            .to_string()
    } else {
        match decide_via(&app.db, campaign_id, choice, &user.0, via, now).await? {
            Decided::Changed(Choice::Pause, n) => {
                changed = true;
                format!("Campaign paused; {n} message(s) are held until someone resumes it.")
            }
            Decided::Changed(Choice::Resume, n) => {
                changed = true;
                app.dispatcher.wake();
                format!("Campaign resumed; {n} message(s) are due again.")
            }
            Decided::Changed(Choice::Cancel, n) => {
                changed = true;
                format!("Campaign cancelled; {n} message(s) will not be sent.")
            }
            Decided::Unchanged(state) => {
                format!("The campaign is {state}; nothing changed.")
            }
            Decided::NoSuchCampaign => "That campaign no longer exists.".to_string(),
        }
    };
    let app2 = app.clone();
    let channel = ev.channel.as_ref().map(|c| c.id.clone());
    app.spawn("answer a campaign decision", async move {
        if changed {
            refresh(&app2, campaign_id, now).await?;
            crate::approval::slack::update_campaign_request(&app2, campaign_id).await?;
        }
        if from_home {
            crate::slack::home::publish(&app2, &user).await?;
        }
        if let Some(channel) = channel {
            app2.slack
                .post_ephemeral(SlackApiChatPostEphemeralRequest::new(
                    channel,
                    user,
                    SlackMessageContent::new().with_text(text),
                ))
                .await?;
        }
        Ok(())
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sent_includes_later_outcomes_and_done_counts_every_outcome() {
        let c = Counts {
            total: 10,
            sent: 5,
            delivered: 3,
            bounced: 1,
            failed: 1,
            ambiguous: 1,
            skipped: BTreeMap::from([("no_consent".into(), 2), ("cancelled".into(), 1)]),
            ..Counts::default()
        };
        assert_eq!(c.done(), 10);
        assert_eq!(c.skipped_reasons(), "1 cancelled, 2 no consent");
    }

    #[test]
    fn status_follows_state_then_completion() {
        assert_eq!(Status::of(CampaignState::Running, false), Status::Sending);
        assert_eq!(Status::of(CampaignState::Paused, false), Status::Paused);
        assert_eq!(Status::of(CampaignState::Running, true), Status::Finished);
        assert_eq!(
            Status::of(CampaignState::Cancelled, true),
            Status::Cancelled
        );
    }
}
