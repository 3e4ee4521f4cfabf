//! What a campaign would do if sent now: who receives it and who is
//! excluded and why, three messages rendered for real recipients, the risk
//! the approvers will see, and how long the provider's rate limit makes it.
//!
//! Invariants:
//! - Exclusions come from the dispatcher's own last-moment checks
//!   ([`check_batch`]) on the audience as it stands, so the preview and the
//!   send apply one set of rules (address, suppression, consent, caps;
//!   quiet hours only defer, so they do not exclude).
//! - The risk is scored on exactly the recipients [`Preview::submit_ids`]
//!   that are handed to `approval::submit`, with the engine's facts, so the
//!   number here is the number in the approval request.
//! - A WhatsApp campaign renders its synced template
//!   (`whatsapp::campaign::Chosen`); a recipient whose mapped field is
//!   empty is excluded and never submitted (no template goes out with a
//!   hole), and the messaging tier is counted on the conversations it
//!   would start ([`WhatsappFigures`]).
//! - An SMS campaign's samples are the texts as sent (sender name and STOP
//!   footer included, [`render_final`]), and its segments and cost are
//!   counted on every receiving recipient's final text.
//! - Nothing is written.

use std::collections::BTreeMap;

use super::Draft;
use crate::{
    approval::{
        Content,
        request::{Recipient, load_recipients, variables},
        risk::Risk,
    },
    dispatcher::{
        checks::{Verdict, check_batch},
        claim::Claimed,
    },
    domain::{Channel, SkipReason, SmsSegments, sms_segments},
    state::App,
    templates::{Kind, Rendered, TemplateError, render_part},
    whatsapp::{
        MessagingTier, TemplateCategory,
        campaign::{ChoiceError, Chosen},
        tier::{self, DailySplit},
    },
};

/// One rendered example: for SMS, the text as sent (sender and STOP
/// footer included) with its segments.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub to: String,
    pub subject: Option<String>,
    pub text: String,
    pub segments: Option<SmsSegments>,
}

/// What an SMS campaign costs, counted on every receiving recipient's
/// final text.
#[derive(Debug, Clone, PartialEq)]
pub struct SmsFigures {
    /// Segments in all.
    pub segments: usize,
    pub price_per_segment: f64,
    /// `segments × price_per_segment`, US dollars.
    pub cost: f64,
    /// The SMS provider's declared rate, messages per second.
    pub rate: Option<f64>,
}

/// What a WhatsApp campaign means for consent and the messaging tier.
#[derive(Debug, Clone, PartialEq)]
pub struct WhatsappFigures {
    /// "spring_offer (en_US)".
    pub template: String,
    pub category: TemplateCategory,
    /// Recipients skipped for lack of WhatsApp (marketing) consent.
    pub lacking_consent: usize,
    /// Recipients left out for an empty mapped field: `(field, count)`.
    pub missing: Vec<(String, usize)>,
    pub tier: MessagingTier,
    /// People reached in the last 24 h.
    pub reached: u64,
    /// How many more the number may start now; `None`: unlimited.
    pub remaining: Option<u64>,
    /// Conversations this campaign would start (receiving recipients not
    /// already reached in the window).
    pub new: u64,
    /// Over the tier: the split that would fit, the sender's to choose.
    pub over: Option<DailySplit>,
    /// The split the sender chose (stored in the draft's content).
    pub chosen_split: Option<DailySplit>,
}

