//! Schema migrations, one file per change, run in order on SQLite and
//! PostgreSQL alike. Rules (SQLite's `ALTER TABLE` is narrow): one change per
//! `alter_table` call, portable column types only, JSON stored as text.

use sea_orm_migration::prelude::*;

mod m20261126_000001_core;
mod m20261126_000002_dispatcher;
mod m20261126_000003_contacts_email_lower;
mod m20261126_000004_email;
mod m20261126_000005_relationships;
mod m20261126_000006_approvals;
mod m20261126_000007_drafts;
mod m20261126_000008_campaign_progress;
mod m20261126_000009_digests;
mod m20261126_000010_drop_warmth_index;
mod m20261126_000011_contacts_fillfactor;
mod m20261126_000012_partial_message_indexes;
mod m20261207_000013_sandbox_outbox;
mod m20261207_000014_whatsapp_templates;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261126_000001_core::Migration),
            Box::new(m20261126_000002_dispatcher::Migration),
            Box::new(m20261126_000003_contacts_email_lower::Migration),
            Box::new(m20261126_000004_email::Migration),
            Box::new(m20261126_000005_relationships::Migration),
            Box::new(m20261126_000006_approvals::Migration),
            Box::new(m20261126_000007_drafts::Migration),
            Box::new(m20261126_000008_campaign_progress::Migration),
            Box::new(m20261126_000009_digests::Migration),
            Box::new(m20261126_000010_drop_warmth_index::Migration),
            Box::new(m20261126_000011_contacts_fillfactor::Migration),
            Box::new(m20261126_000012_partial_message_indexes::Migration),
            Box::new(m20261207_000013_sandbox_outbox::Migration),
            Box::new(m20261207_000014_whatsapp_templates::Migration),
        ]
    }
}
