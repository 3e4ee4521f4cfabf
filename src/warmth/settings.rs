//! `[warmth]`: the warmth model's half-life and the decay pass. A leaf
//! module (with the pure model): the settings tree reads it without
//! depending on the warmth jobs.

use serde::Deserialize;

use super::model;

/// `[warmth]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(try_from = "RawWarmthSettings")]
pub struct WarmthSettings {
    /// Days after which an interaction counts half as much (default 30).
    pub half_life_days: f64,
    /// How often the decay pass runs (default 60). The first pass runs one
    /// interval after start.
    pub decay_interval_minutes: u64,
    /// Score writes per decay-pass transaction (default 20,000): bounds how
    /// long the pass holds SQLite's write lock at a time (each commit is an
    /// fsync, so fewer, larger ones are faster).
    pub batch_contacts: usize,
}

impl Default for WarmthSettings {
    fn default() -> Self {
        Self {
            half_life_days: 30.0,
            decay_interval_minutes: 60,
            batch_contacts: 20_000,
        }
    }
}

impl WarmthSettings {
    /// The model parameters these settings give.
    pub fn params(&self) -> model::Params {
        model::Params {
            half_life_days: self.half_life_days,
            ..model::Params::default()
        }
    }
}

/// What `[warmth]` deserializes from; checked into [`WarmthSettings`] so a
/// bad value stops start-up naming the key.
#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawWarmthSettings {
    half_life_days: f64,
    decay_interval_minutes: u64,
    batch_contacts: usize,
}

impl Default for RawWarmthSettings {
    fn default() -> Self {
        let d = WarmthSettings::default();
        Self {
            half_life_days: d.half_life_days,
            decay_interval_minutes: d.decay_interval_minutes,
            batch_contacts: d.batch_contacts,
        }
    }
}

impl TryFrom<RawWarmthSettings> for WarmthSettings {
    type Error = String;

    fn try_from(r: RawWarmthSettings) -> Result<Self, String> {
        if !(r.half_life_days.is_finite() && r.half_life_days >= 1.0) {
            return Err("warmth.half_life_days must be at least 1 day".into());
        }
        if r.decay_interval_minutes == 0 {
            return Err("warmth.decay_interval_minutes must be at least 1".into());
        }
        if r.batch_contacts == 0 {
            return Err("warmth.batch_contacts must be at least 1".into());
        }
        Ok(Self {
            half_life_days: r.half_life_days,
            decay_interval_minutes: r.decay_interval_minutes,
            batch_contacts: r.batch_contacts,
        })
    }
}
