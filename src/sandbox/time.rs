//! The clock control: "+1 hour", "+1 day". Moves warmline's calendar
//! ([`crate::clock`]) forward and lets every clock-driven part see the time
//! pass — the periodic jobs (triggers, warmth decay, approval reminders,
//! campaign progress, the digest) and the dispatcher's promotion of
//! scheduled messages.
//!
//! Time passes in steps of [`STEP`], each followed by the dispatcher's
//! upkeep (which promotes scheduled messages that came due), and every
//! [`JOBS_EVERY`] by one run of every periodic job, as if the process had
//! been up all along. A jump of a day in one go would look to the
//! dispatcher like a day of downtime (scheduled messages more than
//! `dispatcher.stale_grace_minutes` late wait for a person to confirm
//! them), and the digest would miss its hour. The step stays under that
//! grace; the jobs run less often than in real time (their work is per
//! hour or per day: reminders, revivals, the digest), which keeps "+1 day"
//! to seconds.
//!
//! One advance runs at a time (a mutex), so two clicks do not interleave
//! their steps.

use std::sync::LazyLock;

use chrono::Duration;

use super::Sandbox;

/// How far the clock moves between two upkeeps of the dispatcher.
pub const STEP: Duration = Duration::minutes(5);
/// How much simulated time passes between two runs of the periodic jobs.
pub const JOBS_EVERY: Duration = Duration::minutes(30);
/// The most one request may advance.
pub const MAX_ADVANCE: Duration = Duration::days(7);

static ONE_AT_A_TIME: LazyLock<tokio::sync::Mutex<()>> = LazyLock::new(Default::default);

#[derive(Debug, thiserror::Error)]
pub enum AdvanceError {
    #[error("advance by a positive number of seconds, at most {} days", MAX_ADVANCE.num_days())]
    OutOfRange,
}

/// Runs every periodic job once, now (those their settings turn off are
/// skipped). A failure is logged and the other jobs still run.
pub async fn run_jobs(sandbox: &Sandbox) {
    let app = sandbox.app();
    let now = crate::clock::now();
    for job in sandbox.jobs() {
        if job.period(app).is_err() {
            continue;
        }
        if let Err(e) = job.tick(app, now).await {
            tracing::warn!(
                job = job.name(),
                error = format!("{e:#}"),
                "a periodic job failed in the sandbox"
            );
        }
    }
    sandbox.workspace().touch();
}

/// Moves the clock forward by `by`, in steps; returns the new offset.
pub async fn advance(sandbox: &Sandbox, by: Duration) -> Result<Duration, AdvanceError> {
    if by <= Duration::zero() || by > MAX_ADVANCE {
        return Err(AdvanceError::OutOfRange);
    }
    let _one = ONE_AT_A_TIME.lock().await;
    let app = sandbox.app();
    let mut remaining = by;
    let mut since_jobs = Duration::zero();
    while remaining > Duration::zero() {
        let step = remaining.min(STEP);
        crate::clock::advance(step);
        remaining -= step;
        since_jobs += step;
        if let Err(e) = app.dispatcher.upkeep(false).await {
            tracing::warn!(
                error = format!("{e:#}"),
                "dispatcher upkeep failed while advancing the clock"
            );
        }
        if since_jobs >= JOBS_EVERY || remaining <= Duration::zero() {
            since_jobs = Duration::zero();
            run_jobs(sandbox).await;
        }
    }
    app.dispatcher.wake();
    sandbox.workspace().touch();
    tracing::info!(
        advanced_by_secs = by.num_seconds(),
        now = %crate::clock::now(),
        "sandbox clock moved forward"
    );
    Ok(crate::clock::offset())
}
