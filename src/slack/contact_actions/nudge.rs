//! The nudge modal (a card's Nudge button, or `/warm nudge`): opening it,
//! choosing a marketing template and previewing it for the contact, and
//! submitting the message for sending through approval. The template
//! chooses the channel: an SMS template (offered when a provider carries
//! SMS) makes the nudge an SMS, with no subject and the text previewed as
//! sent (sender's name, STOP footer, segments).
//!
//! Invariants:
//! - The modal is opened from the click before any database work; the
//!   contact and the first template's preview follow with `views.update`.
//! - A submission renders subject and body for the contact first, so a
//!   template mistake is answered on its field instead of failing at send
//!   time.
//! - A nudge's source is its modal's view id: a second submit of the same
//!   modal sends once.
//! - Failures are logged with the contact's address masked.
//! - WhatsApp and Instagram are offered per the contact's window
//!   ([`super::conversation`]): extra options of the same select.

use serde_json::json;
use slack_morphism::prelude::*;

use super::conversation::{self, Conversation};
use crate::slack::respond::{private_metadata, result_view, update_view};
use crate::{
    approval::{self, Content, Schedule, SendRequest, Submitted},
    contacts::{self, ContactView},
    domain::{Channel, mask_email},
    slack::actions,
    slack::modal_form::{Values, errors, text_of},
    slack::mrkdwn::{escape, truncate},
    state::App,
};

/// Callback id of the nudge modal.
pub(super) const NUDGE_MODAL: &str = "nudge_modal";

/// Opens the nudge modal for one contact (a card's Nudge button, or
/// `/warm nudge`): `views.open` first, then the contact and a preview.
pub fn open_nudge_modal(app: &App, trigger: SlackTriggerId, contact_id: i64) {
    let app2 = app.clone();
    app.spawn("open the nudge modal", async move {
        let loading = nudge_view(&app2, contact_id, None, None, &Conversation::default())?;
        let opened = app2
            .slack
            .views_open(SlackApiViewsOpenRequest::new(trigger, loading))
            .await?;
        // Now the contact, and the first template rendered for them.
        let Some(v) = contacts::view(&app2.db, contact_id).await? else {
            return Ok(());
        };
        let conv = conversation::conversation(&app2, &v).await?;
        let first = marketing_templates(&app2).into_iter().next().map(|t| t.0);
        let view = nudge_view(&app2, contact_id, Some(&v), first.as_deref(), &conv)?;
        update_view(
            &app2,
            opened.view.state_params.id.clone(),
            Some(opened.view.state_params.hash.clone()),
            view,
        )
        .await
    });
}

/// The marketing templates a nudge can start from: email ones, and SMS
/// ones when a provider carries SMS. `(name, label, channel)`; SMS labels
/// say so.
fn marketing_templates(app: &App) -> Vec<(String, String, Channel)> {
    let sms = app
        .dispatcher
        .registry()
        .for_channel(Channel::Sms)
        .is_some();
    app.composer
        .catalog()
        .all()
        .filter(|t| t.kind == crate::templates::Kind::Marketing)
        .filter(|t| t.channel == Channel::Email || (sms && t.channel == Channel::Sms))
        .map(|t| {
            let label = if t.description.is_empty() {
                t.name.clone()
            } else {
                t.description.clone()
            };
            let label = match t.channel {
                Channel::Email => label,
                other => format!("{}: {label}", other.label()),
            };
            (t.name.clone(), label, t.channel)
        })
        .collect()
}

/// The channel a nudge goes out on: its template's, else email.
fn channel_of(app: &App, template: Option<&str>) -> Channel {
    if let Some(c) = template.and_then(conversation::channel_of) {
        return c;
    }
    template
        .and_then(|t| app.composer.catalog().get(t))
        .map_or(Channel::Email, |t| t.channel)
}

