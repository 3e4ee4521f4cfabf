//! Message templates: one file per template in `templates/<name>.toml`,
//! compiled into the binary, written in minijinja.
//!
//! A template file names its channel, its kind (`transactional` or
//! `marketing`), the variables it requires, and its parts (`subject`,
//! `text`, `html`; a text channel's template — SMS — has only `text`, which
//! `crate::sms::compose` finishes into the `{"text": …}` payload).
//! Invariants:
//! - Every shipped template compiles; [`Catalog::builtin`] refuses the set
//!   otherwise, and a test renders each one with its sample variables.
//! - Rendering is strict: a variable the caller did not supply is an error
//!   naming it, never an empty string in someone's inbox. That is what lets
//!   a preview catch every mistake a send would hit.
//! - The `html` part is auto-escaped; `subject` and `text` are not (they are
//!   not HTML).

use std::collections::BTreeMap;

use include_dir::{Dir, include_dir};
use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde::{Deserialize, Serialize};

static BUILTIN: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/templates");

/// Transactional mail (password reset, receipt) needs no consent and carries
/// no unsubscribe; marketing mail needs both.
/// A template's kind is the kind of the messages it makes.
pub type Kind = crate::domain::MessageKind;

/// One template as written in its file.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    #[serde(skip_deserializing)]
    pub name: String,
    pub channel: crate::domain::Channel,
    pub kind: Kind,
    #[serde(default)]
    pub description: String,
    /// Variables a caller must supply.
    #[serde(default)]
    pub variables: Vec<String>,
    /// Example values, used by tests and previews.
    #[serde(default)]
    pub sample: serde_json::Map<String, serde_json::Value>,
    pub subject: Option<String>,
    pub text: String,
    pub html: Option<String>,
}

/// A template's parts, rendered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rendered {
    pub subject: Option<String>,
    pub text: String,
    pub html: Option<String>,
}

/// What went wrong, phrased for the person who wrote the template or the
/// caller who supplied the variables.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TemplateError {
    #[error("no template named '{0}'")]
    Unknown(String),
    #[error("missing variable '{0}'")]
    MissingVariable(String),
    #[error("{part}: syntax error on line {line}: {message}")]
    Syntax {
        part: String,
        line: usize,
        message: String,
    },
    #[error("{part}: line {line}: {message}")]
    Render {
        part: String,
        line: usize,
        message: String,
    },
    #[error("template file {file}: {message}")]
    File { file: String, message: String },
}

/// The templates available to this process.
pub struct Catalog {
    templates: BTreeMap<String, Template>,
}

impl Catalog {
    /// The templates shipped in `templates/`.
    pub fn builtin() -> Result<Self, TemplateError> {
        let mut templates = BTreeMap::new();
        for file in BUILTIN.files() {
            let path = file.path();
            if path.extension().and_then(|e| e.to_str()) != Some("toml") {
                continue;
            }
            let name = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default()
                .to_string();
            let text = file.contents_utf8().ok_or_else(|| TemplateError::File {
                file: path.display().to_string(),
                message: "not UTF-8".into(),
            })?;
            let template = parse(&name, text)?;
            templates.insert(name, template);
        }
        Ok(Self { templates })
    }

    pub fn get(&self, name: &str) -> Option<&Template> {
        self.templates.get(name)
    }

    pub fn all(&self) -> impl Iterator<Item = &Template> {
        self.templates.values()
    }

    /// Renders `name` with `vars` (a JSON object).
    pub fn render(&self, name: &str, vars: &serde_json::Value) -> Result<Rendered, TemplateError> {
        let t = self
            .get(name)
            .ok_or_else(|| TemplateError::Unknown(name.to_string()))?;
        t.render(vars)
    }
}

/// Parses and compiles one template file.
pub fn parse(name: &str, text: &str) -> Result<Template, TemplateError> {
    let mut t: Template = toml::from_str(text).map_err(|e| TemplateError::File {
        file: format!("{name}.toml"),
        message: e.message().to_string(),
    })?;
    t.name = name.to_string();
    if t.channel != crate::domain::Channel::Email {
        // A text has one part: a subject or HTML would be silently dropped.
        for (part, present) in [("subject", t.subject.is_some()), ("html", t.html.is_some())] {
            if present {
                return Err(TemplateError::File {
                    file: format!("{name}.toml"),
                    message: format!("a {} template has only `text`, no `{part}`", t.channel),
                });
            }
        }
    }
    for (part, source) in t.parts() {
        check_syntax(part, source)?;
    }
    Ok(t)
}

impl Template {
    fn parts(&self) -> Vec<(&'static str, &str)> {
        let mut parts = vec![("text", self.text.as_str())];
        if let Some(s) = &self.subject {
            parts.push(("subject", s));
        }
        if let Some(h) = &self.html {
            parts.push(("html", h));
        }
        parts
    }

    /// Renders every part. Required variables are checked first so the
    /// caller hears which one is missing, by name.
    pub fn render(&self, vars: &serde_json::Value) -> Result<Rendered, TemplateError> {
        for v in &self.variables {
            if vars.get(v).is_none_or(serde_json::Value::is_null) {
                return Err(TemplateError::MissingVariable(v.clone()));
            }
        }
        Ok(Rendered {
            subject: self
                .subject
                .as_deref()
                .map(|s| render_part("subject", s, vars))
                .transpose()?,
            text: render_part("text", &self.text, vars)?,
            html: self
                .html
                .as_deref()
                .map(|h| render_part("html", h, vars))
                .transpose()?,
        })
    }
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|name| {
        if name == "html" {
            AutoEscape::Html
        } else {
            AutoEscape::None
        }
    });
    env
}

