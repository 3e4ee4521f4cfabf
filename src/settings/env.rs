//! The public environment variables: each names one settings key, and says
//! whether its value is a secret (never echoed in an error) or a
//! comma-separated list.
//!
//! A leaf module: feature modules (providers, integrations) declare their
//! own variables with [`EnvVar`] next to their settings, and the settings
//! loader reads every declared list, so a new integration's variables are
//! added where the integration lives.

/// One public environment variable and the settings key it sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnvVar {
    /// The variable operators set (`RESEND_API_KEY`).
    pub var: &'static str,
    /// The dotted settings key it overrides (`providers.resend.api_key`).
    pub key: &'static str,
    /// Its value is never quoted in an error message.
    pub secret: bool,
    /// Its value is a comma-separated list.
    pub list: bool,
}

impl EnvVar {
    pub const fn plain(var: &'static str, key: &'static str) -> Self {
        Self {
            var,
            key,
            secret: false,
            list: false,
        }
    }

    pub const fn secret(var: &'static str, key: &'static str) -> Self {
        Self {
            var,
            key,
            secret: true,
            list: false,
        }
    }

    pub const fn list(var: &'static str, key: &'static str) -> Self {
        Self {
            var,
            key,
            secret: false,
            list: true,
        }
    }

    pub const fn secret_list(var: &'static str, key: &'static str) -> Self {
        Self {
            var,
            key,
            secret: true,
            list: true,
        }
    }
}
