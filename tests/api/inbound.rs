//! `POST /api/v1/inbound` and the inbound entry point behind it, against the
//! whole running app: keywords and the consent ledger, one confirmation
//! then silence, the dispatcher's last-moment consent check, interactions,
//! trigger follow-ups stopped, the Slack thread post, unknown senders, auth
//! and validation.

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use chrono::Utc;
use reqwest::StatusCode;
use sea_orm::{
    ActiveValue::Set, ConnectionTrait, DatabaseConnection, EntityTrait, FromQueryResult, Statement,
    Value as DbValue,
};
use serde_json::{Value, json};
use warmline::{
    consent::{self, Source},
    db::entities::contacts,
    dispatcher::ledger::{self, NewMessage},
    domain::MessageState,
    providers::{
        Limits, OutgoingMessage, Provider, Registry, SendOutcome,
        test_provider::{Behaviour, Core, TestProvider},
    },
};

use crate::{
    fake_slack::WAIT,
    helpers::{TestApp, spawn_app_with_registry},
    storage_test,
    test_db::TestDb,
};

const KEY: &str = "test-key";
const PHONE: &str = "+14155552671";
const EMAIL: &str = "ada@example.com";
const IGSID: &str = "17841400000000001";
const THREAD_CHANNEL: &str = "C0CAMPAIGN";
const THREAD_TS: &str = "1732600000.000100";
const APPROVALS: &str = "C0APPROVALS";
const HELP: &str = "Acme help: call 555-0100. Reply STOP to unsubscribe.";

/// The test provider serving another channel under another name (the
/// stock one is `test` on `email`), so SMS has a provider too.
struct OnChannel {
    inner: TestProvider,
    name: &'static str,
    channel: warmline::domain::Channel,
}

#[async_trait]
impl Provider for OnChannel {
    fn name(&self) -> &str {
        self.name
    }
    fn channel(&self) -> warmline::domain::Channel {
        self.channel
    }
    fn limits(&self) -> Limits {
        self.inner.limits()
    }
    fn takes_idempotency_key(&self) -> bool {
        self.inner.takes_idempotency_key()
    }
    async fn send(&self, batch: &[OutgoingMessage]) -> Vec<SendOutcome> {
        self.inner.send(batch).await
    }
}

struct Inbound {
    t: TestApp,
    email: Arc<Core>,
    sms: Arc<Core>,
    contact: i64,
}

/// The app with API key [`KEY`], an email sender, providers for email
/// (`test`) and SMS (`test_sms`) — none for WhatsApp or Instagram — no
/// quiet hours (the tests run at any hour), a configured help text and an
/// approvals channel; and one contact with an email, a phone and an IGSID.
async fn spawn(db: TestDb) -> Inbound {
    let email = Core::new(Behaviour::default());
    let sms = Core::new(Behaviour::default());
    let mut registry = Registry::new();
    registry.register(Arc::new(TestProvider::in_process(email.clone())));
    registry.register(Arc::new(OnChannel {
        inner: TestProvider::in_process(sms.clone()),
        name: "test_sms",
        channel: warmline::domain::Channel::Sms,
    }));
    let t = spawn_app_with_registry(
        db,
        |s| {
            s.api.keys = vec![KEY.into()];
            s.email.from = Some("Acme <no-reply@example.com>".into());
            s.email.product_name = Some("Acme".into());
            s.inbound.help_text = Some(HELP.into());
            s.quiet_hours.sms = None;
            s.quiet_hours.whatsapp = None;
            s.slack.approvals_channel = Some(APPROVALS.into());
        },
        Some(registry),
    )
    .await;
    let now = Utc::now();
    let contact = contacts::Entity::insert(contacts::ActiveModel {
        email: Set(Some("Ada@Example.com".into())),
        phone: Set(Some(PHONE.into())),
        first_name: Set(Some("Ada".into())),
        last_name: Set(Some("Lovelace".into())),
        status: Set("active".into()),
        tags: Set("[]".into()),
        warmth: Set(30.0),
        metadata: Set(json!({"instagram_id": IGSID}).to_string()),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    })
    .exec(&t.app.db)
    .await
    .unwrap()
    .last_insert_id;
    // Consent on every channel, so each test sees what a keyword changes.
    for channel in ["email", "sms", "whatsapp", "instagram"] {
        consent::record(
            &t.app.db,
            contact,
            channel,
            true,
            Source::Form,
            None,
            Some("v1"),
        )
        .await
        .unwrap();
    }
    Inbound {
        t,
        email,
        sms,
        contact,
    }
}

