//! The compliance doctor (`/warm doctor`, `warmline doctor`): for each
//! configured channel, the compliance checklist of the integration roadmap
//! ("Compliance Checklist (Every Integration)"), checked for real against
//! this process's settings, its code paths and the database.
//!
//! Two halves, so every verdict is unit-tested without a database:
//! - [`gather`] reads the facts: it asks the dispatcher's own last-moment
//!   check whether a marketing message without consent would be stopped,
//!   signs and verifies an unsubscribe token with the composer's signer,
//!   feeds every opt-out word to the inbound keyword parser, reads the
//!   providers' declared rates, the approval settings, the webhook secrets
//!   and the last verified webhook event, and counts the last 30 days of the
//!   delivery ledger.
//! - [`evaluate`] turns facts into [`Check`]s; each passes or fails with
//!   its reason in words.
//!
//! The email sender domain's SPF, DKIM and DMARC rows come from DNS, in
//! [`sender_auth`], asked at the same time as the database. SMS gets three
//! rows of its own: the sender identification marketing texts start with,
//! the STOP footer (every marketing SMS template composed as it would be
//! sent, through `crate::sms::compose`), and the `[quiet_hours.sms]`
//! window against the TCPA's 08:00–21:00.
//!
//! Invariants:
//! - The doctor only reads. The one write it may cause is the unsubscribe
//!   signing key being generated and stored on first use, which the first
//!   marketing email would do anyway.
//! - A check that does not apply to a channel or provider (webhooks over
//!   SMTP) passes and says "not applicable" and why; it never silently
//!   disappears from the list.
//! - Rates are read from the ledger (`messages.state`), the same definition
//!   the campaign circuit breaker uses: *sends* are messages a provider
//!   accepted (`sent`, `delivered`, `bounced`, `complained`).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use sea_orm::{ConnectionTrait, FromQueryResult, Statement, Value};
use serde::Serialize;

pub mod meta;
pub mod sender_auth;
pub mod settings;

use crate::{
    dispatcher::{
        checks::{self, Verdict},
        claim::Claimed,
    },
    domain::{Channel, MessageState, SkipReason},
    state::App,
};

/// Hard bounces must stay below 2 % of sends. The shared compliance notes
/// give no bounce figure; 2 % is the common ceiling mailbox providers and
/// ESPs publish, well under the 5 % at which the circuit breaker pauses a
/// campaign.
pub const BOUNCE_TARGET_PER_MILLE: i64 = 20;
/// Spam complaints must stay below 0.3 % of sends: Gmail's bulk-sender
/// ceiling (`reliability-and-compliance.md` §6; §8 suggests aiming at 0.1 %).
pub const COMPLAINT_TARGET_PER_10K: i64 = 30;
/// Below this many sends in the window a rate says nothing (the breaker's
/// own minimum).
pub const MIN_SENDS: i64 = crate::dispatcher::breaker::MIN_SENDS;
/// The window the rates are read over.
pub const WINDOW_DAYS: i64 = 30;
/// A Resend send older than this with no verified webhook event since means
/// the webhook is not arriving.
const WEBHOOK_SILENCE: Duration = Duration::hours(1);
/// Contact id of the token the unsubscribe check signs: no contact has it.
const DUMMY_CONTACT: i64 = 0;

/// One line of the doctor's report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// `email`, `sms`, … or `all` when no channel is configured.
    pub channel: String,
    pub item: &'static str,
    pub passed: bool,
    /// Passed, but with something worth fixing (⚠️); never set on a failure.
    pub warning: bool,
    pub reason: String,
}

impl Check {
    fn new(channel: &str, item: &'static str, passed: bool, reason: impl Into<String>) -> Self {
        Self {
            channel: channel.to_string(),
            item,
            passed,
            warning: false,
            reason: reason.into(),
        }
    }

    /// A pass with a caveat: it does not fail the doctor.
    fn warn(channel: &str, item: &'static str, reason: impl Into<String>) -> Self {
        Self {
            warning: true,
            ..Self::new(channel, item, true, reason)
        }
    }

    /// `✅ email · rate limits: resend at 2 requests/s` — the CLI's line.
    pub fn line(&self) -> String {
        format!(
            "{} {} · {}: {}",
            match (self.passed, self.warning) {
                (false, _) => "❌",
                (true, true) => "⚠️",
                (true, false) => "✅",
            },
            self.channel,
            self.item,
            self.reason
        )
    }
}

/// The items, in the order they are reported.
pub mod items {
    pub const PROVIDERS: &str = "providers configured";
    pub const CONSENT: &str = "consent tracking";
    pub const UNSUBSCRIBE: &str = "unsubscribe path";
    pub const KEYWORDS: &str = "opt-out keywords";
    pub const RATE_LIMITS: &str = "rate limits";
    pub const APPROVAL: &str = "approval gate on bulk sends";
    pub const WEBHOOK: &str = "webhook secret and last verified event";
    pub const BOUNCES: &str = "hard bounce rate";
    pub const COMPLAINTS: &str = "spam complaint rate";
    pub const SMS_SENDER: &str = "sender identification";
    pub const SMS_FOOTER: &str = "STOP footer on marketing texts";
    pub const SMS_QUIET_HOURS: &str = "quiet hours";
}

