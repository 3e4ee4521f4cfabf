//! Calls to Slack's Web API, through slack-morphism's client, with what the
//! crate leaves to us: a timeout on every attempt, retries of 5xx and
//! transport errors with exponential backoff and jitter, and 429s honoured
//! for exactly as long as `Retry-After` says.
//!
//! Posts and edits (`chat.postMessage`, `chat.update`) are paced per
//! channel by [`ChannelPacer`]: Slack allows about one message per second
//! per channel, so a burst of notices, progress edits and summaries to one
//! channel is spread out here instead of earning 429s. The pace is per
//! process (as Slack's own client-side limiters are); a 429 that still
//! happens is waited out for its `Retry-After`.
//!
//! Every method warmline calls is listed in [`Method`] with the bot scope it
//! needs; the manifest test checks `manifest.yml` asks for exactly those.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use secrecy::ExposeSecret;
use slack_morphism::{errors::SlackClientError, prelude::*};

use crate::settings::SlackSettings;

pub type Connector = SlackClientHyperConnector<HttpsConnector<HttpConnector>>;
pub type Client = SlackClient<Connector>;

/// The Web API methods warmline calls, and the bot scope each needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    ChatPostMessage,
    ChatPostEphemeral,
    ChatUpdate,
    ViewsOpen,
    ViewsUpdate,
    ViewsPublish,
    /// Members of `approval.approver_group`.
    UsergroupsUsersList,
    /// The bot's DM with a requester, for a campaign's thread.
    ConversationsOpen,
}

impl Method {
    pub const ALL: &'static [Method] = &[
        Method::ChatPostMessage,
        Method::ChatPostEphemeral,
        Method::ChatUpdate,
        Method::ViewsOpen,
        Method::ViewsUpdate,
        Method::ViewsPublish,
        Method::UsergroupsUsersList,
        Method::ConversationsOpen,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Method::ChatPostMessage => "chat.postMessage",
            Method::ChatPostEphemeral => "chat.postEphemeral",
            Method::ChatUpdate => "chat.update",
            Method::ViewsOpen => "views.open",
            Method::ViewsUpdate => "views.update",
            Method::ViewsPublish => "views.publish",
            Method::UsergroupsUsersList => "usergroups.users.list",
            Method::ConversationsOpen => "conversations.open",
        }
    }

    /// The bot scope Slack requires for the method (views.* need none).
    pub fn scope(self) -> Option<&'static str> {
        match self {
            Method::ChatPostMessage | Method::ChatPostEphemeral | Method::ChatUpdate => {
                Some("chat:write")
            }
            Method::ViewsOpen | Method::ViewsUpdate | Method::ViewsPublish => None,
            Method::UsergroupsUsersList => Some("usergroups:read"),
            Method::ConversationsOpen => Some("im:write"),
        }
    }
}

/// Scopes that follow from features rather than from a Web API method.
pub const FEATURE_SCOPES: &[&str] = &[
    // The slash command.
    "commands",
];

