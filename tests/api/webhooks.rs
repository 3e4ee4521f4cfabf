//! Resend's signed webhooks (`POST /webhooks/resend`) and the campaign
//! circuit breaker they feed.
//!
//! Requests are signed exactly as Svix signs them (`warmline::providers::resend::svix::sign`)
//! with a test secret; the app runs with no provider workers, so nothing but
//! the webhooks moves the ledger.

use chrono::Utc;
use sea_orm::{ConnectionTrait, DatabaseConnection, FromQueryResult, Statement, Value};
use serde_json::json;
use warmline::{
    dispatcher::ledger::{self, NewMessage},
    domain::MessageState,
    providers::resend::svix,
    providers::{Registry, resend::settings::ResendSettings},
    settings::Settings,
};

use crate::{
    helpers::{TestApp, block_action, spawn_app_with_registry},
    storage_test,
    test_db::{Backend, TestDb},
};

const SECRET: &str = "whsec_d2FybWxpbmUgdGVzdCB3ZWJob29rIHNlY3JldCAzMmI=";
const OTHER_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const APPROVALS: &str = "C0APPROVE";
const APPROVER: &str = "U0APPROVER";
const THREAD_CHANNEL: &str = "C0CAMPAIGN";
const THREAD_TS: &str = "1700000000.000100";

// ---------------------------------------------------------------- helpers

async fn spawn_with(db: TestDb, f: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_with_registry(
        db,
        |s| {
            s.providers.resend = ResendSettings {
                webhook_secret: Some(SECRET.to_string().into()),
                ..Default::default()
            };
            s.slack.approvals_channel = Some(APPROVALS.into());
            s.slack.approvers = vec![APPROVER.into()];
            f(s);
        },
        // No workers: only webhooks move messages in these tests.
        Some(Registry::new()),
    )
    .await
}

async fn spawn(db: TestDb) -> TestApp {
    spawn_with(db, |_| {}).await
}

async fn sqlite() -> TestDb {
    TestDb::new(Backend::Sqlite).await.expect("SQLite")
}

/// A sent email of ours, as the webhook sees it.
#[derive(Debug, Clone)]
struct Sent {
    id: String,
    /// Resend's id (`data.email_id`).
    email_id: String,
    address: String,
}

/// A running campaign, with a Slack thread when `thread` is true.
async fn campaign(db: &DatabaseConnection, thread: bool) -> i64 {
    #[derive(FromQueryResult)]
    struct Id {
        id: i64,
    }
    let (channel, ts) = if thread {
        (
            Some(THREAD_CHANNEL.to_string()),
            Some(THREAD_TS.to_string()),
        )
    } else {
        (None, None)
    };
    Id::find_by_statement(Statement::from_sql_and_values(
        db.get_database_backend(),
        "INSERT INTO campaigns (name, channel, state, created_by, created_at, updated_at, slack_channel, slack_ts) \
         VALUES ('Spring update', 'email', 'running', 'U0001USER', $1, $1, $2, $3) RETURNING id",
        [Value::from(Utc::now()), Value::from(channel), Value::from(ts)],
    ))
    .one(db)
    .await
    .unwrap()
    .unwrap()
    .id
}

fn new_message(source: &str, campaign: Option<i64>, i: usize) -> NewMessage {
    NewMessage {
        source: source.into(),
        campaign_id: campaign,
        contact_id: None,
        channel: warmline::domain::Channel::Email,
        kind: warmline::domain::MessageKind::Marketing,
        address: Some(format!(
            "Reader{i}.{}@Example.com",
            source.replace(':', "-")
        )),
        provider: "resend".into(),
        payload: json!({"subject": "Hello", "text": "Hi"}),
        template: None,
        state: MessageState::Queued,
        due_at: Utc::now(),
    }
}

/// `n` messages of `source`, recorded as sent with Resend ids `em_<id>`.
async fn sent(db: &DatabaseConnection, source: &str, campaign: Option<i64>, n: usize) -> Vec<Sent> {
    let msgs: Vec<NewMessage> = (0..n).map(|i| new_message(source, campaign, i)).collect();
    ledger::enqueue(db, &msgs, Utc::now()).await.unwrap();
    db.execute_raw(Statement::from_sql_and_values(
        db.get_database_backend(),
        "UPDATE messages SET state = 'sent', provider_message_id = 'em_' || id WHERE source = $1",
        [Value::from(source.to_string())],
    ))
    .await
    .unwrap();
    msgs.iter()
        .map(|m| Sent {
            id: m.id(),
            email_id: format!("em_{}", m.id()),
            address: m.address.clone().unwrap(),
        })
        .collect()
}