/// What the doctor found about one channel.
#[derive(Debug, Clone)]
pub struct ChannelFacts {
    pub channel: String,
    pub providers: Vec<ProviderFacts>,
    pub consent: ConsentFacts,
    /// Email only: other channels unsubscribe by keyword.
    pub unsubscribe: Option<UnsubscribeFacts>,
    pub keywords: KeywordFacts,
    pub approval: ApprovalFacts,
    pub rates: Rates,
    /// SMS only: what CTIA and the TCPA ask of texts.
    pub sms: Option<SmsFacts>,
    /// WhatsApp and Instagram: verify token, templates, tier, window.
    pub meta: Option<meta::MetaFacts>,
}

/// What the doctor found about SMS composition and timing.
#[derive(Debug, Clone)]
pub struct SmsFacts {
    /// The name marketing texts start with.
    pub sender_name: String,
    /// Whether it was chosen (`[sms] sender_name` or `email.product_name`)
    /// rather than the default "warmline".
    pub sender_chosen: bool,
    /// Marketing SMS templates checked, and those whose sample, composed as
    /// it would be sent, does not end with the STOP footer exactly once.
    pub marketing_templates: usize,
    pub without_footer: Vec<String>,
    /// `[quiet_hours.sms]`.
    pub quiet_hours: Option<crate::dispatcher::settings::Window>,
}

#[derive(Debug, Clone)]
pub struct ProviderFacts {
    pub name: String,
    pub requests_per_second: Option<f64>,
    pub webhook: Webhook,
    /// What the provider says of its own set-up (credentials, sender).
    pub health: Vec<crate::providers::Health>,
}

