//! The `Idempotency-Key` header: a retry of a request the API already
//! acted on gets the first answer again instead of acting twice.
//!
//! Semantics (after Stripe's and the IETF `httpapi` draft's):
//! - The key is 1–255 visible ASCII characters; anything else is a 400.
//! - Keys are per caller: the stored key is SHA-256 of the caller's API key
//!   digest and the header value, so two callers' keys never collide and no
//!   key is stored in clear. The request is fingerprinted by SHA-256 of
//!   method, path and body.
//! - Same key, same request: the stored status and body, byte for byte,
//!   with `Idempotent-Replayed: true`. Same key, another request: 409.
//! - Only answers that had effects are stored. A request refused before it
//!   did anything (401, 400, 422, 503) stores nothing, so the caller may fix
//!   it and retry with the same key.
//!
//! Invariants:
//! - The record is written in the SAME transaction as the request's
//!   effects ([`Idempotency::execute`]): both commit or neither does.
//! - Claiming the key is the transaction's first statement, an `INSERT … ON
//!   CONFLICT DO NOTHING` on the primary key. Concurrent duplicates
//!   serialise on it (PostgreSQL waits for the first transaction's outcome;
//!   SQLite's single writer waits its busy timeout), and the losers replay
//!   the winner's answer. So a duplicate never acts twice, and on SQLite no
//!   transaction reads before it writes (which could fail its snapshot).
//! - Records are kept for [`RETENTION`] (24 h): an older record is ignored
//!   and replaced, so a key reused a day later is a new request. Expired
//!   rows are purged at most once an hour, in the background, by the first
//!   keyed request after that hour ([`maybe_purge`]).

use std::sync::atomic::{AtomicI64, Ordering};

use axum::{
    http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Duration, Utc};
use sea_orm::{ConnectionTrait, DatabaseTransaction, FromQueryResult, Statement, Value};
use sha2::{Digest, Sha256};

use super::{auth::Caller, error::ApiError};
use crate::state::App;

/// The request header.
pub const HEADER: &str = "idempotency-key";
/// Set on a replayed answer.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
/// How long an answer is kept for replay.
pub const RETENTION: Duration = Duration::hours(24);
/// Longest key accepted, in bytes.
pub const MAX_KEY_LEN: usize = 255;

/// One request's idempotency context: its fingerprint, and the scoped key
/// when the caller sent one.
#[derive(Debug, Clone)]
pub struct Idempotency {
    key: Option<String>,
    request_hash: String,
}

/// What [`Idempotency::execute`] did.
pub struct Executed {
    pub response: Response,
    /// The effects did not run: another request with the same key did them,
    /// and `response` is its answer.
    pub replayed: bool,
}

/// An answer as stored, replayed as is.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub status: StatusCode,
    pub body: String,
}

#[derive(FromQueryResult)]
struct Row {
    request_hash: String,
    status: i32,
    response: String,
}

impl Idempotency {
    /// Reads the header (if any) and fingerprints the request.
    pub fn new(
        caller: &Caller,
        headers: &HeaderMap,
        method: &Method,
        uri: &Uri,
        body: &[u8],
    ) -> Result<Self, ApiError> {
        let key = match headers.get(HEADER) {
            None => None,
            Some(value) => Some(scoped_key(caller, validate(value)?)),
        };
        let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
        let mut h = Sha256::new();
        h.update(method.as_str().as_bytes());
        h.update([0x1f]);
        h.update(path.as_bytes());
        h.update([0x1f]);
        h.update(body);
        Ok(Self {
            key,
            request_hash: hex::encode(h.finalize()),
        })
    }

    pub fn is_keyed(&self) -> bool {
        self.key.is_some()
    }

    /// The answer already stored for this key, if any: checked before the
    /// request is even validated, so a retry gets the first answer even if
    /// something it depended on changed since. `Err(Conflict)` when the key
    /// was used for another request.
    pub async fn replay(
        &self,
        db: &impl ConnectionTrait,
        now: DateTime<Utc>,
    ) -> Result<Option<Stored>, ApiError> {
        let Some(key) = &self.key else {
            return Ok(None);
        };
        let row = Row::find_by_statement(Statement::from_sql_and_values(
            db.get_database_backend(),
            "SELECT request_hash, status, response FROM api_idempotency WHERE key = $1 AND created_at >= $2",
            [Value::from(key.clone()), Value::from(now - RETENTION)],
        ))
        .one(db)
        .await
        .map_err(anyhow::Error::from)?;
        row.map(|r| self.answer(r)).transpose()
    }

