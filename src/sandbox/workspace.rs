//! The emulated Slack workspace's state: the messages the bot posted, each
//! person's App Home and modal stack, and the trigger ids Slack would hand
//! out. The Web API emulation ([`super::web_api`]) writes it, the relay
//! ([`super::relay`]) reads it to build payloads, and the page reads
//! snapshots of it.
//!
//! Invariants:
//! - Every change bumps `version` (a `watch` channel), so the page's
//!   long-poll wakes on change instead of polling on a timer.
//! - Message timestamps are unique and increasing, as Slack's are within a
//!   channel: `seconds.micros` from warmline's clock, bumped past the last
//!   one issued.
//! - A trigger id is good for one `views.open`/`views.push` within 3 s of
//!   the gesture that made it (Slack's rule), and names the person it was
//!   issued to: the modal opens for them.
//! - State lives in memory: a restarted sandbox starts with empty channels
//!   (its database, and so the outbox, contacts and campaigns, persist).

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::watch;

use super::cast;

/// How long a trigger id may be used (Slack: 3 s).
pub const TRIGGER_LIFETIME: Duration = Duration::from_secs(3);

/// One message in a channel.
#[derive(Debug, Clone, Serialize)]
pub struct Message {
    pub channel: String,
    pub ts: String,
    pub thread_ts: Option<String>,
    /// The author: the bot's user id, or a person's (their typed command).
    pub user: String,
    pub text: String,
    pub blocks: Option<Value>,
    /// Shown only to this person (`chat.postEphemeral`, command answers).
    #[serde(skip)]
    pub ephemeral_to: Option<String>,
    pub ephemeral: bool,
    pub edited: bool,
    pub reply_count: usize,
}

/// A modal on a person's stack, with the errors its last submission got.
#[derive(Debug, Clone, Serialize)]
pub struct Modal {
    pub view_id: String,
    pub view: Value,
    pub errors: HashMap<String, String>,
}

/// Why the emulation refuses a call; the string is Slack's error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SlackError(pub &'static str);

#[derive(Default)]
struct State {
    messages: Vec<Message>,
    /// Published App Home views, by person.
    homes: HashMap<String, Value>,
    /// Open modals, by person, bottom first.
    modals: HashMap<String, Vec<Modal>>,
    /// Unused trigger ids: who they belong to and when they were issued.
    triggers: HashMap<String, (String, Instant)>,
    last_ts_micros: i64,
    next_id: u64,
}

impl State {
    fn next_ts(&mut self) -> String {
        let now = crate::clock::now().timestamp_micros();
        let micros = now.max(self.last_ts_micros + 1);
        self.last_ts_micros = micros;
        format!("{}.{:06}", micros / 1_000_000, micros % 1_000_000)
    }

    fn next_id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}0SB{:06}", self.next_id)
    }

    fn view_mut(&mut self, view_id: &str) -> Option<&mut Value> {
        if let Some(home) = self
            .homes
            .values_mut()
            .find(|v| v["id"].as_str() == Some(view_id))
        {
            return Some(home);
        }
        self.modals
            .values_mut()
            .flatten()
            .find(|m| m.view_id == view_id)
            .map(|m| &mut m.view)
    }
}

/// The workspace, shared by the emulation, the relay and the page.
pub struct Workspace {
    state: Mutex<State>,
    version: watch::Sender<u64>,
}

impl Default for Workspace {
    fn default() -> Self {
        Self::new()
    }
}

impl Workspace {
    pub fn new() -> Self {
        Self {
            state: Mutex::default(),
            version: watch::channel(0).0,
        }
    }

