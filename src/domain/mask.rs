//! Masking of personal data for logs, the audit log and Slack alerts.
//!
//! `j***@example.com` and `+1******4567`: enough for a person to recognise a
//! contact they already know, not enough to harvest one.

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
