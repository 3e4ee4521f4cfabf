//! Campaign progress in Slack (`src/slack/campaign_progress.rs`):
//!
//! - `campaigns.progress_ts`: the one progress message in the campaign's
//!   thread, edited in place.
//! - `campaigns.progress_edited_at`: when it was last posted or edited (or
//!   claimed for that): the claim that keeps edits to one per interval
//!   across processes.
//! - `campaigns.progress_counts`: what the message shows, so an unchanged
//!   campaign is not edited.
//! - `campaigns.summary_posted_at`: the final summary was claimed; set once.
//!
//! Campaigns that finished before this migration are marked as summarised,
//! so upgrading does not post a summary for every old campaign.

use sea_orm_migration::{prelude::*, schema::*};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261126_000008_campaign_progress"
    }
}

#[derive(DeriveIden)]
enum Campaigns {
    Table,
    ProgressTs,
    ProgressEditedAt,
    ProgressCounts,
    SummaryPostedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Campaigns::Table)
                .add_column(string_null(Campaigns::ProgressTs))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Campaigns::Table)
                .add_column(timestamp_with_time_zone_null(Campaigns::ProgressEditedAt))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Campaigns::Table)
                .add_column(text_null(Campaigns::ProgressCounts))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Campaigns::Table)
                .add_column(timestamp_with_time_zone_null(Campaigns::SummaryPostedAt))
                .to_owned(),
        )
        .await?;
        // Old, finished campaigns: nothing of theirs can still move.
        m.get_connection()
            .execute_unprepared(
                "UPDATE campaigns SET summary_posted_at = updated_at WHERE NOT EXISTS \
                 (SELECT 1 FROM messages m WHERE m.campaign_id = campaigns.id \
                  AND m.state IN ('awaiting_approval', 'scheduled', 'held', 'queued', 'deferred', 'paused', 'sending'))",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for col in [
            Campaigns::SummaryPostedAt,
            Campaigns::ProgressCounts,
            Campaigns::ProgressEditedAt,
            Campaigns::ProgressTs,
        ] {
            m.alter_table(
                Table::alter()
                    .table(Campaigns::Table)
                    .drop_column(col)
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }
}
