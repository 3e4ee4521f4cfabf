//! The dispatcher against a real database and the test provider: every
//! message sent once, none lost, last-moment checks, retries, crash
//! recovery, flow control, stale schedules, and — on PostgreSQL — two
//! dispatchers sharing one queue and one rate limit.

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use sea_orm::{
    ActiveValue::Set, ConnectionTrait, DatabaseConnection, EntityTrait, FromQueryResult, Statement,
    Value,
};
use warmline::{
    db::entities::{consents, contacts},
    dispatcher::{
        Dispatcher, claim,
        ledger::{self, NewMessage, Resolution},
    },
    domain::MessageState,
    providers::{
        Registry,
        test_provider::{Behaviour, Core, TestProvider},
    },
    settings::Settings,
};

use crate::{storage_test, test_db::TestDb};

/// Contacts with (or without) email consent; returns their ids.
pub(crate) async fn seed_contacts(db: &DatabaseConnection, n: usize, consent: bool) -> Vec<i64> {
    let now = Utc::now();
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let c = contacts::Entity::insert(contacts::ActiveModel {
            email: Set(Some(format!(
                "c{i}-{}@example.com",
                uuid::Uuid::new_v4().simple()
            ))),
            status: Set("active".into()),
            tags: Set("[]".into()),
            warmth: Set(50.0),
            metadata: Set("{}".into()),
            timezone: Set(Some("Europe/Paris".into())),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        })
        .exec(db)
        .await
        .unwrap();
        let id = c.last_insert_id;
        if consent {
            consents::Entity::insert(consents::ActiveModel {
                contact_id: Set(id),
                channel: Set("email".into()),
                granted: Set(true),
                source: Set("test".into()),
                recorded_at: Set(now),
                ..Default::default()
            })
            .exec(db)
            .await
            .unwrap();
        }
        ids.push(id);
    }
    ids
}

pub(crate) fn message(source: &str, contact: i64, kind: &str) -> NewMessage {
    NewMessage {
        source: source.into(),
        campaign_id: None,
        contact_id: Some(contact),
        channel: warmline::domain::Channel::Email,
        kind: kind.parse().expect("a message kind"),
        address: None,
        provider: "test".into(),
        payload: serde_json::json!({"subject": "Hello", "text": "Hi there"}),
        template: None,
        state: MessageState::Queued,
        due_at: Utc::now(),
    }
}

fn settings(f: impl FnOnce(&mut Settings)) -> Settings {
    let mut s = Settings::default();
    // Nothing of the tests' is in quiet hours or capped unless a test says so.
    s.quiet_hours.sms = None;
    s.quiet_hours.whatsapp = None;
    s.caps.marketing_per_day = 1000;
    s.caps.marketing_per_week = 1000;
    s.dispatcher.retry_base_secs = 0.0;
    f(&mut s);
    s
}

fn dispatcher(db: &TestDb, behaviour: Behaviour, s: &Settings) -> (Dispatcher, Arc<Core>) {
    let core = Core::new(behaviour);
    let mut registry = Registry::new();
    registry.register(Arc::new(TestProvider::in_process(core.clone())));
    (Dispatcher::new(db.db.clone(), registry, s), core)
}

async fn enqueue(db: &DatabaseConnection, msgs: &[NewMessage]) -> u64 {
    ledger::enqueue(db, msgs, Utc::now()).await.unwrap()
}

#[derive(FromQueryResult)]
struct StateRow {
    state: String,
    skip_reason: Option<String>,
    attempts: i32,
    last_error: Option<String>,
}

async fn state_of(db: &DatabaseConnection, id: &str) -> StateRow {
    StateRow::find_by_statement(Statement::from_sql_and_values(
        db.get_database_backend(),
        "SELECT state, skip_reason, attempts, last_error FROM messages WHERE id = $1",
        [Value::from(id.to_string())],
    ))
    .one(db)
    .await
    .unwrap()
    .expect("message exists")
}

async fn count(db: &DatabaseConnection, sql: &str) -> i64 {
    warmline::db::count(db, sql, vec![]).await.unwrap()
}

