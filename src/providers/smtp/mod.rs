//! The SMTP provider: email through the team's own mail server, with
//! lettre's pooled async transport (rustls over ring, like the rest of the
//! process).
//!
//! `SMTP_URL` (`[providers.smtp] url`) follows lettre's connection URLs:
//!
//! | URL | connection |
//! |---|---|
//! | `smtp://host[:port]` | plain, no TLS (port 25) |
//! | `smtp://host[:port]?tls=opportunistic` | STARTTLS when the server offers it (port 587) |
//! | `smtp://host[:port]?tls=required` | STARTTLS, or no connection (port 587) |
//! | `smtps://host[:port]` | implicit TLS (port 465) |
//!
//! `user:password@` before the host enables AUTH (percent-encode special
//! characters); a path names the EHLO host (`smtp://host/mta.example.org`).
//!
//! Invariants:
//! - The password never travels in clear to another machine: a URL with
//!   credentials, a non-loopback host and no TLS is refused at start-up
//!   (`?tls=opportunistic` is the explicit opt-in to a server that may not
//!   offer STARTTLS). The URL is a secret: it is never logged, and no error
//!   here echoes it.
//! - Every message carries `Message-ID: <{ledger id}@{sender domain}>` and
//!   `X-Warmline-Message-Id: {ledger id}`. The id is deterministic, so if a
//!   retry after an ambiguous failure (connection lost after the final `.`)
//!   delivers a second copy, receivers and our own bounce handling can tell
//!   it is the same message. SMTP itself has no idempotency: the dispatcher's
//!   `called_at` window covers crashes ([`Provider::takes_idempotency_key`]
//!   is false).
//! - The payload is sent as stored ([`EmailContent`]); extra headers such as
//!   `List-Unsubscribe` are written as given. Headers this module sets
//!   itself (From, Message-ID, …) cannot be overridden by the payload.
//! - Classification: 5xx replies are permanent (the reply text is kept); 4xx
//!   replies are retried, throttling replies as a rate limit; connection,
//!   timeout and TLS failures are retried.
//! - A send never hangs: lettre's own timeout covers only connecting, so the
//!   whole transaction runs under [`SEND_TIMEOUT`]. A send cut off mid-way
//!   leaves its connection mid-command; lettre's pool would take it back as
//!   healthy and the next send would read the late reply as its own. So a
//!   timeout retires the whole pool (its connections are closed) and later
//!   sends start a fresh one.
//! - Recipients are masked in logs and in the errors this module returns.

use std::{net::IpAddr, sync::Mutex, time::Duration};

use async_trait::async_trait;
use lettre::{
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    message::{
        Mailbox, MultiPart, SinglePart,
        header::{HeaderName, HeaderValue},
    },
    transport::smtp::{AsyncSmtpTransportBuilder, PoolConfig},
};
use secrecy::ExposeSecret;

pub mod settings;

use self::settings::SmtpSettings;
use super::{Limits, OutgoingMessage, Provider, SendOutcome};
use crate::{domain::mask_email, email::EmailContent};

/// Requests per second when `[providers.smtp] requests_per_second` is unset:
/// a pace most self-hosted relays and submission services accept.
pub const DEFAULT_REQUESTS_PER_SECOND: f64 = 10.0;

/// How long connecting may take (lettre applies its timeout to the
/// connection only).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// How long one whole send (connect, EHLO, TLS, AUTH, MAIL, RCPT, DATA) may
/// take. RFC 5321 lets servers take minutes per command (content scanning
/// after DATA); a tarpit takes forever. Two minutes keeps slow but honest
/// servers working while a hung one only holds a dispatcher slot that long.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(120);

/// How long a throttling reply holds the provider's shared limiter: enough
/// for a relay's per-second or per-minute window to move on, short enough
/// not to stall a campaign.
pub const THROTTLE_WAIT: Duration = Duration::from_secs(30);

