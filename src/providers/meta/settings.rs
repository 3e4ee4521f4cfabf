//! `[meta]`: what WhatsApp and Instagram share — Meta's app secret (it
//! signs every webhook of both), the verify token of the webhook
//! subscription handshake, the Graph API's base and version.
//!
//! A leaf: it imports only the settings' [`EnvVar`]. The two providers'
//! own tables are `[providers.whatsapp]` and `[providers.instagram]`.

use secrecy::SecretString;
use serde::Deserialize;

use crate::settings::env::EnvVar;

/// The Graph API version warmline speaks (the official spec's).
pub const DEFAULT_GRAPH_VERSION: &str = "v23.0";
/// The Graph API's host.
pub const DEFAULT_GRAPH_URL: &str = "https://graph.facebook.com";

/// The environment variables that set this table.
pub const ENV: &[EnvVar] = &[
    EnvVar::secret("META_APP_SECRET", "meta.app_secret"),
    EnvVar::secret("META_VERIFY_TOKEN", "meta.verify_token"),
    EnvVar::plain("META_GRAPH_URL", "meta.graph_url"),
];

/// `[meta]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetaSettings {
    /// `META_APP_SECRET`: the key of `X-Hub-Signature-256` on every webhook.
    pub app_secret: Option<SecretString>,
    /// `META_VERIFY_TOKEN`: what the subscription handshake
    /// (`GET /webhooks/meta?hub.verify_token=…`) must present.
    pub verify_token: Option<SecretString>,
    /// `META_GRAPH_URL`: the Graph API base (a local fake in tests).
    pub graph_url: Option<String>,
    /// The Graph API version in every path (`v23.0`).
    pub graph_version: Option<String>,
}

impl MetaSettings {
    /// The Graph API base, without a trailing slash.
    pub fn graph_url(&self) -> String {
        self.graph_url
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .unwrap_or(DEFAULT_GRAPH_URL)
            .trim_end_matches('/')
            .to_string()
    }

    /// The version segment of every Graph path.
    pub fn graph_version(&self) -> &str {
        self.graph_version
            .as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .unwrap_or(DEFAULT_GRAPH_VERSION)
    }

    /// `{graph_url}/{version}`: every Graph path starts here.
    pub fn graph_base(&self) -> String {
        format!("{}/{}", self.graph_url(), self.graph_version())
    }

    /// Its secret values.
    pub fn secrets(&self) -> impl Iterator<Item = &SecretString> {
        self.app_secret.iter().chain(self.verify_token.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_graph_facebook_com_and_v23() {
        let s = MetaSettings::default();
        assert_eq!(s.graph_base(), "https://graph.facebook.com/v23.0");
        let s = MetaSettings {
            graph_url: Some("http://127.0.0.1:9/".into()),
            graph_version: Some("v24.0".into()),
            ..Default::default()
        };
        assert_eq!(s.graph_base(), "http://127.0.0.1:9/v24.0");
    }

    #[test]
    fn unknown_keys_are_refused_and_secrets_are_kept_secret() {
        let err = toml::from_str::<MetaSettings>("graph_verison = 'v1'").unwrap_err();
        assert!(err.to_string().contains("graph_verison"), "{err}");
        let s = MetaSettings {
            app_secret: Some("shh-app".to_string().into()),
            verify_token: Some("shh-verify".to_string().into()),
            ..Default::default()
        };
        assert_eq!(s.secrets().count(), 2);
        assert!(!format!("{s:?}").contains("shh"));
    }
}
