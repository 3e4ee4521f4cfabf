//! `[sentry]`: error monitoring's settings and environment variables.

use std::str::FromStr;

use secrecy::{ExposeSecret, SecretString};
use sentry::types::Dsn;
use serde::Deserialize;

use crate::settings::{env::EnvVar, error::ConfigError};

/// The environment variables that set `[sentry]`.
pub const ENV: &[EnvVar] = &[
    EnvVar::secret("SENTRY_DSN", "sentry.dsn"),
    EnvVar::plain("SENTRY_ENVIRONMENT", "sentry.environment"),
];

/// `[sentry]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SentrySettings {
    /// `SENTRY_DSN`: where to send errors. Unset: no error monitoring.
    pub dsn: Option<SecretString>,
    /// `SENTRY_ENVIRONMENT`: the environment events are filed under.
    pub environment: String,
}

impl Default for SentrySettings {
    fn default() -> Self {
        Self {
            dsn: None,
            environment: "production".into(),
        }
    }
}

impl SentrySettings {
    /// The DSN, parsed, when one is set. A malformed DSN is a configuration
    /// error naming `SENTRY_DSN`; the message never quotes the value.
    pub fn dsn(&self) -> Result<Option<Dsn>, ConfigError> {
        let Some(raw) = &self.dsn else {
            return Ok(None);
        };
        Dsn::from_str(raw.expose_secret().trim())
            .map(Some)
            .map_err(|e| ConfigError {
                setting: "SENTRY_DSN".into(),
                problem: format!(
                    "not a valid Sentry DSN ({e}); expected https://<key>@<host>/<project id>"
                ),
            })
    }
}
