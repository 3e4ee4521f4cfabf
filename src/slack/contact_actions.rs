//! Contacts in Slack: finding one (`/warm contact`, `/warm log`), its card,
//! and what the card's buttons do — Show (from a list of matches), Nudge,
//! Log interaction, Opt out of a channel, and Forget (approvers only).
//!
//! Invariants:
//! - A modal is opened with `views.open` straight from the click, before any
//!   database work (a trigger id lives 3 s); anything that needs the
//!   database follows with `views.update` on the opened view.
//! - Every write a click causes is idempotent on its own, on top of the
//!   per-payload de-duplication in `dedup.rs`: opting out appends a
//!   revocation only when the channel is not already revoked (decided under
//!   the contact's lock), forgetting a forgotten contact finds nothing, and a
//!   nudge's source is its modal's view id, so a second submit of the same
//!   modal sends once.
//! - The person asking is a team member: cards show full addresses (the
//!   message is ephemeral to them). The audit log gets masked ones only.
//! - Only approvers may forget; the click is checked again, not only the
//!   command that showed the button.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use slack_morphism::prelude::*;

use super::modal_form::{Values, errors, field, option_of, text_of};

use super::actions;
use super::mrkdwn::{escape, truncate};
use crate::{
    approval::{self, Content, Schedule, SendRequest, Submitted},
    consent::{self, Source},
    contacts::{self, ContactView},
    domain::mask_email,
    interactions::{Direction, Kind, NewInteraction},
    state::App,
};

/// Callback ids of the modals opened here.
pub const LOG_MODAL: &str = "contact_log_modal";
pub const NUDGE_MODAL: &str = "nudge_modal";
/// How many matches of a name the list offers.
pub const MAX_MATCHES: u64 = 5;
/// How many interactions the card shows.
const CARD_INTERACTIONS: usize = 5;

/// Action ids handled here.
pub fn handles(action_id: &str) -> bool {
    [
        actions::CONTACT_SHOW,
        actions::CONTACT_NUDGE,
        actions::CONTACT_LOG,
        actions::CONTACT_OPT_OUT,
        actions::CONTACT_FORGET,
        actions::NUDGE_TEMPLATE,
    ]
    .contains(&action_id)
}

/// Whether a submitted view is one of ours.
pub fn owns_view(ev: &SlackInteractionViewSubmissionEvent) -> bool {
    matches!(
        callback_id(&ev.view.view).as_deref(),
        Some(LOG_MODAL | NUDGE_MODAL)
    )
}

// ---------------------------------------------------------------------------
// Finding a contact.

/// What a query found.
pub enum Found {
    One(i64),
    Many(Vec<(i64, String, Option<String>)>),
    None,
}

/// An email-shaped query matches that address exactly; anything else is a
/// name searched word by word (warmest first).
pub async fn find(app: &App, query: &str) -> anyhow::Result<Found> {
    let query = query.trim();
    if query.contains('@') && !query.contains(char::is_whitespace) {
        return Ok(match contacts::find_by_email(&app.db, query).await? {
            Some(id) => Found::One(id),
            None => Found::None,
        });
    }
    let mut hits = contacts::search(&app.db, query, MAX_MATCHES + 1).await?;
    Ok(match hits.len() {
        0 => Found::None,
        1 => Found::One(hits[0].0),
        _ => {
            hits.truncate(MAX_MATCHES as usize + 1);
            Found::Many(hits)
        }
    })
}

