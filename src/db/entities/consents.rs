//! The consent ledger: append-only grants and revocations per contact and
//! channel. Current consent is the newest row; rows are never updated.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "consents")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub contact_id: i64,
    pub channel: String,
    pub granted: bool,
    /// Where the consent came from: `import:<source>`, `api`, `form`, …
    pub source: String,
    pub actor: Option<String>,
    pub consent_text: Option<String>,
    pub recorded_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
