//! The sandbox (issue 13) through its HTTP surface, in process: the page
//! API relays gestures to the real Slack handlers, the emulated Web API
//! answers the bot as Slack does, the capture sinks fill the outbox through
//! the real dispatcher, and simulated provider feedback goes through the
//! real webhook and inbound routes.
//!
//! These tests never move the clock: it is process-wide, and other tests
//! share this process. The clock control is tested on the real binary in
//! `cli::serve_without_slack_credentials_starts_the_sandbox`.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use warmline::{
    sandbox::{self, cast},
    settings::Settings,
    state::App,
};

use crate::helpers::init_test_process;

/// How long a wait on the sandbox's state may take.
const WAIT: Duration = Duration::from_secs(20);

pub struct SandboxApp {
    pub base: String,
    pub app: App,
    pub client: reqwest::Client,
    pub _dir: tempfile::TempDir,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

/// Starts a sandbox on port 0 with its own database file in a temp dir.
pub async fn spawn_sandbox(demo: sandbox::Demo) -> SandboxApp {
    spawn_sandbox_with(demo, |_| {}).await
}

pub async fn spawn_sandbox_with(demo: sandbox::Demo, f: impl FnOnce(&mut Settings)) -> SandboxApp {
    init_test_process();
    let dir = tempfile::tempdir().expect("a temp dir");
    let mut settings = Settings::default();
    settings.server.addr = "127.0.0.1:0".parse().unwrap();
    settings.server.shutdown_grace_secs = 10;
    f(&mut settings);
    let options = sandbox::Options {
        database: dir.path().join("warmline-sandbox.db"),
        demo,
    };
    let application = warmline::startup::Application::build_sandbox(settings, options)
        .await
        .expect("the sandbox builds");
    let addr = application.local_addr();
    let app = application.app();
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(application.run_until(async move {
        let _ = rx.await;
    }));
    SandboxApp {
        base: format!("http://{addr}"),
        app,
        client: reqwest::Client::builder().timeout(WAIT).build().unwrap(),
        _dir: dir,
        shutdown: Some(tx),
        server: Some(server),
    }
}

impl SandboxApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("GET sent")
    }

    /// POSTs JSON to the page API; the status and the JSON answer.
    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let res = self
            .client
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .expect("POST sent");
        let status = res.status();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    pub async fn state(&self, user: &str) -> Value {
        self.get(&format!("/sandbox/api/state?user={user}"))
            .await
            .json()
            .await
            .expect("state is JSON")
    }

    /// Long-polls the state until `pred` holds, failing after [`WAIT`].
    pub async fn wait_state(&self, user: &str, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + WAIT;
        let mut state = self.state(user).await;
        loop {
            if pred(&state) {
                return state;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; state: {state:#}"
            );
            let version = state["version"].as_u64().unwrap();
            state = self
                .get(&format!("/sandbox/api/state?user={user}&after={version}"))
                .await
                .json()
                .await
                .expect("state is JSON");
        }
    }

    pub async fn command(&self, user: &str, text: &str) -> (StatusCode, Value) {
        self.post(
            "/sandbox/api/command",
            json!({"user": user, "channel": cast::GENERAL, "text": text}),
        )
        .await
    }

    /// The sandbox's own API key (made at start-up).
    pub fn api_key(&self) -> String {
        self.app.settings.api.keys[0].expose_secret().to_string()
    }

    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let server = self.server.take().expect("the server runs");
        tokio::time::timeout(Duration::from_secs(30), server)
            .await
            .expect("shutdown in time")
            .expect("no panic")
            .expect("clean shutdown");
    }
}

/// `SELECT CAST(COUNT(*) AS BIGINT) AS n …` on the sandbox's database.
pub async fn count(sb: &SandboxApp, sql: &str, values: Vec<sea_orm::Value>) -> i64 {
    warmline::db::count(&sb.app.db, sql, values).await.unwrap()
}

