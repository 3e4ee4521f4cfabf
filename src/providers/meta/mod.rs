//! Meta's Graph API, shared by WhatsApp and Instagram: settings (`[meta]`),
//! the webhook signature (`X-Hub-Signature-256`), the Graph error envelope
//! and usage header ([`graph`]), the one app webhook both providers report
//! through ([`webhook::MetaWebhook`], `/webhooks/meta`), and the fake Graph
//! API for tests and benchmarks.

#[cfg(feature = "test-support")]
pub mod fake;
pub mod graph;
pub mod settings;
pub mod signature;
pub mod webhook;
