//! Went cold: warmth below 25 for a contact we have a history with — a
//! 3-step revival (something of value, a resource, a soft check-in) over
//! 14 days.
//!
//! **Crossing key:** the contact's `last_interaction_at` (RFC 3339, UTC,
//! milliseconds: `2026-11-01T09:30:00.000Z`) at the time it went cold.
//! Warmth only falls by decay, and decay never changes
//! `last_interaction_at`; for the same contact to cross again it must first
//! have a new interaction (which warms it) and then cool down again — and
//! that new interaction gives the new crossing a new key. So the unique
//! index on (contact, trigger, crossing) makes a revival fire once per
//! crossing without remembering anyone's previous score, and however often
//! detection runs.
//!
//! Going cold also takes silence: the last interaction must be at least
//! [`QUIET`] old. A low score right after an interaction means a thin
//! relationship, not a cooled one, and without this rule a reply that
//! stopped a revival (and moved `last_interaction_at`) could start the
//! next revival on the following tick.
//!
//! The approximation, stated: an interaction that leaves a contact below 25
//! also gives it a new key. It cannot start a second revival while one is
//! running (one active run per contact), and a reply stops the running one;
//! so such a contact gets its next revival only once the current one has
//! ended, a week has passed without contact, and it is still cold — which
//! is what a cold contact we touched again, to no effect, calls for.
//!
//! Contacts with no interaction at all (`last_interaction_at` unset) are
//! never "cold": they are new, and onboarding is theirs.

use sea_orm::DbBackend;

use super::{Kind, Step};

/// The line below which a contact is cold.
pub const THRESHOLD: f64 = 25.0;

/// How long without any interaction before a low score counts as cold.
pub const QUIET: chrono::Duration = chrono::Duration::days(7);

pub const STEPS: &[Step] = &[
    Step {
        template: "revival_value",
        sms_template: "revival_value_sms",
        day: 0,
    },
    Step {
        template: "revival_resource",
        sms_template: "revival_resource_sms",
        day: 7,
    },
    Step {
        template: "revival_checkin",
        sms_template: "revival_checkin_sms",
        day: 14,
    },
];

/// The crossing key, in SQL, from `c.last_interaction_at`: the same text on
/// both backends for the same instant, milliseconds truncated (as
/// [`crossing_key`] does).
///
/// SQLite keeps a `DateTime<Utc>` as the RFC 3339 text sqlx writes
/// (`2026-11-01T09:30:00.123456+00:00`, 0, 3, 6 or 9 fraction digits, always
/// `+00:00`), so the key is cut from that text: `strftime('%f')` would
/// round through a floating-point Julian day instead, and could differ from
/// the instant's own milliseconds.
fn crossing_sql(backend: DbBackend) -> &'static str {
    match backend {
        DbBackend::Postgres => {
            "to_char(c.last_interaction_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
        }
        _ => {
            "replace(substr(c.last_interaction_at, 1, 19), ' ', 'T') || '.' || \
             CASE WHEN substr(c.last_interaction_at, 20, 1) = '.' \
             THEN substr(c.last_interaction_at, 21, 3) ELSE '000' END || 'Z'"
        }
    }
}

/// The crossing key of a contact last in touch at `at` (what
/// [`detect_sql`] writes, for tests and tools).
pub fn crossing_key(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Starts a run for every eligible cold contact: `$1` now, `$2` channel,
/// `$3` the threshold, `$4` now minus [`QUIET`].
pub(crate) fn detect_sql(backend: DbBackend, address: &str) -> String {
    super::detect_sql(
        Kind::Cold,
        crossing_sql(backend),
        "c.warmth < $3 AND c.last_interaction_at IS NOT NULL AND c.last_interaction_at <= $4",
        address,
    )
}