/// The "which one?" list.
pub fn matches_message(
    app: &App,
    query: &str,
    mut hits: Vec<(i64, String, Option<String>)>,
) -> anyhow::Result<SlackMessageContent> {
    let more = hits.len() > MAX_MATCHES as usize;
    hits.truncate(MAX_MATCHES as usize);
    let matches: Vec<_> = hits
        .iter()
        .map(|(id, name, email)| {
            json!({
                "id": id.to_string(),
                "label": match email {
                    Some(e) => format!("*{}* · {}", escape(name), escape(e)),
                    None => format!("*{}*", escape(name)),
                },
            })
        })
        .collect();
    let blocks = app.blocks.message_blocks(
        "contact_matches.json.j2",
        json!({
            "query": escape(query),
            "matches": matches,
            "more": more,
            "show_action": actions::CONTACT_SHOW,
            "command": &app.settings.slack.command,
        }),
    )?;
    Ok(SlackMessageContent::new()
        .with_text(format!("Several contacts match “{query}”."))
        .with_blocks(blocks))
}

// ---------------------------------------------------------------------------
// The card.

#[derive(Serialize)]
struct OptOut {
    channel: String,
    value: String,
}

/// The contact card of `id`; `None` when there is no such contact.
pub async fn card(app: &App, id: i64) -> anyhow::Result<Option<SlackMessageContent>> {
    let Some(view) = contacts::view(&app.db, id).await? else {
        return Ok(None);
    };
    Ok(Some(card_message(app, &view)?))
}

fn card_message(app: &App, v: &ContactView) -> anyhow::Result<SlackMessageContent> {
    let c = &v.contact;
    let name = c.display_name();
    let dash = || "—".to_string();
    let reasons = bullets(v.warmth_reasons.iter().map(|r| escape(r)));
    let interactions = if v.interactions.is_empty() {
        "None yet.".to_string()
    } else {
        bullets(v.interactions.iter().take(CARD_INTERACTIONS).map(|i| {
            let mut line = format!(
                "{} · {} ({})",
                i.occurred_at.format("%Y-%m-%d"),
                i.kind,
                i.direction
            );
            if let Some(s) = i.summary.as_deref().filter(|s| !s.is_empty()) {
                line.push_str(&format!(": {}", escape(&truncate(s, 200))));
            }
            line
        }))
    };
    let consent = bullets(v.consent.iter().map(|(channel, state)| {
        let suppressed = v
            .suppressions
            .iter()
            .find(|s| &s.channel == channel)
            .map(|s| format!(" · :no_entry: suppressed ({})", s.reason))
            .unwrap_or_default();
        match state {
            Some(s) => format!(
                "{channel}: {} since {} ({}){suppressed}",
                if s.granted {
                    ":white_check_mark: granted"
                } else {
                    ":x: revoked"
                },
                s.at.format("%Y-%m-%d"),
                escape(&s.source)
            ),
            None => format!("{channel}: — none recorded{suppressed}"),
        }
    }));
    let opt_out: Vec<OptOut> = v
        .consent
        .iter()
        .filter(|(_, s)| s.as_ref().is_some_and(|s| s.granted))
        .map(|(channel, _)| OptOut {
            channel: channel.clone(),
            value: format!("{}:{channel}", c.id),
        })
        .collect();
    let ctx = json!({
        "id": c.id.to_string(),
        "name": name,
        "first_name": c.first_name.clone().unwrap_or_else(|| name.clone()),
        "email": c.email.as_deref().map(escape).unwrap_or_else(dash),
        "phone": c.phone.clone().unwrap_or_else(dash),
        "warmth": v.warmth.round() as i64,
        "stage": c.pipeline_stage.as_deref().map(escape).unwrap_or_else(dash),
        "tags": if c.tags.is_empty() { dash() } else { escape(&c.tags.join(", ")) },
        "status": escape(&c.status),
        "reasons": reasons,
        "interactions": interactions,
        "consent": consent,
        "opt_out": opt_out,
        "nudge_action": actions::CONTACT_NUDGE,
        "log_action": actions::CONTACT_LOG,
        "opt_out_action": actions::CONTACT_OPT_OUT,
    });
    let blocks = app.blocks.message_blocks("contact_card.json.j2", ctx)?;
    Ok(SlackMessageContent::new()
        .with_text(format!("{name}: warmth {}/100", v.warmth.round()))
        .with_blocks(blocks))
}

