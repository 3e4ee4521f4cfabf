//! The periodic decay pass: recomputes every contact's warmth at `now`, so
//! scores fall as time passes without new interactions, and reports the
//! contacts whose score crossed a trigger threshold ([`Crossing`]).
//!
//! How it stays cheap (target: 100,000 contacts with 1,000,000 interactions
//! in under 2 s, `warmline bench warmth`):
//! - **read**: two sequential scans, streamed straight off the driver (sqlx,
//!   no per-row ORM model): every contact row, and every interaction inside
//!   the horizon (`[now − 8 half-lives, now]`) with kind and direction as
//!   small integers, on two or three connections at once. A table scan,
//!   not the `(contact_id, occurred_at)` index: interactions are stored in the order they were recorded, so walking the
//!   index would fetch one table page per interaction (measured: 12 s for
//!   1,000,000 on SQLite, against well under 1 s for the scan). The rows
//!   are grouped by contact in memory (~40 bytes an interaction);
//! - **compute**: the pure model, in Rust;
//! - **write**: only rows whose stored score (rounded to 0.1) or reasons
//!   change, `batch_contacts` rows per transaction, as one multi-row `UPDATE
//!   … FROM (VALUES …)` per 1,000 rows on SQLite and one `UPDATE … FROM
//!   UNNEST(…)` on PostgreSQL, where two connections write disjoint halves
//!   at once and half-empty pages (migration 000011) let the rewrites be
//!   heap-only updates; a pass that finds nothing changed writes nothing.
//!
//! Invariants:
//! - after a pass, every contact's stored score equals what
//!   [`super::refresh_contact_with`] would store at the same `now` (the same
//!   bounds and the same pure model);
//! - the read holds no lock, so a `record` may commit between the read and
//!   the write. Every write is therefore guarded by the `warmth_updated_at`
//!   the read saw (compared as text): a contact whose score was rewritten
//!   meanwhile — by a `record`, which always sets it — is left alone, since
//!   that newer score already counts the newer interaction. Such contacts
//!   are neither counted as updated nor reported as crossings;
//! - `warmth_updated_at` is the time of the last write of a contact's score;
//!   an unchanged contact keeps its old one.

use std::{
    collections::HashSet,
    time::{Duration, Instant},
};

use anyhow::Context;
use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, FromQueryResult, Statement, Value,
    sqlx::{self, Row},
};

use super::{Crossing, INBOUND_SQL, KIND_SQL, event_from_codes, model};

/// What one pass did.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Contacts recomputed.
    pub contacts: u64,
    /// Interactions read (those inside the horizon).
    pub interactions: u64,
    /// Contacts whose score or reasons changed and were written.
    pub updated: u64,
    /// Contacts left alone because a `record` rewrote their score during
    /// the pass (theirs is newer).
    pub skipped_concurrent: u64,
    /// Contacts that crossed a threshold, in contact id order.
    pub crossings: Vec<Crossing>,
    /// Time spent reading, computing and writing; `elapsed` is the total.
    pub read: Duration,
    pub compute: Duration,
    pub write: Duration,
    pub elapsed: Duration,
}

/// Recomputes every contact with the process's parameters and batch size
/// ([`super::params`], [`super::batch_contacts`]).
pub async fn recompute_all(db: &DatabaseConnection, now: DateTime<Utc>) -> anyhow::Result<Stats> {
    recompute_all_with(db, now, &super::params(), super::batch_contacts()).await
}

/// A contact row as the pass reads it.
struct ContactRow {
    id: i64,
    warmth: f64,
    warmth_reasons: String,
    /// `warmth_updated_at` as text, `''` when NULL (never computed): the
    /// write guard.
    stamp: String,
    last_interaction_at: Option<DateTime<Utc>>,
}

/// One interaction inside the horizon.
struct Compact {
    contact_id: i64,
    at: DateTime<Utc>,
    kind: i32,
    inbound: i32,
}

/// A contact whose stored score changes.
struct Change {
    id: i64,
    value: f64,
    reasons: String,
    stamp: String,
    crossing: Option<Crossing>,
}

