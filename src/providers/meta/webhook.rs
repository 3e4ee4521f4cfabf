//! `POST /webhooks/meta` and its `GET` handshake: Meta's one app webhook,
//! carrying WhatsApp's (`object: whatsapp_business_account`) and
//! Instagram's (`object: instagram`) events. One receiver, `provider()`
//! `meta`, serving both `whatsapp` and `instagram`
//! ([`WebhookReceiver::serves`]).
//!
//! Invariants:
//! - **Verify first.** `X-Hub-Signature-256` ([`super::signature`]) over the
//!   raw body with `META_APP_SECRET`; missing or wrong is 403
//!   ([`WebhookError::Forbidden`]) and nothing is stored. Without the
//!   secret every request is 503 (Meta retries; nothing is lost while an
//!   operator sets it).
//! - **Handshake.** `GET ?hub.mode=subscribe&hub.verify_token=…&hub.challenge=…`
//!   answers the challenge when the token equals `META_VERIFY_TOKEN`
//!   (compared in constant time), else 403.
//! - **Event ids** are Meta's own: a status is `{wamid}:{status}` (Meta
//!   sends each status of a message once, redelivering the same), an
//!   inbound message its `id` / `mid`.
//! - Nothing from a CDN (story and attachment URLs expire and carry
//!   tokens) is kept: an attachment becomes a bracketed note.
//!
//! WhatsApp `statuses[].status` → [`ReportStatus`]:
//! - `sent` → `Sent`; `delivered` → `Delivered`;
//! - `read` → `Opened` (an engagement event; before `delivered` it implies
//!   delivery, so `read` without `delivered` still moves the message on);
//! - `failed` → `Failed { reason: "code N: title (details)" }`, masked;
//! - anything else (`played`, `deleted`, new ones) → `Other`.
//!
//! The message is found by `biz_opaque_callback_data` (the ledger id every
//! send carries), else by the wamid the send recorded.
//!
//! WhatsApp `messages[]` → [`InboundReport`] (channel WhatsApp, from
//! `+{from}`): `text.body`; a template's quick-reply `button.text` (its
//! `payload` when the text is empty); `interactive.button_reply.title` or
//! `list_reply.title`; media as a bracketed note (`[image]`, with its
//! caption); `unsupported`, `system`, `reaction` are skipped (no words from
//! the person).
//!
//! `field: user_preferences` (a person stopping or resuming marketing
//! messages inside WhatsApp) is stored as `Other`: the neutral ledger has
//! no report that revokes consent without a message; the next marketing
//! send is refused with 131050, which revokes WhatsApp consent then.
//!
//! Instagram `entry[].messaging[]`: a `message` (echoes of our own sends,
//! `is_echo`, skipped) or a `postback` → [`InboundReport`] (channel
//! Instagram, from the sender's IGSID, event id `mid`): its text; a
//! `story_mention` attachment "[mentioned you in their story]"; a reply to
//! a story "[replied to your story] <text>"; a shared post "[shared a
//! post]"; a postback its title. Other `messaging` events (seen, reactions)
//! are skipped.
//!
//! An unknown `object` is malformed (400) naming it.

use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, TimeZone, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use super::{settings::MetaSettings, signature};
use crate::{
    domain::{Channel, mask_addresses},
    providers::{
        settings::ProvidersSettings,
        webhook::{
            DeliveryReport, InboundReport, ReplyBy, ReportStatus, WebhookError, WebhookReceiver,
            WebhookRequest,
        },
    },
};

/// Meta's app webhook.
pub struct MetaWebhook {
    app_secret: Option<SecretString>,
    verify_token: Option<SecretString>,
    /// Whether the missing configuration was logged (once per process).
    warned: AtomicBool,
}

fn usable(s: &Option<SecretString>) -> Option<SecretString> {
    s.clone().filter(|t| !t.expose_secret().trim().is_empty())
}

impl MetaWebhook {
    /// On when `META_APP_SECRET` is set or WhatsApp or Instagram is on
    /// (then, without the secret, every request is 503).
    pub fn configured(meta: &MetaSettings, providers: &ProvidersSettings) -> Option<Self> {
        (meta.app_secret.is_some() || providers.whatsapp.enabled() || providers.instagram.enabled())
            .then(|| Self::new(usable(&meta.app_secret), usable(&meta.verify_token)))
    }

