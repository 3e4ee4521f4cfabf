//! Reports: the daily digest's exactly-once record and the observed cold
//! crossings.
//!
//! - `digests`: one row per local day a digest was claimed for. The primary
//!   key is the day (`2026-11-26`), inserted with `ON CONFLICT DO NOTHING`
//!   before posting, so several processes post it once.
//! - `cold_marks`: one row per contact whose warmth is below 25, with when
//!   warmline first saw it there. Contacts carry no warmth history, so "gone
//!   cold since yesterday" is read from here; a contact warming back up loses
//!   its row, and its next crossing is a new one.

use sea_orm_migration::{prelude::*, schema::*};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261126_000009_digests"
    }
}

#[derive(DeriveIden)]
enum Digests {
    Table,
    Day,
    Channel,
    ClaimedAt,
}

#[derive(DeriveIden)]
enum ColdMarks {
    Table,
    ContactId,
    Since,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Digests::Table)
                .if_not_exists()
                .col(string(Digests::Day).primary_key())
                .col(string(Digests::Channel))
                .col(timestamp_with_time_zone(Digests::ClaimedAt))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(ColdMarks::Table)
                .if_not_exists()
                .col(big_integer(ColdMarks::ContactId).primary_key())
                .col(timestamp_with_time_zone(ColdMarks::Since))
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(ColdMarks::Table).to_owned())
            .await?;
        m.drop_table(Table::drop().table(Digests::Table).to_owned())
            .await?;
        Ok(())
    }
}
