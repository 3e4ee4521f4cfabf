//! The Slack ingress gate: signatures, body size, ssl_check, malformed payloads.

use crate::helpers::{SIGNING_SECRET, command_body, form, now_ts, spawn_app};

const FORM: &str = "application/x-www-form-urlencoded";

#[tokio::test]
async fn a_request_without_a_signature_is_refused_and_not_recorded() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let res = app
        .unsigned_post("/slack/commands", FORM, command_body("help"))
        .await;

    // Assert
    assert_eq!(res.status(), 401);
    assert_eq!(app.slack_request_rows().await, 0);
    assert_eq!(app.audit_rows().await, 0);
    assert!(app.fake.calls().is_empty());
}

#[tokio::test]
async fn a_request_with_a_wrong_signature_is_refused_and_not_recorded() {
    // Arrange
    let app = spawn_app().await;
    let body = command_body("help");
    let ts = now_ts();
    let wrong = warmline::slack::ingress::sign("not-the-secret", &ts, &body);

    // Act
    let res = app
        .client
        .post(app.url("/slack/commands"))
        .header("content-type", FORM)
        .header("x-slack-request-timestamp", &ts)
        .header("x-slack-signature", wrong)
        .body(body)
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(res.status(), 401);
    assert_eq!(app.slack_request_rows().await, 0);
    assert!(app.fake.calls().is_empty());
}

#[tokio::test]
async fn a_tampered_body_is_refused() {
    // Arrange
    let app = spawn_app().await;
    let ts = now_ts();
    let signature = warmline::slack::ingress::sign(SIGNING_SECRET, &ts, &command_body("help"));

    // Act
    let res = app
        .client
        .post(app.url("/slack/commands"))
        .header("content-type", FORM)
        .header("x-slack-request-timestamp", &ts)
        .header("x-slack-signature", signature)
        .body(command_body("status"))
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(res.status(), 401);
    assert_eq!(app.slack_request_rows().await, 0);
}

#[tokio::test]
async fn a_stale_signature_is_refused_and_not_recorded() {
    // Arrange
    let app = spawn_app().await;
    let stale = (chrono::Utc::now().timestamp() - 6 * 60).to_string();

    // Act
    let res = app
        .signed_post_with("/slack/commands", FORM, command_body("help"), &stale, &[])
        .await;

    // Assert
    assert_eq!(res.status(), 401);
    assert_eq!(app.slack_request_rows().await, 0);
    assert!(app.fake.calls().is_empty());
}

#[tokio::test]
async fn an_unsigned_event_is_refused_and_publishes_nothing() {
    // Arrange
    let app = spawn_app().await;
    let event = crate::helpers::app_home_opened("Ev0UNSIGNED");

    // Act
    let res = app
        .unsigned_post("/slack/events", "application/json", event.to_string())
        .await;
    app.drain_background().await;

    // Assert
    assert_eq!(res.status(), 401);
    assert_eq!(app.slack_request_rows().await, 0);
    assert!(app.fake.calls().is_empty());
}

#[tokio::test]
async fn a_body_over_one_mebibyte_is_refused_with_413() {
    // Arrange
    let app = spawn_app().await;
    let body = form(&[("text", &"a".repeat(1024 * 1024 + 1))]);

    // Act
    let res = app.post_command_form(body).await;

    // Assert
    assert_eq!(res.status(), 413);
    assert_eq!(app.slack_request_rows().await, 0);
}

#[tokio::test]
async fn ssl_check_is_answered_200_without_a_signature() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let res = app
        .unsigned_post(
            "/slack/commands",
            FORM,
            "ssl_check=1&token=gIkuvaNzQIHg97ATvDxqgjtO",
        )
        .await;

    // Assert
    assert_eq!(res.status(), 200);
    assert_eq!(app.slack_request_rows().await, 0);
}

#[tokio::test]
async fn a_malformed_command_form_is_400_naming_the_problem() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let res = app.post_command_form("text=help").await;

    // Assert
    assert_eq!(res.status(), 400);
    let body = res.text().await.unwrap();
    assert!(body.contains("slash command"), "{body}");
    assert_eq!(app.slack_request_rows().await, 0);
}

#[tokio::test]
async fn an_interaction_without_payload_is_400_naming_the_problem() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let res = app
        .signed_post("/slack/interactions", FORM, "foo=bar")
        .await;

    // Assert
    assert_eq!(res.status(), 400);
    let body = res.text().await.unwrap();
    assert!(body.contains("payload"), "{body}");
}

#[tokio::test]
async fn an_unparseable_interaction_payload_is_400() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let res = app.post_interaction_raw("{not json").await;

    // Assert
    assert_eq!(res.status(), 400);
    let body = res.text().await.unwrap();
    assert!(body.contains("interaction payload"), "{body}");
}

#[tokio::test]
async fn bad_event_json_is_400_naming_the_problem() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let res = app
        .signed_post("/slack/events", "application/json", "{\"type\": ")
        .await;

    // Assert
    assert_eq!(res.status(), 400);
    let body = res.text().await.unwrap();
    assert!(body.contains("event payload"), "{body}");
    assert_eq!(app.slack_request_rows().await, 0);
}

#[tokio::test]
async fn a_timestamp_from_the_future_is_refused() {
    // Arrange
    let app = spawn_app().await;
    let future = (chrono::Utc::now().timestamp() + 6 * 60).to_string();

    // Act
    let res = app
        .signed_post_with("/slack/commands", FORM, command_body("help"), &future, &[])
        .await;

    // Assert
    assert_eq!(res.status(), 401);
    assert_eq!(app.slack_request_rows().await, 0);
}

#[tokio::test]
async fn a_signature_within_the_window_is_accepted() {
    // Arrange
    let app = spawn_app().await;
    let recent = (chrono::Utc::now().timestamp() - 4 * 60).to_string();

    // Act
    let res = app
        .signed_post_with("/slack/commands", FORM, command_body("help"), &recent, &[])
        .await;

    // Assert
    assert_eq!(res.status(), 200);
    assert_eq!(app.slack_request_rows().await, 1);
}

#[tokio::test]
async fn without_a_signing_secret_every_request_is_refused() {
    // Arrange
    let app = crate::helpers::spawn_app_with(|s| s.slack.signing_secret = None).await;

    // Act
    let res = app.post_command("help").await;

    // Assert
    assert_eq!(res.status(), 401);
    assert_eq!(app.slack_request_rows().await, 0);
}

#[tokio::test]
async fn a_rejected_body_size_is_counted_in_metrics_by_route() {
    // Arrange
    let app = spawn_app().await;
    app.unsigned_post("/slack/events", "application/json", "{}")
        .await;

    // Act
    let text = app.get("/metrics").await.text().await.unwrap();

    // Assert
    assert!(
        text.lines().any(|l| l.starts_with("http_requests_total{")
            && l.contains(r#"route="/slack/events""#)
            && l.contains(r#"status="401""#)),
        "{text}"
    );
    assert!(text.contains("slack_requests_rejected_total"), "{text}");
}
