//! A faithful fake of Twilio's Messages API and webhooks, for tests and
//! benchmarks: `POST /2010-04-01/Accounts/{sid}/Messages.json` on
//! 127.0.0.1:0, answering with Twilio's shapes and error codes, and the
//! status callbacks and incoming messages Twilio would POST to the app,
//! signed with `X-Twilio-Signature`.
//!
//! What it emulates (shared doc §7 "Twilio fake"):
//! - Basic auth `AC…:token` (20003, 401); the path's account must be the
//!   authenticated one (20404, 404);
//! - form-encoded requests only; `To` (E.164, else 21211), `From` or
//!   `MessagingServiceSid` (21603 / 21606 for a `From` that is not ours),
//!   `Body` ≤ 1,600 characters (21602, 21617), `StatusCallback` an http(s)
//!   URL (21609); unknown parameters are refused (stricter than Twilio: a
//!   typo in our client must fail a test);
//! - 201 with the Message resource as in the spec (`sid` = `SM` + 32 hex,
//!   `status` `queued`, or `accepted` through a Messaging Service);
//! - opt-outs per recipient: a recipient who sent STOP is refused with
//!   21610 until START;
//! - a token bucket of `requests_per_second`: past it 429 with code 20429,
//!   and no message is created;
//! - a queue of scripted answers (21610, 21211, 20429, 30022, 500, …);
//! - status callbacks (`MessageSid`, `MessageStatus`, `ErrorCode`,
//!   `AccountSid`, `From`, `To`, `ApiVersion`, `RawDlrDoneDate`) and
//!   incoming messages (`MessageSid`, `From`, `To`, `Body`, `NumMedia`,
//!   `OptOutType` when Advanced Opt-Out is on), form-encoded and signed over
//!   the URL the app was configured with; a forged signature on request.
//!
//! Invariants: a request Twilio would refuse is refused, never accepted;
//! only created messages enter [`FakeTwilio::messages`]; a 429 creates
//! nothing.

use std::{
    collections::{BTreeSet, VecDeque},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    Router,
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use base64::Engine;
use serde_json::json;

use super::signature;

#[derive(Debug, Clone)]
pub struct FakeConfig {
    pub account_sid: String,
    pub auth_token: String,
    /// The numbers the account owns (`From` must be one of them).
    pub numbers: Vec<String>,
    /// Requests per second before 429 / 20429.
    pub requests_per_second: u32,
    /// Whether incoming keywords carry `OptOutType` (Advanced Opt-Out).
    pub advanced_opt_out: bool,
}

impl Default for FakeConfig {
    fn default() -> Self {
        Self {
            account_sid: "AC0123456789abcdef0123456789abcdef".into(),
            auth_token: "test_auth_token_0123456789abcdef".into(),
            numbers: vec!["+15005550006".into()],
            requests_per_second: 100,
            advanced_opt_out: true,
        }
    }
}

/// One message the fake created.
#[derive(Debug, Clone, PartialEq)]
pub struct SentSms {
    pub sid: String,
    pub to: String,
    pub from: Option<String>,
    pub messaging_service_sid: Option<String>,
    pub body: String,
    pub status_callback: Option<String>,
}

/// One request as the fake saw it.
#[derive(Debug, Clone)]
pub struct RequestRecord {
    pub at: Instant,
    pub status: u16,
    /// Twilio's error code, for refused requests.
    pub code: Option<u32>,
    /// The request's content type.
    pub content_type: Option<String>,
}

/// A scripted answer for the next authenticated request.
#[derive(Debug, Clone)]
pub struct Scripted {
    pub status: u16,
    pub code: u32,
    pub message: String,
}

impl Scripted {
    pub fn error(status: u16, code: u32, message: &str) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }
    pub fn opted_out() -> Self {
        Self::error(400, 21610, "Attempt to send to unsubscribed recipient")
    }
    pub fn invalid_to() -> Self {
        Self::error(
            400,
            21211,
            "The 'To' number +1555 is not a valid phone number.",
        )
    }
    pub fn not_mobile() -> Self {
        Self::error(400, 21614, "'To' number is not a valid mobile number")
    }
    pub fn too_many_requests() -> Self {
        Self::error(429, 20429, "Too Many Requests")
    }
    pub fn throughput_exceeded() -> Self {
        Self::error(429, 30022, "US A2P 10DLC - Rate limits exceeded")
    }
    pub fn server_error() -> Self {
        Self::error(500, 20500, "Internal Server Error")
    }
}

