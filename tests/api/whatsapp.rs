//! WhatsApp through the Cloud API, against the fake Graph API
//! (`providers::meta::fake`): text and templates on the wire, each error
//! code's effect on the ledger (131047, 131056, 130429, 131050, 131026,
//! 131049, 500), statuses through `POST /webhooks/meta` (signed with
//! `X-Hub-Signature-256`), inbound messages and STOP, and the `GET`
//! handshake. Every test runs on SQLite and PostgreSQL.

use std::time::Duration;

use chrono::Utc;
use sea_orm::{
    ActiveValue::Set, DatabaseConnection, EntityTrait, FromQueryResult, Statement, Value,
};
use serde_json::json;
use warmline::{
    db::entities::{consents, contacts},
    dispatcher::ledger::{self, NewMessage},
    domain::{Channel, MessageKind, MessageState},
    providers::{
        meta::{
            fake::{FakeConfig, FakeMeta, Scripted, Signing},
            settings::MetaSettings,
        },
        whatsapp::settings::WhatsappSettings,
    },
    settings::Settings,
};

use crate::{
    helpers::{TestApp, spawn_app_on},
    storage_test,
    test_db::TestDb,
};

pub const WAIT: Duration = Duration::from_secs(30);
pub const VERIFY: &str = "warmline-verify-token";

pub async fn fake() -> FakeMeta {
    let fake = FakeMeta::start(FakeConfig::default())
        .await
        .expect("the fake starts");
    fake.register_template(
        "spring_offer",
        "en_US",
        "MARKETING",
        "APPROVED",
        "Hi {{1}}, spring is here: 20% off this week.",
    );
    fake.register_template(
        "order_ready",
        "en_US",
        "UTILITY",
        "APPROVED",
        "Your order is ready.",
    );
    fake
}

/// The app, configured for the fake as an operator would.
pub async fn spawn(db: TestDb, fake: &FakeMeta, f: impl FnOnce(&mut Settings)) -> TestApp {
    let c = fake.config().clone();
    let base = fake.base_url().to_string();
    spawn_app_on(db, move |s| {
        s.meta = MetaSettings {
            app_secret: Some(c.app_secret.clone().into()),
            verify_token: Some(VERIFY.to_string().into()),
            graph_url: Some(base),
            graph_version: None,
        };
        s.providers.whatsapp = WhatsappSettings {
            access_token: Some(c.access_token.clone().into()),
            phone_number_id: Some(c.phone_number_id.clone()),
            business_account_id: Some(c.business_account_id.clone()),
            requests_per_second: None,
        };
        s.quiet_hours.whatsapp = None;
        s.caps.marketing_per_day = 1000;
        s.caps.marketing_per_week = 1000;
        s.dispatcher.retry_base_secs = 0.2;
        f(s);
    })
    .await
}

pub fn phone(i: usize) -> String {
    format!("+1415555{i:04}")
}

pub fn url(app: &TestApp) -> String {
    format!("{}/webhooks/meta", app.base)
}

/// Contacts with a phone and WhatsApp consent.
pub async fn people(db: &DatabaseConnection, n: usize) -> Vec<i64> {
    let now = Utc::now();
    let mut ids = Vec::new();
    for i in 0..n {
        let id = contacts::Entity::insert(contacts::ActiveModel {
            phone: Set(Some(phone(i))),
            status: Set("active".into()),
            tags: Set("[]".into()),
            warmth: Set(50.0),
            metadata: Set("{}".into()),
            timezone: Set(Some("America/New_York".into())),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        })
        .exec(db)
        .await
        .unwrap()
        .last_insert_id;
        consents::Entity::insert(consents::ActiveModel {
            contact_id: Set(id),
            channel: Set("whatsapp".into()),
            granted: Set(true),
            source: Set("form".into()),
            recorded_at: Set(now),
            ..Default::default()
        })
        .exec(db)
        .await
        .unwrap();
        ids.push(id);
    }
    ids
}

pub fn template(name: &str, category: &str, params: &[&str]) -> serde_json::Value {
    json!({"text": format!("({name})"), "template": {"name": name, "language": "en_US", "category": category, "parameters": params}})
}

