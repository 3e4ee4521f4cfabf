//! Providers: the services that carry messages (Resend, SMTP, Twilio, …).
//!
//! Each provider is one file implementing [`Provider`]: it declares its
//! limits, whether it takes an idempotency key and how large a batch it
//! accepts, and it classifies its own errors into [`SendOutcome`]s. The
//! dispatcher knows nothing provider-specific. Adding a provider means adding
//! a file and one line in [`Registry::from_settings`].

pub mod resend;
pub mod smtp;
pub mod test_provider;

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::domain::{Channel, MessageKind};

/// `[providers.<name>]` in `warmline.toml`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct ProviderSettings {
    /// Requests per second for this provider credential (all processes
    /// together). Unset: the provider's documented default.
    pub requests_per_second: Option<f64>,
    /// Largest batch per request (capped by the provider's own maximum).
    pub max_batch: Option<usize>,
    /// Minimum spacing between two messages to the same recipient, seconds.
    pub per_recipient_interval_secs: Option<f64>,
    /// The provider's endpoint: Resend's API base (`RESEND_API_URL`), the
    /// SMTP server (`SMTP_URL`, credentials included, hence secret), or the
    /// test provider's external sink.
    pub url: Option<secrecy::SecretString>,
    /// The API key (`RESEND_API_KEY`).
    pub api_key: Option<secrecy::SecretString>,
    /// The secret that signs the provider's webhooks (`RESEND_WEBHOOK_SECRET`, `whsec_…`).
    pub webhook_secret: Option<secrecy::SecretString>,
    /// For the test provider: whether it honours idempotency keys.
    pub idempotent: Option<bool>,
    /// For the test provider: simulated latency per request, milliseconds.
    pub latency_ms: Option<u64>,
}

/// What a provider declares about itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Requests per second; `None` for no limit.
    pub requests_per_second: Option<f64>,
    /// Messages per request (1 when the provider does not batch).
    pub max_batch: usize,
    /// Minimum spacing between messages to one recipient.
    pub per_recipient_interval: Option<Duration>,
}

/// One message as the provider sees it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OutgoingMessage {
    /// The ledger's id; also the idempotency key where the provider takes one.
    pub id: String,
    pub channel: Channel,
    /// Marketing messages carry unsubscribe headers; transactional ones don't.
    pub kind: MessageKind,
    /// Email address or E.164 phone.
    pub to: String,
    /// Rendered content (subject, bodies, headers), provider-neutral JSON.
    pub content: serde_json::Value,
}

/// How one message fared.
#[derive(Debug, Clone, PartialEq)]
pub enum SendOutcome {
    Accepted {
        provider_message_id: Option<String>,
    },
    /// Try again later (5xx, timeout, connection error).
    Retryable {
        error: String,
        retry_after: Option<Duration>,
    },
    /// The provider's rate limit: wait, and tell the limiter.
    RateLimited {
        retry_after: Duration,
    },
    /// Will never succeed as it is (validation, auth, hard rejection).
    Permanent {
        error: String,
    },
}

#[async_trait]
pub trait Provider: Send + Sync {
    /// Stable name, used in settings (`[providers.<name>]`) and metrics.
    fn name(&self) -> &str;
    /// The channel it carries.
    fn channel(&self) -> Channel;
    fn limits(&self) -> Limits;
    /// Whether a repeated request with the same key is deduplicated by the
    /// provider, so a retry after a crash cannot send twice.
    fn takes_idempotency_key(&self) -> bool;
    /// Whether the idempotency key covers each message of a batch on its
    /// own (the test provider: the key is the message id) rather than the
    /// request as a whole (Resend's batch endpoint: one key per request, so
    /// a batch formed differently after a crash is new to the provider).
    /// When it is per request, a multi-message request is treated like a
    /// key-less call: a crash inside it leaves its messages ambiguous.
    fn batch_key_per_message(&self) -> bool {
        true
    }
    /// Sends up to `limits().max_batch` messages in one request. Returns one
    /// outcome per message, in order.
    async fn send(&self, batch: &[OutgoingMessage]) -> Vec<SendOutcome>;
    /// The provider's own word on its rate, read from its last responses
    /// (Resend's `ratelimit-remaining: 0` with `ratelimit-reset`): hold the
    /// next request this long. Taking it clears it. The dispatcher asks after
    /// every request and pushes its shared limiter back accordingly.
    fn take_pushback(&self) -> Option<Duration> {
        None
    }
}

