//! What is configured and what is missing, for `/warm status` and the Home
//! tab's setup section: one model, [`SetupStatus`], a list of
//! [`Integration`] rows grouped in [`Section`]s (Slack; one per channel;
//! the JSON API, error monitoring and the server).
//!
//! The channel sections come from [`Channel::ALL`] and the provider
//! registry, not from a list here: a channel's provider row names the
//! provider carrying it and its rate, and its webhook row comes from
//! [`Registry::webhook_of`], so a provider added to the registry shows up
//! without editing this file. A channel no provider of this build can carry
//! is [`State::NotAvailable`] (➖): there is no setting that would turn it
//! on, so the user is not told to set one.
//!
//! Invariants:
//! - Secrets are never shown, only whether they are set; settings are named
//!   by their environment variable.
//! - Only [`State::Missing`] rows count as missing, and each carries the
//!   setting that fixes it (or, for WhatsApp templates never synced, says
//!   the command that does).
//! - WhatsApp and Instagram add, once carried, the rows of
//!   [`crate::doctor::meta`] (verify token, templates, tier, the window
//!   rule): the same facts and verdicts as the doctor.
//! - Reads only: settings, the registry, and `provider_events` (events that
//!   passed signature verification).

use chrono::{DateTime, Utc};
use sea_orm::ConnectionTrait;
use serde::Serialize;

use super::mrkdwn;
use crate::{domain::Channel, providers::Registry, settings::Settings, state::App};

/// How an integration stands.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Configured (✅).
    Ok,
    /// Not configured, and the row's setting would fix it (❌).
    Missing,
    /// Nothing in this version can provide it (➖): neither good nor bad.
    NotAvailable,
}

/// One row: an integration and how it stands.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Integration {
    pub name: String,
    pub state: State,
    /// What is set ("Resend, sending as …"), or what is wrong.
    pub detail: String,
    /// The setting that turns it on or fixes it (an environment variable,
    /// or several joined by "or"); shown when missing.
    pub setting: Option<&'static str>,
}

impl Integration {
    fn new(name: &str, state: State, detail: impl Into<String>) -> Self {
        Self {
            name: name.to_string(),
            state,
            detail: detail.into(),
            setting: None,
        }
    }

    fn ok(name: &str, detail: impl Into<String>) -> Self {
        Self::new(name, State::Ok, detail)
    }

    fn missing(name: &str, detail: impl Into<String>, setting: &'static str) -> Self {
        Self {
            setting: Some(setting),
            ..Self::new(name, State::Missing, detail)
        }
    }

    /// Ok when `ok`, else missing with `setting`.
    fn either(
        name: &str,
        ok: bool,
        yes: impl FnOnce() -> String,
        no: &str,
        setting: &'static str,
    ) -> Self {
        if ok {
            Self::ok(name, yes())
        } else {
            Self::missing(name, no, setting)
        }
    }
}

/// A group of rows under a title.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Section {
    pub title: String,
    pub rows: Vec<Integration>,
}

/// Every integration, grouped, with the counts the summary line shows.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SetupStatus {
    pub sections: Vec<Section>,
    pub configured: usize,
    pub missing: usize,
}

impl SetupStatus {
    fn new(sections: Vec<Section>) -> Self {
        let count = |state| {
            sections
                .iter()
                .flat_map(|s| &s.rows)
                .filter(|r| r.state == state)
                .count()
        };
        Self {
            configured: count(State::Ok),
            missing: count(State::Missing),
            sections,
        }
    }

    pub fn rows(&self) -> impl Iterator<Item = &Integration> {
        self.sections.iter().flat_map(|s| &s.rows)
    }

    /// The plain-text summary (notification fallback).
    pub fn summary(&self) -> String {
        format!(
            "Setup: {} configured, {} missing",
            self.configured, self.missing
        )
    }
}

