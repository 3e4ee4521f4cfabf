//! SMS through Twilio, against the fake Twilio (`providers::twilio::fake`):
//! what goes on the wire, the status callbacks and incoming messages
//! through `POST /webhooks/twilio/{status,inbound}` (signed as Twilio
//! signs, over the public URL the app is configured with), the consent and
//! contact effects of 21610 / 21211 / 21614, the sender's throughput, and
//! carrier filtering reaching the approvals channel. Every test runs on
//! SQLite and PostgreSQL.
//!
//! The app runs behind a "proxy": `WARMLINE_PUBLIC_URL` is
//! `https://warm.example.org`, and the fake signs for that URL but POSTs to
//! the app's real address, as Twilio would reach it through one.

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
    providers::twilio::{
        fake::{FakeConfig, FakeTwilio, Scripted},
        settings::TwilioSettings,
    },
    settings::Settings,
};

use crate::{
    helpers::{TestApp, spawn_app_on},
    storage_test,
    test_db::TestDb,
};

const PUBLIC: &str = "https://warm.example.org";
const APPROVALS: &str = "C0APPROVE";
const WAIT: Duration = Duration::from_secs(20);

async fn fake(rate: u32) -> FakeTwilio {
    FakeTwilio::start(FakeConfig {
        requests_per_second: rate,
        ..FakeConfig::default()
    })
    .await
    .expect("the fake starts")
}

/// The app, configured for the fake as an operator would, at `mps`.
async fn spawn(db: TestDb, fake: &FakeTwilio, mps: f64, f: impl FnOnce(&mut Settings)) -> TestApp {
    let twilio = TwilioSettings {
        account_sid: Some(fake.account_sid().into()),
        auth_token: Some(fake.auth_token().to_string().into()),
        from: Some(fake.number().into()),
        url: Some(fake.base_url().into()),
        requests_per_second: Some(mps),
        ..Default::default()
    };
    let app = spawn_app_on(db, move |s| {
        s.providers.twilio = twilio;
        s.server.public_url = Some(PUBLIC.parse().unwrap());
        // TCPA quiet hours would defer sends depending on when tests run.
        s.quiet_hours.sms = None;
        s.caps.marketing_per_day = 1000;
        s.caps.marketing_per_week = 1000;
        s.slack.approvals_channel = Some(APPROVALS.into());
        f(s);
    })
    .await;
    fake.route_public_url(PUBLIC, &app.base);
    app
}

fn phone(i: usize) -> String {
    format!("+1415555{i:04}")
}

