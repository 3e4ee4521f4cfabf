//! A fake Slack Web API (and Socket Mode WebSocket) on 127.0.0.1:0.
//!
//! `POST /api/{method}` checks the bearer token as Slack does (a bad one is a
//! 200 with `{"ok":false,"error":"invalid_auth"}`), records the call, and
//! answers with a body shaped like Slack's documented samples, so
//! slack-morphism's strict typed responses parse. Tests can queue scripted
//! answers per method (429 + `Retry-After`, HTTP 500, `ok:false`, a delay),
//! and wait for the n-th call of a method without sleeping.
//!
//! Socket Mode: `apps.connections.open` (with an `xapp-` token) returns
//! `ws://…/socket`; each connection is greeted with `hello`, tests push
//! envelopes with [`FakeSlack::push_envelope`] and read the client's acks.

use std::{
    collections::{HashMap, VecDeque},
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{
        Path, RawQuery, State,
        ws::{Message, WebSocket, WebSocketUpgrade},
    },
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{any, post},
};
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

/// How long any wait on the fake may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(15);

/// One Web API call the fake received.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    /// The JSON body, or a form body as a JSON object of strings.
    pub body: Value,
    pub token: Option<String>,
}

/// A scripted answer for the next call of a method.
#[derive(Debug, Clone)]
pub enum Scripted {
    /// HTTP 429, `Retry-After: secs`, `{"ok":false,"error":"ratelimited"}`.
    RateLimited { retry_after_secs: u64 },
    /// HTTP 500 with a plain-text body.
    ServerError,
    /// HTTP 200 `{"ok":false,"error":code}`.
    Error(&'static str),
    /// Wait, then answer as usual.
    Delay(Duration),
}

#[derive(Default)]
struct Inner {
    /// Calls whose answer has been sent (or is being sent).
    calls: Vec<Call>,
    /// Calls received, before any scripted delay.
    arrivals: Vec<String>,
    scripts: HashMap<String, VecDeque<Scripted>>,
    /// Open Socket Mode connections, in connection order.
    sockets: Vec<mpsc::UnboundedSender<String>>,
    /// Frames the client sent over Socket Mode, parsed.
    acks: Vec<Value>,
    ws_connections: usize,
    /// User groups and their members, for `usergroups.users.list`.
    usergroups: HashMap<String, Vec<String>>,
}

struct Shared {
    bot_token: String,
    addr: SocketAddr,
    inner: Mutex<Inner>,
    /// Bumped on every change, so waiters re-check.
    changed: watch::Sender<u64>,
}

impl Shared {
    fn update<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        let r = f(&mut self.inner.lock().unwrap());
        self.changed.send_modify(|v| *v += 1);
        r
    }
}

