//! The database: connecting (SQLite by default, PostgreSQL via
//! `DATABASE_URL`), migrating, and the entities.
//!
//! SQLite runs in WAL mode with `synchronous = FULL`: a commit that returned is
//! on disk, which is what the delivery ledger promises. Foreign keys are on.

pub mod entities;
pub mod nodelay;

use std::time::Duration;

use anyhow::Context;
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend};
use sea_orm_migration::MigratorTrait;
use secrecy::ExposeSecret;

use crate::{migrations::Migrator, settings::DatabaseSettings};

/// Connects to the configured database and brings its schema up to date.
pub async fn connect_and_migrate(
    settings: &DatabaseSettings,
) -> anyhow::Result<DatabaseConnection> {
    let db = connect(
        settings.connection_url().expose_secret(),
        settings.max_connections,
    )
    .await?;
    Migrator::up(&db, None)
        .await
        .context("Failed to run database migrations")?;
    Ok(db)
}

/// Connects without migrating.
pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<DatabaseConnection> {
    let mut opts = ConnectOptions::new(url.to_owned());
    opts.max_connections(max_connections.max(1))
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(|o| {
            o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Full)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
        })
        .map_sqlx_postgres_pool_opts(|o| {
            o.after_connect(|conn, _| {
                Box::pin(async move {
                    nodelay::disable_nagle(conn).await;
                    Ok(())
                })
            })
        });
    let backend = if url.starts_with("sqlite") {
        "SQLite"
    } else {
        "PostgreSQL"
    };
    let db = Database::connect(opts)
        .await
        .with_context(|| format!("Failed to connect to {backend} (check DATABASE_URL)"))?;
    Ok(db)
}

/// True when the database answers a trivial query.
pub async fn ping(db: &DatabaseConnection) -> bool {
    db.ping().await.is_ok()
}

/// Which backend a connection talks to, for the few places SQL differs.
pub fn is_postgres(db: &impl ConnectionTrait) -> bool {
    db.get_database_backend() == DbBackend::Postgres
}

/// `$start, $start+1, …` for `n` bound values. Both backends read `$N`
/// (sqlx binds SQLite's `$N` by number), so raw SQL is written once.
pub fn placeholders(start: usize, n: usize) -> String {
    (start..start + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Runs a `SELECT CAST(COUNT(*) AS BIGINT) AS n …` query and returns `n`
/// (0 when no row comes back).
pub async fn count(
    db: &impl ConnectionTrait,
    sql: &str,
    values: Vec<sea_orm::Value>,
) -> anyhow::Result<i64> {
    #[derive(sea_orm::FromQueryResult)]
    struct N {
        n: i64,
    }
    let stmt = sea_orm::Statement::from_sql_and_values(db.get_database_backend(), sql, values);
    Ok(<N as sea_orm::FromQueryResult>::find_by_statement(stmt)
        .one(db)
        .await?
        .map_or(0, |r| r.n))
}

/// Opens a transaction that reads and then writes: `BEGIN IMMEDIATE` on
/// SQLite, so it takes the write lock up front instead of failing with
/// "database is locked" when it first writes after another writer; a plain
/// transaction on PostgreSQL, where callers lock rows with `FOR UPDATE`.
pub async fn begin_write(db: &DatabaseConnection) -> anyhow::Result<sea_orm::DatabaseTransaction> {
    use sea_orm::{SqliteTransactionMode, TransactionOptions, TransactionTrait};
    Ok(db
        .begin_with_options(TransactionOptions {
            sqlite_transaction_mode: (db.get_database_backend() == DbBackend::Sqlite)
                .then_some(SqliteTransactionMode::Immediate),
            ..Default::default()
        })
        .await?)
}

#[cfg(test)]
mod tests {
    use sea_orm::Value;

    use super::*;

    #[tokio::test]
    async fn count_reads_n_binds_values_and_is_zero_without_a_row() {
        // Arrange
        let db = connect("sqlite::memory:", 1).await.unwrap();
        db.execute_unprepared(
            "CREATE TABLE t (k TEXT NOT NULL); INSERT INTO t VALUES ('a'), ('a'), ('b')",
        )
        .await
        .unwrap();

        // Act
        let all = count(&db, "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM t", vec![]).await;
        let some = count(
            &db,
            "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM t WHERE k = $1",
            vec![Value::from("a")],
        )
        .await;
        let no_row = count(&db, "SELECT 7 AS n FROM t WHERE k = 'z'", vec![]).await;
        let bad_sql = count(&db, "SELECT n FROM missing", vec![]).await;

        // Assert
        assert_eq!(all.unwrap(), 3);
        assert_eq!(some.unwrap(), 2);
        assert_eq!(no_row.unwrap(), 0);
        assert!(bad_sql.is_err());
    }
}
