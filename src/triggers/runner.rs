//! The trigger runner: one [`tick`] detects new crossings and sends every
//! due step; [`start`] runs ticks every `[triggers] interval_secs` until
//! shutdown.
//!
//! A step's life, each transition a guarded `UPDATE` on `trigger_runs`:
//! 1. **claim** — `next_step_at` is pushed [`CLAIM_LEASE`] ahead `WHERE
//!    state = 'active' AND step = <step> AND next_step_at <= now`; only one
//!    runner's claim matches, the others skip the run;
//! 2. **stop**, if the contact replied since the run started, opted out or
//!    was suppressed (or is gone);
//! 3. **submit** through [`crate::approval::submit`], unless a message with
//!    the step's source is already in the ledger (a crash after an earlier
//!    submit): then the step counts as sent and is not submitted again;
//! 4. **advance** `WHERE step = <step> AND state = 'active'`: the next step
//!    becomes due after the cadence's gap from now (a late tick keeps the
//!    spacing between messages), or the run is completed.
//!
//! A submit that fails for a passing reason (database, no provider yet)
//! leaves the run claimed: it is retried when the lease runs out, with the
//! same source. One the approval engine refuses for this send itself (no
//! address, a template that does not render) stops the run, `send_failed`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, FromQueryResult, Statement, Value};

use super::{Kind, TriggerSettings, address_column, cold, monthly, onboarding, step_source};
use crate::{
    approval::{Content, Schedule, SendRequest, SubmitError, Submitted},
    state::App,
};

/// How long a claimed step is left alone before another tick retries it.
pub const CLAIM_LEASE: chrono::Duration = chrono::Duration::minutes(10);

/// Due runs read per query.
const BATCH: i64 = 500;

/// What one tick did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TickStats {
    /// New runs per kind (crossings detected).
    pub started_cold: u64,
    pub started_onboarding: u64,
    pub started_monthly: u64,
    /// Steps handed to the approval policy, by outcome.
    pub queued: u64,
    pub awaiting_approval: u64,
    /// Steps found already in the ledger (submitted before a crash).
    pub already_submitted: u64,
    pub completed: u64,
    pub stopped_replied: u64,
    pub stopped_opted_out: u64,
    /// Suppressed address, contact gone, unknown trigger.
    pub stopped_other: u64,
    /// Steps whose submit failed; retried after [`CLAIM_LEASE`].
    pub errors: u64,
}

impl TickStats {
    pub fn started(&self) -> u64 {
        self.started_cold + self.started_onboarding + self.started_monthly
    }
}

/// The periodic job: [`tick`] every `[triggers] interval_secs`.
pub struct TriggerJob;

#[async_trait::async_trait]
impl crate::jobs::Periodic for TriggerJob {
    fn name(&self) -> &'static str {
        "triggers"
    }

    fn period(&self, app: &App) -> Result<Duration, &'static str> {
        let settings = &app.settings.triggers;
        if !settings.enabled {
            return Err("triggers are disabled ([triggers] enabled = false)");
        }
        Ok(Duration::from_secs(settings.interval_secs.max(1)))
    }

    async fn tick(&self, app: &App, now: DateTime<Utc>) -> anyhow::Result<()> {
        let stats = tick(app, now).await?;
        if stats != TickStats::default() {
            tracing::info!(?stats, "trigger tick");
        }
        Ok(())
    }
}

/// Detects new crossings at `now`, then sends every step due at `now`.
pub async fn tick(app: &App, now: DateTime<Utc>) -> anyhow::Result<TickStats> {
    let mut stats = TickStats::default();
    detect(&app.db, &app.settings.triggers, now, &mut stats).await?;
    run_due(app, now, &mut stats).await?;
    Ok(stats)
}

/// The configured channel and the contact column holding its address.
fn channel(settings: &TriggerSettings) -> anyhow::Result<(&str, &'static str)> {
    let channel = settings.channel.as_str();
    let address = address_column(settings.channel).ok_or_else(|| {
        anyhow::anyhow!("[triggers] channel '{channel}' is not one triggers can send on")
    })?;
    Ok((channel, address))
}

