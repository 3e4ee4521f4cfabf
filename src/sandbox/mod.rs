//! The sandbox: warmline without a Slack workspace (issue 13).
//!
//! `warmline serve` with no Slack credentials at all, or `warmline sandbox`,
//! runs the whole product on loopback with a local page at `/` that stands
//! in for Slack:
//! - [`workspace`] + [`web_api`]: an in-process emulation of Slack's Web
//!   API. `slack.api_url` points at it, so the bot's own client makes its
//!   usual calls and the page shows their effect (messages, threads, Home,
//!   modals).
//! - [`relay`]: the page's gestures become the signed requests Slack sends
//!   (`/slack/commands`, `/slack/interactions`, `/slack/events`), through
//!   the real signature gate and handlers.
//! - [`capture`]: one capture sink per channel in place of providers; the
//!   real dispatcher sends into the outbox. [`feedback`] simulates what
//!   providers answer, through the real webhook and inbound routes.
//! - [`time`]: the clock control (moves [`crate::clock`] and runs the
//!   periodic jobs at once).
//! - [`demo`]: 50 believable contacts for a new sandbox database.
//! - [`page`]: the page, its assets (embedded: it works offline) and its
//!   JSON API.
//!
//! Invariants:
//! - Nothing leaves the machine: no provider is configured (every channel
//!   is a capture sink), Slack is emulated, error reporting is off and the
//!   doctor's DNS resolver is a closed loopback port.
//! - The sandbox never opens your real data: it always uses its own SQLite
//!   file (`warmline-sandbox.db` unless `--database` says otherwise),
//!   whatever `DATABASE_URL` says.
//! - Its secrets (signing secret, bot token, API key, webhook secret) are
//!   made at start-up and live only in this process.

pub mod capture;
pub mod cast;
pub mod demo;

pub mod feedback;
pub mod page;
pub mod relay;
pub mod time;
pub mod web_api;
pub mod workspace;

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
};

use secrecy::SecretString;

use crate::{domain::Channel, providers::Registry, settings::Settings, state::App};

pub use workspace::Workspace;

/// The sandbox's database file when none is given.
pub const DEFAULT_DATABASE: &str = "warmline-sandbox.db";

/// Whether to seed the demo contacts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Demo {
    /// Only into a database file that did not exist before this start.
    IfNew,
    /// Into an empty database (the seed refuses one with contacts).
    Always,
    Never,
}

/// How the sandbox starts (from the command line).
#[derive(Debug, Clone)]
pub struct Options {
    pub database: PathBuf,
    pub demo: Demo,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            database: PathBuf::from(DEFAULT_DATABASE),
            demo: Demo::IfNew,
        }
    }
}

/// Whether `serve` should start the sandbox: no Slack credential of any
/// kind is set. A signing secret without tokens is a half-configured real
/// workspace, and stays an error.
pub fn wanted(settings: &Settings) -> bool {
    let slack = &settings.slack;
    slack.bot_token.is_none() && slack.app_token.is_none() && slack.signing_secret.is_none()
}

/// The secrets a sandbox process makes for itself.
pub struct Keys {
    signing_secret: SecretString,
    bot_token: String,
    api_key: SecretString,
    webhook_secret: SecretString,
}

impl Keys {
    pub fn generate() -> Self {
        let random = || uuid::Uuid::new_v4().simple().to_string();
        Self {
            signing_secret: random().into(),
            bot_token: format!("xoxb-sandbox-{}", random()),
            api_key: format!("wl_sandbox_{}", random()).into(),
            webhook_secret: random().into(),
        }
    }
}

/// Turns loaded settings into the sandbox's: the emulated workspace, its
/// own database, no provider, nothing that reaches the network.
pub fn configure(settings: &mut Settings, addr: SocketAddr, keys: &Keys, database: &Path) {
    let base = format!("http://{addr}");
    let slack = &mut settings.slack;
    slack.bot_token = Some(keys.bot_token.clone().into());
    slack.signing_secret = Some(keys.signing_secret.clone());
    slack.app_token = None;
    slack.api_url = url::Url::parse(&format!("{base}/sandbox/slack/api"))
        .expect("a socket address makes a valid URL");
    slack.approvals_channel = Some(cast::APPROVALS.into());
    slack.digest_channel = Some(cast::DIGEST.into());
    slack.approvers = cast::approvers();
    // Slack holds a bot to about one post a second per channel; the
    // emulation has no such limit, and "+1 day" would otherwise wait half
    // a minute for a morning's reminders to be posted one by one.
    slack.channel_posts_per_sec = 20.0;
    settings.approval.approver_group = None;
    settings.server.addr = addr;
    settings.server.public_url = Some(url::Url::parse(&base).expect("valid URL"));
    settings.database.url = None;
    settings.database.sqlite_path = database.to_path_buf();
    settings.api.keys = vec![keys.api_key.clone()];
    settings.providers = Default::default();
    settings.email.provider = None;
    if settings.email.from.is_none() {
        settings.email.from = Some("Warmline Sandbox <hello@sandbox.example.com>".into());
    }
    settings.sentry.dsn = None;
    // The discard port on loopback: lookups fail at once ("could not
    // check") instead of asking a real resolver about real domains.
    settings.dns.nameserver = Some(crate::doctor::settings::Nameserver(SocketAddr::from((
        [127, 0, 0, 1],
        9,
    ))));
}

