//! A faithful fake of Resend's sending API, for tests and benchmarks:
//! `POST /emails` and `POST /emails/batch` on 127.0.0.1:0, answering with
//! Resend's shapes, error names and headers.
//!
//! It adds what the official OpenAPI spec (used by the Prism contract
//! tests) does not say: Bearer auth (`missing_api_key` 401, `invalid_api_key`
//! 403), field validation as Resend documents it (batch ≤ 100, no
//! `attachments` / `scheduled_at` in batch, `tags` configurable), batch
//! validation modes, idempotency (same key and body: the first answer
//! replayed byte for byte and nothing sent again; other body: 409
//! `invalid_idempotent_request`; in flight: 409
//! `concurrent_idempotent_requests`; over 256 characters: 400), a token
//! bucket rate limit with `ratelimit-limit/-remaining/-reset` on every
//! answer and 429 `rate_limit_exceeded` + `retry-after` past it, and a queue
//! of scripted failures (quota, 5xx, …).
//!
//! Invariants: it is strict — a request the real API would refuse is
//! refused, never accepted; it is stricter than Resend in one place, unknown
//! fields (Resend ignores them; a typo in our client should fail a test).
//! Only accepted emails enter [`FakeResend::emails`]; a replay adds nothing.
//! Only 2xx answers are remembered under their idempotency key, so a retry
//! after an error is processed afresh.

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    Router,
    body::Bytes,
    extract::{DefaultBodyLimit, State},
    http::{HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
};
use base64::Engine;
use serde::Serialize;
use serde_json::{Value, json};

/// Resend's caps.
const MAX_RECIPIENTS: usize = 50;
const MAX_BATCH: usize = 100;
const MAX_KEY_LEN: usize = 256;
const MAX_ATTACHMENTS_BYTES: usize = 40 * 1024 * 1024;
const MAX_SCHEDULE: chrono::Duration = chrono::Duration::days(30);

/// What the fake does with `tags` in batch items (one snapshot of Resend's
/// docs says they are not supported there yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchTags {
    Accept,
    /// 422 `validation_error` naming `tags`.
    Reject,
    /// Accepted, and the tags silently dropped.
    Drop,
}

#[derive(Debug, Clone)]
pub struct FakeConfig {
    /// The one valid key.
    pub api_key: String,
    /// Requests per second: a token bucket holding this many tokens,
    /// refilled at this rate (Resend's limit is per second, per team).
    pub requests_per_second: u32,
    pub batch_tags: BatchTags,
    /// How long an idempotency key is remembered (Resend: 24 h).
    pub idempotency_ttl: Duration,
    /// Time each request spends "processing" (after its key is marked in
    /// flight), so concurrent requests can be observed.
    pub latency: Duration,
}

impl Default for FakeConfig {
    fn default() -> Self {
        Self {
            api_key: "re_test_0123456789abcdef".into(),
            requests_per_second: 2,
            batch_tags: BatchTags::Accept,
            idempotency_ttl: Duration::from_secs(24 * 3600),
            latency: Duration::ZERO,
        }
    }
}

/// One email the fake accepted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SentEmail {
    pub id: String,
    pub from: String,
    pub to: Vec<String>,
    pub subject: String,
    pub text: Option<String>,
    pub html: Option<String>,
    pub reply_to: Vec<String>,
    pub headers: BTreeMap<String, String>,
    /// `(name, value)` pairs.
    pub tags: Vec<(String, String)>,
    pub scheduled_at: Option<String>,
    pub idempotency_key: Option<String>,
    pub batch: bool,
}

