//! Email, the first channel: what one email is ([`EmailContent`], the
//! provider-neutral payload every email provider sends), how it is put
//! together from a template ([`compose`]), and the signed unsubscribe links
//! marketing mail must carry ([`unsubscribe`]).
//!
//! Invariant: the ledger stores an email's final content, rendered and with
//! its headers, at enqueue time. A provider only transports it, so Resend
//! and SMTP send byte-for-byte the same message, and a template error is
//! caught before anything enters the ledger, never at send time.

pub mod compose;
pub mod unsubscribe;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One email, ready to send. The recipient is not here: the dispatcher
/// resolves it at the last moment (the contact's address may have changed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmailContent {
    /// `"Name <address>"` or an address.
    pub from: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
    pub subject: String,
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
    /// Extra headers: `List-Unsubscribe` and `List-Unsubscribe-Post` on
    /// marketing mail.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

impl EmailContent {
    /// Reads a ledger payload. A payload that is not an email is a bug
    /// upstream; the provider reports it as a permanent failure.
    pub fn from_payload(payload: &serde_json::Value) -> Result<Self, String> {
        serde_json::from_value(payload.clone()).map_err(|e| format!("not an email payload: {e}"))
    }

    pub fn to_payload(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("plain data serialises")
    }
}
