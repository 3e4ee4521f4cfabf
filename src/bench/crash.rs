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
//!
//! The external provider is the test provider's HTTP sink (email, with or
//! without idempotency keys) or, with `--channel sms`, the fake Twilio: the
//! child sends through the real Twilio provider, which takes no key, so the
//! SMS run is the key-less case with Twilio's own wire format, one message a
//! request. The fake's log names recipients, not ledger ids; each bench
//! contact gets one text, so the log is reconciled by phone number.

use std::{
    collections::HashMap,
    path::PathBuf,
    process::Stdio,
    sync::{Arc, atomic::Ordering},
    time::{Duration, Instant},
};

use chrono::Utc;
use rand::Rng;
use sea_orm::{DatabaseConnection, FromQueryResult, Statement};
use tokio::process::{Child, Command};

use super::{
    dispatch::{fresh_database, message_for, seed_contacts},
    sms::{PUBLIC_URL, seed_sms_contacts, sms_for},
};
use crate::{
    dispatcher::ledger::{self, NewMessage},
    domain::MessageState,
    providers::{
        test_provider::{Behaviour, Core, serve_sink},
        twilio::fake::{FakeConfig, FakeTwilio},
    },
};

/// The channel a crash run sends on (`--channel`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CrashChannel {
    Email,
    Sms,
}

/// The external provider the `serve` child sends to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sink {
    /// The test provider's HTTP sink, honouring idempotency keys or not.
    TestProvider { idempotent: bool },
    /// The fake Twilio, through the Twilio provider (no idempotency key).
    Twilio,
}

/// A crash run that cannot be set up as asked.
#[derive(Debug, thiserror::Error)]
pub enum CrashSetupError {
    #[error("Twilio takes no idempotency key: run `--channel sms` with `--no-idempotency`")]
    TwilioTakesNoKey,
}

impl Sink {
    pub fn for_channel(channel: CrashChannel, idempotent: bool) -> Result<Self, CrashSetupError> {
        match (channel, idempotent) {
            (CrashChannel::Email, idempotent) => Ok(Self::TestProvider { idempotent }),
            (CrashChannel::Sms, false) => Ok(Self::Twilio),
            (CrashChannel::Sms, true) => Err(CrashSetupError::TwilioTakesNoKey),
        }
    }

    fn idempotent(self) -> bool {
        matches!(self, Self::TestProvider { idempotent: true })
    }

    /// Whether each kill lands 0–750 ms after the restarted process's first
    /// send rather than 150–900 ms after its start. The Twilio provider's
    /// client loads the system's CA roots when `serve` starts (about 1.4 s
    /// in a debug build, as CI runs it), so kills timed from the start would
    /// mostly land before sending resumed and test nothing.
    fn kills_after_first_send(self) -> bool {
        matches!(self, Self::Twilio)
    }

    fn label(self) -> &'static str {
        match self {
            Self::TestProvider { idempotent: true } => "idempotent provider",
            Self::TestProvider { idempotent: false } => "key-less provider",
            Self::Twilio => "SMS, key-less: Twilio provider to the fake Twilio",
        }
    }
}

/// A running sink and what reconciling its log needs.
enum Running {
    Test(Arc<Core>),
    Twilio {
        fake: FakeTwilio,
        /// Ledger id of the one message to each bench phone.
        ids: HashMap<String, String>,
    },
}

impl Running {
    async fn start(sink: Sink) -> anyhow::Result<(Self, String)> {
        match sink {
            Sink::TestProvider { idempotent } => {
                let core = Core::new(Behaviour {
                    idempotent,
                    max_batch: 10,
                    latency: Duration::from_millis(3),
                    ..Behaviour::default()
                });
                let addr = serve_sink(core.clone()).await?;
                // A provider rate that spreads a round over a couple of
                // seconds, so kills land while sending.
                let table = format!(
                    "[providers.test]\nurl = \"http://{addr}\"\nidempotent = {idempotent}\nmax_batch = 10\nrequests_per_second = 150.0\n"
                );
                Ok((Self::Test(core), table))
            }
            Sink::Twilio => {
                // One text a request: 100 MPS spreads a round of 400 over
                // about four seconds. The fake enforces the same rate.
                let fake = FakeTwilio::start(FakeConfig {
                    requests_per_second: 100,
                    ..FakeConfig::default()
                })
                .await?;
                let table = format!(
                    "[providers.twilio]\naccount_sid = \"{}\"\nauth_token = \"{}\"\nfrom = \"{}\"\nurl = \"{}\"\nrequests_per_second = 100.0\n\n\
                     [server]\npublic_url = \"{PUBLIC_URL}\"\n",
                    fake.account_sid(),
                    fake.auth_token(),
                    fake.number(),
                    fake.base_url()
                );
                Ok((
                    Self::Twilio {
                        fake,
                        ids: HashMap::new(),
                    },
                    table,
                ))
            }
        }
    }

    /// Queues one round of `n` messages (round `r`, `before` messages
    /// queued so far); returns how many.
    async fn enqueue_round(
        &mut self,
        db: &DatabaseConnection,
        r: usize,
        n: usize,
        before: usize,
    ) -> anyhow::Result<usize> {
        let source = format!("crash:{r}");
        let msgs: Vec<NewMessage> = match self {
            Self::Test(_) => seed_contacts(db, n)
                .await?
                .iter()
                .map(|c| message_for(&source, *c))
                .collect(),
            Self::Twilio { ids, .. } => {
                let contacts = seed_sms_contacts(db, n, before).await?;
                contacts
                    .into_iter()
                    .map(|(c, phone)| {
                        let m = sms_for(&source, c);
                        ids.insert(phone, m.id());
                        m
                    })
                    .collect()
            }
        };
        for chunk in msgs.chunks(1000) {
            ledger::enqueue(db, chunk, Utc::now()).await?;
        }
        Ok(msgs.len())
    }