/// `n` queued (not yet sent) messages of a campaign.
async fn queued(db: &DatabaseConnection, campaign: i64, n: usize) {
    let msgs: Vec<NewMessage> = (0..n)
        .map(|i| new_message(&format!("later:{campaign}"), Some(campaign), i))
        .collect();
    ledger::enqueue(db, &msgs, Utc::now()).await.unwrap();
}

async fn state(db: &DatabaseConnection, id: &str) -> String {
    #[derive(FromQueryResult)]
    struct S {
        state: String,
    }
    S::find_by_statement(Statement::from_sql_and_values(
        db.get_database_backend(),
        "SELECT state FROM messages WHERE id = $1",
        [Value::from(id.to_string())],
    ))
    .one(db)
    .await
    .unwrap()
    .unwrap()
    .state
}

async fn campaign_state(db: &DatabaseConnection, id: i64) -> String {
    #[derive(FromQueryResult)]
    struct S {
        state: String,
    }
    S::find_by_statement(Statement::from_sql_and_values(
        db.get_database_backend(),
        "SELECT state FROM campaigns WHERE id = $1",
        [Value::from(id)],
    ))
    .one(db)
    .await
    .unwrap()
    .unwrap()
    .state
}

async fn count(db: &DatabaseConnection, sql: &str, values: Vec<Value>) -> i64 {
    warmline::db::count(db, sql, values).await.unwrap()
}

async fn events_in(db: &DatabaseConnection, id: &str, state: &str) -> i64 {
    count(
        db,
        "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM message_events WHERE message_id = $1 AND state = $2",
        vec![Value::from(id.to_string()), Value::from(state.to_string())],
    )
    .await
}

async fn suppression_reason(db: &DatabaseConnection, address: &str) -> Option<(String, String)> {
    #[derive(FromQueryResult)]
    struct R {
        reason: String,
        source: String,
    }
    R::find_by_statement(Statement::from_sql_and_values(
        db.get_database_backend(),
        "SELECT reason, source FROM suppressions WHERE channel = 'email' AND address = $1",
        [Value::from(address.to_lowercase())],
    ))
    .one(db)
    .await
    .unwrap()
    .map(|r| (r.reason, r.source))
}

/// A Resend event about `m` (tagged with our id unless `tagged` is false).
fn event(kind: &str, m: &Sent, tagged: bool, extra: serde_json::Value) -> String {
    let mut data = json!({
        "email_id": m.email_id,
        "created_at": "2026-11-26T12:00:00.000Z",
        "from": "Acme <news@acme.test>",
        "to": [m.address],
        "subject": "Hello",
    });
    if tagged {
        data["tags"] = json!({"warmline_message_id": m.id, "campaign": "spring"});
    }
    for (k, v) in extra.as_object().into_iter().flatten() {
        data[k] = v.clone();
    }
    json!({"type": kind, "created_at": "2026-11-26T12:00:01.000Z", "data": data}).to_string()
}

fn permanent_bounce(m: &Sent) -> String {
    event(
        "email.bounced",
        m,
        true,
        json!({"bounce": {
            "diagnosticCode": [format!("smtp; 550 5.1.1 <{}>: user unknown", m.address)],
            "message": "The recipient's mailbox does not exist.",
            "subType": "General",
            "type": "Permanent"
        }}),
    )
}

fn new_event_id() -> String {
    format!("msg_{}", uuid::Uuid::new_v4().simple())
}

impl TestApp {
    /// POSTs `body` as Resend does, signed now with the test secret.
    async fn webhook(&self, svix_id: &str, body: &str) -> reqwest::Response {
        let ts = Utc::now().timestamp();
        let sig = svix::sign(
            &svix::Secret::parse(SECRET).unwrap(),
            svix_id,
            ts,
            body.as_bytes(),
        );
        self.webhook_with(
            &[
                ("svix-id", svix_id),
                ("svix-timestamp", &ts.to_string()),
                ("svix-signature", &sig),
            ],
            body,
        )
        .await
    }

    async fn webhook_with(&self, headers: &[(&str, &str)], body: &str) -> reqwest::Response {
        let mut req = self
            .client
            .post(self.url("/webhooks/resend"))
            .header("content-type", "application/json");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.body(body.to_string()).send().await.expect("sent")
    }
}

/// Posts each body with a fresh event id, asserting 200.
async fn deliver_all(app: &TestApp, bodies: impl IntoIterator<Item = String>) {
    for body in bodies {
        let res = app.webhook(&new_event_id(), &body).await;
        assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    }
}

