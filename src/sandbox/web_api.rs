//! The Slack Web API, emulated in process: `POST|GET
//! /sandbox/slack/api/{method}`. In sandbox mode `slack.api_url` points
//! here, so the bot's own client (slack-morphism, with its retries and
//! pacing) makes exactly the calls it makes to Slack, and the workspace
//! ([`super::workspace`]) records their effect for the page.
//!
//! It answers as Slack does: HTTP 200 with `{"ok": true, …}` in the shapes
//! of Slack's documented responses, or `{"ok": false, "error": code}` —
//! `invalid_auth` for a wrong bearer token, `channel_not_found`,
//! `invalid_trigger_id`, `expired_trigger_id`, `hash_conflict`,
//! `invalid_blocks`, `unknown_method`… — never an error the real API
//! would not give.

use axum::{
    Json,
    body::Bytes,
    extract::{Path, RawQuery, State},
    http::{HeaderMap, header},
};
use serde_json::{Value, json};

use super::{Sandbox, cast, workspace::SlackError};

/// Most blocks a message may carry.
const MAX_MESSAGE_BLOCKS: usize = 50;

pub async fn handle(
    State(sandbox): State<Sandbox>,
    Path(method): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Json<Value> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if bearer != Some(sandbox.bot_token()) {
        return Json(json!({"ok": false, "error": "invalid_auth"}));
    }
    let args = arguments(&headers, &body, query.as_deref());
    let answer = match call(&sandbox, &method, &args) {
        Ok(v) => {
            let mut v = v;
            v["ok"] = json!(true);
            v
        }
        Err(SlackError(code)) => json!({"ok": false, "error": code}),
    };
    Json(answer)
}

/// The call's arguments as one JSON object: a JSON body, or a form (or
/// query string) whose JSON-valued fields (`blocks`, `view`) are parsed.
fn arguments(headers: &HeaderMap, body: &[u8], query: Option<&str>) -> Value {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let pairs: Option<Vec<(String, String)>> = if body.is_empty() {
        query.map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
    } else if is_form {
        Some(url::form_urlencoded::parse(body).into_owned().collect())
    } else {
        None
    };
    match pairs {
        Some(pairs) => Value::Object(
            pairs
                .into_iter()
                .map(|(k, v)| {
                    let parsed = match k.as_str() {
                        "blocks" | "view" | "attachments" => {
                            serde_json::from_str(&v).unwrap_or(Value::String(v))
                        }
                        _ => Value::String(v),
                    };
                    (k, parsed)
                })
                .collect(),
        ),
        None => serde_json::from_slice(body).unwrap_or(json!({})),
    }
}

fn str_arg<'a>(args: &'a Value, name: &str) -> Option<&'a str> {
    args.get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn blocks_arg(args: &Value) -> Result<Option<Value>, SlackError> {
    match args.get("blocks") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(b)) if b.len() <= MAX_MESSAGE_BLOCKS => Ok(Some(Value::Array(b.clone()))),
        Some(_) => Err(SlackError("invalid_blocks")),
    }
}

/// A post's channel, text, blocks and thread: Slack wants a channel, and
/// text or blocks.
type MessageArgs<'a> = (&'a str, &'a str, Option<Value>, Option<String>);

fn message_args(args: &Value) -> Result<MessageArgs<'_>, SlackError> {
    let channel = str_arg(args, "channel").ok_or(SlackError("channel_not_found"))?;
    let blocks = blocks_arg(args)?;
    let text = str_arg(args, "text").unwrap_or_default();
    if text.is_empty() && blocks.is_none() {
        return Err(SlackError("no_text"));
    }
    Ok((
        channel,
        text,
        blocks,
        str_arg(args, "thread_ts").map(str::to_string),
    ))
}

