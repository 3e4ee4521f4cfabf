//! Instagram messaging through Meta's Graph API, the Instagram provider:
//! `POST {graph}/{version}/{account_id}/messages`, JSON, `Authorization:
//! Bearer`, one message per request, addressed by the person's IGSID
//! (`metadata.instagram_id`).
//!
//! Instagram allows no cold outreach: a reply within 24 h of the person's
//! last message (`messaging_type: RESPONSE`), or a person's answer up to 7
//! days with `messaging_type: MESSAGE_TAG, tag: HUMAN_AGENT`, when the
//! content (`crate::instagram::InstagramContent`) carries that tag.
//!
//! Invariants:
//! - **No idempotency key** (the Send API takes none): the dispatcher
//!   commits `called_at` first; a crash mid-call leaves the message
//!   `ambiguous`.
//! - Text is at most 1,000 UTF-8 bytes, checked here (`Permanent`).
//! - Classified on the Graph error's `code` ([`classify`]):
//!
//!   | outcome | codes |
//!   |---|---|
//!   | `RateLimited` | 4 (app), 17 (account), 32 (page), 613 (custom), HTTP 429 |
//!   | `Retryable` | 2, 5xx, timeouts |
//!   | `Permanent` | 10 (outside the messaging window, any subcode), 551 (this person isn't available), 190 (token), 100 (parameter), every other 4xx |
//!
//! - Rate: `[providers.instagram] requests_per_second`, default
//!   [`DEFAULT_REQUESTS_PER_SECOND`].

use std::time::Duration;

use async_trait::async_trait;
use reqwest::header::{AUTHORIZATION, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

pub mod settings;

use self::settings::InstagramSettings;
use super::{
    Health, HealthStatus, Limits, OutgoingMessage, Provider, SendOutcome,
    meta::{
        graph::{self, GraphError},
        settings::MetaSettings,
    },
    pushback::Pushback,
};
use crate::{domain::Channel, instagram::InstagramContent};

/// Meta's Send API allows 300 text calls per second per professional
/// account (shared doc §4.3). warmline only answers people inside their
/// window, so it never comes near; the default is that documented figure.
pub const DEFAULT_REQUESTS_PER_SECOND: f64 = 300.0;
/// A message's text takes at most 1,000 UTF-8 bytes.
pub const MAX_TEXT_BYTES: usize = 1000;

/// Building an Instagram client failed.
#[derive(Debug, thiserror::Error)]
pub enum InstagramError {
    #[error("INSTAGRAM_ACCESS_TOKEN (providers.instagram.access_token) is not set")]
    MissingToken,
    #[error("INSTAGRAM_ACCOUNT_ID (providers.instagram.account_id) is not set")]
    MissingAccountId,
    #[error("META_GRAPH_URL (meta.graph_url) is not an http(s) URL")]
    InvalidUrl,
    #[error("cannot build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    #[error(transparent)]
    Config(#[from] crate::settings::error::ConfigError),
}

/// The Instagram provider.
pub struct InstagramProvider {
    client: reqwest::Client,
    /// `{graph_base}/{account_id}`.
    account_url: String,
    token: SecretString,
    requests_per_second: f64,
    pushback: Pushback,
}

impl std::fmt::Debug for InstagramProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstagramProvider")
            .field("account_url", &self.account_url)
            .finish_non_exhaustive()
    }
}

impl InstagramProvider {
    pub fn from_settings(
        s: &InstagramSettings,
        meta: &MetaSettings,
    ) -> Result<Self, InstagramError> {
        let token = s
            .access_token
            .clone()
            .filter(|t| !t.expose_secret().trim().is_empty())
            .ok_or(InstagramError::MissingToken)?;
        let account = s
            .account_id
            .as_deref()
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .ok_or(InstagramError::MissingAccountId)?;
        url::Url::parse(&meta.graph_url())
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or(InstagramError::InvalidUrl)?;
        Ok(Self {
            client: graph::client()?,
            account_url: format!("{}/{account}", meta.graph_base()),
            token,
            requests_per_second: super::configured_rate("instagram", s.requests_per_second)?
                .unwrap_or(DEFAULT_REQUESTS_PER_SECOND),
            pushback: Pushback::default(),
        })
    }

    fn bearer(&self) -> HeaderValue {
        graph::bearer(&self.token)
    }