/// A breaker button click by `user` (as Slack posts it).
fn click(action: &str, campaign: i64, user: &str, ts: &str) -> serde_json::Value {
    let mut p = block_action(action);
    p["user"]["id"] = user.into();
    p["channel"] = json!({"id": THREAD_CHANNEL, "name": "campaigns"});
    p["container"] = json!({"type": "message", "message_ts": THREAD_TS, "channel_id": THREAD_CHANNEL, "is_ephemeral": false});
    p["actions"][0]["value"] = campaign.to_string().into();
    p["actions"][0]["action_ts"] = ts.into();
    p
}

fn breaker_alerts(app: &TestApp) -> Vec<serde_json::Value> {
    app.fake
        .calls_to("chat.postMessage")
        .into_iter()
        .map(|c| c.body)
        .filter(|b| b.to_string().contains("breaker_resume"))
        .collect()
}

// ------------------------------------------------------------ the receiver

storage_test!(
    a_delivered_event_moves_sent_to_delivered,
    |db: TestDb| async move {
        // Arrange
        let app = spawn(db).await;
        let dbc = app.app.db.clone();
        let m = sent(&dbc, "api:delivered", None, 1).await.remove(0);

        // Act
        let res = app
            .webhook(
                &new_event_id(),
                &event("email.delivered", &m, true, json!({})),
            )
            .await;

        // Assert
        assert_eq!(res.status(), 200);
        assert_eq!(state(&dbc, &m.id).await, "delivered");
        assert_eq!(events_in(&dbc, &m.id, "delivered").await, 1);
        assert_eq!(
            count(
                &dbc,
                "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM provider_events WHERE provider = 'resend' AND message_id = $1 AND kind = 'email.delivered'",
                vec![Value::from(m.id.clone())],
            )
            .await,
            1
        );
    }
);

storage_test!(
    the_providers_report_resolves_an_ambiguous_message,
    |db: TestDb| async move {
        // Arrange: a crash inside a batch request left the message
        // ambiguous (it may or may not have gone out).
        let app = spawn(db).await;
        let dbc = app.app.db.clone();
        let m = sent(&dbc, "api:ambiguous", None, 1).await.remove(0);
        dbc.execute_raw(Statement::from_sql_and_values(
            dbc.get_database_backend(),
            "UPDATE messages SET state = 'ambiguous' WHERE id = $1",
            [Value::from(m.id.clone())],
        ))
        .await
        .unwrap();

        // Act: Resend reports it delivered.
        let res = app
            .webhook(
                &new_event_id(),
                &event("email.delivered", &m, true, json!({})),
            )
            .await;

        // Assert: resolved from the provider's evidence, without a person
        // and without sending anything again.
        assert_eq!(res.status(), 200);
        assert_eq!(state(&dbc, &m.id).await, "delivered");
        assert_eq!(events_in(&dbc, &m.id, "sent").await, 1);
    }
);

storage_test!(
    the_provider_id_finds_an_untagged_message,
    |db: TestDb| async move {
        // Arrange: no `warmline_message_id` tag; only Resend's `email_id`.
        let app = spawn(db).await;
        let dbc = app.app.db.clone();
        let m = sent(&dbc, "api:untagged", None, 1).await.remove(0);

        // Act
        let res = app
            .webhook(
                &new_event_id(),
                &event("email.delivered", &m, false, json!({})),
            )
            .await;

        // Assert
        assert_eq!(res.status(), 200);
        assert_eq!(state(&dbc, &m.id).await, "delivered");
    }
);

type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, String);