impl SentEmail {
    pub fn tag(&self, name: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One request as the fake saw it.
#[derive(Debug, Clone)]
pub struct RequestRecord {
    pub at: Instant,
    pub path: &'static str,
    pub status: u16,
    /// Resend's error name, for refused requests.
    pub error: Option<String>,
    pub idempotency_key: Option<String>,
    pub batch_validation: Option<String>,
    pub user_agent: Option<String>,
    pub replayed: bool,
}

/// A scripted answer, given to the next request that passes auth and the
/// rate limit, in place of processing it.
#[derive(Debug, Clone)]
pub struct Scripted {
    pub status: u16,
    pub name: String,
    pub message: String,
    pub retry_after_secs: Option<u64>,
    /// A body that is not Resend's JSON (a proxy's error page).
    pub raw_body: Option<String>,
}

impl Scripted {
    pub fn error(status: u16, name: &str, message: &str) -> Self {
        Self {
            status,
            name: name.into(),
            message: message.into(),
            retry_after_secs: None,
            raw_body: None,
        }
    }
    pub fn daily_quota_exceeded() -> Self {
        Self::error(
            429,
            "daily_quota_exceeded",
            "You have reached your daily email sending quota.",
        )
    }
    pub fn monthly_quota_exceeded() -> Self {
        Self::error(
            429,
            "monthly_quota_exceeded",
            "You have reached your monthly email sending quota.",
        )
    }
    pub fn application_error() -> Self {
        Self::error(
            500,
            "application_error",
            "An unexpected error occurred, please try again later.",
        )
    }
    pub fn service_unavailable() -> Self {
        Self::error(
            503,
            "service_unavailable",
            "The service is temporarily unavailable.",
        )
    }
    pub fn resource_locked() -> Self {
        Self::error(
            409,
            "resource_locked",
            "The resource is being updated by another request.",
        )
    }
    /// A gateway error page, not JSON.
    pub fn bad_gateway_page() -> Self {
        Self {
            raw_body: Some("<html><body>502 Bad Gateway</body></html>".into()),
            ..Self::error(502, "", "")
        }
    }
}

/// A refusal: `{"statusCode", "message", "name"}`.
#[derive(Debug, Clone, PartialEq)]
struct Refusal {
    status: u16,
    name: &'static str,
    message: String,
}

impl Refusal {
    fn new(status: u16, name: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            name,
            message: message.into(),
        }
    }
    fn invalid(message: impl Into<String>) -> Self {
        Self::new(422, "validation_error", message)
    }
    fn missing(field: &str) -> Self {
        Self::new(
            422,
            "missing_required_field",
            format!("The `{field}` field is missing."),
        )
    }
}

fn error_body(status: u16, name: &str, message: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({"statusCode": status, "message": message, "name": name}))
        .expect("plain data serialises")
}

/// The token bucket.
#[derive(Debug)]
struct Bucket {
    capacity: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn refill(&mut self, now: Instant) {
        let rate = self.capacity;
        self.tokens =
            (self.tokens + now.duration_since(self.last).as_secs_f64() * rate).min(self.capacity);
        self.last = now;
    }

    /// Takes a token, or says how long until one is there.
    fn take(&mut self, now: Instant) -> Result<(), Duration> {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / self.capacity))
        }
    }

    /// `ratelimit-limit`, `-remaining`, `-reset` (whole seconds until full).
    fn headers(&mut self, now: Instant) -> [(&'static str, String); 3] {
        self.refill(now);
        let reset = ((self.capacity - self.tokens) / self.capacity).ceil() as u64;
        [
            ("ratelimit-limit", format!("{}", self.capacity as u64)),
            (
                "ratelimit-remaining",
                format!("{}", self.tokens.floor() as u64),
            ),
            ("ratelimit-reset", reset.to_string()),
        ]
    }
}