/// Waits (up to [`WAIT`]) until `sql` counts `n`. The dispatcher's own
/// workers send in the background and signal nothing a test can await, so
/// this polls the ledger under a deadline.
pub async fn wait_for_count(sb: &SandboxApp, sql: &str, n: i64) {
    let deadline = Instant::now() + WAIT;
    loop {
        let now = count(sb, sql, vec![]).await;
        if now == n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {n} from {sql}: {now}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Messages in `state` from the bot whose text contains `needle`.
pub fn bot_messages<'a>(state: &'a Value, needle: &str) -> Vec<&'a Value> {
    state["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["user"] == cast::BOT_USER_ID && m["text"].as_str().unwrap().contains(needle))
        .collect()
}

#[tokio::test]
async fn the_page_and_its_assets_are_served_from_the_binary_with_no_external_urls() {
    // Arrange
    let sb = spawn_sandbox(sandbox::Demo::Never).await;

    // Act
    let index = sb.get("/").await;
    let kit = sb.get("/sandbox/kit").await;
    let js = sb.get("/sandbox/assets/sandbox.js").await;
    let css = sb.get("/sandbox/assets/sandbox.css").await;

    // Assert
    assert_eq!(index.status(), 200);
    assert!(
        index.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = index.text().await.unwrap();
    assert!(html.contains("Sandbox — nothing is sent"), "{html}");
    assert!(html.contains("/sandbox/assets/sandbox.js"));
    assert_eq!(kit.status(), 200);
    assert_eq!(js.status(), 200);
    assert!(
        js.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    assert_eq!(css.status(), 200);
    let (js, css) = (js.text().await.unwrap(), css.text().await.unwrap());
    for (name, text) in [
        ("index.html", &html),
        ("sandbox.js", &js),
        ("sandbox.css", &css),
    ] {
        for external in [
            "src=\"http",
            "href=\"http",
            "url(http",
            "@import",
            "//cdn",
            "fonts.googleapis",
        ] {
            assert!(
                !text.contains(external),
                "{name} loads something from the network: {external}"
            );
        }
    }
    sb.shutdown().await;
}

#[tokio::test]
async fn a_typed_command_goes_through_the_real_handler_and_answers_only_its_author() {
    // Arrange
    let sb = spawn_sandbox(sandbox::Demo::Never).await;

    // Act
    let (status, answer) = sb.command(cast::REQUESTER, "/warm help").await;

    // Assert
    assert_eq!(status, 200, "{answer}");
    let state = sb.state(cast::REQUESTER).await;
    let usage = bot_messages(&state, "/warm campaign");
    assert_eq!(usage.len(), 1, "{state:#}");
    assert_eq!(usage[0]["ephemeral"], true);
    assert!(
        usage[0]["blocks"].is_array(),
        "the usage message has its blocks"
    );
    let others = sb.state(cast::MEMBER).await;
    assert!(
        bot_messages(&others, "/warm campaign").is_empty(),
        "an ephemeral is for its author"
    );
    // It went through the real handler: de-duplication recorded it.
    let rows = count(
        &sb,
        "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM slack_requests",
        vec![],
    )
    .await;
    assert_eq!(rows, 1);
    sb.shutdown().await;
}

#[tokio::test]
async fn only_the_configured_command_reaches_the_bot() {
    // Arrange
    let sb = spawn_sandbox(sandbox::Demo::Never).await;

    // Act
    let (status, answer) = sb.command(cast::REQUESTER, "hello there").await;
    let (unknown_user, _) = sb.command("U0NOBODY", "/warm help").await;

    // Assert
    assert_eq!(status, 400);
    assert!(
        answer["error"].as_str().unwrap().contains("/warm"),
        "{answer}"
    );
    assert_eq!(unknown_user, 400);
    sb.shutdown().await;
}

#[tokio::test]
async fn the_signature_gate_still_refuses_a_forged_request_in_sandbox_mode() {
    // Arrange
    let sb = spawn_sandbox(sandbox::Demo::Never).await;
    let body = "command=%2Fwarm&text=help&user_id=U0SBREQ&team_id=T0SANDBOX";

    // Act
    let res = sb
        .client
        .post(sb.url("/slack/commands"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header(
            "x-slack-request-timestamp",
            chrono::Utc::now().timestamp().to_string(),
        )
        .header(
            "x-slack-signature",
            "v0=0000000000000000000000000000000000000000000000000000000000000000",
        )
        .body(body)
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(res.status(), 401);
    let rows = count(
        &sb,
        "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM slack_requests",
        vec![],
    )
    .await;
    assert_eq!(rows, 0, "a refused request changes nothing");
    sb.shutdown().await;
}

#[tokio::test]
async fn the_emulated_web_api_answers_errors_as_slack_does() {
    // Arrange
    let sb = spawn_sandbox(sandbox::Demo::Never).await;
    let token = sb
        .app
        .settings
        .slack
        .bot_token
        .as_ref()
        .unwrap()
        .expose_secret()
        .to_string();
    let call = |method: &str, token: &str, body: Value| {
        let req = sb
            .client
            .post(sb.url(&format!("/sandbox/slack/api/{method}")))
            .bearer_auth(token)
            .json(&body);
        async move { req.send().await.unwrap().json::<Value>().await.unwrap() }
    };

    // Act
    let bad_auth = call(
        "chat.postMessage",
        "xoxb-wrong",
        json!({"channel": cast::GENERAL, "text": "x"}),
    )
    .await;
    let no_channel = call(
        "chat.postMessage",
        &token,
        json!({"channel": "C0NOPE", "text": "x"}),
    )
    .await;
    let posted = call(
        "chat.postMessage",
        &token,
        json!({"channel": cast::GENERAL, "text": "hello"}),
    )
    .await;
    let bad_trigger = call(
        "views.open",
        &token,
        json!({"trigger_id": "123.456.abc", "view": {"type": "modal", "title": {"type": "plain_text", "text": "X"}, "blocks": []}}),
    )
    .await;
    let unknown = call("chat.teleport", &token, json!({})).await;
    let edited = call(
        "chat.update",
        &token,
        json!({"channel": cast::GENERAL, "ts": posted["ts"], "text": "hello again"}),
    )
    .await;

    // Assert
    assert_eq!(bad_auth, json!({"ok": false, "error": "invalid_auth"}));
    assert_eq!(no_channel["error"], "channel_not_found");
    assert_eq!(posted["ok"], true, "{posted}");
    assert_eq!(bad_trigger["error"], "invalid_trigger_id");
    assert_eq!(unknown["error"], "unknown_method");
    assert_eq!(edited["ok"], true, "{edited}");
    let state = sb.state(cast::MEMBER).await;
    let m = bot_messages(&state, "hello again");
    assert_eq!(m.len(), 1);
    assert_eq!(m[0]["edited"], true);
    sb.shutdown().await;
}

#[tokio::test]
async fn the_campaign_modal_opens_and_an_empty_submission_shows_errors_on_its_fields() {
    // Arrange
    let sb = spawn_sandbox(sandbox::Demo::Never).await;
    sb.command(cast::REQUESTER, "/warm campaign").await;
    let state = sb
        .wait_state(cast::REQUESTER, "the campaign modal", |s| {
            s["modals"].as_array().is_some_and(|m| !m.is_empty())
        })
        .await;
    let view_id = state["modals"][0]["view_id"].as_str().unwrap().to_string();
    assert_eq!(state["modals"][0]["view"]["callback_id"], "campaign_modal");

    // Act
    let (status, answer) = sb
        .post(
            "/sandbox/api/view/submit",
            json!({"user": cast::REQUESTER, "view_id": view_id, "state": {"values": {}}}),
        )
        .await;

    // Assert
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["closed"], false);
    let errors = answer["errors"].as_object().unwrap();
    assert!(!errors.is_empty(), "{answer}");
    let state = sb.state(cast::REQUESTER).await;
    assert_eq!(
        state["modals"][0]["view_id"],
        view_id.as_str(),
        "still open"
    );
    assert_eq!(state["modals"][0]["errors"].as_object().unwrap(), errors);
    // Another person does not see Riley's modal.
    assert!(
        sb.state(cast::MEMBER).await["modals"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn opening_home_publishes_it_for_that_person() {
    // Arrange
    let sb = spawn_sandbox(sandbox::Demo::Never).await;

    // Act
    let (status, answer) = sb
        .post("/sandbox/api/home", json!({"user": cast::APPROVER_1}))
        .await;

    // Assert
    assert_eq!(status, 200, "{answer}");
    let state = sb
        .wait_state(cast::APPROVER_1, "the App Home", |s| !s["home"].is_null())
        .await;
    assert_eq!(state["home"]["type"], "home");
    assert!(
        state["home"]["blocks"]
            .as_array()
            .is_some_and(|b| !b.is_empty())
    );
    assert!(sb.state(cast::MEMBER).await["home"].is_null());
    sb.shutdown().await;
}

/// Sends one transactional email through the API and the dispatcher, and
/// waits until it is in the outbox (the dispatcher's own workers may be the
/// ones that send it).
async fn send_one(sb: &SandboxApp, to: &str) -> String {
    let res = sb
        .client
        .post(sb.url("/api/v1/messages"))
        .bearer_auth(sb.api_key())
        .json(&json!({
            "template": "system_notification",
            "to": to,
            "variables": {"title": "Hello", "message": "A test notice."}
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let id = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let settled = format!(
        "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM messages WHERE id = '{id}' \
         AND (state = 'skipped' OR id IN (SELECT message_id FROM sandbox_outbox))"
    );
    wait_for_count(sb, &settled, 1).await;
    id
}

async fn outbox(sb: &SandboxApp) -> Vec<Value> {
    sb.get("/sandbox/api/outbox")
        .await
        .json::<Value>()
        .await
        .unwrap()["captures"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn a_message_lands_in_the_outbox_once_even_if_the_sink_is_called_again() {
    // Arrange
    let sb = spawn_sandbox(sandbox::Demo::Never).await;
    let id = send_one(&sb, "ada@example.com").await;
    let sink = sb
        .app
        .dispatcher
        .registry()
        .for_channel(warmline::domain::Channel::Email)
        .unwrap();

    // Act: the sink sees the same ledger message again (a retry after a crash).
    let again = warmline::providers::OutgoingMessage {
        id: id.clone(),
        channel: warmline::domain::Channel::Email,
        kind: warmline::domain::MessageKind::Transactional,
        to: "ada@example.com".into(),
        content: json!({"subject": "Hello", "text": "again"}),
    };
    let outcome = sink.send(&[again]).await;

    // Assert
    assert!(matches!(
        &outcome[0],
        warmline::providers::SendOutcome::Accepted { provider_message_id: Some(p) } if p == &format!("sbx-{id}")
    ));
    let captures = outbox(&sb).await;
    assert_eq!(captures.len(), 1, "{captures:#?}");
    let c = &captures[0];
    assert_eq!(c["message_id"], id.as_str());
    assert_eq!(c["to"], "ada@example.com");
    assert_eq!(c["subject"], "Hello");
    assert_eq!(c["state"], "sent");
    assert_eq!(c["provider"], "sandbox-email");
    assert!(c["html_url"].as_str().is_some());
    let html = sb.get(c["html_url"].as_str().unwrap()).await;
    assert_eq!(html.status(), 200);
    assert!(
        html.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("script-src 'none'")
    );
    assert!(html.text().await.unwrap().contains("A test notice."));
    sb.shutdown().await;
}

#[tokio::test]
async fn a_simulated_bounce_goes_through_the_webhook_and_suppresses_the_address() {
    // Arrange
    let sb = spawn_sandbox(sandbox::Demo::Never).await;
    let id = send_one(&sb, "bob@example.com").await;

    // Act
    let (status, answer) = sb
        .post(
            &format!("/sandbox/api/outbox/{id}/feedback"),
            json!({"event": "bounced"}),
        )
        .await;

    // Assert
    assert_eq!(status, 200, "{answer}");
    assert!(answer["detail"].as_str().unwrap().contains("suppressed"));
    let captures = outbox(&sb).await;
    assert_eq!(captures[0]["state"], "bounced", "{captures:#?}");
    assert!(
        captures[0]["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["type"] == "bounced")
    );
    let suppressed = count(
        &sb,
        "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM suppressions WHERE source = 'sandbox'",
        vec![],
    )
    .await;
    assert_eq!(suppressed, 1);
    // A second send to that address is stopped before the sink.
    let second = send_one(&sb, "bob@example.com").await;
    let state = count(
        &sb,
        "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM messages WHERE id = $1 AND state = 'skipped'",
        vec![second.into()],
    )
    .await;
    assert_eq!(state, 1, "a suppressed address is skipped");
    assert_eq!(outbox(&sb).await.len(), 1);
    sb.shutdown().await;
}

#[tokio::test]
async fn feedback_for_an_unknown_capture_or_a_forged_webhook_is_refused() {
    // Arrange
    let sb = spawn_sandbox(sandbox::Demo::Never).await;
    let id = send_one(&sb, "cy@example.com").await;

    // Act
    let (unknown, _) = sb
        .post(
            "/sandbox/api/outbox/nope/feedback",
            json!({"event": "delivered"}),
        )
        .await;
    let (bad_event, answer) = sb
        .post(
            &format!("/sandbox/api/outbox/{id}/feedback"),
            json!({"event": "exploded"}),
        )
        .await;
    let forged = sb
        .client
        .post(sb.url("/webhooks/sandbox-email"))
        .header("x-sandbox-signature", "t=1,v1=00")
        .body(format!(
            r#"{{"id":"e","type":"bounced","message_id":"{id}","provider_message_id":"sbx-{id}","to":"cy@example.com"}}"#
        ))
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(unknown, 404);
    assert_eq!(bad_event, 400);
    assert!(
        answer["error"].as_str().unwrap().contains("event"),
        "{answer}"
    );
    assert_eq!(forged.status(), 401);
    assert_eq!(outbox(&sb).await[0]["state"], "sent", "nothing changed");
    sb.shutdown().await;
}

#[tokio::test]
async fn the_kit_lists_every_layout_with_its_surface() {
    // Arrange
    let sb = spawn_sandbox(sandbox::Demo::Never).await;

    // Act
    let kit: Value = sb.get("/sandbox/api/kit").await.json().await.unwrap();

    // Assert
    let layouts = kit["layouts"].as_array().unwrap();
    assert_eq!(
        layouts.len(),
        warmline::slack::blocks::Blocks::names().len()
    );
    let surface = |name: &str| {
        layouts.iter().find(|l| l["name"] == name).unwrap()["surface"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(surface("home.json.j2"), "home");
    assert_eq!(surface("campaign_modal.json.j2"), "modal");
    assert_eq!(surface("approval_request.json.j2"), "message");
    sb.shutdown().await;
}

/// A demo contact with email consent (`import`), from the seeded cast.
const DEMO_EMAIL: &str = "amara.okafor@lumenhealth.example.com";

async fn email_consent(sb: &SandboxApp) -> (i64, i64) {
    let q = |granted: bool| {
        format!(
            "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM consents k JOIN contacts c ON c.id = k.contact_id \
             WHERE lower(c.email) = '{DEMO_EMAIL}' AND k.channel = 'email' AND k.granted = {granted}"
        )
    };
    (
        count(sb, &q(true), vec![]).await,
        count(sb, &q(false), vec![]).await,
    )
}

#[tokio::test]
async fn a_simulated_stop_goes_through_the_inbound_route_and_revokes_consent_once() {
    // Arrange
    let sb = spawn_sandbox(sandbox::Demo::Always).await;
    let id = send_one(&sb, DEMO_EMAIL).await;
    let (granted, revoked) = email_consent(&sb).await;
    assert_eq!(
        (granted > 0, revoked),
        (true, 0),
        "the demo contact consented"
    );

    // Act
    let (status, answer) = sb
        .post(
            &format!("/sandbox/api/outbox/{id}/feedback"),
            json!({"event": "stop"}),
        )
        .await;
    let (again, _) = sb
        .post(
            &format!("/sandbox/api/outbox/{id}/feedback"),
            json!({"event": "stop"}),
        )
        .await;

    // Assert
    assert_eq!(status, 200, "{answer}");
    assert_eq!(again, 200);
    assert_eq!(
        email_consent(&sb).await.1,
        1,
        "one revocation, however many STOPs"
    );
    // The notice and one confirmation, captured.
    wait_for_count(
        &sb,
        &format!(
            "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM sandbox_outbox \
             WHERE recipient = '{DEMO_EMAIL}' AND kind = 'transactional'"
        ),
        2,
    )
    .await;
    sb.app.dispatcher.drain().await.unwrap();
    let transactional = count(
        &sb,
        "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM messages m JOIN contacts c ON c.id = m.contact_id \
         WHERE lower(c.email) = $1 AND m.kind = 'transactional'",
        vec![DEMO_EMAIL.into()],
    )
    .await;
    assert!(
        transactional <= 2,
        "no second confirmation: {transactional}"
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn a_simulated_reply_is_recorded_as_an_inbound_interaction() {
    // Arrange
    let sb = spawn_sandbox(sandbox::Demo::Always).await;
    let id = send_one(&sb, DEMO_EMAIL).await;
    let before = count(
        &sb,
        "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM inbound_messages",
        vec![],
    )
    .await;

    // Act
    let (status, answer) = sb
        .post(
            &format!("/sandbox/api/outbox/{id}/feedback"),
            json!({"event": "reply", "text": "Good to hear from you — Tuesday?"}),
        )
        .await;

    // Assert
    assert_eq!(status, 200, "{answer}");
    let stored = count(
        &sb,
        "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM inbound_messages \
         WHERE text = 'Good to hear from you — Tuesday?' AND contact_id IS NOT NULL",
        vec![],
    )
    .await;
    assert_eq!(stored, 1, "linked to the contact");
    assert_eq!(
        count(
            &sb,
            "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM inbound_messages",
            vec![]
        )
        .await,
        before + 1
    );
    assert_eq!(email_consent(&sb).await.1, 0, "a reply is not an opt-out");
    sb.shutdown().await;
}
