//! Resend's webhook (`POST /webhooks/resend`): delivery reports signed with
//! Svix's scheme.
//!
//! Verification ([`svix::verify`], 5-minute tolerance) runs before anything
//! is parsed. Without a usable secret (`RESEND_WEBHOOK_SECRET`, `whsec_…`)
//! every request is refused with 503, logged once: the sender did nothing
//! wrong, and Resend retries non-2xx answers for about 17 hours (at once,
//! 5 s, 5 min, 30 min, 2 h, 5 h, 10 h), so events sent while an operator is
//! still setting the secret arrive once it is set; its dashboard then shows
//! "service unavailable", which points at us, not at a forged request.
//!
//! How Resend's events map onto [`ReportStatus`]:
//! - `email.sent` → `Sent`; `email.delivered` → `Delivered`;
//!   `email.delivery_delayed` → `Delayed`; `email.opened` / `email.clicked`
//!   → `Opened` / `Clicked` (with the link);
//! - `email.bounced` → `Bounced`, permanent when `bounce.type` is
//!   `Permanent` (Transient and Undetermined: Resend keeps trying and reports
//!   a final bounce later), with `type/subType: diagnostic`, addresses masked;
//! - `email.complained` → `Complained`; `email.failed` → `Failed` with
//!   Resend's reason; `email.suppressed` → `Suppressed` (Resend refused an
//!   address on its own list; `previous_complaint` / `previous_bounce` say
//!   why);
//! - anything else (`email.received`, `contact.*`, `domain.*`) → `Other`.
//!
//! The message is found by the `warmline_message_id` tag the provider puts on
//! every email, else by Resend's `email_id`; the event id is the `svix-id`.

use std::sync::atomic::{AtomicBool, Ordering};

use serde::Deserialize;

use super::{settings::ResendSettings, svix};
use crate::{
    domain::mask_addresses,
    providers::webhook::{
        DeliveryReport, ReportStatus, SuppressedBecause, WebhookError, WebhookReceiver,
        WebhookRequest,
    },
};

/// The tag the Resend provider puts on every email: our ledger id.
pub const MESSAGE_TAG: &str = super::MESSAGE_ID_TAG;

/// Resend's webhook receiver.
pub struct ResendWebhook {
    /// The signing secret, or why there is none usable.
    secret: Result<svix::Secret, &'static str>,
    /// Whether the missing secret was logged (once per process: Resend
    /// retries, and every retry would repeat it).
    warned: AtomicBool,
}

impl ResendWebhook {
    /// The receiver `[providers.resend]` asks for: when Resend sends, or a
    /// webhook secret is set (reports for earlier sends still arrive after
    /// a switch to another provider). Without a secret it answers 503.
    pub fn configured(settings: &ResendSettings) -> Option<Self> {
        use secrecy::ExposeSecret;
        (settings.enabled() || settings.webhook_secret.is_some())
            .then(|| Self::new(settings.webhook_secret.as_ref().map(|s| s.expose_secret())))
    }

    /// From `RESEND_WEBHOOK_SECRET`, if set.
    pub fn new(secret: Option<&str>) -> Self {
        let secret = match secret {
            None => Err("RESEND_WEBHOOK_SECRET is not set"),
            Some(s) => svix::Secret::parse(s)
                .map_err(|_| "RESEND_WEBHOOK_SECRET is not `whsec_` followed by base64"),
        };
        Self {
            secret,
            warned: AtomicBool::new(false),
        }
    }
}

impl WebhookReceiver for ResendWebhook {
    fn route(&self) -> &'static str {
        "resend"
    }

    fn provider(&self) -> &'static str {
        "resend"
    }

    fn label(&self) -> &'static str {
        "Resend"
    }

    fn suppression_source(&self) -> &'static str {
        "resend_webhook"
    }

    fn is_configured(&self) -> bool {
        self.secret.is_ok()
    }

    fn secret_setting(&self) -> &'static str {
        "RESEND_WEBHOOK_SECRET"
    }

    fn verify(&self, request: &WebhookRequest<'_>) -> Result<(), WebhookError> {
        let secret = self.secret.as_ref().map_err(|problem| {
            if !self.warned.swap(true, Ordering::Relaxed) {
                tracing::error!(
                    "Resend webhooks are refused with 503: {problem} (copy the signing secret from Resend's webhook settings)"
                );
            }
            WebhookError::NotConfigured(problem)
        })?;
        let signed = svix::SignedHeaders::from_headers(request.headers)
            .map_err(|e| WebhookError::Unauthorized(e.to_string()))?;
        svix::verify(secret, &signed, request.body, request.now.timestamp())
            .map_err(|e| WebhookError::Unauthorized(e.to_string()))?;
        Ok(())
    }

    fn parse(&self, request: &WebhookRequest<'_>) -> Result<Vec<DeliveryReport>, WebhookError> {
        let event_id = svix::SignedHeaders::from_headers(request.headers)
            .map_err(|e| WebhookError::Unauthorized(e.to_string()))?
            .id
            .to_string();
        Ok(vec![parse(&event_id, request.body)?])
    }
}