    pub fn new(app_secret: Option<SecretString>, verify_token: Option<SecretString>) -> Self {
        Self {
            app_secret,
            verify_token,
            warned: AtomicBool::new(false),
        }
    }
}

/// A query string's parameters, percent-decoded.
fn query_params(query: Option<&str>) -> Vec<(String, String)> {
    query
        .map(|q| serde_urlencoded::from_str::<Vec<(String, String)>>(q).unwrap_or_default())
        .unwrap_or_default()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    // Length is not secret; the content is compared without early exit.
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn malformed(what: impl Into<String>) -> WebhookError {
    WebhookError::Malformed(what.into())
}

fn body(request: &WebhookRequest<'_>) -> Result<Value, WebhookError> {
    let v: Value =
        serde_json::from_slice(request.body).map_err(|_| malformed("the body is not JSON"))?;
    match v.get("object").and_then(Value::as_str) {
        Some("whatsapp_business_account" | "instagram") => Ok(v),
        Some(other) => Err(malformed(format!(
            "Meta object `{}` is not one warmline receives (whatsapp_business_account, instagram)",
            other.chars().take(40).collect::<String>()
        ))),
        None => Err(malformed("no `object` in the payload")),
    }
}

fn entries(v: &Value) -> impl Iterator<Item = &Value> {
    v.get("entry")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// `entry[].changes[]` of a WhatsApp payload, as (field, value).
fn changes(v: &Value) -> impl Iterator<Item = (&str, &Value)> {
    entries(v)
        .filter_map(|e| e.get("changes").and_then(Value::as_array))
        .flatten()
        .filter_map(|c| Some((c.get("field")?.as_str()?, c.get("value")?)))
}

fn timestamp(v: Option<&Value>, fallback: DateTime<Utc>) -> DateTime<Utc> {
    // WhatsApp: unix seconds as a string; Instagram: unix milliseconds.
    match v {
        Some(Value::String(s)) => s
            .parse::<i64>()
            .ok()
            .and_then(|s| Utc.timestamp_opt(s, 0).single())
            .unwrap_or(fallback),
        Some(Value::Number(n)) => n
            .as_i64()
            .and_then(|ms| Utc.timestamp_millis_opt(ms).single())
            .unwrap_or(fallback),
        _ => fallback,
    }
}

fn str_at<'v>(v: &'v Value, pointer: &str) -> Option<&'v str> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// One WhatsApp status.
pub fn whatsapp_status(s: &Value) -> Result<DeliveryReport, WebhookError> {
    let wamid = str_at(s, "/id").ok_or_else(|| malformed("a status without `id`"))?;
    let status = str_at(s, "/status").ok_or_else(|| malformed("a status without `status`"))?;
    let report = match status {
        "sent" => ReportStatus::Sent,
        "delivered" => ReportStatus::Delivered,
        "read" => ReportStatus::Opened,
        "failed" => {
            let reasons: Vec<String> = s
                .get("errors")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|e| {
                    let code = e.get("code").and_then(Value::as_i64);
                    let title = str_at(e, "/title").or_else(|| str_at(e, "/message"));
                    let details = str_at(e, "/error_data/details");
                    let mut r = match code {
                        Some(c) => format!("code {c}"),
                        None => "no code".to_string(),
                    };
                    if let Some(t) = title {
                        r.push_str(&format!(": {t}"));
                    }
                    if let Some(d) = details.filter(|d| Some(*d) != title) {
                        r.push_str(&format!(" ({d})"));
                    }
                    r
                })
                .collect();
            let reason = if reasons.is_empty() {
                "WhatsApp reported the message failed, without an error".to_string()
            } else {
                reasons.join("; ")
            };
            ReportStatus::Failed {
                reason: mask_addresses(&reason),
            }
        }
        _ => ReportStatus::Other,
    };
    Ok(DeliveryReport {
        event_id: format!("{wamid}:{status}"),
        type_name: status.to_string(),
        ledger_id: str_at(s, "/biz_opaque_callback_data").map(str::to_string),
        provider_message_id: Some(wamid.to_string()),
        recipient: str_at(s, "/recipient_id").map(|r| format!("+{r}")),
        status: report,
    })
}