// ---------------------------------------------------------------------------
// Export and forget.

/// Slack's limit on a section's text.
const SECTION_TEXT: usize = 3000;
/// Sections of JSON one message may hold (50 blocks, less the intro and
/// the footer).
const MAX_EXPORT_SECTIONS: usize = 48;

/// The export as an ephemeral message, or `Err(bytes)` when it does not fit
/// in one message.
pub fn export_message(
    app: &App,
    name: &str,
    export: &serde_json::Value,
) -> anyhow::Result<Result<SlackMessageContent, usize>> {
    let text = serde_json::to_string_pretty(export)?;
    let Some(chunks) = chunk_for_sections(&text, SECTION_TEXT - 6, MAX_EXPORT_SECTIONS) else {
        return Ok(Err(text.len()));
    };
    let blocks = app.blocks.message_blocks(
        "contact_export.json.j2",
        json!({ "name": escape(name), "bytes": text.len(), "chunks": chunks }),
    )?;
    Ok(Ok(SlackMessageContent::new()
        .with_text(format!("Export of {name} ({} bytes of JSON)", text.len()))
        .with_blocks(blocks)))
}

/// Splits `text` into mrkdwn-escaped pieces of at most `max` characters,
/// cutting at line ends where it can and never inside an escape; `None`
/// when more than `max_chunks` pieces would be needed.
pub fn chunk_for_sections(text: &str, max: usize, max_chunks: usize) -> Option<Vec<String>> {
    let mut chunks: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut current_len = 0;
    let mut push = |piece: &str, piece_len: usize, chunks: &mut Vec<String>| {
        if current_len + piece_len > max && !current.is_empty() {
            chunks.push(std::mem::take(&mut current));
            current_len = 0;
        }
        current.push_str(piece);
        current_len += piece_len;
    };
    for line in text.split_inclusive('\n') {
        let escaped = escape(line);
        let len = escaped.chars().count();
        if len <= max {
            push(&escaped, len, &mut chunks);
        } else {
            // A line longer than a section: cut it between characters.
            for ch in line.chars() {
                let e = escape(&ch.to_string());
                let n = e.chars().count();
                push(&e, n, &mut chunks);
            }
        }
        if chunks.len() > max_chunks {
            return None;
        }
    }
    if !current.is_empty() {
        chunks.push(current);
    }
    (chunks.len() <= max_chunks).then_some(chunks)
}

/// The confirmation an approver gets before forgetting.
pub fn forget_prompt(
    app: &App,
    id: i64,
    name: &str,
    email: &str,
) -> anyhow::Result<SlackMessageContent> {
    let blocks = app.blocks.message_blocks(
        "contact_forget.json.j2",
        json!({
            "id": id.to_string(),
            "name": escape(name),
            "email": escape(email),
            "forget_action": actions::CONTACT_FORGET,
        }),
    )?;
    Ok(SlackMessageContent::new()
        .with_text(format!("Forget {name}? Confirm with the button."))
        .with_blocks(blocks))
}

// ---------------------------------------------------------------------------
// Logging an interaction (shared by `/warm log` and the modal).

/// Records an interaction by a team member and returns the new warmth.
pub async fn log_interaction(
    app: &App,
    contact_id: i64,
    user: &str,
    kind: Kind,
    direction: Direction,
    summary: Option<String>,
    occurred_at: DateTime<Utc>,
) -> anyhow::Result<crate::warmth::Score> {
    let now = Utc::now();
    let txn = crate::db::begin_write(&app.db).await?;
    let result = crate::interactions::record(
        &txn,
        &NewInteraction {
            contact_id,
            kind,
            direction,
            occurred_at,
            summary,
            source: format!("slack:{user}"),
            channel: None,
        },
        now,
    )
    .await;
    match result {
        Ok((_, score)) => {
            txn.commit().await?;
            Ok(score)
        }
        Err(e) => {
            txn.rollback().await.ok();
            Err(e)
        }
    }
}

