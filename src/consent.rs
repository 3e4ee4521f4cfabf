//! The consent ledger: what each contact has agreed to receive, per channel,
//! and how we know.
//!
//! Every grant and every revocation is one appended row in `consents`
//! (contact, channel, granted, source, actor, consent text, time). Current
//! consent is derived from the ledger — the newest row per (contact,
//! channel) wins — so it can always be demonstrated (GDPR Art. 7(1)) and
//! the dispatcher's last-moment check (`dispatcher::checks`) reads exactly
//! what this module writes.
//!
//! Invariants:
//! - Rows are only ever inserted, never updated or deleted (erasing a
//!   contact removes its rows with it, by the foreign key's cascade).
//! - "Newest" means the highest `id`, not the latest `recorded_at`: ids are
//!   assigned at commit order within one database, clocks of several
//!   processes are not, and `checks.rs` reads `MAX(id)` too.
//! - A channel with no row has no consent: nothing here ever invents one.
//! - Read-then-append decisions ("revoke unless already revoked") run in a
//!   transaction from [`lock_contact`], which serialises writers of one
//!   contact, so two concurrent identical requests append one row, not two.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend,
    EntityTrait, FromQueryResult, Statement, Value,
};

use crate::{db::entities::consents, domain::Channel};

/// Where a grant or revocation came from. Stored as its [`Source::as_str`]
/// name; the import stores `import:<file or consent_source>`, which
/// [`Source::parse`] reads as [`Source::Import`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A CSV import's `consent_<channel>` column.
    Import,
    /// The host CRM's JSON API.
    Api,
    /// A sign-up form of the host's.
    Form,
    /// STOP / START and friends, in a reply on the channel itself.
    ReplyKeyword,
    /// An RFC 8058 one-click POST from a mail client.
    OneClickUnsubscribe,
    /// The unsubscribe and preferences page behind the link in an email.
    PreferencesPage,
    /// A person of the team, in Slack ("Opt out of a channel").
    SlackUser,
    /// A provider refused a send because the recipient opted out with it
    /// (Twilio 21610); stored as `provider:<name>` ([`provider_source`]).
    Provider,
}

impl Source {
    pub const ALL: [Source; 8] = [
        Source::Import,
        Source::Api,
        Source::Form,
        Source::ReplyKeyword,
        Source::OneClickUnsubscribe,
        Source::PreferencesPage,
        Source::SlackUser,
        Source::Provider,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Source::Import => "import",
            Source::Api => "api",
            Source::Form => "form",
            Source::ReplyKeyword => "reply_keyword",
            Source::OneClickUnsubscribe => "one_click_unsubscribe",
            Source::PreferencesPage => "preferences_page",
            Source::SlackUser => "slack_user",
            Source::Provider => "provider",
        }
    }

    /// The kind of a stored source; `import:contacts.csv` is an import.
    /// `None` for rows written before these names existed.
    pub fn parse(stored: &str) -> Option<Self> {
        let kind = stored.split_once(':').map_or(stored, |(k, _)| k);
        Self::ALL.into_iter().find(|s| s.as_str() == kind)
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A channel's current consent: the newest ledger row.
#[derive(Debug, Clone, PartialEq)]
pub struct Current {
    pub granted: bool,
    /// As stored (see [`Source::parse`] for its kind).
    pub source: String,
    pub at: DateTime<Utc>,
}

/// The stored source of a revocation a provider reported
/// ([`Source::Provider`]): `provider:twilio`.
pub fn provider_source(provider: &str) -> String {
    format!("{}:{provider}", Source::Provider.as_str())
}

/// Appends one grant (`granted`) or revocation to the ledger, in the
/// caller's transaction or connection. `text` is the consent text the
/// person saw, or its version; `actor` who recorded it.
pub async fn record(
    conn: &impl ConnectionTrait,
    contact_id: i64,
    channel: &str,
    granted: bool,
    source: Source,
    actor: Option<&str>,
    text: Option<&str>,
) -> anyhow::Result<()> {
    record_from(
        conn,
        contact_id,
        channel,
        granted,
        source.as_str(),
        actor,
        text,
    )
    .await
}

/// [`record`] with the source as stored, carrying its detail
/// (`provider:twilio`); [`Source::parse`] must read its kind.
pub async fn record_from(
    conn: &impl ConnectionTrait,
    contact_id: i64,
    channel: &str,
    granted: bool,
    source: &str,
    actor: Option<&str>,
    text: Option<&str>,
) -> anyhow::Result<()> {
    debug_assert!(Source::parse(source).is_some(), "{source}");
    let channel: Channel = channel.parse()?;
    consents::Entity::insert(consents::ActiveModel {
        contact_id: Set(contact_id),
        channel: Set(channel.as_str().to_string()),
        granted: Set(granted),
        source: Set(source.to_string()),
        actor: Set(actor.map(str::to_string)),
        consent_text: Set(text.map(str::to_string)),
        recorded_at: Set(crate::clock::now()),
        ..Default::default()
    })
    .exec(conn)
    .await?;
    Ok(())
}

#[derive(FromQueryResult)]
struct CurrentRow {
    channel: String,
    granted: bool,
    source: String,
    recorded_at: DateTime<Utc>,
}

/// Current consent per channel of one contact. Channels without any row are
/// absent (no consent).
pub async fn current(
    conn: &impl ConnectionTrait,
    contact_id: i64,
) -> anyhow::Result<BTreeMap<String, Current>> {
    // Same rule as `dispatcher::checks`: the highest id per channel.
    let rows = CurrentRow::find_by_statement(Statement::from_sql_and_values(
        conn.get_database_backend(),
        "SELECT channel, granted, source, recorded_at FROM consents \
         WHERE id IN (SELECT MAX(id) FROM consents WHERE contact_id = $1 GROUP BY channel)",
        [Value::from(contact_id)],
    ))
    .all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            (
                r.channel,
                Current {
                    granted: r.granted,
                    source: r.source,
                    at: r.recorded_at,
                },
            )
        })
        .collect())
}