/// Contacts with a phone and SMS consent.
async fn contacts_with_phones(db: &DatabaseConnection, n: usize) -> Vec<i64> {
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
            channel: Set("sms".into()),
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

async fn campaign(db: &DatabaseConnection) -> i64 {
    #[derive(FromQueryResult)]
    struct Id {
        id: i64,
    }
    Id::find_by_statement(Statement::from_sql_and_values(
        db.get_database_backend(),
        "INSERT INTO campaigns (name, channel, state, created_by, created_at, updated_at, slack_channel, slack_ts) \
         VALUES ('Spring texts', 'sms', 'running', 'U0001USER', $1, $1, 'C0CAMPAIGN', '1700000000.000100') RETURNING id",
        [Value::from(Utc::now())],
    ))
    .one(db)
    .await
    .unwrap()
    .unwrap()
    .id
}

/// Queues one marketing SMS per contact; returns their ledger ids.
async fn send(
    app: &TestApp,
    db: &DatabaseConnection,
    source: &str,
    campaign_id: Option<i64>,
    contacts: &[i64],
) -> Vec<String> {
    let msgs: Vec<NewMessage> = contacts
        .iter()
        .map(|c| NewMessage {
            source: source.into(),
            campaign_id,
            contact_id: Some(*c),
            channel: Channel::Sms,
            kind: MessageKind::Marketing,
            address: None,
            provider: "twilio".into(),
            payload: json!({"text": "Spring is here: 20% off this week. Reply STOP to opt out."}),
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
struct Row {
    state: String,
    provider_message_id: Option<String>,
    last_error: Option<String>,
}

async fn row(db: &DatabaseConnection, id: &str) -> Row {
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

/// Waits (with a deadline) until every message is in `state`.
async fn wait_for_state(db: &DatabaseConnection, ids: &[String], state: &str) -> Vec<Row> {
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

async fn count(db: &DatabaseConnection, sql: &str, values: Vec<Value>) -> i64 {
    warmline::db::count(db, sql, values).await.unwrap()
}

async fn events_of(db: &DatabaseConnection, id: &str) -> Vec<String> {
    #[derive(FromQueryResult)]
    struct E {
        detail: Option<String>,
    }
    E::find_by_statement(Statement::from_sql_and_values(
        db.get_database_backend(),
        "SELECT detail FROM message_events WHERE message_id = $1 ORDER BY id",
        [Value::from(id.to_string())],
    ))
    .all(db)
    .await
    .unwrap()
    .into_iter()
    .filter_map(|e| e.detail)
    .collect()
}

#[derive(Debug, FromQueryResult)]
struct ConsentRow {
    granted: bool,
    source: String,
}

async fn newest_consent(db: &DatabaseConnection, contact: i64) -> ConsentRow {
    ConsentRow::find_by_statement(Statement::from_sql_and_values(
        db.get_database_backend(),
        "SELECT granted, source FROM consents WHERE contact_id = $1 AND channel = 'sms' ORDER BY id DESC LIMIT 1",
        [Value::from(contact)],
    ))
    .one(db)
    .await
    .unwrap()
    .expect("a consent row")
}

fn status_url() -> String {
    format!("{PUBLIC}/webhooks/twilio/status")
}

fn inbound_url() -> String {
    format!("{PUBLIC}/webhooks/twilio/inbound")
}

storage_test!(
    sms_go_to_twilio_and_signed_status_callbacks_move_the_ledger_forward,
    |db: TestDb| async move {
        // Arrange
        let fake = fake(100).await;
        let conn = db.db.clone();
        let people = contacts_with_phones(&conn, 3).await;
        let app = spawn(db, &fake, 10.0, |_| {}).await;

        // Act: the dispatcher sends three SMS.
        let ids = send(&app, &conn, "campaign:twilio-wire", None, &people).await;

        // Assert: on the wire as Twilio documents, and the sids recorded.
        assert!(fake.wait_for_messages(3, WAIT).await, "3 SMS reach Twilio");
        let rows = wait_for_state(&conn, &ids, "sent").await;
        let sent = fake.messages();
        assert_eq!(sent.len(), 3, "nothing sent twice");
        for s in &sent {
            assert_eq!(s.from.as_deref(), Some(fake.number()));
            assert!(s.body.starts_with("Spring is here"));
            assert_eq!(s.status_callback.as_deref(), Some(status_url().as_str()));
            assert!(s.sid.starts_with("SM") && s.sid.len() == 34, "{}", s.sid);
        }
        let mut tos: Vec<&str> = sent.iter().map(|s| s.to.as_str()).collect();
        tos.sort();
        assert_eq!(tos, [phone(0), phone(1), phone(2)]);
        assert!(fake.requests().iter().all(|r| r.status == 201
            && r.content_type.as_deref() == Some("application/x-www-form-urlencoded")));
        let sid_of = |i: usize| rows[i].provider_message_id.clone().expect("the sid");
        assert!(sent.iter().any(|s| s.sid == sid_of(0)));
        // A crash inside the key-less call would leave these ambiguous.
        assert_eq!(
            count(
                &conn,
                "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM messages WHERE source = $1 AND called_at IS NOT NULL",
                vec![Value::from("campaign:twilio-wire")]
            )
            .await,
            3
        );

        // Act: callbacks, one out of order, one redelivered, one forged.
        let delivered = fake.status_callback(&sid_of(0), "delivered", None).await;
        let late_sent = fake.status_callback(&sid_of(0), "sent", None).await;
        let undelivered = fake
            .status_callback(&sid_of(1), "undelivered", Some("30003"))
            .await;
        let first = fake.status_callback(&sid_of(2), "delivered", None).await;
        let again = fake.status_callback(&sid_of(2), "delivered", None).await;
        let events_before = app.count_rows("provider_events").await;
        let forged_params = vec![
            ("MessageSid", sid_of(2)),
            ("MessageStatus", "undelivered".to_string()),
            ("ErrorCode", "30005".to_string()),
        ];
        let forged = fake
            .post_signed(&status_url(), &forged_params, Some("bm90IGl0"))
            .await;
        let unsigned = fake
            .post_signed(&status_url(), &forged_params, Some(""))
            .await;

        // Assert
        for a in [&delivered, &late_sent, &undelivered, &first, &again] {
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
            row(&conn, &ids[0]).await.state,
            "delivered",
            "never backwards"
        );
        assert_eq!(
            row(&conn, &ids[1]).await.state,
            "bounced",
            "30003 counts like a bounce"
        );
        assert_eq!(row(&conn, &ids[2]).await.state, "delivered");
        let detail = events_of(&conn, &ids[1]).await.join("\n");
        assert!(
            detail.contains("30003") && detail.contains("unreachable handset"),
            "{detail}"
        );
        assert_eq!(
            count(
                &conn,
                "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM suppressions",
                vec![]
            )
            .await,
            0,
            "an unreachable handset is not suppressed"
        );

        // `/warm status` and the App Home: SMS carried, the webhook verified.
        let status = warmline::slack::setup_status::gather(&app.app, Utc::now())
            .await
            .unwrap();
        let sms = status
            .sections
            .iter()
            .find(|s| s.title == "SMS")
            .expect("an SMS section");
        let lines: Vec<String> = sms.rows.iter().map(|r| r.line()).collect();
        let text = lines.join("\n");
        assert!(
            text.contains(":white_check_mark: *Provider*: Twilio · up to 10/s"),
            "{text}"
        );
        assert!(
            text.contains("Twilio: webhook secret set · last verified event"),
            "{text}"
        );
        assert!(!text.contains("never"), "{text}");
        drop(app);
    }
);

storage_test!(
    an_opt_out_at_twilio_revokes_consent_and_a_bad_number_is_flagged_without_retry,
    |db: TestDb| async move {
        // Arrange: the first person replied STOP to our number at Twilio.
        let fake = fake(100).await;
        let conn = db.db.clone();
        let people = contacts_with_phones(&conn, 3).await;
        let app = spawn(db, &fake, 10.0, |_| {}).await;
        fake.opt_out(&phone(0));

        // Act: 21610 from Twilio's own opt-out list.
        let opted = send(&app, &conn, "campaign:twilio-2161x-a", None, &people[..1]).await;
        let opted = wait_for_state(&conn, &opted, "failed").await;

        // Assert
        assert!(opted[0].last_error.as_deref().unwrap().contains("21610"));
        let consent = newest_consent(&conn, people[0]).await;
        assert!(!consent.granted);
        assert_eq!(consent.source, "provider:twilio");
        assert_eq!(fake.requests().len(), 1, "no retry");

        // Act: 21211 and 21614, one message each.
        fake.script(Scripted::invalid_to());
        let invalid = send(&app, &conn, "campaign:twilio-2161x-b", None, &people[1..2]).await;
        wait_for_state(&conn, &invalid, "failed").await;
        fake.script(Scripted::not_mobile());
        let landline = send(&app, &conn, "campaign:twilio-2161x-c", None, &people[2..3]).await;
        wait_for_state(&conn, &landline, "failed").await;

        // Assert: the phones are flagged (reason and time), consent untouched.
        for (contact, code) in [(people[1], "21211"), (people[2], "21614")] {
            let meta = contacts::Entity::find_by_id(contact)
                .one(&conn)
                .await
                .unwrap()
                .unwrap()
                .metadata;
            let meta: serde_json::Value = serde_json::from_str(&meta).unwrap();
            let flag = &meta["phone_invalid"];
            assert!(flag["reason"].as_str().unwrap().contains(code), "{meta}");
            assert!(flag["at"].as_str().is_some(), "{meta}");
            assert_eq!(flag["provider"], "twilio");
            assert!(newest_consent(&conn, contact).await.granted);
        }
        assert_eq!(fake.requests().len(), 3, "refusals are not retried");
        assert!(fake.messages().is_empty());

        // Act (2): another send to the number Twilio called invalid.
        let again = send(&app, &conn, "campaign:twilio-2161x-d", None, &people[1..2]).await;

        // Assert (2): suppressed, so stopped before Twilio.
        wait_for_state(&conn, &again, "skipped").await;
        assert_eq!(
            count(
                &conn,
                "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM suppressions \
                 WHERE reason = 'invalid_address' AND source = 'provider:twilio'",
                vec![]
            )
            .await,
            2
        );
        assert_eq!(fake.requests().len(), 3, "nothing more reached Twilio");
        drop(app);
    }
);

storage_test!(
    throughput_refusals_slow_the_sender_and_every_message_goes_once,
    |db: TestDb| async move {
        // Arrange: a 2-MPS sender, and Twilio refusing twice for throughput.
        let fake = fake(100).await;
        let conn = db.db.clone();
        let people = contacts_with_phones(&conn, 6).await;
        let app = spawn(db, &fake, 2.0, |_| {}).await;
        fake.script(Scripted::too_many_requests());
        fake.script(Scripted::throughput_exceeded());
        fake.script(Scripted::server_error());

        // Act
        let ids = send(&app, &conn, "campaign:twilio-rate", None, &people).await;

        // Assert
        assert!(fake.wait_for_messages(6, Duration::from_secs(40)).await);
        wait_for_state(&conn, &ids, "sent").await;
        assert_eq!(fake.messages().len(), 6, "nothing sent twice");
        let refused: Vec<Option<u32>> = fake
            .requests()
            .iter()
            .filter(|r| r.status != 201)
            .map(|r| r.code)
            .collect();
        assert_eq!(refused, [Some(20429), Some(30022), Some(20500)]);
        assert!(
            fake.max_requests_in_any_second() <= 2,
            "never over the sender's MPS: {}",
            fake.max_requests_in_any_second()
        );
        drop(app);
    }
);

storage_test!(
    carrier_filtering_alerts_the_approvals_channel_and_feeds_the_breaker,
    |db: TestDb| async move {
        // Arrange
        let fake = fake(100).await;
        let conn = db.db.clone();
        let people = contacts_with_phones(&conn, 1).await;
        let app = spawn(db, &fake, 10.0, |_| {}).await;
        let campaign = campaign(&conn).await;
        let ids = send(
            &app,
            &conn,
            "campaign:twilio-filter",
            Some(campaign),
            &people,
        )
        .await;
        let rows = wait_for_state(&conn, &ids, "sent").await;

        // Act
        let answer = fake
            .status_callback(
                rows[0].provider_message_id.as_deref().unwrap(),
                "undelivered",
                Some("30007"),
            )
            .await;

        // Assert
        assert_eq!(answer.status, 200);
        assert_eq!(row(&conn, &ids[0]).await.state, "bounced");
        let posts = app.fake.wait_for_calls("chat.postMessage", 1).await;
        let body = &posts[0].body;
        assert_eq!(body["channel"], APPROVALS);
        assert!(body.get("thread_ts").is_none_or(|t| t.is_null()), "{body}");
        let text = body.to_string();
        assert!(
            text.contains("carrier filtered") && text.contains("30007"),
            "{text}"
        );
        assert!(!text.contains(&phone(0)), "the phone is masked: {text}");
        drop(app);
    }
);

storage_test!(
    an_incoming_stop_is_recorded_once_and_twilio_confirms_it,
    |db: TestDb| async move {
        // Arrange: Advanced Opt-Out (the default): Twilio answers keywords.
        let fake = fake(100).await;
        let conn = db.db.clone();
        let people = contacts_with_phones(&conn, 1).await;
        let app = spawn(db, &fake, 10.0, |_| {}).await;

        // Act
        let stop = fake
            .incoming_with_sid(
                &inbound_url(),
                "SM00000000000000000000000000000stop",
                &phone(0),
                "STOP",
            )
            .await;
        let redelivered = fake
            .incoming_with_sid(
                &inbound_url(),
                "SM00000000000000000000000000000stop",
                &phone(0),
                "STOP",
            )
            .await;
        let reply = fake
            .incoming(&inbound_url(), &phone(0), "Thanks, talk soon")
            .await;
        let rows_before = app.count_rows("inbound_messages").await;
        let forged = fake
            .post_signed(
                &inbound_url(),
                &[
                    ("MessageSid", "SMforged".to_string()),
                    ("From", phone(0)),
                    ("Body", "START".to_string()),
                ],
                Some("Zm9yZ2Vk"),
            )
            .await;

        // Assert: TwiML, empty; consent revoked by the keyword; no
        // confirmation of ours in the ledger; the redelivery applied once.
        assert_eq!(stop.status, 200);
        assert_eq!(stop.content_type.as_deref(), Some("text/xml"));
        assert_eq!(
            stop.body,
            r#"<?xml version="1.0" encoding="UTF-8"?><Response/>"#
        );
        assert_eq!(redelivered.status, 200);
        assert_eq!(reply.status, 200);
        let consent = newest_consent(&conn, people[0]).await;
        assert!(!consent.granted);
        assert_eq!(consent.source, "reply_keyword");
        assert_eq!(
            count(&conn, "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM consents WHERE contact_id = $1 AND granted = false", vec![Value::from(people[0])]).await,
            1
        );
        assert_eq!(rows_before, 2, "STOP once, and the reply");
        assert_eq!(
            app.count_rows("messages").await,
            0,
            "warmline sends no confirmation"
        );
        assert_eq!(
            count(
                &conn,
                "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM interactions WHERE contact_id = $1",
                vec![Value::from(people[0])]
            )
            .await,
            1,
            "the reply is an interaction; the keyword is not"
        );
        assert_eq!(forged.status, 403);
        assert_eq!(
            app.count_rows("inbound_messages").await,
            rows_before,
            "a forgery stores nothing"
        );
        assert!(newest_consent(&conn, people[0]).await.source == "reply_keyword");
        drop(app);
    }
);

storage_test!(
    without_advanced_opt_out_the_confirmation_is_the_twiml_answer,
    |db: TestDb| async move {
        // Arrange
        let fake = fake(100).await;
        let conn = db.db.clone();
        let people = contacts_with_phones(&conn, 1).await;
        let app = spawn(db, &fake, 10.0, |s| {
            s.sms.advanced_opt_out = false;
            s.email.product_name = Some("Acme".into());
        })
        .await;

        // Act
        let stop = fake.incoming(&inbound_url(), &phone(0), "stop").await;
        let again = fake.incoming(&inbound_url(), &phone(0), "STOP").await;

        // Assert: one confirmation, in the answer, never in the ledger.
        assert_eq!(stop.status, 200);
        assert_eq!(stop.content_type.as_deref(), Some("text/xml"));
        assert!(stop.body.contains("<Response><Message>"), "{}", stop.body);
        assert!(stop.body.contains("Acme"), "{}", stop.body);
        assert!(
            again.body.ends_with("<Response/>"),
            "one confirmation, then silence: {}",
            again.body
        );
        assert!(!newest_consent(&conn, people[0]).await.granted);
        assert_eq!(app.count_rows("messages").await, 0);
        drop(app);
    }
);

storage_test!(
    an_approver_answers_an_sms_reply_from_slack_and_only_while_consent_holds,
    |db: TestDb| async move {
        // Arrange: a known contact texts in.
        let fake = fake(100).await;
        let conn = db.db.clone();
        let people = contacts_with_phones(&conn, 1).await;
        let app = spawn(db, &fake, 10.0, |s| {
            s.slack.approvers = vec![crate::approvals::APPROVER.into()];
        })
        .await;
        let reply = fake
            .incoming(&inbound_url(), &phone(0), "Can we talk Tuesday?")
            .await;
        assert_eq!(reply.status, 200);
        let posts = app.fake.wait_for_calls("chat.postMessage", 1).await;
        let notice = posts[0].body.to_string();
        assert!(
            notice.contains("inbound_answer"),
            "an Answer button: {notice}"
        );
        let inbound_id = count(
            &conn,
            "SELECT CAST(MAX(id) AS BIGINT) AS n FROM inbound_messages",
            vec![],
        )
        .await;
        let click =
            |user: &str, ts: &str| crate::approvals::click("inbound_answer", inbound_id, user, ts);

        // Act (1): someone who is not an approver clicks Answer.
        let res = app.post_interaction(&click("U0NOBODY", "1.1")).await;

        // Assert (1): told why; no modal.
        assert_eq!(res.status(), 200);
        let told = app.fake.wait_for_calls("chat.postEphemeral", 1).await;
        assert!(told[0].body.to_string().contains("Only approvers"));
        assert!(app.fake.calls_to("views.open").is_empty());

        // Act (2): an approver clicks Answer, submits nothing, then an answer.
        app.post_interaction(&click(crate::approvals::APPROVER, "1.2"))
            .await;
        let opened = app.fake.wait_for_calls("views.open", 1).await;
        let view = opened[0].body["view"].clone();
        assert_eq!(view["callback_id"], "inbound_answer_submit");
        assert!(view.to_string().contains("Can we talk Tuesday?"));
        let submit = |text: &str| {
            let mut v = view.clone();
            for (k, val) in [
                ("id", "VANSWER"),
                ("team_id", crate::helpers::TEAM),
                ("hash", "1.1"),
                ("root_view_id", "VANSWER"),
                ("app_id", "A0FAKE"),
                ("bot_id", "B0FAKE"),
            ] {
                v[k] = val.into();
            }
            v["state"] = json!({"values": {"answer": {"answer": {"type": "plain_text_input", "value": text}}}});
            let payload = json!({
                "type": "view_submission",
                "team": {"id": crate::helpers::TEAM, "domain": "example"},
                "user": {"id": crate::approvals::APPROVER, "username": "a", "name": "a", "team_id": crate::helpers::TEAM},
                "api_app_id": "A0FAKE",
                "token": "XXYYZZ",
                "trigger_id": format!("t-{text}"),
                "view": v,
            });
            let app = &app;
            async move {
                let res = app.post_interaction(&payload).await;
                assert_eq!(res.status(), 200);
                res.json::<serde_json::Value>().await.unwrap()
            }
        };
        let empty = submit("  ").await;
        let done = submit("Tuesday 10am works.").await;

        // Assert (2): the empty one is refused on its field; the answer is an
        // SMS with the sender and the STOP footer, sent once.
        assert_eq!(empty["response_action"], "errors", "{empty}");
        assert_eq!(done["response_action"], "update", "{done}");
        assert!(fake.wait_for_messages(1, WAIT).await);
        let sent = fake.messages();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].to, phone(0));
        assert!(
            sent[0].body.contains("Tuesday 10am works."),
            "{}",
            sent[0].body
        );
        assert!(
            sent[0].body.ends_with("Reply STOP to opt out."),
            "{}",
            sent[0].body
        );

        // Act (3): the contact opts out; an approver answers again.
        fake.incoming(&inbound_url(), &phone(0), "STOP").await;
        let again = submit("One more thing…").await;

        // Assert (3): queued, then skipped for consent at the last moment.
        assert_eq!(again["response_action"], "update");
        let skipped = "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM messages \
                       WHERE source LIKE 'answer:%' AND state = 'skipped' AND skip_reason = 'no_consent'";
        let deadline = tokio::time::Instant::now() + WAIT;
        while count(&conn, skipped, vec![]).await != 1 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the second answer was not skipped"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(fake.messages().len(), 1, "nothing more reached Twilio");
        let _ = people;
        drop(app);
    }
);

storage_test!(
    the_doctor_checks_twilio_s_credentials_and_recommends_a_messaging_service,
    |db: TestDb| async move {
        // Arrange: one app with the right credentials, one with a wrong token.
        let fake = fake(100).await;
        let app = spawn(db, &fake, 10.0, |_| {}).await;
        let other = crate::test_db::TestDb::new(crate::test_db::Backend::Sqlite)
            .await
            .unwrap();
        let wrong = spawn(other, &fake, 10.0, |s| {
            s.providers.twilio.auth_token = Some("not-the-token".to_string().into());
        })
        .await;

        // Act
        let checks = warmline::doctor::run(&app.app).await.unwrap();
        let refused = warmline::doctor::run(&wrong.app).await.unwrap();

        // Assert
        let row = |checks: &[warmline::doctor::Check], item: &str| {
            checks
                .iter()
                .find(|c| c.channel == "sms" && c.item == item)
                .cloned()
                .unwrap_or_else(|| panic!("no sms {item} row: {checks:#?}"))
        };
        let ok = row(&checks, "credentials");
        assert!(ok.passed && !ok.warning, "{ok:?}");
        let sender = row(&checks, "sender");
        assert!(sender.passed && sender.warning, "{sender:?}");
        assert!(
            sender.reason.contains("TWILIO_MESSAGING_SERVICE_SID"),
            "{sender:?}"
        );
        let bad = row(&refused, "credentials");
        assert!(!bad.passed, "{bad:?}");
        assert!(bad.reason.contains("TWILIO_AUTH_TOKEN"), "{bad:?}");
        assert!(
            !bad.reason.contains("not-the-token"),
            "no secret in the report"
        );
        drop((app, wrong));
    }
);
