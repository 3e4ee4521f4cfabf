//! Graceful shutdown finishes in-flight work, then releases the port.

use std::time::Duration;

use crate::{
    fake_slack::Scripted,
    helpers::{app_home_opened, spawn_app},
};

#[tokio::test]
async fn shutdown_waits_for_in_flight_work_then_closes_the_port() {
    // Arrange
    let mut app = spawn_app().await;
    app.fake
        .script("views.publish", Scripted::Delay(Duration::from_millis(300)));
    let res = app.post_event(&app_home_opened("Ev0SHUTDWN")).await;
    assert_eq!(res.status(), 200);
    app.fake.wait_for_arrivals("views.publish", 1).await;
    assert!(
        app.fake.calls_to("views.publish").is_empty(),
        "the publish is still in flight"
    );
    let (trigger, server) = app.take_server();

    // Act
    trigger.send(()).unwrap();
    let result = tokio::time::timeout(Duration::from_secs(20), server)
        .await
        .expect("run_until returned in time")
        .expect("the server task did not panic");

    // Assert
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(
        app.fake.calls_to("views.publish").len(),
        1,
        "the in-flight publish finished before run_until returned"
    );
    assert!(app.app.tasks.is_empty());
    let refused = tokio::net::TcpStream::connect(app.addr).await;
    assert!(refused.is_err(), "the port still accepts connections");
}

#[tokio::test]
async fn shutdown_with_nothing_in_flight_returns_ok() {
    // Arrange
    let app = spawn_app().await;
    assert_eq!(app.get("/healthz").await.status(), 200);

    // Act
    let result = app.shutdown().await;

    // Assert
    assert!(result.is_ok(), "{result:?}");
}

#[tokio::test]
async fn a_stalled_client_cannot_hold_shutdown_past_the_grace_period() {
    // Arrange
    use tokio::io::AsyncWriteExt;
    let mut app = crate::helpers::spawn_app_with(|s| s.server.shutdown_grace_secs = 1).await;
    let mut stalled = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    stalled
        .write_all(b"POST /slack/events HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{")
        .await
        .unwrap();
    // The app is serving (this request completes), so the stalled one is in flight.
    assert_eq!(app.get("/healthz").await.status(), 200);
    let (trigger, server) = app.take_server();
    let start = std::time::Instant::now();

    // Act
    trigger.send(()).unwrap();
    let result = tokio::time::timeout(Duration::from_secs(10), server).await;

    // Assert
    let result = result
        .expect("run_until returned despite the stalled client")
        .expect("no panic");
    assert!(result.is_ok(), "{result:?}");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "took {:?}",
        start.elapsed()
    );
    drop(stalled);
}
