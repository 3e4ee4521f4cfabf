//! A contact of the team's relationship CRM.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "contacts")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub email: Option<String>,
    /// E.164.
    pub phone: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub external_id: Option<String>,
    /// IANA time zone name.
    pub timezone: Option<String>,
    pub status: String,
    pub pipeline_stage: Option<String>,
    /// JSON array of strings.
    pub tags: String,
    pub warmth: f64,
    pub last_interaction_at: Option<DateTimeUtc>,
    /// JSON object.
    pub metadata: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
