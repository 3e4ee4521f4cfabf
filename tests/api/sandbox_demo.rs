//! The sandbox's demo workspace on a real database (SQLite, and PostgreSQL
//! when configured): what it seeds, that it seeds once and only into an
//! empty database, that it is the same every run, and that the first
//! trigger run after it drafts revivals for the cold contacts with consent
//! and for nobody who opted out or bounced.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
};

use chrono::{DateTime, Duration, TimeZone, Utc};
use chrono_tz::Tz;
use sea_orm::{DatabaseConnection, FromQueryResult, Statement};
use warmline::{
    consent::Source,
    contacts::{self, ContactInput},
    providers::{
        Registry,
        test_provider::{Behaviour, Core, TestProvider},
    },
    reports::stats,
    sandbox::demo::{self, Seeded},
    triggers,
};

use crate::{
    helpers::spawn_app_with_registry,
    storage_test,
    test_db::{Backend, TestDb},
};

const APPROVALS: &str = "C0APPROVALS";

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 26, 15, 0, 0).unwrap()
}

fn new_york() -> Tz {
    chrono_tz::America::New_York
}

async fn seed(db: &DatabaseConnection, now: DateTime<Utc>) -> Option<Seeded> {
    demo::seed_into(db, new_york(), now)
        .await
        .expect("seeding runs")
}

async fn rows<T: FromQueryResult>(db: &DatabaseConnection, sql: &str) -> Vec<T> {
    T::find_by_statement(Statement::from_string(db.get_database_backend(), sql))
        .all(db)
        .await
        .unwrap()
}

async fn count(db: &DatabaseConnection, table: &str) -> i64 {
    warmline::db::count(
        db,
        &format!("SELECT CAST(COUNT(*) AS BIGINT) AS n FROM {table}"),
        vec![],
    )
    .await
    .unwrap()
}

#[derive(Debug, Clone, PartialEq, FromQueryResult)]
struct ContactRow {
    id: i64,
    email: Option<String>,
    phone: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    tags: String,
    metadata: String,
    pipeline_stage: Option<String>,
    timezone: Option<String>,
    warmth: f64,
    warmth_reasons: String,
    warmth_updated_at: Option<DateTime<Utc>>,
    last_interaction_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
}

async fn contact_rows(db: &DatabaseConnection) -> Vec<ContactRow> {
    rows(
        db,
        "SELECT id, email, phone, first_name, last_name, tags, metadata, pipeline_stage, timezone, \
         warmth, warmth_reasons, warmth_updated_at, last_interaction_at, created_at \
         FROM contacts ORDER BY id",
    )
    .await
}

#[derive(Debug, Clone, PartialEq, FromQueryResult)]
struct InteractionRow {
    contact_id: i64,
    kind: String,
    direction: String,
    occurred_at: DateTime<Utc>,
    summary: Option<String>,
}

async fn interaction_rows(db: &DatabaseConnection) -> Vec<InteractionRow> {
    rows(
        db,
        "SELECT contact_id, kind, direction, occurred_at, summary FROM interactions ORDER BY id",
    )
    .await
}

#[derive(Debug, Clone, PartialEq, FromQueryResult)]
struct ConsentRow {
    contact_id: i64,
    channel: String,
    granted: bool,
    source: String,
    actor: Option<String>,
    consent_text: Option<String>,
    recorded_at: DateTime<Utc>,
}

async fn consent_rows(db: &DatabaseConnection) -> Vec<ConsentRow> {
    rows(
        db,
        "SELECT contact_id, channel, granted, source, actor, consent_text, recorded_at \
         FROM consents ORDER BY id",
    )
    .await
}

#[derive(Debug, Clone, PartialEq, FromQueryResult)]
struct SuppressionRow {
    contact_id: Option<i64>,
    channel: String,
    address: String,
    reason: String,
}

