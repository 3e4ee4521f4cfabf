//! Linking an unknown Instagram sender to a contact from Slack: the notice
//! of a DM from an IGSID no contact has carries "Link to a contact"; a
//! modal asks who it is (an email, or a name matching exactly one
//! contact), and the link is made.
//!
//! Linking, in one transaction ([`link`]):
//! 1. sets the contact's `metadata.instagram_id` to the sender's IGSID
//!    (contacts have no Instagram column; the inbound path matches on it);
//! 2. attaches that sender's stored `inbound_messages` rows that have no
//!    contact yet;
//! 3. records each attached ordinary message (not a keyword) as an inbound
//!    interaction on its own time, so the contact's warmth rises as if the
//!    messages had arrived after the link;
//! 4. audits `contact.instagram_linked` with who did it (IGSID masked).
//!
//! Invariants:
//! - Idempotent: a second link of the same sender to the same contact
//!   attaches nothing and records nothing (step 2 only takes rows without a
//!   contact); a contact linked to another Instagram account, or a sender
//!   already linked to another contact, is refused with the reason.
//! - Two links of one sender at once are serialised: SQLite's write lock is
//!   taken by the first statement; on PostgreSQL the sender's rows are
//!   locked `FOR UPDATE` before anything is read.

use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, FromQueryResult, Statement, Value};
use serde_json::json;
use slack_morphism::prelude::*;

use crate::{
    domain::{Channel, mask_phone},
    interactions::{self, Direction, NewInteraction},
    slack::{
        actions,
        contact_actions::find::{self, Found},
        error::IngressError,
        modal_form,
        mrkdwn::{escape, truncate},
        respond::{callback_id, private_metadata, result_view},
    },
    state::App,
};

/// Longest interaction summary kept from a linked message.
const SUMMARY_CHARS: usize = 280;

pub fn handles(action_id: &str) -> bool {
    action_id == actions::INBOUND_LINK
}

pub fn owns_view(ev: &SlackInteractionViewSubmissionEvent) -> bool {
    callback_id(&ev.view.view).as_deref() == Some(actions::INBOUND_LINK_SUBMIT)
}

/// What linking did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Linked {
    /// Linked now: the messages attached and the interactions recorded.
    Done { attached: u64, interactions: u64 },
    /// It already was: nothing changed.
    Already,
}