    fn answer(&self, row: Row) -> Result<Stored, ApiError> {
        if row.request_hash != self.request_hash {
            return Err(ApiError::Conflict {
                code: "idempotency_key_reused",
                message: "this Idempotency-Key was already used for a different request; \
                          send a new key for a new request"
                    .into(),
            });
        }
        Ok(Stored {
            status: StatusCode::from_u16(row.status as u16)
                .map_err(|e| anyhow::anyhow!("stored status {}: {e}", row.status))?,
            body: row.response,
        })
    }

    /// Runs `effects` in one transaction with the idempotency record:
    /// claims the key first, then runs the effects, stores `status` and the
    /// JSON body they return, and commits. When another request claimed the
    /// key first, nothing runs and its answer is replayed (or 409). Without
    /// a key, just the transaction.
    pub async fn execute<F>(
        &self,
        app: &App,
        status: StatusCode,
        effects: F,
    ) -> Result<Executed, ApiError>
    where
        F: AsyncFnOnce(&DatabaseTransaction) -> Result<serde_json::Value, ApiError>,
    {
        let now = crate::clock::now();
        // A write transaction from the start: on SQLite a deferred one that
        // reads (the contact lookup) before it writes fails with
        // SQLITE_BUSY_SNAPSHOT when another connection commits in between
        // (a worker's heartbeat), where an immediate one waits its turn.
        let txn = crate::db::begin_write(&app.db).await?;
        if let Some(stored) = self.claim(&txn, now).await? {
            txn.rollback().await.map_err(anyhow::Error::from)?;
            return Ok(Executed {
                response: stored.into_replay(),
                replayed: true,
            });
        }
        let body = match effects(&txn).await {
            Ok(value) => value.to_string(),
            Err(e) => {
                txn.rollback().await.map_err(anyhow::Error::from)?;
                return Err(e);
            }
        };
        self.complete(&txn, status, &body).await?;
        txn.commit().await.map_err(anyhow::Error::from)?;
        if self.is_keyed() {
            maybe_purge(app, now);
        }
        Ok(Executed {
            response: json_response(status, body),
            replayed: false,
        })
    }

    /// Takes the key for this transaction. `Ok(None)`: ours, go ahead.
    /// `Ok(Some(_))`: another request holds it; replay its answer.
    async fn claim(
        &self,
        txn: &DatabaseTransaction,
        now: DateTime<Utc>,
    ) -> Result<Option<Stored>, ApiError> {
        let Some(key) = &self.key else {
            return Ok(None);
        };
        let backend = txn.get_database_backend();
        // An expired record no longer holds the key.
        txn.execute_raw(Statement::from_sql_and_values(
            backend,
            "DELETE FROM api_idempotency WHERE key = $1 AND created_at < $2",
            [Value::from(key.clone()), Value::from(now - RETENTION)],
        ))
        .await
        .map_err(anyhow::Error::from)?;
        // Status 0 and an empty body until `complete`; no other
        // transaction ever sees them (same transaction, or rolled back).
        let claimed = txn
            .query_one_raw(Statement::from_sql_and_values(
                backend,
                "INSERT INTO api_idempotency (key, request_hash, status, response, created_at) \
                 VALUES ($1, $2, 0, '', $3) ON CONFLICT (key) DO NOTHING RETURNING key",
                [
                    Value::from(key.clone()),
                    Value::from(self.request_hash.clone()),
                    Value::from(now),
                ],
            ))
            .await
            .map_err(anyhow::Error::from)?;
        if claimed.is_some() {
            return Ok(None);
        }
        tracing::debug!("Idempotency-Key taken by a concurrent request; replaying its answer");
        // Committed by the request that won: read it in this transaction.
        let row = Row::find_by_statement(Statement::from_sql_and_values(
            backend,
            "SELECT request_hash, status, response FROM api_idempotency WHERE key = $1",
            [Value::from(key.clone())],
        ))
        .one(txn)
        .await
        .map_err(anyhow::Error::from)?
        .ok_or_else(|| anyhow::anyhow!("an idempotency record vanished while claimed"))?;
        self.answer(row).map(Some)
    }

