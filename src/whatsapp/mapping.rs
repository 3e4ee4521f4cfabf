//! Which contact field fills each `{{n}}` of a WhatsApp template, as a
//! person writes it in the campaign composer ("1=first_name, 2=company").
//!
//! Invariants:
//! - A mapping names every position from 1 to its highest, once each; a
//!   gap, a repeat or an unknown field is refused naming it, so a stored
//!   mapping always parses again ([`Field::parse`] on its canonical names).
//! - A field's value for a contact is its trimmed text; an empty or missing
//!   value is `None`, never an empty parameter: the caller reports the
//!   recipient rather than sending a hole in the template.

use serde_json::Value as Json;

/// A contact field a template parameter can take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    FirstName,
    LastName,
    /// First and last name.
    Name,
    Email,
    Phone,
    /// `metadata.company`, the usual place for it.
    Company,
    /// Any key of the contact's metadata (`metadata.<key>`).
    Metadata(String),
}

/// What the composer says the fields are.
pub const FIELDS_WORDS: &str =
    "first_name, last_name, name, company, email, phone or metadata.<key>";

impl Field {
    /// Reads a field's name; the error names it and lists the known ones.
    pub fn parse(s: &str) -> Result<Self, String> {
        let t = s.trim();
        Ok(match t.to_ascii_lowercase().as_str() {
            "first_name" | "firstname" | "first name" => Self::FirstName,
            "last_name" | "lastname" | "last name" => Self::LastName,
            "name" | "full_name" => Self::Name,
            "email" => Self::Email,
            "phone" => Self::Phone,
            "company" => Self::Company,
            _ => match t.strip_prefix("metadata.") {
                Some(key) if !key.trim().is_empty() => Self::Metadata(key.trim().to_string()),
                _ => return Err(format!("unknown field '{t}': use {FIELDS_WORDS}")),
            },
        })
    }

    /// Its canonical name, which [`Field::parse`] reads back.
    pub fn name(&self) -> String {
        match self {
            Self::FirstName => "first_name".into(),
            Self::LastName => "last_name".into(),
            Self::Name => "name".into(),
            Self::Email => "email".into(),
            Self::Phone => "phone".into(),
            Self::Company => "company".into(),
            Self::Metadata(k) => format!("metadata.{k}"),
        }
    }

    /// Its value in a contact's template variables
    /// (`approval::request::variables`); `None` when missing or blank.
    pub fn value(&self, vars: &Json) -> Option<String> {
        let v = match self {
            Self::Metadata(k) => vars.get("metadata").and_then(|m| m.get(k)),
            Self::Company => vars
                .get("metadata")
                .and_then(|m| m.get("company"))
                .or_else(|| vars.get("company")),
            other => vars.get(other.name()),
        }?;
        let text = match v {
            Json::String(s) => s.trim().to_string(),
            Json::Number(n) => n.to_string(),
            Json::Bool(b) => b.to_string(),
            _ => return None,
        };
        (!text.is_empty()).then_some(text)
    }
}

/// Reads "1=first_name, 2=company" (commas or new lines; `{{1}}=…` works
/// too) into the fields for positions 1, 2, … in order.
pub fn parse(s: &str) -> Result<Vec<Field>, String> {
    let mut by_position: Vec<Option<Field>> = Vec::new();
    for part in s
        .split([',', '\n', ';'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let (pos, field) = part
            .split_once('=')
            .ok_or_else(|| format!("'{part}' is not 'number=field' (e.g. 1=first_name)"))?;
        let pos = pos.trim().trim_start_matches("{{").trim_end_matches("}}");
        let n: usize = pos
            .trim()
            .parse()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| format!("'{pos}' is not a parameter number (1, 2, …)"))?;
        let field = Field::parse(field)?;
        if by_position.len() < n {
            by_position.resize(n, None);
        }
        if by_position[n - 1].is_some() {
            return Err(format!("parameter {n} is mapped twice"));
        }
        by_position[n - 1] = Some(field);
    }
    by_position
        .into_iter()
        .enumerate()
        .map(|(i, f)| f.ok_or_else(|| format!("parameter {} is not mapped", i + 1)))
        .collect()
}

/// The canonical text of a mapping ("1=first_name, 2=company").
pub fn words(fields: &[Field]) -> String {
    fields
        .iter()
        .enumerate()
        .map(|(i, f)| format!("{}={}", i + 1, f.name()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The parameters for one contact, or the first field it lacks.
pub fn values(fields: &[Field], vars: &Json) -> Result<Vec<String>, Field> {
    fields
        .iter()
        .map(|f| f.value(vars).ok_or_else(|| f.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_mapping_reads_positions_in_any_order_and_round_trips() {
        let fields = parse("2=company, {{1}}=First_Name\n3=metadata.city").unwrap();
        assert_eq!(
            fields,
            [
                Field::FirstName,
                Field::Company,
                Field::Metadata("city".into())
            ]
        );
        assert_eq!(words(&fields), "1=first_name, 2=company, 3=metadata.city");
        assert_eq!(parse(&words(&fields)).unwrap(), fields);
        assert!(parse("").unwrap().is_empty());
    }

    #[test]
    fn gaps_repeats_and_unknown_fields_are_refused_naming_them() {
        assert_eq!(
            parse("1=name, 3=email").unwrap_err(),
            "parameter 2 is not mapped"
        );
        assert_eq!(
            parse("1=name, 1=email").unwrap_err(),
            "parameter 1 is mapped twice"
        );
        let err = parse("1=shoe_size").unwrap_err();
        assert!(err.contains("unknown field 'shoe_size'"), "{err}");
        assert!(parse("first_name").unwrap_err().contains("number=field"));
        assert!(parse("0=name").unwrap_err().contains("parameter number"));
    }

    #[test]
    fn values_come_from_the_contacts_variables_and_blank_is_missing() {
        let vars = json!({
            "first_name": "Ada", "name": "Ada Lovelace", "email": " ",
            "company": "Analytical",
            "metadata": {"company": "Analytical", "seats": 3}
        });
        let fields = parse("1=first_name, 2=company, 3=metadata.seats").unwrap();
        assert_eq!(values(&fields, &vars).unwrap(), ["Ada", "Analytical", "3"]);
        assert_eq!(
            values(&parse("1=name, 2=email").unwrap(), &vars).unwrap_err(),
            Field::Email
        );
        assert_eq!(Field::Metadata("x".into()).value(&vars), None);
    }
}