impl Integration {
    /// The row as one mrkdwn line: icon, name, detail, and for a missing
    /// row the setting to set.
    pub fn line(&self) -> String {
        let icon = match self.state {
            State::Ok => ":white_check_mark:",
            State::Missing => ":x:",
            State::NotAvailable => ":heavy_minus_sign:",
        };
        let mut line = format!("{icon} *{}*: {}", self.name, self.detail);
        if let (State::Missing, Some(setting)) = (self.state, self.setting) {
            // "A or B and C": each variable in code, the words between kept.
            let names: Vec<String> = setting
                .split(" or ")
                .map(|alt| {
                    // "A, B and C": the last pair joined by "and".
                    let vars: Vec<String> = alt
                        .split(" and ")
                        .flat_map(|s| s.split(", "))
                        .map(|s| format!("`{s}`"))
                        .collect();
                    match vars.split_last() {
                        Some((last, rest)) if !rest.is_empty() => {
                            format!("{} and {last}", rest.join(", "))
                        }
                        _ => vars.join(""),
                    }
                })
                .collect();
            line.push_str(&format!(" → set {}", names.join(" or ")));
        }
        line
    }
}

impl SetupStatus {
    /// The layouts' context: the model, with each section's rows also as
    /// mrkdwn lines (one block per section keeps the Home tab well under
    /// Slack's block limit).
    pub fn context(&self) -> serde_json::Value {
        serde_json::json!({
            "configured": self.configured,
            "missing": self.missing,
            "sections": self.sections.iter().map(|s| serde_json::json!({
                "title": s.title,
                "rows": s.rows,
                "lines": s.rows.iter().map(Integration::line).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        })
    }
}

/// What the registry and the event store say about one channel.
#[derive(Debug, Clone)]
pub struct ChannelFacts {
    pub channel: Channel,
    /// The provider carrying it, if any.
    pub carrier: Option<ProviderFacts>,
    /// WhatsApp and Instagram: Meta's own facts.
    pub meta: Option<crate::doctor::meta::MetaFacts>,
}

#[derive(Debug, Clone)]
pub struct ProviderFacts {
    pub label: String,
    pub requests_per_second: Option<f64>,
    /// Other providers configured for the same channel, which do not carry it.
    pub also: Vec<String>,
    pub webhook: WebhookFacts,
}

#[derive(Debug, Clone)]
pub enum WebhookFacts {
    /// The provider reports back through a signed webhook.
    Signed {
        label: String,
        secret_set: bool,
        secret_setting: &'static str,
        last_verified: Option<DateTime<Utc>>,
    },
    /// It has none; how its failures reach warmline instead.
    None(&'static str),
}

/// What turns `channel` on ("RESEND_API_KEY or SMTP_URL"), from the
/// providers' own `ENABLED_BY` declarations; `None` when no provider in this
/// build can carry it.
fn enabled_by(channel: Channel) -> Option<&'static str> {
    static BY_CHANNEL: std::sync::LazyLock<std::collections::BTreeMap<Channel, String>> =
        std::sync::LazyLock::new(|| {
            let mut by = std::collections::BTreeMap::<Channel, Vec<&str>>::new();
            for (channel, var) in crate::providers::settings::ENABLED_BY {
                by.entry(*channel).or_default().push(var);
            }
            by.into_iter().map(|(c, v)| (c, v.join(" or "))).collect()
        });
    BY_CHANNEL.get(&channel).map(String::as_str)
}

/// The whole status as of `now`.
pub async fn gather(app: &App, now: DateTime<Utc>) -> anyhow::Result<SetupStatus> {
    let mut channels = channel_facts(app.dispatcher.registry(), &app.db).await?;
    for c in &mut channels {
        c.meta = crate::doctor::meta::gather(&app.settings, &app.db, c.channel).await?;
    }
    Ok(build(&app.settings, &channels, now))
}

/// Each channel of [`Channel::ALL`] with its provider and webhook, read from
/// the registry and the verified events.
pub async fn channel_facts(
    registry: &Registry,
    db: &impl ConnectionTrait,
) -> anyhow::Result<Vec<ChannelFacts>> {
    let mut out = Vec::new();
    for channel in Channel::ALL {
        let carrier = match registry.for_channel(channel) {
            None => None,
            Some(p) => {
                let webhook = match registry.webhook_of(p.name()) {
                    Some(w) => WebhookFacts::Signed {
                        label: w.label().to_string(),
                        secret_set: w.is_configured(),
                        secret_setting: w.secret_setting(),
                        last_verified: crate::webhooks::events::last_verified(db, w.provider())
                            .await?,
                    },
                    None => WebhookFacts::None(p.without_webhook()),
                };
                Some(ProviderFacts {
                    label: p.label().to_string(),
                    requests_per_second: p.limits().requests_per_second,
                    also: registry
                        .all()
                        .filter(|o| o.channel() == channel && o.name() != p.name())
                        .map(|o| o.label().to_string())
                        .collect(),
                    webhook,
                })
            }
        };
        out.push(ChannelFacts {
            channel,
            carrier,
            meta: None,
        });
    }
    Ok(out)
}

/// The status from settings and channel facts (pure, for tests).
pub fn build(settings: &Settings, channels: &[ChannelFacts], now: DateTime<Utc>) -> SetupStatus {
    let mut sections = vec![slack(settings)];
    sections.extend(channels.iter().map(|c| channel(settings, c, now)));
    sections.push(platform(settings));
    SetupStatus::new(sections)
}

fn slack(settings: &Settings) -> Section {
    let s = &settings.slack;
    let approvers = {
        let mut who: Vec<String> = s.approvers.iter().map(|u| format!("<@{u}>")).collect();
        if let Some(group) = &settings.approval.approver_group {
            who.push(format!("<!subteam^{group}>"));
        }
        who.join(", ")
    };
    Section {
        title: "Slack".into(),
        rows: vec![
            Integration::either(
                "Bot token",
                s.bot_token.is_some(),
                || "set".into(),
                "warmline cannot post to Slack",
                "SLACK_BOT_TOKEN",
            ),
            Integration::either(
                "Signing secret",
                s.signing_secret.is_some(),
                || "set".into(),
                "every request from Slack is refused",
                "SLACK_SIGNING_SECRET",
            ),
            Integration::ok(
                "Connection",
                if s.app_token.is_some() {
                    "Socket Mode"
                } else {
                    "HTTP request URLs"
                },
            ),
            Integration::either(
                "Approvals channel",
                s.approvals_channel.is_some(),
                || format!("<#{}>", s.approvals_channel.as_deref().unwrap_or_default()),
                "approval requests have nowhere to go",
                "WARMLINE_APPROVALS_CHANNEL",
            ),
            Integration::either(
                "Digest channel",
                s.digest_channel.is_some(),
                || format!("<#{}>", s.digest_channel.as_deref().unwrap_or_default()),
                "no daily digest is posted",
                "WARMLINE_DIGEST_CHANNEL",
            ),
            Integration::either(
                "Approvers",
                !approvers.is_empty(),
                || approvers.clone(),
                "nobody can approve a bulk send",
                "WARMLINE_APPROVERS",
            ),
        ],
    }
}

fn channel(settings: &Settings, facts: &ChannelFacts, now: DateTime<Utc>) -> Section {
    let c = facts.channel;
    let email = c == Channel::Email;
    let sender = settings.email.from.as_deref().map(mrkdwn::escape);
    let mut rows = Vec::new();
    match (&facts.carrier, enabled_by(c)) {
        (None, None) => rows.push(Integration::new(
            "Provider",
            State::NotAvailable,
            "not available in this version",
        )),
        (None, Some(setting)) => rows.push(Integration::missing(
            "Provider",
            format!("no {} provider: nothing can be sent", c.label()),
            setting,
        )),
        (Some(p), _) => {
            let mut detail = p.label.clone();
            if let (true, Some(from)) = (email, &sender) {
                detail.push_str(&format!(", sending as {from}"));
            }
            match p.requests_per_second {
                Some(r) => detail.push_str(&format!(" · up to {r}/s")),
                None => detail.push_str(" · no rate limit"),
            }
            if !p.also.is_empty() {
                detail.push_str(&format!(" · also configured: {}", p.also.join(", ")));
                if email {
                    detail.push_str(" (`email.provider` chooses)");
                }
            }
            rows.push(Integration::ok("Provider", detail));
        }
    }
    if email {
        rows.push(Integration::either(
            "Sender",
            sender.is_some(),
            || sender.clone().unwrap_or_default(),
            "no From address for emails",
            "WARMLINE_EMAIL_FROM",
        ));
    }
    if let Some(p) = &facts.carrier {
        rows.push(match &p.webhook {
            WebhookFacts::Signed {
                label,
                secret_set,
                secret_setting,
                last_verified,
            } => {
                let last = match last_verified {
                    Some(at) => format!("last verified event {}", ago(now, *at)),
                    None => "last verified event: never".to_string(),
                };
                if *secret_set {
                    Integration::ok(
                        "Delivery webhook",
                        format!("{label}: webhook secret set · {last}"),
                    )
                } else {
                    let refused = match c {
                        Channel::Email => "bounces and complaints",
                        _ => "incoming messages and statuses",
                    };
                    Integration::missing(
                        "Delivery webhook",
                        format!(
                            "{label}: no valid webhook secret, so {refused} are refused · {last}"
                        ),
                        secret_setting,
                    )
                }
            }
            WebhookFacts::None(how) => {
                Integration::new("Delivery webhook", State::NotAvailable, *how)
            }
        });
    }
    if let (Some(_), Some(m)) = (&facts.carrier, &facts.meta) {
        use crate::doctor::meta::items;
        for v in crate::doctor::meta::verdicts(m) {
            let name = match v.item {
                items::VERIFY_TOKEN => "Webhook verify token",
                items::TEMPLATES => "Templates",
                items::TIER => "Messaging tier",
                _ => "Conversation window",
            };
            rows.push(match (v.passed, v.setting) {
                (false, Some(setting)) => Integration::missing(name, v.reason, setting),
                (false, None) => Integration::new(name, State::Missing, v.reason),
                (true, _) if v.warning => Integration::ok(name, format!(":warning: {}", v.reason)),
                (true, _) => Integration::ok(name, v.reason),
            });
        }
    }
    let mut title = c.label().to_string();
    if let Some(first) = title.get_mut(..1) {
        first.make_ascii_uppercase();
    }
    Section { title, rows }
}

fn platform(settings: &Settings) -> Section {
    let socket_mode = settings.slack.app_token.is_some();
    let database = match &settings.database.url {
        Some(_) if crate::settings::is_postgres_url(&settings.database) => "PostgreSQL".to_string(),
        Some(_) => "SQLite (DATABASE_URL)".to_string(),
        None => format!("SQLite at {}", settings.database.sqlite_path.display()),
    };
    let keys = settings.api.keys.len();
    Section {
        title: "warmline".into(),
        rows: vec![
            Integration::either(
                "Public URL",
                settings.server.public_url.is_some(),
                || {
                    settings
                        .server
                        .public_url
                        .as_ref()
                        .map(|u| u.to_string())
                        .unwrap_or_default()
                },
                if socket_mode {
                    "needed for unsubscribe links and provider webhooks"
                } else {
                    "needed for unsubscribe links, provider webhooks and Slack's request URLs"
                },
                "WARMLINE_PUBLIC_URL",
            ),
            Integration::either(
                "JSON API keys",
                keys > 0,
                || format!("{keys} key{} configured", if keys == 1 { "" } else { "s" }),
                "none configured: the JSON API refuses every request",
                "WARMLINE_API_KEYS",
            ),
            Integration::either(
                "Error monitoring",
                settings.sentry.dsn.is_some(),
                || format!("Sentry ({})", settings.sentry.environment),
                "errors are only logged",
                "SENTRY_DSN",
            ),
            Integration::ok("Database", database),
        ],
    }
}

/// "3 minutes ago", to the coarsest unit that is at least 1.
fn ago(now: DateTime<Utc>, at: DateTime<Utc>) -> String {
    let secs = (now - at).num_seconds().max(0);
    let (n, unit) = match secs {
        0..60 => return "just now".into(),
        60..3_600 => (secs / 60, "minute"),
        3_600..172_800 => (secs / 3_600, "hour"),
        _ => (secs / 86_400, "day"),
    };
    format!("{n} {unit}{} ago", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;

    fn none() -> Vec<ChannelFacts> {
        Channel::ALL
            .map(|channel| ChannelFacts {
                channel,
                carrier: None,
                meta: None,
            })
            .to_vec()
    }

    fn resend(secret_set: bool, last_verified: Option<DateTime<Utc>>) -> Vec<ChannelFacts> {
        let mut c = none();
        c[0].carrier = Some(ProviderFacts {
            label: "Resend".into(),
            requests_per_second: Some(2.0),
            also: vec![],
            webhook: WebhookFacts::Signed {
                label: "Resend".into(),
                secret_set,
                secret_setting: "RESEND_WEBHOOK_SECRET",
                last_verified,
            },
        });
        c
    }

    fn section<'a>(s: &'a SetupStatus, title: &str) -> &'a Section {
        s.sections
            .iter()
            .find(|x| x.title == title)
            .unwrap_or_else(|| panic!("no {title} section in {s:#?}"))
    }

    fn row<'a>(s: &'a SetupStatus, title: &str, name: &str) -> &'a Integration {
        section(s, title)
            .rows
            .iter()
            .find(|r| r.name == name)
            .unwrap_or_else(|| panic!("no {title} / {name} row in {s:#?}"))
    }

