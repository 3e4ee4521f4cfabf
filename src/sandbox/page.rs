//! The sandbox's HTTP surface: the page (`/`, `/sandbox/kit`), its assets
//! (compiled into the binary: the page works offline, with no CDN), the
//! JSON API the page reads and writes (`/sandbox/api/…`, contract in
//! `docs/sandbox.md`), the emulated Slack Web API and the response URLs.
//!
//! Errors map to JSON in one place ([`PageError`]): a gesture the page got
//! wrong is a 400 naming the problem, an unknown capture a 404, warmline
//! refusing a relayed request a 502 carrying warmline's own answer.

use std::time::Duration;

use axum::{
    Json, Router,
    extract::{Path, Query, State},
    http::{HeaderValue, StatusCode, header},
    response::{Html, IntoResponse, Response},
    routing::{any, get, post},
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    Sandbox, capture, cast,
    feedback::{self, Feedback, FeedbackError},
    relay::{self, Container, Delivered, RelayError},
    time, web_api,
};

const INDEX_HTML: &str = include_str!("page/index.html");
const SANDBOX_JS: &str = include_str!("page/sandbox.js");
const SANDBOX_CSS: &str = include_str!("page/sandbox.css");

/// The longest a state long-poll waits for a change.
const LONG_POLL: Duration = Duration::from_secs(25);
/// How many captures the outbox lists.
const OUTBOX_LIMIT: u64 = 500;

pub fn router() -> Router<Sandbox> {
    Router::new()
        .route("/", get(index))
        .route("/sandbox/kit", get(index))
        .route("/sandbox/assets/sandbox.js", get(script))
        .route("/sandbox/assets/sandbox.css", get(style))
        .route("/sandbox/api/state", get(state))
        .route("/sandbox/api/command", post(command))
        .route("/sandbox/api/action", post(action))
        .route("/sandbox/api/view/submit", post(submit))
        .route("/sandbox/api/view/close", post(close))
        .route("/sandbox/api/home", post(home_opened))
        .route("/sandbox/api/clock", post(clock))
        .route("/sandbox/api/outbox", get(outbox))
        .route("/sandbox/api/outbox/{id}/feedback", post(outbox_feedback))
        .route("/sandbox/outbox/{id}/html", get(outbox_html))
        .route("/sandbox/api/kit", get(kit))
        .route("/sandbox/slack/api/{method}", any(web_api::handle))
        .route(
            "/sandbox/slack/response/{channel}/{ts}/{user}",
            post(response_url),
        )
}

/// Every error the page API answers with.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Relay(#[from] RelayError),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<FeedbackError> for PageError {
    fn from(e: FeedbackError) -> Self {
        match e {
            FeedbackError::UnknownCapture(_) => PageError::NotFound(e.to_string()),
            FeedbackError::Refused(m) => PageError::Relay(RelayError::Refused {
                status: 502,
                body: m,
            }),
            FeedbackError::Internal(e) => PageError::Internal(e),
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let status = match &self {
            PageError::BadRequest(_) | PageError::Relay(RelayError::Invalid(_)) => {
                StatusCode::BAD_REQUEST
            }
            PageError::NotFound(_) => StatusCode::NOT_FOUND,
            PageError::Relay(RelayError::Slack(_)) => StatusCode::CONFLICT,
            PageError::Relay(_) => StatusCode::BAD_GATEWAY,
            PageError::Internal(e) => {
                tracing::error!(error = format!("{e:#}"), "sandbox page request failed");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        let message = match &self {
            PageError::Internal(_) => "internal error (see warmline's log)".to_string(),
            other => other.to_string(),
        };
        (status, Json(json!({"ok": false, "error": message}))).into_response()
    }
}

/// A JSON body the page sent; a malformed one is a 400 naming the problem.
pub struct Body<T>(T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> axum::extract::FromRequest<S> for Body<T> {
    type Rejection = PageError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, PageError> {
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| PageError::BadRequest(e.body_text()))?;
        let de = &mut serde_json::Deserializer::from_slice(&bytes);
        serde_path_to_error::deserialize(de)
            .map(Body)
            .map_err(|e| PageError::BadRequest(format!("malformed request: {e}")))
    }
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        body,
    )
        .into_response()
}

async fn index() -> Html<&'static str> {
    Html(INDEX_HTML)
}