/// Why a Web API call did not succeed, after retries.
#[derive(Debug, thiserror::Error)]
pub enum SlackApiError {
    /// Slack answered `ok: false`; `code` is Slack's error name
    /// (`not_in_channel`, `channel_not_found`, `invalid_auth`, …).
    #[error("Slack {method} failed: {code}")]
    Slack { method: &'static str, code: String },
    #[error("Slack {method} was still rate limited after {attempts} attempts")]
    RateLimited { method: &'static str, attempts: u32 },
    #[error("Slack {method} timed out after {attempts} attempts")]
    Timeout { method: &'static str, attempts: u32 },
    #[error("Slack {method} failed after {attempts} attempts: {detail}")]
    Unavailable {
        method: &'static str,
        attempts: u32,
        detail: String,
    },
}

impl SlackApiError {
    /// Slack's error name, when Slack gave one.
    pub fn code(&self) -> Option<&str> {
        match self {
            SlackApiError::Slack { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// Longest wait a single `Retry-After` may impose before we give up on the
/// call rather than hold a task for minutes.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
const BACKOFF_BASE: Duration = Duration::from_millis(250);
/// How long a `trigger_id` stays valid: views.open gets one attempt within it.
const TRIGGER_ID_LIFETIME: Duration = Duration::from_secs(3);

#[derive(Clone)]
pub struct SlackApi {
    client: Arc<Client>,
    token: SlackApiToken,
    timeout: Duration,
    max_retries: u32,
    pacer: Arc<ChannelPacer>,
}

/// GCRA per channel id: `slack.channel_posts_per_sec` posts or edits a
/// second, with a burst of [`ChannelPacer::BURST`] (Slack tolerates short
/// bursts; a few notices at once are not held back). Each caller reserves
/// its slot and sleeps until it, so waiters are served in order.
#[derive(Debug)]
pub struct ChannelPacer {
    /// Between two calls to one channel; `None`: no pacing.
    interval: Option<Duration>,
    /// Theoretical arrival time of the next call, per channel.
    tat: Mutex<HashMap<String, Instant>>,
}

impl ChannelPacer {
    pub const BURST: u32 = 3;

    pub fn new(per_sec: f64) -> Self {
        Self {
            interval: (per_sec > 0.0 && per_sec.is_finite())
                .then(|| Duration::from_secs_f64(1.0 / per_sec)),
            tat: Mutex::default(),
        }
    }

    /// Reserves the next slot for `channel`; returns how long to wait for it.
    pub fn reserve(&self, channel: &str, now: Instant) -> Duration {
        let Some(interval) = self.interval else {
            return Duration::ZERO;
        };
        let tolerance = interval * (Self::BURST - 1);
        let mut tat = self.tat.lock().unwrap_or_else(|e| e.into_inner());
        if tat.len() > 10_000 {
            // Channels idle long enough to be at rest need no entry.
            tat.retain(|_, t| *t > now);
        }
        let next = tat.get(channel).copied().unwrap_or(now).max(now);
        let wait = next
            .checked_sub(tolerance)
            .map_or(Duration::ZERO, |allowed| {
                allowed.saturating_duration_since(now)
            });
        tat.insert(channel.to_string(), next + interval);
        wait
    }

    async fn wait(&self, channel: &str) {
        let wait = self.reserve(channel, Instant::now());
        if !wait.is_zero() {
            metrics::counter!("slack_paced_total").increment(1);
            tokio::time::sleep(wait).await;
        }
    }
}

impl SlackApi {
    pub fn new(settings: &SlackSettings) -> anyhow::Result<Self> {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|e| anyhow::anyhow!("cannot load the system's CA certificates: {e}"))?
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .build();
        // Drop the trailing slash so method URLs are `{base}/{method}`.
        let base = settings.api_url.as_str().trim_end_matches('/').to_string();
        let connector = SlackClientHyperConnector::with_connector(https).with_slack_api_url(&base);
        let token_value = settings
            .bot_token
            .as_ref()
            .map(|t| t.expose_secret().to_string())
            .unwrap_or_default();
        Ok(Self {
            client: Arc::new(SlackClient::new(connector)),
            token: SlackApiToken::new(token_value.into()),
            timeout: settings.request_timeout(),
            max_retries: settings.max_retries,
            pacer: Arc::new(ChannelPacer::new(settings.channel_posts_per_sec)),
        })
    }

    pub fn client(&self) -> Arc<Client> {
        self.client.clone()
    }

    /// Runs one Web API call with timeouts and retries.
    async fn call<T, F, Fut>(&self, method: Method, f: F) -> Result<T, SlackApiError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = ClientResult<T>>,
    {
        self.call_with(method, self.timeout, self.max_retries, f)
            .await
    }

    /// Runs one Web API call with a given per-attempt timeout and retry budget.
    async fn call_with<T, F, Fut>(
        &self,
        method: Method,
        timeout: Duration,
        max_retries: u32,
        f: F,
    ) -> Result<T, SlackApiError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = ClientResult<T>>,
    {
        let name = method.name();
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let result = tokio::time::timeout(timeout, f()).await;
            let retry_in = match result {
                Ok(Ok(value)) => {
                    metrics::counter!("slack_api_calls_total", "method" => name, "outcome" => "ok")
                        .increment(1);
                    return Ok(value);
                }
                Ok(Err(SlackClientError::ApiError(e))) => {
                    metrics::counter!("slack_api_calls_total", "method" => name, "outcome" => "error").increment(1);
                    return Err(SlackApiError::Slack {
                        method: name,
                        code: e.code,
                    });
                }
                Ok(Err(SlackClientError::RateLimitError(e))) => {
                    metrics::counter!("slack_api_calls_total", "method" => name, "outcome" => "rate_limited")
                        .increment(1);
                    let wait = e.retry_after.unwrap_or(Duration::from_secs(1));
                    if attempt > max_retries || wait > MAX_RETRY_AFTER {
                        return Err(SlackApiError::RateLimited {
                            method: name,
                            attempts: attempt,
                        });
                    }
                    tracing::warn!(
                        method = name,
                        wait_ms = wait.as_millis() as u64,
                        "Slack rate limited us"
                    );
                    wait
                }
                Ok(Err(SlackClientError::HttpError(e))) if e.status_code.is_client_error() => {
                    metrics::counter!("slack_api_calls_total", "method" => name, "outcome" => "error").increment(1);
                    return Err(SlackApiError::Slack {
                        method: name,
                        code: format!("http_{}", e.status_code.as_u16()),
                    });
                }
                // Slack answered 200 with a body we cannot read: the call
                // took effect, so retrying could post twice.
                Ok(Err(SlackClientError::ProtocolError(_))) => {
                    metrics::counter!("slack_api_calls_total", "method" => name, "outcome" => "error").increment(1);
                    return Err(SlackApiError::Slack {
                        method: name,
                        code: "unreadable_response".into(),
                    });
                }
                Ok(Err(other)) => {
                    metrics::counter!("slack_api_calls_total", "method" => name, "outcome" => "retryable")
                        .increment(1);
                    if attempt > max_retries {
                        return Err(SlackApiError::Unavailable {
                            method: name,
                            attempts: attempt,
                            detail: describe(&other),
                        });
                    }
                    backoff(attempt)
                }
                Err(_elapsed) => {
                    metrics::counter!("slack_api_calls_total", "method" => name, "outcome" => "timeout").increment(1);
                    if attempt > max_retries {
                        return Err(SlackApiError::Timeout {
                            method: name,
                            attempts: attempt,
                        });
                    }
                    backoff(attempt)
                }
            };
            tokio::time::sleep(retry_in).await;
        }
    }

    pub async fn post_message(
        &self,
        req: SlackApiChatPostMessageRequest,
    ) -> Result<SlackApiChatPostMessageResponse, SlackApiError> {
        self.pacer.wait(&req.channel.0).await;
        let (client, token, req) = (&self.client, &self.token, &req);
        self.call(Method::ChatPostMessage, move || async move {
            client.open_session(token).chat_post_message(req).await
        })
        .await
    }

    pub async fn post_ephemeral(
        &self,
        req: SlackApiChatPostEphemeralRequest,
    ) -> Result<SlackApiChatPostEphemeralResponse, SlackApiError> {
        let (client, token, req) = (&self.client, &self.token, &req);
        self.call(Method::ChatPostEphemeral, move || async move {
            client.open_session(token).chat_post_ephemeral(req).await
        })
        .await
    }

    pub async fn update_message(
        &self,
        req: SlackApiChatUpdateRequest,
    ) -> Result<SlackApiChatUpdateResponse, SlackApiError> {
        self.pacer.wait(&req.channel.0).await;
        let (client, token, req) = (&self.client, &self.token, &req);
        self.call(Method::ChatUpdate, move || async move {
            client.open_session(token).chat_update(req).await
        })
        .await
    }

    pub async fn views_open(
        &self,
        req: SlackApiViewsOpenRequest,
    ) -> Result<SlackApiViewsOpenResponse, SlackApiError> {
        // A trigger id lives 3 s: retrying past that only earns
        // `expired_trigger_id`, so one attempt, bounded by the trigger's life.
        let (client, token, req) = (&self.client, &self.token, &req);
        let timeout = self.timeout.min(TRIGGER_ID_LIFETIME);
        self.call_with(Method::ViewsOpen, timeout, 0, move || async move {
            client.open_session(token).views_open(req).await
        })
        .await
    }

    pub async fn views_update(
        &self,
        req: SlackApiViewsUpdateRequest,
    ) -> Result<SlackApiViewsUpdateResponse, SlackApiError> {
        let (client, token, req) = (&self.client, &self.token, &req);
        self.call(Method::ViewsUpdate, move || async move {
            client.open_session(token).views_update(req).await
        })
        .await
    }

    /// The user ids in a user group (`S…`), for `approval.approver_group`.
    pub async fn usergroup_members(&self, group: &str) -> Result<Vec<String>, SlackApiError> {
        let req = SlackApiUserGroupsUsersListRequest::new(SlackUserGroupId::new(group.to_string()));
        let (client, token, req) = (&self.client, &self.token, &req);
        let resp = self
            .call(Method::UsergroupsUsersList, move || async move {
                client.open_session(token).usergroups_users_list(req).await
            })
            .await?;
        Ok(resp.users.into_iter().map(|u| u.0).collect())
    }

    /// The id (`D…`) of the bot's direct-message channel with `user`,
    /// opening it if needed.
    pub async fn open_dm(&self, user: &str) -> Result<String, SlackApiError> {
        let req = SlackApiConversationsOpenRequest::new()
            .with_users(vec![SlackUserId::new(user.to_string())]);
        let (client, token, req) = (&self.client, &self.token, &req);
        let resp = self
            .call(Method::ConversationsOpen, move || async move {
                client.open_session(token).conversations_open(req).await
            })
            .await?;
        Ok(resp.channel.id.0)
    }

    pub async fn views_publish(
        &self,
        req: SlackApiViewsPublishRequest,
    ) -> Result<SlackApiViewsPublishResponse, SlackApiError> {
        let (client, token, req) = (&self.client, &self.token, &req);
        self.call(Method::ViewsPublish, move || async move {
            client.open_session(token).views_publish(req).await
        })
        .await
    }
}

/// Exponential backoff with full jitter in [base·2ⁿ/2, base·2ⁿ].
fn backoff(attempt: u32) -> Duration {
    let ceiling = BACKOFF_BASE.saturating_mul(1 << attempt.min(6));
    let half = ceiling / 2;
    half + half.mul_f64(rand::random::<f64>())
}

/// Describes a transport error without echoing request bodies, which may
/// hold message text or personal data.
fn describe(err: &SlackClientError) -> String {
    match err {
        SlackClientError::HttpError(e) => format!("HTTP {}", e.status_code),
        SlackClientError::HttpProtocolError(_) => "connection or protocol error".into(),
        SlackClientError::EndOfStream(_) => "connection closed early".into(),
        SlackClientError::ProtocolError(_) => "unexpected response body".into(),
        SlackClientError::SystemError(_) => "system error".into(),
        SlackClientError::SocketModeProtocolError(_) => "socket mode protocol error".into(),
        SlackClientError::ApiError(e) => e.code.clone(),
        SlackClientError::RateLimitError(_) => "rate limited".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_stays_jittered_within_bounds() {
        for attempt in 1..8 {
            let ceiling = BACKOFF_BASE.saturating_mul(1 << attempt.min(6));
            for _ in 0..50 {
                let d = backoff(attempt);
                assert!(d >= ceiling / 2 && d <= ceiling, "attempt {attempt}: {d:?}");
            }
        }
    }

    #[test]
    fn the_pacer_allows_a_short_burst_then_one_per_second_per_channel() {
        let pacer = ChannelPacer::new(1.0);
        let t0 = Instant::now();
        let waits: Vec<Duration> = (0..5).map(|_| pacer.reserve("C1", t0)).collect();
        assert_eq!(
            waits[..3],
            [Duration::ZERO; 3],
            "a burst of three goes at once"
        );
        assert_eq!(waits[3], Duration::from_secs(1));
        assert_eq!(waits[4], Duration::from_secs(2));
        assert_eq!(
            pacer.reserve("C2", t0),
            Duration::ZERO,
            "channels are independent"
        );
        // Once the channel rests, the burst is available again.
        let later = t0 + Duration::from_secs(10);
        assert_eq!(pacer.reserve("C1", later), Duration::ZERO);
        let off = ChannelPacer::new(0.0);
        assert!((0..10).all(|_| off.reserve("C1", t0).is_zero()));
    }

    #[test]
    fn every_method_has_a_distinct_name() {
        let mut names: Vec<_> = Method::ALL.iter().map(|m| m.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), Method::ALL.len());
    }
}
