//! The App Home tab's per-user sections, the shared report queries, and the
//! daily digest: due at a local time, posted once per local day.

use chrono::{DateTime, Duration, TimeZone, Utc};
use sea_orm::{ConnectionTrait, Statement, Value};
use warmline::domain::CampaignState;
use warmline::reports::{
    digest::{self, Tick},
    stats,
};

use crate::{
    helpers::{TestApp, USER, app_home_opened, spawn_app_on, spawn_app_with},
    storage_test,
    test_db::TestDb,
};

const OTHER: &str = "U0OTHER01";
const DIGEST: &str = "C0DIGEST1";

async fn exec(app: &TestApp, sql: &str, values: Vec<Value>) {
    let db = &app.app.db;
    db.execute_raw(Statement::from_sql_and_values(
        db.get_database_backend(),
        sql,
        values,
    ))
    .await
    .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
}

async fn contact(
    app: &TestApp,
    id: i64,
    first: Option<&str>,
    email: &str,
    warmth: f64,
    at: DateTime<Utc>,
) {
    exec(
        app,
        "INSERT INTO contacts (id, first_name, email, warmth, last_interaction_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $5, $5)",
        vec![
            Value::from(id),
            Value::from(first.map(str::to_string)),
            Value::from(email),
            Value::from(warmth),
            Value::from(at),
        ],
    )
    .await;
}

async fn campaign(app: &TestApp, id: i64, name: &str, state: &str, by: &str, at: DateTime<Utc>) {
    exec(
        app,
        "INSERT INTO campaigns (id, name, channel, state, created_by, created_at, updated_at) \
         VALUES ($1, $2, 'email', $3, $4, $5, $5)",
        vec![
            Value::from(id),
            Value::from(name),
            Value::from(state),
            Value::from(by),
            Value::from(at),
        ],
    )
    .await;
}

async fn approval(
    app: &TestApp,
    id: i64,
    campaign_id: i64,
    state: &str,
    by: &str,
    created: DateTime<Utc>,
    decided: Option<DateTime<Utc>>,
) {
    exec(
        app,
        "INSERT INTO approvals (id, campaign_id, state, requested_by, content_hash, decided_by, decided_at, created_at) \
         VALUES ($1, $2, $3, $4, 'h', $5, $6, $7)",
        vec![
            Value::from(id),
            Value::from(campaign_id),
            Value::from(state),
            Value::from(by),
            Value::from(decided.map(|_| "U0APPROVE1".to_string())),
            Value::from(decided),
            Value::from(created),
        ],
    )
    .await;
}

/// A message in the ledger; `sent_at` set when it reached a provider.
async fn message(
    app: &TestApp,
    id: &str,
    campaign_id: Option<i64>,
    state: &str,
    address: &str,
    sent_at: Option<DateTime<Utc>>,
    updated: DateTime<Utc>,
) {
    exec(
        app,
        "INSERT INTO messages (id, campaign_id, channel, kind, state, provider, address, payload, created_at, updated_at, sent_at) \
         VALUES ($1, $2, 'email', 'marketing', $3, 'smtp', $4, '{}', $5, $5, $6)",
        vec![
            Value::from(id),
            Value::from(campaign_id),
            Value::from(state),
            Value::from(address),
            Value::from(updated),
            Value::from(sent_at),
        ],
    )
    .await;
}

async fn revoke(app: &TestApp, contact_id: i64, source: &str, at: DateTime<Utc>) {
    exec(
        app,
        "INSERT INTO consents (contact_id, channel, granted, source, recorded_at) \
         VALUES ($1, 'email', $2, $3, $4)",
        vec![
            Value::from(contact_id),
            Value::from(false),
            Value::from(source),
            Value::from(at),
        ],
    )
    .await;
}