async fn suppression_rows(db: &DatabaseConnection) -> Vec<SuppressionRow> {
    rows(
        db,
        "SELECT contact_id, channel, address, reason FROM suppressions ORDER BY id",
    )
    .await
}

/// Each contact's current email consent: the newest ledger row, as the
/// dispatcher reads it. Absent: none recorded.
async fn email_consent(db: &DatabaseConnection) -> BTreeMap<i64, bool> {
    let mut out = BTreeMap::new();
    for c in contact_rows(db).await {
        if let Some(e) = warmline::consent::current(db, c.id)
            .await
            .unwrap()
            .get("email")
        {
            out.insert(c.id, e.granted);
        }
    }
    out
}

fn on_reserved_domain(email: &str) -> bool {
    let domain = email.rsplit_once('@').map(|(_, d)| d).unwrap_or_default();
    ["example.com", "example.org", "example.net"]
        .iter()
        .any(|r| domain == *r || domain.ends_with(&format!(".{r}")))
}

storage_test!(
    seeding_an_empty_database_gives_fifty_contacts_in_every_band,
    |t: TestDb| async move {
        // Arrange
        let db = &t.db;

        // Act
        let seeded = seed(db, t0()).await.expect("an empty database is seeded");

        // Assert: 50 people, unreachable by construction, scored as of now.
        let contacts = contact_rows(db).await;
        assert_eq!((seeded.contacts, contacts.len()), (50, 50));
        for c in &contacts {
            let email = c.email.as_deref().unwrap();
            assert!(on_reserved_domain(email), "{email}");
            assert!(c.first_name.is_some() && c.last_name.is_some());
            assert!(c.metadata.contains("\"company\""), "{}", c.metadata);
            assert!(c.tags != "[]", "{email} has a relationship tag");
            assert_eq!(c.warmth_updated_at, Some(t0()), "{email} is scored");
            assert!(c.created_at < t0());
        }
        let phones = contacts.iter().filter(|c| c.phone.is_some()).count();
        assert!((20..=30).contains(&phones), "about half: {phones}");
        let timezones: BTreeSet<_> = contacts.iter().filter_map(|c| c.timezone.clone()).collect();
        assert!(timezones.len() >= 15, "{timezones:?}");

        // Every band, as the Home tab, the digest and the triggers read them.
        let band = |f: &dyn Fn(&ContactRow) -> bool| contacts.iter().filter(|c| f(c)).count();
        let hot = band(&|c| c.warmth > 50.0);
        let warm = band(&|c| (35.0..=50.0).contains(&c.warmth));
        let cooling = band(&|c| (25.0..35.0).contains(&c.warmth));
        let cold = band(&|c| c.warmth < 25.0 && c.last_interaction_at.is_some());
        let new = band(&|c| c.last_interaction_at.is_none());
        assert_eq!(
            (hot, warm, cooling, cold, new),
            (
                seeded.hot,
                seeded.warm,
                seeded.cooling,
                seeded.cold,
                seeded.new
            )
        );
        assert!(hot >= 5 && warm >= 5 && cooling >= 5 && cold >= 10 && new >= 1);
        for c in &contacts {
            let reasons: Vec<String> = serde_json::from_str(&c.warmth_reasons).unwrap();
            assert!(!reasons.is_empty(), "{:?}: a score says why", c.email);
        }

        // Eighteen months of meetings, calls, replies and unanswered outreach.
        let interactions = interaction_rows(db).await;
        assert_eq!(interactions.len(), seeded.interactions);
        let kinds: BTreeSet<(String, String)> = interactions
            .iter()
            .map(|i| (i.kind.clone(), i.direction.clone()))
            .collect();
        for kind in [
            ("meeting", "outbound"),
            ("meeting", "inbound"),
            ("call", "outbound"),
            ("email", "inbound"),
            ("email", "outbound"),
            ("note", "outbound"),
        ] {
            assert!(kinds.contains(&(kind.0.into(), kind.1.into())), "{kind:?}");
        }
        let oldest = interactions.iter().map(|i| i.occurred_at).min().unwrap();
        let span = (t0() - oldest).num_days();
        assert!((450..=550).contains(&span), "about 18 months: {span} days");
        assert!(interactions.iter().all(|i| i.occurred_at < t0()));
        assert!(interactions.iter().all(|i| i.summary.is_some()));

        // Consent with its proof, from several sources; some revoked.
        let consents = consent_rows(db).await;
        assert_eq!(consents.len(), seeded.consent_records);
        let grant_kinds: BTreeSet<&str> = consents
            .iter()
            .filter(|c| c.granted)
            .map(|c| Source::parse(&c.source).expect("a known source").as_str())
            .collect();
        assert!(grant_kinds.len() >= 3, "{grant_kinds:?}");
        for c in &consents {
            assert!(c.actor.is_some(), "{c:?} says who recorded it");
            assert!(c.recorded_at < t0());
            let import = Source::parse(&c.source) == Some(Source::Import);
            assert!(!c.granted || import || c.consent_text.is_some(), "{c:?}");
        }
        let revoke_kinds: BTreeSet<&str> = consents
            .iter()
            .filter(|c| !c.granted)
            .map(|c| Source::parse(&c.source).unwrap().as_str())
            .collect();
        assert!(revoke_kinds.len() >= 3, "{revoke_kinds:?}");
        let mut opted_out = BTreeSet::new();
        for c in &contacts {
            let current = warmline::consent::current(db, c.id).await.unwrap();
            if current.values().any(|s| !s.granted) {
                opted_out.insert(c.id);
            }
        }
        assert!(opted_out.len() >= 3);
        assert_eq!(opted_out.len(), seeded.opted_out);

        // Exactly one hard bounce, on an address whose consent still stands.
        let suppressions = suppression_rows(db).await;
        assert_eq!(suppressions.len(), 1);
        assert_eq!(seeded.bounced, 1);
        let bounce = &suppressions[0];
        assert_eq!(
            (bounce.channel.as_str(), bounce.reason.as_str()),
            ("email", "hard_bounce")
        );
        let bounced = bounce.contact_id.expect("linked to the contact");
        assert_eq!(email_consent(db).await.get(&bounced), Some(&true));
        assert!(on_reserved_domain(&bounce.address));
    }
);

