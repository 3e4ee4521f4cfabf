//! A faithful fake of Meta's Graph API for WhatsApp and Instagram, for
//! tests and benchmarks: one server on 127.0.0.1:0 answering
//! `POST /{v}/{id}/messages` for the WhatsApp number and the Instagram
//! account by the id in the path, the health reads, the WABA's
//! `message_templates` (paged), and a webhook emitter that signs exactly as
//! Meta does (shared doc §7 "WhatsApp Cloud fake", "Instagram fake").
//!
//! What it emulates:
//! - `Authorization: Bearer` (a bad or missing token: 401, code 190);
//! - WhatsApp requests: `messaging_product: whatsapp`, `to` digits, the
//!   `type` discriminator, text ≤ 4,096 characters, templates registered in
//!   the fake (unknown or not APPROVED in that language → 132001; body
//!   parameter count → 132000), `biz_opaque_callback_data` ≤ 512; unknown
//!   fields refused (code 100) so a typo in our client fails a test;
//! - the 24-hour customer-service window per recipient, opened and
//!   refreshed only by inbound messages the fake emits: free-form outside
//!   it → 131047; templates always allowed; marketing templates to someone
//!   who stopped marketing → 131050;
//! - a per-number token bucket (`requests_per_second`) → 130429 (HTTP 429)
//!   with `x-business-use-case-usage` at 100 %; a per-pair bucket (one per
//!   `pair_interval`, a burst of `pair_burst`) → 131056;
//! - Instagram: `{recipient:{id}, message:{text}, messaging_type}`, text ≤
//!   1,000 bytes, the window (24 h; `MESSAGE_TAG` + `HUMAN_AGENT` 7 days)
//!   → code 10, subcode 2018278; a 300/s bucket → 613;
//! - a queue of scripted failures for the next `messages` request (131047,
//!   131056, 130429, 131050, 131026, 131049, 500, 10, 551, 613, …);
//! - an accepted log (who, what, when), so tests and benchmarks reconcile
//!   it with the ledger and check windows and pair spacing;
//! - webhooks: statuses (sent, delivered, read, failed with `errors[]`,
//!   PMP `pricing`, echoing `biz_opaque_callback_data`), inbound WhatsApp
//!   text / quick-reply button / interactive replies, Instagram DMs, story
//!   mentions, story replies and postbacks; bodies with non-ASCII as
//!   lowercase `\uXXXX` and `/` escaped, signed `X-Hub-Signature-256`;
//!   forged or missing signatures, duplicates (post the same twice) and
//!   any order; the `GET` handshake driver.
//!
//! The fake's clock is `crate::clock::now()` plus its own offset
//! ([`FakeMeta::advance`]), so tests move windows without sleeping.
//!
//! Invariants: a request Meta would refuse is refused, never accepted;
//! only accepted messages enter [`FakeMeta::accepted`].

use std::{
    collections::{HashMap, HashSet, VecDeque},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::signature;

#[derive(Debug, Clone)]
pub struct FakeConfig {
    pub access_token: String,
    pub phone_number_id: String,
    pub display_phone_number: String,
    pub business_account_id: String,
    pub instagram_token: String,
    pub instagram_account_id: String,
    pub app_secret: String,
    /// WhatsApp requests per second per number before 130429.
    pub requests_per_second: u32,
    /// One message per pair every `pair_interval`, with a burst of
    /// `pair_burst`, before 131056.
    pub pair_interval: Duration,
    pub pair_burst: u32,
    /// Instagram Send API calls per second before 613.
    pub instagram_requests_per_second: u32,
    /// Templates per page of `message_templates` unless `limit` says.
    pub page_size: usize,
}

impl Default for FakeConfig {
    fn default() -> Self {
        Self {
            access_token: "EAAfaketoken0123456789".into(),
            phone_number_id: "106540352242922".into(),
            display_phone_number: "15550783881".into(),
            business_account_id: "264937493375603".into(),
            instagram_token: "IGQfaketoken0123456789".into(),
            instagram_account_id: "17841400000000000".into(),
            app_secret: "fake-meta-app-secret".into(),
            requests_per_second: 80,
            pair_interval: Duration::from_secs(6),
            pair_burst: 2,
            instagram_requests_per_second: 300,
            page_size: 25,
        }
    }
}

/// One message the fake accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct Accepted {
    /// `wamid.…` or Instagram's `mid`.
    pub id: String,
    /// `whatsapp` or `instagram`.
    pub channel: &'static str,
    /// WhatsApp digits or the IGSID.
    pub to: String,
    /// `text` or `template`.
    pub kind: String,
    pub text: Option<String>,
    pub template: Option<String>,
    pub parameters: Vec<String>,
    pub biz_opaque_callback_data: Option<String>,
    /// Instagram's `messaging_type` and `tag`.
    pub messaging_type: Option<String>,
    pub tag: Option<String>,
    /// The whole request body as received.
    pub body: Value,
    pub at: Instant,
    pub at_time: DateTime<Utc>,
}

