//! Resend (<https://resend.com>), the email API provider: `POST /emails` for
//! one message, `POST /emails/batch` for up to 100 (campaigns).
//!
//! Invariants:
//! - Every request carries an `Idempotency-Key`: a lone message's key is its
//!   ledger id; a batch's key is derived from the ids of the messages in it
//!   ([`batch_key`]), and the batch is sent in id order, so the same set of
//!   messages always makes the same body under the same key and Resend
//!   replays instead of sending again.
//! - Every email carries the tag `warmline_message_id = <ledger id>`, so a
//!   webhook can find its message even without the `email_id` we store.
//! - Errors are classified by Resend's error `name` ([`classify`]), never by
//!   guessing from the text; anything unknown falls back on the HTTP status.
//! - A 200 means Resend took the email: it is `Accepted` even when the body
//!   cannot be read (the call took effect; retrying could send twice).
//! - The API key is only ever in the `Authorization` header (marked
//!   sensitive); logs show recipients masked and never the key.
//!
//! What the batch key does not cover: a crash (or a retryable failure)
//! between Resend accepting a batch and the ledger recording it leaves those
//! messages to be claimed again, and the next claim may form a *different*
//! set (other messages became due, some were skipped, or a lone survivor is
//! sent through `POST /emails` under its own id). A different set is a
//! different key, so Resend cannot recognise the repeat: those messages can
//! go out twice. The window is one request long and needs the acceptance to
//! be lost; only a ledger that records each batch's membership before the
//! call (and replays exactly that batch) would close it.

#[cfg(feature = "test-support")]
pub mod fake;
pub mod settings;
pub mod svix;
pub mod webhook;

use std::{
    collections::BTreeMap,
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use async_trait::async_trait;
use chrono::{DateTime, Datelike, TimeZone, Utc};
use reqwest::header::HeaderMap;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::Digest;

use self::settings::ResendSettings;
use super::{Limits, OutgoingMessage, Provider, SendOutcome};
use crate::{
    domain::{mask_addresses, mask_email},
    email::EmailContent,
};

/// Resend's public API.
pub const DEFAULT_URL: &str = "https://api.resend.com";
/// Resend's documented rate has been 2, 5 and 10 requests/s in different
/// snapshots of its docs; 2 is the safe floor. Set
/// `providers.resend.requests_per_second` to your team's real limit.
pub const DEFAULT_REQUESTS_PER_SECOND: f64 = 2.0;
/// `POST /emails/batch` takes at most 100 emails.
pub const MAX_BATCH: usize = 100;
/// One attempt's budget; a batch of 100 can take Resend a few seconds.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The tag carrying our ledger id.
pub const MESSAGE_ID_TAG: &str = "warmline_message_id";
/// Resend's limit on `Idempotency-Key`.
const MAX_KEY_LEN: usize = 256;

/// Building a Resend client failed.
#[derive(Debug, thiserror::Error)]
pub enum ResendError {
    #[error("RESEND_API_KEY (providers.resend.api_key) is not set")]
    MissingApiKey,
    #[error("RESEND_API_URL (providers.resend.url) is not an http(s) URL: {0}")]
    InvalidUrl(String),
    #[error("cannot build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    #[error(transparent)]
    Config(#[from] crate::settings::error::ConfigError),
}

/// How the client talks to Resend.
#[derive(Debug, Clone)]
pub struct ResendConfig {
    pub api_key: SecretString,
    /// API base, `https://api.resend.com` or a fake's `http://127.0.0.1:…`.
    pub base_url: String,
    pub requests_per_second: f64,
    /// Emails per batch request, 1–100.
    pub max_batch: usize,
    pub timeout: Duration,
    /// Whether batch items carry our tag. One snapshot of Resend's docs says
    /// batch does not support `tags` yet; the client starts with tags on and
    /// turns them off by itself if Resend refuses them (see
    /// [`ResendProvider::send`]).
    pub batch_tags: bool,
}

impl ResendConfig {
    pub fn new(api_key: impl Into<String>, base_url: impl Into<String>) -> Self {
        Self {
            api_key: SecretString::from(api_key.into()),
            base_url: base_url.into(),
            requests_per_second: DEFAULT_REQUESTS_PER_SECOND,
            max_batch: MAX_BATCH,
            timeout: REQUEST_TIMEOUT,
            batch_tags: true,
        }
    }

    /// `[providers.resend]`: `api_key` (`RESEND_API_KEY`, required), `url`
    /// (`RESEND_API_URL`), `requests_per_second`, `max_batch`.
    pub fn from_settings(s: &ResendSettings) -> Result<Self, ResendError> {
        let api_key = s
            .api_key
            .as_ref()
            .filter(|k| !k.expose_secret().trim().is_empty())
            .ok_or(ResendError::MissingApiKey)?;
        let base_url = s
            .url
            .as_ref()
            .map(|u| u.trim().to_string())
            .unwrap_or_else(|| DEFAULT_URL.to_string());
        Ok(Self {
            api_key: api_key.clone(),
            base_url,
            requests_per_second: super::configured_rate("resend", s.requests_per_second)?
                .unwrap_or(DEFAULT_REQUESTS_PER_SECOND),
            max_batch: s.max_batch.unwrap_or(MAX_BATCH).clamp(1, MAX_BATCH),
            timeout: REQUEST_TIMEOUT,
            batch_tags: true,
        })
    }
}

/// The Resend provider.
pub struct ResendProvider {
    client: reqwest::Client,
    base: String,
    api_key: SecretString,
    requests_per_second: f64,
    max_batch: usize,
    batch_tags: AtomicBool,
    /// Until when Resend said its window is spent (`ratelimit-remaining: 0`).
    pushback_until: crate::providers::pushback::Pushback,
}

impl std::fmt::Debug for ResendProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResendProvider")
            .field("base", &self.base)
            .field("requests_per_second", &self.requests_per_second)
            .field("max_batch", &self.max_batch)
            .finish_non_exhaustive()
    }
}

