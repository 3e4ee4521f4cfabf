//! Deciding an approval: who may, and making exactly one decision count.
//!
//! Invariants:
//! - Only approvers decide (`WARMLINE_APPROVERS`, or members of
//!   `approval.approver_group`); a requester never approves their own send
//!   unless `allow_self_approval`. A refused click changes nothing.
//! - The approval row is locked (`FOR UPDATE` on PostgreSQL; SQLite's
//!   `BEGIN IMMEDIATE` serialises writers) before anything is read, each
//!   approver's vote is a unique `approval_decisions` row, and the state
//!   leaves `pending` only through `UPDATE … WHERE state = 'pending'`: double
//!   clicks, two approvers at once and Slack retries decide once.
//! - The messages move in the same transaction as the decision: approved →
//!   `queued`/`scheduled`, denied or void → nothing more (denied: skipped,
//!   reason cancelled).
//! - An approval whose campaign's content hash changed is void, never
//!   approved.
//! - Every vote and every final decision is in the audit log.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, FromQueryResult, Statement, Value};

use super::{request::release, set_campaign_state, skip_awaiting};
use crate::{
    domain::{ApprovalState, CampaignState, MessageState},
    state::App,
};

/// What an approver chose.
#[derive(Debug, Clone, PartialEq)]
pub enum Choice {
    Approve,
    Deny { reason: String },
}

/// Why a click was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    NotApprover,
    OwnRequest,
}

/// What a decision did.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Approved (by every approver listed); `released` messages are due.
    Approved {
        approvers: Vec<String>,
        released: u64,
    },
    /// A vote of a two-approver send; more approvals are needed.
    Recorded {
        so_far: Vec<String>,
        needed: u8,
    },
    Denied {
        reason: String,
    },
    /// Nothing changed.
    Refused(Refusal),
    /// Someone decided first (or it expired, or was voided); nothing changed.
    AlreadyDecided {
        state: ApprovalState,
    },
    /// This approver already voted on this request; nothing changed.
    AlreadyVoted,
    /// The content changed since the request: the approval is now void.
    Void,
    NoSuchApproval,
}

impl Outcome {
    /// Whether the approval left `pending` through this call.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            Outcome::Approved { .. } | Outcome::Denied { .. } | Outcome::Void
        )
    }
}

/// Whether `user` may decide approvals.
pub async fn is_approver(app: &App, user: &str) -> bool {
    if app.settings.slack.approvers.iter().any(|a| a == user) {
        return true;
    }
    let Some(group) = app.settings.approval.approver_group.as_deref() else {
        return false;
    };
    match app.slack.usergroup_members(group).await {
        Ok(members) => members.iter().any(|m| m == user),
        Err(e) => {
            tracing::warn!(group, error = %e, "cannot read the approver group; treating the user as not an approver");
            false
        }
    }
}

#[derive(Debug, FromQueryResult)]
pub(crate) struct Locked {
    pub campaign_id: i64,
    pub state: ApprovalState,
    pub requested_by: String,
    pub content_hash: String,
    pub required_approvals: i32,
}

/// Reads (and on PostgreSQL locks) an approval row inside a write transaction.
pub(crate) async fn lock_approval(
    conn: &impl ConnectionTrait,
    id: i64,
) -> anyhow::Result<Option<Locked>> {
    let lock = if crate::db::is_postgres(conn) {
        " FOR UPDATE"
    } else {
        ""
    };
    Ok(Locked::find_by_statement(Statement::from_sql_and_values(
        conn.get_database_backend(),
        format!(
            "SELECT campaign_id, state, requested_by, content_hash, required_approvals \
             FROM approvals WHERE id = $1{lock}"
        ),
        [Value::from(id)],
    ))
    .one(conn)
    .await?)
}

/// Moves a pending approval to `state`; false when it was not pending.
pub(crate) async fn finish(
    conn: &impl ConnectionTrait,
    id: i64,
    state: ApprovalState,
    decided_by: Option<&str>,
    reason: Option<&str>,
    now: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let r = conn
        .execute_raw(Statement::from_sql_and_values(
            conn.get_database_backend(),
            format!(
                "UPDATE approvals SET state = $1, decided_by = $2, decided_at = $3, reason = $4 \
                 WHERE id = $5 AND state = {pending}",
                pending = ApprovalState::Pending.sql(),
            ),
            [
                Value::from(state),
                Value::from(decided_by.map(str::to_string)),
                Value::from(now),
                Value::from(reason.map(str::to_string)),
                Value::from(id),
            ],
        ))
        .await?;
    Ok(r.rows_affected() == 1)
}

/// The approvers who approved so far, in order.
pub(crate) async fn approvers_so_far(
    conn: &impl ConnectionTrait,
    id: i64,
) -> anyhow::Result<Vec<String>> {
    #[derive(FromQueryResult)]
    struct A {
        approver: String,
    }
    Ok(A::find_by_statement(Statement::from_sql_and_values(
        conn.get_database_backend(),
        "SELECT approver FROM approval_decisions WHERE approval_id = $1 AND decision = 'approve' ORDER BY id",
        [Value::from(id)],
    ))
    .all(conn)
    .await?
    .into_iter()
    .map(|a| a.approver)
    .collect())
}

