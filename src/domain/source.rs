//! The ledger's `source` names that carry a rule: which sends are answers to
//! a keyword the recipient just sent.

const REPLY_SOURCE_PREFIX: &str = "inbound:";

/// The ledger source of the answer to inbound message `inbound_id`.
pub fn reply_source(inbound_id: i64) -> String {
    format!("{REPLY_SOURCE_PREFIX}{inbound_id}")
}

/// Whether a ledger source is an answer to a keyword the recipient just
/// sent: such an answer is expected at once (FCC 24-18: a STOP confirmation
/// within five minutes), so quiet hours do not hold it back.
pub fn is_reply_source(source: &str) -> bool {
    source.starts_with(REPLY_SOURCE_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_recognised_by_their_source() {
        assert!(is_reply_source(&reply_source(7)));
        assert!(!is_reply_source("campaign:7"));
    }
}
