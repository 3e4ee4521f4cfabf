//! Crash-safety benchmark: runs `warmline serve` as a child process against
//! an out-of-process test provider, `kill -9`s it at random moments while a
//! campaign is sending, restarts it, and finally lets it drain. Then it
//! reconciles the provider's log with the ledger:
//!
//! - **lost**: messages the ledger says were sent that the provider never
//!   accepted, or messages left unsettled — must be 0;
//! - **duplicates**: messages the provider accepted more than once — must be
//!   0 (with idempotency keys the provider deduplicates re-sends; without,
//!   warmline never re-sends a crash-window message by itself);
//! - **ambiguous**: crash-window messages the provider took no key for,
//!   marked for a person — each accepted at most once;
//! - **resume**: time from a restart to the next message the provider accepts.

use std::{
    collections::HashMap,
    path::PathBuf,
    process::Stdio,
    sync::atomic::Ordering,
    time::{Duration, Instant},
};

use chrono::Utc;
use rand::Rng;
use sea_orm::{DatabaseConnection, FromQueryResult, Statement};
use tokio::process::{Child, Command};

use super::dispatch::{fresh_database, message_for, seed_contacts};
use crate::{
    dispatcher::ledger,
    domain::MessageState,
    providers::test_provider::{Behaviour, Core, serve_sink},
};

pub struct CrashReport {
    pub trials: usize,
    pub idempotent: bool,
    pub messages: usize,
    pub sent: i64,
    pub ambiguous: i64,
    pub ambiguous_accepted: usize,
    pub lost: usize,
    pub duplicates: usize,
    /// Accepted by the provider but neither sent nor ambiguous in the ledger.
    pub unaccounted: usize,
    pub replays: u64,
    pub unsettled: i64,
    pub kills_mid_send: usize,
    pub resume_ms: Vec<u128>,
}

impl CrashReport {
    pub fn is_clean(&self) -> bool {
        self.lost == 0 && self.duplicates == 0 && self.unsettled == 0 && self.unaccounted == 0
    }
}

impl std::fmt::Display for CrashReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut r = self.resume_ms.clone();
        r.sort_unstable();
        let median = r.get(r.len() / 2).copied().unwrap_or(0);
        let max = r.last().copied().unwrap_or(0);
        write!(
            f,
            "crash safety ({} provider): {} kill -9 trials ({} while sending), {} messages: sent {}, lost {}, duplicates {}, unaccounted {}, \
             ambiguous {} (of which the provider had accepted {}), unsettled {}, re-sends deduplicated by key {}; \
             resume after restart: median {} ms, max {} ms",
            if self.idempotent {
                "idempotent"
            } else {
                "key-less"
            },
            self.trials,
            self.kills_mid_send,
            self.messages,
            self.sent,
            self.lost,
            self.duplicates,
            self.unaccounted,
            self.ambiguous,
            self.ambiguous_accepted,
            self.unsettled,
            self.replays,
            median,
            max
        )
    }
}

struct Harness {
    binary: PathBuf,
    env: Vec<(String, String)>,
    dir: PathBuf,
}

impl Harness {
    fn spawn(&self) -> anyhow::Result<Child> {
        let mut cmd = Command::new(&self.binary);
        cmd.arg("serve")
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        Ok(cmd.spawn()?)
    }
}

#[derive(FromQueryResult)]
struct Row {
    id: String,
    state: MessageState,
}

async fn ledger_rows(db: &DatabaseConnection) -> anyhow::Result<Vec<Row>> {
    Ok(Row::find_by_statement(Statement::from_string(
        db.get_database_backend(),
        "SELECT id, state FROM messages".to_string(),
    ))
    .all(db)
    .await?)
}

async fn unsettled(db: &DatabaseConnection) -> anyhow::Result<i64> {
    crate::db::count(
        db,
        &format!(
            "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM messages WHERE state IN ({})",
            MessageState::sql_list(&[
                MessageState::Queued,
                MessageState::Deferred,
                MessageState::Sending
            ])
        ),
        vec![],
    )
    .await
}

async fn worker_started_since(
    db: &DatabaseConnection,
    since: chrono::DateTime<Utc>,
) -> anyhow::Result<bool> {
    let n = crate::db::count(
        db,
        "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM dispatcher_workers WHERE started_at > $1",
        vec![sea_orm::Value::from(since)],
    )
    .await?;
    Ok(n > 0)
}