/// One `messages` request as the fake saw it.
#[derive(Debug, Clone)]
pub struct RequestRecord {
    pub at: Instant,
    pub status: u16,
    pub code: Option<i64>,
    pub channel: &'static str,
}

/// A scripted answer for the next authenticated `messages` request.
#[derive(Debug, Clone)]
pub struct Scripted {
    pub status: u16,
    pub code: i64,
    pub subcode: Option<i64>,
    pub message: String,
}

impl Scripted {
    pub fn error(status: u16, code: i64, message: &str) -> Self {
        Self {
            status,
            code,
            subcode: None,
            message: message.into(),
        }
    }

    /// Meta's answer for `code`, with its usual HTTP status and title.
    pub fn code(code: i64) -> Self {
        let (status, message) = meaning(code);
        // A bare 500 is Meta's 131000, answered 500.
        let code = if code == 500 { 131000 } else { code };
        let mut s = Self::error(status, code, message);
        if code == 10 {
            s.subcode = Some(2018278);
        }
        s
    }
}

fn meaning(code: i64) -> (u16, &'static str) {
    match code {
        130429 => (429, "(#130429) Rate limit hit"),
        131056 => (
            400,
            "(#131056) (Business Account, Consumer Account) pair rate limit hit",
        ),
        131047 => (400, "(#131047) Re-engagement message"),
        131050 => (
            400,
            "(#131050) Unable to deliver the message. This recipient has chosen to stop receiving marketing messages on WhatsApp from your business",
        ),
        131026 => (400, "(#131026) Message undeliverable"),
        131049 => (
            400,
            "(#131049) This message was not delivered to maintain healthy ecosystem engagement.",
        ),
        131048 => (400, "(#131048) Spam rate limit hit"),
        131000 | 500 => (500, "(#131000) Something went wrong"),
        131016 | 2 => (503, "(#131016) Service unavailable"),
        132000 => (
            400,
            "(#132000) Number of parameters does not match the expected number of params",
        ),
        132001 => (
            400,
            "(#132001) Template name does not exist in the translation",
        ),
        10 => (400, "(#10) This message is sent outside of allowed window."),
        551 => (400, "(#551) This person isn't available right now."),
        613 => (
            400,
            "(#613) Calls to this api have exceeded the rate limit.",
        ),
        4 => (400, "(#4) Application request limit reached"),
        190 => (
            401,
            "Invalid OAuth access token - Cannot parse access token",
        ),
        _ => (400, "(#100) Invalid parameter"),
    }
}

#[derive(Debug)]
struct Bucket {
    rate: f64,
    capacity: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn new(rate: f64, capacity: f64) -> Self {
        Self {
            rate,
            capacity,
            tokens: capacity,
            last: Instant::now(),
        }
    }

    fn take(&mut self, now: Instant) -> bool {
        self.tokens = (self.tokens + now.duration_since(self.last).as_secs_f64() * self.rate)
            .min(self.capacity);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[derive(Debug, Clone)]
struct FakeTemplate {
    name: String,
    language: String,
    category: String,
    status: String,
    body: String,
    parameters: usize,
}

#[derive(Debug)]
struct Inner {
    number_bucket: Bucket,
    ig_bucket: Bucket,
    pairs: HashMap<String, Bucket>,
    accepted: Vec<Accepted>,
    requests: Vec<RequestRecord>,
    script: VecDeque<Scripted>,
    /// Last inbound message per WhatsApp `wa_id` / IGSID.
    wa_windows: HashMap<String, DateTime<Utc>>,
    ig_windows: HashMap<String, DateTime<Utc>>,
    stopped_marketing: HashSet<String>,
    templates: Vec<FakeTemplate>,
    offset: chrono::Duration,
    /// `x-business-use-case-usage` on every `messages` answer, when set.
    usage: Option<(u32, u32)>,
    next: u64,
}

struct Shared {
    config: FakeConfig,
    base_url: String,
    inner: Mutex<Inner>,
    accepted_count: tokio::sync::watch::Sender<usize>,
}

impl Shared {
    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("not poisoned")
    }

    fn now(&self) -> DateTime<Utc> {
        crate::clock::now() + self.inner().offset
    }
}

/// A running fake; stops when dropped.
pub struct FakeMeta {
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
    client: reqwest::Client,
}

impl Drop for FakeMeta {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// The app's answer to a webhook or handshake.
#[derive(Debug, Clone)]
pub struct WebhookAnswer {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: String,
}

/// How a webhook is signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signing {
    /// As Meta signs it, with the app secret.
    Valid,
    /// With another secret.
    Forged,
    /// No header at all.
    Missing,
}

impl FakeMeta {
    pub async fn start(config: FakeConfig) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let rps = f64::from(config.requests_per_second.max(1));
        let ig_rps = f64::from(config.instagram_requests_per_second.max(1));
        let shared = Arc::new(Shared {
            base_url: format!("http://{addr}"),
            inner: Mutex::new(Inner {
                number_bucket: Bucket::new(rps, rps),
                ig_bucket: Bucket::new(ig_rps, ig_rps),
                pairs: HashMap::new(),
                accepted: Vec::new(),
                requests: Vec::new(),
                script: VecDeque::new(),
                wa_windows: HashMap::new(),
                ig_windows: HashMap::new(),
                stopped_marketing: HashSet::new(),
                templates: Vec::new(),
                offset: chrono::Duration::zero(),
                usage: None,
                next: 1,
            }),
            config,
            accepted_count: tokio::sync::watch::Sender::new(0),
        });
        let app = Router::new()
            .route("/{version}/{id}/messages", post(messages))
            .route("/{version}/{id}/message_templates", get(message_templates))
            .route("/{version}/{id}", get(node))
            .fallback(|| async { graph_error(400, 100, None, "(#100) Unsupported request") })
            .with_state(shared.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        crate::install_crypto_provider();
        Ok(Self {
            shared,
            server,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .expect("a client"),
        })
    }