// ---------------------------------------------------------------------------
// Clicks.

/// One click on a contact card, a match list, a forget prompt or the nudge
/// modal's template select.
pub async fn on_action(
    app: &App,
    ev: &SlackInteractionBlockActionsEvent,
    action: &SlackInteractionActionInfo,
) -> anyhow::Result<()> {
    let Some(user) = ev.user.as_ref().map(|u| u.id.clone()) else {
        return Ok(());
    };
    let id = action.action_id.0.as_str();
    let value = action
        .value
        .clone()
        .or_else(|| action.selected_option.as_ref().map(|o| o.value.clone()))
        .unwrap_or_default();
    if id == actions::NUDGE_TEMPLATE {
        return preview_template(app, ev, value);
    }
    if id == actions::CONTACT_OPT_OUT {
        return opt_out(app, ev, &user, &value).await;
    }
    let Ok(contact_id) = value.parse::<i64>() else {
        tracing::debug!(action = id, "contact action without a contact id");
        return Ok(());
    };
    match id {
        actions::CONTACT_SHOW => {
            let app2 = app.clone();
            let channel = ev.channel.as_ref().map(|c| c.id.clone());
            app.spawn("show a contact card", async move {
                let content = card(&app2, contact_id).await?.unwrap_or_else(|| {
                    SlackMessageContent::new().with_text("That contact no longer exists.".into())
                });
                ephemeral(&app2, channel, user, content).await
            });
        }
        actions::CONTACT_LOG => open_log_modal(app, ev.trigger_id.clone(), contact_id),
        actions::CONTACT_NUDGE => open_nudge_modal(app, ev.trigger_id.clone(), contact_id),
        actions::CONTACT_FORGET => forget(app, ev, user, contact_id).await?,
        _ => {}
    }
    Ok(())
}

async fn ephemeral(
    app: &App,
    channel: Option<SlackChannelId>,
    user: SlackUserId,
    content: SlackMessageContent,
) -> anyhow::Result<()> {
    let Some(channel) = channel else {
        return Ok(());
    };
    app.slack
        .post_ephemeral(SlackApiChatPostEphemeralRequest::new(
            channel, user, content,
        ))
        .await?;
    Ok(())
}

/// "Opt out of a channel": a revocation in the ledger, in the clicker's
/// name, unless the channel is already revoked; audited.
async fn opt_out(
    app: &App,
    ev: &SlackInteractionBlockActionsEvent,
    user: &SlackUserId,
    value: &str,
) -> anyhow::Result<()> {
    let Some((contact_id, channel)) = value
        .split_once(':')
        .and_then(|(id, ch)| Some((id.parse::<i64>().ok()?, ch.to_string())))
        .filter(|(_, ch)| crate::domain::Channel::parse(ch).is_some())
    else {
        return Ok(());
    };
    let text = match consent::lock_contact(&app.db, contact_id).await? {
        None => "That contact no longer exists.".to_string(),
        Some(txn) => {
            let already = consent::current(&txn, contact_id)
                .await?
                .get(&channel)
                .is_some_and(|c| !c.granted);
            if already {
                txn.rollback().await.ok();
                format!("{channel} was already opted out; nothing changed.")
            } else {
                consent::record(
                    &txn,
                    contact_id,
                    &channel,
                    false,
                    Source::SlackUser,
                    Some(&user.0),
                    Some("Opted out by a team member in Slack"),
                )
                .await?;
                crate::audit::record(
                    &txn,
                    &user.0,
                    "consent.revoked",
                    Some(&contact_id.to_string()),
                    json!({ "channel": channel, "source": Source::SlackUser.as_str() }),
                )
                .await?;
                txn.commit().await?;
                format!(
                    ":white_check_mark: Opted out of {channel}. Nothing more is sent there until they opt in again."
                )
            }
        }
    };
    let app2 = app.clone();
    let channel_id = ev.channel.as_ref().map(|c| c.id.clone());
    let user = user.clone();
    app.spawn("confirm an opt-out", async move {
        ephemeral(
            &app2,
            channel_id,
            user,
            SlackMessageContent::new().with_text(text),
        )
        .await
    });
    Ok(())
}

