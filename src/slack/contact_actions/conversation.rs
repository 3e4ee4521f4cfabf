//! WhatsApp and Instagram in the nudge modal: what each channel allows for
//! this contact now (its window, [`crate::inbound::window`]), offered as
//! extra options of the modal's template select, and the submission of
//! such a nudge.
//!
//! What is offered:
//! - WhatsApp, when a provider carries it and the contact has a phone:
//!   inside the 24-hour window "write a message" (free-form); outside it
//!   only the usable approved templates, and the modal says why.
//! - Instagram, when a provider carries it and the contact has
//!   `metadata.instagram_id`: inside 24 h "write a message"; from 24 h to 7
//!   days the same, tagged `HUMAN_AGENT` (a person writes a nudge); after
//!   that, or without an Instagram id, not offered, and the modal says why.
//!   There is no cold Instagram message.
//!
//! Invariants:
//! - The window is read again on submit; a closed one is an error on the
//!   message field and nothing is queued.
//! - A contact whose newest consent row for the channel is a revocation
//!   gets nothing (error on submit).
//! - A free-form WhatsApp nudge goes through `approval::submit` like any
//!   nudge (an inline `marketing` message, consent-checked at send time).
//!   A template or an Instagram message cannot be carried by an approval
//!   request yet (its content is email/SMS-shaped, and Instagram needs the
//!   IGSID as address): those are queued directly, by approvers only, like
//!   an answer from Slack (`inbound::answer`: same kinds, same audit), with
//!   the nudge's source `nudge:<contact>:<view id>` so a repeated submit
//!   sends once.

use chrono::{DateTime, Utc};
use serde_json::json;
use slack_morphism::prelude::*;

use crate::{
    contacts::ContactView,
    dispatcher::ledger::{self, NewMessage},
    domain::{Channel, MessageKind, MessageState, mask_phone},
    inbound::{answer::Allowed, window},
    instagram::{HUMAN_AGENT, InstagramContent},
    slack::{
        modal_form::errors,
        mrkdwn::{escape, truncate},
        respond::result_view,
    },
    state::App,
    whatsapp::{TemplateCategory, WhatsappContent, templates::Template},
};

/// Option values of the template select that are not catalog templates.
pub(super) const PREFIX: &str = "meta:";
pub(super) const WA_TEXT: &str = "meta:whatsapp:text";
const WA_TEMPLATE: &str = "meta:whatsapp:template:";
const IG_TEXT: &str = "meta:instagram:text";

/// The channel an option value chooses, when it is one of ours.
pub(super) fn channel_of(value: &str) -> Option<Channel> {
    if value.starts_with("meta:whatsapp:") {
        Some(Channel::Whatsapp)
    } else if value == IG_TEXT {
        Some(Channel::Instagram)
    } else {
        None
    }
}

/// What WhatsApp and Instagram allow for one contact now.
#[derive(Debug, Clone, Default)]
pub(super) struct Conversation {
    /// `(value, label)`: options for the template select.
    pub(super) options: Vec<(String, String)>,
    /// Why a channel is (or is not) offered, in words.
    pub(super) notes: Vec<String>,
    whatsapp: Option<Allowed>,
    instagram: Option<(Allowed, String)>,
    templates: Vec<Template>,
}

