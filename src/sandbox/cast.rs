//! Who and where the sandbox workspace has: its team, the bot, four people
//! and its channels. Fixed, so that the page, the demo data and the tests
//! agree without configuration.
//!
//! The people cover the approval rules: one who asks (and may not approve
//! their own request), two approvers (a risky send needs both), and one who
//! may not approve at all.

use serde::Serialize;

pub const TEAM_ID: &str = "T0SANDBOX";
pub const TEAM_NAME: &str = "Sandbox";
pub const APP_ID: &str = "A0SANDBOX";
pub const BOT_ID: &str = "B0SANDBOX";
pub const BOT_USER_ID: &str = "U0SBBOT";
pub const BOT_NAME: &str = "warmline";

pub const REQUESTER: &str = "U0SBREQ";
pub const APPROVER_1: &str = "U0SBAPP1";
pub const APPROVER_2: &str = "U0SBAPP2";
pub const MEMBER: &str = "U0SBMEMB";

pub const APPROVALS: &str = "C0SBAPPROVALS";
pub const DIGEST: &str = "C0SBDIGEST";
pub const GENERAL: &str = "C0SBGENERAL";

/// One person in the workspace.
#[derive(Debug, Clone, Serialize)]
pub struct Person {
    pub id: &'static str,
    pub name: &'static str,
    pub title: &'static str,
    pub approver: bool,
}

pub const PEOPLE: &[Person] = &[
    Person {
        id: REQUESTER,
        name: "Riley Chen",
        title: "Requester",
        approver: false,
    },
    Person {
        id: APPROVER_1,
        name: "Avery Okafor",
        title: "Approver",
        approver: true,
    },
    Person {
        id: APPROVER_2,
        name: "Jordan Silva",
        title: "Approver",
        approver: true,
    },
    Person {
        id: MEMBER,
        name: "Sam Novak",
        title: "Member (not an approver)",
        approver: false,
    },
];

/// A public channel of the workspace.
#[derive(Debug, Clone, Serialize)]
pub struct Room {
    pub id: &'static str,
    pub name: &'static str,
}

pub const ROOMS: &[Room] = &[
    Room {
        id: GENERAL,
        name: "general",
    },
    Room {
        id: APPROVALS,
        name: "approvals",
    },
    Room {
        id: DIGEST,
        name: "warm-digest",
    },
];

pub fn person(id: &str) -> Option<&'static Person> {
    PEOPLE.iter().find(|p| p.id == id)
}

/// The bot's direct-message channel with `user` (`U0SBREQ` → `D0SBREQ`).
pub fn dm_of(user: &str) -> String {
    format!("D{}", user.trim_start_matches('U'))
}

/// The person whose DM `channel` is, if it is one.
pub fn dm_owner(channel: &str) -> Option<&'static Person> {
    PEOPLE.iter().find(|p| dm_of(p.id) == channel)
}

/// A channel's name as Slack would give it in a payload.
pub fn channel_name(channel: &str) -> Option<String> {
    ROOMS
        .iter()
        .find(|r| r.id == channel)
        .map(|r| r.name.to_string())
        .or_else(|| dm_owner(channel).map(|_| "directmessage".to_string()))
}

/// The approvers' ids, for `slack.approvers`.
pub fn approvers() -> Vec<String> {
    PEOPLE
        .iter()
        .filter(|p| p.approver)
        .map(|p| p.id.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_person_has_a_dm_that_leads_back_to_them() {
        for p in PEOPLE {
            let dm = dm_of(p.id);
            assert!(dm.starts_with('D'));
            assert_eq!(dm_owner(&dm).map(|o| o.id), Some(p.id));
            assert_eq!(channel_name(&dm).as_deref(), Some("directmessage"));
        }
        assert_eq!(channel_name(APPROVALS).as_deref(), Some("approvals"));
        assert!(channel_name("C0NOPE").is_none());
        assert_eq!(approvers(), [APPROVER_1, APPROVER_2]);
    }
}
