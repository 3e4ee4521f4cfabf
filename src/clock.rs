//! The wall clock every feature reads: [`now`].
//!
//! In production it is `Utc::now()`. The sandbox (`warmline sandbox`) can
//! move it forward ([`advance`]) so that triggers, reminders, sequences and
//! the digest can be seen without waiting a day; nothing else may.
//!
//! Invariants:
//! - The offset only grows: time never runs backwards for a process, so
//!   "due" work never becomes un-due and ledger timestamps stay ordered.
//! - Only `crate::sandbox` calls [`advance`] (the architecture test checks
//!   it), so in a process serving a real workspace the offset is always
//!   zero and [`now`] is exactly the system clock.
//! - Tokio's monotonic clock (timeouts, pacing, backoff) is not shifted:
//!   those measure real waiting, not the calendar.

use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Duration, Utc};

/// How far the calendar has been moved forward, in milliseconds.
static OFFSET_MS: AtomicI64 = AtomicI64::new(0);

/// The current time as warmline sees it.
pub fn now() -> DateTime<Utc> {
    Utc::now() + offset()
}

/// How far [`now`] is ahead of the system clock.
pub fn offset() -> Duration {
    Duration::milliseconds(OFFSET_MS.load(Ordering::Relaxed))
}

/// Moves the clock forward by `by` (a negative or zero amount is ignored:
/// see the module's invariants). Returns the new offset.
pub(crate) fn advance(by: Duration) -> Duration {
    let ms = by.num_milliseconds().max(0);
    Duration::milliseconds(OFFSET_MS.fetch_add(ms, Ordering::Relaxed) + ms)
}