/// [`recompute_all`] with explicit parameters and write batch size.
pub async fn recompute_all_with(
    db: &DatabaseConnection,
    now: DateTime<Utc>,
    p: &model::Params,
    batch: usize,
) -> anyhow::Result<Stats> {
    let started = Instant::now();
    let from = now - p.horizon();
    let (contacts, mut rows) = if crate::db::is_postgres(db) {
        read_postgres(db.get_postgres_connection_pool(), from, now).await?
    } else {
        read_sqlite(db.get_sqlite_connection_pool(), from, now).await?
    };
    let read = started.elapsed();

    let computing = Instant::now();
    rows.sort_unstable_by_key(|r| r.contact_id);
    let mut stats = Stats {
        contacts: contacts.len() as u64,
        interactions: rows.len() as u64,
        read,
        ..Stats::default()
    };
    let mut changes = Vec::new();
    let mut events = Vec::new();
    let mut next = 0;
    for c in &contacts {
        // Both lists are in contact id order: a merge join.
        while next < rows.len() && rows[next].contact_id < c.id {
            next += 1;
        }
        events.clear();
        while next < rows.len() && rows[next].contact_id == c.id {
            let r = &rows[next];
            events.push(event_from_codes(r.at, r.kind, r.inbound));
            next += 1;
        }
        let o = model::score(&events, c.last_interaction_at, now, p);
        let reasons = serde_json::to_string(&o.reasons)?;
        let computed = !c.stamp.is_empty();
        if computed && o.value == c.warmth && reasons == c.warmth_reasons {
            continue;
        }
        changes.push(Change {
            id: c.id,
            value: o.value,
            reasons,
            stamp: c.stamp.clone(),
            crossing: if computed {
                Crossing::between(c.id, c.warmth, o.value)
            } else {
                None
            },
        });
    }
    drop(rows);
    drop(contacts);
    stats.compute = computing.elapsed();

    let writing = Instant::now();
    // PostgreSQL writes in two lanes at once — the changes split in two
    // halves, each written batch after batch on its own connection (each
    // backend does one core's worth of index and WAL work); SQLite has one
    // writer, so one lane.
    let lane_count = if crate::db::is_postgres(db) { 2 } else { 1 };
    let batch = batch.max(1);
    let lane_len = changes.len().div_ceil(lane_count).max(1);
    let lanes = futures::future::join_all(
        changes
            .chunks(lane_len)
            .map(|lane| write_lane(db, lane, batch, now)),
    )
    .await;
    for lane in lanes {
        for (chunk, written) in lane? {
            stats.updated += written.len() as u64;
            stats.skipped_concurrent += (chunk.len() - written.len()) as u64;
            stats.crossings.extend(
                chunk
                    .iter()
                    .filter(|c| written.contains(&c.id))
                    .filter_map(|c| c.crossing),
            );
        }
    }
    stats.write = writing.elapsed();
    stats.elapsed = started.elapsed();
    Ok(stats)
}

/// Writes a lane's changes, `batch` per transaction, one after another;
/// each batch with the ids it wrote.
async fn write_lane<'a>(
    db: &DatabaseConnection,
    lane: &'a [Change],
    batch: usize,
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<(&'a [Change], HashSet<i64>)>> {
    let mut done = Vec::new();
    for chunk in lane.chunks(batch) {
        let txn = crate::db::begin_write(db).await?;
        let written = write(&txn, chunk, now).await.context("writing scores")?;
        txn.commit().await?;
        done.push((chunk, written));
    }
    Ok(done)
}

const CONTACTS_SQL: &str = "SELECT id, warmth, warmth_reasons, {STAMP} AS stamp, last_interaction_at \
     FROM contacts ORDER BY id";

fn interactions_sql() -> String {
    format!(
        "SELECT contact_id, {KIND_SQL} AS k, {INBOUND_SQL} AS d, occurred_at FROM interactions \
         WHERE occurred_at >= $1 AND occurred_at <= $2"
    )
}