    #[test]
    fn a_bare_configuration_names_the_setting_for_each_missing_row() {
        // Arrange / Act
        let s = build(&Settings::default(), &none(), crate::clock::now());

        // Assert
        let email = row(&s, "Email", "Provider");
        assert_eq!(email.state, State::Missing);
        assert_eq!(email.setting, Some("RESEND_API_KEY or SMTP_URL"));
        assert_eq!(
            row(&s, "Slack", "Bot token").setting,
            Some("SLACK_BOT_TOKEN")
        );
        assert_eq!(
            row(&s, "warmline", "JSON API keys").setting,
            Some("WARMLINE_API_KEYS")
        );
        assert_eq!(
            row(&s, "warmline", "Error monitoring").setting,
            Some("SENTRY_DSN")
        );
        assert_eq!(
            row(&s, "warmline", "Public URL").setting,
            Some("WARMLINE_PUBLIC_URL")
        );
        assert!(
            s.rows()
                .filter(|r| r.state == State::Missing)
                .all(|r| r.setting.is_some())
        );
        assert_eq!(
            s.missing,
            s.rows().filter(|r| r.state == State::Missing).count()
        );
        assert!(
            section(&s, "Email")
                .rows
                .iter()
                .all(|r| r.name != "Delivery webhook"),
            "no webhook row without a provider"
        );
    }