/// The scene: contacts at several warmths, one campaign per state, pending
/// and decided approvals, yesterday's sends with outcomes, two ambiguous
/// messages, revocations from several sources. `now` is 2026-11-26 15:00 UTC
/// (10:00 in New York); "yesterday" there is 2026-11-25 05:00–2026-11-26 05:00 UTC.
async fn seed(app: &TestApp) -> DateTime<Utc> {
    let now = utc(2026, 11, 26, 15, 0);
    let yesterday = utc(2026, 11, 25, 18, 0);
    contact(
        app,
        1,
        Some("Grace"),
        "grace@example.com",
        30.0,
        now - Duration::days(20),
    )
    .await;
    contact(
        app,
        2,
        None,
        "ada@example.com",
        20.0,
        now - Duration::days(40),
    )
    .await;
    contact(
        app,
        3,
        Some("Alan"),
        "alan@example.com",
        80.0,
        now - Duration::days(1),
    )
    .await;
    contact(
        app,
        4,
        Some("Linus"),
        "linus@example.com",
        27.0,
        now - Duration::days(25),
    )
    .await;

    campaign(
        app,
        10,
        "Q4 investor update",
        "awaiting_approval",
        OTHER,
        now - Duration::hours(3),
    )
    .await;
    campaign(
        app,
        11,
        "My own ask",
        "awaiting_approval",
        USER,
        now - Duration::hours(2),
    )
    .await;
    campaign(
        app,
        12,
        "December check-in",
        "draft",
        USER,
        now - Duration::hours(1),
    )
    .await;
    campaign(
        app,
        13,
        "Partner launch",
        "scheduled",
        USER,
        now - Duration::hours(1),
    )
    .await;
    campaign(
        app,
        14,
        "Customer survey",
        "running",
        OTHER,
        now - Duration::days(1),
    )
    .await;
    campaign(app, 15, "Someone else's draft", "draft", OTHER, now).await;

    // Saved drafts (campaign_drafts): one listed; one only previewed and
    // one already submitted (listed through its campaign) are not.
    for (id, name, spec, submitted) in [
        (1, "January newsletter", Some("{}"), None),
        (2, "Only previewed", None, None),
        (3, "Already submitted", Some("{}"), Some(now)),
    ] {
        exec(
            app,
            "INSERT INTO campaign_drafts (id, created_by, name, spec, submitted_at, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $6)",
            vec![
                Value::from(id),
                Value::from(USER),
                Value::from(name),
                Value::from(spec.map(str::to_string)),
                Value::from(submitted),
                Value::from(now),
            ],
        )
        .await;
    }

    approval(app, 1, 10, "pending", OTHER, now - Duration::hours(3), None).await;
    approval(app, 2, 11, "pending", USER, now - Duration::hours(2), None).await;
    // Decided in 1h, 2h and 4h: median 2h. The void one does not count.
    for (id, mins) in [(3, 60), (4, 120), (5, 240)] {
        let created = now - Duration::days(2);
        approval(
            app,
            id,
            14,
            "approved",
            OTHER,
            created,
            Some(created + Duration::minutes(mins)),
        )
        .await;
    }
    approval(
        app,
        6,
        14,
        "void",
        OTHER,
        now - Duration::days(3),
        Some(now),
    )
    .await;

    // Yesterday: 10 sent (6 delivered, 1 complained, 2 bounced, 1 sent);
    // one sent the day before yesterday does not count.
    let states = [
        "delivered",
        "delivered",
        "delivered",
        "delivered",
        "delivered",
        "delivered",
        "complained",
        "bounced",
        "bounced",
        "sent",
    ];
    for (i, state) in states.iter().enumerate() {
        message(
            app,
            &format!("m{i}"),
            Some(14),
            state,
            "x@example.com",
            Some(yesterday),
            yesterday,
        )
        .await;
    }
    message(
        app,
        "old",
        Some(14),
        "delivered",
        "x@example.com",
        Some(now - Duration::days(3)),
        now,
    )
    .await;
    message(app, "q1", Some(14), "queued", "x@example.com", None, now).await;
    message(
        app,
        "amb-new",
        None,
        "ambiguous",
        "zoe@example.com",
        None,
        now - Duration::hours(1),
    )
    .await;
    message(
        app,
        "amb-old",
        None,
        "ambiguous",
        "yan@example.com",
        None,
        now - Duration::hours(5),
    )
    .await;

    revoke(app, 1, "one_click_unsubscribe", yesterday).await;
    revoke(app, 2, "slack_user", yesterday).await;
    revoke(app, 3, "reply_keyword", now - Duration::days(3)).await;
    now
}

