//! `POST /api/v1/contacts`, `GET /api/v1/contacts/{id}`,
//! `GET /api/v1/contacts?email=…` (or `?external_id=…`) and
//! `POST /api/v1/interactions`: the host CRM keeping warmline in step.
//!
//! Invariants:
//! - A request is atomic: a body of one contact or an array of them is
//!   validated whole (a bad item is a 422 naming it, `[1].email`) and then
//!   written in one transaction with its idempotency record, so a refused
//!   request stores nothing, as for messages. A refusal found while writing
//!   (a forgotten person, an `external_id` held by another contact) rolls
//!   the whole request back too.
//! - The answer mirrors the body: an object for an object, an array (in
//!   the same order) for an array; each stored contact with its `id` and
//!   `created`.
//! - An interaction names its contact by exactly one of `id`, `email`,
//!   `external_id`; an unknown contact is a 404 (the reference is well
//!   formed, the thing it names does not exist); an `occurred_at` more than
//!   [`MAX_CLOCK_SKEW`] in the future is a 422 (an interaction that has
//!   not happened yet would inflate warmth).
//! - Consent rows and interactions name the caller as `api:<first 8 hex
//!   digits of its key's SHA-256>`: which key, never the key.

use axum::{
    extract::{Path, RawQuery, State, rejection::PathRejection},
    http::{HeaderMap, Method, StatusCode, Uri},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Duration, FixedOffset, Utc};
use serde::Deserialize;
use serde_json::json;

use super::{ApiError, Caller, JsonBody, idempotency::Idempotency};
use crate::{
    contacts::{self, ContactInput, UpsertError, ValidInput},
    domain::Channel,
    interactions::{Direction, Kind, NewInteraction},
    state::App,
};

/// How far in the future an interaction's `occurred_at` may be (clocks of
/// the host and warmline differ a little).
pub const MAX_CLOCK_SKEW: Duration = Duration::minutes(5);

/// Longest interaction summary, in characters.
const MAX_SUMMARY: usize = 10_000;

/// Who the ledger names for this caller.
pub fn actor(caller: &Caller) -> String {
    format!("api:{}", hex::encode(&caller.key_digest[..4]))
}

/// A contact error as the API answers it; `index` prefixes the field for
/// an array body (`[2].email`).
fn upsert_error(e: UpsertError, index: Option<usize>) -> ApiError {
    let path = |field: &str| match index {
        Some(i) => format!("[{i}].{field}"),
        None => field.to_string(),
    };
    match e {
        UpsertError::Invalid { field, message } => ApiError::invalid(path(&field), message),
        e @ UpsertError::Forgotten { field } => ApiError::invalid(path(field), e.to_string()),
        UpsertError::Conflict(message) => ApiError::Conflict {
            code: "concurrent_update",
            message,
        },
        UpsertError::Other(e) => ApiError::Internal(e),
    }
}

pub async fn upsert(
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
    // Object or array: peek at the first token, then parse with the typed
    // parser so errors carry their paths (an untagged enum would lose them).
    let is_array = body
        .bytes()
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'[');
    let inputs: Vec<ContactInput> = if is_array {
        body.parse()?
    } else {
        vec![body.parse()?]
    };
    if inputs.is_empty() {
        return Err(ApiError::invalid("body", "the array holds no contacts"));
    }
    let region = crate::settings::region(&app.settings.import.default_region);
    let index = |i: usize| is_array.then_some(i);
    let valid: Vec<ValidInput> = inputs
        .iter()
        .enumerate()
        .map(|(i, c)| c.validate(region).map_err(|e| upsert_error(e, index(i))))
        .collect::<Result<_, _>>()?;
    let actor = actor(&caller);
    let executed = idempotency
        .execute(&app, StatusCode::OK, async |txn| {
            contacts::take_write_lock(txn).await?;
            let mut stored = Vec::with_capacity(valid.len());
            for (i, v) in valid.iter().enumerate() {
                let upserted = contacts::upsert_valid(txn, v, &actor)
                    .await
                    .map_err(|e| upsert_error(e, index(i)))?;
                stored.push(upserted);
            }
            let value = if is_array {
                serde_json::to_value(&stored)
            } else {
                serde_json::to_value(&stored[0])
            };
            Ok(value.map_err(anyhow::Error::from)?)
        })
        .await?;
    if !executed.replayed {
        tracing::info!(contacts = valid.len(), "API: contacts upserted");
    }
    Ok(executed.response)
}

pub async fn show(
    State(app): State<App>,
    _caller: Caller,
    id: Result<Path<i64>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(id) = id.map_err(|_| ApiError::NotFound("no such contact".into()))?;
    respond_with_view(&app, Some(id), || format!("no contact with id {id}")).await
}