/// Forget, on an approver's confirmed click. `contacts::forget` erases in
/// one transaction and writes the audit entry; a second click finds nothing.
async fn forget(
    app: &App,
    ev: &SlackInteractionBlockActionsEvent,
    user: SlackUserId,
    contact_id: i64,
) -> anyhow::Result<()> {
    let text = if !approval::decision::is_approver(app, &user.0).await {
        "Only approvers can forget a contact.".to_string()
    } else if contacts::forget(&app.db, contact_id, &format!("slack:{}", user.0)).await? {
        ":white_check_mark: Forgotten. Only hashed tombstones remain, so an import cannot bring them back.".to_string()
    } else {
        "That contact was already forgotten; nothing changed.".to_string()
    };
    let app2 = app.clone();
    let channel = ev.channel.as_ref().map(|c| c.id.clone());
    app.spawn("confirm a forget", async move {
        ephemeral(
            &app2,
            channel,
            user,
            SlackMessageContent::new().with_text(text),
        )
        .await
    });
    Ok(())
}

fn open_log_modal(app: &App, trigger: SlackTriggerId, contact_id: i64) {
    let app2 = app.clone();
    app.spawn("open the log-interaction modal", async move {
        // Open first, with what the click carried; the name follows.
        let kinds: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
        let modal = |name: &str| {
            app2.blocks.view(
                "log_interaction_modal.json.j2",
                json!({
                    "callback_id": LOG_MODAL,
                    "contact_id": contact_id.to_string(),
                    "name": escape(name),
                    "kinds": kinds,
                }),
            )
        };
        let opened = app2
            .slack
            .views_open(SlackApiViewsOpenRequest::new(
                trigger,
                modal("this contact")?,
            ))
            .await?;
        if let Some(v) = contacts::view(&app2.db, contact_id).await? {
            update_view(
                &app2,
                opened.view.state_params.id.clone(),
                Some(opened.view.state_params.hash.clone()),
                modal(&v.contact.display_name())?,
            )
            .await?;
        }
        Ok(())
    });
}

/// Opens the nudge modal for one contact (a card's Nudge button, or
/// `/warm nudge`): `views.open` first, then the contact and a preview.
pub fn open_nudge_modal(app: &App, trigger: SlackTriggerId, contact_id: i64) {
    let app2 = app.clone();
    app.spawn("open the nudge modal", async move {
        let loading = nudge_view(&app2, contact_id, None, None)?;
        let opened = app2
            .slack
            .views_open(SlackApiViewsOpenRequest::new(trigger, loading))
            .await?;
        // Now the contact, and the first template rendered for them.
        let Some(v) = contacts::view(&app2.db, contact_id).await? else {
            return Ok(());
        };
        let first = marketing_templates(&app2).into_iter().next().map(|t| t.0);
        let view = nudge_view(&app2, contact_id, Some(&v), first.as_deref())?;
        update_view(
            &app2,
            opened.view.state_params.id.clone(),
            Some(opened.view.state_params.hash.clone()),
            view,
        )
        .await
    });
}

async fn update_view(
    app: &App,
    view_id: SlackViewId,
    hash: Option<String>,
    view: SlackView,
) -> anyhow::Result<()> {
    let mut req = SlackApiViewsUpdateRequest::new(view).with_view_id(view_id);
    // With the hash, an update racing a newer one fails instead of
    // overwriting it.
    if let Some(h) = hash {
        req = req.with_hash(h);
    }
    app.slack.views_update(req).await?;
    Ok(())
}

