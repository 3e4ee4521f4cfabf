//! What email needs: server-held secrets (the unsubscribe signing key when
//! none is configured), the JSON API's idempotency records, the template a
//! message was rendered from, and a lookup of messages by the provider's id
//! (webhooks that carry no tag of ours).

use sea_orm_migration::{prelude::*, schema::*};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261126_000004_email"
    }
}

#[derive(DeriveIden)]
enum Secrets {
    Table,
    Name,
    Value,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ApiIdempotency {
    Table,
    /// SHA-256 of the API key and the `Idempotency-Key` header: keys of
    /// different callers never collide, and no key is stored in clear.
    Key,
    /// SHA-256 of method, path and body: same key, other request → 409.
    RequestHash,
    Status,
    Response,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Messages {
    Table,
    Template,
    ProviderMessageId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Secrets::Table)
                .col(string(Secrets::Name).primary_key())
                .col(text(Secrets::Value))
                .col(timestamp_with_time_zone(Secrets::CreatedAt))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(ApiIdempotency::Table)
                .col(string(ApiIdempotency::Key).primary_key())
                .col(string(ApiIdempotency::RequestHash))
                .col(integer(ApiIdempotency::Status))
                .col(text(ApiIdempotency::Response))
                .col(timestamp_with_time_zone(ApiIdempotency::CreatedAt))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Messages::Table)
                .add_column(string_null(Messages::Template))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("messages_provider_message_id")
                .table(Messages::Table)
                .col(Messages::ProviderMessageId)
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(
            Index::drop()
                .name("messages_provider_message_id")
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Messages::Table)
                .drop_column(Messages::Template)
                .to_owned(),
        )
        .await?;
        m.drop_table(Table::drop().table(ApiIdempotency::Table).to_owned())
            .await?;
        m.drop_table(Table::drop().table(Secrets::Table).to_owned())
            .await?;
        Ok(())
    }
}