/// Compiles `source` without rendering it: syntax errors with their line.
pub fn check_syntax(part: &str, source: &str) -> Result<(), TemplateError> {
    let env = environment();
    env.template_from_named_str(part, source)
        .map(|_| ())
        .map_err(|e| TemplateError::Syntax {
            part: part.to_string(),
            line: e.line().unwrap_or(0),
            message: e.detail().unwrap_or(&e.to_string()).to_string(),
        })
}

/// Renders one part (`subject`, `text` or `html`, which decides escaping)
/// strictly: an undefined variable is an error naming it.
pub fn render_part(
    part: &str,
    source: &str,
    vars: &serde_json::Value,
) -> Result<String, TemplateError> {
    let env = environment();
    let tmpl = env
        .template_from_named_str(part, source)
        .map_err(|e| TemplateError::Syntax {
            part: part.to_string(),
            line: e.line().unwrap_or(0),
            message: e.detail().unwrap_or(&e.to_string()).to_string(),
        })?;
    tmpl.render(minijinja::value::Serde(vars))
        .map_err(|e| TemplateError::Render {
            part: part.to_string(),
            line: e.line().unwrap_or(0),
            message: describe_render_error(&e),
        })
}

fn describe_render_error(e: &minijinja::Error) -> String {
    match e.kind() {
        minijinja::ErrorKind::UndefinedError => match e.detail() {
            Some(d) => format!("undefined variable: {d}"),
            None => "a variable used here was not supplied".into(),
        },
        _ => e.detail().unwrap_or(&e.to_string()).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_shipped_template_compiles_and_renders_its_sample() {
        let catalog = Catalog::builtin().expect("shipped templates compile");
        assert!(catalog.all().count() >= 4);
        for t in catalog.all() {
            let r = t
                .render(&serde_json::Value::Object(t.sample.clone()))
                .unwrap_or_else(|e| panic!("{}: {e}", t.name));
            assert!(!r.text.trim().is_empty(), "{}", t.name);
            if t.channel == crate::domain::Channel::Email {
                assert!(r.subject.is_some(), "{} needs a subject", t.name);
            }
        }
    }

    #[test]
    fn the_transactional_set_is_shipped() {
        let catalog = Catalog::builtin().unwrap();
        for name in [
            "password_reset",
            "magic_link",
            "receipt",
            "system_notification",
        ] {
            let t = catalog.get(name).unwrap_or_else(|| panic!("{name}"));
            assert_eq!(t.kind, Kind::Transactional);
        }
    }

    #[test]
    fn sms_templates_are_text_only_and_leave_the_footer_to_composition() {
        // Arrange
        let catalog = Catalog::builtin().unwrap();

        // Act
        let code = catalog
            .render(
                "verification_code",
                &json!({"code": "493817", "product_name": "Acme"}),
            )
            .unwrap();
        let sms: Vec<&Template> = catalog
            .all()
            .filter(|t| t.channel == crate::domain::Channel::Sms)
            .collect();

        // Assert
        assert_eq!(
            code.text,
            "Your Acme verification code is 493817. It expires in 10 minutes. Don't share it with anyone."
        );
        assert_eq!(
            catalog.get("verification_code").unwrap().kind,
            Kind::Transactional
        );
        assert!(sms.len() >= 8);
        for t in sms {
            assert!(t.subject.is_none() && t.html.is_none(), "{}", t.name);
            // `sms::compose` adds it once; written here it would be doubled
            // only if the wording differed, so the templates leave it out.
            assert!(!t.text.to_lowercase().contains("stop"), "{}", t.name);
        }
    }

    #[test]
    fn an_sms_template_with_a_subject_is_refused() {
        let err = parse(
            "x",
            "channel='sms'\nkind='marketing'\nsubject='Hi'\ntext='Hi'",
        )
        .unwrap_err();
        assert!(err.to_string().contains("no `subject`"), "{err}");
    }

    #[test]
    fn a_missing_variable_is_named() {
        let t = parse(
            "x",
            "channel='email'\nkind='transactional'\nvariables=['url']\nsubject='Hi'\ntext='{{ url }}'",
        )
        .unwrap();
        assert_eq!(
            t.render(&json!({})),
            Err(TemplateError::MissingVariable("url".into()))
        );
    }

    #[test]
    fn an_undeclared_undefined_variable_fails_instead_of_rendering_empty() {
        let err = render_part("text", "Hi {{ first_name }}", &json!({})).unwrap_err();
        assert!(matches!(err, TemplateError::Render { ref part, .. } if part == "text"));
        assert!(err.to_string().contains("undefined"), "{err}");
    }

    #[test]
    fn a_syntax_error_names_part_and_line() {
        let err = check_syntax("html", "<p>\n{{ name \n</p>").unwrap_err();
        match err {
            TemplateError::Syntax { part, line, .. } => {
                assert_eq!(part, "html");
                assert!(line >= 2);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn html_is_escaped_and_text_is_not() {
        let vars = json!({"name": "<b>Ann & Bo</b>"});
        assert_eq!(
            render_part("html", "{{ name }}", &vars).unwrap(),
            "&lt;b&gt;Ann &amp; Bo&lt;&#x2f;b&gt;"
        );
        assert_eq!(
            render_part("text", "{{ name }}", &vars).unwrap(),
            "<b>Ann & Bo</b>"
        );
    }
}
