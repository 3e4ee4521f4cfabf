//! Triggers: automated sequences that start when a relationship crosses a
//! line, and send their steps through the approval policy.
//!
//! Three kinds, from the integration roadmap:
//! - [`cold`]: warmth fell below 25 after a week without contact — a 3-step
//!   revival (value, resource, soft check-in) at days 0, 7 and 14;
//! - [`onboarding`]: a new contact — welcome, story, resource at days 0, 3, 7;
//! - [`monthly`]: an active contact above 50 — one check-in a month.
//!
//! The [`runner`] does everything in one [`tick`]: it detects new crossings
//! (one set-based `INSERT … SELECT … ON CONFLICT DO NOTHING` per kind into
//! `trigger_runs`), then sends each due step of each active run through
//! [`crate::approval::submit`], which posts it to Slack for approval or
//! queues it where the policy allows.
//!
//! Invariants:
//! - **Once per crossing.** A run is one row per (contact, trigger,
//!   crossing), unique in the database, so detection can run any number of
//!   times, in any number of processes, and a crossing starts at most one
//!   run. Each kind's module documents what its crossing key is.
//! - **One sequence at a time per contact.** A crossing is only detected for
//!   a contact with no active run of any kind (onboarding, detected first,
//!   wins over a revival for a brand-new contact; a revival that is still
//!   due once onboarding ends starts then, under its same crossing key).
//! - **Each step is submitted at most once.** A step's send has the
//!   deterministic source `trigger:<kind>:<contact>:<crossing>:<step>`,
//!   which is part of every message id, so submitting it again inserts
//!   nothing. Before submitting, the runner claims the run by pushing its
//!   `next_step_at` a lease ahead with a guarded `UPDATE` (only one runner
//!   wins), and it advances with `UPDATE … WHERE step = <old>`, so two
//!   runners never both send or both advance a step. After a crash between
//!   submit and advance, the lease runs out, the step is found already in
//!   the ledger (a message with its source) and the run just advances: no
//!   second send and no second approval request.
//! - **A reply or an opt-out stops the rest.** Before each step the runner
//!   stops the run (`stopped_reason` `replied`) if the contact sent anything
//!   inbound since the run started, and (`opted_out`) if their consent for
//!   the channel is no longer granted (`suppressed` for a suppressed
//!   address). The inbound path also stops runs the moment a reply lands.
//!   A step already queued when the contact opts out is not recalled here:
//!   the dispatcher's last-moment check skips it anyway.
//! - Only contacts with an address, current consent for the channel and no
//!   suppression are detected; the dispatcher checks all of it again at
//!   send time.

pub mod cold;
pub mod monthly;
pub mod onboarding;
pub mod runner;
pub mod settings;

pub use settings::TriggerSettings;

pub use runner::{TickStats, TriggerJob, tick};

/// One step of a sequence: the template it sends (one per channel triggers
/// can send on) and the day, counted from the first step, it is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// The email template.
    pub template: &'static str,
    /// The SMS template: short, and finished by `crate::sms::compose` with
    /// the sender's name and the STOP footer.
    pub sms_template: &'static str,
    pub day: i64,
}

impl Step {
    /// The template this step sends on `channel`; `None` for a channel
    /// triggers have no copy for (WhatsApp needs approved templates,
    /// Instagram cannot start a conversation).
    pub fn template_for(&self, channel: crate::domain::Channel) -> Option<&'static str> {
        match channel {
            crate::domain::Channel::Email => Some(self.template),
            crate::domain::Channel::Sms => Some(self.sms_template),
            crate::domain::Channel::Whatsapp | crate::domain::Channel::Instagram => None,
        }
    }
}

/// The kinds of trigger, as stored in `trigger_runs.trigger`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Cold,
    Onboarding,
    Monthly,
}