    async fn send_one(&self, m: &OutgoingMessage) -> SendOutcome {
        let body = match request_body(m) {
            Ok(b) => b,
            Err(error) => return SendOutcome::Permanent { error },
        };
        let url = format!("{}/messages", self.account_url);
        let answer = match graph::post(&self.client, "instagram", &url, &self.token, &body).await {
            Ok(a) => a,
            Err(outcome) => return outcome,
        };
        if let Some(wait) = answer.pushback {
            self.pushback.hold(wait);
        }
        let outcome = classify(answer.status, &answer.body);
        if let SendOutcome::RateLimited { retry_after } = &outcome {
            self.pushback.hold(*retry_after);
        }
        if let SendOutcome::Permanent { error } = &outcome {
            tracing::warn!(message = %m.id, error = %error, "instagram refused");
        }
        outcome
    }
}

/// The Send API request for one message, or why it cannot be sent as is.
pub fn request_body(m: &OutgoingMessage) -> Result<Value, String> {
    let content: InstagramContent = serde_json::from_value(m.content.clone())
        .map_err(|e| format!("instagram: not an Instagram message's content: {e}"))?;
    if m.to.trim().is_empty() || !m.to.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err("instagram: the recipient is not an Instagram-scoped id (IGSID)".into());
    }
    if content.text.trim().is_empty() {
        return Err("instagram: the message `text` is empty".into());
    }
    let bytes = content.text.len();
    if bytes > MAX_TEXT_BYTES {
        return Err(format!(
            "instagram: the text is {bytes} bytes; Instagram takes at most {MAX_TEXT_BYTES}"
        ));
    }
    let mut body = json!({
        "recipient": {"id": m.to},
        "message": {"text": content.text},
        "messaging_type": "RESPONSE",
    });
    match content.tag.as_deref() {
        None => {}
        Some(crate::instagram::HUMAN_AGENT) => {
            body["messaging_type"] = json!("MESSAGE_TAG");
            body["tag"] = json!(crate::instagram::HUMAN_AGENT);
        }
        Some(other) => {
            return Err(format!(
                "instagram: the tag `{}` is not one warmline sends (HUMAN_AGENT)",
                other.chars().take(30).collect::<String>()
            ));
        }
    }
    Ok(body)
}

/// Maps one answer to an outcome (the table in the module doc).
pub fn classify(status: u16, body: &[u8]) -> SendOutcome {
    if (200..300).contains(&status) {
        let id = serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|v| v.get("message_id")?.as_str().map(str::to_string));
        return SendOutcome::Accepted {
            provider_message_id: id,
        };
    }
    let error = GraphError::parse(body);
    let code = error.as_ref().and_then(|e| e.code);
    let describe = |what: &str| match (&error, code) {
        (Some(e), Some(c)) => format!("instagram error {c}: {what}{}", e.detail()),
        _ => format!("instagram: HTTP {status}"),
    };
    match code {
        Some(4 | 17 | 32 | 613) => SendOutcome::RateLimited {
            retry_after: Duration::from_secs(60),
        },
        Some(2) => SendOutcome::Retryable {
            error: describe(""),
            retry_after: None,
        },
        Some(10) => SendOutcome::Permanent {
            error: describe(
                "outside the messaging window (24 h after their last message; 7 days for a person's answer tagged HUMAN_AGENT). ",
            ),
        },
        Some(551) => SendOutcome::Permanent {
            error: describe("this person isn't available right now. "),
        },
        Some(190) => SendOutcome::Permanent {
            error: describe("the token is invalid or expired (INSTAGRAM_ACCESS_TOKEN). "),
        },
        _ if status == 429 => SendOutcome::RateLimited {
            retry_after: Duration::from_secs(60),
        },
        _ if status >= 500 || status == 408 => SendOutcome::Retryable {
            error: describe(""),
            retry_after: None,
        },
        _ => SendOutcome::Permanent {
            error: describe(""),
        },
    }
}

#[async_trait]
impl Provider for InstagramProvider {
    fn name(&self) -> &str {
        "instagram"
    }

    fn label(&self) -> &str {
        "Instagram"
    }

    fn channel(&self) -> Channel {
        Channel::Instagram
    }

    fn limits(&self) -> Limits {
        Limits {
            requests_per_second: Some(self.requests_per_second),
            max_batch: 1,
            per_recipient_interval: None,
        }
    }

    fn takes_idempotency_key(&self) -> bool {
        false
    }

    async fn send(&self, batch: &[OutgoingMessage]) -> Vec<SendOutcome> {
        let mut out = Vec::with_capacity(batch.len());
        for m in batch {
            out.push(self.send_one(m).await);
        }
        out
    }

    fn take_pushback(&self) -> Option<Duration> {
        self.pushback.take()
    }

