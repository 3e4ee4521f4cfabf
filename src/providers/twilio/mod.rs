//! Twilio Programmable Messaging (<https://www.twilio.com>), the SMS
//! provider: `POST /2010-04-01/Accounts/{sid}/Messages.json`, one message
//! per request, form-encoded, HTTP Basic auth (account SID, auth token).
//!
//! Each request carries `To` (E.164), `Body` (`content["text"]`, at most
//! 1,600 characters), `MessagingServiceSid` (preferred) or `From`, and
//! `StatusCallback = {WARMLINE_PUBLIC_URL}/webhooks/twilio/status`, so the
//! delivery states come back to [`webhook::TwilioWebhook`].
//!
//! Invariants:
//! - **No idempotency key.** Twilio's Messages API takes none
//!   ([`Provider::takes_idempotency_key`] is false): the dispatcher commits
//!   `called_at` before each call, so a crash between the request and its
//!   answer leaves the message `ambiguous` for a person (or for the status
//!   callback, which settles it as sent), never re-sent on its own.
//! - A 2xx means Twilio created the message: `Accepted` even when the body
//!   cannot be read (retrying could send twice).
//! - Errors are classified by Twilio's error `code` ([`classify`]), the HTTP
//!   status only as a fallback, never the text:
//!
//!   | outcome | codes |
//!   |---|---|
//!   | `Accepted { sid }` | 2xx (201 with the Message resource) |
//!   | `RateLimited` (the whole sender slows down: the limiter is held and [`Provider::take_pushback`] reports it) | HTTP 429, 20429 (too many requests), 30022 (10DLC throughput exceeded) |
//!   | `Retryable` | 5xx, 408, timeouts, connection errors; 21611 / 30001 (sender's queue full: in a minute); 14107 (reply loop guard: in 30 s) |
//!   | `Refused { OptedOut }` | 21610 (the recipient replied STOP to this sender): consent revoked, source `provider:twilio` |
//!   | `Refused { Unreachable }` | 21211 (invalid `To`), 21614 (not a mobile number), 21635 (a landline): the contact's phone is flagged |
//!   | `Permanent` | every other 4xx (21608 unverified `To`, 21602 no body, 20003 authentication, …) |
//!
//! - The rate is `[providers.twilio] requests_per_second`, the sender's
//!   MPS (default 1, a classic long code); the dispatcher's limiter keeps
//!   every 1-s window under it.
//! - The auth token is only in the `Authorization` header (marked
//!   sensitive by reqwest's `basic_auth`); logs mask phone numbers.

#[cfg(feature = "test-support")]
pub mod fake;
pub mod settings;
pub mod signature;
pub mod webhook;

use std::time::Duration;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use self::settings::TwilioSettings;
use super::{Limits, OutgoingMessage, Provider, RecipientProblem, SendOutcome};
use crate::domain::{Channel, E164Phone, mask_addresses, mask_phone};

/// Twilio's API.
pub const DEFAULT_URL: &str = "https://api.twilio.com";
/// A classic US long code sends about one segment per second (shared doc
/// §2.8); 10DLC campaigns and toll-free numbers get more, configured in
/// `[providers.twilio] requests_per_second`.
pub const DEFAULT_REQUESTS_PER_SECOND: f64 = 1.0;
/// `Body` takes at most 1,600 characters.
pub const MAX_BODY_CHARS: usize = 1600;
/// One attempt's budget.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// The path of the status callback under `WARMLINE_PUBLIC_URL`.
pub const STATUS_PATH: &str = "/webhooks/twilio/status";
/// The path of incoming messages under `WARMLINE_PUBLIC_URL`.
pub const INBOUND_PATH: &str = "/webhooks/twilio/inbound";

