//! Contract tests: the Resend client against Prism mocking Resend's official
//! OpenAPI spec (`../shared/specs/resend.openapi.yaml`, or
//! `$WARMLINE_SPECS_DIR/resend.openapi.yaml`). Prism validates every request
//! against the spec and, with `--errors`, answers 422 to one that does not
//! match, so a request our client builds wrongly fails here.
//!
//! Prism comes from `scripts/ensure-test-tools` (npm, pinned in
//! `tools/package-lock.json`). Without it these tests fail, saying so: a
//! contract test that silently skips proves nothing.

use std::{
    net::{SocketAddr, TcpStream},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use warmline::{
    email::EmailContent,
    providers::{
        OutgoingMessage, Provider, SendOutcome,
        resend::{ResendConfig, ResendProvider},
    },
};

/// Prism loads and compiles the spec before it listens; on a busy CI
/// machine that takes a while.
const STARTUP: Duration = Duration::from_secs(90);

/// A running `prism mock`, killed when dropped (the Twilio contract tests
/// use it too).
pub(crate) struct Prism {
    child: Child,
    pub(crate) base: String,
    _log_dir: tempfile::TempDir,
    log: PathBuf,
}

impl Drop for Prism {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `name` in `../shared/specs` or `$WARMLINE_SPECS_DIR`.
fn spec_path(name: &str) -> PathBuf {
    let dir = std::env::var_os("WARMLINE_SPECS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/specs"));
    let spec = dir.join(name);
    assert!(
        spec.is_file(),
        "the official spec {name} is not at {} (check out `shared/` beside the repo, or set WARMLINE_SPECS_DIR)",
        spec.display()
    );
    spec
}

fn prism_binary() -> PathBuf {
    let bin = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tools/node_modules/.bin/prism");
    assert!(
        bin.is_file(),
        "Prism is not installed at {}: run scripts/ensure-test-tools",
        bin.display()
    );
    bin
}

/// A port free right now (bind 0, read it, release it).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

impl Prism {
    fn start() -> Self {
        Self::serving("resend.openapi.yaml")
    }

    /// Prism mocking the spec `name` (see [`spec_path`]).
    pub(crate) fn serving(name: &str) -> Self {
        let (bin, spec) = (prism_binary(), spec_path(name));
        let log_dir = tempfile::tempdir().expect("temp dir");
        let log = log_dir.path().join("prism.log");
        let out = std::fs::File::create(&log).expect("log file");
        let port = free_port();
        let child = Command::new(bin)
            .args(["mock", "--errors", "-h", "127.0.0.1", "-p"])
            .arg(port.to_string())
            .arg(&spec)
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log handle"))
            .stderr(out)
            .spawn()
            .expect("prism starts");
        let mut prism = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            _log_dir: log_dir,
            log,
        };
        prism.wait_until_listening(SocketAddr::from(([127, 0, 0, 1], port)));
        prism
    }

    fn wait_until_listening(&mut self, addr: SocketAddr) {
        let deadline = Instant::now() + STARTUP;
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "prism exited ({status}) before listening:\n{}",
                    self.log_text()
                );
            }
            assert!(
                Instant::now() < deadline,
                "prism did not listen on {addr} within {STARTUP:?}:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub(crate) fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

fn message(n: usize) -> OutgoingMessage {
    let content = EmailContent {
        from: "Acme <news@acme.test>".into(),
        reply_to: Some("team@acme.test".into()),
        subject: "Checking in".into(),
        text: "Hello".into(),
        html: Some("<p>Hello</p>".into()),
        headers: [
            (
                "List-Unsubscribe".to_string(),
                "<https://warm.example.org/u/tok>".to_string(),
            ),
            (
                "List-Unsubscribe-Post".to_string(),
                "List-Unsubscribe=One-Click".to_string(),
            ),
        ]
        .into(),
    };
    OutgoingMessage {
        id: format!("msg_{n:032x}"),
        channel: warmline::domain::Channel::Email,
        kind: warmline::domain::MessageKind::Marketing,
        to: format!("person{n}@example.com"),
        content: content.to_payload(),
    }
}

#[tokio::test]
async fn the_client_s_requests_match_resend_s_published_spec() {
    // Arrange
    let prism = Prism::start();
    let resend = ResendProvider::new(ResendConfig::new("re_contract_key", &prism.base)).unwrap();

    // Act
    let single = resend.send(&[message(1)]).await;
    let batch = resend
        .send(&(0..100).map(message).collect::<Vec<_>>())
        .await;

    // Assert: Prism answered 200, so the requests matched the spec (an
    // invalid one would get a 422 and be classified as permanent).
    assert!(
        matches!(
            &single[0],
            SendOutcome::Accepted {
                provider_message_id: Some(_)
            }
        ),
        "{single:?}\n{}",
        prism.log_text()
    );
    assert_eq!(batch.len(), 100);
    assert!(
        batch
            .iter()
            .all(|o| matches!(o, SendOutcome::Accepted { .. })),
        "{batch:?}\n{}",
        prism.log_text()
    );
    // Prism's example batch answer holds one id; the client reads what is there.
    assert!(matches!(
        &batch[0],
        SendOutcome::Accepted {
            provider_message_id: Some(_)
        }
    ));
}

#[tokio::test]
async fn prism_refuses_what_the_spec_refuses() {
    // Arrange: proof that validation is on, so the test above means something.
    let prism = Prism::start();
    let client = reqwest::Client::new();
    let valid = serde_json::json!({"from": "a@acme.test", "to": ["b@example.com"], "subject": "s", "text": "t"});
    let mut no_subject = valid.clone();
    no_subject.as_object_mut().unwrap().remove("subject");
    let post = |path: &str| {
        client
            .post(format!("{}{path}", prism.base))
            .bearer_auth("re_contract_key")
    };

    // Act
    let ok = post("/emails").json(&valid).send().await.unwrap();
    let missing = post("/emails").json(&no_subject).send().await.unwrap();
    let in_batch = post("/emails/batch")
        .json(&[valid.clone(), no_subject.clone()])
        .send()
        .await
        .unwrap();
    let long_key = post("/emails")
        .header("Idempotency-Key", "k".repeat(257))
        .json(&valid)
        .send()
        .await
        .unwrap();
    let no_auth = client
        .post(format!("{}/emails", prism.base))
        .json(&valid)
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(ok.status(), 200);
    assert_eq!(missing.status(), 422);
    let body = missing.text().await.unwrap();
    assert!(body.contains("subject"), "{body}");
    assert_eq!(in_batch.status(), 422);
    assert_eq!(long_key.status(), 422);
    assert_eq!(no_auth.status(), 401);
}