storage_test!(
    the_report_queries_read_the_seeded_scene,
    |db: TestDb| async move {
        // Arrange
        let app = spawn_app_on(db, |_| {}).await;
        let now = seed(&app).await;
        let conn = &app.app.db;
        let (from, to) = stats::local_day_bounds(
            chrono_tz::America::New_York,
            chrono::NaiveDate::from_ymd_opt(2026, 11, 25).unwrap(),
        );

        // Act
        let all = stats::pending_approvals(conn, now, None, true, 10)
            .await
            .unwrap();
        let for_user = stats::pending_approvals(conn, now, Some(USER), false, 10)
            .await
            .unwrap();
        let mine = stats::campaigns_by_requester(
            conn,
            USER,
            &[CampaignState::Draft, CampaignState::Scheduled],
            10,
        )
        .await
        .unwrap();
        let running = stats::running_campaigns(conn, 10).await.unwrap();
        let going = stats::going_cold(conn, 1).await.unwrap();
        let rates = stats::rates(conn, from, to).await.unwrap();
        let ambiguous = stats::ambiguous(conn, now, 10).await.unwrap();
        let turnaround = stats::median_turnaround(conn, now - Duration::days(30), now)
            .await
            .unwrap();
        stats::refresh_cold_marks(conn, now).await.unwrap();
        let gone = stats::gone_cold(
            conn,
            now - Duration::hours(24),
            now + Duration::seconds(1),
            10,
        )
        .await
        .unwrap();

        // Assert
        assert_eq!(all.total, 2);
        assert_eq!(all.items[0].name, "Q4 investor update", "oldest first");
        assert_eq!(all.items[0].age, "3h 0m");
        assert_eq!(for_user.total, 1, "not the user's own request");
        assert_eq!(for_user.items[0].requester, format!("<@{OTHER}>"));
        let mut names: Vec<_> = mine.items.iter().map(|c| c.name.as_str()).collect();
        names.sort();
        assert_eq!(names, ["December check-in", "Partner launch"]);
        assert_eq!(running.total, 1);
        assert_eq!((running.items[0].total, running.items[0].done), (12, 11));
        assert_eq!((going.total, going.more), (2, 1));
        assert_eq!(going.items[0].name, "Linus", "coldest first");
        assert_eq!(rates.sent, 10);
        assert_eq!(
            (rates.delivered, rates.bounced, rates.complained),
            (7, 2, 1)
        );
        assert_eq!(rates.delivery.text, "70.00%");
        assert_eq!(rates.complaint.ok, Some(false));
        assert_eq!((rates.opt_outs.total, rates.opt_outs.unsubscribes), (2, 1));
        assert_eq!(rates.unsubscribe.text, "10.00%");
        assert_eq!(ambiguous.total, 2);
        assert_eq!(ambiguous.items[0].id, "amb-old", "oldest first");
        assert_eq!(ambiguous.items[0].recipient, "y***@example.com");
        assert_eq!(turnaround, Some(Duration::hours(2)));
        assert_eq!(gone.total, 1);
        assert_eq!(
            gone.items[0].name, "a***@example.com",
            "no name: masked address"
        );
    }
);

fn approver(s: &mut warmline::settings::Settings) {
    s.slack.approvers = vec![USER.to_string()];
}

