//! The parsed inbound message: who sent it ([`Sender`], an address parsed
//! for its channel) and what they wrote ([`Inbound`]).
//!
//! Invariant: an [`Inbound`] is valid by construction — its sender parses
//! for its channel and its time is not in the future beyond the allowed
//! clock skew — so the store and the keyword logic never re-check it.

use chrono::{DateTime, Utc};

use super::*;
use crate::providers::webhook::ReplyBy;

/// Who sent a message, parsed for its channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sender {
    Email(EmailAddress),
    /// SMS and WhatsApp.
    Phone(E164Phone),
    /// An Instagram-scoped user id (IGSID).
    Instagram(String),
}

impl Sender {
    /// Parses `raw` as the address type `channel` uses: an email address;
    /// an E.164 phone number (`+14155552671`; WhatsApp's `wa_id` form
    /// without `+` is accepted too); an IGSID (digits).
    pub fn parse(channel: Channel, raw: &str) -> Result<Self, InboundError> {
        let raw = raw.trim();
        let invalid = |message: String| InboundError::Invalid {
            field: "from",
            message,
        };
        match channel {
            Channel::Email => EmailAddress::parse(raw)
                .map(Sender::Email)
                .map_err(|e| invalid(e.to_string())),
            Channel::Sms | Channel::Whatsapp => {
                let parsed = E164Phone::parse(raw, None).or_else(|e| {
                    // WhatsApp webhooks send `wa_id`, the international
                    // number without its `+`. Only there: for SMS a bare
                    // national number would be read in the wrong country.
                    let digits = !raw.is_empty() && raw.chars().all(|c| c.is_ascii_digit());
                    if channel == Channel::Whatsapp && digits {
                        E164Phone::parse(&format!("+{raw}"), None)
                    } else {
                        Err(e)
                    }
                });
                parsed.map(Sender::Phone).map_err(|e| {
                    invalid(format!(
                        "{e}; {} senders are phone numbers in E.164 form, like +447700900123",
                        channel.label()
                    ))
                })
            }
            Channel::Instagram => {
                if !raw.is_empty() && raw.len() <= 64 && raw.chars().all(|c| c.is_ascii_digit()) {
                    Ok(Sender::Instagram(raw.to_string()))
                } else {
                    Err(invalid(
                        "Instagram senders are Instagram-scoped user ids (IGSID, digits)".into(),
                    ))
                }
            }
        }
    }

    /// The address as stored and sent to.
    pub fn as_str(&self) -> &str {
        match self {
            Sender::Email(e) => e.as_str(),
            Sender::Phone(p) => p.as_str(),
            Sender::Instagram(id) => id,
        }
    }

    /// For logs, the audit log and Slack.
    pub fn masked(&self) -> String {
        match self {
            Sender::Email(e) => mask_email(e.as_str()),
            Sender::Phone(p) => mask_phone(p.as_str()),
            // IGSIDs are long digit strings: the same shape as a phone's mask.
            Sender::Instagram(id) => mask_phone(id),
        }
    }
}

/// One message a person sent us.
#[derive(Debug, Clone)]
pub struct Inbound {
    pub channel: Channel,
    pub from: Sender,
    pub text: String,
    pub received_at: DateTime<Utc>,
    /// Who answers it if it is a keyword: warmline through the ledger (the
    /// default), the provider itself, or the webhook's own answer.
    pub replies: ReplyBy,
}

impl Inbound {
    /// Parses a channel's name and a sender for it.
    pub fn parse(
        channel: &str,
        from: &str,
        text: impl Into<String>,
        received_at: DateTime<Utc>,
    ) -> Result<Self, InboundError> {
        let channel = Channel::parse(channel).ok_or_else(|| InboundError::Invalid {
            field: "channel",
            message: format!("'{channel}' is not a channel: use email, sms, whatsapp or instagram"),
        })?;
        Ok(Self {
            channel,
            from: Sender::parse(channel, from)?,
            text: text.into(),
            received_at,
            replies: ReplyBy::Ledger,
        })
    }

    /// The same message, with keywords answered by `replies`.
    pub fn replied_by(self, replies: ReplyBy) -> Self {
        Self { replies, ..self }
    }

    /// Refuses what [`Inbound::parse`] cannot: a sender of the wrong kind
    /// for the channel, a time in the future.
    pub(super) fn check(&self, now: DateTime<Utc>) -> Result<(), InboundError> {
        let matches = matches!(
            (self.channel, &self.from),
            (Channel::Email, Sender::Email(_))
                | (Channel::Sms | Channel::Whatsapp, Sender::Phone(_))
                | (Channel::Instagram, Sender::Instagram(_))
        );
        if !matches {
            return Err(InboundError::Invalid {
                field: "from",
                message: format!("not a {} sender", self.channel.label()),
            });
        }
        if self.received_at > now + MAX_CLOCK_SKEW {
            return Err(InboundError::Invalid {
                field: "received_at",
                message: "received_at is in the future".into(),
            });
        }
        Ok(())
    }
}
