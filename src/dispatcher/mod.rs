//! The dispatcher: every message warmline sends, on any channel, goes
//! through here. It drains the delivery ledger (`messages`) with workers that
//! claim under a lease, re-check consent at the last moment, call providers
//! under their rate limits, and record every outcome.
//!
//! Concurrency and shutdown, in brief:
//! - One supervisor task per process owns the workers. Each provider gets
//!   `workers_per_provider` worker loops, so one provider's rate limit never
//!   holds another's messages.
//! - A worker sleeps when it finds nothing due, and wakes on [`Dispatcher::wake`]
//!   (same process), on PostgreSQL `NOTIFY warmline_dispatch` (another
//!   process enqueued), or after `poll_interval_ms`.
//! - The supervisor heartbeats for the process, recovers the messages of
//!   dead workers, promotes scheduled messages, and samples queue metrics.
//! - On shutdown a worker finishes the batch in hand (its provider calls and
//!   their outcomes) and stops; then the supervisor retires the heartbeat. A
//!   campaign is never "complete" with messages unsent, because completion
//!   is read from the ledger, not stored.

pub mod alerts;
pub mod breaker;
pub mod checks;
pub mod claim;
pub mod ledger;
pub mod limiter;
pub mod recipient;
pub mod retry;
pub mod settings;
pub mod worker;

pub use settings::{CapsSettings, DispatcherSettings, QuietHoursSettings, Window};

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use sea_orm::{DatabaseConnection, FromQueryResult, Statement, Value};
use tokio::sync::Notify;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{domain::MessageState, providers::Registry, settings::Settings};

/// A provider pushed back further than this is not claimed for at all.
const LONG_HOLD: Duration = Duration::from_secs(5);

/// A handle on the dispatcher, cheap to clone.
#[derive(Clone)]
pub struct Dispatcher(Arc<Inner>);

struct Inner {
    ctx: worker::Context,
    registry: Registry,
    wake: Notify,
    /// PostgreSQL URL for LISTEN, when on PostgreSQL.
    listen_url: Option<String>,
}

impl Dispatcher {
    pub fn new(db: DatabaseConnection, registry: Registry, settings: &Settings) -> Self {
        use secrecy::ExposeSecret;
        let listen_url = crate::settings::is_postgres_url(&settings.database).then(|| {
            settings
                .database
                .connection_url()
                .expose_secret()
                .to_string()
        });
        Self(Arc::new(Inner {
            ctx: worker::Context {
                limiter: limiter::RateLimiter::for_database(&db),
                db,
                settings: settings.dispatcher.clone(),
                caps: settings.caps.clone(),
                quiet: settings.quiet_hours.clone(),
                worker_id: format!("w-{}", uuid::Uuid::new_v4().simple()),
                alerts: Arc::new(alerts::LogAlerts),
            },
            registry,
            wake: Notify::new(),
            listen_url,
        }))
    }

    /// The same dispatcher reporting what needs a person through `alerts`.
    /// Call before `start`.
    pub fn with_alerts(self, alerts: Arc<dyn alerts::Alerts>) -> Self {
        match Arc::try_unwrap(self.0) {
            Ok(mut inner) => {
                inner.ctx.alerts = alerts;
                Self(Arc::new(inner))
            }
            Err(shared) => Self(shared),
        }
    }

    pub fn registry(&self) -> &Registry {
        &self.0.registry
    }

    pub fn worker_id(&self) -> &str {
        &self.0.ctx.worker_id
    }

    /// Wakes idle workers of this process (call after enqueuing).
    pub fn wake(&self) {
        self.0.wake.notify_waiters();
    }