/// One `INSERT … SELECT … ON CONFLICT DO NOTHING` per kind: set-based (one
/// statement whatever the number of contacts) and idempotent (the unique
/// index holds each crossing once, across processes too).
pub async fn detect(
    db: &impl ConnectionTrait,
    settings: &TriggerSettings,
    now: DateTime<Utc>,
    stats: &mut TickStats,
) -> anyhow::Result<()> {
    let backend = db.get_database_backend();
    let (channel, address) = channel(settings)?;
    let window = chrono::Duration::days(i64::from(settings.onboarding_window_days));
    for kind in Kind::ALL {
        let base = [Value::from(now), Value::from(channel.to_string())];
        let (sql, extra) = match kind {
            Kind::Onboarding => (
                onboarding::detect_sql(address),
                vec![Value::from(now - window)],
            ),
            Kind::Cold => (
                cold::detect_sql(backend, address),
                vec![Value::from(cold::THRESHOLD), Value::from(now - cold::QUIET)],
            ),
            Kind::Monthly => (
                monthly::detect_sql(address),
                vec![
                    Value::from(monthly::THRESHOLD),
                    Value::from(monthly::crossing_key(now)),
                ],
            ),
        };
        let values: Vec<Value> = base.into_iter().chain(extra).collect();
        let started = db
            .execute_raw(Statement::from_sql_and_values(backend, sql, values))
            .await?
            .rows_affected();
        match kind {
            Kind::Cold => stats.started_cold += started,
            Kind::Onboarding => stats.started_onboarding += started,
            Kind::Monthly => stats.started_monthly += started,
        }
    }
    Ok(())
}

#[derive(Debug, FromQueryResult)]
struct DueRun {
    id: i64,
    contact_id: i64,
    trigger: String,
    crossing: String,
    step: i32,
    created_at: DateTime<Utc>,
    first_name: Option<String>,
    last_name: Option<String>,
    address: Option<String>,
}