    async fn complete(
        &self,
        txn: &DatabaseTransaction,
        status: StatusCode,
        body: &str,
    ) -> Result<(), ApiError> {
        let Some(key) = &self.key else {
            return Ok(());
        };
        txn.execute_raw(Statement::from_sql_and_values(
            txn.get_database_backend(),
            "UPDATE api_idempotency SET status = $1, response = $2 WHERE key = $3",
            [
                Value::from(i32::from(status.as_u16())),
                Value::from(body.to_string()),
                Value::from(key.clone()),
            ],
        ))
        .await
        .map_err(anyhow::Error::from)?;
        Ok(())
    }
}

impl Stored {
    /// The stored answer, marked as a replay.
    pub fn into_replay(self) -> Response {
        let mut response = json_response(self.status, self.body);
        response
            .headers_mut()
            .insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
        response
    }
}

/// A JSON response whose body is exactly `body`.
fn json_response(status: StatusCode, body: String) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

fn validate(value: &HeaderValue) -> Result<&str, ApiError> {
    let bad = |message: &str| ApiError::BadHeader {
        header: "Idempotency-Key",
        message: message.to_string(),
    };
    let key = value
        .to_str()
        .map_err(|_| bad("Idempotency-Key must be visible ASCII characters"))?;
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(bad(&format!(
            "Idempotency-Key must be 1 to {MAX_KEY_LEN} characters long"
        )));
    }
    Ok(key)
}

/// The stored form of a caller's key: never the key itself.
fn scoped_key(caller: &Caller, key: &str) -> String {
    let mut h = Sha256::new();
    h.update(caller.key_digest);
    h.update([0x1f]);
    h.update(key.as_bytes());
    hex::encode(h.finalize())
}

/// Deletes records past [`RETENTION`]. Returns how many.
pub async fn purge_expired(db: &impl ConnectionTrait, now: DateTime<Utc>) -> anyhow::Result<u64> {
    let r = db
        .execute_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            "DELETE FROM api_idempotency WHERE created_at < $1",
            [Value::from(now - RETENTION)],
        ))
        .await?;
    Ok(r.rows_affected())
}

/// Unix seconds of this process's last purge.
static LAST_PURGE: AtomicI64 = AtomicI64::new(0);

/// Purges expired records in the background, at most once an hour per
/// process: cheap enough to ride on requests, so no extra loop is needed.
pub fn maybe_purge(app: &App, now: DateTime<Utc>) {
    let last = LAST_PURGE.load(Ordering::Relaxed);
    let now_secs = now.timestamp();
    if now_secs - last < 3600
        || LAST_PURGE
            .compare_exchange(last, now_secs, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
    {
        return;
    }
    let db = app.db.clone();
    app.spawn("purge expired idempotency records", async move {
        let n = purge_expired(&db, now).await?;
        if n > 0 {
            tracing::debug!(purged = n, "expired idempotency records purged");
        }
        Ok(())
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(b: u8) -> Caller {
        Caller {
            key_digest: [b; 32],
        }
    }

    fn ctx(c: &Caller, key: Option<&str>, body: &str) -> Result<Idempotency, ApiError> {
        let mut headers = HeaderMap::new();
        if let Some(k) = key {
            headers.insert(HEADER, HeaderValue::from_str(k).unwrap());
        }
        Idempotency::new(
            c,
            &headers,
            &Method::POST,
            &Uri::from_static("/api/v1/messages"),
            body.as_bytes(),
        )
    }

    #[test]
    fn keys_are_scoped_per_caller_and_never_stored_in_clear() {
        let a = ctx(&caller(1), Some("k-1"), "{}").unwrap();
        let b = ctx(&caller(2), Some("k-1"), "{}").unwrap();
        assert_ne!(a.key, b.key);
        assert!(!a.key.as_deref().unwrap().contains("k-1"));
        assert_eq!(a.request_hash, b.request_hash);
        assert_ne!(
            a.request_hash,
            ctx(&caller(1), Some("k-1"), "{ }").unwrap().request_hash
        );
    }

    #[test]
    fn key_length_is_bounded() {
        assert!(ctx(&caller(1), Some(&"k".repeat(255)), "").is_ok());
        let e = ctx(&caller(1), Some(&"k".repeat(256)), "").unwrap_err();
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        let e = ctx(&caller(1), Some(""), "").unwrap_err();
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        assert!(!ctx(&caller(1), None, "").unwrap().is_keyed());
    }
}