#[derive(Debug)]
struct Bucket {
    capacity: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn take(&mut self, now: Instant) -> bool {
        self.tokens = (self.tokens + now.duration_since(self.last).as_secs_f64() * self.capacity)
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

#[derive(Debug)]
struct Inner {
    bucket: Bucket,
    messages: Vec<SentSms>,
    requests: Vec<RequestRecord>,
    script: VecDeque<Scripted>,
    opted_out: BTreeSet<String>,
    next: u64,
    /// Callbacks are signed for the first base and POSTed to the second
    /// (a reverse proxy in front of the app).
    route: Option<(String, String)>,
}

struct Shared {
    config: FakeConfig,
    inner: Mutex<Inner>,
    created: tokio::sync::watch::Sender<usize>,
}

/// A running fake; stops when dropped.
pub struct FakeTwilio {
    base_url: String,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
    client: reqwest::Client,
}

impl Drop for FakeTwilio {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// The answer the app gave to a webhook.
#[derive(Debug, Clone)]
pub struct WebhookAnswer {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: String,
}

impl FakeTwilio {
    pub async fn start(config: FakeConfig) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let capacity = f64::from(config.requests_per_second.max(1));
        let shared = Arc::new(Shared {
            config,
            inner: Mutex::new(Inner {
                bucket: Bucket {
                    capacity,
                    tokens: capacity,
                    last: Instant::now(),
                },
                messages: Vec::new(),
                requests: Vec::new(),
                script: VecDeque::new(),
                opted_out: BTreeSet::new(),
                next: 1,
                route: None,
            }),
            created: tokio::sync::watch::Sender::new(0),
        });
        let app = Router::new()
            .route(
                "/2010-04-01/Accounts/{account}/Messages.json",
                post(create_message),
            )
            .route("/2010-04-01/Accounts/{account}", get(fetch_account))
            .fallback(|| async { error(404, 20404, "The requested resource was not found") })
            .with_state(shared.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        crate::install_crypto_provider();
        Ok(Self {
            base_url: format!("http://{addr}"),
            shared,
            server,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .expect("a client"),
        })
    }

    /// `http://127.0.0.1:<port>`, for `TWILIO_API_URL`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn account_sid(&self) -> &str {
        &self.shared.config.account_sid
    }

    pub fn auth_token(&self) -> &str {
        &self.shared.config.auth_token
    }

    /// The account's first number, for `TWILIO_FROM`.
    pub fn number(&self) -> &str {
        &self.shared.config.numbers[0]
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.shared.inner.lock().expect("not poisoned")
    }

    /// Every created message, in order.
    pub fn messages(&self) -> Vec<SentSms> {
        self.inner().messages.clone()
    }

    /// Every request, in order of arrival.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.inner().requests.clone()
    }

    /// Queues an answer for the next authenticated request.
    pub fn script(&self, answer: Scripted) {
        self.inner().script.push_back(answer);
    }

    /// Records that `to` replied STOP: later sends to it fail with 21610.
    pub fn opt_out(&self, to: &str) {
        self.inner().opted_out.insert(to.to_string());
    }

    /// Callbacks to URLs under `public` are signed as such and POSTed under
    /// `actual` instead (the app behind a proxy at its public URL).
    pub fn route_public_url(&self, public: &str, actual: &str) {
        self.inner().route = Some((
            public.trim_end_matches('/').to_string(),
            actual.trim_end_matches('/').to_string(),
        ));
    }

    /// The most requests that arrived in any sliding one-second window.
    pub fn max_requests_in_any_second(&self) -> usize {
        let times: Vec<Instant> = self.inner().requests.iter().map(|r| r.at).collect();
        crate::providers::test_provider::max_in_any_second(&times)
    }

    /// Waits until at least `n` messages were created; false on timeout.
    pub async fn wait_for_messages(&self, n: usize, timeout: Duration) -> bool {
        let mut rx = self.shared.created.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|c| *c >= n))
            .await
            .is_ok()
    }

    /// POSTs a status callback for message `sid` to its `StatusCallback`,
    /// signed as Twilio signs it.
    pub async fn status_callback(
        &self,
        sid: &str,
        status: &str,
        error_code: Option<&str>,
    ) -> WebhookAnswer {
        let sms = self
            .messages()
            .into_iter()
            .find(|m| m.sid == sid)
            .expect("a message the fake created");
        let url = sms.status_callback.clone().expect("a StatusCallback");
        let mut params = vec![
            ("MessageSid", sid.to_string()),
            ("SmsSid", sid.to_string()),
            ("AccountSid", self.account_sid().to_string()),
            (
                "From",
                sms.from
                    .clone()
                    .unwrap_or_else(|| self.number().to_string()),
            ),
            ("To", sms.to.clone()),
            ("MessageStatus", status.to_string()),
            ("SmsStatus", status.to_string()),
            ("ApiVersion", "2010-04-01".to_string()),
        ];
        if let Some(mg) = &sms.messaging_service_sid {
            params.push(("MessagingServiceSid", mg.clone()));
        }
        if let Some(code) = error_code {
            params.push(("ErrorCode", code.to_string()));
        }
        if matches!(status, "delivered" | "undelivered") {
            params.push(("RawDlrDoneDate", "2611261530".to_string()));
        }
        self.post_signed(&url, &params, None).await
    }

    /// POSTs an incoming message from `from` to the app's inbound URL, as
    /// Twilio would (with `OptOutType` for a keyword under Advanced
    /// Opt-Out), and applies its keyword to the fake's opt-out list.
    pub async fn incoming(&self, url: &str, from: &str, body: &str) -> WebhookAnswer {
        let sid = {
            let mut inner = self.inner();
            let n = inner.next;
            inner.next += 1;
            format!("SM{:032x}", 0xf000_0000_0000u64 + n)
        };
        self.incoming_with_sid(url, &sid, from, body).await
    }

    /// [`FakeTwilio::incoming`] with a chosen `MessageSid` (a redelivery
    /// repeats one).
    pub async fn incoming_with_sid(
        &self,
        url: &str,
        sid: &str,
        from: &str,
        body: &str,
    ) -> WebhookAnswer {
        let word = body.trim().to_ascii_uppercase();
        let opt_out_type = match word.as_str() {
            "STOP" | "STOPALL" | "UNSUBSCRIBE" | "CANCEL" | "END" | "QUIT" | "REVOKE"
            | "OPTOUT" => Some("STOP"),
            "START" | "YES" | "UNSTOP" => Some("START"),
            "HELP" | "INFO" => Some("HELP"),
            _ => None,
        };
        {
            let mut inner = self.inner();
            match opt_out_type {
                Some("STOP") => {
                    inner.opted_out.insert(from.to_string());
                }
                Some("START") => {
                    inner.opted_out.remove(from);
                }
                _ => {}
            }
        }
        let mut params = vec![
            ("MessageSid", sid.to_string()),
            ("SmsSid", sid.to_string()),
            ("SmsMessageSid", sid.to_string()),
            ("AccountSid", self.account_sid().to_string()),
            ("From", from.to_string()),
            ("To", self.number().to_string()),
            ("Body", body.to_string()),
            ("NumMedia", "0".to_string()),
            ("NumSegments", "1".to_string()),
            ("FromCountry", "US".to_string()),
            ("ApiVersion", "2010-04-01".to_string()),
        ];
        if self.shared.config.advanced_opt_out
            && let Some(t) = opt_out_type
        {
            params.push(("OptOutType", t.to_string()));
        }
        self.post_signed(url, &params, None).await
    }

    /// POSTs `params` form-encoded to `url`, signed over `url` with the
    /// auth token, or with `signature` as given (`Some("")` sends no
    /// header at all).
    pub async fn post_signed(
        &self,
        url: &str,
        params: &[(&str, String)],
        signature: Option<&str>,
    ) -> WebhookAnswer {
        let owned: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        let computed = signature::sign(self.auth_token(), url, &owned);
        let target = match &self.inner().route {
            Some((public, actual)) if url.starts_with(public.as_str()) => {
                format!("{actual}{}", &url[public.len()..])
            }
            _ => url.to_string(),
        };
        let mut request = self
            .client
            .post(target)
            .header("I-Twilio-Idempotency-Token", uuid_like(&owned))
            .form(&owned);
        match signature {
            None => request = request.header(signature::HEADER, computed),
            Some("") => {}
            Some(s) => request = request.header(signature::HEADER, s),
        }
        let response = request.send().await.expect("the app answers");
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
}

