//! The core tables every part of warmline builds on: contacts and what we
//! know of them, consent and suppressions, templates and campaigns, the
//! delivery ledger, approvals, provider events, the audit log and the
//! de-duplication record of Slack requests.

use sea_orm_migration::{prelude::*, schema::*};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261126_000001_core"
    }
}

#[derive(DeriveIden)]
enum Contacts {
    Table,
    Id,
    Email,
    Phone,
    FirstName,
    LastName,
    ExternalId,
    Timezone,
    Status,
    PipelineStage,
    Tags,
    Warmth,
    LastInteractionAt,
    Metadata,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Interactions {
    Table,
    Id,
    ContactId,
    Kind,
    Direction,
    OccurredAt,
    Summary,
    Source,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Consents {
    Table,
    Id,
    ContactId,
    Channel,
    Granted,
    Source,
    Actor,
    ConsentText,
    RecordedAt,
}

#[derive(DeriveIden)]
enum Suppressions {
    Table,
    Id,
    ContactId,
    Channel,
    Address,
    Reason,
    Source,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Templates {
    Table,
    Id,
    Name,
    Channel,
    Subject,
    Body,
    Version,
    ContentHash,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Campaigns {
    Table,
    Id,
    Name,
    Channel,
    State,
    CreatedBy,
    Audience,
    TemplateId,
    Subject,
    Body,
    Schedule,
    ContentHash,
    SlackChannel,
    SlackTs,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Messages {
    Table,
    Id,
    CampaignId,
    ContactId,
    Channel,
    Kind,
    State,
    SkipReason,
    Provider,
    ProviderMessageId,
    Attempts,
    NextAttemptAt,
    LockedUntil,
    LockedBy,
    LastError,
    Payload,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum MessageEvents {
    Table,
    Id,
    MessageId,
    State,
    At,
    Detail,
}

#[derive(DeriveIden)]
enum Approvals {
    Table,
    Id,
    CampaignId,
    State,
    RequestedBy,
    ContentHash,
    DecidedBy,
    DecidedAt,
    Reason,
    SlackChannel,
    SlackTs,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ProviderEvents {
    Table,
    Id,
    Provider,
    EventId,
    MessageId,
    Kind,
    Payload,
    ReceivedAt,
}

#[derive(DeriveIden)]
enum AuditLog {
    Table,
    Id,
    At,
    Actor,
    Action,
    Subject,
    Detail,
}

#[derive(DeriveIden)]
enum SlackRequests {
    Table,
    Key,
    Kind,
    TeamId,
    ReceivedAt,
}

#[derive(DeriveIden)]
enum Tombstones {
    Table,
    Hash,
    CreatedAt,
}

fn fk(
    from: (impl IntoIden, impl IntoIden),
    to: (impl IntoIden, impl IntoIden),
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(from.0, from.1)
        .to(to.0, to.1)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Contacts::Table)
                .col(big_pk_auto(Contacts::Id))
                .col(string_null(Contacts::Email).unique_key())
                .col(string_null(Contacts::Phone))
                .col(string_null(Contacts::FirstName))
                .col(string_null(Contacts::LastName))
                .col(string_null(Contacts::ExternalId).unique_key())
                .col(string_null(Contacts::Timezone))
                .col(string(Contacts::Status).default("active"))
                .col(string_null(Contacts::PipelineStage))
                .col(text(Contacts::Tags).default("[]"))
                .col(double(Contacts::Warmth).default(0.0))
                .col(timestamp_with_time_zone_null(Contacts::LastInteractionAt))
                .col(text(Contacts::Metadata).default("{}"))
                .col(timestamp_with_time_zone(Contacts::CreatedAt))
                .col(timestamp_with_time_zone(Contacts::UpdatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("contacts_phone")
                .table(Contacts::Table)
                .col(Contacts::Phone)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("contacts_warmth")
                .table(Contacts::Table)
                .col(Contacts::Warmth)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Interactions::Table)
                .col(big_pk_auto(Interactions::Id))
                .col(big_integer(Interactions::ContactId))
                .col(string(Interactions::Kind))
                .col(string(Interactions::Direction))
                .col(timestamp_with_time_zone(Interactions::OccurredAt))
                .col(text_null(Interactions::Summary))
                .col(string(Interactions::Source))
                .col(timestamp_with_time_zone(Interactions::CreatedAt))
                .foreign_key(&mut fk(
                    (Interactions::Table, Interactions::ContactId),
                    (Contacts::Table, Contacts::Id),
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("interactions_contact_time")
                .table(Interactions::Table)
                .col(Interactions::ContactId)
                .col(Interactions::OccurredAt)
                .to_owned(),
        )
        .await?;

        // Append-only: current consent is the latest row per (contact, channel).
        m.create_table(
            Table::create()
                .table(Consents::Table)
                .col(big_pk_auto(Consents::Id))
                .col(big_integer(Consents::ContactId))
                .col(string(Consents::Channel))
                .col(boolean(Consents::Granted))
                .col(string(Consents::Source))
                .col(string_null(Consents::Actor))
                .col(text_null(Consents::ConsentText))
                .col(timestamp_with_time_zone(Consents::RecordedAt))
                .foreign_key(&mut fk(
                    (Consents::Table, Consents::ContactId),
                    (Contacts::Table, Contacts::Id),
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("consents_contact_channel")
                .table(Consents::Table)
                .col(Consents::ContactId)
                .col(Consents::Channel)
                .col(Consents::Id)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Suppressions::Table)
                .col(big_pk_auto(Suppressions::Id))
                .col(big_integer_null(Suppressions::ContactId))
                .col(string(Suppressions::Channel))
                .col(string(Suppressions::Address))
                .col(string(Suppressions::Reason))
                .col(string(Suppressions::Source))
                .col(timestamp_with_time_zone(Suppressions::CreatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("suppressions_channel_address")
                .table(Suppressions::Table)
                .col(Suppressions::Channel)
                .col(Suppressions::Address)
                .unique()
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Templates::Table)
                .col(big_pk_auto(Templates::Id))
                .col(string(Templates::Name).unique_key())
                .col(string(Templates::Channel))
                .col(text_null(Templates::Subject))
                .col(text(Templates::Body))
                .col(integer(Templates::Version).default(1))
                .col(string(Templates::ContentHash))
                .col(timestamp_with_time_zone(Templates::CreatedAt))
                .col(timestamp_with_time_zone(Templates::UpdatedAt))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Campaigns::Table)
                .col(big_pk_auto(Campaigns::Id))
                .col(string(Campaigns::Name))
                .col(string(Campaigns::Channel))
                .col(string(Campaigns::State))
                .col(string(Campaigns::CreatedBy))
                .col(text(Campaigns::Audience).default("{}"))
                .col(big_integer_null(Campaigns::TemplateId))
                .col(text_null(Campaigns::Subject))
                .col(text_null(Campaigns::Body))
                .col(text(Campaigns::Schedule).default("{}"))
                .col(string_null(Campaigns::ContentHash))
                .col(string_null(Campaigns::SlackChannel))
                .col(string_null(Campaigns::SlackTs))
                .col(timestamp_with_time_zone(Campaigns::CreatedAt))
                .col(timestamp_with_time_zone(Campaigns::UpdatedAt))
                .to_owned(),
        )
        .await?;

        // The delivery ledger: one row per recipient per send, with a
        // deterministic id so a repeated enqueue cannot create a second row.
        m.create_table(
            Table::create()
                .table(Messages::Table)
                .col(string(Messages::Id).primary_key())
                .col(big_integer_null(Messages::CampaignId))
                .col(big_integer_null(Messages::ContactId))
                .col(string(Messages::Channel))
                .col(string(Messages::Kind))
                .col(string(Messages::State))
                .col(string_null(Messages::SkipReason))
                .col(string_null(Messages::Provider))
                .col(string_null(Messages::ProviderMessageId))
                .col(integer(Messages::Attempts).default(0))
                .col(timestamp_with_time_zone_null(Messages::NextAttemptAt))
                .col(timestamp_with_time_zone_null(Messages::LockedUntil))
                .col(string_null(Messages::LockedBy))
                .col(text_null(Messages::LastError))
                .col(text(Messages::Payload).default("{}"))
                .col(timestamp_with_time_zone(Messages::CreatedAt))
                .col(timestamp_with_time_zone(Messages::UpdatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("messages_due")
                .table(Messages::Table)
                .col(Messages::State)
                .col(Messages::NextAttemptAt)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("messages_campaign")
                .table(Messages::Table)
                .col(Messages::CampaignId)
                .col(Messages::State)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("messages_contact")
                .table(Messages::Table)
                .col(Messages::ContactId)
                .col(Messages::CreatedAt)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(MessageEvents::Table)
                .col(big_pk_auto(MessageEvents::Id))
                .col(string(MessageEvents::MessageId))
                .col(string(MessageEvents::State))
                .col(timestamp_with_time_zone(MessageEvents::At))
                .col(text_null(MessageEvents::Detail))
                .foreign_key(&mut fk(
                    (MessageEvents::Table, MessageEvents::MessageId),
                    (Messages::Table, Messages::Id),
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("message_events_message")
                .table(MessageEvents::Table)
                .col(MessageEvents::MessageId)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Approvals::Table)
                .col(big_pk_auto(Approvals::Id))
                .col(big_integer(Approvals::CampaignId))
                .col(string(Approvals::State))
                .col(string(Approvals::RequestedBy))
                .col(string(Approvals::ContentHash))
                .col(string_null(Approvals::DecidedBy))
                .col(timestamp_with_time_zone_null(Approvals::DecidedAt))
                .col(text_null(Approvals::Reason))
                .col(string_null(Approvals::SlackChannel))
                .col(string_null(Approvals::SlackTs))
                .col(timestamp_with_time_zone(Approvals::CreatedAt))
                .foreign_key(&mut fk(
                    (Approvals::Table, Approvals::CampaignId),
                    (Campaigns::Table, Campaigns::Id),
                ))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(ProviderEvents::Table)
                .col(big_pk_auto(ProviderEvents::Id))
                .col(string(ProviderEvents::Provider))
                .col(string(ProviderEvents::EventId))
                .col(string_null(ProviderEvents::MessageId))
                .col(string(ProviderEvents::Kind))
                .col(text(ProviderEvents::Payload))
                .col(timestamp_with_time_zone(ProviderEvents::ReceivedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("provider_events_unique")
                .table(ProviderEvents::Table)
                .col(ProviderEvents::Provider)
                .col(ProviderEvents::EventId)
                .unique()
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(AuditLog::Table)
                .col(big_pk_auto(AuditLog::Id))
                .col(timestamp_with_time_zone(AuditLog::At))
                .col(string(AuditLog::Actor))
                .col(string(AuditLog::Action))
                .col(string_null(AuditLog::Subject))
                .col(text(AuditLog::Detail).default("{}"))
                .to_owned(),
        )
        .await?;

        // Slack retries and repeated payloads: the first insert of a key wins.
        m.create_table(
            Table::create()
                .table(SlackRequests::Table)
                .col(string(SlackRequests::Key).primary_key())
                .col(string(SlackRequests::Kind))
                .col(string_null(SlackRequests::TeamId))
                .col(timestamp_with_time_zone(SlackRequests::ReceivedAt))
                .to_owned(),
        )
        .await?;

        // Hashed identities of forgotten contacts (GDPR erasure).
        m.create_table(
            Table::create()
                .table(Tombstones::Table)
                .col(string(Tombstones::Hash).primary_key())
                .col(timestamp_with_time_zone(Tombstones::CreatedAt))
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Tombstones::Table.into_iden(),
            SlackRequests::Table.into_iden(),
            AuditLog::Table.into_iden(),
            ProviderEvents::Table.into_iden(),
            Approvals::Table.into_iden(),
            MessageEvents::Table.into_iden(),
            Messages::Table.into_iden(),
            Campaigns::Table.into_iden(),
            Templates::Table.into_iden(),
            Suppressions::Table.into_iden(),
            Consents::Table.into_iden(),
            Interactions::Table.into_iden(),
            Contacts::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