#[tokio::test]
async fn bad_stale_or_missing_signatures_are_401_and_store_nothing() {
    // Arrange
    let app = spawn(sqlite().await).await;
    let dbc = app.app.db.clone();
    let m = sent(&dbc, "api:forged", None, 1).await.remove(0);
    let body = event("email.delivered", &m, true, json!({}));
    let events_before = app.count_rows("message_events").await;
    let now = Utc::now().timestamp();
    let sign_with = |secret: &str, id: &str, ts: i64, body: &str| {
        svix::sign(
            &svix::Secret::parse(secret).unwrap(),
            id,
            ts,
            body.as_bytes(),
        )
    };
    let good = sign_with(SECRET, "msg_1", now, &body);
    let wrong_secret = sign_with(OTHER_SECRET, "msg_1", now, &body);
    let stale = sign_with(SECRET, "msg_1", now - 301, &body);
    let future = sign_with(SECRET, "msg_1", now + 301, &body);
    let now_s = now.to_string();
    let old_s = (now - 301).to_string();
    let future_s = (now + 301).to_string();
    // (what, headers, body)
    let cases: Vec<Case> = vec![
        (
            "another secret",
            vec![
                ("svix-id", "msg_1"),
                ("svix-timestamp", &now_s),
                ("svix-signature", &wrong_secret),
            ],
            body.clone(),
        ),
        (
            "stale timestamp",
            vec![
                ("svix-id", "msg_1"),
                ("svix-timestamp", &old_s),
                ("svix-signature", &stale),
            ],
            body.clone(),
        ),
        (
            "future timestamp",
            vec![
                ("svix-id", "msg_1"),
                ("svix-timestamp", &future_s),
                ("svix-signature", &future),
            ],
            body.clone(),
        ),
        (
            "tampered body",
            vec![
                ("svix-id", "msg_1"),
                ("svix-timestamp", &now_s),
                ("svix-signature", &good),
            ],
            body.replace("email.delivered", "email.complained"),
        ),
        (
            "no signature",
            vec![("svix-id", "msg_1"), ("svix-timestamp", &now_s)],
            body.clone(),
        ),
        (
            "no timestamp",
            vec![("svix-id", "msg_1"), ("svix-signature", &good)],
            body.clone(),
        ),
        (
            "no id",
            vec![("svix-timestamp", &now_s), ("svix-signature", &good)],
            body.clone(),
        ),
        ("no headers at all", vec![], body.clone()),
    ];

    for (what, headers, body) in cases {
        // Act
        let res = app.webhook_with(&headers, &body).await;

        // Assert
        assert_eq!(res.status(), 401, "{what}");
    }
    assert_eq!(app.count_rows("provider_events").await, 0);
    assert_eq!(app.count_rows("message_events").await, events_before);
    assert_eq!(state(&dbc, &m.id).await, "sent");

    // The very same request, correctly signed, is accepted.
    let res = app
        .webhook_with(
            &[
                ("svix-id", "msg_1"),
                ("svix-timestamp", &now_s),
                ("svix-signature", &good),
            ],
            &body,
        )
        .await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn unbranded_webhook_headers_are_accepted() {
    // Arrange
    let app = spawn(sqlite().await).await;
    let dbc = app.app.db.clone();
    let m = sent(&dbc, "api:unbranded", None, 1).await.remove(0);
    let body = event("email.delivered", &m, true, json!({}));
    let ts = Utc::now().timestamp();
    let sig = svix::sign(
        &svix::Secret::parse(SECRET).unwrap(),
        "msg_u",
        ts,
        body.as_bytes(),
    );

    // Act
    let res = app
        .webhook_with(
            &[
                ("webhook-id", "msg_u"),
                ("webhook-timestamp", &ts.to_string()),
                ("webhook-signature", &format!("v1,bm90IGl0 {sig}")),
            ],
            &body,
        )
        .await;

    // Assert
    assert_eq!(res.status(), 200);
    assert_eq!(state(&dbc, &m.id).await, "delivered");
}

#[tokio::test]
async fn without_a_secret_webhooks_are_503_and_store_nothing() {
    // Arrange: Resend sends (an API key), but no RESEND_WEBHOOK_SECRET.
    let app = spawn_with(sqlite().await, |s| {
        s.providers.resend = ResendSettings {
            api_key: Some("re_live_key".to_string().into()),
            ..Default::default()
        };
    })
    .await;
    let dbc = app.app.db.clone();
    let m = sent(&dbc, "api:unconfigured", None, 1).await.remove(0);

    // Act
    let res = app
        .webhook(
            &new_event_id(),
            &event("email.delivered", &m, true, json!({})),
        )
        .await;

    // Assert
    assert_eq!(res.status(), 503);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("RESEND_WEBHOOK_SECRET is not set")
    );
    assert_eq!(app.count_rows("provider_events").await, 0);
    assert_eq!(state(&dbc, &m.id).await, "sent");

    // Without Resend configured at all, nobody answers the route.
    let app = spawn_with(sqlite().await, |s| {
        s.providers.resend = ResendSettings::default();
    })
    .await;
    let res = app
        .webhook(
            &new_event_id(),
            &event("email.delivered", &m, true, json!({})),
        )
        .await;
    assert_eq!(res.status(), 404);
    assert_eq!(app.count_rows("provider_events").await, 0);
}