async fn script() -> Response {
    asset(SANDBOX_JS, "text/javascript; charset=utf-8")
}

async fn style() -> Response {
    asset(SANDBOX_CSS, "text/css; charset=utf-8")
}

#[derive(Deserialize)]
struct StateQuery {
    user: Option<String>,
    after: Option<u64>,
}

async fn state(
    State(sb): State<Sandbox>,
    Query(q): Query<StateQuery>,
) -> Result<Json<Value>, PageError> {
    let user = q.user.unwrap_or_else(|| cast::REQUESTER.to_string());
    let person = cast::person(&user)
        .ok_or_else(|| PageError::BadRequest(format!("no person {user} in the sandbox")))?;
    let ws = sb.workspace();
    let version = match q.after {
        Some(after) => ws.changed_after(after, LONG_POLL).await,
        None => ws.version(),
    };
    let mut channels: Vec<Value> = cast::ROOMS
        .iter()
        .map(|r| json!({"id": r.id, "name": r.name, "is_im": false}))
        .collect();
    channels.push(json!({"id": cast::dm_of(person.id), "name": cast::BOT_NAME, "is_im": true}));
    let outbox_count = capture::count(&sb.app().db).await?;
    Ok(Json(json!({
        "version": version,
        "now": crate::clock::now(),
        "clock_offset_secs": crate::clock::offset().num_seconds(),
        "team": {"id": cast::TEAM_ID, "name": cast::TEAM_NAME},
        "bot": {"user_id": cast::BOT_USER_ID, "name": cast::BOT_NAME},
        "command": sb.command(),
        "users": cast::PEOPLE,
        "channels": channels,
        "messages": ws.messages_for(person.id),
        "home": ws.home(person.id),
        "modals": ws.modals(person.id),
        "outbox_count": outbox_count,
    })))
}

