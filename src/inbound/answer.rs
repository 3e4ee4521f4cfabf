//! Answering a reply from Slack: the inbound SMS, WhatsApp message or
//! Instagram DM posted in the campaign's thread (or the approvals channel)
//! carries an "Answer" button; an approver clicks it, writes in a modal,
//! and the answer goes back on the same channel, to the address that wrote.
//!
//! What may be written depends on the channel's customer-service window
//! ([`super::window`], read again on submit — time passes while a modal is
//! open):
//! - SMS: no window; a text with the sender's name and the STOP footer.
//! - WhatsApp: inside 24 h of their last message, free-form text
//!   ([`WhatsappContent::Text`]); outside, an approved template
//!   ([`WhatsappContent::Template`]) chosen in the modal with one input per
//!   parameter (the first pre-filled with the contact's first name).
//! - Instagram: inside 24 h, text; from 24 h to 7 days a person's text
//!   tagged `HUMAN_AGENT`; after 7 days nothing (an ephemeral message says
//!   so; no modal opens).
//!
//! Kind and consent (decided here):
//! - SMS answers stay `marketing`, consent-checked by the dispatcher at the
//!   last moment (a person who replied STOP in between gets nothing).
//! - A WhatsApp or Instagram answer inside the window (text, tagged text)
//!   is `transactional`: the person opened the conversation, so no consent
//!   row is needed (an unknown Instagram sender can be answered). But a
//!   contact whose newest consent row for the channel is a revocation (they
//!   sent STOP) is refused at submit with the reason; nothing is queued.
//! - A WhatsApp template takes its category's kind: a MARKETING template is
//!   `marketing` (refused at submit without WhatsApp consent on record, and
//!   consent-checked again by the dispatcher); UTILITY and AUTHENTICATION
//!   are `transactional`.
//!
//! Invariants:
//! - Only approvers may answer (an answer speaks for the team to a person
//!   outside it). Anyone else is told so, in an ephemeral message.
//! - The answer is an ordinary ledger message through the dispatcher,
//!   addressed to the inbound's `from_address` (the message's address
//!   wins over the contact's in `dispatcher::checks::address_of`; for
//!   Instagram it is the IGSID, which contacts have no column for). Its
//!   source is `answer:<inbound id>:<n>`, so two answers to one reply are
//!   two messages and a repeated submission is de-duplicated upstream.
//! - Email is answered from a mail client; a channel no provider carries is
//!   not offered.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{FromQueryResult, Statement, Value};
use serde_json::json;
use slack_morphism::prelude::*;

use crate::{
    dispatcher::ledger::{self, NewMessage},
    domain::{Channel, MessageKind, MessageState, mask_phone},
    inbound::window::{self, Window},
    instagram::{HUMAN_AGENT, InstagramContent},
    slack::{
        actions,
        error::IngressError,
        modal_form::{self, Values},
        mrkdwn::{escape, truncate},
        respond::{callback_id, ephemeral, private_metadata, result_view, update_view},
    },
    state::App,
    whatsapp::{TemplateCategory, WhatsappContent, templates::Template},
};

/// The channels an answer can be written on (a provider must carry it).
pub fn answerable(app: &App, channel: Channel) -> bool {
    matches!(
        channel,
        Channel::Sms | Channel::Whatsapp | Channel::Instagram
    ) && app.dispatcher.registry().for_channel(channel).is_some()
}

/// What may be sent in answer now, given the channel and its window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allowed {
    /// SMS: a consent-checked text; no window.
    Sms,
    /// Free-form text, until `until`.
    Text { until: DateTime<Utc> },
    /// Instagram past 24 h: a person's text tagged `HUMAN_AGENT`.
    HumanAgent { until: DateTime<Utc> },
    /// WhatsApp past 24 h: an approved template only.
    TemplatesOnly { last: Option<DateTime<Utc>> },
    /// Instagram past 7 days (or never written): nothing at all.
    Nothing { last: Option<DateTime<Utc>> },
}

impl Allowed {
    pub fn of(channel: Channel, window: Window) -> Self {
        match (channel, window) {
            (Channel::Sms | Channel::Email, _) => Self::Sms,
            (_, Window::Open { until }) => Self::Text { until },
            (_, Window::HumanAgent { until }) => Self::HumanAgent { until },
            (Channel::Whatsapp, Window::Closed { last }) => Self::TemplatesOnly { last },
            (_, Window::Closed { last }) => Self::Nothing { last },
        }
    }
}

