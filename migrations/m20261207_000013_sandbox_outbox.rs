//! The sandbox's outbox: what the capture sinks "sent" instead of a network
//! (`warmline sandbox`, issue 13).
//!
//! One row per ledger message, keyed by its id: a capture is the sink's
//! idempotency key, so a retry after a crash finds the row already there
//! and nothing is captured twice. `content` is the provider-neutral JSON
//! the dispatcher handed over (subject, bodies, headers), kept whole so the
//! page shows exactly what a provider would have received. Only a sandbox
//! database ever has rows here.

use sea_orm_migration::{prelude::*, schema::*};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261207_000013_sandbox_outbox"
    }
}

#[derive(DeriveIden)]
enum SandboxOutbox {
    Table,
    MessageId,
    Channel,
    Provider,
    Kind,
    Recipient,
    Content,
    CapturedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(SandboxOutbox::Table)
                .if_not_exists()
                .col(string(SandboxOutbox::MessageId).primary_key())
                .col(string(SandboxOutbox::Channel))
                .col(string(SandboxOutbox::Provider))
                .col(string(SandboxOutbox::Kind))
                .col(string(SandboxOutbox::Recipient))
                .col(text(SandboxOutbox::Content))
                .col(timestamp_with_time_zone(SandboxOutbox::CapturedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("sandbox_outbox_captured")
                .table(SandboxOutbox::Table)
                .col(SandboxOutbox::CapturedAt)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(SandboxOutbox::Table).to_owned())
            .await
    }
}
