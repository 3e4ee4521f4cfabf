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

impl Model {
    /// A new contact before any field is merged in: active, no tags, no
    /// metadata, warmth 0; the database assigns the id.
    pub fn blank(now: DateTimeUtc) -> Self {
        Self {
            id: 0,
            email: None,
            phone: None,
            first_name: None,
            last_name: None,
            external_id: None,
            timezone: None,
            status: "active".into(),
            pipeline_stage: None,
            tags: "[]".into(),
            warmth: 0.0,
            last_interaction_at: None,
            metadata: "{}".into(),
            created_at: now,
            updated_at: now,
        }
    }

    /// Every field set, for writing a contact merged in memory (the import
    /// and the API). `with_id: false` lets the database assign the id.
    /// (Warmth's reasons and time are written only by `crate::warmth`, so
    /// they are not part of this model.)
    pub fn into_set_model(self, with_id: bool) -> ActiveModel {
        use sea_orm::ActiveValue::Set;
        ActiveModel {
            id: if with_id {
                Set(self.id)
            } else {
                Default::default()
            },
            email: Set(self.email),
            phone: Set(self.phone),
            first_name: Set(self.first_name),
            last_name: Set(self.last_name),
            external_id: Set(self.external_id),
            timezone: Set(self.timezone),
            status: Set(self.status),
            pipeline_stage: Set(self.pipeline_stage),
            tags: Set(self.tags),
            warmth: Set(self.warmth),
            last_interaction_at: Set(self.last_interaction_at),
            metadata: Set(self.metadata),
            created_at: Set(self.created_at),
            updated_at: Set(self.updated_at),
        }
    }
}