#[tokio::test]
async fn an_approver_sees_the_approvals_waiting_for_them_on_the_home_tab() {
    // Arrange
    let app = spawn_app_with(approver).await;
    seed(&app).await;

    // Act
    app.post_event(&app_home_opened("Ev0HOMEAP1")).await;

    // Assert
    let calls = app.fake.wait_for_calls("views.publish", 1).await;
    assert_eq!(calls[0].body["user_id"], USER);
    let view = calls[0].body["view"].to_string();
    for expected in [
        "Waiting for your approval",
        "Q4 investor update",
        "Your drafts and scheduled campaigns",
        "December check-in",
        "Partner launch",
        "January newsletter",
        "Running campaigns",
        "Customer survey",
        "Contacts going cold",
        "Linus",
        "Last 7 days",
        "Spam complaints",
        "target < 0.3%",
        "target < 0.5%",
        "Setup status",
        "home_refresh",
    ] {
        assert!(view.contains(expected), "{expected} missing from {view}");
    }
    assert!(
        !view.contains(&format!("requested by <@{USER}>")),
        "not their own request: {view}"
    );
    assert!(
        view.contains("My own ask"),
        "but it is among their campaigns"
    );
    assert!(!view.contains("Someone else's draft"), "{view}");
    assert!(!view.contains("Only previewed"), "{view}");
    assert!(!view.contains("Already submitted"), "{view}");
    assert!(!view.contains("grace@example.com"), "addresses are masked");
    let blocks = calls[0].body["view"]["blocks"].as_array().unwrap().len();
    assert!(blocks <= 100, "{blocks} blocks");
}

#[tokio::test]
async fn a_non_approver_does_not_see_pending_approvals() {
    // Arrange
    let app = spawn_app_with(|_| {}).await;
    seed(&app).await;

    // Act
    app.post_event(&app_home_opened("Ev0HOMENA1")).await;

    // Assert
    let calls = app.fake.wait_for_calls("views.publish", 1).await;
    let view = calls[0].body["view"].to_string();
    assert!(!view.contains("Waiting for your approval"), "{view}");
    assert!(!view.contains("Q4 investor update"), "{view}");
    assert!(view.contains("December check-in"), "{view}");
    assert!(view.contains("Last 7 days"), "{view}");
}

#[tokio::test]
async fn long_lists_are_cut_with_and_n_more() {
    // Arrange: 25 contacts going cold.
    let app = spawn_app_with(approver).await;
    let now = Utc::now();
    for id in 1..=25 {
        contact(
            &app,
            id,
            Some("Cooling"),
            &format!("c{id}@example.com"),
            30.0,
            now,
        )
        .await;
    }

    // Act
    app.post_event(&app_home_opened("Ev0HOMELONG")).await;

    // Assert
    let calls = app.fake.wait_for_calls("views.publish", 1).await;
    let view = calls[0].body["view"].to_string();
    assert!(view.contains("and 15 more"), "{view}");
}

fn with_digest(s: &mut warmline::settings::Settings) {
    s.slack.digest_channel = Some(DIGEST.into());
    s.digest.time = chrono::NaiveTime::from_hms_opt(9, 0, 0).unwrap();
    s.digest.timezone = chrono_tz::America::New_York;
}