#[tokio::test]
async fn a_verified_but_malformed_body_is_400_naming_the_problem() {
    // Arrange
    let app = spawn(sqlite().await).await;
    let cases = [
        ("{\"type\": \"email.delivered\", \"data\": ", "not JSON"),
        (r#"{"data": {"email_id": "x"}}"#, "`type`"),
        (r#"{"type": "email.delivered", "data": "x"}"#, "`data`"),
        (
            r#"{"type": "email.bounced", "data": {"email_id": "x"}}"#,
            "data.bounce",
        ),
    ];

    for (body, named) in cases {
        // Act
        let res = app.webhook(&new_event_id(), body).await;

        // Assert
        assert_eq!(res.status(), 400, "{body}");
        let text = res.text().await.unwrap();
        assert!(text.contains(named), "{body}: {text}");
    }
    assert_eq!(app.count_rows("provider_events").await, 0);
}

#[tokio::test]
async fn an_event_for_an_unknown_message_is_stored_and_answered_200() {
    // Arrange: a message that is not in our ledger.
    let app = spawn(sqlite().await).await;
    let ghost = Sent {
        id: "msg_00000000000000000000000000000000".into(),
        email_id: "4ef9a417-02e9-4d39-ad75-9611e0fcc33c".into(),
        address: "someone@example.com".into(),
    };

    // Act
    let res = app.webhook("msg_ghost", &permanent_bounce(&ghost)).await;
    let other = app
        .webhook(
            "msg_contact",
            r#"{"type":"contact.created","created_at":"2026-11-26T12:00:00Z","data":{"id":"c1"}}"#,
        )
        .await;

    // Assert
    assert_eq!(res.status(), 200);
    assert_eq!(other.status(), 200);
    let dbc = app.app.db.clone();
    assert_eq!(
        count(
            &dbc,
            "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM provider_events WHERE message_id IS NULL",
            vec![],
        )
        .await,
        2
    );
    assert_eq!(app.count_rows("suppressions").await, 0);
}

storage_test!(
    the_same_svix_id_twice_has_one_effect,
    |db: TestDb| async move {
        // Arrange
        let app = spawn(db).await;
        let dbc = app.app.db.clone();
        let c = campaign(&dbc, true).await;
        let m = sent(&dbc, "campaign:dup", Some(c), 1).await.remove(0);
        let body = permanent_bounce(&m);

        // Act: Resend retries the same event.
        let first = app.webhook("msg_same", &body).await;
        let second = app.webhook("msg_same", &body).await;
        app.drain_background().await;

        // Assert
        assert_eq!(first.status(), 200);
        assert_eq!(second.status(), 200);
        assert_eq!(app.count_rows("provider_events").await, 1);
        assert_eq!(events_in(&dbc, &m.id, "bounced").await, 1);
        assert_eq!(app.count_rows("suppressions").await, 1);
        assert_eq!(app.fake.calls_to("chat.postMessage").len(), 1);
    }
);

storage_test!(
    events_out_of_order_never_move_a_message_backwards,
    |db: TestDb| async move {
        // Arrange
        let app = spawn(db).await;
        let dbc = app.app.db.clone();
        let m = sent(&dbc, "api:order", None, 1).await.remove(0);

        // Act: the bounce is reported before the (late) delivery.
        deliver_all(
            &app,
            [
                permanent_bounce(&m),
                event("email.delivered", &m, true, json!({})),
                event("email.sent", &m, true, json!({})),
            ],
        )
        .await;

        // Assert: still bounced; the late reports are recorded, not applied.
        assert_eq!(state(&dbc, &m.id).await, "bounced");
        assert_eq!(events_in(&dbc, &m.id, "delivered").await, 0);
        assert_eq!(app.count_rows("provider_events").await, 3);
    }
);

#[tokio::test]
async fn an_open_before_delivered_implies_delivery() {
    // Arrange
    let app = spawn(sqlite().await).await;
    let dbc = app.app.db.clone();
    let m = sent(&dbc, "api:open", None, 1).await.remove(0);

    // Act
    deliver_all(
        &app,
        [
            event("email.opened", &m, true, json!({})),
            event("email.delivered", &m, true, json!({})),
            event(
                "email.clicked",
                &m,
                true,
                json!({"click": {"link": "https://acme.test/x", "ipAddress": "1.2.3.4", "timestamp": "2026-11-26T12:00:02Z", "userAgent": "x"}}),
            ),
        ],
    )
    .await;

    // Assert: delivered once (inferred), the open and click recorded and
    // counted.
    assert_eq!(state(&dbc, &m.id).await, "delivered");
    let metrics = app.get("/metrics").await.text().await.unwrap();
    for kind in ["opened", "clicked", "delivered"] {
        assert!(
            metrics.contains(&format!(
                "provider_events_total{{provider=\"resend\",type=\"{kind}\"}}"
            )),
            "{kind} is counted"
        );
    }
    let details = count(
        &dbc,
        "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM message_events WHERE message_id = $1 AND state = 'delivered' \
         AND (detail = 'opened' OR detail = 'clicked https://acme.test/x' OR detail LIKE 'delivered (inferred%')",
        vec![Value::from(m.id.clone())],
    )
    .await;
    assert_eq!(details, 3);
}

storage_test!(
    a_permanent_bounce_suppresses_and_alerts_in_the_campaign_thread,
    |db: TestDb| async move {
        // Arrange
        let app = spawn(db).await;
        let dbc = app.app.db.clone();
        let c = campaign(&dbc, true).await;
        let m = sent(&dbc, "campaign:bounce", Some(c), 1).await.remove(0);

        // Act
        let res = app.webhook(&new_event_id(), &permanent_bounce(&m)).await;
        app.drain_background().await;

        // Assert: bounced, suppressed, one notice in the thread, masked.
        assert_eq!(res.status(), 200);
        assert_eq!(state(&dbc, &m.id).await, "bounced");
        assert_eq!(
            suppression_reason(&dbc, &m.address).await,
            Some(("hard_bounce".into(), "resend_webhook".into()))
        );
        let posts = app.fake.calls_to("chat.postMessage");
        assert_eq!(posts.len(), 1);
        let body = &posts[0].body;
        assert_eq!(body["channel"], THREAD_CHANNEL);
        assert_eq!(body["thread_ts"], THREAD_TS);
        let text = body.to_string();
        assert!(text.contains("Hard bounce"), "{text}");
        assert!(text.contains("R***@Example.com"), "{text}");
        assert!(
            !text.to_lowercase().contains(&m.address.to_lowercase()),
            "the address is masked: {text}"
        );
    }
);

#[tokio::test]
async fn a_campaign_without_a_thread_is_alerted_in_the_approvals_channel() {
    // Arrange
    let app = spawn(sqlite().await).await;
    let dbc = app.app.db.clone();
    let c = campaign(&dbc, false).await;
    let m = sent(&dbc, "campaign:nothread", Some(c), 1).await.remove(0);

    // Act
    let res = app
        .webhook(
            &new_event_id(),
            &event("email.complained", &m, true, json!({})),
        )
        .await;
    app.drain_background().await;

    // Assert
    assert_eq!(res.status(), 200);
    let posts = app.fake.calls_to("chat.postMessage");
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].body["channel"], APPROVALS);
    assert!(posts[0].body.get("thread_ts").is_none());
    assert!(posts[0].body.to_string().contains("Spam complaint"));
}