    fn accepted_count(&self) -> usize {
        match self {
            Self::Test(core) => core.accepted().len(),
            Self::Twilio { fake, .. } => fake.messages().len(),
        }
    }

    async fn wait_for_accepted(&self, n: usize, timeout: Duration) -> bool {
        match self {
            Self::Test(core) => core.wait_for_accepted(n, timeout).await,
            Self::Twilio { fake, .. } => fake.wait_for_messages(n, timeout).await,
        }
    }

    /// The ledger id of each message the provider accepted, once per
    /// acceptance; a text to a number the bench never queued for shows as
    /// `unknown:<number>` (no ledger row can account for it).
    fn accepted_ids(&self) -> Vec<String> {
        match self {
            Self::Test(core) => core.accepted().into_iter().map(|a| a.id).collect(),
            Self::Twilio { fake, ids } => fake
                .messages()
                .into_iter()
                .map(|m| {
                    ids.get(&m.to)
                        .cloned()
                        .unwrap_or_else(|| format!("unknown:{}", m.to))
                })
                .collect(),
        }
    }

    fn replays(&self) -> u64 {
        match self {
            Self::Test(core) => core.replays.load(Ordering::Relaxed),
            Self::Twilio { .. } => 0,
        }
    }

    /// Requests the provider refused for its rate.
    fn rate_limited(&self) -> u64 {
        match self {
            Self::Test(core) => core.rate_limited.load(Ordering::Relaxed),
            Self::Twilio { fake, .. } => {
                fake.requests().iter().filter(|r| r.status == 429).count() as u64
            }
        }
    }
}

pub struct CrashReport {
    pub trials: usize,
    pub provider: &'static str,
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
    /// Requests the provider refused for its rate (retried, never lost).
    pub rate_limited: u64,
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
            "crash safety ({}): {} kill -9 trials ({} while sending), {} messages: sent {}, lost {}, duplicates {}, unaccounted {}, \
             ambiguous {} (of which the provider had accepted {}), unsettled {}, re-sends deduplicated by key {}, 429s {}; \
             resume after restart: median {} ms, max {} ms",
            self.provider,
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
            self.rate_limited,
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

/// Runs the benchmark with `binary` as the `warmline` executable, against
/// the test provider's sink (with or without idempotency keys).
pub async fn run(
    binary: PathBuf,
    trials: usize,
    messages_per_round: usize,
    idempotent: bool,
    pg_url: Option<&str>,
) -> anyhow::Result<CrashReport> {
    run_with(
        binary,
        Sink::TestProvider { idempotent },
        trials,
        messages_per_round,
        pg_url,
    )
    .await
}

/// Runs the benchmark with `binary` as the `warmline` executable, sending
/// to `sink`.
pub async fn run_with(
    binary: PathBuf,
    sink: Sink,
    trials: usize,
    messages_per_round: usize,
    pg_url: Option<&str>,
) -> anyhow::Result<CrashReport> {
    crate::install_crypto_provider();
    let (mut provider, provider_table) = Running::start(sink).await?;
    let (db, url) = fresh_database(pg_url).await?;
    let dir =
        std::env::temp_dir().join(format!("warmline-crash-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    let config = dir.join("warmline.toml");
    // Short leases so PostgreSQL recovery is quick too.
    std::fs::write(
        &config,
        format!(
            "{provider_table}\n\
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
    let mut round = 1usize;
    total += provider
        .enqueue_round(&db, round, messages_per_round, total)
        .await?;

    let mut rng = rand::rng();
    let mut resume_ms = Vec::new();
    let mut kills_mid_send = 0;
    for _ in 0..trials {
        if unsettled(&db).await? == 0 {
            round += 1;
            total += provider
                .enqueue_round(&db, round, messages_per_round, total)
                .await?;
        }
        let before = provider.accepted_count();
        let started = Instant::now();
        let mut child = harness.spawn()?;
        let kill_after = Duration::from_millis(rng.random_range(150..900));
        if sink.kills_after_first_send() {
            if provider
                .wait_for_accepted(before + 1, Duration::from_secs(60))
                .await
            {
                resume_ms.push(started.elapsed().as_millis());
                tokio::time::sleep(kill_after - Duration::from_millis(150)).await;
                kills_mid_send += 1;
            }
        } else {
            // Note when sending resumed, if it does before the kill.
            let resumed = provider.wait_for_accepted(before + 1, kill_after).await;
            if resumed {
                resume_ms.push(started.elapsed().as_millis());
                tokio::time::sleep(kill_after.saturating_sub(started.elapsed())).await;
                kills_mid_send += 1;
            }
        }
        child.start_kill()?; // SIGKILL
        child.wait().await?;
    }

    // Final run: drain everything, then stop cleanly.
    let before = provider.accepted_count();
    let started = Instant::now();
    let spawned_at = Utc::now();
    let mut child = harness.spawn()?;
    if unsettled(&db).await? > 0
        && provider
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
    for id in provider.accepted_ids() {
        *accepted.entry(id).or_default() += 1;
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
        provider: sink.label(),
        idempotent: sink.idempotent(),
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
        replays: provider.replays(),
        rate_limited: provider.rate_limited(),
        unsettled: unsettled(&db).await?,
        kills_mid_send,
        resume_ms,
    };
    db.close().await.ok();
    std::fs::remove_dir_all(&dir).ok();
    Ok(report)
}
