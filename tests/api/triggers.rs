//! Triggers against the whole app: detection once per crossing, the steps of
//! each sequence at their days (a chosen `now`, no sleeps), every step
//! through the approval policy (a request in the approvals channel, or
//! straight to the provider), and a reply or an opt-out stopping the rest.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    ActiveValue::Set, ConnectionTrait, DatabaseConnection, EntityTrait, FromQueryResult, Statement,
    Value,
};
use warmline::{
    consent::Source,
    db::entities::contacts,
    domain::MessageState,
    interactions::{Direction, Kind as InteractionKind, NewInteraction},
    providers::{
        Registry,
        test_provider::{Behaviour, Core, TestProvider},
    },
    settings::Settings,
    triggers::{self, TickStats},
};

use crate::{
    fake_slack::WAIT,
    helpers::{TestApp, spawn_app_with_registry},
    storage_test,
    test_db::TestDb,
};

const APPROVALS: &str = "C0APPROVALS";

struct Triggers {
    t: TestApp,
    core: Arc<Core>,
}

/// The app with the test provider carrying email, an approvals channel,
/// and the trigger loop off: the tests drive [`triggers::tick`] themselves.
async fn spawn(db: TestDb, f: impl FnOnce(&mut Settings)) -> Triggers {
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
            f(s);
        },
        Some(registry),
    )
    .await;
    Triggers { t, core }
}

/// A contact with email consent: `warmth`, last in touch at `last`, created
/// at `created`.
async fn contact(
    db: &DatabaseConnection,
    first_name: &str,
    warmth: f64,
    last: Option<DateTime<Utc>>,
    created: DateTime<Utc>,
) -> i64 {
    let id = contacts::Entity::insert(contacts::ActiveModel {
        email: Set(Some(format!(
            "{}-{}@example.com",
            first_name.to_lowercase(),
            uuid::Uuid::new_v4().simple()
        ))),
        first_name: Set(Some(first_name.into())),
        status: Set("active".into()),
        tags: Set("[]".into()),
        metadata: Set("{}".into()),
        timezone: Set(Some("Europe/Paris".into())),
        created_at: Set(created),
        updated_at: Set(created),
        ..Default::default()
    })
    .exec(db)
    .await
    .unwrap()
    .last_insert_id;
    set_warmth(db, id, warmth, last).await;
    warmline::consent::record(db, id, "email", true, Source::Api, Some("test"), Some("v1"))
        .await
        .unwrap();
    id
}

/// Sets a contact's score directly, as the warmth model would have.
async fn set_warmth(db: &DatabaseConnection, id: i64, warmth: f64, last: Option<DateTime<Utc>>) {
    db.execute_raw(Statement::from_sql_and_values(
        db.get_database_backend(),
        "UPDATE contacts SET warmth = $1, last_interaction_at = $2 WHERE id = $3",
        [Value::from(warmth), Value::from(last), Value::from(id)],
    ))
    .await
    .unwrap();
}

#[derive(Debug, FromQueryResult, PartialEq)]
struct Run {
    trigger: String,
    crossing: String,
    step: i32,
    state: String,
    stopped_reason: Option<String>,
}

async fn runs(db: &DatabaseConnection, contact: i64) -> Vec<Run> {
    Run::find_by_statement(Statement::from_sql_and_values(
        db.get_database_backend(),
        "SELECT \"trigger\", crossing, step, state, stopped_reason FROM trigger_runs \
         WHERE contact_id = $1 ORDER BY id",
        [Value::from(contact)],
    ))
    .all(db)
    .await
    .unwrap()
}

#[derive(Debug, FromQueryResult)]
struct Msg {
    source: String,
    state: String,
    template: Option<String>,
}