    #[test]
    fn meta_channels_without_a_provider_name_what_turns_them_on_and_nothing_else() {
        // Arrange / Act
        let s = build(&Settings::default(), &none(), crate::clock::now());

        // Assert: every channel has a provider in this version now.
        for (title, setting) in [
            (
                "WhatsApp",
                "WHATSAPP_ACCESS_TOKEN, WHATSAPP_PHONE_NUMBER_ID and WHATSAPP_BUSINESS_ACCOUNT_ID",
            ),
            (
                "Instagram",
                "INSTAGRAM_ACCESS_TOKEN and INSTAGRAM_ACCOUNT_ID",
            ),
        ] {
            let r = row(&s, title, "Provider");
            assert_eq!(r.state, State::Missing, "{title}");
            assert_eq!(r.setting, Some(setting), "{title}");
            assert_eq!(section(&s, title).rows.len(), 1, "{title}");
        }
    }

    #[test]
    fn a_carried_meta_channel_shows_token_templates_tier_and_window() {
        // Arrange: WhatsApp carried, templates never synced, no verify token.
        let mut c = none();
        let wa = c
            .iter_mut()
            .find(|f| f.channel == Channel::Whatsapp)
            .unwrap();
        wa.carrier = Some(ProviderFacts {
            label: "WhatsApp Cloud API".into(),
            requests_per_second: Some(80.0),
            also: vec![],
            webhook: WebhookFacts::Signed {
                label: "Meta".into(),
                secret_set: true,
                secret_setting: "META_APP_SECRET",
                last_verified: None,
            },
        });
        wa.meta = Some(crate::doctor::meta::MetaFacts {
            channel: Channel::Whatsapp,
            app_secret_set: true,
            verify_token_set: false,
            templates: Some(crate::doctor::meta::TemplateFacts {
                total: 0,
                approved: 0,
                usable: 0,
                synced_at: None,
            }),
            tier: Some("250 unique recipients per 24 h".into()),
            reached: Some(0),
        });

        // Act
        let s = build(&Settings::default(), &c, crate::clock::now());

        // Assert
        let token = row(&s, "WhatsApp", "Webhook verify token");
        assert_eq!(token.state, State::Missing);
        assert_eq!(token.setting, Some("META_VERIFY_TOKEN"));
        let templates = row(&s, "WhatsApp", "Templates");
        assert_eq!(templates.state, State::Missing);
        assert!(templates.detail.contains("never synced"), "{templates:?}");
        assert_eq!(row(&s, "WhatsApp", "Messaging tier").state, State::Ok);
        assert!(
            row(&s, "WhatsApp", "Conversation window")
                .detail
                .contains("templates otherwise")
        );
    }