/// A stable token per delivery, as Twilio's `I-Twilio-Idempotency-Token`.
fn uuid_like(params: &[(String, String)]) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for (k, v) in params {
        h.update(k.as_bytes());
        h.update(v.as_bytes());
    }
    hex::encode(&h.finalize()[..16])
}

fn error(status: u16, code: u32, message: &str) -> Response {
    let body = json!({
        "code": code,
        "message": message,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": status,
    });
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

const KNOWN: &[&str] = &[
    "To",
    "From",
    "MessagingServiceSid",
    "Body",
    "MediaUrl",
    "StatusCallback",
    "ValidityPeriod",
    "ContentSid",
    "ContentVariables",
    "ApplicationSid",
    "MaxPrice",
    "ProvideFeedback",
    "Attempt",
    "ForceDelivery",
    "SmartEncoded",
    "PersistentAction",
    "ShortenUrls",
    "ScheduleType",
    "SendAt",
    "SendAsMms",
    "RiskCheck",
];

fn is_e164(s: &str) -> bool {
    s.strip_prefix('+').is_some_and(|d| {
        (8..=15).contains(&d.len()) && d.chars().all(|c| c.is_ascii_digit()) && !d.starts_with('0')
    })
}

fn authenticated(headers: &HeaderMap, config: &FakeConfig) -> bool {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
    else {
        return false;
    };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(value.trim()) else {
        return false;
    };
    decoded == format!("{}:{}", config.account_sid, config.auth_token).as_bytes()
}

/// `GET /2010-04-01/Accounts/{sid}.json`: the Account resource, after the
/// same authentication as a send (the doctor's credentials check).
async fn fetch_account(
    State(shared): State<Arc<Shared>>,
    Path(account): Path<String>,
    headers: HeaderMap,
) -> Response {
    let config = &shared.config;
    let Some(sid) = account.strip_suffix(".json") else {
        return error(404, 20404, "The requested resource was not found");
    };
    if !authenticated(&headers, config) {
        return error(401, 20003, "Authenticate");
    }
    if sid != config.account_sid {
        return error(404, 20404, "The requested resource was not found");
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        json!({
            "sid": sid,
            "friendly_name": "warmline fake account",
            "status": "active",
            "type": "Full",
            "uri": format!("/2010-04-01/Accounts/{sid}.json"),
        })
        .to_string(),
    )
        .into_response()
}

async fn create_message(
    State(shared): State<Arc<Shared>>,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let (status, code, response) =
        answer(&shared, &account, &headers, content_type.as_deref(), &body);
    let mut inner = shared.inner.lock().expect("not poisoned");
    inner.requests.push(RequestRecord {
        at: Instant::now(),
        status,
        code,
        content_type,
    });
    let created = inner.messages.len();
    drop(inner);
    shared.created.send_replace(created);
    response
}

/// Everything one request goes through, in Twilio's order: auth, account,
/// rate limit, script, content type, validation, opt-out, creation.
fn answer(
    shared: &Shared,
    account: &str,
    headers: &HeaderMap,
    content_type: Option<&str>,
    body: &[u8],
) -> (u16, Option<u32>, Response) {
    let config = &shared.config;
    let refuse =
        |status: u16, code: u32, message: &str| (status, Some(code), error(status, code, message));
    if !authenticated(headers, config) {
        return refuse(401, 20003, "Authenticate");
    }
    if account != config.account_sid {
        return refuse(404, 20404, "The requested resource was not found");
    }
    let mut inner = shared.inner.lock().expect("not poisoned");
    if !inner.bucket.take(Instant::now()) {
        return refuse(429, 20429, "Too Many Requests");
    }
    if let Some(s) = inner.script.pop_front() {
        return refuse(s.status, s.code, &s.message);
    }
    if !content_type.is_some_and(|c| c.starts_with("application/x-www-form-urlencoded")) {
        return refuse(
            400,
            20001,
            "Content-Type must be application/x-www-form-urlencoded",
        );
    }
    let params = signature::form_params(body);
    if let Some((k, _)) = params.iter().find(|(k, _)| !KNOWN.contains(&k.as_str())) {
        return refuse(400, 20001, &format!("Unknown parameter {k}"));
    }
    let one = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let Some(to) = one("To") else {
        return refuse(400, 21604, "A 'To' phone number is required.");
    };
    if !is_e164(&to) {
        return refuse(
            400,
            21211,
            &format!("The 'To' number {to} is not a valid phone number."),
        );
    }
    let from = one("From");
    let service = one("MessagingServiceSid");
    match (&from, &service) {
        (None, None) => {
            return refuse(
                400,
                21603,
                "A 'From' or 'MessagingServiceSid' parameter is required to send a message",
            );
        }
        (Some(f), _) if !config.numbers.contains(f) => {
            return refuse(
                400,
                21606,
                "The From phone number is not a valid, SMS-capable inbound phone number or short code for your account.",
            );
        }
        (_, Some(mg)) if !(mg.starts_with("MG") && mg.len() == 34) => {
            return refuse(400, 21701, "The Messaging Service Sid is invalid.");
        }
        _ => {}
    }
    let media = params.iter().filter(|(k, _)| k == "MediaUrl").count();
    if media > 10 {
        return refuse(400, 21623, "Too many media URLs: at most 10.");
    }
    let body_text = one("Body");
    match &body_text {
        None if media == 0 && one("ContentSid").is_none() => {
            return refuse(400, 21602, "Message body is required.");
        }
        Some(b) if b.chars().count() > 1600 => {
            return refuse(
                400,
                21617,
                "The concatenated message body exceeds the 1600 character limit.",
            );
        }
        _ => {}
    }
    if let Some(v) = one("ValidityPeriod")
        && !v.parse::<u32>().is_ok_and(|v| (1..=36000).contains(&v))
    {
        return refuse(400, 21624, "Invalid validity period value.");
    }
    let callback = one("StatusCallback");
    if let Some(cb) = &callback
        && !url::Url::parse(cb).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
    {
        return refuse(400, 21609, "Invalid StatusCallback URL.");
    }
    if inner.opted_out.contains(&to) {
        return refuse(400, 21610, "Attempt to send to unsubscribed recipient");
    }
    let sid = format!("SM{:032x}", inner.next);
    inner.next += 1;
    let body_text = body_text.unwrap_or_default();
    inner.messages.push(SentSms {
        sid: sid.clone(),
        to: to.clone(),
        from: from.clone(),
        messaging_service_sid: service.clone(),
        body: body_text.clone(),
        status_callback: callback,
    });
    let now = chrono::Utc::now()
        .format("%a, %d %b %Y %H:%M:%S +0000")
        .to_string();
    let segments = if service.is_some() {
        0
    } else {
        body_text.chars().count().div_ceil(153).max(1)
    };
    let resource = json!({
        "account_sid": config.account_sid,
        "api_version": "2010-04-01",
        "body": body_text,
        "date_created": now,
        "date_sent": null,
        "date_updated": now,
        "direction": "outbound-api",
        "error_code": null,
        "error_message": null,
        "from": from,
        "messaging_service_sid": service,
        "num_media": media.to_string(),
        "num_segments": segments.to_string(),
        "price": null,
        "price_unit": "USD",
        "sid": sid,
        "status": if service.is_some() { "accepted" } else { "queued" },
        "subresource_uris": {"media": format!("/2010-04-01/Accounts/{}/Messages/{sid}/Media.json", config.account_sid)},
        "to": to,
        "uri": format!("/2010-04-01/Accounts/{}/Messages/{sid}.json", config.account_sid),
    });
    (
        201,
        None,
        (
            StatusCode::CREATED,
            [(header::CONTENT_TYPE, "application/json")],
            resource.to_string(),
        )
            .into_response(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e164_is_a_plus_and_8_to_15_digits() {
        assert!(is_e164("+14155550100"));
        assert!(!is_e164("14155550100"));
        assert!(!is_e164("+1415"));
        assert!(!is_e164("+0123456789"));
        assert!(!is_e164("+1415555010a"));
    }

    #[test]
    fn the_bucket_refuses_past_its_rate() {
        let start = Instant::now();
        let mut b = Bucket {
            capacity: 2.0,
            tokens: 2.0,
            last: start,
        };
        assert!(b.take(start));
        assert!(b.take(start));
        assert!(!b.take(start));
        assert!(b.take(start + Duration::from_millis(500)));
    }
}