/// Header names the payload may not set: this module writes them, and the
/// Message-ID in particular must stay the deterministic one.
const RESERVED_HEADERS: &[&str] = &[
    "bcc",
    "cc",
    "content-transfer-encoding",
    "content-type",
    "date",
    "from",
    "message-id",
    "mime-version",
    "reply-to",
    "sender",
    "subject",
    "to",
    "x-warmline-message-id",
];

/// Why the SMTP provider cannot start. None of these carries the URL.
#[derive(Debug, thiserror::Error)]
pub enum SmtpConfigError {
    #[error("SMTP_URL is not a valid URL")]
    InvalidUrl,
    #[error("SMTP_URL must start with smtp:// or smtps://")]
    Scheme,
    #[error(
        "SMTP_URL would send the password unencrypted to {host}: use smtps://, \
         or add ?tls=required (or ?tls=opportunistic) for STARTTLS"
    )]
    CleartextCredentials { host: String },
    #[error("SMTP_URL: {0}")]
    Transport(String),
    #[error(transparent)]
    Config(#[from] crate::settings::error::ConfigError),
}

/// Why one message could not be turned into an email; permanent.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum BuildError {
    #[error("{0}")]
    Payload(String),
    #[error("invalid sender address in the payload")]
    From,
    #[error("invalid Reply-To address in the payload")]
    ReplyTo,
    #[error("invalid recipient address {0}")]
    To(String),
    #[error("message id {0:?} cannot be used in a Message-ID")]
    MessageId(String),
    #[error("invalid header name {0:?}")]
    HeaderName(String),
    #[error("header {0} is set by the SMTP provider, not the payload")]
    ReservedHeader(String),
    #[error("header {0} contains a line break or control character")]
    HeaderValue(String),
    #[error("the email cannot be built: {0}")]
    Message(String),
}

/// Sends email over SMTP. One pooled transport per process, shared by every
/// worker; the dispatcher decides how many sends run at once.
pub struct SmtpProvider {
    /// Builds a fresh pool when a timed-out send retires the current one.
    builder: AsyncSmtpTransportBuilder,
    /// The current pool and its generation, so that several sends timing
    /// out on one pool retire it once.
    current: Mutex<(u64, AsyncSmtpTransport<Tokio1Executor>)>,
    send_timeout: Duration,
    limits: Limits,
}

impl SmtpProvider {
    /// Builds the transport from `[providers.smtp]`. Must run inside a Tokio
    /// runtime (the connection pool starts its reaper task).
    pub fn from_settings(s: &SmtpSettings) -> Result<Self, SmtpConfigError> {
        let url = s.url.as_ref().ok_or(SmtpConfigError::InvalidUrl)?;
        let url = url.expose_secret();
        check_url(url)?;
        // lettre falls back to ring itself, but the process-wide provider
        // keeps every TLS client in the process on one configuration.
        crate::install_crypto_provider();
        let builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            // lettre's connection-URL errors name the problem, never the URL.
            .map_err(|e| SmtpConfigError::Transport(e.to_string()))?
            .timeout(Some(CONNECT_TIMEOUT))
            .pool_config(PoolConfig::new());
        Ok(Self {
            current: Mutex::new((0, builder.clone().build())),
            builder,
            send_timeout: SEND_TIMEOUT,
            limits: Limits {
                requests_per_second: Some(
                    super::configured_rate("smtp", s.requests_per_second)?
                        .unwrap_or(DEFAULT_REQUESTS_PER_SECOND),
                ),
                max_batch: 1,
                per_recipient_interval: s
                    .per_recipient_interval_secs
                    .filter(|s| *s > 0.0)
                    .map(Duration::from_secs_f64),
            },
        })
    }

    /// With another limit on one send than [`SEND_TIMEOUT`] (tests).
    pub fn with_send_timeout(mut self, timeout: Duration) -> Self {
        self.send_timeout = timeout;
        self
    }

    fn transport(&self) -> (u64, AsyncSmtpTransport<Tokio1Executor>) {
        let current = self.current.lock().expect("not poisoned");
        (current.0, current.1.clone())
    }

