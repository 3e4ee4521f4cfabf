//! Rate limiting per provider credential, by GCRA (the "virtual
//! scheduling" form of a token bucket): each request reserves the next
//! free slot, `interval` after the previous one, and waits for it.
//!
//! On SQLite (one process) the schedule lives in memory. On PostgreSQL it
//! lives in the `rate_limits` table and is advanced by one atomic upsert, so
//! several `serve` processes share one budget; the database's clock is the
//! reference, so their clocks need not agree.
//!
//! A provider's own signals (429 + Retry-After) push the schedule back
//! ([`RateLimiter::penalize`]), so everyone waits, not only the worker that
//! was told.

use std::{collections::HashMap, sync::Mutex, time::Duration};

use sea_orm::{ConnectionTrait, DatabaseConnection, FromQueryResult, Statement, Value};
use tokio::time::Instant;

pub struct RateLimiter {
    backend: Backend,
}

enum Backend {
    Local(Mutex<HashMap<String, Instant>>),
    Shared(DatabaseConnection),
}

#[derive(FromQueryResult)]
struct Wait {
    wait_us: i64,
}

const NOW_US: &str = "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000000)::bigint";

impl RateLimiter {
    /// A limiter for `db`: shared through the database on PostgreSQL,
    /// in memory otherwise.
    pub fn for_database(db: &DatabaseConnection) -> Self {
        if crate::db::is_postgres(db) {
            Self {
                backend: Backend::Shared(db.clone()),
            }
        } else {
            Self::local()
        }
    }

    pub fn local() -> Self {
        Self {
            backend: Backend::Local(Mutex::default()),
        }
    }

    /// Reserves the next slot for `key` at `rate` requests per second and
    /// returns how long to wait for it.
    pub async fn reserve(&self, key: &str, rate: f64) -> anyhow::Result<Duration> {
        let interval = Duration::from_secs_f64(1.0 / rate.max(1e-6));
        match &self.backend {
            Backend::Local(map) => {
                let now = Instant::now();
                let mut map = map.lock().expect("not poisoned");
                let tat = map.entry(key.to_string()).or_insert(now);
                let start = (*tat).max(now);
                *tat = start + interval;
                Ok(start - now)
            }
            Backend::Shared(db) => {
                let sql = format!(
                    "INSERT INTO rate_limits (key, tat_us) VALUES ($1, {NOW_US} + $2) \
                     ON CONFLICT (key) DO UPDATE SET tat_us = GREATEST(rate_limits.tat_us, {NOW_US}) + $2 \
                     RETURNING tat_us - $2 - {NOW_US} AS wait_us"
                );
                let row = Wait::find_by_statement(Statement::from_sql_and_values(
                    db.get_database_backend(),
                    sql,
                    [
                        Value::from(key.to_string()),
                        Value::from(interval.as_micros() as i64),
                    ],
                ))
                .one(db)
                .await?
                .ok_or_else(|| anyhow::anyhow!("rate limit reservation returned no row"))?;
                Ok(Duration::from_micros(row.wait_us.max(0) as u64))
            }
        }
    }

    /// How long until `key`'s next slot, without reserving it.
    pub async fn pending_wait(&self, key: &str) -> anyhow::Result<Duration> {
        match &self.backend {
            Backend::Local(map) => {
                let now = Instant::now();
                let map = map.lock().expect("not poisoned");
                Ok(map
                    .get(key)
                    .map_or(Duration::ZERO, |tat| tat.saturating_duration_since(now)))
            }
            Backend::Shared(db) => {
                let row = Wait::find_by_statement(Statement::from_sql_and_values(
                    db.get_database_backend(),
                    format!("SELECT tat_us - {NOW_US} AS wait_us FROM rate_limits WHERE key = $1"),
                    [Value::from(key.to_string())],
                ))
                .one(db)
                .await?;
                Ok(Duration::from_micros(
                    row.map_or(0, |r| r.wait_us.max(0)) as u64
                ))
            }
        }
    }

    /// Reserves a slot and waits for it.
    pub async fn acquire(&self, key: &str, rate: f64) -> anyhow::Result<()> {
        let wait = self.reserve(key, rate).await?;
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        Ok(())
    }

    /// Nobody sends for `key` before `wait` from now (the provider said so).
    pub async fn penalize(&self, key: &str, wait: Duration) -> anyhow::Result<()> {
        match &self.backend {
            Backend::Local(map) => {
                let until = Instant::now() + wait;
                let mut map = map.lock().expect("not poisoned");
                let tat = map.entry(key.to_string()).or_insert(until);
                *tat = (*tat).max(until);
            }
            Backend::Shared(db) => {
                let sql = format!(
                    "INSERT INTO rate_limits (key, tat_us) VALUES ($1, {NOW_US} + $2) \
                     ON CONFLICT (key) DO UPDATE SET tat_us = GREATEST(rate_limits.tat_us, {NOW_US} + $2)"
                );
                db.execute_raw(Statement::from_sql_and_values(
                    db.get_database_backend(),
                    sql,
                    [
                        Value::from(key.to_string()),
                        Value::from(wait.as_micros() as i64),
                    ],
                ))
                .await?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn local_slots_are_spaced_by_the_interval() {
        let limiter = RateLimiter::local();
        let waits: Vec<Duration> = {
            let mut v = Vec::new();
            for _ in 0..4 {
                v.push(limiter.reserve("k", 2.0).await.unwrap());
            }
            v
        };
        assert_eq!(
            waits,
            vec![
                Duration::ZERO,
                Duration::from_millis(500),
                Duration::from_millis(1000),
                Duration::from_millis(1500)
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn pending_wait_peeks_without_reserving() {
        let limiter = RateLimiter::local();
        assert_eq!(limiter.pending_wait("k").await.unwrap(), Duration::ZERO);
        limiter
            .penalize("k", Duration::from_secs(3600))
            .await
            .unwrap();
        assert_eq!(
            limiter.pending_wait("k").await.unwrap(),
            Duration::from_secs(3600)
        );
        // Peeking took no slot: the next reservation still waits the hour.
        assert_eq!(
            limiter.reserve("k", 1.0).await.unwrap(),
            Duration::from_secs(3600)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_penalty_pushes_everyone_back() {
        let limiter = RateLimiter::local();
        limiter.penalize("k", Duration::from_secs(3)).await.unwrap();
        assert_eq!(
            limiter.reserve("k", 10.0).await.unwrap(),
            Duration::from_secs(3)
        );
        assert_eq!(
            limiter.reserve("other", 10.0).await.unwrap(),
            Duration::ZERO
        );
    }
}