    /// One round of upkeep: heartbeat, recover dead workers' messages,
    /// promote scheduled ones.
    pub async fn upkeep(&self, first: bool) -> anyhow::Result<()> {
        let ctx = &self.0.ctx;
        let now = crate::clock::now();
        claim::heartbeat(&ctx.db, &ctx.worker_id, now).await?;
        // On SQLite one process owns the database, so at start-up every
        // `sending` row is an orphan of a previous run.
        let single = first && !crate::db::is_postgres(&ctx.db);
        let r = claim::recover(
            &ctx.db,
            &self.0.registry,
            &ctx.worker_id,
            ctx.settings.lease_secs,
            single,
            now,
        )
        .await?;
        if !r.ambiguous_ids.is_empty() {
            let items = r
                .ambiguous_ids
                .iter()
                .map(|id| alerts::Attention::Ambiguous {
                    message_id: id.clone(),
                })
                .collect();
            ctx.alerts.attention(items).await;
        }
        let (queued, held) = ledger::promote_scheduled(
            &ctx.db,
            chrono::Duration::minutes(ctx.settings.stale_grace_minutes),
            now,
        )
        .await?;
        if r.requeued > 0 || queued > 0 {
            self.wake();
        }
        if held > 0 {
            tracing::warn!(
                held,
                "scheduled messages came due while warmline was down; they wait for confirmation"
            );
        }
        Ok(())
    }

    /// One claim-and-send pass over every provider. Returns messages claimed.
    pub async fn run_once(&self) -> anyhow::Result<usize> {
        let mut total = 0;
        for provider in self.0.registry.all() {
            total += worker::process_once(&self.0.ctx, provider).await?;
        }
        Ok(total)
    }

    /// Runs passes until nothing is due (tests and benchmarks).
    pub async fn drain(&self) -> anyhow::Result<()> {
        self.upkeep(false).await?;
        while self.run_once().await? > 0 {}
        Ok(())
    }

