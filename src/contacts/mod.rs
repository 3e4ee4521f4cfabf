//! Contacts: the one read/write model the JSON API, Slack and the CLI share.
//!
//! - [`upsert`]: create or update one contact from an [`ContactInput`]
//!   (validated into domain types first, then written), appending any
//!   consent it carries to the ledger.
//! - [`view::view`]: a contact with its warmth and reasons, consent per
//!   channel, suppressions, last messages and interactions.
//! - [`export::export`]: everything warmline holds on a contact, consent
//!   proof included (GDPR Art. 15 and 20).
//! - [`forget::forget`]: erasure (GDPR Art. 17), leaving hashed tombstones.
//! - [`find_by_email`], [`search`]: look-ups for Slack and the CLI.
//!
//! Invariants:
//! - Identity: a contact is matched by email, compared case-insensitively
//!   (as `warmline import` merges), else by `external_id`. An input whose
//!   email is unknown but whose `external_id` is known updates that contact
//!   (its email changed in the host CRM). An `external_id` held by another
//!   contact than the one the email matched is refused, naming the field.
//! - A person who asked to be forgotten is never stored again: an email,
//!   phone or external id whose tombstone hash exists is refused before
//!   anything is written (the importer refuses the same rows).
//! - Consent is never invented: only the input's `consent` entries append
//!   to the ledger, each with its source, actor and text.
//! - Validation ([`ContactInput::validate`]) needs no database, so a batch
//!   can be checked whole before its first write.
//! - Emails and phones appear masked in logs; never in clear.

pub mod display;
pub mod export;
pub mod forget;
pub mod view;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, QueryFilter, Statement, Value,
    sea_query::{Expr, ExprTrait, Func},
};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Map;

pub use export::export;
pub use forget::forget;
pub use view::{ContactView, view};

use crate::{
    db::entities::{consents, contacts},
    domain::Channel,
    domain::tombstone_hash,
    domain::{E164Phone, EmailAddress, mask_email},
};

/// Longest free-text value accepted (names, status, stage, tags, consent
/// source), in characters: generous for people, small for abuse.
const MAX_TEXT: usize = 200;
/// Longest consent text (the wording the person agreed to).
const MAX_CONSENT_TEXT: usize = 10_000;

/// A stored contact, as callers see it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Contact {
    pub id: i64,
    pub email: Option<String>,
    /// E.164.
    pub phone: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub external_id: Option<String>,
    /// IANA name.
    pub timezone: Option<String>,
    pub status: String,
    pub pipeline_stage: Option<String>,
    pub tags: Vec<String>,
    pub metadata: Map<String, serde_json::Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Contact {
    /// How the team sees this contact named: see [`display::display_name`].
    pub fn display_name(&self) -> String {
        display::display_name(
            self.id,
            self.first_name.as_deref(),
            self.last_name.as_deref(),
            self.email.as_deref(),
            self.phone.as_deref(),
        )
    }
}

