//! How a contact is named to the team: Slack cards, prompts, reports,
//! approval requests and alerts all use [`display_name`].
//!
//! Invariants:
//! - One rule everywhere: the person's name when one is known; else their
//!   email, masked; else their phone, masked; else `contact #id`. An
//!   address never appears in clear in a display name, because display
//!   names travel into channels and logs (fields that show the address
//!   itself, such as the card's email field, show it on purpose).
//! - Blank and whitespace-only name parts count as unknown.

use crate::domain::{mask_email, mask_phone};

/// "First Last" from the parts that are present and not blank; `None` when
/// neither is.
pub fn full_name(first: Option<&str>, last: Option<&str>) -> Option<String> {
    let name = [first, last]
        .into_iter()
        .flatten()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    (!name.is_empty()).then_some(name)
}

/// The contact's name, else the masked email, else the masked phone, else
/// `contact #id`.
pub fn display_name(
    id: i64,
    first: Option<&str>,
    last: Option<&str>,
    email: Option<&str>,
    phone: Option<&str>,
) -> String {
    if let Some(name) = full_name(first, last) {
        name
    } else if let Some(e) = present(email) {
        mask_email(e)
    } else if let Some(p) = present(phone) {
        mask_phone(p)
    } else {
        format!("contact #{id}")
    }
}

/// `s` trimmed, when anything is left.
fn present(s: Option<&str>) -> Option<&str> {
    s.map(str::trim).filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_wins_when_known() {
        assert_eq!(
            display_name(1, Some("Ada"), Some("Lovelace"), Some("ada@x.org"), None),
            "Ada Lovelace"
        );
        assert_eq!(
            display_name(1, None, Some(" Lovelace "), Some("ada@x.org"), None),
            "Lovelace"
        );
        assert_eq!(full_name(Some("Ada"), None).as_deref(), Some("Ada"));
    }

    #[test]
    fn without_a_name_the_address_is_masked() {
        let by_email = display_name(2, None, Some(" "), Some("ada@x.org"), Some("+447700900123"));
        assert_eq!(by_email, mask_email("ada@x.org"));
        assert!(!by_email.contains("ada@"), "{by_email}");

        let by_phone = display_name(3, Some(""), None, Some(""), Some("+447700900123"));
        assert_eq!(by_phone, mask_phone("+447700900123"));
        assert!(!by_phone.contains("900123"), "{by_phone}");
    }

    #[test]
    fn with_nothing_known_the_id_names_the_contact() {
        assert_eq!(display_name(4, None, None, None, None), "contact #4");
        assert_eq!(full_name(Some(" "), Some("")), None);
    }
}
