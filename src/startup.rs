//! The wiring point: the HTTP router, the background jobs, the Socket Mode
//! listener, start-up and graceful shutdown. Only `main`/`cli`, the benches
//! and tests import this module; features take the shared state from
//! [`crate::state`] instead, so no feature depends on the wiring.
//!
//! Shutdown, in order: the listener stops accepting (axum's graceful
//! shutdown lets in-flight requests finish), the cancellation token tells
//! background loops to stop taking new work, then we wait for every task
//! spawned through [`App::spawn`] to finish. One `server.shutdown_grace_secs`
//! period bounds the whole drain, open requests included, so a stalled
//! client cannot hold shutdown forever.

use std::{future::IntoFuture, net::SocketAddr, time::Duration};

use anyhow::Context;
use axum::{
    Router,
    routing::{get, post},
};
use sea_orm::DatabaseConnection;
use tokio::net::TcpListener;

use crate::settings::Settings;
use crate::state::App;

/// The router with every route and layer; tests and `serve` share it.
pub fn router(app: App) -> Router {
    let max_body = app.settings.server.max_body_bytes;
    let slack_routes = Router::new()
        .route(
            "/slack/commands",
            post(crate::slack::commands::http_handler),
        )
        .route(
            "/slack/interactions",
            post(crate::slack::interactions::http_handler),
        )
        .route("/slack/events", post(crate::slack::events::http_handler))
        .route_layer(axum::middleware::from_fn_with_state(
            app.clone(),
            crate::slack::ingress::verify_slack_request,
        ));
    Router::new()
        .route("/healthz", get(crate::routes::health::healthz))
        .route("/readyz", get(crate::routes::health::readyz))
        .route("/metrics", get(crate::routes::health::metrics))
        .route(
            "/webhooks/{route}",
            post(crate::webhooks::handler).get(crate::webhooks::handshake),
        )
        .route(
            "/webhooks/{provider}/{kind}",
            post(crate::webhooks::handler_kind),
        )
        .route(
            "/u/{token}",
            get(crate::routes::unsubscribe::page).post(crate::routes::unsubscribe::post),
        )
        .merge(slack_routes)
        .merge(crate::api::router(app.clone()))
        .route_layer(axum::middleware::from_fn(
            crate::observability::track_requests,
        ))
        // Bodies are read by the Slack middleware with its own limit (so it
        // can answer 413 itself); this one guards every other route.
        .layer(axum::extract::DefaultBodyLimit::max(max_body))
        .with_state(app)
}

/// Every job that runs on a clock ([`crate::jobs`]).
pub fn periodic_jobs() -> Vec<std::sync::Arc<dyn crate::jobs::Periodic>> {
    vec![
        std::sync::Arc::new(crate::triggers::runner::TriggerJob),
        std::sync::Arc::new(crate::warmth::DecayJob),
        std::sync::Arc::new(crate::approval::reminders::ReminderJob),
        std::sync::Arc::new(crate::campaigns::progress::ProgressJob),
        std::sync::Arc::new(crate::reports::digest::DigestJob),
        std::sync::Arc::new(crate::whatsapp::sync::SyncJob),
    ]
}

/// A built application bound to its port, ready to run.
pub struct Application {
    app: App,
    listener: TcpListener,
    /// Set in sandbox mode: its page and emulated Slack join the router.
    sandbox: Option<crate::sandbox::Sandbox>,
}

