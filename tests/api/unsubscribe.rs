//! `/u/{token}`: RFC 8058 one-click unsubscribe and the preferences page,
//! over HTTP against a real database; and the promise behind them — once the
//! opt-out is answered, no later send to that contact reaches a provider.

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    FromQueryResult, QueryFilter, QueryOrder, Statement, Value,
};
use warmline::{
    db::entities::{audit_log, consents, contacts},
    dispatcher::ledger,
    domain::MessageState,
    providers::{
        Registry,
        test_provider::{Behaviour, Core, TestProvider},
    },
};

use crate::{
    dispatcher::{message, seed_contacts},
    fake_slack::WAIT,
    helpers::{TestApp, spawn_app_on, spawn_app_with_registry},
    storage_test,
    test_db::TestDb,
};

const FORM: &str = "application/x-www-form-urlencoded";

/// A client that shows redirects instead of following them.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(WAIT)
        .build()
        .unwrap()
}

/// A contact with an email address, a phone and the consent rows given.
pub(crate) async fn seed_contact(
    db: &DatabaseConnection,
    phone: Option<&str>,
    consent: &[(&str, bool)],
) -> (i64, String) {
    let now = Utc::now();
    let email = format!("ada-{}@example.com", uuid::Uuid::new_v4().simple());
    let id = contacts::Entity::insert(contacts::ActiveModel {
        email: Set(Some(email.clone())),
        phone: Set(phone.map(str::to_string)),
        first_name: Set(Some("Ada".into())),
        status: Set("active".into()),
        tags: Set("[]".into()),
        metadata: Set("{}".into()),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    })
    .exec(db)
    .await
    .unwrap()
    .last_insert_id;
    for (channel, granted) in consent {
        warmline::consent::record(
            db,
            id,
            channel,
            *granted,
            warmline::consent::Source::Form,
            Some("test"),
            Some("signed up on the website"),
        )
        .await
        .unwrap();
    }
    (id, email)
}

pub(crate) async fn ledger_rows(db: &DatabaseConnection, contact: i64) -> Vec<consents::Model> {
    consents::Entity::find()
        .filter(consents::Column::ContactId.eq(contact))
        .order_by_asc(consents::Column::Id)
        .all(db)
        .await
        .unwrap()
}

async fn token(app: &TestApp, contact: i64, channel: &str) -> String {
    app.app
        .composer
        .signer()
        .sign(contact, channel)
        .await
        .unwrap()
}

async fn one_click(app: &TestApp, token: &str) -> reqwest::Response {
    client()
        .post(app.url(&format!("/u/{token}")))
        .header("content-type", FORM)
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap()
}

async fn post_form(app: &TestApp, token: &str, pairs: &[(&str, &str)]) -> reqwest::Response {
    client()
        .post(app.url(&format!("/u/{token}")))
        .header("content-type", FORM)
        .body(crate::helpers::form(pairs))
        .send()
        .await
        .unwrap()
}

async fn get_page(app: &TestApp, token: &str) -> reqwest::Response {
    client()
        .get(app.url(&format!("/u/{token}")))
        .send()
        .await
        .unwrap()
}

storage_test!(
    one_click_revokes_at_once_and_only_once,
    |db: TestDb| async move {
        // Arrange
        let app = spawn_app_on(db, |_| {}).await;
        let (contact, email) = seed_contact(&app.app.db, None, &[("email", true)]).await;
        let t = token(&app, contact, "email").await;

        // Act
        let first = one_click(&app, &t).await;
        // Read at once, with no wait: the revocation was committed before
        // the 200 was written (the write is synchronous in the request).
        let after_first = ledger_rows(&app.app.db, contact).await;
        let second = one_click(&app, &t).await;

        // Assert: RFC 8058 — 200, no redirect, no cookie.
        for r in [&first, &second] {
            assert_eq!(r.status(), 200);
            assert!(r.headers().get("location").is_none());
            assert!(r.headers().get("set-cookie").is_none());
        }
        assert_eq!(after_first.len(), 2, "the grant and one revocation");
        let revocation = &after_first[1];
        assert!(!revocation.granted);
        assert_eq!(revocation.channel, "email");
        assert_eq!(revocation.source, "one_click_unsubscribe");
        assert_eq!(revocation.actor.as_deref(), Some("recipient"));
        assert_eq!(
            ledger_rows(&app.app.db, contact).await.len(),
            2,
            "a repeat appends nothing"
        );
        let current = warmline::consent::current(&app.app.db, contact)
            .await
            .unwrap();
        assert!(!current["email"].granted);
        let audit = audit_log::Entity::find().all(&app.app.db).await.unwrap();
        assert_eq!(audit.len(), 1, "one change, one audit entry");
        assert_eq!(audit[0].actor, "recipient");
        assert_eq!(audit[0].action, "consent.revoked");
        let subject = audit[0].subject.clone().unwrap();
        assert_eq!(subject, warmline::domain::mask_email(&email));
        assert!(!audit[0].detail.contains(&email), "no address in the audit");
    }
);