impl ResendProvider {
    pub fn new(config: ResendConfig) -> Result<Self, ResendError> {
        let parsed = url::Url::parse(&config.base_url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            // Never quote a URL that might carry credentials.
            .ok_or_else(|| ResendError::InvalidUrl("expected http(s)://host[/path]".into()))?;
        // reqwest is built without a default TLS provider.
        crate::install_crypto_provider();
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .user_agent(concat!("warmline/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            client,
            base: parsed.as_str().trim_end_matches('/').to_string(),
            api_key: config.api_key,
            requests_per_second: config.requests_per_second,
            max_batch: config.max_batch.clamp(1, MAX_BATCH),
            batch_tags: AtomicBool::new(config.batch_tags),
            pushback_until: Default::default(),
        })
    }

    pub fn from_settings(s: &ResendSettings) -> Result<Self, ResendError> {
        Self::new(ResendConfig::from_settings(s)?)
    }

    /// Whether batch items currently carry tags.
    pub fn batch_tags(&self) -> bool {
        self.batch_tags.load(Ordering::Relaxed)
    }

    /// One request; returns the HTTP status, the rate signals and the body,
    /// or the transport failure as a retryable outcome.
    async fn post(
        &self,
        path: &str,
        key: &str,
        body: Vec<u8>,
        batch: bool,
    ) -> Result<(u16, RateSignals, Vec<u8>), SendOutcome> {
        let mut request = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(self.api_key.expose_secret())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("Idempotency-Key", key)
            .body(body);
        if batch {
            // Strict (Resend's default, said out loud): one invalid email
            // rejects the batch, so a batch's outcome is all-or-nothing.
            request = request.header("x-batch-validation", "strict");
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => return Err(transport_failure(&e)),
        };
        let status = response.status().as_u16();
        let signals = RateSignals::from_headers(response.headers());
        self.note_signals(&signals);
        match response.bytes().await {
            Ok(body) => Ok((status, signals, body.to_vec())),
            // A 200 whose body is lost still sent the email.
            Err(_) if (200..300).contains(&status) => Ok((status, signals, Vec::new())),
            Err(e) => Err(transport_failure(&e)),
        }
    }

    fn note_signals(&self, signals: &RateSignals) {
        if signals.remaining == Some(0) {
            self.pushback_until
                .hold(signals.reset.unwrap_or(Duration::from_secs(1)));
        }
    }

    async fn send_one(&self, message: &OutgoingMessage, email: &EmailContent) -> SendOutcome {
        let body = serde_json::to_vec(&EmailRequest::new(message, email, true))
            .expect("plain data serialises");
        tracing::debug!(message = %message.id, to = %mask_email(&message.to), "resend: sending one email");
        match self.post("/emails", &message.id, body, false).await {
            Err(outcome) => outcome,
            Ok((status, _, body)) if (200..300).contains(&status) => {
                let id = serde_json::from_slice::<SendEmailResponse>(&body)
                    .ok()
                    .map(|r| r.id);
                if id.is_none() {
                    tracing::warn!(message = %message.id, "resend: accepted, but the answer carried no email id");
                }
                SendOutcome::Accepted {
                    provider_message_id: id,
                }
            }
            Ok((status, signals, body)) => {
                let outcome = classify(
                    status,
                    parse_error(&body).as_ref(),
                    &signals,
                    crate::clock::now(),
                );
                log_failure(&outcome, std::slice::from_ref(message));
                outcome
            }
        }
    }

    /// Sends `items` (at least two, in id order) as one batch request.
    async fn send_batch(&self, items: &[(&OutgoingMessage, EmailContent)]) -> Vec<SendOutcome> {
        let mut with_tags = self.batch_tags();
        loop {
            let requests: Vec<EmailRequest<'_>> = items
                .iter()
                .map(|(m, e)| EmailRequest::new(m, e, with_tags))
                .collect();
            let body = serde_json::to_vec(&requests).expect("plain data serialises");
            let ids: Vec<&str> = items.iter().map(|(m, _)| m.id.as_str()).collect();
            let key = batch_key(&ids, with_tags);
            tracing::debug!(emails = items.len(), key = %key, "resend: sending a batch");
            let (status, signals, body) = match self.post("/emails/batch", &key, body, true).await {
                Ok(answer) => answer,
                Err(outcome) => return vec![outcome; items.len()],
            };
            if (200..300).contains(&status) {
                return batch_outcomes(items, &body);
            }
            let error = parse_error(&body);
            if with_tags && refuses_batch_tags(status, error.as_ref()) {
                // This Resend does not take tags in batch: nothing was sent
                // (strict validation), so send the same batch without them,
                // under its own key. Webhooks still find these messages by
                // the email id stored in the ledger.
                tracing::warn!("resend refused tags in batch emails; sending batches without tags");
                self.batch_tags.store(false, Ordering::Relaxed);
                with_tags = false;
                continue;
            }
            let outcome = classify(status, error.as_ref(), &signals, crate::clock::now());
            let messages: Vec<OutgoingMessage> = items.iter().map(|(m, _)| (*m).clone()).collect();
            log_failure(&outcome, &messages);
            // Strict mode: one answer for the whole batch.
            return vec![outcome; items.len()];
        }
    }
}

#[async_trait]
impl Provider for ResendProvider {
    fn name(&self) -> &str {
        "resend"
    }

