//! Error monitoring end to end: a real Sentry client with its real reqwest
//! transport posts envelopes to a local HTTP sink on 127.0.0.1:0, which
//! records each request and hands it over a channel. No sleeps: the client's
//! `flush` returns once the sink has answered, and the test then reads what
//! the sink recorded.
//!
//! Sentry keeps global state: a process hub, and a panic hook installed
//! once per process. So that these tests can run in parallel with each other
//! and with the rest of the binary, each one starts its client inside its
//! own fresh `Hub` (`sentry::Hub::run`): `error_reporting::init` binds the
//! client to the current hub, which is then the test's own, never the
//! process hub. Likewise the tracing subscriber is set per thread
//! (`tracing::subscriber::with_default`), not globally, and the panicking
//! task carries the test's hub (`bind_hub`): in production it inherits the
//! process hub instead. The panic hook, once installed, reports to the
//! panicking thread's hub, which has no client outside these tests.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::{Arc, mpsc},
    time::Duration,
};

use axum::{Router, body::Bytes, extract::State, http::HeaderMap, http::Uri};
use sentry::{Envelope, Hub, Scope, SentryFutureExt, protocol::Event};
use serde_json::Value;
use warmline::{
    error_reporting,
    settings::{LogFormat, LogSettings, Requirements, Settings},
    telemetry,
};

const WAIT: Duration = Duration::from_secs(10);
const EMAIL: &str = "john.doe@example.com";
const PHONE: &str = "+12125554567";

/// One request the sink received.
struct Received {
    path: String,
    auth: String,
    body: Vec<u8>,
}

/// A Sentry ingestion endpoint on loopback that records every request.
struct Sink {
    addr: SocketAddr,
    received: mpsc::Receiver<Received>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Sink {
    fn start() -> Self {
        let (tx, received) = mpsc::channel();
        let (addr_tx, addr_rx) = mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        // Its own thread and runtime: the test thread blocks in `flush`.
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                let app = Router::new().fallback(record).with_state(tx);
                axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = stopped.await;
                    })
                    .await
                    .expect("sink serves");
            });
        });
        let addr = addr_rx.recv_timeout(WAIT).expect("sink started");
        Self {
            addr,
            received,
            stop: Some(stop),
        }
    }

    fn dsn(&self) -> String {
        format!("http://publickey@{}/42", self.addr)
    }

    /// The next request that carries an event (client reports and the like
    /// are skipped), with its envelope.
    fn next_event(&self) -> (Received, Envelope) {
        loop {
            let got = self
                .received
                .recv_timeout(WAIT)
                .expect("an envelope reached the sink");
            let envelope = Envelope::from_slice(&got.body).expect("a valid envelope");
            if envelope.event().is_some() {
                return (got, envelope);
            }
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn record(
    State(tx): State<mpsc::Sender<Received>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> &'static str {
    let auth = headers
        .get("x-sentry-auth")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let _ = tx.send(Received {
        path: uri.path().to_owned(),
        auth,
        body: body.to_vec(),
    });
    r#"{"id":"00000000000000000000000000000000"}"#
}

/// A hub of the test's own, with no client and an empty scope.
fn fresh_hub() -> Arc<Hub> {
    Arc::new(Hub::new(None, Arc::new(Scope::default())))
}

/// Settings as loaded from the environment, with an empty config file.
fn settings(vars: &[(&str, &str)]) -> Result<Settings, warmline::settings::ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.toml");
    std::fs::write(&empty, "").unwrap();
    let mut env: BTreeMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    env.insert("WARMLINE_CONFIG".into(), empty.to_string_lossy().into());
    Settings::load_from(&env, Requirements::Offline)
}

fn log_settings() -> LogSettings {
    LogSettings {
        format: LogFormat::Json,
        level: "info".into(),
    }
}

fn event_json(event: &Event<'static>) -> Value {
    serde_json::to_value(event).unwrap()
}

#[test]
fn an_error_event_reaches_sentry_with_its_fields_and_addresses_masked() {
    // Arrange
    warmline::install_crypto_provider();
    let sink = Sink::start();
    let settings = settings(&[
        ("SENTRY_DSN", &sink.dsn()),
        ("SENTRY_ENVIRONMENT", "staging"),
    ])
    .unwrap();

    // Act
    let flushed = Hub::run(fresh_hub(), || {
        let reporting = error_reporting::init(&settings)
            .unwrap()
            .expect("a DSN starts a client");
        let subscriber = telemetry::subscriber(&log_settings(), true);
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(contact = "ann@example.org", "looking up a contact");
            tracing::error!(
                recipient = EMAIL,
                phone = PHONE,
                campaign = "spring",
                "sending to {EMAIL} at {PHONE} failed"
            );
        });
        reporting.flush(WAIT)
    });

    // Assert
    assert!(flushed, "the client delivered everything");
    let (request, envelope) = sink.next_event();
    assert_eq!(request.path, "/api/42/envelope/");
    assert!(
        request.auth.contains("sentry_key=publickey"),
        "{}",
        request.auth
    );
    assert_eq!(envelope.event().unwrap().level, sentry::Level::Error);
    let event = event_json(envelope.event().unwrap());
    assert_eq!(
        event["message"],
        "sending to j***@example.com at +1******4567 failed"
    );
    let fields = &event["contexts"]["Rust Tracing Fields"];
    assert_eq!(fields["recipient"], "j***@example.com");
    assert_eq!(fields["phone"], "+1******4567");
    assert_eq!(fields["campaign"], "spring");
    assert_eq!(event["environment"], "staging");
    assert_eq!(
        event["release"],
        format!("warmline@{}", env!("CARGO_PKG_VERSION"))
    );
    let crumbs = event["breadcrumbs"]["values"].as_array().unwrap();
    let crumb = crumbs
        .iter()
        .find(|c| c["message"] == "looking up a contact")
        .expect("the info event came along as a breadcrumb");
    assert_eq!(crumb["data"]["contact"], "a***@example.org");
    let body = String::from_utf8_lossy(&request.body);
    for leaked in [EMAIL, PHONE, "ann@example.org", "2125554567"] {
        assert!(!body.contains(leaked), "{leaked} was sent: {body}");
    }
}

