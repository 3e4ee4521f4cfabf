//! The Resend provider against the fake Resend (`providers::resend::fake`):
//! what goes on the wire, batching, idempotent replay, error classification,
//! rate-limit signals — and one campaign end to end through the real
//! dispatcher and ledger.

use std::{collections::BTreeMap, time::Duration};

use chrono::Utc;
use sea_orm::{DatabaseConnection, FromQueryResult, Statement};
use warmline::{
    dispatcher::ledger::{self, NewMessage},
    domain::MessageState,
    email::EmailContent,
    providers::{
        OutgoingMessage, Provider, SendOutcome,
        resend::settings::ResendSettings,
        resend::{
            MESSAGE_ID_TAG, ResendConfig, ResendProvider, batch_key,
            fake::{BatchTags, FakeConfig, FakeResend, Scripted},
            next_utc_midnight,
        },
        settings::ProvidersSettings,
    },
};

use crate::{dispatcher::seed_contacts, helpers::spawn_app_on, storage_test, test_db::TestDb};

const WAIT: Duration = Duration::from_secs(20);

fn content(subject: &str) -> EmailContent {
    EmailContent {
        from: "Acme <news@acme.test>".into(),
        reply_to: Some("team@acme.test".into()),
        subject: subject.into(),
        text: "Hello there".into(),
        html: Some("<p>Hello there</p>".into()),
        headers: BTreeMap::from([
            (
                "List-Unsubscribe".to_string(),
                "<https://warm.example.org/u/tok>".to_string(),
            ),
            (
                "List-Unsubscribe-Post".to_string(),
                "List-Unsubscribe=One-Click".to_string(),
            ),
        ]),
    }
}

fn message(n: usize) -> OutgoingMessage {
    OutgoingMessage {
        id: format!("msg_{n:032x}"),
        channel: warmline::domain::Channel::Email,
        kind: warmline::domain::MessageKind::Marketing,
        to: format!("person{n}@example.com"),
        content: content("Checking in").to_payload(),
    }
}

async fn fake(f: impl FnOnce(&mut FakeConfig)) -> FakeResend {
    let mut config = FakeConfig {
        requests_per_second: 1000,
        ..FakeConfig::default()
    };
    f(&mut config);
    FakeResend::start(config).await.expect("the fake starts")
}

fn provider(fake: &FakeResend) -> ResendProvider {
    ResendProvider::new(ResendConfig::new(fake.api_key(), fake.base_url())).unwrap()
}

fn accepted_id(o: &SendOutcome) -> String {
    match o {
        SendOutcome::Accepted {
            provider_message_id: Some(id),
        } => id.clone(),
        other => panic!("expected Accepted with an id, got {other:?}"),
    }
}

#[tokio::test]
async fn one_email_goes_to_post_emails_with_its_key_and_tag() {
    // Arrange
    let fake = fake(|_| {}).await;
    let resend = provider(&fake);
    let m = message(1);

    // Act
    let out = resend.send(std::slice::from_ref(&m)).await;

    // Assert
    assert_eq!(out.len(), 1);
    let id = accepted_id(&out[0]);
    let emails = fake.emails();
    assert_eq!(emails.len(), 1);
    let e = &emails[0];
    assert_eq!(e.id, id, "the provider id is Resend's email id");
    assert_eq!(e.to, vec!["person1@example.com"]);
    assert_eq!(e.from, "Acme <news@acme.test>");
    assert_eq!(e.reply_to, vec!["team@acme.test"]);
    assert_eq!(e.subject, "Checking in");
    assert_eq!(e.text.as_deref(), Some("Hello there"));
    assert_eq!(e.html.as_deref(), Some("<p>Hello there</p>"));
    assert_eq!(
        e.headers["List-Unsubscribe-Post"],
        "List-Unsubscribe=One-Click"
    );
    assert_eq!(e.tag(MESSAGE_ID_TAG), Some(m.id.as_str()));
    assert!(!e.batch);
    let r = &fake.requests()[0];
    assert_eq!(r.path, "/emails");
    assert_eq!(r.idempotency_key.as_deref(), Some(m.id.as_str()));
    assert!(r.user_agent.as_deref().unwrap().starts_with("warmline/"));
    assert_eq!(resend.limits().max_batch, 100);
    assert!(resend.takes_idempotency_key());
}