/// Email marketing templates: `(name, label)`.
fn marketing_templates(app: &App) -> Vec<(String, String)> {
    app.composer
        .catalog()
        .all()
        .filter(|t| t.channel == "email" && t.kind == crate::templates::Kind::Marketing)
        .map(|t| {
            let label = if t.description.is_empty() {
                t.name.clone()
            } else {
                t.description.clone()
            };
            (t.name.clone(), label)
        })
        .collect()
}

/// The contact's fields as template variables (what a send renders with).
pub fn variables(v: &ContactView) -> serde_json::Value {
    let c = &v.contact;
    let mut vars = serde_json::Map::new();
    for (k, val) in &c.metadata {
        vars.insert(k.clone(), val.clone());
    }
    let mut put = |k: &str, val: &Option<String>| {
        if let Some(val) = val {
            vars.insert(k.into(), json!(val));
        }
    };
    put("first_name", &c.first_name);
    put("last_name", &c.last_name);
    put("email", &c.email);
    put("phone", &c.phone);
    put("pipeline_stage", &c.pipeline_stage);
    vars.insert("tags".into(), json!(c.tags));
    serde_json::Value::Object(vars)
}

/// The nudge modal: `contact` is `None` while loading; `template` preselects
/// and renders one for the contact.
fn nudge_view(
    app: &App,
    contact_id: i64,
    contact: Option<&ContactView>,
    template: Option<&str>,
) -> anyhow::Result<SlackView> {
    let templates = marketing_templates(app);
    let mut subject = String::new();
    let mut body = String::new();
    let mut preview = "Choose a template, or write the message yourself.".to_string();
    let mut selected = None;
    if let (Some(v), Some(name)) = (contact, template) {
        selected = templates.iter().find(|t| t.0 == name).cloned();
        match app.composer.catalog().render(name, &variables(v)) {
            Ok(r) => {
                subject = r.subject.clone().unwrap_or_default();
                body = r.text.trim().to_string();
                preview = format!(
                    "*Preview for {}*\n>*{}*\n{}",
                    escape(&v.contact.display_name()),
                    escape(&subject),
                    quote(&escape(&truncate(&body, 2500)))
                );
            }
            Err(e) => {
                preview = format!(
                    ":warning: `{name}` cannot be rendered for this contact: {}",
                    escape(&e.to_string())
                );
            }
        }
    }
    let name = contact
        .map(|v| v.contact.display_name())
        .unwrap_or_else(|| "…".into());
    let email = contact.and_then(|v| v.contact.email.clone());
    Ok(app.blocks.view(
        "nudge_modal.json.j2",
        json!({
            "callback_id": NUDGE_MODAL,
            "contact_id": contact_id.to_string(),
            "name": escape(&name),
            "email": email.as_deref().map(escape),
            "template_action": actions::NUDGE_TEMPLATE,
            "templates": templates.iter().map(|(n, l)| json!({"name": n, "label": l})).collect::<Vec<_>>(),
            "selected": selected.map(|(n, l)| json!({"name": n, "label": l})),
            "subject": subject,
            "body": body,
            "preview": preview,
        }),
    )?)
}

/// A template chosen in the nudge modal: re-render the modal with it.
fn preview_template(
    app: &App,
    ev: &SlackInteractionBlockActionsEvent,
    template: String,
) -> anyhow::Result<()> {
    let (Some(view), SlackInteractionActionContainer::View(container)) = (&ev.view, &ev.container)
    else {
        return Ok(());
    };
    let Some(contact_id) = private_metadata(view).and_then(|m| m.parse::<i64>().ok()) else {
        return Ok(());
    };
    let view_id = container.view_id.clone();
    let app2 = app.clone();
    app.spawn("preview a nudge template", async move {
        let Some(v) = contacts::view(&app2.db, contact_id).await? else {
            return Ok(());
        };
        let updated = nudge_view(&app2, contact_id, Some(&v), Some(&template))?;
        update_view(&app2, view_id, None, updated).await
    });
    Ok(())
}

