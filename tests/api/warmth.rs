//! Warmth on a real database: recording interactions updates the score and
//! its reasons in the same transaction; the decay pass lowers old scores,
//! reports threshold crossings once, and stores exactly what a per-contact
//! refresh stores.

use chrono::{DateTime, Duration, TimeZone, Utc};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, FromQueryResult, Statement, TransactionTrait, Value,
};
use warmline::{
    interactions::{Direction, Kind, NewInteraction, record},
    warmth::{Crossing, decay::recompute_all_with, model::Params, recompute_all, refresh_contact},
};

use crate::{storage_test, test_db::TestDb};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap()
}

async fn contact(db: &DatabaseConnection, email: &str) -> i64 {
    #[derive(FromQueryResult)]
    struct Id {
        id: i64,
    }
    Id::find_by_statement(Statement::from_sql_and_values(
        db.get_database_backend(),
        "INSERT INTO contacts (email, created_at, updated_at) VALUES ($1, $2, $2) RETURNING id",
        [Value::from(email), Value::from(t0())],
    ))
    .one(db)
    .await
    .unwrap()
    .unwrap()
    .id
}

fn interaction(
    contact_id: i64,
    kind: Kind,
    direction: Direction,
    at: DateTime<Utc>,
) -> NewInteraction {
    NewInteraction {
        contact_id,
        kind,
        direction,
        occurred_at: at,
        summary: None,
        source: "test".into(),
        channel: None,
    }
}

/// Records through the one public path, in a transaction, and commits.
async fn log(
    db: &DatabaseConnection,
    c: i64,
    kind: Kind,
    direction: Direction,
    days_ago: i64,
    now: DateTime<Utc>,
) -> warmline::warmth::Score {
    let txn = db.begin().await.unwrap();
    let (_, score) = record(
        &txn,
        &interaction(c, kind, direction, now - Duration::days(days_ago)),
        now,
    )
    .await
    .unwrap();
    txn.commit().await.unwrap();
    score
}

#[derive(Debug, PartialEq, FromQueryResult)]
struct Stored {
    warmth: f64,
    warmth_reasons: String,
    warmth_updated_at: Option<DateTime<Utc>>,
}

async fn stored(db: &DatabaseConnection, c: i64) -> Stored {
    Stored::find_by_statement(Statement::from_sql_and_values(
        db.get_database_backend(),
        "SELECT warmth, warmth_reasons, warmth_updated_at FROM contacts WHERE id = $1",
        [Value::from(c)],
    ))
    .one(db)
    .await
    .unwrap()
    .unwrap()
}

fn reasons(s: &Stored) -> Vec<String> {
    serde_json::from_str(&s.warmth_reasons).unwrap()
}

storage_test!(
    recording_interactions_updates_warmth_and_reasons,
    |t: TestDb| async move {
        // Arrange
        let db = &t.db;
        let c = contact(db, "ada@example.com").await;

        // Act: one unanswered email, then a reply, then a meeting.
        let cold = log(db, c, Kind::Email, Direction::Outbound, 3, t0()).await;
        let replied = log(db, c, Kind::Email, Direction::Inbound, 2, t0()).await;
        let met = log(db, c, Kind::Meeting, Direction::Outbound, 1, t0()).await;

        // Assert: each write raised the score, and what was returned is stored.
        assert!(cold.value > 0.0 && cold.value < 25.0, "{cold:?}");
        assert_eq!(cold.reasons, vec!["Only one-way outreach since November"]);
        assert!(replied.value > cold.value, "{replied:?}");
        assert!(met.value > 50.0, "{met:?}");
        assert_eq!(met.reasons, vec!["Met yesterday"]);
        let s = stored(db, c).await;
        assert_eq!(s.warmth, met.value);
        assert_eq!(reasons(&s), met.reasons);
        assert_eq!(s.warmth_updated_at, Some(t0()));
    }
);

storage_test!(
    a_rolled_back_interaction_leaves_warmth_unchanged,
    |t: TestDb| async move {
        // Arrange
        let db = &t.db;
        let c = contact(db, "bo@example.com").await;
        let before = stored(db, c).await;

        // Act
        let txn = db.begin().await.unwrap();
        record(
            &txn,
            &interaction(c, Kind::Meeting, Direction::Inbound, t0()),
            t0(),
        )
        .await
        .unwrap();
        txn.rollback().await.unwrap();

        // Assert
        assert_eq!(stored(db, c).await, before);
    }
);