/// What a WhatsApp message says, or `None` for one with no words from the
/// person (`unsupported`, `system`, `reaction`).
fn whatsapp_text(m: &Value) -> Option<String> {
    let kind = str_at(m, "/type")?;
    match kind {
        "text" => str_at(m, "/text/body").map(str::to_string),
        "button" => str_at(m, "/button/text")
            .or_else(|| str_at(m, "/button/payload"))
            .map(str::to_string),
        "interactive" => str_at(m, "/interactive/button_reply/title")
            .or_else(|| str_at(m, "/interactive/list_reply/title"))
            .map(str::to_string),
        "image" | "video" | "document" | "audio" | "sticker" | "location" | "contacts" => {
            let caption = str_at(m, &format!("/{kind}/caption"));
            Some(match caption {
                Some(c) => format!("[{kind}] {c}"),
                None => format!("[{kind}]"),
            })
        }
        _ => None,
    }
}

fn whatsapp_inbound(v: &Value, now: DateTime<Utc>) -> Result<Vec<InboundReport>, WebhookError> {
    let mut out = Vec::new();
    for (field, value) in changes(v) {
        if field != "messages" {
            continue;
        }
        for m in value
            .get("messages")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(text) = whatsapp_text(m) else {
                continue;
            };
            let id = str_at(m, "/id").ok_or_else(|| malformed("a message without `id`"))?;
            let from = str_at(m, "/from").ok_or_else(|| malformed("a message without `from`"))?;
            out.push(InboundReport {
                event_id: id.to_string(),
                channel: Channel::Whatsapp,
                from: format!("+{}", from.trim_start_matches('+')),
                text,
                received_at: timestamp(m.get("timestamp"), now),
                replies: ReplyBy::Ledger,
            });
        }
    }
    Ok(out)
}

fn instagram_message_text(message: &Value) -> String {
    let text = str_at(message, "/text");
    let attachment = message
        .get("attachments")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .and_then(|a| str_at(a, "/type"));
    if str_at(message, "/reply_to/story/id").is_some()
        || message.pointer("/reply_to/story").is_some()
    {
        return format!("[replied to your story] {}", text.unwrap_or_default())
            .trim_end()
            .to_string();
    }
    match (text, attachment) {
        (Some(t), _) => t.to_string(),
        (None, Some("story_mention")) => "[mentioned you in their story]".into(),
        (None, Some("share" | "ig_post")) => "[shared a post]".into(),
        (None, Some("ig_reel" | "reel")) => "[shared a reel]".into(),
        (None, Some(other @ ("image" | "video" | "audio" | "file"))) => format!("[{other}]"),
        (None, Some(_)) => "[sent an attachment]".into(),
        (None, None) => String::new(),
    }
}

fn instagram_inbound(v: &Value, now: DateTime<Utc>) -> Result<Vec<InboundReport>, WebhookError> {
    let mut out = Vec::new();
    for e in entries(v) {
        for m in e
            .get("messaging")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let sender = str_at(m, "/sender/id");
            let (mid, text) = if let Some(message) = m.get("message") {
                if message.get("is_echo").and_then(Value::as_bool) == Some(true) {
                    continue;
                }
                (str_at(message, "/mid"), instagram_message_text(message))
            } else if let Some(postback) = m.get("postback") {
                (
                    str_at(postback, "/mid"),
                    str_at(postback, "/title")
                        .or_else(|| str_at(postback, "/payload"))
                        .unwrap_or_default()
                        .to_string(),
                )
            } else {
                continue;
            };
            let mid = mid.ok_or_else(|| malformed("an Instagram message without `mid`"))?;
            let sender =
                sender.ok_or_else(|| malformed("an Instagram message without `sender.id`"))?;
            out.push(InboundReport {
                event_id: mid.to_string(),
                channel: Channel::Instagram,
                from: sender.to_string(),
                text,
                received_at: timestamp(m.get("timestamp"), now),
                replies: ReplyBy::Ledger,
            });
        }
    }
    Ok(out)
}

