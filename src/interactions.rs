//! Interactions with a contact — meetings, emails, calls, messages, notes,
//! each inbound or outbound — and the one way to record them.
//!
//! Invariant: every recorded interaction updates the contact's warmth in the
//! same transaction ([`record`] calls [`crate::warmth::refresh_contact`]), so
//! a score read after a write reflects it, without recomputing everyone.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, FromQueryResult, Statement, Value};

pub use crate::domain::{Direction, InteractionKind as Kind};

/// An interaction about to be recorded.
#[derive(Debug, Clone)]
pub struct NewInteraction {
    pub contact_id: i64,
    pub kind: Kind,
    pub direction: Direction,
    pub occurred_at: DateTime<Utc>,
    pub summary: Option<String>,
    /// Who recorded it: `api`, `slack:U123`, `inbound:sms`, `calendar`, …
    pub source: String,
    /// The channel it happened on, when it has one (`email`, `sms`, …).
    pub channel: Option<String>,
}

#[derive(FromQueryResult)]
struct Id {
    id: i64,
}

/// Records an interaction and refreshes the contact's warmth. Run it inside
/// the caller's transaction so both commit together.
pub async fn record(
    conn: &impl ConnectionTrait,
    i: &NewInteraction,
    now: DateTime<Utc>,
) -> anyhow::Result<(i64, crate::warmth::Score)> {
    let backend = conn.get_database_backend();
    let row = Id::find_by_statement(Statement::from_sql_and_values(
        backend,
        "INSERT INTO interactions (contact_id, kind, direction, occurred_at, summary, source, channel, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        [
            Value::from(i.contact_id),
            Value::from(i.kind.as_str()),
            Value::from(i.direction.as_str()),
            Value::from(i.occurred_at),
            Value::from(i.summary.clone()),
            Value::from(i.source.clone()),
            Value::from(i.channel.clone()),
            Value::from(now),
        ],
    ))
    .one(conn)
    .await?
    .ok_or_else(|| anyhow::anyhow!("INSERT … RETURNING returned no row"))?;
    conn.execute_raw(Statement::from_sql_and_values(
        backend,
        "UPDATE contacts SET last_interaction_at = $1, updated_at = $2 WHERE id = $3 \
         AND (last_interaction_at IS NULL OR last_interaction_at < $1)",
        [
            Value::from(i.occurred_at),
            Value::from(now),
            Value::from(i.contact_id),
        ],
    ))
    .await?;
    let score = crate::warmth::refresh_contact(conn, i.contact_id, now).await?;
    Ok((row.id, score))
}
