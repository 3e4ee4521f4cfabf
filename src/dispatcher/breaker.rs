//! The campaign circuit breaker: when complaints pass 0.3 % or hard bounces
//! pass 5 % after at least 50 sends, the campaign pauses itself and a person
//! decides (Resume / Cancel, see `slack/campaign_alerts.rs`).
//!
//! Invariants:
//! - The numbers are read from the ledger (`messages.state`), never from a
//!   counter that could drift: *sends* are messages the provider accepted
//!   (`sent`, `delivered`, `bounced`, `complained`), *hard bounces* are
//!   `bounced` (only a Permanent bounce moves a message there), complaints
//!   are `complained`.
//! - "Pass" is strict: 5 hard bounces in 100 sends is *at* 5 %, not past it.
//!   Rates are compared in integers, so no rounding decides a trip.
//! - [`check`] runs in the transaction that recorded the bounce or complaint,
//!   after locking the campaign row (PostgreSQL), so two bounces landing at
//!   once are counted one after the other and the pause commits with them.
//! - The breaker trips **once per campaign**. A person who resumes it has
//!   seen the numbers; tripping again on the same cumulative rate would make
//!   Resume useless. The trip is recorded in the audit log (actor
//!   [`ACTOR`]), which is also how "once" is checked.
//! - A person's decision ([`decide`]) is applied once: resume only moves a
//!   paused campaign, cancel only a campaign not already cancelled; a second
//!   click finds nothing to do and says so.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, FromQueryResult, Statement, Value};
use serde::Serialize;

use super::ledger;
use crate::domain::{CampaignState, MessageState};

/// Who the audit log says paused the campaign.
pub const ACTOR: &str = "circuit-breaker";
/// The audit action of a trip.
pub const TRIPPED_ACTION: &str = "campaign.circuit_breaker";
/// No verdict on fewer sends than this: 1 complaint in 10 is noise.
pub const MIN_SENDS: i64 = 50;
/// Complaints must pass 3 per 1,000 sends (0.3 %).
const COMPLAINTS_PER_MILLE: i64 = 3;
/// Hard bounces must pass 5 per 100 sends (5 %).
const BOUNCES_PER_CENT: i64 = 5;

/// A campaign's outcomes so far, from the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub sends: i64,
    pub bounced: i64,
    pub complained: i64,
}

/// Which limit a campaign passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    Complaints,
    HardBounces,
}

impl Reason {
    pub fn describe(self) -> &'static str {
        match self {
            Reason::Complaints => "spam complaints passed 0.3% of sends",
            Reason::HardBounces => "hard bounces passed 5% of sends",
        }
    }
}

impl Counts {
    /// The limit passed, if any; complaints first (the worse signal: they
    /// hurt the sending domain's reputation with every mailbox provider).
    pub fn trips(&self) -> Option<Reason> {
        if self.sends < MIN_SENDS {
            return None;
        }
        if self.complained * 1000 > COMPLAINTS_PER_MILLE * self.sends {
            Some(Reason::Complaints)
        } else if self.bounced * 100 > BOUNCES_PER_CENT * self.sends {
            Some(Reason::HardBounces)
        } else {
            None
        }
    }

    /// `part` of the sends as a percentage with two decimals, for people.
    pub fn percent(&self, part: i64) -> String {
        if self.sends == 0 {
            return "0%".into();
        }
        format!("{:.2}%", part as f64 * 100.0 / self.sends as f64)
    }
}

/// Counts a campaign's sends, hard bounces and complaints.
pub async fn counts(conn: &impl ConnectionTrait, campaign_id: i64) -> anyhow::Result<Counts> {
    let progress = ledger::campaign_progress(conn, campaign_id).await?;
    let n = |s: &MessageState| progress.get(s).copied().unwrap_or(0);
    Ok(Counts {
        sends: MessageState::ACCEPTED.iter().map(n).sum(),
        bounced: n(&MessageState::Bounced),
        complained: n(&MessageState::Complained),
    })
}

/// A campaign the breaker just paused: what the alert shows.
#[derive(Debug, Clone)]
pub struct Tripped {
    pub campaign_id: i64,
    pub campaign_name: String,
    pub counts: Counts,
    pub reason: Reason,
    /// Messages held back by the pause.
    pub paused_messages: u64,
    /// The campaign's Slack thread, when it has one.
    pub slack_channel: Option<String>,
    pub slack_ts: Option<String>,
}

#[derive(Debug, FromQueryResult)]
struct CampaignRow {
    name: String,
    state: CampaignState,
    slack_channel: Option<String>,
    slack_ts: Option<String>,
}

async fn lock_campaign(
    conn: &impl ConnectionTrait,
    campaign_id: i64,
) -> anyhow::Result<Option<CampaignRow>> {
    let lock = if crate::db::is_postgres(conn) {
        " FOR UPDATE"
    } else {
        ""
    };
    Ok(
        CampaignRow::find_by_statement(Statement::from_sql_and_values(
            conn.get_database_backend(),
            format!(
                "SELECT name, state, slack_channel, slack_ts FROM campaigns WHERE id = $1{lock}"
            ),
            [Value::from(campaign_id)],
        ))
        .one(conn)
        .await?,
    )
}

fn subject(campaign_id: i64) -> String {
    format!("campaign:{campaign_id}")
}

