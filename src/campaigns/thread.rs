//! A campaign's Slack thread: the one message under which its progress
//! message (with Pause / Resume / Cancel), its summary and its bounce and
//! complaint notices are posted.
//!
//! There is one way a campaign gets a thread, whatever its route: [`record`]
//! writes `campaigns.slack_channel` / `slack_ts`, and everything that posts
//! about a campaign (`campaigns::progress`, `slack::campaign_alerts`, the
//! webhooks' notices) reads those two columns. A campaign that needed
//! approval has its approval request as its thread (`approval::slack`
//! records it when the request is posted); one the policy let go straight
//! out gets a root message from [`open`], in `[campaigns] thread_channel`
//! when set, else in the requester's DM with the bot (`conversations.open`).
//!
//! Invariants:
//! - Slack is told after the commit that queued the campaign; a failure is
//!   logged and changes nothing in the ledger (the thread only reports).
//! - At most one root message per campaign: [`open`] posts only for a
//!   campaign without a thread, and its [`record`] is guarded by
//!   `slack_ts IS NULL`, so a campaign's thread is never replaced by it.
//! - An automation's campaign (no person to write to) gets a thread only
//!   when `thread_channel` is set; without one its notices keep going to the
//!   approvals channel (`slack::campaign_alerts`).

use sea_orm::{ConnectionTrait, FromQueryResult, Statement, Value};
use serde_json::json;
use slack_morphism::prelude::*;

use crate::{
    approval::{Schedule, is_person},
    slack::mrkdwn::escape as mrkdwn,
    state::App,
};

/// Records `channel` / `ts` as the campaign's thread. With `only_if_none`,
/// a thread already recorded is kept. Returns whether it was written.
pub(crate) async fn record(
    conn: &impl ConnectionTrait,
    campaign_id: i64,
    channel: &str,
    ts: &str,
    only_if_none: bool,
) -> anyhow::Result<bool> {
    let guard = if only_if_none {
        " AND slack_ts IS NULL"
    } else {
        ""
    };
    let r = conn
        .execute_raw(Statement::from_sql_and_values(
            conn.get_database_backend(),
            format!("UPDATE campaigns SET slack_channel = $1, slack_ts = $2 WHERE id = $3{guard}"),
            [
                Value::from(channel.to_string()),
                Value::from(ts.to_string()),
                Value::from(campaign_id),
            ],
        ))
        .await?;
    Ok(r.rows_affected() == 1)
}

#[derive(Debug, FromQueryResult)]
struct Row {
    name: String,
    channel: String,
    created_by: String,
    schedule: Option<String>,
    slack_ts: Option<String>,
    recipients: i64,
}

/// "now", "at 2026-12-01 09:00 UTC", "at 09:00 in each recipient's time zone".
pub(crate) fn schedule_words(schedule: Option<&str>) -> String {
    match schedule.and_then(|s| serde_json::from_str::<Schedule>(s).ok()) {
        Some(Schedule::At { at }) => format!("at {}", at.format("%Y-%m-%d %H:%M UTC")),
        Some(Schedule::LocalTime { time }) => {
            format!("at {} in each recipient's time zone", time.format("%H:%M"))
        }
        Some(Schedule::Now) | None => "now".into(),
    }
}

/// Where a campaign of `requester` that needed no approval gets its thread.
async fn destination(app: &App, requester: &str) -> anyhow::Result<Option<String>> {
    if let Some(c) = app
        .settings
        .campaigns
        .thread_channel
        .as_deref()
        .filter(|c| !c.is_empty())
    {
        return Ok(Some(c.to_string()));
    }
    if !is_person(requester) {
        return Ok(None);
    }
    let dm = app
        .slack
        .open_dm(requester)
        .await
        .map_err(|e| anyhow::Error::from(e).context("opening the requester's DM"))?;
    Ok(Some(dm))
}

/// Gives a campaign that went out without approval its thread: posts the
/// root message and records it. Does nothing for a campaign that already
/// has one.
pub async fn open(app: &App, campaign_id: i64) -> anyhow::Result<()> {
    let Some(c) = Row::find_by_statement(Statement::from_sql_and_values(
        app.db.get_database_backend(),
        "SELECT c.name AS name, c.channel AS channel, c.created_by AS created_by, \
         c.schedule AS schedule, c.slack_ts AS slack_ts, \
         (SELECT CAST(COUNT(DISTINCT m.contact_id) AS BIGINT) FROM messages m \
           WHERE m.campaign_id = c.id) AS recipients \
         FROM campaigns c WHERE c.id = $1",
        [Value::from(campaign_id)],
    ))
    .one(&app.db)
    .await?
    else {
        return Ok(());
    };
    if c.slack_ts.is_some() {
        return Ok(());
    }
    let Some(channel) = destination(app, &c.created_by).await? else {
        tracing::debug!(
            campaign_id,
            "no thread for an automation's campaign: set [campaigns] thread_channel to get one"
        );
        return Ok(());
    };
    let requester = if is_person(&c.created_by) {
        format!("<@{}>", c.created_by)
    } else {
        format!("`{}`", mrkdwn(&c.created_by))
    };
    let name_plain: String = c.name.chars().take(200).collect();
    let blocks = app.blocks.message_blocks(
        "campaign_thread.json.j2",
        json!({
            "name": mrkdwn(&name_plain),
            "name_plain": name_plain,
            "requester": requester,
            "recipients": c.recipients,
            "channel": c.channel,
            "schedule": schedule_words(c.schedule.as_deref()),
        }),
    )?;
    let content = SlackMessageContent::new()
        .with_text(format!(
            "Campaign {}: {} contact(s) by {}, no approval needed",
            mrkdwn(&name_plain),
            c.recipients,
            c.channel
        ))
        .with_blocks(blocks);
    let resp = match app
        .slack
        .post_message(SlackApiChatPostMessageRequest::new(
            channel.clone().into(),
            content,
        ))
        .await
    {
        Ok(resp) => resp,
        Err(e) => {
            if matches!(e.code(), Some("not_in_channel" | "channel_not_found")) {
                tracing::error!(
                    %channel,
                    "cannot start a campaign's thread: invite the bot to the channel (/invite @warmline) or fix [campaigns] thread_channel"
                );
            }
            return Err(anyhow::Error::from(e).context("posting a campaign's thread"));
        }
    };
    record(&app.db, campaign_id, &resp.channel.0, &resp.ts.0, true).await?;
    Ok(())
}
