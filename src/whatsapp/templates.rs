//! WhatsApp message templates: what the business account holds (name,
//! language, category, status, components) as the Graph API lists them
//! (`GET /{waba-id}/message_templates`), kept in `whatsapp_templates`, and
//! rendered with a message's parameters.
//!
//! Invariants:
//! - A template is keyed by (name, language), as Meta keys it.
//! - [`replace_all`] replaces the whole set in one transaction: after a
//!   sync the table is exactly what the account reported, never a mix.
//! - Only what warmline can fill is offered for sending ([`Template::usable`]):
//!   APPROVED, and every variable positional (`{{1}}`, `{{2}}`…) in the
//!   body. A header with a variable or media, or named parameters, is shown
//!   with the reason it cannot be sent from warmline.
//! - [`Template::render`] produces exactly the text the person will read:
//!   header, body and footer, with the parameters in place.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, FromQueryResult, Statement, Value};
use serde_json::Value as Json;

use super::content::{TemplateCategory, TemplateMessage};

/// One template of the business account.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pub name: String,
    /// Meta's language code (`en_US`).
    pub language: String,
    pub category: TemplateCategory,
    /// `APPROVED`, `PENDING`, `REJECTED`, `PAUSED`, `DISABLED`…
    pub status: String,
    /// The body's text, with its `{{n}}` variables.
    pub body: String,
    /// How many positional parameters the body takes (its highest `{{n}}`).
    pub parameter_count: usize,
    /// The components as Meta listed them (header, body, footer, buttons).
    pub components: Json,
}

impl Template {
    /// Reads one entry of `message_templates`' `data`. The error names what
    /// is missing.
    pub fn from_graph(v: &Json) -> Result<Self, String> {
        let field = |k: &str| {
            v.get(k)
                .and_then(Json::as_str)
                .map(str::to_string)
                .ok_or_else(|| format!("a template without '{k}'"))
        };
        let name = field("name")?;
        let language = field("language")?;
        let category_raw = field("category")?;
        let category = TemplateCategory::parse(&category_raw)
            .ok_or_else(|| format!("template {name}: unknown category '{category_raw}'"))?;
        let status = field("status")?.to_ascii_uppercase();
        let components = v.get("components").cloned().unwrap_or(Json::Array(vec![]));
        let body = component(&components, "BODY")
            .and_then(|c| c.get("text").and_then(Json::as_str))
            .ok_or_else(|| format!("template {name}: no BODY component"))?
            .to_string();
        Ok(Self {
            parameter_count: highest_variable(&body),
            name,
            language,
            category,
            status,
            body,
            components,
        })
    }

    pub fn is_approved(&self) -> bool {
        self.status == "APPROVED"
    }

    /// Whether warmline can send it, or why not.
    pub fn usable(&self) -> Result<(), String> {
        if !self.is_approved() {
            return Err(format!("its status is {}", self.status));
        }
        if let Some(h) = component(&self.components, "HEADER") {
            let format = h.get("format").and_then(Json::as_str).unwrap_or("TEXT");
            if !format.eq_ignore_ascii_case("TEXT") {
                return Err(format!("its header is {}", format.to_ascii_lowercase()));
            }
            if h.get("text")
                .and_then(Json::as_str)
                .is_some_and(|t| t.contains("{{"))
            {
                return Err("its header has a variable".into());
            }
        }
        if self.body.contains("{{") && self.parameter_count == 0 {
            return Err("it uses named parameters".into());
        }
        Ok(())
    }

    /// The text the person reads: header, body and footer, with `{{n}}`
    /// replaced by `parameters[n-1]`. Errors when the count differs.
    pub fn render(&self, parameters: &[String]) -> Result<String, String> {
        if parameters.len() != self.parameter_count {
            return Err(format!(
                "template {} takes {} parameter(s), got {}",
                self.name,
                self.parameter_count,
                parameters.len()
            ));
        }
        let mut body = self.body.clone();
        // Highest first, so {{1}} never eats the start of {{10}}.
        for (i, p) in parameters.iter().enumerate().rev() {
            body = body.replace(&format!("{{{{{}}}}}", i + 1), p);
        }
        let text_of = |kind| {
            component(&self.components, kind)
                .and_then(|c| c.get("text").and_then(Json::as_str))
                .map(str::to_string)
        };
        Ok([text_of("HEADER"), Some(body), text_of("FOOTER")]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join("\n\n"))
    }

