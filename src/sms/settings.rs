//! `[sms]`: what warmline's own SMS composition needs — the price it
//! estimates costs with, whether opt-out keywords are handled by the
//! provider's Advanced Opt-Out, and the name marketing texts identify their
//! sender with. A leaf module: the settings tree reads it without depending
//! on the SMS composition.

use serde::Deserialize;

use crate::settings::env::EnvVar;

/// The environment variables that set this table.
pub const ENV: &[EnvVar] = &[EnvVar::plain("WARMLINE_SMS_SENDER_NAME", "sms.sender_name")];

/// `[sms]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SmsSettings {
    /// US dollars per segment, for the cost shown in previews and approval
    /// requests. Default: Twilio's US long-code outbound list price.
    pub price_per_segment: f64,
    /// Whether the provider's Advanced Opt-Out answers STOP / HELP itself
    /// (warmline then sends no confirmation of its own).
    pub advanced_opt_out: bool,
    /// `WARMLINE_SMS_SENDER_NAME`: the name every marketing text starts
    /// with ("Acme: …"), as CTIA asks. Unset: `email.product_name`, else
    /// "warmline".
    pub sender_name: Option<String>,
}

impl Default for SmsSettings {
    fn default() -> Self {
        Self {
            price_per_segment: 0.0083,
            advanced_opt_out: true,
            sender_name: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_key_is_refused() {
        // Arrange
        let toml = "price_per_segment = 0.01\nsender = 'Acme'";

        // Act
        let parsed = toml::from_str::<SmsSettings>(toml);

        // Assert
        let err = parsed.unwrap_err().to_string();
        assert!(err.contains("sender"), "{err}");
    }

    #[test]
    fn defaults_are_the_us_list_price_and_advanced_opt_out() {
        let s: SmsSettings = toml::from_str("").unwrap();
        assert_eq!(s, SmsSettings::default());
        assert_eq!(s.price_per_segment, 0.0083);
        assert!(s.advanced_opt_out);
        assert_eq!(s.sender_name, None);
    }
}
