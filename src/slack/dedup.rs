//! Exactly one effect per Slack request: Slack retries events
//! (`X-Slack-Retry-Num`), and a double click or a replayed payload repeats an
//! interaction. The first insert of a request's key wins; a repeat finds the
//! key taken and is acknowledged without acting.

use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait, sea_query::OnConflict};

use crate::db::entities::slack_requests;

/// Records `key`; true when this is the first time it is seen.
pub async fn first_time(
    db: &impl ConnectionTrait,
    key: &str,
    kind: &str,
    team_id: Option<&str>,
) -> anyhow::Result<bool> {
    let row = slack_requests::ActiveModel {
        key: Set(key.to_owned()),
        kind: Set(kind.to_owned()),
        team_id: Set(team_id.map(str::to_owned)),
        received_at: Set(crate::clock::now()),
    };
    let inserted = slack_requests::Entity::insert(row)
        .on_conflict(
            OnConflict::column(slack_requests::Column::Key)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(db)
        .await
        .map_err(|e| anyhow::anyhow!(e).context("Failed to record a Slack request key"))?;
    if inserted == 0 {
        metrics::counter!("slack_duplicate_requests_total", "kind" => kind.to_owned()).increment(1);
    }
    Ok(inserted == 1)
}

/// A stable key for a payload without an id of its own.
pub fn digest(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}
