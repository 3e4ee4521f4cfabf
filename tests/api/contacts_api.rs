//! Contacts and interactions through the JSON API, and the contact model's
//! export and erasure, against the whole running app on both backends:
//! upsert by email (any case) or external id, whole-request atomicity with
//! `[i].field` errors, consent entries in the ledger and in the view,
//! idempotent retries, bearer keys, the view's consent, suppressions and
//! messages, interactions and warmth, the export's consent proof, and
//! forget: PII gone, tombstones left, pending messages cancelled, the
//! person never stored again. Plus `warmline export-contact`.

use std::process::{Command, Stdio};

use chrono::{Duration, Utc};
use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, DatabaseConnection, FromQueryResult, Statement, Value};
use serde_json::{Value as Json, json};
use warmline::{contacts, dispatcher::ledger};

use crate::{
    helpers::{TestApp, spawn_app_on},
    storage_test,
    test_db::TestDb,
};

const KEY: &str = "test-key";

async fn spawn(db: TestDb) -> TestApp {
    spawn_app_on(db, |s| s.api.keys = vec![KEY.into()]).await
}

struct Answer {
    status: StatusCode,
    replayed: bool,
    text: String,
}

impl Answer {
    fn json(&self) -> Json {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    /// The `field` of an error answer.
    fn field(&self) -> Option<String> {
        self.json()["error"]["field"].as_str().map(str::to_string)
    }
}

async fn request(
    t: &TestApp,
    method: reqwest::Method,
    path: &str,
    bearer: Option<&str>,
    idempotency_key: Option<&str>,
    body: Option<&Json>,
) -> Answer {
    let mut req = t.client.request(method, t.url(path));
    if let Some(b) = bearer {
        req = req.bearer_auth(b);
    }
    if let Some(k) = idempotency_key {
        req = req.header("idempotency-key", k);
    }
    if let Some(body) = body {
        req = req
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    let r = req.send().await.expect("request sent");
    Answer {
        status: r.status(),
        replayed: r.headers().get("idempotent-replayed").is_some(),
        text: r.text().await.expect("a body"),
    }
}

async fn post(t: &TestApp, path: &str, body: &Json) -> Answer {
    request(t, reqwest::Method::POST, path, Some(KEY), None, Some(body)).await
}

async fn get(t: &TestApp, path: &str) -> Answer {
    request(t, reqwest::Method::GET, path, Some(KEY), None, None).await
}

/// POSTs one contact and returns its stored answer, asserting 200.
async fn upsert(t: &TestApp, body: Json) -> Json {
    let a = post(t, "/api/v1/contacts", &body).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    a.json()
}

async fn exec(db: &DatabaseConnection, sql: &str, values: Vec<Value>) {
    db.execute_raw(Statement::from_sql_and_values(
        db.get_database_backend(),
        sql,
        values,
    ))
    .await
    .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

async fn scalar(db: &DatabaseConnection, sql: &str, values: Vec<Value>) -> Option<String> {
    #[derive(FromQueryResult)]
    struct Row {
        v: Option<String>,
    }
    Row::find_by_statement(Statement::from_sql_and_values(
        db.get_database_backend(),
        sql,
        values,
    ))
    .one(db)
    .await
    .unwrap_or_else(|e| panic!("{sql}: {e}"))
    .and_then(|r| r.v)
}

/// A message row as the dispatcher would hold it.
async fn insert_message(db: &DatabaseConnection, id: &str, contact: i64, state: &str) {
    let now = Utc::now();
    exec(
        db,
        "INSERT INTO messages (id, contact_id, channel, kind, state, provider, address, payload, \
         template, created_at, updated_at) \
         VALUES ($1, $2, 'email', 'marketing', $3, 'test', 'ada@example.com', \
         '{\"to\": \"ada@example.com\", \"subject\": \"Hi Ada\"}', 'checkin', $4, $4)",
        vec![
            Value::from(id),
            Value::from(contact),
            Value::from(state),
            Value::from(now),
        ],
    )
    .await;
    exec(
        db,
        "INSERT INTO message_events (message_id, state, at, detail) VALUES ($1, $2, $3, 'to ada@example.com')",
        vec![Value::from(id), Value::from(state), Value::from(now)],
    )
    .await;
}

storage_test!(
    contacts_upsert_by_email_in_any_case,
    |db: TestDb| async move {
        // Arrange
        let t = spawn(db).await;
        let first = upsert(
            &t,
            json!({"email": "Ada.Lee@Example.com", "first_name": "Ada", "tags": ["vip"],
                   "timezone": "Europe/Paris", "phone": "(415) 555-2671", "metadata": {"a": 1, "b": 2}}),
        )
        .await;

        // Act
        let second = upsert(
            &t,
            json!({"email": "ada.lee@EXAMPLE.COM", "last_name": "Lee", "metadata": {"a": null, "c": 3}}),
        )
        .await;

        // Assert: one contact, merged; absent fields kept, null removed.
        assert_eq!(first["created"], true, "{first}");
        assert!(first["id"].is_i64());
        assert_eq!(first["phone"], "+14155552671");
        assert_eq!(second["id"], first["id"]);
        assert_eq!(second["created"], false);
        assert_eq!(second["first_name"], "Ada");
        assert_eq!(second["last_name"], "Lee");
        assert_eq!(second["tags"], json!(["vip"]));
        assert_eq!(second["timezone"], "Europe/Paris");
        assert_eq!(second["metadata"], json!({"b": 2, "c": 3}));
        assert_eq!(t.count_rows("contacts").await, 1);
    }
);

storage_test!(
    contacts_upsert_by_external_id_and_refuse_a_taken_one,
    |db: TestDb| async move {
        // Arrange
        let t = spawn(db).await;
        let by_ext = upsert(&t, json!({"external_id": "crm-1", "first_name": "Bo"})).await;
        let other = upsert(&t, json!({"email": "cy@example.com"})).await;

        // Act
        let merged = upsert(
            &t,
            json!({"external_id": "crm-1", "email": "bo@example.com"}),
        )
        .await;
        let taken = post(
            &t,
            "/api/v1/contacts",
            &json!({"email": "cy@example.com", "external_id": "crm-1"}),
        )
        .await;

        // Assert: the external id found Bo and gave him an email; Cy may
        // not take Bo's external id.
        assert_eq!(merged["id"], by_ext["id"]);
        assert_eq!(merged["email"], "bo@example.com");
        assert_eq!(merged["first_name"], "Bo");
        assert_eq!(
            taken.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            taken.text
        );
        assert_eq!(taken.field().as_deref(), Some("external_id"));
        let cy = get(&t, &format!("/api/v1/contacts/{}", other["id"]))
            .await
            .json();
        assert_eq!(cy["external_id"], Json::Null, "nothing changed");
        assert_eq!(t.count_rows("contacts").await, 2);
    }
);

storage_test!(
    contacts_an_array_is_atomic_and_names_the_bad_item,
    |db: TestDb| async move {
        // Arrange
        let t = spawn(db).await;
        let hash = warmline::domain::tombstone_hash("gone@example.com");
        exec(
            &t.app.db,
            "INSERT INTO tombstones (hash, created_at) VALUES ($1, $2)",
            vec![Value::from(hash), Value::from(Utc::now())],
        )
        .await;

        // Act
        let invalid = request(
            &t,
            reqwest::Method::POST,
            "/api/v1/contacts",
            Some(KEY),
            Some("batch-1"),
            Some(&json!([{"email": "ok@example.com"}, {"email": "not-an-email"}])),
        )
        .await;
        let unknown_field = post(
            &t,
            "/api/v1/contacts",
            &json!([{"email": "ok@example.com"}, {"email": "b@example.com", "nickname": "B"}]),
        )
        .await;
        let forgotten = post(
            &t,
            "/api/v1/contacts",
            &json!([{"email": "ok@example.com"}, {"email": "Gone@Example.com"}]),
        )
        .await;
        let fine = request(
            &t,
            reqwest::Method::POST,
            "/api/v1/contacts",
            Some(KEY),
            Some("batch-1"),
            Some(&json!([{"email": "ok@example.com"}, {"external_id": "x-2"}])),
        )
        .await;

        // Assert: each refusal names `[1].…` and stores nothing (not even
        // the idempotency key, which then serves the fixed request).
        for (a, field) in [
            (&invalid, "[1].email"),
            (&unknown_field, "[1]"),
            (&forgotten, "[1].email"),
        ] {
            assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.text);
            assert!(
                a.field().unwrap_or_default().starts_with(field),
                "{field}: {}",
                a.text
            );
        }
        assert!(forgotten.text.contains("forgotten"), "{}", forgotten.text);
        assert_eq!(fine.status, StatusCode::OK, "{}", fine.text);
        let stored = fine.json();
        assert_eq!(stored.as_array().map(Vec::len), Some(2), "{stored}");
        assert_eq!(stored[0]["email"], "ok@example.com");
        assert_eq!(stored[1]["external_id"], "x-2");
        assert_eq!(t.count_rows("contacts").await, 2);
    }
);

storage_test!(
    contacts_consent_entries_reach_the_ledger_and_the_view,
    |db: TestDb| async move {
        // Arrange
        let t = spawn(db).await;

        // Act
        let stored = upsert(
            &t,
            json!({"email": "ada@example.com", "phone": "+14155552671", "consent": [
                {"channel": "email", "granted": true, "source": "pricing form", "text": "Newsletter v3"},
                {"channel": "sms", "granted": false}
            ]}),
        )
        .await;
        let no_address = post(
            &t,
            "/api/v1/contacts",
            &json!({"external_id": "x", "consent": [{"channel": "whatsapp", "granted": true}]}),
        )
        .await;
        let view = get(&t, &format!("/api/v1/contacts/{}", stored["id"])).await;

        // Assert: two ledger rows with source, actor and text.
        let id = stored["id"].as_i64().unwrap();
        let current = warmline::consent::current(&t.app.db, id).await.unwrap();
        assert!(current["email"].granted);
        assert_eq!(current["email"].source, "api:pricing form");
        assert!(!current["sms"].granted);
        let actor = scalar(
            &t.app.db,
            "SELECT actor AS v FROM consents WHERE contact_id = $1 AND channel = 'email'",
            vec![Value::from(id)],
        )
        .await
        .unwrap();
        assert!(actor.starts_with("api:") && !actor.contains(KEY), "{actor}");
        let text = scalar(
            &t.app.db,
            "SELECT consent_text AS v FROM consents WHERE contact_id = $1 AND channel = 'email'",
            vec![Value::from(id)],
        )
        .await;
        assert_eq!(text.as_deref(), Some("Newsletter v3"));
        assert_eq!(t.count_rows("consents").await, 2);
        // A grant needs an address on its channel.
        assert_eq!(no_address.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(no_address.field().as_deref(), Some("consent[0].granted"));
        // The view shows every channel.
        assert_eq!(view.status, StatusCode::OK, "{}", view.text);
        let v = view.json();
        assert_eq!(v["consent"]["email"]["granted"], true, "{v}");
        assert_eq!(v["consent"]["email"]["source"], "api:pricing form");
        assert_eq!(v["consent"]["sms"]["granted"], false);
        assert_eq!(v["consent"]["whatsapp"], Json::Null);
        assert_eq!(v["consent"]["instagram"], Json::Null);
    }
);

storage_test!(
    contacts_an_idempotent_retry_is_answered_once,
    |db: TestDb| async move {
        // Arrange
        let t = spawn(db).await;
        let body =
            json!({"email": "ada@example.com", "consent": [{"channel": "email", "granted": true}]});
        let send = |b: Json| {
            let t = &t;
            async move {
                request(
                    t,
                    reqwest::Method::POST,
                    "/api/v1/contacts",
                    Some(KEY),
                    Some("sync-ada-1"),
                    Some(&b),
                )
                .await
            }
        };

        // Act
        let first = send(body.clone()).await;
        let retry = send(body).await;
        let other = send(json!({"email": "bo@example.com"})).await;

        // Assert: the same bytes, marked as a replay; one consent row.
        assert_eq!(first.status, StatusCode::OK, "{}", first.text);
        assert!(!first.replayed);
        assert_eq!(retry.status, StatusCode::OK);
        assert!(retry.replayed);
        assert_eq!(retry.text, first.text);
        assert_eq!(t.count_rows("consents").await, 1);
        assert_eq!(other.status, StatusCode::CONFLICT, "{}", other.text);
        assert_eq!(t.count_rows("contacts").await, 1);
    }
);

storage_test!(contacts_need_an_api_key, |db: TestDb| async move {
    // Arrange
    let t = spawn(db).await;

    // Act
    let posted = request(
        &t,
        reqwest::Method::POST,
        "/api/v1/contacts",
        None,
        None,
        Some(&json!({"email": "ada@example.com"})),
    )
    .await;
    let wrong = request(
        &t,
        reqwest::Method::GET,
        "/api/v1/contacts?email=ada@example.com",
        Some("wrong"),
        None,
        None,
    )
    .await;
    let interaction = request(
        &t,
        reqwest::Method::POST,
        "/api/v1/interactions",
        None,
        None,
        Some(&json!({})),
    )
    .await;

    // Assert
    for a in [&posted, &wrong, &interaction] {
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.text);
    }
    assert_eq!(t.count_rows("contacts").await, 0);
});

storage_test!(
    contacts_are_shown_by_id_and_by_email_with_suppressions_and_messages,
    |db: TestDb| async move {
        // Arrange
        let t = spawn(db).await;
        let stored = upsert(
            &t,
            json!({"email": "Ada@Example.com", "first_name": "Ada", "pipeline_stage": "lead",
                   "consent": [{"channel": "email", "granted": true}]}),
        )
        .await;
        let id = stored["id"].as_i64().unwrap();
        ledger::suppress(
            &t.app.db,
            "email",
            "ada@example.com",
            "hard_bounce",
            "resend",
            Utc::now(),
        )
        .await
        .unwrap();
        insert_message(&t.app.db, "msg_view_1", id, "sent").await;
        exec(
            &t.app.db,
            "UPDATE messages SET state = 'skipped', skip_reason = 'suppressed' WHERE id = 'msg_view_1'",
            vec![],
        )
        .await;

        // Act
        let by_id = get(&t, &format!("/api/v1/contacts/{id}")).await;
        let by_email = get(&t, "/api/v1/contacts?email=ADA%40example.com").await;
        let unknown = get(&t, "/api/v1/contacts?email=nobody%40example.com").await;
        let missing = get(&t, &format!("/api/v1/contacts/{}", id + 100)).await;
        let not_a_number = get(&t, "/api/v1/contacts/abc").await;
        let no_query = get(&t, "/api/v1/contacts").await;

        // Assert
        assert_eq!(by_id.status, StatusCode::OK, "{}", by_id.text);
        let v = by_id.json();
        assert_eq!(v["id"], id);
        assert_eq!(v["pipeline_stage"], "lead");
        assert!(v["warmth"].is_number(), "{v}");
        assert!(v["warmth_reasons"].is_array(), "{v}");
        assert_eq!(v["consent"]["email"]["granted"], true);
        assert_eq!(v["suppressions"][0]["reason"], "hard_bounce", "{v}");
        assert_eq!(v["suppressions"][0]["channel"], "email");
        assert_eq!(v["messages"][0]["id"], "msg_view_1", "{v}");
        assert_eq!(v["messages"][0]["channel"], "email");
        assert_eq!(v["messages"][0]["state"], "skipped");
        assert_eq!(v["messages"][0]["skip_reason"], "suppressed");
        assert_eq!(by_email.status, StatusCode::OK, "{}", by_email.text);
        assert_eq!(by_email.json(), v);
        // Reachable on email? Granted, but the suppression overrides it.
        let view = contacts::view(&t.app.db, id).await.unwrap().unwrap();
        assert!(!view.reachable_on("email"));
        for a in [&unknown, &missing, &not_a_number] {
            assert_eq!(a.status, StatusCode::NOT_FOUND, "{}", a.text);
        }
        assert_eq!(no_query.status, StatusCode::UNPROCESSABLE_ENTITY);
    }
);

storage_test!(
    contacts_are_found_by_name_for_slack,
    |db: TestDb| async move {
        // Arrange
        let t = spawn(db).await;
        upsert(
            &t,
            json!({"email": "ada@example.com", "first_name": "Ada", "last_name": "Lovelace"}),
        )
        .await;
        upsert(&t, json!({"email": "bo@example.com", "first_name": "Bo"})).await;
        upsert(&t, json!({"external_id": "under_score"})).await;

        // Act
        let ada = contacts::search(&t.app.db, "ada love", 5).await.unwrap();
        let by_domain = contacts::search(&t.app.db, "EXAMPLE.com", 5).await.unwrap();
        let literal = contacts::search(&t.app.db, "a_a", 5).await.unwrap();

        // Assert
        assert_eq!(ada.len(), 1);
        assert_eq!(ada[0].1, "Ada Lovelace");
        assert_eq!(ada[0].2.as_deref(), Some("ada@example.com"));
        assert_eq!(by_domain.len(), 2);
        assert!(literal.is_empty(), "'_' is not a wildcard: {literal:?}");
    }
);

storage_test!(
    interactions_are_validated_before_anything_is_written,
    |db: TestDb| async move {
        // Arrange
        let t = spawn(db).await;
        upsert(&t, json!({"email": "ada@example.com"})).await;
        let at = Utc::now().to_rfc3339();
        let future = (Utc::now() + Duration::hours(1)).to_rfc3339();

        // Act
        let cases = [
            (
                json!({"contact": {"email": "ada@example.com"}, "kind": "lunch", "direction": "inbound"}),
                "kind",
            ),
            (
                json!({"contact": {"email": "ada@example.com"}, "kind": "call", "direction": "sideways"}),
                "direction",
            ),
            (
                json!({"contact": {"email": "ada@example.com"}, "kind": "call", "direction": "inbound", "occurred_at": "yesterday"}),
                "occurred_at",
            ),
            (
                json!({"contact": {"email": "ada@example.com"}, "kind": "call", "direction": "inbound", "occurred_at": future}),
                "occurred_at",
            ),
            (
                json!({"contact": {}, "kind": "call", "direction": "inbound"}),
                "contact",
            ),
            (
                json!({"contact": {"id": 1, "email": "ada@example.com"}, "kind": "call", "direction": "inbound"}),
                "contact",
            ),
        ];
        let mut answers = Vec::new();
        for (body, _) in &cases {
            answers.push(post(&t, "/api/v1/interactions", body).await);
        }
        let unknown = post(
            &t,
            "/api/v1/interactions",
            &json!({"contact": {"email": "nobody@example.com"}, "kind": "call",
                    "direction": "inbound", "occurred_at": at}),
        )
        .await;

        // Assert
        for ((_, field), a) in cases.iter().zip(&answers) {
            assert_eq!(
                a.status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{field}: {}",
                a.text
            );
            assert_eq!(a.field().as_deref(), Some(*field), "{}", a.text);
        }
        assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{}", unknown.text);
        assert!(unknown.text.contains("contact.email"), "{}", unknown.text);
        assert_eq!(t.count_rows("interactions").await, 0);
    }
);

storage_test!(
    warmth_reasons_are_never_empty_for_new_or_one_way_contacts,
    |db: TestDb| async move {
        // Arrange: a contact nobody has talked to, and one who was only
        // written to (three emails, no reply).
        let t = spawn(db).await;
        let new = upsert(&t, json!({"email": "new@example.com"})).await;
        let one_way = upsert(&t, json!({"email": "cold@example.com"})).await;
        for days in [9, 6, 3] {
            let at = (Utc::now() - Duration::days(days)).to_rfc3339();
            let a = post(
                &t,
                "/api/v1/interactions",
                &json!({"contact": {"email": "cold@example.com"}, "kind": "email",
                        "direction": "outbound", "occurred_at": at}),
            )
            .await;
            assert_eq!(a.status, StatusCode::OK, "{}", a.text);
        }

        // Act
        let new = get(&t, &format!("/api/v1/contacts/{}", new["id"])).await;
        let one_way = get(&t, &format!("/api/v1/contacts/{}", one_way["id"])).await;

        // Assert
        assert_eq!(
            new.json()["warmth_reasons"],
            json!(["No interactions recorded yet"]),
            "{}",
            new.text
        );
        let reasons = one_way.json()["warmth_reasons"].clone();
        let first = reasons[0].as_str().unwrap_or_default().to_string();
        assert!(
            first.starts_with("Only one-way outreach since"),
            "{reasons}"
        );
    }
);

// Needs the warmth model (`crate::warmth::refresh_contact`); until it
// lands `interactions::record` fails and this test with it.
storage_test!(interactions_raise_warmth, |db: TestDb| async move {
    // Arrange
    let t = spawn(db).await;
    let stored = upsert(
        &t,
        json!({"email": "ada@example.com", "external_id": "crm-7"}),
    )
    .await;
    let id = stored["id"].as_i64().unwrap();
    let before = contacts::view(&t.app.db, id).await.unwrap().unwrap().warmth;

    // Act
    let mut last = Json::Null;
    for (i, direction) in ["outbound", "inbound", "outbound"].iter().enumerate() {
        let at = (Utc::now() - Duration::days(3 - i as i64)).to_rfc3339();
        let a = post(
            &t,
            "/api/v1/interactions",
            &json!({"contact": {"external_id": "crm-7"}, "kind": "meeting",
                        "direction": direction, "occurred_at": at, "summary": "Coffee"}),
        )
        .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
        last = a.json();
    }

    // Assert: the answer carries the new warmth, stored on the contact.
    assert_eq!(last["contact_id"], id, "{last}");
    let warmth = last["warmth"].as_f64().expect("a number");
    assert!(warmth > before, "{before} → {warmth}");
    assert!(
        last["reasons"].as_array().is_some_and(|r| !r.is_empty()),
        "{last}"
    );
    let view = contacts::view(&t.app.db, id).await.unwrap().unwrap();
    assert_eq!(view.warmth, warmth);
    assert_eq!(view.interactions.len(), 3);
    assert_eq!(view.interactions[0].summary.as_deref(), Some("Coffee"));
});

storage_test!(
    contacts_export_holds_everything_with_consent_proof,
    |db: TestDb| async move {
        // Arrange
        let t = spawn(db).await;
        let stored = upsert(
            &t,
            json!({"email": "ada@example.com", "first_name": "Ada", "consent": [
                {"channel": "email", "granted": true, "source": "webinar", "text": "Consent v2"},
                {"channel": "email", "granted": false, "source": "support call"}
            ]}),
        )
        .await;
        let id = stored["id"].as_i64().unwrap();
        let now = Utc::now();
        exec(
            &t.app.db,
            "INSERT INTO interactions (contact_id, kind, direction, occurred_at, summary, source, created_at) \
             VALUES ($1, 'call', 'inbound', $2, 'Talked about the seed round', 'api', $2)",
            vec![Value::from(id), Value::from(now)],
        )
        .await;
        insert_message(&t.app.db, "msg_export_1", id, "sent").await;
        exec(
            &t.app.db,
            "INSERT INTO inbound_messages (contact_id, channel, from_address, text, keyword, received_at, created_at) \
             VALUES (NULL, 'email', 'ADA@example.com', 'Thanks!', NULL, $1, $1)",
            vec![Value::from(now)],
        )
        .await;
        exec(
            &t.app.db,
            "INSERT INTO trigger_runs (contact_id, \"trigger\", crossing, step, state, created_at, updated_at) \
             VALUES ($1, 'onboarding', '1', 0, 'active', $2, $2)",
            vec![Value::from(id), Value::from(now)],
        )
        .await;

        // Act
        let export = contacts::export(&t.app.db, id)
            .await
            .unwrap()
            .expect("exists");
        let none = contacts::export(&t.app.db, id + 100).await.unwrap();

        // Assert: every ledger row, with time, source, actor and text.
        assert!(none.is_none());
        assert_eq!(export["contact"]["email"], "ada@example.com");
        let ledger = export["consent"]["ledger"].as_array().expect("ledger");
        assert_eq!(ledger.len(), 2, "{export}");
        assert_eq!(ledger[0]["granted"], true);
        assert_eq!(ledger[0]["source"], "api:webinar");
        assert_eq!(ledger[0]["text"], "Consent v2");
        assert!(ledger[0]["actor"].as_str().unwrap().starts_with("api:"));
        assert!(ledger[0]["recorded_at"].is_string());
        assert_eq!(ledger[1]["granted"], false);
        assert_eq!(export["consent"]["current"]["email"]["granted"], false);
        assert_eq!(
            export["interactions"][0]["summary"],
            "Talked about the seed round"
        );
        assert_eq!(export["messages"][0]["id"], "msg_export_1");
        assert_eq!(export["messages"][0]["payload"]["subject"], "Hi Ada");
        assert_eq!(export["messages"][0]["events"][0]["state"], "sent");
        assert_eq!(
            export["inbound_messages"][0]["text"], "Thanks!",
            "found by address: {export}"
        );
        assert_eq!(export["trigger_runs"][0]["trigger"], "onboarding");
        assert!(export["suppressions"].is_array());
    }
);

storage_test!(
    contacts_forget_erases_pii_cancels_pending_and_stays_forgotten,
    |db: TestDb| async move {
        // Arrange: a contact with something in every table.
        let t = spawn(db).await;
        let first = request(
            &t,
            reqwest::Method::POST,
            "/api/v1/contacts",
            Some(KEY),
            Some("sync-ada"),
            Some(&json!({"email": "Ada@Example.com", "phone": "+14155552671",
                         "external_id": "crm-9", "first_name": "Ada",
                         "consent": [{"channel": "email", "granted": true, "source": "form", "text": "v1"}]})),
        )
        .await;
        assert_eq!(first.status, StatusCode::OK, "{}", first.text);
        let id = first.json()["id"].as_i64().unwrap();
        let db = &t.app.db;
        let now = Utc::now();
        exec(
            db,
            "INSERT INTO interactions (contact_id, kind, direction, occurred_at, summary, source, created_at) \
             VALUES ($1, 'note', 'outbound', $2, 'Ada likes sailing', 'api', $2)",
            vec![Value::from(id), Value::from(now)],
        )
        .await;
        insert_message(db, "msg_sent", id, "sent").await;
        insert_message(db, "msg_pending", id, "queued").await;
        exec(
            db,
            "INSERT INTO provider_events (provider, event_id, message_id, kind, payload, received_at) \
             VALUES ('resend', 'evt_1', 'msg_sent', 'delivered', '{\"to\": \"ada@example.com\"}', $1)",
            vec![Value::from(now)],
        )
        .await;
        exec(
            db,
            "INSERT INTO inbound_messages (contact_id, channel, from_address, text, keyword, received_at, created_at) \
             VALUES ($1, 'sms', '+14155552671', 'STOP', 'stop', $2, $2)",
            vec![Value::from(id), Value::from(now)],
        )
        .await;
        ledger::suppress(db, "email", "ada@example.com", "complaint", "resend", now)
            .await
            .unwrap();

        // Act
        let forgotten = contacts::forget(db, id, "slack:U0001").await.unwrap();
        let again = contacts::forget(db, id, "slack:U0001").await.unwrap();

        // Assert: the person is gone…
        assert!(forgotten);
        assert!(!again, "nothing left to forget");
        assert!(contacts::view(db, id).await.unwrap().is_none());
        assert!(
            contacts::find_by_email(db, "ada@example.com")
                .await
                .unwrap()
                .is_none()
        );
        for table in ["contacts", "interactions", "consents", "trigger_runs"] {
            assert_eq!(t.count_rows(table).await, 0, "{table}");
        }
        let count =
            |sql: &'static str| async move { warmline::db::count(db, sql, vec![]).await.unwrap() };
        assert_eq!(
            count("SELECT CAST(COUNT(*) AS BIGINT) AS n FROM messages WHERE address IS NOT NULL OR payload <> '{}' OR contact_id IS NOT NULL").await,
            0,
            "messages keep no address, content or link"
        );
        assert_eq!(
            count("SELECT CAST(COUNT(*) AS BIGINT) AS n FROM message_events WHERE detail LIKE '%ada@%'").await,
            0
        );
        assert_eq!(
            count("SELECT CAST(COUNT(*) AS BIGINT) AS n FROM provider_events WHERE payload LIKE '%ada@%'").await,
            0
        );
        assert_eq!(
            count("SELECT CAST(COUNT(*) AS BIGINT) AS n FROM inbound_messages WHERE text <> '' OR from_address LIKE '%4155552671%'").await,
            0
        );
        assert_eq!(
            count(
                "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM inbound_messages WHERE keyword = 'stop'"
            )
            .await,
            1,
            "the opt-out stays as a fact"
        );
        // …the pending message was cancelled, the sent one kept its outcome…
        let state = |id: &'static str| async move {
            scalar(
                db,
                "SELECT state || '/' || COALESCE(skip_reason, '') AS v FROM messages WHERE id = $1",
                vec![Value::from(id)],
            )
            .await
            .unwrap()
        };
        assert_eq!(state("msg_pending").await, "skipped/cancelled");
        assert_eq!(state("msg_sent").await, "sent/");
        // …the suppression stays, hashed; the tombstones are there…
        let suppressed = scalar(db, "SELECT address AS v FROM suppressions", vec![])
            .await
            .unwrap();
        assert!(suppressed.starts_with("sha256:"), "{suppressed}");
        assert_eq!(t.count_rows("tombstones").await, 3);
        // …the audit entry keeps the consent proof, masked identifiers only.
        let audit = scalar(
            db,
            "SELECT detail AS v FROM audit_log WHERE action = 'contact.forgotten'",
            vec![],
        )
        .await
        .expect("an audit entry");
        let audit: Json = serde_json::from_str(&audit).unwrap();
        assert_eq!(audit["email"], "A***@example.com", "{audit}");
        assert_eq!(audit["consent_proof"][0]["source"], "api:form");
        assert_eq!(audit["consent_proof"][0]["text"], "v1");
        let all_audit = audit.to_string().to_lowercase();
        assert!(!all_audit.contains("ada@example.com") && !all_audit.contains("4155552671"));
        // …and nobody brings the person back: not the API (the stored
        // idempotent answer is gone too, so a retry is refused afresh)…
        for (body, field) in [
            (json!({"email": "ADA@example.com"}), "email"),
            (json!({"external_id": "crm-9"}), "external_id"),
            (
                json!({"email": "new@example.com", "phone": "(415) 555-2671"}),
                "phone",
            ),
        ] {
            let a = post(&t, "/api/v1/contacts", &body).await;
            assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.text);
            assert_eq!(a.field().as_deref(), Some(field));
        }
        let retry = request(
            &t,
            reqwest::Method::POST,
            "/api/v1/contacts",
            Some(KEY),
            Some("sync-ada"),
            Some(&json!({"email": "Ada@Example.com", "phone": "+14155552671",
                         "external_id": "crm-9", "first_name": "Ada",
                         "consent": [{"channel": "email", "granted": true, "source": "form", "text": "v1"}]})),
        )
        .await;
        assert_eq!(
            retry.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            retry.text
        );
        assert!(!retry.replayed);
        // …nor an import.
        let report = warmline::import::contacts_csv::import(
            db,
            "email,first_name\nada@example.com,Ada\n".as_bytes(),
            &warmline::import::contacts_csv::ImportOptions {
                default_region: None,
                batch_size: 10,
                source_name: "again.csv".into(),
            },
            &indicatif::ProgressBar::hidden(),
        )
        .await
        .unwrap();
        assert_eq!(report.rejected.len(), 1, "{report}");
        assert_eq!(t.count_rows("contacts").await, 0);
    }
);