pub struct FakeSlack {
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeSlack {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeSlack {
    /// Starts a fake that accepts `bot_token` (and any `xapp-` token for
    /// `apps.connections.open`).
    pub async fn start(bot_token: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake Slack");
        let addr = listener.local_addr().unwrap();
        let (changed, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            bot_token: bot_token.to_owned(),
            addr,
            inner: Mutex::new(Inner::default()),
            changed,
        });
        let router = Router::new()
            // Read methods (`usergroups.users.list`) arrive as GETs with a
            // query string, as slack-morphism sends them.
            .route("/api/{method}", post(api).get(api))
            .route("/socket", any(socket))
            .with_state(shared.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, router).await.ok();
        });
        Self { shared, server }
    }

    /// The Web API base URL, as `slack.api_url` takes it.
    pub fn api_url(&self) -> url::Url {
        url::Url::parse(&format!("http://{}/api", self.shared.addr)).unwrap()
    }

    /// Makes `usergroups.users.list` answer `members` for `group`.
    pub fn set_usergroup(&self, group: &str, members: &[&str]) {
        let members = members.iter().map(|m| m.to_string()).collect();
        self.shared.update(|i| {
            i.usergroups.insert(group.to_owned(), members);
        });
    }

    /// Queues a scripted answer for the next un-scripted call of `method`.
    pub fn script(&self, method: &str, answer: Scripted) {
        self.shared.update(|i| {
            i.scripts
                .entry(method.to_owned())
                .or_default()
                .push_back(answer)
        });
    }

    /// Every call answered so far.
    pub fn calls(&self) -> Vec<Call> {
        self.shared.inner.lock().unwrap().calls.clone()
    }

    /// Calls of one method answered so far.
    pub fn calls_to(&self, method: &str) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.method == method)
            .collect()
    }

    /// Waits until something satisfies `pred`, failing the test after [`WAIT`].
    async fn wait_until<R>(&self, what: &str, mut pred: impl FnMut(&Inner) -> Option<R>) -> R {
        let mut rx = self.shared.changed.subscribe();
        let result = tokio::time::timeout(WAIT, async {
            loop {
                if let Some(r) = pred(&self.shared.inner.lock().unwrap()) {
                    return r;
                }
                rx.changed().await.expect("the fake outlives its waiters");
            }
        })
        .await;
        result.unwrap_or_else(|_| {
            panic!(
                "timed out waiting for {what}; calls so far: {:?}",
                self.calls()
            )
        })
    }

    /// Waits until `method` has been answered `n` times; returns those calls.
    pub async fn wait_for_calls(&self, method: &str, n: usize) -> Vec<Call> {
        self.wait_until(&format!("{n} call(s) of {method}"), |i| {
            let calls: Vec<_> = i
                .calls
                .iter()
                .filter(|c| c.method == method)
                .cloned()
                .collect();
            (calls.len() >= n).then_some(calls)
        })
        .await
    }

    /// Waits until `method` has been received `n` times (answered or not).
    pub async fn wait_for_arrivals(&self, method: &str, n: usize) {
        self.wait_until(&format!("{n} arrival(s) of {method}"), |i| {
            (i.arrivals.iter().filter(|m| *m == method).count() >= n).then_some(())
        })
        .await
    }

    /// Waits until `n` Socket Mode connections have been opened.
    pub async fn wait_for_socket(&self, n: usize) {
        self.wait_until(&format!("{n} Socket Mode connection(s)"), |i| {
            (i.ws_connections >= n).then_some(())
        })
        .await
    }

    /// Sends an envelope to the first open Socket Mode connection.
    pub fn push_envelope(&self, envelope: Value) {
        let text = envelope.to_string();
        let mut inner = self.shared.inner.lock().unwrap();
        inner.sockets.retain(|s| !s.is_closed());
        let socket = inner
            .sockets
            .first()
            .expect("a Socket Mode connection is open");
        socket.send(text).expect("the socket is open");
    }

    /// Waits for the client's ack of `envelope_id` and returns it.
    pub async fn wait_for_ack(&self, envelope_id: &str) -> Value {
        self.wait_until(&format!("the ack of envelope {envelope_id}"), |i| {
            i.acks
                .iter()
                .find(|a| a.get("envelope_id").and_then(Value::as_str) == Some(envelope_id))
                .cloned()
        })
        .await
    }
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned)
}

fn parse_body(headers: &HeaderMap, body: &[u8]) -> Value {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type.starts_with("application/x-www-form-urlencoded") {
        let map: serde_json::Map<String, Value> = url::form_urlencoded::parse(body)
            .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
            .collect();
        return Value::Object(map);
    }
    if body.is_empty() {
        return json!({});
    }
    serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

async fn api(
    State(shared): State<Arc<Shared>>,
    Path(method): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let token = bearer(&headers);
    let body = match query.filter(|_| body.is_empty()) {
        Some(q) => Value::Object(
            url::form_urlencoded::parse(q.as_bytes())
                .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
                .collect(),
        ),
        None => parse_body(&headers, &body),
    };
    let script = shared.update(|i| {
        i.arrivals.push(method.clone());
        i.scripts.get_mut(&method).and_then(VecDeque::pop_front)
    });
    if let Some(Scripted::Delay(d)) = &script {
        tokio::time::sleep(*d).await;
    }
    shared.update(|i| {
        i.calls.push(Call {
            method: method.clone(),
            body: body.clone(),
            token: token.clone(),
        })
    });

    let authorised = match (method.as_str(), token.as_deref()) {
        ("apps.connections.open", Some(t)) => t.starts_with("xapp-"),
        (_, Some(t)) => t == shared.bot_token,
        (_, None) => false,
    };
    if !authorised {
        return Json(json!({"ok": false, "error": "invalid_auth"})).into_response();
    }
    match script {
        Some(Scripted::RateLimited { retry_after_secs }) => {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, retry_after_secs.to_string())],
                Json(json!({"ok": false, "error": "ratelimited"})),
            )
                .into_response();
        }
        Some(Scripted::ServerError) => {
            return (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error").into_response();
        }
        Some(Scripted::Error(code)) => {
            return Json(json!({"ok": false, "error": code})).into_response();
        }
        Some(Scripted::Delay(_)) | None => {}
    }
    match answer(&shared, &method, &body) {
        Some(v) => Json(v).into_response(),
        None => Json(json!({"ok": false, "error": "unknown_method"})).into_response(),
    }
}

