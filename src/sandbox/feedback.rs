//! What providers would say back, simulated from the outbox: delivered,
//! bounced, complained (a delivery report), a reply or a STOP (an inbound
//! message). Each goes through warmline's real front door:
//! - reports: a signed `POST /webhooks/sandbox-<channel>`, verified and
//!   parsed by [`SandboxWebhook`] and applied by the same
//!   `webhooks::delivery` code as Resend's (dedup, forward-only states,
//!   suppression, campaign notices);
//! - replies and STOPs: `POST /api/v1/inbound` with the sandbox's own API
//!   key and an idempotency key, the host CRM's route, which runs the one
//!   inbound path every channel shares (keywords, consent, confirmations).
//!
//! The webhook signature is the sandbox's own scheme, modelled on the
//! providers': `x-sandbox-signature: t=<unix seconds>,v1=<hex HMAC-SHA256
//! of "t.body">` under a secret made at start-up, five minutes' tolerance.
//! A forged or stale request is refused with 401 like any provider's.

use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;

use super::{
    Sandbox,
    capture::{self, sink_name},
};
use crate::{
    domain::Channel,
    providers::webhook::{
        DeliveryReport, ReportStatus, WebhookError, WebhookReceiver, WebhookRequest,
    },
};

pub const SIGNATURE_HEADER: &str = "x-sandbox-signature";
/// How old a signed request may be.
const TOLERANCE_SECS: i64 = 300;

/// What the page asks to simulate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Feedback {
    Delivered,
    Bounced,
    Complained,
    Reply,
    Stop,
}

#[derive(Debug, thiserror::Error)]
pub enum FeedbackError {
    #[error("no captured message {0}")]
    UnknownCapture(String),
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// Signs a webhook body at `timestamp`.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac =
        Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(body);
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

/// The receiver of one capture sink's reports.
pub struct SandboxWebhook {
    channel: Channel,
    secret: SecretString,
}

impl SandboxWebhook {
    pub fn new(channel: Channel, secret: SecretString) -> Self {
        Self { channel, secret }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Event {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    message_id: String,
    provider_message_id: String,
    to: String,
    #[serde(default)]
    detail: Option<String>,
}

impl WebhookReceiver for SandboxWebhook {
    fn route(&self) -> &'static str {
        sink_name(self.channel)
    }

    fn provider(&self) -> &'static str {
        sink_name(self.channel)
    }

    fn label(&self) -> &'static str {
        "the sandbox"
    }

    fn suppression_source(&self) -> &'static str {
        "sandbox"
    }

    fn is_configured(&self) -> bool {
        true
    }

    fn secret_setting(&self) -> &'static str {
        "the sandbox's start-up secret"
    }

    fn verify(&self, request: &WebhookRequest<'_>) -> Result<(), WebhookError> {
        let header = request
            .headers
            .get(SIGNATURE_HEADER)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| WebhookError::Unauthorized(format!("no {SIGNATURE_HEADER} header")))?;
        let timestamp: i64 = header
            .split(',')
            .find_map(|p| p.strip_prefix("t="))
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| WebhookError::Unauthorized("no timestamp in the signature".into()))?;
        if (request.now.timestamp() - timestamp).abs() > TOLERANCE_SECS {
            return Err(WebhookError::Unauthorized("stale signature".into()));
        }
        let expected = sign(self.secret.expose_secret(), timestamp, request.body);
        // Constant time: compare MACs, not strings.
        let given = header.split(',').find_map(|p| p.strip_prefix("v1="));
        let ok = given.is_some_and(|g| {
            let want = expected.rsplit("v1=").next().unwrap_or_default();
            g.len() == want.len()
                && g.bytes()
                    .zip(want.bytes())
                    .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                    == 0
        });
        if ok {
            Ok(())
        } else {
            Err(WebhookError::Unauthorized(
                "signature does not match".into(),
            ))
        }
    }

    fn parse(&self, request: &WebhookRequest<'_>) -> Result<Vec<DeliveryReport>, WebhookError> {
        let e: Event = serde_json::from_slice(request.body)
            .map_err(|e| WebhookError::Malformed(format!("sandbox event: {e}")))?;
        let detail = e.detail.unwrap_or_default();
        let status = match e.kind.as_str() {
            "delivered" => ReportStatus::Delivered,
            "bounced" => ReportStatus::Bounced {
                permanent: true,
                detail: if detail.is_empty() {
                    "550 5.1.1 mailbox does not exist (simulated)".into()
                } else {
                    detail
                },
            },
            "complained" => ReportStatus::Complained,
            other => {
                return Err(WebhookError::Malformed(format!(
                    "unknown sandbox event type {other:?}"
                )));
            }
        };
        Ok(vec![DeliveryReport {
            event_id: e.id,
            type_name: e.kind,
            ledger_id: Some(e.message_id),
            provider_message_id: Some(e.provider_message_id),
            recipient: Some(e.to),
            status,
        }])
    }
}

