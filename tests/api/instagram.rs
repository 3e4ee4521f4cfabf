//! Instagram through the fake Graph API: DMs, story mentions, story
//! replies and postbacks through `POST /webhooks/meta` become interactions
//! on the contact with that `metadata.instagram_id`; answers go out inside
//! the window (`RESPONSE`) or tagged `HUMAN_AGENT` up to 7 days; outside
//! it, code 10 fails the message. Both backends.

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
        instagram::settings::InstagramSettings,
        meta::{
            fake::{FakeConfig, FakeMeta, Signing},
            settings::MetaSettings,
        },
    },
};

use crate::{
    helpers::{TestApp, spawn_app_on},
    storage_test,
    test_db::TestDb,
    whatsapp::{WAIT, count, url, wait_for_state},
};

const IGSID: &str = "6834102939965561";

async fn spawn(db: TestDb, fake: &FakeMeta) -> TestApp {
    let c = fake.config().clone();
    let base = fake.base_url().to_string();
    spawn_app_on(db, move |s| {
        s.meta = MetaSettings {
            app_secret: Some(c.app_secret.clone().into()),
            verify_token: Some("v".to_string().into()),
            graph_url: Some(base),
            graph_version: None,
        };
        s.providers.instagram = InstagramSettings {
            access_token: Some(c.instagram_token.clone().into()),
            account_id: Some(c.instagram_account_id.clone()),
            requests_per_second: None,
        };
        s.quiet_hours.instagram = None;
        s.dispatcher.retry_base_secs = 0.2;
    })
    .await
}

async fn person(db: &DatabaseConnection) -> i64 {
    let now = Utc::now();
    let id = contacts::Entity::insert(contacts::ActiveModel {
        email: Set(Some("ada@example.com".into())),
        status: Set("active".into()),
        tags: Set("[]".into()),
        warmth: Set(50.0),
        metadata: Set(json!({"instagram_id": IGSID}).to_string()),
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
        channel: Set("instagram".into()),
        granted: Set(true),
        source: Set("form".into()),
        recorded_at: Set(now),
        ..Default::default()
    })
    .exec(db)
    .await
    .unwrap();
    id
}

async fn answer(
    app: &TestApp,
    db: &DatabaseConnection,
    source: &str,
    contact: i64,
    payload: serde_json::Value,
) -> String {
    let m = NewMessage {
        source: source.into(),
        campaign_id: None,
        contact_id: Some(contact),
        channel: Channel::Instagram,
        kind: MessageKind::Transactional,
        address: Some(IGSID.into()),
        provider: "instagram".into(),
        payload,
        template: None,
        state: MessageState::Queued,
        due_at: Utc::now(),
    };
    ledger::enqueue(db, std::slice::from_ref(&m), Utc::now())
        .await
        .unwrap();
    app.app.dispatcher.wake();
    m.id()
}

storage_test!(
    dms_mentions_and_postbacks_become_interactions_on_the_linked_contact,
    |db: TestDb| async move {
        // Arrange
        let fake = FakeMeta::start(FakeConfig::default()).await.unwrap();
        let conn = db.db.clone();
        let contact = person(&conn).await;
        let app = spawn(db, &fake).await;

        // Act
        let dm = fake
            .ig_message(&url(&app), IGSID, "Loved the workshop!")
            .await;
        let mention = fake.ig_story_mention(&url(&app), IGSID).await;
        let story = fake.ig_story_reply(&url(&app), IGSID, "so good").await;
        let postback = fake
            .ig_postback(&url(&app), IGSID, "Talk to a person", "HUMAN")
            .await;
        let (_, forged) = fake.ig_message_body(IGSID, "forged");
        let forged = fake.post(&url(&app), &forged, Signing::Forged).await;

        // Assert
        for a in [&dm, &mention, &story, &postback] {
            assert_eq!(a.status, 200, "{a:?}");
        }
        assert_eq!(forged.status, 403);
        #[derive(FromQueryResult)]
        struct Inbound {
            text: String,
            contact_id: Option<i64>,
        }
        let stored = Inbound::find_by_statement(Statement::from_sql_and_values(
            conn.get_database_backend(),
            "SELECT text, contact_id FROM inbound_messages WHERE channel = 'instagram' ORDER BY id",
            [],
        ))
        .all(&conn)
        .await
        .unwrap();
        let texts: Vec<&str> = stored.iter().map(|s| s.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "Loved the workshop!",
                "[mentioned you in their story]",
                "[replied to your story] so good",
                "Talk to a person"
            ]
        );
        assert!(stored.iter().all(|s| s.contact_id == Some(contact)));
        assert_eq!(
            count(&conn, "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM interactions WHERE contact_id = $1 AND direction = 'inbound' AND channel = 'instagram'", vec![Value::from(contact)]).await,
            4
        );
        drop(app);
    }
);

storage_test!(
    answers_go_inside_the_window_human_agent_up_to_seven_days_then_code_10_fails,
    |db: TestDb| async move {
        // Arrange: they wrote; two days pass.
        let fake = FakeMeta::start(FakeConfig::default()).await.unwrap();
        let conn = db.db.clone();
        let contact = person(&conn).await;
        let app = spawn(db, &fake).await;
        assert_eq!(fake.ig_message(&url(&app), IGSID, "Hi!").await.status, 200);
        let inside = answer(
            &app,
            &conn,
            "reply:ig-1",
            contact,
            json!({"text": "Hello back"}),
        )
        .await;
        wait_for_state(&conn, std::slice::from_ref(&inside), "sent").await;
        fake.advance(chrono::Duration::days(2));

        // Act: a person's answer after 24 h, tagged; then after 7 days.
        let tagged = answer(
            &app,
            &conn,
            "reply:ig-2",
            contact,
            json!({"text": "Sorry for the wait", "tag": "HUMAN_AGENT"}),
        )
        .await;
        wait_for_state(&conn, std::slice::from_ref(&tagged), "sent").await;
        fake.advance(chrono::Duration::days(6));
        let late = answer(
            &app,
            &conn,
            "reply:ig-3",
            contact,
            json!({"text": "Still there?", "tag": "HUMAN_AGENT"}),
        )
        .await;
        let late = wait_for_state(&conn, &[late], "failed").await;

        // Assert
        assert!(fake.wait_for_accepted(2, WAIT).await);
        let accepted = fake.accepted();
        assert_eq!(
            accepted[0].body,
            json!({"recipient":{"id":IGSID},"message":{"text":"Hello back"},"messaging_type":"RESPONSE"})
        );
        assert_eq!(
            accepted[1].body,
            json!({"recipient":{"id":IGSID},"message":{"text":"Sorry for the wait"},"messaging_type":"MESSAGE_TAG","tag":"HUMAN_AGENT"})
        );
        let e = late[0].last_error.clone().unwrap();
        assert!(e.contains("error 10") && e.contains("window"), "{e}");
        assert_eq!(fake.requests().len(), 3, "code 10 is not retried");
        drop(app);
    }
);