/// Queues one WhatsApp message per contact; returns their ledger ids.
pub async fn send(
    app: &TestApp,
    db: &DatabaseConnection,
    source: &str,
    contacts: &[i64],
    payload: serde_json::Value,
) -> Vec<String> {
    let kind = if payload
        .get("template")
        .is_some_and(|t| t["category"] == "MARKETING")
    {
        MessageKind::Marketing
    } else {
        MessageKind::Transactional
    };
    let msgs: Vec<NewMessage> = contacts
        .iter()
        .map(|c| NewMessage {
            source: source.into(),
            campaign_id: None,
            contact_id: Some(*c),
            channel: Channel::Whatsapp,
            kind,
            address: None,
            provider: "whatsapp".into(),
            payload: payload.clone(),
            template: None,
            state: MessageState::Queued,
            due_at: Utc::now(),
        })
        .collect();
    ledger::enqueue(db, &msgs, Utc::now()).await.unwrap();
    app.app.dispatcher.wake();
    msgs.iter().map(NewMessage::id).collect()
}

#[derive(Debug, FromQueryResult)]
pub struct Row {
    pub state: String,
    pub provider_message_id: Option<String>,
    pub last_error: Option<String>,
}

pub async fn row(db: &DatabaseConnection, id: &str) -> Row {
    Row::find_by_statement(Statement::from_sql_and_values(
        db.get_database_backend(),
        "SELECT state, provider_message_id, last_error FROM messages WHERE id = $1",
        [Value::from(id.to_string())],
    ))
    .one(db)
    .await
    .unwrap()
    .expect("the message exists")
}

/// Waits (under a deadline) until every message is in `state`.
pub async fn wait_for_state(db: &DatabaseConnection, ids: &[String], state: &str) -> Vec<Row> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let mut rows = Vec::new();
        for id in ids {
            rows.push(row(db, id).await);
        }
        if rows.iter().all(|r| r.state == state) {
            return rows;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "messages never reached {state}: {rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn count(db: &DatabaseConnection, sql: &str, values: Vec<Value>) -> i64 {
    warmline::db::count(db, sql, values).await.unwrap()
}

#[derive(Debug, FromQueryResult)]
pub struct ConsentRow {
    pub granted: bool,
    pub source: String,
}

pub async fn newest_consent(db: &DatabaseConnection, contact: i64, channel: &str) -> ConsentRow {
    ConsentRow::find_by_statement(Statement::from_sql_and_values(
        db.get_database_backend(),
        "SELECT granted, source FROM consents WHERE contact_id = $1 AND channel = $2 ORDER BY id DESC LIMIT 1",
        [Value::from(contact), Value::from(channel.to_string())],
    ))
    .one(db)
    .await
    .unwrap()
    .expect("a consent row")
}

async fn events_of(db: &DatabaseConnection, id: &str) -> String {
    #[derive(FromQueryResult)]
    struct E {
        state: String,
        detail: Option<String>,
    }
    E::find_by_statement(Statement::from_sql_and_values(
        db.get_database_backend(),
        "SELECT state, detail FROM message_events WHERE message_id = $1 ORDER BY id",
        [Value::from(id.to_string())],
    ))
    .all(db)
    .await
    .unwrap()
    .into_iter()
    .map(|e| format!("{}: {}", e.state, e.detail.unwrap_or_default()))
    .collect::<Vec<_>>()
    .join("\n")
}