fn at(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

fn instagram_id(v: &ContactView) -> Option<String> {
    v.contact
        .metadata
        .get("instagram_id")
        .and_then(|id| match id {
            serde_json::Value::String(s) => Some(s.trim().to_string()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
        .filter(|s| !s.is_empty())
}

/// Reads both channels' windows for the contact.
pub(super) async fn conversation(app: &App, v: &ContactView) -> anyhow::Result<Conversation> {
    let registry = app.dispatcher.registry();
    let mut c = Conversation::default();
    let id = v.contact.id;
    if registry.for_channel(Channel::Whatsapp).is_some() {
        match v.contact.phone.as_deref() {
            None => c
                .notes
                .push("WhatsApp: not offered, the contact has no phone number.".into()),
            Some(phone) => {
                let w = window::current(&app.db, Channel::Whatsapp, Some(id), Some(phone)).await?;
                let allowed = Allowed::of(Channel::Whatsapp, w);
                match allowed {
                    Allowed::Text { until } => {
                        c.options
                            .push((WA_TEXT.into(), "WhatsApp: write a message".into()));
                        c.notes.push(format!(
                            "WhatsApp: they wrote in the last 24 hours, so free-form text is allowed until {}.",
                            at(until)
                        ));
                    }
                    _ => {
                        c.templates = crate::whatsapp::templates::usable(&app.db).await?;
                        for t in &c.templates {
                            c.options.push((
                                format!("{WA_TEMPLATE}{}|{}", t.name, t.language),
                                format!("WhatsApp template: {} ({})", t.name, t.category.label()),
                            ));
                        }
                        c.notes.push(format!(
                            "WhatsApp: {}: outside the 24-hour window only an approved template may be sent{}.",
                            w.words(crate::clock::now()),
                            if c.templates.is_empty() {
                                ", and none is synced (`/warm whatsapp templates`)"
                            } else {
                                ""
                            }
                        ));
                    }
                }
                c.whatsapp = Some(allowed);
            }
        }
    }
    if registry.for_channel(Channel::Instagram).is_some() {
        match instagram_id(v) {
            None => c.notes.push(
                "Instagram: not offered, the contact has no Instagram id (link one from a DM they sent).".into(),
            ),
            Some(igsid) => {
                let w = window::current(&app.db, Channel::Instagram, Some(id), Some(&igsid)).await?;
                let allowed = Allowed::of(Channel::Instagram, w);
                match allowed {
                    Allowed::Text { until } => {
                        c.options
                            .push((IG_TEXT.into(), "Instagram: write a message".into()));
                        c.notes.push(format!(
                            "Instagram: open until {} (24 hours after their last message).",
                            at(until)
                        ));
                    }
                    Allowed::HumanAgent { until } => {
                        c.options.push((
                            IG_TEXT.into(),
                            "Instagram: write a message (HUMAN_AGENT)".into(),
                        ));
                        c.notes.push(format!(
                            "Instagram: past 24 hours, so your message is tagged HUMAN_AGENT; allowed until {}.",
                            at(until)
                        ));
                    }
                    _ => c.notes.push(format!(
                        "Instagram: not offered ({}): Instagram allows no message more than 7 days after their last one, and no cold outreach.",
                        w.words(crate::clock::now())
                    )),
                }
                c.instagram = Some((allowed, igsid));
            }
        }
    }
    Ok(c)
}

impl Conversation {
    fn template(&self, value: &str) -> Option<&Template> {
        let key = value.strip_prefix(WA_TEMPLATE)?;
        self.templates
            .iter()
            .find(|t| format!("{}|{}", t.name, t.language) == key)
    }
}

/// What the modal shows for one of our options: `(body, preview, hint)`.
pub(super) fn shown(
    conv: &Conversation,
    v: &ContactView,
    value: &str,
) -> (String, String, &'static str) {
    let name = escape(&v.contact.display_name());
    if let Some(t) = conv.template(value) {
        let params: Vec<String> = (1..=t.parameter_count)
            .map(|n| {
                if n == 1 {
                    v.contact.first_name.clone().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .collect();
        let body = params.join("\n");
        let preview = match t.render(&params) {
            Ok(text) => format!(
                "*{} for {name}* ({}):\n{}",
                escape(&t.name),
                t.category.label(),
                quote(&escape(&truncate(&text, 2500)))
            ),
            Err(e) => escape(&e),
        };
        return (
            body,
            preview,
            "The template's parameters, one per line: the first line is {{1}}.",
        );
    }
    let preview = match (channel_of(value), conv.instagram.as_ref()) {
        (Some(Channel::Instagram), Some((Allowed::HumanAgent { .. }, _))) => {
            format!("Written by you to *{name}* on Instagram, tagged HUMAN_AGENT.")
        }
        (Some(Channel::Instagram), _) => format!("Written by you to *{name}* on Instagram."),
        _ => format!("Written by you to *{name}* on WhatsApp, sent as you write it."),
    };
    (
        String::new(),
        preview,
        "Sent as you write it. You may use {{ first_name }} and the contact's other fields.",
    )
}

fn quote(s: &str) -> String {
    s.lines()
        .map(|l| format!(">{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// What a free-form WhatsApp nudge needs before `approval::submit`: `Ok`
/// when it may go, else the modal's error.
pub(super) async fn check_whatsapp_text(
    app: &App,
    v: &ContactView,
) -> anyhow::Result<Result<(), SlackInteractionResponse>> {
    let conv = conversation(app, v).await?;
    if let Some(r) = revoked(app, v.contact.id, Channel::Whatsapp).await? {
        return Ok(Err(r));
    }
    Ok(match conv.whatsapp {
        Some(Allowed::Text { .. }) => Ok(()),
        _ => Err(errors(vec![(
            "body",
            "The 24-hour window is closed: WhatsApp allows only an approved template now. Choose one."
                .to_string(),
        )])),
    })
}

async fn revoked(
    app: &App,
    contact: i64,
    channel: Channel,
) -> anyhow::Result<Option<SlackInteractionResponse>> {
    let current = crate::consent::current(&app.db, contact).await?;
    Ok(current
        .get(channel.as_str())
        .filter(|c| !c.granted)
        .map(|c| {
            errors(vec![(
                "body",
                format!(
                    "They opted out of {} on {}: nothing is sent.",
                    channel.label(),
                    at(c.at)
                ),
            )])
        }))
}

/// A WhatsApp template or an Instagram nudge: checked again and queued.
pub(super) async fn submit(
    app: &App,
    v: &ContactView,
    value: &str,
    body: Option<String>,
    user: &str,
    view_id: &str,
) -> anyhow::Result<SlackInteractionResponse> {
    let contact_id = v.contact.id;
    if !crate::approval::decision::is_approver(app, user).await {
        return Ok(errors(vec![(
            "template",
            "Only approvers can send a WhatsApp template or an Instagram message from a nudge."
                .to_string(),
        )]));
    }
    let Some(channel) = channel_of(value) else {
        return Ok(errors(vec![("template", "Choose a template.".to_string())]));
    };
    if let Some(r) = revoked(app, contact_id, channel).await? {
        return Ok(r);
    }
    let conv = conversation(app, v).await?;
    let (kind, payload, address) = if channel == Channel::Instagram {
        let Some((allowed, igsid)) = conv.instagram.clone() else {
            return Ok(errors(vec![(
                "body",
                "The contact has no Instagram id.".to_string(),
            )]));
        };
        let tag = match allowed {
            Allowed::Text { .. } => None,
            Allowed::HumanAgent { .. } => Some(HUMAN_AGENT.to_string()),
            _ => {
                return Ok(errors(vec![(
                    "body",
                    "Instagram allows no message more than 7 days after their last one."
                        .to_string(),
                )]));
            }
        };
        let Some(text) = body.filter(|b| !b.is_empty()) else {
            return Ok(errors(vec![("body", "Write the message.".to_string())]));
        };
        let text = match crate::templates::render_part("text", &text, &variables(v)) {
            Ok(t) => t,
            Err(e) => return Ok(errors(vec![("body", e.to_string())])),
        };
        (
            MessageKind::Transactional,
            InstagramContent { text, tag }.to_payload(),
            igsid,
        )
    } else {
        let Some(t) = conv.template(value).cloned() else {
            return Ok(errors(vec![(
                "template",
                "That template is no longer usable: choose another.".to_string(),
            )]));
        };
        let params: Vec<String> = body
            .unwrap_or_default()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect();
        if params.len() != t.parameter_count {
            return Ok(errors(vec![(
                "body",
                format!(
                    "{} takes {} parameter(s), one per line; got {}.",
                    t.name,
                    t.parameter_count,
                    params.len()
                ),
            )]));
        }
        let consent = crate::consent::current(&app.db, contact_id).await?;
        if t.category == TemplateCategory::Marketing
            && !consent.get("whatsapp").is_some_and(|c| c.granted)
        {
            return Ok(errors(vec![(
                "template",
                format!(
                    "{} is a marketing template and there is no WhatsApp consent on record: choose a utility template.",
                    t.name
                ),
            )]));
        }
        let text = match t.render(&params) {
            Ok(text) => text,
            Err(e) => return Ok(errors(vec![("body", e)])),
        };
        let kind = if t.category == TemplateCategory::Marketing {
            MessageKind::Marketing
        } else {
            MessageKind::Transactional
        };
        let Some(phone) = v.contact.phone.clone() else {
            return Ok(errors(vec![(
                "body",
                "This contact has no phone number.".to_string(),
            )]));
        };
        (
            kind,
            WhatsappContent::Template {
                template: t.message(params),
                text,
            }
            .to_payload(),
            phone,
        )
    };
    let provider = app
        .dispatcher
        .registry()
        .for_channel(channel)
        .map(|p| p.name().to_string())
        .unwrap_or_default();
    let now = crate::clock::now();
    let message = NewMessage {
        source: format!("nudge:{contact_id}:{view_id}"),
        campaign_id: None,
        contact_id: Some(contact_id),
        channel,
        kind,
        address: Some(address.clone()),
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
        user,
        "contact.nudged",
        Some(&mask_phone(&address)),
        json!({
            "contact_id": contact_id,
            "message_id": message.id(),
            "channel": channel.as_str(),
            "kind": kind.as_str(),
        }),
    )
    .await?;
    result_view(
        app,
        "Nudge sent",
        format!(
            ":white_check_mark: Your {} message to *{}* is on its way.",
            channel.label(),
            escape(&v.contact.display_name())
        ),
    )
}

fn variables(v: &ContactView) -> serde_json::Value {
    super::nudge::variables(v)
}
