//! The states of a message in the delivery ledger, and which moves between
//! them are allowed.
//!
//! Invariant: an outcome is never undone. Once a message is sent, delivered,
//! bounced, complained, failed or skipped, no transition takes it back to a
//! state from which it could be sent again. The only moves "back" to
//! `queued` are a retry after a failed attempt (`sending → queued`), a
//! resume (`paused → queued`) and a person's explicit decision on an
//! ambiguous message (`ambiguous → queued`, "send again").

use std::fmt;

use sea_orm::{DeriveActiveEnum, EnumIter};
use serde::{Deserialize, Serialize};

/// Stored as its name (`TEXT`) in `messages.state` and `message_events.state`;
/// decodes straight from a row.
/// Ordered along the lifecycle, as declared.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    EnumIter,
    DeriveActiveEnum,
)]
#[serde(rename_all = "snake_case")]
#[sea_orm(rs_type = "String", db_type = "Text")]
pub enum MessageState {
    /// Waiting for a person to approve the send it belongs to.
    #[sea_orm(string_value = "awaiting_approval")]
    AwaitingApproval,
    /// Approved, waiting for its scheduled time.
    #[sea_orm(string_value = "scheduled")]
    Scheduled,
    /// A schedule that came due while warmline was down, more than the grace
    /// period late: waits for a person to confirm.
    #[sea_orm(string_value = "held")]
    Held,
    /// Due (or due at `next_attempt_at`) and waiting for a worker.
    #[sea_orm(string_value = "queued")]
    Queued,
    /// Waiting for the end of the recipient's quiet hours.
    #[sea_orm(string_value = "deferred")]
    Deferred,
    /// Its campaign is paused.
    #[sea_orm(string_value = "paused")]
    Paused,
    /// Claimed by a worker under a lease; the provider may be called.
    #[sea_orm(string_value = "sending")]
    Sending,
    /// The provider accepted it.
    #[sea_orm(string_value = "sent")]
    Sent,
    /// The provider reported delivery.
    #[sea_orm(string_value = "delivered")]
    Delivered,
    #[sea_orm(string_value = "bounced")]
    Bounced,
    #[sea_orm(string_value = "complained")]
    Complained,
    /// Gave up: a permanent error, or retries exhausted.
    #[sea_orm(string_value = "failed")]
    Failed,
    /// Not sent, with a reason (no consent, suppressed, frequency cap, cancelled).
    #[sea_orm(string_value = "skipped")]
    Skipped,
    /// A worker died between calling a provider that takes no idempotency
    /// key and recording the outcome: it may or may not have been sent. Only
    /// a person moves it on.
    #[sea_orm(string_value = "ambiguous")]
    Ambiguous,
}

impl MessageState {
    pub const ALL: &'static [MessageState] = &[
        MessageState::AwaitingApproval,
        MessageState::Scheduled,
        MessageState::Held,
        MessageState::Queued,
        MessageState::Deferred,
        MessageState::Paused,
        MessageState::Sending,
        MessageState::Sent,
        MessageState::Delivered,
        MessageState::Bounced,
        MessageState::Complained,
        MessageState::Failed,
        MessageState::Skipped,
        MessageState::Ambiguous,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            MessageState::AwaitingApproval => "awaiting_approval",
            MessageState::Scheduled => "scheduled",
            MessageState::Held => "held",
            MessageState::Queued => "queued",
            MessageState::Deferred => "deferred",
            MessageState::Paused => "paused",
            MessageState::Sending => "sending",
            MessageState::Sent => "sent",
            MessageState::Delivered => "delivered",
            MessageState::Bounced => "bounced",
            MessageState::Complained => "complained",
            MessageState::Failed => "failed",
            MessageState::Skipped => "skipped",
            MessageState::Ambiguous => "ambiguous",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|st| st.as_str() == s)
    }

    /// The states in which the provider accepted the message: what counts as
    /// a send (rates, caps, "already messaged").
    pub const ACCEPTED: &'static [MessageState] = &[
        MessageState::Sent,
        MessageState::Delivered,
        MessageState::Bounced,
        MessageState::Complained,
    ];

    /// No worker will ever pick it up again by itself.
    pub fn is_settled(self) -> bool {
        matches!(
            self,
            MessageState::Sent
                | MessageState::Delivered
                | MessageState::Bounced
                | MessageState::Complained
                | MessageState::Failed
                | MessageState::Skipped
                | MessageState::Ambiguous
        )
    }

    /// Whether `self → to` is allowed.
    pub fn can_move_to(self, to: MessageState) -> bool {
        use MessageState::*;
        match (self, to) {
            (AwaitingApproval, Scheduled | Queued | Skipped) => true,
            (Scheduled, Queued | Held | Paused | Skipped) => true,
            (Held, Queued | Skipped) => true,
            (Queued | Deferred, Sending | Paused | Skipped | Deferred) => true,
            (Paused, Queued | Skipped) => true,
            (Sending, Sent | Failed | Skipped | Deferred | Queued | Ambiguous) => true,
            (Ambiguous, Queued | Sent) => true,
            // Provider events: delivery reports may arrive out of order;
            // later outcomes overwrite earlier ones, never the reverse.
            (Sent, Delivered | Bounced | Complained | Failed) => true,
            (Delivered, Bounced | Complained) => true,
            (Bounced, Complained) => true,
            _ => false,
        }
    }
}