impl Application {
    /// Connects to the database, migrates, and binds the listener
    /// (`WARMLINE_ADDR`; tests pass port 0).
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let db = crate::db::connect_and_migrate(&settings.database).await?;
        Self::build_with_db(settings, db).await
    }

    pub async fn build_with_db(settings: Settings, db: DatabaseConnection) -> anyhow::Result<Self> {
        let registry = crate::providers::Registry::configured(&settings)?;
        Self::build_with_registry(settings, db, registry).await
    }

    /// Builds with the providers given instead of those configured.
    pub async fn build_with_registry(
        settings: Settings,
        db: DatabaseConnection,
        registry: crate::providers::Registry,
    ) -> anyhow::Result<Self> {
        crate::observability::handle();
        let addr = settings.server.addr;
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("Failed to bind {addr} (WARMLINE_ADDR)"))?;
        let app = App::with_registry(settings, db, registry)?;
        Ok(Self {
            app,
            listener,
            sandbox: None,
        })
    }

    /// The sandbox ([`crate::sandbox`]): binds first (the emulated Slack's
    /// URL names the port), then configures the settings for sandbox mode,
    /// opens the sandbox's own database, registers a capture sink per
    /// channel and, for a new database, seeds the demo contacts.
    pub async fn build_sandbox(
        mut settings: Settings,
        options: crate::sandbox::Options,
    ) -> anyhow::Result<Self> {
        use crate::sandbox;
        crate::observability::handle();
        let requested = settings.server.addr;
        let listener = TcpListener::bind(requested)
            .await
            .with_context(|| format!("Failed to bind {requested} (WARMLINE_ADDR)"))?;
        let addr = listener.local_addr()?;
        let keys = sandbox::Keys::generate();
        sandbox::configure(&mut settings, addr, &keys, &options.database);
        let is_new = !options.database.exists();
        let db = crate::db::connect_and_migrate(&settings.database).await?;
        let workspace = std::sync::Arc::new(sandbox::Workspace::new());
        let registry = sandbox::registry(&db, &workspace, &keys);
        let app = App::with_registry(settings, db, registry)?;
        let sandbox = sandbox::Sandbox::new(app.clone(), workspace, keys, periodic_jobs())?;
        sandbox::start(&sandbox, options.demo, is_new).await?;
        Ok(Self {
            app,
            listener,
            sandbox: Some(sandbox),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    pub fn app(&self) -> App {
        self.app.clone()
    }

    /// Serves until `shutdown` completes, then drains.
    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Self {
            app,
            listener,
            sandbox,
        } = self;
        let token = app.shutdown.clone();
        let grace = Duration::from_secs(app.settings.server.shutdown_grace_secs);

        let socket_mode = if app.settings.slack.app_token.is_some() {
            Some(crate::slack::socket_mode::start(app.clone()).await?)
        } else {
            None
        };

        app.dispatcher.start(&app.loops, token.clone());
        // The warmth model's parameters are process-wide; set them before
        // anything scores.
        crate::warmth::configure(&app.settings.warmth);
        crate::jobs::start(&app, periodic_jobs(), &app.loops, token.clone());
        crate::whatsapp::sync::on_start(&app);
        let router = match &sandbox {
            Some(sandbox) => router(app.clone()).merge(sandbox.router()),
            None => router(app.clone()),
        };
        let signal_token = token.clone();
        tokio::spawn(async move {
            shutdown.await;
            signal_token.cancel();
        });
        tracing::info!(addr = %listener.local_addr()?, "warmline is listening");
        let mut serve = std::pin::pin!(
            axum::serve(listener, router)
                .with_graceful_shutdown(token.clone().cancelled_owned())
                .into_future()
        );
        let finished = tokio::select! {
            result = &mut serve => Some(result),
            _ = token.cancelled() => None,
        };
        // One grace period bounds the whole drain: open requests (a stalled
        // client must not hold shutdown forever), then background work.
        let deadline = tokio::time::Instant::now() + grace;
        let served = match finished {
            Some(result) => result,
            None => match tokio::time::timeout_at(deadline, &mut serve).await {
                Ok(result) => result,
                Err(_) => {
                    tracing::warn!(
                        "shutdown grace period ended with HTTP requests still open; dropping them"
                    );
                    Ok(())
                }
            },
        };
        served.context("HTTP server failed")?;

        tracing::info!("shutting down: finishing in-flight work");
        if let Some(listener) = socket_mode {
            listener.shutdown().await;
        }
        app.tasks.close();
        app.loops.close();
        let drained = async {
            app.tasks.wait().await;
            app.loops.wait().await;
        };
        if tokio::time::timeout_at(deadline, drained).await.is_err() {
            tracing::warn!(
                remaining = app.tasks.len() + app.loops.len(),
                "shutdown grace period ended with work still running"
            );
        }
        app.db.clone().close().await.ok();
        tracing::info!("stopped");
        Ok(())
    }
}

/// Completes on SIGINT or SIGTERM.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    // Register the handlers now, not when the future is first polled: a
    // SIGTERM that arrives while the app is still starting must shut it
    // down cleanly rather than kill it with the default action.
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    #[cfg(unix)]
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).ok();
    async move {
        #[cfg(unix)]
        {
            let term = async {
                match term.as_mut() {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            let int = async {
                match int.as_mut() {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = term => {},
                _ = int => {},
            }
        }
        #[cfg(not(unix))]
        {
            tokio::signal::ctrl_c().await.ok();
        }
    }
}
