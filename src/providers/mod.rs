//! Providers: the services that carry messages (Resend, SMTP, and the
//! channel providers to come), as plug-ins.
//!
//! The contract is [`Provider`]: a provider declares its channel, its limits
//! (rate, batch size, per-recipient spacing), whether it takes an
//! idempotency key and how far that key reaches, sends a batch and
//! classifies its own answers into [`SendOutcome`]s, reports the rate
//! signals its answers carry ([`Provider::take_pushback`]). A provider that
//! reports back has a [`webhook::WebhookReceiver`] (verify, then parse into
//! provider-neutral [`webhook::DeliveryReport`]s), built from the same
//! settings. The dispatcher and the webhook route know nothing
//! provider-specific.
//!
//! A refusal that says something about the recipient (they opted out at
//! the provider; the address cannot receive) is [`SendOutcome::Refused`]
//! with a [`RecipientProblem`], which the dispatcher acts on once for every
//! provider (`dispatcher::recipient`).
//!
//! Layout: one folder per provider (`resend/`, `smtp/`, `twilio/`), each with its
//! `settings.rs` (its `[providers.<name>]` table and environment variables);
//! [`settings`] gathers the tables, [`registry`] builds the configured
//! providers and picks one per channel. `docs/adding-a-provider.md` is the
//! checklist for a new one.

pub mod instagram;
pub mod meta;
pub mod pushback;
pub mod registry;
pub mod resend;
pub mod settings;
pub mod smtp;
#[cfg(feature = "test-support")]
pub mod test_provider;
pub mod twilio;
pub mod webhook;
pub mod whatsapp;

pub use registry::Registry;

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::domain::{Channel, MessageKind};

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
    /// Will never succeed for this recipient, for a reason warmline acts on
    /// once for every provider (see [`RecipientProblem`]): the message fails
    /// like [`SendOutcome::Permanent`], and the dispatcher records the
    /// problem against the contact in the same transaction.
    Refused {
        error: String,
        problem: RecipientProblem,
    },
}

/// What a provider's refusal says about the recipient, beyond this message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecipientProblem {
    /// The recipient opted out at the provider (Twilio 21610: they replied
    /// STOP to this sender; WhatsApp 131050): the channel's consent is
    /// revoked in the ledger, with source `provider:<name>`.
    OptedOut,
    /// The address cannot receive on this channel (Twilio 21211 invalid
    /// number, 21614 not a mobile number): the contact's address is
    /// flagged in its metadata (`<field>_invalid`, see
    /// `dispatcher::recipient`), so people see it and can fix it.
    Unreachable,
}

/// One thing a provider can say about its own set-up, for the doctor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// What is checked, e.g. "credentials", "sender".
    pub item: &'static str,
    pub status: HealthStatus,
    /// Why, in words, naming the setting to change where one is wrong;
    /// never a secret.
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthStatus {
    Ok,
    /// Works, but something is worth fixing.
    Warn,
    Fail,
}

#[async_trait]
pub trait Provider: Send + Sync {
    /// Stable name, used in settings (`[providers.<name>]`) and metrics.
    fn name(&self) -> &str;
    /// How people call it ("Resend"); its name unless it says otherwise.
    fn label(&self) -> &str {
        self.name()
    }
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
    /// Checks of its own set-up for the doctor (`warmline doctor`, `/warm
    /// doctor`): whether its credentials are accepted (one cheap
    /// authenticated request) and what its configuration lacks. Default:
    /// nothing beyond the doctor's provider-neutral rows.
    async fn health(&self) -> Vec<Health> {
        Vec::new()
    }
    /// When it has no webhook receiver (see [`Registry::webhook_of`]): how
    /// its failures reach warmline instead (the doctor shows it).
    fn without_webhook(&self) -> &'static str {
        "this provider sends no delivery webhooks"
    }
}

/// A configured `requests_per_second`: unset is `None` (the provider's
/// documented default applies); anything but a positive finite number is a
/// configuration error naming the setting.
pub fn configured_rate(
    provider: &str,
    value: Option<f64>,
) -> Result<Option<f64>, crate::settings::error::ConfigError> {
    match value {
        Some(r) if !(r > 0.0 && r.is_finite()) => Err(crate::settings::error::ConfigError {
            setting: format!("providers.{provider}.requests_per_second"),
            problem: "must be a positive number".into(),
        }),
        other => Ok(other),
    }
}