storage_test!(
    one_click_without_any_prior_consent_still_records_the_request,
    |db: TestDb| async move {
        // Arrange: a contact who never consented (nothing in the ledger).
        let app = spawn_app_on(db, |_| {}).await;
        let (contact, _) = seed_contact(&app.app.db, None, &[]).await;
        let t = token(&app, contact, "email").await;

        // Act
        let r1 = one_click(&app, &t).await;
        let r2 = one_click(&app, &t).await;

        // Assert
        assert_eq!(r1.status(), 200);
        assert_eq!(r2.status(), 200);
        let rows = ledger_rows(&app.app.db, contact).await;
        assert_eq!(rows.len(), 1);
        assert!(!rows[0].granted);
    }
);

storage_test!(
    concurrent_one_clicks_append_one_revocation,
    |db: TestDb| async move {
        // Arrange: mail clients and scanners may POST the same link at once.
        let app = spawn_app_on(db, |_| {}).await;
        let (contact, _) = seed_contact(&app.app.db, None, &[("email", true)]).await;
        let t = token(&app, contact, "email").await;

        // Act
        let answers = futures::future::join_all((0..8).map(|_| one_click(&app, &t))).await;

        // Assert
        assert!(answers.iter().all(|r| r.status() == 200));
        let revocations = ledger_rows(&app.app.db, contact)
            .await
            .into_iter()
            .filter(|r| !r.granted)
            .count();
        assert_eq!(revocations, 1);
    }
);

storage_test!(
    forged_or_altered_tokens_get_404_and_change_nothing,
    |db: TestDb| async move {
        // Arrange
        let app = spawn_app_on(db, |_| {}).await;
        let (contact, _) =
            seed_contact(&app.app.db, Some("+14155550123"), &[("email", true)]).await;
        let (other, _) = seed_contact(&app.app.db, None, &[("email", true)]).await;
        let genuine = token(&app, contact, "email").await;
        let sig = genuine.rsplit('.').next().unwrap().to_string();
        let foreign = warmline::email::unsubscribe::Signer::with_key(b"not our key")
            .sign(contact, "email")
            .await
            .unwrap();
        let mut flipped = sig.clone().into_bytes();
        flipped[0] = if flipped[0] == b'A' { b'B' } else { b'A' };
        let bad = [
            format!("{other}.email.{sig}"),
            format!("{contact}.sms.{sig}"),
            format!("{contact}.email.{}", String::from_utf8(flipped).unwrap()),
            format!("{contact}.email.{}", &sig[..sig.len() - 2]),
            format!("0{contact}.email.{sig}"),
            foreign,
            "nonsense".to_string(),
        ];
        let rows_before = app.count_rows("consents").await;

        // Act + Assert
        for t in &bad {
            assert_eq!(one_click(&app, t).await.status(), 404, "{t}");
            assert_eq!(
                post_form(&app, t, &[("action", "unsubscribe")])
                    .await
                    .status(),
                404,
                "{t}"
            );
            assert_eq!(get_page(&app, t).await.status(), 404, "{t}");
        }
        assert_eq!(app.count_rows("consents").await, rows_before);
        assert_eq!(app.audit_rows().await, 0);
    }
);

