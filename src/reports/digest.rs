//! The daily digest: once per local day, at `[digest] time` in `[digest]
//! timezone`, a summary posted to `WARMLINE_DIGEST_CHANNEL` — pending
//! approvals and their age, yesterday's sends and rates, bounces and
//! complaints, new opt-outs, contacts gone cold, ambiguous messages waiting
//! for a person, and the median approval turnaround.
//!
//! Invariants:
//! - [`tick`] takes `now`, so tests drive the clock; the loop calls it once a
//!   minute. The due test compares local wall-clock times, so a DST day is an
//!   ordinary day (a due time inside a spring-forward gap is due right after
//!   the gap; a repeated hour in autumn cannot post twice, see below).
//! - Exactly once per local day, with any number of processes: the day is
//!   claimed with `INSERT INTO digests … ON CONFLICT DO NOTHING` before the
//!   post, and only the process whose insert took effect posts. If Slack
//!   refuses the post, the claim is released so a later tick tries again; a
//!   crash between the claim and the post loses that day's digest (at most
//!   once beats twice).
//! - No channel configured: nothing is posted or claimed; the loop says so
//!   once, at start.
//! - "Yesterday" is the previous local day in the digest's zone; "gone cold"
//!   is the last 24 hours (consecutive digests do not overlap); the
//!   turnaround is the last 30 days.

use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use sea_orm::{ConnectionTrait, Statement, Value};
use serde::Serialize;
use slack_morphism::prelude::*;

use super::stats::{self, AmbiguousMessage, ColdContact, PendingApproval, Rates, Truncated};
use crate::state::App;

/// How many items each list shows before "and N more".
const LIST: u64 = 10;

/// What one tick did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tick {
    /// No `WARMLINE_DIGEST_CHANNEL`.
    NotConfigured,
    /// Before today's local digest time.
    NotYet,
    /// Today's digest was already claimed (by this process or another).
    AlreadyPosted,
    /// Posted today's digest, for this local day.
    Posted { day: NaiveDate },
}

/// Everything the digest shows.
#[derive(Debug, Clone, Serialize)]
pub struct Digest {
    /// The local day the digest is for (today).
    pub day: NaiveDate,
    /// The local day "yesterday's" numbers are from.
    pub yesterday: NaiveDate,
    pub timezone: String,
    pub pending: Truncated<PendingApproval>,
    pub rates: Rates,
    pub gone_cold: Truncated<ColdContact>,
    pub ambiguous: Truncated<AmbiguousMessage>,
    /// "2h 5m", or `None` when nothing was decided in 30 days.
    pub turnaround: Option<String>,
    pub unsubscribe_target: String,
    pub complaint_target: String,
}

/// Reads the digest's numbers as of `now`.
pub async fn collect(app: &App, now: DateTime<Utc>) -> anyhow::Result<Digest> {
    let tz = app.settings.digest.timezone;
    let day = now.with_timezone(&tz).date_naive();
    let yesterday = day.pred_opt().expect("a day has a previous day");
    let (from, to) = stats::local_day_bounds(tz, yesterday);
    let db = &app.db;
    Ok(Digest {
        day,
        yesterday,
        timezone: tz.name().to_string(),
        pending: stats::pending_approvals(db, now, None, true, LIST).await?,
        rates: stats::rates(db, from, to).await?,
        gone_cold: stats::gone_cold(db, now - Duration::hours(24), now, LIST).await?,
        ambiguous: stats::ambiguous(db, now, LIST).await?,
        turnaround: stats::median_turnaround(db, now - Duration::days(30), now)
            .await?
            .map(stats::human_duration),
        unsubscribe_target: format!("{}%", super::UNSUBSCRIBE_TARGET * 100.0),
        complaint_target: format!("{}%", super::COMPLAINT_TARGET * 100.0),
    })
}