/// Applies `user`'s `choice` to approval `id`. Slack is not told here; see
/// [`super::slack::after_decision`].
pub async fn decide(
    app: &App,
    id: i64,
    user: &str,
    choice: Choice,
    now: DateTime<Utc>,
) -> anyhow::Result<Outcome> {
    if !is_approver(app, user).await {
        return Ok(Outcome::Refused(Refusal::NotApprover));
    }
    let txn = crate::db::begin_write(&app.db).await?;
    let outcome = decide_in(app, &txn, id, user, &choice, now).await?;
    txn.commit().await?;
    if matches!(outcome, Outcome::Approved { .. }) {
        app.dispatcher.wake();
    }
    tracing::info!(approval_id = id, user, outcome = ?outcome, "approval decision");
    Ok(outcome)
}

async fn decide_in(
    app: &App,
    txn: &impl ConnectionTrait,
    id: i64,
    user: &str,
    choice: &Choice,
    now: DateTime<Utc>,
) -> anyhow::Result<Outcome> {
    let Some(a) = lock_approval(txn, id).await? else {
        return Ok(Outcome::NoSuchApproval);
    };
    if a.state != ApprovalState::Pending {
        return Ok(Outcome::AlreadyDecided { state: a.state });
    }
    if *choice == Choice::Approve
        && a.requested_by == user
        && !app.settings.approval.allow_self_approval
    {
        return Ok(Outcome::Refused(Refusal::OwnRequest));
    }
    let subject = format!("approval:{id}");
    let current = crate::db::count(
        txn,
        "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM campaigns WHERE id = $1 AND content_hash = $2",
        vec![
            Value::from(a.campaign_id),
            Value::from(a.content_hash.clone()),
        ],
    )
    .await?;
    if current == 0 {
        finish(
            txn,
            id,
            ApprovalState::Void,
            None,
            Some("the draft changed after the request"),
            now,
        )
        .await?;
        crate::audit::record(
            txn,
            user,
            "approval.void",
            Some(&subject),
            serde_json::json!({"campaign_id": a.campaign_id, "why": "content hash changed"}),
        )
        .await?;
        return Ok(Outcome::Void);
    }
    let (decision, reason) = match choice {
        Choice::Approve => ("approve", None),
        Choice::Deny { reason } => ("deny", Some(reason.as_str())),
    };
    let voted = txn
        .execute_raw(Statement::from_sql_and_values(
            txn.get_database_backend(),
            "INSERT INTO approval_decisions (approval_id, approver, decision, reason, at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (approval_id, approver) DO NOTHING",
            [
                Value::from(id),
                Value::from(user.to_string()),
                Value::from(decision),
                Value::from(reason.map(str::to_string)),
                Value::from(now),
            ],
        ))
        .await?
        .rows_affected();
    if voted == 0 {
        return Ok(Outcome::AlreadyVoted);
    }
    crate::audit::record(
        txn,
        user,
        &format!("approval.{decision}"),
        Some(&subject),
        serde_json::json!({"campaign_id": a.campaign_id, "reason": reason}),
    )
    .await?;
    match choice {
        Choice::Deny { reason } => {
            if !finish(
                txn,
                id,
                ApprovalState::Denied,
                Some(user),
                Some(reason),
                now,
            )
            .await?
            {
                anyhow::bail!("approval {id} left pending under our lock");
            }
            skip_awaiting(txn, a.campaign_id, &format!("denied by {user}"), now).await?;
            set_campaign_state(txn, a.campaign_id, CampaignState::Denied, now).await?;
            crate::audit::record(
                txn,
                user,
                "approval.denied",
                Some(&subject),
                serde_json::json!({"campaign_id": a.campaign_id, "reason": reason}),
            )
            .await?;
            Ok(Outcome::Denied {
                reason: reason.clone(),
            })
        }
        Choice::Approve => {
            let so_far = approvers_so_far(txn, id).await?;
            let needed = a.required_approvals.max(1) as usize;
            if so_far.len() < needed {
                return Ok(Outcome::Recorded {
                    needed: (needed - so_far.len()) as u8,
                    so_far,
                });
            }
            let by = so_far.join(",");
            if !finish(txn, id, ApprovalState::Approved, Some(&by), None, now).await? {
                anyhow::bail!("approval {id} left pending under our lock");
            }
            let released = release(
                txn,
                a.campaign_id,
                &app.settings.quiet_hours.default_timezone,
                now,
            )
            .await?;
            let scheduled = crate::db::count(
                txn,
                &format!(
                    "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM messages WHERE campaign_id = $1 AND state = {queued}",
                    queued = MessageState::Queued.sql(),
                ),
                vec![Value::from(a.campaign_id)],
            )
            .await?
                == 0;
            set_campaign_state(
                txn,
                a.campaign_id,
                if scheduled {
                    CampaignState::Scheduled
                } else {
                    CampaignState::Running
                },
                now,
            )
            .await?;
            crate::audit::record(
                txn,
                user,
                "approval.approved",
                Some(&subject),
                serde_json::json!({"campaign_id": a.campaign_id, "approvers": so_far, "released": released}),
            )
            .await?;
            Ok(Outcome::Approved {
                approvers: so_far,
                released,
            })
        }
    }
}
