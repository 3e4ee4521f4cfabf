//! `[providers.twilio]`: Twilio's account, sender, endpoint and rate.

use secrecy::SecretString;
use serde::Deserialize;

use crate::{domain::Channel, settings::env::EnvVar};

/// The channel it carries and the variable that turns it on (what
/// `/warm status` tells an operator to set).
pub const ENABLED_BY: (Channel, &str) = (Channel::Sms, "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN");

/// The environment variables that set this table.
pub const ENV: &[EnvVar] = &[
    EnvVar::plain("TWILIO_ACCOUNT_SID", "providers.twilio.account_sid"),
    EnvVar::secret("TWILIO_AUTH_TOKEN", "providers.twilio.auth_token"),
    EnvVar::plain(
        "TWILIO_MESSAGING_SERVICE_SID",
        "providers.twilio.messaging_service_sid",
    ),
    EnvVar::plain("TWILIO_FROM", "providers.twilio.from"),
    EnvVar::plain("TWILIO_API_URL", "providers.twilio.url"),
];

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TwilioSettings {
    /// `TWILIO_ACCOUNT_SID` (`AC…`).
    pub account_sid: Option<String>,
    /// `TWILIO_AUTH_TOKEN`: the API's Basic-auth password and the key of
    /// `X-Twilio-Signature`.
    pub auth_token: Option<SecretString>,
    /// `TWILIO_MESSAGING_SERVICE_SID` (`MG…`): Twilio picks the sender from
    /// the service's pool. Preferred over `from` when both are set.
    pub messaging_service_sid: Option<String>,
    /// `TWILIO_FROM`: the sending number, E.164.
    pub from: Option<String>,
    /// `TWILIO_API_URL`: the API base (a local fake in tests).
    pub url: Option<String>,
    /// Messages per second of the sender (the 10DLC campaign's or the
    /// toll-free number's MPS), all processes together (default 1).
    pub requests_per_second: Option<f64>,
}

impl TwilioSettings {
    /// Its secret values.
    pub fn secrets(&self) -> impl Iterator<Item = &SecretString> {
        self.auth_token.iter()
    }

    /// Whether Twilio is on: an account SID and an auth token, neither
    /// blank (the sender is checked when the provider is built, so a
    /// missing one stops start-up naming the setting).
    pub fn enabled(&self) -> bool {
        use secrecy::ExposeSecret;
        let set = |v: Option<&str>| v.is_some_and(|v| !v.trim().is_empty());
        set(self.account_sid.as_deref()) && set(self.auth_token.as_ref().map(|t| t.expose_secret()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_is_on_with_a_sid_and_a_token_and_keeps_the_token_secret() {
        let mut s = TwilioSettings {
            account_sid: Some("AC123".into()),
            ..Default::default()
        };
        assert!(!s.enabled());
        s.auth_token = Some(" ".to_string().into());
        assert!(!s.enabled(), "a blank token is not a token");
        s.auth_token = Some("tok".to_string().into());
        assert!(s.enabled());
        assert_eq!(s.secrets().count(), 1);
        assert!(!format!("{s:?}").contains("tok\""));
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = toml::from_str::<TwilioSettings>("requests_per_secnd = 3").unwrap_err();
        assert!(err.to_string().contains("requests_per_secnd"), "{err}");
    }
}