/// The providers configured, by name, and the one used per channel.
#[derive(Clone, Default)]
pub struct Registry {
    by_name: BTreeMap<String, Arc<dyn Provider>>,
    by_channel: BTreeMap<Channel, String>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a provider; the first registered for a channel serves it.
    pub fn register(&mut self, provider: Arc<dyn Provider>) {
        let name = provider.name().to_string();
        self.by_channel
            .entry(provider.channel())
            .or_insert_with(|| name.clone());
        self.by_name.insert(name, provider);
    }

    /// The providers `warmline.toml` configures.
    pub fn from_settings(settings: &BTreeMap<String, ProviderSettings>) -> anyhow::Result<Self> {
        let mut registry = Self::new();
        // First, so that Resend carries email when SMTP is configured too
        // (`email.provider` unset: Resend if configured, else SMTP).
        if let Some(resend) = settings.get("resend").filter(|s| s.api_key.is_some()) {
            registry.register(Arc::new(resend::ResendProvider::from_settings(resend)?));
        }
        if let Some(test) = settings.get("test") {
            registry.register(Arc::new(test_provider::TestProvider::from_settings(test)?));
        }
        if let Some(smtp) = settings.get("smtp").filter(|s| s.url.is_some()) {
            registry.register(Arc::new(smtp::SmtpProvider::from_settings(smtp)?));
        }
        Ok(registry)
    }

    /// The providers configured, with `email.provider` choosing which one
    /// carries email when several could.
    pub fn from_app_settings(settings: &crate::settings::Settings) -> anyhow::Result<Self> {
        let mut registry = Self::from_settings(&settings.providers)?;
        if let Some(name) = &settings.email.provider {
            registry.carry(Channel::Email, name).map_err(|e| {
                anyhow::Error::from(crate::settings::ConfigError {
                    setting: "email.provider".into(),
                    problem: e,
                })
            })?;
        }
        Ok(registry)
    }

    /// Makes `name` the provider for `channel`.
    pub fn carry(&mut self, channel: Channel, name: &str) -> Result<(), String> {
        match self.by_name.get(name) {
            Some(p) if p.channel() == channel => {
                self.by_channel.insert(channel, name.to_string());
                Ok(())
            }
            Some(p) => Err(format!("'{name}' carries {}, not {channel}", p.channel())),
            None => Err(format!(
                "'{name}' is not configured (configured: {})",
                self.by_name.keys().cloned().collect::<Vec<_>>().join(", ")
            )),
        }
    }

    pub fn get(&self, name: &str) -> Option<Arc<dyn Provider>> {
        self.by_name.get(name).cloned()
    }

    pub fn for_channel(&self, channel: Channel) -> Option<Arc<dyn Provider>> {
        self.by_channel.get(&channel).and_then(|n| self.get(n))
    }

    /// The provider for a channel given by its stored name; `None` for a
    /// name that is not a channel, as for a channel nothing carries.
    pub fn for_channel_named(&self, channel: &str) -> Option<Arc<dyn Provider>> {
        self.for_channel(Channel::parse(channel)?)
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<dyn Provider>> {
        self.by_name.values()
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Settings;

    fn settings(provider: Option<&str>) -> Settings {
        let mut s = Settings::default();
        s.providers.insert(
            "resend".into(),
            ProviderSettings {
                api_key: Some("re_test".to_string().into()),
                ..Default::default()
            },
        );
        s.providers.insert(
            "smtp".into(),
            ProviderSettings {
                url: Some("smtp://127.0.0.1:2525".to_string().into()),
                ..Default::default()
            },
        );
        s.email.provider = provider.map(String::from);
        s
    }

    // Async: building the SMTP transport needs a Tokio runtime.
    #[tokio::test]
    async fn resend_carries_email_unless_told_otherwise() {
        crate::install_crypto_provider();
        let r = Registry::from_app_settings(&settings(None)).unwrap();
        assert_eq!(r.for_channel(Channel::Email).unwrap().name(), "resend");
        let r = Registry::from_app_settings(&settings(Some("smtp"))).unwrap();
        assert_eq!(r.for_channel(Channel::Email).unwrap().name(), "smtp");
    }

    #[tokio::test]
    async fn an_unconfigured_email_provider_is_a_configuration_error() {
        crate::install_crypto_provider();
        let err = Registry::from_app_settings(&settings(Some("mailgun")))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("email.provider"), "{err}");
        assert!(err.contains("not configured"), "{err}");
    }
}
