//! `warmline import`: CSV contacts into the database. Bad rows are reported
//! by file line (header = line 1) and reason while good rows still land;
//! contacts merge by email; consent is never invented; forgotten contacts
//! stay forgotten.

use std::collections::BTreeSet;

use sea_orm::{ConnectionTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryOrder};
use serde_json::Value;
use warmline::{
    db::entities::{consents, contacts},
    domain::tombstone_hash,
    import::contacts_csv::{ImportOptions, ImportReport, import},
};

use crate::{storage_test, test_db::TestDb};

fn opts() -> ImportOptions {
    ImportOptions {
        default_region: Some(phonenumber::country::Id::US),
        // Small batches so merges and look-ups cross batch boundaries.
        batch_size: 2,
        source_name: "contacts.csv".into(),
    }
}

async fn run(db: &DatabaseConnection, csv: &str) -> ImportReport {
    import(
        db,
        csv.as_bytes(),
        &opts(),
        &indicatif::ProgressBar::hidden(),
    )
    .await
    .expect("an import with bad rows still succeeds")
}

async fn all_contacts(db: &DatabaseConnection) -> Vec<contacts::Model> {
    contacts::Entity::find()
        .order_by_asc(contacts::Column::Id)
        .all(db)
        .await
        .unwrap()
}

fn by_email<'a>(contacts: &'a [contacts::Model], email: &str) -> &'a contacts::Model {
    contacts
        .iter()
        .find(|c| c.email.as_deref() == Some(email))
        .unwrap_or_else(|| panic!("{email} was not imported"))
}

fn tags(c: &contacts::Model) -> Vec<String> {
    serde_json::from_str(&c.tags).expect("tags are a JSON array")
}

/// Lines (header = 1): 2 good, 3 bad email, 4 bad phone, 5 bad time zone,
/// 6–7 bad consent (a quoted field spans two lines), 8 no identity, 9 wrong
/// column count, 10–11 good (embedded newline again), 12 good.
const MIXED: &str =
    "email,phone,first_name,last_name,timezone,tags,consent_email,consent_source,company
ann@example.com,(415) 555-2671,Ann,Lee,Europe/Paris,vip; investor,yes,webinar,Acme
not-an-email,,Bob,,,,,,
carl@example.com,12345,Carl,,,,,,
dina@example.com,,Dina,,Mars/Olympus,,,,
eve@example.com,,\"Eve\",\"Multi
Line\",UTC,,maybe,,
,,Fay,,,,,,Fay Corp
gus@example.com,Gus
hal@example.com,415.555.2672,Hal,\"Two
Lines\",America/New_York,friends,,,\"Widgets, Inc.\"
ivy@example.com,,Ivy,,,,,,
";