#[derive(Debug, Clone)]
pub enum Webhook {
    /// The provider has no delivery webhooks; why.
    NotApplicable(&'static str),
    Signed {
        secret_set: bool,
        /// The newest event that passed signature verification (only those
        /// are stored).
        last_event: Option<DateTime<Utc>>,
        /// Messages it accepted in the window, older than an hour.
        settled_sends: i64,
    },
}

#[derive(Debug, Clone)]
pub struct ConsentFacts {
    /// What the dispatcher's last-moment check does with a marketing message
    /// to a contact without consent: must be `Skip(NoConsent)`.
    pub marketing_without_consent: Result<Verdict, String>,
    /// Ledger rows for the channel, and contacts whose current consent is a grant.
    pub ledger_rows: i64,
    pub granted_contacts: i64,
}

#[derive(Debug, Clone)]
pub struct UnsubscribeFacts {
    pub public_url: Option<url::Url>,
    /// The link an email would carry for the dummy contact.
    pub link: Result<String, String>,
    /// Whether the token taken back out of that link verifies to the
    /// contact and channel it was signed for.
    pub round_trips: bool,
}

#[derive(Debug, Clone)]
pub struct KeywordFacts {
    /// Opt-out words (and their lower-case, padded spellings) the parser
    /// does not read as STOP.
    pub unrecognised: Vec<String>,
    pub checked: usize,
}

#[derive(Debug, Clone)]
pub struct ApprovalFacts {
    pub min_recipients: u32,
    pub approvers: usize,
    pub approver_group: bool,
    pub approvals_channel: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rates {
    pub sends: i64,
    pub bounced: i64,
    pub complained: i64,
}

/// Runs every check against the running app.
pub async fn run(app: &App) -> anyhow::Result<Vec<Check>> {
    let email = app
        .dispatcher
        .registry()
        .for_channel(crate::domain::Channel::Email)
        .map(|p| p.name().to_string());
    let (facts, sender) = tokio::join!(gather(app, crate::clock::now()), async {
        match &email {
            Some(provider) => sender_auth::run(&app.settings, provider).await,
            None => Vec::new(),
        }
    });
    let mut checks = evaluate(&facts?);
    // After the other email rows, so a channel's rows stay together.
    let at = checks
        .iter()
        .rposition(|c| c.channel == Channel::Email.as_str())
        .map_or(checks.len(), |i| i + 1);
    checks.splice(at..at, sender);
    let carried: Vec<String> = app
        .dispatcher
        .registry()
        .all()
        .map(|p| p.channel().as_str().to_string())
        .collect();
    if !carried.is_empty() {
        checks.extend(unconfigured(&carried));
    }
    Ok(checks)
}

/// Whether every check passed.
pub fn all_passed(checks: &[Check]) -> bool {
    checks.iter().all(|c| c.passed)
}

/// Every check, channel by channel; one failing line when no channel has a
/// provider at all.
pub fn evaluate(facts: &[ChannelFacts]) -> Vec<Check> {
    if facts.is_empty() {
        return vec![Check::new(
            "all",
            items::PROVIDERS,
            false,
            "no channel has a provider: set RESEND_API_KEY or SMTP_URL for email",
        )];
    }
    let mut out = Vec::new();
    for f in facts {
        out.push(consent(f));
        out.push(unsubscribe(f));
        out.push(keywords(f));
        out.push(rate_limits(f));
        out.extend(provider_health(f));
        out.push(approval(f));
        out.extend(webhooks(f));
        out.push(bounces(f));
        out.push(complaints(f));
        if let Some(sms) = &f.sms {
            out.push(sms_sender(&f.channel, sms));
            out.push(sms_footer(&f.channel, sms));
            out.push(sms_quiet_hours(&f.channel, sms));
        }
        if let Some(m) = &f.meta {
            out.extend(meta::verdicts(m).into_iter().map(|v| Check {
                channel: f.channel.clone(),
                item: v.item,
                passed: v.passed,
                warning: v.warning,
                reason: v.reason,
            }));
        }
    }
    out
}

/// Meta's channels that no provider carries: one passing row each naming
/// what turns it on (an unused channel does not fail a deploy gate, but it
/// never silently disappears from the report).
pub fn unconfigured(carried: &[String]) -> Vec<Check> {
    [
        crate::providers::whatsapp::settings::ENABLED_BY,
        crate::providers::instagram::settings::ENABLED_BY,
    ]
    .into_iter()
    .filter(|(c, _)| !carried.iter().any(|k| k == c.as_str()))
    .map(|(c, setting)| {
        Check::new(
            c.as_str(),
            items::PROVIDERS,
            true,
            format!(
                "not configured: set {setting} to turn {} on ({})",
                c.label(),
                meta::window_rule(c).unwrap_or_default()
            ),
        )
    })
    .collect()
}

/// Each provider's own checks (credentials accepted, sender set up), one
/// row each, named after the provider.
pub fn provider_health(f: &ChannelFacts) -> Vec<Check> {
    use crate::providers::HealthStatus;
    f.providers
        .iter()
        .flat_map(|p| {
            p.health.iter().map(move |h| {
                let reason = format!("{}: {}", p.name, h.reason);
                match h.status {
                    HealthStatus::Ok => Check::new(&f.channel, h.item, true, reason),
                    HealthStatus::Warn => Check::warn(&f.channel, h.item, reason),
                    HealthStatus::Fail => Check::new(&f.channel, h.item, false, reason),
                }
            })
        })
        .collect()
}

/// Every marketing text names who sends it (CTIA).
pub fn sms_sender(channel: &str, s: &SmsFacts) -> Check {
    if s.sender_chosen {
        Check::new(
            channel,
            items::SMS_SENDER,
            true,
            format!("marketing texts start with \"{}: \"", s.sender_name),
        )
    } else {
        Check::warn(
            channel,
            items::SMS_SENDER,
            format!(
                "marketing texts start with \"{}: \", the default; set WARMLINE_SMS_SENDER_NAME to your brand",
                s.sender_name
            ),
        )
    }
}

/// Every marketing text says how to opt out (CTIA).
pub fn sms_footer(channel: &str, s: &SmsFacts) -> Check {
    if s.without_footer.is_empty() {
        Check::new(
            channel,
            items::SMS_FOOTER,
            true,
            format!(
                "{} marketing SMS template(s), composed as sent, end with \"{}\" once; hand-written texts get it the same way",
                s.marketing_templates,
                crate::sms::STOP_FOOTER
            ),
        )
    } else {
        Check::new(
            channel,
            items::SMS_FOOTER,
            false,
            format!(
                "composed without \"{}\" exactly once: {}",
                crate::sms::STOP_FOOTER,
                s.without_footer.join(", ")
            ),
        )
    }
}

/// Texts wait for 08:00–21:00 in the recipient's time zone (TCPA).
pub fn sms_quiet_hours(channel: &str, s: &SmsFacts) -> Check {
    let Some(w) = &s.quiet_hours else {
        return Check::new(
            channel,
            items::SMS_QUIET_HOURS,
            false,
            "no [quiet_hours.sms] window: texts go out at any hour; the TCPA allows 08:00–21:00 recipient-local",
        );
    };
    // "HH:MM" strings compare in time order.
    let inside = w.start.as_str() >= "08:00" && w.end.as_str() <= "21:00" && w.start < w.end;
    Check::new(
        channel,
        items::SMS_QUIET_HOURS,
        inside,
        if inside {
            format!(
                "texts are sent {}–{} in the recipient's time zone (deferred otherwise)",
                w.start, w.end
            )
        } else {
            format!(
                "[quiet_hours.sms] {}–{} reaches outside 08:00–21:00 recipient-local (TCPA)",
                w.start, w.end
            )
        },
    )
}

pub fn consent(f: &ChannelFacts) -> Check {
    let c = &f.consent;
    let tally = format!(
        "{} ledger record(s) on {}, {} contact(s) currently granted",
        c.ledger_rows, f.channel, c.granted_contacts
    );
    match &c.marketing_without_consent {
        Ok(Verdict::Skip(SkipReason::NoConsent)) => Check::new(
            &f.channel,
            items::CONSENT,
            true,
            format!("marketing without a granted consent is stopped at send time; {tally}"),
        ),
        Ok(other) => Check::new(
            &f.channel,
            items::CONSENT,
            false,
            format!(
                "a marketing message without consent would not be stopped (the check said {other:?})"
            ),
        ),
        Err(e) => Check::new(
            &f.channel,
            items::CONSENT,
            false,
            format!("the send-time consent check failed to run: {e}"),
        ),
    }
}

pub fn unsubscribe(f: &ChannelFacts) -> Check {
    let Some(u) = &f.unsubscribe else {
        return Check::new(
            &f.channel,
            items::UNSUBSCRIBE,
            true,
            format!(
                "not applicable: {} has no link; people opt out by replying STOP",
                f.channel
            ),
        );
    };
    let fail = |reason: String| Check::new(&f.channel, items::UNSUBSCRIBE, false, reason);
    let link = match &u.link {
        Ok(link) => link,
        Err(e) => return fail(format!("cannot sign an unsubscribe token: {e}")),
    };
    if !u.round_trips {
        return fail(format!(
            "a signed unsubscribe link does not verify back to its contact: {link}"
        ));
    }
    match &u.public_url {
        None => fail(
            "WARMLINE_PUBLIC_URL is not set: unsubscribe links would point at the local address, which recipients cannot reach".into(),
        ),
        Some(url) if url.scheme() != "https" => fail(format!(
            "WARMLINE_PUBLIC_URL is {url}: RFC 8058 one-click unsubscribe needs an https link"
        )),
        Some(_) => Check::new(
            &f.channel,
            items::UNSUBSCRIBE,
            true,
            format!("a signed link verifies back to its contact and is served at {link}"),
        ),
    }
}

pub fn keywords(f: &ChannelFacts) -> Check {
    let k = &f.keywords;
    if k.unrecognised.is_empty() {
        Check::new(
            &f.channel,
            items::KEYWORDS,
            true,
            format!(
                "{} opt-out spellings (STOP, UNSUBSCRIBE, … in any case) revoke consent when a reply arrives",
                k.checked
            ),
        )
    } else {
        Check::new(
            &f.channel,
            items::KEYWORDS,
            false,
            format!("not read as an opt-out: {}", k.unrecognised.join(", ")),
        )
    }
}

pub fn rate_limits(f: &ChannelFacts) -> Check {
    let unlimited: Vec<&str> = f
        .providers
        .iter()
        .filter(|p| !p.requests_per_second.is_some_and(|r| r > 0.0))
        .map(|p| p.name.as_str())
        .collect();
    if unlimited.is_empty() {
        let rates: Vec<String> = f
            .providers
            .iter()
            .map(|p| {
                format!(
                    "{} at {} requests/s",
                    p.name,
                    p.requests_per_second.unwrap_or_default()
                )
            })
            .collect();
        Check::new(&f.channel, items::RATE_LIMITS, true, rates.join(", "))
    } else {
        Check::new(
            &f.channel,
            items::RATE_LIMITS,
            false,
            unlimited
                .iter()
                .map(|n| format!("{n} has no rate: set providers.{n}.requests_per_second"))
                .collect::<Vec<_>>()
                .join("; "),
        )
    }
}

pub fn approval(f: &ChannelFacts) -> Check {
    let a = &f.approval;
    let mut missing = Vec::new();
    if a.approvers == 0 && !a.approver_group {
        missing.push("no approvers (set WARMLINE_APPROVERS)");
    }
    if !a.approvals_channel {
        missing.push("no approvals channel (set WARMLINE_APPROVALS_CHANNEL)");
    }
    if missing.is_empty() {
        Check::new(
            &f.channel,
            items::APPROVAL,
            true,
            format!(
                "sends to more than {} recipient(s) wait for one of {} approver(s){} in the approvals channel",
                a.min_recipients,
                a.approvers,
                if a.approver_group {
                    " or the approver group"
                } else {
                    ""
                }
            ),
        )
    } else {
        Check::new(
            &f.channel,
            items::APPROVAL,
            false,
            format!("bulk sends cannot be approved: {}", missing.join(", ")),
        )
    }
}

/// One line per provider of the channel.
pub fn webhooks(f: &ChannelFacts) -> Vec<Check> {
    f.providers
        .iter()
        .map(|p| match &p.webhook {
            Webhook::NotApplicable(why) => Check::new(
                &f.channel,
                items::WEBHOOK,
                true,
                format!("not applicable to {}: {why}", p.name),
            ),
            Webhook::Signed {
                secret_set,
                last_event,
                settled_sends,
            } => {
                let last = match last_event {
                    Some(at) => format!("last verified event {}", at.format("%Y-%m-%d %H:%M UTC")),
                    None => "no verified event yet".to_string(),
                };
                if !secret_set {
                    let (setting, refused) = match f.channel.as_str() {
                        "whatsapp" | "instagram" => {
                            ("META_APP_SECRET", "incoming messages and statuses")
                        }
                        "sms" => ("TWILIO_AUTH_TOKEN", "incoming texts and statuses"),
                        _ => ("RESEND_WEBHOOK_SECRET", "bounces and complaints"),
                    };
                    Check::new(
                        &f.channel,
                        items::WEBHOOK,
                        false,
                        format!(
                            "{}: no webhook secret (set {setting}), so {refused} are refused; {last}",
                            p.name
                        ),
                    )
                } else if *settled_sends > 0 && last_event.is_none() {
                    Check::new(
                        &f.channel,
                        items::WEBHOOK,
                        false,
                        format!(
                            "{}: {settled_sends} email(s) accepted in the last {WINDOW_DAYS} days but no verified event ever arrived: is the webhook registered at {} with this secret?",
                            p.name, p.name
                        ),
                    )
                } else {
                    Check::new(
                        &f.channel,
                        items::WEBHOOK,
                        true,
                        format!("{}: secret set; {last}", p.name),
                    )
                }
            }
        })
        .collect()
}

pub fn bounces(f: &ChannelFacts) -> Check {
    rate_check(
        f,
        items::BOUNCES,
        f.rates.bounced,
        f.rates.bounced * 1000 < BOUNCE_TARGET_PER_MILLE * f.rates.sends,
        "2%",
    )
}

pub fn complaints(f: &ChannelFacts) -> Check {
    rate_check(
        f,
        items::COMPLAINTS,
        f.rates.complained,
        f.rates.complained * 10_000 < COMPLAINT_TARGET_PER_10K * f.rates.sends,
        "0.3%",
    )
}

fn rate_check(
    f: &ChannelFacts,
    item: &'static str,
    part: i64,
    below_target: bool,
    target: &str,
) -> Check {
    let sends = f.rates.sends;
    if sends < MIN_SENDS {
        return Check::new(
            &f.channel,
            item,
            true,
            format!(
                "{part} in {sends} send(s) over {WINDOW_DAYS} days: too few to judge (from {MIN_SENDS}); target below {target}"
            ),
        );
    }
    let pct = format!("{:.2}%", part as f64 * 100.0 / sends as f64);
    Check::new(
        &f.channel,
        item,
        below_target,
        format!(
            "{pct} ({part} of {sends} sends over {WINDOW_DAYS} days){} target below {target}",
            if below_target { "," } else { ", over the" }
        ),
    )
}

/// `warmline doctor`: prints one line per check; fails (exit 1) when any
/// check fails, so it can gate a deploy.
pub async fn cli() -> anyhow::Result<()> {
    use crate::settings::{Requirements, Settings};
    let settings = Settings::load(Requirements::Offline)?;
    let db = crate::db::connect_and_migrate(&settings.database).await?;
    let app = App::new(settings, db)?;
    let checks = run(&app).await?;
    for c in &checks {
        println!("{}", c.line());
    }
    let failed = checks.iter().filter(|c| !c.passed).count();
    app.db.clone().close().await.ok();
    if failed > 0 {
        anyhow::bail!("{failed} of {} compliance checks failed", checks.len());
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Gathering facts.

#[derive(FromQueryResult)]
struct Count {
    n: i64,
}

#[derive(FromQueryResult)]
struct RateRow {
    sends: i64,
    bounced: i64,
    complained: i64,
}

/// Reads every fact the checks need.
pub async fn gather(app: &App, now: DateTime<Utc>) -> anyhow::Result<Vec<ChannelFacts>> {
    let registry = app.dispatcher.registry();
    let mut by_channel: BTreeMap<crate::domain::Channel, Vec<ProviderFacts>> = BTreeMap::new();
    for p in registry.all() {
        let webhook = match registry.webhook_of(p.name()) {
            Some(receiver) => Webhook::Signed {
                secret_set: receiver.is_configured(),
                last_event: crate::webhooks::events::last_verified(&app.db, receiver.provider())
                    .await?,
                settled_sends: settled_sends(&app.db, p.name(), now).await?,
            },
            None => Webhook::NotApplicable(p.without_webhook()),
        };
        by_channel
            .entry(p.channel())
            .or_default()
            .push(ProviderFacts {
                name: p.name().to_string(),
                requests_per_second: p.limits().requests_per_second,
                webhook,
                health: p.health().await,
            });
    }
    let approval = ApprovalFacts {
        min_recipients: app.settings.approval.min_recipients,
        approvers: app.settings.slack.approvers.len(),
        approver_group: app.settings.approval.approver_group.is_some(),
        approvals_channel: app.settings.slack.approvals_channel.is_some(),
    };
    let keywords = keyword_facts();
    let mut out = Vec::new();
    for (channel, providers) in by_channel {
        let unsubscribe = if channel == crate::domain::Channel::Email {
            Some(unsubscribe_facts(app).await)
        } else {
            None
        };
        out.push(ChannelFacts {
            consent: consent_facts(app, channel, now).await?,
            rates: rates(&app.db, channel.as_str(), now).await?,
            channel: channel.as_str().to_string(),
            providers,
            unsubscribe,
            keywords: keywords.clone(),
            approval: approval.clone(),
            sms: (channel == Channel::Sms).then(|| sms_facts(app)),
            meta: meta::gather(&app.settings, &app.db, channel).await?,
        });
    }
    Ok(out)
}

/// Asks the dispatcher's last-moment check about a marketing message to a
/// contact that does not exist (so has no consent), and counts the ledger.
async fn consent_facts(
    app: &App,
    channel: crate::domain::Channel,
    now: DateTime<Utc>,
) -> anyhow::Result<ConsentFacts> {
    let probe = Claimed {
        id: "doctor-consent-probe".into(),
        campaign_id: None,
        contact_id: Some(-1),
        channel,
        kind: crate::domain::MessageKind::Marketing,
        address: Some("doctor-probe@example.invalid".into()),
        attempts: 0,
        payload: "{}".into(),
        provider: None,
        source: None,
    };
    // The very function and settings the workers use, read-only.
    let marketing_without_consent = checks::check_batch(
        &app.db,
        std::slice::from_ref(&probe),
        None,
        &app.settings.caps,
        &app.settings.quiet_hours,
        now,
    )
    .await
    .map_err(|e| format!("{e:#}"))
    .and_then(|mut v| v.pop().ok_or_else(|| "no verdict".to_string()));
    let backend = app.db.get_database_backend();
    let ledger_rows = Count::find_by_statement(Statement::from_sql_and_values(
        backend,
        "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM consents WHERE channel = $1",
        [Value::from(channel)],
    ))
    .one(&app.db)
    .await?
    .map_or(0, |c| c.n);
    let granted_contacts = Count::find_by_statement(Statement::from_sql_and_values(
        backend,
        "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM consents WHERE granted = $2 AND id IN \
         (SELECT MAX(id) FROM consents WHERE channel = $1 GROUP BY contact_id)",
        [Value::from(channel), Value::from(true)],
    ))
    .one(&app.db)
    .await?
    .map_or(0, |c| c.n);
    Ok(ConsentFacts {
        marketing_without_consent,
        ledger_rows,
        granted_contacts,
    })
}

/// Signs a token as a marketing email would, builds its link, takes the
/// token back out of the link as the `/u/{token}` route does, and verifies it.
async fn unsubscribe_facts(app: &App) -> UnsubscribeFacts {
    let composer = &app.composer;
    let link = composer
        .signer()
        .sign(DUMMY_CONTACT, Channel::Email.as_str())
        .await
        .map(|token| composer.unsubscribe_url(&token))
        .map_err(|e| format!("{e:#}"));
    let mut round_trips = false;
    if let Ok(link) = &link
        && let Some(token) = url::Url::parse(link)
            .ok()
            .and_then(|u| u.path_segments()?.next_back().map(str::to_owned))
        && let Ok(Some(subject)) = composer.signer().verify(&token).await
    {
        round_trips =
            subject.contact_id == DUMMY_CONTACT && subject.channel == Channel::Email.as_str();
    }
    UnsubscribeFacts {
        public_url: app.settings.server.public_url.clone(),
        link,
        round_trips,
    }
}

/// Composes every marketing SMS template's sample as it would be sent.
fn sms_facts(app: &App) -> SmsFacts {
    let sender = crate::sms::sender_name(&app.settings);
    let templates: Vec<_> = app
        .composer
        .catalog()
        .all()
        .filter(|t| t.channel == Channel::Sms && t.kind == crate::domain::MessageKind::Marketing)
        .collect();
    let footer = crate::sms::STOP_FOOTER.to_lowercase();
    let without_footer = templates
        .iter()
        .filter(|t| {
            let text = t
                .render(&serde_json::Value::Object(t.sample.clone()))
                .map(|r| crate::sms::compose(&r.text, t.kind, &sender))
                .unwrap_or_default();
            text.to_lowercase().matches(&footer).count() != 1
        })
        .map(|t| t.name.clone())
        .collect();
    SmsFacts {
        sender_chosen: app.settings.sms.sender_name.is_some()
            || app.settings.email.product_name.is_some(),
        sender_name: sender,
        marketing_templates: templates.len(),
        without_footer,
        quiet_hours: app.settings.quiet_hours.sms.clone(),
    }
}

/// Feeds every opt-out word to the inbound parser, as typed and as people
/// type it (lower case, padded, with a full stop).
fn keyword_facts() -> KeywordFacts {
    use crate::inbound::keywords::{Keyword, STOP_WORDS, parse};
    let mut unrecognised = Vec::new();
    let mut checked = 0;
    for word in STOP_WORDS {
        for spelling in [word.to_string(), format!("  {}. ", word.to_lowercase())] {
            checked += 1;
            if parse(&spelling).map(|f| f.keyword) != Some(Keyword::Stop) {
                unrecognised.push(format!("{spelling:?}"));
            }
        }
    }
    KeywordFacts {
        unrecognised,
        checked,
    }
}

async fn rates(
    db: &impl ConnectionTrait,
    channel: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<Rates> {
    let row = RateRow::find_by_statement(Statement::from_sql_and_values(
        db.get_database_backend(),
        format!(
            "SELECT \
               CAST(COALESCE(SUM(CASE WHEN state IN ({accepted}) THEN 1 ELSE 0 END), 0) AS BIGINT) AS sends, \
               CAST(COALESCE(SUM(CASE WHEN state = {bounced} THEN 1 ELSE 0 END), 0) AS BIGINT) AS bounced, \
               CAST(COALESCE(SUM(CASE WHEN state = {complained} THEN 1 ELSE 0 END), 0) AS BIGINT) AS complained \
             FROM messages WHERE channel = $1 AND sent_at IS NOT NULL AND sent_at >= $2",
            accepted = MessageState::sql_list(MessageState::ACCEPTED),
            bounced = MessageState::Bounced.sql(),
            complained = MessageState::Complained.sql(),
        ),
        [
            Value::from(channel),
            Value::from(now - Duration::days(WINDOW_DAYS)),
        ],
    ))
    .one(db)
    .await?;
    Ok(row.map_or_else(Rates::default, |r| Rates {
        sends: r.sends,
        bounced: r.bounced,
        complained: r.complained,
    }))
}

async fn settled_sends(
    db: &impl ConnectionTrait,
    provider: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<i64> {
    Ok(Count::find_by_statement(Statement::from_sql_and_values(
        db.get_database_backend(),
        "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM messages WHERE provider = $1 \
         AND sent_at IS NOT NULL AND sent_at >= $2 AND sent_at <= $3",
        [
            Value::from(provider),
            Value::from(now - Duration::days(WINDOW_DAYS)),
            Value::from(now - WEBHOOK_SILENCE),
        ],
    ))
    .one(db)
    .await?
    .map_or(0, |c| c.n))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A channel where everything is in order.
    fn healthy() -> ChannelFacts {
        ChannelFacts {
            channel: "email".into(),
            providers: vec![ProviderFacts {
                name: "resend".into(),
                requests_per_second: Some(2.0),
                webhook: Webhook::Signed {
                    secret_set: true,
                    last_event: Some(crate::clock::now()),
                    settled_sends: 10,
                },
                health: Vec::new(),
            }],
            consent: ConsentFacts {
                marketing_without_consent: Ok(Verdict::Skip(SkipReason::NoConsent)),
                ledger_rows: 3,
                granted_contacts: 2,
            },
            unsubscribe: Some(UnsubscribeFacts {
                public_url: Some("https://warmline.example.org".parse().unwrap()),
                link: Ok("https://warmline.example.org/u/0.email.sig".into()),
                round_trips: true,
            }),
            keywords: KeywordFacts {
                unrecognised: vec![],
                checked: 16,
            },
            approval: ApprovalFacts {
                min_recipients: 10,
                approvers: 2,
                approver_group: false,
                approvals_channel: true,
            },
            rates: Rates {
                sends: 1000,
                bounced: 5,
                complained: 1,
            },
            sms: None,
            meta: None,
        }
    }

    fn sms_facts() -> SmsFacts {
        SmsFacts {
            sender_name: "Acme".into(),
            sender_chosen: true,
            marketing_templates: 7,
            without_footer: vec![],
            quiet_hours: crate::dispatcher::settings::QuietHoursSettings::default().sms,
        }
    }

    #[test]
    fn an_sms_channel_gets_sender_footer_and_quiet_hour_rows() {
        // Arrange
        let mut f = healthy();
        f.channel = "sms".into();
        f.unsubscribe = None;
        f.sms = Some(sms_facts());

        // Act
        let checks = evaluate(&[f]);

        // Assert
        assert!(all_passed(&checks), "{checks:#?}");
        let items: Vec<&str> = checks.iter().map(|c| c.item).collect();
        for item in [
            items::SMS_SENDER,
            items::SMS_FOOTER,
            items::SMS_QUIET_HOURS,
            items::KEYWORDS,
        ] {
            assert!(items.contains(&item), "{item}: {items:?}");
        }
        let quiet = checks
            .iter()
            .find(|c| c.item == items::SMS_QUIET_HOURS)
            .unwrap();
        assert!(quiet.reason.contains("08:00–21:00"), "{}", quiet.reason);
    }

    #[test]
    fn sms_rows_fail_or_warn_when_compliance_is_missing() {
        // Arrange
        let mut s = sms_facts();
        s.sender_chosen = false;
        s.without_footer = vec!["promo_sms".into()];
        s.quiet_hours = Some(crate::dispatcher::settings::Window {
            start: "07:00".into(),
            end: "22:00".into(),
        });

        // Act
        let sender = sms_sender("sms", &s);
        let footer = sms_footer("sms", &s);
        let quiet = sms_quiet_hours("sms", &s);
        s.quiet_hours = None;
        let none = sms_quiet_hours("sms", &s);

        // Assert
        assert!(sender.passed && sender.warning, "{sender:?}");
        assert!(sender.reason.contains("WARMLINE_SMS_SENDER_NAME"));
        assert!(
            !footer.passed && footer.reason.contains("promo_sms"),
            "{footer:?}"
        );
        assert!(!quiet.passed, "{quiet:?}");
        assert!(!none.passed, "{none:?}");
    }

    #[test]
    fn a_healthy_channel_passes_every_check() {
        // Arrange
        let facts = vec![healthy()];

        // Act
        let checks = evaluate(&facts);

        // Assert
        assert!(all_passed(&checks), "{checks:#?}");
        assert_eq!(checks.len(), 8);
        assert!(checks.iter().all(|c| c.channel == "email"));
    }

    #[test]
    fn no_provider_at_all_fails_with_what_to_set() {
        let checks = evaluate(&[]);
        assert_eq!(checks.len(), 1);
        assert!(!checks[0].passed);
        assert!(checks[0].reason.contains("RESEND_API_KEY"), "{checks:?}");
    }

    #[test]
    fn consent_fails_when_the_send_time_check_would_let_marketing_through() {
        let mut f = healthy();
        assert!(consent(&f).passed);
        f.consent.marketing_without_consent = Ok(Verdict::Send { to: "x@y.z".into() });
        assert!(!consent(&f).passed);
        f.consent.marketing_without_consent = Err("database is locked".into());
        let c = consent(&f);
        assert!(
            !c.passed && c.reason.contains("database is locked"),
            "{c:?}"
        );
    }

    #[test]
    fn unsubscribe_needs_an_https_public_url_and_a_verifying_token() {
        let mut f = healthy();
        assert!(unsubscribe(&f).passed);

        let u = f.unsubscribe.as_mut().unwrap();
        u.public_url = None;
        let c = unsubscribe(&f);
        assert!(
            !c.passed && c.reason.contains("WARMLINE_PUBLIC_URL"),
            "{c:?}"
        );

        let u = f.unsubscribe.as_mut().unwrap();
        u.public_url = Some("http://warmline.example.org".parse().unwrap());
        let c = unsubscribe(&f);
        assert!(!c.passed && c.reason.contains("https"), "{c:?}");

        let mut f = healthy();
        f.unsubscribe.as_mut().unwrap().round_trips = false;
        assert!(!unsubscribe(&f).passed);
        f.unsubscribe.as_mut().unwrap().link = Err("no secret".into());
        assert!(!unsubscribe(&f).passed);
    }

    #[test]
    fn unsubscribe_is_not_applicable_to_a_channel_without_links() {
        let mut f = healthy();
        f.channel = "sms".into();
        f.unsubscribe = None;
        let c = unsubscribe(&f);
        assert!(c.passed && c.reason.starts_with("not applicable"), "{c:?}");
    }

    #[test]
    fn keywords_fail_naming_the_words_not_recognised() {
        let mut f = healthy();
        assert!(keywords(&f).passed);
        f.keywords.unrecognised = vec!["\"OPTOUT\"".into()];
        let c = keywords(&f);
        assert!(!c.passed && c.reason.contains("OPTOUT"), "{c:?}");
    }

    #[test]
    fn the_real_keyword_parser_recognises_every_opt_out_word() {
        let k = keyword_facts();
        assert!(k.unrecognised.is_empty(), "{:?}", k.unrecognised);
        assert!(k.checked >= 16);
    }

    #[test]
    fn a_provider_without_a_rate_fails() {
        let mut f = healthy();
        let c = rate_limits(&f);
        assert!(
            c.passed && c.reason.contains("resend at 2 requests/s"),
            "{c:?}"
        );
        f.providers[0].requests_per_second = None;
        let c = rate_limits(&f);
        assert!(!c.passed && c.reason.contains("providers.resend.requests_per_second"));
        f.providers[0].requests_per_second = Some(0.0);
        assert!(!rate_limits(&f).passed);
    }

    #[test]
    fn the_approval_gate_needs_approvers_and_a_channel() {
        let mut f = healthy();
        assert!(approval(&f).passed);
        f.approval.approvers = 0;
        let c = approval(&f);
        assert!(
            !c.passed && c.reason.contains("WARMLINE_APPROVERS"),
            "{c:?}"
        );
        f.approval.approver_group = true;
        assert!(approval(&f).passed, "a group is enough");
        f.approval.approvals_channel = false;
        let c = approval(&f);
        assert!(!c.passed && c.reason.contains("WARMLINE_APPROVALS_CHANNEL"));
    }

    #[test]
    fn webhooks_need_a_secret_and_events_once_mail_went_out() {
        let mut f = healthy();
        assert!(webhooks(&f)[0].passed);
        assert!(webhooks(&f)[0].reason.contains("last verified event"));

        f.providers[0].webhook = Webhook::Signed {
            secret_set: false,
            last_event: None,
            settled_sends: 0,
        };
        let c = &webhooks(&f)[0];
        assert!(
            !c.passed && c.reason.contains("RESEND_WEBHOOK_SECRET"),
            "{c:?}"
        );

        f.providers[0].webhook = Webhook::Signed {
            secret_set: true,
            last_event: None,
            settled_sends: 0,
        };
        let c = &webhooks(&f)[0];
        assert!(
            c.passed && c.reason.contains("no verified event yet"),
            "{c:?}"
        );

        f.providers[0].webhook = Webhook::Signed {
            secret_set: true,
            last_event: None,
            settled_sends: 4,
        };
        assert!(!webhooks(&f)[0].passed, "mail went out, nothing came back");
    }

    #[test]
    fn a_provider_s_own_health_becomes_rows_that_pass_warn_or_fail() {
        use crate::providers::{Health, HealthStatus};
        let mut f = healthy();
        f.providers[0].health = vec![
            Health {
                item: "credentials",
                status: HealthStatus::Fail,
                reason: "refused".into(),
            },
            Health {
                item: "sender",
                status: HealthStatus::Warn,
                reason: "a number".into(),
            },
        ];
        let rows = provider_health(&f);
        assert_eq!(rows.len(), 2);
        assert!(!rows[0].passed && rows[0].reason == "resend: refused");
        assert!(rows[1].passed && rows[1].warning);
        assert!(
            evaluate(&[f])
                .iter()
                .any(|c| c.item == "credentials" && !c.passed)
        );
    }

    #[test]
    fn webhooks_are_not_applicable_to_smtp_and_say_so() {
        let mut f = healthy();
        f.providers[0] = ProviderFacts {
            name: "smtp".into(),
            requests_per_second: Some(5.0),
            webhook: Webhook::NotApplicable("SMTP has no delivery webhooks"),
            health: Vec::new(),
        };
        let c = &webhooks(&f)[0];
        assert!(
            c.passed && c.reason.starts_with("not applicable to smtp"),
            "{c:?}"
        );
    }

    #[test]
    fn bounce_rate_fails_at_two_percent() {
        let mut f = healthy();
        f.rates = Rates {
            sends: 1000,
            bounced: 19,
            complained: 0,
        };
        assert!(bounces(&f).passed);
        f.rates.bounced = 20;
        let c = bounces(&f);
        assert!(!c.passed && c.reason.contains("2.00%"), "{c:?}");
    }

    #[test]
    fn complaint_rate_fails_at_three_per_thousand() {
        let mut f = healthy();
        f.rates = Rates {
            sends: 1000,
            bounced: 0,
            complained: 2,
        };
        assert!(complaints(&f).passed);
        f.rates.complained = 3;
        let c = complaints(&f);
        assert!(!c.passed && c.reason.contains("0.30%"), "{c:?}");
    }

    #[test]
    fn too_few_sends_pass_and_say_so() {
        let mut f = healthy();
        f.rates = Rates {
            sends: 10,
            bounced: 5,
            complained: 5,
        };
        let b = bounces(&f);
        assert!(b.passed && b.reason.contains("too few"), "{b:?}");
        assert!(complaints(&f).passed);
    }

    #[test]
    fn a_line_shows_the_verdict_channel_item_and_reason() {
        let c = Check::new("email", items::RATE_LIMITS, false, "smtp has no rate");
        assert_eq!(c.line(), "❌ email · rate limits: smtp has no rate");
    }
}