    fn label(&self) -> &str {
        "Resend"
    }

    fn channel(&self) -> crate::domain::Channel {
        crate::domain::Channel::Email
    }

    fn limits(&self) -> Limits {
        Limits {
            requests_per_second: Some(self.requests_per_second),
            max_batch: self.max_batch,
            per_recipient_interval: None,
        }
    }

    fn takes_idempotency_key(&self) -> bool {
        true
    }

    /// A batch's key is derived from its members; after a crash the next
    /// claim may group them differently, and Resend would not recognise the
    /// new batch. So a batch request is a crash window like a key-less call.
    fn batch_key_per_message(&self) -> bool {
        false
    }

    async fn send(&self, batch: &[OutgoingMessage]) -> Vec<SendOutcome> {
        let mut outcomes: Vec<Option<SendOutcome>> = vec![None; batch.len()];
        // A payload that is not an email fails alone; the rest still go.
        let mut valid: Vec<(usize, &OutgoingMessage, EmailContent)> = Vec::new();
        for (i, m) in batch.iter().enumerate() {
            // Strict batch validation refuses a whole batch for one bad
            // address: what we can check here fails alone instead.
            match EmailContent::from_payload(&m.content).and_then(|e| check_locally(m, e)) {
                Ok(e) => valid.push((i, m, e)),
                Err(error) => outcomes[i] = Some(SendOutcome::Permanent { error }),
            }
        }
        // Id order: the same set of messages is always the same request.
        valid.sort_by(|a, b| a.1.id.cmp(&b.1.id));
        for chunk in valid.chunks(self.max_batch) {
            if let [(i, m, e)] = chunk {
                outcomes[*i] = Some(self.send_one(m, e).await);
                continue;
            }
            let items: Vec<(&OutgoingMessage, EmailContent)> =
                chunk.iter().map(|(_, m, e)| (*m, e.clone())).collect();
            let results = self.send_batch(&items).await;
            for ((i, _, _), outcome) in chunk.iter().zip(results) {
                outcomes[*i] = Some(outcome);
            }
        }
        outcomes
            .into_iter()
            .map(|o| {
                o.unwrap_or(SendOutcome::Retryable {
                    error: "resend: not attempted".into(),
                    retry_after: None,
                })
            })
            .collect()
    }

