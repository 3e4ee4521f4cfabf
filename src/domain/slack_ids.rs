//! Slack identifiers. Slack ids are upper-case alphanumerics with a kind
//! prefix: `U`/`W` for users, `C`/`G`/`D` for conversations.

use std::fmt;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("'{value}' is not a Slack {kind} id")]
pub struct SlackIdError {
    pub kind: &'static str,
    pub value: String,
}

fn well_formed(raw: &str, prefixes: &[char]) -> bool {
    let mut chars = raw.chars();
    matches!(chars.next(), Some(c) if prefixes.contains(&c))
        && raw.len() >= 3
        && raw.len() <= 32
        && raw
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

macro_rules! slack_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $prefixes:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub fn parse(raw: &str) -> Result<Self, SlackIdError> {
                let raw = raw.trim();
                if well_formed(raw, $prefixes) {
                    Ok(Self(raw.to_string()))
                } else {
                    Err(SlackIdError { kind: $kind, value: raw.to_string() })
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

slack_id!(
    /// A Slack user id (`U…`, or `W…` on Enterprise Grid).
    SlackUserId, "user", &['U', 'W']
);
slack_id!(
    /// A Slack conversation id: public (`C…`), private (`G…`) or DM (`D…`).
    SlackChannelId, "channel", &['C', 'G', 'D']
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids() {
        assert!(SlackUserId::parse("U0123ABCD").is_ok());
        assert!(SlackUserId::parse("W0123ABCD").is_ok());
        assert!(SlackUserId::parse("u0123abcd").is_err());
        assert!(SlackUserId::parse("C0123ABCD").is_err());
        assert!(SlackUserId::parse("@ann").is_err());
    }

    #[test]
    fn channel_ids() {
        assert!(SlackChannelId::parse("C0123ABCD").is_ok());
        assert!(SlackChannelId::parse("G0123ABCD").is_ok());
        assert!(SlackChannelId::parse("#general").is_err());
    }
}
