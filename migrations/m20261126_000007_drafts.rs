//! Campaign drafts: what a person is composing in Slack, before (and after)
//! it is submitted to the approval engine.
//!
//! Drafts are their own table, not `campaigns` rows in state `draft`: a
//! `campaigns` row is written by `approval::submit` under a unique `source`
//! and answers for exactly one content hash; a draft is edited freely and
//! submitted as `campaign:<draft id>`, so resubmitting an edited draft goes
//! through the engine's revision logic (voiding the old approval).
//!
//! - `spec`: the saved draft (JSON: name, channel, audience, message,
//!   schedule); NULL until the person saves or submits it, so an abandoned
//!   preview never shows up in `/warm drafts`.
//! - `pending_spec`: the last previewed content, what Save/Submit commit.
//! - `campaign_id`: the campaign the last submission created or revised.

use sea_orm_migration::{prelude::*, schema::*};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261126_000007_drafts"
    }
}

#[derive(DeriveIden)]
enum CampaignDrafts {
    Table,
    Id,
    CreatedBy,
    Name,
    Spec,
    PendingSpec,
    CampaignId,
    SubmittedAt,
    CreatedAt,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(CampaignDrafts::Table)
                .col(big_pk_auto(CampaignDrafts::Id))
                .col(string(CampaignDrafts::CreatedBy))
                .col(string(CampaignDrafts::Name))
                .col(text_null(CampaignDrafts::Spec))
                .col(text_null(CampaignDrafts::PendingSpec))
                .col(big_integer_null(CampaignDrafts::CampaignId))
                .col(timestamp_with_time_zone_null(CampaignDrafts::SubmittedAt))
                .col(timestamp_with_time_zone(CampaignDrafts::CreatedAt))
                .col(timestamp_with_time_zone(CampaignDrafts::UpdatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("campaign_drafts_created_by")
                .table(CampaignDrafts::Table)
                .col(CampaignDrafts::CreatedBy)
                .col(CampaignDrafts::UpdatedAt)
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(CampaignDrafts::Table).to_owned())
            .await
    }
}