#[derive(Debug)]
enum KeyEntry {
    InFlight {
        fingerprint: (&'static str, Value),
    },
    Done {
        fingerprint: (&'static str, Value),
        status: u16,
        body: Vec<u8>,
        at: Instant,
    },
}

#[derive(Debug)]
struct Inner {
    bucket: Bucket,
    keys: HashMap<String, KeyEntry>,
    emails: Vec<SentEmail>,
    requests: Vec<RequestRecord>,
    script: VecDeque<Scripted>,
    rate_limited: u64,
    replays: u64,
    /// Added to the clock for idempotency expiry (an injectable clock).
    clock_offset: Duration,
}

struct Shared {
    config: FakeConfig,
    inner: Mutex<Inner>,
    accepted: tokio::sync::watch::Sender<usize>,
}

/// A running fake; stops when dropped.
pub struct FakeResend {
    base_url: String,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeResend {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Starts a fake on 127.0.0.1:0.
pub async fn start(config: FakeConfig) -> std::io::Result<FakeResend> {
    FakeResend::start(config).await
}

impl FakeResend {
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
                keys: HashMap::new(),
                emails: Vec::new(),
                requests: Vec::new(),
                script: VecDeque::new(),
                rate_limited: 0,
                replays: 0,
                clock_offset: Duration::ZERO,
            }),
            accepted: tokio::sync::watch::Sender::new(0),
        });
        let app = Router::new()
            .route("/emails", post(send_single))
            .route("/emails/batch", post(send_batch))
            .method_not_allowed_fallback(|| async {
                plain_error(405, "method_not_allowed", "Method not allowed.")
            })
            .fallback(|| async {
                plain_error(404, "not_found", "The requested endpoint does not exist.")
            })
            // 100 emails with attachments of up to 40 MB are the real bound;
            // this is plenty for tests.
            .layer(DefaultBodyLimit::max(64 * 1024 * 1024))
            .with_state(shared.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            base_url: format!("http://{addr}"),
            shared,
            server,
        })
    }

    /// `http://127.0.0.1:<port>`, for `RESEND_API_URL`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn api_key(&self) -> &str {
        &self.shared.config.api_key
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.shared.inner.lock().expect("not poisoned")
    }

    /// Every accepted email, in order.
    pub fn emails(&self) -> Vec<SentEmail> {
        self.inner().emails.clone()
    }

    /// Every request, in order of arrival.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.inner().requests.clone()
    }

    pub fn request_count(&self) -> usize {
        self.inner().requests.len()
    }

    /// Requests refused with 429 `rate_limit_exceeded`.
    pub fn rate_limited(&self) -> u64 {
        self.inner().rate_limited
    }

    /// Idempotency keys whose request is being processed right now.
    pub fn in_flight(&self) -> usize {
        self.inner()
            .keys
            .values()
            .filter(|e| matches!(e, KeyEntry::InFlight { .. }))
            .count()
    }

    /// Requests answered from the idempotency store.
    pub fn replays(&self) -> u64 {
        self.inner().replays
    }

    /// Queues an answer for the next request.
    pub fn script(&self, answer: Scripted) {
        self.inner().script.push_back(answer);
    }

    /// Moves the idempotency clock forward (the 24 h window).
    pub fn advance_clock(&self, by: Duration) {
        self.inner().clock_offset += by;
    }

    /// The most requests that arrived in any sliding one-second window.
    pub fn max_requests_in_any_second(&self) -> usize {
        let times: Vec<Instant> = self.inner().requests.iter().map(|r| r.at).collect();
        crate::providers::test_provider::max_in_any_second(&times)
    }

    /// Waits until at least `n` emails were accepted; false on timeout.
    pub async fn wait_for_emails(&self, n: usize, timeout: Duration) -> bool {
        let mut rx = self.shared.accepted.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|c| *c >= n))
            .await
            .is_ok()
    }
}

fn plain_error(status: u16, name: &str, message: &str) -> Response {
    respond(status, error_body(status, name, message), &[])
}

