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

/// Masks every email address in free text (providers' diagnostics and
/// error messages often quote the recipient), keeping the punctuation
/// around it: `<jane@example.com>:` becomes `<j***@example.com>:`.
pub fn mask_addresses(text: &str) -> String {
    text.split(' ')
        .map(|word| {
            if !word.contains('@') {
                return word.to_string();
            }
            let trim: &[char] = &[
                '<', '>', '`', '\'', '"', ',', '.', ';', ':', '(', ')', '[', ']',
            ];
            let core = word.trim_matches(trim);
            match word.find(core) {
                Some(at) if !core.is_empty() => format!(
                    "{}{}{}",
                    &word[..at],
                    mask_email(core),
                    &word[at + core.len()..]
                ),
                _ => word.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
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
}
