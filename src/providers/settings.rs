//! `[providers]`: one table per provider, each typed by the provider's own
//! settings struct (`providers/<name>/settings.rs`), and the environment
//! variables each declares.
//!
//! A leaf of the module graph: it imports only the providers' settings
//! files, so the settings loader can read it without depending on any
//! provider's code. Adding a provider adds its field and its `ENV` line here.

use secrecy::SecretString;
use serde::Deserialize;

use super::{
    instagram::settings::InstagramSettings, resend::settings::ResendSettings,
    smtp::settings::SmtpSettings, twilio::settings::TwilioSettings,
    whatsapp::settings::WhatsappSettings,
};
use crate::{domain::Channel, settings::env::EnvVar};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProvidersSettings {
    pub resend: ResendSettings,
    pub smtp: SmtpSettings,
    pub twilio: TwilioSettings,
    pub whatsapp: WhatsappSettings,
    pub instagram: InstagramSettings,
    /// The test provider exists only in builds with the `test-support`
    /// feature: a release build refuses `[providers.test]` as an unknown
    /// key, so it can never be configured to "send" to a test sink.
    #[cfg(feature = "test-support")]
    pub test: Option<super::test_provider::TestProviderSettings>,
}

impl ProvidersSettings {
    /// Every secret value configured for a provider (error reporting
    /// redacts them wherever they appear).
    pub fn secrets(&self) -> impl Iterator<Item = &SecretString> {
        self.resend
            .secrets()
            .chain(self.smtp.secrets())
            .chain(self.twilio.secrets())
            .chain(self.whatsapp.secrets())
            .chain(self.instagram.secrets())
    }
}

/// Which variable turns each provider on, for its channel.
pub const ENABLED_BY: &[(Channel, &str)] = &[
    super::resend::settings::ENABLED_BY,
    super::smtp::settings::ENABLED_BY,
    super::twilio::settings::ENABLED_BY,
    super::whatsapp::settings::ENABLED_BY,
    super::instagram::settings::ENABLED_BY,
];

/// Every provider's environment variables.
pub const ENV: &[&[EnvVar]] = &[
    super::resend::settings::ENV,
    super::smtp::settings::ENV,
    super::twilio::settings::ENV,
    super::whatsapp::settings::ENV,
    super::instagram::settings::ENV,
    // `[meta]`: shared by WhatsApp and Instagram.
    super::meta::settings::ENV,
];