/// Renders the digest's blocks and its notification text.
pub fn render(app: &App, digest: &Digest) -> anyhow::Result<(Vec<SlackBlock>, String)> {
    let blocks = app.blocks.message_blocks(
        "digest.json.j2",
        serde_json::json!({
            "d": digest,
            "command": app.settings.slack.command,
        }),
    )?;
    let text = format!(
        "warmline digest for {}: {} pending approval(s), {} sent yesterday, {} ambiguous",
        digest.day, digest.pending.total, digest.rates.sent, digest.ambiguous.total
    );
    Ok((blocks, text))
}

async fn exec(app: &App, sql: &str, values: Vec<Value>) -> anyhow::Result<u64> {
    Ok(app
        .db
        .execute_raw(Statement::from_sql_and_values(
            app.db.get_database_backend(),
            sql,
            values,
        ))
        .await?
        .rows_affected())
}

async fn claimed(app: &App, day: &str) -> anyhow::Result<bool> {
    #[derive(sea_orm::FromQueryResult)]
    struct N {
        n: i64,
    }
    use sea_orm::FromQueryResult;
    let n = N::find_by_statement(Statement::from_sql_and_values(
        app.db.get_database_backend(),
        "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM digests WHERE day = $1",
        [Value::from(day.to_string())],
    ))
    .one(&app.db)
    .await?
    .map_or(0, |r| r.n);
    Ok(n > 0)
}

/// Posts today's digest if it is due at `now` and nobody has yet.
pub async fn tick(app: &App, now: DateTime<Utc>) -> anyhow::Result<Tick> {
    let Some(channel) = app.settings.slack.digest_channel.clone() else {
        return Ok(Tick::NotConfigured);
    };
    // Observed every tick, so a crossing's time is known to the minute.
    stats::refresh_cold_marks(&app.db, now).await?;
    let s = &app.settings.digest;
    let local = now.with_timezone(&s.timezone);
    if local.time() < s.time {
        return Ok(Tick::NotYet);
    }
    let day = local.date_naive();
    let key = day.to_string();
    // Cheap check first: after today's post every tick ends here.
    if claimed(app, &key).await? {
        return Ok(Tick::AlreadyPosted);
    }
    // Rendered before the claim: a layout error must not burn the day.
    let digest = collect(app, now).await?;
    let (blocks, text) = render(app, &digest)?;
    let won = exec(
        app,
        "INSERT INTO digests (day, channel, claimed_at) VALUES ($1, $2, $3) \
         ON CONFLICT (day) DO NOTHING",
        vec![
            Value::from(key.clone()),
            Value::from(channel.clone()),
            Value::from(now),
        ],
    )
    .await?
        == 1;
    if !won {
        return Ok(Tick::AlreadyPosted);
    }
    let req = SlackApiChatPostMessageRequest::new(
        channel.clone().into(),
        SlackMessageContent::new()
            .with_text(text)
            .with_blocks(blocks),
    );
    if let Err(e) = app.slack.post_message(req).await {
        // Release the claim so the next tick (here or elsewhere) retries.
        exec(
            app,
            "DELETE FROM digests WHERE day = $1",
            vec![Value::from(key)],
        )
        .await?;
        if matches!(e.code(), Some("not_in_channel" | "channel_not_found")) {
            tracing::error!(%channel, "cannot post the daily digest: invite the bot with /invite @warmline");
        }
        return Err(anyhow::Error::new(e).context("posting the daily digest"));
    }
    tracing::info!(%day, %channel, "posted the daily digest");
    Ok(Tick::Posted { day })
}

/// The periodic job: every minute, [`tick`] posts the digest once it is due.
pub struct DigestJob;

#[async_trait::async_trait]
impl crate::jobs::Periodic for DigestJob {
    fn name(&self) -> &'static str {
        "daily_digest"
    }

    fn period(&self, app: &App) -> Result<StdDuration, &'static str> {
        if app.settings.slack.digest_channel.is_none() {
            return Err("no WARMLINE_DIGEST_CHANNEL: the daily digest is off");
        }
        Ok(StdDuration::from_secs(60))
    }

    async fn tick(&self, app: &App, now: DateTime<Utc>) -> anyhow::Result<()> {
        tick(app, now).await.map(|_| ())
    }
}