    /// `http://127.0.0.1:<port>`, for `META_GRAPH_URL`.
    pub fn base_url(&self) -> &str {
        &self.shared.base_url
    }

    pub fn config(&self) -> &FakeConfig {
        &self.shared.config
    }

    /// The fake's clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.shared.now()
    }

    /// Moves the fake's clock forward (windows age).
    pub fn advance(&self, by: chrono::Duration) {
        self.shared.inner().offset += by;
    }

    /// Registers a template in the WABA. `body` uses `{{1}}`…; its
    /// parameter count is the highest variable.
    pub fn register_template(
        &self,
        name: &str,
        language: &str,
        category: &str,
        status: &str,
        body: &str,
    ) {
        let parameters = (1..=20)
            .take_while(|i| body.contains(&format!("{{{{{i}}}}}")))
            .count();
        self.shared.inner().templates.push(FakeTemplate {
            name: name.into(),
            language: language.into(),
            category: category.into(),
            status: status.into(),
            body: body.into(),
            parameters,
        });
    }

    /// Records that `wa_id` (digits) stopped marketing messages: marketing
    /// templates to them fail with 131050.
    pub fn stop_marketing(&self, wa_id: &str) {
        self.shared
            .inner()
            .stopped_marketing
            .insert(wa_id.trim_start_matches('+').to_string());
    }

    /// Every later `messages` answer carries `x-business-use-case-usage`
    /// with this `call_count` (percent) and `estimated_time_to_regain_access`
    /// (minutes); `None` stops it.
    pub fn set_usage(&self, usage: Option<(u32, u32)>) {
        self.shared.inner().usage = usage;
    }

    /// Queues an answer for the next authenticated `messages` request.
    pub fn script(&self, answer: Scripted) {
        self.shared.inner().script.push_back(answer);
    }

    /// Every accepted message, in order.
    pub fn accepted(&self) -> Vec<Accepted> {
        self.shared.inner().accepted.clone()
    }