storage_test!(
    a_complaint_suppresses_the_address,
    |db: TestDb| async move {
        // Arrange
        let app = spawn(db).await;
        let dbc = app.app.db.clone();
        let m = sent(&dbc, "api:complaint", None, 1).await.remove(0);

        // Act
        let res = app
            .webhook(
                &new_event_id(),
                &event("email.complained", &m, true, json!({})),
            )
            .await;
        app.drain_background().await;

        // Assert: complained and suppressed; not a campaign message, so no alert.
        assert_eq!(res.status(), 200);
        assert_eq!(state(&dbc, &m.id).await, "complained");
        assert_eq!(
            suppression_reason(&dbc, &m.address).await,
            Some(("complaint".into(), "resend_webhook".into()))
        );
        assert!(app.fake.calls_to("chat.postMessage").is_empty());
    }
);

#[tokio::test]
async fn a_transient_bounce_is_recorded_without_suppressing() {
    // Arrange
    let app = spawn(sqlite().await).await;
    let dbc = app.app.db.clone();
    let c = campaign(&dbc, true).await;
    let m = sent(&dbc, "campaign:soft", Some(c), 1).await.remove(0);
    let body = event(
        "email.bounced",
        &m,
        true,
        json!({"bounce": {"diagnosticCode": ["smtp; 452 4.2.2 mailbox full"], "message": "full", "subType": "MailboxFull", "type": "Transient"}}),
    );

    // Act
    let res = app.webhook(&new_event_id(), &body).await;
    app.drain_background().await;

    // Assert
    assert_eq!(res.status(), 200);
    assert_eq!(state(&dbc, &m.id).await, "sent");
    assert_eq!(app.count_rows("suppressions").await, 0);
    assert!(app.fake.calls_to("chat.postMessage").is_empty());
    assert_eq!(
        count(
            &dbc,
            "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM message_events WHERE message_id = $1 AND detail LIKE 'soft bounce (Transient/MailboxFull%'",
            vec![Value::from(m.id.clone())],
        )
        .await,
        1
    );
}

