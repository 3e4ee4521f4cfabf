//! Campaigns in Slack: the composer modal (`/warm campaign`, or a draft
//! reopened from `/warm drafts`), its validation, the preview, Save draft,
//! and Request approval / Send through [`approval::submit`].
//!
//! Invariants:
//! - A modal is opened with `views.open` straight from the command or click
//!   (a trigger id lives 3 s): a new campaign's form needs no database at
//!   all; a reopened draft opens a loading view first and `views.update`s
//!   it (with the view's hash) once the draft is read.
//! - Invalid input is answered on its field (`response_action: errors`):
//!   the template's syntax (with its line), variables unknown for a real
//!   recipient (rendered strictly for every one of them), an empty
//!   audience, a schedule in the past. Nothing is stored for invalid input.
//! - Submission uses the source `campaign:<draft id>`: a draft edited after
//!   it was submitted and submitted again voids the earlier approval (the
//!   engine's revision logic), never a second parallel send.
//! - Errors reach the person in one place per surface: field errors in the
//!   form, a result view after Request approval, logged otherwise.

use chrono::{DateTime, NaiveTime, Utc};
use serde_json::json;
use slack_morphism::prelude::*;

use super::modal_form::{Values, errors, field, option_of, text_of};

use super::{actions, mrkdwn::escape};
use crate::{
    approval::{
        self, Content, Schedule, SendRequest, SubmitError, Submitted,
        policy::{self, PolicyFacts, Verdict},
    },
    campaigns::{
        Audience, Draft,
        audience::{self, Segment},
        drafts,
        preview::{self, Preview},
    },
    domain::Channel,
    state::App,
    templates::{TemplateError, check_syntax},
    whatsapp::{
        campaign::ChoiceError,
        mapping,
        templates::{self as wa_templates, Template as WaTemplate},
    },
};

/// What the composer says about Instagram, which it never offers.
pub const INSTAGRAM_NOT_FOR_CAMPAIGNS: &str =
    "Instagram allows no cold outreach: answer DMs from their Slack notice instead.";

/// Callback ids of the modals opened here.
pub const CAMPAIGN_MODAL: &str = "campaign_modal";
pub const CAMPAIGN_PREVIEW: &str = "campaign_preview";
/// How many drafts `/warm drafts` lists.
const MAX_LISTED: u64 = 20;

/// Action ids handled here.
pub fn handles(action_id: &str) -> bool {
    [
        actions::CAMPAIGN_OPEN,
        actions::CAMPAIGN_SAVE,
        actions::CAMPAIGN_EDIT,
        actions::CAMPAIGN_SPLIT,
    ]
    .contains(&action_id)
}

/// Whether a submitted view is one of ours.
pub fn owns_view(ev: &SlackInteractionViewSubmissionEvent) -> bool {
    matches!(
        view_field(&ev.view.view, |m| m
            .callback_id
            .as_ref()
            .map(|c| c.0.clone()))
        .as_deref(),
        Some(CAMPAIGN_MODAL | CAMPAIGN_PREVIEW)
    )
}

// ---------------------------------------------------------------------------
// Opening the form.

/// Opens an empty composer with `trigger` (no database work before it).
/// With WhatsApp carried, the form lists the synced templates: a loading
/// view opens at once and is updated once they are read.
pub fn open_new(app: &App, trigger: SlackTriggerId) {
    let app2 = app.clone();
    app.spawn("open the campaign modal", async move {
        if !whatsapp_offered(&app2) {
            let view = form_view(&app2, None, None, false, &[])?;
            app2.slack
                .views_open(SlackApiViewsOpenRequest::new(trigger, view))
                .await?;
            return Ok(());
        }
        let loading = form_view(&app2, None, None, true, &[])?;
        let opened = app2
            .slack
            .views_open(SlackApiViewsOpenRequest::new(trigger, loading))
            .await?;
        let templates = whatsapp_templates(&app2).await?;
        let view = form_view(&app2, None, None, false, &templates)?;
        let req = SlackApiViewsUpdateRequest::new(view)
            .with_view_id(opened.view.state_params.id.clone())
            .with_hash(opened.view.state_params.hash.clone());
        app2.slack.views_update(req).await?;
        Ok(())
    });
}

/// Whether a provider carries WhatsApp, so the composer offers it.
fn whatsapp_offered(app: &App) -> bool {
    app.dispatcher
        .registry()
        .for_channel(Channel::Whatsapp)
        .is_some()
}

/// The WhatsApp templates the composer offers (usable ones), when
/// WhatsApp is offered.
async fn whatsapp_templates(app: &App) -> anyhow::Result<Vec<WaTemplate>> {
    if !whatsapp_offered(app) {
        return Ok(Vec::new());
    }
    wa_templates::usable(&app.db).await
}

/// "spring_offer (en_US) · Marketing", the select's words for a template.
fn wa_label(t: &WaTemplate) -> String {
    let label = format!("{} ({}) · {}", t.name, t.language, t.category.label());
    label.chars().take(75).collect()
}

/// The select's value: name and language.
fn wa_value(name: &str, language: &str) -> String {
    format!("{name}|{language}")
}