#[tokio::test]
async fn a_campaign_of_250_goes_as_batches_of_at_most_100() {
    // Arrange
    let fake = fake(|_| {}).await;
    let resend = provider(&fake);
    let batch: Vec<OutgoingMessage> = (0..250).rev().map(message).collect();

    // Act
    let out = resend.send(&batch).await;

    // Assert: one outcome per message, in the caller's order.
    assert_eq!(out.len(), 250);
    let emails = fake.emails();
    assert_eq!(emails.len(), 250);
    let by_id: BTreeMap<&str, &str> = emails
        .iter()
        .map(|e| (e.tag(MESSAGE_ID_TAG).unwrap(), e.id.as_str()))
        .collect();
    for (m, o) in batch.iter().zip(&out) {
        assert_eq!(accepted_id(o), by_id[m.id.as_str()], "{}", m.id);
    }
    let requests = fake.requests();
    assert_eq!(requests.len(), 3);
    assert!(requests.iter().all(|r| r.path == "/emails/batch"));
    assert!(
        requests
            .iter()
            .all(|r| r.batch_validation.as_deref() == Some("strict"))
    );
    assert!(
        requests
            .iter()
            .all(|r| r.idempotency_key.as_deref().unwrap().starts_with("batch-"))
    );
    assert!(emails.iter().all(|e| e.batch));
}

#[tokio::test]
async fn a_retry_of_the_same_messages_is_replayed_not_sent_again() {
    // Arrange: a batch and a single email were accepted, but (say) the
    // answers were lost and the dispatcher tries again.
    let fake = fake(|_| {}).await;
    let resend = provider(&fake);
    let batch: Vec<OutgoingMessage> = (0..5).map(message).collect();
    let first = resend.send(&batch).await;
    let single = resend.send(&[message(9)]).await;

    // Act: the same messages, the batch even in another order.
    let mut again: Vec<OutgoingMessage> = batch.clone();
    again.reverse();
    let second = resend.send(&again).await;
    let single_again = resend.send(&[message(9)]).await;

    // Assert
    assert_eq!(fake.emails().len(), 6, "nothing sent twice");
    assert_eq!(fake.replays(), 2);
    let mut expected: Vec<String> = first.iter().map(accepted_id).collect();
    expected.reverse();
    assert_eq!(second.iter().map(accepted_id).collect::<Vec<_>>(), expected);
    assert_eq!(accepted_id(&single[0]), accepted_id(&single_again[0]));
    let ids: Vec<&str> = batch.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(
        fake.requests()[2].idempotency_key.as_deref(),
        Some(batch_key(&ids, true).as_str())
    );
}

#[tokio::test]
async fn a_changed_payload_under_the_same_id_is_a_permanent_conflict() {
    // Arrange
    let fake = fake(|_| {}).await;
    let resend = provider(&fake);
    resend.send(&[message(1)]).await;
    let mut changed = message(1);
    changed.content = content("Another subject").to_payload();

    // Act
    let out = resend.send(&[changed]).await;

    // Assert
    assert!(
        matches!(&out[0], SendOutcome::Permanent { error } if error.contains("invalid_idempotent_request")),
        "{out:?}"
    );
    assert_eq!(fake.emails().len(), 1);
}

#[tokio::test]
async fn a_concurrent_request_with_the_same_key_is_retried_later() {
    // Arrange: the fake takes a while, so the second request finds the
    // first still in flight.
    let fake = fake(|c| c.latency = Duration::from_millis(400)).await;
    let resend = provider(&fake);
    let m = [message(1)];

    // Act
    let (a, b) = tokio::join!(resend.send(&m), async {
        // Poll until the first request is in flight, never a fixed sleep.
        let deadline = tokio::time::Instant::now() + WAIT;
        while fake.in_flight() == 0 {
            assert!(tokio::time::Instant::now() < deadline);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        resend.send(&m).await
    });

    // Assert: the fake records a request when it answers, so the second one
    // (answered at once) ends before the first.
    let outcomes = [&a[0], &b[0]];
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| matches!(o, SendOutcome::Accepted { .. }))
            .count(),
        1,
        "{outcomes:?}"
    );
    assert!(
        outcomes.iter().any(|o| matches!(o, SendOutcome::Retryable { error, retry_after: Some(_) } if error.contains("concurrent_idempotent_requests"))),
        "{outcomes:?}"
    );
    assert_eq!(fake.emails().len(), 1);
}