#[tokio::test]
async fn delayed_failed_and_suppressed_are_recorded_with_their_reasons() {
    // Arrange
    let app = spawn(sqlite().await).await;
    let dbc = app.app.db.clone();
    let ms = sent(&dbc, "api:reasons", None, 3).await;

    // Act
    deliver_all(
        &app,
        [
            event("email.delivery_delayed", &ms[0], true, json!({})),
            event(
                "email.failed",
                &ms[1],
                true,
                json!({"failed": {"reason": "reached_daily_quota"}}),
            ),
            event(
                "email.suppressed",
                &ms[2],
                true,
                json!({"suppressed": {"reason": "previous_bounce", "type": "OnAccountSuppressionList", "message": "bounced before", "diagnosticCode": []}}),
            ),
        ],
    )
    .await;

    // Assert
    assert_eq!(state(&dbc, &ms[0].id).await, "sent");
    assert_eq!(state(&dbc, &ms[1].id).await, "failed");
    assert_eq!(state(&dbc, &ms[2].id).await, "failed");
    let with = |id: &str, like: &str| {
        let (dbc, id, like) = (dbc.clone(), id.to_string(), like.to_string());
        async move {
            count(
                &dbc,
                "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM message_events WHERE message_id = $1 AND detail LIKE $2",
                vec![Value::from(id), Value::from(like)],
            )
            .await
        }
    };
    assert_eq!(with(&ms[0].id, "delivery delayed%").await, 1);
    assert_eq!(with(&ms[1].id, "%reached_daily_quota%").await, 1);
    assert_eq!(with(&ms[2].id, "%previous_bounce%").await, 1);
    assert_eq!(
        suppression_reason(&dbc, &ms[2].address).await,
        Some(("hard_bounce".into(), "resend_webhook".into()))
    );
}

#[tokio::test]
async fn a_report_for_a_message_still_sending_is_refused_until_it_is_sent() {
    // Arrange: Resend's report beats the worker's record of the call.
    let app = spawn(sqlite().await).await;
    let dbc = app.app.db.clone();
    let m = sent(&dbc, "api:race", None, 1).await.remove(0);
    // Held by this app's own (live) worker, so the dispatcher's recovery of
    // dead workers' messages leaves it alone.
    let worker = app.app.dispatcher.worker_id().to_string();
    let set = |s: &'static str| {
        let (dbc, id, worker) = (dbc.clone(), m.id.clone(), worker.clone());
        async move {
            dbc.execute_raw(Statement::from_sql_and_values(
                dbc.get_database_backend(),
                "UPDATE messages SET state = $1, locked_by = $3 WHERE id = $2",
                [Value::from(s), Value::from(id), Value::from(worker)],
            ))
            .await
            .unwrap();
        }
    };
    set("sending").await;
    let body = event("email.delivered", &m, true, json!({}));

    // Act (1)
    let early = app.webhook("msg_race", &body).await;

    // Assert (1): 503 with Retry-After, nothing stored.
    assert_eq!(early.status(), 503);
    assert!(early.headers().contains_key("retry-after"));
    assert_eq!(app.count_rows("provider_events").await, 0);

    // Act (2): the worker records the send; Resend retries.
    set("sent").await;
    let retry = app.webhook("msg_race", &body).await;

    // Assert (2)
    assert_eq!(retry.status(), 200);
    assert_eq!(state(&dbc, &m.id).await, "delivered");
}

// --------------------------------------------------------- circuit breaker

storage_test!(
    hard_bounces_trip_the_breaker_only_past_five_percent,
    |db: TestDb| async move {
        // Arrange: 100 sent, 10 still queued.
        let app = spawn(db).await;
        let dbc = app.app.db.clone();
        let c = campaign(&dbc, true).await;
        let ms = sent(&dbc, "campaign:bounces", Some(c), 100).await;
        queued(&dbc, c, 10).await;

        // Act (1): 5 hard bounces — 5 %, not past it.
        deliver_all(&app, ms[..5].iter().map(permanent_bounce)).await;
        app.drain_background().await;

        // Assert (1)
        assert_eq!(campaign_state(&dbc, c).await, "running");
        assert!(breaker_alerts(&app).is_empty());

        // Act (2): the 6th — 6 %.
        deliver_all(&app, [permanent_bounce(&ms[5])]).await;
        app.drain_background().await;

        // Assert (2): paused once, its queued messages held, audited, alerted
        // in the thread with Resume / Cancel.
        assert_eq!(campaign_state(&dbc, c).await, "paused");
        assert_eq!(
            count(
                &dbc,
                "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM messages WHERE campaign_id = $1 AND state = 'paused'",
                vec![Value::from(c)],
            )
            .await,
            10
        );
        assert_eq!(
            count(
                &dbc,
                "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM audit_log WHERE actor = 'circuit-breaker' AND action = 'campaign.circuit_breaker'",
                vec![],
            )
            .await,
            1
        );
        let alerts = breaker_alerts(&app);
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0]["channel"], THREAD_CHANNEL);
        assert_eq!(alerts[0]["thread_ts"], THREAD_TS);
        let text = alerts[0].to_string();
        assert!(
            text.contains("breaker_cancel") && text.contains("6.00%"),
            "{text}"
        );

        // Act (3): another bounce while paused.
        deliver_all(&app, [permanent_bounce(&ms[6])]).await;
        app.drain_background().await;

        // Assert (3): no second trip.
        assert_eq!(breaker_alerts(&app).len(), 1);
    }
);

