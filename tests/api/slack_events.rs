//! The Events API over HTTP: url_verification, App Home, retries.

use serde_json::{Value, json};

use crate::{
    helpers::{TEAM, USER, app_home_opened, spawn_app, spawn_app_on},
    storage_test,
    test_db::TestDb,
};

#[tokio::test]
async fn url_verification_echoes_the_challenge() {
    // Arrange
    let app = spawn_app().await;
    let body = json!({
        "token": "Jhj5dZrVaK7ZwHHjRyZWjbDl",
        "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
        "type": "url_verification"
    });

    // Act
    let res = app.post_event(&body).await;

    // Assert
    assert_eq!(res.status(), 200);
    let reply: Value = res.json().await.unwrap();
    assert_eq!(
        reply,
        json!({"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"})
    );
    assert_eq!(app.slack_request_rows().await, 0);
}

#[tokio::test]
async fn app_home_opened_publishes_the_home_tab_with_the_setup_status() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let res = app.post_event(&app_home_opened("Ev0HOME01")).await;

    // Assert
    assert_eq!(res.status(), 200);
    let calls = app.fake.wait_for_calls("views.publish", 1).await;
    let call = &calls[0];
    assert_eq!(call.token.as_deref(), Some(crate::helpers::BOT_TOKEN));
    assert_eq!(call.body["user_id"], USER);
    assert_eq!(call.body["view"]["type"], "home");
    let view = call.body["view"].to_string();
    assert!(view.contains("Setup status"), "{view}");
    assert!(view.contains(":x: *Approvals channel*"), "{view}");
    assert!(view.contains("`RESEND_API_KEY` or `SMTP_URL`"), "{view}");
    assert!(view.contains("home_refresh"), "{view}");
    app.drain_background().await;
    assert_eq!(app.fake.calls_to("views.publish").len(), 1);
}

storage_test!(a_retried_event_publishes_once, |db: TestDb| async move {
    // Arrange
    let app = spawn_app_on(db, |_| {}).await;
    let event = app_home_opened("Ev0RETRY01");

    // Act
    let first = app.post_event(&event).await;
    let retry = app
        .signed_post_with(
            "/slack/events",
            "application/json",
            event.to_string(),
            &crate::helpers::now_ts(),
            &[
                ("x-slack-retry-num", "1"),
                ("x-slack-retry-reason", "http_timeout"),
            ],
        )
        .await;
    app.drain_background().await;

    // Assert
    assert_eq!(first.status(), 200);
    assert_eq!(retry.status(), 200);
    assert_eq!(app.fake.calls_to("views.publish").len(), 1);
    assert_eq!(app.slack_request_rows().await, 1);
});

#[tokio::test]
async fn the_same_event_id_from_another_team_is_a_different_event() {
    // Arrange
    let app = spawn_app().await;
    let mut other = app_home_opened("Ev0SHARED1");
    other["team_id"] = json!("T0002OTHER");

    // Act
    app.post_event(&app_home_opened("Ev0SHARED1")).await;
    app.post_event(&other).await;
    app.drain_background().await;

    // Assert
    assert_eq!(app.fake.calls_to("views.publish").len(), 2);
    assert_ne!(TEAM, "T0002OTHER");
}

#[tokio::test]
async fn the_messages_tab_publishes_nothing() {
    // Arrange
    let app = spawn_app().await;
    let mut event = app_home_opened("Ev0MSGTAB1");
    event["event"]["tab"] = json!("messages");

    // Act
    let res = app.post_event(&event).await;
    app.drain_background().await;

    // Assert
    assert_eq!(res.status(), 200);
    assert!(app.fake.calls_to("views.publish").is_empty());
}

#[tokio::test]
async fn an_unknown_event_type_is_acknowledged() {
    // Arrange
    let app = spawn_app().await;
    let mut event = app_home_opened("Ev0UNKNOWN");
    event["event"] = json!({"type": "reaction_added", "user": USER, "reaction": "thumbsup",
        "item": {"type": "message", "channel": "C0G9QF9GZ", "ts": "1360782400.498405"},
        "event_ts": "1360782804.083113"});

    // Act
    let res = app.post_event(&event).await;
    app.drain_background().await;

    // Assert
    assert_eq!(res.status(), 200);
    assert!(app.fake.calls().is_empty());
}

#[tokio::test]
async fn a_failing_publish_does_not_fail_the_ack() {
    // Arrange
    let app = spawn_app().await;
    app.fake.script(
        "views.publish",
        crate::fake_slack::Scripted::Error("not_enabled"),
    );

    // Act
    let res = app.post_event(&app_home_opened("Ev0FAILPUB")).await;
    app.drain_background().await;

    // Assert
    assert_eq!(res.status(), 200);
    assert_eq!(
        app.fake.calls_to("views.publish").len(),
        1,
        "ok:false is not retried"
    );
}
