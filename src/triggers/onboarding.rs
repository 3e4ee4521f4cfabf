//! A new contact: welcome (and what to expect), our story, one resource —
//! at days 0, 3 and 7.
//!
//! "New" means created within `[triggers] onboarding_window_days` and never
//! onboarded. **Crossing key:** `"1"` — a contact is new once, so the unique
//! index makes onboarding fire at most once per contact, ever.
//!
//! Note for first deployments: contacts imported in bulk are all "new" on
//! the day of the import. Each onboarding step still goes through the
//! approval policy (a new contact is below the warmth floor, so by default
//! each asks for approval); set `onboarding_window_days = 0` or
//! `[triggers] enabled = false` for the import if that is not wanted.

use super::{Kind, Step};

/// A contact is new once: its one crossing.
pub const CROSSING: &str = "1";

pub const STEPS: &[Step] = &[
    Step {
        template: "onboarding_welcome",
        sms_template: "onboarding_welcome_sms",
        day: 0,
    },
    Step {
        template: "onboarding_story",
        sms_template: "onboarding_story_sms",
        day: 3,
    },
    Step {
        template: "onboarding_resource",
        sms_template: "onboarding_resource_sms",
        day: 7,
    },
];

/// Starts a run for every eligible new contact: `$1` now, `$2` channel,
/// `$3` the oldest `created_at` that is still new.
pub(crate) fn detect_sql(address: &str) -> String {
    super::detect_sql(
        Kind::Onboarding,
        &format!("'{CROSSING}'"),
        "c.created_at >= $3",
        address,
    )
}
