//! Twilio's two webhooks, both form-encoded and signed with
//! `X-Twilio-Signature` ([`signature`](super::signature), keyed with the
//! auth token, over `WARMLINE_PUBLIC_URL` + path + query and the sorted
//! form parameters):
//!
//! - `POST /webhooks/twilio/status`: status callbacks (the `StatusCallback`
//!   every send names). Event id: `MessageSid:MessageStatus[:ErrorCode]`
//!   (Twilio sends no event id; a redelivery of one status is the same
//!   event). The message is found by `MessageSid`, as `Accepted` stored it.
//! - `POST /webhooks/twilio/inbound`: incoming messages, handed to
//!   `crate::inbound::receive` (keywords, interaction, sequences, Slack) as
//!   [`InboundReport`]s with event id `MessageSid`. The answer is TwiML:
//!   `<Response/>`, or the one confirmation in a `<Message>` when
//!   `[sms] advanced_opt_out = false` (with it on, Twilio answers STOP,
//!   START and HELP itself and warmline only records the change).
//!
//! A missing or wrong signature is 403 (Twilio's documented answer) and
//! stores nothing; without an auth token or `WARMLINE_PUBLIC_URL` every
//! request is 503 (Twilio retries; nothing is lost while an operator fixes
//! it).
//!
//! How `MessageStatus` maps onto [`ReportStatus`]:
//! - `queued`, `accepted`, `scheduled`, `sending`, `sent` → `Sent` (Twilio
//!   has it: evidence that settles an `ambiguous` message);
//! - `delivered`, `read` → `Delivered`;
//! - `undelivered` → `Undelivered`, the `ErrorCode` kept in the detail;
//!   carrier errors 30003–30008 count as bounces for the campaign's circuit
//!   breaker; 30007 (carrier filtering) also alerts the approvals channel;
//! - `failed`, `canceled` → `Failed` with the `ErrorCode`;
//! - anything else (`receiving`, `received`, new statuses) → `Other`.

use std::sync::atomic::{AtomicBool, Ordering};

use secrecy::{ExposeSecret, SecretString};

use super::{settings::TwilioSettings, signature};
use crate::{
    domain::Channel,
    providers::webhook::{
        DeliveryReport, Handled, InboundReport, ReplyBy, ReportStatus, WebhookAnswer, WebhookError,
        WebhookReceiver, WebhookRequest,
    },
    sms::SmsSettings,
};

/// Which of Twilio's webhooks a receiver serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Status,
    Inbound,
}

/// One of Twilio's webhook receivers.
pub struct TwilioWebhook {
    kind: Kind,
    auth_token: Option<SecretString>,
    /// Who answers keywords (`[sms] advanced_opt_out`).
    replies: ReplyBy,
    /// Whether the missing configuration was logged (once per process).
    warned: AtomicBool,
}

/// Twilio's meaning of the delivery error codes warmline reads.
fn meaning(code: &str) -> &'static str {
    match code {
        "30001" => "queue overflow",
        "30002" => "account suspended",
        "30003" => "unreachable handset",
        "30004" => "message blocked",
        "30005" => "unknown destination handset",
        "30006" => "landline or unreachable carrier",
        "30007" => "carrier filtering",
        "30008" => "unknown error",
        "30022" => "10DLC throughput exceeded",
        "30036" => "validity period expired",
        "21610" => "recipient unsubscribed",
        _ => "see twilio.com/docs/api/errors",
    }
}

fn describe(code: Option<&str>) -> String {
    match code {
        Some(c) => format!("error {c} ({})", meaning(c)),
        None => "no error code".into(),
    }
}

impl TwilioWebhook {
    /// The two receivers `[providers.twilio]` asks for: when Twilio sends,
    /// or its auth token is set (reports for earlier sends still arrive).
    pub fn configured(settings: &TwilioSettings, sms: &SmsSettings) -> Option<[Self; 2]> {
        (settings.enabled() || settings.auth_token.is_some()).then(|| {
            let token = settings
                .auth_token
                .clone()
                .filter(|t| !t.expose_secret().trim().is_empty());
            [Kind::Status, Kind::Inbound]
                .map(|kind| Self::new(kind, token.clone(), sms.advanced_opt_out))
        })
    }

    pub fn new(kind: Kind, auth_token: Option<SecretString>, advanced_opt_out: bool) -> Self {
        Self {
            kind,
            auth_token,
            replies: if advanced_opt_out {
                ReplyBy::Provider
            } else {
                ReplyBy::Response
            },
            warned: AtomicBool::new(false),
        }
    }