fn at(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// Why an Instagram conversation cannot be answered any more.
fn instagram_closed(last: Option<DateTime<Utc>>) -> String {
    match last {
        Some(l) => format!(
            "Instagram allows no answer more than 7 days after the person's last message (theirs was on {}). They have to write first.",
            at(l)
        ),
        None => "Instagram allows no message to someone who has not written to us first.".into(),
    }
}

/// The notice's blocks: its text, the Answer button when `answer`, and
/// "Link to a contact" when `link` (an unknown Instagram sender).
pub fn blocks(
    app: &App,
    text: &str,
    inbound_id: i64,
    answer: bool,
    link: bool,
) -> anyhow::Result<Vec<SlackBlock>> {
    Ok(app.blocks.message_blocks(
        "inbound_notice.json.j2",
        json!({
            "text": text,
            "action_id": answer.then_some(actions::INBOUND_ANSWER),
            "link_action_id": link.then_some(actions::INBOUND_LINK),
            "inbound_id": inbound_id.to_string(),
        }),
    )?)
}

pub fn handles(action_id: &str) -> bool {
    action_id == actions::INBOUND_ANSWER || action_id == actions::INBOUND_ANSWER_TEMPLATE
}

pub fn owns_view(ev: &SlackInteractionViewSubmissionEvent) -> bool {
    callback_id(&ev.view.view).as_deref() == Some(actions::INBOUND_ANSWER_SUBMIT)
}

#[derive(Debug, FromQueryResult)]
pub(super) struct Inbound {
    pub(super) contact_id: Option<i64>,
    pub(super) channel: Channel,
    pub(super) from_address: String,
    pub(super) text: String,
    pub(super) first_name: Option<String>,
    pub(super) last_name: Option<String>,
}

pub(super) async fn load(app: &App, id: i64) -> anyhow::Result<Option<Inbound>> {
    Ok(Inbound::find_by_statement(Statement::from_sql_and_values(
        app.db.get_database_backend(),
        "SELECT i.contact_id, i.channel, i.from_address, i.text, c.first_name, c.last_name \
         FROM inbound_messages i LEFT JOIN contacts c ON c.id = i.contact_id WHERE i.id = $1",
        [Value::from(id)],
    ))
    .one(&app.db)
    .await?)
}

pub(super) fn who(i: &Inbound) -> String {
    let masked = mask_phone(&i.from_address);
    match crate::contacts::display::full_name(i.first_name.as_deref(), i.last_name.as_deref()) {
        Some(name) => format!("{} ({masked})", escape(&name)),
        None if i.contact_id.is_none() => format!("an unknown sender ({masked})"),
        None => masked,
    }
}

async fn window_of(app: &App, i: &Inbound) -> anyhow::Result<Allowed> {
    let w = window::current(&app.db, i.channel, i.contact_id, Some(&i.from_address)).await?;
    Ok(Allowed::of(i.channel, w))
}

/// A template as the select offers it: `name|language`.
fn template_value(t: &Template) -> String {
    format!("{}|{}", t.name, t.language)
}

fn template_label(t: &Template) -> String {
    format!("{} ({}, {})", t.name, t.language, t.category.label())
}

/// The answer modal for `inbound` under `allowed`; with templates, the
/// `selected` one (else the first) gets one input per parameter.
fn answer_view(
    app: &App,
    id: i64,
    inbound: &Inbound,
    allowed: Allowed,
    templates: &[Template],
    selected: Option<&Template>,
) -> anyhow::Result<SlackView> {
    let quoted = truncate(inbound.text.trim(), 1_500)
        .lines()
        .map(|l| format!("> {}", escape(l)))
        .collect::<Vec<_>>()
        .join("\n");
    let first = inbound.first_name.clone().unwrap_or_else(|| "they".into());
    let label = inbound.channel.label();
    let (hint, note) = match allowed {
        Allowed::Sms => (
            format!(
                "Sent by {label} with your sender's name and \"Reply STOP to opt out.\" — only if {first} still consents."
            ),
            None,
        ),
        Allowed::Text { until } => (
            format!("Sent by {label} as you write it."),
            Some(format!(
                ":large_green_circle: Their last message opened {label}'s 24-hour window: free-form text is allowed until *{}*.",
                at(until)
            )),
        ),
        Allowed::HumanAgent { until } => (
            "Sent by Instagram, tagged HUMAN_AGENT: it must be your own words.".into(),
            Some(format!(
                ":large_yellow_circle: More than 24 hours since their last message: Instagram allows a person's answer until *{}*, tagged HUMAN_AGENT (no automated text).",
                at(until)
            )),
        ),
        Allowed::TemplatesOnly { last } => (
            String::new(),
            Some(format!(
                ":red_circle: WhatsApp allows free-form text only within 24 hours of the person's last message{}. Now only an approved template may be sent; a marketing template also needs their WhatsApp consent.",
                last.map(|l| format!(" (theirs was on {})", at(l)))
                    .unwrap_or_default()
            )),
        ),
        Allowed::Nothing { last } => (String::new(), Some(instagram_closed(last))),
    };
    let chosen = selected.or(templates.first());
    let params: Vec<_> = chosen
        .map(|t| {
            (1..=t.parameter_count)
                .map(|n| {
                    json!({
                        "block_id": format!("param_{n}"),
                        "label": format!("{{{{{n}}}}}"),
                        "value": if n == 1 { inbound.first_name.clone() } else { None },
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(app.blocks.view(
        "inbound_answer_modal.json.j2",
        json!({
            "callback_id": actions::INBOUND_ANSWER_SUBMIT,
            "inbound_id": id.to_string(),
            "who": who(inbound),
            "channel": label,
            "quoted": quoted,
            "hint": hint,
            "note": note,
            "templates_mode": matches!(allowed, Allowed::TemplatesOnly { .. }),
            "template_action": actions::INBOUND_ANSWER_TEMPLATE,
            "templates": templates.iter().map(|t| json!({"value": template_value(t), "label": template_label(t)})).collect::<Vec<_>>(),
            "selected": chosen.map(|t| json!({"value": template_value(t), "label": template_label(t)})),
            "template_body": chosen.map(|t| truncate(&t.body, 2_000)).map(|b| b.lines().map(|l| format!("> {}", escape(l))).collect::<Vec<_>>().join("\n")),
            "params": params,
        }),
    )?)
}

/// The Answer button (approvers get the modal, others an explanation), and
/// a template chosen in an open modal.
pub async fn on_action(
    app: &App,
    ev: &SlackInteractionBlockActionsEvent,
    action: &SlackInteractionActionInfo,
) -> Result<(), IngressError> {
    if action.action_id.0 == actions::INBOUND_ANSWER_TEMPLATE {
        return choose_template(app, ev, action).await;
    }
    let Some(user) = ev.user.as_ref().map(|u| u.id.clone()) else {
        return Ok(());
    };
    let id = IngressError::id_in(
        action.value.as_deref(),
        "Answer button without an inbound id",
    )?;
    let channel = ev.channel.as_ref().map(|c| c.id.clone());
    let tell = |text: String| {
        let user = user.clone();
        let channel = channel.clone();
        async move {
            ephemeral(
                app,
                channel,
                user,
                SlackMessageContent::new().with_text(text),
            )
            .await
        }
    };
    if !crate::approval::decision::is_approver(app, &user.0).await {
        tell(":lock: Only approvers can answer a contact from Slack.".into()).await?;
        return Ok(());
    }
    let inbound = load(app, id)
        .await?
        .ok_or_else(|| IngressError::Malformed(format!("no inbound message {id}")))?;
    let allowed = window_of(app, &inbound).await?;
    let templates = match allowed {
        Allowed::Nothing { last } => {
            tell(format!(":no_entry: {}", instagram_closed(last))).await?;
            return Ok(());
        }
        Allowed::TemplatesOnly { last } => {
            let usable = crate::whatsapp::templates::usable(&app.db).await?;
            if usable.is_empty() {
                tell(format!(
                    ":no_entry: WhatsApp allows free-form text only within 24 hours of the person's last message{}, and no approved template is synced. Run `/warm whatsapp templates` once one is approved in Meta's console.",
                    last.map(|l| format!(" (theirs was on {})", at(l))).unwrap_or_default()
                ))
                .await?;
                return Ok(());
            }
            usable
        }
        _ => Vec::new(),
    };
    let view = answer_view(app, id, &inbound, allowed, &templates, None)?;
    app.slack
        .views_open(SlackApiViewsOpenRequest::new(ev.trigger_id.clone(), view))
        .await
        .map_err(|e| anyhow::Error::from(e).context("opening the answer modal"))?;
    Ok(())
}

/// A template chosen in the modal: re-render it with that template's
/// parameter inputs.
async fn choose_template(
    app: &App,
    ev: &SlackInteractionBlockActionsEvent,
    action: &SlackInteractionActionInfo,
) -> Result<(), IngressError> {
    let (Some(view), SlackInteractionActionContainer::View(container)) = (&ev.view, &ev.container)
    else {
        return Ok(());
    };
    let Some(id) = private_metadata(view).and_then(|m| m.parse::<i64>().ok()) else {
        return Ok(());
    };
    let Some(choice) = action.selected_option.as_ref().map(|o| o.value.clone()) else {
        return Ok(());
    };
    let Some(inbound) = load(app, id).await? else {
        return Ok(());
    };
    let allowed = window_of(app, &inbound).await?;
    let templates = crate::whatsapp::templates::usable(&app.db).await?;
    let selected = templates.iter().find(|t| template_value(t) == choice);
    let updated = answer_view(app, id, &inbound, allowed, &templates, selected)?;
    update_view(app, container.view_id.clone(), None, updated).await?;
    Ok(())
}

/// What the submitted modal asks to send.
enum Written {
    Text(String),
    Template {
        value: String,
        params: Vec<(String, Option<String>)>,
    },
}

fn written(values: &Values) -> Option<Written> {
    if let Some(value) = modal_form::option_of(values, "template") {
        let mut params = Vec::new();
        for n in 1.. {
            let block = format!("param_{n}");
            if modal_form::field(values, &block).is_none() {
                break;
            }
            params.push((block.clone(), modal_form::text_of(values, &block)));
        }
        return Some(Written::Template { value, params });
    }
    modal_form::field(values, "answer")
        .map(|_| Written::Text(modal_form::text_of(values, "answer").unwrap_or_default()))
}

/// The modal's submission: the window and consent re-checked, the answer
/// queued, and the modal says so.
pub async fn on_view_submission(
    app: &App,
    ev: &SlackInteractionViewSubmissionEvent,
) -> Result<SlackInteractionResponse, IngressError> {
    let values = modal_form::submitted(&ev.view);
    let written = written(&values);
    let field = match &written {
        Some(Written::Template { .. }) => "template",
        _ => "answer",
    };
    let errors = |message: String| {
        Ok(SlackInteractionResponse::ViewSubmission(
            SlackViewSubmissionResponse::Errors(SlackViewSubmissionErrorsResponse::new(
                HashMap::from([(field.to_string(), message)]),
            )),
        ))
    };
    let user = ev.user.id.0.clone();
    if !crate::approval::decision::is_approver(app, &user).await {
        return errors("Only approvers can answer a contact from Slack.".into());
    }
    let id = IngressError::id_in(
        private_metadata(&ev.view.view).as_deref(),
        "answer modal without an inbound id",
    )?;
    let Some(written) = written else {
        return errors("Write the answer first.".into());
    };
    if let Written::Text(t) = &written
        && t.is_empty()
    {
        return errors("Write the answer first.".into());
    }
    let Some(inbound) = load(app, id).await? else {
        return errors("That message is gone (the contact may have been forgotten).".into());
    };
    if !answerable(app, inbound.channel) {
        return errors("No provider carries this channel any more.".into());
    }
    let label = inbound.channel.label();
    let consent = match inbound.contact_id {
        Some(c) => crate::consent::current(&app.db, c)
            .await?
            .remove(inbound.channel.as_str()),
        None => None,
    };
    let now = crate::clock::now();
    let allowed = window_of(app, &inbound).await?;
    let (kind, payload, address) = match (inbound.channel, &written) {
        (Channel::Sms, Written::Text(answer)) => {
            let Some(_) = inbound.contact_id else {
                return errors(
                    "The sender is not a known contact: there is no consent to send under.".into(),
                );
            };
            let text = crate::sms::compose(
                answer,
                MessageKind::Marketing,
                &crate::sms::sender_name(&app.settings),
            );
            // The contact's number, as before: SMS answers are marketing
            // texts, consent-checked at the last moment.
            (MessageKind::Marketing, crate::sms::content(&text), None)
        }
        (Channel::Whatsapp | Channel::Instagram, _) => {
            if let Some(c) = consent.as_ref().filter(|c| !c.granted) {
                return errors(format!(
                    "They opted out of {label} on {} (they sent STOP): no answer is sent. They can write START to opt back in.",
                    at(c.at)
                ));
            }
            let address = Some(inbound.from_address.clone());
            match (&written, allowed) {
                (_, Allowed::Nothing { last }) => return errors(instagram_closed(last)),
                (Written::Text(_), Allowed::TemplatesOnly { last }) => {
                    return errors(format!(
                        "The 24-hour window closed while this was open (their last message was on {}): WhatsApp now allows only a template. Close this and click Answer again.",
                        last.map(at).unwrap_or_default()
                    ));
                }
                (Written::Text(text), Allowed::Text { .. } | Allowed::HumanAgent { .. })
                    if inbound.channel == Channel::Instagram =>
                {
                    let tag = matches!(allowed, Allowed::HumanAgent { .. })
                        .then(|| HUMAN_AGENT.to_string());
                    let content = InstagramContent {
                        text: text.clone(),
                        tag,
                    };
                    (MessageKind::Transactional, content.to_payload(), address)
                }
                (Written::Text(text), _) => {
                    let content = WhatsappContent::Text { text: text.clone() };
                    (MessageKind::Transactional, content.to_payload(), address)
                }
                (Written::Template { .. }, _) if inbound.channel == Channel::Instagram => {
                    return errors("Instagram has no templates.".into());
                }
                (Written::Template { value, params }, _) => {
                    let Some((name, language)) = value.split_once('|') else {
                        return errors("Choose a template.".into());
                    };
                    let template =
                        match crate::whatsapp::templates::find(&app.db, name, language).await? {
                            Some(t) => t,
                            None => return errors(format!("Template {name} is no longer synced.")),
                        };
                    if let Err(why) = template.usable() {
                        return errors(format!("Template {name} cannot be sent: {why}."));
                    }
                    if params.len() != template.parameter_count {
                        return errors(format!(
                            "Template {name} takes {} parameter(s): choose it again to get its fields.",
                            template.parameter_count
                        ));
                    }
                    let mut filled = Vec::new();
                    let mut missing = Vec::new();
                    for (block, v) in params {
                        match v {
                            Some(v) if !v.is_empty() => filled.push(v.clone()),
                            _ => missing.push((block.as_str(), "Fill this parameter.".to_string())),
                        }
                    }
                    if !missing.is_empty() {
                        return Ok(modal_form::errors(missing));
                    }
                    if template.category == TemplateCategory::Marketing
                        && !consent.as_ref().is_some_and(|c| c.granted)
                    {
                        return errors(format!(
                            "{name} is a marketing template: it needs their WhatsApp consent, and there is none on record. Choose a utility template."
                        ));
                    }
                    let text = match template.render(&filled) {
                        Ok(t) => t,
                        Err(e) => return errors(e),
                    };
                    let kind = if template.category == TemplateCategory::Marketing {
                        MessageKind::Marketing
                    } else {
                        MessageKind::Transactional
                    };
                    let content = WhatsappContent::Template {
                        template: template.message(filled),
                        text,
                    };
                    (kind, content.to_payload(), address)
                }
            }
        }
        _ => return errors("This channel is answered elsewhere.".into()),
    };
    let provider = app
        .dispatcher
        .registry()
        .for_channel(inbound.channel)
        .map(|p| p.name().to_string())
        .unwrap_or_default();
    let earlier = crate::db::count(
        &app.db,
        "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM messages WHERE source LIKE $1",
        vec![Value::from(format!("answer:{id}:%"))],
    )
    .await?;
    let message = NewMessage {
        source: format!("answer:{id}:{}", earlier + 1),
        campaign_id: None,
        contact_id: inbound.contact_id,
        channel: inbound.channel,
        kind,
        address,
        provider,
        payload,
        template: None,
        state: MessageState::Queued,
        due_at: now,
    };
    ledger::enqueue(&app.db, std::slice::from_ref(&message), now).await?;
    app.dispatcher.wake();
    crate::audit::record(
        &app.db,
        &user,
        "inbound.answered",
        Some(&mask_phone(&inbound.from_address)),
        json!({
            "inbound_id": id,
            "message_id": message.id(),
            "contact_id": inbound.contact_id,
            "channel": inbound.channel.as_str(),
            "kind": kind.as_str(),
        }),
    )
    .await?;
    let how = match (inbound.channel, allowed) {
        (Channel::Sms, _) => "it goes out if they still consent, outside quiet hours.".to_string(),
        (Channel::Instagram, Allowed::HumanAgent { .. }) => {
            "by Instagram, tagged HUMAN_AGENT.".to_string()
        }
        (_, _) if kind == MessageKind::Marketing => {
            format!("by {label}, if they still consent, outside quiet hours.")
        }
        _ => format!("by {label}."),
    };
    Ok(result_view(
        app,
        "Answer queued",
        format!(":outbox_tray: Queued to *{}*: {how}", who(&inbound)),
    )?)
}
