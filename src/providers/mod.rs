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
    pub channel: String,
    /// Marketing messages carry unsubscribe headers; transactional ones don't.
    pub kind: String,
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
    /// The channel it carries: `email`, `sms`, `whatsapp`, `instagram`.
    fn channel(&self) -> &str;
    fn limits(&self) -> Limits;
    /// Whether a repeated request with the same key is deduplicated by the
    /// provider, so a retry after a crash cannot send twice.
    fn takes_idempotency_key(&self) -> bool;
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
    by_channel: BTreeMap<String, String>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a provider; the first registered for a channel serves it.
    pub fn register(&mut self, provider: Arc<dyn Provider>) {
        let name = provider.name().to_string();
        self.by_channel
            .entry(provider.channel().to_string())
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

    pub fn get(&self, name: &str) -> Option<Arc<dyn Provider>> {
        self.by_name.get(name).cloned()
    }

    pub fn for_channel(&self, channel: &str) -> Option<Arc<dyn Provider>> {
        self.by_channel.get(channel).and_then(|n| self.get(n))
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<dyn Provider>> {
        self.by_name.values()
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}
