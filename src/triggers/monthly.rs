//! An active, warm contact (status `active`, warmth above 50): one personal
//! check-in a month.
//!
//! **Crossing key:** the month of the tick, `YYYY-MM` in UTC. Each month a
//! still-warm contact gets one new key, so the unique index allows exactly
//! one check-in per contact per calendar month, however often detection
//! runs; a contact that is not warm in some month simply gets none.

use chrono::{DateTime, Utc};

use super::{Kind, Step};

/// The line above which an active contact gets monthly check-ins.
pub const THRESHOLD: f64 = 50.0;

pub const STEPS: &[Step] = &[Step {
    template: "monthly_checkin",
    sms_template: "monthly_checkin_sms",
    day: 0,
}];

/// The crossing key for a tick at `now`: its month in UTC.
pub fn crossing_key(now: DateTime<Utc>) -> String {
    now.format("%Y-%m").to_string()
}

/// Starts a run for every eligible warm contact: `$1` now, `$2` channel,
/// `$3` the threshold, `$4` this month's key.
pub(crate) fn detect_sql(address: &str) -> String {
    super::detect_sql(
        Kind::Monthly,
        "$4",
        "c.status = 'active' AND c.warmth > $3",
        address,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn the_key_is_the_utc_month() {
        let late = Utc.with_ymd_and_hms(2026, 11, 30, 23, 59, 59).unwrap();
        assert_eq!(crossing_key(late), "2026-11");
        assert_eq!(crossing_key(late + chrono::Duration::seconds(1)), "2026-12");
    }
}
