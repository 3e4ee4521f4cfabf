//! The audit log: who did what, when. Callers pass masked personal data.

use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait};

use crate::db::entities::audit_log;

pub async fn record(
    db: &impl ConnectionTrait,
    actor: &str,
    action: &str,
    subject: Option<&str>,
    detail: serde_json::Value,
) -> anyhow::Result<()> {
    audit_log::Entity::insert(audit_log::ActiveModel {
        at: Set(crate::clock::now()),
        actor: Set(actor.to_string()),
        action: Set(action.to_string()),
        subject: Set(subject.map(str::to_string)),
        detail: Set(detail.to_string()),
        ..Default::default()
    })
    .exec(db)
    .await?;
    Ok(())
}