struct Answer {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    json: Value,
}

fn body(channel: &str, from: &str, text: &str) -> Value {
    json!({"channel": channel, "from": from, "text": text, "received_at": Utc::now().to_rfc3339()})
}

impl Inbound {
    fn db(&self) -> &DatabaseConnection {
        &self.t.app.db
    }

    async fn post_with(&self, body: String, bearer: Option<&str>, key: Option<&str>) -> Answer {
        let mut req = self
            .t
            .client
            .post(self.t.url("/api/v1/inbound"))
            .header("content-type", "application/json")
            .body(body);
        if let Some(b) = bearer {
            req = req.bearer_auth(b);
        }
        if let Some(k) = key {
            req = req.header("idempotency-key", k);
        }
        let r = req.send().await.expect("request sent");
        let status = r.status();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        Answer {
            status,
            headers,
            json: serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}")),
        }
    }

    /// Posts a message and expects 200.
    async fn reply(&self, channel: &str, from: &str, text: &str) -> Value {
        let a = self
            .post_with(body(channel, from, text).to_string(), Some(KEY), None)
            .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.json);
        a.json
    }

    async fn consent_now(&self, channel: &str) -> consent::Current {
        consent::current(self.db(), self.contact).await.unwrap()[channel].clone()
    }

    async fn consent_rows(&self, channel: &str) -> Vec<(bool, String, Option<String>)> {
        #[derive(FromQueryResult)]
        struct Row {
            granted: bool,
            source: String,
            consent_text: Option<String>,
        }
        Row::find_by_statement(Statement::from_sql_and_values(
            self.db().get_database_backend(),
            "SELECT granted, source, consent_text FROM consents WHERE contact_id = $1 AND channel = $2 ORDER BY id",
            [DbValue::from(self.contact), DbValue::from(channel)],
        ))
        .all(self.db())
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.granted, r.source, r.consent_text))
        .collect()
    }

    /// `(id, channel, kind, payload text)` of the answers warmline queued.
    async fn answers(&self) -> Vec<(String, String, String, String)> {
        #[derive(FromQueryResult)]
        struct Row {
            id: String,
            channel: String,
            kind: String,
            payload: String,
        }
        Row::find_by_statement(Statement::from_string(
            self.db().get_database_backend(),
            "SELECT id, channel, kind, payload FROM messages WHERE source LIKE 'inbound:%' ORDER BY created_at, id",
        ))
        .all(self.db())
        .await
        .unwrap()
        .into_iter()
        .map(|r| {
            let payload: Value = serde_json::from_str(&r.payload).unwrap();
            (
                r.id,
                r.channel,
                r.kind,
                payload["text"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
    }

    async fn message_state(&self, id: &str) -> (String, Option<String>) {
        #[derive(FromQueryResult)]
        struct Row {
            state: String,
            skip_reason: Option<String>,
        }
        let r = Row::find_by_statement(Statement::from_sql_and_values(
            self.db().get_database_backend(),
            "SELECT state, skip_reason FROM messages WHERE id = $1",
            [DbValue::from(id.to_string())],
        ))
        .one(self.db())
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no message {id}"));
        (r.state, r.skip_reason)
    }

    /// Polls the ledger until the message reaches `state` (the dispatcher
    /// records outcomes after the provider returns; there is no event to
    /// await); fails after [`WAIT`].
    async fn wait_for_state(&self, id: &str, state: &str) -> (String, Option<String>) {
        tokio::time::timeout(WAIT, async {
            loop {
                let s = self.message_state(id).await;
                if s.0 == state {
                    return s;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("message {id} never reached {state}"))
    }

    async fn enqueue(&self, m: NewMessage) -> String {
        let id = m.id();
        ledger::enqueue(self.db(), &[m], Utc::now()).await.unwrap();
        self.t.app.dispatcher.wake();
        id
    }

    async fn scalar_i64(&self, sql: &str, values: Vec<DbValue>) -> i64 {
        let row = self
            .db()
            .query_one_raw(Statement::from_sql_and_values(
                self.db().get_database_backend(),
                sql,
                values,
            ))
            .await
            .unwrap()
            .unwrap();
        row.try_get::<i64>("", "n").unwrap()
    }
}

fn message(
    source: &str,
    contact: i64,
    channel: &str,
    kind: &str,
    state: MessageState,
) -> NewMessage {
    NewMessage {
        source: source.into(),
        campaign_id: None,
        contact_id: Some(contact),
        channel: channel.parse().expect("a channel"),
        kind: kind.parse().expect("a message kind"),
        address: None,
        provider: if channel == "email" {
            "test"
        } else {
            "test_sms"
        }
        .into(),
        payload: json!({"subject": "Hello", "text": "Hi", "from": "Acme <no-reply@example.com>"}),
        template: None,
        state,
        due_at: Utc::now()
            + if state == MessageState::Scheduled {
                chrono::Duration::days(3)
            } else {
                chrono::Duration::zero()
            },
    }
}

storage_test!(
    stop_revokes_that_channel_only_and_is_confirmed_once,
    |db: TestDb| async move {
        // Arrange
        let app = spawn(db).await;

        // Act: STOP as a phone types it, then twice more.
        let first = app.reply("sms", PHONE, "Stop.").await;
        let second = app.reply("sms", PHONE, "STOP").await;
        let third = app.reply("sms", PHONE, " stop ").await;

        // Assert: the first revoked SMS, with the word as proof.
        assert_eq!(first["keyword"], "stop");
        assert_eq!(first["action"], "revoked");
        assert_eq!(first["contact_id"], app.contact);
        assert_eq!(first["reply"]["state"], "queued", "{first}");
        let sms = app.consent_now("sms").await;
        assert!(!sms.granted);
        assert_eq!(sms.source, "reply_keyword");
        assert_eq!(
            app.consent_rows("sms").await,
            vec![
                (true, "form".into(), Some("v1".into())),
                (false, "reply_keyword".into(), Some("Stop".into())),
            ],
            "repeats append nothing"
        );
        // Only that channel.
        for other in ["email", "whatsapp", "instagram"] {
            assert!(app.consent_now(other).await.granted, "{other}");
        }
        // One confirmation, then silence.
        assert_eq!(second["action"], "revoked");
        assert_eq!(second["reply"], Value::Null);
        assert_eq!(third["reply"], Value::Null);
        let answers = app.answers().await;
        assert_eq!(answers.len(), 1, "{answers:?}");
        let (id, channel, kind, text) = &answers[0];
        assert_eq!((channel.as_str(), kind.as_str()), ("sms", "transactional"));
        assert!(
            text.contains("unsubscribed") && text.contains("START"),
            "{text}"
        );
        assert!(text.contains("Acme"), "{text}");
        // The confirmation is sent although consent was just revoked:
        // transactional messages need none.
        assert!(app.sms.wait_for_accepted(1, WAIT).await);
        app.wait_for_state(id, "sent").await;
        assert_eq!(app.sms.accepted()[0].to, PHONE);
        let confirmed = app
            .scalar_i64(
                "SELECT COUNT(*) AS n FROM inbound_messages WHERE confirmed = $1 AND keyword = 'stop'",
                vec![DbValue::from(true)],
            )
            .await;
        assert_eq!(confirmed, 1);
        assert_eq!(app.t.count_rows("inbound_messages").await, 3);
        // A keyword is not an interaction.
        assert_eq!(app.t.count_rows("interactions").await, 0);
    }
);

storage_test!(
    after_stop_marketing_on_that_channel_is_skipped_for_no_consent,
    |db: TestDb| async move {
        // Arrange
        let app = spawn(db).await;
        app.reply("sms", PHONE, "UNSUBSCRIBE").await;

        // Act: a campaign sends on SMS and on email afterwards.
        let sms = app
            .enqueue(message(
                "campaign:7",
                app.contact,
                "sms",
                "marketing",
                MessageState::Queued,
            ))
            .await;
        let email = app
            .enqueue(message(
                "campaign:8",
                app.contact,
                "email",
                "marketing",
                MessageState::Queued,
            ))
            .await;

        // Assert: the dispatcher's last-moment check skips SMS only.
        assert_eq!(
            app.wait_for_state(&sms, "skipped").await.1.as_deref(),
            Some("no_consent")
        );
        app.wait_for_state(&email, "sent").await;
        assert!(app.email.wait_for_accepted(1, WAIT).await);
    }
);

storage_test!(
    start_restores_consent_with_one_confirmation,
    |db: TestDb| async move {
        // Arrange
        let app = spawn(db).await;
        app.reply("sms", PHONE, "quit").await;

        // Act
        let first = app.reply("sms", PHONE, "Start").await;
        let second = app.reply("sms", PHONE, "YES").await;

        // Assert
        assert_eq!(first["keyword"], "start");
        assert_eq!(first["action"], "restored");
        assert_eq!(first["reply"]["state"], "queued");
        assert_eq!(second["action"], "restored");
        assert_eq!(second["reply"], Value::Null, "already granted: silence");
        let sms = app.consent_now("sms").await;
        assert!(sms.granted);
        assert_eq!(sms.source, "reply_keyword");
        let rows = app.consent_rows("sms").await;
        assert_eq!(rows.len(), 3, "{rows:?}");
        assert_eq!(
            rows[2],
            (true, "reply_keyword".into(), Some("Start".into()))
        );
        let answers = app.answers().await;
        assert_eq!(answers.len(), 2, "one STOP and one START confirmation");
        assert!(answers[1].3.contains("resubscribed"), "{answers:?}");
        assert!(app.sms.wait_for_accepted(2, WAIT).await);
    }
);

storage_test!(
    help_is_answered_every_time_with_the_configured_text,
    |db: TestDb| async move {
        // Arrange
        let app = spawn(db).await;

        // Act
        let first = app.reply("email", "ADA@example.com", "Help").await;
        let second = app.reply("email", EMAIL, "info?").await;

        // Assert: informational, so answered each time, on the channel it
        // came in on; consent untouched.
        for a in [&first, &second] {
            assert_eq!(a["keyword"], "help");
            assert_eq!(a["action"], "help");
            assert_eq!(
                a["contact_id"], app.contact,
                "emails match case-insensitively"
            );
            assert_eq!(a["reply"]["state"], "queued");
        }
        let answers = app.answers().await;
        assert_eq!(answers.len(), 2);
        for (_, channel, kind, text) in &answers {
            assert_eq!(
                (channel.as_str(), kind.as_str()),
                ("email", "transactional")
            );
            assert_eq!(text, HELP);
        }
        assert_eq!(app.consent_rows("email").await.len(), 1);
        assert!(app.email.wait_for_accepted(2, WAIT).await);
    }
);

storage_test!(
    a_keyword_on_a_channel_without_provider_still_changes_consent,
    |db: TestDb| async move {
        // Arrange: no WhatsApp or Instagram provider yet.
        let app = spawn(db).await;

        // Act
        let whatsapp = app.reply("whatsapp", "14155552671", "OPTOUT").await;
        let instagram = app.reply("instagram", IGSID, "revoke").await;

        // Assert: revoked, found by wa_id and by metadata.instagram_id,
        // and not confirmed, with the reason.
        for (a, channel) in [(&whatsapp, "whatsapp"), (&instagram, "instagram")] {
            assert_eq!(a["contact_id"], app.contact, "{a}");
            assert_eq!(a["action"], "revoked");
            assert_eq!(a["reply"]["state"], "not_sent");
            assert!(
                a["reply"]["reason"].as_str().unwrap().contains(channel),
                "{a}"
            );
            assert!(!app.consent_now(channel).await.granted);
        }
        assert!(app.answers().await.is_empty());
        let unconfirmed = app
            .scalar_i64(
                "SELECT COUNT(*) AS n FROM inbound_messages WHERE confirmed = $1",
                vec![DbValue::from(false)],
            )
            .await;
        assert_eq!(unconfirmed, 2);
    }
);

/// A campaign with a Slack thread.
async fn campaign(db: &DatabaseConnection) -> i64 {
    #[derive(FromQueryResult)]
    struct Id {
        id: i64,
    }
    Id::find_by_statement(Statement::from_sql_and_values(
        db.get_database_backend(),
        "INSERT INTO campaigns (name, channel, state, created_by, created_at, updated_at, slack_channel, slack_ts) \
         VALUES ('Spring update', 'sms', 'running', 'U0001USER', $1, $1, $2, $3) RETURNING id",
        [
            DbValue::from(Utc::now()),
            DbValue::from(THREAD_CHANNEL),
            DbValue::from(THREAD_TS),
        ],
    ))
    .one(db)
    .await
    .unwrap()
    .unwrap()
    .id
}

async fn trigger_run(db: &DatabaseConnection, contact: i64, trigger: &str, state: &str) -> i64 {
    #[derive(FromQueryResult)]
    struct Id {
        id: i64,
    }
    Id::find_by_statement(Statement::from_sql_and_values(
        db.get_database_backend(),
        "INSERT INTO trigger_runs (contact_id, trigger, crossing, step, state, next_step_at, created_at, updated_at) \
         VALUES ($1, $2, '1', 1, $3, $4, $4, $4) RETURNING id",
        [
            DbValue::from(contact),
            DbValue::from(trigger),
            DbValue::from(state),
            DbValue::from(Utc::now()),
        ],
    ))
    .one(db)
    .await
    .unwrap()
    .unwrap()
    .id
}

async fn run_state(db: &DatabaseConnection, id: i64) -> (String, Option<String>) {
    #[derive(FromQueryResult)]
    struct Row {
        state: String,
        stopped_reason: Option<String>,
    }
    let r = Row::find_by_statement(Statement::from_sql_and_values(
        db.get_database_backend(),
        "SELECT state, stopped_reason FROM trigger_runs WHERE id = $1",
        [DbValue::from(id)],
    ))
    .one(db)
    .await
    .unwrap()
    .unwrap();
    (r.state, r.stopped_reason)
}

storage_test!(
    a_reply_warms_stops_follow_ups_and_is_posted_in_the_campaign_thread,
    |db: TestDb| async move {
        // Arrange: a campaign SMS we sent Ada, an active trigger sequence
        // with its next steps pending on SMS and on email, and another
        // contact's pending trigger message.
        let app = spawn(db).await;
        let dbc = app.db().clone();
        let c = campaign(&dbc).await;
        let mut sent = message(
            "campaign:c",
            app.contact,
            "sms",
            "marketing",
            MessageState::Queued,
        );
        sent.campaign_id = Some(c);
        let sent = app.enqueue(sent).await;
        app.wait_for_state(&sent, "sent").await;
        let active = trigger_run(&dbc, app.contact, "cold", "active").await;
        let done = trigger_run(&dbc, app.contact, "onboarding", "completed").await;
        let sms_step = app
            .enqueue(message(
                "trigger:cold:1:2",
                app.contact,
                "sms",
                "marketing",
                MessageState::Scheduled,
            ))
            .await;
        let email_step = app
            .enqueue(message(
                "trigger:cold:1:2",
                app.contact,
                "email",
                "marketing",
                MessageState::Scheduled,
            ))
            .await;
        let campaign_next = app
            .enqueue(message(
                "campaign:c2",
                app.contact,
                "sms",
                "marketing",
                MessageState::Scheduled,
            ))
            .await;

        // Act
        let answer = app
            .reply("sms", PHONE, "Sounds great <!channel>\nTuesday works")
            .await;
        app.t.drain_background().await;

        // Assert: stored and linked.
        assert_eq!(answer["keyword"], Value::Null);
        assert_eq!(answer["action"], "none");
        assert_eq!(answer["in_reply_to"], sent);
        assert_eq!(answer["reply"], Value::Null);
        // An interaction, inbound, on SMS.
        let interactions = app
            .scalar_i64(
                "SELECT COUNT(*) AS n FROM interactions WHERE contact_id = $1 AND kind = 'message' \
                 AND direction = 'inbound' AND channel = 'sms'",
                vec![DbValue::from(app.contact)],
            )
            .await;
        assert_eq!(interactions, 1);
        // ...which refreshed the contact's warmth in the same transaction.
        let refreshed = app
            .scalar_i64(
                "SELECT COUNT(*) AS n FROM contacts WHERE id = $1 AND warmth_updated_at IS NOT NULL",
                vec![DbValue::from(app.contact)],
            )
            .await;
        assert_eq!(refreshed, 1);
        // Follow-ups stop: the active run, and the pending SMS step.
        assert_eq!(
            run_state(&dbc, active).await,
            ("stopped".into(), Some("replied".into()))
        );
        assert_eq!(run_state(&dbc, done).await.0, "completed");
        assert_eq!(
            app.message_state(&sms_step).await,
            ("skipped".into(), Some("cancelled".into()))
        );
        assert_eq!(
            app.message_state(&email_step).await.0,
            "scheduled",
            "other channel"
        );
        assert_eq!(
            app.message_state(&campaign_next).await.0,
            "scheduled",
            "not a trigger"
        );
        let events = app
            .scalar_i64(
                "SELECT COUNT(*) AS n FROM message_events WHERE message_id = $1 AND state = 'skipped'",
                vec![DbValue::from(sms_step.clone())],
            )
            .await;
        assert_eq!(events, 1);
        // Posted in the campaign's thread: name, masked phone, quoted and
        // escaped text, never the whole number.
        let posts = app.t.fake.calls_to("chat.postMessage");
        assert_eq!(posts.len(), 1, "{posts:?}");
        let post = &posts[0].body;
        assert_eq!(post["channel"], THREAD_CHANNEL);
        assert_eq!(post["thread_ts"], THREAD_TS);
        let text = post["text"].as_str().unwrap();
        assert!(text.contains("*Ada Lovelace* (+1******2671)"), "{text}");
        assert!(text.contains("Spring update"), "{text}");
        assert!(
            text.contains("> Sounds great &lt;!channel&gt;\n> Tuesday works"),
            "{text}"
        );
        assert!(!text.contains("4155552671"), "{text}");
    }
);

storage_test!(
    a_stop_ends_trigger_runs_as_opted_out,
    |db: TestDb| async move {
        // Arrange
        let app = spawn(db).await;
        let dbc = app.db().clone();
        let run = trigger_run(&dbc, app.contact, "monthly", "active").await;

        // Act
        app.reply("sms", PHONE, "end").await;

        // Assert
        assert_eq!(
            run_state(&dbc, run).await,
            ("stopped".into(), Some("opted_out".into()))
        );
    }
);

storage_test!(
    an_unknown_sender_is_stored_without_a_contact,
    |db: TestDb| async move {
        // Arrange
        let app = spawn(db).await;

        // Act
        let reply = app
            .reply("email", "stranger@example.org", "Who is this?")
            .await;
        let stop = app.reply("sms", "+14155552680", "STOP").await;
        app.t.drain_background().await;

        // Assert: stored, nobody's consent touched, nothing sent back.
        assert_eq!(reply["contact_id"], Value::Null);
        assert_eq!(reply["action"], "none");
        assert_eq!(stop["contact_id"], Value::Null);
        assert_eq!(stop["keyword"], "stop");
        assert_eq!(stop["action"], "none");
        assert_eq!(stop["reply"], Value::Null);
        let stored = app
            .scalar_i64(
                "SELECT COUNT(*) AS n FROM inbound_messages WHERE contact_id IS NULL",
                vec![],
            )
            .await;
        assert_eq!(stored, 2);
        assert_eq!(
            app.t.count_rows("consents").await,
            4,
            "only the arranged grants"
        );
        assert!(app.answers().await.is_empty());
        assert_eq!(app.t.count_rows("interactions").await, 0);
        // No thread to answer in: the approvals channel hears of them.
        let posts = app.t.fake.calls_to("chat.postMessage");
        assert_eq!(posts.len(), 2);
        for p in &posts {
            assert_eq!(p.body["channel"], APPROVALS);
            assert!(p.body.get("thread_ts").is_none_or(Value::is_null), "{p:?}");
            let text = p.body["text"].as_str().unwrap();
            assert!(text.contains("unknown sender"), "{text}");
            assert!(!text.contains("stranger@"), "{text}");
        }
    }
);

storage_test!(
    the_api_refuses_bad_requests_and_replays_keyed_ones,
    |db: TestDb| async move {
        // Arrange
        let app = spawn(db).await;
        let good = body("sms", PHONE, "hello").to_string();

        // Act + Assert: no key, a wrong key.
        for bearer in [None, Some("wrong")] {
            let a = app.post_with(good.clone(), bearer, None).await;
            assert_eq!(a.status, StatusCode::UNAUTHORIZED);
        }
        // Each invalid field is named.
        let future = (Utc::now() + chrono::Duration::hours(2)).to_rfc3339();
        for (b, field) in [
            (body("fax", PHONE, "hi"), "channel"),
            (body("sms", "ada@example.com", "hi"), "from"),
            (body("sms", "4155552671", "hi"), "from"),
            (body("email", PHONE, "hi"), "from"),
            (body("instagram", "ada", "hi"), "from"),
            (
                json!({"channel": "sms", "from": PHONE, "text": "hi", "received_at": "yesterday"}),
                "received_at",
            ),
            (
                json!({"channel": "sms", "from": PHONE, "text": "hi", "received_at": future}),
                "received_at",
            ),
            (
                json!({"channel": "sms", "from": PHONE, "received_at": Utc::now().to_rfc3339()}),
                "text",
            ),
            (
                json!({"channel": "sms", "from": PHONE, "text": "hi", "received_at": Utc::now().to_rfc3339(), "extra": 1}),
                "extra",
            ),
        ] {
            let a = app.post_with(b.to_string(), Some(KEY), None).await;
            assert_eq!(
                a.status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{b}: {}",
                a.json
            );
            assert_eq!(a.json["error"]["field"], field, "{b}: {}", a.json);
            assert!(
                !a.json.to_string().contains("4155552671"),
                "no whole number echoed: {}",
                a.json
            );
        }
        assert_eq!(
            app.t.count_rows("inbound_messages").await,
            0,
            "4xx store nothing"
        );

        // A keyed retry is answered again and acts once.
        let stop = body("sms", PHONE, "STOP").to_string();
        let first = app.post_with(stop.clone(), Some(KEY), Some("in-1")).await;
        let again = app.post_with(stop, Some(KEY), Some("in-1")).await;
        assert_eq!(first.status, StatusCode::OK);
        assert_eq!(again.status, StatusCode::OK);
        assert_eq!(again.json, first.json);
        assert_eq!(again.headers["idempotent-replayed"], "true");
        assert_eq!(app.t.count_rows("inbound_messages").await, 1);
        assert_eq!(app.answers().await.len(), 1);
        let other = app
            .post_with(
                body("sms", PHONE, "START").to_string(),
                Some(KEY),
                Some("in-1"),
            )
            .await;
        assert_eq!(other.status, StatusCode::CONFLICT);
    }
);
