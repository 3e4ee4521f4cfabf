//! Reads of `provider_events`, the store of webhook events that passed
//! signature verification (nothing is stored before `verify`), for the
//! places that report on a provider's webhook: the doctor and the setup
//! status.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, FromQueryResult, Statement, Value};

#[derive(FromQueryResult)]
struct At {
    received_at: DateTime<Utc>,
}

/// When the newest verified event from `provider` (its stored name,
/// `WebhookReceiver::provider`) arrived; `None` if none ever did.
pub async fn last_verified(
    db: &impl ConnectionTrait,
    provider: &str,
) -> anyhow::Result<Option<DateTime<Utc>>> {
    use anyhow::Context;
    // ORDER BY … LIMIT 1 rather than MAX(): keeps the column's type, which
    // SQLite loses on an aggregate.
    Ok(At::find_by_statement(Statement::from_sql_and_values(
        db.get_database_backend(),
        "SELECT received_at FROM provider_events WHERE provider = $1 \
         ORDER BY received_at DESC LIMIT 1",
        [Value::from(provider)],
    ))
    .one(db)
    .await
    .with_context(|| format!("reading {provider}'s last verified webhook event"))?
    .map(|r| r.received_at))
}