    async fn health(&self) -> Vec<Health> {
        let row = |status, reason: String| Health {
            item: "credentials",
            status,
            reason,
        };
        let r = self
            .client
            .get(format!("{}?fields=username", self.account_url))
            .header(AUTHORIZATION, self.bearer())
            .send()
            .await;
        let credentials = match r {
            Ok(r) if r.status().is_success() => {
                let v: Value = r.json().await.unwrap_or_default();
                row(
                    HealthStatus::Ok,
                    format!(
                        "Meta accepts the token; answering as @{}",
                        v["username"].as_str().unwrap_or("?")
                    ),
                )
            }
            Ok(r) => {
                let code = r.status().as_u16();
                let bytes = r.bytes().await.unwrap_or_default();
                let why = match GraphError::parse(&bytes).and_then(|e| e.code) {
                    Some(190) => {
                        "the token is invalid or expired: check INSTAGRAM_ACCESS_TOKEN".to_string()
                    }
                    Some(100) => "the account is unknown to this token: check INSTAGRAM_ACCOUNT_ID"
                        .to_string(),
                    Some(c) => format!("Meta answered HTTP {code}, error {c}"),
                    None => format!("Meta answered HTTP {code}"),
                };
                row(HealthStatus::Fail, why)
            }
            Err(e) => row(
                HealthStatus::Fail,
                format!("could not reach the Graph API: {}", e.without_url()),
            ),
        };
        vec![
            credentials,
            Health {
                item: "window",
                status: HealthStatus::Ok,
                reason: "answers only: within 24 h of the person's last message, or 7 days for a person's answer (HUMAN_AGENT)".into(),
            },
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(code: i64, subcode: Option<i64>) -> Vec<u8> {
        json!({"error":{"message":"(#x)","type":"OAuthException","code":code,"error_subcode":subcode,"fbtrace_id":"A"}}).to_string().into_bytes()
    }

    fn ig(content: Value) -> OutgoingMessage {
        OutgoingMessage {
            id: "msg_1".into(),
            channel: Channel::Instagram,
            kind: crate::domain::MessageKind::Transactional,
            to: "1234567890".into(),
            content,
        }
    }

    #[test]
    fn each_row_of_the_table() {
        for code in [4, 17, 32, 613] {
            assert!(
                matches!(
                    classify(400, &err(code, None)),
                    SendOutcome::RateLimited { .. }
                ),
                "{code}"
            );
        }
        assert!(matches!(
            classify(500, &err(2, None)),
            SendOutcome::Retryable { .. }
        ));
        assert!(matches!(
            classify(502, b"<html>"),
            SendOutcome::Retryable { .. }
        ));
        for (code, sub) in [(10, Some(2018278)), (10, None)] {
            let SendOutcome::Permanent { error } = classify(400, &err(code, sub)) else {
                panic!()
            };
            assert!(error.contains("window"), "{error}");
        }
        let SendOutcome::Permanent { error } = classify(400, &err(551, None)) else {
            panic!()
        };
        assert!(error.contains("isn't available"));
        for code in [190, 100, 12345] {
            assert!(
                matches!(
                    classify(400, &err(code, None)),
                    SendOutcome::Permanent { .. }
                ),
                "{code}"
            );
        }
        assert_eq!(
            classify(200, br#"{"recipient_id":"1","message_id":"mid.1"}"#),
            SendOutcome::Accepted {
                provider_message_id: Some("mid.1".into())
            }
        );
        assert_eq!(
            classify(201, b""),
            SendOutcome::Accepted {
                provider_message_id: None
            }
        );
    }

    #[test]
    fn responses_and_human_agent_answers_and_the_byte_limit() {
        assert_eq!(
            request_body(&ig(json!({"text": "Hi"}))).unwrap(),
            json!({"recipient":{"id":"1234567890"},"message":{"text":"Hi"},"messaging_type":"RESPONSE"})
        );
        assert_eq!(
            request_body(&ig(json!({"text": "Hi", "tag": "HUMAN_AGENT"}))).unwrap(),
            json!({"recipient":{"id":"1234567890"},"message":{"text":"Hi"},"messaging_type":"MESSAGE_TAG","tag":"HUMAN_AGENT"})
        );
        let long = "é".repeat(501);
        assert!(
            request_body(&ig(json!({ "text": long })))
                .unwrap_err()
                .contains("1000")
        );
        assert!(request_body(&ig(json!({"text": "x", "tag": "ACCOUNT_UPDATE"}))).is_err());
    }
}
