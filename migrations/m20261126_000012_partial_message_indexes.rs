//! PostgreSQL only: the dispatcher's indexes on `messages` cover only the
//! rows their queries look for.
//!
//! Every message's row is updated twice on its way out (claimed, then
//! sent), and a state change is never a heap-only update, so each update
//! added an entry to all seven indexes on `messages`. A partial index takes
//! an entry only for the rows its predicate admits: the claim index holds
//! only rows waiting to be claimed, the due index only rows that still have
//! somewhere to go, the provider-id index only rows that have one. Their
//! queries name the same states, so PostgreSQL proves they may use them.
//! SQLite keeps the full indexes: its planner uses a partial index only when
//! the query repeats the index's condition exactly, which not every query
//! here does.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261126_000012_partial_message_indexes"
    }
}

const UP: &[&str] = &[
    "DROP INDEX IF EXISTS messages_claim",
    "CREATE INDEX messages_claim ON messages (provider, state, next_attempt_at) \
     WHERE state IN ('queued', 'deferred')",
    "DROP INDEX IF EXISTS messages_due",
    "CREATE INDEX messages_due ON messages (state, next_attempt_at) \
     WHERE state IN ('scheduled', 'queued', 'deferred', 'sending')",
    "DROP INDEX IF EXISTS messages_provider_message_id",
    "CREATE INDEX messages_provider_message_id ON messages (provider_message_id) \
     WHERE provider_message_id IS NOT NULL",
];

const DOWN: &[&str] = &[
    "DROP INDEX IF EXISTS messages_claim",
    "CREATE INDEX messages_claim ON messages (provider, state, next_attempt_at)",
    "DROP INDEX IF EXISTS messages_due",
    "CREATE INDEX messages_due ON messages (state, next_attempt_at)",
    "DROP INDEX IF EXISTS messages_provider_message_id",
    "CREATE INDEX messages_provider_message_id ON messages (provider_message_id)",
];

async fn run(m: &SchemaManager<'_>, statements: &[&str]) -> Result<(), DbErr> {
    if m.get_database_backend() != sea_orm::DbBackend::Postgres {
        return Ok(());
    }
    for sql in statements {
        m.get_connection().execute_unprepared(sql).await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        run(m, UP).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        run(m, DOWN).await
    }
}
