//! The page's gestures, delivered as Slack delivers them: a typed `/warm …`
//! becomes a signed `POST /slack/commands`; a click, a choice or a modal
//! submission becomes a signed `POST /slack/interactions` whose `payload`
//! has the shape Slack documents (team, user, trigger id, container,
//! message or view with its state, actions). Requests go over loopback HTTP
//! to warmline's own listener, so they pass the same signature gate,
//! de-duplication and handlers a real workspace reaches.
//!
//! The bot's answer is then applied as Slack applies it: a command's body
//! is shown to the person as an ephemeral message; a submission's
//! `response_action` (`errors`, `update`, `push`, `clear`, or an empty 200
//! that closes the view) changes their modal stack.
//!
//! Slack gives the bot 3 s to answer. The sandbox waits longer (a debug
//! build on a busy laptop is slower than production) but says so when the
//! answer was late, since real Slack would have shown `operation_timeout`.

use std::{collections::HashMap, time::Duration};

use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Sandbox, cast, workspace::SlackError};

/// Slack's own deadline for an answer.
const SLACK_DEADLINE: Duration = Duration::from_secs(3);
/// How long the sandbox waits before it gives up on the bot.
const RELAY_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a gesture could not be delivered or was refused.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The gesture itself is wrong (unknown person, message or view).
    #[error("{0}")]
    Invalid(String),
    /// The bot answered with an error status.
    #[error("warmline answered {status}: {body}")]
    Refused { status: u16, body: String },
    #[error("the request to warmline failed: {0}")]
    Transport(String),
    /// The emulated Slack refused to apply the answer (`hash_conflict`, …).
    #[error("Slack would refuse this: {0}")]
    Slack(#[from] SlackError),
}

/// What came of a gesture.
#[derive(Debug, Default)]
pub struct Delivered {
    /// The bot's answer took longer than Slack allows.
    pub late: bool,
    /// For a submission: whether the view closed, and its field errors.
    pub closed: bool,
    pub errors: HashMap<String, String>,
}

fn person(user: &str) -> Result<&'static cast::Person, RelayError> {
    cast::person(user)
        .ok_or_else(|| RelayError::Invalid(format!("no person {user} in the sandbox")))
}

fn user_json(p: &cast::Person) -> Value {
    let handle = p.name.split(' ').next().unwrap_or(p.name).to_lowercase();
    json!({"id": p.id, "username": handle, "name": handle, "team_id": cast::TEAM_ID})
}

fn team_json() -> Value {
    json!({"id": cast::TEAM_ID, "domain": "sandbox"})
}

/// A response URL for a message (or, with no ts, for a command's channel).
fn response_url(sandbox: &Sandbox, channel: &str, ts: Option<&str>, user: &str) -> String {
    format!(
        "{}/sandbox/slack/response/{channel}/{}/{user}",
        sandbox.base_url(),
        ts.unwrap_or("0")
    )
}

/// Signs and posts `body` to one of warmline's Slack routes.
async fn deliver(
    sandbox: &Sandbox,
    path: &str,
    body: String,
) -> Result<(Option<Value>, bool), RelayError> {
    deliver_as(sandbox, path, "application/x-www-form-urlencoded", body).await
}

async fn deliver_as(
    sandbox: &Sandbox,
    path: &str,
    content_type: &str,
    body: String,
) -> Result<(Option<Value>, bool), RelayError> {
    // Slack signs with the real time, and the gate checks it against the
    // real time: the sandbox's clock control moves warmline's calendar,
    // not Slack's.
    let timestamp = chrono::Utc::now().timestamp().to_string();
    let signature =
        crate::slack::ingress::sign(sandbox.signing_secret().expose_secret(), &timestamp, &body);
    let started = std::time::Instant::now();
    let response = sandbox
        .http()
        .post(format!("{}{path}", sandbox.base_url()))
        .header("content-type", content_type)
        .header("x-slack-request-timestamp", &timestamp)
        .header("x-slack-signature", signature)
        .timeout(RELAY_TIMEOUT)
        .body(body)
        .send()
        .await
        .map_err(|e| RelayError::Transport(e.without_url().to_string()))?;
    let late = started.elapsed() > SLACK_DEADLINE;
    let status = response.status();
    let text = response
        .text()
        .await
        .map_err(|e| RelayError::Transport(e.without_url().to_string()))?;
    if !status.is_success() {
        return Err(RelayError::Refused {
            status: status.as_u16(),
            body: text,
        });
    }
    if late {
        tracing::warn!(
            path,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "warmline answered the sandbox after Slack's 3 s deadline"
        );
    }
    let value = (!text.trim().is_empty())
        .then(|| serde_json::from_str(&text))
        .transpose()
        .map_err(|e| RelayError::Transport(format!("unreadable answer: {e}")))?;
    Ok((value, late))
}

fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// `/warm …` typed by `user` in `channel`.
pub async fn command(
    sandbox: &Sandbox,
    user: &str,
    channel: &str,
    typed: &str,
) -> Result<Delivered, RelayError> {
    let p = person(user)?;
    let channel_name = cast::channel_name(channel)
        .ok_or_else(|| RelayError::Invalid(format!("no channel {channel} in the sandbox")))?;
    let typed = typed.trim();
    let command = sandbox.command();
    let text = match typed.split_once(char::is_whitespace) {
        Some((word, rest)) if word == command => rest.trim(),
        None if typed == command => "",
        _ => {
            return Err(RelayError::Invalid(format!(
                "only {command} commands reach the bot here"
            )));
        }
    };
    let ws = sandbox.workspace();
    // Slack shows nothing of a command to others; the page shows the
    // person what they typed, as a line only they see.
    ws.post(channel, p.id, typed, None, None, Some(p.id.to_string()))?;
    let trigger = ws.trigger(p.id);
    let handle = user_json(p)["username"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let body = form(&[
        ("token", "sandbox-verification-token"),
        ("team_id", cast::TEAM_ID),
        ("team_domain", "sandbox"),
        ("channel_id", channel),
        ("channel_name", &channel_name),
        ("user_id", p.id),
        ("user_name", &handle),
        ("command", command),
        ("text", text),
        ("api_app_id", cast::APP_ID),
        ("is_enterprise_install", "false"),
        ("response_url", &response_url(sandbox, channel, None, p.id)),
        ("trigger_id", &trigger),
    ]);
    let (answer, late) = deliver(sandbox, "/slack/commands", body).await?;
    if let Some(answer) = answer {
        ws.respond(channel, "0", p.id, &answer)?;
    }
    Ok(Delivered {
        late,
        ..Default::default()
    })
}

/// Where an action happened.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Container {
    Message { channel: String, ts: String },
    View { view_id: String },
}

/// A block action by `user`: `action` is Slack's `actions[0]` as the page
/// built it; `values` the view's (or message's) input state.
pub async fn action(
    sandbox: &Sandbox,
    user: &str,
    container: &Container,
    action: &Value,
    values: &Value,
) -> Result<Delivered, RelayError> {
    let p = person(user)?;
    let ws = sandbox.workspace();
    if action["action_id"].as_str().is_none_or(str::is_empty) {
        return Err(RelayError::Invalid("the action has no action_id".into()));
    }
    let mut action = action.clone();
    action["action_ts"] = json!(format!(
        "{}.{:06}",
        crate::clock::now().timestamp(),
        crate::clock::now().timestamp_subsec_micros()
    ));
    let mut payload = json!({
        "type": "block_actions",
        "team": team_json(),
        "user": user_json(p),
        "api_app_id": cast::APP_ID,
        "token": "sandbox-verification-token",
        "trigger_id": ws.trigger(p.id),
        "actions": [action],
        "state": {"values": values},
    });
    match container {
        Container::Message { channel, ts } => {
            let m = ws
                .message(channel, ts)
                .filter(|m| m.ephemeral_to.as_deref().is_none_or(|to| to == p.id))
                .ok_or_else(|| RelayError::Invalid("that message is gone".into()))?;
            payload["container"] = json!({
                "type": "message", "message_ts": m.ts, "channel_id": m.channel,
                "is_ephemeral": m.ephemeral,
            });
            payload["channel"] = json!({
                "id": m.channel,
                "name": cast::channel_name(&m.channel).unwrap_or_default(),
            });
            payload["message"] = json!({
                "type": "message",
                "ts": m.ts,
                "thread_ts": m.thread_ts,
                "text": m.text,
                "user": m.user,
                "bot_id": (m.user == cast::BOT_USER_ID).then_some(cast::BOT_ID),
                "blocks": m.blocks.clone().unwrap_or(json!([])),
            });
            payload["response_url"] = json!(response_url(sandbox, &m.channel, Some(&m.ts), p.id));
        }
        Container::View { view_id } => {
            let view = ws
                .view_with_state(view_id, values)
                .ok_or_else(|| RelayError::Invalid("that view is closed".into()))?;
            payload["container"] = json!({"type": "view", "view_id": view_id});
            payload["view"] = view;
        }
    }
    let body = form(&[("payload", &payload.to_string())]);
    let (_, late) = deliver(sandbox, "/slack/interactions", body).await?;
    Ok(Delivered {
        late,
        ..Default::default()
    })
}