/// A capture sink for every channel, and their feedback webhooks.
pub fn registry(
    db: &sea_orm::DatabaseConnection,
    workspace: &Arc<Workspace>,
    keys: &Keys,
) -> Registry {
    let mut registry = Registry::new();
    for channel in Channel::ALL {
        registry.register(Arc::new(capture::CaptureSink::new(
            channel,
            db.clone(),
            workspace.clone(),
        )));
        registry.register_webhook(Arc::new(feedback::SandboxWebhook::new(
            channel,
            keys.webhook_secret.clone(),
        )));
    }
    registry
}

/// The running sandbox, shared by its routes.
#[derive(Clone)]
pub struct Sandbox(Arc<Inner>);

struct Inner {
    app: App,
    workspace: Arc<Workspace>,
    keys: Keys,
    base_url: String,
    http: reqwest::Client,
    jobs: Vec<Arc<dyn crate::jobs::Periodic>>,
}

impl Sandbox {
    pub fn new(
        app: App,
        workspace: Arc<Workspace>,
        keys: Keys,
        jobs: Vec<Arc<dyn crate::jobs::Periodic>>,
    ) -> anyhow::Result<Self> {
        let base_url = format!("http://{}", app.settings.server.addr);
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .map_err(|e| anyhow::anyhow!("building the sandbox's HTTP client: {e}"))?;
        Ok(Self(Arc::new(Inner {
            app,
            workspace,
            keys,
            base_url,
            http,
            jobs,
        })))
    }

    pub fn app(&self) -> &App {
        &self.0.app
    }

    pub fn workspace(&self) -> &Workspace {
        &self.0.workspace
    }

    pub fn base_url(&self) -> &str {
        &self.0.base_url
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.0.http
    }

    pub fn bot_token(&self) -> &str {
        &self.0.keys.bot_token
    }

    pub fn signing_secret(&self) -> &SecretString {
        &self.0.keys.signing_secret
    }

    pub fn api_key(&self) -> &SecretString {
        &self.0.keys.api_key
    }

    pub fn webhook_secret(&self) -> &SecretString {
        &self.0.keys.webhook_secret
    }

    pub fn command(&self) -> &str {
        &self.0.app.settings.slack.command
    }

    pub fn jobs(&self) -> &[Arc<dyn crate::jobs::Periodic>] {
        &self.0.jobs
    }

    /// Every sandbox route: the page and its API, the emulated Web API.
    pub fn router(&self) -> axum::Router {
        page::router().with_state(self.clone())
    }
}

/// Start-up work after the app is built: the demo contacts when wanted,
/// and the log lines that say what this process is.
pub async fn start(sandbox: &Sandbox, demo: Demo, database_is_new: bool) -> anyhow::Result<()> {
    let app = sandbox.app();
    let seed = match demo {
        Demo::Always => true,
        Demo::IfNew => database_is_new,
        Demo::Never => false,
    };
    if seed {
        // The seed scores warmth: the model's parameters must be the
        // configured ones before it does.
        crate::warmth::configure(&app.settings.warmth);
        match demo::seed(app, crate::clock::now()).await? {
            Some(seeded) => {
                tracing::info!(
                    contacts = seeded.contacts,
                    interactions = seeded.interactions,
                    opted_out = seeded.opted_out,
                    bounced = seeded.bounced,
                    "sandbox: seeded the demo contacts"
                );
                // Show what the clock-driven parts make of them now (cold
                // triggers' drafts waiting for approval, warmth), not one
                // job period from now. In the background: the jobs post to
                // the emulated Slack, which answers once the server runs.
                let sandbox = sandbox.clone();
                app.spawn(
                    "the sandbox's first pass of the periodic jobs",
                    async move {
                        time::run_jobs(&sandbox).await;
                        Ok(())
                    },
                );
            }
            None => tracing::info!("sandbox: the database already has data; no demo seeded"),
        }
    }
    tracing::info!(
        url = %sandbox.base_url(),
        database = %app.settings.database.sqlite_path.display(),
        "sandbox mode: Slack is emulated and every channel is a capture sink — nothing is sent. \
         Open the URL to try warmline; to connect a real workspace, set SLACK_BOT_TOKEN and \
         SLACK_SIGNING_SECRET (see the README)"
    );
    Ok(())
}
