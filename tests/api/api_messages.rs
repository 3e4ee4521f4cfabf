//! The transactional API, `POST /api/v1/messages` and `GET
//! /api/v1/messages/{id}`, against the whole running app: bearer keys,
//! validation naming each field, idempotency (replay, conflict, concurrent
//! duplicates), and the message's trip through the dispatcher to a provider
//! that records what it was given.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use async_trait::async_trait;
use chrono::Utc;
use reqwest::StatusCode;
use sea_orm::{ActiveValue::Set, EntityTrait};
use serde_json::{Value, json};
use warmline::{
    db::entities::contacts,
    providers::{
        Limits, OutgoingMessage, Provider, Registry, SendOutcome,
        test_provider::{Behaviour, Core, TestProvider},
    },
    settings::Settings,
};

use crate::{
    fake_slack::WAIT,
    helpers::{TestApp, spawn_app_with_registry},
    storage_test,
    test_db::TestDb,
};

const KEY: &str = "test-key";

/// The test provider, keeping every message it was handed (content
/// included) so a test can read what would have reached an inbox.
struct Recorder {
    inner: TestProvider,
    log: Arc<Mutex<Vec<OutgoingMessage>>>,
}

#[async_trait]
impl Provider for Recorder {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn channel(&self) -> warmline::domain::Channel {
        self.inner.channel()
    }
    fn limits(&self) -> Limits {
        self.inner.limits()
    }
    fn takes_idempotency_key(&self) -> bool {
        self.inner.takes_idempotency_key()
    }
    async fn send(&self, batch: &[OutgoingMessage]) -> Vec<SendOutcome> {
        self.log.lock().unwrap().extend_from_slice(batch);
        self.inner.send(batch).await
    }
}

struct Api {
    t: TestApp,
    core: Arc<Core>,
    log: Arc<Mutex<Vec<OutgoingMessage>>>,
}

async fn spawn(db: TestDb) -> Api {
    spawn_with(db, |_| {}, true).await
}

/// The app with API key [`KEY`], a sender, and (if `provider`) the
/// recording test provider as its email provider.
async fn spawn_with(db: TestDb, f: impl FnOnce(&mut Settings), provider: bool) -> Api {
    let core = Core::new(Behaviour::default());
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut registry = Registry::new();
    if provider {
        registry.register(Arc::new(Recorder {
            inner: TestProvider::in_process(core.clone()),
            log: log.clone(),
        }));
    }
    let t = spawn_app_with_registry(
        db,
        |s| {
            s.api.keys = vec![KEY.into()];
            s.email.from = Some("Example <no-reply@example.com>".into());
            f(s);
        },
        Some(registry),
    )
    .await;
    Api { t, core, log }
}

struct Answer {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    /// `(code, field)` of an error answer.
    fn error(&self) -> (String, Option<String>) {
        let v = self.json();
        let e = &v["error"];
        assert!(e["message"].is_string(), "{v}");
        (
            e["code"].as_str().expect("an error code").to_string(),
            e["field"].as_str().map(str::to_string),
        )
    }
}

fn reset(to: &str) -> Value {
    json!({
        "template": "password_reset",
        "to": to,
        "variables": {"reset_url": "https://app.example.com/reset?t=1", "app_name": "Example"}
    })
}

