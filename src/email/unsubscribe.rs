//! Unsubscribe tokens: `<contact id>.<channel>.<signature>`, where the
//! signature is HMAC-SHA256 over the contact id and channel with a server
//! secret, base64url without padding.
//!
//! Invariants:
//! - A token can be verified without a database lookup, and cannot be
//!   forged or altered (changing the contact or the channel breaks the
//!   signature; comparison is constant-time).
//! - The secret is `WARMLINE_UNSUBSCRIBE_SECRET` when set; otherwise one is
//!   generated once and kept in the `secrets` table, so every process on one
//!   database signs alike and links keep working across restarts.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, KeyInit, Mac};
use sea_orm::{ConnectionTrait, DatabaseConnection, FromQueryResult, Statement, Value};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use tokio::sync::OnceCell;

use crate::domain::Channel;

const SECRET_NAME: &str = "unsubscribe_signing_key";

/// What a valid token names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub contact_id: i64,
    pub channel: String,
}

/// Signs and verifies tokens. Cheap to clone; the key loads on first use.
#[derive(Clone)]
pub struct Signer {
    inner: std::sync::Arc<Inner>,
}

struct Inner {
    configured: Option<SecretString>,
    db: Option<DatabaseConnection>,
    key: OnceCell<Vec<u8>>,
}

impl Signer {
    /// With the configured secret, else the one kept in `db`.
    pub fn new(configured: Option<SecretString>, db: DatabaseConnection) -> Self {
        Self {
            inner: std::sync::Arc::new(Inner {
                configured,
                db: Some(db),
                key: OnceCell::new(),
            }),
        }
    }

    /// With a fixed key (tests, benchmarks).
    pub fn with_key(key: &[u8]) -> Self {
        Self {
            inner: std::sync::Arc::new(Inner {
                configured: None,
                db: None,
                key: OnceCell::new_with(Some(key.to_vec())),
            }),
        }
    }

    async fn key(&self) -> anyhow::Result<&[u8]> {
        let key = self
            .inner
            .key
            .get_or_try_init(|| async {
                if let Some(s) = &self.inner.configured {
                    return Ok::<_, anyhow::Error>(s.expose_secret().as_bytes().to_vec());
                }
                let db = self
                    .inner
                    .db
                    .as_ref()
                    .ok_or_else(|| anyhow::anyhow!("no unsubscribe secret"))?;
                stored_secret(db).await
            })
            .await?;
        Ok(key)
    }

    pub async fn sign(&self, contact_id: i64, channel: &str) -> anyhow::Result<String> {
        let key = self.key().await?;
        Ok(format!(
            "{contact_id}.{channel}.{}",
            URL_SAFE_NO_PAD.encode(mac(key, contact_id, channel).finalize().into_bytes())
        ))
    }

    /// The subject of a genuine token; `None` for anything else.
    pub async fn verify(&self, token: &str) -> anyhow::Result<Option<Subject>> {
        let key = self.key().await?;
        let mut parts = token.splitn(3, '.');
        let (Some(id), Some(channel), Some(sig)) = (parts.next(), parts.next(), parts.next())
        else {
            return Ok(None);
        };
        let Ok(contact_id) = id.parse::<i64>() else {
            return Ok(None);
        };
        // A canonical decimal only: "012" or "+12" would be a second
        // spelling of the same token.
        if contact_id.to_string() != id || Channel::parse(channel).is_none() {
            return Ok(None);
        }
        let Ok(sig) = URL_SAFE_NO_PAD.decode(sig) else {
            return Ok(None);
        };
        Ok(mac(key, contact_id, channel)
            .verify_slice(&sig)
            .is_ok()
            .then(|| Subject {
                contact_id,
                channel: channel.to_string(),
            }))
    }
}

fn mac(key: &[u8], contact_id: i64, channel: &str) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(format!("warmline-unsubscribe\u{1f}{contact_id}\u{1f}{channel}").as_bytes());
    mac
}

#[derive(FromQueryResult)]
struct SecretRow {
    value: String,
}

/// The key kept in the database, created by whichever process gets there
/// first (the insert does nothing if another already did).
async fn stored_secret(db: &DatabaseConnection) -> anyhow::Result<Vec<u8>> {
    use rand::RngCore;
    let mut fresh = [0u8; 32];
    rand::rng().fill_bytes(&mut fresh);
    let backend = db.get_database_backend();
    db.execute_raw(Statement::from_sql_and_values(
        backend,
        "INSERT INTO secrets (name, value, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
        [
            Value::from(SECRET_NAME),
            Value::from(URL_SAFE_NO_PAD.encode(fresh)),
            Value::from(crate::clock::now()),
        ],
    ))
    .await?;
    let row = SecretRow::find_by_statement(Statement::from_sql_and_values(
        backend,
        "SELECT value FROM secrets WHERE name = $1",
        [Value::from(SECRET_NAME)],
    ))
    .one(db)
    .await?
    .ok_or_else(|| anyhow::anyhow!("the unsubscribe secret vanished"))?;
    Ok(URL_SAFE_NO_PAD.decode(row.value)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_token_verifies_to_what_it_names() {
        let s = Signer::with_key(b"k");
        let t = s.sign(42, "email").await.unwrap();
        assert!(t.starts_with("42.email."));
        assert_eq!(
            s.verify(&t).await.unwrap(),
            Some(Subject {
                contact_id: 42,
                channel: "email".into()
            })
        );
    }

    #[tokio::test]
    async fn altered_or_foreign_tokens_are_refused() {
        let s = Signer::with_key(b"k");
        let t = s.sign(42, "email").await.unwrap();
        let sig = t.rsplit('.').next().unwrap();
        for bad in [
            format!("43.email.{sig}"),
            format!("42.sms.{sig}"),
            format!("042.email.{sig}"),
            format!("42.email.{}", &sig[1..]),
            format!("{t}x"),
            "42.email".into(),
            String::new(),
            "x.y.z".into(),
        ] {
            assert_eq!(s.verify(&bad).await.unwrap(), None, "{bad}");
        }
        let other = Signer::with_key(b"other");
        assert_eq!(other.verify(&t).await.unwrap(), None);
    }
}
