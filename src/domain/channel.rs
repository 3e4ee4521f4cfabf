//! The channels warmline sends on and the kinds of message it sends.
//!
//! These are the only places their names are spelled: the database, the
//! settings, the API and Slack all go through [`Channel::as_str`] /
//! [`Channel::parse`] (and the same for [`MessageKind`]), so a new channel is
//! one variant here and its name cannot drift between modules.

use std::{fmt, str::FromStr};

use sea_orm::{DeriveActiveEnum, EnumIter};
use serde::{Deserialize, Serialize};

/// A channel a message travels on; one provider carries each.
///
/// Stored as its name (`TEXT`); sea-orm decodes a column or a raw query's
/// field straight into it, and a name that is not a channel is a decoding
/// error rather than a string that travels on.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    EnumIter,
    DeriveActiveEnum,
)]
#[serde(rename_all = "lowercase")]
#[sea_orm(rs_type = "String", db_type = "Text")]
pub enum Channel {
    #[sea_orm(string_value = "email")]
    Email,
    #[sea_orm(string_value = "sms")]
    Sms,
    #[sea_orm(string_value = "whatsapp")]
    Whatsapp,
    #[sea_orm(string_value = "instagram")]
    Instagram,
}

impl Channel {
    pub const ALL: [Channel; 4] = [
        Channel::Email,
        Channel::Sms,
        Channel::Whatsapp,
        Channel::Instagram,
    ];

    /// The stored name (database, settings, API).
    pub const fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
            Channel::Whatsapp => "whatsapp",
            Channel::Instagram => "instagram",
        }
    }

    /// The stored name back to the channel; `None` for anything else (exact,
    /// lower case: stored names are never folded).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// How a person would name it in a sentence.
    pub const fn label(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "SMS",
            Channel::Whatsapp => "WhatsApp",
            Channel::Instagram => "Instagram",
        }
    }

    /// Whether a contact record holds the address for this channel (its
    /// email or phone column). Instagram is addressed by an id recorded on
    /// each message, so a contacts CSV cannot carry consent for it.
    pub const fn has_contact_address(self) -> bool {
        matches!(self, Channel::Email | Channel::Sms | Channel::Whatsapp)
    }

    /// Every stored name, comma-separated, for error messages.
    pub fn names() -> String {
        Self::ALL.map(Channel::as_str).join(", ")
    }
}

super::sql::sql_names!(Channel);
super::sql::sql_names!(MessageKind);

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not a channel.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown channel '{0}' (expected one of: {names})", names = Channel::names())]
pub struct UnknownChannel(pub String);

impl FromStr for Channel {
    type Err = UnknownChannel;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s).ok_or_else(|| UnknownChannel(s.to_string()))
    }
}

/// Marketing messages need consent and carry unsubscribe means;
/// transactional ones (a receipt, a password reset, the answer to a STOP)
/// are sent because the recipient asked for them.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, EnumIter, DeriveActiveEnum,
)]
#[serde(rename_all = "lowercase")]
#[sea_orm(rs_type = "String", db_type = "Text")]
pub enum MessageKind {
    #[sea_orm(string_value = "marketing")]
    Marketing,
    #[sea_orm(string_value = "transactional")]
    Transactional,
}

impl MessageKind {
    pub const ALL: [MessageKind; 2] = [MessageKind::Marketing, MessageKind::Transactional];

    pub const fn as_str(self) -> &'static str {
        match self {
            MessageKind::Marketing => "marketing",
            MessageKind::Transactional => "transactional",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for MessageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not a message kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown message kind '{0}' (expected marketing or transactional)")]
pub struct UnknownKind(pub String);

impl FromStr for MessageKind {
    type Err = UnknownKind;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s).ok_or_else(|| UnknownKind(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_channel_round_trips_through_its_name_and_serde() {
        for c in Channel::ALL {
            assert_eq!(Channel::parse(c.as_str()), Some(c));
            assert_eq!(c.as_str().parse::<Channel>(), Ok(c));
            let json = serde_json::to_string(&c).unwrap();
            assert_eq!(json, format!("\"{}\"", c.as_str()));
            assert_eq!(serde_json::from_str::<Channel>(&json).unwrap(), c);
        }
    }

    #[test]
    fn stored_names_are_exact() {
        assert_eq!(Channel::parse("SMS"), None);
        assert_eq!(Channel::parse(" email"), None);
        let err = "fax".parse::<Channel>().unwrap_err().to_string();
        assert_eq!(
            err,
            "unknown channel 'fax' (expected one of: email, sms, whatsapp, instagram)"
        );
    }

    #[test]
    fn kinds_round_trip() {
        for k in MessageKind::ALL {
            assert_eq!(MessageKind::parse(k.as_str()), Some(k));
            assert_eq!(serde_json::to_string(&k).unwrap(), format!("\"{k}\""));
        }
        assert!("bulk".parse::<MessageKind>().is_err());
    }

    #[test]
    fn a_contact_record_addresses_every_channel_but_instagram() {
        let on_record: Vec<_> = Channel::ALL
            .into_iter()
            .filter(|c| c.has_contact_address())
            .collect();
        assert_eq!(on_record, [Channel::Email, Channel::Sms, Channel::Whatsapp]);
    }
}