storage_test!(
    text_and_templates_go_on_the_wire_and_statuses_only_move_forward,
    |db: TestDb| async move {
        // Arrange: person 0 wrote to us (their window is open).
        let fake = fake().await;
        let conn = db.db.clone();
        let people = people(&conn, 3).await;
        let app = spawn(db, &fake, |_| {}).await;
        let hello = fake
            .inbound_text(&url(&app), &phone(0), "Hello there")
            .await;
        assert_eq!(hello.status, 200, "{hello:?}");

        // Act: a free-form text to person 0, a template to 1 and 2.
        let text = send(
            &app,
            &conn,
            "reply:wa-wire",
            &people[..1],
            json!({"text": "Thanks! It comes in blue/green — café"}),
        )
        .await;
        let templates = send(
            &app,
            &conn,
            "campaign:wa-wire",
            &people[1..],
            template("spring_offer", "MARKETING", &["Ada"]),
        )
        .await;

        // Assert: on the wire as the Cloud API documents.
        assert!(
            fake.wait_for_accepted(3, WAIT).await,
            "{:?}",
            fake.requests()
        );
        let text_rows = wait_for_state(&conn, &text, "sent").await;
        let tpl_rows = wait_for_state(&conn, &templates, "sent").await;
        let accepted = fake.accepted();
        assert_eq!(accepted.len(), 3, "nothing sent twice");
        let t = accepted.iter().find(|a| a.kind == "text").unwrap();
        assert_eq!(
            t.body,
            json!({"messaging_product":"whatsapp","recipient_type":"individual","to":"14155550000",
                   "type":"text","text":{"body":"Thanks! It comes in blue/green — café","preview_url":false},
                   "biz_opaque_callback_data": text[0]})
        );
        for a in accepted.iter().filter(|a| a.kind == "template") {
            assert_eq!(
                a.body["template"],
                json!({"name":"spring_offer","language":{"code":"en_US"},"components":[{"type":"body","parameters":[{"type":"text","text":"Ada"}]}]})
            );
            assert_eq!(
                a.text.as_deref(),
                Some("Hi Ada, spring is here: 20% off this week.")
            );
        }
        let wamid = |r: &Row| r.provider_message_id.clone().expect("the wamid");
        assert!(wamid(&text_rows[0]).starts_with("wamid."));

        // Act: statuses, out of order, redelivered, forged.
        let read_only = fake
            .status(&url(&app), &wamid(&text_rows[0]), "read", None)
            .await;
        let delivered = fake
            .status(&url(&app), &wamid(&tpl_rows[0]), "delivered", None)
            .await;
        let read = fake
            .status(&url(&app), &wamid(&tpl_rows[0]), "read", None)
            .await;
        let late_sent = fake
            .status(&url(&app), &wamid(&tpl_rows[0]), "sent", None)
            .await;
        let again = fake
            .status(&url(&app), &wamid(&tpl_rows[0]), "read", None)
            .await;
        let failed = fake
            .status(&url(&app), &wamid(&tpl_rows[1]), "failed", Some(131026))
            .await;
        let events_before = app.count_rows("provider_events").await;
        let forged_body = fake.status_body(&wamid(&tpl_rows[0]), "failed", Some(131026));
        let forged = fake.post(&url(&app), &forged_body, Signing::Forged).await;
        let unsigned = fake.post(&url(&app), &forged_body, Signing::Missing).await;

        // Assert
        for a in [&read_only, &delivered, &read, &late_sent, &again, &failed] {
            assert_eq!(a.status, 200, "{a:?}");
        }
        assert!(again.body.contains("duplicate"), "{}", again.body);
        assert_eq!((forged.status, unsigned.status), (403, 403));
        assert_eq!(
            app.count_rows("provider_events").await,
            events_before,
            "a forgery stores nothing"
        );
        assert_eq!(
            row(&conn, &text[0]).await.state,
            "delivered",
            "read without delivered implies it"
        );
        assert_eq!(
            row(&conn, &templates[0]).await.state,
            "delivered",
            "never backwards"
        );
        let f = row(&conn, &templates[1]).await;
        assert_eq!(f.state, "failed");
        let history = events_of(&conn, &templates[1]).await;
        assert!(history.contains("131026"), "{history}");
        assert!(!history.contains("14155550002"), "masked: {history}");
        let opened = events_of(&conn, &templates[0]).await;
        assert!(
            opened.to_lowercase().contains("open"),
            "read is kept as an engagement: {opened}"
        );
        drop(app);
    }
);

