//! WhatsApp message templates as the business account last reported them
//! (`crate::whatsapp::templates`, issue 15): synced from the WABA on start
//! and by `/warm whatsapp templates`. One row per (name, language), as Meta
//! keys them; a sync replaces the whole set, so a template deleted at Meta
//! disappears here too.

use sea_orm_migration::{prelude::*, schema::*};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261207_000014_whatsapp_templates"
    }
}

#[derive(DeriveIden)]
enum WhatsappTemplates {
    Table,
    Name,
    Language,
    Category,
    Status,
    Body,
    ParameterCount,
    Components,
    SyncedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(WhatsappTemplates::Table)
                .if_not_exists()
                .col(string(WhatsappTemplates::Name))
                .col(string(WhatsappTemplates::Language))
                .col(string(WhatsappTemplates::Category))
                .col(string(WhatsappTemplates::Status))
                .col(text(WhatsappTemplates::Body))
                .col(integer(WhatsappTemplates::ParameterCount))
                .col(text(WhatsappTemplates::Components))
                .col(timestamp_with_time_zone(WhatsappTemplates::SyncedAt))
                .primary_key(
                    Index::create()
                        .col(WhatsappTemplates::Name)
                        .col(WhatsappTemplates::Language),
                )
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(WhatsappTemplates::Table).to_owned())
            .await
    }
}