// ---------------------------------------------------------------------------
// Modal submissions.

/// A submitted log or nudge modal: errors go back into the modal on their
/// field; success replaces the modal with what happened.
pub async fn on_view_submission(
    app: &App,
    ev: &SlackInteractionViewSubmissionEvent,
) -> anyhow::Result<SlackInteractionResponse> {
    let values = ev
        .view
        .state_params
        .state
        .as_ref()
        .map(|s| s.values.clone())
        .unwrap_or_default();
    let Some(contact_id) = private_metadata(&ev.view.view).and_then(|m| m.parse::<i64>().ok())
    else {
        return Ok(SlackInteractionResponse::Empty);
    };
    let user = ev.user.id.0.clone();
    match callback_id(&ev.view.view).as_deref() {
        Some(LOG_MODAL) => submit_log(app, &values, contact_id, &user).await,
        Some(NUDGE_MODAL) => {
            submit_nudge(app, &values, contact_id, &user, &ev.view.state_params.id.0).await
        }
        _ => Ok(SlackInteractionResponse::Empty),
    }
}

fn result_view(app: &App, title: &str, text: String) -> anyhow::Result<SlackInteractionResponse> {
    let view = app.blocks.view(
        "modal_result.json.j2",
        json!({ "title": title, "text": text }),
    )?;
    Ok(SlackInteractionResponse::ViewSubmission(
        SlackViewSubmissionResponse::Update(SlackViewSubmissionUpdateResponse::new(view)),
    ))
}

async fn submit_log(
    app: &App,
    values: &Values,
    contact_id: i64,
    user: &str,
) -> anyhow::Result<SlackInteractionResponse> {
    let kind = option_of(values, "kind").and_then(|k| Kind::parse(&k));
    let direction = option_of(values, "direction").and_then(|d| Direction::parse(&d));
    let summary = text_of(values, "summary");
    let when = field(values, "when").and_then(|v| v.selected_date_time.as_ref().map(|t| t.0));
    let now = Utc::now();
    let mut problems = Vec::new();
    if kind.is_none() {
        problems.push(("kind", "Choose what happened.".to_string()));
    }
    if direction.is_none() {
        problems.push(("direction", "Choose who reached out.".to_string()));
    }
    match &summary {
        None => problems.push(("summary", "Say what happened, in a few words.".to_string())),
        Some(s) if s.chars().count() > 2000 => {
            problems.push(("summary", "Keep it under 2,000 characters.".to_string()))
        }
        _ => {}
    }
    let occurred_at = match when {
        None => now,
        Some(ts) => match DateTime::<Utc>::from_timestamp(ts.as_second(), 0) {
            Some(t) if t <= now + chrono::Duration::minutes(5) => t,
            Some(_) => {
                problems.push((
                    "when",
                    "That is in the future; log what already happened.".to_string(),
                ));
                now
            }
            None => {
                problems.push(("when", "Not a time warmline can read.".to_string()));
                now
            }
        },
    };
    if !problems.is_empty() {
        return Ok(errors(problems));
    }
    if !contacts::exists(&app.db, contact_id).await? {
        return result_view(app, "Not logged", "That contact no longer exists.".into());
    }
    let score = log_interaction(
        app,
        contact_id,
        user,
        kind.expect("checked"),
        direction.expect("checked"),
        summary,
        occurred_at,
    )
    .await?;
    result_view(
        app,
        "Logged",
        format!(
            ":white_check_mark: Logged. Warmth is now *{}*/100.{}",
            score.value.round(),
            score
                .reasons
                .first()
                .map(|r| format!("\n_{}_", escape(r)))
                .unwrap_or_default()
        ),
    )
}