/// Why a link is refused (the words say what to do).
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("that message is gone")]
    NoMessage,
    #[error("only an Instagram sender can be linked this way")]
    NotInstagram,
    #[error("that contact no longer exists")]
    NoContact,
    #[error("that contact is already linked to another Instagram account")]
    ContactTaken,
    #[error("this Instagram sender is already linked to {0}")]
    SenderTaken(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sea_orm::DbErr> for LinkError {
    fn from(e: sea_orm::DbErr) -> Self {
        Self::Internal(e.into())
    }
}

#[derive(FromQueryResult)]
struct Sender {
    channel: Channel,
    from_address: String,
}

#[derive(FromQueryResult)]
struct ContactRow {
    id: i64,
    metadata: String,
    first_name: Option<String>,
    last_name: Option<String>,
    email: Option<String>,
}

#[derive(FromQueryResult)]
struct Attached {
    text: String,
    keyword: Option<String>,
    received_at: chrono::DateTime<chrono::Utc>,
}

fn instagram_id(metadata: &str) -> Option<String> {
    serde_json::from_str::<serde_json::Value>(metadata)
        .ok()?
        .get("instagram_id")
        .and_then(|v| match v {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
}

/// Links the sender of inbound message `inbound_id` to `contact_id`, for
/// `actor` (a Slack user id). See the module's invariants.
pub async fn link(
    app: &App,
    inbound_id: i64,
    contact_id: i64,
    actor: &str,
) -> Result<Linked, LinkError> {
    let txn = crate::db::begin_write(&app.db).await?;
    match link_in(&txn, inbound_id, contact_id, actor).await {
        Ok(l) => {
            txn.commit().await?;
            Ok(l)
        }
        Err(e) => {
            txn.rollback().await?;
            Err(e)
        }
    }
}

async fn link_in(
    txn: &DatabaseTransaction,
    inbound_id: i64,
    contact_id: i64,
    actor: &str,
) -> Result<Linked, LinkError> {
    let backend = txn.get_database_backend();
    crate::contacts::take_write_lock(txn).await?;
    let sender = Sender::find_by_statement(Statement::from_sql_and_values(
        backend,
        "SELECT channel, from_address FROM inbound_messages WHERE id = $1",
        [Value::from(inbound_id)],
    ))
    .one(txn)
    .await?
    .ok_or(LinkError::NoMessage)?;
    if sender.channel != Channel::Instagram {
        return Err(LinkError::NotInstagram);
    }
    let igsid = sender.from_address;
    if backend == DbBackend::Postgres {
        txn.execute_raw(Statement::from_sql_and_values(
            backend,
            "SELECT id FROM inbound_messages WHERE channel = $1 AND from_address = $2 FOR UPDATE",
            [
                Value::from(Channel::Instagram.as_str()),
                Value::from(igsid.clone()),
            ],
        ))
        .await?;
    }
    let contacts = ContactRow::find_by_statement(Statement::from_string(
        backend,
        // Few contacts carry an Instagram id; the JSON is read here rather
        // than with each backend's JSON operators.
        "SELECT id, metadata, first_name, last_name, email FROM contacts \
         WHERE metadata LIKE '%instagram_id%'",
    ))
    .all(txn)
    .await?;
    if let Some(other) = contacts
        .iter()
        .find(|c| c.id != contact_id && instagram_id(&c.metadata).as_deref() == Some(&igsid))
    {
        let name = crate::contacts::display::display_name(
            other.id,
            other.first_name.as_deref(),
            other.last_name.as_deref(),
            other.email.as_deref(),
            None,
        );
        return Err(LinkError::SenderTaken(name));
    }
    let contact = ContactRow::find_by_statement(Statement::from_sql_and_values(
        backend,
        "SELECT id, metadata, first_name, last_name, email FROM contacts WHERE id = $1",
        [Value::from(contact_id)],
    ))
    .one(txn)
    .await?
    .ok_or(LinkError::NoContact)?;
    let now = crate::clock::now();
    let linked_before = match instagram_id(&contact.metadata) {
        Some(id) if id == igsid => true,
        Some(_) => return Err(LinkError::ContactTaken),
        None => false,
    };
    if !linked_before {
        let mut metadata: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&contact.metadata).unwrap_or_default();
        metadata.insert("instagram_id".into(), json!(igsid));
        txn.execute_raw(Statement::from_sql_and_values(
            backend,
            "UPDATE contacts SET metadata = $1, updated_at = $2 WHERE id = $3",
            [
                Value::from(serde_json::Value::Object(metadata).to_string()),
                Value::from(now),
                Value::from(contact_id),
            ],
        ))
        .await?;
    }
    let attached = Attached::find_by_statement(Statement::from_sql_and_values(
        backend,
        "SELECT text, keyword, received_at FROM inbound_messages \
         WHERE channel = $1 AND from_address = $2 AND contact_id IS NULL ORDER BY received_at",
        [
            Value::from(Channel::Instagram.as_str()),
            Value::from(igsid.clone()),
        ],
    ))
    .all(txn)
    .await?;
    if linked_before && attached.is_empty() {
        return Ok(Linked::Already);
    }
    let n = txn
        .execute_raw(Statement::from_sql_and_values(
            backend,
            "UPDATE inbound_messages SET contact_id = $1 \
             WHERE channel = $2 AND from_address = $3 AND contact_id IS NULL",
            [
                Value::from(contact_id),
                Value::from(Channel::Instagram.as_str()),
                Value::from(igsid.clone()),
            ],
        ))
        .await?
        .rows_affected();
    let mut recorded = 0;
    // Keywords are not interactions (as on arrival): a STOP must not warm.
    for m in attached.iter().filter(|m| m.keyword.is_none()) {
        interactions::record(
            txn,
            &NewInteraction {
                contact_id,
                kind: interactions::Kind::Message,
                direction: Direction::Inbound,
                occurred_at: m.received_at,
                summary: Some(truncate(m.text.trim(), SUMMARY_CHARS)).filter(|s| !s.is_empty()),
                source: "inbound:instagram".into(),
                channel: Some(Channel::Instagram.as_str().into()),
            },
            now,
        )
        .await?;
        recorded += 1;
    }
    crate::audit::record(
        txn,
        actor,
        "contact.instagram_linked",
        Some(&mask_phone(&igsid)),
        json!({
            "contact_id": contact_id,
            "inbound_id": inbound_id,
            "attached": n,
            "interactions": recorded,
        }),
    )
    .await?;
    Ok(Linked::Done {
        attached: n,
        interactions: recorded,
    })
}

/// The "Link to a contact" button: the modal asking who it is.
pub async fn on_action(
    app: &App,
    ev: &SlackInteractionBlockActionsEvent,
    action: &SlackInteractionActionInfo,
) -> Result<(), IngressError> {
    let id = IngressError::id_in(action.value.as_deref(), "Link button without an inbound id")?;
    let view = app
        .blocks
        .view(
            "inbound_link_modal.json.j2",
            json!({
                "callback_id": actions::INBOUND_LINK_SUBMIT,
                "inbound_id": id.to_string(),
            }),
        )
        .map_err(anyhow::Error::from)?;
    app.slack
        .views_open(SlackApiViewsOpenRequest::new(ev.trigger_id.clone(), view))
        .await
        .map_err(|e| anyhow::Error::from(e).context("opening the link modal"))?;
    Ok(())
}

/// The modal's submission: find the contact, link, say what happened.
pub async fn on_view_submission(
    app: &App,
    ev: &SlackInteractionViewSubmissionEvent,
) -> Result<SlackInteractionResponse, IngressError> {
    let values = modal_form::submitted(&ev.view);
    let error = |m: String| Ok(modal_form::errors(vec![("contact", m)]));
    let id = IngressError::id_in(
        private_metadata(&ev.view.view).as_deref(),
        "link modal without an inbound id",
    )?;
    let Some(query) = modal_form::text_of(&values, "contact").filter(|q| !q.is_empty()) else {
        return error("Type the contact's email or name.".into());
    };
    let contact = match find::find(app, &query).await? {
        Found::One(c) => c,
        Found::None => return error(format!("No contact matches \"{query}\".")),
        Found::Many(hits) => {
            let names: Vec<String> = hits
                .iter()
                .take(5)
                .map(|(_, name, email)| match email {
                    Some(e) => format!("{name} ({e})"),
                    None => name.clone(),
                })
                .collect();
            return error(format!(
                "Several contacts match: {}. Type their email instead.",
                names.join(", ")
            ));
        }
    };
    let user = ev.user.id.0.clone();
    let name = crate::contacts::view(&app.db, contact)
        .await?
        .map(|v| v.contact.display_name())
        .unwrap_or_default();
    match link(app, id, contact, &user).await {
        Ok(Linked::Done { attached, .. }) => Ok(result_view(
            app,
            "Linked",
            format!(
                ":link: This Instagram sender is now *{}*: {attached} message(s) attached and recorded as interactions; their next DMs land on the contact.",
                escape(&name)
            ),
        )?),
        Ok(Linked::Already) => Ok(result_view(
            app,
            "Linked",
            format!(":link: Already linked to *{}*.", escape(&name)),
        )?),
        Err(LinkError::Internal(e)) => Err(e.into()),
        Err(e) => error(format!("Not linked: {e}.")),
    }
}
