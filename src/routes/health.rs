//! `GET /healthz` (the process is alive), `GET /readyz` (the database
//! answers; 503 otherwise) and `GET /metrics` (Prometheus text).

use axum::{extract::State, http::StatusCode, response::IntoResponse};

use crate::state::App;

pub async fn healthz() -> impl IntoResponse {
    (StatusCode::OK, "ok\n")
}

pub async fn readyz(State(app): State<App>) -> impl IntoResponse {
    if crate::db::ping(&app.db).await {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "database unreachable\n")
    }
}

pub async fn metrics(State(app): State<App>) -> impl IntoResponse {
    let _ = &app;
    let handle = crate::observability::handle();
    handle.run_upkeep();
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        handle.render(),
    )
}