storage_test!(
    every_message_is_sent_exactly_once,
    |db: TestDb| async move {
        // Arrange
        let ids = seed_contacts(&db.db, 120, true).await;
        let msgs: Vec<NewMessage> = ids
            .iter()
            .map(|c| message("campaign:1", *c, "marketing"))
            .collect();
        let (d, core) = dispatcher(
            &db,
            Behaviour::default(),
            &settings(|s| s.dispatcher.batch_size = 50),
        );

        // Act: enqueue twice (a repeated decision), then drain.
        assert_eq!(enqueue(&db.db, &msgs).await, 120);
        assert_eq!(
            enqueue(&db.db, &msgs).await,
            0,
            "same source and recipient: no new rows"
        );
        d.drain().await.unwrap();

        // Assert
        let accepted = core.accepted();
        assert_eq!(accepted.len(), 120);
        let mut unique: Vec<_> = accepted.iter().map(|a| a.id.clone()).collect();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 120, "no message sent twice");
        assert_eq!(
            count(
                &db.db,
                "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM messages WHERE state = 'sent'"
            )
            .await,
            120
        );
        // queued, sending and sent recorded for each.
        assert_eq!(
            count(
                &db.db,
                "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM message_events"
            )
            .await,
            360
        );
        assert!(
            accepted.iter().all(|a| a.to.ends_with("@example.com")),
            "address resolved from the contact"
        );
    }
);

storage_test!(
    last_moment_checks_stop_what_must_not_go,
    |db: TestDb| async move {
        // Arrange: four consented contacts, one revokes after enqueue, one is
        // suppressed after enqueue; a fifth never consented.
        let ids = seed_contacts(&db.db, 4, true).await;
        let unconsented = seed_contacts(&db.db, 1, false).await[0];
        let (d, core) = dispatcher(&db, Behaviour::default(), &settings(|_| {}));
        let msgs = vec![
            message("c:1", ids[0], "marketing"),
            message("c:1", ids[1], "marketing"),
            message("c:1", ids[2], "marketing"),
            message("c:1", unconsented, "marketing"),
            message("t:1", unconsented, "transactional"),
        ];
        enqueue(&db.db, &msgs).await;
        consents::Entity::insert(consents::ActiveModel {
            contact_id: Set(ids[1]),
            channel: Set("email".into()),
            granted: Set(false),
            source: Set("reply keyword".into()),
            recorded_at: Set(Utc::now()),
            ..Default::default()
        })
        .exec(&db.db)
        .await
        .unwrap();
        let email = contacts::Entity::find_by_id(ids[2])
            .one(&db.db)
            .await
            .unwrap()
            .unwrap()
            .email
            .unwrap();
        ledger::suppress(
            &db.db,
            "email",
            &email.to_uppercase(),
            "hard_bounce",
            "test",
            Utc::now(),
        )
        .await
        .unwrap();

        // Act
        d.drain().await.unwrap();

        // Assert
        let sent: Vec<String> = core.accepted().into_iter().map(|a| a.id).collect();
        assert_eq!(
            sent.len(),
            2,
            "the consented contact and the transactional message"
        );
        assert!(sent.contains(&msgs[0].id()));
        assert!(
            sent.contains(&msgs[4].id()),
            "transactional mail needs no marketing consent"
        );
        for (m, reason) in [
            (&msgs[1], "no_consent"),
            (&msgs[2], "suppressed"),
            (&msgs[3], "no_consent"),
        ] {
            let row = state_of(&db.db, &m.id()).await;
            assert_eq!(row.state, "skipped");
            assert_eq!(row.skip_reason.as_deref(), Some(reason));
        }
    }
);