storage_test!(
    bad_rows_are_reported_by_file_line_and_good_rows_are_stored,
    |t: TestDb| async move {
        let t = &t; // the whole TestDb, so its SQLite directory outlives the test
        // Arrange
        let db = &t.db;

        // Act
        let report = run(db, MIXED).await;

        // Assert: the report
        let lines: Vec<u64> = report.rejected.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![3, 4, 5, 6, 8, 9], "{report}");
        let reason = |line: u64| {
            report
                .rejected
                .iter()
                .find(|e| e.line == line)
                .unwrap()
                .reason
                .clone()
        };
        assert!(reason(3).contains("not a valid email"), "{}", reason(3));
        assert!(reason(4).contains("number"), "{}", reason(4));
        assert!(reason(5).contains("IANA"), "{}", reason(5));
        assert!(
            reason(6).contains("consent_email") && reason(6).contains("yes or no"),
            "{}",
            reason(6)
        );
        assert!(
            reason(8).contains("no email, phone or external_id"),
            "{}",
            reason(8)
        );
        assert!(
            reason(9).contains("2 fields") && reason(9).contains("9"),
            "{}",
            reason(9)
        );
        assert_eq!(report.rows, 9, "records, not lines");
        assert_eq!(report.imported, 3);
        assert_eq!(report.merged, 0);
        assert_eq!(report.consent_records, 1);
        let text = report.to_string();
        assert!(text.contains("3 imported, 0 merged, 6 rejected"), "{text}");
        assert!(text.contains("line 9: "), "{text}");

        // Assert: what was stored
        let stored = all_contacts(db).await;
        assert_eq!(stored.len(), 3);
        let ann = by_email(&stored, "ann@example.com");
        assert_eq!(ann.phone.as_deref(), Some("+14155552671"));
        assert_eq!(ann.first_name.as_deref(), Some("Ann"));
        assert_eq!(ann.timezone.as_deref(), Some("Europe/Paris"));
        assert_eq!(tags(ann), vec!["vip", "investor"]);
        let meta: Value = serde_json::from_str(&ann.metadata).unwrap();
        assert_eq!(meta, serde_json::json!({"company": "Acme"}));
        let hal = by_email(&stored, "hal@example.com");
        assert_eq!(hal.phone.as_deref(), Some("+14155552672"));
        assert_eq!(hal.last_name.as_deref(), Some("Two\nLines"));
        assert_eq!(tags(hal), vec!["friends"]);
        let meta: Value = serde_json::from_str(&hal.metadata).unwrap();
        assert_eq!(meta["company"], "Widgets, Inc.");
        let ivy = by_email(&stored, "ivy@example.com");
        assert_eq!(tags(ivy), Vec::<String>::new());
        assert_eq!(ivy.phone, None);
        assert!(stored.iter().all(|c| c.status == "active"));
    }
);

storage_test!(a_second_import_merges_by_email, |t: TestDb| async move {
    let t = &t; // the whole TestDb, so its SQLite directory outlives the test
    // Arrange
    let db = &t.db;
    let first = run(db, "email,tags,first_name\nann@example.com,vip,Ann\n").await;

    // Act: the same address (different case), new tags, plus a new contact.
    let second = run(
        db,
        "email,tags,last_name,phone\nANN@Example.com,investor;vip,Lee,\nbob@example.com,,Bo,\n",
    )
    .await;

    // Assert
    assert_eq!((first.imported, first.merged), (1, 0));
    assert_eq!((second.imported, second.merged), (1, 1), "{second}");
    assert!(second.rejected.is_empty(), "{second}");
    let stored = all_contacts(db).await;
    assert_eq!(stored.len(), 2, "one row per email: {stored:?}");
    let ann = stored
        .iter()
        .find(|c| {
            c.email
                .as_deref()
                .is_some_and(|e| e.eq_ignore_ascii_case("ann@example.com"))
        })
        .unwrap();
    assert_eq!(tags(ann), vec!["vip", "investor"], "tags are unioned");
    assert_eq!(
        ann.first_name.as_deref(),
        Some("Ann"),
        "values absent from the file are kept"
    );
    assert_eq!(ann.last_name.as_deref(), Some("Lee"));
});

storage_test!(duplicates_within_one_file_merge, |t: TestDb| async move {
    let t = &t; // the whole TestDb, so its SQLite directory outlives the test
    // Arrange
    let csv =
        "email,tags\ncy@example.com,a\ndee@example.com,\ncy@example.com,b\ncy@example.com,a;c\n";

    // Act
    let report = run(&t.db, csv).await;

    // Assert
    assert_eq!((report.imported, report.merged), (2, 2), "{report}");
    let stored = all_contacts(&t.db).await;
    assert_eq!(stored.len(), 2);
    assert_eq!(
        tags(by_email(&stored, "cy@example.com")),
        vec!["a", "b", "c"]
    );
});

