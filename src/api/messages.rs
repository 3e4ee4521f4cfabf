//! `POST /api/v1/messages` and `GET /api/v1/messages/{id}`: the host CRM's
//! own transactional messages — email (password reset, magic link, receipt,
//! system notification) and SMS (verification code) — sent through
//! warmline's dispatcher.
//!
//! Why only transactional templates: this endpoint sends what the host app's
//! user asked for, at once, without consent, approval or an unsubscribe
//! link. Marketing mail needs all three (consent in the ledger, a person's
//! approval for risky sends, RFC 8058 one-click unsubscribe), so it goes
//! through campaigns and approvals, never through here.
//!
//! Invariants:
//! - Everything is checked before anything is written: the template (email
//!   or SMS, of kind transactional), the address as its channel needs it (an
//!   email address, or an E.164 number for SMS: 422 naming `to`), the
//!   variables (the message is rendered in full, so a missing variable is a
//!   422 naming it and never reaches anyone), a provider and, for email, a
//!   sender configured. An SMS is stored as `{"text": …}`, composed by
//!   `crate::sms::compose` (transactional: no sender prefix, no STOP footer).
//! - The ledger row and the idempotency record commit together; then the
//!   dispatcher is woken. Sending is the dispatcher's job: its rate limits,
//!   retries, and its last-moment suppression check (a hard-bounced address
//!   ends `skipped`, reason `suppressed`). Transactional mail skips approval,
//!   consent and frequency caps (see `dispatcher::checks`).
//! - Each request is its own send: the ledger source is `api:<fresh UUID>`,
//!   so two identical requests without an `Idempotency-Key` send twice, as
//!   asked; de-duplication is the key's job alone. (A source derived from the
//!   key would, once the key's record expired, map a new request onto the
//!   old message id and silently enqueue nothing.)
//! - Addresses are masked in logs.

use axum::{
    extract::{Path, State, rejection::PathRejection},
    http::{HeaderMap, Method, StatusCode, Uri},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, SecondsFormat, Utc};
use sea_orm::{ConnectionTrait, FromQueryResult, Statement, Value};
use serde::{Deserialize, Serialize};

use super::{ApiError, Caller, JsonBody, idempotency::Idempotency};
use crate::{
    dispatcher::ledger::{self, NewMessage},
    domain::{Channel, E164Phone, EmailAddress, MessageState},
    email::compose::ComposeError,
    state::App,
    templates::{Kind, TemplateError},
};

/// The body of `POST /api/v1/messages`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendRequest {
    /// A template in `templates/`, email and transactional.
    pub template: String,
    pub to: String,
    /// The template's variables; absent means none.
    #[serde(default = "empty_object")]
    pub variables: serde_json::Value,
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(Default::default())
}

/// `202 Accepted`: in the ledger, not yet sent.
#[derive(Debug, Serialize)]
struct Queued<'a> {
    id: &'a str,
    state: &'static str,
}

pub async fn create(
    State(app): State<App>,
    caller: Caller,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: JsonBody,
) -> Result<Response, ApiError> {
    let idempotency = Idempotency::new(&caller, &headers, &method, &uri, body.bytes())?;
    if let Some(stored) = idempotency.replay(&app.db, crate::clock::now()).await? {
        return Ok(stored.into_replay());
    }
    let request: SendRequest = body.parse()?;
    let message = prepare(&app, request).await?;
    let id = message.id();
    let executed = idempotency
        .execute(&app, StatusCode::ACCEPTED, async |txn| {
            let inserted =
                ledger::enqueue(txn, std::slice::from_ref(&message), crate::clock::now()).await?;
            if inserted != 1 {
                // A fresh source per request: a collision is a bug.
                return Err(anyhow::anyhow!("message {id} was already in the ledger").into());
            }
            Ok(serde_json::to_value(Queued {
                id: &id,
                state: MessageState::Queued.as_str(),
            })
            .expect("plain data serialises"))
        })
        .await?;
    if !executed.replayed {
        app.dispatcher.wake();
        tracing::info!(
            message_id = %id,
            template = message.template.as_deref().unwrap_or_default(),
            channel = %message.channel,
            to = %crate::domain::mask_addresses(message.address.as_deref().unwrap_or_default()),
            "API: transactional message queued"
        );
    }
    Ok(executed.response)
}