storage_test!(
    the_decay_pass_lowers_old_scores_and_reports_crossings,
    |t: TestDb| async move {
        // Arrange: an active contact (meetings and replies this month), a
        // lukewarm one, and one never touched.
        let db = &t.db;
        let active = contact(db, "active@example.com").await;
        for (kind, dir, days) in [
            (Kind::Meeting, Direction::Outbound, 2),
            (Kind::Email, Direction::Inbound, 4),
            (Kind::Call, Direction::Inbound, 9),
        ] {
            log(db, active, kind, dir, days, t0()).await;
        }
        let lukewarm = contact(db, "luke@example.com").await;
        let luke = log(db, lukewarm, Kind::Email, Direction::Inbound, 0, t0()).await;
        let untouched = contact(db, "new@example.com").await;
        let high = stored(db, active).await.warmth;
        assert!(high > 50.0 && luke.value >= 25.0, "{high} {luke:?}");
        let p = Params::default();

        // Act: 90 days later, nothing new.
        let later = t0() + Duration::days(90);
        let stats = recompute_all_with(db, later, &p, 2).await.unwrap();

        // Assert: scores fell, both warm contacts went cold, the untouched one
        // got its first score (0) and no crossing.
        assert_eq!(stats.contacts, 3);
        let now_active = stored(db, active).await;
        let now_luke = stored(db, lukewarm).await;
        assert!(now_active.warmth < 25.0, "{now_active:?}");
        assert!(now_luke.warmth < luke.value);
        assert_eq!(now_active.warmth_updated_at, Some(later));
        assert_eq!(reasons(&now_active)[0], "No contact for 92 days");
        let mut crossed: Vec<i64> = stats.crossings.iter().map(|c| c.contact_id).collect();
        crossed.sort();
        assert_eq!(crossed, vec![active, lukewarm]);
        assert!(stats.crossings.iter().all(Crossing::went_cold));
        let first = stored(db, untouched).await;
        assert_eq!(first.warmth, 0.0);
        assert_eq!(reasons(&first), vec!["No interactions recorded yet"]);

        // Act again at the same time: nothing changes, nothing crosses twice.
        let again = recompute_all_with(db, later, &p, 2).await.unwrap();

        // Assert
        assert_eq!(again.updated, 0);
        assert!(again.crossings.is_empty());
    }
);

storage_test!(
    a_reply_after_the_pass_makes_the_contact_active_again,
    |t: TestDb| async move {
        // Arrange: a contact gone cold by the decay pass.
        let db = &t.db;
        let c = contact(db, "cy@example.com").await;
        log(db, c, Kind::Meeting, Direction::Inbound, 0, t0()).await;
        let later = t0() + Duration::days(90);
        recompute_all(db, later).await.unwrap();
        let cold = stored(db, c).await.warmth;

        // Act: a meeting and two replies, recorded at the later time.
        log(db, c, Kind::Meeting, Direction::Inbound, 0, later).await;
        log(db, c, Kind::Email, Direction::Inbound, 0, later).await;
        let warm = log(db, c, Kind::Email, Direction::Inbound, 0, later).await;

        // Assert
        assert!(cold < 25.0 && warm.value > 50.0, "{cold} -> {warm:?}");
        assert_eq!(
            warm.reasons,
            vec!["Met today", "Replied 2 times in the last 30 days"]
        );
    }
);

storage_test!(
    recompute_all_equals_per_contact_refresh,
    |t: TestDb| async move {
        // Arrange: varied histories, inserted directly (as an import would),
        // with no score computed yet.
        let db = &t.db;
        let kinds = Kind::ALL;
        let mut ids = Vec::new();
        for n in 0..25_i64 {
            let c = contact(db, &format!("c{n}@example.com")).await;
            ids.push(c);
            for j in 0..(n % 7) {
                let at = t0() - Duration::days((n * 13 + j * 29) % 300) - Duration::minutes(n * j);
                let dir = if (n + j) % 3 == 0 {
                    "inbound"
                } else {
                    "outbound"
                };
                let kind = kinds[((n + j) % 5) as usize].as_str();
                db.execute_raw(Statement::from_sql_and_values(
                db.get_database_backend(),
                "INSERT INTO interactions (contact_id, kind, direction, occurred_at, source, created_at) \
                 VALUES ($1, $2, $3, $4, 'test', $4)",
                [Value::from(c), Value::from(kind), Value::from(dir), Value::from(at)],
            ))
            .await
            .unwrap();
                db.execute_raw(Statement::from_sql_and_values(
                    db.get_database_backend(),
                    "UPDATE contacts SET last_interaction_at = $1 WHERE id = $2 \
                 AND (last_interaction_at IS NULL OR last_interaction_at < $1)",
                    [Value::from(at), Value::from(c)],
                ))
                .await
                .unwrap();
            }
        }
        let now = t0() + Duration::hours(5);

        // Act: the pass, then each contact refreshed on its own at the same time.
        let stats = recompute_all_with(db, now, &Params::default(), 4)
            .await
            .unwrap();
        let mut by_pass = Vec::new();
        for c in &ids {
            by_pass.push(stored(db, *c).await);
        }
        let mut by_refresh = Vec::new();
        for c in &ids {
            let score = refresh_contact(db, *c, now).await.unwrap();
            let s = stored(db, *c).await;
            assert_eq!(s.warmth, score.value);
            by_refresh.push(s);
        }

        // Assert
        assert_eq!(stats.contacts, 25);
        assert_eq!(stats.updated, 25, "no score existed before");
        assert_eq!(by_pass, by_refresh);
        assert!(by_pass.iter().any(|s| s.warmth > 0.0));
        let again = recompute_all_with(db, now, &Params::default(), 100)
            .await
            .unwrap();
        assert_eq!(
            again.updated, 0,
            "refresh and pass agree, so nothing to write"
        );
    }
);

storage_test!(
    refreshing_an_unknown_contact_fails,
    |t: TestDb| async move {
        let err = refresh_contact(&t.db, 424_242, t0()).await.unwrap_err();
        assert!(err.to_string().contains("424242"), "{err}");
    }
);