#[tokio::test]
async fn the_rate_limit_is_a_wait_and_a_pushback() {
    // Arrange: Resend's 2 requests per second.
    let fake = fake(|c| c.requests_per_second = 2).await;
    let resend = provider(&fake);

    // Act: three requests at once.
    let first = resend.send(&[message(1)]).await;
    let second = resend.send(&[message(2)]).await;
    let pushback = resend.take_pushback();
    let third = resend.send(&[message(3)]).await;

    // Assert
    accepted_id(&first[0]);
    accepted_id(&second[0]);
    let wait = pushback.expect("ratelimit-remaining: 0 pushes the limiter back");
    assert!(wait <= Duration::from_secs(1), "{wait:?}");
    assert!(
        matches!(third[0], SendOutcome::RateLimited { retry_after } if retry_after >= Duration::from_secs(1)),
        "{third:?}"
    );
    assert_eq!(fake.rate_limited(), 1);
    assert_eq!(fake.emails().len(), 2);
}

#[tokio::test]
async fn quota_errors_wait_for_the_quota() {
    // Arrange
    let fake = fake(|_| {}).await;
    fake.script(Scripted::daily_quota_exceeded());
    fake.script(Scripted::monthly_quota_exceeded());
    let resend = provider(&fake);

    // Act
    let before = Utc::now();
    let daily = resend.send(&[message(1)]).await;
    let monthly = resend.send(&[message(1)]).await;

    // Assert
    let SendOutcome::RateLimited { retry_after } = daily[0] else {
        panic!("{daily:?}");
    };
    let due = before + chrono::Duration::from_std(retry_after).unwrap();
    let midnight = next_utc_midnight(before);
    assert!(
        (due - midnight).num_seconds().abs() <= 5,
        "{due} vs {midnight}"
    );
    let SendOutcome::RateLimited {
        retry_after: monthly_wait,
    } = monthly[0]
    else {
        panic!("{monthly:?}");
    };
    assert!(monthly_wait >= retry_after);
    assert!(fake.emails().is_empty());
}

#[tokio::test]
async fn server_errors_are_retryable_and_the_retry_sends_once() {
    // Arrange
    let fake = fake(|_| {}).await;
    fake.script(Scripted::application_error());
    fake.script(Scripted::service_unavailable());
    fake.script(Scripted::bad_gateway_page());
    fake.script(Scripted {
        retry_after_secs: Some(3),
        ..Scripted::resource_locked()
    });
    let resend = provider(&fake);
    let batch: Vec<OutgoingMessage> = (0..3).map(message).collect();

    // Act
    let mut failures = Vec::new();
    for _ in 0..4 {
        failures.push(resend.send(&batch).await);
    }
    let last = resend.send(&batch).await;

    // Assert
    for (outcomes, what) in failures.iter().zip(["500", "503", "502", "409"]) {
        assert_eq!(outcomes.len(), 3);
        assert!(
            outcomes
                .iter()
                .all(|o| matches!(o, SendOutcome::Retryable { .. })),
            "{what}: {outcomes:?}"
        );
    }
    assert!(
        last.iter()
            .all(|o| matches!(o, SendOutcome::Accepted { .. }))
    );
    assert_eq!(fake.emails().len(), 3);
}

#[tokio::test]
async fn a_transport_failure_is_retryable() {
    // Arrange: a port nobody listens on.
    let unused = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", unused.local_addr().unwrap());
    drop(unused);
    let resend = ResendProvider::new(ResendConfig::new("re_x", url)).unwrap();

    // Act
    let out = resend.send(&[message(1)]).await;

    // Assert
    assert!(
        matches!(&out[0], SendOutcome::Retryable { error, .. } if error == "resend: could not connect"),
        "{out:?}"
    );
}

