//! PostgreSQL only: leaves half of every `contacts` page free.
//!
//! The decay pass rewrites most contacts' warmth and reasons every day.
//! None of those columns is indexed, so each rewrite can be a heap-only
//! (HOT) update — no new entry in any of the table's five indexes — but only
//! when the new row version fits on the same page. With full pages every
//! rewrite was a full update instead (measured on 100,000 contacts: 1.5–1.7 s
//! a pass with full pages, 0.25–0.27 s once the previous day's versions had
//! been pruned from half-empty ones). The price is a table twice the size,
//! about 50 MB per 100,000 contacts. Pages written before this migration
//! keep their old packing until rewritten (`VACUUM FULL contacts`).
//! SQLite has no such setting; the migration does nothing there.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261126_000011_contacts_fillfactor"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        if m.get_database_backend() == sea_orm::DbBackend::Postgres {
            m.get_connection()
                .execute_unprepared("ALTER TABLE contacts SET (fillfactor = 50)")
                .await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        if m.get_database_backend() == sea_orm::DbBackend::Postgres {
            m.get_connection()
                .execute_unprepared("ALTER TABLE contacts RESET (fillfactor)")
                .await?;
        }
        Ok(())
    }
}
