//! The application's shared state ([`App`]): settings, the database, the
//! Slack client, the dispatcher, the email composer and the task trackers.
//!
//! This module sits at the bottom of the feature graph: features take an
//! `App` and reach their collaborators through it, while this module imports
//! only the infrastructure it holds (settings, db, the Slack client, the
//! dispatcher, templates and email composition) — never a feature. The
//! wiring (routes, background loops, start-up and shutdown) lives in
//! [`crate::startup`], which only `main`/`cli`, the benches and tests use.

use std::sync::Arc;

use anyhow::Context;
use sea_orm::DatabaseConnection;
use secrecy::ExposeSecret;
use slack_morphism::{
    prelude::SlackSigningSecret, signature_verifier::SlackEventSignatureVerifier,
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    settings::Settings,
    slack::{api::SlackApi, blocks::Blocks},
};

/// Shared state, cheap to clone.
#[derive(Clone)]
pub struct App(Arc<AppInner>);

pub struct AppInner {
    pub settings: Settings,
    pub db: DatabaseConnection,
    pub slack: SlackApi,
    pub blocks: Blocks,
    /// Checks inbound Slack signatures; `None` when no signing secret is set,
    /// in which case every Slack request is refused.
    pub verifier: Option<SlackEventSignatureVerifier>,
    /// Every background task the request path hands work to; shutdown waits
    /// for them so acknowledged work is not dropped.
    pub tasks: TaskTracker,
    /// Long-running loops (the dispatcher) that live until shutdown. Kept
    /// apart from `tasks` so that waiting for the work a request handed off
    /// (tests' sync point: close, wait, reopen `tasks`) does not wait for
    /// them; shutdown waits for both.
    pub loops: TaskTracker,
    /// Cancelled when shutdown starts.
    pub shutdown: CancellationToken,
    /// Sends everything; started by `run_until`.
    pub dispatcher: crate::dispatcher::Dispatcher,
    /// Builds emails from templates, with unsubscribe links where required.
    pub composer: crate::email::compose::Composer,
}

impl std::ops::Deref for App {
    type Target = AppInner;
    fn deref(&self) -> &AppInner {
        &self.0
    }
}

impl App {
    pub fn new(settings: Settings, db: DatabaseConnection) -> anyhow::Result<Self> {
        let registry = crate::providers::Registry::configured(&settings)?;
        Self::with_registry(settings, db, registry)
    }

    /// Like [`App::new`] with the providers given (tests inject the test
    /// provider with a log they can read).
    pub fn with_registry(
        settings: Settings,
        db: DatabaseConnection,
        mut registry: crate::providers::Registry,
    ) -> anyhow::Result<Self> {
        registry.receive_webhooks(&settings);
        // One Slack client for everything the process posts: its per-channel
        // pacer only keeps the posting rate if every post goes through it.
        let slack = SlackApi::new(&settings.slack)?;
        let mut dispatcher = crate::dispatcher::Dispatcher::new(db.clone(), registry, &settings);
        if let Some(channel) = settings
            .slack
            .approvals_channel
            .clone()
            .or_else(|| settings.slack.digest_channel.clone())
        {
            dispatcher = dispatcher.with_alerts(Arc::new(crate::slack::alerts::SlackAlerts::new(
                slack.clone(),
                channel,
            )));
        }
        let verifier = settings.slack.signing_secret.as_ref().map(|s| {
            SlackEventSignatureVerifier::new(&SlackSigningSecret::new(
                s.expose_secret().to_string(),
            ))
        });
        let catalog = Arc::new(
            crate::templates::Catalog::builtin().context("the shipped templates do not compile")?,
        );
        let signer = crate::email::unsubscribe::Signer::new(
            settings.email.unsubscribe_secret.clone(),
            db.clone(),
        );
        let composer = crate::email::compose::Composer::new(&settings, signer, catalog);
        Ok(Self(Arc::new(AppInner {
            composer,
            settings,
            db,
            slack,
            blocks: Blocks::new(),
            verifier,
            tasks: TaskTracker::new(),
            loops: TaskTracker::new(),
            shutdown: CancellationToken::new(),
            dispatcher,
        })))
    }

    /// Hands work to a background task that shutdown will wait for. Errors
    /// are logged with their cause chain; a panic is contained to the task.
    pub fn spawn<F>(&self, what: &'static str, fut: F)
    where
        F: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        self.tasks.spawn(async move {
            if let Err(e) = fut.await {
                tracing::error!(
                    task = what,
                    error = format!("{e:#}"),
                    "background task failed"
                );
            }
        });
    }
}