const TS: &str = "1503435956.000247";

/// Slack's documented sample responses, filled in from the request.
fn answer(shared: &Shared, method: &str, body: &Value) -> Option<Value> {
    let channel = body.get("channel").cloned().unwrap_or(json!("C123ABC456"));
    let text = body.get("text").cloned().unwrap_or(json!(""));
    Some(match method {
        "chat.postMessage" => json!({
            "ok": true,
            "channel": channel,
            "ts": TS,
            "message": {
                "text": text,
                "username": "warmline",
                "bot_id": "B123ABC456",
                "type": "message",
                "subtype": "bot_message",
                "ts": TS,
                "blocks": body.get("blocks").cloned().unwrap_or(json!([])),
            }
        }),
        "chat.postEphemeral" => json!({"ok": true, "message_ts": "1502210682.580145"}),
        "usergroups.users.list" => {
            let group = body.get("usergroup").and_then(Value::as_str).unwrap_or("");
            match shared.update(|i| i.usergroups.get(group).cloned()) {
                Some(users) => json!({"ok": true, "users": users}),
                None => json!({"ok": false, "error": "no_such_subteam"}),
            }
        }
        "chat.update" => json!({
            "ok": true,
            "channel": channel,
            "ts": body.get("ts").cloned().unwrap_or(json!(TS)),
            "text": text,
            "message": {
                "text": text,
                "user": "U34567890",
                "blocks": body.get("blocks").cloned().unwrap_or(json!([])),
            }
        }),
        "views.open" | "views.update" | "views.publish" => {
            let mut view = body
                .get("view")
                .cloned()
                .unwrap_or(json!({"type": "modal"}));
            let obj = view.as_object_mut()?;
            let defaults = json!({
                "id": "VMHU10V25",
                "team_id": "T8N4K1JN",
                "state": {"values": {}},
                "hash": "156772938.1827394",
                "clear_on_close": false,
                "notify_on_close": false,
                "root_view_id": "VMHU10V25",
                "previous_view_id": null,
                "app_id": "AA4928AQ",
                "external_id": "",
                "bot_id": "BA13894H",
                "private_metadata": "",
                "callback_id": "",
            });
            for (k, v) in defaults.as_object().unwrap() {
                obj.entry(k.clone()).or_insert(v.clone());
            }
            json!({"ok": true, "view": view})
        }
        // The DM's id is derived from the user's, so tests can predict it;
        // Slack's own ids are unrelated but always start with `D`.
        "conversations.open" => {
            let users = match body.get("users") {
                Some(Value::Array(a)) => a
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(","),
                Some(Value::String(s)) => s.clone(),
                _ => return Some(json!({"ok": false, "error": "users_list_not_supplied"})),
            };
            match users.split(',').collect::<Vec<_>>().as_slice() {
                [one] if !one.is_empty() => json!({
                    "ok": true,
                    "no_op": true,
                    "already_open": true,
                    "channel": {"id": dm_of(one)}
                }),
                _ => json!({"ok": false, "error": "not_enough_users"}),
            }
        }
        "apps.connections.open" => {
            json!({"ok": true, "url": format!("ws://{}/socket", shared.addr)})
        }
        _ => return None,
    })
}

/// The fake's id for the bot's DM with `user` (`U0ASKER` → `D0ASKER`).
pub fn dm_of(user: &str) -> String {
    format!("D{}", user.trim_start_matches(['U', 'W']))
}

async fn socket(State(shared): State<Arc<Shared>>, ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(move |socket| serve_socket(shared, socket))
}

async fn serve_socket(shared: Arc<Shared>, mut socket: WebSocket) {
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let hello = json!({
        "type": "hello",
        "num_connections": 1,
        "debug_info": {"host": "applink-fake", "build_number": 1, "approximate_connection_time": 18060},
        "connection_info": {"app_id": "A0FAKE"}
    });
    if socket
        .send(Message::Text(hello.to_string().into()))
        .await
        .is_err()
    {
        return;
    }
    shared.update(|i| {
        i.sockets.push(tx);
        i.ws_connections += 1;
    });
    loop {
        tokio::select! {
            out = rx.recv() => match out {
                Some(text) => {
                    if socket.send(Message::Text(text.into())).await.is_err() {
                        break;
                    }
                }
                None => break,
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    let value = serde_json::from_str(text.as_str()).unwrap_or(Value::String(text.to_string()));
                    shared.update(|i| i.acks.push(value));
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
        }
    }
}