    fn take_pushback(&self) -> Option<Duration> {
        self.pushback_until.take()
    }
}

/// Resend's address rules for what we send: the recipient an address, the
/// sender `a@b.c` or `Name <a@b.c>`.
fn check_locally(m: &OutgoingMessage, e: EmailContent) -> Result<EmailContent, String> {
    if crate::domain::EmailAddress::parse(&m.to).is_err() {
        return Err(format!("not a valid recipient: {}", mask_email(&m.to)));
    }
    if !is_mailbox(&e.from) {
        return Err("the sender (email.from) is not `a@b.c` or `Name <a@b.c>`".into());
    }
    if e.reply_to.as_deref().is_some_and(|r| !is_mailbox(r)) {
        return Err("the reply-to (email.reply_to) is not `a@b.c` or `Name <a@b.c>`".into());
    }
    Ok(e)
}

/// `a@b.c` or `Name <a@b.c>`, as Resend takes for `from`, `to`, `reply_to`.
pub fn is_mailbox(raw: &str) -> bool {
    let raw = raw.trim();
    let address = match (raw.rfind('<'), raw.ends_with('>')) {
        (Some(open), true) => &raw[open + 1..raw.len() - 1],
        (None, false) => raw,
        _ => return false,
    };
    crate::domain::EmailAddress::parse(address).is_ok()
}

/// The key of a batch: `batch-` and the SHA-256 of its message ids (sorted,
/// one per line), `batch-nt-` for the same batch sent without tags (another
/// body, so it must be another key). 73 characters at most, well within
/// Resend's 256.
pub fn batch_key(ids: &[&str], with_tags: bool) -> String {
    let mut sorted: Vec<&str> = ids.to_vec();
    sorted.sort_unstable();
    let digest = sha2::Sha256::digest(sorted.join("\n").as_bytes());
    let key = format!(
        "batch-{}{}",
        if with_tags { "" } else { "nt-" },
        hex::encode(digest)
    );
    debug_assert!(key.len() <= MAX_KEY_LEN);
    key
}

/// Whether `value` may be a Resend tag name or value: ASCII letters,
/// digits, `_` and `-`, 1 to 256 of them.
pub fn is_tag_safe(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 256
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// `SendEmailRequest` as the official spec names its fields.
#[derive(Debug, Serialize)]
struct EmailRequest<'a> {
    from: &'a str,
    to: [&'a str; 1],
    subject: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reply_to: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    html: Option<&'a str>,
    /// Always sent, even empty: Resend would otherwise generate a text part
    /// from the HTML, and the ledger's content is what goes out.
    text: &'a str,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    headers: &'a BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tags: Vec<Tag<'a>>,
}

#[derive(Debug, Serialize)]
struct Tag<'a> {
    name: &'static str,
    value: &'a str,
}

impl<'a> EmailRequest<'a> {
    fn new(message: &'a OutgoingMessage, email: &'a EmailContent, with_tags: bool) -> Self {
        // Our ids are `msg_<hex>`; an id outside Resend's tag alphabet would
        // fail the whole request, so it goes untagged instead.
        let tags = if with_tags && is_tag_safe(&message.id) {
            vec![Tag {
                name: MESSAGE_ID_TAG,
                value: &message.id,
            }]
        } else {
            Vec::new()
        };
        Self {
            from: &email.from,
            to: [&message.to],
            subject: &email.subject,
            reply_to: email.reply_to.as_deref(),
            html: email.html.as_deref(),
            text: &email.text,
            headers: &email.headers,
            tags,
        }
    }
}

#[derive(Debug, Deserialize)]
struct SendEmailResponse {
    id: String,
}

#[derive(Debug, Deserialize)]
struct BatchResponse {
    #[serde(default)]
    data: Vec<BatchItem>,
    /// Only in permissive mode; read anyway, so nothing is marked sent that
    /// Resend refused.
    #[serde(default)]
    errors: Vec<BatchItemError>,
}

#[derive(Debug, Deserialize)]
struct BatchItem {
    id: Option<String>,
}

#[derive(Debug, Deserialize)]
struct BatchItemError {
    index: usize,
    message: String,
}

fn batch_outcomes(items: &[(&OutgoingMessage, EmailContent)], body: &[u8]) -> Vec<SendOutcome> {
    let Ok(parsed) = serde_json::from_slice::<BatchResponse>(body) else {
        tracing::warn!(
            emails = items.len(),
            "resend: batch accepted, but the answer could not be read"
        );
        return vec![
            SendOutcome::Accepted {
                provider_message_id: None
            };
            items.len()
        ];
    };
    let mut refused: BTreeMap<usize, String> = BTreeMap::new();
    for e in parsed.errors {
        refused.insert(e.index, mask_addresses(&e.message));
    }
    // Strict mode answers one id per email, in order; permissive mode
    // answers ids for the accepted ones, in order.
    let mut ids = parsed.data.into_iter().map(|d| d.id);
    let mut missing = 0;
    let outcomes = (0..items.len())
        .map(|i| match refused.remove(&i) {
            Some(error) => SendOutcome::Permanent {
                error: format!("resend refused this email in its batch: {error}"),
            },
            None => {
                let id = ids.next().flatten();
                missing += usize::from(id.is_none());
                SendOutcome::Accepted {
                    provider_message_id: id,
                }
            }
        })
        .collect();
    if missing > 0 {
        tracing::warn!(
            missing,
            "resend: batch accepted with fewer email ids than emails"
        );
    }
    outcomes
}

/// Resend's error body: `{"statusCode", "message", "name"}`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct ApiError {
    #[serde(rename = "statusCode", default)]
    pub status_code: Option<u16>,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub name: String,
}

