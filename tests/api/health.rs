//! Liveness, readiness and metrics.

use crate::helpers::spawn_app;

#[tokio::test]
async fn healthz_answers_200() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let res = app.get("/healthz").await;

    // Assert
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn readyz_is_200_with_a_database_and_503_once_it_is_closed() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let ready = app.get("/readyz").await;
    app.app.db.clone().close().await.expect("close the pool");
    let closed = app.get("/readyz").await;

    // Assert
    assert_eq!(ready.status(), 200);
    assert_eq!(closed.status(), 503);
}

#[tokio::test]
async fn metrics_count_requests_by_route() {
    // Arrange
    let app = spawn_app().await;
    app.get("/healthz").await;

    // Act
    let res = app.get("/metrics").await;

    // Assert
    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap();
    assert!(
        text.lines()
            .any(|l| l.starts_with("http_requests_total{") && l.contains(r#"route="/healthz""#)),
        "no http_requests_total for /healthz in:\n{text}"
    );
}
