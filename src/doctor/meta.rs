//! What the doctor, `/warm status` and the App Home say about Meta's two
//! channels beyond the generic provider rows: the subscription handshake's
//! verify token, WhatsApp's synced templates and messaging tier, and each
//! channel's conversation window in words.
//!
//! One fact-gathering function ([`gather`]) for every surface, so the
//! doctor and the status never disagree; the verdicts are pure functions of
//! [`MetaFacts`].
//!
//! Invariants: reads only (settings and `whatsapp_templates`); secrets are
//! reported as set or not, never shown.

use chrono::{DateTime, Utc};
use sea_orm::ConnectionTrait;

use crate::{domain::Channel, settings::Settings};

/// The window rule, as people read it.
pub fn window_rule(channel: Channel) -> Option<&'static str> {
    match channel {
        Channel::Whatsapp => {
            Some("free-form only within 24 h of their last message; templates otherwise")
        }
        Channel::Instagram => Some(
            "answers only: within 24 h of their last message, a person (tagged HUMAN_AGENT) up to 7 days; no cold outreach",
        ),
        Channel::Email | Channel::Sms => None,
    }
}

/// What warmline holds of the business account's templates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateFacts {
    pub total: usize,
    pub approved: usize,
    /// Approved and fillable by warmline.
    pub usable: usize,
    /// When the set was last synced; `None`: never.
    pub synced_at: Option<DateTime<Utc>>,
}

/// Meta's facts about one of its channels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaFacts {
    pub channel: Channel,
    pub app_secret_set: bool,
    pub verify_token_set: bool,
    /// WhatsApp only.
    pub templates: Option<TemplateFacts>,
    /// WhatsApp only: the tier in words.
    pub tier: Option<String>,
    /// WhatsApp only: unique people reached by template messages in the
    /// last 24 h (`crate::whatsapp::tier::reached`).
    pub reached: Option<u64>,
}

fn set(s: &Option<secrecy::SecretString>) -> bool {
    use secrecy::ExposeSecret;
    s.as_ref()
        .is_some_and(|v| !v.expose_secret().trim().is_empty())
}

/// The facts for `channel` (`None` for email and SMS).
pub async fn gather(
    settings: &Settings,
    db: &impl ConnectionTrait,
    channel: Channel,
) -> anyhow::Result<Option<MetaFacts>> {
    if window_rule(channel).is_none() {
        return Ok(None);
    }
    let templates = if channel == Channel::Whatsapp {
        let all = crate::whatsapp::templates::all(db).await?;
        Some(TemplateFacts {
            total: all.len(),
            approved: all.iter().filter(|t| t.is_approved()).count(),
            usable: all.iter().filter(|t| t.usable().is_ok()).count(),
            synced_at: crate::whatsapp::templates::synced_at(db).await?,
        })
    } else {
        None
    };
    Ok(Some(MetaFacts {
        channel,
        app_secret_set: set(&settings.meta.app_secret),
        verify_token_set: set(&settings.meta.verify_token),
        templates,
        tier: (channel == Channel::Whatsapp).then(|| settings.whatsapp.messaging_tier.words()),
        reached: if channel == Channel::Whatsapp {
            Some(crate::whatsapp::tier::reached(db, crate::clock::now()).await?)
        } else {
            None
        },
    }))
}

/// A verdict: passed, warning, words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub item: &'static str,
    pub passed: bool,
    pub warning: bool,
    pub reason: String,
    /// The setting that fixes a failure.
    pub setting: Option<&'static str>,
}

pub mod items {
    pub const VERIFY_TOKEN: &str = "webhook verify token";
    pub const TEMPLATES: &str = "templates synced";
    pub const TIER: &str = "messaging tier";
    pub const WINDOW: &str = "conversation window";
}

