//! Approvals: what the approval engine needs beyond the core tables.
//!
//! - `campaigns.source`: what decided the send (`trigger:cold:17:…`); unique,
//!   so submitting the same send twice finds the first campaign instead of
//!   creating a second one.
//! - `campaigns.template`: the template's name when one was used.
//! - `campaigns.revision`: bumped when a pending draft is edited; part of
//!   its messages' source, so the edited messages get new ledger ids.
//! - `approvals.required_approvals`, `risk`, `risk_reasons`: the policy's
//!   verdict as the approvers saw it.
//! - `approvals.reminded_at`: approvers are reminded once.

use sea_orm_migration::{prelude::*, schema::*};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261126_000006_approvals"
    }
}

#[derive(DeriveIden)]
enum Campaigns {
    Table,
    Source,
    Template,
    Revision,
}

// The variants are column names; `RequiredApprovals` must spell
// `required_approvals`.
#[allow(clippy::enum_variant_names)]
#[derive(DeriveIden)]
enum Approvals {
    Table,
    RequiredApprovals,
    Risk,
    RiskReasons,
    RemindedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Campaigns::Table)
                .add_column(string_null(Campaigns::Source))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Campaigns::Table)
                .add_column(string_null(Campaigns::Template))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Campaigns::Table)
                .add_column(integer(Campaigns::Revision).default(1))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("campaigns_source")
                .table(Campaigns::Table)
                .col(Campaigns::Source)
                .unique()
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Approvals::Table)
                .add_column(integer(Approvals::RequiredApprovals).default(1))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Approvals::Table)
                .add_column(integer(Approvals::Risk).default(0))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Approvals::Table)
                .add_column(text(Approvals::RiskReasons).default("[]"))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Approvals::Table)
                .add_column(timestamp_with_time_zone_null(Approvals::RemindedAt))
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(
            Index::drop()
                .name("campaigns_source")
                .table(Campaigns::Table)
                .to_owned(),
        )
        .await?;
        for (table, col) in [
            (
                Approvals::Table.into_iden(),
                Approvals::RemindedAt.into_iden(),
            ),
            (
                Approvals::Table.into_iden(),
                Approvals::RiskReasons.into_iden(),
            ),
            (Approvals::Table.into_iden(), Approvals::Risk.into_iden()),
            (
                Approvals::Table.into_iden(),
                Approvals::RequiredApprovals.into_iden(),
            ),
            (
                Campaigns::Table.into_iden(),
                Campaigns::Revision.into_iden(),
            ),
            (
                Campaigns::Table.into_iden(),
                Campaigns::Template.into_iden(),
            ),
            (Campaigns::Table.into_iden(), Campaigns::Source.into_iden()),
        ] {
            m.alter_table(Table::alter().table(table).drop_column(col).to_owned())
                .await?;
        }
        Ok(())
    }
}