/// Opens a transaction in which nobody else can change `contact_id`'s
/// consent until it ends: `BEGIN IMMEDIATE` on SQLite (one writer at a
/// time; a deferred transaction could fail at its read→write upgrade), the
/// contact's row locked `FOR UPDATE` on PostgreSQL. `None` (and nothing
/// held) when the contact does not exist — e.g. it was erased.
pub async fn lock_contact(
    db: &DatabaseConnection,
    contact_id: i64,
) -> anyhow::Result<Option<DatabaseTransaction>> {
    let backend = db.get_database_backend();
    let txn = crate::db::begin_write(db).await?;
    let lock = if backend == DbBackend::Postgres {
        " FOR UPDATE"
    } else {
        ""
    };
    let found = txn
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            format!("SELECT id FROM contacts WHERE id = $1{lock}"),
            [Value::from(contact_id)],
        ))
        .await?
        .is_some();
    if !found {
        txn.rollback().await?;
        return Ok(None);
    }
    Ok(Some(txn))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn db_with_contact() -> (DatabaseConnection, i64) {
        use sea_orm_migration::MigratorTrait;
        let db = crate::db::connect("sqlite::memory:", 1).await.unwrap();
        crate::migrations::Migrator::up(&db, None).await.unwrap();
        let now = crate::clock::now();
        let id = crate::db::entities::contacts::Entity::insert(
            crate::db::entities::contacts::ActiveModel {
                email: Set(Some("ada@example.com".into())),
                status: Set("active".into()),
                tags: Set("[]".into()),
                metadata: Set("{}".into()),
                created_at: Set(now),
                updated_at: Set(now),
                ..Default::default()
            },
        )
        .exec(&db)
        .await
        .unwrap()
        .last_insert_id;
        (db, id)
    }

    #[test]
    fn sources_round_trip_and_imports_keep_their_detail() {
        for s in Source::ALL {
            assert_eq!(Source::parse(s.as_str()), Some(s));
        }
        assert_eq!(Source::parse("import:contacts.csv"), Some(Source::Import));
        assert_eq!(
            Source::parse(&provider_source("twilio")),
            Some(Source::Provider)
        );
        assert_eq!(Source::parse("reply keyword"), None);
    }

    #[tokio::test]
    async fn the_newest_row_per_channel_is_current() {
        // Arrange
        let (db, c) = db_with_contact().await;
        record(&db, c, "email", true, Source::Form, Some("web"), Some("v1"))
            .await
            .unwrap();
        record(&db, c, "sms", true, Source::Api, None, None)
            .await
            .unwrap();
        record(
            &db,
            c,
            "email",
            false,
            Source::OneClickUnsubscribe,
            Some("recipient"),
            None,
        )
        .await
        .unwrap();

        // Act
        let now = current(&db, c).await.unwrap();

        // Assert
        assert_eq!(now.len(), 2, "whatsapp and instagram have no row");
        assert!(!now["email"].granted);
        assert_eq!(now["email"].source, "one_click_unsubscribe");
        assert!(now["sms"].granted);
        let rows = consents::Entity::find().all(&db).await.unwrap();
        assert_eq!(rows.len(), 3, "append-only: the grant is still there");
    }

    #[tokio::test]
    async fn an_unknown_channel_is_refused() {
        let (db, c) = db_with_contact().await;
        let err = record(&db, c, "fax", true, Source::Api, None, None)
            .await
            .unwrap_err();
        assert!(
            err.downcast_ref::<crate::domain::UnknownChannel>()
                .is_some()
        );
    }

    #[tokio::test]
    async fn locking_a_missing_contact_says_so() {
        let (db, c) = db_with_contact().await;
        assert!(lock_contact(&db, c + 1).await.unwrap().is_none());
        let txn = lock_contact(&db, c).await.unwrap().expect("exists");
        record(&txn, c, "email", true, Source::Api, None, None)
            .await
            .unwrap();
        txn.commit().await.unwrap();
        assert!(current(&db, c).await.unwrap()["email"].granted);
    }
}
