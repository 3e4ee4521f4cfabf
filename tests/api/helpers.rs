//! Spawning the app for a test: on port 0, against a fresh database and a
//! fake Slack, with helpers to send signed Slack requests.

use std::{net::SocketAddr, time::Duration};

use sea_orm::{ConnectionTrait, Statement};
use serde_json::Value;
use tokio::sync::oneshot;
use warmline::{settings::Settings, state::App};

use crate::{
    fake_slack::{FakeSlack, WAIT},
    test_db::{Backend, TestDb},
};

pub const SIGNING_SECRET: &str = "fa2c05deeef5a4077494e89f54394de0";
pub const BOT_TOKEN: &str = "xoxb-1234-5678-testtoken";
pub const APP_TOKEN: &str = "xapp-1-A0FAKE-1234-testtoken";
pub const TEAM: &str = "T0001TEAM";
pub const USER: &str = "U0001USER";

/// Logs stay quiet unless `TEST_LOG` is set.
pub fn init_test_process() {
    warmline::install_crypto_provider();
    if std::env::var_os("TEST_LOG").is_some() {
        let log = warmline::settings::LogSettings {
            level: "debug,hyper=info,sqlx=warn,tungstenite=info".into(),
            ..Default::default()
        };
        warmline::telemetry::init(&log);
    }
}

