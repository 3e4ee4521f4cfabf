//! Test databases: a fresh SQLite file per test, and — when
//! `WARMLINE_TEST_DATABASE_URL` is set — a fresh PostgreSQL database per test
//! (created on the server that URL names, e.g. postgres://postgres@127.0.0.1:5432/test).
//!
//! `storage_test!` writes a test twice, once per backend. The PostgreSQL copy
//! says on the terminal that it was skipped when no server is configured.

use std::io::Write;

use sea_orm::{ConnectionTrait, DatabaseConnection};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A migrated database for one test. The SQLite file lives in a temporary
/// directory removed when this is dropped.
pub struct TestDb {
    pub url: String,
    pub db: DatabaseConnection,
    pub backend: Backend,
    _dir: Option<tempfile::TempDir>,
}

pub const PG_ENV: &str = "WARMLINE_TEST_DATABASE_URL";

/// The PostgreSQL server for tests, if configured.
pub fn postgres_base_url() -> Option<String> {
    std::env::var(PG_ENV).ok().filter(|u| !u.trim().is_empty())
}

/// Says, past libtest's output capture, that a PostgreSQL test was skipped.
pub fn report_pg_skipped(test: &str) {
    let _ = writeln!(
        std::io::stderr(),
        "skipped: {test} (PostgreSQL) — set {PG_ENV} to run it"
    );
}

impl TestDb {
    /// A fresh, migrated database; `None` for PostgreSQL when none is configured.
    pub async fn new(backend: Backend) -> Option<Self> {
        warmline::install_crypto_provider();
        let (url, dir) = match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}/warmline.db?mode=rwc", dir.path().display());
                (url, Some(dir))
            }
            Backend::Postgres => {
                let base = postgres_base_url()?;
                let name = format!("warmline_test_{}", uuid::Uuid::new_v4().simple());
                let admin = warmline::db::connect(&base, 1)
                    .await
                    .expect("connect to WARMLINE_TEST_DATABASE_URL");
                admin
                    .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                    .await
                    .expect("create a test database");
                admin.close().await.ok();
                (replace_db_name(&base, &name), None)
            }
        };
        let db = warmline::db::connect(&url, 4)
            .await
            .expect("connect to the test database");
        <warmline::migrations::Migrator as sea_orm_migration::MigratorTrait>::up(&db, None)
            .await
            .expect("migrations run");
        Some(Self {
            url,
            db,
            backend,
            _dir: dir,
        })
    }

    /// Settings pointing at this database.
    pub fn apply(&self, settings: &mut warmline::settings::Settings) {
        settings.database.url = Some(self.url.clone().into());
    }
}

/// Dropping a `TestDb` as a whole (never field by field, which a closure's
/// precise capture would otherwise do) keeps the SQLite file's directory
/// alive for as long as any part of it is used.
impl Drop for TestDb {
    fn drop(&mut self) {}
}

fn replace_db_name(base: &str, name: &str) -> String {
    let mut url = url::Url::parse(base).expect("WARMLINE_TEST_DATABASE_URL is a URL");
    url.set_path(&format!("/{name}"));
    url.to_string()
}

/// Writes `$name` as two tests, `$name::sqlite` and `$name::postgres`, each
/// calling `$body(TestDb)`.
#[macro_export]
macro_rules! storage_test {
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test]
            async fn sqlite() {
                let db = $crate::test_db::TestDb::new($crate::test_db::Backend::Sqlite)
                    .await
                    .expect("SQLite is always available");
                ($body)(db).await;
            }

            #[tokio::test]
            async fn postgres() {
                match $crate::test_db::TestDb::new($crate::test_db::Backend::Postgres).await {
                    Some(db) => ($body)(db).await,
                    None => $crate::test_db::report_pg_skipped(module_path!()),
                }
            }
        }
    };
}
