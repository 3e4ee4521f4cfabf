//! `/u/{token}`: one-click unsubscribe (RFC 8058) and the unsubscribe and
//! preferences page behind the link in every marketing email.
//!
//! - `POST /u/{token}` with `List-Unsubscribe=One-Click` (form-encoded, or
//!   `multipart/form-data` as in RFC 8058's own example) revokes the token's
//!   channel for the token's contact: no cookie, no authentication, no
//!   redirect; 200 with a short text body; idempotent.
//! - `GET /u/{token}` changes nothing (mail scanners and link previews
//!   fetch every link): it shows the address, an "Unsubscribe" button and
//!   the contact's consent per channel, as plain HTML forms (no JavaScript).
//! - The page's own forms `POST` back to the same URL with `action=
//!   unsubscribe` or `action=preferences` and get a confirmation page (200,
//!   not a redirect) showing what is now stored.
//!
//! Invariants:
//! - The token is checked by its signature alone ([`Signer::verify`]); a
//!   forged or altered one is 404 and nothing is read or written.
//! - Every change is committed before the response is written, in one
//!   transaction with its audit entry, and serialised per contact
//!   ([`consent::lock_contact`]), so a repeat appends nothing. The write
//!   runs on its own task: a client that hangs up mid-request cannot cancel
//!   an opt-out half way.
//! - A genuine token whose contact no longer exists (erased) answers 200
//!   with nothing to change, never 404: 404 means only "bad signature", so
//!   whoever holds a forwarded link cannot learn that the person was
//!   erased, and a mail provider's one-click POST still sees success rather
//!   than retrying or flagging the sender's unsubscribe as broken.
//! - No personal data in logs; the audit log gets the address masked.
//!
//! [`Signer::verify`]: crate::email::unsubscribe::Signer::verify

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::LazyLock,
};

use axum::{
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use minijinja::{AutoEscape, Environment};
use sea_orm::EntityTrait;
use serde::Serialize;

use crate::{
    consent::{self, Current, Source},
    db::entities::contacts,
    domain::Channel,
    domain::{mask_email, mask_phone},
    email::unsubscribe::Subject,
    state::App,
};

/// Who the ledger and the audit log name for changes made through the link.
const ACTOR: &str = "recipient";

const TEMPLATE: &str = "unsubscribe_page.html.j2";

static PAGES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    // Explicit, not left to the file name: every value is HTML-escaped.
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    env.add_template(TEMPLATE, include_str!("unsubscribe_page.html.j2"))
        .expect("the unsubscribe page template compiles");
    env
});

#[derive(Debug, thiserror::Error)]
pub enum UnsubscribeError {
    /// A token that is not ours (forged, altered, truncated).
    #[error("no such link")]
    NotFound,
    #[error("{0}")]
    BadRequest(&'static str),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl IntoResponse for UnsubscribeError {
    fn into_response(self) -> Response {
        let (status, body) = match &self {
            UnsubscribeError::NotFound => (StatusCode::NOT_FOUND, "Not found.\n".to_string()),
            UnsubscribeError::BadRequest(why) => (StatusCode::BAD_REQUEST, format!("{why}\n")),
            UnsubscribeError::Internal(e) => {
                tracing::error!(error = format!("{e:#}"), "unsubscribe request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong on our side; please try again.\n".to_string(),
                )
            }
        };
        (status, no_store(), body).into_response()
    }
}

/// What a POST asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Intent {
    /// RFC 8058: a mail client's one-click POST.
    OneClick,
    /// The page's "Unsubscribe" button.
    PageUnsubscribe,
    /// The page's preferences form: the channels it showed and the ticked ones.
    Preferences {
        shown: BTreeSet<String>,
        ticked: BTreeSet<String>,
    },
}

/// `GET /u/{token}`: the page. Reads only.
pub async fn page(
    State(app): State<App>,
    Path(token): Path<String>,
) -> Result<Response, UnsubscribeError> {
    let subject = verify(&app, &token).await?;
    let Some(contact) = contacts::Entity::find_by_id(subject.contact_id)
        .one(&app.db)
        .await
        .map_err(anyhow::Error::from)?
    else {
        return render(&app, &subject, None, &BTreeMap::new(), View::Gone);
    };
    let consent = consent::current(&app.db, contact.id).await?;
    render(&app, &subject, Some(&contact), &consent, View::Page)
}