impl From<contacts::Model> for Contact {
    fn from(m: contacts::Model) -> Self {
        Self {
            id: m.id,
            email: m.email,
            phone: m.phone,
            first_name: m.first_name,
            last_name: m.last_name,
            external_id: m.external_id,
            timezone: m.timezone,
            status: m.status,
            pipeline_stage: m.pipeline_stage,
            // Written only by this module and the importer, both as JSON;
            // an unreadable value reads as empty rather than failing a view.
            tags: serde_json::from_str(&m.tags).unwrap_or_default(),
            metadata: serde_json::from_str(&m.metadata).unwrap_or_default(),
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

/// One contact as a caller sends it (the JSON API's body, or built by
/// Slack). Absent fields keep the stored value; `null` clears the optional
/// descriptive fields (phone, names, time zone, pipeline stage) but not the
/// identities (email, external id), which are only ever replaced.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactInput {
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub phone: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub first_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub last_name: Option<Option<String>>,
    #[serde(default)]
    pub external_id: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub timezone: Option<Option<String>>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub pipeline_stage: Option<Option<String>>,
    /// Replaces the stored tags (the host CRM sends its whole list).
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    /// Merged into the stored metadata key by key; a `null` value removes
    /// its key (RFC 7386 merge patch, one level deep).
    #[serde(default)]
    pub metadata: Option<Map<String, serde_json::Value>>,
    /// Appended to the consent ledger, in order.
    #[serde(default)]
    pub consent: Vec<ConsentInput>,
}

/// One grant or revocation to append to the ledger.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentInput {
    /// `email`, `sms`, `whatsapp` or `instagram`.
    pub channel: String,
    pub granted: bool,
    /// Where the host collected it ("pricing page form"); stored as
    /// `api:<source>`, which [`crate::consent::Source::parse`] reads as an
    /// API source.
    #[serde(default)]
    pub source: Option<String>,
    /// The consent text the person saw, or its version.
    #[serde(default)]
    pub text: Option<String>,
}

/// Absent → `None`; `null` → `Some(None)`; a value → `Some(Some(v))`.
fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// An input that passed validation: domain types only.
#[derive(Debug, Clone)]
pub struct ValidInput {
    email: Option<EmailAddress>,
    phone: Option<Option<E164Phone>>,
    first_name: Option<Option<String>>,
    last_name: Option<Option<String>>,
    external_id: Option<String>,
    timezone: Option<Option<String>>,
    status: Option<String>,
    pipeline_stage: Option<Option<String>>,
    tags: Option<Vec<String>>,
    metadata: Option<Map<String, serde_json::Value>>,
    consent: Vec<ValidConsent>,
}

#[derive(Debug, Clone)]
struct ValidConsent {
    channel: Channel,
    granted: bool,
    source: String,
    text: Option<String>,
}

/// Why an upsert was refused. `field` is relative to the contact
/// (`email`, `consent[0].channel`); callers prefix it (`[2].email`).
#[derive(Debug, thiserror::Error)]
pub enum UpsertError {
    #[error("{message}")]
    Invalid { field: String, message: String },
    /// The value's tombstone exists: this person asked to be forgotten.
    #[error("this person asked to be forgotten; warmline does not store them again")]
    Forgotten { field: &'static str },
    /// A concurrent writer stored the same identity first; a retry merges.
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl UpsertError {
    fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The field the error names, if it names one.
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::Invalid { field, .. } => Some(field),
            Self::Forgotten { field } => Some(field),
            Self::Conflict(_) | Self::Other(_) => None,
        }
    }
}

/// `Some(trimmed)` unless blank.
fn text(field: &str, value: Option<&str>, max: usize) -> Result<Option<String>, UpsertError> {
    let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if v.chars().count() > max {
        return Err(UpsertError::invalid(
            field,
            format!("{field} is longer than {max} characters"),
        ));
    }
    Ok(Some(v.to_string()))
}

/// Like [`text`] for a clearable field: `null` (or blank) clears.
fn clearable(
    field: &str,
    value: &Option<Option<String>>,
) -> Result<Option<Option<String>>, UpsertError> {
    match value {
        None => Ok(None),
        Some(v) => text(field, v.as_deref(), MAX_TEXT).map(Some),
    }
}

impl ContactInput {
    /// Checks every field and parses it into domain types; the first
    /// mistake is an error naming its field. Needs no database.
    pub fn validate(
        &self,
        default_region: Option<phonenumber::country::Id>,
    ) -> Result<ValidInput, UpsertError> {
        let email = text("email", self.email.as_deref(), 320)?
            .map(|e| {
                EmailAddress::parse(&e).map_err(|e| UpsertError::invalid("email", e.to_string()))
            })
            .transpose()?;
        let external_id = text("external_id", self.external_id.as_deref(), MAX_TEXT)?;
        if email.is_none() && external_id.is_none() {
            return Err(UpsertError::invalid(
                "email",
                "a contact needs an email or an external_id to be matched by",
            ));
        }
        let phone = match clearable("phone", &self.phone)? {
            None => None,
            Some(None) => Some(None),
            Some(Some(p)) => Some(Some(
                E164Phone::parse(&p, default_region)
                    .map_err(|e| UpsertError::invalid("phone", e.to_string()))?,
            )),
        };
        let timezone = match clearable("timezone", &self.timezone)? {
            Some(Some(tz)) => {
                let parsed: chrono_tz::Tz = tz.parse().map_err(|_| {
                    UpsertError::invalid(
                        "timezone",
                        format!("'{tz}' is not an IANA time zone (e.g. Europe/Paris)"),
                    )
                })?;
                Some(Some(parsed.name().to_string()))
            }
            other => other,
        };
        let status = match &self.status {
            None => None,
            Some(s) => Some(
                text("status", Some(s), MAX_TEXT)?
                    .ok_or_else(|| UpsertError::invalid("status", "status may not be blank"))?
                    .to_lowercase(),
            ),
        };
        let tags = match &self.tags {
            None => None,
            Some(tags) => {
                let mut out: Vec<String> = Vec::with_capacity(tags.len());
                for (i, t) in tags.iter().enumerate() {
                    let field = format!("tags[{i}]");
                    let t = text(&field, Some(t), MAX_TEXT)?
                        .ok_or_else(|| UpsertError::invalid(&field, "a tag may not be blank"))?;
                    if !out.contains(&t) {
                        out.push(t);
                    }
                }
                Some(out)
            }
        };
        let mut consent = Vec::with_capacity(self.consent.len());
        for (i, c) in self.consent.iter().enumerate() {
            let channel = Channel::parse(&c.channel.trim().to_lowercase()).ok_or_else(|| {
                UpsertError::invalid(
                    format!("consent[{i}].channel"),
                    format!(
                        "'{}' is not a consent channel ({})",
                        c.channel,
                        Channel::names()
                    ),
                )
            })?;
            // A grant for a channel the contact cannot be reached on is
            // checked at write time, against the stored contact too.
            let detail = text(
                &format!("consent[{i}].source"),
                c.source.as_deref(),
                MAX_TEXT,
            )?;
            let source = match detail {
                Some(d) => format!("{}:{d}", crate::consent::Source::Api.as_str()),
                None => crate::consent::Source::Api.as_str().to_string(),
            };
            let text = text(
                &format!("consent[{i}].text"),
                c.text.as_deref(),
                MAX_CONSENT_TEXT,
            )?;
            consent.push(ValidConsent {
                channel,
                granted: c.granted,
                source,
                text,
            });
        }
        Ok(ValidInput {
            email,
            phone,
            first_name: clearable("first_name", &self.first_name)?,
            last_name: clearable("last_name", &self.last_name)?,
            external_id,
            timezone,
            status,
            pipeline_stage: clearable("pipeline_stage", &self.pipeline_stage)?,
            tags,
            metadata: self.metadata.clone(),
            consent,
        })
    }
}

/// What [`upsert`] did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Upserted {
    #[serde(flatten)]
    pub contact: Contact,
    /// True when the contact did not exist before.
    pub created: bool,
}

