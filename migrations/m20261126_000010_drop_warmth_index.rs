//! Drops the index on `contacts.warmth`. Warmth is rewritten for most
//! contacts by every decay pass and on every interaction; an index on it
//! made each of those writes an index update too (and on PostgreSQL ruled
//! out heap-only updates). The reads it served — segments by warmth range,
//! cold and active scans — read a large share of the table anyway, where a
//! sequential scan is as fast.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261126_000010_drop_warmth_index"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.get_connection()
            .execute_unprepared("DROP INDEX IF EXISTS contacts_warmth")
            .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.get_connection()
            .execute_unprepared("CREATE INDEX contacts_warmth ON contacts (warmth)")
            .await?;
        Ok(())
    }
}
