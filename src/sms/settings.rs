//! `[sms]`: what the SMS channel needs whatever provider carries it — the
//! price per segment (cost estimates) and whether the provider answers
//! opt-out keywords itself. A leaf: it imports nothing of the crate.

use serde::Deserialize;

/// Twilio's US price per outbound SMS segment (2026), the default for cost
/// estimates.
pub const DEFAULT_PRICE_PER_SEGMENT: f64 = 0.0083;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmsSettings {
    /// The price of one segment, in the account's currency (default 0.0083).
    pub price_per_segment: f64,
    /// Whether the provider answers STOP, START and HELP itself (Twilio's
    /// Advanced Opt-Out, on by default on Messaging Services): warmline then
    /// records the consent change and sends no confirmation of its own.
    /// `false`: warmline answers, in the webhook's TwiML response.
    pub advanced_opt_out: bool,
}

impl Default for SmsSettings {
    fn default() -> Self {
        Self {
            price_per_segment: DEFAULT_PRICE_PER_SEGMENT,
            advanced_opt_out: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_issue_and_unknown_keys_are_refused() {
        let s: SmsSettings = toml::from_str("").unwrap();
        assert_eq!(s.price_per_segment, 0.0083);
        assert!(s.advanced_opt_out);
        let s: SmsSettings = toml::from_str("advanced_opt_out = false").unwrap();
        assert!(!s.advanced_opt_out);
        let err = toml::from_str::<SmsSettings>("advanced_optout = false").unwrap_err();
        assert!(err.to_string().contains("advanced_optout"), "{err}");
    }
}