    /// The message that sends it with `parameters`.
    pub fn message(&self, parameters: Vec<String>) -> TemplateMessage {
        TemplateMessage {
            name: self.name.clone(),
            language: self.language.clone(),
            category: self.category,
            parameters,
        }
    }

    /// Its quick-reply buttons' texts, in order.
    pub fn quick_replies(&self) -> Vec<String> {
        component(&self.components, "BUTTONS")
            .and_then(|c| c.get("buttons").and_then(Json::as_array))
            .map(|bs| {
                bs.iter()
                    .filter(|b| b.get("type").and_then(Json::as_str) == Some("QUICK_REPLY"))
                    .filter_map(|b| b.get("text").and_then(Json::as_str).map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn component<'a>(components: &'a Json, kind: &str) -> Option<&'a Json> {
    components.as_array()?.iter().find(|c| {
        c.get("type")
            .and_then(Json::as_str)
            .is_some_and(|t| t.eq_ignore_ascii_case(kind))
    })
}

/// The highest positional variable `{{n}}` in `text` (0 when none).
fn highest_variable(text: &str) -> usize {
    let mut highest = 0;
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        rest = &rest[start + 2..];
        if let Some(end) = rest.find("}}") {
            if let Ok(n) = rest[..end].trim().parse::<usize>() {
                highest = highest.max(n);
            }
            rest = &rest[end + 2..];
        }
    }
    highest
}

#[derive(FromQueryResult)]
struct Row {
    name: String,
    language: String,
    category: String,
    status: String,
    body: String,
    parameter_count: i32,
    components: String,
}

impl Row {
    fn into_template(self) -> anyhow::Result<Template> {
        Ok(Template {
            category: TemplateCategory::parse(&self.category).ok_or_else(|| {
                anyhow::anyhow!("stored template with category {}", self.category)
            })?,
            name: self.name,
            language: self.language,
            status: self.status,
            body: self.body,
            parameter_count: usize::try_from(self.parameter_count).unwrap_or(0),
            components: serde_json::from_str(&self.components)?,
        })
    }
}

const COLUMNS: &str = "name, language, category, status, body, parameter_count, components";

/// Replaces the stored set with `templates`, in one transaction.
pub async fn replace_all(
    db: &sea_orm::DatabaseConnection,
    templates: &[Template],
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let txn = crate::db::begin_write(db).await?;
    let backend = txn.get_database_backend();
    txn.execute_raw(Statement::from_string(
        backend,
        "DELETE FROM whatsapp_templates",
    ))
    .await?;
    for t in templates {
        txn.execute_raw(Statement::from_sql_and_values(
            backend,
            format!(
                "INSERT INTO whatsapp_templates ({COLUMNS}, synced_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT (name, language) DO NOTHING"
            ),
            [
                Value::from(t.name.clone()),
                Value::from(t.language.clone()),
                Value::from(t.category.as_str()),
                Value::from(t.status.clone()),
                Value::from(t.body.clone()),
                Value::from(i32::try_from(t.parameter_count).unwrap_or(i32::MAX)),
                Value::from(t.components.to_string()),
                Value::from(now),
            ],
        ))
        .await?;
    }
    txn.commit().await?;
    Ok(())
}

/// Every stored template, by name then language.
pub async fn all(db: &impl ConnectionTrait) -> anyhow::Result<Vec<Template>> {
    Row::find_by_statement(Statement::from_string(
        db.get_database_backend(),
        format!("SELECT {COLUMNS} FROM whatsapp_templates ORDER BY name, language"),
    ))
    .all(db)
    .await?
    .into_iter()
    .map(Row::into_template)
    .collect()
}

/// The templates warmline can send (approved, positional parameters).
pub async fn usable(db: &impl ConnectionTrait) -> anyhow::Result<Vec<Template>> {
    Ok(all(db)
        .await?
        .into_iter()
        .filter(|t| t.usable().is_ok())
        .collect())
}

/// One template by name and language.
pub async fn find(
    db: &impl ConnectionTrait,
    name: &str,
    language: &str,
) -> anyhow::Result<Option<Template>> {
    Row::find_by_statement(Statement::from_sql_and_values(
        db.get_database_backend(),
        format!("SELECT {COLUMNS} FROM whatsapp_templates WHERE name = $1 AND language = $2"),
        [Value::from(name), Value::from(language)],
    ))
    .one(db)
    .await?
    .map(Row::into_template)
    .transpose()
}

/// When the set was last synced (`None`: never).
pub async fn synced_at(db: &impl ConnectionTrait) -> anyhow::Result<Option<DateTime<Utc>>> {
    #[derive(FromQueryResult)]
    struct At {
        synced_at: DateTime<Utc>,
    }
    Ok(At::find_by_statement(Statement::from_string(
        db.get_database_backend(),
        "SELECT synced_at FROM whatsapp_templates ORDER BY synced_at DESC LIMIT 1",
    ))
    .one(db)
    .await?
    .map(|a| a.synced_at))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn graph() -> Json {
        json!({
            "name": "quarterly_update", "language": "en_US", "status": "APPROVED",
            "category": "MARKETING", "id": "1234",
            "components": [
                {"type": "HEADER", "format": "TEXT", "text": "Quarterly update"},
                {"type": "BODY", "text": "Hi {{1}}, our {{2}} letter is out. {{10}}"},
                {"type": "FOOTER", "text": "Reply STOP to opt out"},
                {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "Stop promotions"}]}
            ]
        })
    }

