//! `[providers.resend]`: Resend's key, endpoint, webhook secret and rate.

use secrecy::SecretString;
use serde::Deserialize;

use crate::{domain::Channel, settings::env::EnvVar};

/// The channel it carries and the variable that turns it on (what
/// `/warm status` tells an operator to set).
pub const ENABLED_BY: (Channel, &str) = (Channel::Email, "RESEND_API_KEY");

/// The environment variables that set this table.
pub const ENV: &[EnvVar] = &[
    EnvVar::secret("RESEND_API_KEY", "providers.resend.api_key"),
    EnvVar::plain("RESEND_API_URL", "providers.resend.url"),
    EnvVar::secret("RESEND_WEBHOOK_SECRET", "providers.resend.webhook_secret"),
];

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ResendSettings {
    /// `RESEND_API_KEY`; Resend is on when it is set.
    pub api_key: Option<SecretString>,
    /// `RESEND_API_URL`: the API base (a local fake in tests).
    pub url: Option<String>,
    /// `RESEND_WEBHOOK_SECRET` (`whsec_…`): verifies `/webhooks/resend`.
    pub webhook_secret: Option<SecretString>,
    /// Requests per second for this API key, all processes together
    /// (default: Resend's 2/s).
    pub requests_per_second: Option<f64>,
    /// Emails per batch request (at most Resend's 100).
    pub max_batch: Option<usize>,
}

impl ResendSettings {
    /// Its secret values.
    pub fn secrets(&self) -> impl Iterator<Item = &SecretString> {
        [&self.api_key, &self.webhook_secret].into_iter().flatten()
    }

    /// Whether Resend is configured (an API key that is not blank).
    pub fn enabled(&self) -> bool {
        use secrecy::ExposeSecret;
        self.api_key
            .as_ref()
            .is_some_and(|k| !k.expose_secret().trim().is_empty())
    }
}
