//! The test provider: a provider with configurable latency, error mix, rate
//! limit and idempotency, which keeps a log of what it accepted. Tests and
//! benchmarks reconcile that log with the ledger (nothing lost, nothing sent
//! twice, the rate never exceeded).
//!
//! It runs in process ([`TestProvider::in_process`]) or as an HTTP sink in
//! another process ([`serve_sink`] + `[providers.test] url = …`), which is how
//! the crash benchmark survives `kill -9` of the process that sends.

use std::{
    collections::{HashMap, VecDeque},
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant, SystemTime},
};

use async_trait::async_trait;
use axum::{Json, Router, extract::State, http::StatusCode, response::IntoResponse, routing::post};
use serde::{Deserialize, Serialize};

use super::{Limits, OutgoingMessage, Provider, SendOutcome};

/// The most of `times` (in order) that fall in any sliding one-second
/// window: what a provider's "N requests a second" limit counts. The test
/// provider and the fakes report their requests with it.
pub fn max_in_any_second(times: &[Instant]) -> usize {
    let (mut max, mut start) = (0, 0);
    for end in 0..times.len() {
        while times[end].duration_since(times[start]) >= Duration::from_secs(1) {
            start += 1;
        }
        max = max.max(end - start + 1);
    }
    max
}

/// `[providers.test]` (only in builds with the `test-support` feature).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TestProviderSettings {
    /// An external sink ([`serve_sink`]) to send to; unset: in process.
    pub url: Option<String>,
    /// Requests per second it declares (and enforces).
    pub requests_per_second: Option<f64>,
    /// Largest batch per request (default 100).
    pub max_batch: Option<usize>,
    /// Whether it honours idempotency keys (default true).
    pub idempotent: Option<bool>,
    /// Simulated latency per request, milliseconds.
    pub latency_ms: Option<u64>,
}

/// How the test provider behaves.
#[derive(Debug, Clone)]
pub struct Behaviour {
    pub latency: Duration,
    /// Share of messages answered with a retryable error (0.0–1.0).
    pub retryable_rate: f64,
    /// Share of messages answered with a permanent error.
    pub permanent_rate: f64,
    /// The limit the provider enforces (requests in any sliding second);
    /// over it, requests get a 429 with a retry-after.
    pub enforced_rps: Option<u32>,
    /// The limit it declares to the dispatcher.
    pub declared_rps: Option<f64>,
    pub idempotent: bool,
    pub max_batch: usize,
}

impl Default for Behaviour {
    fn default() -> Self {
        Self {
            latency: Duration::ZERO,
            retryable_rate: 0.0,
            permanent_rate: 0.0,
            enforced_rps: None,
            declared_rps: None,
            idempotent: true,
            max_batch: 100,
        }
    }
}

/// One accepted message.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Accepted {
    pub id: String,
    pub to: String,
    /// Milliseconds since the Unix epoch.
    pub at_ms: u128,
}

/// The state shared by the in-process provider and the HTTP sink.
#[derive(Debug)]
pub struct Core {
    pub behaviour: Behaviour,
    accepted: Mutex<Vec<Accepted>>,
    /// Idempotency keys seen, with the provider message id answered.
    keys: Mutex<HashMap<String, String>>,
    window: Mutex<VecDeque<Instant>>,
    /// Times of every request that got past the rate limit.
    request_times: Mutex<Vec<Instant>>,
    pub requests: AtomicU64,
    pub rate_limited: AtomicU64,
    pub replays: AtomicU64,
    /// Count of accepted messages, for waiting without sleeping.
    accepted_count: tokio::sync::watch::Sender<usize>,
}

impl Core {
    pub fn new(behaviour: Behaviour) -> Arc<Self> {
        Arc::new(Self {
            behaviour,
            accepted: Mutex::default(),
            keys: Mutex::default(),
            window: Mutex::default(),
            request_times: Mutex::default(),
            requests: AtomicU64::new(0),
            rate_limited: AtomicU64::new(0),
            replays: AtomicU64::new(0),
            accepted_count: tokio::sync::watch::Sender::new(0),
        })
    }