/// Building a Twilio client failed.
#[derive(Debug, thiserror::Error)]
pub enum TwilioError {
    #[error("TWILIO_ACCOUNT_SID (providers.twilio.account_sid) is not set")]
    MissingAccountSid,
    #[error("TWILIO_AUTH_TOKEN (providers.twilio.auth_token) is not set")]
    MissingAuthToken,
    #[error(
        "TWILIO_MESSAGING_SERVICE_SID (providers.twilio.messaging_service_sid) or TWILIO_FROM (providers.twilio.from) must be set"
    )]
    MissingSender,
    #[error("TWILIO_FROM (providers.twilio.from) is not an E.164 phone number like +14155552671")]
    InvalidFrom,
    #[error("TWILIO_API_URL (providers.twilio.url) is not an http(s) URL")]
    InvalidUrl,
    #[error(
        "WARMLINE_PUBLIC_URL (server.public_url) is not set: Twilio's status callbacks go to <WARMLINE_PUBLIC_URL>/webhooks/twilio/status"
    )]
    MissingPublicUrl,
    #[error("cannot build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    #[error(transparent)]
    Config(#[from] crate::settings::error::ConfigError),
}

/// Who sends: a Messaging Service (Twilio picks a number from its pool) or
/// one number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sender {
    MessagingService(String),
    From(E164Phone),
}

/// How the client talks to Twilio.
#[derive(Debug, Clone)]
pub struct TwilioConfig {
    pub account_sid: String,
    pub auth_token: SecretString,
    pub sender: Sender,
    /// API base, `https://api.twilio.com` or a fake's `http://127.0.0.1:…`.
    pub base_url: String,
    /// `{WARMLINE_PUBLIC_URL}/webhooks/twilio/status`.
    pub status_callback: String,
    pub requests_per_second: f64,
    pub timeout: Duration,
}

impl TwilioConfig {
    /// `[providers.twilio]` and the public base URL the status callbacks
    /// go to.
    pub fn from_settings(
        s: &TwilioSettings,
        public_url: Option<&url::Url>,
    ) -> Result<Self, TwilioError> {
        let text = |v: &Option<String>| {
            v.as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        let account_sid = text(&s.account_sid).ok_or(TwilioError::MissingAccountSid)?;
        let auth_token = s
            .auth_token
            .clone()
            .filter(|t| !t.expose_secret().trim().is_empty())
            .ok_or(TwilioError::MissingAuthToken)?;
        let sender = match (text(&s.messaging_service_sid), text(&s.from)) {
            (Some(mg), _) => Sender::MessagingService(mg),
            (None, Some(from)) => {
                Sender::From(E164Phone::parse(&from, None).map_err(|_| TwilioError::InvalidFrom)?)
            }
            (None, None) => return Err(TwilioError::MissingSender),
        };
        let public = public_url.ok_or(TwilioError::MissingPublicUrl)?;
        Ok(Self {
            account_sid,
            auth_token,
            sender,
            base_url: text(&s.url).unwrap_or_else(|| DEFAULT_URL.to_string()),
            status_callback: format!("{}{STATUS_PATH}", public.as_str().trim_end_matches('/')),
            requests_per_second: super::configured_rate("twilio", s.requests_per_second)?
                .unwrap_or(DEFAULT_REQUESTS_PER_SECOND),
            timeout: REQUEST_TIMEOUT,
        })
    }
}

/// The Twilio provider.
pub struct TwilioProvider {
    client: reqwest::Client,
    endpoint: String,
    account_sid: String,
    auth_token: SecretString,
    sender: Sender,
    status_callback: String,
    requests_per_second: f64,
    /// Until when Twilio said to slow down (429, 20429, 30022).
    pushback_until: crate::providers::pushback::Pushback,
}

impl std::fmt::Debug for TwilioProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwilioProvider")
            .field("endpoint", &self.endpoint)
            .field("sender", &self.sender)
            .field("requests_per_second", &self.requests_per_second)
            .finish_non_exhaustive()
    }
}

/// Twilio's REST error body.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct ApiError {
    #[serde(default)]
    pub code: Option<u32>,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub status: Option<u16>,
}

/// The part of the Message resource warmline reads.
#[derive(Debug, Deserialize)]
struct MessageResource {
    sid: String,
}