fn parse_error(body: &[u8]) -> Option<ApiError> {
    serde_json::from_slice(body).ok()
}

/// What Resend's headers say about its rate limit.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RateSignals {
    /// `retry-after`, seconds.
    pub retry_after: Option<Duration>,
    /// `ratelimit-remaining`.
    pub remaining: Option<u64>,
    /// `ratelimit-reset`, seconds until the window resets.
    pub reset: Option<Duration>,
}

impl RateSignals {
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let text = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
        };
        let seconds = |name: &str| {
            text(name)
                .and_then(|v| v.parse::<f64>().ok())
                .filter(|s| s.is_finite() && *s >= 0.0)
                .map(Duration::from_secs_f64)
        };
        Self {
            retry_after: seconds("retry-after"),
            remaining: text("ratelimit-remaining").and_then(|v| v.parse().ok()),
            reset: seconds("ratelimit-reset"),
        }
    }
}

/// Maps one failed answer to an outcome, by Resend's error name (its
/// documented table), falling back on the HTTP status for names it does not
/// know and bodies that are not Resend's.
pub fn classify(
    status: u16,
    error: Option<&ApiError>,
    signals: &RateSignals,
    now: DateTime<Utc>,
) -> SendOutcome {
    let name = error.map_or("", |e| e.name.as_str());
    let describe = || match error {
        Some(e) => format!(
            "resend {status} {}: {}",
            if e.name.is_empty() { "error" } else { &e.name },
            mask_addresses(&e.message)
        ),
        None => format!("resend: HTTP {status}"),
    };
    match name {
        "rate_limit_exceeded" => SendOutcome::RateLimited {
            retry_after: rate_wait(signals),
        },
        "daily_quota_exceeded" => SendOutcome::RateLimited {
            retry_after: until(now, next_utc_midnight(now)),
        },
        // Resend's monthly quota resets with the billing cycle, which we do
        // not know: wait for the 1st of next month (UTC). Upgrading the plan
        // and re-queueing the messages is the way to go sooner.
        "monthly_quota_exceeded" => SendOutcome::RateLimited {
            retry_after: until(now, first_of_next_month(now)),
        },
        // Another request with this key is in flight, or the resource is
        // being updated: the same key will be answered properly soon.
        "concurrent_idempotent_requests" | "resource_locked" => SendOutcome::Retryable {
            error: describe(),
            retry_after: Some(Duration::from_secs(1)),
        },
        _ if status == 429 => SendOutcome::RateLimited {
            retry_after: rate_wait(signals),
        },
        _ if status >= 500 || status == 408 => SendOutcome::Retryable {
            error: describe(),
            retry_after: signals.retry_after,
        },
        _ => SendOutcome::Permanent { error: describe() },
    }
}

