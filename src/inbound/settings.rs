//! `[inbound]`: the keyword answers (STOP, START, HELP) and their texts. A
//! leaf module: the settings tree reads it without depending on inbound.

use serde::Deserialize;

/// `[inbound]`: what warmline answers to keywords. Unset texts use the
/// defaults below, which name the product (`email.product_name`).
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct InboundSettings {
    /// The answer to HELP and INFO.
    pub help_text: Option<String>,
    /// The one confirmation of a STOP.
    pub stop_confirmation: Option<String>,
    /// The one confirmation of a START.
    pub start_confirmation: Option<String>,
}

impl InboundSettings {
    pub fn help_text(&self, product: &str) -> String {
        configured(&self.help_text).unwrap_or_else(|| {
            format!(
                "{product}: you get messages from {product} on this channel. \
                 Reply STOP to unsubscribe, START to resubscribe."
            )
        })
    }

    pub fn stop_confirmation(&self, product: &str) -> String {
        configured(&self.stop_confirmation).unwrap_or_else(|| {
            format!(
                "You're unsubscribed from {product} messages on this channel and will get \
                 no more. Reply START to resubscribe."
            )
        })
    }

    pub fn start_confirmation(&self, product: &str) -> String {
        configured(&self.start_confirmation).unwrap_or_else(|| {
            format!(
                "You're resubscribed to {product} messages on this channel. \
                 Reply STOP to unsubscribe, HELP for help."
            )
        })
    }
}

/// A configured text, unless it is blank.
fn configured(text: &Option<String>) -> Option<String> {
    text.as_ref()
        .map(|t| t.trim())
        .filter(|t| !t.is_empty())
        .map(str::to_string)
}
