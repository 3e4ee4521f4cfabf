//! Our stored names as SQL text, so a query's state list is written from
//! the enums instead of spelled out beside them.
//!
//! Inlining is safe because the names are our own constants (lower case
//! letters and `_`, checked by the tests of each enum), never input. They
//! are inlined rather than bound on purpose: PostgreSQL only uses a partial
//! index (`messages_claim`, `messages_due`) when it can prove the query's
//! predicate from literals, which bound parameters would defeat.

/// `'name'`.
pub(super) fn literal(name: &'static str) -> String {
    debug_assert!(is_plain(name), "{name} is not a plain stored name");
    format!("'{name}'")
}

/// `'a', 'b', 'c'`, for `IN (…)`.
pub(super) fn list(names: impl Iterator<Item = &'static str>) -> String {
    names.map(literal).collect::<Vec<_>>().join(", ")
}

/// Lower-case ASCII letters and `_` only: nothing that could end a literal.
pub(super) fn is_plain(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
}

/// Adds `sql()` and `sql_list()` to an enum with `const fn as_str`.
macro_rules! sql_names {
    ($t:ty) => {
        impl $t {
            /// The stored name as an SQL literal: `'name'`.
            pub fn sql(self) -> String {
                $crate::domain::sql::literal(self.as_str())
            }

            /// The stored names as an SQL list for `IN (…)`: `'a', 'b'`.
            pub fn sql_list(values: &[Self]) -> String {
                $crate::domain::sql::list(values.iter().map(|v| v.as_str()))
            }
        }
    };
}
pub(super) use sql_names;

#[cfg(test)]
mod tests {
    use super::super::{
        ApprovalState, CampaignState, Channel, MessageKind, MessageState, SkipReason,
    };
    use super::*;

    #[test]
    fn every_stored_name_is_safe_to_inline() {
        let names = Channel::ALL
            .iter()
            .map(|v| v.as_str())
            .chain(MessageKind::ALL.iter().map(|v| v.as_str()))
            .chain(MessageState::ALL.iter().map(|v| v.as_str()))
            .chain(SkipReason::ALL.iter().map(|v| v.as_str()))
            .chain(CampaignState::ALL.iter().map(|v| v.as_str()))
            .chain(ApprovalState::ALL.iter().map(|v| v.as_str()));
        for n in names {
            assert!(is_plain(n), "{n}");
        }
    }

    #[test]
    fn lists_are_comma_separated_literals() {
        assert_eq!(list(["a", "b_c"].into_iter()), "'a', 'b_c'");
        assert_eq!(literal("sent"), "'sent'");
    }
}