    fn not_configured(&self, problem: &'static str) -> WebhookError {
        if !self.warned.swap(true, Ordering::Relaxed) {
            tracing::error!("Twilio webhooks are refused with 503: {problem}");
        }
        WebhookError::NotConfigured(problem)
    }
}

/// The form parameters of a request; a JSON body has none (it is signed
/// through `bodySHA256`).
fn params(request: &WebhookRequest<'_>) -> signature::Params {
    let json = request
        .headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if json {
        Vec::new()
    } else {
        signature::form_params(request.body)
    }
}

fn param<'p>(params: &'p signature::Params, name: &str) -> Option<&'p str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

fn required<'p>(params: &'p signature::Params, name: &str) -> Result<&'p str, WebhookError> {
    param(params, name).ok_or_else(|| WebhookError::Malformed(format!("no `{name}` parameter")))
}

/// Reads one status callback.
pub fn parse_status(params: &signature::Params) -> Result<DeliveryReport, WebhookError> {
    let sid = required(params, "MessageSid")?;
    let status = param(params, "MessageStatus")
        .or_else(|| param(params, "SmsStatus"))
        .ok_or_else(|| WebhookError::Malformed("no `MessageStatus` parameter".into()))?;
    let code = param(params, "ErrorCode");
    let report = match status {
        "queued" | "accepted" | "scheduled" | "sending" | "sent" => ReportStatus::Sent,
        "delivered" | "read" => ReportStatus::Delivered,
        "undelivered" => {
            let carrier = code
                .and_then(|c| c.parse::<u32>().ok())
                .is_some_and(|c| (30003..=30008).contains(&c));
            ReportStatus::Undelivered {
                detail: describe(code),
                counts_as_bounce: carrier,
                alert: code == Some("30007"),
            }
        }
        "failed" | "canceled" => ReportStatus::Failed {
            reason: format!("{status}, {}", describe(code)),
        },
        _ => ReportStatus::Other,
    };
    let event_id = match code {
        Some(c) => format!("{sid}:{status}:{c}"),
        None => format!("{sid}:{status}"),
    };
    Ok(DeliveryReport {
        event_id,
        type_name: status.to_string(),
        ledger_id: None,
        provider_message_id: Some(sid.to_string()),
        recipient: param(params, "To").map(str::to_string),
        status: report,
    })
}