/// `POST /u/{token}`: one-click, or one of the page's forms.
pub async fn post(
    State(app): State<App>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, UnsubscribeError> {
    let subject = verify(&app, &token).await?;
    let intent = intent(&headers, &body).ok_or(UnsubscribeError::BadRequest(
        "This link takes a POST with List-Unsubscribe=One-Click (RFC 8058).",
    ))?;
    // On its own task: committed even if the client hangs up meanwhile.
    let write = {
        let (app, subject, intent) = (app.clone(), subject.clone(), intent.clone());
        app.tasks
            .clone()
            .spawn(async move { apply(&app, &subject, &intent).await })
    };
    let outcome = write
        .await
        .map_err(|e| anyhow::anyhow!("the unsubscribe write panicked: {e}"))??;

    if intent == Intent::OneClick {
        let body = match outcome {
            Outcome::Gone => "Nothing to change: we hold no details for this link.\n",
            Outcome::Applied { changed: 0, .. } => "You were already unsubscribed.\n",
            Outcome::Applied { .. } => "You are unsubscribed.\n",
        };
        return Ok((
            StatusCode::OK,
            no_store(),
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            body,
        )
            .into_response());
    }
    let Outcome::Applied { changed, .. } = outcome else {
        return render(&app, &subject, None, &BTreeMap::new(), View::Gone);
    };
    // Show what is stored now, read back after the commit.
    let contact = contacts::Entity::find_by_id(subject.contact_id)
        .one(&app.db)
        .await
        .map_err(anyhow::Error::from)?;
    let consent = consent::current(&app.db, subject.contact_id).await?;
    let view = match intent {
        Intent::PageUnsubscribe => View::Unsubscribed {
            already: changed == 0,
        },
        _ => View::Saved {
            changed: changed > 0,
        },
    };
    match contact {
        Some(c) => render(&app, &subject, Some(&c), &consent, view),
        None => render(&app, &subject, None, &BTreeMap::new(), View::Gone),
    }
}

async fn verify(app: &App, token: &str) -> Result<Subject, UnsubscribeError> {
    app.composer
        .signer()
        .verify(token)
        .await?
        .ok_or(UnsubscribeError::NotFound)
}

#[derive(Debug)]
enum Outcome {
    /// The contact does not exist (any more).
    Gone,
    /// `changed` rows appended.
    Applied { changed: usize },
}

/// SQLite has one writer, and under a burst of opt-outs its busy handler
/// (sleep, retry) can leave an unlucky request waiting more than a second
/// while later ones get in first (measured: 16 at a time, max 1.0–1.3 s).
/// Opt-outs queue here instead, first come first served, so each waits only
/// for those ahead of it. PostgreSQL locks the contact's row and needs no
/// queue.
static SQLITE_OPT_OUTS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Reads the contact's consent and appends what the request changes, with
/// an audit entry per change, in one transaction that holds the contact.
async fn apply(app: &App, subject: &Subject, intent: &Intent) -> anyhow::Result<Outcome> {
    let _queued = match crate::db::is_postgres(&app.db) {
        true => None,
        false => Some(SQLITE_OPT_OUTS.lock().await),
    };
    let Some(txn) = consent::lock_contact(&app.db, subject.contact_id).await? else {
        return Ok(Outcome::Gone);
    };
    let Some(contact) = contacts::Entity::find_by_id(subject.contact_id)
        .one(&txn)
        .await?
    else {
        return Ok(Outcome::Gone);
    };
    let current = consent::current(&txn, contact.id).await?;
    let product = app.settings.email.product();
    // (channel, granted, source)
    let mut changes: Vec<(String, bool, Source)> = Vec::new();
    match intent {
        Intent::OneClick | Intent::PageUnsubscribe => {
            // A revocation is appended unless the newest row already is
            // one. With no row at all it is still recorded: the person's
            // explicit request is worth keeping on the ledger.
            let already = current.get(&subject.channel).is_some_and(|c| !c.granted);
            if !already {
                let source = if *intent == Intent::OneClick {
                    Source::OneClickUnsubscribe
                } else {
                    Source::PreferencesPage
                };
                changes.push((subject.channel.clone(), false, source));
            }
        }
        Intent::Preferences { shown, ticked } => {
            // Only channels the page showed and can still show: a box
            // that was not on the page is not an "unticked" box.
            for ch in displayed(&contact, &current, &subject.channel) {
                if !shown.contains(ch) {
                    continue;
                }
                let wanted = ticked.contains(ch);
                let now = current.get(ch).is_some_and(|c| c.granted);
                if wanted != now {
                    changes.push((ch.to_string(), wanted, Source::PreferencesPage));
                }
            }
        }
    }
    for (channel, granted, source) in &changes {
        let text = granted.then(|| consent_text(&product, channel));
        consent::record(
            &txn,
            contact.id,
            channel,
            *granted,
            *source,
            Some(ACTOR),
            text.as_deref(),
        )
        .await?;
        let masked = address_of(&contact, channel).map_or_else(
            || format!("contact:{}", contact.id),
            |a| mask_address(channel, &a),
        );
        crate::audit::record(
            &txn,
            ACTOR,
            if *granted {
                "consent.granted"
            } else {
                "consent.revoked"
            },
            Some(&masked),
            serde_json::json!({
                "contact_id": contact.id,
                "channel": channel,
                "source": source.as_str(),
            }),
        )
        .await?;
    }
    txn.commit().await?;
    for (channel, granted, source) in &changes {
        tracing::info!(
            contact_id = contact.id,
            channel = channel.as_str(),
            granted,
            source = source.as_str(),
            "consent changed through an unsubscribe link"
        );
    }
    Ok(Outcome::Applied {
        changed: changes.len(),
    })
}

/// Reads the request body as the one-click form or one of the page's forms.
fn intent(headers: &HeaderMap, body: &[u8]) -> Option<Intent> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if let Some(boundary) = multipart_boundary(content_type) {
        return multipart_is_one_click(body, &boundary).then_some(Intent::OneClick);
    }
    // Form-encoded; also when a client sends no content type at all.
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(body).into_owned().collect();
    let has = |k: &str, v: &str| pairs.iter().any(|(pk, pv)| pk == k && pv == v);
    if has("List-Unsubscribe", "One-Click") {
        return Some(Intent::OneClick);
    }
    if has("action", "unsubscribe") {
        return Some(Intent::PageUnsubscribe);
    }
    if has("action", "preferences") {
        let values = |k: &str| -> BTreeSet<String> {
            pairs
                .iter()
                .filter(|(pk, _)| pk == k)
                .map(|(_, v)| v.clone())
                .collect()
        };
        return Some(Intent::Preferences {
            shown: values("shown"),
            ticked: values("channel"),
        });
    }
    None
}