/// The contact's trigger messages, oldest first.
async fn messages(db: &DatabaseConnection, contact: i64) -> Vec<Msg> {
    Msg::find_by_statement(Statement::from_sql_and_values(
        db.get_database_backend(),
        "SELECT source, state, template FROM messages WHERE contact_id = $1 \
         AND source LIKE 'trigger:%' ORDER BY created_at, id",
        [Value::from(contact)],
    ))
    .all(db)
    .await
    .unwrap()
}

impl Triggers {
    async fn tick(&self, now: DateTime<Utc>) -> TickStats {
        let stats = triggers::tick(&self.t.app, now).await.expect("a tick runs");
        // Approval requests are posted after the commit, in the background.
        self.t.drain_background().await;
        stats
    }

    /// Approval requests posted to the approvals channel so far.
    fn approval_posts(&self) -> Vec<serde_json::Value> {
        self.t
            .fake
            .calls_to("chat.postMessage")
            .into_iter()
            .filter(|c| c.body["channel"] == APPROVALS)
            .map(|c| c.body)
            .collect()
    }
}

fn days(n: i64) -> Duration {
    Duration::days(n)
}

storage_test!(
    a_cold_contact_gets_three_revival_steps_once_each_awaiting_approval,
    |db: TestDb| async move {
        // Arrange: cold (below the default warmth floor of 25, so each step
        // needs a person), last in touch 60 days ago.
        let app = spawn(db, |_| {}).await;
        let db = app.t.app.db.clone();
        let t0 = Utc::now();
        let last = t0 - days(60);
        let ada = contact(&db, "Ada", 12.0, Some(last), t0 - days(200)).await;
        let key = triggers::cold::crossing_key(last);

        // Act: day 0, twice.
        let first = app.tick(t0).await;
        let again = app.tick(t0 + Duration::minutes(5)).await;

        // Assert: one run, step 0 submitted and awaiting approval, once.
        assert_eq!(first.started_cold, 1);
        assert_eq!(first.awaiting_approval, 1);
        assert_eq!(again, TickStats::default(), "the crossing fired once");
        let msgs = messages(&db, ada).await;
        assert_eq!(msgs.len(), 1);
        assert_eq!(msgs[0].source, format!("trigger:cold:{ada}:{key}:0"));
        assert_eq!(msgs[0].state, "awaiting_approval");
        assert_eq!(msgs[0].template.as_deref(), Some("revival_value"));
        let posts = app.approval_posts();
        assert_eq!(posts.len(), 1, "one approval request");
        assert!(
            posts[0]
                .to_string()
                .contains("Cold revival, step 1 of 3: Ada"),
            "{}",
            posts[0]
        );

        // Act: a day before step 2 is due, nothing; then days 7 and 14.
        assert_eq!(app.tick(t0 + days(6)).await, TickStats::default());
        let day7 = app.tick(t0 + days(7)).await;
        let day14 = app.tick(t0 + days(14)).await;
        let after = app.tick(t0 + days(30)).await;

        // Assert
        assert_eq!(day7.awaiting_approval, 1);
        assert_eq!((day14.awaiting_approval, day14.completed), (1, 1));
        assert_eq!(after, TickStats::default());
        let msgs = messages(&db, ada).await;
        let sources: Vec<&str> = msgs.iter().map(|m| m.source.as_str()).collect();
        assert_eq!(
            sources,
            [0, 1, 2].map(|s| format!("trigger:cold:{ada}:{key}:{s}")),
        );
        let templates: Vec<_> = msgs.iter().map(|m| m.template.as_deref()).collect();
        assert_eq!(
            templates,
            [
                Some("revival_value"),
                Some("revival_resource"),
                Some("revival_checkin")
            ]
        );
        assert_eq!(app.approval_posts().len(), 3);
        assert_eq!(
            runs(&db, ada).await,
            [Run {
                trigger: "cold".into(),
                crossing: key,
                step: 3,
                state: "completed".into(),
                stopped_reason: None,
            }]
        );
        app.t.shutdown().await.unwrap();
    }
);