storage_test!(
    get_shows_the_page_and_changes_nothing,
    |db: TestDb| async move {
        // Arrange
        let app = spawn_app_on(db, |s| {
            s.email.product_name = Some("Acme <Relations>".into())
        })
        .await;
        let (contact, email) =
            seed_contact(&app.app.db, Some("+14155550123"), &[("email", true)]).await;
        let t = token(&app, contact, "email").await;

        // Act: a mail scanner prefetches the link, twice.
        let first = get_page(&app, &t).await;
        let headers = first.headers().clone();
        let html = first.text().await.unwrap();
        let _ = get_page(&app, &t).await;

        // Assert
        assert!(
            headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        assert_eq!(headers["cache-control"], "no-store");
        assert!(html.contains(&email), "the person sees the full address");
        assert!(html.contains("Unsubscribe from these emails"));
        assert!(html.contains("<form method=\"post\""));
        assert!(
            html.contains("Acme &lt;Relations&gt;"),
            "escaped product name"
        );
        assert!(
            html.contains("value=\"sms\""),
            "the phone gives an SMS choice"
        );
        assert!(!html.contains("<script"), "no JavaScript");
        assert_eq!(ledger_rows(&app.app.db, contact).await.len(), 1);
        assert_eq!(app.audit_rows().await, 0);
    }
);

storage_test!(
    the_page_button_unsubscribes_and_confirms,
    |db: TestDb| async move {
        // Arrange
        let app = spawn_app_on(db, |_| {}).await;
        let (contact, email) = seed_contact(&app.app.db, None, &[("email", true)]).await;
        let t = token(&app, contact, "email").await;

        // Act
        let r = post_form(&app, &t, &[("action", "unsubscribe")]).await;

        // Assert: a confirmation page, not a redirect.
        assert_eq!(r.status(), 200);
        let html = r.text().await.unwrap();
        assert!(html.contains("You’re unsubscribed"));
        assert!(html.contains(&email));
        let rows = ledger_rows(&app.app.db, contact).await;
        assert_eq!(rows.len(), 2);
        assert!(!rows[1].granted);
        assert_eq!(rows[1].source, "preferences_page");
    }
);

storage_test!(
    the_preferences_form_stores_what_was_ticked,
    |db: TestDb| async move {
        // Arrange: email granted, SMS never asked.
        let app = spawn_app_on(db, |s| s.email.product_name = Some("Acme".into())).await;
        let (contact, _) =
            seed_contact(&app.app.db, Some("+14155550123"), &[("email", true)]).await;
        let t = token(&app, contact, "email").await;
        let form = [
            ("action", "preferences"),
            ("shown", "email"),
            ("shown", "sms"),
            ("shown", "whatsapp"),
            ("channel", "sms"),
        ];

        // Act: untick email, tick SMS; then submit the same again.
        let r = post_form(&app, &t, &form).await;
        let html = r.text().await.unwrap();
        let again = post_form(&app, &t, &form).await;

        // Assert
        assert!(html.contains("Preferences saved"));
        assert!(html.contains(r#"data-channel="sms" data-subscribed="true""#));
        assert!(html.contains(r#"data-channel="email" data-subscribed="false""#));
        let now = warmline::consent::current(&app.app.db, contact)
            .await
            .unwrap();
        assert!(!now["email"].granted);
        assert!(now["sms"].granted);
        assert_eq!(now["sms"].source, "preferences_page");
        assert!(
            !now.contains_key("whatsapp"),
            "an unticked box that was never ticked records nothing"
        );
        let rows = ledger_rows(&app.app.db, contact).await;
        assert_eq!(rows.len(), 3, "the grant, then one row per change");
        let sms = rows.iter().find(|r| r.channel == "sms").unwrap();
        assert_eq!(
            sms.consent_text.as_deref(),
            Some(warmline::routes::unsubscribe::consent_text("Acme", "sms").as_str()),
            "a grant keeps the text the person saw"
        );
        assert!(
            html.contains(&warmline::routes::unsubscribe::consent_text("Acme", "sms")),
            "that text is on the page"
        );
        assert_eq!(again.status(), 200);
        assert_eq!(
            ledger_rows(&app.app.db, contact).await.len(),
            3,
            "a repeat changes nothing"
        );
        assert_eq!(app.audit_rows().await, 2);
    }
);

storage_test!(
    a_contact_that_is_gone_answers_200_with_nothing_to_change,
    |db: TestDb| async move {
        // Arrange: a genuine link to a contact since erased.
        let app = spawn_app_on(db, |_| {}).await;
        let (contact, _) = seed_contact(&app.app.db, None, &[("email", true)]).await;
        let t = token(&app, contact, "email").await;
        contacts::Entity::delete_by_id(contact)
            .exec(&app.app.db)
            .await
            .unwrap();

        // Act
        let post = one_click(&app, &t).await;
        let page = get_page(&app, &t).await;

        // Assert
        assert_eq!(post.status(), 200);
        assert_eq!(page.status(), 200);
        assert!(page.text().await.unwrap().contains("Nothing to change"));
        assert_eq!(app.count_rows("consents").await, 0);
        assert_eq!(app.audit_rows().await, 0);
    }
);

storage_test!(
    a_post_without_the_one_click_field_is_refused,
    |db: TestDb| async move {
        // Arrange
        let app = spawn_app_on(db, |_| {}).await;
        let (contact, _) = seed_contact(&app.app.db, None, &[("email", true)]).await;
        let t = token(&app, contact, "email").await;

        // Act
        let empty = post_form(&app, &t, &[]).await;
        let wrong = post_form(&app, &t, &[("List-Unsubscribe", "Yes")]).await;

        // Assert: RFC 8058's POST must carry List-Unsubscribe=One-Click.
        assert_eq!(empty.status(), 400);
        assert_eq!(wrong.status(), 400);
        assert_eq!(ledger_rows(&app.app.db, contact).await.len(), 1);
    }
);

#[derive(FromQueryResult)]
struct StateRow {
    state: String,
    skip_reason: Option<String>,
}

async fn state_of(db: &DatabaseConnection, id: &str) -> StateRow {
    StateRow::find_by_statement(Statement::from_sql_and_values(
        db.get_database_backend(),
        "SELECT state, skip_reason FROM messages WHERE id = $1",
        [Value::from(id.to_string())],
    ))
    .one(db)
    .await
    .unwrap()
    .expect("the message exists")
}

storage_test!(
    after_one_click_no_send_reaches_the_provider,
    |db: TestDb| async move {
        // Arrange: two consented contacts, a marketing email queued for each,
        // due in an hour; the app's own dispatcher runs with the test provider.
        let core = Core::new(Behaviour::default());
        let mut registry = Registry::new();
        registry.register(Arc::new(TestProvider::in_process(core.clone())));
        let ids = seed_contacts(&db.db, 2, true).await;
        let (leaving, staying) = (ids[0], ids[1]);
        let app = spawn_app_with_registry(
            db,
            |s| {
                s.quiet_hours.email = None;
                s.dispatcher.poll_interval_ms = 50;
            },
            Some(registry),
        )
        .await;
        let later = Utc::now() + chrono::Duration::hours(1);
        let msgs: Vec<_> = [leaving, staying]
            .into_iter()
            .map(|c| ledger::NewMessage {
                due_at: later,
                state: MessageState::Queued,
                ..message("campaign:unsubscribe-test", c, "marketing")
            })
            .collect();
        ledger::enqueue(&app.app.db, &msgs, Utc::now())
            .await
            .unwrap();
        let t = token(&app, leaving, "email").await;

        // Act: opt out, then make both messages due and wake the workers.
        assert_eq!(one_click(&app, &t).await.status(), 200);
        app.app
            .db
            .execute_raw(Statement::from_sql_and_values(
                app.app.db.get_database_backend(),
                "UPDATE messages SET next_attempt_at = $1",
                [Value::from(Utc::now())],
            ))
            .await
            .unwrap();
        app.app.dispatcher.wake();

        // Assert: the control message goes out — so the dispatcher did run —
        // and the opted-out one is skipped without reaching the provider.
        assert!(
            core.wait_for_accepted(1, WAIT).await,
            "the control was sent"
        );
        let deadline = tokio::time::Instant::now() + WAIT;
        let leaving_row = loop {
            let row = state_of(&app.app.db, &msgs[0].id()).await;
            if row.state != "queued" && row.state != "sending" {
                break row;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the opted-out message was never decided"
            );
            // A poll interval under a deadline: nothing signals a skip.
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(leaving_row.state, "skipped");
        assert_eq!(leaving_row.skip_reason.as_deref(), Some("no_consent"));
        let accepted = core.accepted();
        assert_eq!(accepted.len(), 1);
        assert_eq!(accepted[0].id, msgs[1].id());
        app.shutdown().await.unwrap();
    }
);