super::sql::sql_names!(MessageState);
super::sql::sql_names!(SkipReason);

impl fmt::Display for MessageState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a message was skipped; stored in `messages.skip_reason`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    EnumIter,
    DeriveActiveEnum,
)]
#[serde(rename_all = "snake_case")]
#[sea_orm(rs_type = "String", db_type = "Text")]
pub enum SkipReason {
    #[sea_orm(string_value = "no_consent")]
    NoConsent,
    #[sea_orm(string_value = "suppressed")]
    Suppressed,
    #[sea_orm(string_value = "frequency_cap")]
    FrequencyCap,
    #[sea_orm(string_value = "cancelled")]
    Cancelled,
    #[sea_orm(string_value = "no_address")]
    NoAddress,
}

impl SkipReason {
    pub const ALL: [SkipReason; 5] = [
        SkipReason::NoConsent,
        SkipReason::Suppressed,
        SkipReason::FrequencyCap,
        SkipReason::Cancelled,
        SkipReason::NoAddress,
    ];

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            SkipReason::NoConsent => "no_consent",
            SkipReason::Suppressed => "suppressed",
            SkipReason::FrequencyCap => "frequency_cap",
            SkipReason::Cancelled => "cancelled",
            SkipReason::NoAddress => "no_address",
        }
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in MessageState::ALL {
            assert_eq!(MessageState::parse(s.as_str()), Some(*s));
            assert_eq!(serde_json::to_string(s).unwrap(), format!("\"{s}\""));
        }
        for r in SkipReason::ALL {
            assert_eq!(SkipReason::parse(r.as_str()), Some(r));
            assert_eq!(serde_json::to_string(&r).unwrap(), format!("\"{r}\""));
        }
    }

    /// The migrations name message states in partial indexes and views
    /// (they have no CHECK constraints); every name they use must be one
    /// of ours, or the index would silently cover nothing.
    #[test]
    fn the_states_the_migrations_name_are_message_states() {
        let sources = [
            include_str!("../../migrations/m20261126_000008_campaign_progress.rs"),
            include_str!("../../migrations/m20261126_000012_partial_message_indexes.rs"),
        ];
        let mut seen = 0;
        for src in sources {
            for list in src.split("state IN (").skip(1) {
                let list = &list[..list.find(')').expect("a closed list")];
                for name in list.split(',') {
                    let name = name.trim().trim_matches('\'');
                    assert!(
                        MessageState::parse(name).is_some(),
                        "migration names '{name}', which is not a MessageState"
                    );
                    seen += 1;
                }
            }
        }
        assert!(
            seen >= 10,
            "found only {seen} names: the pattern no longer matches"
        );
    }

    #[test]
    fn sql_lists_quote_each_name() {
        assert_eq!(MessageState::Sent.sql(), "'sent'");
        assert_eq!(
            MessageState::sql_list(MessageState::ACCEPTED),
            "'sent', 'delivered', 'bounced', 'complained'"
        );
    }

    #[test]
    fn outcomes_are_never_undone() {
        use MessageState::*;
        for settled in [Sent, Delivered, Bounced, Complained, Failed, Skipped] {
            for to in [
                AwaitingApproval,
                Scheduled,
                Held,
                Queued,
                Deferred,
                Paused,
                Sending,
            ] {
                assert!(!settled.can_move_to(to), "{settled} → {to} must be refused");
            }
        }
        assert!(
            !Delivered.can_move_to(Sent),
            "a late 'sent' must not undo 'delivered'"
        );
        assert!(!Complained.can_move_to(Delivered));
    }

    #[test]
    fn only_a_person_moves_an_ambiguous_message() {
        use MessageState::*;
        assert!(Ambiguous.is_settled());
        assert!(Ambiguous.can_move_to(Queued));
        assert!(Ambiguous.can_move_to(Sent));
        assert!(!Ambiguous.can_move_to(Sending));
    }
}