impl WhatsappFigures {
    /// Whether the preview may be submitted: within the tier, or split.
    pub fn submittable(&self) -> bool {
        self.over.is_none() || self.chosen_split.is_some()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Preview {
    /// Contacts in the audience.
    pub audience: usize,
    /// How many would receive it now.
    pub receive: usize,
    /// Why the others would not: `(reason in words, count)`, largest first.
    pub excluded: Vec<(String, usize)>,
    pub samples: Vec<Sample>,
    pub risk: Risk,
    /// Hand-written, or a template never sent before (a policy rule).
    pub new_content: bool,
    /// Recipients below the policy's warmth floor (a policy rule).
    pub below_floor: usize,
    /// The provider that would send it.
    pub provider: Option<String>,
    /// Seconds the provider's rate limit needs; `None` when it has none.
    pub estimate_secs: Option<f64>,
    /// SMS only: segments and cost.
    pub sms: Option<SmsFigures>,
    /// WhatsApp only: the template's category, consent and the tier.
    pub whatsapp: Option<WhatsappFigures>,
    /// The recipients to submit: the audience less those without an
    /// address for the channel (the engine refuses those) and, on
    /// WhatsApp, those lacking a mapped template field; the others are
    /// skipped with their reason at send time, where the ledger records it.
    pub submit_ids: Vec<i64>,
}

/// Words for a skip reason, as the preview shows them.
pub fn reason_words(r: SkipReason) -> &'static str {
    match r {
        SkipReason::NoConsent => "no consent",
        SkipReason::Suppressed => "suppressed",
        SkipReason::NoAddress => "no address for the channel",
        SkipReason::FrequencyCap => "frequency cap reached",
        SkipReason::Cancelled => "cancelled",
    }
}

/// The kind of mail `content` makes (marketing unless a template says so).
pub fn kind_of(app: &App, content: &Content) -> Kind {
    match content {
        Content::Template { name } => app
            .composer
            .catalog()
            .get(name)
            .map(|t| t.kind)
            .unwrap_or(Kind::Marketing),
        // The category decides; `build` reads it from the stored template.
        Content::Inline { .. } | Content::Whatsapp { .. } => Kind::Marketing,
    }
}

/// Renders `content` for one contact, strictly (an unknown variable is an
/// error naming it).
pub(crate) fn render(
    app: &App,
    content: &Content,
    c: &Recipient,
) -> Result<Rendered, TemplateError> {
    let vars = variables(c, &serde_json::json!({}));
    match content {
        Content::Template { name } => app.composer.catalog().render(name, &vars),
        Content::Inline { subject, body } => Ok(Rendered {
            subject: subject
                .as_deref()
                .map(|s| render_part("subject", s, &vars))
                .transpose()?,
            text: render_part("text", body, &vars)?,
            html: None,
        }),
        // Rendered from the synced template ([`Chosen::content`]), which
        // needs the database; callers take that path first.
        Content::Whatsapp { template, .. } => {
            Err(TemplateError::Unknown(format!("whatsapp:{template}")))
        }
    }
}

/// The WhatsApp template a draft chose, checked; `None` for other content.
pub async fn whatsapp_choice(app: &App, content: &Content) -> Result<Option<Chosen>, ChoiceError> {
    match content {
        Content::Whatsapp {
            template,
            language,
            parameters,
            ..
        } => Ok(Some(
            Chosen::load(&app.db, template, language, parameters).await?,
        )),
        _ => Ok(None),
    }
}

/// Renders `content` for one contact as it is sent on `channel`: an SMS
/// composed with its sender and footer ([`crate::sms::compose`]), the same
/// call the approval engine makes.
pub(crate) fn render_final(
    app: &App,
    channel: Channel,
    kind: Kind,
    content: &Content,
    c: &Recipient,
) -> Result<Rendered, TemplateError> {
    let mut r = render(app, content, c)?;
    if channel == Channel::Sms {
        r.subject = None;
        r.text = crate::sms::compose(&r.text, kind, &crate::sms::sender_name(&app.settings));
    }
    Ok(r)
}

/// The contacts `ids` as rendering sees them.
pub(crate) async fn recipients(app: &App, ids: &[i64]) -> anyhow::Result<Vec<Recipient>> {
    load_recipients(&app.db, ids).await
}

/// Builds the preview of `draft` for the contacts `ids`, as `user` would
/// submit it. Render errors are the caller's to check first ([`render`]);
/// a recipient that fails to render here is shown as the error.
pub async fn build(
    app: &App,
    draft: &Draft,
    ids: &[i64],
    user: &str,
    source: &str,
) -> anyhow::Result<Preview> {
    let now = crate::clock::now();
    let people = recipients(app, ids).await?;
    let chosen = whatsapp_choice(app, &draft.content)
        .await
        .map_err(|e| anyhow::anyhow!("the draft's WhatsApp template: {e}"))?;
    let kind = match &chosen {
        Some(c) => c.kind(),
        None => kind_of(app, &draft.content),
    };
    let channel = draft.channel;
    let claimed: Vec<Claimed> = people
        .iter()
        .map(|c| Claimed {
            id: format!("preview:{}", c.id),
            campaign_id: None,
            contact_id: Some(c.id),
            channel,
            kind,
            address: None,
            attempts: 0,
            payload: "{}".into(),
            provider: None,
            source: None,
        })
        .collect();
    let verdicts = check_batch(
        &app.db,
        &claimed,
        None,
        &app.settings.caps,
        &app.settings.quiet_hours,
        now,
    )
    .await?;
    let mut excluded: BTreeMap<String, usize> = BTreeMap::new();
    let mut receiving: Vec<(&Recipient, String)> = Vec::new();
    let mut submit_ids = Vec::new();
    let mut wa_samples: Vec<(i64, String)> = Vec::new();
    let mut missing: BTreeMap<String, usize> = BTreeMap::new();
    let mut lacking_consent = 0;
    for (c, v) in people.iter().zip(&verdicts) {
        let address = match channel {
            Channel::Email => c.email.clone(),
            _ => c.phone.clone(),
        };
        // A WhatsApp template with an empty field would go out with a
        // hole: the recipient is reported and never submitted.
        if let Some(chosen) = &chosen
            && !matches!(v, Verdict::Skip(SkipReason::NoAddress))
        {
            match chosen.content(&variables(c, &serde_json::json!({}))) {
                Ok(content) => wa_samples.push((c.id, content.text().to_string())),
                Err(m) => {
                    *excluded
                        .entry(format!("empty template field ({})", m.0.name()))
                        .or_default() += 1;
                    *missing.entry(m.0.name()).or_default() += 1;
                    continue;
                }
            }
        }
        if matches!(v, Verdict::Skip(SkipReason::NoConsent)) {
            lacking_consent += 1;
        }
        match v {
            Verdict::Skip(r) => {
                *excluded.entry(reason_words(*r).to_string()).or_default() += 1;
                if *r != SkipReason::NoAddress {
                    submit_ids.push(c.id);
                }
            }
            Verdict::Send { .. } | Verdict::Defer(_) => {
                submit_ids.push(c.id);
                receiving.push((c, address.unwrap_or_default()));
            }
        }
    }
    let sms = channel == Channel::Sms;
    let samples = receiving
        .iter()
        .take(3)
        .map(|(c, to)| match &chosen {
            Some(_) => Sample {
                to: to.clone(),
                subject: None,
                segments: None,
                text: wa_samples
                    .iter()
                    .find(|(id, _)| *id == c.id)
                    .map(|(_, t)| t.clone())
                    .unwrap_or_default(),
            },
            None => match render_final(app, channel, kind, &draft.content, c) {
                Ok(r) => Sample {
                    to: to.clone(),
                    subject: r.subject,
                    segments: sms.then(|| sms_segments(&r.text)),
                    text: r.text,
                },
                Err(e) => Sample {
                    to: to.clone(),
                    subject: None,
                    text: format!("cannot be rendered: {e}"),
                    segments: None,
                },
            },
        })
        .collect();
    // Every receiving recipient's text is counted: names differ in length,
    // and one accented name can switch a text to UCS-2.
    let sms_figures = sms.then(|| {
        let segments: usize = receiving
            .iter()
            .filter_map(|(c, _)| render_final(app, channel, kind, &draft.content, c).ok())
            .map(|r| sms_segments(&r.text).count)
            .sum();
        let price = app.settings.sms.price_per_segment;
        SmsFigures {
            segments,
            price_per_segment: price,
            cost: crate::sms::cost(segments, price),
            rate: app
                .dispatcher
                .registry()
                .for_channel(channel)
                .and_then(|p| p.limits().requests_per_second),
        }
    });
    let submit_set: std::collections::HashSet<i64> = submit_ids.iter().copied().collect();
    let submitted: Vec<&Recipient> = people
        .iter()
        .filter(|c| submit_set.contains(&c.id))
        .collect();
    let wa_name = chosen.as_ref().map(Chosen::ledger_name);
    let template = match &draft.content {
        Content::Inline { .. } => None,
        Content::Template { name } => Some(name.as_str()),
        Content::Whatsapp { .. } => wa_name.as_deref(),
    };
    let whatsapp = match &chosen {
        Some(c) => Some(
            whatsapp_figures(
                app,
                draft,
                c,
                &receiving.iter().map(|(r, _)| r.id).collect::<Vec<_>>(),
                lacking_consent,
                missing.into_iter().collect(),
                now,
            )
            .await?,
        ),
        None => None,
    };
    let warmths: Vec<f64> = submitted.iter().map(|r| r.warmth).collect();
    let (risk, new_content) =
        crate::approval::risk::assess_send(&app.db, template, channel, user, source, &warmths)
            .await?;
    let floor = f64::from(app.settings.approval.warmth_floor);
    let below_floor = submitted.iter().filter(|c| c.warmth < floor).count();
    let provider = app.dispatcher.registry().for_channel(channel);
    let estimate_secs = provider
        .as_ref()
        .and_then(|p| estimate(&p.limits(), receiving.len()));
    let mut excluded: Vec<(String, usize)> = excluded
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    excluded.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    Ok(Preview {
        audience: people.len(),
        receive: receiving.len(),
        excluded,
        samples,
        risk,
        new_content,
        below_floor,
        provider: provider.map(|p| p.name().to_string()),
        estimate_secs,
        sms: sms_figures,
        whatsapp,
        submit_ids,
    })
}

/// The tier and consent figures of a WhatsApp campaign whose receiving
/// recipients are `receiving`.
async fn whatsapp_figures(
    app: &App,
    draft: &Draft,
    chosen: &Chosen,
    receiving: &[i64],
    lacking_consent: usize,
    missing: Vec<(String, usize)>,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<WhatsappFigures> {
    let tier_setting = app.settings.whatsapp.messaging_tier;
    let reached = tier::reached(&app.db, now).await?;
    let remaining = tier_setting
        .limit()
        .map(|l| u64::from(l).saturating_sub(reached));
    let already = tier::already_reached(&app.db, receiving, now).await?;
    let new = receiving.iter().filter(|id| !already.contains(id)).count() as u64;
    let over = match tier::fit(tier_setting, remaining, new) {
        tier::Fit::Fits => None,
        tier::Fit::Over {
            remaining, tier, ..
        } => Some(DailySplit {
            first_day: u32::try_from(remaining).unwrap_or(tier),
            per_day: tier,
        }),
    };
    let chosen_split = match &draft.content {
        Content::Whatsapp { split, .. } => *split,
        _ => None,
    };
    Ok(WhatsappFigures {
        template: format!("{} ({})", chosen.template.name, chosen.template.language),
        category: chosen.template.category,
        lacking_consent,
        missing,
        tier: tier_setting,
        reached,
        remaining,
        new,
        over,
        chosen_split,
    })
}

/// Seconds to send `n` messages at the provider's rate: requests of its
/// `max_batch` at its `requests_per_second` (both as configured: a provider
/// applies its `[providers.x]` table when it is built, and the dispatcher
/// reads the same limits).
pub fn estimate(limits: &crate::providers::Limits, n: usize) -> Option<f64> {
    let batch = limits.max_batch.max(1);
    let rps = limits.requests_per_second.filter(|r| *r > 0.0)?;
    let requests = n.div_ceil(batch);
    Some(requests as f64 / rps)
}

/// "about 3 minutes", for people.
pub fn human_duration(secs: f64) -> String {
    let s = secs.ceil() as u64;
    match s {
        0 | 1 => "about a second".into(),
        2..=59 => format!("about {s} seconds"),
        60..=3599 => format!("about {} minutes", s.div_ceil(60)),
        _ => format!("about {:.1} hours", secs / 3600.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(human_duration(0.2), "about a second");
        assert_eq!(human_duration(42.0), "about 42 seconds");
        assert_eq!(human_duration(150.0), "about 3 minutes");
        assert_eq!(human_duration(5400.0), "about 1.5 hours");
    }
}