/// SQLite: sqlx hands rows over one at a time from a worker thread (a few
/// microseconds each, ten times SQLite's own cost), so rows are packed in
/// SQL — `group_concat` / `json_group_array` over rowid ranges, still
/// sequential scans — and unpacked here. Ranges are read on two pooled
/// connections at once (WAL readers do not block each other), contacts
/// beside interactions, so SQLite's scanning overlaps with the unpacking.
async fn read_sqlite(
    pool: &sqlx::SqlitePool,
    from: DateTime<Utc>,
    now: DateTime<Utc>,
) -> anyhow::Result<(Vec<ContactRow>, Vec<Compact>)> {
    let (contacts, rows) = tokio::try_join!(
        read_sqlite_contacts(pool),
        read_sqlite_interactions(pool, from, now)
    )?;
    Ok((contacts, rows))
}

/// The `[start, start + step)` ranges covering `[lo, hi]`.
fn id_ranges(lo: i64, hi: i64, step: i64) -> Vec<(i64, i64)> {
    (0..)
        .map(|i| lo + i * step)
        .take_while(|start| *start <= hi)
        .map(|start| (start, start + step))
        .collect()
}

/// Concurrent range queries on SQLite (see [`read_sqlite`]).
const SQLITE_READERS: usize = 2;

async fn read_sqlite_contacts(pool: &sqlx::SqlitePool) -> anyhow::Result<Vec<ContactRow>> {
    let mut contacts = Vec::new();
    let (lo, hi): (Option<i64>, Option<i64>) =
        sqlx::query_as("SELECT MIN(id), MAX(id) FROM contacts")
            .fetch_one(pool)
            .await?;
    let (Some(lo), Some(hi)) = (lo, hi) else {
        return Ok(contacts);
    };
    let mut packs = futures::stream::iter(id_ranges(lo, hi, 25_000))
        .map(|(start, end)| {
            sqlx::query_scalar::<_, Option<String>>(
                "SELECT json_group_array(json_array(id, warmth, warmth_reasons, \
                 COALESCE(CAST(warmth_updated_at AS TEXT), ''), last_interaction_at)) \
                 FROM (SELECT * FROM contacts WHERE id >= $1 AND id < $2 ORDER BY id)",
            )
            .bind(start)
            .bind(end)
            .fetch_one(pool)
        })
        .buffered(SQLITE_READERS);
    while let Some(packed) = packs.try_next().await.context("reading contacts")? {
        type Packed = (i64, f64, String, String, Option<String>);
        let rows: Vec<Packed> = serde_json::from_str(packed.as_deref().unwrap_or("[]"))?;
        for (id, warmth, warmth_reasons, stamp, last) in rows {
            contacts.push(ContactRow {
                id,
                warmth,
                warmth_reasons,
                stamp,
                last_interaction_at: last.as_deref().map(parse_sqlite_time).transpose()?,
            });
        }
    }
    Ok(contacts)
}