impl Kind {
    /// In detection order: onboarding first, so a brand-new contact gets
    /// its welcome rather than a revival.
    pub const ALL: [Kind; 3] = [Kind::Onboarding, Kind::Cold, Kind::Monthly];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Cold => "cold",
            Kind::Onboarding => "onboarding",
            Kind::Monthly => "monthly",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The sequence's steps, in order.
    pub fn steps(self) -> &'static [Step] {
        match self {
            Kind::Cold => cold::STEPS,
            Kind::Onboarding => onboarding::STEPS,
            Kind::Monthly => monthly::STEPS,
        }
    }

    /// How approvers see it: "Cold revival".
    pub fn label(self) -> &'static str {
        match self {
            Kind::Cold => "Cold revival",
            Kind::Onboarding => "Onboarding",
            Kind::Monthly => "Monthly check-in",
        }
    }

    /// The name of one step's send, shown to approvers: "Cold revival, step
    /// 2 of 3: Ada Lovelace" (a one-step sequence has no "step" part).
    pub fn send_name(self, step: usize, who: &str) -> String {
        let n = self.steps().len();
        if n == 1 {
            format!("{}: {who}", self.label())
        } else {
            format!("{}, step {} of {n}: {who}", self.label(), step + 1)
        }
    }

    /// Who asks for the send: `trigger:cold`.
    pub fn requested_by(self) -> String {
        format!("trigger:{}", self.as_str())
    }
}

/// The source of one step's send: deterministic, so the same step submitted
/// twice is one message in the ledger.
pub fn step_source(kind: Kind, contact_id: i64, crossing: &str, step: usize) -> String {
    format!("trigger:{}:{contact_id}:{crossing}:{step}", kind.as_str())
}

/// The column holding a contact's address on `channel`, for the channels a
/// trigger can send on.
pub(crate) fn address_column(channel: crate::domain::Channel) -> Option<&'static str> {
    match channel {
        crate::domain::Channel::Email => Some("c.email"),
        crate::domain::Channel::Sms | crate::domain::Channel::Whatsapp => Some("c.phone"),
        crate::domain::Channel::Instagram => None,
    }
}

/// SQL conditions (on contact alias `c`) that make a contact eligible for
/// any trigger on channel `$2`: an address, current consent (the newest
/// ledger row per channel, as `consent` and the dispatcher read it), no
/// suppression of the address, and no active run of any kind.
pub(crate) fn eligible_sql(address: &str) -> String {
    format!(
        "{address} IS NOT NULL AND {address} <> '' \
         AND EXISTS (SELECT 1 FROM consents k WHERE k.granted \
             AND k.id = (SELECT MAX(k2.id) FROM consents k2 WHERE k2.contact_id = c.id AND k2.channel = $2)) \
         AND NOT EXISTS (SELECT 1 FROM suppressions s WHERE s.channel = $2 AND s.address = LOWER({address})) \
         AND NOT EXISTS (SELECT 1 FROM trigger_runs a WHERE a.contact_id = c.id AND a.state = 'active')"
    )
}