storage_test!(seeding_again_seeds_nothing, |t: TestDb| async move {
    // Arrange
    let db = &t.db;
    seed(db, t0()).await.expect("the first call seeds");
    let before = (
        count(db, "contacts").await,
        count(db, "interactions").await,
        count(db, "consents").await,
        count(db, "suppressions").await,
    );

    // Act
    let again = seed(db, t0() + Duration::hours(1)).await;

    // Assert
    assert_eq!(again, None);
    let after = (
        count(db, "contacts").await,
        count(db, "interactions").await,
        count(db, "consents").await,
        count(db, "suppressions").await,
    );
    assert_eq!(after, before);
});

storage_test!(
    seeding_refuses_a_database_that_has_contacts,
    |t: TestDb| async move {
        // Arrange: one real contact.
        let db = &t.db;
        let input: ContactInput =
            serde_json::from_value(serde_json::json!({"email": "ada@example.com"})).unwrap();
        contacts::upsert(db, &input, None, "test").await.unwrap();

        // Act
        let seeded = seed(db, t0()).await;

        // Assert: nothing mixed in.
        assert_eq!(seeded, None);
        assert_eq!(count(db, "contacts").await, 1);
        assert_eq!(count(db, "interactions").await, 0);
        assert_eq!(count(db, "consents").await, 0);
        assert_eq!(count(db, "suppressions").await, 0);
    }
);