fn delivered(d: Delivered) -> Json<Value> {
    Json(json!({
        "ok": true,
        "closed": d.closed,
        "errors": d.errors,
        "warning": d.late.then_some(
            "warmline took longer than Slack's 3 seconds to answer; real Slack would have shown an error"
        ),
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CommandRequest {
    user: String,
    channel: String,
    text: String,
}

async fn command(
    State(sb): State<Sandbox>,
    Body(r): Body<CommandRequest>,
) -> Result<Json<Value>, PageError> {
    Ok(delivered(
        relay::command(&sb, &r.user, &r.channel, &r.text).await?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionRequest {
    user: String,
    container: Container,
    action: Value,
    #[serde(default)]
    state: Option<Value>,
}

async fn action(
    State(sb): State<Sandbox>,
    Body(r): Body<ActionRequest>,
) -> Result<Json<Value>, PageError> {
    let values = r
        .state
        .as_ref()
        .map(|s| s["values"].clone())
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}));
    Ok(delivered(
        relay::action(&sb, &r.user, &r.container, &r.action, &values).await?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubmitRequest {
    user: String,
    view_id: String,
    state: Value,
}

async fn submit(
    State(sb): State<Sandbox>,
    Body(r): Body<SubmitRequest>,
) -> Result<Json<Value>, PageError> {
    let values = r.state["values"].clone();
    if !values.is_object() {
        return Err(PageError::BadRequest(
            "state.values must be an object keyed by block_id".into(),
        ));
    }
    Ok(delivered(
        relay::submit(&sb, &r.user, &r.view_id, &values).await?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CloseRequest {
    user: String,
    view_id: String,
}

async fn close(
    State(sb): State<Sandbox>,
    Body(r): Body<CloseRequest>,
) -> Result<Json<Value>, PageError> {
    Ok(delivered(relay::close(&sb, &r.user, &r.view_id).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HomeRequest {
    user: String,
}

async fn home_opened(
    State(sb): State<Sandbox>,
    Body(r): Body<HomeRequest>,
) -> Result<Json<Value>, PageError> {
    Ok(delivered(relay::home_opened(&sb, &r.user).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClockRequest {
    advance_secs: i64,
}

async fn clock(
    State(sb): State<Sandbox>,
    Body(r): Body<ClockRequest>,
) -> Result<Json<Value>, PageError> {
    let offset = time::advance(&sb, chrono::Duration::seconds(r.advance_secs))
        .await
        .map_err(|e| PageError::BadRequest(e.to_string()))?;
    Ok(Json(json!({
        "ok": true,
        "now": crate::clock::now(),
        "clock_offset_secs": offset.num_seconds(),
    })))
}

async fn outbox(State(sb): State<Sandbox>) -> Result<Json<Value>, PageError> {
    let captures = capture::list(&sb.app().db, OUTBOX_LIMIT).await?;
    Ok(Json(json!({"captures": captures})))
}

/// A captured email's HTML, for the page's sandboxed iframe. Its own CSP
/// keeps scripts in a captured email from running even if opened directly.
/// Links open in a new tab, as from a mail client: the pages they lead to
/// (the unsubscribe page) rightly refuse to be framed.
async fn outbox_html(
    State(sb): State<Sandbox>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let html = capture::html(&sb.app().db, &id)
        .await?
        .ok_or_else(|| PageError::NotFound(format!("no captured HTML email {id}")))?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("script-src 'none'; object-src 'none'"),
            ),
        ],
        links_open_in_a_new_tab(&html),
    )
        .into_response())
}

/// `html` with `<base target="_blank">` as the first thing in its head.
fn links_open_in_a_new_tab(html: &str) -> String {
    const BASE: &str = "<base target=\"_blank\">";
    let lower = html.to_ascii_lowercase();
    let at = lower
        .find("<head")
        .and_then(|h| lower[h..].find('>').map(|e| h + e + 1));
    match at {
        Some(at) => format!("{}{BASE}{}", &html[..at], &html[at..]),
        None => format!("{BASE}{html}"),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FeedbackRequest {
    event: Feedback,
    #[serde(default)]
    text: Option<String>,
}

async fn outbox_feedback(
    State(sb): State<Sandbox>,
    Path(id): Path<String>,
    Body(r): Body<FeedbackRequest>,
) -> Result<Json<Value>, PageError> {
    let detail = feedback::simulate(&sb, &id, r.event, r.text.as_deref()).await?;
    Ok(Json(json!({"ok": true, "detail": detail})))
}

/// Every layout in `blocks/` rendered with its sample, as the bot sends it.
async fn kit(State(sb): State<Sandbox>) -> Result<Json<Value>, PageError> {
    let blocks = &sb.app().blocks;
    let mut layouts = Vec::new();
    for name in crate::slack::blocks::Blocks::names() {
        let sample = crate::slack::blocks::Blocks::sample(&name)
            .ok_or_else(|| anyhow::anyhow!("{name} has no sample in blocks/samples"))?;
        let json = blocks
            .render_json(&name, &sample)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let surface = match json["type"].as_str() {
            Some("home") => "home",
            Some(_) => "modal",
            None => "message",
        };
        layouts.push(json!({"name": name, "surface": surface, "json": json}));
    }
    Ok(Json(json!({"layouts": layouts})))
}

/// `POST` to a response URL handed out with a command or a message action.
async fn response_url(
    State(sb): State<Sandbox>,
    Path((channel, ts, user)): Path<(String, String, String)>,
    Body(body): Body<Value>,
) -> Response {
    match relay::respond(&sb, &channel, &ts, &user, &body) {
        Ok(()) => Json(json!({"ok": true})).into_response(),
        Err(e) => (
            StatusCode::NOT_FOUND,
            Json(json!({"ok": false, "error": e.0})),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_in_a_captured_email_open_in_a_new_tab() {
        assert_eq!(
            links_open_in_a_new_tab("<html><HEAD lang=\"en\"><title>x</title></head></html>"),
            "<html><HEAD lang=\"en\"><base target=\"_blank\"><title>x</title></head></html>"
        );
        assert_eq!(
            links_open_in_a_new_tab("<p>Hi</p>"),
            "<base target=\"_blank\"><p>Hi</p>"
        );
    }
}