    /// Replaces pool `generation` (if still current) with a fresh one and
    /// closes the old one's connections in the background.
    fn retire(&self, generation: u64) {
        let old = {
            let mut current = self.current.lock().expect("not poisoned");
            if current.0 != generation {
                return;
            }
            let fresh = self.builder.clone().build();
            current.0 += 1;
            std::mem::replace(&mut current.1, fresh)
        };
        tokio::spawn(async move { old.shutdown().await });
    }

    async fn send_one(&self, m: &OutgoingMessage) -> SendOutcome {
        let (message, message_id) = match build_message(m) {
            Ok(built) => built,
            Err(e) => {
                tracing::warn!(message = %m.id, to = %mask_email(&m.to), error = %e, "smtp: not sendable");
                return SendOutcome::Permanent {
                    error: e.to_string(),
                };
            }
        };
        let (generation, transport) = self.transport();
        let sent = tokio::time::timeout(self.send_timeout, transport.send(message)).await;
        let Ok(sent) = sent else {
            self.retire(generation);
            tracing::warn!(message = %m.id, to = %mask_email(&m.to), "smtp: no answer in time");
            // The server may have taken the message before going quiet: the
            // retry may deliver a second copy, with the same Message-ID.
            return SendOutcome::Retryable {
                error: format!(
                    "SMTP: no answer within {} s",
                    self.send_timeout.as_secs_f64()
                ),
                retry_after: None,
            };
        };
        match sent {
            Ok(reply) => {
                tracing::debug!(
                    message = %m.id,
                    to = %mask_email(&m.to),
                    reply = %mask(&reply.message().collect::<Vec<_>>().join(" "), &m.to),
                    "smtp: accepted"
                );
                SendOutcome::Accepted {
                    provider_message_id: Some(message_id),
                }
            }
            Err(e) => {
                let outcome = classify(&e, &m.to);
                tracing::debug!(message = %m.id, to = %mask_email(&m.to), outcome = ?outcome, "smtp: not accepted");
                outcome
            }
        }
    }
}

#[async_trait]
impl Provider for SmtpProvider {
    fn name(&self) -> &str {
        "smtp"
    }

    fn label(&self) -> &str {
        "SMTP"
    }

    fn channel(&self) -> crate::domain::Channel {
        crate::domain::Channel::Email
    }

    fn limits(&self) -> Limits {
        self.limits.clone()
    }

    fn takes_idempotency_key(&self) -> bool {
        false
    }

    fn without_webhook(&self) -> &'static str {
        "SMTP has no delivery webhooks; a refusal comes back as an SMTP error at send time"
    }

    async fn send(&self, batch: &[OutgoingMessage]) -> Vec<SendOutcome> {
        // One message per SMTP transaction: each has its own recipient and
        // outcome. Batches are 1 (`max_batch`), but any length works.
        let mut out = Vec::with_capacity(batch.len());
        for m in batch {
            out.push(self.send_one(m).await);
        }
        out
    }
}

