//! Masking of personal data for logs, the audit log and Slack alerts.
//!
//! `j***@example.com` and `+1******4567`: enough for a person to recognise a
//! contact they already know, not enough to harvest one.
//!
//! [`mask_email`] and [`mask_phone`] mask a value known to be an address;
//! [`mask_addresses`] finds addresses inside free text (error
//! messages sent to Sentry) and masks each one the same way. Finding is
//! heuristic and leans towards masking: a bare number of 7 to 15 digits is
//! taken for a phone number.

use std::sync::LazyLock;

use regex::Regex;

/// Masks an email address: first character of the local part, then `***`.
/// Input that is not an address is masked whole.
pub fn mask_email(raw: &str) -> String {
    match raw.rsplit_once('@') {
        Some((local, domain)) if !local.is_empty() => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        _ => "***".to_string(),
    }
}

/// Masks a phone number: keeps a leading `+` and the next digit (the country
/// code's first digit) and the last four digits.
pub fn mask_phone(raw: &str) -> String {
    let digits: Vec<char> = raw.chars().filter(char::is_ascii_digit).collect();
    if digits.len() < 6 {
        return "***".to_string();
    }
    let plus = if raw.trim_start().starts_with('+') {
        "+"
    } else {
        ""
    };
    let head: String = digits[..1].iter().collect();
    let tail: String = digits[digits.len() - 4..].iter().collect();
    let hidden = "*".repeat(digits.len() - 5);
    format!("{plus}{head}{hidden}{tail}")
}

/// An email address anywhere in a text: a local part, `@`, and a domain
/// whose last label is alphabetic (so `warmline@0.1.0` is not one).
static EMAIL_IN_TEXT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
        .expect("static regex")
});

/// A phone number candidate: an optional `+` or `(`, then digits with single
/// spaces, dots, dashes and brackets between them. [`mask_addresses`]
/// then checks the digit count and what surrounds it.
static PHONE_IN_TEXT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[+(]?\d(?:(?:\) ?|[ .-])?\(?\d)+").expect("static regex"));

/// Date-like (`2026-03-14`) and dotted-quad (`192.168.10.200`) runs are not
/// phone numbers.
static NOT_A_PHONE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\d{4}-\d{2}-\d{2}|^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$").expect("static regex")
});

/// Masks every email address and phone number inside `text`, each exactly
/// as [`mask_email`] and [`mask_phone`] would. Idempotent: masked forms are
/// not found again.
pub fn mask_addresses(text: &str) -> String {
    let text = EMAIL_IN_TEXT.replace_all(text, |c: &regex::Captures<'_>| mask_email(&c[0]));
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for m in PHONE_IN_TEXT.find_iter(&text) {
        if looks_like_phone(&text, m.start(), m.end()) {
            out.push_str(&text[last..m.start()]);
            out.push_str(&mask_phone(m.as_str()));
            last = m.end();
        }
    }
    out.push_str(&text[last..]);
    out
}

/// A candidate is a phone number when it has 7 to 15 digits (E.164 allows
/// 15) and stands alone: not glued to letters, digits or `_` (a UUID's last
/// group, a hex id), not followed by `:` and a digit (a clock time), and not
/// a date or an IP address.
fn looks_like_phone(text: &str, start: usize, end: usize) -> bool {
    let candidate = &text[start..end];
    let digits = candidate.chars().filter(char::is_ascii_digit).count();
    let glued = |c: char| c.is_alphanumeric() || c == '_' || c == '*';
    let before = text[..start].chars().next_back();
    let mut after = text[end..].chars();
    let next = after.next();
    let clock_time = next == Some(':') && after.next().is_some_and(|c| c.is_ascii_digit());
    (7..=15).contains(&digits)
        && !before.is_some_and(glued)
        && !next.is_some_and(glued)
        && !clock_time
        && !NOT_A_PHONE.is_match(candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_in_text_are_masked_in_place() {
        assert_eq!(
            mask_addresses("smtp; 550 5.1.1 <john.doe@example.com>: user unknown"),
            "smtp; 550 5.1.1 <j***@example.com>: user unknown"
        );
        assert_eq!(
            mask_addresses("to ann@x.org, bob@y.org."),
            "to a***@x.org, b***@y.org."
        );
        assert_eq!(mask_addresses("no address here"), "no address here");
    }

    #[test]
    fn masks_emails_as_documented() {
        assert_eq!(mask_email("john@example.com"), "j***@example.com");
        assert_eq!(mask_email("not-an-email"), "***");
        assert_eq!(mask_email("@example.com"), "***");
    }

    #[test]
    fn masks_phones_as_documented() {
        assert_eq!(mask_phone("+12125554567"), "+1******4567");
        assert_eq!(mask_phone("12"), "***");
    }

    #[test]
    fn finds_and_masks_emails_inside_text() {
        assert_eq!(
            mask_addresses("send to <john.doe+x@mail.example.com> failed: 550"),
            "send to <j***@mail.example.com> failed: 550"
        );
        assert_eq!(
            mask_addresses("mailto:ann@example.org, bob@example.co.uk."),
            "mailto:a***@example.org, b***@example.co.uk."
        );
    }

    #[test]
    fn finds_and_masks_phones_inside_text() {
        assert_eq!(
            mask_addresses("sms to +12125554567 refused"),
            format!("sms to {} refused", mask_phone("+12125554567"))
        );
        assert_eq!(
            mask_addresses("call +1 212-555-4567 or (212) 555.4567"),
            "call +1******4567 or 2*****4567"
        );
        assert_eq!(
            mask_addresses("number=+447911123456"),
            "number=+4*******3456"
        );
    }

    #[test]
    fn leaves_things_that_are_not_addresses() {
        for text in [
            "release warmline@0.1.0",
            "request 550e8400-e29b-41d4-a716-446655440000 failed",
            "at 2026-03-14 15:09:26 UTC",
            "peer 192.168.100.200:443 reset",
            "retry 3 of 5 after 120 ms, code 550",
            "ts 1712345678.123456",
        ] {
            assert_eq!(mask_addresses(text), text);
        }
    }

    #[test]
    fn masking_text_twice_changes_nothing_more() {
        let once = mask_addresses("john@example.com +12125554567");
        assert_eq!(once, "j***@example.com +1******4567");
        assert_eq!(mask_addresses(&once), once);
    }
}