    /// Every `messages` request, in order of arrival.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.inner().requests.clone()
    }

    /// The most accepted messages in any sliding one-second window.
    pub fn max_accepted_in_any_second(&self) -> usize {
        let times: Vec<Instant> = self.shared.inner().accepted.iter().map(|a| a.at).collect();
        crate::providers::test_provider::max_in_any_second(&times)
    }

    /// The smallest gap between two accepted messages to one recipient.
    pub fn min_pair_spacing(&self) -> Option<Duration> {
        let mut last: HashMap<String, Instant> = HashMap::new();
        let mut min: Option<Duration> = None;
        for a in self.shared.inner().accepted.iter() {
            if let Some(prev) = last.insert(a.to.clone(), a.at) {
                let gap = a.at.duration_since(prev);
                min = Some(min.map_or(gap, |m| m.min(gap)));
            }
        }
        min
    }

    /// Waits until at least `n` messages were accepted; false on timeout.
    pub async fn wait_for_accepted(&self, n: usize, timeout: Duration) -> bool {
        let mut rx = self.shared.accepted_count.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|c| *c >= n))
            .await
            .is_ok()
    }

    fn next_id(&self, prefix: &str) -> String {
        let mut inner = self.shared.inner();
        let n = inner.next;
        inner.next += 1;
        format!("{prefix}{}", fake_id(n))
    }

    /// POSTs `body` to `url` serialised as Meta does, signed as asked.
    pub async fn post(&self, url: &str, body: &Value, signing: Signing) -> WebhookAnswer {
        let raw = signature::meta_json(body);
        self.post_raw(url, raw.into_bytes(), signing).await
    }

    /// POSTs raw bytes, signed as asked.
    pub async fn post_raw(&self, url: &str, raw: Vec<u8>, signing: Signing) -> WebhookAnswer {
        let mut request = self
            .client
            .post(url)
            .header(header::CONTENT_TYPE, "application/json");
        match signing {
            Signing::Valid => {
                request = request.header(
                    signature::HEADER,
                    signature::sign(&self.shared.config.app_secret, &raw),
                )
            }
            Signing::Forged => {
                request = request.header(signature::HEADER, signature::sign("not-the-secret", &raw))
            }
            Signing::Missing => {}
        }
        answer(request.body(raw).send().await.expect("the app answers")).await
    }

    /// The handshake Meta sends when a callback URL is saved.
    pub async fn handshake(
        &self,
        url: &str,
        mode: &str,
        token: &str,
        challenge: &str,
    ) -> WebhookAnswer {
        let response = self
            .client
            .get(format!(
                "{url}?{}",
                serde_urlencoded::to_string([
                    ("hub.mode", mode),
                    ("hub.verify_token", token),
                    ("hub.challenge", challenge),
                ])
                .expect("a query")
            ))
            .send()
            .await
            .expect("the app answers");
        answer(response).await
    }

    fn wa_envelope(&self, field: &str, value: Value) -> Value {
        let c = &self.shared.config;
        json!({"object":"whatsapp_business_account","entry":[{"id":c.business_account_id,"changes":[{"value":value,"field":field}]}]})
    }

    fn wa_metadata(&self) -> Value {
        let c = &self.shared.config;
        json!({"display_phone_number":c.display_phone_number,"phone_number_id":c.phone_number_id})
    }

    /// The status webhook body for accepted message `wamid`.
    pub fn status_body(&self, wamid: &str, status: &str, error: Option<i64>) -> Value {
        let a = self
            .accepted()
            .into_iter()
            .find(|a| a.id == wamid)
            .expect("a message the fake accepted");
        let mut s = json!({
            "id": wamid,
            "status": status,
            "timestamp": self.now().timestamp().to_string(),
            "recipient_id": a.to,
        });
        if let Some(b) = &a.biz_opaque_callback_data {
            s["biz_opaque_callback_data"] = json!(b);
        }
        if status != "failed" {
            let category = if a.kind == "template" {
                "marketing"
            } else {
                "service"
            };
            s["pricing"] = json!({"billable": a.kind == "template", "pricing_model": "PMP", "category": category, "type": "regular"});
        }
        if let Some(code) = error {
            let (_, message) = meaning(code);
            let title = message.split_once(") ").map_or(message, |(_, t)| t);
            s["errors"] = json!([{"code": code, "title": title, "message": title,
                "error_data": {"details": format!("Message to {} failed: {title}", a.to)},
                "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"}]);
        }
        self.wa_envelope(
            "messages",
            json!({"messaging_product":"whatsapp","metadata":self.wa_metadata(),"statuses":[s]}),
        )
    }

    /// POSTs a status for accepted message `wamid` (a failure with
    /// `error`'s code).
    pub async fn status(
        &self,
        url: &str,
        wamid: &str,
        status: &str,
        error: Option<i64>,
    ) -> WebhookAnswer {
        self.post(url, &self.status_body(wamid, status, error), Signing::Valid)
            .await
    }

    fn inbound_wa(&self, from: &str, kind: &str, content: Value, name: &str) -> (String, Value) {
        let from = from.trim_start_matches('+').to_string();
        let id = self.next_id("wamid.IN");
        let now = self.now();
        self.shared.inner().wa_windows.insert(from.clone(), now);
        let mut m =
            json!({"from": from, "id": id, "timestamp": now.timestamp().to_string(), "type": kind});
        m[kind] = content;
        if kind == "button" || kind == "interactive" {
            m["context"] =
                json!({"from": self.shared.config.display_phone_number, "id": "wamid.OUT"});
        }
        let body = self.wa_envelope(
            "messages",
            json!({"messaging_product":"whatsapp","metadata":self.wa_metadata(),
                   "contacts":[{"profile":{"name":name},"wa_id":from}],"messages":[m]}),
        );
        (id, body)
    }

    /// A WhatsApp text from `from` (opens their window). Returns the
    /// message id and the body, for redelivery.
    pub fn inbound_text_body(&self, from: &str, text: &str) -> (String, Value) {
        self.inbound_wa(from, "text", json!({"body": text}), "Test Person")
    }

    /// POSTs a WhatsApp text from `from`, signed.
    pub async fn inbound_text(&self, url: &str, from: &str, text: &str) -> WebhookAnswer {
        let (_, body) = self.inbound_text_body(from, text);
        self.post(url, &body, Signing::Valid).await
    }

    /// A template quick-reply button press.
    pub async fn inbound_button(
        &self,
        url: &str,
        from: &str,
        text: &str,
        payload: &str,
    ) -> WebhookAnswer {
        let (_, body) = self.inbound_wa(
            from,
            "button",
            json!({"text": text, "payload": payload}),
            "Test Person",
        );
        self.post(url, &body, Signing::Valid).await
    }

    /// An interactive reply: `button_reply` or `list_reply`.
    pub async fn inbound_interactive(
        &self,
        url: &str,
        from: &str,
        kind: &str,
        title: &str,
    ) -> WebhookAnswer {
        let (_, body) = self.inbound_wa(
            from,
            "interactive",
            json!({"type": kind, kind: {"id": "opt-1", "title": title}}),
            "Test Person",
        );
        self.post(url, &body, Signing::Valid).await
    }

    /// A marketing preference change (`stop` or `resume`).
    pub async fn user_preferences(&self, url: &str, wa_id: &str, value: &str) -> WebhookAnswer {
        let wa_id = wa_id.trim_start_matches('+');
        if value == "stop" {
            self.stop_marketing(wa_id);
        } else {
            self.shared.inner().stopped_marketing.remove(wa_id);
        }
        let body = self.wa_envelope(
            "user_preferences",
            json!({"messaging_product":"whatsapp","metadata":self.wa_metadata(),
                   "contacts":[{"profile":{"name":"Test Person"},"wa_id":wa_id}],
                   "user_preferences":[{"wa_id":wa_id,"detail":"User requested to stop marketing messages","category":"marketing_messages","value":value,"timestamp":self.now().timestamp()}]}),
        );
        self.post(url, &body, Signing::Valid).await
    }

    fn ig_envelope(&self, igsid: &str, event: (&str, Value)) -> (String, Value) {
        let now = self.now();
        self.shared
            .inner()
            .ig_windows
            .insert(igsid.to_string(), now);
        let account = &self.shared.config.instagram_account_id;
        let mid = event.1["mid"].as_str().unwrap_or_default().to_string();
        let mut m = json!({"sender":{"id":igsid},"recipient":{"id":account},"timestamp":now.timestamp_millis()});
        m[event.0] = event.1;
        (
            mid,
            json!({"object":"instagram","entry":[{"time":now.timestamp_millis(),"id":account,"messaging":[m]}]}),
        )
    }

    /// An Instagram DM body from `igsid` (opens their window).
    pub fn ig_message_body(&self, igsid: &str, text: &str) -> (String, Value) {
        let mid = self.next_id("aWdfZAG1faWQ");
        self.ig_envelope(igsid, ("message", json!({"mid": mid, "text": text})))
    }

    pub async fn ig_message(&self, url: &str, igsid: &str, text: &str) -> WebhookAnswer {
        let (_, body) = self.ig_message_body(igsid, text);
        self.post(url, &body, Signing::Valid).await
    }

    /// A story mention (the CDN URL is in the payload, as Meta sends it).
    pub async fn ig_story_mention(&self, url: &str, igsid: &str) -> WebhookAnswer {
        let mid = self.next_id("aWdfZAG1faWQ");
        let (_, body) = self.ig_envelope(
            igsid,
            ("message", json!({"mid": mid, "attachments":[{"type":"story_mention","payload":{"url":"https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id=1&signature=abc"}}]})),
        );
        self.post(url, &body, Signing::Valid).await
    }

    /// A reply to our story.
    pub async fn ig_story_reply(&self, url: &str, igsid: &str, text: &str) -> WebhookAnswer {
        let mid = self.next_id("aWdfZAG1faWQ");
        let (_, body) = self.ig_envelope(
            igsid,
            ("message", json!({"mid": mid, "text": text, "reply_to":{"story":{"id":"18000000000000001","url":"https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id=2"}}})),
        );
        self.post(url, &body, Signing::Valid).await
    }

    /// A postback (an icebreaker or a button).
    pub async fn ig_postback(
        &self,
        url: &str,
        igsid: &str,
        title: &str,
        payload: &str,
    ) -> WebhookAnswer {
        let mid = self.next_id("aWdfZAG1faWQ");
        let (_, body) = self.ig_envelope(
            igsid,
            (
                "postback",
                json!({"mid": mid, "title": title, "payload": payload}),
            ),
        );
        self.post(url, &body, Signing::Valid).await
    }
}