#[test]
fn a_panic_in_a_task_is_captured_and_delivered() {
    // Arrange
    warmline::install_crypto_provider();
    let sink = Sink::start();
    let settings = settings(&[("SENTRY_DSN", &sink.dsn())]).unwrap();

    // Act
    let (joined, flushed) = Hub::run(fresh_hub(), || {
        let reporting = error_reporting::init(&settings).unwrap().unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        let task =
            rt.spawn(async { panic!("worker for {EMAIL} gave up") }.bind_hub(Hub::current()));
        let joined = rt.block_on(task);
        (joined, reporting.flush(WAIT))
    });

    // Assert
    assert!(joined.unwrap_err().is_panic());
    assert!(flushed);
    let (request, envelope) = sink.next_event();
    let event = event_json(envelope.event().unwrap());
    assert_eq!(event["level"], "fatal");
    let exception = &event["exception"]["values"][0];
    assert_eq!(exception["mechanism"]["type"], "panic");
    assert_eq!(exception["value"], "worker for j***@example.com gave up");
    assert!(!String::from_utf8_lossy(&request.body).contains(EMAIL));
}

#[test]
fn without_a_dsn_nothing_is_initialised_and_nothing_is_sent() {
    // Arrange
    let sink = Sink::start();
    let settings = settings(&[]).unwrap();

    // Act
    let (reporting, client) = Hub::run(fresh_hub(), || {
        let reporting = error_reporting::init(&settings).unwrap();
        let subscriber = telemetry::subscriber(&log_settings(), reporting.is_some());
        tracing::subscriber::with_default(subscriber, || {
            tracing::error!(recipient = EMAIL, "this stays in the logs");
        });
        (reporting.is_some(), Hub::current().client())
    });

    // Assert
    assert!(!reporting, "no DSN, no client");
    assert!(client.is_none(), "no client bound to the hub");
    // No client means no transport that could post later: what the sink has
    // now is all it will ever get.
    assert!(
        sink.received.try_recv().is_err(),
        "nothing reached the sink"
    );
}

#[test]
fn a_malformed_dsn_is_a_configuration_error_naming_sentry_dsn() {
    // Arrange
    let malformed = "sentry.example.com/not-a-dsn-s3cr3tkey";

    // Act
    let err = settings(&[("SENTRY_DSN", malformed)]).unwrap_err();
    let no_key = settings(&[("SENTRY_DSN", "https://sentry.example.com/42")]).unwrap_err();

    // Assert
    assert_eq!(err.setting, "SENTRY_DSN");
    assert!(!err.to_string().contains("s3cr3tkey"), "{err}");
    assert_eq!(no_key.setting, "SENTRY_DSN");
}

#[test]
fn serve_refuses_to_start_with_a_malformed_dsn() {
    // Arrange
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("empty.toml"), "").unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_warmline"));
    cmd.arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", dir.path())
        .env("WARMLINE_CONFIG", dir.path().join("empty.toml"))
        .env("SLACK_BOT_TOKEN", "xoxb-1-2-abcdefabcdef")
        .env("SLACK_SIGNING_SECRET", "0123456789abcdef0123456789abcdef")
        .env("SENTRY_DSN", "https://s3cr3tkey@sentry.example.com/")
        .current_dir(dir.path())
        .stdin(std::process::Stdio::null());

    // Act
    let out = cmd.output().unwrap();

    // Assert
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("configuration error: SENTRY_DSN"),
        "{stderr}"
    );
    assert!(!stderr.contains("s3cr3tkey"), "{stderr}");
    assert!(
        !dir.path().join("warmline.db").exists(),
        "stopped before touching the database"
    );
}
