//! `[dispatcher]`, `[caps]` and `[quiet_hours]`: how the dispatcher works, and
//! the sending rules its last-moment checks apply. A leaf module: the
//! settings tree reads it without depending on the dispatcher.

use serde::Deserialize;

use crate::domain::Channel;

/// `[dispatcher]` in `warmline.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DispatcherSettings {
    /// Worker loops per provider in this process.
    pub workers_per_provider: usize,
    /// Most messages one claim takes.
    pub batch_size: usize,
    /// Provider requests in flight per worker.
    pub concurrency: usize,
    pub heartbeat_secs: u64,
    /// A worker silent this long is dead; its messages are recovered.
    pub lease_secs: u64,
    pub poll_interval_ms: u64,
    /// Attempts in all before a retryable error becomes a failure.
    pub max_attempts: u32,
    pub retry_base_secs: f64,
    pub retry_max_secs: u64,
    /// A schedule later than this when warmline comes back waits for a person.
    pub stale_grace_minutes: i64,
    /// Share of a provider's rate actually used, leaving room for timer jitter.
    pub rate_headroom: f64,
}

impl Default for DispatcherSettings {
    fn default() -> Self {
        Self {
            workers_per_provider: 2,
            batch_size: 500,
            concurrency: 4,
            heartbeat_secs: 2,
            lease_secs: 10,
            poll_interval_ms: 500,
            max_attempts: 8,
            retry_base_secs: 5.0,
            retry_max_secs: 3600,
            stale_grace_minutes: 15,
            rate_headroom: 0.97,
        }
    }
}

/// `[caps]`: marketing messages per contact, across campaigns, triggers and
/// nudges. Transactional messages are not capped.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CapsSettings {
    pub marketing_per_day: u32,
    pub marketing_per_week: u32,
}

impl Default for CapsSettings {
    fn default() -> Self {
        Self {
            marketing_per_day: 1,
            marketing_per_week: 3,
        }
    }
}

/// One channel's sending window, in the recipient's local time.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Window {
    /// `HH:MM`, first minute sending is allowed.
    pub start: String,
    /// `HH:MM`, first minute sending is no longer allowed.
    pub end: String,
}

/// `[quiet_hours]`: `default_timezone` for contacts without one, and a window
/// per channel (`[quiet_hours.sms] start = "08:00" end = "21:00"`). Channels
/// without a window send at any hour.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QuietHoursSettings {
    pub default_timezone: String,
    pub sms: Option<Window>,
    pub whatsapp: Option<Window>,
    pub instagram: Option<Window>,
    pub email: Option<Window>,
}

impl Default for QuietHoursSettings {
    fn default() -> Self {
        // TCPA: no calls or texts before 8 am or after 9 pm local time.
        let tcpa = Window {
            start: "08:00".into(),
            end: "21:00".into(),
        };
        Self {
            default_timezone: "America/New_York".into(),
            sms: Some(tcpa.clone()),
            whatsapp: Some(tcpa),
            instagram: None,
            email: None,
        }
    }
}

impl QuietHoursSettings {
    pub fn window(&self, channel: Channel) -> Option<&Window> {
        match channel {
            Channel::Sms => self.sms.as_ref(),
            Channel::Whatsapp => self.whatsapp.as_ref(),
            Channel::Instagram => self.instagram.as_ref(),
            Channel::Email => self.email.as_ref(),
        }
    }
}