/// Simulates `feedback` on the captured message `capture_id`; returns what
/// warmline made of it, for the page.
pub async fn simulate(
    sandbox: &Sandbox,
    capture_id: &str,
    feedback: Feedback,
    text: Option<&str>,
) -> Result<String, FeedbackError> {
    let db = &sandbox.app().db;
    let (capture, _) = capture::find(db, capture_id)
        .await?
        .ok_or_else(|| FeedbackError::UnknownCapture(capture_id.to_string()))?;
    let channel = Channel::parse(&capture.channel)
        .ok_or_else(|| FeedbackError::Refused(format!("unknown channel {}", capture.channel)))?;
    let http = sandbox.http();
    let response = match feedback {
        Feedback::Delivered | Feedback::Bounced | Feedback::Complained => {
            let kind = match feedback {
                Feedback::Delivered => "delivered",
                Feedback::Bounced => "bounced",
                _ => "complained",
            };
            let body = json!({
                "id": format!("sbx-evt-{}", uuid::Uuid::new_v4().simple()),
                "type": kind,
                "message_id": capture.message_id,
                "provider_message_id": capture::provider_message_id(&capture.message_id),
                "to": capture.to,
            })
            .to_string();
            let signature = sign(
                sandbox.webhook_secret().expose_secret(),
                crate::clock::now().timestamp(),
                body.as_bytes(),
            );
            http.post(format!(
                "{}/webhooks/{}",
                sandbox.base_url(),
                sink_name(channel)
            ))
            .header("content-type", "application/json")
            .header(SIGNATURE_HEADER, signature)
            .body(body)
            .send()
            .await
        }
        Feedback::Reply | Feedback::Stop => {
            let text = match feedback {
                Feedback::Stop => "STOP".to_string(),
                _ => text
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .unwrap_or("Thanks — let's talk next week.")
                    .to_string(),
            };
            http.post(format!("{}/api/v1/inbound", sandbox.base_url()))
                .bearer_auth(sandbox.api_key().expose_secret())
                .header("idempotency-key", uuid::Uuid::new_v4().to_string())
                .json(&json!({
                    "channel": channel.as_str(),
                    "from": capture.to,
                    "text": text,
                    "received_at": crate::clock::now().to_rfc3339(),
                }))
                .send()
                .await
        }
    }
    .map_err(|e| FeedbackError::Internal(anyhow::anyhow!("{}", e.without_url())))?;
    let status = response.status();
    let answer: serde_json::Value = response.json().await.unwrap_or(serde_json::Value::Null);
    if !status.is_success() {
        let why = answer["error"]["message"]
            .as_str()
            .or_else(|| answer["error"].as_str())
            .unwrap_or("no reason given");
        return Err(FeedbackError::Refused(format!(
            "warmline answered {status}: {why}"
        )));
    }
    sandbox.workspace().touch();
    Ok(match feedback {
        Feedback::Delivered => "Delivery recorded.".into(),
        Feedback::Bounced => "Hard bounce recorded: the address is now suppressed.".into(),
        Feedback::Complained => "Complaint recorded: the address is now suppressed.".into(),
        Feedback::Reply => {
            "Reply received: see the campaign's thread and the contact's warmth.".into()
        }
        Feedback::Stop => "STOP received: consent revoked, one confirmation queued.".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderMap;

    fn request<'a>(headers: &'a HeaderMap, body: &'a [u8]) -> WebhookRequest<'a> {
        WebhookRequest {
            headers,
            body,
            now: chrono::DateTime::from_timestamp(1_765_000_000, 0).unwrap(),
            path: "/webhooks/sandbox",
            query: None,
            public_url: None,
        }
    }

    fn receiver() -> SandboxWebhook {
        SandboxWebhook::new(Channel::Email, "s3cret".to_string().into())
    }

    #[test]
    fn a_signed_event_verifies_and_parses_into_a_report() {
        let body = br#"{"id":"e1","type":"bounced","message_id":"m1","provider_message_id":"sbx-m1","to":"a@example.com"}"#;
        let mut headers = HeaderMap::new();
        headers.insert(
            SIGNATURE_HEADER,
            sign("s3cret", 1_765_000_000, body).parse().unwrap(),
        );
        let r = receiver();
        r.verify(&request(&headers, body)).unwrap();
        let reports = r.parse(&request(&headers, body)).unwrap();
        assert_eq!(reports[0].ledger_id.as_deref(), Some("m1"));
        assert!(matches!(
            reports[0].status,
            ReportStatus::Bounced {
                permanent: true,
                ..
            }
        ));
    }

    #[test]
    fn forged_stale_and_unsigned_requests_are_refused() {
        let body = br#"{}"#;
        let r = receiver();
        let mut forged = HeaderMap::new();
        forged.insert(
            SIGNATURE_HEADER,
            sign("other", 1_765_000_000, body).parse().unwrap(),
        );
        let mut stale = HeaderMap::new();
        stale.insert(
            SIGNATURE_HEADER,
            sign("s3cret", 1_765_000_000 - 301, body).parse().unwrap(),
        );
        for headers in [forged, stale, HeaderMap::new()] {
            assert!(matches!(
                r.verify(&request(&headers, body)),
                Err(WebhookError::Unauthorized(_))
            ));
        }
    }

    #[test]
    fn an_unknown_event_type_is_malformed_naming_it() {
        let body = br#"{"id":"e1","type":"exploded","message_id":"m1","provider_message_id":"p","to":"a@example.com"}"#;
        let headers = HeaderMap::new();
        let err = receiver().parse(&request(&headers, body)).unwrap_err();
        assert!(err.to_string().contains("exploded"), "{err}");
    }
}
