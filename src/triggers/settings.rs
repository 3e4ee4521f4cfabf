//! `[triggers]`: when the warmth triggers run and what they send. A leaf
//! module: the settings tree reads it without depending on the triggers.

use serde::Deserialize;

/// `[triggers]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TriggerSettings {
    /// Whether the trigger loop runs in `serve`.
    pub enabled: bool,
    /// Seconds between two ticks (detection plus due steps).
    pub interval_secs: u64,
    /// A contact created within this many days, and never onboarded, gets
    /// the onboarding sequence.
    pub onboarding_window_days: u32,
    /// The channel trigger messages go out on: `email` or `sms` (each step
    /// has a template for both; SMS texts get the sender's name and the
    /// STOP footer when composed).
    pub channel: crate::domain::Channel,
}

impl Default for TriggerSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            interval_secs: 300,
            onboarding_window_days: 7,
            channel: crate::domain::Channel::Email,
        }
    }
}
