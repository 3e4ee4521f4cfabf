//! Error monitoring through Sentry, on only when `SENTRY_DSN` is set.
//!
//! With a DSN, [`init`] starts a Sentry client for the process: panics (on
//! any thread, tokio tasks included) and `error!` tracing events become
//! Sentry events, `warn!` and `info!` events become breadcrumbs sent with
//! the next error (see [`tracing_layers`]). Without one, [`init`] returns
//! `None`: no client, no transport thread, no tracing layer, no panic hook.
//!
//! Invariants:
//! - Nothing leaves unscrubbed. Every event and breadcrumb goes through
//!   `before_send` / `before_breadcrumb`, which walk all of its text: email
//!   addresses and phone numbers are masked as the logs mask them
//!   ([`crate::domain::mask_addresses`]), and secrets (every secret
//!   setting's value, the DSN's keys, Slack `xox…`/`xapp-` tokens, Resend
//!   `re_…` keys, `whsec_…` secrets, bearer tokens, URL credentials, and any
//!   field whose name says it holds a secret) are replaced by `[redacted]`.
//!   An event that cannot be scrubbed is dropped, not sent.
//! - `send_default_pii` is off and the client's `debug` output (which prints
//!   the DSN) stays off; the DSN is a [`SecretString`] and is never logged.
//! - The client is bound to the process hub, so [`init`] must run on the main
//!   thread (it does: `serve` runs inside `#[tokio::main]`'s `block_on`).
//!   The returned [`ErrorReporting`] must live as long as the process; it
//!   flushes queued events when dropped, and `serve` also flushes on a
//!   graceful shutdown.

use std::{borrow::Cow, sync::Arc, sync::LazyLock, time::Duration};

use regex::Regex;
use secrecy::{ExposeSecret, SecretString};
use sentry::protocol::{Breadcrumb, Event};
use sentry::types::Dsn;
use serde_json::Value;
use tracing::{Level, Subscriber};
use tracing_subscriber::{
    Layer,
    filter::{LevelFilter, filter_fn},
    registry::LookupSpan,
};

pub mod settings;

use crate::settings::{ConfigError, Settings};

/// What replaces a secret in anything sent to Sentry.
pub const REDACTED: &str = "[redacted]";

/// The running Sentry client. Keep it for the life of the process: dropping
/// it flushes what is queued and shuts the transport down.
pub struct ErrorReporting {
    guard: sentry::ClientInitGuard,
}

impl ErrorReporting {
    /// Waits up to `timeout` for queued events to be delivered; false if
    /// some were still queued when it ran out.
    pub fn flush(&self, timeout: Duration) -> bool {
        self.guard.flush(Some(timeout))
    }
}

/// Starts error reporting when `SENTRY_DSN` is set; `Ok(None)` (and nothing
/// initialised) when it is not. The client is bound to the current hub:
/// the process hub when called on the main thread.
pub fn init(settings: &Settings) -> Result<Option<ErrorReporting>, ConfigError> {
    let Some(dsn) = settings.sentry.dsn()? else {
        return Ok(None);
    };
    let scrubber = Arc::new(Scrubber::new(settings, &dsn));
    let for_breadcrumbs = scrubber.clone();
    // `ClientOptions` is non-exhaustive: set its public fields one by one.
    let mut options = sentry::ClientOptions::new();
    options.dsn = Some(dsn);
    options.release = sentry::release_name!();
    options.environment = Some(Cow::Owned(settings.sentry.environment.clone()));
    options.send_default_pii = false;
    options.debug = false;
    options.before_send = Some(Arc::new(move |event| scrubber.event(event)));
    options.before_breadcrumb = Some(Arc::new(move |crumb| for_breadcrumbs.breadcrumb(crumb)));
    Ok(Some(ErrorReporting {
        guard: sentry::init(options),
    }))
}

/// The tracing layers that feed Sentry: `error!` events become Sentry
/// events (their fields included), `warn!` and `info!` events become
/// breadcrumbs, and nothing else is taken (no spans, no performance data).
pub fn tracing_layers<S>() -> impl Layer<S> + Send + Sync + 'static
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    use sentry::integrations::tracing::{BreadcrumbLayer, ErrorLayer};
    ErrorLayer::new()
        .with_filter(LevelFilter::ERROR)
        .and_then(BreadcrumbLayer::new().with_filter(filter_fn(|m| {
            matches!(*m.level(), Level::WARN | Level::INFO)
        })))
}