#[tokio::test]
async fn validation_and_auth_errors_are_permanent() {
    // Arrange
    let fake = fake(|_| {}).await;
    let resend = provider(&fake);
    let mut bad_to = message(1);
    bad_to.to = "not-an-address".into();
    let mut not_email = message(2);
    not_email.content = serde_json::json!({"body": "no subject"});
    let mut bad_from = message(3);
    bad_from.content["from"] = serde_json::json!("Acme <news@acme.test");
    let wrong_key = ResendProvider::new(ResendConfig::new("re_wrong", fake.base_url())).unwrap();

    // Act: a batch holding what we can tell is bad, a batch Resend refuses
    // (strict validation), a wrong key.
    let mixed = resend
        .send(&[message(4), bad_to, not_email, bad_from, message(5)])
        .await;
    fake.script(Scripted::error(
        422,
        "validation_error",
        "emails[1]: Invalid `to` field: nobody@nowhere.example.",
    ));
    let refused = resend.send(&[message(6), message(7)]).await;
    let auth = wrong_key.send(&[message(8)]).await;

    // Assert: the bad ones fail alone, before any call; the address is masked.
    assert!(
        matches!(&mixed[1], SendOutcome::Permanent { error } if error.contains("not a valid recipient")),
        "{mixed:?}"
    );
    assert!(
        matches!(&mixed[2], SendOutcome::Permanent { error } if error.contains("not an email payload")),
        "{mixed:?}"
    );
    assert!(
        matches!(&mixed[3], SendOutcome::Permanent { error } if error.contains("email.from")),
        "{mixed:?}"
    );
    accepted_id(&mixed[0]);
    accepted_id(&mixed[4]);
    assert_eq!(fake.emails().len(), 2);
    assert_eq!(
        refused[0], refused[1],
        "strict mode: one refusal for the batch"
    );
    assert!(
        matches!(&refused[0], SendOutcome::Permanent { error } if error.contains("validation_error") && error.contains("n***@nowhere.example")),
        "{refused:?}"
    );
    assert!(
        matches!(&auth[0], SendOutcome::Permanent { error } if error.contains("invalid_api_key")),
        "{auth:?}"
    );
    assert_eq!(fake.emails().len(), 2, "nothing else sent");
}

#[tokio::test]
async fn a_resend_that_refuses_tags_in_batch_gets_batches_without_them() {
    // Arrange
    let fake = fake(|c| c.batch_tags = BatchTags::Reject).await;
    let resend = provider(&fake);
    let batch: Vec<OutgoingMessage> = (0..3).map(message).collect();

    // Act
    let first = resend.send(&batch).await;
    let second = resend.send(&(3..6).map(message).collect::<Vec<_>>()).await;
    let single = resend.send(&[message(7)]).await;

    // Assert
    assert!(
        first
            .iter()
            .chain(&second)
            .chain(&single)
            .all(|o| matches!(o, SendOutcome::Accepted { .. }))
    );
    assert!(!resend.batch_tags());
    let emails = fake.emails();
    assert_eq!(emails.len(), 7);
    assert!(emails.iter().filter(|e| e.batch).all(|e| e.tags.is_empty()));
    assert_eq!(
        emails.last().unwrap().tag(MESSAGE_ID_TAG),
        Some(message(7).id.as_str()),
        "single sends keep their tag"
    );
    assert_eq!(fake.request_count(), 4, "one refused batch, then no more");
}

#[tokio::test]
async fn settings_register_resend_for_email() {
    // Arrange
    let fake = fake(|_| {}).await;
    let settings = ProvidersSettings {
        resend: ResendSettings {
            api_key: Some(fake.api_key().to_string().into()),
            url: Some(fake.base_url().to_string()),
            requests_per_second: Some(5.0),
            ..Default::default()
        },
        ..Default::default()
    };

    // Act
    let registry = warmline::providers::Registry::configured(&warmline::settings::Settings {
        providers: settings,
        ..Default::default()
    })
    .unwrap();

    // Assert
    let p = registry
        .for_channel(warmline::domain::Channel::Email)
        .expect("email is carried");
    assert_eq!(p.name(), "resend");
    assert_eq!(p.limits().requests_per_second, Some(5.0));
    accepted_id(&p.send(&[message(1)]).await[0]);
}