/// How long a 429 says to wait: `retry-after`, else `ratelimit-reset`, and
/// never less than a second (the headers count whole seconds; zero would
/// spin).
fn rate_wait(signals: &RateSignals) -> Duration {
    signals
        .retry_after
        .or(signals.reset)
        .unwrap_or(Duration::from_secs(1))
        .max(Duration::from_secs(1))
}

fn until(now: DateTime<Utc>, then: DateTime<Utc>) -> Duration {
    (then - now).to_std().unwrap_or(Duration::from_secs(1))
}

pub fn next_utc_midnight(now: DateTime<Utc>) -> DateTime<Utc> {
    let tomorrow = now.date_naive().succ_opt().expect("not the end of time");
    Utc.from_utc_datetime(&tomorrow.and_hms_opt(0, 0, 0).expect("midnight exists"))
}

pub fn first_of_next_month(now: DateTime<Utc>) -> DateTime<Utc> {
    let (year, month) = if now.month() == 12 {
        (now.year() + 1, 1)
    } else {
        (now.year(), now.month() + 1)
    };
    Utc.with_ymd_and_hms(year, month, 1, 0, 0, 0)
        .single()
        .expect("the 1st at midnight exists in UTC")
}

/// Whether a refused batch was refused for its tags (the docs snapshot that
/// says batch takes no `tags`).
fn refuses_batch_tags(status: u16, error: Option<&ApiError>) -> bool {
    (400..500).contains(&status)
        && error.is_some_and(|e| {
            matches!(
                e.name.as_str(),
                "validation_error" | "invalid_parameter" | "missing_required_field"
            ) && e.message.contains("tags")
        })
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
        // reqwest's own text may include the URL; ours is enough.
        error: format!("resend: {what}"),
        retry_after: None,
    }
}