/// Secrets that look the same wherever they appear.
static SECRET_PATTERNS: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    [
        // Slack bot, user, app-level and refresh tokens.
        r"\bxox[a-z]-[A-Za-z0-9-]+",
        r"\bxoxe\.xox[a-z]-[A-Za-z0-9-]+",
        r"\bxapp-[A-Za-z0-9-]+",
        // Resend API keys; a digit or capital keeps snake_case names out.
        r"\bre_[a-z_]*[A-Z0-9][A-Za-z0-9_]{7,}",
        // Svix/Resend webhook signing secrets.
        r"\bwhsec_[A-Za-z0-9+/=]+",
        r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]+",
    ]
    .iter()
    .map(|p| Regex::new(p).expect("static regex"))
    .collect()
});

/// `scheme://user:password@`: the credentials part of a URL.
static URL_CREDENTIALS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s:@]+(?::[^/\s@]*)?@").expect("static regex")
});

/// Field names whose values are secrets whatever they look like.
fn is_secret_field(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "token",
        "secret",
        "password",
        "api_key",
        "apikey",
        "authorization",
        "cookie",
        "dsn",
    ]
    .iter()
    .any(|s| name.contains(s))
}

/// Fields Sentry fills with its own identifiers and addresses: hex and
/// digit runs that the phone masker would otherwise take for numbers.
fn is_sentry_identifier(name: &str) -> bool {
    matches!(
        name,
        "event_id"
            | "trace_id"
            | "span_id"
            | "parent_span_id"
            | "timestamp"
            | "start_timestamp"
            | "instruction_addr"
            | "symbol_addr"
            | "image_addr"
    )
}

/// Scrubs events and breadcrumbs before they leave the process.
struct Scrubber {
    /// Exact secret values known from the settings and the DSN, longest
    /// first so one that contains another is replaced whole.
    literals: Vec<String>,
}

impl Scrubber {
    fn new(settings: &Settings, dsn: &Dsn) -> Self {
        let mut literals: Vec<String> = configured_secrets(settings)
            .into_iter()
            .chain(std::iter::once(dsn.public_key().to_owned()))
            .chain(dsn.secret_key().map(str::to_owned))
            // A very short "secret" would blank out ordinary words.
            .filter(|s| s.len() >= 8)
            .collect();
        literals.sort_by_key(|s| std::cmp::Reverse(s.len()));
        literals.dedup();
        Self { literals }
    }

    /// One piece of text: secrets out first (a token may hold digits the
    /// phone masker would only partly hide), then addresses masked.
    fn text(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for secret in &self.literals {
            if text.contains(secret.as_str()) {
                text = text.replace(secret.as_str(), REDACTED);
            }
        }
        for pattern in SECRET_PATTERNS.iter() {
            if let Cow::Owned(replaced) = pattern.replace_all(&text, REDACTED) {
                text = replaced;
            }
        }
        if let Cow::Owned(replaced) =
            URL_CREDENTIALS.replace_all(&text, format!("${{1}}{REDACTED}@"))
        {
            text = replaced;
        }
        crate::domain::mask_addresses(&text)
    }

