//! A WhatsApp template as a campaign's content (`approval::Content::Whatsapp`):
//! the stored template and its parameter mapping checked together, and each
//! recipient's ledger content built from them.
//!
//! Invariants:
//! - [`Chosen::load`] is the one check of a choice, used by the composer's
//!   validation and by `approval::submit`: the template exists, is usable
//!   ([`Template::usable`]), and the mapping names exactly its parameters.
//! - A recipient with an empty mapped field gets no message
//!   ([`Missing`]): the preview reports them, the submit leaves them out.
//! - The kind is the template's category: MARKETING is `marketing` (the
//!   dispatcher's consent check for WhatsApp marketing applies), the others
//!   `transactional`.

use sea_orm::ConnectionTrait;
use serde_json::Value as Json;

use super::{
    TemplateCategory, WhatsappContent,
    mapping::{self, Field},
    templates::{self, Template},
};
use crate::domain::MessageKind;

/// A usable template with the fields that fill it.
#[derive(Debug, Clone)]
pub struct Chosen {
    pub template: Template,
    pub fields: Vec<Field>,
}

/// A recipient who lacks a mapped field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing(pub Field);

impl std::fmt::Display for Missing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "no {} for the template", self.0.name())
    }
}

/// Why a choice cannot be sent, in words for the composer's fields.
#[derive(Debug, thiserror::Error)]
pub enum ChoiceError {
    /// Not in the synced set (renamed, deleted, or never synced).
    #[error("no template {0} is synced; run `whatsapp templates` to sync them")]
    Unknown(String),
    #[error("{name} cannot be sent from warmline: {why}")]
    Unusable { name: String, why: String },
    /// The mapping itself, or its count against the template's.
    #[error("{0}")]
    Mapping(String),
    #[error(transparent)]
    Infrastructure(#[from] anyhow::Error),
}

impl Chosen {
    /// Loads template `name`/`language` and checks `parameters` (field
    /// names, in position order) against it.
    pub async fn load(
        db: &impl ConnectionTrait,
        name: &str,
        language: &str,
        parameters: &[String],
    ) -> Result<Self, ChoiceError> {
        let template = templates::find(db, name, language)
            .await?
            .ok_or_else(|| ChoiceError::Unknown(format!("{name} ({language})")))?;
        template.usable().map_err(|why| ChoiceError::Unusable {
            name: template.name.clone(),
            why,
        })?;
        let fields = parameters
            .iter()
            .map(|p| Field::parse(p))
            .collect::<Result<Vec<_>, _>>()
            .map_err(ChoiceError::Mapping)?;
        check_count(&template, &fields).map_err(ChoiceError::Mapping)?;
        Ok(Self { template, fields })
    }

    pub fn kind(&self) -> MessageKind {
        kind_of(self.template.category)
    }

    /// The ledger's name for it (`messages.template`, the risk's "never
    /// sent before"): `whatsapp:<name>/<language>`, apart from the
    /// `templates/` catalog's names.
    pub fn ledger_name(&self) -> String {
        format!("whatsapp:{}/{}", self.template.name, self.template.language)
    }

    /// The message for one contact, from its template variables
    /// (`approval::request::variables`).
    pub fn content(&self, vars: &Json) -> Result<WhatsappContent, Missing> {
        let params = mapping::values(&self.fields, vars).map_err(Missing)?;
        let text = self
            .template
            .render(&params)
            .expect("the count was checked when the choice was loaded");
        Ok(WhatsappContent::Template {
            template: self.template.message(params),
            text,
        })
    }
}

/// The kind of message a template category makes.
pub fn kind_of(category: TemplateCategory) -> MessageKind {
    match category {
        TemplateCategory::Marketing => MessageKind::Marketing,
        TemplateCategory::Utility | TemplateCategory::Authentication => MessageKind::Transactional,
    }
}

/// Whether `fields` fill exactly the template's parameters.
pub fn check_count(t: &Template, fields: &[Field]) -> Result<(), String> {
    if fields.len() == t.parameter_count {
        return Ok(());
    }
    Err(match t.parameter_count {
        0 => format!(
            "{} takes no parameters; clear the mapping ({} given)",
            t.name,
            fields.len()
        ),
        n => format!(
            "{} takes {n} parameter{} ({}); {} mapped",
            t.name,
            if n == 1 { "" } else { "s" },
            (1..=n)
                .map(|i| format!("{{{{{i}}}}}"))
                .collect::<Vec<_>>()
                .join(", "),
            fields.len()
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn chosen(mapping: &str) -> Chosen {
        let template = Template::from_graph(&json!({
            "name": "spring_offer", "language": "en_US", "status": "APPROVED",
            "category": "MARKETING",
            "components": [{"type": "BODY", "text": "Hi {{1}}, {{2}} gets 20% off."}]
        }))
        .unwrap();
        Chosen {
            template,
            fields: mapping::parse(mapping).unwrap(),
        }
    }

    #[test]
    fn a_contact_gets_the_template_rendered_with_its_fields() {
        let c = chosen("1=first_name, 2=company");
        let content = c
            .content(&json!({"first_name": "Ada", "metadata": {"company": "Analytical"}}))
            .unwrap();
        assert_eq!(content.text(), "Hi Ada, Analytical gets 20% off.");
        let WhatsappContent::Template { template, .. } = &content else {
            panic!("a template")
        };
        assert_eq!(template.parameters, ["Ada", "Analytical"]);
        assert_eq!(c.kind(), MessageKind::Marketing);
        assert_eq!(c.ledger_name(), "whatsapp:spring_offer/en_US");
    }

    #[test]
    fn an_empty_field_is_missing_not_a_hole() {
        let c = chosen("1=first_name, 2=company");
        assert_eq!(
            c.content(&json!({"first_name": "Ada"})).unwrap_err(),
            Missing(Field::Company)
        );
    }

    #[test]
    fn the_count_must_match_naming_the_parameters() {
        let c = chosen("1=first_name");
        let err = check_count(&c.template, &c.fields).unwrap_err();
        assert_eq!(
            err,
            "spring_offer takes 2 parameters ({{1}}, {{2}}); 1 mapped"
        );
        assert_eq!(
            kind_of(TemplateCategory::Utility),
            MessageKind::Transactional
        );
    }
}