/// Validates and writes one contact, in the caller's transaction (run it
/// in one: the contact and its consent rows must commit together).
/// `actor` is who is writing (`api:key:1a2b3c4d`, `slack:U123`), recorded
/// on each consent row.
pub async fn upsert(
    conn: &impl ConnectionTrait,
    input: &ContactInput,
    default_region: Option<phonenumber::country::Id>,
    actor: &str,
) -> Result<Upserted, UpsertError> {
    let valid = input.validate(default_region)?;
    upsert_valid(conn, &valid, actor).await
}

/// Writes an already validated input (see [`upsert`]).
pub async fn upsert_valid(
    conn: &impl ConnectionTrait,
    input: &ValidInput,
    actor: &str,
) -> Result<Upserted, UpsertError> {
    let now = crate::clock::now();
    refuse_forgotten(conn, input).await?;
    let by_email = match &input.email {
        Some(e) => contacts::Entity::find()
            .filter(
                Expr::expr(Func::lower(Expr::col(contacts::Column::Email)))
                    .eq(e.as_str().to_lowercase()),
            )
            .one(conn)
            .await
            .map_err(anyhow::Error::from)?,
        None => None,
    };
    let by_external = match &input.external_id {
        Some(x) => contacts::Entity::find()
            .filter(contacts::Column::ExternalId.eq(x.clone()))
            .one(conn)
            .await
            .map_err(anyhow::Error::from)?,
        None => None,
    };
    let existing = match (by_email, by_external) {
        (Some(a), Some(b)) if a.id != b.id => {
            return Err(UpsertError::invalid(
                "external_id",
                format!(
                    "external_id '{}' already belongs to another contact (#{})",
                    input.external_id.as_deref().unwrap_or_default(),
                    b.id
                ),
            ));
        }
        (Some(a), _) => Some(a),
        (None, b) => b,
    };
    let created = existing.is_none();
    let mut m = existing.unwrap_or_else(|| contacts::Model::blank(now));
    apply(&mut m, input, now);
    check_consent_reachable(&m, input)?;
    let written = if created {
        contacts::Entity::insert(m.into_set_model(false))
            .exec_with_returning(conn)
            .await
    } else {
        contacts::Entity::update(m.into_set_model(true))
            .exec(conn)
            .await
    };
    let model = written.map_err(|e| match e.sql_err() {
        // Two requests creating the same new contact at once: the second
        // meets the first's row at the unique index.
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_)) => UpsertError::Conflict(
            "a concurrent request stored a contact with the same email or external_id; \
             retry to merge into it"
                .into(),
        ),
        _ => UpsertError::Other(e.into()),
    })?;
    for c in &input.consent {
        consents::Entity::insert(consents::ActiveModel {
            contact_id: Set(model.id),
            channel: Set(c.channel.to_string()),
            granted: Set(c.granted),
            source: Set(c.source.clone()),
            actor: Set(Some(actor.to_string())),
            consent_text: Set(c.text.clone()),
            recorded_at: Set(now),
            ..Default::default()
        })
        .exec(conn)
        .await
        .map_err(anyhow::Error::from)?;
    }
    tracing::debug!(
        contact_id = model.id,
        created,
        email = %model.email.as_deref().map(mask_email).unwrap_or_default(),
        consent_records = input.consent.len(),
        "contact upserted"
    );
    Ok(Upserted {
        contact: model.into(),
        created,
    })
}

