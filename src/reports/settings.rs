//! `[digest]`: when the daily digest is posted. A leaf module: the settings
//! tree reads it without depending on the reports.

use chrono::NaiveTime;
use chrono_tz::Tz;
use serde::Deserialize;

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
