//! Interactivity over HTTP: the Home tab's Refresh button, repeats.

use crate::helpers::{USER, block_action, spawn_app, spawn_app_on};
use crate::{storage_test, test_db::TestDb};

#[tokio::test]
async fn home_refresh_republishes_the_home_tab() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let res = app.post_interaction(&block_action("home_refresh")).await;
    app.drain_background().await;

    // Assert
    assert_eq!(res.status(), 200);
    let calls = app.fake.calls_to("views.publish");
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].body["user_id"], USER);
    assert_eq!(calls[0].body["view"]["type"], "home");
}

storage_test!(
    an_identical_payload_twice_publishes_once,
    |db: TestDb| async move {
        // Arrange
        let app = spawn_app_on(db, |_| {}).await;
        let payload = block_action("home_refresh");

        // Act
        let first = app.post_interaction(&payload).await;
        let second = app.post_interaction(&payload).await;
        app.drain_background().await;

        // Assert
        assert_eq!(first.status(), 200);
        assert_eq!(second.status(), 200);
        assert_eq!(app.fake.calls_to("views.publish").len(), 1);
        assert_eq!(app.slack_request_rows().await, 1);
    }
);

#[tokio::test]
async fn an_unknown_action_does_nothing() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let res = app.post_interaction(&block_action("no_such_action")).await;
    app.drain_background().await;

    // Assert
    assert_eq!(res.status(), 200);
    assert!(app.fake.calls().is_empty());
}
