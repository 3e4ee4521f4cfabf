//! One-click unsubscribe benchmark (issue 5: "the opt-out is committed
//! within 1 s of the request"). Target: every answer in under 1,000 ms.
//!
//! Set-up: a fresh database (a temporary SQLite file in WAL mode with full
//! durability, or a new database on the PostgreSQL server `--postgres`
//! names) with `contacts` contacts holding email consent, and the real
//! application on 127.0.0.1:0. Load: one RFC 8058 one-click POST
//! (`List-Unsubscribe=One-Click`) to `/u/{token}` per contact, from
//! `concurrency` clients. The route commits the revocation before it
//! answers, so the time from sending a request to its 200 bounds the time
//! to the commit. Afterwards the ledger is read back: every contact's
//! current email consent must be a one-click revocation.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use sea_orm::{DatabaseConnection, Value};

use super::dispatch::{fresh_database, seed_contacts};
use crate::{settings::Settings, startup::Application};

/// Answers slower than this miss the target.
pub const TARGET: Duration = Duration::from_secs(1);

pub struct UnsubscribeBench {
    pub contacts: usize,
    pub concurrency: usize,
    pub backend: &'static str,
    pub elapsed: Duration,
    /// Sorted latencies, one per request.
    pub latencies: Vec<Duration>,
    /// Requests answered with anything but 200, or not at all.
    pub non_200: usize,
    /// Contacts whose current email consent is a one-click revocation.
    pub revoked: i64,
    /// Contacts whose current email consent is anything else.
    pub not_revoked: i64,
}

impl UnsubscribeBench {
    pub fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let idx = ((p / 100.0) * (self.latencies.len() - 1) as f64).round() as usize;
        self.latencies[idx]
    }

    pub fn max(&self) -> Duration {
        self.latencies.last().copied().unwrap_or(Duration::ZERO)
    }

    /// Every request answered 200 and every contact revoked.
    pub fn is_correct(&self) -> bool {
        self.non_200 == 0
            && self.latencies.len() == self.contacts
            && self.revoked == self.contacts as i64
            && self.not_revoked == 0
    }

    pub fn meets_target(&self) -> bool {
        self.max() < TARGET
    }
}

impl std::fmt::Display for UnsubscribeBench {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        write!(
            f,
            "unsubscribe ({}): {} one-click POSTs, {} concurrent, {:.0} req/s; \
             request to committed 200: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; \
             max < 1000 ms: {}; non-200 {}; revoked {}/{}, not revoked {}",
            self.backend,
            self.latencies.len(),
            self.concurrency,
            self.latencies.len() as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON),
            ms(self.percentile(50.0)),
            ms(self.percentile(99.0)),
            ms(self.max()),
            if self.meets_target() { "yes" } else { "NO" },
            self.non_200,
            self.revoked,
            self.contacts,
            self.not_revoked,
        )
    }
}

/// Contacts whose newest email consent row is (`revoked`) or is not a
/// one-click revocation. Contacts without any email row count as not.
async fn revocations(db: &DatabaseConnection) -> anyhow::Result<(i64, i64)> {
    let revoked = crate::db::count(
        db,
        "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM consents \
         WHERE id IN (SELECT MAX(id) FROM consents WHERE channel = $1 GROUP BY contact_id) \
         AND granted = $2 AND source = $3",
        vec![
            Value::from("email"),
            Value::from(false),
            Value::from(crate::consent::Source::OneClickUnsubscribe.as_str()),
        ],
    )
    .await?;
    let contacts = crate::db::count(
        db,
        "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM contacts",
        vec![],
    )
    .await?;
    Ok((revoked, contacts - revoked))
}

pub async fn run(
    contacts: usize,
    concurrency: usize,
    pg_url: Option<&str>,
) -> anyhow::Result<UnsubscribeBench> {
    crate::install_crypto_provider();
    let (db, url) = fresh_database(pg_url).await?;
    let ids = seed_contacts(&db, contacts).await?;

    let mut settings = Settings::default();
    settings.server.addr = "127.0.0.1:0".parse()?;
    settings.database.url = Some(url.clone().into());
    let application = Application::build_with_db(settings, db.clone()).await?;
    let addr = application.local_addr();
    let app = application.app();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(application.run_until(async move {
        let _ = stop_rx.await;
    }));

    // The links as an email carries them, signed before the clock starts.
    let mut urls = Vec::with_capacity(ids.len());
    for id in &ids {
        let token = app.composer.signer().sign(*id, "email").await?;
        urls.push(format!("http://{addr}/u/{token}"));
    }
    let urls = Arc::new(urls);

    let concurrency = concurrency.max(1);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut workers = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let (client, urls, next) = (client.clone(), urls.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut non_200 = 0usize;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(url) = urls.get(i) else { break };
                let sent = Instant::now();
                let resp = client
                    .post(url)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body("List-Unsubscribe=One-Click")
                    .send()
                    .await;
                let ok = match resp {
                    Ok(r) => {
                        let ok = r.status() == reqwest::StatusCode::OK;
                        ok & r.bytes().await.is_ok()
                    }
                    Err(_) => false,
                };
                latencies.push(sent.elapsed());
                if !ok {
                    non_200 += 1;
                }
            }
            (latencies, non_200)
        }));
    }
    let mut latencies = Vec::with_capacity(contacts);
    let mut non_200 = 0;
    for w in workers {
        let (l, n) = w.await?;
        latencies.extend(l);
        non_200 += n;
    }
    let elapsed = start.elapsed();
    latencies.sort();

    let (revoked, not_revoked) = revocations(&db).await?;
    let _ = stop_tx.send(());
    server.await??;
    db.close().await.ok();
    if pg_url.is_none()
        && let Some(path) = url
            .strip_prefix("sqlite://")
            .and_then(|p| p.split('?').next())
        && let Some(dir) = std::path::Path::new(path).parent()
    {
        std::fs::remove_dir_all(dir).ok();
    }
    Ok(UnsubscribeBench {
        contacts,
        concurrency,
        backend: if pg_url.is_some() {
            "postgres"
        } else {
            "sqlite"
        },
        elapsed,
        latencies,
        non_200,
        revoked,
        not_revoked,
    })
}