/// `?email=` or `?external_id=`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Lookup {
    email: Option<String>,
    external_id: Option<String>,
}

pub async fn find(
    State(app): State<App>,
    _caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let lookup: Lookup = serde_urlencoded::from_str(query.as_deref().unwrap_or(""))
        .map_err(|e| ApiError::invalid("query", format!("bad query string: {e}")))?;
    let id = match (&lookup.email, &lookup.external_id) {
        (Some(email), None) => contacts::find_by_email(&app.db, email).await?,
        (None, Some(x)) => contacts::find_by_external_id(&app.db, x).await?,
        _ => {
            return Err(ApiError::invalid(
                "email",
                "give exactly one of ?email=… or ?external_id=…",
            ));
        }
    };
    respond_with_view(&app, id, || {
        if lookup.email.is_some() {
            "no contact with this email".to_string()
        } else {
            "no contact with this external_id".to_string()
        }
    })
    .await
}

async fn respond_with_view(
    app: &App,
    id: Option<i64>,
    missing: impl FnOnce() -> String,
) -> Result<Response, ApiError> {
    let view = match id {
        Some(id) => contacts::view(&app.db, id).await?,
        None => None,
    };
    match view {
        Some(v) => Ok(axum::Json(v).into_response()),
        None => Err(ApiError::NotFound(missing())),
    }
}

/// The body of `POST /api/v1/interactions`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InteractionRequest {
    pub contact: ContactRef,
    pub kind: Kind,
    pub direction: Direction,
    /// RFC 3339; absent means now.
    #[serde(default)]
    pub occurred_at: Option<DateTime<FixedOffset>>,
    #[serde(default)]
    pub summary: Option<String>,
    /// The channel it happened on, if any (`email`, `sms`, …).
    #[serde(default)]
    pub channel: Option<String>,
}

/// Exactly one of the three.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactRef {
    #[serde(default)]
    pub id: Option<i64>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub external_id: Option<String>,
}

pub async fn record_interaction(
    State(app): State<App>,
    caller: Caller,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: JsonBody,
) -> Result<Response, ApiError> {
    let idempotency = Idempotency::new(&caller, &headers, &method, &uri, body.bytes())?;
    let now = crate::clock::now();
    if let Some(stored) = idempotency.replay(&app.db, now).await? {
        return Ok(stored.into_replay());
    }
    let request: InteractionRequest = body.parse()?;
    let occurred_at = request
        .occurred_at
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(now);
    if occurred_at > now + MAX_CLOCK_SKEW {
        return Err(ApiError::invalid(
            "occurred_at",
            "occurred_at is in the future; record an interaction once it has happened",
        ));
    }
    let summary = request
        .summary
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    if summary
        .as_ref()
        .is_some_and(|s| s.chars().count() > MAX_SUMMARY)
    {
        return Err(ApiError::invalid(
            "summary",
            format!("summary is longer than {MAX_SUMMARY} characters"),
        ));
    }
    let channel = match request.channel.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(c) => Some(
            Channel::parse(c)
                .ok_or_else(|| {
                    ApiError::invalid(
                        "channel",
                        format!("'{c}' is not a channel ({})", Channel::names()),
                    )
                })?
                .as_str()
                .to_string(),
        ),
    };
    let reference = &request.contact;
    let (field, given) = match (&reference.id, &reference.email, &reference.external_id) {
        (Some(_), None, None) => ("contact.id", true),
        (None, Some(_), None) => ("contact.email", true),
        (None, None, Some(_)) => ("contact.external_id", true),
        _ => ("contact", false),
    };
    if !given {
        return Err(ApiError::invalid(
            "contact",
            "name the contact by exactly one of id, email or external_id",
        ));
    }
    let executed = idempotency
        .execute(&app, StatusCode::OK, async |txn| {
            let id = match (&reference.id, &reference.email, &reference.external_id) {
                (Some(id), _, _) => contacts::exists(txn, *id).await?.then_some(*id),
                (_, Some(email), _) => contacts::find_by_email(txn, email).await?,
                (_, _, Some(x)) => contacts::find_by_external_id(txn, x).await?,
                _ => None,
            };
            let Some(contact_id) = id else {
                return Err(ApiError::NotFound(format!("no contact matches {field}")));
            };
            let (interaction_id, score) = crate::interactions::record(
                txn,
                &NewInteraction {
                    contact_id,
                    kind: request.kind,
                    direction: request.direction,
                    occurred_at,
                    summary: summary.clone(),
                    source: actor(&caller),
                    channel: channel.clone(),
                },
                now,
            )
            .await?;
            Ok(json!({
                "contact_id": contact_id,
                "interaction_id": interaction_id,
                "warmth": score.value,
                "reasons": score.reasons,
            }))
        })
        .await?;
    Ok(executed.response)
}
