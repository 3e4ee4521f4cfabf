//! Pending requests do not wait forever: approvers are reminded once (a
//! reply in the request's thread) after `approval.remind_after_minutes`, and
//! the request expires after `approval.expire_after_minutes` (its messages
//! skipped, reason cancelled; the request updated in place).
//!
//! Invariants:
//! - [`tick`] takes `now` as an argument, so tests drive time without
//!   sleeping; the loop only calls it once a minute.
//! - A reminder is claimed with `UPDATE … WHERE reminded_at IS NULL` before
//!   it is posted: at most one per request, even with several processes.
//! - Expiry uses the same guarded `pending →` transition as a decision, in
//!   one transaction with its messages, so it cannot race an approval.
//! - Requests that could not be posted (no channel, bot not invited) are
//!   posted again here once Slack accepts them.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, FromQueryResult, Statement, Value};

use super::{decision, set_campaign_state, skip_awaiting};
use crate::{
    domain::{ApprovalState, CampaignState},
    state::App,
};

/// What one tick did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tick {
    pub reminded: Vec<i64>,
    pub expired: Vec<i64>,
}

#[derive(FromQueryResult)]
struct Id {
    id: i64,
}

async fn ids(
    conn: &impl ConnectionTrait,
    sql: &str,
    values: Vec<Value>,
) -> anyhow::Result<Vec<i64>> {
    Ok(Id::find_by_statement(Statement::from_sql_and_values(
        conn.get_database_backend(),
        sql,
        values,
    ))
    .all(conn)
    .await?
    .into_iter()
    .map(|r| r.id)
    .collect())
}

/// Expires, reminds and re-posts what is due at `now`.
pub async fn tick(app: &App, now: DateTime<Utc>) -> anyhow::Result<Tick> {
    let s = &app.settings.approval;
    let mut done = Tick::default();

    let expire_before = now - chrono::Duration::minutes(i64::from(s.expire_after_minutes));
    for id in ids(
        &app.db,
        &format!(
            "SELECT id FROM approvals WHERE state = {pending} AND created_at <= $1 ORDER BY id",
            pending = ApprovalState::Pending.sql(),
        ),
        vec![Value::from(expire_before)],
    )
    .await?
    {
        if expire(app, id, now).await? {
            done.expired.push(id);
            if let Err(e) = super::slack::expired(app, id).await {
                tracing::warn!(approval_id = id, error = %format!("{e:#}"), "expired request not updated in Slack");
            }
        }
    }

    let remind_before = now - chrono::Duration::minutes(i64::from(s.remind_after_minutes));
    for id in ids(
        &app.db,
        &format!(
            "SELECT id FROM approvals WHERE state = {pending} AND reminded_at IS NULL \
             AND slack_ts IS NOT NULL AND created_at <= $1 ORDER BY id",
            pending = ApprovalState::Pending.sql(),
        ),
        vec![Value::from(remind_before)],
    )
    .await?
    {
        let claimed = app
            .db
            .execute_raw(Statement::from_sql_and_values(
                app.db.get_database_backend(),
                format!(
                    "UPDATE approvals SET reminded_at = $1 WHERE id = $2 AND reminded_at IS NULL AND state = {pending}",
                    pending = ApprovalState::Pending.sql(),
                ),
                [Value::from(now), Value::from(id)],
            ))
            .await?
            .rows_affected();
        if claimed == 1 {
            done.reminded.push(id);
            if let Err(e) = super::slack::remind(app, id, now).await {
                tracing::warn!(approval_id = id, error = %format!("{e:#}"), "approval reminder not posted");
            }
        }
    }

    for id in ids(
        &app.db,
        &format!(
            "SELECT id FROM approvals WHERE state = {pending} AND slack_ts IS NULL ORDER BY id",
            pending = ApprovalState::Pending.sql(),
        ),
        vec![],
    )
    .await?
    {
        if let Err(e) = super::slack::post_request_with(app, id, false).await {
            tracing::warn!(approval_id = id, error = %format!("{e:#}"), "approval request still not posted");
        }
    }
    Ok(done)
}

/// Expires one pending request; false when someone decided first.
async fn expire(app: &App, id: i64, now: DateTime<Utc>) -> anyhow::Result<bool> {
    let txn = crate::db::begin_write(&app.db).await?;
    let Some(a) = decision::lock_approval(&txn, id).await? else {
        return Ok(false);
    };
    if a.state != ApprovalState::Pending
        || !decision::finish(
            &txn,
            id,
            ApprovalState::Expired,
            None,
            Some("nobody decided in time"),
            now,
        )
        .await?
    {
        txn.commit().await?;
        return Ok(false);
    }
    let skipped = skip_awaiting(&txn, a.campaign_id, "approval expired", now).await?;
    set_campaign_state(&txn, a.campaign_id, CampaignState::Expired, now).await?;
    crate::audit::record(
        &txn,
        "warmline",
        "approval.expired",
        Some(&format!("approval:{id}")),
        serde_json::json!({"campaign_id": a.campaign_id, "skipped": skipped}),
    )
    .await?;
    txn.commit().await?;
    Ok(true)
}

/// The periodic job: [`tick`] every minute.
pub struct ReminderJob;

#[async_trait::async_trait]
impl crate::jobs::Periodic for ReminderJob {
    fn name(&self) -> &'static str {
        "approval_reminders"
    }

    fn period(&self, _app: &App) -> Result<Duration, &'static str> {
        Ok(Duration::from_secs(60))
    }

    async fn tick(&self, app: &App, now: DateTime<Utc>) -> anyhow::Result<()> {
        tick(app, now).await.map(|_| ())
    }
}
