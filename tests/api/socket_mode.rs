//! Socket Mode: the same handlers as HTTP, fed over the fake's WebSocket.

use serde_json::{Value, json};

use crate::helpers::{
    APP_TOKEN, TEAM, TestApp, USER, app_home_opened, block_action, spawn_app_with,
};

async fn spawn_socket_mode_app() -> TestApp {
    let app = spawn_app_with(|s| s.slack.app_token = Some(APP_TOKEN.to_string().into())).await;
    app.fake.wait_for_socket(1).await;
    app
}

fn command_payload(text: &str, trigger_id: &str) -> Value {
    json!({
        "token": "gIkuvaNzQIHg97ATvDxqgjtO",
        "team_id": TEAM,
        "team_domain": "example",
        "channel_id": "C2147483705",
        "channel_name": "test",
        "user_id": USER,
        "user_name": "steve",
        "command": "/warm",
        "text": text,
        "api_app_id": "A0FAKE",
        "is_enterprise_install": "false",
        "response_url": "https://hooks.slack.com/commands/1234/5678",
        "trigger_id": trigger_id
    })
}

#[tokio::test]
async fn connects_with_the_app_token() {
    // Arrange
    let app = spawn_socket_mode_app().await;

    // Act
    let calls = app.fake.calls_to("apps.connections.open");

    // Assert
    assert!(!calls.is_empty());
    assert_eq!(calls[0].token.as_deref(), Some(APP_TOKEN));
}

#[tokio::test]
async fn a_slash_command_envelope_is_acked_with_the_same_usage_as_http() {
    // Arrange
    let app = spawn_socket_mode_app().await;
    let over_http: Value = app.post_command("help").await.json().await.unwrap();

    // Act
    app.fake.push_envelope(json!({
        "envelope_id": "dbdd0ef3-1543-4f94-bfb4-133d0e6c1545",
        "type": "slash_commands",
        "accepts_response_payload": true,
        "payload": command_payload("help", "13345224609.738474920.8088930838d88f008e0")
    }));
    let ack = app
        .fake
        .wait_for_ack("dbdd0ef3-1543-4f94-bfb4-133d0e6c1545")
        .await;

    // Assert
    assert_eq!(
        ack["payload"], over_http,
        "Socket Mode and HTTP answer alike"
    );
    assert_eq!(ack["payload"]["response_type"], "ephemeral");
    for sub in warmline::slack::commands::SUBCOMMANDS {
        assert!(
            ack["payload"]["text"]
                .as_str()
                .unwrap()
                .contains(&format!("/warm {}", sub.name()))
        );
    }
}

#[tokio::test]
async fn an_app_home_opened_envelope_publishes_the_home_tab() {
    // Arrange
    let app = spawn_socket_mode_app().await;

    // Act
    app.fake.push_envelope(json!({
        "envelope_id": "a1b2c3d4-0000-4000-8000-000000000001",
        "type": "events_api",
        "accepts_response_payload": false,
        "retry_attempt": 0,
        "retry_reason": "",
        "payload": app_home_opened("Ev0SOCKET1")
    }));
    let ack = app
        .fake
        .wait_for_ack("a1b2c3d4-0000-4000-8000-000000000001")
        .await;
    app.drain_background().await;

    // Assert
    assert_eq!(
        ack,
        json!({"envelope_id": "a1b2c3d4-0000-4000-8000-000000000001"})
    );
    let calls = app.fake.calls_to("views.publish");
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].body["user_id"], USER);
    assert_eq!(calls[0].body["view"]["type"], "home");
    assert_eq!(calls[0].token.as_deref(), Some(crate::helpers::BOT_TOKEN));
}

#[tokio::test]
async fn a_redelivered_event_envelope_publishes_once() {
    // Arrange
    let app = spawn_socket_mode_app().await;

    // Act
    for (id, attempt) in [("env-first", 0), ("env-retry", 1)] {
        app.fake.push_envelope(json!({
            "envelope_id": id,
            "type": "events_api",
            "accepts_response_payload": false,
            "retry_attempt": attempt,
            "retry_reason": if attempt == 0 { "" } else { "timeout" },
            "payload": app_home_opened("Ev0SOCKET2")
        }));
        app.fake.wait_for_ack(id).await;
    }
    app.drain_background().await;

    // Assert
    assert_eq!(app.fake.calls_to("views.publish").len(), 1);
}

#[tokio::test]
async fn a_home_refresh_interaction_envelope_publishes_the_home_tab() {
    // Arrange
    let app = spawn_socket_mode_app().await;

    // Act
    app.fake.push_envelope(json!({
        "envelope_id": "env-interactive",
        "type": "interactive",
        "accepts_response_payload": false,
        "payload": block_action("home_refresh")
    }));
    let ack = app.fake.wait_for_ack("env-interactive").await;
    app.drain_background().await;

    // Assert
    assert_eq!(ack["envelope_id"], "env-interactive");
    assert_eq!(app.fake.calls_to("views.publish").len(), 1);
}

#[tokio::test]
async fn an_app_token_slack_refuses_stops_start_up_with_a_clear_error() {
    // Arrange
    let mut app =
        spawn_app_with(|s| s.slack.app_token = Some("xoxb-not-an-app-token".to_string().into()))
            .await;
    let (_trigger, server) = app.take_server();

    // Act
    let result = tokio::time::timeout(crate::fake_slack::WAIT, server)
        .await
        .expect("start-up gave up in time")
        .expect("no panic");

    // Assert
    let err = format!("{:#}", result.expect_err("start-up fails"));
    assert!(err.contains("SLACK_APP_TOKEN"), "{err}");
    assert!(err.contains("invalid_auth"), "{err}");
}