/// What to do with a claimed run.
enum Verdict {
    Stop(&'static str),
    Send,
}

async fn run_due(app: &App, now: DateTime<Utc>, stats: &mut TickStats) -> anyhow::Result<()> {
    let db = &app.db;
    let backend = db.get_database_backend();
    let (_, address) = channel(&app.settings.triggers)?;
    loop {
        // Every run read here is claimed (its `next_step_at` moves past
        // `now`) or stopped below, so the next read sees new ones only.
        let runs = DueRun::find_by_statement(Statement::from_sql_and_values(
            backend,
            format!(
                "SELECT r.id, r.contact_id, r.\"trigger\", r.crossing, r.step, r.created_at, \
                 c.first_name, c.last_name, {address} AS address \
                 FROM trigger_runs r LEFT JOIN contacts c ON c.id = r.contact_id \
                 WHERE r.state = 'active' AND r.next_step_at <= $1 \
                 ORDER BY r.next_step_at, r.id LIMIT $2"
            ),
            [Value::from(now), Value::from(BATCH)],
        ))
        .all(db)
        .await?;
        let n = runs.len();
        for run in runs {
            if !claim(app, &run, now).await? {
                continue;
            }
            if let Err(e) = step(app, &run, now, stats).await {
                stats.errors += 1;
                if is_permanent(&e) {
                    // Retrying cannot help (no address, a template that does
                    // not render for this contact, …): stop rather than fail
                    // again every lease.
                    stop(app, &run, "send_failed", now).await?;
                    stats.stopped_other += 1;
                }
                tracing::error!(
                    run = run.id,
                    trigger = %run.trigger,
                    step = run.step,
                    permanent = is_permanent(&e),
                    error = format!("{e:#}"),
                    "trigger step failed"
                );
            }
        }
        if (n as i64) < BATCH {
            return Ok(());
        }
    }
}

/// Whether a failed submit would fail the same way again: the approval
/// engine refused this send itself (anything but a missing provider, which
/// configuration fixes). Database and Slack errors are transient.
fn is_permanent(e: &SubmitError) -> bool {
    !matches!(
        e,
        SubmitError::NoProvider(_) | SubmitError::Infrastructure(_)
    )
}

/// Takes the run for this tick; false when another runner has it (or it
/// moved on).
async fn claim(app: &App, run: &DueRun, now: DateTime<Utc>) -> anyhow::Result<bool> {
    let res = app
        .db
        .execute_raw(Statement::from_sql_and_values(
            app.db.get_database_backend(),
            "UPDATE trigger_runs SET next_step_at = $1, updated_at = $2 \
             WHERE id = $3 AND state = 'active' AND step = $4 AND next_step_at <= $2",
            [
                Value::from(now + CLAIM_LEASE),
                Value::from(now),
                Value::from(run.id),
                Value::from(run.step),
            ],
        ))
        .await?;
    Ok(res.rows_affected() == 1)
}

/// Takes one step of a claimed run. Its own database work fails as
/// [`SubmitError::Infrastructure`], so only the approval engine's refusals
/// read as permanent.
async fn step(
    app: &App,
    run: &DueRun,
    now: DateTime<Utc>,
    stats: &mut TickStats,
) -> Result<(), SubmitError> {
    let Some(kind) = Kind::parse(&run.trigger) else {
        stop(app, run, "unknown_trigger", now).await?;
        stats.stopped_other += 1;
        return Ok(());
    };
    let steps = kind.steps();
    let index = usize::try_from(run.step).unwrap_or(usize::MAX);
    let Some(this) = steps.get(index) else {
        // A run past its last step that is still active: finish it.
        complete_or_advance(app, run, kind, now, stats).await?;
        return Ok(());
    };
    match verdict(app, run).await? {
        Verdict::Stop(reason) => {
            if stop(app, run, reason, now).await? {
                match reason {
                    "replied" => stats.stopped_replied += 1,
                    "opted_out" => stats.stopped_opted_out += 1,
                    _ => stats.stopped_other += 1,
                }
            }
            return Ok(());
        }
        Verdict::Send => {}
    }
    let channel = app.settings.triggers.channel;
    let Some(template) = this.template_for(channel) else {
        // No copy for this channel: nothing a retry could fix.
        if stop(app, run, "no_template_for_channel", now).await? {
            stats.stopped_other += 1;
        }
        return Ok(());
    };
    let source = step_source(kind, run.contact_id, &run.crossing, index);
    if already_in_ledger(app, run.contact_id, &source).await? {
        stats.already_submitted += 1;
    } else {
        let submitted = crate::approval::submit(
            app,
            SendRequest {
                name: kind.send_name(index, &who(run)),
                channel,
                requested_by: kind.requested_by(),
                recipients: vec![run.contact_id],
                content: Content::Template {
                    name: template.to_string(),
                },
                variables: serde_json::json!({}),
                schedule: Schedule::Now,
                source,
            },
        )
        .await?;
        match submitted {
            Submitted::Queued { .. } => stats.queued += 1,
            Submitted::AwaitingApproval { .. } => stats.awaiting_approval += 1,
        }
    }
    Ok(complete_or_advance(app, run, kind, now, stats).await?)
}

/// Why a run must stop before its next step, if it must.
async fn verdict(app: &App, run: &DueRun) -> anyhow::Result<Verdict> {
    let db = &app.db;
    let Some(address) = run.address.as_deref().filter(|a| !a.is_empty()) else {
        // Erased, or the address was removed.
        return Ok(Verdict::Stop("no_address"));
    };
    let replied = crate::db::count(
        db,
        "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM interactions \
         WHERE contact_id = $1 AND direction = 'inbound' AND occurred_at > $2",
        vec![Value::from(run.contact_id), Value::from(run.created_at)],
    )
    .await?;
    if replied > 0 {
        return Ok(Verdict::Stop("replied"));
    }
    let channel = app.settings.triggers.channel.as_str();
    let consent = crate::consent::current(db, run.contact_id).await?;
    if !consent.get(channel).is_some_and(|c| c.granted) {
        return Ok(Verdict::Stop("opted_out"));
    }
    let suppressed = crate::db::count(
        db,
        "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM suppressions WHERE channel = $1 AND address = $2",
        vec![
            Value::from(channel.to_string()),
            Value::from(address.to_lowercase()),
        ],
    )
    .await?;
    if suppressed > 0 {
        return Ok(Verdict::Stop("suppressed"));
    }
    Ok(Verdict::Send)
}

/// True when the step's send already reached the ledger (an earlier tick
/// submitted it and crashed before advancing).
async fn already_in_ledger(app: &App, contact_id: i64, source: &str) -> anyhow::Result<bool> {
    let n = crate::db::count(
        &app.db,
        "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM messages WHERE contact_id = $1 AND source = $2",
        vec![Value::from(contact_id), Value::from(source.to_string())],
    )
    .await?;
    Ok(n > 0)
}

/// Stops an active run; false if it was no longer active (e.g. the inbound
/// path stopped it first).
async fn stop(app: &App, run: &DueRun, reason: &str, now: DateTime<Utc>) -> anyhow::Result<bool> {
    let res = app
        .db
        .execute_raw(Statement::from_sql_and_values(
            app.db.get_database_backend(),
            "UPDATE trigger_runs SET state = 'stopped', stopped_reason = $1, next_step_at = NULL, \
             updated_at = $2 WHERE id = $3 AND state = 'active'",
            [
                Value::from(reason.to_string()),
                Value::from(now),
                Value::from(run.id),
            ],
        ))
        .await?;
    Ok(res.rows_affected() == 1)
}

/// Moves the run past its current step: the next one due after the
/// cadence's gap, or completed after the last.
async fn complete_or_advance(
    app: &App,
    run: &DueRun,
    kind: Kind,
    now: DateTime<Utc>,
    stats: &mut TickStats,
) -> anyhow::Result<()> {
    let steps = kind.steps();
    let index = usize::try_from(run.step).unwrap_or(usize::MAX);
    let next = index.saturating_add(1);
    let (state, next_at) = match (steps.get(index), steps.get(next)) {
        (Some(this), Some(following)) => (
            "active",
            Some(now + chrono::Duration::days(following.day - this.day)),
        ),
        _ => ("completed", None),
    };
    let new_step = i32::try_from(next.min(steps.len())).unwrap_or(i32::MAX);
    let res = app
        .db
        .execute_raw(Statement::from_sql_and_values(
            app.db.get_database_backend(),
            "UPDATE trigger_runs SET step = $1, state = $2, next_step_at = $3, updated_at = $4 \
             WHERE id = $5 AND step = $6 AND state = 'active'",
            [
                Value::from(new_step),
                Value::from(state),
                Value::from(next_at),
                Value::from(now),
                Value::from(run.id),
                Value::from(run.step),
            ],
        ))
        .await?;
    if res.rows_affected() == 1 && state == "completed" {
        stats.completed += 1;
    }
    Ok(())
}

/// How approvers see the contact: their name, else the masked address.
fn who(run: &DueRun) -> String {
    let address = run.address.as_deref();
    let (email, phone) = match address {
        Some(a) if a.contains('@') => (Some(a), None),
        other => (None, other),
    };
    crate::contacts::display::display_name(
        run.contact_id,
        run.first_name.as_deref(),
        run.last_name.as_deref(),
        email,
        phone,
    )
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use sea_orm::{ActiveValue::Set, DatabaseConnection, EntityTrait};

    use super::*;
    use crate::consent::Source;

    async fn db() -> DatabaseConnection {
        use sea_orm_migration::MigratorTrait;
        let db = crate::db::connect("sqlite::memory:", 1).await.unwrap();
        crate::migrations::Migrator::up(&db, None).await.unwrap();
        db
    }

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, 0).unwrap()
    }

    /// A contact with email consent, `warmth`, last in touch at `last`,
    /// created `age_days` before [`t0`].
    async fn contact(
        db: &DatabaseConnection,
        warmth: f64,
        last: Option<DateTime<Utc>>,
        age_days: i64,
    ) -> i64 {
        use crate::db::entities::contacts;
        let created = t0() - chrono::Duration::days(age_days);
        let id = contacts::Entity::insert(contacts::ActiveModel {
            email: Set(Some(format!(
                "{}@example.com",
                uuid::Uuid::new_v4().simple()
            ))),
            status: Set("active".into()),
            tags: Set("[]".into()),
            metadata: Set("{}".into()),
            warmth: Set(warmth),
            last_interaction_at: Set(last),
            created_at: Set(created),
            updated_at: Set(created),
            ..Default::default()
        })
        .exec(db)
        .await
        .unwrap()
        .last_insert_id;
        crate::consent::record(db, id, "email", true, Source::Api, None, None)
            .await
            .unwrap();
        id
    }

    async fn detect_at(db: &DatabaseConnection, now: DateTime<Utc>) -> TickStats {
        let mut stats = TickStats::default();
        detect(db, &TriggerSettings::default(), now, &mut stats)
            .await
            .unwrap();
        stats
    }

    #[derive(Debug, FromQueryResult)]
    struct Run {
        contact_id: i64,
        trigger: String,
        crossing: String,
    }

    async fn runs(db: &DatabaseConnection) -> Vec<(i64, String, String)> {
        Run::find_by_statement(Statement::from_string(
            db.get_database_backend(),
            "SELECT contact_id, \"trigger\", crossing FROM trigger_runs ORDER BY id",
        ))
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.contact_id, r.trigger, r.crossing))
        .collect()
    }

    #[tokio::test]
    async fn each_kind_is_detected_once_with_its_crossing_key() {
        // Arrange
        let db = db().await;
        // Microseconds, truncated in the key; .507891 rounds up in SQLite's
        // own date functions, which the key must not use.
        let last = Utc.with_ymd_and_hms(2026, 9, 1, 8, 30, 15).unwrap()
            + chrono::Duration::microseconds(507_891);
        let cold = contact(&db, 10.0, Some(last), 100).await;
        let whole_second = t0() - chrono::Duration::days(30);
        let cold_too = contact(&db, 10.0, Some(whole_second), 100).await;
        let new = contact(&db, 0.0, None, 2).await;
        let warm = contact(&db, 60.0, Some(t0()), 100).await;
        let lukewarm = contact(&db, 40.0, Some(t0()), 100).await;

        // Act
        let first = detect_at(&db, t0()).await;
        let again = detect_at(&db, t0() + chrono::Duration::hours(1)).await;

        // Assert
        assert_eq!(
            (
                first.started_cold,
                first.started_onboarding,
                first.started_monthly
            ),
            (2, 1, 1)
        );
        assert_eq!(again.started(), 0, "a crossing fires once");
        let runs = runs(&db).await;
        assert!(runs.contains(&(cold, "cold".into(), "2026-09-01T08:30:15.507Z".into())));
        assert_eq!(cold::crossing_key(last), "2026-09-01T08:30:15.507Z");
        assert!(runs.contains(&(cold_too, "cold".into(), "2026-10-03T09:00:00.000Z".into())));
        assert_eq!(cold::crossing_key(whole_second), "2026-10-03T09:00:00.000Z");
        assert!(runs.contains(&(new, "onboarding".into(), "1".into())));
        assert!(runs.contains(&(warm, "monthly".into(), "2026-11".into())));
        assert!(
            runs.iter().all(|r| r.0 != lukewarm),
            "25..=50 starts nothing"
        );
    }

    #[tokio::test]
    async fn only_consented_unsuppressed_addressed_contacts_without_a_running_sequence() {
        // Arrange: five cold contacts, four of them not eligible.
        let db = db().await;
        let last = Some(t0() - chrono::Duration::days(90));
        let ok = contact(&db, 5.0, last, 200).await;
        let revoked = contact(&db, 5.0, last, 200).await;
        crate::consent::record(
            &db,
            revoked,
            "email",
            false,
            Source::ReplyKeyword,
            None,
            None,
        )
        .await
        .unwrap();
        let only_sms = contact(&db, 5.0, last, 200).await;
        crate::consent::record(&db, only_sms, "email", false, Source::Api, None, None)
            .await
            .unwrap();
        crate::consent::record(&db, only_sms, "sms", true, Source::Api, None, None)
            .await
            .unwrap();
        let suppressed = contact(&db, 5.0, last, 200).await;
        db.execute_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            "INSERT INTO suppressions (contact_id, channel, address, reason, source, created_at) \
             SELECT id, 'email', LOWER(email), 'hard_bounce', 'test', $1 FROM contacts WHERE id = $2",
            [Value::from(t0()), Value::from(suppressed)],
        ))
        .await
        .unwrap();
        let busy = contact(&db, 5.0, last, 200).await;
        db.execute_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            "INSERT INTO trigger_runs (contact_id, \"trigger\", crossing, step, state, next_step_at, created_at, updated_at) \
             VALUES ($1, 'onboarding', '1', 1, 'active', $2, $2, $2)",
            [Value::from(busy), Value::from(t0())],
        ))
        .await
        .unwrap();

        // Act
        let stats = detect_at(&db, t0()).await;

        // Assert
        assert_eq!(stats.started(), 1);
        let cold: Vec<i64> = runs(&db)
            .await
            .into_iter()
            .filter(|r| r.1 == "cold")
            .map(|r| r.0)
            .collect();
        assert_eq!(cold, [ok]);
    }

    #[tokio::test]
    async fn a_new_interaction_then_cold_again_is_a_new_crossing() {
        // Arrange: cold once, detected.
        let db = db().await;
        let first = t0() - chrono::Duration::days(60);
        let c = contact(&db, 10.0, Some(first), 200).await;
        detect_at(&db, t0()).await;
        db.execute_unprepared("UPDATE trigger_runs SET state = 'completed', next_step_at = NULL")
            .await
            .unwrap();
        assert_eq!(detect_at(&db, t0()).await.started(), 0, "same crossing");

        // Act: an interaction warms it, and it cools down again.
        let second = t0() + chrono::Duration::days(1);
        db.execute_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            "UPDATE contacts SET warmth = 40, last_interaction_at = $1 WHERE id = $2",
            [Value::from(second), Value::from(c)],
        ))
        .await
        .unwrap();
        let warm = detect_at(&db, second).await;
        db.execute_unprepared("UPDATE contacts SET warmth = 20")
            .await
            .unwrap();
        let cold_again = detect_at(&db, second + chrono::Duration::days(40)).await;

        // Assert
        assert_eq!(warm.started_cold, 0);
        assert_eq!(cold_again.started_cold, 1);
        let keys: Vec<String> = runs(&db)
            .await
            .into_iter()
            .filter(|r| r.1 == "cold")
            .map(|r| r.2)
            .collect();
        assert_eq!(
            keys,
            [cold::crossing_key(first), cold::crossing_key(second)]
        );
    }

    #[tokio::test]
    async fn a_low_score_right_after_an_interaction_is_not_cold_yet() {
        // Arrange: touched three days ago, still below 25 (a thin
        // relationship, or a reply that stopped a revival).
        let db = db().await;
        let c = contact(&db, 10.0, Some(t0() - chrono::Duration::days(3)), 200).await;

        // Act
        let now = detect_at(&db, t0()).await;
        let after_a_quiet_week = detect_at(&db, t0() + chrono::Duration::days(4)).await;

        // Assert
        assert_eq!(now.started_cold, 0);
        assert_eq!(after_a_quiet_week.started_cold, 1);
        assert_eq!(runs(&db).await[0].0, c);
    }

    #[tokio::test]
    async fn onboarding_is_only_for_contacts_inside_the_window() {
        let db = db().await;
        let inside = contact(&db, 0.0, None, 6).await;
        let _outside = contact(&db, 0.0, None, 8).await;

        let stats = detect_at(&db, t0()).await;

        assert_eq!(stats.started_onboarding, 1);
        assert_eq!(runs(&db).await, [(inside, "onboarding".into(), "1".into())]);
    }

    #[tokio::test]
    async fn a_channel_triggers_cannot_send_on_is_an_error() {
        let db = db().await;
        let settings = TriggerSettings {
            // Instagram handles are not stored on contacts: nothing to send to.
            channel: crate::domain::Channel::Instagram,
            ..Default::default()
        };
        let err = detect(&db, &settings, t0(), &mut TickStats::default())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("instagram"), "{err}");
    }
}