/// The `INSERT` that starts runs: `$1` is now (first step due at once), `$2`
/// the channel; `crossing` an SQL expression on `c`, `condition` the kind's
/// own test. Later parameters are the kind's.
pub(crate) fn detect_sql(kind: Kind, crossing: &str, condition: &str, address: &str) -> String {
    format!(
        "INSERT INTO trigger_runs (contact_id, \"trigger\", crossing, step, state, next_step_at, created_at, updated_at) \
         SELECT c.id, '{kind}', {crossing}, 0, 'active', $1, $1, $1 FROM contacts c \
         WHERE {condition} AND {eligible} \
         ON CONFLICT (contact_id, \"trigger\", crossing) DO NOTHING",
        kind = kind.as_str(),
        eligible = eligible_sql(address),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_step_has_a_shipped_marketing_email_template() {
        let catalog = crate::templates::Catalog::builtin().unwrap();
        for kind in Kind::ALL {
            for step in kind.steps() {
                let t = catalog
                    .get(step.template)
                    .unwrap_or_else(|| panic!("{}: {} is missing", kind.as_str(), step.template));
                assert_eq!(t.kind, crate::templates::Kind::Marketing, "{}", t.name);
                assert_eq!(t.channel, crate::domain::Channel::Email, "{}", t.name);
            }
        }
    }

    #[test]
    fn every_step_has_a_shipped_marketing_sms_template_of_one_or_two_segments() {
        // Arrange
        let catalog = crate::templates::Catalog::builtin().unwrap();
        let channel = crate::domain::Channel::Sms;
        for kind in Kind::ALL {
            for step in kind.steps() {
                let name = step.template_for(channel).expect("SMS has copy");
                let t = catalog
                    .get(name)
                    .unwrap_or_else(|| panic!("{}: {name} is missing", kind.as_str()));
                assert_eq!(t.kind, crate::templates::Kind::Marketing, "{name}");
                assert_eq!(t.channel, channel, "{name}");
                for vars in [
                    t.sample.clone().into(),
                    serde_json::json!({"first_name": null}),
                ] {
                    // Act: the text as it would be sent.
                    let text = crate::sms::compose(
                        &t.render(&vars)
                            .unwrap_or_else(|e| panic!("{name}: {e}"))
                            .text,
                        crate::templates::Kind::Marketing,
                        "Acme",
                    );

                    // Assert: sender, footer, GSM-7, no "none", at most two segments.
                    let segments = crate::domain::sms_segments(&text);
                    assert!(text.starts_with("Acme: "), "{name}: {text}");
                    assert!(text.ends_with(crate::sms::STOP_FOOTER), "{name}: {text}");
                    assert_eq!(
                        segments.encoding,
                        crate::domain::SmsEncoding::Gsm7,
                        "{name}: {text}"
                    );
                    assert!(segments.count <= 2, "{name}: {segments:?}");
                    assert!(!text.to_lowercase().contains("none"), "{name}: {text}");
                }
            }
        }
        assert_eq!(
            Kind::Cold.steps()[0].template_for(crate::domain::Channel::Instagram),
            None
        );
    }

    #[test]
    fn trigger_templates_render_for_a_contact_with_no_optional_fields() {
        // A contact may have no first name or company: the copy must still
        // read well, never fail and never say "none".
        let catalog = crate::templates::Catalog::builtin().unwrap();
        for kind in Kind::ALL {
            for step in kind.steps() {
                for vars in [
                    serde_json::json!({}),
                    serde_json::json!({"first_name": null, "company": null, "sender_name": null}),
                ] {
                    let r = catalog
                        .render(step.template, &vars)
                        .unwrap_or_else(|e| panic!("{}: {e}", step.template));
                    let all = format!("{:?}{}{:?}", r.subject, r.text, r.html);
                    assert!(
                        r.text.contains("Hi there,"),
                        "{}: {}",
                        step.template,
                        r.text
                    );
                    assert!(!all.to_lowercase().contains("none"), "{}", step.template);
                }
            }
        }
    }

    #[test]
    fn steps_are_the_documented_cadences() {
        let days = |k: Kind| k.steps().iter().map(|s| s.day).collect::<Vec<_>>();
        assert_eq!(days(Kind::Cold), [0, 7, 14]);
        assert_eq!(days(Kind::Onboarding), [0, 3, 7]);
        assert_eq!(days(Kind::Monthly), [0]);
    }

    #[test]
    fn names_and_sources_say_which_step() {
        assert_eq!(
            Kind::Cold.send_name(1, "Ada Lovelace"),
            "Cold revival, step 2 of 3: Ada Lovelace"
        );
        assert_eq!(
            Kind::Monthly.send_name(0, "a***@example.com"),
            "Monthly check-in: a***@example.com"
        );
        assert_eq!(
            step_source(Kind::Onboarding, 17, "1", 2),
            "trigger:onboarding:17:1:2"
        );
        for k in Kind::ALL {
            assert_eq!(Kind::parse(k.as_str()), Some(k));
        }
    }
}