/// Runs the benchmark with `binary` as the `warmline` executable.
pub async fn run(
    binary: PathBuf,
    trials: usize,
    messages_per_round: usize,
    idempotent: bool,
    pg_url: Option<&str>,
) -> anyhow::Result<CrashReport> {
    crate::install_crypto_provider();
    let core = Core::new(Behaviour {
        idempotent,
        max_batch: 10,
        latency: Duration::from_millis(3),
        ..Behaviour::default()
    });
    let sink = serve_sink(core.clone()).await?;
    let (db, url) = fresh_database(pg_url).await?;
    let dir =
        std::env::temp_dir().join(format!("warmline-crash-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    let config = dir.join("warmline.toml");
    // A provider rate that spreads a round over a couple of seconds, so kills
    // land while sending; short leases so PostgreSQL recovery is quick too.
    std::fs::write(
        &config,
        format!(
            "[providers.test]\nurl = \"http://{sink}\"\nidempotent = {idempotent}\nmax_batch = 10\nrequests_per_second = 150.0\n\n\
             [dispatcher]\nlease_secs = 3\nheartbeat_secs = 1\npoll_interval_ms = 100\nretry_base_secs = 0.2\n\n\
             [caps]\nmarketing_per_day = 1000000\nmarketing_per_week = 1000000\n\n[log]\nlevel = \"warn\"\n"
        ),
    )?;
    let harness = Harness {
        binary,
        env: vec![
            ("PATH".into(), std::env::var("PATH").unwrap_or_default()),
            ("DATABASE_URL".into(), url.clone()),
            ("WARMLINE_CONFIG".into(), config.display().to_string()),
            ("WARMLINE_ADDR".into(), "127.0.0.1:0".into()),
            ("SLACK_BOT_TOKEN".into(), "xoxb-crash-bench".into()),
            (
                "SLACK_SIGNING_SECRET".into(),
                "crash-bench-signing-secret-0123".into(),
            ),
            ("SLACK_API_URL".into(), "http://127.0.0.1:9/api".into()),
        ],
        dir: dir.clone(),
    };

    let mut total = 0usize;
    let mut round = 0usize;
    let mut enqueue_round = |db: DatabaseConnection| {
        round += 1;
        let r = round;
        async move {
            let contacts = seed_contacts(&db, messages_per_round).await?;
            let msgs: Vec<_> = contacts
                .iter()
                .map(|c| message_for(&format!("crash:{r}"), *c))
                .collect();
            for chunk in msgs.chunks(1000) {
                ledger::enqueue(&db, chunk, Utc::now()).await?;
            }
            anyhow::Ok(msgs.len())
        }
    };
    total += enqueue_round(db.clone()).await?;

    let mut rng = rand::rng();
    let mut resume_ms = Vec::new();
    let mut kills_mid_send = 0;
    for _ in 0..trials {
        if unsettled(&db).await? == 0 {
            total += enqueue_round(db.clone()).await?;
        }
        let before = core.accepted().len();
        let started = Instant::now();
        let mut child = harness.spawn()?;
        let kill_after = Duration::from_millis(rng.random_range(150..900));
        // Note when sending resumed, if it does before the kill.
        let resumed = core.wait_for_accepted(before + 1, kill_after).await;
        if resumed {
            resume_ms.push(started.elapsed().as_millis());
            tokio::time::sleep(kill_after.saturating_sub(started.elapsed())).await;
            kills_mid_send += 1;
        }
        child.start_kill()?; // SIGKILL
        child.wait().await?;
    }

    // Final run: drain everything, then stop cleanly.
    let before = core.accepted().len();
    let started = Instant::now();
    let spawned_at = Utc::now();
    let mut child = harness.spawn()?;
    if unsettled(&db).await? > 0
        && core
            .wait_for_accepted(before + 1, Duration::from_secs(60))
            .await
    {
        resume_ms.push(started.elapsed().as_millis());
    }
    // Signal handlers are installed before the dispatcher heartbeats: wait
    // for the heartbeat so SIGTERM finds them.
    let deadline = Instant::now() + Duration::from_secs(600);
    while !worker_started_since(&db, spawned_at).await? && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    while unsettled(&db).await? > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if let Some(pid) = child.id() {
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status();
    }
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait()).await??;
    if !status.success() {
        anyhow::bail!("serve did not exit cleanly on SIGTERM: {status}");
    }

    // Reconcile.
    let rows = ledger_rows(&db).await?;
    let mut accepted: HashMap<String, usize> = HashMap::new();
    for a in core.accepted() {
        *accepted.entry(a.id).or_default() += 1;
    }
    let mut lost = 0;
    let mut ambiguous_accepted = 0;
    for r in &rows {
        let n = accepted.get(&r.id).copied().unwrap_or(0);
        match r.state {
            MessageState::Sent if n == 0 => lost += 1,
            MessageState::Ambiguous if n > 0 => ambiguous_accepted += 1,
            _ => {}
        }
    }
    // Messages the provider took that the ledger does not know as sent or
    // ambiguous would be sends we cannot account for.
    let known: HashMap<&str, MessageState> =
        rows.iter().map(|r| (r.id.as_str(), r.state)).collect();
    let unaccounted = accepted
        .keys()
        .filter(|id| {
            !matches!(
                known.get(id.as_str()),
                Some(MessageState::Sent | MessageState::Ambiguous)
            )
        })
        .count();
    let duplicates = accepted
        .values()
        .map(|n| n.saturating_sub(1))
        .sum::<usize>();
    let report = CrashReport {
        trials,
        idempotent,
        messages: total,
        sent: rows
            .iter()
            .filter(|r| r.state == MessageState::Sent)
            .count() as i64,
        ambiguous: rows
            .iter()
            .filter(|r| r.state == MessageState::Ambiguous)
            .count() as i64,
        ambiguous_accepted,
        lost,
        duplicates,
        unaccounted,
        replays: core.replays.load(Ordering::Relaxed),
        unsettled: unsettled(&db).await?,
        kills_mid_send,
        resume_ms,
    };
    db.close().await.ok();
    std::fs::remove_dir_all(&dir).ok();
    Ok(report)
}