impl Api {
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        bearer: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<String>,
    ) -> Answer {
        let mut req = self.t.client.request(method, self.t.url(path));
        if let Some(b) = bearer {
            req = req.bearer_auth(b);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(body) = body {
            req = req.header("content-type", "application/json").body(body);
        }
        let r = req.send().await.expect("request sent");
        Answer {
            status: r.status(),
            headers: r.headers().clone(),
            text: r.text().await.expect("a body"),
        }
    }

    async fn post(&self, body: &Value, key: Option<&str>) -> Answer {
        self.post_raw(body.to_string(), key).await
    }

    async fn post_raw(&self, body: String, key: Option<&str>) -> Answer {
        let headers: Vec<(&str, &str)> = key.map(|k| ("idempotency-key", k)).into_iter().collect();
        self.send(
            reqwest::Method::POST,
            "/api/v1/messages",
            Some(KEY),
            &headers,
            Some(body),
        )
        .await
    }

    async fn show(&self, id: &str) -> Answer {
        self.send(
            reqwest::Method::GET,
            &format!("/api/v1/messages/{id}"),
            Some(KEY),
            &[],
            None,
        )
        .await
    }

    /// Reads the message until it reaches `state` (the dispatcher records
    /// outcomes after the provider returns, so there is no event to await
    /// here); fails after [`WAIT`].
    async fn wait_for_state(&self, id: &str, state: &str) -> Value {
        let found = tokio::time::timeout(WAIT, async {
            loop {
                let v = self.show(id).await.json();
                if v["state"] == state {
                    return v;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        found.unwrap_or_else(|_| panic!("message {id} never reached {state}"))
    }

    async fn messages(&self) -> i64 {
        self.t.count_rows("messages").await
    }

    async fn idempotency_rows(&self) -> i64 {
        self.t.count_rows("api_idempotency").await
    }
}

storage_test!(
    a_transactional_email_is_sent_once_without_unsubscribe_headers,
    |db: TestDb| async move {
        // Arrange: a known contact, whose address the host app writes in
        // another case.
        let api = spawn(db).await;
        let now = Utc::now();
        let contact = contacts::Entity::insert(contacts::ActiveModel {
            email: Set(Some("Ada.Lee@Example.com".into())),
            status: Set("active".into()),
            tags: Set("[]".into()),
            warmth: Set(50.0),
            metadata: Set("{}".into()),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        })
        .exec(&api.t.app.db)
        .await
        .unwrap()
        .last_insert_id;

        // Act
        let answer = api.post(&reset("ada.lee@example.com"), None).await;

        // Assert: accepted, then carried by the provider exactly once.
        assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.text);
        let body = answer.json();
        let id = body["id"].as_str().expect("an id").to_string();
        assert_eq!(body, json!({"id": id, "state": "queued"}));
        assert!(api.core.wait_for_accepted(1, WAIT).await);
        let shown = api.wait_for_state(&id, "sent").await;
        let log = api.log.lock().unwrap().clone();
        assert_eq!(log.len(), 1, "exactly one email handed to the provider");
        let sent = &log[0];
        assert_eq!(sent.id, id);
        assert_eq!(sent.to, "ada.lee@example.com");
        assert_eq!(sent.kind, warmline::domain::MessageKind::Transactional);
        assert_eq!(sent.content["subject"], "Reset your Example password");
        assert_eq!(sent.content["from"], "Example <no-reply@example.com>");
        assert!(
            sent.content["text"]
                .as_str()
                .unwrap()
                .contains("https://app.example.com/reset?t=1")
        );
        let headers = sent.content.get("headers").cloned().unwrap_or(json!({}));
        assert!(
            headers.get("List-Unsubscribe").is_none(),
            "transactional mail carries no unsubscribe: {headers}"
        );
        // The GET view: its template, and every transition in order.
        assert_eq!(shown["id"], id);
        assert_eq!(shown["channel"], "email");
        assert_eq!(shown["template"], "password_reset");
        let events = shown["events"].as_array().unwrap();
        let states: Vec<&str> = events
            .iter()
            .map(|e| e["state"].as_str().unwrap())
            .collect();
        assert_eq!(states, ["queued", "sending", "sent"]);
        for e in events {
            chrono::DateTime::parse_from_rfc3339(e["at"].as_str().unwrap())
                .unwrap_or_else(|err| panic!("{e}: {err}"));
        }
        // Linked to the contact with that address, whatever its case.
        let linked = warmline::db::count(
            &api.t.app.db,
            "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM messages WHERE id = $1 AND contact_id = $2",
            vec![id.clone().into(), contact.into()],
        )
        .await
        .unwrap();
        assert_eq!(linked, 1);
    }
);

storage_test!(
    an_idempotent_retry_replays_the_first_answer_and_enqueues_once,
    |db: TestDb| async move {
        // Arrange
        let api = spawn(db).await;
        let body = reset("grace@example.com");

        // Act
        let first = api.post(&body, Some("order-1042-reset")).await;
        let second = api.post(&body, Some("order-1042-reset")).await;

        // Assert
        assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.text);
        assert_eq!(second.status, StatusCode::ACCEPTED);
        assert_eq!(second.text, first.text, "replayed byte for byte");
        assert!(first.headers.get("idempotent-replayed").is_none());
        assert_eq!(second.headers["idempotent-replayed"], "true");
        assert_eq!(api.messages().await, 1);
        assert_eq!(api.idempotency_rows().await, 1);
        let stored_in_clear = warmline::db::count(
            &api.t.app.db,
            "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM api_idempotency WHERE key LIKE '%order-1042%'",
            vec![],
        )
        .await
        .unwrap();
        assert_eq!(stored_in_clear, 0, "the key is stored hashed");
        // A request without the key is a new send, as asked.
        let third = api.post(&body, None).await;
        assert_eq!(third.status, StatusCode::ACCEPTED);
        assert_ne!(third.json()["id"], first.json()["id"]);
        assert_eq!(api.messages().await, 2);
    }
);

storage_test!(
    the_same_key_with_another_body_is_a_conflict,
    |db: TestDb| async move {
        // Arrange
        let api = spawn(db).await;
        let first = api.post(&reset("grace@example.com"), Some("k-1")).await;
        assert_eq!(first.status, StatusCode::ACCEPTED);

        // Act
        let other = api.post(&reset("alan@example.com"), Some("k-1")).await;

        // Assert
        assert_eq!(other.status, StatusCode::CONFLICT, "{}", other.text);
        assert_eq!(other.error().0, "idempotency_key_reused");
        assert_eq!(api.messages().await, 1);
    }
);

storage_test!(
    concurrent_duplicates_enqueue_one_message,
    |db: TestDb| async move {
        // Arrange
        let api = Arc::new(spawn(db).await);
        let body = reset("grace@example.com");

        // Act: five identical requests with one key, at once.
        let tasks: Vec<_> = (0..5)
            .map(|_| {
                let (api, body) = (api.clone(), body.clone());
                tokio::spawn(async move { api.post(&body, Some("same-key")).await })
            })
            .collect();
        let mut answers = Vec::new();
        for t in tasks {
            answers.push(t.await.unwrap());
        }

        // Assert: all answered the same, one message in the ledger.
        for a in &answers {
            assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
            assert_eq!(a.text, answers[0].text);
        }
        assert_eq!(api.messages().await, 1);
        assert_eq!(api.idempotency_rows().await, 1);
    }
);

storage_test!(
    a_missing_or_wrong_key_is_refused_and_nothing_is_stored,
    |db: TestDb| async move {
        // Arrange
        let api = spawn(db).await;
        let body = Some(reset("grace@example.com").to_string());
        let post = reqwest::Method::POST;
        let path = "/api/v1/messages";

        // Act
        let answers = [
            api.send(post.clone(), path, None, &[], body.clone()).await,
            api.send(post.clone(), path, Some("wrong-key"), &[], body.clone())
                .await,
            api.send(
                post.clone(),
                path,
                None,
                &[("authorization", "Basic dGVzdC1rZXk6")],
                body.clone(),
            )
            .await,
            api.send(
                post.clone(),
                path,
                Some("wrong-key"),
                &[("idempotency-key", "k")],
                body.clone(),
            )
            .await,
            api.send(
                reqwest::Method::GET,
                "/api/v1/messages/msg_x",
                None,
                &[],
                None,
            )
            .await,
        ];

        // Assert
        for a in &answers {
            assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.text);
            assert!(
                a.headers["www-authenticate"]
                    .to_str()
                    .unwrap()
                    .starts_with("Bearer"),
            );
            assert_eq!(a.error().0, "unauthorized");
            assert!(!a.text.contains("test-key"), "keys are never echoed");
        }
        assert_eq!(api.messages().await, 0);
        assert_eq!(api.idempotency_rows().await, 0);
    }
);

storage_test!(
    without_keys_configured_the_api_is_off,
    |db: TestDb| async move {
        // Arrange
        let api = spawn_with(db, |s| s.api.keys.clear(), true).await;

        // Act
        let a = api.post(&reset("grace@example.com"), None).await;

        // Assert
        assert_eq!(a.status, StatusCode::UNAUTHORIZED);
        assert!(a.text.contains("WARMLINE_API_KEYS"), "{}", a.text);
        assert_eq!(api.messages().await, 0);
    }
);

storage_test!(
    each_invalid_field_is_a_422_naming_it,
    |db: TestDb| async move {
        // Arrange
        let api = spawn(db).await;
        let vars = json!({"reset_url": "https://x.test/r"});
        let cases = [
            (
                json!({"template": "password_reset", "to": "not-an-address", "variables": vars}),
                "to",
            ),
            (
                json!({"template": "password_reset", "to": 42, "variables": vars}),
                "to",
            ),
            (
                json!({"template": "password_reset", "variables": vars}),
                "to",
            ),
            (
                json!({"template": "no_such_template", "to": "a@example.com", "variables": vars}),
                "template",
            ),
            // Marketing mail needs consent and an unsubscribe link: not here.
            (
                json!({"template": "check_in", "to": "a@example.com", "variables": {"first_name": "Ada"}}),
                "template",
            ),
            (
                json!({"template": "password_reset", "to": "a@example.com", "variables": {}}),
                "variables.reset_url",
            ),
            (
                json!({"template": "password_reset", "to": "a@example.com", "variables": ["x"]}),
                "variables",
            ),
            (
                json!({"template": "password_reset", "to": "a@example.com", "variables": vars, "cc": "b@example.com"}),
                "cc",
            ),
        ];

        for (body, field) in cases {
            // Act
            let a = api.post(&body, Some("one-key-for-all")).await;

            // Assert
            assert_eq!(
                a.status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{body}: {}",
                a.text
            );
            assert_eq!(
                a.error(),
                ("invalid_field".to_string(), Some(field.to_string())),
                "{body}"
            );
        }
        // Refusals store nothing, so the key is still free for a fixed request.
        assert_eq!(api.messages().await, 0);
        assert_eq!(api.idempotency_rows().await, 0);
        let fixed = api
            .post(&reset("a@example.com"), Some("one-key-for-all"))
            .await;
        assert_eq!(fixed.status, StatusCode::ACCEPTED, "{}", fixed.text);
    }
);

storage_test!(malformed_json_is_a_400, |db: TestDb| async move {
    // Arrange
    let api = spawn(db).await;

    // Act
    let truncated = api
        .post_raw(r#"{"template": "password_reset", "to": "#.into(), None)
        .await;
    let not_json = api
        .send(
            reqwest::Method::POST,
            "/api/v1/messages",
            Some(KEY),
            &[("content-type", "text/plain")],
            None,
        )
        .await;

    // Assert
    assert_eq!(truncated.status, StatusCode::BAD_REQUEST);
    assert_eq!(truncated.error().0, "malformed_json");
    assert!(
        truncated.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("line 1")
    );
    assert_eq!(not_json.status, StatusCode::BAD_REQUEST);
    assert_eq!(not_json.error().0, "malformed_json");
    assert_eq!(api.messages().await, 0);
});

storage_test!(an_unknown_message_is_a_404, |db: TestDb| async move {
    // Arrange
    let api = spawn(db).await;

    // Act
    let a = api.show("msg_0000000000000000").await;
    let b = api
        .send(
            reqwest::Method::GET,
            "/api/v1/nothing-here",
            Some(KEY),
            &[],
            None,
        )
        .await;

    // Assert
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert_eq!(a.error().0, "not_found");
    assert_eq!(b.status, StatusCode::NOT_FOUND);
    assert_eq!(b.error().0, "not_found");
});

storage_test!(
    a_suppressed_address_is_skipped_not_sent,
    |db: TestDb| async move {
        // Arrange: the address hard-bounced before.
        let api = spawn(db).await;
        warmline::dispatcher::ledger::suppress(
            &api.t.app.db,
            "email",
            "Bounced@Example.com",
            "hard_bounce",
            "test",
            Utc::now(),
        )
        .await
        .unwrap();

        // Act
        let a = api.post(&reset("bounced@example.com"), None).await;

        // Assert: accepted (the API does not reveal suppressions), then
        // stopped by the dispatcher's last-moment check.
        assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
        let id = a.json()["id"].as_str().unwrap().to_string();
        let shown = api.wait_for_state(&id, "skipped").await;
        assert_eq!(shown["skip_reason"], "suppressed");
        assert_eq!(
            shown["events"].as_array().unwrap().last().unwrap()["state"],
            "skipped"
        );
        assert!(
            api.log.lock().unwrap().is_empty(),
            "nothing reached the provider"
        );
    }
);

storage_test!(
    a_forgotten_address_stays_suppressed_though_only_its_hash_is_kept,
    |db: TestDb| async move {
        // Arrange: the address complained, then its contact was forgotten,
        // which keeps the suppression only as a hash.
        let api = spawn(db).await;
        let db = &api.t.app.db;
        let contact = warmline::contacts::upsert(
            db,
            &serde_json::from_value(serde_json::json!({"email": "Gone@Example.com"})).unwrap(),
            None,
            "test",
        )
        .await
        .unwrap();
        warmline::dispatcher::ledger::suppress(
            db,
            "email",
            "gone@example.com",
            "complaint",
            "test",
            Utc::now(),
        )
        .await
        .unwrap();
        assert!(
            warmline::contacts::forget(db, contact.contact.id, "test")
                .await
                .unwrap()
        );

        // Act
        let a = api.post(&reset("gone@example.com"), None).await;

        // Assert
        assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
        let id = a.json()["id"].as_str().unwrap().to_string();
        let shown = api.wait_for_state(&id, "skipped").await;
        assert_eq!(shown["skip_reason"], "suppressed");
        assert!(
            api.log.lock().unwrap().is_empty(),
            "nothing reached the provider"
        );
    }
);

storage_test!(
    without_an_email_provider_the_api_says_what_to_set,
    |db: TestDb| async move {
        // Arrange
        let api = spawn_with(db, |_| {}, false).await;

        // Act
        let a = api.post(&reset("grace@example.com"), None).await;

        // Assert
        assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            a.text.contains("RESEND_API_KEY") && a.text.contains("SMTP_URL"),
            "{}",
            a.text
        );
        assert_eq!(api.messages().await, 0);
    }
);

storage_test!(
    an_expired_key_is_a_new_request_and_is_purged,
    |db: TestDb| async move {
        // Arrange: a key used more than a day ago.
        let api = spawn(db).await;
        let first = api.post(&reset("grace@example.com"), Some("k-old")).await;
        assert_eq!(first.status, StatusCode::ACCEPTED);
        let db = &api.t.app.db;
        sea_orm::ConnectionTrait::execute_raw(
            db,
            sea_orm::Statement::from_sql_and_values(
                db.get_database_backend(),
                "UPDATE api_idempotency SET created_at = $1",
                [(Utc::now() - chrono::Duration::hours(25)).into()],
            ),
        )
        .await
        .unwrap();

        // Act: the same key, another body.
        let again = api.post(&reset("alan@example.com"), Some("k-old")).await;

        // Assert: not a conflict; a new send with a fresh record.
        assert_eq!(again.status, StatusCode::ACCEPTED, "{}", again.text);
        assert_ne!(again.json()["id"], first.json()["id"]);
        assert_eq!(api.messages().await, 2);
        assert_eq!(api.idempotency_rows().await, 1);
        let purged =
            warmline::api::idempotency::purge_expired(db, Utc::now() + chrono::Duration::hours(25))
                .await
                .unwrap();
        assert_eq!(purged, 1);
        assert_eq!(api.idempotency_rows().await, 0);
    }
);

storage_test!(
    an_unusable_idempotency_key_is_a_400,
    |db: TestDb| async move {
        // Arrange
        let api = spawn(db).await;
        let long = "k".repeat(256);

        // Act
        let a = api.post(&reset("grace@example.com"), Some(&long)).await;

        // Assert
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.text);
        assert_eq!(
            a.error(),
            (
                "invalid_header".to_string(),
                Some("Idempotency-Key".to_string())
            )
        );
        assert_eq!(api.messages().await, 0);
    }
);
