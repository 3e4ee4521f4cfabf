//! The states of a campaign (`campaigns.state`) and of an approval request
//! (`approvals.state`).
//!
//! A campaign is created `draft`, asks for approval (`awaiting_approval`),
//! and on approval goes `scheduled` (for later) or `running`; a person or
//! the circuit breaker may pause it (`paused`) and resume or cancel it. An
//! approval that is denied or expires takes its campaign with it (`denied`,
//! `expired`). Each name is spelled only here.

use std::fmt;

use sea_orm::{DeriveActiveEnum, EnumIter};
use serde::{Deserialize, Serialize};

/// Stored as its name (`TEXT`); decodes straight from a row.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, EnumIter, DeriveActiveEnum,
)]
#[serde(rename_all = "snake_case")]
#[sea_orm(rs_type = "String", db_type = "Text")]
pub enum CampaignState {
    /// Created, its messages not yet planned.
    #[sea_orm(string_value = "draft")]
    Draft,
    /// Its messages wait for a person's approval.
    #[sea_orm(string_value = "awaiting_approval")]
    AwaitingApproval,
    /// Approved; its messages wait for their scheduled time.
    #[sea_orm(string_value = "scheduled")]
    Scheduled,
    /// Approved and sending.
    #[sea_orm(string_value = "running")]
    Running,
    /// Held by a person or the circuit breaker; may resume.
    #[sea_orm(string_value = "paused")]
    Paused,
    #[sea_orm(string_value = "cancelled")]
    Cancelled,
    /// Every message settled. Recognised by the queries that list live
    /// campaigns; nothing in warmline writes it yet (a finished campaign
    /// stays `running` and is shown as finished from its messages).
    #[sea_orm(string_value = "completed")]
    Completed,
    /// Its approval was denied.
    #[sea_orm(string_value = "denied")]
    Denied,
    /// Nobody decided its approval in time.
    #[sea_orm(string_value = "expired")]
    Expired,
}

impl CampaignState {
    pub const ALL: [CampaignState; 9] = [
        CampaignState::Draft,
        CampaignState::AwaitingApproval,
        CampaignState::Scheduled,
        CampaignState::Running,
        CampaignState::Paused,
        CampaignState::Cancelled,
        CampaignState::Completed,
        CampaignState::Denied,
        CampaignState::Expired,
    ];

    /// Approved, and not stopped: it sends, will send, or has sent.
    pub const GOING: [CampaignState; 4] = [
        CampaignState::Running,
        CampaignState::Scheduled,
        CampaignState::Paused,
        CampaignState::Completed,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            CampaignState::Draft => "draft",
            CampaignState::AwaitingApproval => "awaiting_approval",
            CampaignState::Scheduled => "scheduled",
            CampaignState::Running => "running",
            CampaignState::Paused => "paused",
            CampaignState::Cancelled => "cancelled",
            CampaignState::Completed => "completed",
            CampaignState::Denied => "denied",
            CampaignState::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// Stored as its name (`TEXT`); decodes straight from a row.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, EnumIter, DeriveActiveEnum,
)]
#[serde(rename_all = "snake_case")]
#[sea_orm(rs_type = "String", db_type = "Text")]
pub enum ApprovalState {
    /// Waiting for approvers; the only state a decision leaves.
    #[sea_orm(string_value = "pending")]
    Pending,
    #[sea_orm(string_value = "approved")]
    Approved,
    #[sea_orm(string_value = "denied")]
    Denied,
    /// Nobody decided in time.
    #[sea_orm(string_value = "expired")]
    Expired,
    /// The draft was edited after the request: a new request replaces it.
    #[sea_orm(string_value = "void")]
    Void,
}

impl ApprovalState {
    pub const ALL: [ApprovalState; 5] = [
        ApprovalState::Pending,
        ApprovalState::Approved,
        ApprovalState::Denied,
        ApprovalState::Expired,
        ApprovalState::Void,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            ApprovalState::Pending => "pending",
            ApprovalState::Approved => "approved",
            ApprovalState::Denied => "denied",
            ApprovalState::Expired => "expired",
            ApprovalState::Void => "void",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

super::sql::sql_names!(CampaignState);
super::sql::sql_names!(ApprovalState);

impl fmt::Display for CampaignState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for ApprovalState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_parse_and_serde() {
        for c in CampaignState::ALL {
            assert_eq!(CampaignState::parse(c.as_str()), Some(c));
            assert_eq!(serde_json::to_string(&c).unwrap(), format!("\"{c}\""));
        }
        for a in ApprovalState::ALL {
            assert_eq!(ApprovalState::parse(a.as_str()), Some(a));
            assert_eq!(serde_json::to_string(&a).unwrap(), format!("\"{a}\""));
        }
        assert_eq!(CampaignState::parse("Running"), None);
    }
}
