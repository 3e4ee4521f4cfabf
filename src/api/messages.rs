//! `POST /api/v1/messages` and `GET /api/v1/messages/{id}`: the host CRM's
//! own transactional email (password reset, magic link, receipt, system
//! notification), sent through warmline's dispatcher.
//!
//! Why only transactional templates: this endpoint sends what the host app's
//! user asked for, at once, without consent, approval or an unsubscribe
//! link. Marketing mail needs all three (consent in the ledger, a person's
//! approval for risky sends, RFC 8058 one-click unsubscribe), so it goes
//! through campaigns and approvals, never through here.
//!
//! Invariants:
//! - Everything is checked before anything is written: the address, the
//!   template (an email template of kind transactional), the variables (the
//!   email is rendered in full, so a missing variable is a 422 naming it and
//!   never reaches an inbox), a provider and a sender configured.
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
    domain::{Channel, EmailAddress, MessageState},
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
            to = %crate::domain::mask_email(message.address.as_deref().unwrap_or_default()),
            "API: transactional email queued"
        );
    }
    Ok(executed.response)
}

/// Validates the request and builds its ledger row, rendered in full.
async fn prepare(app: &App, request: SendRequest) -> Result<NewMessage, ApiError> {
    let to =
        EmailAddress::parse(&request.to).map_err(|e| ApiError::invalid("to", e.to_string()))?;
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
    if template.channel != crate::domain::Channel::Email {
        return Err(ApiError::invalid(
            "template",
            format!(
                "'{}' is a {} template, not an email template",
                template.name, template.channel
            ),
        ));
    }
    if template.kind != Kind::Transactional {
        return Err(ApiError::invalid(
            "template",
            format!(
                "'{}' is a marketing template; this endpoint sends only the host app's own \
                 transactional email (marketing needs consent, approval and an unsubscribe \
                 link, so it goes through campaigns)",
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
    let provider = app
        .dispatcher
        .registry()
        .for_channel(crate::domain::Channel::Email)
        .ok_or_else(|| {
            ApiError::Unavailable(
                "no email provider is configured: set RESEND_API_KEY or SMTP_URL".into(),
            )
        })?;
    let (content, _) = app
        .composer
        .from_template(&request.template, &request.variables, None)
        .await
        .map_err(compose_error)?;
    let contact_id = contact_with_email(&app.db, &to).await?;
    Ok(NewMessage {
        source: format!("api:{}", uuid::Uuid::now_v7()),
        campaign_id: None,
        contact_id,
        channel: Channel::Email,
        kind: Kind::Transactional,
        address: Some(to.as_str().to_string()),
        provider: provider.name().to_string(),
        payload: content.to_payload(),
        template: Some(request.template),
        state: MessageState::Queued,
        due_at: crate::clock::now(),
    })
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

/// The contact with this address, compared case-insensitively (as import
/// merges), if there is one: the message is then linked to it.
async fn contact_with_email(
    db: &impl ConnectionTrait,
    to: &EmailAddress,
) -> Result<Option<i64>, ApiError> {
    #[derive(FromQueryResult)]
    struct Id {
        id: i64,
    }
    let row = Id::find_by_statement(Statement::from_sql_and_values(
        db.get_database_backend(),
        "SELECT id FROM contacts WHERE LOWER(email) = $1 ORDER BY id LIMIT 1",
        [Value::from(to.as_str().to_lowercase())],
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
