//! Putting an email together: render a template (or a subject and body
//! written in Slack), then add what its kind requires.
//!
//! Marketing mail gets the RFC 8058 one-click pair — `List-Unsubscribe:
//! <https://…/u/TOKEN>` (plus `<mailto:…>` when configured) and
//! `List-Unsubscribe-Post: List-Unsubscribe=One-Click` — and a visible
//! unsubscribe link in both bodies, as Gmail's and Yahoo's bulk-sender
//! rules require. Transactional mail (password reset, receipt) gets none.

use std::sync::Arc;

use url::Url;

use super::{EmailContent, unsubscribe::Signer};
use crate::templates::{Catalog, Kind, Rendered, Template, TemplateError};

#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error("template '{0}' is not an email template")]
    NotEmail(String),
    #[error("no sender address: set WARMLINE_EMAIL_FROM")]
    NoSender,
    #[error("marketing email needs a contact (its unsubscribe link names one)")]
    MarketingNeedsContact,
    #[error(transparent)]
    Infrastructure(#[from] anyhow::Error),
}

/// Builds emails; one per process, shared.
#[derive(Clone)]
pub struct Composer {
    from: Option<String>,
    reply_to: Option<String>,
    base_url: Url,
    mailto: Option<String>,
    signer: Signer,
    catalog: Arc<Catalog>,
}

impl Composer {
    pub fn new(
        settings: &crate::settings::Settings,
        signer: Signer,
        catalog: Arc<Catalog>,
    ) -> Self {
        let base_url = settings.server.public_url.clone().unwrap_or_else(|| {
            Url::parse(&format!("http://{}/", settings.server.addr)).expect("an address is a host")
        });
        Self {
            from: settings.email.from.clone(),
            reply_to: settings.email.reply_to.clone(),
            base_url,
            mailto: settings.email.unsubscribe_mailto.clone(),
            signer,
            catalog,
        }
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    pub fn signer(&self) -> &Signer {
        &self.signer
    }

    /// The page and one-click endpoint for `token`.
    pub fn unsubscribe_url(&self, token: &str) -> String {
        self.base_url
            .join(&format!("u/{token}"))
            .map(String::from)
            .unwrap_or_else(|_| format!("{}u/{token}", self.base_url))
    }

    /// Renders template `name` with `vars` into a complete email.
    pub async fn from_template(
        &self,
        name: &str,
        vars: &serde_json::Value,
        contact_id: Option<i64>,
    ) -> Result<(EmailContent, &Template), ComposeError> {
        let template = self
            .catalog
            .get(name)
            .ok_or_else(|| TemplateError::Unknown(name.to_string()))?;
        if template.channel != crate::domain::Channel::Email {
            return Err(ComposeError::NotEmail(name.to_string()));
        }
        let rendered = template.render(vars)?;
        Ok((
            self.compose(rendered, template.kind, contact_id).await?,
            template,
        ))
    }

    /// Adds sender, headers and footer to rendered parts.
    pub async fn compose(
        &self,
        rendered: Rendered,
        kind: Kind,
        contact_id: Option<i64>,
    ) -> Result<EmailContent, ComposeError> {
        let from = self.from.clone().ok_or(ComposeError::NoSender)?;
        let mut email = EmailContent {
            from,
            reply_to: self.reply_to.clone(),
            subject: rendered.subject.unwrap_or_default(),
            text: rendered.text,
            html: rendered.html,
            headers: Default::default(),
        };
        if kind == Kind::Marketing {
            let contact = contact_id.ok_or(ComposeError::MarketingNeedsContact)?;
            let url = self.unsubscribe_url(
                &self
                    .signer
                    .sign(contact, crate::domain::Channel::Email.as_str())
                    .await?,
            );
            let mut list = format!("<{url}>");
            if let Some(mailto) = &self.mailto {
                list.push_str(&format!(", <mailto:{mailto}?subject=unsubscribe>"));
            }
            email.headers.insert("List-Unsubscribe".into(), list);
            email.headers.insert(
                "List-Unsubscribe-Post".into(),
                "List-Unsubscribe=One-Click".into(),
            );
            add_footer(&mut email, &url);
        }
        Ok(email)
    }
}

/// The visible unsubscribe link, in both bodies.
fn add_footer(email: &mut EmailContent, url: &str) {
    email.text = format!(
        "{}\n\n--\nTo stop receiving these emails, unsubscribe: {url}\n",
        email.text.trim_end()
    );
    if let Some(html) = &mut email.html {
        let footer = format!(
            "<p style=\"color:#616061;font-size:12px;margin-top:32px;\">Don't want these emails? \
             <a href=\"{}\" style=\"color:#616061;\">Unsubscribe</a>.</p>",
            attribute_escape(url)
        );
        match html.rfind("</body>") {
            Some(at) => html.insert_str(at, &footer),
            None => html.push_str(&footer),
        }
    }
}

/// Escapes a URL for a double-quoted attribute. Not minijinja's escaper,
/// which also turns `/` into `&#x2f;`: valid HTML, but some mail clients
/// show the link text raw.
fn attribute_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::{Requirements, Settings};
    use serde_json::json;