/// A modal's submit button, with the modal's input `values`.
pub async fn submit(
    sandbox: &Sandbox,
    user: &str,
    view_id: &str,
    values: &Value,
) -> Result<Delivered, RelayError> {
    let p = person(user)?;
    let ws = sandbox.workspace();
    if ws.modal_owner(view_id).as_deref() != Some(p.id) {
        return Err(RelayError::Invalid(format!(
            "{} has no open modal {view_id}",
            p.name
        )));
    }
    let view = ws
        .view_with_state(view_id, values)
        .ok_or_else(|| RelayError::Invalid("that view is closed".into()))?;
    let payload = json!({
        "type": "view_submission",
        "team": team_json(),
        "user": user_json(p),
        "api_app_id": cast::APP_ID,
        "token": "sandbox-verification-token",
        "trigger_id": ws.trigger(p.id),
        "view": view,
        "response_urls": [],
    });
    let body = form(&[("payload", &payload.to_string())]);
    let (answer, late) = deliver(sandbox, "/slack/interactions", body).await?;
    let mut delivered = Delivered {
        late,
        ..Default::default()
    };
    let answer = answer.unwrap_or(Value::Null);
    match answer["response_action"].as_str() {
        Some("errors") => {
            let errors: HashMap<String, String> = answer["errors"]
                .as_object()
                .map(|o| {
                    o.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                        .collect()
                })
                .unwrap_or_default();
            ws.set_errors(view_id, errors.clone());
            delivered.errors = errors;
        }
        Some("update") => {
            ws.update_view(view_id, None, answer["view"].clone())?;
        }
        Some("push") => {
            ws.push_view(p.id, answer["view"].clone())?;
        }
        Some("clear") => {
            ws.clear_views(p.id);
            delivered.closed = true;
        }
        _ => {
            ws.close_view(p.id, view_id);
            delivered.closed = true;
        }
    }
    Ok(delivered)
}

/// A modal's close button: `view_closed` goes to the bot only when the view
/// asked for it (`notify_on_close`), as in Slack.
pub async fn close(sandbox: &Sandbox, user: &str, view_id: &str) -> Result<Delivered, RelayError> {
    let p = person(user)?;
    let ws = sandbox.workspace();
    let view = ws
        .view_with_state(view_id, &json!({}))
        .ok_or_else(|| RelayError::Invalid("that view is closed".into()))?;
    ws.close_view(p.id, view_id);
    if view["notify_on_close"].as_bool() != Some(true) {
        return Ok(Delivered {
            closed: true,
            ..Default::default()
        });
    }
    let payload = json!({
        "type": "view_closed",
        "team": team_json(),
        "user": user_json(p),
        "api_app_id": cast::APP_ID,
        "token": "sandbox-verification-token",
        "view": view,
        "is_cleared": false,
    });
    let body = form(&[("payload", &payload.to_string())]);
    let (_, late) = deliver(sandbox, "/slack/interactions", body).await?;
    Ok(Delivered {
        late,
        closed: true,
        ..Default::default()
    })
}

/// The person opened the bot's Home tab: Slack sends `app_home_opened`
/// (an Events API callback), and the bot publishes the Home in answer.
pub async fn home_opened(sandbox: &Sandbox, user: &str) -> Result<Delivered, RelayError> {
    let p = person(user)?;
    let now = crate::clock::now();
    let event = json!({
        "token": "sandbox-verification-token",
        "team_id": cast::TEAM_ID,
        "api_app_id": cast::APP_ID,
        "event": {
            "type": "app_home_opened",
            "user": p.id,
            "channel": cast::dm_of(p.id),
            "event_ts": format!("{}.{:06}", now.timestamp(), now.timestamp_subsec_micros()),
            "tab": "home",
        },
        "type": "event_callback",
        "event_id": format!("Ev0SB{}", uuid::Uuid::new_v4().simple()),
        "event_time": now.timestamp(),
        "authorizations": [],
        "is_ext_shared_channel": false,
    });
    let (_, late) = deliver_as(
        sandbox,
        "/slack/events",
        "application/json",
        event.to_string(),
    )
    .await?;
    Ok(Delivered {
        late,
        ..Default::default()
    })
}

/// `POST` to a response URL the relay handed out.
pub fn respond(
    sandbox: &Sandbox,
    channel: &str,
    ts: &str,
    user: &str,
    body: &Value,
) -> Result<(), SlackError> {
    sandbox.workspace().respond(channel, ts, user, body)
}
