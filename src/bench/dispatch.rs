//! Dispatcher benchmarks (figures in `docs/benchmarks.md`):
//!
//! - **throughput**: N due messages through claim → last-moment checks →
//!   test provider (no limit, no latency) → recorded outcome, durably
//!   (SQLite WAL with `synchronous=FULL`; PostgreSQL with its default
//!   `synchronous_commit`). Targets: 5,000/s on SQLite, 15,000/s on PostgreSQL.
//! - **latency**: one message at a time, from the start of its enqueue to
//!   the provider call, with the workers idle. Targets: p50 ≤ 3 ms, p99 ≤ 10 ms.
//! - **rate**: N messages through a provider limited to R requests/s: the
//!   most requests in any sliding second must stay ≤ R and the achieved rate
//!   ≥ 95 % of R; with `--instances 2` two dispatchers (two worker ids, one
//!   shared PostgreSQL limit) run at once, as two `serve` processes would.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use chrono::Utc;
use sea_orm::{ConnectionTrait, DatabaseConnection, FromQueryResult, Statement, Value};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    dispatcher::{
        Dispatcher,
        ledger::{self, NewMessage},
    },
    domain::{Channel, MessageKind, MessageState},
    providers::{
        Registry,
        test_provider::{Behaviour, Core, TestProvider},
    },
    settings::Settings,
};

/// A fresh database: a temporary SQLite file, or a new database on the
/// PostgreSQL server `pg_url` names.
pub async fn fresh_database(pg_url: Option<&str>) -> anyhow::Result<(DatabaseConnection, String)> {
    let url = match pg_url {
        Some(base) => {
            let name = format!("warmline_bench_{}", uuid::Uuid::new_v4().simple());
            let admin = crate::db::connect(base, 1).await?;
            admin
                .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                .await?;
            admin.close().await.ok();
            let mut u = url::Url::parse(base)?;
            u.set_path(&format!("/{name}"));
            u.to_string()
        }
        None => {
            let dir = std::env::temp_dir()
                .join(format!("warmline-bench-{}", uuid::Uuid::new_v4().simple()));
            std::fs::create_dir_all(&dir)?;
            format!("sqlite://{}/bench.db?mode=rwc", dir.display())
        }
    };
    let db = crate::db::connect(&url, 8).await?;
    <crate::migrations::Migrator as sea_orm_migration::MigratorTrait>::up(&db, None).await?;
    Ok((db, url))
}

/// Inserts `n` contacts with email consent; returns their ids.
pub async fn seed_contacts(db: &DatabaseConnection, n: usize) -> anyhow::Result<Vec<i64>> {
    let now = Utc::now();
    let backend = db.get_database_backend();
    let mut ids = Vec::with_capacity(n);
    let tag = uuid::Uuid::new_v4().simple().to_string();
    for start in (0..n).step_by(500) {
        let end = (start + 500).min(n);
        let mut values = vec![Value::from(now)];
        let rows: Vec<String> = (start..end)
            .map(|i| {
                values.push(Value::from(format!("bench{i}-{tag}@example.com")));
                format!("(${}, 'active', '[]', 50.0, '{{}}', $1, $1)", values.len())
            })
            .collect();
        #[derive(FromQueryResult)]
        struct Id {
            id: i64,
        }
        let inserted = Id::find_by_statement(Statement::from_sql_and_values(
            backend,
            format!(
                "INSERT INTO contacts (email, status, tags, warmth, metadata, created_at, updated_at) VALUES {} RETURNING id",
                rows.join(",")
            ),
            values,
        ))
        .all(db)
        .await?;
        let batch: Vec<i64> = inserted.into_iter().map(|r| r.id).collect();
        let mut values = vec![Value::from(now)];
        let rows: Vec<String> = batch
            .iter()
            .map(|id| {
                values.push(Value::from(*id));
                format!("(${}, 'email', TRUE, 'bench', $1)", values.len())
            })
            .collect();
        db.execute_raw(Statement::from_sql_and_values(
            backend,
            format!(
                "INSERT INTO consents (contact_id, channel, granted, source, recorded_at) VALUES {}",
                rows.join(",")
            ),
            values,
        ))
        .await?;
        ids.extend(batch);
    }
    Ok(ids)
}

pub fn message_for(source: &str, contact: i64) -> NewMessage {
    NewMessage {
        source: source.into(),
        campaign_id: None,
        contact_id: Some(contact),
        channel: Channel::Email,
        kind: MessageKind::Marketing,
        address: None,
        provider: "test".into(),
        payload: serde_json::json!({"subject": "Checking in", "text": "Hello"}),
        template: None,
        state: MessageState::Queued,
        due_at: Utc::now(),
    }
}