storage_test!(
    suppression_holds_for_addresses_the_database_lowercases_differently,
    |db: TestDb| async move {
        // Arrange: PostgreSQL's `lower()` leaves non-ASCII letters alone in
        // some locales, so the claim's own suppression lookup must not be the
        // last word on them. One address is suppressed in clear, one only as
        // the hash a forgotten contact keeps, and an ASCII one as a hash.
        let (d, core) = dispatcher(&db, Behaviour::default(), &settings(|_| {}));
        let to = |source: &str, address: &str| NewMessage {
            contact_id: None,
            address: Some(address.into()),
            ..message(source, 0, "transactional")
        };
        let msgs = [
            to("t:1", "ÉLODIE@Exemple.fr"),
            to("t:2", "ZOË@example.com"),
            to("t:3", "Ann@Example.com"),
            to("t:4", "élise@exemple.fr"),
        ];
        let hashed = warmline::domain::suppression_hash;
        for address in [
            "élodie@exemple.fr".to_string(),
            hashed("zoë@example.com"),
            hashed("ann@example.com"),
        ] {
            ledger::suppress(&db.db, "email", &address, "complaint", "test", Utc::now())
                .await
                .unwrap();
        }
        enqueue(&db.db, &msgs).await;

        // Act
        d.drain().await.unwrap();

        // Assert: only the address nobody suppressed went out.
        let sent: Vec<String> = core.accepted().into_iter().map(|a| a.id).collect();
        assert_eq!(sent, vec![msgs[3].id()]);
        for m in &msgs[..3] {
            let row = state_of(&db.db, &m.id()).await;
            assert_eq!(
                (row.state.as_str(), row.skip_reason.as_deref()),
                ("skipped", Some("suppressed")),
                "{}",
                m.source
            );
        }
    }
);

storage_test!(frequency_caps_hold_across_sends, |db: TestDb| async move {
    // Arrange: a cap of one marketing message a day.
    let c = seed_contacts(&db.db, 1, true).await[0];
    let s = settings(|s| s.caps.marketing_per_day = 1);
    let (d, core) = dispatcher(&db, Behaviour::default(), &s);
    let msgs = [
        message("a", c, "marketing"),
        message("b", c, "marketing"),
        message("r", c, "transactional"),
    ];

    // Act
    enqueue(&db.db, &msgs).await;
    d.drain().await.unwrap();

    // Assert: one marketing message and the uncapped transactional one.
    assert_eq!(core.accepted().len(), 2);
    let states = [
        state_of(&db.db, &msgs[0].id()).await,
        state_of(&db.db, &msgs[1].id()).await,
    ];
    assert_eq!(states.iter().filter(|r| r.state == "sent").count(), 1);
    assert!(
        states
            .iter()
            .any(|r| r.skip_reason.as_deref() == Some("frequency_cap"))
    );
});

storage_test!(
    quiet_hours_defer_instead_of_sending,
    |db: TestDb| async move {
        // Arrange: an email window that is closed for the whole day except one
        // minute that is not now.
        let c = seed_contacts(&db.db, 1, true).await[0];
        let now_paris = Utc::now().with_timezone(&chrono_tz::Europe::Paris);
        let open = (now_paris + chrono::Duration::hours(2))
            .format("%H:%M")
            .to_string();
        let close = (now_paris + chrono::Duration::hours(2) + chrono::Duration::minutes(1))
            .format("%H:%M")
            .to_string();
        let s = settings(|s| {
            s.quiet_hours.email = Some(warmline::dispatcher::settings::Window {
                start: open,
                end: close,
            })
        });
        let (d, core) = dispatcher(&db, Behaviour::default(), &s);
        let m = message("q", c, "marketing");

        // Act
        enqueue(&db.db, std::slice::from_ref(&m)).await;
        d.drain().await.unwrap();

        // Assert
        assert!(core.accepted().is_empty());
        let row = state_of(&db.db, &m.id()).await;
        assert_eq!(row.state, "deferred");
        assert_eq!(row.attempts, 0, "a deferral is not an attempt");
    }
);