/// TwiML: an empty `<Response/>`, or one `<Message>` per text.
pub fn twiml(replies: &[String]) -> String {
    let mut xml = String::from(r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    if replies.is_empty() {
        xml.push_str("<Response/>");
        return xml;
    }
    xml.push_str("<Response>");
    for r in replies {
        xml.push_str("<Message>");
        xml.push_str(&xml_escape(r));
        xml.push_str("</Message>");
    }
    xml.push_str("</Response>");
    xml
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

impl WebhookReceiver for TwilioWebhook {
    fn route(&self) -> &'static str {
        match self.kind {
            Kind::Status => "twilio/status",
            Kind::Inbound => "twilio/inbound",
        }
    }

    fn provider(&self) -> &'static str {
        "twilio"
    }

    fn label(&self) -> &'static str {
        "Twilio"
    }

    fn suppression_source(&self) -> &'static str {
        "twilio_webhook"
    }

    fn is_configured(&self) -> bool {
        self.auth_token.is_some()
    }

    fn secret_setting(&self) -> &'static str {
        "TWILIO_AUTH_TOKEN"
    }

    fn verify(&self, request: &WebhookRequest<'_>) -> Result<(), WebhookError> {
        let token = self
            .auth_token
            .as_ref()
            .ok_or_else(|| self.not_configured("TWILIO_AUTH_TOKEN is not set"))?;
        let url = request.public_url().ok_or_else(|| {
            self.not_configured("WARMLINE_PUBLIC_URL is not set (Twilio signs the public URL)")
        })?;
        let header = request
            .headers
            .get(signature::HEADER)
            .and_then(|v| v.to_str().ok());
        signature::verify(
            token.expose_secret(),
            &url,
            &params(request),
            request.body,
            header,
        )
        .map_err(|e| WebhookError::Forbidden(e.to_string()))
    }

    fn parse(&self, request: &WebhookRequest<'_>) -> Result<Vec<DeliveryReport>, WebhookError> {
        match self.kind {
            Kind::Status => Ok(vec![parse_status(&params(request))?]),
            Kind::Inbound => Ok(Vec::new()),
        }
    }

    fn inbound(&self, request: &WebhookRequest<'_>) -> Result<Vec<InboundReport>, WebhookError> {
        if self.kind != Kind::Inbound {
            return Ok(Vec::new());
        }
        let params = params(request);
        Ok(vec![InboundReport {
            event_id: required(&params, "MessageSid")?.to_string(),
            channel: Channel::Sms,
            from: required(&params, "From")?.to_string(),
            // A message with only media has no body.
            text: params
                .iter()
                .find(|(k, _)| k == "Body")
                .map(|(_, v)| v.clone())
                .unwrap_or_default(),
            received_at: request.now,
            replies: self.replies,
        }])
    }

    fn answer(&self, handled: &Handled) -> Option<WebhookAnswer> {
        (self.kind == Kind::Inbound).then(|| WebhookAnswer {
            content_type: "text/xml",
            body: twiml(&handled.replies),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> signature::Params {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn statuses_map_onto_the_ledger() {
        let report = |status: &str, code: Option<&str>| {
            let mut p = form(&[
                ("MessageSid", "SM1"),
                ("MessageStatus", status),
                ("To", "+14155550100"),
            ]);
            if let Some(c) = code {
                p.push(("ErrorCode".into(), c.into()));
            }
            parse_status(&p).unwrap()
        };
        for s in ["queued", "sent", "sending", "accepted"] {
            assert_eq!(report(s, None).status, ReportStatus::Sent, "{s}");
        }
        assert_eq!(report("delivered", None).status, ReportStatus::Delivered);
        let r = report("undelivered", Some("30003"));
        assert_eq!(
            r.status,
            ReportStatus::Undelivered {
                detail: "error 30003 (unreachable handset)".into(),
                counts_as_bounce: true,
                alert: false
            }
        );
        assert_eq!(r.event_id, "SM1:undelivered:30003");
        assert_eq!(r.provider_message_id.as_deref(), Some("SM1"));
        assert!(matches!(
            report("undelivered", Some("30007")).status,
            ReportStatus::Undelivered {
                counts_as_bounce: true,
                alert: true,
                ..
            }
        ));
        assert!(matches!(
            report("undelivered", Some("30022")).status,
            ReportStatus::Undelivered {
                counts_as_bounce: false,
                alert: false,
                ..
            }
        ));
        assert_eq!(
            report("failed", Some("30001")).status,
            ReportStatus::Failed {
                reason: "failed, error 30001 (queue overflow)".into()
            }
        );
        assert_eq!(report("received", None).status, ReportStatus::Other);
        assert_eq!(report("delivered", None).event_id, "SM1:delivered");
    }

    #[test]
    fn a_callback_without_its_sid_or_status_is_malformed() {
        assert!(matches!(
            parse_status(&form(&[("MessageStatus", "sent")])),
            Err(WebhookError::Malformed(m)) if m.contains("MessageSid")
        ));
        assert!(matches!(
            parse_status(&form(&[("MessageSid", "SM1")])),
            Err(WebhookError::Malformed(m)) if m.contains("MessageStatus")
        ));
    }

    #[test]
    fn twiml_is_empty_or_carries_escaped_messages() {
        assert_eq!(
            twiml(&[]),
            r#"<?xml version="1.0" encoding="UTF-8"?><Response/>"#
        );
        assert_eq!(
            twiml(&["Acme & co: you're <out>".into()]),
            r#"<?xml version="1.0" encoding="UTF-8"?><Response><Message>Acme &amp; co: you&apos;re &lt;out&gt;</Message></Response>"#
        );
    }

    #[test]
    fn advanced_opt_out_decides_who_answers() {
        let s = TwilioSettings {
            account_sid: Some("AC1".into()),
            auth_token: Some("tok".to_string().into()),
            ..Default::default()
        };
        let [status, inbound] = TwilioWebhook::configured(&s, &SmsSettings::default()).unwrap();
        assert_eq!(status.route(), "twilio/status");
        assert_eq!(inbound.route(), "twilio/inbound");
        assert_eq!(inbound.replies, ReplyBy::Provider);
        let off = SmsSettings {
            advanced_opt_out: false,
            ..Default::default()
        };
        let [_, inbound] = TwilioWebhook::configured(&s, &off).unwrap();
        assert_eq!(inbound.replies, ReplyBy::Response);
        assert!(TwilioWebhook::configured(&TwilioSettings::default(), &off).is_none());
    }
}
