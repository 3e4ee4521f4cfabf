//! Saved drafts (`campaign_drafts`): created when a person first previews,
//! listed once saved, reopened and edited by the person who wrote them.
//!
//! Invariants:
//! - A draft is listed only once saved or submitted (`spec` set); a preview
//!   alone only writes `pending_spec`.
//! - Only the author reads or changes a draft: every query is scoped by
//!   `created_by`.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, FromQueryResult, Statement, Value};

use super::Draft;

/// A stored draft.
#[derive(Debug, Clone)]
pub struct Stored {
    pub id: i64,
    pub name: String,
    /// The saved content; `None` for a draft only previewed so far.
    pub spec: Option<Draft>,
    /// The last previewed content.
    pub pending: Option<Draft>,
    pub campaign_id: Option<i64>,
    pub submitted_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

#[derive(FromQueryResult)]
struct Row {
    id: i64,
    name: String,
    spec: Option<String>,
    pending_spec: Option<String>,
    campaign_id: Option<i64>,
    submitted_at: Option<DateTime<Utc>>,
    updated_at: DateTime<Utc>,
}

impl From<Row> for Stored {
    fn from(r: Row) -> Self {
        let parse = |s: Option<String>| s.and_then(|s| serde_json::from_str(&s).ok());
        Stored {
            id: r.id,
            name: r.name,
            spec: parse(r.spec),
            pending: parse(r.pending_spec),
            campaign_id: r.campaign_id,
            submitted_at: r.submitted_at,
            updated_at: r.updated_at,
        }
    }
}

const COLUMNS: &str = "id, name, spec, pending_spec, campaign_id, submitted_at, updated_at";

/// Records `draft` as the last previewed content of draft `id` (or of a new
/// draft when `id` is `None`, or not the user's). Returns the draft's id.
pub async fn stage(
    conn: &impl ConnectionTrait,
    user: &str,
    id: Option<i64>,
    draft: &Draft,
    now: DateTime<Utc>,
) -> anyhow::Result<i64> {
    let json = serde_json::to_string(draft)?;
    let backend = conn.get_database_backend();
    if let Some(id) = id {
        let r = conn
            .execute_raw(Statement::from_sql_and_values(
                backend,
                "UPDATE campaign_drafts SET pending_spec = $1, updated_at = $2 \
                 WHERE id = $3 AND created_by = $4",
                [
                    Value::from(json.clone()),
                    Value::from(now),
                    Value::from(id),
                    Value::from(user.to_string()),
                ],
            ))
            .await?;
        if r.rows_affected() == 1 {
            return Ok(id);
        }
    }
    #[derive(FromQueryResult)]
    struct Id {
        id: i64,
    }
    let row = Id::find_by_statement(Statement::from_sql_and_values(
        backend,
        "INSERT INTO campaign_drafts (created_by, name, pending_spec, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $4) RETURNING id",
        [
            Value::from(user.to_string()),
            Value::from(draft.name.clone()),
            Value::from(json),
            Value::from(now),
        ],
    ))
    .one(conn)
    .await?
    .ok_or_else(|| anyhow::anyhow!("inserting a draft returned no id"))?;
    Ok(row.id)
}

/// Saves the last previewed content as the draft. Returns it, or `None`
/// when there is no such draft of the user's.
pub async fn save(
    conn: &impl ConnectionTrait,
    user: &str,
    id: i64,
    now: DateTime<Utc>,
) -> anyhow::Result<Option<Stored>> {
    let Some(d) = get(conn, user, id).await? else {
        return Ok(None);
    };
    let Some(pending) = d.pending.clone().or(d.spec.clone()) else {
        return Ok(None);
    };
    conn.execute_raw(Statement::from_sql_and_values(
        conn.get_database_backend(),
        "UPDATE campaign_drafts SET spec = $1, name = $2, updated_at = $3 \
         WHERE id = $4 AND created_by = $5",
        [
            Value::from(serde_json::to_string(&pending)?),
            Value::from(pending.name.clone()),
            Value::from(now),
            Value::from(id),
            Value::from(user.to_string()),
        ],
    ))
    .await?;
    get(conn, user, id).await
}

/// Records a submission: the draft is saved as submitted, with its campaign.
pub async fn mark_submitted(
    conn: &impl ConnectionTrait,
    user: &str,
    id: i64,
    campaign_id: i64,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    save(conn, user, id, now).await?;
    conn.execute_raw(Statement::from_sql_and_values(
        conn.get_database_backend(),
        "UPDATE campaign_drafts SET campaign_id = $1, submitted_at = $2 \
         WHERE id = $3 AND created_by = $4",
        [
            Value::from(campaign_id),
            Value::from(now),
            Value::from(id),
            Value::from(user.to_string()),
        ],
    ))
    .await?;
    Ok(())
}

pub async fn get(
    conn: &impl ConnectionTrait,
    user: &str,
    id: i64,
) -> anyhow::Result<Option<Stored>> {
    Ok(Row::find_by_statement(Statement::from_sql_and_values(
        conn.get_database_backend(),
        format!("SELECT {COLUMNS} FROM campaign_drafts WHERE id = $1 AND created_by = $2"),
        [Value::from(id), Value::from(user.to_string())],
    ))
    .one(conn)
    .await?
    .map(Stored::from))
}

/// The user's saved drafts, most recently changed first.
pub async fn list(
    conn: &impl ConnectionTrait,
    user: &str,
    limit: u64,
) -> anyhow::Result<Vec<Stored>> {
    Ok(Row::find_by_statement(Statement::from_sql_and_values(
        conn.get_database_backend(),
        format!(
            "SELECT {COLUMNS} FROM campaign_drafts WHERE created_by = $1 AND spec IS NOT NULL \
             ORDER BY updated_at DESC, id DESC LIMIT {limit}"
        ),
        [Value::from(user.to_string())],
    ))
    .all(conn)
    .await?
    .into_iter()
    .map(Stored::from)
    .collect())
}