/// Opens draft `id` of `user`: a loading view at once, then the draft.
pub fn open_draft(app: &App, trigger: SlackTriggerId, user: String, id: i64) {
    let app2 = app.clone();
    app.spawn("open a campaign draft", async move {
        let loading = form_view(&app2, Some(id), None, true, &[])?;
        let opened = app2
            .slack
            .views_open(SlackApiViewsOpenRequest::new(trigger, loading))
            .await?;
        let stored = drafts::get(&app2.db, &user, id).await?;
        let templates = whatsapp_templates(&app2).await?;
        let view = match stored
            .as_ref()
            .and_then(|d| d.spec.clone().or(d.pending.clone()))
        {
            Some(draft) => form_view(&app2, Some(id), Some(&draft), false, &templates)?,
            None => result_modal(&app2, "Not found", "That draft no longer exists.".into())?,
        };
        let req = SlackApiViewsUpdateRequest::new(view)
            .with_view_id(opened.view.state_params.id.clone())
            .with_hash(opened.view.state_params.hash.clone());
        app2.slack.views_update(req).await?;
        Ok(())
    });
}

fn channel_label(value: &str) -> String {
    Channel::parse(value).map_or(value.to_string(), |c| c.label().to_string())
}

/// The composer; `draft` prefills it, `loading` shows only a spinner;
/// `wa` are the WhatsApp templates offered (when WhatsApp is carried).
fn form_view(
    app: &App,
    draft_id: Option<i64>,
    draft: Option<&Draft>,
    loading: bool,
    wa: &[WaTemplate],
) -> anyhow::Result<SlackView> {
    let registry = app.dispatcher.registry();
    // Email is always offered: the preview explains a missing provider.
    // Instagram never: it allows no cold outreach (a context line says so).
    let offered = |c: Channel| {
        c == Channel::Email || (c != Channel::Instagram && registry.for_channel(c).is_some())
    };
    let available: Vec<_> = Channel::ALL
        .into_iter()
        .filter(|c| offered(*c))
        .map(|c| json!({"value": c.as_str(), "label": c.label()}))
        .collect();
    let unavailable: Vec<&str> = Channel::ALL
        .into_iter()
        .filter(|c| !offered(*c) && *c != Channel::Instagram)
        .map(Channel::label)
        .collect();
    // Marketing templates of every offered channel; each SMS template's
    // description says "(SMS)", and choosing one for another channel is
    // answered on the field.
    let templates: Vec<_> = app
        .composer
        .catalog()
        .all()
        .filter(|t| offered(t.channel) && t.kind == crate::templates::Kind::Marketing)
        .map(|t| {
            let label = if t.description.is_empty() {
                t.name.clone()
            } else {
                t.description.clone()
            };
            json!({"name": t.name, "label": label})
        })
        .collect();
    let mut ctx = json!({
        "callback_id": CAMPAIGN_MODAL,
        "draft_id": draft_id.map(|i| i.to_string()).unwrap_or_default(),
        "loading": loading,
        "name": null, "channel": {"value": Channel::Email.as_str(), "label": "Email"},
        "channels": available,
        "unavailable": (!unavailable.is_empty()).then(|| format!(
            "Not available yet: {} (no provider configured).", unavailable.join(", "))),
        "audience_mode": "segment", "warmth_min": null, "warmth_max": null, "status": null,
        "stage": null, "tags": null, "emails": null,
        "templates": templates, "template": null, "subject": null, "body": null,
        "schedule_mode": "now", "schedule_at": null, "schedule_local": null,
        "instagram": INSTAGRAM_NOT_FOR_CAMPAIGNS,
        "whatsapp": offered(Channel::Whatsapp),
        "wa_templates": wa.iter().map(|t| json!({
            "value": wa_value(&t.name, &t.language), "label": wa_label(t),
        })).collect::<Vec<_>>(),
        "wa_about": wa_about(wa),
        "wa_template": null, "wa_params": null,
        "wa_fields": mapping::FIELDS_WORDS,
    });
    if let Some(d) = draft {
        ctx["name"] = json!(d.name);
        ctx["channel"] = json!({"value": d.channel, "label": d.channel.label()});
        match &d.audience {
            Audience::Segment(s) => {
                let num = |n: Option<f64>| n.map(|n| format!("{n}"));
                ctx["warmth_min"] = json!(num(s.warmth_min));
                ctx["warmth_max"] = json!(num(s.warmth_max));
                ctx["status"] = json!(s.status);
                ctx["stage"] = json!(s.stage);
                ctx["tags"] = json!((!s.tags.is_empty()).then(|| s.tags.join(", ")));
            }
            Audience::List { emails } => {
                ctx["audience_mode"] = json!("list");
                ctx["emails"] = json!(emails.join("\n"));
            }
        }
        match &d.content {
            Content::Template { name } => {
                let label = app
                    .composer
                    .catalog()
                    .get(name)
                    .map(|t| t.description.clone())
                    .filter(|l| !l.is_empty())
                    .unwrap_or_else(|| name.clone());
                ctx["template"] = json!({"name": name, "label": label});
            }
            Content::Inline { subject, body } => {
                ctx["subject"] = json!(subject);
                ctx["body"] = json!(body);
            }
            Content::Whatsapp {
                template,
                language,
                parameters,
                ..
            } => {
                let label = wa
                    .iter()
                    .find(|t| &t.name == template && &t.language == language)
                    .map(wa_label)
                    .unwrap_or_else(|| format!("{template} ({language})"));
                ctx["wa_template"] = json!({"value": wa_value(template, language), "label": label});
                let fields: Vec<mapping::Field> = parameters
                    .iter()
                    .filter_map(|p| mapping::Field::parse(p).ok())
                    .collect();
                ctx["wa_params"] = json!((!fields.is_empty()).then(|| mapping::words(&fields)));
            }
        }
        match &d.schedule {
            Schedule::Now => {}
            Schedule::At { at } => {
                ctx["schedule_mode"] = json!("at");
                ctx["schedule_at"] = json!(at.timestamp());
            }
            Schedule::LocalTime { time } => {
                ctx["schedule_mode"] = json!("local");
                ctx["schedule_local"] = json!(time.format("%H:%M").to_string());
            }
        }
    }
    Ok(app.blocks.view("campaign_modal.json.j2", ctx)?)
}

