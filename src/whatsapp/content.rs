//! What a WhatsApp message in the ledger says: free-form text (only inside
//! the 24-hour customer-service window) or an approved template with its
//! parameters. Stored as the message's `content` JSON at enqueue time; the
//! provider (`providers::whatsapp`) only transports it.
//!
//! Payload shapes (both keep `text`, what people read in previews, Slack
//! and the sandbox's outbox):
//! - `{"text": "…"}`
//! - `{"text": "<the template's body with its parameters filled>",
//!    "template": {"name": "…", "language": "en_US", "category":
//!    "MARKETING", "parameters": ["Ada", "…"]}}`

use serde::{Deserialize, Serialize};

/// A template's category, as Meta names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TemplateCategory {
    /// Promotions: needs WhatsApp marketing consent; 131050 revokes it.
    Marketing,
    /// Updates about something the person did or asked for.
    Utility,
    /// One-time codes.
    Authentication,
}

impl TemplateCategory {
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_uppercase().as_str() {
            "MARKETING" => Some(Self::Marketing),
            "UTILITY" => Some(Self::Utility),
            "AUTHENTICATION" => Some(Self::Authentication),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Marketing => "MARKETING",
            Self::Utility => "UTILITY",
            Self::Authentication => "AUTHENTICATION",
        }
    }

    /// How people read it.
    pub fn label(self) -> &'static str {
        match self {
            Self::Marketing => "Marketing",
            Self::Utility => "Utility",
            Self::Authentication => "Authentication",
        }
    }
}

/// An approved template, addressed by name and language, with the values
/// of its body's `{{1}}`, `{{2}}`… in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateMessage {
    pub name: String,
    pub language: String,
    pub category: TemplateCategory,
    #[serde(default)]
    pub parameters: Vec<String>,
}

/// One WhatsApp message's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WhatsappContent {
    /// Free-form text: inside the 24-hour window only (131047 otherwise).
    Text { text: String },
    /// A template; `text` is its body rendered with the parameters.
    Template {
        template: TemplateMessage,
        text: String,
    },
}

#[derive(Serialize, Deserialize)]
struct Payload {
    text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    template: Option<TemplateMessage>,
}

impl WhatsappContent {
    /// The ledger's `content` JSON.
    pub fn to_payload(&self) -> serde_json::Value {
        let p = match self {
            Self::Text { text } => Payload {
                text: text.clone(),
                template: None,
            },
            Self::Template { template, text } => Payload {
                text: text.clone(),
                template: Some(template.clone()),
            },
        };
        serde_json::to_value(p).expect("a payload of strings serialises")
    }

    /// Reads the ledger's `content` JSON; the error names what is wrong.
    pub fn from_payload(value: &serde_json::Value) -> Result<Self, String> {
        let p: Payload = serde_json::from_value(value.clone())
            .map_err(|e| format!("not a WhatsApp message's content: {e}"))?;
        Ok(match p.template {
            Some(template) => Self::Template {
                template,
                text: p.text,
            },
            None => Self::Text { text: p.text },
        })
    }

    /// What people read.
    pub fn text(&self) -> &str {
        match self {
            Self::Text { text } | Self::Template { text, .. } => text,
        }
    }

    pub fn is_template(&self) -> bool {
        matches!(self, Self::Template { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_shapes_round_trip_through_the_ledgers_json() {
        let text = WhatsappContent::Text {
            text: "Hi Ada".into(),
        };
        assert_eq!(text.to_payload(), serde_json::json!({"text": "Hi Ada"}));
        assert_eq!(
            WhatsappContent::from_payload(&text.to_payload()).unwrap(),
            text
        );

        let template = WhatsappContent::Template {
            template: TemplateMessage {
                name: "quarterly_update".into(),
                language: "en_US".into(),
                category: TemplateCategory::Marketing,
                parameters: vec!["Ada".into()],
            },
            text: "Hi Ada, our Q3 letter is out.".into(),
        };
        let json = template.to_payload();
        assert_eq!(json["template"]["category"], "MARKETING");
        assert_eq!(WhatsappContent::from_payload(&json).unwrap(), template);
        assert!(template.is_template());
    }

    #[test]
    fn a_payload_without_text_is_refused_naming_the_problem() {
        let err = WhatsappContent::from_payload(&serde_json::json!({"body": "x"})).unwrap_err();
        assert!(err.contains("text"), "{err}");
    }
}