/// After a bounce or complaint of one of its messages: pauses the campaign
/// when it passed a limit and the breaker has not tripped on it before.
/// Call inside the transaction that recorded the outcome.
pub async fn check(
    conn: &impl ConnectionTrait,
    campaign_id: i64,
    now: DateTime<Utc>,
) -> anyhow::Result<Option<Tripped>> {
    // Lock first, count second: a concurrent bounce of the same campaign
    // waits here and then counts ours too.
    let Some(campaign) = lock_campaign(conn, campaign_id).await? else {
        return Ok(None);
    };
    let counts = counts(conn, campaign_id).await?;
    let Some(reason) = counts.trips() else {
        return Ok(None);
    };
    if matches!(
        campaign.state,
        CampaignState::Paused | CampaignState::Cancelled
    ) {
        return Ok(None);
    }
    let already = crate::db::count(
        conn,
        "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM audit_log WHERE action = $1 AND subject = $2",
        vec![
            Value::from(TRIPPED_ACTION),
            Value::from(subject(campaign_id)),
        ],
    )
    .await?;
    if already > 0 {
        return Ok(None);
    }
    let paused_messages = ledger::pause_campaign(conn, campaign_id, ACTOR, now).await?;
    crate::audit::record(
        conn,
        ACTOR,
        TRIPPED_ACTION,
        Some(&subject(campaign_id)),
        serde_json::json!({
            "reason": reason,
            "sends": counts.sends,
            "hard_bounces": counts.bounced,
            "complaints": counts.complained,
            "paused_messages": paused_messages,
        }),
    )
    .await?;
    metrics::counter!("campaign_breaker_trips_total").increment(1);
    tracing::warn!(
        campaign_id,
        sends = counts.sends,
        hard_bounces = counts.bounced,
        complaints = counts.complained,
        "circuit breaker paused a campaign: {}",
        reason.describe()
    );
    Ok(Some(Tripped {
        campaign_id,
        campaign_name: campaign.name,
        counts,
        reason,
        paused_messages,
        slack_channel: campaign.slack_channel,
        slack_ts: campaign.slack_ts,
    }))
}

/// A person's answer to a breaker alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Resume,
    Cancel,
}

/// What a decision did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decided {
    /// Resumed; this many messages are due again.
    Resumed(u64),
    /// Cancelled; this many messages will not be sent.
    Cancelled(u64),
    /// Nothing to do: the campaign is in this state (someone decided first).
    Unchanged(CampaignState),
    NoSuchCampaign,
}

/// Applies `decision` by `actor` once, audited, in one transaction.
pub async fn decide(
    db: &DatabaseConnection,
    campaign_id: i64,
    decision: Decision,
    actor: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<Decided> {
    let txn = crate::db::begin_write(db).await?;
    let Some(campaign) = lock_campaign(&txn, campaign_id).await? else {
        return Ok(Decided::NoSuchCampaign);
    };
    let decided = match (decision, campaign.state) {
        (Decision::Resume, CampaignState::Paused) => {
            Decided::Resumed(ledger::resume_campaign(&txn, campaign_id, actor, now).await?)
        }
        (Decision::Cancel, state) if state != CampaignState::Cancelled => {
            Decided::Cancelled(ledger::cancel_campaign(&txn, campaign_id, actor, now).await?)
        }
        (_, state) => return Ok(Decided::Unchanged(state)),
    };
    let (action, n) = match &decided {
        Decided::Resumed(n) => ("campaign.resume", *n),
        Decided::Cancelled(n) => ("campaign.cancel", *n),
        _ => unreachable!("only changes reach here"),
    };
    crate::audit::record(
        &txn,
        actor,
        action,
        Some(&subject(campaign_id)),
        serde_json::json!({"via": "circuit_breaker_alert", "messages": n}),
    )
    .await?;
    txn.commit().await?;
    Ok(decided)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(sends: i64, bounced: i64, complained: i64) -> Counts {
        Counts {
            sends,
            bounced,
            complained,
        }
    }

    #[test]
    fn hard_bounces_must_pass_five_percent() {
        assert_eq!(c(100, 5, 0).trips(), None, "5% is not past 5%");
        assert_eq!(c(100, 6, 0).trips(), Some(Reason::HardBounces));
        assert_eq!(c(60, 3, 0).trips(), None);
        assert_eq!(c(60, 4, 0).trips(), Some(Reason::HardBounces));
    }

    #[test]
    fn complaints_must_pass_three_per_mille() {
        assert_eq!(c(1000, 0, 3).trips(), None, "0.3% is not past 0.3%");
        assert_eq!(c(1000, 0, 4).trips(), Some(Reason::Complaints));
        assert_eq!(c(100, 0, 1).trips(), Some(Reason::Complaints));
        assert_eq!(c(334, 0, 1).trips(), None);
    }

    #[test]
    fn nothing_trips_before_fifty_sends() {
        assert_eq!(c(49, 49, 49).trips(), None);
        assert_eq!(c(50, 3, 0).trips(), Some(Reason::HardBounces));
    }

    #[test]
    fn complaints_are_named_before_bounces() {
        assert_eq!(c(100, 50, 1).trips(), Some(Reason::Complaints));
    }

    #[test]
    fn percentages_for_people() {
        assert_eq!(c(60, 4, 0).percent(4), "6.67%");
        assert_eq!(c(0, 0, 0).percent(0), "0%");
    }
}
