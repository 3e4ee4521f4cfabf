//! `EmailAddress`: a syntactically valid address, trimmed and with its domain
//! lower-cased (the local part is case-sensitive by RFC 5321, so it is kept).

use std::fmt;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("'{0}' is not a valid email address")]
pub struct EmailError(pub String);

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EmailAddress(String);

impl EmailAddress {
    pub fn parse(raw: &str) -> Result<Self, EmailError> {
        let trimmed = raw.trim();
        // Display names ("Ann <ann@x.io>") and folded whitespace are not
        // addresses for our purposes, though RFC 5322 allows them.
        if trimmed.contains(|c: char| c.is_whitespace() || c == '<' || c == '>') {
            return Err(EmailError(crate::domain::mask_email(trimmed)));
        }
        let parsed: email_address::EmailAddress = trimmed
            .parse()
            .map_err(|_| EmailError(crate::domain::mask_email(trimmed)))?;
        if !parsed.domain().contains('.') {
            return Err(EmailError(crate::domain::mask_email(trimmed)));
        }
        let local = parsed.local_part();
        let domain = parsed.domain().to_ascii_lowercase();
        Ok(Self(format!("{local}@{domain}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn masked(&self) -> String {
        crate::domain::mask_email(&self.0)
    }
}

impl AsRef<str> for EmailAddress {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_addresses_and_normalises_the_domain() {
        assert_eq!(
            EmailAddress::parse(" Ann.Lee@Example.COM ")
                .unwrap()
                .as_str(),
            "Ann.Lee@example.com"
        );
        assert!(EmailAddress::parse("a+tag@sub.example.co.uk").is_ok());
    }

    #[test]
    fn refuses_what_is_not_an_address() {
        for bad in [
            "",
            "plain",
            "@example.com",
            "ann@",
            "ann@localhost",
            "Ann <ann@example.com>",
            "a b@example.com",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn errors_mask_the_input() {
        let err = EmailAddress::parse("john.smith@@example.com").unwrap_err();
        assert!(!err.to_string().contains("john.smith"), "{err}");
    }
}