pub struct TestApp {
    pub addr: SocketAddr,
    pub base: String,
    pub app: App,
    pub fake: FakeSlack,
    pub client: reqwest::Client,
    /// Keeps the SQLite file (or PostgreSQL database) alive for the test.
    pub _db: TestDb,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

/// Settings for a test: port 0, the fake Slack, a test signing secret.
pub fn test_settings(fake: &FakeSlack, db: &TestDb) -> Settings {
    let mut s = Settings::default();
    s.server.addr = "127.0.0.1:0".parse().unwrap();
    s.server.shutdown_grace_secs = 10;
    s.slack.bot_token = Some(BOT_TOKEN.to_string().into());
    s.slack.signing_secret = Some(SIGNING_SECRET.to_string().into());
    s.slack.api_url = fake.api_url();
    s.slack.request_timeout_secs = 5;
    s.slack.max_retries = 2;
    // Slack's per-channel pace would only slow tests that post many notices.
    s.slack.channel_posts_per_sec = 100.0;
    db.apply(&mut s);
    s
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(f: impl FnOnce(&mut Settings)) -> TestApp {
    let db = TestDb::new(Backend::Sqlite)
        .await
        .expect("SQLite is always available");
    spawn_app_on(db, f).await
}

/// Spawns the app on a given database (for `storage_test!`).
pub async fn spawn_app_on(db: TestDb, f: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_with_registry(db, f, None).await
}

/// Spawns the app with the providers given (e.g. a test provider whose log
/// the test reads) instead of those its settings configure.
pub async fn spawn_app_with_registry(
    db: TestDb,
    f: impl FnOnce(&mut Settings),
    registry: Option<warmline::providers::Registry>,
) -> TestApp {
    init_test_process();
    let fake = FakeSlack::start(BOT_TOKEN).await;
    let mut settings = test_settings(&fake, &db);
    f(&mut settings);
    let application = match registry {
        Some(r) => {
            warmline::startup::Application::build_with_registry(settings, db.db.clone(), r).await
        }
        None => warmline::startup::Application::build_with_db(settings, db.db.clone()).await,
    }
    .expect("the app builds");
    let addr = application.local_addr();
    let app = application.app();
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(application.run_until(async move {
        let _ = rx.await;
    }));
    TestApp {
        addr,
        base: format!("http://{addr}"),
        app,
        fake,
        client: reqwest::Client::builder().timeout(WAIT).build().unwrap(),
        _db: db,
        shutdown: Some(tx),
        server: Some(server),
    }
}

/// `key=value&…`, form-encoded.
pub fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// A slash command body as Slack sends it, with a fresh trigger id.
pub fn command_body(text: &str) -> String {
    command_body_with_trigger(
        text,
        &format!("13345224609.738474920.{}", uuid::Uuid::new_v4().simple()),
    )
}

pub fn command_body_with_trigger(text: &str, trigger_id: &str) -> String {
    form(&[
        ("token", "gIkuvaNzQIHg97ATvDxqgjtO"),
        ("team_id", TEAM),
        ("team_domain", "example"),
        ("enterprise_id", "E0001"),
        ("enterprise_name", "Globular Construct Inc"),
        ("channel_id", "C2147483705"),
        ("channel_name", "test"),
        ("user_id", USER),
        ("user_name", "steve"),
        ("command", "/warm"),
        ("text", text),
        ("api_app_id", "A123456"),
        ("is_enterprise_install", "false"),
        ("response_url", "https://hooks.slack.com/commands/1234/5678"),
        ("trigger_id", trigger_id),
    ])
}

/// An `event_callback` wrapping `app_home_opened` for [`USER`].
pub fn app_home_opened(event_id: &str) -> Value {
    serde_json::json!({
        "token": "XXYYZZ",
        "team_id": TEAM,
        "api_app_id": "A0FAKE",
        "event": {
            "type": "app_home_opened",
            "user": USER,
            "channel": "D0LAN2Q65",
            "event_ts": "1515449522000016",
            "tab": "home"
        },
        "type": "event_callback",
        "event_id": event_id,
        "event_time": 1515449522,
        "authorizations": [],
        "is_ext_shared_channel": false,
        "event_context": "EC12345"
    })
}

/// A `block_actions` payload: [`USER`] clicked `action_id` on the Home tab.
pub fn block_action(action_id: &str) -> Value {
    serde_json::json!({
        "type": "block_actions",
        "team": {"id": TEAM, "domain": "example"},
        "user": {"id": USER, "username": "steve", "name": "steve", "team_id": TEAM},
        "api_app_id": "A0FAKE",
        "token": "XXYYZZ",
        "container": {"type": "view", "view_id": "VMHU10V25"},
        "trigger_id": "12321423423.333649436676.d8c1bb837935619ccad0f624c448ffb3",
        "view": {
            "id": "VMHU10V25",
            "team_id": TEAM,
            "type": "home",
            "blocks": [],
            "private_metadata": "",
            "callback_id": "",
            "state": {"values": {}},
            "hash": "1605097600.dbd8b44d",
            "clear_on_close": false,
            "notify_on_close": false,
            "root_view_id": "VMHU10V25",
            "app_id": "A0FAKE",
            "external_id": "",
            "app_installed_team_id": TEAM,
            "bot_id": "B0FAKE"
        },
        "actions": [{
            "type": "button",
            "block_id": "refresh",
            "action_id": action_id,
            "text": {"type": "plain_text", "text": "Refresh", "emoji": true},
            "action_ts": "1605097609.123456"
        }]
    })
}

pub fn now_ts() -> String {
    chrono::Utc::now().timestamp().to_string()
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// POSTs `body` signed with the test signing secret and a fresh timestamp.
    pub async fn signed_post(
        &self,
        path: &str,
        content_type: &str,
        body: impl Into<String>,
    ) -> reqwest::Response {
        self.signed_post_with(path, content_type, body, &now_ts(), &[])
            .await
    }

    /// POSTs `body` signed at `timestamp`, with extra headers.
    pub async fn signed_post_with(
        &self,
        path: &str,
        content_type: &str,
        body: impl Into<String>,
        timestamp: &str,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let body = body.into();
        let signature = warmline::slack::ingress::sign(SIGNING_SECRET, timestamp, &body);
        let mut req = self
            .client
            .post(self.url(path))
            .header("content-type", content_type)
            .header("x-slack-request-timestamp", timestamp)
            .header("x-slack-signature", signature);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.body(body).send().await.expect("request sent")
    }

    /// POSTs without any signature headers.
    pub async fn unsigned_post(
        &self,
        path: &str,
        content_type: &str,
        body: impl Into<String>,
    ) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .header("content-type", content_type)
            .body(body.into())
            .send()
            .await
            .expect("request sent")
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request sent")
    }

    /// A slash command with `text` and a fresh trigger id.
    pub async fn post_command(&self, text: &str) -> reqwest::Response {
        self.post_command_form(command_body(text)).await
    }

    pub async fn post_command_form(&self, body: impl Into<String>) -> reqwest::Response {
        self.signed_post("/slack/commands", "application/x-www-form-urlencoded", body)
            .await
    }

    pub async fn post_event(&self, event: &Value) -> reqwest::Response {
        self.signed_post("/slack/events", "application/json", event.to_string())
            .await
    }

    /// Posts an interaction as Slack does: a form whose `payload` is the JSON.
    pub async fn post_interaction(&self, payload: &Value) -> reqwest::Response {
        self.post_interaction_raw(&payload.to_string()).await
    }

    pub async fn post_interaction_raw(&self, payload: &str) -> reqwest::Response {
        self.signed_post(
            "/slack/interactions",
            "application/x-www-form-urlencoded",
            form(&[("payload", payload)]),
        )
        .await
    }

    /// Waits for every background task spawned so far to finish.
    pub async fn drain_background(&self) {
        self.app.tasks.close();
        tokio::time::timeout(WAIT, self.app.tasks.wait())
            .await
            .expect("background work finished in time");
        self.app.tasks.reopen();
    }

    pub async fn count_rows(&self, table: &str) -> i64 {
        let db = &self.app.db;
        let row = db
            .query_one_raw(Statement::from_string(
                db.get_database_backend(),
                format!("SELECT COUNT(*) AS n FROM {table}"),
            ))
            .await
            .expect("count query runs")
            .expect("a count row");
        row.try_get::<i64>("", "n").expect("a count")
    }

    pub async fn slack_request_rows(&self) -> i64 {
        self.count_rows("slack_requests").await
    }

    pub async fn audit_rows(&self) -> i64 {
        self.count_rows("audit_log").await
    }

    /// Triggers shutdown and waits for `run_until` to return.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let server = self.server.take().expect("the server runs");
        tokio::time::timeout(Duration::from_secs(30), server)
            .await
            .expect("shutdown finished in time")
            .expect("the server task did not panic")
    }

    /// Hands out the shutdown trigger and the server task (shutdown tests).
    pub fn take_server(
        &mut self,
    ) -> (
        oneshot::Sender<()>,
        tokio::task::JoinHandle<anyhow::Result<()>>,
    ) {
        (
            self.shutdown.take().expect("shutdown trigger"),
            self.server.take().expect("server task"),
        )
    }
}