#[tokio::test]
async fn one_complaint_in_a_hundred_trips_the_breaker() {
    // Arrange
    let app = spawn(sqlite().await).await;
    let dbc = app.app.db.clone();
    let c = campaign(&dbc, true).await;
    let ms = sent(&dbc, "campaign:complaint", Some(c), 100).await;

    // Act: 1 % complaints, past 0.3 %.
    deliver_all(&app, [event("email.complained", &ms[0], true, json!({}))]).await;
    app.drain_background().await;

    // Assert
    assert_eq!(campaign_state(&dbc, c).await, "paused");
    let alerts = breaker_alerts(&app);
    assert_eq!(alerts.len(), 1);
    assert!(
        alerts[0]
            .to_string()
            .contains("spam complaints passed 0.3%")
    );
}

#[tokio::test]
async fn the_breaker_waits_for_fifty_sends() {
    // Arrange: 40 sends, half of which bounce.
    let app = spawn(sqlite().await).await;
    let dbc = app.app.db.clone();
    let c = campaign(&dbc, true).await;
    let ms = sent(&dbc, "campaign:small", Some(c), 40).await;

    // Act
    deliver_all(&app, ms[..20].iter().map(permanent_bounce)).await;
    deliver_all(&app, [event("email.complained", &ms[30], true, json!({}))]).await;
    app.drain_background().await;

    // Assert: never paused; every bounce still noticed in the thread.
    assert_eq!(campaign_state(&dbc, c).await, "running");
    assert!(breaker_alerts(&app).is_empty());
    assert_eq!(app.fake.calls_to("chat.postMessage").len(), 21);
}

storage_test!(
    only_approvers_resume_or_cancel_a_tripped_campaign,
    |db: TestDb| async move {
        // Arrange: a campaign the breaker paused, with messages held.
        let app = spawn(db).await;
        let dbc = app.app.db.clone();
        let c = campaign(&dbc, true).await;
        let ms = sent(&dbc, "campaign:buttons", Some(c), 100).await;
        queued(&dbc, c, 5).await;
        deliver_all(&app, [event("email.complained", &ms[0], true, json!({}))]).await;
        app.drain_background().await;
        assert_eq!(campaign_state(&dbc, c).await, "paused");
        let audit_before = app.audit_rows().await;

        // Act (1): someone who is not an approver clicks Resume.
        app.post_interaction(&click(
            "breaker_resume",
            c,
            "U0INTRUDER",
            "1700000001.000001",
        ))
        .await;
        let refusals = app.fake.wait_for_calls("chat.postEphemeral", 1).await;

        // Assert (1): refused, nothing changed.
        assert!(refusals[0].body.to_string().contains("Only approvers"));
        assert_eq!(campaign_state(&dbc, c).await, "paused");
        assert_eq!(app.audit_rows().await, audit_before);

        // Act (2): the approver resumes, then clicks Resume again.
        app.post_interaction(&click("breaker_resume", c, APPROVER, "1700000002.000001"))
            .await;
        app.post_interaction(&click("breaker_resume", c, APPROVER, "1700000003.000001"))
            .await;
        let answers = app.fake.wait_for_calls("chat.postEphemeral", 3).await;

        // Assert (2): resumed once; held messages due again; audited once.
        assert_eq!(campaign_state(&dbc, c).await, "running");
        assert_eq!(
            count(
                &dbc,
                "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM messages WHERE campaign_id = $1 AND state = 'queued'",
                vec![Value::from(c)],
            )
            .await,
            5
        );
        assert!(
            answers[1].body.to_string().contains("resumed"),
            "{:?}",
            answers[1].body
        );
        assert!(
            answers[2].body.to_string().contains("already running"),
            "{:?}",
            answers[2].body
        );
        assert_eq!(app.audit_rows().await, audit_before + 1);

        // Act (3): the approver cancels.
        app.post_interaction(&click("breaker_cancel", c, APPROVER, "1700000004.000001"))
            .await;
        let answers = app.fake.wait_for_calls("chat.postEphemeral", 4).await;

        // Assert (3): cancelled, nothing left to send, audited.
        assert!(
            answers[3].body.to_string().contains("cancelled"),
            "{:?}",
            answers[3].body
        );
        assert_eq!(campaign_state(&dbc, c).await, "cancelled");
        assert_eq!(
            count(
                &dbc,
                "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM messages WHERE campaign_id = $1 AND state = 'skipped'",
                vec![Value::from(c)],
            )
            .await,
            5
        );
        assert_eq!(app.audit_rows().await, audit_before + 2);
    }
);