/// Validates the request and builds its ledger row, rendered in full.
async fn prepare(app: &App, request: SendRequest) -> Result<NewMessage, ApiError> {
    let template = app
        .composer
        .catalog()
        .get(&request.template)
        .ok_or_else(|| {
            ApiError::invalid(
                "template",
                format!("no template named '{}'", request.template),
            )
        })?;
    // The recipient is read as the template's channel addresses it, so a
    // wrong `to` is named for what it should have been.
    let to = match template.channel {
        Channel::Email => Recipient::Email(
            EmailAddress::parse(&request.to).map_err(|e| ApiError::invalid("to", e.to_string()))?,
        ),
        Channel::Sms => Recipient::Phone(e164(&request.to)?),
        other => {
            return Err(ApiError::invalid(
                "template",
                format!(
                    "'{}' is a {other} template; this endpoint sends email and SMS",
                    template.name
                ),
            ));
        }
    };
    if template.kind != Kind::Transactional {
        return Err(ApiError::invalid(
            "template",
            format!(
                "'{}' is a marketing template; this endpoint sends only the host app's own \
                 transactional messages (marketing needs consent, approval and an opt-out, \
                 so it goes through campaigns)",
                template.name
            ),
        ));
    }
    if !request.variables.is_object() {
        return Err(ApiError::invalid(
            "variables",
            "variables must be a JSON object",
        ));
    }
    let channel = template.channel;
    let provider = app
        .dispatcher
        .registry()
        .for_channel(channel)
        .ok_or_else(|| {
            ApiError::Unavailable(match channel {
                Channel::Email => {
                    "no email provider is configured: set RESEND_API_KEY or SMTP_URL".into()
                }
                other => format!("no {other} provider is configured"),
            })
        })?;
    let (payload, contact_id, address) = match &to {
        Recipient::Email(to) => {
            let (content, _) = app
                .composer
                .from_template(&request.template, &request.variables, None)
                .await
                .map_err(compose_error)?;
            (
                content.to_payload(),
                contact_with(&app.db, "LOWER(email)", &to.as_str().to_lowercase()).await?,
                to.as_str().to_string(),
            )
        }
        Recipient::Phone(to) => {
            // The product's name, for templates that say whose code it is;
            // the caller's own `product_name` wins.
            let mut vars = request.variables.clone();
            if let Some(vars) = vars.as_object_mut() {
                vars.entry("product_name")
                    .or_insert_with(|| crate::sms::sender_name(&app.settings).into());
            }
            let rendered = template
                .render(&vars)
                .map_err(|e| compose_error(ComposeError::Template(e)))?;
            let text = crate::sms::compose(
                &rendered.text,
                Kind::Transactional,
                &crate::sms::sender_name(&app.settings),
            );
            (
                crate::sms::content(&text),
                contact_with(&app.db, "phone", to.as_str()).await?,
                to.as_str().to_string(),
            )
        }
    };
    Ok(NewMessage {
        source: format!("api:{}", uuid::Uuid::now_v7()),
        campaign_id: None,
        contact_id,
        channel,
        kind: Kind::Transactional,
        address: Some(address),
        provider: provider.name().to_string(),
        payload,
        template: Some(request.template),
        state: MessageState::Queued,
        due_at: crate::clock::now(),
    })
}

/// Where a message goes, parsed for its channel.
enum Recipient {
    Email(EmailAddress),
    Phone(E164Phone),
}

/// `to` for an SMS: E.164 as written (`+` and the country code), so a
/// number is never guessed into some region.
fn e164(raw: &str) -> Result<E164Phone, ApiError> {
    let why = |detail: String| {
        ApiError::invalid(
            "to",
            format!(
                "an SMS template needs `to` as an E.164 phone number, such as +14155550100: {detail}"
            ),
        )
    };
    let trimmed = raw.trim();
    if !trimmed.starts_with('+') {
        return Err(why(format!(
            "'{}' does not start with + and the country code",
            crate::domain::mask_phone(trimmed)
        )));
    }
    let phone = E164Phone::parse(trimmed, None).map_err(|e| why(e.to_string()))?;
    if phone.as_str() != trimmed {
        return Err(why(format!(
            "write it without spaces or punctuation, as {}",
            phone.masked()
        )));
    }
    Ok(phone)
}

