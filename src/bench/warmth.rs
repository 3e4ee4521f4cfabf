//! `warmline bench warmth`: the decay pass over N contacts with M
//! interactions (target: 100,000 contacts with 1,000,000 interactions in
//! under 2 s, SQLite and PostgreSQL).
//!
//! Seeding: contacts get ids 1..=N; each interaction goes to a uniformly
//! random contact at a uniformly random second of the last 239 days, so
//! every one lies inside the model's 240-day horizon and is read by the pass
//! (the worst case). Rows are inserted in time order, as a live system
//! records them, so one contact's interactions are scattered over the table.
//! The mix: 40 % email, 20 % messages, 20 % notes, 10 % meetings, 10 % calls;
//! 60 % outbound. Seeding uses multi-row literal INSERTs (generated numbers
//! and fixed words only) in one transaction.
//!
//! Three passes are timed: the first (no contact has a score yet, so every
//! row is written), the same `now` again (nothing changes, nothing is
//! written), and one day later (scores decay and "N days ago" reasons
//! change, so most rows are written).

use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use rand::{Rng, SeedableRng, rngs::StdRng};
use sea_orm::{ConnectionTrait, DatabaseConnection, TransactionTrait};

use crate::warmth::{Stats, decay::recompute_all_with, model::Params};

pub struct Report {
    pub backend: &'static str,
    pub contacts: usize,
    pub interactions: usize,
    pub seed: Duration,
    /// First pass: every contact written.
    pub first: Stats,
    /// Same `now` again: nothing to write.
    pub unchanged: Stats,
    /// One day later.
    pub next_day: Stats,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "warmth decay pass ({}): {} contacts, {} interactions (seeded in {:.1} s)",
            self.backend,
            self.contacts,
            self.interactions,
            self.seed.as_secs_f64()
        )?;
        for (what, s) in [
            ("first pass (all written)", &self.first),
            ("same time again", &self.unchanged),
            ("one day later", &self.next_day),
        ] {
            let secs = s.elapsed.as_secs_f64();
            writeln!(
                f,
                "  {what}: {secs:.3} s = {:.0} interactions/s, {:.0} contacts/s \
                 (read {:.3} s, compute {:.3} s, write {:.3} s); {} contacts, {} interactions read, \
                 {} updated, {} crossings",
                s.interactions as f64 / secs,
                s.contacts as f64 / secs,
                s.read.as_secs_f64(),
                s.compute.as_secs_f64(),
                s.write.as_secs_f64(),
                s.contacts,
                s.interactions,
                s.updated,
                s.crossings.len()
            )?;
        }
        Ok(())
    }
}

/// The time the benchmark treats as now: fixed, so runs are comparable.
pub fn bench_now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap()
}

/// Seeds `contacts` contacts (ids 1..=N) and `interactions` interactions
/// into an empty, migrated database.
pub async fn seed(
    db: &DatabaseConnection,
    contacts: usize,
    interactions: usize,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let mut rng = StdRng::seed_from_u64(20261126);
    let span = 239 * 86_400_i64;
    let mut rows: Vec<(i64, i64, &str, &str)> = (0..interactions)
        .map(|_| {
            let contact = rng.random_range(1..=contacts as i64);
            let at = now.timestamp() - rng.random_range(0..span);
            let kind = match rng.random_range(0..10) {
                0..=3 => "email",
                4 | 5 => "message",
                6 | 7 => "note",
                8 => "meeting",
                _ => "call",
            };
            let dir = if rng.random_range(0..10) < 6 {
                "outbound"
            } else {
                "inbound"
            };
            (contact, at, kind, dir)
        })
        .collect();
    rows.sort_unstable_by_key(|r| r.1);
    let mut last = vec![None::<i64>; contacts + 1];
    for r in &rows {
        last[r.0 as usize] = Some(r.1);
    }
    // sqlx's own encoding on SQLite, so text comparisons match bound values.
    let ts = |secs: i64| {
        Utc.timestamp_opt(secs, 0)
            .unwrap()
            .to_rfc3339_opts(SecondsFormat::AutoSi, false)
    };
    let now_s = ts(now.timestamp());
    let txn = db.begin().await?;
    for start in (1..=contacts).step_by(2_000) {
        let end = (start + 2_000).min(contacts + 1);
        let values: Vec<String> = (start..end)
            .map(|id| {
                let li = last[id].map_or("NULL".to_string(), |t| format!("'{}'", ts(t)));
                format!("({id}, 'w{id}@bench.example', '{now_s}', '{now_s}', {li})")
            })
            .collect();
        txn.execute_unprepared(&format!(
            "INSERT INTO contacts (id, email, created_at, updated_at, last_interaction_at) VALUES {}",
            values.join(",")
        ))
        .await?;
    }
    for chunk in rows.chunks(2_000) {
        let values: Vec<String> = chunk
            .iter()
            .map(|(c, at, kind, dir)| {
                let t = ts(*at);
                format!("({c}, '{kind}', '{dir}', '{t}', 'bench', '{t}')")
            })
            .collect();
        txn.execute_unprepared(&format!(
            "INSERT INTO interactions (contact_id, kind, direction, occurred_at, source, created_at) VALUES {}",
            values.join(",")
        ))
        .await?;
    }
    txn.commit().await?;
    if crate::db::is_postgres(db) {
        // Fresh tables: give the planner real statistics, as autovacuum would.
        db.execute_unprepared("ANALYZE contacts").await?;
        db.execute_unprepared("ANALYZE interactions").await?;
    }
    Ok(())
}

pub async fn run(
    contacts: usize,
    interactions: usize,
    pg_url: Option<&str>,
) -> anyhow::Result<Report> {
    let (db, url) = super::dispatch::fresh_database(pg_url).await?;
    let result = run_on(&db, contacts, interactions, pg_url.is_some()).await;
    db.close().await.ok();
    cleanup(&url, pg_url).await;
    result
}

async fn run_on(
    db: &DatabaseConnection,
    contacts: usize,
    interactions: usize,
    pg: bool,
) -> anyhow::Result<Report> {
    let now = bench_now();
    let started = Instant::now();
    seed(db, contacts, interactions, now).await?;
    let seed_time = started.elapsed();
    let p = Params::default();
    let batch = crate::warmth::WarmthSettings::default().batch_contacts;
    let first = recompute_all_with(db, now, &p, batch).await?;
    let unchanged = recompute_all_with(db, now, &p, batch).await?;
    let next_day = recompute_all_with(db, now + chrono::Duration::days(1), &p, batch).await?;
    Ok(Report {
        backend: if pg { "PostgreSQL" } else { "SQLite" },
        contacts,
        interactions,
        seed: seed_time,
        first,
        unchanged,
        next_day,
    })
}

/// Removes the bench database: the SQLite directory, or the PostgreSQL
/// database created for the run.
async fn cleanup(url: &str, pg_url: Option<&str>) {
    match pg_url {
        Some(base) => {
            let Some(name) = url::Url::parse(url)
                .ok()
                .map(|u| u.path().trim_start_matches('/').to_string())
            else {
                return;
            };
            if let Ok(admin) = crate::db::connect(base, 1).await {
                admin
                    .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\""))
                    .await
                    .ok();
                admin.close().await.ok();
            }
        }
        None => {
            if let Some(path) = url
                .strip_prefix("sqlite://")
                .and_then(|p| p.split('?').next())
                .and_then(|p| std::path::Path::new(p).parent())
            {
                std::fs::remove_dir_all(path).ok();
            }
        }
    }
}
