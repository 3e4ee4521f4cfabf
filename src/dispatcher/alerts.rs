//! What needs a person: messages that failed for good, and messages left
//! ambiguous by a crash during a key-less provider call. The dispatcher
//! reports them through [`Alerts`]; the Slack implementation posts them to
//! the approvals channel with buttons to resolve ambiguous ones.
//!
//! Alerts are best-effort notifications after the ledger commit; the ledger
//! stays the truth (the daily digest re-lists what is still ambiguous).

use async_trait::async_trait;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attention {
    /// Retries exhausted or a permanent error.
    Failed { message_id: String, error: String },
    /// May or may not have been sent; waits for a person.
    Ambiguous { message_id: String },
}

#[async_trait]
pub trait Alerts: Send + Sync {
    async fn attention(&self, items: Vec<Attention>);
}

/// Logs only (no Slack configured, tests, benchmarks).
pub struct LogAlerts;

#[async_trait]
impl Alerts for LogAlerts {
    async fn attention(&self, items: Vec<Attention>) {
        for item in items {
            tracing::warn!(?item, "a message needs attention");
        }
    }
}
