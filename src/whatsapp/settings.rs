//! `[whatsapp]`: what warmline's own WhatsApp rules need — the messaging
//! tier (how many unique people the number may start conversations with in
//! a rolling 24 h). A leaf module: the settings tree reads it without
//! depending on the channel's code.

use serde::{Deserialize, Deserializer};

/// `[whatsapp]`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct WhatsappChannelSettings {
    /// Unique recipients of business-initiated conversations per rolling
    /// 24 h: 250 (Meta's starting tier), 1000, 2000, 10000, 100000 or
    /// `"unlimited"`.
    pub messaging_tier: MessagingTier,
}

/// A messaging tier: a cap on unique recipients per rolling 24 h, or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessagingTier(Option<u32>);

impl MessagingTier {
    /// The tiers Meta assigns (the per-number scheme and the 2025
    /// portfolio scheme's 2,000 step).
    pub const TIERS: [u32; 5] = [250, 1_000, 2_000, 10_000, 100_000];
    pub const UNLIMITED: Self = Self(None);

    pub fn limited(n: u32) -> Result<Self, String> {
        if Self::TIERS.contains(&n) {
            Ok(Self(Some(n)))
        } else {
            Err(format!(
                "{n} is not a WhatsApp messaging tier: use 250, 1000, 2000, 10000, 100000 or \"unlimited\""
            ))
        }
    }

    /// The cap, `None` when unlimited.
    pub fn limit(self) -> Option<u32> {
        self.0
    }

    /// How people read it ("250 people / 24 h", "unlimited").
    pub fn words(self) -> String {
        match self.0 {
            Some(n) => format!("{n} people / 24 h"),
            None => "unlimited".into(),
        }
    }
}

impl Default for MessagingTier {
    fn default() -> Self {
        Self(Some(250))
    }
}

impl<'de> Deserialize<'de> for MessagingTier {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u32),
            Text(String),
        }
        let tier = match Raw::deserialize(d)? {
            Raw::Number(n) => Self::limited(n),
            Raw::Text(t) if t.trim().eq_ignore_ascii_case("unlimited") => Ok(Self::UNLIMITED),
            Raw::Text(t) => t
                .trim()
                .replace(['_', ','], "")
                .parse::<u32>()
                .map_err(|_| format!("'{t}' is not a WhatsApp messaging tier: use 250, 1000, 2000, 10000, 100000 or \"unlimited\""))
                .and_then(Self::limited),
        };
        tier.map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_tier_is_250() {
        let s: WhatsappChannelSettings = toml::from_str("").unwrap();
        assert_eq!(s.messaging_tier.limit(), Some(250));
    }

    #[test]
    fn tiers_are_numbers_or_unlimited_and_nothing_else() {
        let s: WhatsappChannelSettings = toml::from_str("messaging_tier = 10000").unwrap();
        assert_eq!(s.messaging_tier.limit(), Some(10_000));
        let s: WhatsappChannelSettings = toml::from_str("messaging_tier = '1000'").unwrap();
        assert_eq!(s.messaging_tier.limit(), Some(1_000));
        let s: WhatsappChannelSettings = toml::from_str("messaging_tier = 'Unlimited'").unwrap();
        assert_eq!(s.messaging_tier.limit(), None);
        let err = toml::from_str::<WhatsappChannelSettings>("messaging_tier = 300").unwrap_err();
        assert!(
            err.to_string().contains("not a WhatsApp messaging tier"),
            "{err}"
        );
        let err = toml::from_str::<WhatsappChannelSettings>("tier = 250").unwrap_err();
        assert!(err.to_string().contains("tier"), "{err}");
    }
}