storage_test!(
    seeding_refuses_a_database_where_someone_was_forgotten,
    |t: TestDb| async move {
        // Arrange: a real contact, erased; only their tombstone is left.
        let db = &t.db;
        let input: ContactInput =
            serde_json::from_value(serde_json::json!({"email": "ada@example.com"})).unwrap();
        let id = contacts::upsert(db, &input, None, "test")
            .await
            .unwrap()
            .contact
            .id;
        assert!(contacts::forget(db, id, "test").await.unwrap());
        assert_eq!(count(db, "contacts").await, 0);

        // Act
        let seeded = seed(db, t0()).await;

        // Assert
        assert_eq!(seeded, None);
        assert_eq!(count(db, "contacts").await, 0);
    }
);

storage_test!(
    the_first_digest_and_the_home_tab_have_something_to_show,
    |t: TestDb| async move {
        // Arrange
        let db = &t.db;
        let seeded = seed(db, t0()).await.unwrap();
        let digest_at = t0() + Duration::minutes(1);
        let yesterday = digest_at
            .with_timezone(&new_york())
            .date_naive()
            .pred_opt()
            .unwrap();
        let (from, to) = stats::local_day_bounds(new_york(), yesterday);

        // Act: what the digest and the Home tab read.
        let opt_outs = stats::opt_outs(db, from, to).await.unwrap();
        let gone_cold = stats::gone_cold(db, digest_at - Duration::hours(24), digest_at, 10)
            .await
            .unwrap();
        let going_cold = stats::going_cold(db, 10).await.unwrap();

        // Assert
        assert_eq!(opt_outs.total, 2, "{opt_outs:?}");
        assert_eq!(
            opt_outs.unsubscribes, 2,
            "the recipients' own: {opt_outs:?}"
        );
        assert_eq!(gone_cold.total as usize, seeded.cold);
        assert_eq!(going_cold.total as usize, seeded.cooling);
        assert!(going_cold.total > 0);
    }
);

storage_test!(two_seeders_at_once_seed_once, |t: TestDb| async move {
    // Arrange: two processes starting on one new database.
    let (a, b) = (t.db.clone(), t.db.clone());

    // Act
    let (first, second) = tokio::join!(seed(&a, t0()), seed(&b, t0()));

    // Assert
    assert!(
        first.is_some() != second.is_some(),
        "{first:?} / {second:?}"
    );
    assert_eq!(count(&t.db, "contacts").await, 50);
});

#[tokio::test]
async fn the_demo_is_the_same_every_run_and_scores_the_same_at_any_time() {
    // Arrange: three fresh databases.
    let a = TestDb::new(Backend::Sqlite).await.unwrap();
    let b = TestDb::new(Backend::Sqlite).await.unwrap();
    let later = TestDb::new(Backend::Sqlite).await.unwrap();

    // Act
    let seeded_a = seed(&a.db, t0()).await.unwrap();
    let seeded_b = seed(&b.db, t0()).await.unwrap();
    let seeded_later = seed(&later.db, t0() + Duration::days(100)).await.unwrap();

    // Assert: the same `now` gives the same rows…
    assert_eq!(seeded_a, seeded_b);
    assert_eq!(contact_rows(&a.db).await, contact_rows(&b.db).await);
    assert_eq!(interaction_rows(&a.db).await, interaction_rows(&b.db).await);
    assert_eq!(consent_rows(&a.db).await, consent_rows(&b.db).await);
    assert_eq!(suppression_rows(&a.db).await, suppression_rows(&b.db).await);
    // …and another `now` the same people with the same scores.
    assert_eq!(seeded_a, seeded_later);
    let scores = |rows: Vec<ContactRow>| -> Vec<(Option<String>, f64)> {
        rows.into_iter().map(|c| (c.email, c.warmth)).collect()
    };
    assert_eq!(
        scores(contact_rows(&a.db).await),
        scores(contact_rows(&later.db).await)
    );
}

#[derive(Debug, FromQueryResult)]
struct TriggerMessage {
    contact_id: i64,
    source: String,
    state: String,
    template: Option<String>,
}