async fn submit_nudge(
    app: &App,
    values: &Values,
    contact_id: i64,
    user: &str,
    view_id: &str,
) -> anyhow::Result<SlackInteractionResponse> {
    let subject = text_of(values, "subject");
    let body = text_of(values, "body");
    let Some(v) = contacts::view(&app.db, contact_id).await? else {
        return result_view(app, "Not sent", "That contact no longer exists.".into());
    };
    // What a send would meet: render both parts for this contact now, so a
    // mistake is answered on its field instead of failing at send time.
    let vars = variables(&v);
    let mut problems = Vec::new();
    match &subject {
        None => problems.push(("subject", "An email needs a subject.".to_string())),
        Some(s) => {
            if let Err(e) = crate::templates::render_part("subject", s, &vars) {
                problems.push(("subject", e.to_string()));
            }
        }
    }
    match &body {
        None => problems.push(("body", "Write the message.".to_string())),
        Some(b) => {
            if let Err(e) = crate::templates::render_part("text", b, &vars) {
                problems.push(("body", e.to_string()));
            }
        }
    }
    if v.contact.email.is_none() {
        problems.push(("body", "This contact has no email address.".to_string()));
    }
    if !problems.is_empty() {
        return Ok(errors(problems));
    }
    let first = v
        .contact
        .first_name
        .clone()
        .unwrap_or_else(|| v.contact.display_name());
    let req = SendRequest {
        name: format!("Nudge: {first}"),
        channel: "email".into(),
        requested_by: user.to_string(),
        recipients: vec![contact_id],
        content: Content::Inline {
            subject,
            body: body.expect("checked"),
        },
        variables: json!({}),
        schedule: Schedule::Now,
        source: format!("nudge:{contact_id}:{view_id}"),
    };
    let name = escape(&v.contact.display_name());
    Ok(match approval::submit(app, req).await {
        Ok(Submitted::Queued { .. }) => result_view(
            app,
            "Nudge sent",
            format!(":white_check_mark: Your message to *{name}* is on its way."),
        )?,
        Ok(Submitted::AwaitingApproval { .. }) => result_view(
            app,
            "Awaiting approval",
            format!(
                ":hourglass_flowing_sand: Your message to *{name}* is waiting for an approver in the approvals channel."
            ),
        )?,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), contact = %v.contact.email.as_deref().map(mask_email).unwrap_or_default(), "nudge submit failed");
            result_view(
                app,
                "Not sent",
                format!(
                    ":x: The nudge could not be submitted: {}",
                    escape(&e.to_string())
                ),
            )?
        }
    })
}

// ---------------------------------------------------------------------------
// Small helpers.

fn callback_id(view: &SlackView) -> Option<String> {
    match view {
        SlackView::Modal(m) => m.callback_id.as_ref().map(|c| c.0.clone()),
        SlackView::Home(h) => h.callback_id.as_ref().map(|c| c.0.clone()),
    }
}

fn private_metadata(view: &SlackView) -> Option<String> {
    match view {
        SlackView::Modal(m) => m.private_metadata.clone(),
        SlackView::Home(h) => h.private_metadata.clone(),
    }
}

fn bullets(lines: impl Iterator<Item = String>) -> String {
    lines
        .map(|l| format!("• {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn quote(s: &str) -> String {
    s.lines()
        .map(|l| format!(">{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_respect_the_limit_and_keep_every_character() {
        let text = format!("{{\n  \"a\": \"{}\",\n  \"b\": \"<x>\"\n}}", "y".repeat(50));
        let chunks = chunk_for_sections(&text, 20, 100).unwrap();
        assert!(chunks.iter().all(|c| c.chars().count() <= 20), "{chunks:?}");
        let joined: String = chunks.concat();
        assert_eq!(joined, escape(&text));
    }

    #[test]
    fn too_many_chunks_is_none() {
        assert!(chunk_for_sections(&"x\n".repeat(100), 4, 3).is_none());
    }
}