/// Refuses URLs that are not SMTP, and credentials that would cross the
/// network in clear.
fn check_url(raw: &str) -> Result<(), SmtpConfigError> {
    let url = url::Url::parse(raw).map_err(|_| SmtpConfigError::InvalidUrl)?;
    let tls = url
        .query_pairs()
        .find(|(k, _)| k == "tls")
        .map(|(_, v)| v.into_owned());
    let encrypted = match (url.scheme(), tls.as_deref()) {
        ("smtps", _) => true,
        ("smtp", Some("required" | "opportunistic")) => true,
        ("smtp", _) => false,
        _ => return Err(SmtpConfigError::Scheme),
    };
    let host = url.host_str().ok_or(SmtpConfigError::InvalidUrl)?;
    let has_credentials = url.password().is_some() || !url.username().is_empty();
    if has_credentials && !encrypted && !is_loopback(host) {
        return Err(SmtpConfigError::CleartextCredentials {
            host: host.to_string(),
        });
    }
    Ok(())
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The email for `m`, and its Message-ID (without angle brackets), which is
/// what we record as the provider's message id.
pub fn build_message(m: &OutgoingMessage) -> Result<(Message, String), BuildError> {
    let email = EmailContent::from_payload(&m.content).map_err(BuildError::Payload)?;
    let from: Mailbox = email.from.parse().map_err(|_| BuildError::From)?;
    let to: Mailbox =
        m.to.parse()
            .map_err(|_| BuildError::To(mask_email(&m.to)))?;
    if m.id.is_empty() || !m.id.chars().all(is_atext_or_dot) {
        return Err(BuildError::MessageId(m.id.clone()));
    }
    let message_id = format!("{}@{}", m.id, from.email.domain());
    let mut builder = Message::builder()
        .from(from)
        .to(to)
        .subject(email.subject.clone())
        .message_id(Some(format!("<{message_id}>")))
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("X-Warmline-Message-Id"),
            m.id.clone(),
        ));
    if let Some(reply_to) = &email.reply_to {
        builder = builder.reply_to(reply_to.parse().map_err(|_| BuildError::ReplyTo)?);
    }
    for (name, value) in &email.headers {
        if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
            return Err(BuildError::ReservedHeader(name.clone()));
        }
        // lettre would RFC 2047-encode a control character rather than
        // refuse it, silently turning e.g. a List-Unsubscribe URL into an
        // encoded word no mailbox provider reads.
        if value.chars().any(char::is_control) {
            return Err(BuildError::HeaderValue(name.clone()));
        }
        let header_name = HeaderName::new_from_ascii(name.clone())
            .map_err(|_| BuildError::HeaderName(name.clone()))?;
        builder = builder.raw_header(HeaderValue::new(header_name, value.clone()));
    }
    let message = match email.html {
        Some(html) => builder.multipart(MultiPart::alternative_plain_html(email.text, html)),
        None => builder.singlepart(SinglePart::plain(email.text)),
    }
    .map_err(|e| BuildError::Message(e.to_string()))?;
    Ok((message, message_id))
}

/// RFC 5322 `atext` plus `.`: what a Message-ID's left part may hold.
fn is_atext_or_dot(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c)
}

/// How one failed send fares.
fn classify(e: &lettre::transport::smtp::Error, to: &str) -> SendOutcome {
    if let Some(code) = e.status() {
        // The reply's text, as the server wrote it (every line).
        let text = std::error::Error::source(e)
            .map(|s| s.to_string())
            .unwrap_or_default();
        return classify_reply(u16::from(code), &mask(&text, to));
    }
    let error = mask(&format!("SMTP: {e}"), to);
    if e.is_client() && error.contains("non-ascii") {
        // The address or content needs SMTPUTF8/8BITMIME, which this server
        // does not offer: the same message will never go through it.
        return SendOutcome::Permanent { error };
    }
    // Connection refused or lost, timeouts, TLS failures, an unreadable
    // reply, a server without the STARTTLS or AUTH the URL asks for: about
    // the server, not this message. Retrying gives it (or its operator) time.
    SendOutcome::Retryable {
        error,
        retry_after: None,
    }
}

/// How a negative SMTP reply fares: 5xx never succeeds as it is; 4xx may
/// later. Throttling replies (421/450/451/452/454 that say so, e.g. SES's
/// `454 Throttling failure`, `450 Too many requests`, Gmail's `421 4.7.28
/// … unusual rate`) become a rate limit: the dispatcher then slows the whole
/// provider down for [`THROTTLE_WAIT`] without spending an attempt, instead
/// of retrying each message on its own while the server keeps refusing.
pub fn classify_reply(code: u16, text: &str) -> SendOutcome {
    let error = format!("SMTP {code}: {}", text.trim());
    match code {
        500..=599 => SendOutcome::Permanent { error },
        421 | 450 | 451 | 452 | 454 if is_throttling(text) => SendOutcome::RateLimited {
            retry_after: THROTTLE_WAIT,
        },
        _ => SendOutcome::Retryable {
            error,
            retry_after: None,
        },
    }
}