impl TwilioProvider {
    pub fn new(config: TwilioConfig) -> Result<Self, TwilioError> {
        let base = url::Url::parse(&config.base_url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or(TwilioError::InvalidUrl)?;
        crate::install_crypto_provider();
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .user_agent(concat!("warmline/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            client,
            endpoint: format!(
                "{}/2010-04-01/Accounts/{}/Messages.json",
                base.as_str().trim_end_matches('/'),
                config.account_sid
            ),
            account_sid: config.account_sid,
            auth_token: config.auth_token,
            sender: config.sender,
            status_callback: config.status_callback,
            requests_per_second: config.requests_per_second,
            pushback_until: Default::default(),
        })
    }

    pub fn from_settings(
        s: &TwilioSettings,
        public_url: Option<&url::Url>,
    ) -> Result<Self, TwilioError> {
        Self::new(TwilioConfig::from_settings(s, public_url)?)
    }

    /// `GET /2010-04-01/Accounts/{sid}.json`: the cheapest authenticated
    /// request, for the doctor.
    async fn check_credentials(&self) -> super::Health {
        use super::{Health, HealthStatus};
        let url = self.endpoint.replace("/Messages.json", ".json");
        let health = |status, reason: String| Health {
            item: "credentials",
            status,
            reason,
        };
        match self
            .client
            .get(&url)
            .basic_auth(&self.account_sid, Some(self.auth_token.expose_secret()))
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => {
                let status = r
                    .json::<serde_json::Value>()
                    .await
                    .ok()
                    .and_then(|v| v["status"].as_str().map(str::to_string))
                    .unwrap_or_else(|| "unknown".into());
                if status == "active" {
                    health(
                        HealthStatus::Ok,
                        "Twilio accepts them (account active)".into(),
                    )
                } else {
                    health(
                        HealthStatus::Fail,
                        format!("the Twilio account is {status}, not active"),
                    )
                }
            }
            Ok(r) if r.status().as_u16() == 401 || r.status().as_u16() == 404 => health(
                HealthStatus::Fail,
                "Twilio refuses them: check TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN".into(),
            ),
            Ok(r) => health(
                HealthStatus::Fail,
                format!("Twilio answered HTTP {} to an account check", r.status()),
            ),
            Err(e) => health(
                HealthStatus::Fail,
                format!("could not reach Twilio: {}", e.without_url()),
            ),
        }
    }

    /// The form parameters of one message, in the order they are sent.
    pub fn form(&self, to: &str, body: &str) -> Vec<(&'static str, String)> {
        let mut form = vec![("To", to.to_string()), ("Body", body.to_string())];
        match &self.sender {
            Sender::MessagingService(sid) => form.push(("MessagingServiceSid", sid.clone())),
            Sender::From(from) => form.push(("From", from.as_str().to_string())),
        }
        form.push(("StatusCallback", self.status_callback.clone()));
        form
    }

    fn hold(&self, wait: Duration) {
        self.pushback_until.hold(wait);
    }

    async fn send_one(&self, m: &OutgoingMessage) -> SendOutcome {
        let (to, body) = match check_locally(m) {
            Ok(v) => v,
            Err(error) => return SendOutcome::Permanent { error },
        };
        tracing::debug!(message = %m.id, to = %mask_phone(to.as_str()), "twilio: sending one SMS");
        let response = match self
            .client
            .post(&self.endpoint)
            .basic_auth(&self.account_sid, Some(self.auth_token.expose_secret()))
            .form(&self.form(to.as_str(), &body))
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => return transport_failure(&e),
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let bytes = match response.bytes().await {
            Ok(b) => b.to_vec(),
            // A 2xx whose body is lost still created the message.
            Err(_) if (200..300).contains(&status) => Vec::new(),
            Err(e) => return transport_failure(&e),
        };
        if (200..300).contains(&status) {
            let sid = serde_json::from_slice::<MessageResource>(&bytes)
                .ok()
                .map(|r| r.sid);
            if sid.is_none() {
                tracing::warn!(message = %m.id, "twilio: accepted, but the answer carried no message sid");
            }
            return SendOutcome::Accepted {
                provider_message_id: sid,
            };
        }
        let error = serde_json::from_slice::<ApiError>(&bytes).ok();
        let outcome = classify(status, error.as_ref(), retry_after);
        if let SendOutcome::RateLimited { retry_after } = &outcome {
            self.hold(*retry_after);
        }
        log_failure(&outcome, m);
        outcome
    }
}

