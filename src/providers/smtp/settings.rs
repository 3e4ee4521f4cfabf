//! `[providers.smtp]`: the SMTP server URL and rate.

use secrecy::SecretString;
use serde::Deserialize;

use crate::{domain::Channel, settings::env::EnvVar};

/// The channel it carries and the variable that turns it on (what
/// `/warm status` tells an operator to set).
pub const ENABLED_BY: (Channel, &str) = (Channel::Email, "SMTP_URL");

/// The environment variables that set this table.
pub const ENV: &[EnvVar] = &[EnvVar::secret("SMTP_URL", "providers.smtp.url")];

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmtpSettings {
    /// `SMTP_URL` (`smtp://user:pass@host:587?tls=required`, credentials
    /// included, hence secret); SMTP is on when it is set.
    pub url: Option<SecretString>,
    /// Messages per second to the server (default 10).
    pub requests_per_second: Option<f64>,
    /// Minimum spacing between two messages to one recipient, seconds.
    pub per_recipient_interval_secs: Option<f64>,
}

impl SmtpSettings {
    /// Its secret values (the URL carries credentials).
    pub fn secrets(&self) -> impl Iterator<Item = &SecretString> {
        self.url.iter()
    }

    pub fn enabled(&self) -> bool {
        self.url.is_some()
    }
}
