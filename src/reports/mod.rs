//! Reports: the numbers behind the App Home tab and the daily digest.
//!
//! [`stats`] holds the set-based queries both read (pending approvals,
//! campaigns, cold contacts, delivery / unsubscribe / complaint rates);
//! [`digest`] posts the daily digest to `WARMLINE_DIGEST_CHANNEL` once per
//! local day.
//!
//! Invariants:
//! - Every query takes its window (`from`, `to`) or `now` as an argument, so
//!   tests pin time without sleeping.
//! - Nothing here writes to the ledger; the only writes are the digest's
//!   claim and the cold-crossing marks (`cold_marks`), both idempotent.
//! - Contacts are named by name, else by a masked address: nothing posted to
//!   Slack carries a whole email address or phone number.

pub mod digest;
pub mod stats;

use chrono::NaiveTime;
use chrono_tz::Tz;
use serde::Deserialize;

/// The targets rates are held against (docs: reliability-and-compliance §8).
pub const UNSUBSCRIBE_TARGET: f64 = 0.005;
pub const COMPLAINT_TARGET: f64 = 0.003;

/// `[digest]`: when the daily digest is posted, in local time.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "RawDigestSettings")]
pub struct DigestSettings {
    /// Local wall-clock time the digest is due at (default 09:00).
    pub time: NaiveTime,
    /// The zone `time` and "yesterday" are read in (default America/New_York).
    pub timezone: Tz,
}

impl Default for DigestSettings {
    fn default() -> Self {
        Self {
            time: NaiveTime::from_hms_opt(9, 0, 0).expect("09:00 is a time"),
            timezone: chrono_tz::America::New_York,
        }
    }
}

/// What `[digest]` deserializes from; checked so a bad value stops start-up
/// naming the key.
#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawDigestSettings {
    time: String,
    timezone: String,
}

impl Default for RawDigestSettings {
    fn default() -> Self {
        Self {
            time: "09:00".into(),
            timezone: "America/New_York".into(),
        }
    }
}

impl TryFrom<RawDigestSettings> for DigestSettings {
    type Error = String;

    fn try_from(r: RawDigestSettings) -> Result<Self, String> {
        let time = NaiveTime::parse_from_str(&r.time, "%H:%M")
            .map_err(|_| format!("digest.time must be HH:MM (24-hour), not '{}'", r.time))?;
        let timezone: Tz = r.timezone.parse().map_err(|_| {
            format!(
                "digest.timezone must be an IANA time zone such as America/New_York, not '{}'",
                r.timezone
            )
        })?;
        Ok(Self { time, timezone })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_to_nine_in_new_york() {
        let d = DigestSettings::default();
        assert_eq!(d.time, NaiveTime::from_hms_opt(9, 0, 0).unwrap());
        assert_eq!(d.timezone, chrono_tz::America::New_York);
    }

    #[test]
    fn a_bad_time_or_zone_names_the_key() {
        let bad_time = DigestSettings::try_from(RawDigestSettings {
            time: "9am".into(),
            ..Default::default()
        })
        .unwrap_err();
        assert!(bad_time.contains("digest.time"), "{bad_time}");
        let bad_zone = DigestSettings::try_from(RawDigestSettings {
            timezone: "Mars/Olympus".into(),
            ..Default::default()
        })
        .unwrap_err();
        assert!(bad_zone.contains("digest.timezone"), "{bad_zone}");
    }
}
