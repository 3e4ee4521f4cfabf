//! WhatsApp Cloud API (Meta's Graph API), the WhatsApp provider:
//! `POST {graph}/{version}/{phone_number_id}/messages`, one message per
//! request, JSON, `Authorization: Bearer` (a system user's token).
//!
//! Each request is a free-form text (`type: text`, only inside the
//! person's 24-hour customer-service window) or an approved template
//! (`type: template`, name, language and the body's text parameters; no
//! `components` when it has none), from `crate::whatsapp::content`. Every
//! request carries `biz_opaque_callback_data` = the ledger id, which Meta
//! echoes in the status webhooks ([`crate::providers::meta::webhook`]).
//!
//! Invariants:
//! - **No idempotency key.** The Cloud API takes none: the dispatcher
//!   commits `called_at` first, so a crash inside a call leaves the message
//!   `ambiguous` (settled by its status webhook), never re-sent on its own.
//! - A 2xx is `Accepted` even when the body cannot be read.
//! - Classified on the Graph error's `code` ([`classify`]), the HTTP
//!   status only as a fallback (Meta answers most errors 400):
//!
//!   | outcome | codes |
//!   |---|---|
//!   | `RateLimited` (the whole number slows down) | 130429 (throughput), HTTP 429 |
//!   | `Retryable { 6 s }` (that pair only; the limiter is not held) | 131056 (pair rate limit) |
//!   | `Retryable` | 80007, 4, 131000, 131016, 2, 131057, 5xx, timeouts |
//!   | `Refused { OptedOut }` | 131050 (stopped marketing messages): WhatsApp consent revoked, source `provider:whatsapp` |
//!   | `Permanent` | 131047 (outside the 24-hour window: send a template), 131026 (undeliverable), 131049 (Meta's per-person marketing limit: not retried), 131048 (spam rate limit), 100, 131008, 131009, 131051, 132000–132016, 131042, 130472, 131031, 131064, 190 |
//!
//! - Rate: `[providers.whatsapp] requests_per_second` (default 80, the
//!   Cloud API's default per number); per recipient at most one message
//!   every 6 s (the pair rate limit), which the dispatcher keeps: a
//!   person's next request leaves at least 6 s after the previous one's
//!   slot and after Meta answered it.
//! - `x-business-use-case-usage` on any answer pushes the limiter back
//!   ([`Provider::take_pushback`]).
//! - The token is only in the `Authorization` header (marked sensitive);
//!   logs mask phone numbers.

use std::time::Duration;

use async_trait::async_trait;
use reqwest::header::{AUTHORIZATION, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

pub mod settings;

use self::settings::WhatsappSettings;
use super::{
    Health, HealthStatus, Limits, OutgoingMessage, Provider, RecipientProblem, SendOutcome,
    meta::{
        graph::{self, GraphError},
        settings::MetaSettings,
    },
    pushback::Pushback,
};
use crate::{
    domain::{Channel, E164Phone, mask_phone},
    whatsapp::content::WhatsappContent,
};

/// The Cloud API's default throughput per business number (shared doc §3.6).
pub const DEFAULT_REQUESTS_PER_SECOND: f64 = 80.0;
/// Meta's pair rate limit: one message to the same person every 6 s.
pub const PAIR_INTERVAL: Duration = Duration::from_secs(6);
/// A text `body` takes at most 4,096 characters.
pub const MAX_TEXT_CHARS: usize = 4096;

/// Building a WhatsApp client failed.
#[derive(Debug, thiserror::Error)]
pub enum WhatsappError {
    #[error("WHATSAPP_ACCESS_TOKEN (providers.whatsapp.access_token) is not set")]
    MissingToken,
    #[error("WHATSAPP_PHONE_NUMBER_ID (providers.whatsapp.phone_number_id) is not set")]
    MissingPhoneNumberId,
    #[error("META_GRAPH_URL (meta.graph_url) is not an http(s) URL")]
    InvalidUrl,
    #[error("cannot build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    #[error(transparent)]
    Config(#[from] crate::settings::error::ConfigError),
}

/// The WhatsApp provider.
pub struct WhatsappProvider {
    client: reqwest::Client,
    /// `{graph_base}/{phone_number_id}`.
    number_url: String,
    token: SecretString,
    requests_per_second: f64,
    pushback: Pushback,
    /// Whether META_APP_SECRET and META_VERIFY_TOKEN are set (the doctor).
    webhook_ready: (bool, bool),
}

impl std::fmt::Debug for WhatsappProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WhatsappProvider")
            .field("number_url", &self.number_url)
            .field("requests_per_second", &self.requests_per_second)
            .finish_non_exhaustive()
    }
}