    fn update<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let r = f(&mut self.state.lock().unwrap_or_else(|e| e.into_inner()));
        self.version.send_modify(|v| *v += 1);
        r
    }

    fn read<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        f(&self.state.lock().unwrap_or_else(|e| e.into_inner()))
    }

    pub fn version(&self) -> u64 {
        *self.version.borrow()
    }

    /// Waits until the version is past `after`, or `timeout` passes.
    pub async fn changed_after(&self, after: u64, timeout: Duration) -> u64 {
        let mut rx = self.version.subscribe();
        let _ = tokio::time::timeout(timeout, rx.wait_for(|v| *v > after)).await;
        self.version()
    }

    /// Marks a change made elsewhere (the outbox, the clock) so the page
    /// refreshes.
    pub fn touch(&self) {
        self.version.send_modify(|v| *v += 1);
    }

    /// Whether `channel` exists for the bot to post in.
    pub fn knows_channel(channel: &str) -> bool {
        cast::channel_name(channel).is_some()
    }

    /// Posts a message; returns its ts.
    pub fn post(
        &self,
        channel: &str,
        user: &str,
        text: &str,
        blocks: Option<Value>,
        thread_ts: Option<String>,
        ephemeral_to: Option<String>,
    ) -> Result<Message, SlackError> {
        if !Self::knows_channel(channel) {
            return Err(SlackError("channel_not_found"));
        }
        if ephemeral_to
            .as_deref()
            .is_some_and(|u| cast::person(u).is_none())
        {
            return Err(SlackError("user_not_in_channel"));
        }
        Ok(self.update(|s| {
            // A reply to a reply belongs to the same thread, as in Slack.
            let thread_ts = thread_ts.map(|t| {
                s.messages
                    .iter()
                    .find(|m| m.channel == channel && m.ts == t)
                    .and_then(|m| m.thread_ts.clone())
                    .unwrap_or(t)
            });
            if let Some(parent) = &thread_ts
                && let Some(p) = s
                    .messages
                    .iter_mut()
                    .find(|m| m.channel == channel && &m.ts == parent)
            {
                p.reply_count += 1;
            }
            let message = Message {
                channel: channel.to_string(),
                ts: s.next_ts(),
                thread_ts,
                user: user.to_string(),
                text: text.to_string(),
                blocks,
                ephemeral: ephemeral_to.is_some(),
                ephemeral_to,
                edited: false,
                reply_count: 0,
            };
            s.messages.push(message.clone());
            message
        }))
    }

    /// Replaces a message's text and blocks (`chat.update`).
    pub fn edit(
        &self,
        channel: &str,
        ts: &str,
        text: Option<&str>,
        blocks: Option<Value>,
    ) -> Result<Message, SlackError> {
        self.update(|s| {
            let m = s
                .messages
                .iter_mut()
                .find(|m| m.channel == channel && m.ts == ts && !m.ephemeral)
                .ok_or(SlackError("message_not_found"))?;
            if let Some(text) = text {
                m.text = text.to_string();
            }
            if blocks.is_some() {
                m.blocks = blocks;
            }
            m.edited = true;
            Ok(m.clone())
        })
    }

    /// Replaces or removes the message a `response_url` points at.
    pub fn respond(
        &self,
        channel: &str,
        ts: &str,
        user: &str,
        body: &Value,
    ) -> Result<(), SlackError> {
        if body["delete_original"].as_bool() == Some(true) {
            return self.update(|s| {
                let before = s.messages.len();
                s.messages.retain(|m| !(m.channel == channel && m.ts == ts));
                (s.messages.len() < before)
                    .then_some(())
                    .ok_or(SlackError("message_not_found"))
            });
        }
        let text = body["text"].as_str().unwrap_or_default();
        let blocks = body.get("blocks").cloned().filter(|b| !b.is_null());
        if body["replace_original"].as_bool() == Some(true) {
            return self.update(|s| {
                let m = s
                    .messages
                    .iter_mut()
                    .find(|m| m.channel == channel && m.ts == ts)
                    .ok_or(SlackError("message_not_found"))?;
                m.text = text.to_string();
                m.blocks = blocks;
                m.edited = true;
                Ok(())
            });
        }
        let visible_to = (body["response_type"].as_str() != Some("in_channel")).then_some(user);
        self.post(
            channel,
            cast::BOT_USER_ID,
            text,
            blocks,
            body["thread_ts"].as_str().map(str::to_string),
            visible_to.map(str::to_string),
        )
        .map(|_| ())
    }

    pub fn message(&self, channel: &str, ts: &str) -> Option<Message> {
        self.read(|s| {
            s.messages
                .iter()
                .find(|m| m.channel == channel && m.ts == ts)
                .cloned()
        })
    }

    /// Every message `user` can see, oldest first.
    pub fn messages_for(&self, user: &str) -> Vec<Message> {
        self.read(|s| {
            s.messages
                .iter()
                .filter(|m| m.ephemeral_to.as_deref().is_none_or(|to| to == user))
                .filter(|m| cast::dm_owner(&m.channel).is_none_or(|p| p.id == user))
                .cloned()
                .collect()
        })
    }

    /// Every message in `channel`, for tests and the page.
    pub fn messages_in(&self, channel: &str) -> Vec<Message> {
        self.read(|s| {
            s.messages
                .iter()
                .filter(|m| m.channel == channel)
                .cloned()
                .collect()
        })
    }

    /// A fresh trigger id for a gesture of `user`.
    pub fn trigger(&self, user: &str) -> String {
        self.update(|s| {
            let now = Instant::now();
            s.triggers
                .retain(|_, (_, at)| now.duration_since(*at) < TRIGGER_LIFETIME);
            s.next_id += 1;
            let id = format!("{}.{}.{:x}", s.next_id, 7_000_000 + s.next_id, rand_u64());
            s.triggers.insert(id.clone(), (user.to_string(), now));
            id
        })
    }

    /// Spends a trigger id; the person it was issued to.
    fn spend_trigger(s: &mut State, trigger_id: &str) -> Result<String, SlackError> {
        let (user, at) = s
            .triggers
            .remove(trigger_id)
            .ok_or(SlackError("invalid_trigger_id"))?;
        if at.elapsed() >= TRIGGER_LIFETIME {
            return Err(SlackError("expired_trigger_id"));
        }
        Ok(user)
    }

    /// Completes a view as Slack returns it: ids, hash, state, metadata.
    fn stamp(s: &mut State, mut view: Value, id: Option<String>, root: Option<String>) -> Value {
        let id = id.unwrap_or_else(|| s.next_id("V"));
        let hash = format!(
            "{}.{:08x}",
            crate::clock::now().timestamp(),
            rand_u64() as u32
        );
        if let Some(obj) = view.as_object_mut() {
            obj.insert("id".into(), json!(id));
            obj.insert("team_id".into(), json!(cast::TEAM_ID));
            obj.insert("app_id".into(), json!(cast::APP_ID));
            obj.insert("bot_id".into(), json!(cast::BOT_ID));
            obj.insert("hash".into(), json!(hash));
            obj.insert("root_view_id".into(), json!(root.unwrap_or(id.clone())));
            obj.insert("state".into(), json!({"values": {}}));
            for (k, v) in [
                ("private_metadata", json!("")),
                ("callback_id", json!("")),
                ("external_id", json!("")),
                ("clear_on_close", json!(false)),
                ("notify_on_close", json!(false)),
                ("previous_view_id", Value::Null),
            ] {
                obj.entry(k).or_insert(v);
            }
        }
        view
    }

    /// `views.open`: a new modal stack for the trigger's person.
    pub fn open_view(&self, trigger_id: &str, view: Value) -> Result<Value, SlackError> {
        check_modal(&view)?;
        self.update(|s| {
            let user = Self::spend_trigger(s, trigger_id)?;
            let view = Self::stamp(s, view, None, None);
            let modal = Modal {
                view_id: view["id"].as_str().unwrap_or_default().to_string(),
                view: view.clone(),
                errors: HashMap::new(),
            };
            s.modals.insert(user, vec![modal]);
            Ok(view)
        })
    }

    /// `views.push`, or a submission's `response_action: push`: on top of
    /// the person's stack (Slack allows three).
    pub fn push_view(&self, user: &str, view: Value) -> Result<Value, SlackError> {
        check_modal(&view)?;
        self.update(|s| {
            let depth = s.modals.get(user).map_or(0, Vec::len);
            if depth == 0 {
                return Err(SlackError("not_found"));
            }
            if depth >= 3 {
                return Err(SlackError("push_limit_reached"));
            }
            let root = s.modals[user][0].view_id.clone();
            let view = Self::stamp(s, view, None, Some(root));
            let stack = s.modals.entry(user.to_string()).or_default();
            stack.push(Modal {
                view_id: view["id"].as_str().unwrap_or_default().to_string(),
                view: view.clone(),
                errors: HashMap::new(),
            });
            Ok(view)
        })
    }

    /// `views.push` with a trigger id.
    pub fn push_view_by_trigger(&self, trigger_id: &str, view: Value) -> Result<Value, SlackError> {
        let user = self.update(|s| Self::spend_trigger(s, trigger_id))?;
        self.push_view(&user, view)
    }

    /// `views.update` (and `response_action: update`): replaces a view in
    /// place, keeping its id; a stale `hash` is refused as Slack does.
    pub fn update_view(
        &self,
        view_id: &str,
        hash: Option<&str>,
        view: Value,
    ) -> Result<Value, SlackError> {
        self.update(|s| {
            let root = s
                .modals
                .values()
                .flatten()
                .find(|m| m.view_id == view_id)
                .map(|m| m.view["root_view_id"].clone());
            let current = s.view_mut(view_id).ok_or(SlackError("not_found"))?;
            if let Some(hash) = hash
                && current["hash"].as_str() != Some(hash)
            {
                return Err(SlackError("hash_conflict"));
            }
            let root = root.and_then(|r| r.as_str().map(str::to_string));
            let stamped = Self::stamp(s, view, Some(view_id.to_string()), root);
            if let Some(m) = s
                .modals
                .values_mut()
                .flatten()
                .find(|m| m.view_id == view_id)
            {
                m.view = stamped.clone();
                m.errors.clear();
            } else if let Some(home) = s
                .homes
                .values_mut()
                .find(|v| v["id"].as_str() == Some(view_id))
            {
                *home = stamped.clone();
            }
            Ok(stamped)
        })
    }

    /// `views.publish`: a person's App Home.
    pub fn publish_home(&self, user: &str, view: Value) -> Result<Value, SlackError> {
        if cast::person(user).is_none() {
            return Err(SlackError("user_not_found"));
        }
        if view["type"].as_str() != Some("home") {
            return Err(SlackError("invalid_arguments"));
        }
        check_blocks(&view, 100)?;
        self.update(|s| {
            let id = s
                .homes
                .get(user)
                .and_then(|v| v["id"].as_str())
                .map(str::to_string);
            let view = Self::stamp(s, view, id, None);
            s.homes.insert(user.to_string(), view.clone());
            Ok(view)
        })
    }

    pub fn home(&self, user: &str) -> Option<Value> {
        self.read(|s| s.homes.get(user).cloned())
    }

    pub fn modals(&self, user: &str) -> Vec<Modal> {
        self.read(|s| s.modals.get(user).cloned().unwrap_or_default())
    }

    /// A view by id (a modal or a Home), with `values` as its state.
    pub fn view_with_state(&self, view_id: &str, values: &Value) -> Option<Value> {
        self.read(|s| {
            let view = s
                .homes
                .values()
                .find(|v| v["id"].as_str() == Some(view_id))
                .or_else(|| {
                    s.modals
                        .values()
                        .flatten()
                        .find(|m| m.view_id == view_id)
                        .map(|m| &m.view)
                })?;
            let mut view = view.clone();
            view["state"] = json!({"values": values});
            Some(view)
        })
    }

    /// The person whose modal `view_id` is.
    pub fn modal_owner(&self, view_id: &str) -> Option<String> {
        self.read(|s| {
            s.modals
                .iter()
                .find(|(_, stack)| stack.iter().any(|m| m.view_id == view_id))
                .map(|(u, _)| u.clone())
        })
    }

    /// Closes `view_id` and every view above it on its stack.
    pub fn close_view(&self, user: &str, view_id: &str) {
        self.update(|s| {
            if let Some(stack) = s.modals.get_mut(user)
                && let Some(at) = stack.iter().position(|m| m.view_id == view_id)
            {
                stack.truncate(at);
            }
        });
    }

    /// Closes every modal of `user` (`response_action: clear`).
    pub fn clear_views(&self, user: &str) {
        self.update(|s| {
            s.modals.remove(user);
        });
    }

    /// Shows a submission's field errors on the modal.
    pub fn set_errors(&self, view_id: &str, errors: HashMap<String, String>) {
        self.update(|s| {
            if let Some(m) = s
                .modals
                .values_mut()
                .flatten()
                .find(|m| m.view_id == view_id)
            {
                m.errors = errors;
            }
        });
    }
}

