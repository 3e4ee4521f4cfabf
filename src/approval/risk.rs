//! The risk of a send, 0–10, with its reasons in words.
//!
//! Invariants:
//! - [`assess`] is a pure function of [`RiskFacts`]: the same facts always
//!   give the same score, so approvers and tests can reason about it.
//! - Every point comes with a reason an approver can read; a score of 0 has
//!   no reasons.
//! - The score never exceeds 10.

use serde::{Deserialize, Serialize};

use crate::domain::{CampaignState, Channel, MessageState};

/// What is known about a send before it goes anywhere.
#[derive(Debug, Clone, PartialEq)]
pub struct RiskFacts {
    /// How many recipients.
    pub audience: usize,
    /// How many of them are cold (warmth below [`COLD_BELOW`]).
    pub cold: usize,
    /// Why the content has never been reviewed, if it has not: written by
    /// hand, or a template never sent before.
    pub new_content: Option<String>,
    /// `email`, `sms`, `whatsapp`, `instagram`.
    pub channel: Channel,
    /// The first send by this requester (a person or an automation).
    pub first_use: bool,
}

/// Warmth under which a contact counts as cold.
pub const COLD_BELOW: f64 = 25.0;

/// A score and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Risk {
    pub score: u8,
    pub reasons: Vec<String>,
}

/// Scores a send. Weights: audience size up to 4, cold share up to 3, new
/// content 2, a channel that interrupts (SMS, WhatsApp) 2, first use 1.
pub fn assess(f: &RiskFacts) -> Risk {
    let mut score = 0u8;
    let mut reasons = Vec::new();
    let mut add = |points: u8, why: String| {
        if points > 0 {
            score = score.saturating_add(points);
            reasons.push(why);
        }
    };

    let audience_points = match f.audience {
        0 | 1 => 0,
        2..=9 => 1,
        10..=49 => 2,
        50..=199 => 3,
        _ => 4,
    };
    add(audience_points, format!("{} recipients", f.audience));

    if f.audience > 0 && f.cold > 0 {
        let share = f.cold as f64 / f.audience as f64;
        let points = if share >= 0.5 {
            3
        } else if share >= 0.2 {
            2
        } else {
            1
        };
        add(
            points,
            format!(
                "{} of {} recipients are cold (warmth under {COLD_BELOW})",
                f.cold, f.audience
            ),
        );
    }

    if let Some(why) = &f.new_content {
        add(2, why.clone());
    }

    match f.channel {
        Channel::Sms | Channel::Whatsapp => {
            add(2, format!("{} reaches a phone directly", f.channel))
        }
        Channel::Instagram => add(1, "Instagram messages are hard to take back".into()),
        Channel::Email => {}
    }

    if f.first_use {
        add(1, "the first send by this requester".into());
    }

    Risk {
        score: score.min(10),
        reasons,
    }
}

/// The risk of a send, with the facts only the ledger knows: whether its
/// content was ever sent (`template` is `None` for content written by
/// hand, which is always new) and whether this is the requester's first
/// campaign. One function for the approval engine and the campaign preview,
/// so approvers and the person drafting see the same score. Returns the
/// risk and whether the content is new.
pub async fn assess_send(
    db: &impl sea_orm::ConnectionTrait,
    template: Option<&str>,
    channel: Channel,
    requested_by: &str,
    source: &str,
    warmths: &[f64],
) -> anyhow::Result<(Risk, bool)> {
    use sea_orm::Value;
    let new_content = match template {
        None => Some("written by hand: this content has not been sent before".to_string()),
        Some(name) => {
            let sent = crate::db::count(
                db,
                &format!(
                    "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM messages WHERE template = $1 \
                     AND state IN ({})",
                    MessageState::sql_list(MessageState::ACCEPTED)
                ),
                vec![Value::from(name.to_string())],
            )
            .await?;
            (sent == 0).then(|| format!("template '{name}' has never been sent"))
        }
    };
    let earlier = crate::db::count(
        db,
        &format!(
            "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM campaigns WHERE created_by = $1 \
             AND state IN ({}) AND (source IS NULL OR source <> $2)",
            CampaignState::sql_list(&CampaignState::GOING)
        ),
        vec![
            Value::from(requested_by.to_string()),
            Value::from(source.to_string()),
        ],
    )
    .await?;
    let is_new = new_content.is_some();
    let risk = assess(&RiskFacts {
        audience: warmths.len(),
        cold: warmths.iter().filter(|w| **w < COLD_BELOW).count(),
        new_content,
        channel,
        first_use: earlier == 0,
    });
    Ok((risk, is_new))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> RiskFacts {
        RiskFacts {
            audience: 1,
            cold: 0,
            new_content: None,
            channel: Channel::Email,
            first_use: false,
        }
    }

    #[test]
    fn one_warm_contact_by_email_with_a_known_template_is_riskless() {
        // Arrange / Act
        let r = assess(&facts());

        // Assert
        assert_eq!(r.score, 0);
        assert!(r.reasons.is_empty());
    }

    #[test]
    fn audience_size_raises_the_score_in_steps() {
        let score = |n| {
            assess(&RiskFacts {
                audience: n,
                ..facts()
            })
            .score
        };
        assert_eq!([1, 5, 10, 50, 200, 10_000].map(score), [0, 1, 2, 3, 4, 4],);
    }

    #[test]
    fn a_cold_audience_is_riskier_the_larger_its_share() {
        let score = |cold| {
            assess(&RiskFacts {
                audience: 10,
                cold,
                ..facts()
            })
            .score
                - 2
        };
        assert_eq!([0, 1, 2, 5, 10].map(score), [0, 1, 2, 3, 3]);
    }

    #[test]
    fn new_content_channel_and_first_use_each_add_a_reason() {
        // Arrange
        let f = RiskFacts {
            new_content: Some("written by hand".into()),
            channel: Channel::Sms,
            first_use: true,
            ..facts()
        };

        // Act
        let r = assess(&f);

        // Assert
        assert_eq!(r.score, 5);
        assert_eq!(r.reasons.len(), 3);
        assert!(r.reasons.iter().any(|w| w.contains("written by hand")));
        assert!(r.reasons.iter().any(|w| w.contains("sms")));
        assert!(r.reasons.iter().any(|w| w.contains("first send")));
    }

    #[test]
    fn the_score_is_capped_at_ten() {
        let r = assess(&RiskFacts {
            audience: 5000,
            cold: 5000,
            new_content: Some("written by hand".into()),
            channel: Channel::Whatsapp,
            first_use: true,
        });
        assert_eq!(r.score, 10);
        assert_eq!(r.reasons.len(), 5);
    }
}
