//! Contacts merge by email case-insensitively (`warmline import`): an index
//! on `LOWER(email)` keeps that look-up from scanning the table. Expression
//! indexes are written the same way on SQLite and PostgreSQL.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261126_000003_contacts_email_lower"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.get_connection()
            .execute_unprepared("CREATE INDEX contacts_email_lower ON contacts (LOWER(email))")
            .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.get_connection()
            .execute_unprepared("DROP INDEX IF EXISTS contacts_email_lower")
            .await?;
        Ok(())
    }
}