storage_test!(
    where_the_policy_allows_a_step_goes_straight_to_the_provider,
    |db: TestDb| async move {
        // Arrange: a policy that lets a one-contact send to a cold contact
        // go, and the template already sent once before (new content always
        // needs a person).
        let app = spawn(db, |s| {
            s.approval.warmth_floor = 0;
            s.approval.risk_threshold = 11;
            s.approval.two_approvers_at_risk = 11;
            s.caps.marketing_per_day = 100;
            s.caps.marketing_per_week = 100;
        })
        .await;
        let db = app.t.app.db.clone();
        let t0 = Utc::now();
        // (Grace is lukewarm: no trigger of her own.)
        let earlier = contact(&db, "Grace", 40.0, Some(t0), t0 - days(300)).await;
        let mut old = crate::dispatcher::message("campaign:old", earlier, "marketing");
        old.template = Some("revival_value".into());
        old.state = MessageState::Sent;
        warmline::dispatcher::ledger::enqueue(&db, &[old], t0)
            .await
            .unwrap();
        let bob = contact(&db, "Bob", 8.0, Some(t0 - days(90)), t0 - days(200)).await;

        // Act
        let stats = app.tick(t0).await;

        // Assert: queued without a request, and carried by the provider.
        assert_eq!((stats.started_cold, stats.queued), (1, 1));
        assert!(app.approval_posts().is_empty());
        assert!(
            app.core.wait_for_accepted(1, WAIT).await,
            "the provider got it"
        );
        let accepted = app.core.accepted();
        assert_eq!(accepted.len(), 1);
        assert!(accepted[0].to.starts_with("bob-"), "{}", accepted[0].to);
        let msgs = messages(&db, bob).await;
        assert_eq!(msgs.len(), 1);
        assert!(msgs[0].source.starts_with(&format!("trigger:cold:{bob}:")));
        app.t.shutdown().await.unwrap();
    }
);

storage_test!(a_reply_stops_the_remaining_steps, |db: TestDb| async move {
    // Arrange: a revival that sent its first step.
    let app = spawn(db, |_| {}).await;
    let db = app.t.app.db.clone();
    let t0 = Utc::now();
    let ada = contact(&db, "Ada", 10.0, Some(t0 - days(60)), t0 - days(200)).await;
    app.tick(t0).await;

    // Act: Ada answers the next day; the week-7 step comes due.
    warmline::interactions::record(
        &db,
        &NewInteraction {
            contact_id: ada,
            kind: InteractionKind::Email,
            direction: Direction::Inbound,
            occurred_at: t0 + days(1),
            summary: Some("Thanks, let's talk".into()),
            source: "test".into(),
            channel: Some("email".into()),
        },
        t0 + days(1),
    )
    .await
    .unwrap();
    let day7 = app.tick(t0 + days(7)).await;
    let day14 = app.tick(t0 + days(14)).await;

    // Assert: stopped as replied; nothing after step 0; and the reply
    // (which moved last_interaction_at) did not start a new revival.
    assert_eq!(day7.stopped_replied, 1);
    assert_eq!(day7.started(), 0);
    assert_eq!(day14.awaiting_approval + day14.queued, 0);
    let r = runs(&db, ada).await;
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(
        (
            r[0].state.as_str(),
            r[0].stopped_reason.as_deref(),
            r[0].step
        ),
        ("stopped", Some("replied"), 1)
    );
    assert_eq!(messages(&db, ada).await.len(), 1);
    app.t.shutdown().await.unwrap();
});