/// The contact's fields as template variables (what a send renders with).
pub(super) fn variables(v: &ContactView) -> serde_json::Value {
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
    conv: &Conversation,
) -> anyhow::Result<SlackView> {
    let mut templates = marketing_templates(app);
    templates.extend(
        conv.options
            .iter()
            .map(|(value, label)| (value.clone(), label.clone(), Channel::Email)),
    );
    let channel = channel_of(app, template);
    let meta = template.is_some_and(|t| t.starts_with(conversation::PREFIX));
    let mut subject = String::new();
    let mut body = String::new();
    let mut hint = None;
    let mut preview = "Choose a template, or write the message yourself.".to_string();
    let mut selected = None;
    if let (Some(_), Some(name)) = (contact, template) {
        selected = templates.iter().find(|t| t.0 == name).cloned();
    }
    if let (Some(v), Some(name), true) = (contact, template, meta) {
        let (b, p, h) = conversation::shown(conv, v, name);
        body = b;
        preview = p;
        hint = Some(h);
    } else if let (Some(v), Some(name)) = (contact, template) {
        match app.composer.catalog().render(name, &variables(v)) {
            Ok(r) if channel == Channel::Sms => {
                body = r.text.trim().to_string();
                let text = crate::sms::compose(
                    &body,
                    crate::domain::MessageKind::Marketing,
                    &crate::sms::sender_name(&app.settings),
                );
                preview = format!(
                    "*Preview for {}* (as sent: {})\n{}",
                    escape(&v.contact.display_name()),
                    crate::sms::segments_words(&crate::domain::sms_segments(&text)),
                    quote(&escape(&truncate(&text, 2500)))
                );
            }
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
    let address = contact.and_then(|v| match channel {
        Channel::Email => v.contact.email.clone(),
        Channel::Instagram => Some("Instagram".into()),
        _ => v.contact.phone.as_deref().map(crate::domain::mask_phone),
    });
    Ok(app.blocks.view(
        "nudge_modal.json.j2",
        json!({
            "callback_id": NUDGE_MODAL,
            "contact_id": contact_id.to_string(),
            "name": escape(&name),
            "email": address.as_deref().map(escape),
            "sms": channel == Channel::Sms,
            "meta": meta,
            "hint": hint,
            "notes": conv.notes.iter().map(|n| escape(n)).collect::<Vec<_>>(),
            "template_action": actions::NUDGE_TEMPLATE,
            "templates": templates.iter().map(|(n, l, _)| json!({"name": n, "label": l})).collect::<Vec<_>>(),
            "selected": selected.map(|(n, l, _)| json!({"name": n, "label": l})),
            "subject": subject,
            "body": body,
            "preview": preview,
        }),
    )?)
}

/// A template chosen in the nudge modal: re-render the modal with it.
pub(super) fn preview_template(
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
        let conv = conversation::conversation(&app2, &v).await?;
        let updated = nudge_view(&app2, contact_id, Some(&v), Some(&template), &conv)?;
        update_view(&app2, view_id, None, updated).await
    });
    Ok(())
}

pub(super) async fn submit_nudge(
    app: &App,
    values: &Values,
    contact_id: i64,
    user: &str,
    view_id: &str,
) -> anyhow::Result<SlackInteractionResponse> {
    let option = crate::slack::modal_form::option_of(values, "template");
    let channel = channel_of(app, option.as_deref());
    let subject = text_of(values, "subject").filter(|_| channel == Channel::Email);
    let body = text_of(values, "body");
    let Some(v) = contacts::view(&app.db, contact_id).await? else {
        return result_view(app, "Not sent", "That contact no longer exists.".into());
    };
    match option.as_deref() {
        Some(o) if o == conversation::WA_TEXT => {
            // Free-form WhatsApp goes through approval like any nudge, once
            // the window and consent allow it.
            if let Err(r) = conversation::check_whatsapp_text(app, &v).await? {
                return Ok(r);
            }
        }
        Some(o) if o.starts_with(conversation::PREFIX) => {
            return conversation::submit(app, &v, o, body, user, view_id).await;
        }
        _ => {}
    }
    // What a send would meet: render both parts for this contact now, so a
    // mistake is answered on its field instead of failing at send time.
    let vars = variables(&v);
    let mut problems = Vec::new();
    match (&subject, channel) {
        (None, Channel::Email) => {
            problems.push(("subject", "An email needs a subject.".to_string()))
        }
        (Some(s), _) => {
            if let Err(e) = crate::templates::render_part("subject", s, &vars) {
                problems.push(("subject", e.to_string()));
            }
        }
        (None, _) => {}
    }
    match &body {
        None => problems.push(("body", "Write the message.".to_string())),
        Some(b) => {
            if let Err(e) = crate::templates::render_part("text", b, &vars) {
                problems.push(("body", e.to_string()));
            }
        }
    }
    match channel {
        Channel::Email if v.contact.email.is_none() => {
            problems.push(("body", "This contact has no email address.".to_string()))
        }
        Channel::Sms | Channel::Whatsapp if v.contact.phone.is_none() => {
            problems.push(("body", "This contact has no phone number.".to_string()))
        }
        _ => {}
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
        channel,
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

fn quote(s: &str) -> String {
    s.lines()
        .map(|l| format!(">{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}