async fn read_sqlite_interactions(
    pool: &sqlx::SqlitePool,
    from: DateTime<Utc>,
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<Compact>> {
    let mut rows = Vec::new();
    let (lo, hi): (Option<i64>, Option<i64>) =
        sqlx::query_as("SELECT MIN(id), MAX(id) FROM interactions")
            .fetch_one(pool)
            .await?;
    let (Some(lo), Some(hi)) = (lo, hi) else {
        return Ok(rows);
    };
    // Built from constants only; bound as sqlx encodes every stored
    // timestamp, so text order is time order.
    let sql = format!(
        "SELECT group_concat(contact_id || '|' || ({KIND_SQL}) || ({INBOUND_SQL}) || '|' \
         || occurred_at, ';') FROM interactions \
         WHERE id >= $1 AND id < $2 AND occurred_at >= $3 AND occurred_at <= $4"
    );
    let mut packs = futures::stream::iter(id_ranges(lo, hi, 100_000))
        .map(|(start, end)| {
            sqlx::query_scalar::<_, Option<String>>(sqlx::AssertSqlSafe(sql.clone()))
                .bind(start)
                .bind(end)
                .bind(from)
                .bind(now)
                .fetch_one(pool)
        })
        .buffered(SQLITE_READERS);
    while let Some(packed) = packs.try_next().await.context("reading interactions")? {
        for entry in packed
            .as_deref()
            .unwrap_or("")
            .split(';')
            .filter(|e| !e.is_empty())
        {
            let mut f = entry.splitn(3, '|');
            let (Some(id), Some(codes), Some(at)) = (f.next(), f.next(), f.next()) else {
                anyhow::bail!("unreadable packed interaction {entry:?}");
            };
            let codes = codes.as_bytes();
            rows.push(Compact {
                contact_id: id.parse()?,
                kind: i32::from(codes.first().copied().unwrap_or(b'4') - b'0'),
                inbound: i32::from(codes.get(1).copied().unwrap_or(b'0') - b'0'),
                at: parse_sqlite_time(at)?,
            });
        }
    }
    Ok(rows)
}

/// Parses a timestamp as sqlx decodes one from SQLite text (RFC 3339 first,
/// then SQLite's own forms), so the pass sees exactly what
/// `refresh_contact` sees.
fn parse_sqlite_time(s: &str) -> anyhow::Result<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    for f in ["%F %T%.f%:z", "%FT%T%.f%:z"] {
        if let Ok(t) = DateTime::parse_from_str(s, f) {
            return Ok(t.with_timezone(&Utc));
        }
    }
    for f in ["%F %T%.f", "%FT%T%.f"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, f) {
            return Ok(t.and_utc());
        }
    }
    anyhow::bail!("unreadable timestamp {s:?}")
}

/// PostgreSQL: contacts and the interactions (in two id ranges) stream
/// on three connections at once, each decoded on its own task.
async fn read_postgres(
    pool: &sqlx::PgPool,
    from: DateTime<Utc>,
    now: DateTime<Utc>,
) -> anyhow::Result<(Vec<ContactRow>, Vec<Compact>)> {
    let contacts = tokio::spawn(read_postgres_contacts(pool.clone()));
    let (lo, hi): (Option<i64>, Option<i64>) =
        sqlx::query_as("SELECT MIN(id), MAX(id) FROM interactions")
            .fetch_one(pool)
            .await?;
    let mut parts = Vec::new();
    if let (Some(lo), Some(hi)) = (lo, hi) {
        let step = (hi - lo) / 2 + 1;
        for (start, end) in id_ranges(lo, hi, step) {
            parts.push(tokio::spawn(read_postgres_interactions(
                pool.clone(),
                start,
                end,
                from,
                now,
            )));
        }
    }
    let mut rows = Vec::new();
    for part in parts {
        rows.extend(part.await??);
    }
    Ok((contacts.await??, rows))
}

async fn read_postgres_contacts(pool: sqlx::PgPool) -> anyhow::Result<Vec<ContactRow>> {
    let mut contacts = Vec::new();
    let sql = CONTACTS_SQL.replace("{STAMP}", "COALESCE(warmth_updated_at::text, '')");
    // Built from constants only.
    let mut s = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch(&pool);
    while let Some(r) = s.try_next().await.context("reading contacts")? {
        contacts.push(ContactRow {
            id: r.try_get(0)?,
            warmth: r.try_get(1)?,
            warmth_reasons: r.try_get(2)?,
            stamp: r.try_get(3)?,
            last_interaction_at: r.try_get(4)?,
        });
    }
    Ok(contacts)
}