#[derive(FromQueryResult)]
struct Row {
    id: String,
    state: String,
    provider_message_id: Option<String>,
}

async fn ledger_rows(db: &DatabaseConnection) -> Vec<Row> {
    Row::find_by_statement(Statement::from_string(
        db.get_database_backend(),
        "SELECT id, state, provider_message_id FROM messages ORDER BY id",
    ))
    .all(db)
    .await
    .unwrap()
}

storage_test!(
    a_campaign_goes_through_the_dispatcher_to_resend,
    |db: TestDb| async move {
        // Arrange: 150 consented contacts, a fake Resend at 20 requests/s,
        // and the app configured for it as an operator would.
        let fake = fake(|c| c.requests_per_second = 20).await;
        let contacts = seed_contacts(&db.db, 150, true).await;
        let conn = db.db.clone();
        let (key, url) = (fake.api_key().to_string(), fake.base_url().to_string());
        let app = spawn_app_on(db, move |s| {
            s.caps.marketing_per_day = 1000;
            s.caps.marketing_per_week = 1000;
            s.providers.resend = ResendSettings {
                api_key: Some(key.into()),
                url: Some(url),
                requests_per_second: Some(20.0),
                ..Default::default()
            };
        })
        .await;
        let payload = content("Spring update").to_payload();
        let msgs: Vec<NewMessage> = contacts
            .iter()
            .map(|c| NewMessage {
                source: "campaign:resend-e2e".into(),
                campaign_id: None,
                contact_id: Some(*c),
                channel: warmline::domain::Channel::Email,
                kind: warmline::domain::MessageKind::Marketing,
                address: None,
                provider: "resend".into(),
                payload: payload.clone(),
                template: None,
                state: MessageState::Queued,
                due_at: Utc::now(),
            })
            .collect();

        // Act
        assert_eq!(
            ledger::enqueue(&conn, &msgs, Utc::now()).await.unwrap(),
            150
        );
        app.app.dispatcher.wake();

        // Assert: the fake got each once, and the ledger says sent with
        // Resend's id, both read with deadlines.
        assert!(
            fake.wait_for_emails(150, WAIT).await,
            "150 emails reach Resend"
        );
        let deadline = tokio::time::Instant::now() + WAIT;
        let rows = loop {
            let rows = ledger_rows(&conn).await;
            if rows.iter().all(|r| r.state == "sent") {
                break rows;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the ledger records every send"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let emails = fake.emails();
        assert_eq!(emails.len(), 150, "nothing sent twice");
        let by_tag: BTreeMap<&str, &str> = emails
            .iter()
            .map(|e| (e.tag(MESSAGE_ID_TAG).expect("tagged"), e.id.as_str()))
            .collect();
        assert_eq!(by_tag.len(), 150);
        for r in &rows {
            assert_eq!(
                r.provider_message_id.as_deref(),
                Some(by_tag[r.id.as_str()]),
                "{}",
                r.id
            );
        }
        assert!(
            emails
                .iter()
                .all(|e| e.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click")
        );
        assert!(emails.iter().all(|e| e.to[0].ends_with("@example.com")));
        let requests = fake.requests();
        assert!(
            requests.iter().all(|r| r.status == 200),
            "no refusals, no 429s"
        );
        assert!(requests.iter().all(|r| r.idempotency_key.is_some()));
        assert!(requests.len() <= 6, "batched: {} requests", requests.len());
        // A batch's key covers the request, not each message: every
        // message sent in a batch went through the committed `called_at`
        // crash window, so a crash there leaves it ambiguous rather than
        // re-sent in a differently formed batch.
        let in_window = warmline::db::count(
            &conn,
            "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM messages WHERE source = $1 AND called_at IS NOT NULL",
            vec![sea_orm::Value::from("campaign:resend-e2e")],
        )
        .await
        .unwrap();
        let single = requests.iter().filter(|r| r.path == "/emails").count();
        assert!(single < 150, "at least one batch");
        assert_eq!(in_window as usize, 150 - single);
        drop(app);
    }
);