fn fake_id(n: u64) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("HBgLMTY1MDM4Nzk0MzkVAgARGBI{n:020}"))
}

async fn answer(response: reqwest::Response) -> WebhookAnswer {
    WebhookAnswer {
        status: response.status().as_u16(),
        content_type: response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        body: response.text().await.unwrap_or_default(),
    }
}

fn graph_error(status: u16, code: i64, subcode: Option<i64>, message: &str) -> Response {
    let mut error = json!({
        "message": message,
        "type": "OAuthException",
        "code": code,
        "fbtrace_id": "AbCdEfGhIjKlMnOpQrStUvW",
    });
    if let Some(s) = subcode {
        error["error_subcode"] = json!(s);
    }
    if code >= 130000 {
        error["error_data"] = json!({"messaging_product": "whatsapp", "details": message.split_once(") ").map_or(message, |(_, t)| t)});
    }
    let mut response = (
        StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
        Json(json!({ "error": error })),
    )
        .into_response();
    if code == 130429 || code == 613 {
        // Throughput is per second; the hourly business-use-case usage
        // that rides along is not at its cap (see `FakeMeta::set_usage`).
        response
            .headers_mut()
            .insert(USAGE, usage_header(1, 0).parse().expect("a header value"));
    }
    response
}

const USAGE: &str = "x-business-use-case-usage";

