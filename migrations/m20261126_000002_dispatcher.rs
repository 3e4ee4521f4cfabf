//! What the dispatcher needs beyond the core ledger: the recipient address
//! and send time on each message, worker heartbeats (leases), and the shared
//! rate-limit schedule.

use sea_orm_migration::{prelude::*, schema::*};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261126_000002_dispatcher"
    }
}

#[derive(DeriveIden)]
enum Messages {
    Table,
    Address,
    SentAt,
    Source,
    CalledAt,
    Provider,
    State,
    NextAttemptAt,
    ContactId,
}

#[derive(DeriveIden)]
enum DispatcherWorkers {
    Table,
    Id,
    StartedAt,
    HeartbeatAt,
}

#[derive(DeriveIden)]
enum RateLimits {
    Table,
    Key,
    TatUs,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // One column per ALTER: SQLite allows no more.
        m.alter_table(
            Table::alter()
                .table(Messages::Table)
                .add_column(string_null(Messages::Address))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Messages::Table)
                .add_column(timestamp_with_time_zone_null(Messages::SentAt))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Messages::Table)
                .add_column(string_null(Messages::Source))
                .to_owned(),
        )
        .await?;
        // Set right before a provider that takes no idempotency key is
        // called: the crash window that makes a message ambiguous.
        m.alter_table(
            Table::alter()
                .table(Messages::Table)
                .add_column(timestamp_with_time_zone_null(Messages::CalledAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("messages_claim")
                .table(Messages::Table)
                .col(Messages::Provider)
                .col(Messages::State)
                .col(Messages::NextAttemptAt)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("messages_contact_sent")
                .table(Messages::Table)
                .col(Messages::ContactId)
                .col(Messages::SentAt)
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(DispatcherWorkers::Table)
                .col(string(DispatcherWorkers::Id).primary_key())
                .col(timestamp_with_time_zone(DispatcherWorkers::StartedAt))
                .col(timestamp_with_time_zone(DispatcherWorkers::HeartbeatAt))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(RateLimits::Table)
                .col(string(RateLimits::Key).primary_key())
                .col(big_integer(RateLimits::TatUs))
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(RateLimits::Table).to_owned())
            .await?;
        m.drop_table(Table::drop().table(DispatcherWorkers::Table).to_owned())
            .await?;
        m.drop_index(
            Index::drop()
                .name("messages_contact_sent")
                .table(Messages::Table)
                .to_owned(),
        )
        .await?;
        m.drop_index(
            Index::drop()
                .name("messages_claim")
                .table(Messages::Table)
                .to_owned(),
        )
        .await?;
        for col in [
            Messages::CalledAt,
            Messages::Source,
            Messages::SentAt,
            Messages::Address,
        ] {
            m.alter_table(
                Table::alter()
                    .table(Messages::Table)
                    .drop_column(col)
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }
}
