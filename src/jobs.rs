//! Periodic jobs: the loops that run on a clock (triggers, the warmth decay
//! pass, approval reminders, campaign progress, the daily digest).
//!
//! A job is one [`Periodic`] implementation beside the code it drives; the
//! list of jobs lives at the wiring point (`crate::startup`). [`start`] runs
//! each on its own task with the same rules, so no job hand-rolls its loop:
//! - the first run is one period after start-up (start-up has enough to do);
//! - a run that overruns delays the next one rather than bunching them
//!   (`MissedTickBehavior::Delay`), so one job never runs twice at once in
//!   a process (across processes each job guards its own work in the
//!   database);
//! - a failure is logged once with the job's name and counted
//!   (`periodic_job_failures_total{job}`), and the job runs again next
//!   period;
//! - shutdown stops the loop between runs; a run in progress finishes
//!   (shutdown's grace period bounds it).

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::state::App;

/// A job on a clock. `C` is what it runs with: the application's state in
/// production, anything in the runner's own tests.
#[async_trait]
pub trait Periodic<C = App>: Send + Sync + 'static {
    /// Stable name, for logs and metrics.
    fn name(&self) -> &'static str;
    /// How often it runs; `Err(why)` when its settings turn it off (said
    /// once, naming the setting, in the log).
    fn period(&self, ctx: &C) -> Result<Duration, &'static str>;
    /// One run at `now`.
    async fn tick(&self, ctx: &C, now: DateTime<Utc>) -> anyhow::Result<()>;
}

/// Starts every job on `loops` until `token` is cancelled.
pub fn start<C: Clone + Send + Sync + 'static>(
    ctx: &C,
    jobs: Vec<Arc<dyn Periodic<C>>>,
    loops: &TaskTracker,
    token: CancellationToken,
) {
    for job in jobs {
        let period = match job.period(ctx) {
            Ok(p) => p.max(Duration::from_millis(1)),
            Err(why) => {
                tracing::info!(job = job.name(), "{why}");
                continue;
            }
        };
        let ctx = ctx.clone();
        let token = token.clone();
        loops.spawn(async move { run(&ctx, job.as_ref(), period, token).await });
    }
}

async fn run<C: 'static>(
    ctx: &C,
    job: &dyn Periodic<C>,
    period: Duration,
    token: CancellationToken,
) {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = token.cancelled() => break,
            _ = ticks.tick() => {}
        }
        let started = std::time::Instant::now();
        let outcome = job.tick(ctx, crate::clock::now()).await;
        metrics::histogram!("periodic_job_seconds", "job" => job.name())
            .record(started.elapsed().as_secs_f64());
        if let Err(e) = outcome {
            metrics::counter!("periodic_job_failures_total", "job" => job.name()).increment(1);
            tracing::error!(
                job = job.name(),
                error = format!("{e:#}"),
                "periodic job failed; it runs again next period"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// Records its runs; fails on the runs listed.
    struct Counting {
        fail_on: Vec<usize>,
        off: bool,
    }

    type Runs = Arc<Mutex<Vec<tokio::time::Instant>>>;

    #[async_trait]
    impl Periodic<Runs> for Counting {
        fn name(&self) -> &'static str {
            "counting"
        }
        fn period(&self, _: &Runs) -> Result<Duration, &'static str> {
            if self.off {
                Err("off by its settings")
            } else {
                Ok(Duration::from_secs(60))
            }
        }
        async fn tick(&self, runs: &Runs, _now: DateTime<Utc>) -> anyhow::Result<()> {
            let n = {
                let mut r = runs.lock().unwrap();
                r.push(tokio::time::Instant::now());
                r.len()
            };
            if self.fail_on.contains(&n) {
                anyhow::bail!("run {n} failed");
            }
            Ok(())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn jobs_run_each_period_after_the_first_survive_failures_and_stop_on_shutdown() {
        // Arrange: one job failing on its second run, one turned off.
        let runs: Runs = Arc::default();
        let loops = TaskTracker::new();
        let token = CancellationToken::new();
        let t0 = tokio::time::Instant::now();
        let jobs: Vec<Arc<dyn Periodic<Runs>>> = vec![
            Arc::new(Counting {
                fail_on: vec![2],
                off: false,
            }),
            Arc::new(Counting {
                fail_on: vec![],
                off: true,
            }),
        ];

        // Act: three and a half periods, then shutdown.
        start(&runs, jobs, &loops, token.clone());
        tokio::time::sleep(Duration::from_secs(210)).await;
        token.cancel();
        loops.close();
        loops.wait().await;

        // Assert: runs at 60, 120 (failed) and 180 s, none at start-up, none
        // from the job that is off, none after shutdown.
        let at: Vec<u64> = runs
            .lock()
            .unwrap()
            .iter()
            .map(|i| (*i - t0).as_secs())
            .collect();
        assert_eq!(at, [60, 120, 180]);
    }
}