storage_test!(
    the_digest_is_posted_once_per_local_day,
    |db: TestDb| async move {
        // Arrange: 09:00 in New York is 14:00 UTC in November.
        let app = spawn_app_on(db, with_digest).await;
        seed(&app).await;

        // Act / Assert: before the time, nothing.
        let before = digest::tick(&app.app, utc(2026, 11, 26, 13, 59))
            .await
            .unwrap();
        assert_eq!(before, Tick::NotYet);
        assert!(app.fake.calls_to("chat.postMessage").is_empty());

        // At the time: posted, once even when two ticks race.
        let at = utc(2026, 11, 26, 14, 0);
        let (a, b) = tokio::join!(digest::tick(&app.app, at), digest::tick(&app.app, at));
        let mut outcomes = [a.unwrap(), b.unwrap()];
        outcomes.sort_by_key(|t| format!("{t:?}"));
        let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 26).unwrap();
        assert_eq!(outcomes, [Tick::AlreadyPosted, Tick::Posted { day }]);

        // Later the same day: nothing more.
        let later = digest::tick(&app.app, utc(2026, 11, 27, 4, 59))
            .await
            .unwrap();
        assert_eq!(later, Tick::AlreadyPosted, "still the 26th in New York");
        let calls = app.fake.calls_to("chat.postMessage");
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].body["channel"], DIGEST);
        let text = calls[0].body.to_string();
        for expected in [
            "Daily digest, 2026-11-26",
            "Pending approvals: 2",
            "Q4 investor update",
            "waiting 2h 0m",
            "Yesterday (2026-11-25, America/New_York)",
            "*Sent*\\n10",
            "*Bounces*\\n2",
            "*Spam complaints*\\n1",
            "*New opt-outs*\\n2",
            "Gone cold in the last 24 hours: 1",
            "a***@example.com",
            "Ambiguous messages waiting for a person: 2",
            "Mark as sent",
            "y***@example.com",
            "Median approval turnaround (30 days): 2h 0m",
        ] {
            assert!(text.contains(expected), "{expected} missing from {text}");
        }
        assert!(!text.contains("yan@example.com"), "addresses are masked");

        // The next local day: again.
        let next = digest::tick(&app.app, utc(2026, 11, 27, 14, 0))
            .await
            .unwrap();
        assert!(matches!(next, Tick::Posted { .. }), "{next:?}");
        assert_eq!(app.fake.calls_to("chat.postMessage").len(), 2);
    }
);

#[tokio::test]
async fn the_digest_keeps_local_time_across_daylight_saving_changes() {
    // Arrange
    let app = spawn_app_with(with_digest).await;

    // Act / Assert: 2026-03-08 springs forward; 09:00 EDT is 13:00 UTC.
    assert_eq!(
        digest::tick(&app.app, utc(2026, 3, 8, 12, 59))
            .await
            .unwrap(),
        Tick::NotYet
    );
    assert!(matches!(
        digest::tick(&app.app, utc(2026, 3, 8, 13, 0))
            .await
            .unwrap(),
        Tick::Posted { .. }
    ));
    // 2026-11-01 falls back; 09:00 EST is 14:00 UTC.
    assert_eq!(
        digest::tick(&app.app, utc(2026, 11, 1, 13, 30))
            .await
            .unwrap(),
        Tick::NotYet
    );
    assert!(matches!(
        digest::tick(&app.app, utc(2026, 11, 1, 14, 0))
            .await
            .unwrap(),
        Tick::Posted { .. }
    ));
    assert_eq!(app.fake.calls_to("chat.postMessage").len(), 2);
}

#[tokio::test]
async fn without_a_digest_channel_nothing_is_posted() {
    // Arrange
    let app = spawn_app_with(|_| {}).await;
    seed(&app).await;

    // Act
    let tick = digest::tick(&app.app, utc(2026, 11, 26, 20, 0))
        .await
        .unwrap();

    // Assert
    assert_eq!(tick, Tick::NotConfigured);
    assert!(app.fake.calls_to("chat.postMessage").is_empty());
    assert_eq!(app.count_rows("digests").await, 0);
}

#[tokio::test]
async fn a_refused_post_releases_the_day_for_the_next_tick() {
    // Arrange
    let app = spawn_app_with(with_digest).await;
    app.fake.script(
        "chat.postMessage",
        crate::fake_slack::Scripted::Error("not_in_channel"),
    );
    let at = utc(2026, 11, 26, 14, 0);

    // Act
    let first = digest::tick(&app.app, at).await;
    let second = digest::tick(&app.app, at + Duration::minutes(1))
        .await
        .unwrap();

    // Assert
    assert!(first.is_err());
    assert!(matches!(second, Tick::Posted { .. }), "{second:?}");
    assert_eq!(app.count_rows("digests").await, 1);
}