storage_test!(
    an_opt_out_stops_the_remaining_steps,
    |db: TestDb| async move {
        // Arrange
        let app = spawn(db, |_| {}).await;
        let db = app.t.app.db.clone();
        let t0 = Utc::now();
        let ada = contact(&db, "Ada", 10.0, Some(t0 - days(60)), t0 - days(200)).await;
        app.tick(t0).await;

        // Act: Ada unsubscribes from email.
        warmline::consent::record(
            &db,
            ada,
            "email",
            false,
            Source::OneClickUnsubscribe,
            Some("recipient"),
            None,
        )
        .await
        .unwrap();
        let day7 = app.tick(t0 + days(7)).await;

        // Assert
        assert_eq!(day7.stopped_opted_out, 1);
        let r = runs(&db, ada).await;
        assert_eq!(
            (r[0].state.as_str(), r[0].stopped_reason.as_deref()),
            ("stopped", Some("opted_out"))
        );
        assert_eq!(messages(&db, ada).await.len(), 1, "only step 0");
        assert_eq!(app.tick(t0 + days(60)).await.started(), 0, "no consent");
        app.t.shutdown().await.unwrap();
    }
);

storage_test!(
    warming_up_and_going_cold_again_is_a_new_crossing,
    |db: TestDb| async move {
        // Arrange: a first revival, run to completion.
        let app = spawn(db, |_| {}).await;
        let db = app.t.app.db.clone();
        let t0 = Utc::now();
        let first = t0 - days(60);
        let ada = contact(&db, "Ada", 10.0, Some(first), t0 - days(200)).await;
        for d in [0, 7, 14] {
            app.tick(t0 + days(d)).await;
        }

        // Act: a meeting warms Ada up; weeks later the score has decayed.
        let second = t0 + days(20);
        set_warmth(&db, ada, 40.0, Some(second)).await;
        let warm = app.tick(t0 + days(21)).await;
        set_warmth(&db, ada, 18.0, Some(second)).await;
        let cold_again = app.tick(t0 + days(80)).await;

        // Assert
        assert_eq!(warm.started_cold, 0);
        assert_eq!(cold_again.started_cold, 1);
        let r = runs(&db, ada).await;
        let keys: Vec<_> = r
            .iter()
            .filter(|r| r.trigger == "cold")
            .map(|r| r.crossing.clone())
            .collect();
        assert_eq!(
            keys,
            [
                triggers::cold::crossing_key(first),
                triggers::cold::crossing_key(second)
            ]
        );
        let msgs = messages(&db, ada).await;
        assert_eq!(msgs.len(), 4);
        assert_eq!(
            msgs[3].source,
            format!(
                "trigger:cold:{ada}:{}:0",
                triggers::cold::crossing_key(second)
            )
        );
        app.t.shutdown().await.unwrap();
    }
);

storage_test!(
    a_new_contact_is_onboarded_once_in_three_steps,
    |db: TestDb| async move {
        // Arrange: created today, no interactions yet.
        let app = spawn(db, |_| {}).await;
        let db = app.t.app.db.clone();
        let t0 = Utc::now();
        let nia = contact(&db, "Nia", 0.0, None, t0).await;

        // Act: days 0, 3, 7, with repeats.
        let day0 = app.tick(t0).await;
        let repeat = app.tick(t0 + Duration::hours(1)).await;
        let day3 = app.tick(t0 + days(3)).await;
        let day7 = app.tick(t0 + days(7)).await;
        let later = app.tick(t0 + days(8)).await;

        // Assert
        assert_eq!((day0.started_onboarding, day0.awaiting_approval), (1, 1));
        assert_eq!(repeat, TickStats::default());
        assert_eq!(day3.awaiting_approval, 1);
        assert_eq!((day7.awaiting_approval, day7.completed), (1, 1));
        assert_eq!(later, TickStats::default(), "never onboarded twice");
        let templates: Vec<_> = messages(&db, nia)
            .await
            .into_iter()
            .map(|m| (m.source, m.template))
            .collect();
        assert_eq!(
            templates,
            [
                "onboarding_welcome",
                "onboarding_story",
                "onboarding_resource"
            ]
            .iter()
            .enumerate()
            .map(|(i, t)| (
                format!("trigger:onboarding:{nia}:1:{i}"),
                Some(t.to_string())
            ))
            .collect::<Vec<_>>()
        );
        assert_eq!(app.approval_posts().len(), 3);
        app.t.shutdown().await.unwrap();
    }
);