storage_test!(
    retryable_errors_retry_then_fail_with_the_last_error,
    |db: TestDb| async move {
        // Arrange: every attempt fails; three attempts allowed; no backoff wait.
        let c = seed_contacts(&db.db, 1, true).await[0];
        let s = settings(|s| s.dispatcher.max_attempts = 3);
        let (d, core) = dispatcher(
            &db,
            Behaviour {
                retryable_rate: 1.0,
                ..Behaviour::default()
            },
            &s,
        );
        let m = message("r", c, "marketing");

        // Act
        enqueue(&db.db, std::slice::from_ref(&m)).await;
        d.drain().await.unwrap();

        // Assert
        let row = state_of(&db.db, &m.id()).await;
        assert_eq!(row.state, "failed");
        assert_eq!(row.attempts, 3);
        assert!(row.last_error.unwrap().contains("temporary failure"));
        assert_eq!(core.requests.load(std::sync::atomic::Ordering::Relaxed), 3);
    }
);

storage_test!(
    a_lost_worker_is_recovered_by_idempotency_or_marked_ambiguous,
    |db: TestDb| async move {
        // Arrange: a worker claims two messages and dies before calling anyone.
        let ids = seed_contacts(&db.db, 2, true).await;
        let s = settings(|_| {});
        let msgs = [
            message("x", ids[0], "marketing"),
            message("x", ids[1], "marketing"),
        ];
        enqueue(&db.db, &msgs).await;
        let claimed = claim::claim(&db.db, "test", "dead-worker", 10, Utc::now())
            .await
            .unwrap();
        assert_eq!(claimed.len(), 2);

        // Act (1): a provider with idempotency keys recovers by sending again.
        let (d, core) = dispatcher(&db, Behaviour::default(), &s);
        let r = claim::recover(&db.db, d.registry(), d.worker_id(), 0, false, Utc::now())
            .await
            .unwrap();
        d.drain().await.unwrap();

        // Assert (1)
        assert_eq!(r.requeued, 2);
        assert_eq!(core.accepted().len(), 2);

        // Arrange (2): a provider that takes no key. One message died
        // during the provider call (`called_at` set), one before it.
        let more = seed_contacts(&db.db, 2, true).await;
        let m = message("y", more[0], "marketing");
        let never_called = message("y", more[1], "marketing");
        enqueue(&db.db, &[m.clone(), never_called.clone()]).await;
        claim::claim(&db.db, "test", "dead-worker", 10, Utc::now())
            .await
            .unwrap();
        db.db
            .execute_raw(Statement::from_sql_and_values(
                db.db.get_database_backend(),
                "UPDATE messages SET called_at = $1 WHERE id = $2",
                [Value::from(Utc::now()), Value::from(m.id())],
            ))
            .await
            .unwrap();
        let (d2, core2) = dispatcher(
            &db,
            Behaviour {
                idempotent: false,
                ..Behaviour::default()
            },
            &s,
        );

        // Act (2)
        let r = claim::recover(&db.db, d2.registry(), d2.worker_id(), 0, false, Utc::now())
            .await
            .unwrap();
        d2.drain().await.unwrap();

        // Assert (2): the one in the crash window is never re-sent
        // automatically — a person resolves it; the other is safely re-sent.
        assert_eq!(r.ambiguous, 1);
        assert_eq!(r.requeued, 1);
        assert_eq!(core2.accepted().len(), 1);
        assert_eq!(core2.accepted()[0].id, never_called.id());
        assert_eq!(state_of(&db.db, &m.id()).await.state, "ambiguous");
        assert!(
            ledger::resolve_ambiguous(
                &db.db,
                &m.id(),
                Resolution::SendAgain,
                "U0APPROVER",
                Utc::now()
            )
            .await
            .unwrap()
        );
        assert!(
            !ledger::resolve_ambiguous(
                &db.db,
                &m.id(),
                Resolution::MarkSent,
                "U0OTHER",
                Utc::now()
            )
            .await
            .unwrap(),
            "a second decision has no effect"
        );
        d2.drain().await.unwrap();
        assert_eq!(
            core2.accepted().len(),
            2,
            "sent again after the person decided"
        );
    }
);