    #[test]
    fn a_graph_template_is_read_with_its_parameter_count() {
        let t = Template::from_graph(&graph()).unwrap();
        assert_eq!(t.category, TemplateCategory::Marketing);
        assert_eq!(t.parameter_count, 10);
        assert!(t.usable().is_ok());
        assert_eq!(t.quick_replies(), ["Stop promotions"]);
    }

    #[test]
    fn render_fills_every_variable_and_refuses_a_wrong_count() {
        let t = Template::from_graph(&graph()).unwrap();
        let mut params: Vec<String> = (1..=10).map(|i| format!("p{i}")).collect();
        params[0] = "Ada".into();
        params[1] = "Q3".into();
        let text = t.render(&params).unwrap();
        assert_eq!(
            text,
            "Quarterly update\n\nHi Ada, our Q3 letter is out. p10\n\nReply STOP to opt out"
        );
        let err = t.render(&["Ada".into()]).unwrap_err();
        assert!(err.contains("takes 10 parameter(s), got 1"), "{err}");
    }

    #[test]
    fn what_warmline_cannot_fill_says_why() {
        let mut v = graph();
        v["status"] = json!("PENDING");
        assert_eq!(
            Template::from_graph(&v).unwrap().usable().unwrap_err(),
            "its status is PENDING"
        );
        let mut v = graph();
        v["components"][0] = json!({"type": "HEADER", "format": "IMAGE"});
        assert_eq!(
            Template::from_graph(&v).unwrap().usable().unwrap_err(),
            "its header is image"
        );
        let mut v = graph();
        v["components"][1]["text"] = json!("Hi {{first_name}}");
        assert_eq!(
            Template::from_graph(&v).unwrap().usable().unwrap_err(),
            "it uses named parameters"
        );
    }

    #[test]
    fn a_template_without_a_body_or_category_is_refused_naming_it() {
        let err = Template::from_graph(&json!({"name": "x", "language": "en", "status": "APPROVED", "category": "MARKETING", "components": []})).unwrap_err();
        assert!(err.contains("no BODY"), "{err}");
        let err =
            Template::from_graph(&json!({"name": "x", "language": "en", "status": "APPROVED"}))
                .unwrap_err();
        assert!(err.contains("'category'"), "{err}");
    }
}