async fn read_postgres_interactions(
    pool: sqlx::PgPool,
    start: i64,
    end: i64,
    from: DateTime<Utc>,
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<Compact>> {
    let mut rows = Vec::new();
    let sql = format!("{} AND id >= $3 AND id < $4", interactions_sql());
    // Built from constants only.
    let mut s = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(from)
        .bind(now)
        .bind(start)
        .bind(end)
        .fetch(&pool);
    while let Some(r) = s.try_next().await.context("reading interactions")? {
        rows.push(Compact {
            contact_id: r.try_get(0)?,
            kind: r.try_get(1)?,
            inbound: r.try_get(2)?,
            at: r.try_get(3)?,
        });
    }
    Ok(rows)
}

#[derive(FromQueryResult)]
struct Id {
    id: i64,
}

/// Rows per `UPDATE … FROM (VALUES …)` on SQLite (see [`write`]).
const SQLITE_ROWS_PER_UPDATE: usize = 1_000;

/// Writes the changes whose guard still holds; returns the ids written.
async fn write(
    txn: &DatabaseTransaction,
    changes: &[Change],
    now: DateTime<Utc>,
) -> anyhow::Result<HashSet<i64>> {
    let backend = txn.get_database_backend();
    let mut written = HashSet::with_capacity(changes.len());
    if changes.is_empty() {
        return Ok(written);
    }
    if crate::db::is_postgres(txn) {
        // Array parameters: one constant statement, planned once.
        let ids = Id::find_by_statement(Statement::from_sql_and_values(
            backend,
            "UPDATE contacts SET warmth = v.w, warmth_reasons = v.r, warmth_updated_at = $5 \
             FROM UNNEST($1::bigint[], $2::float8[], $3::text[], $4::text[]) AS v(id, w, r, s) \
             WHERE contacts.id = v.id AND COALESCE(contacts.warmth_updated_at::text, '') = v.s \
             RETURNING contacts.id",
            [
                Value::from(changes.iter().map(|c| c.id).collect::<Vec<i64>>()),
                Value::from(changes.iter().map(|c| c.value).collect::<Vec<f64>>()),
                Value::from(
                    changes
                        .iter()
                        .map(|c| c.reasons.clone())
                        .collect::<Vec<String>>(),
                ),
                Value::from(
                    changes
                        .iter()
                        .map(|c| c.stamp.clone())
                        .collect::<Vec<String>>(),
                ),
                Value::from(now),
            ],
        ))
        .all(txn)
        .await?;
        written.extend(ids.into_iter().map(|r| r.id));
        return Ok(written);
    }
    // SQLite (≥ 3.35 for UPDATE … FROM … RETURNING). Anonymous `?`
    // parameters, not `$n`: for each numbered parameter sqlx asks SQLite
    // for its name, a linear search of the statement's parameter list, so
    // binding P numbered parameters costs P² (with `$n`, 1,000 rows a
    // statement wrote 100,000 scores in 3.8 s; with `?`, in under 1 s).
    for chunk in changes.chunks(SQLITE_ROWS_PER_UPDATE) {
        let mut values = Vec::with_capacity(chunk.len() * 4 + 1);
        values.push(Value::from(now));
        for c in chunk {
            values.push(Value::from(c.id));
            values.push(Value::from(c.value));
            values.push(Value::from(c.reasons.clone()));
            values.push(Value::from(c.stamp.clone()));
        }
        let ids = Id::find_by_statement(Statement::from_sql_and_values(
            backend,
            format!(
                "UPDATE contacts SET warmth = v.column2, warmth_reasons = v.column3, \
                 warmth_updated_at = ? FROM (VALUES {}) AS v WHERE contacts.id = v.column1 \
                 AND COALESCE(CAST(contacts.warmth_updated_at AS TEXT), '') = v.column4 \
                 RETURNING contacts.id",
                vec!["(?, ?, ?, ?)"; chunk.len()].join(",")
            ),
            values,
        ))
        .all(txn)
        .await?;
        written.extend(ids.into_iter().map(|r| r.id));
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::id_ranges;

    #[test]
    fn id_ranges_cover_every_id_once() {
        assert_eq!(id_ranges(1, 10, 4), vec![(1, 5), (5, 9), (9, 13)]);
        assert_eq!(id_ranges(7, 7, 100), vec![(7, 107)]);
        assert_eq!(id_ranges(1, 8, 4), vec![(1, 5), (5, 9)]);
        // The PostgreSQL split: two halves of [lo, hi].
        let (lo, hi) = (3, 1_000_002);
        let r = id_ranges(lo, hi, (hi - lo) / 2 + 1);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].0, lo);
        assert_eq!(r[0].1, r[1].0);
        assert!(r[1].1 > hi);
    }
}
