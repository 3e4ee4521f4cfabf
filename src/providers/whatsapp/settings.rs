//! `[providers.whatsapp]`: the WhatsApp Cloud API's token, sending number,
//! business account and rate. What WhatsApp shares with Instagram is in
//! `[meta]` (`providers::meta::settings`).

use secrecy::SecretString;
use serde::Deserialize;

use crate::{domain::Channel, settings::env::EnvVar};

/// The channel it carries and the variables that turn it on.
pub const ENABLED_BY: (Channel, &str) = (
    Channel::Whatsapp,
    "WHATSAPP_ACCESS_TOKEN, WHATSAPP_PHONE_NUMBER_ID and WHATSAPP_BUSINESS_ACCOUNT_ID",
);

/// The environment variables that set this table.
pub const ENV: &[EnvVar] = &[
    EnvVar::secret("WHATSAPP_ACCESS_TOKEN", "providers.whatsapp.access_token"),
    EnvVar::plain(
        "WHATSAPP_PHONE_NUMBER_ID",
        "providers.whatsapp.phone_number_id",
    ),
    EnvVar::plain(
        "WHATSAPP_BUSINESS_ACCOUNT_ID",
        "providers.whatsapp.business_account_id",
    ),
];

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WhatsappSettings {
    /// `WHATSAPP_ACCESS_TOKEN`: a system user's token (Bearer).
    pub access_token: Option<SecretString>,
    /// `WHATSAPP_PHONE_NUMBER_ID`: the sending number's id (not the number).
    pub phone_number_id: Option<String>,
    /// `WHATSAPP_BUSINESS_ACCOUNT_ID`: the WABA whose templates are synced.
    pub business_account_id: Option<String>,
    /// Messages per second, all processes together (default 80, the Cloud
    /// API's default throughput per number).
    pub requests_per_second: Option<f64>,
}

impl WhatsappSettings {
    /// Its secret values.
    pub fn secrets(&self) -> impl Iterator<Item = &SecretString> {
        self.access_token.iter()
    }

    /// Whether WhatsApp is on: a token, a phone number id and a business
    /// account id, none blank.
    pub fn enabled(&self) -> bool {
        use secrecy::ExposeSecret;
        let set = |v: Option<&str>| v.is_some_and(|v| !v.trim().is_empty());
        set(self.access_token.as_ref().map(|t| t.expose_secret()))
            && set(self.phone_number_id.as_deref())
            && set(self.business_account_id.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_is_on_with_all_three_and_keeps_the_token_secret() {
        let mut s = WhatsappSettings {
            access_token: Some("EAAtok".to_string().into()),
            phone_number_id: Some("106540352242922".into()),
            ..Default::default()
        };
        assert!(!s.enabled());
        s.business_account_id = Some(" ".into());
        assert!(!s.enabled(), "a blank id is not an id");
        s.business_account_id = Some("264937493375603".into());
        assert!(s.enabled());
        assert_eq!(s.secrets().count(), 1);
        assert!(!format!("{s:?}").contains("EAAtok"));
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = toml::from_str::<WhatsappSettings>("phone_number = '1'").unwrap_err();
        assert!(err.to_string().contains("phone_number"), "{err}");
    }
}