fn bench_settings(pg: bool, workers: usize) -> Settings {
    let mut s = Settings::default();
    s.caps.marketing_per_day = 1_000_000;
    s.caps.marketing_per_week = 1_000_000;
    s.quiet_hours.sms = None;
    s.quiet_hours.whatsapp = None;
    s.dispatcher.workers_per_provider = workers;
    s.dispatcher.batch_size = if pg { 2000 } else { 1000 };
    s.dispatcher.poll_interval_ms = 50;
    if pg {
        s.database.url = Some("postgres://bench".to_string().into());
    }
    s
}

fn dispatcher_with(db: &DatabaseConnection, core: &Arc<Core>, settings: &Settings) -> Dispatcher {
    let mut registry = Registry::new();
    registry.register(Arc::new(TestProvider::in_process(core.clone())));
    // `listen_url` comes from settings; the benches wake workers in process.
    let mut s = settings.clone();
    s.database.url = None;
    Dispatcher::new(db.clone(), registry, &s)
}

async fn count_state(db: &DatabaseConnection, state: &str) -> anyhow::Result<i64> {
    crate::db::count(
        db,
        "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM messages WHERE state = $1",
        vec![Value::from(state)],
    )
    .await
}

pub struct Throughput {
    pub backend: &'static str,
    pub messages: usize,
    pub workers: usize,
    pub elapsed: Duration,
    pub sent: i64,
    pub duplicates: usize,
}

impl std::fmt::Display for Throughput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "dispatch throughput ({}): {} messages in {:.2} s = {:.0} messages/s ({} workers); sent {}, duplicates {}",
            self.backend,
            self.messages,
            self.elapsed.as_secs_f64(),
            self.messages as f64 / self.elapsed.as_secs_f64(),
            self.workers,
            self.sent,
            self.duplicates
        )
    }
}

pub async fn throughput(
    messages: usize,
    workers: usize,
    pg_url: Option<&str>,
) -> anyhow::Result<Throughput> {
    let (db, _) = fresh_database(pg_url).await?;
    let contacts = seed_contacts(&db, messages).await?;
    let msgs: Vec<NewMessage> = contacts
        .iter()
        .map(|c| message_for("bench:throughput", *c))
        .collect();
    for chunk in msgs.chunks(2000) {
        ledger::enqueue(&db, chunk, Utc::now()).await?;
    }
    if pg_url.is_some() {
        db.execute_unprepared("ANALYZE").await?;
    }
    let core = Core::new(Behaviour {
        max_batch: 100,
        ..Behaviour::default()
    });
    let settings = bench_settings(pg_url.is_some(), workers);
    let d = dispatcher_with(&db, &core, &settings);
    let tracker = TaskTracker::new();
    let stop = CancellationToken::new();
    let start = Instant::now();
    d.start(&tracker, stop.clone());
    d.wake();
    core.wait_for_accepted(messages, Duration::from_secs(3600))
        .await;
    // Done when the ledger says so, not when the provider heard.
    while count_state(&db, "sent").await? < messages as i64 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let elapsed = start.elapsed();
    stop.cancel();
    tracker.close();
    tracker.wait().await;
    let accepted = core.accepted();
    let mut ids: Vec<_> = accepted.iter().map(|a| a.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    Ok(Throughput {
        backend: if pg_url.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        },
        messages,
        workers,
        elapsed,
        sent: count_state(&db, "sent").await?,
        duplicates: accepted.len() - ids.len(),
    })
}

pub struct Latency {
    pub backend: &'static str,
    pub samples: Vec<Duration>,
}

impl Latency {
    fn pct(&self, p: f64) -> Duration {
        let mut s = self.samples.clone();
        s.sort();
        s[((p / 100.0) * (s.len() - 1) as f64).round() as usize]
    }
}

impl std::fmt::Display for Latency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        write!(
            f,
            "dispatch latency ({}): {} messages one at a time, enqueue → provider: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            self.backend,
            self.samples.len(),
            ms(self.pct(50.0)),
            ms(self.pct(90.0)),
            ms(self.pct(99.0)),
            ms(self.pct(100.0)),
        )
    }
}