    /// Waits until at least `n` messages were accepted; false on timeout.
    pub async fn wait_for_accepted(&self, n: usize, timeout: Duration) -> bool {
        let mut rx = self.accepted_count.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|c| *c >= n))
            .await
            .is_ok()
    }

    /// Everything accepted so far, in order.
    pub fn accepted(&self) -> Vec<Accepted> {
        self.accepted.lock().expect("not poisoned").clone()
    }

    pub fn request_times(&self) -> Vec<Instant> {
        self.request_times.lock().expect("not poisoned").clone()
    }

    /// The largest number of requests seen in any sliding one-second window.
    pub fn max_requests_in_any_second(&self) -> usize {
        max_in_any_second(&self.request_times())
    }

    /// Handles one request of `batch`.
    pub async fn handle(&self, batch: &[OutgoingMessage]) -> Vec<SendOutcome> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if !self.behaviour.latency.is_zero() {
            tokio::time::sleep(self.behaviour.latency).await;
        }
        if let Some(limit) = self.behaviour.enforced_rps {
            let now = Instant::now();
            let mut window = self.window.lock().expect("not poisoned");
            while window
                .front()
                .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1))
            {
                window.pop_front();
            }
            if window.len() >= limit as usize {
                self.rate_limited.fetch_add(1, Ordering::Relaxed);
                let wait = Duration::from_secs(1)
                    - now.duration_since(*window.front().expect("non-empty"));
                return batch
                    .iter()
                    .map(|_| SendOutcome::RateLimited { retry_after: wait })
                    .collect();
            }
            window.push_back(now);
        }
        self.request_times
            .lock()
            .expect("not poisoned")
            .push(Instant::now());
        let at_ms = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        let mut out = Vec::with_capacity(batch.len());
        for m in batch {
            let roll: f64 = rand::random();
            if roll < self.behaviour.permanent_rate {
                out.push(SendOutcome::Permanent {
                    error: "test provider: rejected".into(),
                });
                continue;
            }
            if roll < self.behaviour.permanent_rate + self.behaviour.retryable_rate {
                out.push(SendOutcome::Retryable {
                    error: "test provider: temporary failure".into(),
                    retry_after: None,
                });
                continue;
            }
            if self.behaviour.idempotent {
                let mut keys = self.keys.lock().expect("not poisoned");
                if let Some(previous) = keys.get(&m.id) {
                    self.replays.fetch_add(1, Ordering::Relaxed);
                    out.push(SendOutcome::Accepted {
                        provider_message_id: Some(previous.clone()),
                    });
                    continue;
                }
                keys.insert(m.id.clone(), format!("test-{}", m.id));
            }
            let count = {
                let mut accepted = self.accepted.lock().expect("not poisoned");
                accepted.push(Accepted {
                    id: m.id.clone(),
                    to: m.to.clone(),
                    at_ms,
                });
                accepted.len()
            };
            self.accepted_count.send_replace(count);
            out.push(SendOutcome::Accepted {
                provider_message_id: Some(format!("test-{}", m.id)),
            });
        }
        out
    }
}

/// The test provider as the dispatcher sees it.
pub struct TestProvider {
    target: Target,
    behaviour: Behaviour,
    /// The channel it carries (email unless [`TestProvider::carrying`] says
    /// otherwise) and its name, which differs per channel so one registry
    /// can hold one test provider for each.
    channel: crate::domain::Channel,
    name: String,
}

enum Target {
    InProcess(Arc<Core>),
    Http {
        client: reqwest::Client,
        url: String,
    },
}

impl TestProvider {
    pub fn in_process(core: Arc<Core>) -> Self {
        Self {
            behaviour: core.behaviour.clone(),
            target: Target::InProcess(core),
            channel: crate::domain::Channel::Email,
            name: "test".into(),
        }
    }

    /// The same provider carrying `channel` instead of email, named
    /// `test` for email and `test_<channel>` otherwise.
    pub fn carrying(mut self, channel: crate::domain::Channel) -> Self {
        self.channel = channel;
        self.name = match channel {
            crate::domain::Channel::Email => "test".into(),
            other => format!("test_{other}"),
        };
        self
    }