/// The recipient and the text, or why this message cannot be sent as it is.
fn check_locally(m: &OutgoingMessage) -> Result<(E164Phone, String), String> {
    let to = E164Phone::parse(&m.to, None).map_err(|_| {
        format!(
            "twilio: the recipient {} is not an E.164 phone number",
            mask_phone(&m.to)
        )
    })?;
    let body = m
        .content
        .get("text")
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| "twilio: the message content has no `text`".to_string())?;
    if body.trim().is_empty() {
        return Err("twilio: the message `text` is empty".into());
    }
    let chars = body.chars().count();
    if chars > MAX_BODY_CHARS {
        return Err(format!(
            "twilio: the message `text` has {chars} characters; Twilio takes at most {MAX_BODY_CHARS}"
        ));
    }
    Ok((to, body.to_string()))
}

#[async_trait]
impl Provider for TwilioProvider {
    fn name(&self) -> &str {
        "twilio"
    }

    fn label(&self) -> &str {
        "Twilio"
    }

    fn channel(&self) -> Channel {
        Channel::Sms
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
        self.pushback_until.take()
    }

    async fn health(&self) -> Vec<super::Health> {
        use super::{Health, HealthStatus};
        let sender = match &self.sender {
            Sender::MessagingService(sid) => Health {
                item: "sender",
                status: HealthStatus::Ok,
                reason: format!("the Messaging Service {sid}"),
            },
            Sender::From(from) => Health {
                item: "sender",
                status: HealthStatus::Warn,
                reason: format!(
                    "the number {}; a Messaging Service (TWILIO_MESSAGING_SERVICE_SID) linked to \
                     your 10DLC campaign is recommended",
                    crate::domain::mask_phone(from.as_str())
                ),
            },
        };
        vec![self.check_credentials().await, sender]
    }
}

/// How long a rate-limited answer waits: `Retry-After` if Twilio sent one
/// (it documents none), else a second — the carrier's window.
fn rate_wait(retry_after: Option<Duration>) -> Duration {
    retry_after
        .unwrap_or(Duration::from_secs(1))
        .max(Duration::from_secs(1))
}

/// Maps one refused answer to an outcome, by Twilio's error code (the table
/// in the module doc), falling back on the HTTP status for codes it does
/// not know and bodies that are not Twilio's.
pub fn classify(
    status: u16,
    error: Option<&ApiError>,
    retry_after: Option<Duration>,
) -> SendOutcome {
    let code = error.and_then(|e| e.code);
    let describe = || match (error, code) {
        (Some(e), Some(c)) => format!("twilio {status} error {c}: {}", mask_addresses(&e.message)),
        (Some(e), None) if !e.message.is_empty() => {
            format!("twilio {status}: {}", mask_addresses(&e.message))
        }
        _ => format!("twilio: HTTP {status}"),
    };
    match code {
        Some(20429 | 30022) => SendOutcome::RateLimited {
            retry_after: rate_wait(retry_after),
        },
        Some(21610) => SendOutcome::Refused {
            error: describe(),
            problem: RecipientProblem::OptedOut,
        },
        Some(21211 | 21614 | 21635) => SendOutcome::Refused {
            error: describe(),
            problem: RecipientProblem::Unreachable,
        },
        Some(21611 | 30001) => SendOutcome::Retryable {
            error: describe(),
            retry_after: Some(Duration::from_secs(60)),
        },
        Some(14107) => SendOutcome::Retryable {
            error: describe(),
            retry_after: Some(Duration::from_secs(30)),
        },
        _ if status == 429 => SendOutcome::RateLimited {
            retry_after: rate_wait(retry_after),
        },
        _ if status >= 500 || status == 408 => SendOutcome::Retryable {
            error: describe(),
            retry_after,
        },
        _ => SendOutcome::Permanent { error: describe() },
    }
}