/// A modal's own checks, as Slack makes them.
fn check_modal(view: &Value) -> Result<(), SlackError> {
    if view["type"].as_str() != Some("modal") {
        return Err(SlackError("invalid_arguments"));
    }
    if view["title"]["text"]
        .as_str()
        .is_none_or(|t| t.chars().count() > 24)
    {
        return Err(SlackError("invalid_arguments"));
    }
    check_blocks(view, 100)
}

fn check_blocks(view: &Value, max: usize) -> Result<(), SlackError> {
    match view["blocks"].as_array() {
        Some(b) if b.len() <= max => Ok(()),
        _ => Err(SlackError("invalid_blocks")),
    }
}

fn rand_u64() -> u64 {
    rand::random()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn modal(title: &str) -> Value {
        json!({"type": "modal", "title": {"type": "plain_text", "text": title}, "blocks": []})
    }

    #[test]
    fn timestamps_are_unique_and_increasing() {
        let w = Workspace::new();
        let a = w
            .post(cast::GENERAL, cast::BOT_USER_ID, "a", None, None, None)
            .unwrap();
        let b = w
            .post(cast::GENERAL, cast::BOT_USER_ID, "b", None, None, None)
            .unwrap();
        assert!(b.ts.parse::<f64>().unwrap() > a.ts.parse::<f64>().unwrap());
        assert_eq!(
            w.post("C0NOPE", cast::BOT_USER_ID, "x", None, None, None)
                .unwrap_err(),
            SlackError("channel_not_found")
        );
    }

    #[test]
    fn a_reply_counts_on_its_parent_and_a_reply_to_a_reply_joins_the_thread() {
        let w = Workspace::new();
        let parent = w
            .post(cast::APPROVALS, cast::BOT_USER_ID, "p", None, None, None)
            .unwrap();
        let r1 = w
            .post(
                cast::APPROVALS,
                cast::BOT_USER_ID,
                "r1",
                None,
                Some(parent.ts.clone()),
                None,
            )
            .unwrap();
        let r2 = w
            .post(
                cast::APPROVALS,
                cast::BOT_USER_ID,
                "r2",
                None,
                Some(r1.ts.clone()),
                None,
            )
            .unwrap();
        assert_eq!(r2.thread_ts.as_deref(), Some(parent.ts.as_str()));
        assert_eq!(
            w.message(cast::APPROVALS, &parent.ts).unwrap().reply_count,
            2
        );
    }

    #[test]
    fn ephemerals_and_dms_are_seen_only_by_their_person() {
        let w = Workspace::new();
        w.post(
            cast::GENERAL,
            cast::BOT_USER_ID,
            "for riley",
            None,
            None,
            Some(cast::REQUESTER.into()),
        )
        .unwrap();
        w.post(
            &cast::dm_of(cast::REQUESTER),
            cast::BOT_USER_ID,
            "dm",
            None,
            None,
            None,
        )
        .unwrap();
        assert_eq!(w.messages_for(cast::REQUESTER).len(), 2);
        assert!(w.messages_for(cast::MEMBER).is_empty());
    }

    #[test]
    fn a_trigger_opens_one_modal_for_its_person_and_only_once() {
        let w = Workspace::new();
        let t = w.trigger(cast::REQUESTER);
        let view = w.open_view(&t, modal("New campaign")).unwrap();
        assert_eq!(
            w.modals(cast::REQUESTER)[0].view_id,
            view["id"].as_str().unwrap()
        );
        assert_eq!(
            w.open_view(&t, modal("Again")).unwrap_err(),
            SlackError("invalid_trigger_id")
        );
        assert_eq!(
            w.open_view(
                &w.trigger(cast::REQUESTER),
                modal("A title far longer than Slack allows")
            )
            .unwrap_err(),
            SlackError("invalid_arguments")
        );
    }

    #[test]
    fn update_keeps_the_id_and_refuses_a_stale_hash() {
        let w = Workspace::new();
        let v = w
            .open_view(&w.trigger(cast::REQUESTER), modal("One"))
            .unwrap();
        let id = v["id"].as_str().unwrap();
        let stale = v["hash"].as_str().unwrap().to_string();
        let v2 = w.update_view(id, Some(&stale), modal("Two")).unwrap();
        assert_eq!(v2["id"], v["id"]);
        assert_eq!(w.modals(cast::REQUESTER)[0].view["title"]["text"], "Two");
        if v2["hash"] != v["hash"] {
            assert_eq!(
                w.update_view(id, Some(&stale), modal("Three")).unwrap_err(),
                SlackError("hash_conflict")
            );
        }
    }

    #[test]
    fn push_stacks_at_most_three_and_close_pops_from_the_view_up() {
        let w = Workspace::new();
        let root = w
            .open_view(&w.trigger(cast::REQUESTER), modal("1"))
            .unwrap();
        w.push_view(cast::REQUESTER, modal("2")).unwrap();
        w.push_view(cast::REQUESTER, modal("3")).unwrap();
        assert_eq!(
            w.push_view(cast::REQUESTER, modal("4")).unwrap_err(),
            SlackError("push_limit_reached")
        );
        let second = w.modals(cast::REQUESTER)[1].view_id.clone();
        w.close_view(cast::REQUESTER, &second);
        assert_eq!(w.modals(cast::REQUESTER).len(), 1);
        assert_eq!(
            w.modals(cast::REQUESTER)[0].view_id,
            root["id"].as_str().unwrap()
        );
    }
}
