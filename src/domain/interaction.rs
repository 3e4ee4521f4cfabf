//! What an interaction with a contact was (a meeting, an email, …) and which
//! way it went: the vocabulary the interactions log and the warmth model
//! share.

use serde::{Deserialize, Serialize};

/// What kind of interaction it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InteractionKind {
    Meeting,
    Email,
    Call,
    Message,
    Note,
}

impl InteractionKind {
    pub const ALL: &'static [InteractionKind] = &[
        InteractionKind::Meeting,
        InteractionKind::Email,
        InteractionKind::Call,
        InteractionKind::Message,
        InteractionKind::Note,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            InteractionKind::Meeting => "meeting",
            InteractionKind::Email => "email",
            InteractionKind::Call => "call",
            InteractionKind::Message => "message",
            InteractionKind::Note => "note",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|k| k.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Inbound,
    Outbound,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "inbound" => Some(Direction::Inbound),
            "outbound" => Some(Direction::Outbound),
            _ => None,
        }
    }
}