/// One line per offered WhatsApp template: its category, parameters and
/// body's first line, so the person maps `{{n}}` knowing what they say.
fn wa_about(wa: &[WaTemplate]) -> Option<String> {
    if wa.is_empty() {
        return None;
    }
    let lines: Vec<String> = wa
        .iter()
        .take(15)
        .map(|t| {
            let first = t.body.lines().next().unwrap_or_default();
            let first: String = first.chars().take(120).collect();
            format!(
                "• *{}* ({}) · {} · {} parameter{}: _{}_",
                escape(&t.name),
                escape(&t.language),
                t.category.label(),
                t.parameter_count,
                if t.parameter_count == 1 { "" } else { "s" },
                escape(&first)
            )
        })
        .collect();
    Some(lines.join("\n"))
}

// ---------------------------------------------------------------------------
// Reading and validating the form.

type Problems = Vec<(&'static str, String)>;

/// The form as a draft, or what is wrong with it, field by field. Checks
/// that need no database: required fields, numbers, template syntax, a
/// schedule in the past.
fn read_form(app: &App, values: &Values, now: DateTime<Utc>) -> Result<Draft, Problems> {
    let mut problems: Problems = Vec::new();
    let name = text_of(values, "name");
    if name.is_none() {
        problems.push(("name", "Give the campaign a name.".into()));
    }
    let channel_name =
        option_of(values, "channel").unwrap_or_else(|| Channel::Email.as_str().into());
    let channel = Channel::parse(&channel_name);
    if channel == Some(Channel::Instagram) {
        problems.push(("channel", INSTAGRAM_NOT_FOR_CAMPAIGNS.into()));
    } else if channel
        .and_then(|c| app.dispatcher.registry().for_channel(c))
        .is_none()
    {
        problems.push((
            "channel",
            format!(
                "No {} provider is configured yet; choose another channel.",
                channel_label(&channel_name)
            ),
        ));
    }
    let audience = if option_of(values, "audience_mode").as_deref() == Some("list") {
        let emails = audience::parse_list(&text_of(values, "emails").unwrap_or_default());
        let bad: Vec<&String> = emails.iter().filter(|e| !e.contains('@')).collect();
        if emails.is_empty() {
            problems.push(("emails", "List the contacts' email addresses.".into()));
        } else if !bad.is_empty() {
            problems.push((
                "emails",
                format!(
                    "Not email addresses: {}",
                    bad.iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        Audience::List { emails }
    } else {
        let mut number = |block: &'static str| -> Option<f64> {
            let t = text_of(values, block)?;
            match t.parse::<f64>() {
                Ok(n) if (0.0..=100.0).contains(&n) => Some(n),
                _ => {
                    problems.push((block, "A number from 0 to 100.".into()));
                    None
                }
            }
        };
        let warmth_min = number("warmth_min");
        let warmth_max = number("warmth_max");
        if let (Some(a), Some(b)) = (warmth_min, warmth_max)
            && a > b
        {
            problems.push(("warmth_max", "At most must not be below at least.".into()));
        }
        Audience::Segment(Segment {
            warmth_min,
            warmth_max,
            status: text_of(values, "status"),
            stage: text_of(values, "stage"),
            tags: text_of(values, "tags")
                .map(|t| {
                    t.split(',')
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
        })
    };
    let template = option_of(values, "template");
    let subject = text_of(values, "subject");
    let body = text_of(values, "body");
    let wa_template = option_of(values, "wa_template");
    let wa_params = text_of(values, "wa_params");
    let content = if channel == Some(Channel::Whatsapp) {
        read_whatsapp(
            &mut problems,
            values,
            [
                ("template", template.is_some()),
                ("subject", subject.is_some()),
                ("body", body.is_some()),
            ],
            wa_template,
            wa_params,
        )
    } else if wa_template.is_some() || wa_params.is_some() {
        let block = if wa_template.is_some() {
            "wa_template"
        } else {
            "wa_params"
        };
        problems.push((
            block,
            "WhatsApp templates are for the WhatsApp channel; clear this or choose WhatsApp."
                .into(),
        ));
        None
    } else {
        read_message(
            app,
            &mut problems,
            channel,
            &channel_name,
            template,
            subject,
            body,
        )
    };
    let schedule = read_schedule(&mut problems, values, now);
    match (name, channel, content, schedule) {
        (Some(name), Some(channel), Some(content), Some(schedule)) if problems.is_empty() => {
            Ok(Draft {
                name,
                channel,
                audience,
                content,
                schedule,
            })
        }
        _ => Err(problems),
    }
}

/// A WhatsApp campaign's content: a synced template and its mapping. The
/// email/SMS message fields must be empty (`others`: block, filled).
fn read_whatsapp(
    problems: &mut Problems,
    values: &Values,
    others: [(&'static str, bool); 3],
    wa_template: Option<String>,
    wa_params: Option<String>,
) -> Option<Content> {
    for (block, filled) in others {
        if filled {
            problems.push((
                block,
                "A WhatsApp campaign sends an approved WhatsApp template; clear this field.".into(),
            ));
        }
    }
    let fields = match mapping::parse(&wa_params.unwrap_or_default()) {
        Ok(f) => Some(f),
        Err(e) => {
            problems.push(("wa_params", e));
            None
        }
    };
    let Some((name, language)) = wa_template.as_deref().and_then(|v| v.split_once('|')) else {
        // Without synced templates the select is not in the form at all.
        let block = if field(values, "wa_template").is_some() || wa_template.is_some() {
            "wa_template"
        } else {
            "channel"
        };
        problems.push((
            block,
            "Choose an approved WhatsApp template (`whatsapp templates` syncs them).".into(),
        ));
        return None;
    };
    Some(Content::Whatsapp {
        template: name.to_string(),
        language: language.to_string(),
        parameters: fields?.iter().map(mapping::Field::name).collect(),
        split: None,
    })
}

/// An email or SMS campaign's content: a catalog template or a message.
fn read_message(
    app: &App,
    problems: &mut Problems,
    channel: Option<Channel>,
    channel_name: &str,
    template: Option<String>,
    subject: Option<String>,
    body: Option<String>,
) -> Option<Content> {
    match (template, body) {
        (Some(_), Some(_)) => {
            problems.push((
                "body",
                "Choose a template or write a message, not both.".into(),
            ));
            None
        }
        (Some(_), None) if subject.is_some() => {
            // A template brings its own subject; keeping both would leave
            // the person unsure which one goes out.
            problems.push((
                "subject",
                "The template has its own subject; clear this field or the template.".into(),
            ));
            None
        }
        (Some(name), None) => match app.composer.catalog().get(&name) {
            Some(t) if Some(t.channel) == channel => Some(Content::Template { name }),
            Some(t) => {
                problems.push((
                    "template",
                    format!("This template is for {}, not {channel_name}.", t.channel),
                ));
                None
            }
            None => {
                problems.push(("template", "No such template.".into()));
                None
            }
        },
        (None, Some(body)) => {
            if subject.is_none() && channel == Some(Channel::Email) {
                problems.push(("subject", "An email needs a subject.".into()));
            }
            if subject.is_some() && channel.is_some_and(|c| c != Channel::Email) {
                problems.push((
                    "subject",
                    format!(
                        "A {} message has no subject; clear this field.",
                        channel_label(channel_name)
                    ),
                ));
            }
            for (block, part, source) in [
                ("subject", "subject", subject.as_deref()),
                ("body", "text", Some(body.as_str())),
            ] {
                if let Some(source) = source
                    && let Err(e) = check_syntax(part, source)
                {
                    problems.push((block, syntax_words(&e)));
                }
            }
            Some(Content::Inline { subject, body })
        }
        (None, None) => {
            problems.push(("body", "Choose a template or write the message.".into()));
            None
        }
    }
}

fn read_schedule(problems: &mut Problems, values: &Values, now: DateTime<Utc>) -> Option<Schedule> {
    match option_of(values, "schedule_mode").as_deref() {
        Some("at") => {
            let at = field(values, "schedule_at")
                .and_then(|v| v.selected_date_time.as_ref())
                .and_then(|t| DateTime::<Utc>::from_timestamp(t.0.as_second(), 0));
            match at {
                None => {
                    problems.push(("schedule_at", "Choose the date and time.".into()));
                    None
                }
                Some(at) if at <= now => {
                    problems.push((
                        "schedule_at",
                        "That time is in the past; choose one ahead.".into(),
                    ));
                    None
                }
                Some(at) => Some(Schedule::At { at }),
            }
        }
        Some("local") => {
            let time = field(values, "schedule_local")
                .and_then(|v| v.selected_time.as_deref())
                .and_then(|t| NaiveTime::parse_from_str(t, "%H:%M").ok());
            match time {
                None => {
                    problems.push(("schedule_local", "Choose the time of day.".into()));
                    None
                }
                Some(time) => Some(Schedule::LocalTime { time }),
            }
        }
        _ => Some(Schedule::Now),
    }
}

fn syntax_words(e: &TemplateError) -> String {
    match e {
        TemplateError::Syntax { line, message, .. } => {
            format!("Template syntax error on line {line}: {message}")
        }
        other => other.to_string(),
    }
}

/// The audience's contacts, or the problem on its field.
async fn resolve_audience(app: &App, draft: &Draft) -> anyhow::Result<Result<Vec<i64>, Problems>> {
    let r = audience::resolve(&app.db, &draft.audience).await?;
    if !r.unknown.is_empty() {
        let shown: Vec<&str> = r.unknown.iter().take(10).map(String::as_str).collect();
        return Ok(Err(vec![(
            "emails",
            format!("No contact has these addresses: {}", shown.join(", ")),
        )]));
    }
    if r.ids.is_empty() {
        return Ok(Err(vec![(
            "audience_mode",
            "This audience is empty: no contact matches it.".into(),
        )]));
    }
    Ok(Ok(r.ids))
}

/// A WhatsApp draft's template and mapping against the synced set: an
/// unknown or unusable template on the select, a wrong count on the
/// mapping. A recipient with an empty field is the preview's to report.
async fn check_whatsapp(app: &App, draft: &Draft) -> anyhow::Result<Option<Problems>> {
    match preview::whatsapp_choice(app, &draft.content).await {
        Ok(_) => Ok(None),
        Err(ChoiceError::Infrastructure(e)) => Err(e),
        Err(e @ ChoiceError::Mapping(_)) => Ok(Some(vec![("wa_params", e.to_string())])),
        Err(e) => Ok(Some(vec![("wa_template", e.to_string())])),
    }
}

/// Renders the message for every recipient, strictly; the first failure
/// goes on the field that caused it. (WhatsApp templates are checked by
/// [`check_whatsapp`]; their recipients' fields by the preview.)
async fn check_render(app: &App, draft: &Draft, ids: &[i64]) -> anyhow::Result<Option<Problems>> {
    if matches!(draft.content, Content::Whatsapp { .. }) {
        return Ok(None);
    }
    let people = preview::recipients(app, ids).await?;
    for c in &people {
        if let Err(e) = preview::render(app, &draft.content, c) {
            let who = crate::contacts::display::display_name(
                c.id,
                c.first_name.as_deref(),
                c.last_name.as_deref(),
                c.email.as_deref(),
                c.phone.as_deref(),
            );
            let block = match (&draft.content, &e) {
                (Content::Template { .. }, _) => "template",
                (_, TemplateError::Render { part, .. } | TemplateError::Syntax { part, .. })
                    if part == "subject" =>
                {
                    "subject"
                }
                _ => "body",
            };
            let words = match &e {
                TemplateError::Render { message, line, .. } => {
                    format!("For {who}, line {line}: {message}")
                }
                TemplateError::MissingVariable(v) => {
                    format!("For {who}: unknown variable '{v}'")
                }
                other => format!("For {who}: {other}"),
            };
            return Ok(Some(vec![(block, words)]));
        }
    }
    Ok(None)
}

// ---------------------------------------------------------------------------
// The preview.

fn schedule_words(s: &Schedule) -> String {
    match s {
        Schedule::Now => "now".into(),
        Schedule::At { at } => format!("at {}", at.format("%Y-%m-%d %H:%M UTC")),
        Schedule::LocalTime { time } => format!(
            "at {} in each recipient's own time zone",
            time.format("%H:%M")
        ),
    }
}

/// Whether the policy lets it go straight out, and why not: the engine's
/// own rule, on the preview's facts.
fn verdict(app: &App, p: &Preview) -> Verdict {
    policy::decide(
        &app.settings.approval,
        &PolicyFacts {
            recipients: p.submit_ids.len(),
            risk: p.risk.score,
            new_content: p.new_content,
            below_floor: p.below_floor,
        },
    )
}

fn preview_view(app: &App, draft_id: i64, draft: &Draft, p: &Preview) -> anyhow::Result<SlackView> {
    let v = verdict(app, p);
    let (wa_words, wa_over) = match &p.whatsapp {
        Some(w) => {
            let (words, over) = whatsapp_words(w, p.receive);
            (Some(words), over)
        }
        None => (None, None),
    };
    let can_submit = p.whatsapp.as_ref().is_none_or(|w| w.submittable());
    let (submit_label, verdict_words) = match &v {
        Verdict::Send => (
            "Send",
            "The approval policy lets this go straight out.".to_string(),
        ),
        Verdict::Approve { approvers, why } => (
            "Request approval",
            format!(
                "Needs {} approver{}: {}.",
                approvers,
                if *approvers == 1 { "" } else { "s" },
                why.join("; ")
            ),
        ),
    };
    let excluded_total: usize = p.excluded.iter().map(|e| e.1).sum();
    let excluded = p
        .excluded
        .iter()
        .map(|(why, n)| format!("• {why}: {n}"))
        .collect::<Vec<_>>()
        .join("\n");
    let reasons = p
        .risk
        .reasons
        .iter()
        .map(|r| format!("• {}", escape(r)))
        .collect::<Vec<_>>()
        .join("\n");
    let estimate = match (&p.provider, p.estimate_secs) {
        (Some(name), Some(secs)) if p.sms.as_ref().is_some_and(|s| s.rate.is_some()) => format!(
            "Estimated time to send: {} at {} ({}'s rate).",
            preview::human_duration(secs),
            crate::sms::rate_words(p.sms.as_ref().and_then(|s| s.rate).unwrap_or_default()),
            escape(name)
        ),
        (Some(name), Some(secs)) => format!(
            "Estimated time to send: {} at {}'s rate limit.",
            preview::human_duration(secs),
            escape(name)
        ),
        (Some(name), None) => format!(
            "Estimated time to send: {} has no rate limit; as fast as it answers.",
            escape(name)
        ),
        (None, _) => "No provider is configured for this channel.".into(),
    };
    let samples: Vec<_> = p
        .samples
        .iter()
        .map(|s| {
            let body: String = s.text.trim().chars().take(1500).collect();
            json!({"text": format!(
                "*To:* {}{}{}\n{}",
                escape(&s.to),
                s.subject.as_deref().map(|x| format!("\n*Subject:* {}", escape(x))).unwrap_or_default(),
                s.segments.as_ref().map(|x| format!("\n_{}_", crate::sms::segments_words(x))).unwrap_or_default(),
                body.lines().map(|l| format!(">{}", escape(l))).collect::<Vec<_>>().join("\n")
            )})
        })
        .collect();
    Ok(app.blocks.view(
        "campaign_preview.json.j2",
        json!({
            "callback_id": CAMPAIGN_PREVIEW,
            "draft_id": draft_id.to_string(),
            "submit_label": can_submit.then_some(submit_label),
            "whatsapp": wa_words,
            "over_tier": wa_over,
            "split_offered": !can_submit,
            "split_action": actions::CAMPAIGN_SPLIT,
            "name": escape(&draft.name),
            "channel": draft.channel.label(),
            "schedule": schedule_words(&draft.schedule),
            "receive": p.receive,
            "audience": p.audience,
            "excluded_total": excluded_total,
            "excluded": excluded,
            "risk": p.risk.score,
            "reasons": reasons,
            "estimate": estimate,
            "sms": p.sms.as_ref().map(|f| sms_cost_words(f, p.receive)),
            "verdict": verdict_words,
            "samples": samples,
            "edit_action": actions::CAMPAIGN_EDIT,
            "save_action": actions::CAMPAIGN_SAVE,
        }),
    )?)
}

/// "*Cost:* about $0.12: 15 segments in all …", for an SMS preview.
fn sms_cost_words(f: &preview::SmsFigures, recipients: usize) -> String {
    format!(
        "*Cost:* about {} ({} segment{} for {recipients} recipient{} at ${} a segment).",
        crate::sms::dollars(f.cost),
        f.segments,
        if f.segments == 1 { "" } else { "s" },
        if recipients == 1 { "" } else { "s" },
        f.price_per_segment
    )
}

// ---------------------------------------------------------------------------
// Submissions.

fn update(view: SlackView) -> SlackInteractionResponse {
    SlackInteractionResponse::ViewSubmission(SlackViewSubmissionResponse::Update(
        SlackViewSubmissionUpdateResponse::new(view),
    ))
}

fn result_modal(app: &App, title: &str, text: String) -> anyhow::Result<SlackView> {
    Ok(app.blocks.view(
        "modal_result.json.j2",
        json!({ "title": title, "text": text }),
    )?)
}

fn view_field<T>(view: &SlackView, f: impl Fn(&SlackModalView) -> Option<T>) -> Option<T> {
    match view {
        SlackView::Modal(m) => f(m),
        SlackView::Home(_) => None,
    }
}

fn draft_id_of(view: &SlackView) -> Option<i64> {
    view_field(view, |m| m.private_metadata.clone()).and_then(|s| s.parse().ok())
}

/// The composer's Preview, or the preview's Request approval / Send.
pub async fn on_view_submission(
    app: &App,
    ev: &SlackInteractionViewSubmissionEvent,
) -> anyhow::Result<SlackInteractionResponse> {
    let user = ev.user.id.0.clone();
    let draft_id = draft_id_of(&ev.view.view);
    let callback = view_field(&ev.view.view, |m| {
        m.callback_id.as_ref().map(|c| c.0.clone())
    });
    if callback.as_deref() == Some(CAMPAIGN_PREVIEW) {
        return match draft_id {
            Some(id) => submit(app, &user, id).await.map(update),
            None => Ok(SlackInteractionResponse::Empty),
        };
    }
    let values = crate::slack::modal_form::submitted(&ev.view);
    let now = crate::clock::now();
    let draft = match read_form(app, &values, now) {
        Ok(d) => d,
        Err(p) => return Ok(errors(p)),
    };
    let ids = match resolve_audience(app, &draft).await? {
        Ok(ids) => ids,
        Err(p) => return Ok(errors(p)),
    };
    if let Some(p) = check_whatsapp(app, &draft).await? {
        return Ok(errors(p));
    }
    if let Some(p) = check_render(app, &draft, &ids).await? {
        return Ok(errors(p));
    }
    let id = drafts::stage(&app.db, &user, draft_id, &draft, now).await?;
    let p = preview::build(app, &draft, &ids, &user, &crate::campaigns::source(id)).await?;
    Ok(update(preview_view(app, id, &draft, &p)?))
}

/// Submits draft `id` through the approval engine; the view says what
/// happened.
async fn submit(app: &App, user: &str, id: i64) -> anyhow::Result<SlackView> {
    let Some(stored) = drafts::get(&app.db, user, id).await? else {
        return result_modal(app, "Not found", "That draft no longer exists.".into());
    };
    let Some(draft) = stored.pending.clone().or(stored.spec.clone()) else {
        return result_modal(app, "Not found", "That draft is empty.".into());
    };
    if let Schedule::At { at } = &draft.schedule
        && *at <= crate::clock::now()
    {
        // Time passed while the preview was open: never send "now" instead.
        return result_modal(
            app,
            "Not sent",
            ":warning: The scheduled time has passed. Reopen the draft from `drafts` and choose another.".into(),
        );
    }
    let ids = match resolve_audience(app, &draft).await? {
        Ok(ids) => ids,
        Err(p) => {
            let why = p.into_iter().map(|x| x.1).collect::<Vec<_>>().join(" ");
            return result_modal(app, "Not sent", format!(":warning: {}", escape(&why)));
        }
    };
    if let Err(e) = preview::whatsapp_choice(app, &draft.content).await {
        if let ChoiceError::Infrastructure(e) = e {
            return Err(e);
        }
        return result_modal(
            app,
            "Not sent",
            format!(":warning: {}", escape(&e.to_string())),
        );
    }
    let p = preview::build(app, &draft, &ids, user, &crate::campaigns::source(id)).await?;
    if let Some(w) = p.whatsapp.as_ref().filter(|w| !w.submittable()) {
        // Over the tier without the sender's split: nothing is queued.
        return result_modal(app, "Not sent", over_tier_words(w));
    }
    if p.submit_ids.is_empty() {
        return result_modal(
            app,
            "Not sent",
            ":warning: Nobody in this audience has an address for the channel.".into(),
        );
    }
    let req = SendRequest {
        name: draft.name.clone(),
        channel: draft.channel,
        requested_by: user.to_string(),
        recipients: p.submit_ids.clone(),
        content: draft.content.clone(),
        variables: json!({}),
        schedule: draft.schedule.clone(),
        source: crate::campaigns::source(id),
    };
    let name = escape(&draft.name);
    let now = crate::clock::now();
    match approval::submit(app, req).await {
        Ok(Submitted::Queued {
            campaign_id,
            messages,
        }) => {
            drafts::mark_submitted(&app.db, user, id, campaign_id, now).await?;
            let when = match &draft.schedule {
                Schedule::Now => "on their way".to_string(),
                other => format!("scheduled {}", schedule_words(other)),
            };
            result_modal(
                app,
                "Queued",
                format!(":white_check_mark: *{name}*: {messages} messages are {when}."),
            )
        }
        Ok(Submitted::AwaitingApproval { campaign_id, .. }) => {
            drafts::mark_submitted(&app.db, user, id, campaign_id, now).await?;
            let place = app
                .settings
                .slack
                .approvals_channel
                .as_deref()
                .map(|c| format!("<#{c}>"))
                .unwrap_or_else(|| "the approvals channel".into());
            result_modal(
                app,
                "Awaiting approval",
                format!(
                    ":hourglass_flowing_sand: *{name}* is awaiting approval in {place}. Nothing is sent until an approver decides; editing the draft asks again."
                ),
            )
        }
        Err(e) => {
            let text = match &e {
                SubmitError::AlreadyDecided { state, .. } => format!(
                    ":warning: *{name}* was already {state}; its content can no longer change. Start a new campaign for a new send."
                ),
                SubmitError::Infrastructure(_) => {
                    tracing::error!(
                        error = format!("{e:#}"),
                        draft = id,
                        "campaign submit failed"
                    );
                    ":x: Something went wrong on our side; it has been logged. Your draft is saved."
                        .into()
                }
                refused => format!(":x: {}", escape(&refused.to_string())),
            };
            drafts::save(&app.db, user, id, now).await?;
            result_modal(app, "Not sent", text)
        }
    }
}

// ---------------------------------------------------------------------------
// Clicks: Open (from `/warm drafts`), Edit and Save draft (in the preview).

pub async fn on_action(
    app: &App,
    ev: &SlackInteractionBlockActionsEvent,
    action: &SlackInteractionActionInfo,
) -> anyhow::Result<()> {
    let Some(user) = ev.user.as_ref().map(|u| u.id.0.clone()) else {
        return Ok(());
    };
    let Some(id) = action.value.as_deref().and_then(|v| v.parse::<i64>().ok()) else {
        return Ok(());
    };
    let action_id = action.action_id.0.as_str();
    if action_id == actions::CAMPAIGN_OPEN {
        open_draft(app, ev.trigger_id.clone(), user, id);
        return Ok(());
    }
    let SlackInteractionActionContainer::View(container) = &ev.container else {
        return Ok(());
    };
    let view_id = container.view_id.clone();
    let app2 = app.clone();
    let edit = action_id == actions::CAMPAIGN_EDIT;
    let split = action_id == actions::CAMPAIGN_SPLIT;
    app.spawn("act on a campaign preview", async move {
        let view = if split {
            split_view(&app2, &user, id).await?
        } else if edit {
            match drafts::get(&app2.db, &user, id).await? {
                Some(d) => match d.pending.or(d.spec) {
                    Some(draft) => {
                        let templates = whatsapp_templates(&app2).await?;
                        form_view(&app2, Some(id), Some(&draft), false, &templates)?
                    }
                    None => result_modal(&app2, "Not found", "That draft is empty.".into())?,
                },
                None => result_modal(&app2, "Not found", "That draft no longer exists.".into())?,
            }
        } else {
            match drafts::save(&app2.db, &user, id, crate::clock::now()).await? {
                Some(d) => result_modal(
                    &app2,
                    "Draft saved",
                    format!(
                        ":floppy_disk: Saved *{}*. `{} drafts` lists it; open it there to edit or send.",
                        escape(&d.name),
                        app2.settings.slack.command
                    ),
                )?,
                None => result_modal(&app2, "Not found", "That draft no longer exists.".into())?,
            }
        };
        app2.slack
            .views_update(SlackApiViewsUpdateRequest::new(view).with_view_id(view_id))
            .await?;
        Ok(())
    });
    Ok(())
}

/// "Split across days": the draft's WhatsApp content takes the split that
/// fits the tier now, and the preview shows it (submittable again).
async fn split_view(app: &App, user: &str, id: i64) -> anyhow::Result<SlackView> {
    let Some(mut draft) = drafts::get(&app.db, user, id)
        .await?
        .and_then(|d| d.pending.or(d.spec))
    else {
        return result_modal(app, "Not found", "That draft no longer exists.".into());
    };
    let ids = match resolve_audience(app, &draft).await? {
        Ok(ids) => ids,
        Err(p) => {
            let why = p.into_iter().map(|x| x.1).collect::<Vec<_>>().join(" ");
            return result_modal(app, "Not sent", format!(":warning: {}", escape(&why)));
        }
    };
    if let Schedule::LocalTime { .. } = draft.schedule {
        // A local-time schedule is recomputed per recipient at approval,
        // which would undo the parts' days.
        return result_modal(
            app,
            "Not split",
            ":warning: Splitting across days works with *Now* or *At a time*. Edit the draft's schedule, then split it.".into(),
        );
    }
    let source = crate::campaigns::source(id);
    let p = preview::build(app, &draft, &ids, user, &source).await?;
    let plan = p.whatsapp.as_ref().and_then(|w| w.over);
    if let (Content::Whatsapp { split, .. }, Some(plan)) = (&mut draft.content, plan) {
        *split = Some(plan);
        drafts::stage(&app.db, user, Some(id), &draft, crate::clock::now()).await?;
        let p = preview::build(app, &draft, &ids, user, &source).await?;
        return preview_view(app, id, &draft, &p);
    }
    // Within the tier after all (people were reached meanwhile, or the
    // tier changed): the preview as it stands.
    preview_view(app, id, &draft, &p)
}

/// The preview's WhatsApp lines: template and category with consent, the
/// people left out for an empty field, and the messaging tier.
fn whatsapp_words(w: &preview::WhatsappFigures, receive: usize) -> (String, Option<String>) {
    use crate::whatsapp::TemplateCategory;
    let consent = match w.category {
        TemplateCategory::Marketing => format!(
            "needs WhatsApp marketing consent: {} recipient{} lack{} it and {} skipped.",
            w.lacking_consent,
            if w.lacking_consent == 1 { "" } else { "s" },
            if w.lacking_consent == 1 { "s" } else { "" },
            if w.lacking_consent == 1 { "is" } else { "are" },
        ),
        _ => "not marketing: WhatsApp consent for marketing is not required.".into(),
    };
    let mut lines = vec![format!(
        "*WhatsApp template:* {} · *{}*: {consent}",
        escape(&w.template),
        w.category.label()
    )];
    if !w.missing.is_empty() {
        let missing = w
            .missing
            .iter()
            .map(|(f, n)| format!("{n} without {f}"))
            .collect::<Vec<_>>()
            .join(", ");
        lines.push(format!(
            "*Left out:* {missing}: the template would go out with a hole."
        ));
    }
    let tier = match w.remaining {
        Some(left) => format!(
            "*Messaging tier:* {}; {} reached in the last 24 h, {left} more now. This campaign starts {} conversation{} ({receive} receiving).",
            w.tier.words(),
            w.reached,
            w.new,
            if w.new == 1 { "" } else { "s" }
        ),
        None => format!("*Messaging tier:* {}.", w.tier.words()),
    };
    lines.push(tier);
    let over = w.over.map(|plan| match w.chosen_split {
        Some(chosen) => {
            let days = chosen.day_count(usize::try_from(w.new).unwrap_or(usize::MAX));
            format!(
                ":calendar: *Split across {days} days:* up to {} now, then up to {} every 24 h.",
                chosen.first_day, chosen.per_day
            )
        }
        None => format!(
            ":no_entry: WhatsApp's messaging tier ({}) lets this number start {} more conversation{} now; this campaign would start {}. Nothing is queued unless you split it across days ({} days).",
            w.tier.words(),
            plan.first_day,
            if plan.first_day == 1 { "" } else { "s" },
            w.new,
            plan.day_count(usize::try_from(w.new).unwrap_or(usize::MAX))
        ),
    });
    (lines.join("\n"), over)
}

/// Words for a refused over-tier submit.
fn over_tier_words(w: &preview::WhatsappFigures) -> String {
    format!(
        ":no_entry: WhatsApp's messaging tier ({}) lets this number start {} more conversations now; this campaign would start {}. Nothing was queued: reopen the preview and choose *Split across days*.",
        w.tier.words(),
        w.remaining.unwrap_or_default(),
        w.new
    )
}

// ---------------------------------------------------------------------------
// `/warm drafts`.

/// The user's drafts, with an Open button each.
pub async fn drafts_message(app: &App, user: &str) -> anyhow::Result<SlackMessageContent> {
    let list = drafts::list(&app.db, user, MAX_LISTED).await?;
    let items: Vec<_> = list
        .iter()
        .map(|d| {
            let channel = d
                .spec
                .as_ref()
                .map(|s| s.channel.label().to_string())
                .unwrap_or_default();
            let state = match d.submitted_at {
                Some(at) => format!(" · submitted {}", at.format("%Y-%m-%d")),
                None => String::new(),
            };
            json!({
                "id": d.id.to_string(),
                "label": format!(
                    "*{}* · {channel} · edited {}{state}",
                    escape(&d.name),
                    d.updated_at.format("%Y-%m-%d %H:%M")
                ),
            })
        })
        .collect();
    let blocks = app.blocks.message_blocks(
        "campaign_drafts.json.j2",
        json!({
            "command": app.settings.slack.command,
            "open_action": actions::CAMPAIGN_OPEN,
            "drafts": items,
        }),
    )?;
    let text = if list.is_empty() {
        "You have no saved drafts.".to_string()
    } else {
        format!("Your drafts ({})", list.len())
    };
    Ok(SlackMessageContent::new()
        .with_text(text)
        .with_blocks(blocks))
}