fn transport_failure(e: &reqwest::Error) -> SendOutcome {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "transport error"
    };
    SendOutcome::Retryable {
        // reqwest's own text may include the URL (and the account SID).
        error: format!("twilio: {what}"),
        retry_after: None,
    }
}

fn log_failure(outcome: &SendOutcome, m: &OutgoingMessage) {
    let to = mask_phone(&m.to);
    match outcome {
        SendOutcome::Permanent { error } | SendOutcome::Refused { error, .. } => {
            tracing::warn!(message = %m.id, to = %to, error = %error, "twilio refused")
        }
        SendOutcome::Retryable { error, .. } => {
            tracing::info!(message = %m.id, error = %error, "twilio: will retry")
        }
        SendOutcome::RateLimited { retry_after } => tracing::info!(
            message = %m.id,
            wait_secs = retry_after.as_secs_f64(),
            "twilio: rate limited"
        ),
        SendOutcome::Accepted { .. } => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(code: u32, status: u16) -> ApiError {
        ApiError {
            code: Some(code),
            message: format!("The 'To' number +14155550100 failed with {code}"),
            status: Some(status),
        }
    }

    fn sms(to: &str, content: serde_json::Value) -> OutgoingMessage {
        OutgoingMessage {
            id: "msg_1".into(),
            channel: Channel::Sms,
            kind: crate::domain::MessageKind::Marketing,
            to: to.into(),
            content,
        }
    }

    fn settings() -> TwilioSettings {
        TwilioSettings {
            account_sid: Some("AC0123".into()),
            auth_token: Some("tok".to_string().into()),
            from: Some("+14155550000".into()),
            ..Default::default()
        }
    }

    fn public() -> url::Url {
        url::Url::parse("https://warm.example.org/").unwrap()
    }

    #[test]
    fn throughput_codes_slow_the_sender_down() {
        for (status, code) in [(429, 20429), (400, 30022)] {
            assert_eq!(
                classify(status, Some(&err(code, status)), None),
                SendOutcome::RateLimited {
                    retry_after: Duration::from_secs(1)
                },
                "{code}"
            );
        }
        assert_eq!(
            classify(429, None, Some(Duration::from_secs(4))),
            SendOutcome::RateLimited {
                retry_after: Duration::from_secs(4)
            },
            "a bare 429 waits as it says"
        );
    }

    #[test]
    fn an_opt_out_revokes_and_a_bad_number_is_flagged() {
        assert!(matches!(
            classify(400, Some(&err(21610, 400)), None),
            SendOutcome::Refused { problem: RecipientProblem::OptedOut, error } if error.contains("21610")
        ));
        for code in [21211, 21614, 21635] {
            assert!(
                matches!(
                    classify(400, Some(&err(code, 400)), None),
                    SendOutcome::Refused {
                        problem: RecipientProblem::Unreachable,
                        ..
                    }
                ),
                "{code}"
            );
        }
    }

    #[test]
    fn queues_and_server_errors_retry_and_the_rest_is_permanent() {
        assert!(matches!(
            classify(400, Some(&err(21611, 400)), None),
            SendOutcome::Retryable { retry_after: Some(d), .. } if d == Duration::from_secs(60)
        ));
        assert!(matches!(
            classify(400, Some(&err(14107, 400)), None),
            SendOutcome::Retryable { retry_after: Some(d), .. } if d == Duration::from_secs(30)
        ));
        assert!(matches!(
            classify(500, Some(&err(20500, 500)), None),
            SendOutcome::Retryable { .. }
        ));
        assert!(matches!(
            classify(503, None, None),
            SendOutcome::Retryable { .. }
        ));
        for (status, code) in [(400, 21608), (400, 21602), (401, 20003), (400, 99999)] {
            assert!(
                matches!(
                    classify(status, Some(&err(code, status)), None),
                    SendOutcome::Permanent { error } if error.contains(&code.to_string())
                ),
                "{code}"
            );
        }
        assert_eq!(
            classify(404, None, None),
            SendOutcome::Permanent {
                error: "twilio: HTTP 404".into()
            },
            "an unreadable body falls back on the status"
        );
    }

    #[test]
    fn error_texts_never_carry_a_number_in_clear() {
        let SendOutcome::Refused { error, .. } = classify(400, Some(&err(21211, 400)), None) else {
            panic!("21211 is a refusal");
        };
        assert!(!error.contains("+14155550100"), "{error}");
    }

    #[test]
    fn content_needs_text_and_the_recipient_e164() {
        assert!(check_locally(&sms("+14155550100", serde_json::json!({"text": "Hi"}))).is_ok());
        let e =
            check_locally(&sms("+14155550100", serde_json::json!({"subject": "Hi"}))).unwrap_err();
        assert!(e.contains("`text`"), "{e}");
        let e = check_locally(&sms("0415 555", serde_json::json!({"text": "Hi"}))).unwrap_err();
        assert!(e.contains("E.164") && !e.contains("0415 555"), "{e}");
        let long = "a".repeat(MAX_BODY_CHARS + 1);
        let e =
            check_locally(&sms("+14155550100", serde_json::json!({ "text": long }))).unwrap_err();
        assert!(e.contains("1600"), "{e}");
    }

    #[test]
    fn settings_need_an_account_a_sender_and_the_public_url() {
        assert!(matches!(
            TwilioConfig::from_settings(&TwilioSettings::default(), Some(&public())),
            Err(TwilioError::MissingAccountSid)
        ));
        let mut s = settings();
        s.from = None;
        assert!(matches!(
            TwilioConfig::from_settings(&s, Some(&public())),
            Err(TwilioError::MissingSender)
        ));
        s.from = Some("555-0100".into());
        assert!(matches!(
            TwilioConfig::from_settings(&s, Some(&public())),
            Err(TwilioError::InvalidFrom)
        ));
        assert!(matches!(
            TwilioConfig::from_settings(&settings(), None),
            Err(TwilioError::MissingPublicUrl)
        ));
        let mut both = settings();
        both.messaging_service_sid = Some("MG0123".into());
        let c = TwilioConfig::from_settings(&both, Some(&public())).unwrap();
        assert_eq!(c.sender, Sender::MessagingService("MG0123".into()));
        assert_eq!(c.requests_per_second, 1.0);
        assert_eq!(c.base_url, DEFAULT_URL);
        assert_eq!(
            c.status_callback,
            "https://warm.example.org/webhooks/twilio/status"
        );
        let p = TwilioProvider::new(c).unwrap();
        assert!(!format!("{p:?}").contains("tok"));
        assert!(!p.takes_idempotency_key());
        assert_eq!(p.limits().max_batch, 1);
    }

    #[test]
    fn the_form_names_follow_the_spec() {
        let p = TwilioProvider::from_settings(&settings(), Some(&public())).unwrap();
        assert_eq!(
            p.form("+14155550100", "Hello"),
            vec![
                ("To", "+14155550100".to_string()),
                ("Body", "Hello".to_string()),
                ("From", "+14155550000".to_string()),
                (
                    "StatusCallback",
                    "https://warm.example.org/webhooks/twilio/status".to_string()
                ),
            ]
        );
    }

    #[test]
    fn a_rate_limit_pushes_back_once() {
        let p = TwilioProvider::from_settings(&settings(), Some(&public())).unwrap();
        assert_eq!(p.take_pushback(), None);
        p.hold(Duration::from_secs(2));
        let wait = p.take_pushback().expect("held");
        assert!(wait > Duration::from_millis(1500) && wait <= Duration::from_secs(2));
        assert_eq!(p.take_pushback(), None, "taking clears it");
    }
}