fn usage_header(call_count: u32, minutes: u32) -> String {
    json!({"264937493375603": [{"type": "whatsapp_business_messaging", "call_count": call_count,
        "total_cputime": 1, "total_time": 1, "estimated_time_to_regain_access": minutes}]})
    .to_string()
}

fn scripted(s: Scripted) -> Response {
    graph_error(s.status, s.code, s.subcode, &s.message)
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

fn unauthorized() -> Response {
    let (status, message) = meaning(190);
    graph_error(status, 190, None, message)
}

fn invalid(what: &str) -> Response {
    graph_error(400, 100, None, &format!("(#100) {what}"))
}

async fn messages(
    State(shared): State<Arc<Shared>>,
    Path((_version, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let c = &shared.config;
    let channel = if id == c.phone_number_id {
        "whatsapp"
    } else if id == c.instagram_account_id {
        "instagram"
    } else {
        return graph_error(
            400,
            100,
            Some(33),
            &format!("Unsupported post request. Object with ID '{id}' does not exist"),
        );
    };
    let token = if channel == "whatsapp" {
        &c.access_token
    } else {
        &c.instagram_token
    };
    let response = if bearer(&headers) != Some(token.as_str()) {
        unauthorized()
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Err(_) => invalid("The request body is not JSON"),
            Ok(v) if channel == "whatsapp" => whatsapp(&shared, v),
            Ok(v) => instagram(&shared, v),
        }
    };
    let mut response = response;
    if let Some((calls, minutes)) = shared.inner().usage {
        response.headers_mut().insert(
            USAGE,
            usage_header(calls, minutes)
                .parse()
                .expect("a header value"),
        );
    }
    let code = (!response.status().is_success())
        .then(|| response.extensions().get::<ErrorCode>().map(|c| c.0))
        .flatten();
    shared.inner().requests.push(RequestRecord {
        at: Instant::now(),
        status: response.status().as_u16(),
        code,
        channel,
    });
    response
}

/// The Graph code of an error answer, for the request log.
#[derive(Clone, Copy)]
struct ErrorCode(i64);

fn tagged(mut r: Response, code: i64) -> Response {
    r.extensions_mut().insert(ErrorCode(code));
    r
}

fn err(code: i64) -> Response {
    let s = Scripted::code(code);
    tagged(scripted(s), code)
}

const WA_FIELDS: &[&str] = &[
    "messaging_product",
    "recipient_type",
    "to",
    "type",
    "text",
    "template",
    "context",
    "biz_opaque_callback_data",
    "interactive",
    "image",
    "audio",
    "document",
    "video",
    "sticker",
    "location",
    "contacts",
    "reaction",
];

fn whatsapp(shared: &Shared, v: Value) -> Response {
    let Some(obj) = v.as_object() else {
        return tagged(invalid("The request body is not an object"), 100);
    };
    if let Some(k) = obj.keys().find(|k| !WA_FIELDS.contains(&k.as_str())) {
        return tagged(invalid(&format!("Param {k} is not a valid parameter")), 100);
    }
    if v["messaging_product"] != "whatsapp" {
        return tagged(
            invalid("The parameter messaging_product is required and must be whatsapp"),
            100,
        );
    }
    if !matches!(
        v.get("recipient_type").and_then(Value::as_str),
        None | Some("individual" | "group")
    ) {
        return tagged(
            invalid("Param recipient_type must be individual or group"),
            100,
        );
    }
    let to = match v["to"].as_str() {
        Some(t)
            if !t.is_empty()
                && t.trim_start_matches('+')
                    .chars()
                    .all(|c| c.is_ascii_digit()) =>
        {
            t.trim_start_matches('+').to_string()
        }
        _ => return tagged(invalid("Param to must be a phone number"), 100),
    };
    let opaque = v
        .get("biz_opaque_callback_data")
        .map(|b| b.as_str().map(str::to_string));
    let opaque = match opaque {
        None => None,
        Some(Some(b)) if b.chars().count() <= 512 => Some(b),
        Some(_) => {
            return tagged(
                invalid(
                    "Param biz_opaque_callback_data must be a string of at most 512 characters",
                ),
                100,
            );
        }
    };
    let kind = v["type"].as_str().unwrap_or("text").to_string();
    let (text, template, parameters, marketing) = match kind.as_str() {
        "text" => {
            let body = v.pointer("/text/body").and_then(Value::as_str);
            match body {
                Some(b) if !b.is_empty() && b.chars().count() <= 4096 => {}
                _ => {
                    return tagged(
                        invalid("Param text['body'] is required and at most 4096 characters"),
                        100,
                    );
                }
            }
            if let Some(t) = v.get("text").and_then(Value::as_object)
                && t.keys().any(|k| k != "body" && k != "preview_url")
            {
                return tagged(invalid("Param text has an unknown field"), 100);
            }
            if v.pointer("/text/preview_url")
                .is_some_and(|p| !p.is_boolean())
            {
                return tagged(invalid("Param text['preview_url'] must be a boolean"), 100);
            }
            (body.map(str::to_string), None, Vec::new(), false)
        }
        "template" => {
            let name = v.pointer("/template/name").and_then(Value::as_str);
            let language = v.pointer("/template/language/code").and_then(Value::as_str);
            let (Some(name), Some(language)) = (name, language) else {
                return tagged(
                    invalid("Param template['name'] and template['language']['code'] are required"),
                    100,
                );
            };
            let mut params = Vec::new();
            for comp in v
                .pointer("/template/components")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if comp["type"] == "body" {
                    for p in comp["parameters"].as_array().into_iter().flatten() {
                        match (p["type"].as_str(), p["text"].as_str()) {
                            (Some("text"), Some(t)) if !t.is_empty() => params.push(t.to_string()),
                            _ => {
                                return tagged(
                                    invalid(
                                        "Param template['components'][0]['parameters'] must be text parameters",
                                    ),
                                    100,
                                );
                            }
                        }
                    }
                }
            }
            let found = shared
                .inner()
                .templates
                .iter()
                .find(|t| t.name == name && t.language == language && t.status == "APPROVED")
                .cloned();
            let Some(t) = found else {
                return err(132001);
            };
            if t.parameters != params.len() {
                return err(132000);
            }
            (
                Some(render(&t.body, &params)),
                Some(name.to_string()),
                params,
                t.category == "MARKETING",
            )
        }
        "interactive" | "image" | "audio" | "document" | "video" | "sticker" | "location"
        | "contacts" | "reaction" => {
            if v.get(&kind).is_none() {
                return tagged(invalid(&format!("Param {kind} is required")), 100);
            }
            (None, None, Vec::new(), false)
        }
        _ => return tagged(invalid("Param type is not a valid message type"), 100),
    };
    let mut inner = shared.inner();
    if let Some(s) = inner.script.pop_front() {
        let code = s.code;
        return tagged(scripted(s), code);
    }
    let now = Instant::now();
    if !inner.number_bucket.take(now) {
        drop(inner);
        return err(130429);
    }
    let clock = crate::clock::now() + inner.offset;
    if kind != "template" {
        let open = inner
            .wa_windows
            .get(&to)
            .is_some_and(|at| clock - *at < chrono::Duration::hours(24));
        if !open {
            drop(inner);
            return err(131047);
        }
    }
    if marketing && inner.stopped_marketing.contains(&to) {
        drop(inner);
        return err(131050);
    }
    let (interval, burst) = (shared.config.pair_interval, shared.config.pair_burst);
    let pair = inner.pairs.entry(to.clone()).or_insert_with(|| {
        Bucket::new(
            1.0 / interval.as_secs_f64().max(0.001),
            f64::from(burst.max(1)),
        )
    });
    if !pair.take(now) {
        drop(inner);
        return err(131056);
    }
    let n = inner.next;
    inner.next += 1;
    let id = format!("wamid.{}", fake_id(n));
    inner.accepted.push(Accepted {
        id: id.clone(),
        channel: "whatsapp",
        to: to.clone(),
        kind,
        text,
        template,
        parameters,
        biz_opaque_callback_data: opaque,
        messaging_type: None,
        tag: None,
        body: v.clone(),
        at: now,
        at_time: clock,
    });
    let count = inner.accepted.len();
    drop(inner);
    shared.accepted_count.send_replace(count);
    Json(json!({
        "messaging_product": "whatsapp",
        "contacts": [{"input": v["to"], "wa_id": to}],
        "messages": [{"id": id, "message_status": "accepted"}],
    }))
    .into_response()
}

fn render(body: &str, params: &[String]) -> String {
    let mut out = body.to_string();
    for (i, p) in params.iter().enumerate() {
        out = out.replace(&format!("{{{{{}}}}}", i + 1), p);
    }
    out
}

fn instagram(shared: &Shared, v: Value) -> Response {
    let Some(recipient) = v
        .pointer("/recipient/id")
        .and_then(Value::as_str)
        .filter(|r| !r.is_empty())
    else {
        return tagged(invalid("param recipient must be non-empty."), 100);
    };
    let recipient = recipient.to_string();
    let Some(text) = v.pointer("/message/text").and_then(Value::as_str) else {
        return tagged(invalid("param message must be non-empty."), 100);
    };
    if text.is_empty() || text.len() > 1000 {
        return tagged(
            invalid("Message text must be between 1 and 1000 bytes"),
            100,
        );
    }
    let messaging_type = v
        .get("messaging_type")
        .and_then(Value::as_str)
        .unwrap_or("RESPONSE");
    let tag = v.get("tag").and_then(Value::as_str);
    let horizon = match (messaging_type, tag) {
        ("RESPONSE" | "UPDATE", None) => chrono::Duration::hours(24),
        ("MESSAGE_TAG", Some("HUMAN_AGENT")) => chrono::Duration::days(7),
        ("MESSAGE_TAG", _) => return tagged(invalid("Param tag must be HUMAN_AGENT"), 100),
        _ => {
            return tagged(
                invalid("Param messaging_type must be RESPONSE, UPDATE or MESSAGE_TAG"),
                100,
            );
        }
    };
    let mut inner = shared.inner();
    if let Some(s) = inner.script.pop_front() {
        let code = s.code;
        return tagged(scripted(s), code);
    }
    let now = Instant::now();
    if !inner.ig_bucket.take(now) {
        drop(inner);
        return err(613);
    }
    let clock = crate::clock::now() + inner.offset;
    let open = inner
        .ig_windows
        .get(&recipient)
        .is_some_and(|at| clock - *at < horizon);
    if !open {
        drop(inner);
        return err(10);
    }
    let n = inner.next;
    inner.next += 1;
    let mid = format!("aWdfZAG1faWQ{}", fake_id(n));
    inner.accepted.push(Accepted {
        id: mid.clone(),
        channel: "instagram",
        to: recipient.clone(),
        kind: "text".into(),
        text: Some(text.to_string()),
        template: None,
        parameters: Vec::new(),
        biz_opaque_callback_data: None,
        messaging_type: Some(messaging_type.to_string()),
        tag: tag.map(str::to_string),
        body: v.clone(),
        at: now,
        at_time: clock,
    });
    let count = inner.accepted.len();
    drop(inner);
    shared.accepted_count.send_replace(count);
    Json(json!({"recipient_id": recipient, "message_id": mid})).into_response()
}

async fn message_templates(
    State(shared): State<Arc<Shared>>,
    Path((version, id)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let c = &shared.config;
    if bearer(&headers) != Some(c.access_token.as_str()) {
        return unauthorized();
    }
    if id != c.business_account_id {
        return graph_error(
            400,
            100,
            Some(33),
            &format!("Unsupported get request. Object with ID '{id}' does not exist"),
        );
    }
    let limit = query
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0)
        .unwrap_or(c.page_size);
    let start = query
        .get("after")
        .and_then(|a| a.strip_prefix("cursor_"))
        .and_then(|a| a.parse::<usize>().ok())
        .unwrap_or(0);
    let templates = shared.inner().templates.clone();
    let page: Vec<Value> = templates
        .iter()
        .enumerate()
        .skip(start)
        .take(limit)
        .map(|(i, t)| {
            json!({
                "name": t.name,
                "language": t.language,
                "status": t.status,
                "category": t.category,
                "id": format!("{}", 1_000_000_000_000u64 + i as u64),
                "components": [{"type": "BODY", "text": t.body}],
            })
        })
        .collect();
    let end = start + page.len();
    let mut paging =
        json!({"cursors": {"before": format!("cursor_{start}"), "after": format!("cursor_{end}")}});
    if end < templates.len() {
        paging["next"] = json!(format!(
            "{}/{version}/{id}/message_templates?limit={limit}&after=cursor_{end}",
            shared.base_url
        ));
    }
    Json(json!({"data": page, "paging": paging})).into_response()
}

async fn node(
    State(shared): State<Arc<Shared>>,
    Path((_version, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let c = &shared.config;
    if id == c.phone_number_id {
        if bearer(&headers) != Some(c.access_token.as_str()) {
            return unauthorized();
        }
        return Json(json!({
            "display_phone_number": format!("+{}", c.display_phone_number),
            "verified_name": "Warmline Test",
            "quality_rating": "GREEN",
            "id": id,
        }))
        .into_response();
    }
    if id == c.instagram_account_id {
        if bearer(&headers) != Some(c.instagram_token.as_str()) {
            return unauthorized();
        }
        return Json(json!({"username": "warmline_test", "id": id})).into_response();
    }
    graph_error(
        400,
        100,
        Some(33),
        &format!("Unsupported get request. Object with ID '{id}' does not exist"),
    )
}