/// `warmline export-contact` as a user runs it, in a clean environment.
fn export_contact(dir: &std::path::Path, url: &str, email: &str) -> std::process::Output {
    std::fs::write(dir.join("empty.toml"), "").unwrap();
    Command::new(env!("CARGO_BIN_EXE_warmline"))
        .args(["export-contact", email])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("WARMLINE_CONFIG", dir.join("empty.toml"))
        .env("DATABASE_URL", url)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("warmline runs")
}

storage_test!(
    export_contact_cli_prints_json_or_fails_in_one_line,
    |t: TestDb| async move {
        let t = &t; // the whole TestDb, so its SQLite directory outlives the test
        // Arrange
        let input: contacts::ContactInput = serde_json::from_value(json!({
            "email": "ada@example.com",
            "consent": [{"channel": "email", "granted": true, "text": "v1"}]
        }))
        .unwrap();
        contacts::upsert(&t.db, &input, None, "test").await.unwrap();
        let dir = tempfile::tempdir().unwrap();

        // Act
        let found = export_contact(dir.path(), &t.url, "ADA@example.com");
        let missing = export_contact(dir.path(), &t.url, "nobody@example.com");

        // Assert
        let stdout = String::from_utf8_lossy(&found.stdout);
        assert!(
            found.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&found.stderr)
        );
        let export: Json = serde_json::from_str(&stdout).expect("JSON on stdout");
        assert_eq!(export["contact"]["email"], "ada@example.com");
        assert_eq!(export["consent"]["ledger"][0]["text"], "v1");
        assert_eq!(missing.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&missing.stderr);
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{stderr}");
        assert!(lines[0].contains("no contact"), "{stderr}");
        assert!(!stderr.contains("nobody@example.com"), "masked: {stderr}");
        assert!(missing.stdout.is_empty());
    }
);