fn respond(status: u16, body: Vec<u8>, headers: &[(&'static str, String)]) -> Response {
    let mut response = (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        body,
    )
        .into_response();
    let h = response.headers_mut();
    h.insert("content-type", HeaderValue::from_static("application/json"));
    for (name, value) in headers {
        if let Ok(v) = HeaderValue::from_str(value) {
            h.insert(*name, v);
        }
    }
    response
}

#[derive(Clone, Copy)]
enum Endpoint {
    Single,
    Batch,
}

impl Endpoint {
    fn path(self) -> &'static str {
        match self {
            Endpoint::Single => "/emails",
            Endpoint::Batch => "/emails/batch",
        }
    }
}

async fn send_single(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(shared, Endpoint::Single, headers, body).await
}

async fn send_batch(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(shared, Endpoint::Batch, headers, body).await
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// Everything one request goes through, in Resend's order: auth, rate
/// limit, (script), key, body, idempotency, validation, acceptance.
async fn handle(
    shared: Arc<Shared>,
    endpoint: Endpoint,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let key = header(&headers, "idempotency-key");
    let mut record = RequestRecord {
        at: Instant::now(),
        path: endpoint.path(),
        status: 0,
        error: None,
        idempotency_key: key.clone(),
        batch_validation: header(&headers, "x-batch-validation"),
        user_agent: header(&headers, "user-agent"),
        replayed: false,
    };
    let (status, body, extra) = process(&shared, endpoint, &headers, &body, key, &mut record).await;
    let mut inner = shared.inner.lock().expect("not poisoned");
    let now = Instant::now();
    let mut all: Vec<(&'static str, String)> = inner.bucket.headers(now).to_vec();
    all.extend(extra);
    record.status = status;
    inner.requests.push(record);
    drop(inner);
    respond(status, body, &all)
}

type Answer = (u16, Vec<u8>, Vec<(&'static str, String)>);

fn refusal(record: &mut RequestRecord, r: Refusal) -> Answer {
    record.error = Some(r.name.to_string());
    (
        r.status,
        error_body(r.status, r.name, &r.message),
        Vec::new(),
    )
}

async fn process(
    shared: &Shared,
    endpoint: Endpoint,
    headers: &HeaderMap,
    raw: &[u8],
    key: Option<String>,
    record: &mut RequestRecord,
) -> Answer {
    let config = &shared.config;
    // Auth.
    match header(headers, "authorization") {
        None => {
            return refusal(
                record,
                Refusal::new(
                    401,
                    "missing_api_key",
                    "Missing API key in the authorization header. Include the following header in the request: Authorization: Bearer YOUR_API_KEY",
                ),
            );
        }
        Some(h) if h != format!("Bearer {}", config.api_key) => {
            return refusal(
                record,
                Refusal::new(403, "invalid_api_key", "API key is invalid"),
            );
        }
        Some(_) => {}
    }
    // Rate limit, then the script.
    {
        let mut inner = shared.inner.lock().expect("not poisoned");
        if let Err(wait) = inner.bucket.take(Instant::now()) {
            inner.rate_limited += 1;
            drop(inner);
            let (status, body, _) = refusal(
                record,
                Refusal::new(
                    429,
                    "rate_limit_exceeded",
                    format!(
                        "Too many requests. You can only make {} requests per second. See rate limit response headers for more information. Or contact support to increase rate limit.",
                        config.requests_per_second
                    ),
                ),
            );
            let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
            return (status, body, vec![("retry-after", secs.to_string())]);
        }
        if let Some(s) = inner.script.pop_front() {
            drop(inner);
            record.error = Some(s.name.clone());
            let body = match s.raw_body {
                Some(raw) => raw.into_bytes(),
                None => error_body(s.status, &s.name, &s.message),
            };
            let extra = s
                .retry_after_secs
                .map(|r| vec![("retry-after", r.to_string())])
                .unwrap_or_default();
            return (s.status, body, extra);
        }
    }
    if let Some(k) = &key
        && (k.is_empty() || k.chars().count() > MAX_KEY_LEN)
    {
        return refusal(
            record,
            Refusal::new(
                400,
                "invalid_idempotency_key",
                "The key must be between 1-256 chars.",
            ),
        );
    }
    let Ok(body) = serde_json::from_slice::<Value>(raw) else {
        return refusal(
            record,
            Refusal::new(
                400,
                "validation_error",
                "The request body is not valid JSON.",
            ),
        );
    };
    // Idempotency: replay, conflict, or mark in flight.
    if let Some(k) = &key {
        let fingerprint = (endpoint.path(), body.clone());
        let mut inner = shared.inner.lock().expect("not poisoned");
        let now = Instant::now() + inner.clock_offset;
        let expired = matches!(inner.keys.get(k), Some(KeyEntry::Done { at, .. }) if now.duration_since(*at) >= config.idempotency_ttl);
        if expired {
            inner.keys.remove(k);
        }
        match inner.keys.get(k) {
            Some(KeyEntry::Done {
                fingerprint: f,
                status,
                body,
                ..
            }) if *f == fingerprint => {
                let answer = (*status, body.clone(), Vec::new());
                inner.replays += 1;
                record.replayed = true;
                return answer;
            }
            Some(KeyEntry::InFlight { fingerprint: f }) if *f == fingerprint => {
                drop(inner);
                return refusal(
                    record,
                    Refusal::new(
                        409,
                        "concurrent_idempotent_requests",
                        "Same idempotency key used while original request is still in progress. Try the request again later.",
                    ),
                );
            }
            Some(_) => {
                drop(inner);
                return refusal(
                    record,
                    Refusal::new(
                        409,
                        "invalid_idempotent_request",
                        "Same idempotency key used with a different request payload. Change your idempotency key or payload.",
                    ),
                );
            }
            None => {
                inner
                    .keys
                    .insert(k.clone(), KeyEntry::InFlight { fingerprint });
            }
        }
    }
    if !config.latency.is_zero() {
        tokio::time::sleep(config.latency).await;
    }
    let outcome = match endpoint {
        Endpoint::Single => validate_email(&body, false, config.batch_tags).map(|e| vec![Ok(e)]),
        Endpoint::Batch => validate_batch(&body, headers, config.batch_tags),
    };
    let answer = match outcome {
        Err(r) => refusal(record, r),
        Ok(items) => {
            let mut inner = shared.inner.lock().expect("not poisoned");
            let mut data = Vec::new();
            let mut errors = Vec::new();
            for (index, item) in items.into_iter().enumerate() {
                match item {
                    Ok(mut email) => {
                        email.id = uuid::Uuid::new_v4().to_string();
                        email.idempotency_key = key.clone();
                        email.batch = matches!(endpoint, Endpoint::Batch);
                        data.push(json!({"id": email.id}));
                        inner.emails.push(email);
                    }
                    Err(r) => errors.push(json!({"index": index, "message": r.message})),
                }
            }
            shared.accepted.send_replace(inner.emails.len());
            let body = match endpoint {
                Endpoint::Single => data.pop().expect("one email"),
                Endpoint::Batch if errors.is_empty() => json!({"data": data}),
                Endpoint::Batch => json!({"data": data, "errors": errors}),
            };
            (
                200,
                serde_json::to_vec(&body).expect("plain data serialises"),
                Vec::new(),
            )
        }
    };
    let mut inner = shared.inner.lock().expect("not poisoned");
    if let Some(k) = &key {
        // Only successes are remembered: a refused request sent nothing.
        if answer.0 == 200 {
            let fingerprint = (endpoint.path(), body);
            let at = Instant::now() + inner.clock_offset;
            inner.keys.insert(
                k.clone(),
                KeyEntry::Done {
                    fingerprint,
                    status: answer.0,
                    body: answer.1.clone(),
                    at,
                },
            );
        } else {
            inner.keys.remove(k);
        }
    }
    answer
}

/// The items of a batch: strict mode refuses the batch for its first
/// invalid email; permissive mode returns each email's own verdict.
#[allow(clippy::type_complexity)]
fn validate_batch(
    body: &Value,
    headers: &HeaderMap,
    tags: BatchTags,
) -> Result<Vec<Result<SentEmail, Refusal>>, Refusal> {
    let permissive = match header(headers, "x-batch-validation").as_deref() {
        None | Some("strict") => false,
        Some("permissive") => true,
        Some(_) => {
            return Err(Refusal::new(
                422,
                "invalid_parameter",
                "`x-batch-validation` must be `strict` or `permissive`.",
            ));
        }
    };
    let Some(items) = body.as_array() else {
        return Err(Refusal::invalid(
            "The request body must be an array of emails.",
        ));
    };
    if items.is_empty() {
        return Err(Refusal::invalid(
            "The batch must contain at least one email.",
        ));
    }
    if items.len() > MAX_BATCH {
        return Err(Refusal::invalid(format!(
            "Too many emails in the batch: {} (at most {MAX_BATCH}).",
            items.len()
        )));
    }
    let verdicts: Vec<Result<SentEmail, Refusal>> = items
        .iter()
        .map(|item| validate_email(item, true, tags))
        .collect();
    if !permissive && let Some((i, Err(r))) = verdicts.iter().enumerate().find(|(_, v)| v.is_err())
    {
        return Err(Refusal {
            message: format!("emails[{i}]: {}", r.message),
            ..r.clone()
        });
    }
    Ok(verdicts)
}

const KNOWN_FIELDS: &[&str] = &[
    "from",
    "to",
    "subject",
    "bcc",
    "cc",
    "reply_to",
    "html",
    "text",
    "template",
    "headers",
    "scheduled_at",
    "attachments",
    "tags",
    "topic_id",
];

/// One `SendEmailRequest`, as Resend checks it.
fn validate_email(v: &Value, in_batch: bool, batch_tags: BatchTags) -> Result<SentEmail, Refusal> {
    let Some(obj) = v.as_object() else {
        return Err(Refusal::invalid("An email must be a JSON object."));
    };
    if let Some(unknown) = obj.keys().find(|k| !KNOWN_FIELDS.contains(&k.as_str())) {
        return Err(Refusal::new(
            422,
            "invalid_parameter",
            format!("Unknown field `{unknown}`."),
        ));
    }
    let string = |field: &str| -> Result<Option<String>, Refusal> {
        match obj.get(field) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(Refusal::invalid(format!(
                "The `{field}` field must be a string."
            ))),
        }
    };
    let from = string("from")?.ok_or_else(|| Refusal::missing("from"))?;
    if !is_mailbox(&from) {
        return Err(Refusal::invalid(
            "Invalid `from` field. The email address needs to follow the `email@example.com` or `Name <email@example.com>` format.",
        ));
    }
    let to = match obj.get("to") {
        None => return Err(Refusal::missing("to")),
        Some(v) => addresses("to", v)?,
    };
    if to.is_empty() {
        return Err(Refusal::missing("to"));
    }
    if to.len() > MAX_RECIPIENTS {
        return Err(Refusal::invalid(format!(
            "Too many recipients in `to`: at most {MAX_RECIPIENTS}."
        )));
    }
    let subject = string("subject")?.ok_or_else(|| Refusal::missing("subject"))?;
    for field in ["cc", "bcc"] {
        if let Some(v) = obj.get(field) {
            addresses(field, v)?;
        }
    }
    let reply_to = match obj.get("reply_to") {
        Some(v) => addresses("reply_to", v)?,
        None => Vec::new(),
    };
    let html = string("html")?;
    let text = string("text")?;
    match obj.get("template") {
        Some(t) => {
            if html.is_some() || text.is_some() {
                return Err(Refusal::invalid(
                    "`template` cannot be combined with `html` or `text`.",
                ));
            }
            let ok = t.get("id").is_some_and(Value::is_string)
                && t.get("variables").is_none_or(|vars| {
                    vars.as_object()
                        .is_some_and(|m| m.values().all(|x| x.is_string() || x.is_number()))
                });
            if !ok {
                return Err(Refusal::invalid(
                    "Invalid `template` field: it needs an `id` and string or number `variables`.",
                ));
            }
        }
        None if html.is_none() && text.is_none() => {
            return Err(Refusal::invalid("Missing `html` or `text` field."));
        }
        None => {}
    }
    let mut headers = BTreeMap::new();
    if let Some(h) = obj.get("headers") {
        let Some(map) = h.as_object() else {
            return Err(Refusal::invalid("The `headers` field must be an object."));
        };
        for (name, value) in map {
            let Some(value) = value.as_str() else {
                return Err(Refusal::invalid(format!(
                    "Header `{name}` must have a string value."
                )));
            };
            headers.insert(name.clone(), value.to_string());
        }
    }
    let mut tags = Vec::new();
    if let Some(t) = obj.get("tags") {
        if in_batch && batch_tags == BatchTags::Reject {
            return Err(Refusal::invalid(
                "The `tags` field is not supported in batch emails.",
            ));
        }
        let Some(list) = t.as_array() else {
            return Err(Refusal::invalid("The `tags` field must be an array."));
        };
        for tag in list {
            let name = tag.get("name").and_then(Value::as_str);
            let value = match tag.get("value") {
                None => Some(""),
                Some(v) => v.as_str(),
            };
            let (Some(name), Some(value)) = (name, value) else {
                return Err(Refusal::invalid(
                    "Each tag needs a string `name` and a string `value`.",
                ));
            };
            if !tag_ok(name) || !(value.is_empty() || tag_ok(value)) {
                return Err(Refusal::invalid(
                    "Invalid `tags` field: names and values may only contain ASCII letters (a–z, A–Z), numbers (0–9), underscores (_), or dashes (-), at most 256 characters.",
                ));
            }
            tags.push((name.to_string(), value.to_string()));
        }
        if in_batch && batch_tags == BatchTags::Drop {
            tags.clear();
        }
    }
    if let Some(a) = obj.get("attachments") {
        if in_batch {
            return Err(Refusal::invalid(
                "The `attachments` field is not supported in batch emails.",
            ));
        }
        check_attachments(a)?;
    }
    let scheduled_at = string("scheduled_at")?;
    if let Some(when) = &scheduled_at {
        if in_batch {
            return Err(Refusal::invalid(
                "The `scheduled_at` field is not supported in batch emails.",
            ));
        }
        check_schedule(when)?;
    }
    string("topic_id")?;
    Ok(SentEmail {
        id: String::new(),
        from,
        to,
        subject,
        text,
        html,
        reply_to,
        headers,
        tags,
        scheduled_at,
        idempotency_key: None,
        batch: false,
    })
}

fn tag_ok(s: &str) -> bool {
    super::is_tag_safe(s)
}

use super::is_mailbox;

/// A string or an array of strings, each a mailbox.
fn addresses(field: &str, v: &Value) -> Result<Vec<String>, Refusal> {
    let list: Vec<String> = match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                Refusal::invalid(format!(
                    "The `{field}` field must be a string or an array of strings."
                ))
            })?,
        _ => {
            return Err(Refusal::invalid(format!(
                "The `{field}` field must be a string or an array of strings."
            )));
        }
    };
    if list.iter().any(|a| !is_mailbox(a)) {
        return Err(Refusal::invalid(format!(
            "Invalid `{field}` field. The email address needs to follow the `email@example.com` or `Name <email@example.com>` format."
        )));
    }
    Ok(list)
}

fn check_attachments(a: &Value) -> Result<(), Refusal> {
    let bad = |m: &str| Refusal::new(422, "invalid_attachment", m.to_string());
    let Some(list) = a.as_array() else {
        return Err(bad("The `attachments` field must be an array."));
    };
    let mut total = 0usize;
    for item in list {
        let content = item.get("content").and_then(Value::as_str);
        let path = item.get("path").and_then(Value::as_str);
        match (content, path) {
            (Some(c), _) => {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(c)
                    .map_err(|_| bad("Attachment `content` must be base64."))?;
                total += decoded.len();
            }
            (None, Some(_)) => {}
            (None, None) => return Err(bad("An attachment needs `content` or `path`.")),
        }
        if item.get("filename").and_then(Value::as_str).is_none() && content.is_some() {
            return Err(bad("An attachment with `content` needs a `filename`."));
        }
    }
    if total > MAX_ATTACHMENTS_BYTES {
        return Err(bad("Attachments exceed 40 MB."));
    }
    Ok(())
}

/// ISO 8601, or Resend's natural language `in N minutes|hours|days`; at
/// most 30 days ahead.
fn check_schedule(when: &str) -> Result<(), Refusal> {
    let now = chrono::Utc::now();
    let at = match chrono::DateTime::parse_from_rfc3339(when) {
        Ok(t) => t.with_timezone(&chrono::Utc),
        Err(_) => {
            let words: Vec<&str> = when.split_whitespace().collect();
            let parsed = match words.as_slice() {
                ["in", n, unit] => n.parse::<i64>().ok().and_then(|n| {
                    let per = match unit.trim_end_matches('s') {
                        "min" | "minute" => 60,
                        "hour" => 3600,
                        "day" => 86400,
                        _ => return None,
                    };
                    Some(now + chrono::Duration::seconds(n * per))
                }),
                _ => None,
            };
            parsed.ok_or_else(|| {
                Refusal::invalid("Invalid `scheduled_at` field: use ISO 8601 or e.g. `in 1 min`.")
            })?
        }
    };
    if at > now + MAX_SCHEDULE {
        return Err(Refusal::invalid(
            "`scheduled_at` may be at most 30 days in the future.",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email() -> Value {
        json!({"from": "Acme <a@acme.test>", "to": ["b@example.com"], "subject": "Hi", "text": "Hello"})
    }

    #[test]
    fn a_plain_email_passes_and_required_fields_are_named() {
        assert!(validate_email(&email(), false, BatchTags::Accept).is_ok());
        for field in ["from", "to", "subject"] {
            let mut e = email();
            e.as_object_mut().unwrap().remove(field);
            let r = validate_email(&e, false, BatchTags::Accept).unwrap_err();
            assert_eq!(r.name, "missing_required_field");
            assert!(r.message.contains(field), "{}", r.message);
        }
    }

    #[test]
    fn bad_fields_are_refused() {
        let cases = [
            json!({"to": "not-an-address"}),
            json!({"to": (0..51).map(|i| format!("u{i}@example.com")).collect::<Vec<_>>()}),
            json!({"tags": [{"name": "bad name", "value": "x"}]}),
            json!({"tags": [{"name": "a".repeat(257), "value": "x"}]}),
            json!({"template": {"id": "t"}}),
            json!({"scheduled_at": "next tuesday-ish"}),
            json!({"headers": {"X-A": 1}}),
            json!({"subjet": "typo"}),
            json!({"attachments": [{"filename": "a.txt", "content": "***"}]}),
        ];
        for extra in cases {
            let mut e = email();
            for (k, v) in extra.as_object().unwrap() {
                e[k] = v.clone();
            }
            assert!(
                validate_email(&e, false, BatchTags::Accept).is_err(),
                "{extra} should be refused"
            );
        }
        let mut html_only = email();
        html_only.as_object_mut().unwrap().remove("text");
        html_only["html"] = json!("<p>x</p>");
        assert!(validate_email(&html_only, false, BatchTags::Accept).is_ok());
        html_only.as_object_mut().unwrap().remove("html");
        assert!(validate_email(&html_only, false, BatchTags::Accept).is_err());
    }

    #[test]
    fn batch_items_take_no_attachments_nor_schedules_and_tags_as_configured() {
        let mut a = email();
        a["attachments"] = json!([{"filename": "a.txt", "content": "aGk="}]);
        assert!(validate_email(&a, false, BatchTags::Accept).is_ok());
        assert!(validate_email(&a, true, BatchTags::Accept).is_err());
        let mut s = email();
        s["scheduled_at"] = json!("in 1 min");
        assert!(validate_email(&s, false, BatchTags::Accept).is_ok());
        assert!(validate_email(&s, true, BatchTags::Accept).is_err());
        let mut t = email();
        t["tags"] = json!([{"name": "k", "value": "v"}]);
        assert_eq!(
            validate_email(&t, true, BatchTags::Accept)
                .unwrap()
                .tags
                .len(),
            1
        );
        assert!(
            validate_email(&t, true, BatchTags::Drop)
                .unwrap()
                .tags
                .is_empty()
        );
        let r = validate_email(&t, true, BatchTags::Reject).unwrap_err();
        assert!(r.message.contains("tags"));
    }

    #[test]
    fn the_bucket_allows_its_rate_and_no_more() {
        let start = Instant::now();
        let mut b = Bucket {
            capacity: 2.0,
            tokens: 2.0,
            last: start,
        };
        assert!(b.take(start).is_ok());
        assert!(b.take(start).is_ok());
        let wait = b.take(start).unwrap_err();
        assert_eq!(wait, Duration::from_millis(500));
        assert!(b.take(start + Duration::from_millis(500)).is_ok());
        // Steady 2/s never runs dry.
        for i in 1..=20 {
            assert!(b.take(start + Duration::from_millis(500 + 500 * i)).is_ok());
        }
        let h = b.headers(start + Duration::from_millis(10_500));
        assert_eq!(h[1], ("ratelimit-remaining", "0".to_string()));
        assert_eq!(h[2], ("ratelimit-reset", "1".to_string()));
    }
}