storage_test!(
    consent_is_recorded_only_from_consent_columns,
    |t: TestDb| async move {
        let t = &t; // the whole TestDb, so its SQLite directory outlives the test
        // Arrange
        let db = &t.db;
        let without = "email,phone,first_name\nno-consent@example.com,(415) 555-2671,Nia\n";
        let with = "email,consent_email,consent_source\nann@example.com,yes,webinar\nbo@example.com,,webinar\n";

        // Act
        let first = run(db, without).await;
        let after_first = consents::Entity::find().count(db).await.unwrap();
        let second = run(db, with).await;

        // Assert
        assert_eq!(first.consent_records, 0);
        assert_eq!(after_first, 0, "no consent column, no consent");
        assert_eq!(second.consent_records, 1);
        let ledger = consents::Entity::find().all(db).await.unwrap();
        assert_eq!(ledger.len(), 1, "{ledger:?}");
        let stored = all_contacts(db).await;
        let ann = by_email(&stored, "ann@example.com");
        assert_eq!(ledger[0].contact_id, ann.id);
        assert_eq!(ledger[0].channel, "email");
        assert!(ledger[0].granted);
        assert_eq!(ledger[0].source, "import:webinar");
    }
);

storage_test!(
    a_forgotten_contact_is_not_imported_again,
    |t: TestDb| async move {
        let t = &t; // the whole TestDb, so its SQLite directory outlives the test
        // Arrange
        let db = &t.db;
        let hash = tombstone_hash("gone@example.com");
        db.execute_unprepared(&format!(
            "INSERT INTO tombstones (hash, created_at) VALUES ('{hash}', CURRENT_TIMESTAMP)"
        ))
        .await
        .unwrap();

        // Act
        let report = run(
            db,
            "email,first_name\nGone@Example.com,Gone\nkeep@example.com,Keep\n",
        )
        .await;

        // Assert
        assert_eq!(report.imported, 1, "{report}");
        assert_eq!(report.rejected.len(), 1, "{report}");
        assert_eq!(report.rejected[0].line, 2);
        assert!(report.rejected[0].reason.contains("forgotten"), "{report}");
        let stored = all_contacts(db).await;
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].email.as_deref(), Some("keep@example.com"));
    }
);

/// A file of 101 good rows then a bad one on line 102, a quoted two-line
/// field on lines 50–51 pushing every later row down a line, with `eol`
/// line endings.
fn hundred_rows_then_a_bad_one(eol: &str) -> String {
    let mut csv = format!("email,first_name,last_name{eol}");
    for i in 2..=101 {
        if i == 50 {
            csv.push_str(&format!("p{i}@example.com,Pat,\"Two{eol}Lines\"{eol}"));
        } else if i != 51 {
            csv.push_str(&format!("p{i}@example.com,Pat,Row{eol}"));
        }
    }
    csv.push_str(&format!("not-an-email,Bad,Row{eol}"));
    csv.push_str(&format!("last@example.com,Last,Row{eol}"));
    csv
}

#[tokio::test]
async fn bad_rows_are_reported_on_their_own_line_with_lf_and_crlf_endings() {
    for eol in ["\n", "\r\n"] {
        // Arrange
        let t = TestDb::new(crate::test_db::Backend::Sqlite).await.unwrap();
        let csv = hundred_rows_then_a_bad_one(eol);
        assert_eq!(
            csv.lines().position(|l| l.starts_with("not-an-email")),
            Some(101),
            "the bad row is the file's line 102"
        );

        // Act
        let report = run(&t.db, &csv).await;

        // Assert
        let lines: Vec<u64> = report.rejected.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![102], "{eol:?}: {report}");
        assert!(report.to_string().contains("line 102: "), "{report}");
        assert_eq!(report.imported, 100, "{eol:?}: {report}");
    }
}

#[tokio::test]
async fn the_mixed_file_saved_with_crlf_reports_the_same_lines() {
    // Arrange: what Excel, Google Sheets and Python's csv write.
    let t = TestDb::new(crate::test_db::Backend::Sqlite).await.unwrap();
    let crlf = MIXED.replace('\n', "\r\n");

    // Act
    let report = run(&t.db, &crlf).await;

    // Assert
    let lines: Vec<u64> = report.rejected.iter().map(|e| e.line).collect();
    assert_eq!(lines, vec![3, 4, 5, 6, 8, 9], "{report}");
    assert_eq!(report.imported, 3, "{report}");
}