fn multipart_boundary(content_type: &str) -> Option<String> {
    let mut parts = content_type.split(';');
    if !parts
        .next()?
        .trim()
        .eq_ignore_ascii_case("multipart/form-data")
    {
        return None;
    }
    parts.find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_string())
            .filter(|b| !b.is_empty())
    })
}

/// True when a `multipart/form-data` body has a part named
/// `List-Unsubscribe` whose value is `One-Click`. Lenient about the
/// delimiter's leading `--` (RFC 8058's own example omits it) and line
/// endings; this is the only field a multipart POST is read for.
fn multipart_is_one_click(body: &[u8], boundary: &str) -> bool {
    let text = String::from_utf8_lossy(body);
    text.split(boundary).any(|part| {
        let part = part.trim_start_matches(['\r', '\n']);
        let Some((head, value)) = part
            .split_once("\r\n\r\n")
            .or_else(|| part.split_once("\n\n"))
        else {
            return false;
        };
        let named = head.lines().any(|l| {
            let l = l.to_ascii_lowercase();
            l.starts_with("content-disposition:")
                && (l.contains("name=\"list-unsubscribe\"") || l.contains("name=list-unsubscribe"))
        });
        // What follows the value is the next delimiter's `--`.
        named && value.trim_end_matches('-').trim() == "One-Click"
    })
}