    #[test]
    fn resend_with_a_secret_shows_the_sender_rate_and_when_it_last_verified_an_event() {
        // Arrange
        let now = crate::clock::now();
        let mut settings = Settings::default();
        settings.email.from = Some("Team <team@example.com>".into());

        // Act
        let s = build(
            &settings,
            &resend(true, Some(now - Duration::minutes(3))),
            now,
        );

        // Assert
        let provider = row(&s, "Email", "Provider");
        assert_eq!(provider.state, State::Ok);
        assert_eq!(
            provider.detail,
            "Resend, sending as Team &lt;team@example.com&gt; · up to 2/s"
        );
        let hook = row(&s, "Email", "Delivery webhook");
        assert_eq!(hook.state, State::Ok);
        assert_eq!(
            hook.detail,
            "Resend: webhook secret set · last verified event 3 minutes ago"
        );
        assert_eq!(row(&s, "Email", "Sender").state, State::Ok);
    }

    #[test]
    fn a_webhook_without_a_secret_is_missing_and_names_its_setting() {
        // Arrange / Act
        let s = build(
            &Settings::default(),
            &resend(false, None),
            crate::clock::now(),
        );

        // Assert
        let hook = row(&s, "Email", "Delivery webhook");
        assert_eq!(hook.state, State::Missing);
        assert_eq!(hook.setting, Some("RESEND_WEBHOOK_SECRET"));
        assert!(hook.detail.contains("never"), "{}", hook.detail);
    }

