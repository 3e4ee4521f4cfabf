//! `E164Phone`: a phone number valid for its region, stored in E.164
//! (`+14155552671`). Numbers written without `+` are read in a default region.

use std::fmt;

use phonenumber::{Mode, country};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PhoneError {
    #[error("'{0}' is not a phone number")]
    Unparseable(String),
    #[error("'{0}' is not a valid number for its region")]
    Invalid(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct E164Phone(String);

impl E164Phone {
    /// Parses `raw`, reading national formats in `default_region` (ISO 3166).
    pub fn parse(raw: &str, default_region: Option<country::Id>) -> Result<Self, PhoneError> {
        let raw = raw.trim();
        let masked = || crate::domain::mask_phone(raw);
        let number = phonenumber::parse(default_region, raw)
            .map_err(|_| PhoneError::Unparseable(masked()))?;
        if !phonenumber::is_valid(&number) {
            return Err(PhoneError::Invalid(masked()));
        }
        Ok(Self(number.format().mode(Mode::E164).to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn masked(&self) -> String {
        crate::domain::mask_phone(&self.0)
    }
}

impl AsRef<str> for E164Phone {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for E164Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_international_and_national_formats() {
        assert_eq!(
            E164Phone::parse("+1 (415) 555-2671", None)
                .unwrap()
                .as_str(),
            "+14155552671"
        );
        assert_eq!(
            E164Phone::parse("415.555.2671", Some(country::Id::US))
                .unwrap()
                .as_str(),
            "+14155552671"
        );
        assert_eq!(
            E164Phone::parse("020 7946 0958", Some(country::Id::GB))
                .unwrap()
                .as_str(),
            "+442079460958"
        );
    }

    #[test]
    fn refuses_garbage_and_impossible_numbers() {
        assert!(matches!(
            E164Phone::parse("call me", None),
            Err(PhoneError::Unparseable(_))
        ));
        assert!(E164Phone::parse("+1 555", None).is_err());
        assert!(
            E164Phone::parse("4155552671", None).is_err(),
            "no region, no +: ambiguous"
        );
    }
}