storage_test!(
    window_pair_and_throughput_errors_each_do_what_they_mean,
    |db: TestDb| async move {
        // Arrange
        let fake = fake().await;
        let conn = db.db.clone();
        let people = people(&conn, 4).await;
        let app = spawn(db, &fake, |_| {}).await;

        // Act: free-form to someone who never wrote: 131047, not retried.
        let outside = send(
            &app,
            &conn,
            "reply:wa-131047",
            &people[..1],
            json!({"text": "Hi"}),
        )
        .await;
        let rows = wait_for_state(&conn, &outside, "failed").await;

        // Assert
        let e = rows[0].last_error.clone().unwrap();
        assert!(e.contains("131047") && e.contains("template"), "{e}");
        assert_eq!(fake.requests().len(), 1, "no retry");

        // Act: 131056 for one pair, while another person's message goes.
        fake.script(Scripted::code(131056));
        let paired = send(
            &app,
            &conn,
            "campaign:wa-131056",
            &people[1..2],
            template("order_ready", "UTILITY", &[]),
        )
        .await;
        let first_refused = {
            let deadline = tokio::time::Instant::now() + WAIT;
            loop {
                if let Some(r) = fake.requests().iter().find(|r| r.code == Some(131056)) {
                    break r.at;
                }
                assert!(tokio::time::Instant::now() < deadline);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        let other = send(
            &app,
            &conn,
            "campaign:wa-other",
            &people[2..3],
            template("order_ready", "UTILITY", &[]),
        )
        .await;
        wait_for_state(&conn, &other, "sent").await;
        wait_for_state(&conn, &paired, "sent").await;

        // Assert: the other person was not held; the pair waited its 6 s.
        let accepted = fake.accepted();
        let to = |i: usize| phone(i).trim_start_matches('+').to_string();
        let other_at = accepted.iter().find(|a| a.to == to(2)).unwrap().at;
        let paired_at = accepted.iter().find(|a| a.to == to(1)).unwrap().at;
        assert!(
            other_at < paired_at,
            "the pair's retry does not hold others"
        );
        assert!(
            paired_at.duration_since(first_refused) >= Duration::from_millis(5900),
            "retried after the pair's 6 s: {:?}",
            paired_at.duration_since(first_refused)
        );

        // Act: 130429 then a 500: the number slows down, then retries.
        fake.script(Scripted::code(130429));
        fake.script(Scripted::code(500));
        let slowed = send(
            &app,
            &conn,
            "campaign:wa-130429",
            &people[3..4],
            template("order_ready", "UTILITY", &[]),
        )
        .await;
        wait_for_state(&conn, &slowed, "sent").await;

        // Assert
        let requests = fake.requests();
        let codes: Vec<Option<i64>> = requests
            .iter()
            .filter(|r| r.status != 200)
            .map(|r| r.code)
            .collect();
        assert_eq!(
            codes,
            [Some(131047), Some(131056), Some(130429), Some(131000)]
        );
        let throttled = requests
            .iter()
            .position(|r| r.code == Some(130429))
            .unwrap();
        assert!(
            requests[throttled + 1]
                .at
                .duration_since(requests[throttled].at)
                >= Duration::from_millis(900),
            "130429 holds the sender about a second"
        );
        assert_eq!(
            fake.accepted().iter().filter(|a| a.to == to(3)).count(),
            1,
            "once"
        );
        drop(app);
    }
);

storage_test!(
    an_opt_out_revokes_whatsapp_consent_and_refusals_are_not_retried,
    |db: TestDb| async move {
        // Arrange: person 0 stopped marketing messages inside WhatsApp.
        let fake = fake().await;
        let conn = db.db.clone();
        let people = people(&conn, 3).await;
        let app = spawn(db, &fake, |_| {}).await;
        fake.stop_marketing(&phone(0));

        // Act
        let stopped = send(
            &app,
            &conn,
            "campaign:wa-131050",
            &people[..1],
            template("spring_offer", "MARKETING", &["Ada"]),
        )
        .await;
        let stopped = wait_for_state(&conn, &stopped, "failed").await;
        fake.script(Scripted::code(131026));
        let undeliverable = send(
            &app,
            &conn,
            "campaign:wa-131026",
            &people[1..2],
            template("spring_offer", "MARKETING", &["Bo"]),
        )
        .await;
        let undeliverable = wait_for_state(&conn, &undeliverable, "failed").await;
        fake.script(Scripted::code(131049));
        let ecosystem = send(
            &app,
            &conn,
            "campaign:wa-131049",
            &people[2..3],
            template("spring_offer", "MARKETING", &["Cy"]),
        )
        .await;
        let ecosystem = wait_for_state(&conn, &ecosystem, "failed").await;

        // Assert
        assert!(stopped[0].last_error.as_deref().unwrap().contains("131050"));
        let consent = newest_consent(&conn, people[0], "whatsapp").await;
        assert!(!consent.granted);
        assert_eq!(consent.source, "provider:whatsapp");
        assert!(
            undeliverable[0]
                .last_error
                .as_deref()
                .unwrap()
                .contains("131026")
        );
        assert!(
            ecosystem[0]
                .last_error
                .as_deref()
                .unwrap()
                .contains("131049")
        );
        assert!(newest_consent(&conn, people[1], "whatsapp").await.granted);
        assert_eq!(fake.requests().len(), 3, "none retried");
        assert!(fake.accepted().is_empty());
        drop(app);
    }
);

storage_test!(
    signed_replies_become_interactions_and_stop_revokes_whatsapp_consent,
    |db: TestDb| async move {
        // Arrange
        let fake = fake().await;
        let conn = db.db.clone();
        let people = people(&conn, 2).await;
        let app = spawn(db, &fake, |_| {}).await;

        // Act: a text, redelivered; a quick-reply button; a list reply; STOP.
        let (id, body) = fake.inbound_text_body(&phone(0), "Does it come in another colour? ☺");
        let first = fake.post(&url(&app), &body, Signing::Valid).await;
        let again = fake.post(&url(&app), &body, Signing::Valid).await;
        let button = fake
            .inbound_button(&url(&app), &phone(0), "Tell me more", "MORE")
            .await;
        let list = fake
            .inbound_interactive(&url(&app), &phone(0), "list_reply", "Tuesday")
            .await;
        let rows_before = app.count_rows("inbound_messages").await;
        let forged = fake
            .post(
                &url(&app),
                &fake.inbound_text_body(&phone(0), "START").1,
                Signing::Forged,
            )
            .await;
        let stop = fake.inbound_text(&url(&app), &phone(1), "STOP").await;

        // Assert
        for a in [&first, &again, &button, &list, &stop] {
            assert_eq!(a.status, 200, "{a:?}");
        }
        assert_eq!(forged.status, 403);
        assert_eq!(rows_before, 3, "the redelivery ({id}) stored once");
        #[derive(FromQueryResult)]
        struct Inbound {
            text: String,
            channel: String,
            contact_id: Option<i64>,
        }
        let stored = Inbound::find_by_statement(Statement::from_sql_and_values(
            conn.get_database_backend(),
            "SELECT text, channel, contact_id FROM inbound_messages ORDER BY id",
            [],
        ))
        .all(&conn)
        .await
        .unwrap();
        let texts: Vec<&str> = stored.iter().map(|s| s.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "Does it come in another colour? ☺",
                "Tell me more",
                "Tuesday",
                "STOP"
            ]
        );
        assert!(stored.iter().all(|s| s.channel == "whatsapp"));
        assert_eq!(stored[0].contact_id, Some(people[0]));
        assert_eq!(
            count(&conn, "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM interactions WHERE contact_id = $1 AND direction = 'inbound' AND channel = 'whatsapp'", vec![Value::from(people[0])]).await,
            3
        );
        let consent = newest_consent(&conn, people[1], "whatsapp").await;
        assert!(
            !consent.granted,
            "STOP on WhatsApp revokes WhatsApp consent"
        );
        assert!(newest_consent(&conn, people[0], "whatsapp").await.granted);
        drop(app);
    }
);

storage_test!(
    the_get_handshake_answers_the_challenge_only_for_our_token,
    |db: TestDb| async move {
        // Arrange
        let fake = fake().await;
        let app = spawn(db, &fake, |_| {}).await;

        // Act
        let ok = fake
            .handshake(&url(&app), "subscribe", VERIFY, "1158201444")
            .await;
        let wrong = fake
            .handshake(&url(&app), "subscribe", "guess", "1158201444")
            .await;
        let mode = fake.handshake(&url(&app), "unsubscribe", VERIFY, "1").await;
        let twilio = app
            .client
            .get(format!("{}/webhooks/resend", app.base))
            .send()
            .await
            .unwrap();

        // Assert
        assert_eq!((ok.status, ok.body.as_str()), (200, "1158201444"));
        assert!(
            ok.content_type
                .as_deref()
                .unwrap()
                .starts_with("text/plain")
        );
        assert_eq!((wrong.status, mode.status), (403, 403));
        assert!(!wrong.body.contains(VERIFY));
        assert_eq!(twilio.status().as_u16(), 404, "no receiver there");
        let registry = app.app.dispatcher.registry();
        assert_eq!(registry.webhook_of("whatsapp").unwrap().route(), "meta");
        assert_eq!(registry.webhook_of("instagram").unwrap().route(), "meta");
        drop(app);
    }
);