    #[test]
    fn a_provider_without_webhooks_says_how_failures_arrive_instead() {
        // Arrange
        let mut c = none();
        c[0].carrier = Some(ProviderFacts {
            label: "SMTP".into(),
            requests_per_second: None,
            also: vec!["Resend".into()],
            webhook: WebhookFacts::None("refusals come back at send time"),
        });

        // Act
        let s = build(&Settings::default(), &c, crate::clock::now());

        // Assert
        let hook = row(&s, "Email", "Delivery webhook");
        assert_eq!(hook.state, State::NotAvailable);
        assert_eq!(hook.detail, "refusals come back at send time");
        let provider = &row(&s, "Email", "Provider").detail;
        assert!(provider.contains("also configured: Resend"), "{provider}");
        assert!(provider.contains("no rate limit"), "{provider}");
    }

    #[test]
    fn a_channel_gets_its_provider_and_webhook_rows_from_the_facts() {
        // Arrange: a provider for SMS, as a future plug-in would register.
        let mut c = none();
        c[1].carrier = Some(ProviderFacts {
            label: "Twilio".into(),
            requests_per_second: Some(1.0),
            also: vec![],
            webhook: WebhookFacts::Signed {
                label: "Twilio".into(),
                secret_set: false,
                secret_setting: "TWILIO_AUTH_TOKEN",
                last_verified: None,
            },
        });

        // Act
        let s = build(&Settings::default(), &c, crate::clock::now());

        // Assert
        assert_eq!(row(&s, "SMS", "Provider").detail, "Twilio · up to 1/s");
        assert_eq!(
            row(&s, "SMS", "Delivery webhook").setting,
            Some("TWILIO_AUTH_TOKEN")
        );
        assert!(section(&s, "SMS").rows.iter().all(|r| r.name != "Sender"));
    }