/// Render and configuration errors, as the caller should hear them.
fn compose_error(e: ComposeError) -> ApiError {
    match e {
        ComposeError::Template(TemplateError::MissingVariable(name)) => ApiError::invalid(
            format!("variables.{name}"),
            format!("missing variable '{name}'"),
        ),
        // A variable the template uses without declaring it, or one of the
        // wrong shape (a string where a list is iterated).
        ComposeError::Template(e @ TemplateError::Render { .. }) => {
            ApiError::invalid("variables", e.to_string())
        }
        ComposeError::Template(TemplateError::Unknown(name)) => {
            ApiError::invalid("template", format!("no template named '{name}'"))
        }
        ComposeError::NotEmail(name) => {
            ApiError::invalid("template", format!("'{name}' is not an email template"))
        }
        ComposeError::MarketingNeedsContact => {
            ApiError::invalid("template", "marketing templates cannot be sent here")
        }
        ComposeError::NoSender => {
            ApiError::Unavailable("no sender address is configured: set WARMLINE_EMAIL_FROM".into())
        }
        ComposeError::Template(e) => {
            ApiError::Internal(anyhow::anyhow!("a shipped template does not render: {e}"))
        }
        ComposeError::Infrastructure(e) => ApiError::Internal(e),
    }
}

/// The contact whose `column` (an address column, or its lower-cased
/// form) equals `value`, if there is one: the message is then linked to it.
/// Email is compared case-insensitively, as import merges; phones are
/// stored in E.164.
async fn contact_with(
    db: &impl ConnectionTrait,
    column: &'static str,
    value: &str,
) -> Result<Option<i64>, ApiError> {
    #[derive(FromQueryResult)]
    struct Id {
        id: i64,
    }
    let row = Id::find_by_statement(Statement::from_sql_and_values(
        db.get_database_backend(),
        format!("SELECT id FROM contacts WHERE {column} = $1 ORDER BY id LIMIT 1"),
        [Value::from(value.to_string())],
    ))
    .one(db)
    .await
    .map_err(anyhow::Error::from)?;
    Ok(row.map(|r| r.id))
}

/// The body of `GET /api/v1/messages/{id}`.
#[derive(Debug, Serialize)]
struct MessageView {
    id: String,
    channel: String,
    template: Option<String>,
    state: String,
    /// Why a `skipped` message was not sent (`suppressed`, …); else null.
    skip_reason: Option<String>,
    events: Vec<EventView>,
}

#[derive(Debug, Serialize)]
struct EventView {
    state: String,
    /// RFC 3339, UTC.
    at: String,
    detail: Option<String>,
}

pub async fn show(
    State(app): State<App>,
    _caller: Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(id) = id.map_err(|e| ApiError::NotFound(e.body_text()))?;
    #[derive(FromQueryResult)]
    struct MessageRow {
        id: String,
        channel: String,
        template: Option<String>,
        state: String,
        skip_reason: Option<String>,
    }
    #[derive(FromQueryResult)]
    struct EventRow {
        state: String,
        at: DateTime<Utc>,
        detail: Option<String>,
    }
    let db = &app.db;
    let backend = db.get_database_backend();
    let message = MessageRow::find_by_statement(Statement::from_sql_and_values(
        backend,
        "SELECT id, channel, template, state, skip_reason FROM messages WHERE id = $1",
        [Value::from(id.clone())],
    ))
    .one(db)
    .await
    .map_err(anyhow::Error::from)?
    .ok_or_else(|| ApiError::NotFound(format!("no message with id '{id}'")))?;
    // Insertion order is the order things happened in.
    let events = EventRow::find_by_statement(Statement::from_sql_and_values(
        backend,
        "SELECT state, at, detail FROM message_events WHERE message_id = $1 ORDER BY id",
        [Value::from(id)],
    ))
    .all(db)
    .await
    .map_err(anyhow::Error::from)?;
    let view = MessageView {
        id: message.id,
        channel: message.channel,
        template: message.template,
        state: message.state,
        skip_reason: message.skip_reason,
        events: events
            .into_iter()
            .map(|e| EventView {
                state: e.state,
                at: e.at.to_rfc3339_opts(SecondsFormat::Millis, true),
                detail: e.detail,
            })
            .collect(),
    };
    Ok(axum::Json(view).into_response())
}