impl WebhookReceiver for MetaWebhook {
    fn route(&self) -> &'static str {
        "meta"
    }

    fn provider(&self) -> &'static str {
        "meta"
    }

    fn serves(&self, provider: &str) -> bool {
        matches!(provider, "meta" | "whatsapp" | "instagram")
    }

    fn label(&self) -> &'static str {
        "Meta"
    }

    fn suppression_source(&self) -> &'static str {
        "meta_webhook"
    }

    fn is_configured(&self) -> bool {
        self.app_secret.is_some()
    }

    fn secret_setting(&self) -> &'static str {
        "META_APP_SECRET"
    }

    fn verify(&self, request: &WebhookRequest<'_>) -> Result<(), WebhookError> {
        let secret = self.app_secret.as_ref().ok_or_else(|| {
            if !self.warned.swap(true, Ordering::Relaxed) {
                tracing::error!("Meta webhooks are refused with 503: META_APP_SECRET is not set");
            }
            WebhookError::NotConfigured("META_APP_SECRET is not set")
        })?;
        let header = request
            .headers
            .get(signature::HEADER)
            .and_then(|v| v.to_str().ok());
        signature::verify(secret.expose_secret(), request.body, header)
            .map_err(|e| WebhookError::Forbidden(e.to_string()))
    }

    fn parse(&self, request: &WebhookRequest<'_>) -> Result<Vec<DeliveryReport>, WebhookError> {
        let v = body(request)?;
        let mut out = Vec::new();
        if v["object"] != "whatsapp_business_account" {
            return Ok(out);
        }
        for (field, value) in changes(&v) {
            match field {
                "messages" => {
                    for s in value
                        .get("statuses")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        out.push(whatsapp_status(s)?);
                    }
                }
                "user_preferences" => {
                    for p in value
                        .get("user_preferences")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        let wa_id = str_at(p, "/wa_id").unwrap_or("unknown");
                        let what = str_at(p, "/value").unwrap_or("unknown");
                        let ts = p.get("timestamp").map(Value::to_string).unwrap_or_default();
                        out.push(DeliveryReport {
                            event_id: format!("user_preferences:{wa_id}:{what}:{ts}"),
                            type_name: format!("user_preferences.{what}"),
                            ledger_id: None,
                            provider_message_id: None,
                            recipient: Some(format!("+{wa_id}")),
                            status: ReportStatus::Other,
                        });
                    }
                }
                _ => {}
            }
        }
        Ok(out)
    }

    fn inbound(&self, request: &WebhookRequest<'_>) -> Result<Vec<InboundReport>, WebhookError> {
        let v = body(request)?;
        if v["object"] == "instagram" {
            instagram_inbound(&v, request.now)
        } else {
            whatsapp_inbound(&v, request.now)
        }
    }

    fn handshake(&self, query: Option<&str>) -> Option<Result<String, WebhookError>> {
        let params = query_params(query);
        let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let Some(expected) = &self.verify_token else {
            return Some(Err(WebhookError::Forbidden(
                "META_VERIFY_TOKEN is not set".into(),
            )));
        };
        if get("hub.mode") != Some("subscribe") {
            return Some(Err(WebhookError::Forbidden(
                "hub.mode is not `subscribe`".into(),
            )));
        }
        let token_ok = get("hub.verify_token")
            .is_some_and(|t| constant_time_eq(t.as_bytes(), expected.expose_secret().as_bytes()));
        if !token_ok {
            return Some(Err(WebhookError::Forbidden(
                "hub.verify_token does not match META_VERIFY_TOKEN".into(),
            )));
        }
        Some(
            get("hub.challenge")
                .map(str::to_string)
                .ok_or_else(|| malformed("no hub.challenge")),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderMap;
    use serde_json::json;

    fn receiver() -> MetaWebhook {
        MetaWebhook::new(
            Some("app-secret".to_string().into()),
            Some("verify-me".to_string().into()),
        )
    }

    fn run(
        body: &Value,
        signed: bool,
    ) -> Result<(Vec<DeliveryReport>, Vec<InboundReport>), WebhookError> {
        let raw = signature::meta_json(body);
        let mut headers = HeaderMap::new();
        if signed {
            headers.insert(
                signature::HEADER,
                signature::sign("app-secret", raw.as_bytes())
                    .parse()
                    .unwrap(),
            );
        }
        let r = receiver();
        let request = WebhookRequest {
            headers: &headers,
            body: raw.as_bytes(),
            now: Utc::now(),
            path: "/webhooks/meta",
            query: None,
            public_url: None,
        };
        r.verify(&request)?;
        Ok((r.parse(&request)?, r.inbound(&request)?))
    }

    fn wa(value: Value) -> Value {
        json!({"object":"whatsapp_business_account","entry":[{"id":"264937493375603","changes":[{"field":"messages","value":value}]}]})
    }

    #[test]
    fn statuses_map_onto_the_ledger_with_our_id() {
        let body = wa(json!({"messaging_product":"whatsapp","statuses":[
            {"id":"wamid.A","status":"sent","timestamp":"1","recipient_id":"16505551234","biz_opaque_callback_data":"msg_1"},
            {"id":"wamid.A","status":"delivered","timestamp":"2","recipient_id":"16505551234"},
            {"id":"wamid.A","status":"read","timestamp":"3","recipient_id":"16505551234"},
            {"id":"wamid.B","status":"failed","timestamp":"4","recipient_id":"16505551234","errors":[{"code":131026,"title":"Message undeliverable","error_data":{"details":"+16505551234 cannot receive"}}]},
            {"id":"wamid.C","status":"played","timestamp":"5","recipient_id":"1"}
        ]}));
        let (reports, inbound) = run(&body, true).unwrap();
        assert!(inbound.is_empty());
        let statuses: Vec<_> = reports.iter().map(|r| r.status.clone()).collect();
        assert_eq!(statuses[0], ReportStatus::Sent);
        assert_eq!(statuses[1], ReportStatus::Delivered);
        assert_eq!(statuses[2], ReportStatus::Opened);
        let ReportStatus::Failed { reason } = &statuses[3] else {
            panic!("failed")
        };
        assert!(
            reason.starts_with("code 131026: Message undeliverable ("),
            "{reason}"
        );
        assert!(!reason.contains("6505551234"), "{reason}");
        assert_eq!(statuses[4], ReportStatus::Other);
        assert_eq!(reports[0].event_id, "wamid.A:sent");
        assert_eq!(reports[0].ledger_id.as_deref(), Some("msg_1"));
        assert_eq!(reports[1].provider_message_id.as_deref(), Some("wamid.A"));
    }

    #[test]
    fn inbound_text_buttons_and_interactive_replies_are_read_and_system_skipped() {
        let body = wa(json!({"messaging_product":"whatsapp","messages":[
            {"from":"16505551234","id":"wamid.1","timestamp":"1749416383","type":"text","text":{"body":"Does it come in blue? café"}},
            {"from":"16505551234","id":"wamid.2","timestamp":"1","type":"button","button":{"payload":"Unsubscribe","text":"Stop promotions"}},
            {"from":"16505551234","id":"wamid.3","timestamp":"1","type":"interactive","interactive":{"type":"button_reply","button_reply":{"id":"c","title":"Cancel"}}},
            {"from":"16505551234","id":"wamid.4","timestamp":"1","type":"interactive","interactive":{"type":"list_reply","list_reply":{"id":"l","title":"Tuesday","description":"d"}}},
            {"from":"16505551234","id":"wamid.5","timestamp":"1","type":"unsupported","errors":[{"code":131051}]},
            {"from":"16505551234","id":"wamid.6","timestamp":"1","type":"system","system":{"body":"changed","type":"user_changed_number"}}
        ]}));
        let (reports, inbound) = run(&body, true).unwrap();
        assert!(reports.is_empty());
        let texts: Vec<&str> = inbound.iter().map(|m| m.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "Does it come in blue? café",
                "Stop promotions",
                "Cancel",
                "Tuesday"
            ]
        );
        assert_eq!(inbound[0].from, "+16505551234");
        assert_eq!(inbound[0].event_id, "wamid.1");
        assert_eq!(inbound[0].channel, Channel::Whatsapp);
        assert_eq!(inbound[0].received_at.timestamp(), 1749416383);
    }

    #[test]
    fn a_forged_or_missing_signature_is_403_before_anything_is_read() {
        let body = wa(json!({"statuses":[]}));
        assert!(matches!(run(&body, false), Err(WebhookError::Forbidden(_))));
        let none = MetaWebhook::new(None, None);
        let headers = HeaderMap::new();
        let request = WebhookRequest {
            headers: &headers,
            body: b"{}",
            now: Utc::now(),
            path: "/webhooks/meta",
            query: None,
            public_url: None,
        };
        assert!(matches!(
            none.verify(&request),
            Err(WebhookError::NotConfigured(_))
        ));
    }

    #[test]
    fn instagram_dms_mentions_story_replies_and_postbacks() {
        let body = json!({"object":"instagram","entry":[{"time":1761287298065u64,"id":"17841400000000000","messaging":[
            {"sender":{"id":"IGSID1"},"recipient":{"id":"17841400000000000"},"timestamp":1761287294014u64,"message":{"mid":"m1","text":"hello"}},
            {"sender":{"id":"IGSID1"},"recipient":{"id":"1"},"timestamp":1,"message":{"mid":"m2","attachments":[{"type":"story_mention","payload":{"url":"https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id=1"}}]}},
            {"sender":{"id":"IGSID1"},"recipient":{"id":"1"},"timestamp":1,"message":{"mid":"m3","text":"love it","reply_to":{"story":{"id":"s1","url":"https://cdn"}}}},
            {"sender":{"id":"IGSID1"},"recipient":{"id":"1"},"timestamp":1,"message":{"mid":"m4","attachments":[{"type":"share","payload":{"url":"https://lookaside.fbsbx.com/x"}}]}},
            {"sender":{"id":"17841400000000000"},"recipient":{"id":"IGSID1"},"timestamp":1,"message":{"mid":"m5","text":"our echo","is_echo":true}},
            {"sender":{"id":"IGSID1"},"recipient":{"id":"1"},"timestamp":1,"postback":{"mid":"m6","title":"Talk to a person","payload":"HUMAN"}},
            {"sender":{"id":"IGSID1"},"recipient":{"id":"1"},"timestamp":1,"read":{"mid":"m1"}}
        ]}]});
        let (reports, inbound) = run(&body, true).unwrap();
        assert!(reports.is_empty());
        let texts: Vec<&str> = inbound.iter().map(|m| m.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "hello",
                "[mentioned you in their story]",
                "[replied to your story] love it",
                "[shared a post]",
                "Talk to a person"
            ]
        );
        assert!(texts.iter().all(|t| !t.contains("http")));
        assert_eq!(inbound[0].from, "IGSID1");
        assert_eq!(inbound[0].event_id, "m1");
        assert_eq!(inbound[0].channel, Channel::Instagram);
        assert_eq!(inbound[0].received_at.timestamp_millis(), 1761287294014);
    }

    #[test]
    fn an_unknown_object_is_malformed_naming_it() {
        let err = run(&json!({"object":"page","entry":[]}), true).unwrap_err();
        assert!(
            matches!(&err, WebhookError::Malformed(m) if m.contains("`page`")),
            "{err}"
        );
    }

    #[test]
    fn user_preferences_are_stored_as_other() {
        let body = json!({"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"user_preferences","value":{"messaging_product":"whatsapp","user_preferences":[{"wa_id":"16505551234","detail":"User requested to stop marketing messages","category":"marketing_messages","value":"stop","timestamp":1731705721}]}}]}]});
        let (reports, _) = run(&body, true).unwrap();
        assert_eq!(reports.len(), 1);
        assert_eq!(reports[0].status, ReportStatus::Other);
        assert_eq!(reports[0].type_name, "user_preferences.stop");
    }

    #[test]
    fn the_handshake_echoes_the_challenge_only_for_the_right_token() {
        let r = receiver();
        assert_eq!(
            r.handshake(Some(
                "hub.mode=subscribe&hub.verify_token=verify-me&hub.challenge=1158201444"
            ))
            .unwrap()
            .unwrap(),
            "1158201444"
        );
        for q in [
            Some("hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1"),
            Some("hub.mode=unsubscribe&hub.verify_token=verify-me&hub.challenge=1"),
            Some("hub.challenge=1"),
            None,
        ] {
            assert!(
                matches!(r.handshake(q), Some(Err(WebhookError::Forbidden(_)))),
                "{q:?}"
            );
        }
        assert!(r.serves("whatsapp") && r.serves("instagram") && !r.serves("twilio"));
    }
}