impl WhatsappProvider {
    pub fn from_settings(s: &WhatsappSettings, meta: &MetaSettings) -> Result<Self, WhatsappError> {
        let token = s
            .access_token
            .clone()
            .filter(|t| !t.expose_secret().trim().is_empty())
            .ok_or(WhatsappError::MissingToken)?;
        let phone = s
            .phone_number_id
            .as_deref()
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .ok_or(WhatsappError::MissingPhoneNumberId)?;
        url::Url::parse(&meta.graph_url())
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or(WhatsappError::InvalidUrl)?;
        let set = |v: &Option<SecretString>| {
            v.as_ref()
                .is_some_and(|v| !v.expose_secret().trim().is_empty())
        };
        Ok(Self {
            client: graph::client()?,
            number_url: format!("{}/{phone}", meta.graph_base()),
            token,
            requests_per_second: super::configured_rate("whatsapp", s.requests_per_second)?
                .unwrap_or(DEFAULT_REQUESTS_PER_SECOND),
            pushback: Pushback::default(),
            webhook_ready: (set(&meta.app_secret), set(&meta.verify_token)),
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
        tracing::debug!(message = %m.id, to = %mask_phone(&m.to), "whatsapp: sending one message");
        let url = format!("{}/messages", self.number_url);
        let answer = match graph::post(&self.client, "whatsapp", &url, &self.token, &body).await {
            Ok(a) => a,
            Err(outcome) => return outcome,
        };
        if let Some(wait) = answer.pushback {
            self.pushback.hold(wait);
        }
        let outcome = classify(answer.status, &answer.body);
        match &outcome {
            SendOutcome::RateLimited { retry_after } => self.pushback.hold(*retry_after),
            SendOutcome::Permanent { error } | SendOutcome::Refused { error, .. } => {
                tracing::warn!(message = %m.id, to = %mask_phone(&m.to), error = %error, "whatsapp refused")
            }
            SendOutcome::Retryable { error, .. } => {
                tracing::info!(message = %m.id, error = %error, "whatsapp: will retry")
            }
            SendOutcome::Accepted { .. } => {}
        }
        outcome
    }

    /// `GET {graph}/{phone_number_id}?fields=…`: the token and the number.
    async fn check_number(&self) -> Health {
        let row = |status, reason: String| Health {
            item: "credentials",
            status,
            reason,
        };
        let response = self
            .client
            .get(format!(
                "{}?fields=display_phone_number,verified_name,quality_rating",
                self.number_url
            ))
            .header(AUTHORIZATION, self.bearer())
            .send()
            .await;
        match response {
            Ok(r) if r.status().is_success() => {
                let v: Value = r.json().await.unwrap_or_default();
                let number = v["display_phone_number"].as_str().unwrap_or("?");
                let name = v["verified_name"].as_str().unwrap_or("?");
                let quality = v["quality_rating"].as_str().unwrap_or("UNKNOWN");
                let status = match quality {
                    "RED" => HealthStatus::Warn,
                    _ => HealthStatus::Ok,
                };
                row(
                    status,
                    format!(
                        "Meta accepts the token; sending as {} ({name}), quality {quality}",
                        mask_phone(&format!("+{}", number.trim_start_matches('+')))
                    ),
                )
            }
            Ok(r) => {
                let code = r.status().as_u16();
                let bytes = r.bytes().await.unwrap_or_default();
                let e = GraphError::parse(&bytes).unwrap_or_default();
                let why = match e.code {
                    Some(190) => {
                        "the token is invalid or expired: check WHATSAPP_ACCESS_TOKEN".to_string()
                    }
                    Some(100) => {
                        "the number is unknown to this token: check WHATSAPP_PHONE_NUMBER_ID"
                            .to_string()
                    }
                    Some(c) => format!("Meta answered HTTP {code}, error {c}"),
                    None => format!("Meta answered HTTP {code}"),
                };
                row(HealthStatus::Fail, why)
            }
            Err(e) => row(
                HealthStatus::Fail,
                format!("could not reach the Graph API: {}", e.without_url()),
            ),
        }
    }
}

/// The Cloud API request for one message, or why it cannot be sent as is.
pub fn request_body(m: &OutgoingMessage) -> Result<Value, String> {
    let to = E164Phone::parse(&m.to, None).map_err(|_| {
        format!(
            "whatsapp: the recipient {} is not an E.164 phone number",
            mask_phone(&m.to)
        )
    })?;
    let digits = to.as_str().trim_start_matches('+').to_string();
    let content =
        WhatsappContent::from_payload(&m.content).map_err(|e| format!("whatsapp: {e}"))?;
    let mut body = json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": digits,
        "biz_opaque_callback_data": m.id,
    });
    match content {
        WhatsappContent::Text { text } => {
            if text.trim().is_empty() {
                return Err("whatsapp: the message `text` is empty".into());
            }
            let chars = text.chars().count();
            if chars > MAX_TEXT_CHARS {
                return Err(format!(
                    "whatsapp: the text has {chars} characters; WhatsApp takes at most {MAX_TEXT_CHARS}"
                ));
            }
            body["type"] = json!("text");
            body["text"] = json!({"body": text, "preview_url": false});
        }
        WhatsappContent::Template { template, .. } => {
            let mut t = json!({
                "name": template.name,
                "language": {"code": template.language},
            });
            if !template.parameters.is_empty() {
                let parameters: Vec<Value> = template
                    .parameters
                    .iter()
                    .map(|p| json!({"type": "text", "text": p}))
                    .collect();
                t["components"] = json!([{"type": "body", "parameters": parameters}]);
            }
            body["type"] = json!("template");
            body["template"] = t;
        }
    }
    Ok(body)
}

