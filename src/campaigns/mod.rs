//! Campaigns as a person composes them in Slack: an audience, a message, a
//! channel and a schedule ([`Draft`]), resolved to contacts ([`audience`]),
//! previewed with what would happen ([`preview`]), saved and reopened
//! ([`drafts`]), and submitted through [`crate::approval::submit`].
//!
//! Invariants:
//! - A draft is plain data (JSON in `campaign_drafts`); nothing about it is
//!   sent or queued until it is submitted, as `campaign:<draft id>`. Editing
//!   a submitted draft and submitting again is therefore the same source
//!   with new content, which voids the earlier pending approval.
//! - The preview reads the same rules as the dispatcher's last-moment
//!   checks (it calls [`crate::dispatcher::checks::check_batch`]) and the
//!   same risk scoring as the approval engine, so what it promises is what
//!   the send and the approvers will see.
//!
//! Once submitted, a campaign lives in its Slack thread ([`thread`],
//! [`progress`]); one approved for later can be moved ([`reschedule`]) or
//! cancelled until it starts.

pub mod audience;
pub mod drafts;
pub mod preview;
pub mod progress;
pub mod reschedule;
pub mod settings;
pub mod thread;

use serde::{Deserialize, Serialize};

use crate::approval::{Content, Schedule};

pub use audience::Audience;

/// Everything a campaign says, to whom and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Draft {
    pub name: String,
    pub channel: crate::domain::Channel,
    pub audience: Audience,
    pub content: Content,
    pub schedule: Schedule,
}

/// The ledger source of a draft's sends.
pub fn source(draft_id: i64) -> String {
    format!("campaign:{draft_id}")
}