    fn composer() -> Composer {
        let env = [
            ("WARMLINE_EMAIL_FROM", "Team <team@example.com>"),
            ("WARMLINE_PUBLIC_URL", "https://warm.example.com"),
            ("WARMLINE_UNSUBSCRIBE_MAILTO", "unsubscribe@example.com"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let settings = Settings::load_from(&env, Requirements::Offline).unwrap();
        Composer::new(
            &settings,
            Signer::with_key(b"test"),
            Arc::new(Catalog::builtin().unwrap()),
        )
    }

    #[tokio::test]
    async fn marketing_mail_carries_one_click_unsubscribe_and_a_visible_link() {
        let c = composer();
        let (email, _) = c
            .from_template("check_in", &json!({"first_name": "Ada"}), Some(7))
            .await
            .unwrap();
        let token = c.signer().sign(7, "email").await.unwrap();
        let url = format!("https://warm.example.com/u/{token}");
        assert_eq!(
            email.headers["List-Unsubscribe"],
            format!("<{url}>, <mailto:unsubscribe@example.com?subject=unsubscribe>")
        );
        assert_eq!(
            email.headers["List-Unsubscribe-Post"],
            "List-Unsubscribe=One-Click"
        );
        assert!(email.text.contains(&url));
        let html = email.html.unwrap();
        assert!(html.contains(&format!("href=\"{url}\"")));
        assert!(html.find("Unsubscribe").unwrap() < html.find("</body>").unwrap());
        assert_eq!(email.from, "Team <team@example.com>");
        assert_eq!(email.subject, "Catching up, Ada");
    }

    #[tokio::test]
    async fn transactional_mail_carries_no_unsubscribe() {
        let c = composer();
        let (email, t) = c
            .from_template(
                "password_reset",
                &json!({"reset_url": "https://x.test/r"}),
                None,
            )
            .await
            .unwrap();
        assert_eq!(t.kind, Kind::Transactional);
        assert!(email.headers.is_empty());
        assert!(!email.text.to_lowercase().contains("unsubscribe"));
    }

    #[tokio::test]
    async fn marketing_without_a_contact_is_refused() {
        let err = composer()
            .from_template("check_in", &json!({"first_name": "Ada"}), None)
            .await
            .unwrap_err();
        assert!(matches!(err, ComposeError::MarketingNeedsContact));
    }

    #[test]
    fn the_payload_round_trips() {
        let e = EmailContent {
            from: "a@example.com".into(),
            reply_to: None,
            subject: "s".into(),
            text: "t".into(),
            html: None,
            headers: Default::default(),
        };
        assert_eq!(EmailContent::from_payload(&e.to_payload()).unwrap(), e);
        assert!(EmailContent::from_payload(&json!({"subject": 1})).is_err());
    }
}
