//! Migrations on SQLite and PostgreSQL: up creates every core table, down
//! removes them, and up works again after down.

use sea_orm_migration::{MigratorTrait, SchemaManager};
use warmline::migrations::Migrator;

use crate::{storage_test, test_db::TestDb};

const CORE_TABLES: &[&str] = &[
    "contacts",
    "interactions",
    "consents",
    "suppressions",
    "templates",
    "campaigns",
    "messages",
    "message_events",
    "approvals",
    "provider_events",
    "audit_log",
    "slack_requests",
    "tombstones",
];

async fn missing_tables(db: &sea_orm::DatabaseConnection) -> Vec<&'static str> {
    let schema = SchemaManager::new(db);
    let mut missing = Vec::new();
    for table in CORE_TABLES {
        if !schema.has_table(*table).await.expect("query the catalogue") {
            missing.push(*table);
        }
    }
    missing
}

storage_test!(up_creates_every_core_table, |t: TestDb| async move {
    let t = &t; // the whole TestDb, so its SQLite directory outlives the test
    // Arrange: TestDb::new ran every migration on a fresh database.

    // Act
    let missing = missing_tables(&t.db).await;
    let pending = Migrator::get_pending_migrations(&t.db).await.unwrap();

    // Assert
    assert!(
        missing.is_empty(),
        "{:?}: tables missing after up: {missing:?}",
        t.backend
    );
    assert!(pending.is_empty(), "no migration is left pending");
});

storage_test!(down_then_up_again_works, |t: TestDb| async move {
    let t = &t; // the whole TestDb, so its SQLite directory outlives the test
    // Arrange
    let db = &t.db;

    // Act: down removes everything
    Migrator::down(db, None).await.expect("down runs");
    let after_down = missing_tables(db).await;
    // Act: up again
    Migrator::up(db, None)
        .await
        .expect("up runs again after down");
    let after_up = missing_tables(db).await;

    // Assert
    assert_eq!(
        after_down.len(),
        CORE_TABLES.len(),
        "down drops every core table"
    );
    assert!(
        after_up.is_empty(),
        "tables missing after up again: {after_up:?}"
    );
});

storage_test!(up_twice_is_a_no_op, |t: TestDb| async move {
    let t = &t; // the whole TestDb, so its SQLite directory outlives the test
    // Arrange: already migrated.

    // Act
    let again = Migrator::up(&t.db, None).await;

    // Assert
    assert!(again.is_ok(), "{again:?}");
    assert!(missing_tables(&t.db).await.is_empty());
});