fn call(sandbox: &Sandbox, method: &str, args: &Value) -> Result<Value, SlackError> {
    let ws = sandbox.workspace();
    match method {
        "chat.postMessage" => {
            let (channel, text, blocks, thread_ts) = message_args(args)?;
            let m = ws.post(
                channel,
                cast::BOT_USER_ID,
                text,
                blocks.clone(),
                thread_ts,
                None,
            )?;
            Ok(json!({
                "channel": m.channel,
                "ts": m.ts,
                "message": {
                    "type": "message",
                    "subtype": "bot_message",
                    "text": m.text,
                    "username": cast::BOT_NAME,
                    "bot_id": cast::BOT_ID,
                    "user": cast::BOT_USER_ID,
                    "ts": m.ts,
                    "thread_ts": m.thread_ts,
                    "blocks": blocks.unwrap_or(json!([])),
                }
            }))
        }
        "chat.postEphemeral" => {
            let (channel, text, blocks, thread_ts) = message_args(args)?;
            let user = str_arg(args, "user").ok_or(SlackError("user_not_in_channel"))?;
            let m = ws.post(
                channel,
                cast::BOT_USER_ID,
                text,
                blocks,
                thread_ts,
                Some(user.to_string()),
            )?;
            Ok(json!({"message_ts": m.ts}))
        }
        "chat.update" => {
            let channel = str_arg(args, "channel").ok_or(SlackError("channel_not_found"))?;
            let ts = str_arg(args, "ts").ok_or(SlackError("message_not_found"))?;
            let m = ws.edit(channel, ts, str_arg(args, "text"), blocks_arg(args)?)?;
            Ok(json!({
                "channel": m.channel,
                "ts": m.ts,
                "text": m.text,
                "message": {
                    "text": m.text,
                    "user": cast::BOT_USER_ID,
                    "bot_id": cast::BOT_ID,
                    "blocks": m.blocks.unwrap_or(json!([])),
                }
            }))
        }
        "views.open" => {
            let trigger = str_arg(args, "trigger_id").ok_or(SlackError("invalid_trigger_id"))?;
            let view = ws.open_view(trigger, view_arg(args)?)?;
            Ok(json!({"view": view}))
        }
        "views.push" => {
            let trigger = str_arg(args, "trigger_id").ok_or(SlackError("invalid_trigger_id"))?;
            let view = ws.push_view_by_trigger(trigger, view_arg(args)?)?;
            Ok(json!({"view": view}))
        }
        "views.update" => {
            let view_id = str_arg(args, "view_id").ok_or(SlackError("not_found"))?;
            let view = ws.update_view(view_id, str_arg(args, "hash"), view_arg(args)?)?;
            Ok(json!({"view": view}))
        }
        "views.publish" => {
            let user = str_arg(args, "user_id").ok_or(SlackError("user_not_found"))?;
            let view = ws.publish_home(user, view_arg(args)?)?;
            Ok(json!({"view": view}))
        }
        "conversations.open" => {
            let users: Vec<String> = match args.get("users") {
                Some(Value::Array(a)) => a
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect(),
                Some(Value::String(s)) => s.split(',').map(str::to_string).collect(),
                _ => return Err(SlackError("users_list_not_supplied")),
            };
            match users.as_slice() {
                [one] if cast::person(one).is_some() => Ok(json!({
                    "no_op": true,
                    "already_open": true,
                    "channel": {"id": cast::dm_of(one)}
                })),
                [_] => Err(SlackError("user_not_found")),
                _ => Err(SlackError("not_enough_users")),
            }
        }
        // The sandbox has no user groups: `approval.approver_group` is
        // not set in sandbox mode, so this answers as Slack does for a
        // group that does not exist.
        "usergroups.users.list" => Err(SlackError("no_such_subteam")),
        "auth.test" => Ok(json!({
            "url": "http://sandbox.slack.localhost/",
            "team": cast::TEAM_NAME,
            "user": cast::BOT_NAME,
            "team_id": cast::TEAM_ID,
            "user_id": cast::BOT_USER_ID,
            "bot_id": cast::BOT_ID,
        })),
        _ => Err(SlackError("unknown_method")),
    }
}

fn view_arg(args: &Value) -> Result<Value, SlackError> {
    match args.get("view") {
        Some(v @ Value::Object(_)) => Ok(v.clone()),
        _ => Err(SlackError("invalid_arguments")),
    }
}