    #[test]
    fn secrets_are_never_in_the_status() {
        // Arrange
        let mut settings = Settings::default();
        settings.slack.bot_token = Some("xoxb-secret-token".to_string().into());
        settings.api.keys = vec![
            "key-one-secret".to_string().into(),
            "key-two".to_string().into(),
        ];
        settings.sentry.dsn = Some("https://abc@sentry.example/1".to_string().into());

        // Act
        let s = build(&settings, &resend(true, None), crate::clock::now());

        // Assert
        let json = serde_json::to_string(&s).unwrap();
        for secret in ["xoxb-secret-token", "key-one-secret", "abc@sentry"] {
            assert!(!json.contains(secret), "{secret} in {json}");
        }
        assert_eq!(
            row(&s, "warmline", "JSON API keys").detail,
            "2 keys configured"
        );
    }

    #[test]
    fn a_missing_line_names_each_setting_that_fixes_it() {
        // Arrange
        let s = build(&Settings::default(), &none(), crate::clock::now());

        // Act
        let line = row(&s, "Email", "Provider").line();

        // Assert
        assert_eq!(
            line,
            ":x: *Provider*: no email provider: nothing can be sent → set `RESEND_API_KEY` or `SMTP_URL`"
        );
        assert_eq!(
            row(&s, "SMS", "Provider").line(),
            ":x: *Provider*: no SMS provider: nothing can be sent → set `TWILIO_ACCOUNT_SID` and `TWILIO_AUTH_TOKEN`"
        );
        assert_eq!(
            row(&s, "WhatsApp", "Provider").line(),
            ":x: *Provider*: no WhatsApp provider: nothing can be sent → set `WHATSAPP_ACCESS_TOKEN`, `WHATSAPP_PHONE_NUMBER_ID` and `WHATSAPP_BUSINESS_ACCOUNT_ID`"
        );
    }

    #[test]
    fn ago_reads_in_the_coarsest_whole_unit() {
        let now = crate::clock::now();
        assert_eq!(ago(now, now - Duration::seconds(5)), "just now");
        assert_eq!(ago(now, now - Duration::seconds(61)), "1 minute ago");
        assert_eq!(ago(now, now - Duration::minutes(59)), "59 minutes ago");
        assert_eq!(ago(now, now - Duration::hours(5)), "5 hours ago");
        assert_eq!(ago(now, now - Duration::days(3)), "3 days ago");
        assert_eq!(ago(now, now + Duration::minutes(1)), "just now");
    }
}
