//! The App Home tab, published per user on `app_home_opened` (and on its
//! Refresh button): a welcome, what needs this user (approvals they may
//! decide, their drafts and scheduled campaigns), running campaigns with
//! progress, contacts going cold, the last 7 days' rates against the targets,
//! and the setup checklist.
//!
//! What waits for the user has buttons, with the same action ids as the
//! buttons elsewhere and so the same handlers and rules: Approve / Deny on
//! each approval (`approval::slack`, as in the approvals channel), Open on a
//! draft (the composer, as `/warm drafts` opens it), Pause / Resume /
//! Cancel on a running campaign the user requested or may decide on
//! (`campaigns::progress`), Reschedule / Cancel on a scheduled one
//! (`campaigns::reschedule`). Those handlers publish the Home again after
//! the click.
//!
//! Invariants:
//! - The approvals section is shown only to approvers, and lists only what
//!   that approver may decide (not their own requests unless
//!   `approval.allow_self_approval`), the same rule a click is checked by.
//! - Buttons are only offered to whom a click would be allowed; the click
//!   is checked again by its handler all the same.
//! - Every list is cut at [`LIST`] items ([`ACTIONABLE`] for lists with a
//!   row of buttons per item) with "and N more", so the view stays under
//!   Slack's 100-block limit whatever the data (checked by `blocks`).
//! - Contacts are named by name or a masked address, never a whole one.

use chrono::{DateTime, Duration, Utc};
use slack_morphism::prelude::*;

use super::{actions, api::SlackApiError, setup_status};
use crate::{domain::CampaignState, reports::stats, state::App};

/// Items per list on the Home tab.
pub const LIST: u64 = 10;

/// Items per list whose items carry a row of buttons (two blocks each).
pub const ACTIONABLE: u64 = 5;

/// A campaign of the user's that is not out yet: a draft, waiting for an
/// approver, or scheduled.
pub const MINE_STATES: &[CampaignState] = &[
    CampaignState::Draft,
    CampaignState::AwaitingApproval,
    CampaignState::Scheduled,
];

#[derive(Debug, thiserror::Error)]
pub enum HomeError {
    #[error(transparent)]
    Layout(#[from] super::blocks::BlocksError),
    #[error(transparent)]
    Slack(#[from] SlackApiError),
    #[error("reading the Home tab's numbers: {0:#}")]
    Stats(anyhow::Error),
}

/// Renders the Home tab for `user` and publishes it with views.publish.
pub async fn publish(app: &App, user: &SlackUserId) -> Result<(), HomeError> {
    let view = render(app, user, crate::clock::now()).await?;
    app.slack
        .views_publish(SlackApiViewsPublishRequest::new(user.clone(), view))
        .await?;
    Ok(())
}

/// The Home tab's context for `user` as of `now` (JSON for the layout).
pub async fn context(
    app: &App,
    user: &SlackUserId,
    now: DateTime<Utc>,
) -> anyhow::Result<serde_json::Value> {
    let setup = setup_status::gather(app, now).await?;
    let db = &app.db;
    let approver = crate::approval::decision::is_approver(app, &user.0).await;
    let pending = if approver {
        Some(
            stats::pending_approvals(
                db,
                now,
                Some(&user.0),
                app.settings.approval.allow_self_approval,
                ACTIONABLE,
            )
            .await?,
        )
    } else {
        None
    };
    Ok(serde_json::json!({
        "user": user.0,
        "command": app.settings.slack.command,
        "setup": setup.context(),
        "refresh_action": actions::HOME_REFRESH,
        "approver": approver,
        "pending": pending,
        "drafts": stats::drafts_by_author(db, &user.0, ACTIONABLE).await?,
        "mine": stats::campaigns_by_requester(db, &user.0, MINE_STATES, ACTIONABLE).await?,
        "running": stats::running_campaigns(db, ACTIONABLE).await?,
        "actions": {
            "approve": actions::APPROVAL_APPROVE,
            "deny": actions::APPROVAL_DENY,
            "open": actions::CAMPAIGN_OPEN,
            "pause": actions::CAMPAIGN_PAUSE,
            "resume": actions::CAMPAIGN_RESUME,
            "cancel": actions::CAMPAIGN_CANCEL,
            "reschedule": actions::CAMPAIGN_RESCHEDULE,
        },
        "going_cold": stats::going_cold(db, LIST).await?,
        "rates": stats::rates(db, now - Duration::days(7), now).await?,
        "unsubscribe_target": format!("{}%", crate::reports::UNSUBSCRIBE_TARGET * 100.0),
        "complaint_target": format!("{}%", crate::reports::COMPLAINT_TARGET * 100.0),
    }))
}

pub async fn render(
    app: &App,
    user: &SlackUserId,
    now: DateTime<Utc>,
) -> Result<SlackView, HomeError> {
    let ctx = context(app, user, now).await.map_err(HomeError::Stats)?;
    Ok(app.blocks.view("home.json.j2", ctx)?)
}