pub async fn latency(samples: usize, pg_url: Option<&str>) -> anyhow::Result<Latency> {
    let (db, _) = fresh_database(pg_url).await?;
    let contacts = seed_contacts(&db, samples).await?;
    let core = Core::new(Behaviour::default());
    let settings = bench_settings(pg_url.is_some(), 1);
    let d = dispatcher_with(&db, &core, &settings);
    let tracker = TaskTracker::new();
    let stop = CancellationToken::new();
    d.start(&tracker, stop.clone());
    // Let the workers reach their idle wait.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut out = Vec::with_capacity(samples);
    for (i, c) in contacts.iter().enumerate() {
        let start = Instant::now();
        ledger::enqueue(
            &db,
            &[message_for(&format!("bench:latency:{i}"), *c)],
            Utc::now(),
        )
        .await?;
        d.wake();
        if !core.wait_for_accepted(i + 1, Duration::from_secs(30)).await {
            anyhow::bail!("message {i} was not sent within 30 s");
        }
        out.push(start.elapsed());
        // Let the outcome commit before the next sample, as an idle system would.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stop.cancel();
    tracker.close();
    tracker.wait().await;
    Ok(Latency {
        backend: if pg_url.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        },
        samples: out,
    })
}

pub struct Rate {
    pub limit: u32,
    pub instances: usize,
    pub messages: usize,
    pub requests: usize,
    pub max_in_any_second: usize,
    pub achieved_rps: f64,
    pub rate_limited: u64,
    pub sent: i64,
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "rate fidelity: limit {} req/s, {} dispatcher instance(s), {} messages in {} requests; most in any second {} (≤ {} required); achieved {:.2} req/s = {:.1} % of the limit; provider 429s {}; sent {}",
            self.limit,
            self.instances,
            self.messages,
            self.requests,
            self.max_in_any_second,
            self.limit,
            self.achieved_rps,
            100.0 * self.achieved_rps / f64::from(self.limit),
            self.rate_limited,
            self.sent
        )
    }
}

pub async fn rate(
    messages: usize,
    limit: u32,
    batch: usize,
    instances: usize,
    pg_url: Option<&str>,
) -> anyhow::Result<Rate> {
    rate_with_headroom(messages, limit, batch, instances, pg_url, None).await
}

/// [`rate`] with `dispatcher.rate_headroom` set (the default when `None`).
/// CI's small runs use more headroom: on a machine busy compiling, a few
/// tens of milliseconds of scheduling jitter can bunch two requests that the
/// limiter spaced correctly, and the provider's sliding window sees one too
/// many. The benchmark measures fidelity at the default.
pub async fn rate_with_headroom(
    messages: usize,
    limit: u32,
    batch: usize,
    instances: usize,
    pg_url: Option<&str>,
    headroom: Option<f64>,
) -> anyhow::Result<Rate> {
    let (db, _) = fresh_database(pg_url).await?;
    let contacts = seed_contacts(&db, messages).await?;
    let msgs: Vec<NewMessage> = contacts
        .iter()
        .map(|c| message_for("bench:rate", *c))
        .collect();
    for chunk in msgs.chunks(2000) {
        ledger::enqueue(&db, chunk, Utc::now()).await?;
    }
    // The provider enforces the limit it declares: exceeding it shows as 429s.
    let core = Core::new(Behaviour {
        max_batch: batch,
        declared_rps: Some(f64::from(limit)),
        enforced_rps: Some(limit),
        ..Behaviour::default()
    });
    let mut settings = bench_settings(pg_url.is_some(), 2);
    if let Some(h) = headroom {
        settings.dispatcher.rate_headroom = h;
    }
    let tracker = TaskTracker::new();
    let stop = CancellationToken::new();
    for _ in 0..instances.max(1) {
        let d = dispatcher_with(&db, &core, &settings);
        d.start(&tracker, stop.clone());
        d.wake();
    }
    core.wait_for_accepted(messages, Duration::from_secs(24 * 3600))
        .await;
    stop.cancel();
    tracker.close();
    tracker.wait().await;
    let times = core.request_times();
    let span = times
        .last()
        .zip(times.first())
        .map(|(l, f)| l.duration_since(*f).as_secs_f64())
        .unwrap_or(0.0);
    Ok(Rate {
        limit,
        instances,
        messages,
        requests: times.len(),
        max_in_any_second: core.max_requests_in_any_second(),
        // n requests span n−1 intervals.
        achieved_rps: if span > 0.0 {
            (times.len() - 1) as f64 / span
        } else {
            0.0
        },
        rate_limited: core.rate_limited.load(std::sync::atomic::Ordering::Relaxed),
        sent: count_state(&db, "sent").await?,
    })
}