fn at(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// The rows for one Meta channel, in order.
pub fn verdicts(f: &MetaFacts) -> Vec<Verdict> {
    let mut out = vec![if f.verify_token_set {
        Verdict {
            item: items::VERIFY_TOKEN,
            passed: true,
            warning: false,
            reason: "META_VERIFY_TOKEN set: Meta's subscription handshake can be answered".into(),
            setting: None,
        }
    } else {
        Verdict {
            item: items::VERIFY_TOKEN,
            passed: false,
            warning: false,
            reason: "META_VERIFY_TOKEN is not set: Meta cannot verify the webhook subscription, so no message or status arrives".into(),
            setting: Some("META_VERIFY_TOKEN"),
        }
    }];
    if let Some(t) = &f.templates {
        out.push(match t.synced_at {
            None => Verdict {
                item: items::TEMPLATES,
                passed: false,
                warning: false,
                reason: "never synced: outside the 24-hour window nothing can be sent until templates are (`/warm whatsapp templates`)".into(),
                setting: None,
            },
            Some(when) => Verdict {
                item: items::TEMPLATES,
                passed: true,
                warning: t.usable == 0,
                reason: format!(
                    "{} template(s), {} approved, {} usable by warmline; synced {}{}",
                    t.total,
                    t.approved,
                    t.usable,
                    at(when),
                    if t.usable == 0 {
                        ": none can be sent yet (approve one in Meta's console, then `/warm whatsapp templates`)"
                    } else {
                        ""
                    }
                ),
                setting: None,
            },
        });
    }
    if let Some(tier) = &f.tier {
        out.push(Verdict {
            item: items::TIER,
            passed: true,
            warning: false,
            reason: format!(
                "{tier}{} (`[whatsapp] messaging_tier`; Meta counts unique recipients of conversations we start in a rolling 24 h)",
                f.reached
                    .map(|n| format!("; {n} reached in the last 24 h"))
                    .unwrap_or_default()
            ),
            setting: None,
        });
    }
    if let Some(rule) = window_rule(f.channel) {
        out.push(Verdict {
            item: items::WINDOW,
            passed: true,
            warning: false,
            reason: rule.to_string(),
            setting: None,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whatsapp() -> MetaFacts {
        MetaFacts {
            channel: Channel::Whatsapp,
            app_secret_set: true,
            verify_token_set: true,
            templates: Some(TemplateFacts {
                total: 3,
                approved: 2,
                usable: 1,
                synced_at: DateTime::<Utc>::from_timestamp(1_800_000_000, 0),
            }),
            tier: Some("1,000 unique recipients per 24 h".into()),
            reached: Some(12),
        }
    }

    #[test]
    fn whatsapp_reports_token_templates_tier_and_window() {
        let v = verdicts(&whatsapp());
        let items: Vec<_> = v.iter().map(|v| v.item).collect();
        assert_eq!(
            items,
            [
                items::VERIFY_TOKEN,
                items::TEMPLATES,
                items::TIER,
                items::WINDOW
            ]
        );
        assert!(v.iter().all(|v| v.passed && !v.warning), "{v:?}");
        assert!(v[1].reason.contains("3 template(s), 2 approved, 1 usable"));
        assert!(v[2].reason.contains("12 reached in the last 24 h"), "{v:?}");
        assert!(v[3].reason.contains("24 h"));
    }

    #[test]
    fn never_synced_fails_and_a_missing_token_names_its_setting() {
        let mut f = whatsapp();
        f.verify_token_set = false;
        f.templates = Some(TemplateFacts {
            total: 0,
            approved: 0,
            usable: 0,
            synced_at: None,
        });
        let v = verdicts(&f);
        assert!(!v[0].passed);
        assert_eq!(v[0].setting, Some("META_VERIFY_TOKEN"));
        assert!(!v[1].passed && v[1].reason.contains("never synced"));
    }

    #[test]
    fn instagram_has_no_templates_or_tier_and_says_answers_only() {
        let f = MetaFacts {
            channel: Channel::Instagram,
            app_secret_set: true,
            verify_token_set: true,
            templates: None,
            tier: None,
            reached: None,
        };
        let v = verdicts(&f);
        assert_eq!(v.len(), 2);
        assert!(v[1].reason.starts_with("answers only"));
        assert!(v[1].reason.contains("7 days"));
    }
}