    /// Starts the supervisor and workers on `tracker`; they stop when
    /// `shutdown` is cancelled, after finishing the batch in hand.
    pub fn start(&self, tracker: &TaskTracker, shutdown: CancellationToken) {
        let this = self.clone();
        let tracker2 = tracker.clone();
        tracker.spawn(async move {
            if let Err(e) = this.upkeep(true).await {
                tracing::error!(error = format!("{e:#}"), "dispatcher start-up upkeep failed");
            }
            let workers = TaskTracker::new();
            for provider in this.0.registry.all() {
                for _ in 0..this.0.ctx.settings.workers_per_provider.max(1) {
                    let (this, provider, shutdown) = (this.clone(), provider.clone(), shutdown.clone());
                    workers.spawn(async move { this.worker_loop(provider, shutdown).await });
                }
            }
            if let Some(url) = this.0.listen_url.clone() {
                let (this, shutdown) = (this.clone(), shutdown.clone());
                tracker2.spawn(async move { this.listen(url, shutdown).await });
            }
            workers.close();
            let period = Duration::from_secs(this.0.ctx.settings.heartbeat_secs.max(1));
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(period) => {
                        if let Err(e) = this.upkeep(false).await {
                            tracing::error!(error = format!("{e:#}"), "dispatcher upkeep failed");
                        }
                        if let Err(e) = this.sample_metrics().await {
                            tracing::debug!(error = format!("{e:#}"), "queue metrics sampling failed");
                        }
                    }
                }
            }
            workers.wait().await;
            if let Err(e) = claim::retire(&this.0.ctx.db, &this.0.ctx.worker_id).await {
                tracing::warn!(error = format!("{e:#}"), "could not retire the dispatcher heartbeat");
            }
            tracing::info!("dispatcher stopped");
        });
    }

    /// How long the provider's rate schedule is pushed back beyond a
    /// couple of seconds, if it is.
    async fn provider_hold(&self, provider: &dyn crate::providers::Provider) -> Option<Duration> {
        self.0.ctx.rate_of(provider)?;
        match self.0.ctx.limiter.pending_wait(provider.name()).await {
            Ok(wait) if wait > LONG_HOLD => Some(wait),
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(
                    error = format!("{e:#}"),
                    "could not read the rate-limit schedule"
                );
                None
            }
        }
    }

    async fn worker_loop(
        &self,
        provider: Arc<dyn crate::providers::Provider>,
        shutdown: CancellationToken,
    ) {
        let poll = Duration::from_millis(self.0.ctx.settings.poll_interval_ms.max(10));
        let mut errors = 0u32;
        while !shutdown.is_cancelled() {
            // A provider that told us to wait long (a quota until midnight,
            // a long Retry-After): claim nothing meanwhile, so no messages
            // sit marked `sending` for hours, and shutdown is not held.
            if let Some(hold) = self.provider_hold(provider.as_ref()).await {
                tokio::select! {
                    _ = tokio::time::sleep(hold.min(Duration::from_secs(60))) => {}
                    _ = shutdown.cancelled() => {}
                }
                continue;
            }
            // Register for a wake-up before looking, so an enqueue between
            // the claim finding nothing and the wait is not missed.
            let notified = self.0.wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match worker::process_once(&self.0.ctx, &provider).await {
                Ok(0) => {
                    errors = 0;
                    tokio::select! {
                        _ = &mut notified => {}
                        _ = tokio::time::sleep(poll) => {}
                        _ = shutdown.cancelled() => {}
                    }
                }
                Ok(_) => errors = 0,
                Err(e) => {
                    errors += 1;
                    tracing::error!(
                        provider = provider.name(),
                        error = format!("{e:#}"),
                        "dispatcher pass failed"
                    );
                    let backoff = Duration::from_millis(200 * u64::from(errors.min(25)));
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.cancelled() => {}
                    }
                }
            }
        }
    }

    /// Wakes this process's workers when another process enqueues.
    async fn listen(&self, url: String, shutdown: CancellationToken) {
        use sea_orm::sqlx::postgres::PgListener;
        let mut listener = match PgListener::connect(&url).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "cannot LISTEN for new messages; falling back to polling");
                return;
            }
        };
        if let Err(e) = listener.listen("warmline_dispatch").await {
            tracing::warn!(error = %e, "cannot LISTEN for new messages; falling back to polling");
            return;
        }
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                n = listener.recv() => match n {
                    Ok(_) => self.wake(),
                    Err(e) => {
                        tracing::debug!(error = %e, "LISTEN connection interrupted");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
            }
        }
    }

    /// Queue depth and the age of the oldest due message, per provider.
    pub async fn sample_metrics(&self) -> anyhow::Result<()> {
        #[derive(FromQueryResult)]
        struct Row {
            provider: Option<String>,
            depth: i64,
            oldest: Option<chrono::DateTime<Utc>>,
        }
        let db = &self.0.ctx.db;
        let now = crate::clock::now();
        let rows = Row::find_by_statement(Statement::from_sql_and_values(
            db.get_database_backend(),
            format!(
                "SELECT provider, CAST(COUNT(*) AS BIGINT) AS depth, MIN(next_attempt_at) AS oldest FROM messages \
                 WHERE state IN ({}) AND next_attempt_at <= $1 GROUP BY provider",
                MessageState::sql_list(&[
                    MessageState::Queued,
                    MessageState::Deferred,
                    MessageState::Sending
                ])
            ),
            [Value::from(now)],
        ))
        .all(db)
        .await?;
        for p in self.0.registry.all() {
            let row = rows
                .iter()
                .find(|r| r.provider.as_deref() == Some(p.name()));
            let depth = row.map_or(0, |r| r.depth);
            let age = row
                .and_then(|r| r.oldest)
                .map_or(0.0, |o| (now - o).num_milliseconds().max(0) as f64 / 1000.0);
            metrics::gauge!("dispatcher_queue_depth", "provider" => p.name().to_string())
                .set(depth as f64);
            metrics::gauge!("dispatcher_oldest_due_age_seconds", "provider" => p.name().to_string()).set(age);
        }
        Ok(())
    }
}