/// The channels the page shows: those the contact has an address for, any
/// with a ledger row (a grant can always be withdrawn here, GDPR Art.
/// 7(3)), and the token's own.
fn displayed(
    contact: &contacts::Model,
    consent: &BTreeMap<String, Current>,
    token_channel: &str,
) -> Vec<&'static str> {
    Channel::ALL
        .iter()
        .map(|ch| ch.as_str())
        .filter(|ch| {
            *ch == token_channel || address_of(contact, ch).is_some() || consent.contains_key(*ch)
        })
        .collect()
}

/// The contact's address on `channel`. Instagram has no address column.
fn address_of(contact: &contacts::Model, channel: &str) -> Option<String> {
    match Channel::parse(channel) {
        Some(Channel::Email) => contact.email.clone(),
        Some(Channel::Sms | Channel::Whatsapp) => contact.phone.clone(),
        Some(Channel::Instagram) | None => None,
    }
    .filter(|a| !a.trim().is_empty())
}

fn mask_address(channel: &str, address: &str) -> String {
    if Channel::parse(channel) == Some(Channel::Email) {
        mask_email(address)
    } else {
        mask_phone(address)
    }
}

fn label(channel: &str) -> &'static str {
    match Channel::parse(channel) {
        Some(Channel::Email) => "Email",
        Some(Channel::Sms) => "Text messages (SMS)",
        Some(Channel::Whatsapp) => "WhatsApp",
        Some(Channel::Instagram) => "Instagram",
        None => "Messages",
    }
}

fn noun(channel: &str) -> &'static str {
    match Channel::parse(channel) {
        Some(Channel::Email) => "emails",
        Some(Channel::Sms) => "text messages",
        Some(Channel::Whatsapp) => "WhatsApp messages",
        Some(Channel::Instagram) => "Instagram messages",
        None => "messages",
    }
}

/// The sentence next to a channel's checkbox; a grant from the page stores
/// exactly this as its consent text.
pub fn consent_text(product: &str, channel: &str) -> String {
    format!(
        "I agree to receive {} from {product}. I can change this at any time.",
        noun(channel)
    )
}

enum View {
    Page,
    Unsubscribed { already: bool },
    Saved { changed: bool },
    Gone,
}

#[derive(Serialize)]
struct ChannelRow {
    name: &'static str,
    label: &'static str,
    address: Option<String>,
    subscribed: bool,
    consent_text: String,
}

#[derive(Serialize)]
struct PageContext {
    view: &'static str,
    title: String,
    product: String,
    address: String,
    noun: &'static str,
    channel_name: &'static str,
    unsubscribe_label: String,
    already: bool,
    changed: bool,
    channels: Vec<ChannelRow>,
}

fn render(
    app: &App,
    subject: &Subject,
    contact: Option<&contacts::Model>,
    consent: &BTreeMap<String, Current>,
    view: View,
) -> Result<Response, UnsubscribeError> {
    let product = app.settings.email.product();
    let channel = subject.channel.as_str();
    let channels = contact
        .map(|c| {
            displayed(c, consent, channel)
                .into_iter()
                .map(|ch| ChannelRow {
                    name: ch,
                    label: label(ch),
                    address: address_of(c, ch),
                    subscribed: consent.get(ch).is_some_and(|x| x.granted),
                    consent_text: consent_text(&product, ch),
                })
                .collect()
        })
        .unwrap_or_default();
    let address = contact
        .and_then(|c| address_of(c, channel))
        .unwrap_or_else(|| "your address".to_string());
    let (name, title, already, changed) = match view {
        View::Page => (
            "page",
            format!("Unsubscribe from {}", noun(channel)),
            false,
            false,
        ),
        View::Unsubscribed { already } => {
            ("unsubscribed", "You’re unsubscribed".into(), already, false)
        }
        View::Saved { changed } => ("saved", "Preferences saved".into(), false, changed),
        View::Gone => ("gone", "Nothing to change".into(), false, false),
    };
    let ctx = PageContext {
        view: name,
        title,
        product,
        address,
        noun: noun(channel),
        channel_name: label(channel),
        unsubscribe_label: format!("Unsubscribe from these {}", noun(channel)),
        already,
        changed,
        channels,
    };
    let html = PAGES
        .get_template(TEMPLATE)
        .and_then(|t| t.render(minijinja::value::Serde(&ctx)))
        .map_err(|e| anyhow::anyhow!("rendering the unsubscribe page: {e:#}"))?;
    Ok((
        StatusCode::OK,
        no_store(),
        page_headers(),
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        html,
    )
        .into_response())
}