    fn value(&self, value: &mut Value, field: Option<&str>) {
        match value {
            Value::String(s) => match field {
                Some(f) if is_secret_field(f) => *s = REDACTED.to_owned(),
                Some(f) if is_sentry_identifier(f) => {}
                _ => *s = self.text(s),
            },
            Value::Array(items) => items.iter_mut().for_each(|v| self.value(v, field)),
            Value::Object(map) => map.iter_mut().for_each(|(k, v)| self.value(v, Some(k))),
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }

    /// Scrubs every string in `item` through its JSON form, which reaches
    /// each field the protocol has (message, exception values, tracing
    /// fields in contexts, tags, extra, breadcrumbs) without listing them.
    /// `None` (the item is dropped) if the round trip fails.
    fn scrub<T: serde::Serialize + serde::de::DeserializeOwned>(&self, item: &T) -> Option<T> {
        let mut json = serde_json::to_value(item).ok()?;
        self.value(&mut json, None);
        serde_json::from_value(json).ok()
    }

    fn event(&self, event: Event<'static>) -> Option<Event<'static>> {
        self.scrub(&event)
    }

    fn breadcrumb(&self, crumb: Breadcrumb) -> Option<Breadcrumb> {
        self.scrub(&crumb)
    }
}

/// Every secret setting's value.
fn configured_secrets(settings: &Settings) -> Vec<String> {
    let one = |s: &Option<SecretString>| s.as_ref().map(|s| s.expose_secret().to_owned());
    let mut secrets: Vec<String> = [
        one(&settings.slack.bot_token),
        one(&settings.slack.signing_secret),
        one(&settings.slack.app_token),
        one(&settings.database.url),
        one(&settings.email.unsubscribe_secret),
        one(&settings.sentry.dsn),
    ]
    .into_iter()
    .flatten()
    .collect();
    secrets.extend(
        settings
            .api
            .keys
            .iter()
            .map(|k| k.expose_secret().to_owned()),
    );
    secrets.extend(
        settings
            .meta
            .secrets()
            .chain(settings.providers.secrets())
            .map(|s| s.expose_secret().to_owned()),
    );
    secrets
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scrubber(settings: &Settings) -> Scrubber {
        let dsn = <Dsn as std::str::FromStr>::from_str(
            "https://a1b2c3d4e5f6publickey@o1.ingest.example.io/42",
        )
        .unwrap();
        Scrubber::new(settings, &dsn)
    }

    #[test]
    fn token_shaped_secrets_are_redacted() {
        let s = scrubber(&Settings::default());
        let text = "slack xoxb-1234-5678-abcdefABCDEF failed, app xapp-1-A0-123-abc, \
                    resend re_Ab12Cd34_EfGh5678IjKl9012 whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw \
                    Authorization: Bearer abc.def-ghi";
        let out = s.text(text);
        for leaked in ["xoxb-", "xapp-", "re_Ab12", "whsec_", "abc.def-ghi"] {
            assert!(!out.contains(leaked), "{leaked} leaked in {out}");
        }
        assert_eq!(out.matches(REDACTED).count(), 5, "{out}");
        assert_eq!(s.text("re_enqueue_failed"), "re_enqueue_failed");
    }

    #[test]
    fn configured_secrets_and_the_dsn_key_are_redacted_wherever_they_appear() {
        let mut settings = Settings::default();
        settings.api.keys = vec!["k-9f8e7d6c5b4a".to_owned().into()];
        settings.database.url = Some("postgres://app:hunter2hunter2@db/warm".to_owned().into());
        let s = scrubber(&settings);
        let out = s.text(
            "key k-9f8e7d6c5b4a, dsn key a1b2c3d4e5f6publickey, db postgres://app:hunter2hunter2@db/warm, \
             other https://user:pw@example.com/x",
        );
        assert!(!out.contains("k-9f8e7d6c5b4a"), "{out}");
        assert!(!out.contains("a1b2c3d4e5f6publickey"), "{out}");
        assert!(!out.contains("hunter2"), "{out}");
        assert!(out.contains("https://[redacted]@example.com/x"), "{out}");
    }

    #[test]
    fn event_text_and_fields_are_masked_and_secret_fields_blanked() {
        let s = scrubber(&Settings::default());
        let mut event = Event {
            message: Some("bounce for john@example.com".into()),
            ..Default::default()
        };
        event.extra.insert("phone".into(), "+12125554567".into());
        event
            .extra
            .insert("api_token".into(), "plain-looking-value".into());
        event.extra.insert("count".into(), 12125554567_u64.into());
        let id = event.event_id;

        let out = s.event(event).expect("scrubbed, not dropped");

        assert_eq!(out.message.as_deref(), Some("bounce for j***@example.com"));
        assert_eq!(out.extra["phone"], "+1******4567");
        assert_eq!(out.extra["api_token"], REDACTED);
        assert_eq!(out.extra["count"], 12125554567_u64, "numbers are not text");
        assert_eq!(out.event_id, id);
    }

    #[test]
    fn breadcrumbs_are_scrubbed_too() {
        let s = scrubber(&Settings::default());
        let crumb = Breadcrumb {
            message: Some("sms to +447911123456 queued, token xoxb-1-2-abc".into()),
            ..Default::default()
        };
        let out = s.breadcrumb(crumb).unwrap();
        assert_eq!(
            out.message.as_deref(),
            Some("sms to +4*******3456 queued, token [redacted]")
        );
    }
}
