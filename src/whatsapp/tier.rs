//! The messaging tier in use: how many unique people the number has started
//! conversations with in the rolling 24 h (`[whatsapp] messaging_tier`
//! caps it), and how a campaign over what is left is split across days.
//!
//! Invariants:
//! - A business-initiated conversation is a WhatsApp *template* message
//!   (free-form text only answers someone inside their window) that left or
//!   may have left: `sending`, `sent`, `delivered` or `ambiguous`, counted
//!   at the moment it was handed over (`sent_at`, else `called_at`, else
//!   `updated_at`) in the last 24 h. Failed and skipped ones started
//!   nothing.
//! - People are unique by contact, or by address for a message without one.
//! - The ledger's template messages are recognised by their payload's
//!   `"template":{` key (`WhatsappContent::to_payload`); a text message's
//!   own words cannot spell it, as JSON escapes their quotes.
//! - A split ([`DailySplit`]) gives part `k` the due time `k × 24 h` after
//!   the send's own; the first part is at most what remains now, every later
//!   part at most the tier. Recipients already reached in the window go in
//!   the first part without using the tier (their conversation is counted).

use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};
use sea_orm::{ConnectionTrait, FromQueryResult, Statement, Value};
use serde::{Deserialize, Serialize};

use super::MessagingTier;
use crate::domain::{Channel, MessageState};

/// The window the tier counts over.
pub const WINDOW: Duration = Duration::hours(24);

/// The states that count as a conversation started (or maybe started).
const STARTED: [MessageState; 4] = [
    MessageState::Sending,
    MessageState::Sent,
    MessageState::Delivered,
    MessageState::Ambiguous,
];

fn started_where() -> String {
    let states = MessageState::sql_list(&STARTED);
    format!(
        "channel = '{whatsapp}' AND state IN ({states}) \
         AND payload LIKE '%\"template\":{{%' \
         AND COALESCE(sent_at, called_at, updated_at) > $1",
        whatsapp = Channel::Whatsapp.as_str(),
    )
}

/// Unique people reached by WhatsApp template messages in the 24 h before
/// `now`.
pub async fn reached(db: &impl ConnectionTrait, now: DateTime<Utc>) -> anyhow::Result<u64> {
    #[derive(FromQueryResult)]
    struct N {
        n: i64,
    }
    let n = N::find_by_statement(Statement::from_sql_and_values(
        db.get_database_backend(),
        format!(
            "SELECT COUNT(DISTINCT COALESCE('c:' || CAST(contact_id AS TEXT), 'a:' || address)) AS n \
             FROM messages WHERE {}",
            started_where()
        ),
        [Value::from(now - WINDOW)],
    ))
    .one(db)
    .await?
    .map_or(0, |r| r.n);
    Ok(u64::try_from(n).unwrap_or(0))
}

/// How many more people the number may start conversations with now;
/// `None` when the tier is unlimited.
pub async fn remaining(
    db: &impl ConnectionTrait,
    tier: MessagingTier,
    now: DateTime<Utc>,
) -> anyhow::Result<Option<u64>> {
    let Some(limit) = tier.limit() else {
        return Ok(None);
    };
    Ok(Some(
        u64::from(limit).saturating_sub(reached(db, now).await?),
    ))
}

/// The contacts among `ids` already reached in the window (a new template
/// to them starts no new conversation for the tier).
pub async fn already_reached(
    db: &impl ConnectionTrait,
    ids: &[i64],
    now: DateTime<Utc>,
) -> anyhow::Result<HashSet<i64>> {
    #[derive(FromQueryResult)]
    struct Row {
        contact_id: i64,
    }
    let wanted: HashSet<i64> = ids.iter().copied().collect();
    Ok(Row::find_by_statement(Statement::from_sql_and_values(
        db.get_database_backend(),
        format!(
            "SELECT DISTINCT contact_id FROM messages WHERE contact_id IS NOT NULL AND {}",
            started_where()
        ),
        [Value::from(now - WINDOW)],
    ))
    .all(db)
    .await?
    .into_iter()
    .map(|r| r.contact_id)
    .filter(|id| wanted.contains(id))
    .collect())
}

/// A campaign split across days by its sender's choice: the first part at
/// most `first_day` new people, each later part at most `per_day`, 24 h
/// apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DailySplit {
    pub first_day: u32,
    pub per_day: u32,
}

impl DailySplit {
    /// The day (0, 1, …) of each of `new` recipients, in order.
    pub fn days(&self, new: usize) -> Vec<u32> {
        let first = self.first_day as usize;
        let per = self.per_day.max(1) as usize;
        (0..new)
            .map(|i| {
                if i < first {
                    0
                } else {
                    u32::try_from(1 + (i - first) / per).unwrap_or(u32::MAX)
                }
            })
            .collect()
    }

    /// How many days it takes for `new` people.
    pub fn day_count(&self, new: usize) -> u32 {
        self.days(new).last().map_or(1, |d| d + 1)
    }

    /// The offset of day `d` from the send's own due time.
    pub fn offset(day: u32) -> Duration {
        WINDOW * i32::try_from(day).unwrap_or(i32::MAX)
    }
}

/// What the tier says of a campaign starting `new` conversations now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fit {
    /// Unlimited, or within what remains.
    Fits,
    /// Over: the number can start `remaining` more now.
    Over { remaining: u64, new: u64, tier: u32 },
}

/// Whether `new` conversations fit in what remains.
pub fn fit(tier: MessagingTier, remaining: Option<u64>, new: u64) -> Fit {
    match (tier.limit(), remaining) {
        (Some(tier), Some(remaining)) if new > remaining => Fit::Over {
            remaining,
            new,
            tier,
        },
        _ => Fit::Fits,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_split_fills_what_remains_today_then_a_tier_a_day() {
        let s = DailySplit {
            first_day: 2,
            per_day: 3,
        };
        assert_eq!(s.days(9), [0, 0, 1, 1, 1, 2, 2, 2, 3]);
        assert_eq!(s.day_count(9), 4);
        assert_eq!(s.day_count(0), 1);
        let none_left = DailySplit {
            first_day: 0,
            per_day: 250,
        };
        assert_eq!(none_left.days(2), [1, 1]);
        assert_eq!(DailySplit::offset(2), Duration::hours(48));
    }

    #[test]
    fn over_the_tier_says_how_many_remain() {
        let tier = MessagingTier::default();
        assert_eq!(fit(tier, Some(10), 10), Fit::Fits);
        assert_eq!(
            fit(tier, Some(10), 11),
            Fit::Over {
                remaining: 10,
                new: 11,
                tier: 250
            }
        );
        assert_eq!(fit(MessagingTier::UNLIMITED, None, 1_000_000), Fit::Fits);
    }
}
