//! The slash command over HTTP: usage, status, de-duplication.

use serde_json::Value;

use crate::{
    helpers::{command_body_with_trigger, spawn_app, spawn_app_on},
    storage_test,
    test_db::TestDb,
};

/// Every subcommand's name appears in both the fallback text and the blocks.
fn assert_lists_every_subcommand(reply: &Value) {
    assert_eq!(reply["response_type"], "ephemeral", "{reply}");
    let text = reply["text"].as_str().expect("fallback text");
    let blocks = reply["blocks"].to_string();
    let registry = warmline::slack::commands::SUBCOMMANDS;
    assert!(!registry.is_empty());
    for sub in registry {
        let usage = format!("/warm {}", sub.name());
        assert!(
            text.contains(&usage),
            "`{usage}` missing from the text: {text}"
        );
        assert!(
            blocks.contains(&usage),
            "`{usage}` missing from the blocks: {blocks}"
        );
        assert!(
            text.contains(sub.summary()),
            "summary of {} missing: {text}",
            sub.name()
        );
    }
}

#[tokio::test]
async fn help_lists_every_subcommand() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let res = app.post_command("help").await;

    // Assert
    assert_eq!(res.status(), 200);
    let reply: Value = res.json().await.unwrap();
    assert_lists_every_subcommand(&reply);
    assert_eq!(app.slack_request_rows().await, 1);
    assert!(
        app.fake.calls().is_empty(),
        "usage is answered inline, not via the Web API"
    );
}

#[tokio::test]
async fn empty_text_shows_the_usage() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let res = app.post_command("").await;

    // Assert
    assert_eq!(res.status(), 200);
    let reply: Value = res.json().await.unwrap();
    assert_lists_every_subcommand(&reply);
}

#[tokio::test]
async fn an_unknown_subcommand_names_it_and_shows_the_usage() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let res = app.post_command("frobnicate now").await;

    // Assert
    assert_eq!(res.status(), 200);
    let reply: Value = res.json().await.unwrap();
    assert_lists_every_subcommand(&reply);
    assert!(
        reply["text"].as_str().unwrap().contains("frobnicate"),
        "{reply}"
    );
}

#[tokio::test]
async fn subcommands_are_case_insensitive() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let res = app.post_command("  HELP  ").await;

    // Assert
    let reply: Value = res.json().await.unwrap();
    assert_lists_every_subcommand(&reply);
    assert!(
        !reply["text"].as_str().unwrap().contains("I don't know"),
        "{reply}"
    );
}

#[tokio::test]
async fn status_lists_the_missing_settings() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let res = app.post_command("status").await;

    // Assert
    assert_eq!(res.status(), 200);
    let reply: Value = res.json().await.unwrap();
    assert_eq!(reply["response_type"], "ephemeral");
    let blocks = reply["blocks"].to_string();
    for missing in [
        "Approvals channel",
        "Digest channel",
        "Approvers",
        "Public URL",
    ] {
        assert!(
            blocks.contains(&format!(":x: *{missing}*")),
            "{missing} not shown as missing: {blocks}"
        );
    }
    assert!(
        blocks.contains(":white_check_mark: *Bot token*"),
        "{blocks}"
    );
    assert!(
        // WhatsApp's and Instagram's providers are among them.
        reply["text"].as_str().unwrap().contains("11 missing"),
        "{reply}"
    );
    assert!(
        !blocks.contains(crate::helpers::BOT_TOKEN),
        "a secret leaked into the status"
    );
}

#[tokio::test]
async fn status_shows_configured_channels() {
    // Arrange
    let app = crate::helpers::spawn_app_with(|s| {
        s.slack.approvals_channel = Some("C0APPROVAL".into());
    })
    .await;

    // Act
    let res = app.post_command("status").await;

    // Assert
    let reply: Value = res.json().await.unwrap();
    let blocks = reply["blocks"].to_string();
    assert!(
        blocks.contains(":white_check_mark: *Approvals channel*: <#C0APPROVAL>"),
        "{blocks}"
    );
    assert!(blocks.contains("<#C0APPROVAL>"), "{blocks}");
}

storage_test!(
    a_repeated_trigger_id_is_acknowledged_once,
    |db: TestDb| async move {
        // Arrange
        let app = spawn_app_on(db, |_| {}).await;
        let body = command_body_with_trigger(
            "help",
            "398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c",
        );

        // Act
        let first = app.post_command_form(body.clone()).await;
        let second = app.post_command_form(body).await;

        // Assert
        assert_eq!(first.status(), 200);
        let reply: Value = first.json().await.unwrap();
        assert_lists_every_subcommand(&reply);
        assert_eq!(second.status(), 200);
        assert_eq!(
            second.text().await.unwrap(),
            "",
            "a repeat answers with an empty body"
        );
        assert_eq!(app.slack_request_rows().await, 1);
    }
);

#[tokio::test]
async fn an_unknown_subcommand_with_json_special_characters_still_renders_blocks() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let res = app.post_command("fo\"o\\bar}{ <!channel>").await;

    // Assert
    assert_eq!(res.status(), 200);
    let reply: Value = res.json().await.unwrap();
    assert_lists_every_subcommand(&reply);
    assert!(
        reply["blocks"].to_string().contains("fo\\\"o\\\\bar"),
        "{reply}"
    );
}