storage_test!(
    a_warm_active_contact_gets_one_check_in_a_month,
    |db: TestDb| async move {
        // Arrange: warmth 60, known for months; ticks mid-month.
        let app = spawn(db, |_| {}).await;
        let db = app.t.app.db.clone();
        let now = Utc::now();
        let mid_month = now - days(i64::from(chrono::Datelike::day(&now))) + days(14);
        let leo = contact(&db, "Leo", 60.0, Some(mid_month - days(2)), now - days(400)).await;

        // Act
        let first = app.tick(mid_month).await;
        let same_month = app.tick(mid_month + days(10)).await;
        let next_month = app.tick(mid_month + days(31)).await;

        // Assert
        assert_eq!((first.started_monthly, first.completed), (1, 1));
        assert_eq!(same_month, TickStats::default());
        assert_eq!(next_month.started_monthly, 1);
        let months = [mid_month, mid_month + days(31)].map(triggers::monthly::crossing_key);
        let sources: Vec<_> = messages(&db, leo)
            .await
            .into_iter()
            .map(|m| m.source)
            .collect();
        assert_eq!(
            sources,
            months.map(|m| format!("trigger:monthly:{leo}:{m}:0"))
        );
        app.t.shutdown().await.unwrap();
    }
);

storage_test!(
    two_runners_at_once_start_and_send_each_step_once,
    |db: TestDb| async move {
        // Arrange: one cold and one new contact.
        let app = spawn(db, |_| {}).await;
        let db = app.t.app.db.clone();
        let t0 = Utc::now();
        let ada = contact(&db, "Ada", 10.0, Some(t0 - days(60)), t0 - days(200)).await;
        let nia = contact(&db, "Nia", 0.0, None, t0).await;

        // Act: two ticks racing (two processes on one database).
        let (a, b) = tokio::join!(
            triggers::tick(&app.t.app, t0),
            triggers::tick(&app.t.app, t0)
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        app.t.drain_background().await;

        // Assert: each crossing started once, each first step sent once.
        assert_eq!(a.started() + b.started(), 2, "{a:?} {b:?}");
        assert_eq!(a.awaiting_approval + b.awaiting_approval, 2, "{a:?} {b:?}");
        assert_eq!(messages(&db, ada).await.len(), 1);
        assert_eq!(messages(&db, nia).await.len(), 1);
        assert_eq!(app.approval_posts().len(), 2);
        app.t.shutdown().await.unwrap();
    }
);

storage_test!(
    a_crash_between_submit_and_advance_neither_resends_nor_asks_again,
    |db: TestDb| async move {
        // Arrange: step 0 submitted, then the run rolled back to "step 0
        // due", as if the process died before advancing it.
        let app = spawn(db, |_| {}).await;
        let db = app.t.app.db.clone();
        let t0 = Utc::now();
        let ada = contact(&db, "Ada", 10.0, Some(t0 - days(60)), t0 - days(200)).await;
        app.tick(t0).await;
        db.execute_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            "UPDATE trigger_runs SET step = 0, next_step_at = $1 WHERE contact_id = $2",
            [Value::from(t0), Value::from(ada)],
        ))
        .await
        .unwrap();

        // Act: the lease has run out; the next tick finds the step due.
        let retry = app.tick(t0 + triggers::runner::CLAIM_LEASE).await;

        // Assert: counted as sent, advanced, and nothing new anywhere.
        assert_eq!(retry.already_submitted, 1);
        assert_eq!(retry.awaiting_approval + retry.queued, 0);
        assert_eq!(messages(&db, ada).await.len(), 1);
        assert_eq!(app.approval_posts().len(), 1);
        let r = runs(&db, ada).await;
        assert_eq!((r[0].step, r[0].state.as_str()), (1, "active"));
        app.t.shutdown().await.unwrap();
    }
);