/// Maps one answer to an outcome (the table in the module doc): the Graph
/// error's `code` first, the HTTP status as a fallback.
pub fn classify(status: u16, body: &[u8]) -> SendOutcome {
    if (200..300).contains(&status) {
        let id = serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|v| v.pointer("/messages/0/id")?.as_str().map(str::to_string));
        return SendOutcome::Accepted {
            provider_message_id: id,
        };
    }
    let error = GraphError::parse(body);
    let code = error.as_ref().and_then(|e| e.code);
    let describe = |what: &str| match (&error, code) {
        (Some(e), Some(c)) => format!("whatsapp error {c}: {what}{}", e.detail()),
        _ => format!("whatsapp: HTTP {status}"),
    };
    let permanent = |what: &str| SendOutcome::Permanent {
        error: describe(what),
    };
    let retry = |retry_after| SendOutcome::Retryable {
        error: describe(""),
        retry_after,
    };
    match code {
        Some(130429) => SendOutcome::RateLimited {
            retry_after: Duration::from_secs(1),
        },
        Some(131056) => retry(Some(PAIR_INTERVAL)),
        Some(131047) => permanent("outside the 24-hour window: send a template. "),
        Some(131049) => {
            permanent("Meta limits how many marketing templates one person receives; not retried. ")
        }
        Some(131050) => SendOutcome::Refused {
            error: describe("the person stopped marketing messages. "),
            problem: RecipientProblem::OptedOut,
        },
        Some(131026) => permanent("undeliverable. "),
        Some(131048) => permanent("spam rate limit hit. "),
        Some(80007 | 4 | 131000 | 131016 | 2 | 131057) => retry(None),
        Some(
            100
            | 131008
            | 131009
            | 131051
            | 131042
            | 130472
            | 131031
            | 131064
            | 190
            | 132000..=132999,
        ) => permanent(""),
        _ if status == 429 => SendOutcome::RateLimited {
            retry_after: Duration::from_secs(1),
        },
        _ if status >= 500 || status == 408 => retry(None),
        _ => permanent(""),
    }
}

