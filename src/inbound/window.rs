//! The customer-service window: how long after a person's last message on
//! a channel we may write to them freely. Meta's rule for both of its
//! channels, read from what warmline recorded (`inbound_messages`), never
//! from our own sends — our messages do not reopen a window.
//!
//! - WhatsApp: free-form text within 24 h of the person's last message;
//!   outside it only approved templates (131047 otherwise).
//! - Instagram: any reply within 24 h; a person's (not automation's)
//!   answer up to 7 days, tagged `HUMAN_AGENT`; nothing after that, and no
//!   cold outreach at all.
//!
//! Invariant: the answer depends only on the newest `received_at` of the
//! contact's (or the address's) inbound messages on that channel and on
//! `now`, which callers take from `crate::clock::now()` so the sandbox's
//! clock and tests can move it.

use chrono::{DateTime, Duration, Utc};
use sea_orm::{ConnectionTrait, FromQueryResult, Statement, Value};

use crate::domain::Channel;

/// The standard window: 24 h after the person's last message.
pub const STANDARD: Duration = Duration::hours(24);
/// How long a person may still answer on Instagram with `HUMAN_AGENT`.
pub const HUMAN_AGENT: Duration = Duration::days(7);

/// Where a conversation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// Within 24 h of their last message: anything may be sent.
    Open { until: DateTime<Utc> },
    /// Instagram only: past 24 h but within 7 days — a person may answer,
    /// tagged `HUMAN_AGENT`; automation may not.
    HumanAgent { until: DateTime<Utc> },
    /// Closed (`last` is their last message, if they ever wrote): WhatsApp
    /// allows templates only; Instagram nothing.
    Closed { last: Option<DateTime<Utc>> },
}

impl Window {
    /// The window on `channel` given the person's last message. Email and
    /// SMS have no window: always open.
    pub fn of(channel: Channel, last: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Self {
        match channel {
            Channel::Email | Channel::Sms => Self::Open {
                until: DateTime::<Utc>::MAX_UTC,
            },
            Channel::Whatsapp | Channel::Instagram => match last {
                Some(at) if now < at + STANDARD => Self::Open {
                    until: at + STANDARD,
                },
                Some(at) if channel == Channel::Instagram && now < at + HUMAN_AGENT => {
                    Self::HumanAgent {
                        until: at + HUMAN_AGENT,
                    }
                }
                last => Self::Closed { last },
            },
        }
    }

    pub fn is_open(self) -> bool {
        matches!(self, Self::Open { .. })
    }

    /// How people read it ("open until 14:05 UTC", "closed: last message
    /// 3 days ago").
    pub fn words(self, now: DateTime<Utc>) -> String {
        let ago = |at: DateTime<Utc>| {
            let h = (now - at).num_hours();
            if h < 48 {
                format!("{h} h ago")
            } else {
                format!("{} days ago", h / 24)
            }
        };
        match self {
            Self::Open { until } if until == DateTime::<Utc>::MAX_UTC => "no window".into(),
            Self::Open { until } => format!("open until {}", until.format("%Y-%m-%d %H:%M UTC")),
            Self::HumanAgent { until } => format!(
                "past 24 h: a person may answer (HUMAN_AGENT) until {}",
                until.format("%Y-%m-%d %H:%M UTC")
            ),
            Self::Closed { last: Some(at) } => {
                format!("closed: their last message was {}", ago(at))
            }
            Self::Closed { last: None } => "closed: they have never written to us".into(),
        }
    }
}

/// When the contact (or, for an unknown sender, the address) last wrote to
/// us on `channel`.
pub async fn last_message_from(
    db: &impl ConnectionTrait,
    channel: Channel,
    contact_id: Option<i64>,
    address: Option<&str>,
) -> anyhow::Result<Option<DateTime<Utc>>> {
    #[derive(FromQueryResult)]
    struct Row {
        received_at: DateTime<Utc>,
    }
    if contact_id.is_none() && address.is_none() {
        return Ok(None);
    }
    let row = Row::find_by_statement(Statement::from_sql_and_values(
        db.get_database_backend(),
        "SELECT received_at FROM inbound_messages \
         WHERE channel = $1 AND (contact_id = $2 OR from_address = $3) \
         ORDER BY received_at DESC LIMIT 1",
        [
            Value::from(channel.as_str()),
            Value::from(contact_id),
            Value::from(address.map(str::to_string)),
        ],
    ))
    .one(db)
    .await?;
    Ok(row.map(|r| r.received_at))
}

/// The window on `channel` for a contact (or an address), now.
pub async fn current(
    db: &impl ConnectionTrait,
    channel: Channel,
    contact_id: Option<i64>,
    address: Option<&str>,
) -> anyhow::Result<Window> {
    let last = last_message_from(db, channel, contact_id, address).await?;
    Ok(Window::of(channel, last, crate::clock::now()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(h: i64) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap() + Duration::hours(h)
    }

    #[test]
    fn whatsapp_is_open_for_24_hours_then_closed() {
        let last = Some(at(0));
        assert!(Window::of(Channel::Whatsapp, last, at(23)).is_open());
        assert_eq!(
            Window::of(Channel::Whatsapp, last, at(24)),
            Window::Closed { last }
        );
        assert_eq!(
            Window::of(Channel::Whatsapp, None, at(0)),
            Window::Closed { last: None }
        );
    }

    #[test]
    fn instagram_allows_a_human_agent_up_to_seven_days() {
        let last = Some(at(0));
        assert!(Window::of(Channel::Instagram, last, at(1)).is_open());
        assert_eq!(
            Window::of(Channel::Instagram, last, at(30)),
            Window::HumanAgent { until: at(24 * 7) }
        );
        assert_eq!(
            Window::of(Channel::Instagram, last, at(24 * 7)),
            Window::Closed { last }
        );
    }

    #[test]
    fn email_and_sms_have_no_window() {
        assert!(Window::of(Channel::Email, None, at(0)).is_open());
        assert!(Window::of(Channel::Sms, None, at(0)).is_open());
        assert_eq!(
            Window::of(Channel::Sms, None, at(0)).words(at(0)),
            "no window"
        );
    }
}