/// Makes a transaction a writer from its first statement on SQLite, so
/// its reads and writes see one snapshot (a deferred transaction that reads
/// first fails with `SQLITE_BUSY_SNAPSHOT` when another writer commits in
/// between, and the busy timeout cannot help). No-op on PostgreSQL.
pub async fn take_write_lock(conn: &impl ConnectionTrait) -> anyhow::Result<()> {
    if !crate::db::is_postgres(conn) {
        // A write statement takes SQLite's write lock even when it
        // matches no row.
        conn.execute_unprepared("UPDATE contacts SET id = id WHERE 1 = 0")
            .await?;
    }
    Ok(())
}

/// Refuses an input naming a forgotten person (any of its identities).
async fn refuse_forgotten(
    conn: &impl ConnectionTrait,
    input: &ValidInput,
) -> Result<(), UpsertError> {
    let mut candidates: Vec<(&'static str, String)> = Vec::new();
    if let Some(e) = &input.email {
        candidates.push(("email", tombstone_hash(e.as_str())));
    }
    if let Some(Some(p)) = &input.phone {
        candidates.push(("phone", tombstone_hash(p.as_str())));
    }
    if let Some(x) = &input.external_id {
        candidates.push(("external_id", external_id_tombstone(x)));
    }
    for (field, hash) in candidates {
        if is_tombstoned(conn, &hash).await? {
            return Err(UpsertError::Forgotten { field });
        }
    }
    Ok(())
}

/// The tombstone of an external id. Prefixed so that an external id can
/// never be mistaken for an email or phone tombstone (the importer hashes
/// those bare).
pub fn external_id_tombstone(external_id: &str) -> String {
    tombstone_hash(&format!("external_id:{}", external_id.trim()))
}

/// Whether `hash` is a tombstone.
pub async fn is_tombstoned(conn: &impl ConnectionTrait, hash: &str) -> anyhow::Result<bool> {
    Ok(conn
        .query_one_raw(Statement::from_sql_and_values(
            conn.get_database_backend(),
            "SELECT hash FROM tombstones WHERE hash = $1",
            [Value::from(hash.to_string())],
        ))
        .await?
        .is_some())
}

/// A grant needs an address on its channel (as the importer requires):
/// consent to email a contact without an email proves nothing.
fn check_consent_reachable(m: &contacts::Model, input: &ValidInput) -> Result<(), UpsertError> {
    for (i, c) in input.consent.iter().enumerate() {
        let reachable = match c.channel {
            Channel::Email => m.email.is_some(),
            Channel::Sms | Channel::Whatsapp => m.phone.is_some(),
            // Instagram handles are not stored on contacts yet.
            Channel::Instagram => true,
        };
        if c.granted && !reachable {
            return Err(UpsertError::invalid(
                format!("consent[{i}].granted"),
                format!(
                    "consent to {} was granted but the contact has no address for that channel",
                    c.channel
                ),
            ));
        }
    }
    Ok(())
}

/// Merges an input into a contact: given values win, `null` clears.
fn apply(m: &mut contacts::Model, input: &ValidInput, now: DateTime<Utc>) {
    fn set<T: Clone>(field: &mut Option<T>, value: &Option<Option<T>>) {
        if let Some(v) = value {
            field.clone_from(v);
        }
    }
    if let Some(e) = &input.email {
        m.email = Some(e.as_str().to_string());
    }
    if let Some(x) = &input.external_id {
        m.external_id = Some(x.clone());
    }
    set(
        &mut m.phone,
        &input
            .phone
            .as_ref()
            .map(|p| p.as_ref().map(|p| p.as_str().to_string())),
    );
    set(&mut m.first_name, &input.first_name);
    set(&mut m.last_name, &input.last_name);
    set(&mut m.timezone, &input.timezone);
    set(&mut m.pipeline_stage, &input.pipeline_stage);
    if let Some(s) = &input.status {
        m.status.clone_from(s);
    }
    if let Some(tags) = &input.tags {
        m.tags = serde_json::to_string(tags).expect("strings serialise");
    }
    if let Some(patch) = &input.metadata {
        let mut meta: BTreeMap<String, serde_json::Value> =
            serde_json::from_str(&m.metadata).unwrap_or_default();
        for (k, v) in patch {
            if v.is_null() {
                meta.remove(k);
            } else {
                meta.insert(k.clone(), v.clone());
            }
        }
        m.metadata = serde_json::to_string(&meta).expect("JSON values serialise");
    }
    m.updated_at = now;
}

#[derive(FromQueryResult)]
struct IdRow {
    id: i64,
}

/// The contact with this email, compared case-insensitively. `None` for
/// an unknown (or unparseable) address.
pub async fn find_by_email(
    conn: &impl ConnectionTrait,
    email: &str,
) -> anyhow::Result<Option<i64>> {
    let Ok(email) = EmailAddress::parse(email) else {
        return Ok(None);
    };
    let row = IdRow::find_by_statement(Statement::from_sql_and_values(
        conn.get_database_backend(),
        "SELECT id FROM contacts WHERE LOWER(email) = $1 ORDER BY id LIMIT 1",
        [Value::from(email.as_str().to_lowercase())],
    ))
    .one(conn)
    .await?;
    Ok(row.map(|r| r.id))
}

/// The contact with this external id.
pub async fn find_by_external_id(
    conn: &impl ConnectionTrait,
    external_id: &str,
) -> anyhow::Result<Option<i64>> {
    let row = IdRow::find_by_statement(Statement::from_sql_and_values(
        conn.get_database_backend(),
        "SELECT id FROM contacts WHERE external_id = $1",
        [Value::from(external_id.trim().to_string())],
    ))
    .one(conn)
    .await?;
    Ok(row.map(|r| r.id))
}

/// Whether a contact with this id exists.
pub async fn exists(conn: &impl ConnectionTrait, id: i64) -> anyhow::Result<bool> {
    Ok(conn
        .query_one_raw(Statement::from_sql_and_values(
            conn.get_database_backend(),
            "SELECT id FROM contacts WHERE id = $1",
            [Value::from(id)],
        ))
        .await?
        .is_some())
}

/// Contacts whose name, email or external id contains every word of
/// `query` (case-insensitive), warmest first: `(id, display name, email)`.
/// An email-shaped query matches that address exactly first.
pub async fn search(
    conn: &impl ConnectionTrait,
    query: &str,
    limit: u64,
) -> anyhow::Result<Vec<(i64, String, Option<String>)>> {
    #[derive(FromQueryResult)]
    struct Row {
        id: i64,
        first_name: Option<String>,
        last_name: Option<String>,
        email: Option<String>,
        phone: Option<String>,
    }
    let words: Vec<String> = query
        .split_whitespace()
        .map(|w| like_pattern(&w.to_lowercase()))
        .collect();
    if words.is_empty() || limit == 0 {
        return Ok(Vec::new());
    }
    // One `haystack LIKE $n` per word; the haystack is built from columns,
    // never from input, and every value is bound.
    let haystack = "LOWER(COALESCE(first_name, '') || ' ' || COALESCE(last_name, '') || ' ' \
                    || COALESCE(email, '') || ' ' || COALESCE(external_id, ''))";
    let conditions: Vec<String> = (1..=words.len())
        .map(|i| format!("{haystack} LIKE ${i} ESCAPE '\\'"))
        .collect();
    let mut values: Vec<Value> = words.into_iter().map(Value::from).collect();
    values.push(Value::from(limit as i64));
    let sql = format!(
        "SELECT id, first_name, last_name, email, phone FROM contacts WHERE {} \
         ORDER BY warmth DESC, id LIMIT ${}",
        conditions.join(" AND "),
        values.len()
    );
    let rows = Row::find_by_statement(Statement::from_sql_and_values(
        conn.get_database_backend(),
        sql,
        values,
    ))
    .all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let name = display::display_name(
                r.id,
                r.first_name.as_deref(),
                r.last_name.as_deref(),
                r.email.as_deref(),
                r.phone.as_deref(),
            );
            (r.id, name, r.email)
        })
        .collect())
}