#[derive(Debug, Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    kind: String,
    data: serde_json::Value,
}

/// `data` of an `email.*` event; unknown fields are ignored.
#[derive(Debug, Default, Deserialize)]
struct EmailData {
    #[serde(default)]
    email_id: Option<String>,
    #[serde(default)]
    to: Option<Recipients>,
    #[serde(default)]
    tags: Option<Tags>,
    #[serde(default)]
    bounce: Option<Bounce>,
    #[serde(default)]
    click: Option<Click>,
    #[serde(default)]
    failed: Option<Failed>,
    #[serde(default)]
    suppressed: Option<Suppressed>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Recipients {
    One(String),
    Many(Vec<String>),
}

/// Webhooks carry tags as an object; the send API takes `[{name, value}]`.
/// Both are read.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Tags {
    Map(std::collections::BTreeMap<String, serde_json::Value>),
    List(Vec<Tag>),
}

#[derive(Debug, Deserialize)]
struct Tag {
    name: String,
    value: serde_json::Value,
}

#[derive(Debug, Deserialize)]
struct Bounce {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(rename = "subType", default)]
    sub_type: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(rename = "diagnosticCode", default)]
    diagnostic_code: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
struct Click {
    #[serde(default)]
    link: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Failed {
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Suppressed {
    #[serde(default)]
    reason: Option<String>,
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

impl EmailData {
    fn tagged_message_id(&self) -> Option<String> {
        let value = match self.tags.as_ref()? {
            Tags::Map(m) => m.get(MESSAGE_TAG)?.clone(),
            Tags::List(l) => l.iter().find(|t| t.name == MESSAGE_TAG)?.value.clone(),
        };
        value
            .as_str()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    }

    fn first_recipient(&self) -> Option<String> {
        match self.to.as_ref()? {
            Recipients::One(a) => Some(a.clone()),
            Recipients::Many(v) => v.first().cloned(),
        }
    }
}

impl Bounce {
    fn is_permanent(&self) -> bool {
        self.kind.as_deref() == Some("Permanent")
    }

    /// `Permanent/General: smtp; 550 …`, addresses masked.
    fn describe(&self) -> String {
        let kind = self.kind.as_deref().unwrap_or("Undetermined");
        let sub = self.sub_type.as_deref().unwrap_or("Undetermined");
        let diag = self
            .diagnostic_code
            .as_ref()
            .map(|d| d.join("; "))
            .filter(|d| !d.is_empty())
            .or_else(|| self.message.clone())
            .unwrap_or_default();
        let diag = mask_addresses(&diag);
        if diag.is_empty() {
            format!("{kind}/{sub}")
        } else {
            format!("{kind}/{sub}: {diag}")
        }
    }
}

/// The event types whose `data` describes one of our emails.
const KNOWN: &[&str] = &[
    "email.sent",
    "email.delivered",
    "email.delivery_delayed",
    "email.bounced",
    "email.complained",
    "email.opened",
    "email.clicked",
    "email.failed",
    "email.suppressed",
];

/// Reads one Resend event into a report.
fn parse(event_id: &str, bytes: &[u8]) -> Result<DeliveryReport, WebhookError> {
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| WebhookError::Malformed(format!("the body is not JSON: {e}")))?;
    let envelope: Envelope = serde_json::from_value(value).map_err(|e| {
        WebhookError::Malformed(format!(
            "not a Resend event (`type` string and `data` object): {e}"
        ))
    })?;
    if !envelope.data.is_object() {
        return Err(WebhookError::Malformed(
            "not a Resend event: `data` is not an object".into(),
        ));
    }
    let known = KNOWN.contains(&envelope.kind.as_str());
    let data: EmailData = if known {
        serde_json::from_value(envelope.data).map_err(|e| {
            WebhookError::Malformed(format!("`data` of {} is malformed: {e}", envelope.kind))
        })?
    } else {
        EmailData::default()
    };
    let status = match envelope.kind.as_str() {
        "email.sent" => ReportStatus::Sent,
        "email.delivered" => ReportStatus::Delivered,
        "email.delivery_delayed" => ReportStatus::Delayed,
        "email.opened" => ReportStatus::Opened,
        "email.clicked" => ReportStatus::Clicked {
            link: data.click.as_ref().and_then(|c| c.link.clone()),
        },
        "email.bounced" => {
            let bounce = data.bounce.as_ref().ok_or_else(|| {
                WebhookError::Malformed("email.bounced without `data.bounce`".into())
            })?;
            ReportStatus::Bounced {
                permanent: bounce.is_permanent(),
                detail: bounce.describe(),
            }
        }
        "email.complained" => ReportStatus::Complained,
        "email.failed" => ReportStatus::Failed {
            reason: data
                .failed
                .as_ref()
                .and_then(|f| f.reason.clone())
                .unwrap_or_else(|| "no reason given".into()),
        },
        "email.suppressed" => {
            let s = data.suppressed.as_ref();
            let reason = s
                .and_then(|s| s.reason.clone())
                .unwrap_or_else(|| "unknown".into());
            let mut detail = reason.clone();
            if let Some(list) = s.and_then(|s| s.kind.as_deref()) {
                detail.push_str(&format!(" ({list})"));
            }
            if let Some(message) = s.and_then(|s| s.message.as_deref()) {
                detail.push_str(&format!(": {}", mask_addresses(message)));
            }
            ReportStatus::Suppressed {
                reason: match reason.as_str() {
                    "previous_complaint" => SuppressedBecause::Complaint,
                    "previous_bounce" => SuppressedBecause::HardBounce,
                    _ => SuppressedBecause::Other,
                },
                detail,
            }
        }
        _ => ReportStatus::Other,
    };
    Ok(DeliveryReport {
        event_id: event_id.to_string(),
        type_name: envelope.kind,
        ledger_id: data.tagged_message_id(),
        provider_message_id: data
            .email_id
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        recipient: data.first_recipient(),
        status,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_are_checked_and_named() {
        let err = |body: &str| match parse("e", body.as_bytes()) {
            Err(WebhookError::Malformed(m)) => m,
            other => panic!("{body}: {other:?}"),
        };
        assert!(err("{not json").contains("not JSON"));
        assert!(err(r#"{"data": {}}"#).contains("`type`"));
        assert!(err(r#"{"type": "email.sent", "data": 3}"#).contains("`data` is not an object"));
        assert!(err(r#"{"type": "email.bounced", "data": {"email_id": "x"}}"#).contains("bounce"));
        assert!(err(r#"{"type": "email.sent", "data": {"email_id": 7}}"#).contains("email.sent"));
    }

    #[test]
    fn tags_are_read_in_both_shapes() {
        let ev = parse(
            "e1",
            br#"{"type":"email.delivered","data":{"email_id":"e1","tags":{"warmline_message_id":"msg_1"}}}"#,
        )
        .unwrap();
        assert_eq!(ev.ledger_id.as_deref(), Some("msg_1"));
        assert_eq!(ev.provider_message_id.as_deref(), Some("e1"));
        assert_eq!(ev.status, ReportStatus::Delivered);
        let ev = parse(
            "e2",
            br#"{"type":"email.delivered","data":{"tags":[{"name":"warmline_message_id","value":"msg_2"}]}}"#,
        )
        .unwrap();
        assert_eq!(ev.ledger_id.as_deref(), Some("msg_2"));
        let ev = parse("e3", br#"{"type":"contact.created","data":{"id":"c"}}"#).unwrap();
        assert_eq!(ev.status, ReportStatus::Other);
    }

    #[test]
    fn bounce_descriptions_mask_addresses() {
        let ev = parse(
            "e",
            br#"{"type":"email.bounced","data":{"bounce":{"type":"Permanent","subType":"General","diagnosticCode":["smtp; 550 5.1.1 <jane@example.com> user unknown"]}}}"#,
        )
        .unwrap();
        assert_eq!(
            ev.status,
            ReportStatus::Bounced {
                permanent: true,
                detail: "Permanent/General: smtp; 550 5.1.1 <j***@example.com> user unknown".into()
            }
        );
    }

    #[test]
    fn suppressions_say_why() {
        let ev = parse(
            "e",
            br#"{"type":"email.suppressed","data":{"suppressed":{"reason":"previous_complaint","type":"global","message":"ann@x.org complained"}}}"#,
        )
        .unwrap();
        assert_eq!(
            ev.status,
            ReportStatus::Suppressed {
                reason: SuppressedBecause::Complaint,
                detail: "previous_complaint (global): a***@x.org complained".into()
            }
        );
    }
}