storage_test!(
    pause_resume_cancel_lose_nothing_and_repeat_nothing,
    |db: TestDb| async move {
        // Arrange: a campaign of 60; a worker sends the first 20.
        let ids = seed_contacts(&db.db, 60, true).await;
        let now = Utc::now();
        db.db
        .execute_raw(Statement::from_sql_and_values(
            db.db.get_database_backend(),
            "INSERT INTO campaigns (id, name, channel, state, created_by, created_at, updated_at) VALUES (7, 'Q4', 'email', 'running', 'U0ME', $1, $1)",
            [Value::from(now)],
        ))
        .await
        .unwrap();
        let msgs: Vec<NewMessage> = ids
            .iter()
            .map(|c| NewMessage {
                campaign_id: Some(7),
                ..message("campaign:7", *c, "marketing")
            })
            .collect();
        enqueue(&db.db, &msgs).await;
        let (d, core) = dispatcher(
            &db,
            Behaviour::default(),
            &settings(|s| s.dispatcher.batch_size = 20),
        );
        d.run_once().await.unwrap();
        assert_eq!(core.accepted().len(), 20);

        // Act: pause; a drain sends nothing more; resume; drain.
        let paused = ledger::pause_campaign(&db.db, 7, "U0ME", Utc::now())
            .await
            .unwrap();
        d.drain().await.unwrap();
        let after_pause = core.accepted().len();
        assert!(
            !ledger::campaign_complete(&db.db, 7).await.unwrap(),
            "paused is not complete"
        );
        ledger::resume_campaign(&db.db, 7, "U0ME", Utc::now())
            .await
            .unwrap();
        d.drain().await.unwrap();

        // Assert
        assert_eq!(paused, 40);
        assert_eq!(after_pause, 20);
        let mut sent: Vec<String> = core.accepted().into_iter().map(|a| a.id).collect();
        assert_eq!(sent.len(), 60);
        sent.sort();
        sent.dedup();
        assert_eq!(sent.len(), 60, "nothing twice, nothing skipped");
        assert!(ledger::campaign_complete(&db.db, 7).await.unwrap());

        // And cancel: a second campaign is cancelled before it sends.
        let more = seed_contacts(&db.db, 5, true).await;
        let msgs: Vec<NewMessage> = more
            .iter()
            .map(|c| NewMessage {
                campaign_id: Some(7),
                ..message("campaign:7b", *c, "marketing")
            })
            .collect();
        enqueue(&db.db, &msgs).await;
        assert_eq!(
            ledger::cancel_campaign(&db.db, 7, "U0ME", Utc::now())
                .await
                .unwrap(),
            5
        );
        d.drain().await.unwrap();
        assert_eq!(core.accepted().len(), 60);
        assert_eq!(
            state_of(&db.db, &msgs[0].id()).await.skip_reason.as_deref(),
            Some("cancelled")
        );
    }
);

storage_test!(
    a_stale_schedule_waits_for_a_person,
    |db: TestDb| async move {
        // Arrange: one schedule an hour overdue (warmline was down), one due now.
        let ids = seed_contacts(&db.db, 2, true).await;
        let late = NewMessage {
            state: MessageState::Scheduled,
            due_at: Utc::now() - chrono::Duration::hours(1),
            campaign_id: Some(9),
            ..message("s:late", ids[0], "marketing")
        };
        let on_time = NewMessage {
            state: MessageState::Scheduled,
            due_at: Utc::now() - chrono::Duration::seconds(5),
            ..message("s:now", ids[1], "marketing")
        };
        enqueue(&db.db, &[late.clone(), on_time.clone()]).await;
        let (d, core) = dispatcher(&db, Behaviour::default(), &settings(|_| {}));

        // Act
        d.drain().await.unwrap();

        // Assert
        assert_eq!(core.accepted().len(), 1);
        assert_eq!(state_of(&db.db, &late.id()).await.state, "held");
        assert_eq!(state_of(&db.db, &on_time.id()).await.state, "sent");
        ledger::confirm_held(&db.db, 9, "U0ME", Utc::now())
            .await
            .unwrap();
        d.drain().await.unwrap();
        assert_eq!(core.accepted().len(), 2);
    }
);