    pub fn from_settings(s: &TestProviderSettings) -> anyhow::Result<Self> {
        let behaviour = Behaviour {
            latency: Duration::from_millis(s.latency_ms.unwrap_or(0)),
            declared_rps: s.requests_per_second,
            idempotent: s.idempotent.unwrap_or(true),
            max_batch: s.max_batch.unwrap_or(100),
            ..Behaviour::default()
        };
        match &s.url {
            Some(url) => Ok(Self {
                target: Target::Http {
                    // reqwest is built without a default TLS provider.
                    client: {
                        crate::install_crypto_provider();
                        reqwest::Client::builder()
                            .timeout(Duration::from_secs(10))
                            .build()?
                    },
                    url: format!("{}/send", url.trim_end_matches('/')),
                },
                behaviour,
                channel: crate::domain::Channel::Email,
                name: "test".into(),
            }),
            None => Ok(Self::in_process(Core::new(behaviour))),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct WireRequest {
    messages: Vec<OutgoingMessage>,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
enum WireOutcome {
    Accepted {
        provider_message_id: Option<String>,
    },
    Retryable {
        error: String,
    },
    RateLimited {
        retry_after_ms: u64,
    },
    Permanent {
        error: String,
    },
    /// A refusal that says something about the recipient.
    Refused {
        error: String,
        opted_out: bool,
    },
}

impl From<SendOutcome> for WireOutcome {
    fn from(o: SendOutcome) -> Self {
        match o {
            SendOutcome::Accepted {
                provider_message_id,
            } => WireOutcome::Accepted {
                provider_message_id,
            },
            SendOutcome::Retryable { error, .. } => WireOutcome::Retryable { error },
            SendOutcome::RateLimited { retry_after } => WireOutcome::RateLimited {
                retry_after_ms: retry_after.as_millis() as u64,
            },
            SendOutcome::Permanent { error } => WireOutcome::Permanent { error },
            SendOutcome::Refused { error, problem } => WireOutcome::Refused {
                error,
                opted_out: problem == super::RecipientProblem::OptedOut,
            },
        }
    }
}

impl From<WireOutcome> for SendOutcome {
    fn from(o: WireOutcome) -> Self {
        match o {
            WireOutcome::Accepted {
                provider_message_id,
            } => SendOutcome::Accepted {
                provider_message_id,
            },
            WireOutcome::Retryable { error } => SendOutcome::Retryable {
                error,
                retry_after: None,
            },
            WireOutcome::RateLimited { retry_after_ms } => SendOutcome::RateLimited {
                retry_after: Duration::from_millis(retry_after_ms),
            },
            WireOutcome::Permanent { error } => SendOutcome::Permanent { error },
            WireOutcome::Refused { error, opted_out } => SendOutcome::Refused {
                error,
                problem: if opted_out {
                    super::RecipientProblem::OptedOut
                } else {
                    super::RecipientProblem::Unreachable
                },
            },
        }
    }
}

#[async_trait]
impl Provider for TestProvider {
    fn name(&self) -> &str {
        &self.name
    }

    fn channel(&self) -> crate::domain::Channel {
        self.channel
    }

    fn limits(&self) -> Limits {
        Limits {
            requests_per_second: self.behaviour.declared_rps,
            max_batch: self.behaviour.max_batch.max(1),
            per_recipient_interval: None,
        }
    }

    fn takes_idempotency_key(&self) -> bool {
        self.behaviour.idempotent
    }

    async fn send(&self, batch: &[OutgoingMessage]) -> Vec<SendOutcome> {
        match &self.target {
            Target::InProcess(core) => core.handle(batch).await,
            Target::Http { client, url } => {
                let result = client
                    .post(url)
                    .json(&WireRequest {
                        messages: batch.to_vec(),
                    })
                    .send()
                    .await;
                let retry = |error: String| {
                    batch
                        .iter()
                        .map(|_| SendOutcome::Retryable {
                            error: error.clone(),
                            retry_after: None,
                        })
                        .collect()
                };
                match result {
                    Ok(r) if r.status().is_success() => match r.json::<Vec<WireOutcome>>().await {
                        Ok(outcomes) if outcomes.len() == batch.len() => {
                            outcomes.into_iter().map(SendOutcome::from).collect()
                        }
                        _ => retry("test sink: unreadable answer".into()),
                    },
                    Ok(r) => retry(format!("test sink: HTTP {}", r.status())),
                    Err(e) => retry(format!("test sink: {e}")),
                }
            }
        }
    }
}

/// Serves `core` over HTTP on 127.0.0.1:0 (`POST /send`); returns the
/// address. The server runs until the runtime stops.
pub async fn serve_sink(core: Arc<Core>) -> anyhow::Result<SocketAddr> {
    async fn send(
        State(core): State<Arc<Core>>,
        Json(req): Json<WireRequest>,
    ) -> impl IntoResponse {
        let outcomes: Vec<WireOutcome> = core
            .handle(&req.messages)
            .await
            .into_iter()
            .map(Into::into)
            .collect();
        (StatusCode::OK, Json(outcomes))
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app = Router::new().route("/send", post(send)).with_state(core);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(id: &str) -> OutgoingMessage {
        OutgoingMessage {
            id: id.into(),
            channel: crate::domain::Channel::Email,
            kind: crate::domain::MessageKind::Marketing,
            to: "a@example.com".into(),
            content: serde_json::json!({}),
        }
    }

    #[tokio::test]
    async fn an_idempotent_provider_accepts_a_key_once() {
        let core = Core::new(Behaviour::default());
        core.handle(&[msg("m1")]).await;
        let again = core.handle(&[msg("m1")]).await;
        assert!(matches!(again[0], SendOutcome::Accepted { .. }));
        assert_eq!(core.accepted().len(), 1);
        assert_eq!(core.replays.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn a_provider_without_keys_logs_every_copy() {
        let core = Core::new(Behaviour {
            idempotent: false,
            ..Behaviour::default()
        });
        core.handle(&[msg("m1")]).await;
        core.handle(&[msg("m1")]).await;
        assert_eq!(core.accepted().len(), 2);
    }

    #[tokio::test]
    async fn the_enforced_limit_answers_429() {
        let core = Core::new(Behaviour {
            enforced_rps: Some(2),
            ..Behaviour::default()
        });
        core.handle(&[msg("a")]).await;
        core.handle(&[msg("b")]).await;
        let third = core.handle(&[msg("c")]).await;
        assert!(matches!(third[0], SendOutcome::RateLimited { .. }));
        assert_eq!(core.max_requests_in_any_second(), 2);
    }

    #[tokio::test]
    async fn the_http_sink_round_trips() {
        let core = Core::new(Behaviour::default());
        let addr = serve_sink(core.clone()).await.unwrap();
        let provider = TestProvider::from_settings(&TestProviderSettings {
            url: Some(format!("http://{addr}")),
            ..Default::default()
        })
        .unwrap();
        let out = provider.send(&[msg("x"), msg("y")]).await;
        assert_eq!(out.len(), 2);
        assert_eq!(core.accepted().len(), 2);
    }
}