fn log_failure(outcome: &SendOutcome, messages: &[OutgoingMessage]) {
    let first = messages
        .first()
        .map(|m| mask_email(&m.to))
        .unwrap_or_default();
    match outcome {
        SendOutcome::Permanent { error } | SendOutcome::Refused { error, .. } => {
            tracing::warn!(emails = messages.len(), first_to = %first, error = %error, "resend refused")
        }
        SendOutcome::Retryable { error, .. } => {
            tracing::info!(emails = messages.len(), error = %error, "resend: will retry")
        }
        SendOutcome::RateLimited { retry_after } => {
            tracing::info!(
                emails = messages.len(),
                wait_secs = retry_after.as_secs_f64(),
                "resend: rate limited"
            )
        }
        SendOutcome::Accepted { .. } => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(status: u16, name: &str) -> ApiError {
        ApiError {
            status_code: Some(status),
            message: format!("{name} happened"),
            name: name.into(),
        }
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    const NOW: &str = "2026-03-14T15:09:26Z";

    #[test]
    fn rate_limit_waits_as_the_headers_say() {
        let signals = RateSignals {
            retry_after: Some(Duration::from_secs(3)),
            remaining: Some(0),
            reset: Some(Duration::from_secs(1)),
        };
        assert_eq!(
            classify(
                429,
                Some(&err(429, "rate_limit_exceeded")),
                &signals,
                at(NOW)
            ),
            SendOutcome::RateLimited {
                retry_after: Duration::from_secs(3)
            }
        );
        let reset_only = RateSignals {
            reset: Some(Duration::from_secs(2)),
            ..Default::default()
        };
        assert_eq!(
            classify(
                429,
                Some(&err(429, "rate_limit_exceeded")),
                &reset_only,
                at(NOW)
            ),
            SendOutcome::RateLimited {
                retry_after: Duration::from_secs(2)
            }
        );
        assert_eq!(
            classify(429, None, &RateSignals::default(), at(NOW)),
            SendOutcome::RateLimited {
                retry_after: Duration::from_secs(1)
            },
            "a bare 429 still waits, at least a second"
        );
    }

    #[test]
    fn quotas_wait_for_their_reset() {
        let none = RateSignals::default();
        assert_eq!(
            classify(429, Some(&err(429, "daily_quota_exceeded")), &none, at(NOW)),
            SendOutcome::RateLimited {
                retry_after: Duration::from_secs(8 * 3600 + 50 * 60 + 34)
            },
            "until 00:00 UTC tomorrow"
        );
        let SendOutcome::RateLimited { retry_after } = classify(
            429,
            Some(&err(429, "monthly_quota_exceeded")),
            &none,
            at(NOW),
        ) else {
            panic!("monthly quota is a wait");
        };
        assert_eq!(
            at(NOW) + chrono::Duration::from_std(retry_after).unwrap(),
            at("2026-04-01T00:00:00Z")
        );
        assert_eq!(
            first_of_next_month(at("2026-12-31T23:59:59Z")),
            at("2027-01-01T00:00:00Z")
        );
        assert_eq!(
            next_utc_midnight(at("2026-02-28T23:59:59Z")),
            at("2026-03-01T00:00:00Z")
        );
    }

    #[test]
    fn conflicts_in_flight_retry_soon_but_a_changed_payload_is_permanent() {
        let none = RateSignals::default();
        for name in ["concurrent_idempotent_requests", "resource_locked"] {
            assert_eq!(
                classify(409, Some(&err(409, name)), &none, at(NOW)),
                SendOutcome::Retryable {
                    error: format!("resend 409 {name}: {name} happened"),
                    retry_after: Some(Duration::from_secs(1))
                }
            );
        }
        assert!(matches!(
            classify(409, Some(&err(409, "invalid_idempotent_request")), &none, at(NOW)),
            SendOutcome::Permanent { error } if error.contains("invalid_idempotent_request")
        ));
    }

    #[test]
    fn server_errors_retry_and_client_errors_do_not() {
        let signals = RateSignals {
            retry_after: Some(Duration::from_secs(7)),
            ..Default::default()
        };
        assert_eq!(
            classify(500, Some(&err(500, "application_error")), &signals, at(NOW)),
            SendOutcome::Retryable {
                error: "resend 500 application_error: application_error happened".into(),
                retry_after: Some(Duration::from_secs(7))
            }
        );
        assert!(matches!(
            classify(503, None, &RateSignals::default(), at(NOW)),
            SendOutcome::Retryable { .. }
        ));
        for (status, name) in [
            (400, "validation_error"),
            (400, "invalid_idempotency_key"),
            (401, "missing_api_key"),
            (403, "invalid_api_key"),
            (403, "validation_error"),
            (422, "missing_required_field"),
            (422, "invalid_attachment"),
        ] {
            let outcome = classify(status, Some(&err(status, name)), &signals, at(NOW));
            assert!(
                matches!(&outcome, SendOutcome::Permanent { error } if error.contains(name)),
                "{status} {name}: {outcome:?}"
            );
        }
    }

    #[test]
    fn error_messages_never_carry_a_recipient_in_clear() {
        let e = ApiError {
            status_code: Some(422),
            message: "Invalid `to` field: <ann.lee@example.com>, bob@x.io.".into(),
            name: "validation_error".into(),
        };
        let SendOutcome::Permanent { error } =
            classify(422, Some(&e), &RateSignals::default(), at(NOW))
        else {
            panic!("validation is permanent");
        };
        assert!(!error.contains("ann.lee@"), "{error}");
        assert!(!error.contains("bob@"), "{error}");
        assert!(error.contains("a***@example.com"), "{error}");
    }

    #[test]
    fn batch_keys_depend_on_the_set_of_ids_only() {
        let a = batch_key(&["msg_2", "msg_1", "msg_3"], true);
        assert_eq!(a, batch_key(&["msg_1", "msg_2", "msg_3"], true));
        assert_ne!(a, batch_key(&["msg_1", "msg_2"], true));
        assert_ne!(a, batch_key(&["msg_1", "msg_2", "msg_3"], false));
        assert!(a.starts_with("batch-") && a.len() == 6 + 64, "{a}");
        let ids: Vec<String> = (0..100).map(|i| format!("msg_{i:032x}")).collect();
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        assert!(batch_key(&refs, false).len() <= MAX_KEY_LEN);
    }

    #[test]
    fn our_message_ids_are_valid_tags() {
        let id = crate::dispatcher::ledger::message_id("campaign:1", "contact:7", "email");
        assert!(is_tag_safe(&id), "{id}");
        assert!(!is_tag_safe("msg.1"));
        assert!(!is_tag_safe(""));
        assert!(!is_tag_safe(&"a".repeat(257)));
    }

    #[test]
    fn remaining_zero_pushes_back_until_the_reset_once() {
        let p = ResendProvider::new(ResendConfig::new("re_x", "http://127.0.0.1:9")).unwrap();
        assert_eq!(p.take_pushback(), None);
        p.note_signals(&RateSignals {
            remaining: Some(1),
            reset: Some(Duration::from_secs(1)),
            ..Default::default()
        });
        assert_eq!(p.take_pushback(), None, "budget left: no pushback");
        p.note_signals(&RateSignals {
            remaining: Some(0),
            reset: Some(Duration::from_secs(2)),
            ..Default::default()
        });
        let wait = p.take_pushback().expect("spent window pushes back");
        assert!(wait > Duration::from_millis(1500) && wait <= Duration::from_secs(2));
        assert_eq!(p.take_pushback(), None, "taking clears it");
    }

    #[test]
    fn settings_need_a_key_and_take_defaults() {
        assert!(matches!(
            ResendConfig::from_settings(&ResendSettings::default()),
            Err(ResendError::MissingApiKey)
        ));
        let c = ResendConfig::from_settings(&ResendSettings {
            api_key: Some("re_123".to_string().into()),
            max_batch: Some(500),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.base_url, DEFAULT_URL);
        assert_eq!(c.requests_per_second, 2.0);
        assert_eq!(c.max_batch, 100, "capped at Resend's maximum");
        let p = ResendProvider::new(c).unwrap();
        assert!(!format!("{p:?}").contains("re_123"));
        assert!(matches!(
            ResendProvider::new(ResendConfig::new("re_1", "ftp://x")),
            Err(ResendError::InvalidUrl(_))
        ));
    }

    #[test]
    fn the_request_body_follows_the_spec_names() {
        let m = OutgoingMessage {
            id: "msg_ab12".into(),
            channel: crate::domain::Channel::Email,
            kind: crate::domain::MessageKind::Marketing,
            to: "ann@example.com".into(),
            content: serde_json::Value::Null,
        };
        let e = EmailContent {
            from: "Acme <news@acme.test>".into(),
            reply_to: None,
            subject: "Hi".into(),
            text: "Hello".into(),
            html: Some("<p>Hello</p>".into()),
            headers: BTreeMap::from([(
                "List-Unsubscribe".to_string(),
                "<https://x.test/u/t>".to_string(),
            )]),
        };
        let v = serde_json::to_value(EmailRequest::new(&m, &e, true)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "from": "Acme <news@acme.test>",
                "to": ["ann@example.com"],
                "subject": "Hi",
                "html": "<p>Hello</p>",
                "text": "Hello",
                "headers": {"List-Unsubscribe": "<https://x.test/u/t>"},
                "tags": [{"name": "warmline_message_id", "value": "msg_ab12"}]
            })
        );
    }
}