/// Personal pages and opt-out answers are never cached by anyone.
fn no_store() -> [(header::HeaderName, HeaderValue); 1] {
    [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))]
}

/// The page runs no script, is framed by no one, posts only to itself, and
/// does not leak its URL (which carries the token) to anyone.
fn page_headers() -> [(header::HeaderName, HeaderValue); 5] {
    [
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; \
                 frame-ancestors 'none'; base-uri 'none'",
            ),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::HeaderName::from_static("x-robots-tag"),
            HeaderValue::from_static("noindex, nofollow"),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(content_type: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, content_type.parse().unwrap());
        h
    }

    #[test]
    fn the_one_click_form_is_recognised() {
        let form = headers("application/x-www-form-urlencoded");
        assert_eq!(
            intent(&form, b"List-Unsubscribe=One-Click"),
            Some(Intent::OneClick)
        );
        assert_eq!(
            intent(&HeaderMap::new(), b"List-Unsubscribe=One-Click"),
            Some(Intent::OneClick),
            "no content type: still read as a form"
        );
        assert_eq!(intent(&form, b"List-Unsubscribe=Two-Click"), None);
        assert_eq!(intent(&form, b""), None);
    }

    #[test]
    fn the_rfc_8058_multipart_example_is_recognised() {
        // RFC 8058 §3.2's example, whose delimiter lacks the leading `--`.
        let rfc = "---FormBoundaryjWmhtjORrn\r\nContent-Disposition: form-data; \
                   name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n---FormBoundaryjWmhtjORrn--\r\n";
        let h = headers("multipart/form-data; boundary=---FormBoundaryjWmhtjORrn");
        assert_eq!(intent(&h, rfc.as_bytes()), Some(Intent::OneClick));
        // And as a conforming client writes it.
        let proper = "--XyZ\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\n\
                      One-Click\r\n--XyZ--\r\n";
        let h = headers("multipart/form-data; boundary=\"XyZ\"");
        assert_eq!(intent(&h, proper.as_bytes()), Some(Intent::OneClick));
        let other = "--XyZ\r\nContent-Disposition: form-data; name=\"action\"\r\n\r\n\
                     unsubscribe\r\n--XyZ--\r\n";
        assert_eq!(intent(&h, other.as_bytes()), None);
    }

    #[test]
    fn the_page_forms_are_recognised() {
        let form = headers("application/x-www-form-urlencoded");
        assert_eq!(
            intent(&form, b"action=unsubscribe"),
            Some(Intent::PageUnsubscribe)
        );
        assert_eq!(
            intent(
                &form,
                b"action=preferences&shown=email&shown=sms&channel=sms"
            ),
            Some(Intent::Preferences {
                shown: ["email".to_string(), "sms".to_string()].into(),
                ticked: ["sms".to_string()].into(),
            })
        );
    }

    #[test]
    fn the_page_escapes_what_it_shows() {
        let ctx = PageContext {
            view: "page",
            title: "t".into(),
            product: "<b>Acme</b>".into(),
            address: "a\"<script>@example.com".into(),
            noun: "emails",
            channel_name: "Email",
            unsubscribe_label: "Unsubscribe from these emails".into(),
            already: false,
            changed: false,
            channels: vec![],
        };
        let html = PAGES
            .get_template(TEMPLATE)
            .unwrap()
            .render(minijinja::value::Serde(&ctx))
            .unwrap();
        assert!(!html.contains("<script>"));
        assert!(!html.contains("<b>Acme</b>"));
        assert!(html.contains("&lt;b&gt;Acme&lt;&#x2f;b&gt;"));
        assert!(!html.contains("<script"), "the page runs no JavaScript");
    }
}