storage_test!(
    a_provider_429_requeues_without_spending_an_attempt,
    |db: TestDb| async move {
        // Arrange: the provider allows one request a second; batches of one.
        let ids = seed_contacts(&db.db, 2, true).await;
        let (d, core) = dispatcher(
            &db,
            Behaviour {
                enforced_rps: Some(1),
                max_batch: 1,
                ..Behaviour::default()
            },
            &settings(|s| s.dispatcher.concurrency = 1),
        );
        let msgs = [
            message("rl", ids[0], "marketing"),
            message("rl", ids[1], "marketing"),
        ];

        // Act: one pass — the second request is refused with a retry-after.
        enqueue(&db.db, &msgs).await;
        d.run_once().await.unwrap();

        // Assert
        assert_eq!(core.accepted().len(), 1);
        assert_eq!(
            core.rate_limited.load(std::sync::atomic::Ordering::Relaxed),
            1
        );
        let refused = if core.accepted()[0].id == msgs[0].id() {
            &msgs[1]
        } else {
            &msgs[0]
        };
        let row = state_of(&db.db, &refused.id()).await;
        assert_eq!(row.state, "queued");
        assert_eq!(row.attempts, 0);
    }
);

storage_test!(
    serve_sends_what_is_enqueued_without_polling_delay,
    |db: TestDb| async move {
        // Arrange: the whole application, with its dispatcher running.
        let c = seed_contacts(&db.db, 1, true).await[0];
        let mut s = settings(|s| s.dispatcher.poll_interval_ms = 60_000);
        s.server.addr = "127.0.0.1:0".parse().unwrap();
        db.apply(&mut s);
        let core = Core::new(Behaviour::default());
        let mut registry = Registry::new();
        registry.register(Arc::new(TestProvider::in_process(core.clone())));
        let application =
            warmline::startup::Application::build_with_registry(s, db.db.clone(), registry)
                .await
                .unwrap();
        let app = application.app();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(application.run_until(async move {
            let _ = stopped.await;
        }));

        // Act: enqueue and wake, as every producer does.
        enqueue(&db.db, &[message("live", c, "marketing")]).await;
        app.dispatcher.wake();

        // Assert: sent long before the (one-minute) poll would have found it.
        assert!(core.wait_for_accepted(1, Duration::from_secs(20)).await);
        let _ = stop.send(());
        server.await.unwrap().unwrap();
    }
);

/// Two dispatchers (as two `serve` processes would) on one PostgreSQL: no
/// message claimed by both, and one rate limit for both.
#[tokio::test]
async fn two_dispatchers_on_postgres_share_the_queue_and_the_limit() {
    let Some(db) = TestDb::new(crate::test_db::Backend::Postgres).await else {
        crate::test_db::report_pg_skipped(
            "dispatcher::two_dispatchers_on_postgres_share_the_queue_and_the_limit",
        );
        return;
    };
    // Arrange: one provider log shared by both (it is "the provider").
    let ids = seed_contacts(&db.db, 40, true).await;
    let msgs: Vec<NewMessage> = ids
        .iter()
        .map(|c| message("pg:1", *c, "marketing"))
        .collect();
    enqueue(&db.db, &msgs).await;
    let core = Core::new(Behaviour {
        max_batch: 1,
        declared_rps: Some(20.0),
        ..Behaviour::default()
    });
    let make = || {
        let mut registry = Registry::new();
        registry.register(Arc::new(TestProvider::in_process(core.clone())));
        Dispatcher::new(
            db.db.clone(),
            registry,
            &settings(|s| s.dispatcher.batch_size = 5),
        )
    };
    let (a, b) = (make(), make());

    // Act
    let (ra, rb) = tokio::join!(a.drain(), b.drain());
    ra.unwrap();
    rb.unwrap();

    // Assert
    let mut sent: Vec<String> = core.accepted().into_iter().map(|a| a.id).collect();
    assert_eq!(sent.len(), 40);
    sent.sort();
    sent.dedup();
    assert_eq!(sent.len(), 40, "no message claimed by both");
    assert!(
        core.max_requests_in_any_second() <= 20,
        "{} in one second",
        core.max_requests_in_any_second()
    );
}