storage_test!(
    the_first_trigger_run_after_seeding_drafts_revivals_for_cold_contacts_with_consent,
    |db: TestDb| async move {
        // Arrange: the app as the sandbox runs it — an email provider that
        // only captures, a sender, an approvals channel — with the trigger
        // loop off so the test runs the first tick itself.
        let core = Core::new(Behaviour::default());
        let mut registry = Registry::new();
        registry.register(Arc::new(TestProvider::in_process(core.clone())));
        let t = spawn_app_with_registry(
            db,
            |s| {
                s.triggers.enabled = false;
                s.slack.approvals_channel = Some(APPROVALS.into());
                s.slack.approvers = vec!["U0APPROVER".into()];
                s.email.from = Some("Grace <grace@example.com>".into());
            },
            Some(registry),
        )
        .await;
        let db = t.app.db.clone();
        let now = Utc::now();
        demo::seed(&t.app, now)
            .await
            .unwrap()
            .expect("an empty database is seeded");

        // Who the cold trigger is for, read from the data, not the demo.
        let consent = email_consent(&db).await;
        let suppressed: BTreeSet<i64> = suppression_rows(&db)
            .await
            .into_iter()
            .filter(|s| s.channel == "email")
            .filter_map(|s| s.contact_id)
            .collect();
        let cold: BTreeSet<i64> = contact_rows(&db)
            .await
            .into_iter()
            .filter(|c| c.warmth < 25.0)
            .filter(|c| {
                c.last_interaction_at
                    .is_some_and(|l| l <= now - Duration::days(7))
            })
            .map(|c| c.id)
            .collect();
        let revoked: BTreeSet<i64> = consent
            .iter()
            .filter(|(_, granted)| !**granted)
            .map(|(id, _)| *id)
            .collect();
        let expected: BTreeSet<i64> = cold
            .iter()
            .copied()
            .filter(|id| consent.get(id) == Some(&true) && !suppressed.contains(id))
            .collect();
        // The demo must give the trigger someone to refuse, or this proves
        // nothing.
        assert!(cold.intersection(&revoked).count() >= 2, "{revoked:?}");
        assert_eq!(cold.intersection(&suppressed).count(), 1);
        assert!(expected.len() >= 10, "{expected:?}");

        // Act
        let stats = triggers::tick(&t.app, now).await.expect("a tick runs");
        t.drain_background().await;

        // Assert: one revival per eligible cold contact, each a draft that
        // waits for a person.
        assert_eq!(stats.started_cold as usize, expected.len(), "{stats:?}");
        assert_eq!(stats.started_onboarding, 3, "the week's sign-ups");
        assert!(stats.started_monthly >= 1, "{stats:?}");
        assert_eq!(stats.errors, 0, "{stats:?}");
        assert_eq!(stats.queued, 0, "every first step needs a person");
        assert_eq!(stats.awaiting_approval, stats.started(), "{stats:?}");
        let messages: Vec<TriggerMessage> = rows(
            &db,
            "SELECT contact_id, source, state, template FROM messages \
             WHERE source LIKE 'trigger:%' ORDER BY contact_id",
        )
        .await;
        let revived: BTreeSet<i64> = messages
            .iter()
            .filter(|m| m.source.starts_with("trigger:cold:"))
            .inspect(|m| {
                assert_eq!(m.state, "awaiting_approval");
                assert_eq!(m.template.as_deref(), Some("revival_value"));
            })
            .map(|m| m.contact_id)
            .collect();
        assert_eq!(revived, expected);
        for m in &messages {
            assert!(!revoked.contains(&m.contact_id), "opted out: {m:?}");
            assert!(!suppressed.contains(&m.contact_id), "bounced: {m:?}");
        }
        let requests = t
            .fake
            .calls_to("chat.postMessage")
            .into_iter()
            .filter(|c| c.body["channel"] == APPROVALS)
            .count();
        assert_eq!(requests as u64, stats.awaiting_approval);
        t.shutdown().await.unwrap();
    }
);