#[async_trait]
impl Provider for WhatsappProvider {
    fn name(&self) -> &str {
        "whatsapp"
    }

    fn label(&self) -> &str {
        "WhatsApp"
    }

    fn channel(&self) -> Channel {
        Channel::Whatsapp
    }

    fn limits(&self) -> Limits {
        Limits {
            requests_per_second: Some(self.requests_per_second),
            max_batch: 1,
            per_recipient_interval: Some(PAIR_INTERVAL),
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
        let webhook = match self.webhook_ready {
            (true, true) => Health {
                item: "webhook",
                status: HealthStatus::Ok,
                reason: "META_APP_SECRET and META_VERIFY_TOKEN are set: /webhooks/meta verifies signatures and answers the handshake".into(),
            },
            (false, _) => Health {
                item: "webhook",
                status: HealthStatus::Fail,
                reason: "META_APP_SECRET is not set: /webhooks/meta refuses every status and reply (503)".into(),
            },
            (true, false) => Health {
                item: "webhook",
                status: HealthStatus::Warn,
                reason: "META_VERIFY_TOKEN is not set: Meta cannot verify the callback URL".into(),
            },
        };
        vec![self.check_number().await, webhook]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(code: i64) -> Vec<u8> {
        json!({"error":{"message":format!("(#{code}) something"),"type":"OAuthException","code":code,"error_data":{"messaging_product":"whatsapp","details":"to +16505551234"},"fbtrace_id":"A1"}}).to_string().into_bytes()
    }

    fn wa(content: Value) -> OutgoingMessage {
        OutgoingMessage {
            id: "msg_1".into(),
            channel: Channel::Whatsapp,
            kind: crate::domain::MessageKind::Marketing,
            to: "+16505551234".into(),
            content,
        }
    }

    #[test]
    fn accepted_reads_the_wamid_and_survives_an_unreadable_body() {
        let ok = br#"{"messaging_product":"whatsapp","contacts":[{"input":"16505551234","wa_id":"16505551234"}],"messages":[{"id":"wamid.X","message_status":"accepted"}]}"#;
        assert_eq!(
            classify(200, ok),
            SendOutcome::Accepted {
                provider_message_id: Some("wamid.X".into())
            }
        );
        assert_eq!(
            classify(200, b"not json"),
            SendOutcome::Accepted {
                provider_message_id: None
            }
        );
    }

    #[test]
    fn throughput_slows_the_number_and_the_pair_limit_retries_that_pair() {
        assert!(matches!(
            classify(400, &err(130429)),
            SendOutcome::RateLimited { .. }
        ));
        assert!(matches!(
            classify(429, b""),
            SendOutcome::RateLimited { .. }
        ));
        assert_eq!(
            match classify(400, &err(131056)) {
                SendOutcome::Retryable { retry_after, .. } => retry_after,
                other => panic!("{other:?}"),
            },
            Some(Duration::from_secs(6))
        );
    }

    #[test]
    fn each_permanent_row() {
        for code in [
            131047, 131026, 131049, 131048, 100, 131008, 131009, 131051, 132000, 132001, 132012,
            131042, 130472, 131031, 131064, 190,
        ] {
            assert!(
                matches!(classify(400, &err(code)), SendOutcome::Permanent { ref error } if error.contains(&code.to_string())),
                "{code}"
            );
        }
        let SendOutcome::Permanent { error } = classify(400, &err(131047)) else {
            panic!()
        };
        assert!(
            error.contains("24-hour window") && error.contains("template"),
            "{error}"
        );
        assert!(!error.contains("6505551234"), "{error}");
        let SendOutcome::Permanent { error } = classify(400, &err(131049)) else {
            panic!()
        };
        assert!(error.contains("not retried"), "{error}");
    }

    #[test]
    fn an_opt_out_is_a_refusal_and_transient_codes_retry() {
        assert!(matches!(
            classify(400, &err(131050)),
            SendOutcome::Refused {
                problem: RecipientProblem::OptedOut,
                ..
            }
        ));
        for code in [80007, 4, 131000, 131016, 2, 131057] {
            assert!(
                matches!(
                    classify(400, &err(code)),
                    SendOutcome::Retryable {
                        retry_after: None,
                        ..
                    }
                ),
                "{code}"
            );
        }
        assert!(matches!(
            classify(500, b"<html>"),
            SendOutcome::Retryable { .. }
        ));
        assert!(matches!(
            classify(503, &err(999999)),
            SendOutcome::Retryable { .. }
        ));
        assert_eq!(
            classify(404, b""),
            SendOutcome::Permanent {
                error: "whatsapp: HTTP 404".into()
            },
            "unreadable: the status decides"
        );
        assert!(
            matches!(classify(400, &err(999999)), SendOutcome::Permanent { .. }),
            "unknown code: status fallback"
        );
    }

    #[test]
    fn text_and_template_bodies_follow_the_cloud_api() {
        let text = request_body(&wa(json!({"text": "Hi Ada"}))).unwrap();
        assert_eq!(
            text,
            json!({"messaging_product":"whatsapp","recipient_type":"individual","to":"16505551234",
                   "biz_opaque_callback_data":"msg_1","type":"text","text":{"body":"Hi Ada","preview_url":false}})
        );
        let t = request_body(&wa(json!({"text": "Hi Ada, news", "template": {"name":"q3_update","language":"en_US","category":"MARKETING","parameters":["Ada"]}}))).unwrap();
        assert_eq!(t["type"], "template");
        assert_eq!(
            t["template"],
            json!({"name":"q3_update","language":{"code":"en_US"},"components":[{"type":"body","parameters":[{"type":"text","text":"Ada"}]}]})
        );
        let bare = request_body(&wa(json!({"text": "x", "template": {"name":"hello_world","language":"en_US","category":"UTILITY"}}))).unwrap();
        assert!(bare["template"].get("components").is_none());
        assert!(request_body(&wa(json!({"subject": "x"}))).is_err());
        let mut bad = wa(json!({"text": "x"}));
        bad.to = "0415".into();
        assert!(request_body(&bad).unwrap_err().contains("E.164"));
    }

    #[test]
    fn limits_token_and_pushback() {
        let s = WhatsappSettings {
            access_token: Some("EAAsecret".to_string().into()),
            phone_number_id: Some("106540352242922".into()),
            business_account_id: Some("1".into()),
            requests_per_second: None,
        };
        let p = WhatsappProvider::from_settings(&s, &MetaSettings::default()).unwrap();
        assert_eq!(
            p.limits(),
            Limits {
                requests_per_second: Some(80.0),
                max_batch: 1,
                per_recipient_interval: Some(Duration::from_secs(6))
            }
        );
        assert!(!p.takes_idempotency_key());
        assert!(!format!("{p:?}").contains("EAAsecret"));
        p.pushback.hold(
            graph::pushback(Some(r#"{"1":[{"type":"whatsapp","call_count":100}]}"#))
                .expect("a full call count holds"),
        );
        assert!(p.take_pushback().is_some());
        assert_eq!(p.take_pushback(), None);
        let mut zero = s.clone();
        zero.requests_per_second = Some(0.0);
        assert!(WhatsappProvider::from_settings(&zero, &MetaSettings::default()).is_err());
    }
}