#[tokio::test]
async fn a_header_without_an_identity_column_is_an_error() {
    // Arrange
    let t = TestDb::new(crate::test_db::Backend::Sqlite).await.unwrap();

    // Act
    let err = import(
        &t.db,
        "first_name,last_name\nAnn,Lee\n".as_bytes(),
        &opts(),
        &indicatif::ProgressBar::hidden(),
    )
    .await
    .unwrap_err();

    // Assert
    assert!(err.to_string().contains("line 1"), "{err}");
}

/// What `generate()` should come to: rows, rejected (no `@`), merged
/// (repeats of an earlier email), imported (the rest).
fn expected_counts(csv: &str) -> (usize, usize, usize, usize) {
    let mut seen = BTreeSet::new();
    let (mut rows, mut rejected, mut merged, mut imported) = (0, 0, 0, 0);
    for line in csv.lines().skip(1) {
        rows += 1;
        let email = line.split(',').next().unwrap();
        if !email.contains('@') {
            rejected += 1;
        } else if !seen.insert(email.to_string()) {
            merged += 1;
        } else {
            imported += 1;
        }
    }
    (rows, imported, merged, rejected)
}

#[tokio::test]
async fn the_benchmark_counts_add_up() {
    // Arrange
    let (rows, imported, merged, rejected) =
        expected_counts(&warmline::bench::import::generate(2_000));

    // Act
    let bench = warmline::bench::import::run(2_000, None)
        .await
        .expect("the benchmark runs");

    // Assert
    assert_eq!(bench.rows, rows);
    assert_eq!(bench.report.rows, rows);
    assert_eq!(bench.report.imported, imported, "{}", bench.report);
    assert_eq!(bench.report.merged, merged);
    assert_eq!(bench.report.rejected.len(), rejected);
    assert!(
        rejected > 0 && merged > 0,
        "the generated file exercises both paths"
    );
    assert_eq!(imported + merged + rejected, rows);
}

storage_test!(the_benchmark_runs_on_this_backend, |t: TestDb| async move {
    let t = &t; // the whole TestDb, so its SQLite directory outlives the test
    // Arrange
    let (rows, imported, merged, rejected) =
        expected_counts(&warmline::bench::import::generate(1_200));

    // Act
    let bench = warmline::bench::import::run(1_200, Some(&t.url))
        .await
        .expect("the benchmark runs");

    // Assert
    assert_eq!(
        (
            bench.report.rows,
            bench.report.imported,
            bench.report.merged,
            bench.report.rejected.len()
        ),
        (rows, imported, merged, rejected)
    );
    let reopened = warmline::db::connect(&t.url, 1).await.unwrap();
    assert_eq!(
        contacts::Entity::find().count(&reopened).await.unwrap() as usize,
        imported
    );
});

storage_test!(
    an_external_id_held_by_another_contact_rejects_only_that_row,
    |t: TestDb| async move {
        // Arrange: ann holds external id crm-1.
        let db = &t.db;
        run(db, "email,external_id\nann@example.com,crm-1\n").await;

        // Act: bob claims crm-1 (in the database), cy and dee both claim
        // crm-2 (within the file), eve is fine.
        let report = run(
            db,
            "email,external_id\nbob@example.com,crm-1\ncy@example.com,crm-2\ndee@example.com,crm-2\neve@example.com,crm-3\n",
        )
        .await;

        // Assert: lines 2 and 4 refused by line; the rest imported.
        let lines: Vec<u64> = report.rejected.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![2, 4], "{report}");
        assert!(report.rejected[0].reason.contains("crm-1"), "{report}");
        assert_eq!(report.imported, 2, "{report}");
        assert_eq!(all_contacts(db).await.len(), 3);
    }
);
