//! Relationships: warmth with its reasons on each contact, the trigger
//! sequences (one row per contact, trigger and crossing, so a trigger fires
//! once per crossing), inbound messages with the keyword they carried, and
//! one row per approver decision (two-approver sends, exactly-once clicks).

use sea_orm_migration::{prelude::*, schema::*};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261126_000005_relationships"
    }
}

#[derive(DeriveIden)]
enum Contacts {
    Table,
    /// JSON array of the score's top reasons, in words.
    WarmthReasons,
    /// When `warmth` was last computed (decay runs from here).
    WarmthUpdatedAt,
}

#[derive(DeriveIden)]
enum Interactions {
    Table,
    /// The channel an interaction happened on, when it has one.
    Channel,
}

#[derive(DeriveIden)]
enum TriggerRuns {
    Table,
    Id,
    ContactId,
    /// `cold`, `onboarding`, `monthly`.
    Trigger,
    /// Which crossing this is (`cold`: n-th time below 25; `monthly`: the
    /// month, `2026-11`; `onboarding`: 1).
    Crossing,
    /// The next step to send (0-based); equal to the step count when done.
    Step,
    /// `active`, `completed`, `stopped`.
    State,
    StoppedReason,
    NextStepAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum InboundMessages {
    Table,
    Id,
    ContactId,
    Channel,
    FromAddress,
    Text,
    /// `stop`, `start`, `help` when the text was a keyword.
    Keyword,
    /// The outbound message it answers, when one is found.
    InReplyTo,
    /// Whether a keyword confirmation was sent for it.
    Confirmed,
    ReceivedAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ApprovalDecisions {
    Table,
    Id,
    ApprovalId,
    Approver,
    /// `approve` or `deny`.
    Decision,
    Reason,
    At,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Contacts::Table)
                .add_column(text(Contacts::WarmthReasons).default("[]"))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Contacts::Table)
                .add_column(timestamp_with_time_zone_null(Contacts::WarmthUpdatedAt))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Interactions::Table)
                .add_column(string_null(Interactions::Channel))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(TriggerRuns::Table)
                .col(big_pk_auto(TriggerRuns::Id))
                .col(big_integer(TriggerRuns::ContactId))
                .col(string(TriggerRuns::Trigger))
                .col(string(TriggerRuns::Crossing))
                .col(integer(TriggerRuns::Step).default(0))
                .col(string(TriggerRuns::State))
                .col(string_null(TriggerRuns::StoppedReason))
                .col(timestamp_with_time_zone_null(TriggerRuns::NextStepAt))
                .col(timestamp_with_time_zone(TriggerRuns::CreatedAt))
                .col(timestamp_with_time_zone(TriggerRuns::UpdatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("trigger_runs_once_per_crossing")
                .table(TriggerRuns::Table)
                .col(TriggerRuns::ContactId)
                .col(TriggerRuns::Trigger)
                .col(TriggerRuns::Crossing)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("trigger_runs_due")
                .table(TriggerRuns::Table)
                .col(TriggerRuns::State)
                .col(TriggerRuns::NextStepAt)
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(InboundMessages::Table)
                .col(big_pk_auto(InboundMessages::Id))
                .col(big_integer_null(InboundMessages::ContactId))
                .col(string(InboundMessages::Channel))
                .col(string(InboundMessages::FromAddress))
                .col(text(InboundMessages::Text))
                .col(string_null(InboundMessages::Keyword))
                .col(string_null(InboundMessages::InReplyTo))
                .col(boolean(InboundMessages::Confirmed).default(false))
                .col(timestamp_with_time_zone(InboundMessages::ReceivedAt))
                .col(timestamp_with_time_zone(InboundMessages::CreatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("inbound_messages_from")
                .table(InboundMessages::Table)
                .col(InboundMessages::Channel)
                .col(InboundMessages::FromAddress)
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(ApprovalDecisions::Table)
                .col(big_pk_auto(ApprovalDecisions::Id))
                .col(big_integer(ApprovalDecisions::ApprovalId))
                .col(string(ApprovalDecisions::Approver))
                .col(string(ApprovalDecisions::Decision))
                .col(text_null(ApprovalDecisions::Reason))
                .col(timestamp_with_time_zone(ApprovalDecisions::At))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("approval_decisions_one_per_approver")
                .table(ApprovalDecisions::Table)
                .col(ApprovalDecisions::ApprovalId)
                .col(ApprovalDecisions::Approver)
                .unique()
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(ApprovalDecisions::Table).to_owned())
            .await?;
        m.drop_table(Table::drop().table(InboundMessages::Table).to_owned())
            .await?;
        m.drop_table(Table::drop().table(TriggerRuns::Table).to_owned())
            .await?;
        for (table, col) in [
            (
                Interactions::Table.into_iden(),
                Interactions::Channel.into_iden(),
            ),
            (
                Contacts::Table.into_iden(),
                Contacts::WarmthUpdatedAt.into_iden(),
            ),
            (
                Contacts::Table.into_iden(),
                Contacts::WarmthReasons.into_iden(),
            ),
        ] {
            m.alter_table(Table::alter().table(table).drop_column(col).to_owned())
                .await?;
        }
        Ok(())
    }
}