fn is_throttling(text: &str) -> bool {
    let text = text.to_ascii_lowercase();
    [
        "too many",
        "throttl",
        "rate limit",
        "ratelimit",
        "rate exceeded",
        "sending rate",
        "unusual rate",
        "slow down",
    ]
    .iter()
    .any(|w| text.contains(w))
}

/// Replaces the recipient's address in server text (`550 <ada@x>: unknown`)
/// with its masked form: errors end up in logs and alerts.
fn mask(text: &str, address: &str) -> String {
    if address.is_empty() {
        return text.to_string();
    }
    let masked = mask_email(address);
    let lower = text.to_lowercase();
    let needle = address.to_lowercase();
    if lower.len() != text.len() {
        // Lower-casing changed byte offsets (rare non-ASCII); exact match only.
        return text.replace(address, &masked);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = 0;
    for (at, _) in lower.match_indices(&needle) {
        out.push_str(&text[rest..at]);
        out.push_str(&masked);
        rest = at + needle.len();
    }
    out.push_str(&text[rest..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn outgoing(content: serde_json::Value) -> OutgoingMessage {
        OutgoingMessage {
            id: "msg_0123abcd".into(),
            channel: crate::domain::Channel::Email,
            kind: crate::domain::MessageKind::Marketing,
            to: "Ada@Example.org".into(),
            content,
        }
    }

    fn marketing() -> serde_json::Value {
        json!({
            "from": "Team <team@mail.example.com>",
            "reply_to": "replies@example.com",
            "subject": "Catching up",
            "text": "Hi Ada",
            "html": "<p>Hi Ada</p>",
            "headers": {
                "List-Unsubscribe": "<https://warm.example.com/u/7.email.abc>",
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"
            }
        })
    }

    fn formatted(m: &Message) -> String {
        String::from_utf8(m.formatted()).unwrap()
    }

    #[test]
    fn the_message_id_derives_from_the_ledger_id_and_the_sender_domain() {
        // Arrange
        let m = outgoing(marketing());

        // Act
        let (message, id) = build_message(&m).unwrap();

        // Assert
        assert_eq!(id, "msg_0123abcd@mail.example.com");
        let raw = formatted(&message);
        assert!(raw.contains("Message-ID: <msg_0123abcd@mail.example.com>\r\n"));
        assert!(raw.contains("X-Warmline-Message-Id: msg_0123abcd\r\n"));
        assert_eq!(build_message(&m).unwrap().1, id, "deterministic");
    }

    #[test]
    fn unsubscribe_headers_and_both_bodies_are_written() {
        let (message, _) = build_message(&outgoing(marketing())).unwrap();
        let raw = formatted(&message);
        assert!(raw.contains("List-Unsubscribe: <https://warm.example.com/u/7.email.abc>\r\n"));
        assert!(raw.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"));
        assert!(raw.contains("Content-Type: multipart/alternative"));
        assert!(raw.contains("Reply-To: replies@example.com\r\n"));
        assert!(
            message.envelope().to()[0]
                .to_string()
                .eq_ignore_ascii_case("ada@example.org"),
            "the recipient is OutgoingMessage.to"
        );
    }

    #[test]
    fn a_text_only_email_is_a_single_part() {
        let (message, _) = build_message(&outgoing(json!({
            "from": "team@example.com", "subject": "s", "text": "plain"
        })))
        .unwrap();
        let raw = formatted(&message);
        assert!(raw.contains("Content-Type: text/plain"));
        assert!(!raw.contains("multipart"));
    }

    #[test]
    fn payloads_that_cannot_be_sent_are_refused() {
        let base = marketing();
        let with = |f: &dyn Fn(&mut serde_json::Value)| {
            let mut v = base.clone();
            f(&mut v);
            build_message(&outgoing(v)).unwrap_err()
        };
        assert!(matches!(
            build_message(&outgoing(json!({"subject": 1}))).unwrap_err(),
            BuildError::Payload(_)
        ));
        assert_eq!(
            with(&|v| v["from"] = json!("not an address")),
            BuildError::From
        );
        assert_eq!(
            with(&|v| v["headers"]["Message-ID"] = json!("<x@y>")),
            BuildError::ReservedHeader("Message-ID".into())
        );
        assert_eq!(
            with(&|v| v["headers"]["X-Evil"] = json!("a\r\nBcc: victim@example.com")),
            BuildError::HeaderValue("X-Evil".into())
        );
        assert_eq!(
            with(&|v| v["headers"]["Bad Name"] = json!("x")),
            BuildError::HeaderName("Bad Name".into())
        );
        let mut bad_to = outgoing(marketing());
        bad_to.to = "nobody".into();
        assert!(matches!(
            build_message(&bad_to).unwrap_err(),
            BuildError::To(_)
        ));
    }

    #[test]
    fn replies_are_classified_by_code() {
        assert_eq!(
            classify_reply(550, "5.1.1 user unknown"),
            SendOutcome::Permanent {
                error: "SMTP 550: 5.1.1 user unknown".into()
            }
        );
        assert_eq!(
            classify_reply(451, "4.3.0 try again later"),
            SendOutcome::Retryable {
                error: "SMTP 451: 4.3.0 try again later".into(),
                retry_after: None
            }
        );
        for (code, text) in [
            (454, "Throttling failure: Maximum sending rate exceeded."),
            (450, "4.2.1 Too many requests"),
            (
                421,
                "4.7.28 Our system has detected an unusual rate of unsolicited mail",
            ),
        ] {
            assert_eq!(
                classify_reply(code, text),
                SendOutcome::RateLimited {
                    retry_after: THROTTLE_WAIT
                },
                "{code} {text}"
            );
        }
        assert!(matches!(
            classify_reply(552, "5.2.2 too many messages, mailbox full"),
            SendOutcome::Permanent { .. }
        ));
    }

    #[test]
    fn the_recipient_is_masked_in_server_text() {
        assert_eq!(
            mask(
                "550 5.1.1 <ADA@example.org>: Recipient address rejected",
                "ada@example.org"
            ),
            "550 5.1.1 <a***@example.org>: Recipient address rejected"
        );
    }

    #[tokio::test]
    async fn urls_are_checked_without_echoing_them() {
        let make = |url: &str| {
            SmtpProvider::from_settings(&SmtpSettings {
                url: Some(url.to_string().into()),
                ..Default::default()
            })
        };
        let err = make("smtp://user:s3cret@mail.example.com").err().unwrap();
        assert!(matches!(err, SmtpConfigError::CleartextCredentials { .. }));
        assert!(!err.to_string().contains("s3cret"));
        assert!(matches!(
            make("http://mail.example.com").err().unwrap(),
            SmtpConfigError::Scheme
        ));
        assert!(matches!(
            make("smtp://user:s3cret@[").err().unwrap(),
            SmtpConfigError::InvalidUrl
        ));
        assert!(make("smtp://user:s3cret@127.0.0.1:2525").is_ok());
        assert!(make("smtp://user:s3cret@localhost:2525").is_ok());
        assert!(make("smtp://user:s3cret@mail.example.com?tls=required").is_ok());
        assert!(make("smtps://user:s3cret@mail.example.com").is_ok());
        assert!(
            make("smtp://relay.internal").is_ok(),
            "no credentials, no TLS"
        );
    }

    #[tokio::test]
    async fn limits_are_one_message_per_request_at_the_configured_rate() {
        let url = Some("smtp://127.0.0.1:2525".to_string().into());
        let default = SmtpProvider::from_settings(&SmtpSettings {
            url: url.clone(),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(default.limits().max_batch, 1);
        assert_eq!(
            default.limits().requests_per_second,
            Some(DEFAULT_REQUESTS_PER_SECOND)
        );
        assert!(!default.takes_idempotency_key());
        let configured = SmtpProvider::from_settings(&SmtpSettings {
            url,
            requests_per_second: Some(3.0),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(configured.limits().requests_per_second, Some(3.0));
    }
}
