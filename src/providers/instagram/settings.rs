//! `[providers.instagram]`: the Instagram professional account warmline
//! answers from, and its token. What Instagram shares with WhatsApp is in
//! `[meta]` (`providers::meta::settings`).

use secrecy::SecretString;
use serde::Deserialize;

use crate::{domain::Channel, settings::env::EnvVar};

/// The channel it carries and the variables that turn it on.
pub const ENABLED_BY: (Channel, &str) = (
    Channel::Instagram,
    "INSTAGRAM_ACCESS_TOKEN and INSTAGRAM_ACCOUNT_ID",
);

/// The environment variables that set this table.
pub const ENV: &[EnvVar] = &[
    EnvVar::secret("INSTAGRAM_ACCESS_TOKEN", "providers.instagram.access_token"),
    EnvVar::plain("INSTAGRAM_ACCOUNT_ID", "providers.instagram.account_id"),
];

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InstagramSettings {
    /// `INSTAGRAM_ACCESS_TOKEN` (Bearer).
    pub access_token: Option<SecretString>,
    /// `INSTAGRAM_ACCOUNT_ID`: the professional account's id.
    pub account_id: Option<String>,
    /// Send API calls per second for text (default 300, Meta's limit per
    /// Instagram professional account).
    pub requests_per_second: Option<f64>,
}

impl InstagramSettings {
    /// Its secret values.
    pub fn secrets(&self) -> impl Iterator<Item = &SecretString> {
        self.access_token.iter()
    }

    /// Whether Instagram is on: a token and an account id, neither blank.
    pub fn enabled(&self) -> bool {
        use secrecy::ExposeSecret;
        let set = |v: Option<&str>| v.is_some_and(|v| !v.trim().is_empty());
        set(self.access_token.as_ref().map(|t| t.expose_secret()))
            && set(self.account_id.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_is_on_with_a_token_and_an_account() {
        let mut s = InstagramSettings {
            access_token: Some("IGtok".to_string().into()),
            ..Default::default()
        };
        assert!(!s.enabled());
        s.account_id = Some("17841400000000000".into());
        assert!(s.enabled());
        assert_eq!(s.secrets().count(), 1);
        assert!(!format!("{s:?}").contains("IGtok"));
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = toml::from_str::<InstagramSettings>("account = '1'").unwrap_err();
        assert!(err.to_string().contains("account"), "{err}");
    }
}