/// `%word%` with LIKE's wildcards escaped (escape character `\`).
fn like_pattern(word: &str) -> String {
    let mut p = String::with_capacity(word.len() + 2);
    p.push('%');
    for c in word.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(json: serde_json::Value) -> ContactInput {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn a_full_input_validates_into_domain_values() {
        let v = input(serde_json::json!({
            "email": " Ada@Example.COM ", "phone": "(415) 555-2671",
            "timezone": "Europe/Paris", "status": "Active", "tags": ["vip", "vip", "a"],
            "consent": [{"channel": "email", "granted": true, "source": "form", "text": "v1"}]
        }))
        .validate(Some(phonenumber::country::Id::US))
        .unwrap();
        assert_eq!(v.email.unwrap().as_str(), "Ada@example.com");
        assert_eq!(v.phone.unwrap().unwrap().as_str(), "+14155552671");
        assert_eq!(v.status.as_deref(), Some("active"));
        assert_eq!(v.tags.unwrap(), vec!["vip", "a"]);
        assert_eq!(v.consent[0].source, "api:form");
    }

    #[test]
    fn each_bad_value_names_its_field() {
        let field = |j: serde_json::Value| {
            input(j)
                .validate(None)
                .unwrap_err()
                .field()
                .unwrap()
                .to_string()
        };
        assert_eq!(field(serde_json::json!({"email": "nope"})), "email");
        assert_eq!(field(serde_json::json!({"first_name": "Ada"})), "email");
        assert_eq!(
            field(serde_json::json!({"external_id": "x", "timezone": "Mars/Base"})),
            "timezone"
        );
        assert_eq!(
            field(serde_json::json!({"external_id": "x", "phone": "12"})),
            "phone"
        );
        assert_eq!(
            field(serde_json::json!({"external_id": "x", "tags": ["ok", " "]})),
            "tags[1]"
        );
        assert_eq!(
            field(serde_json::json!({"external_id": "x",
                "consent": [{"channel": "email", "granted": true}, {"channel": "fax", "granted": true}]})),
            "consent[1].channel"
        );
    }

    #[test]
    fn null_clears_and_absence_keeps() {
        let i = input(serde_json::json!({"email": "a@b.co", "phone": null}));
        assert_eq!(i.phone, Some(None));
        assert_eq!(i.first_name, None);
    }

    #[test]
    fn like_wildcards_are_escaped() {
        assert_eq!(like_pattern("a_b%"), "%a\\_b\\%%");
    }
}
