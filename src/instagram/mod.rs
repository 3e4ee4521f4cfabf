//! Instagram as a channel: what an Instagram message in the ledger says.
//! Instagram allows no cold outreach: a reply within 24 h of the person's
//! last message, or, written by a person, up to 7 days with the
//! `HUMAN_AGENT` tag. The provider (`providers::instagram`) only transports
//! the content.
//!
//! Payload: `{"text": "…"}`, or `{"text": "…", "tag": "HUMAN_AGENT"}`.

use serde::{Deserialize, Serialize};

/// The tag Meta lets a person's answer carry after 24 h, up to 7 days.
pub const HUMAN_AGENT: &str = "HUMAN_AGENT";

/// One Instagram message's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstagramContent {
    pub text: String,
    /// `HUMAN_AGENT` when a person answers after the 24-hour window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
}

impl InstagramContent {
    pub fn to_payload(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("a payload of strings serialises")
    }

    /// Reads the ledger's `content` JSON; the error names what is wrong.
    pub fn from_payload(value: &serde_json::Value) -> Result<Self, String> {
        serde_json::from_value(value.clone())
            .map_err(|e| format!("not an Instagram message's content: {e}"))
    }

    pub fn human_agent(&self) -> bool {
        self.tag.as_deref() == Some(HUMAN_AGENT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tag_is_kept_only_when_set() {
        let plain = InstagramContent {
            text: "Thanks!".into(),
            tag: None,
        };
        assert_eq!(plain.to_payload(), serde_json::json!({"text": "Thanks!"}));
        let tagged = InstagramContent {
            text: "Sorry for the wait".into(),
            tag: Some(HUMAN_AGENT.into()),
        };
        let back = InstagramContent::from_payload(&tagged.to_payload()).unwrap();
        assert!(back.human_agent());
    }
}
