//! The SMTP provider against a real SMTP server on loopback
//! (`tests/support/smtp_server.py`, Python's aiosmtpd): what arrives is what
//! the payload said, replies are classified by code, credentials in
//! `SMTP_URL` are used, and the dispatcher records each outcome.
//!
//! aiosmtpd must be installed (`scripts/ensure-test-tools`); without it these
//! tests fail and say so, they never skip.

use std::{
    fs::File,
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use chrono::Utc;
use sea_orm::{
    ActiveValue::Set, DatabaseConnection, EntityTrait, FromQueryResult, Statement, Value,
};
use serde::Deserialize;
use serde_json::json;
use warmline::{
    db::entities::{consents, contacts},
    dispatcher::ledger::{self, NewMessage},
    domain::MessageState,
    providers::{
        OutgoingMessage, Provider, SendOutcome,
        smtp::{SmtpProvider, settings::SmtpSettings},
    },
};

use crate::{helpers::spawn_app_on, storage_test, test_db::TestDb};

/// How long anything here may take before the test fails.
const DEADLINE: Duration = Duration::from_secs(20);

/// The SMTP test server, running until dropped.
pub struct SmtpServer {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
}

/// One message the server accepted, as the script stores it.
#[derive(Debug, Deserialize)]
pub struct Received {
    pub mail_from: String,
    pub rcpt_tos: Vec<String>,
    pub auth_login: Option<String>,
    /// The message as it came over the wire.
    pub data: String,
    /// Headers in order, unfolded.
    pub headers: Vec<(String, String)>,
    pub content_type: String,
    pub text: Option<String>,
    pub html: Option<String>,
}

impl Received {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl SmtpServer {
    pub fn start() -> Self {
        Self::spawn(None)
    }

    /// A server that requires AUTH with exactly these credentials.
    pub fn start_with_auth(user: &str, password: &str) -> Self {
        Self::spawn(Some(format!("{user}:{password}")))
    }

    fn spawn(auth: Option<String>) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/smtp_server.py");
        let stderr_path = dir.path().join("server.stderr");
        let mut cmd = Command::new("python3");
        cmd.arg(&script)
            .arg(dir.path().join("messages"))
            // Our end of stdin closes when the child handle drops: the server
            // exits even if this test process is killed.
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(File::create(&stderr_path).expect("stderr file"));
        if let Some(auth) = auth {
            cmd.arg("--auth").arg(auth);
        }
        let mut child = cmd
            .spawn()
            .expect("python3 on PATH runs the SMTP test server (run scripts/ensure-test-tools)");

        // The first stdout line is the port; read it on a thread so a server
        // that hangs fails the test at the deadline instead of blocking.
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(DEADLINE).unwrap_or_default();
        match line.trim().parse::<u16>() {
            Ok(port) => Self { child, port, dir },
            Err(_) => {
                let _ = child.kill();
                let status = child.wait().ok();
                let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
                panic!(
                    "the SMTP test server did not start (exit {status:?}): {stderr}\n\
                     It needs aiosmtpd: run scripts/ensure-test-tools"
                );
            }
        }
    }

    /// `SMTP_URL` for this server, without credentials.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    fn messages_dir(&self) -> PathBuf {
        self.dir.path().join("messages")
    }

    /// Every message accepted so far, in order.
    pub fn messages(&self) -> Vec<Received> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.messages_dir())
            .map(|d| {
                d.filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "json"))
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        files
            .iter()
            .map(|p| {
                serde_json::from_slice(&std::fs::read(p).expect("readable"))
                    .expect("the server writes JSON")
            })
            .collect()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn provider(url: String) -> SmtpProvider {
    warmline::install_crypto_provider();
    SmtpProvider::from_settings(&SmtpSettings {
        url: Some(url.into()),
        ..Default::default()
    })
    .expect("a loopback SMTP_URL is accepted")
}

const UNSUBSCRIBE: &str = "<https://warm.example.com/u/7.email.c2lnbmF0dXJl>, \
     <mailto:unsubscribe@example.com?subject=unsubscribe>";

fn marketing_email() -> serde_json::Value {
    json!({
        "from": "Warm Team <team@example.com>",
        "reply_to": "replies@example.com",
        "subject": "Catching up, Ada",
        "text": "Hi Ada,\n\nHow are things?\n\n--\nTo stop receiving these emails, unsubscribe: https://warm.example.com/u/7.email.c2lnbmF0dXJl\n",
        "html": "<html><body><p>Hi Ada,</p><p>How are things?</p><p><a href=\"https://warm.example.com/u/7.email.c2lnbmF0dXJl\">Unsubscribe</a></p></body></html>",
        "headers": {
            "List-Unsubscribe": UNSUBSCRIBE,
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"
        }
    })
}

fn outgoing(id: &str, to: &str) -> OutgoingMessage {
    OutgoingMessage {
        id: id.into(),
        channel: warmline::domain::Channel::Email,
        kind: warmline::domain::MessageKind::Marketing,
        to: to.into(),
        content: marketing_email(),
    }
}

async fn send_one(p: &SmtpProvider, m: OutgoingMessage) -> SendOutcome {
    let mut out = p.send(&[m]).await;
    assert_eq!(out.len(), 1, "one outcome per message");
    out.remove(0)
}

/// CRLF to LF, so bodies compare regardless of the wire's line endings.
fn lf(s: &str) -> String {
    s.replace("\r\n", "\n")
}

#[tokio::test]
async fn a_marketing_email_arrives_intact() {
    // Arrange
    let server = SmtpServer::start();
    let p = provider(server.url());

    // Act
    let outcome = send_one(&p, outgoing("msg_0001", "ada@example.org")).await;

    // Assert
    assert_eq!(
        outcome,
        SendOutcome::Accepted {
            provider_message_id: Some("msg_0001@example.com".into())
        }
    );
    let received = server.messages();
    assert_eq!(received.len(), 1);
    let r = &received[0];
    assert_eq!(r.mail_from, "team@example.com");
    assert_eq!(r.rcpt_tos, vec!["ada@example.org".to_string()]);
    assert_eq!(r.header("From"), Some("Warm Team <team@example.com>"));
    assert_eq!(r.header("To"), Some("ada@example.org"));
    assert_eq!(r.header("Reply-To"), Some("replies@example.com"));
    assert_eq!(r.header("Subject"), Some("Catching up, Ada"));
    assert_eq!(r.header("Message-ID"), Some("<msg_0001@example.com>"));
    assert_eq!(r.header("X-Warmline-Message-Id"), Some("msg_0001"));
    assert_eq!(r.header("List-Unsubscribe"), Some(UNSUBSCRIBE));
    assert!(
        r.data
            .contains("\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"),
        "RFC 8058's exact line, verbatim on the wire"
    );
    assert_eq!(r.content_type, "multipart/alternative");
    let email = marketing_email();
    assert_eq!(
        lf(r.text.as_deref().unwrap()).trim_end(),
        email["text"].as_str().unwrap().trim_end()
    );
    assert_eq!(
        lf(r.html.as_deref().unwrap()).trim_end(),
        email["html"].as_str().unwrap()
    );
}

#[tokio::test]
async fn a_text_only_email_is_plain_text() {
    let server = SmtpServer::start();
    let p = provider(server.url());
    let mut m = outgoing("msg_0002", "ada@example.org");
    m.kind = warmline::domain::MessageKind::Transactional;
    m.content = json!({"from": "team@example.com", "subject": "Your receipt", "text": "Thanks!"});

    let outcome = send_one(&p, m).await;

    assert!(
        matches!(outcome, SendOutcome::Accepted { .. }),
        "{outcome:?}"
    );
    let r = &server.messages()[0];
    assert_eq!(r.content_type, "text/plain");
    assert_eq!(r.header("List-Unsubscribe"), None);
    assert_eq!(lf(r.text.as_deref().unwrap()).trim_end(), "Thanks!");
}

#[tokio::test]
async fn a_rejected_recipient_is_permanent_with_the_servers_reply() {
    // Arrange
    let server = SmtpServer::start();
    let p = provider(server.url());

    // Act
    let bounced = send_one(&p, outgoing("msg_b", "bounce-1@example.org")).await;
    // The pooled connection is reset after a refusal and serves the next one.
    let next = send_one(&p, outgoing("msg_ok", "ada@example.org")).await;

    // Assert
    let SendOutcome::Permanent { error } = bounced else {
        panic!("a 550 is permanent, got {bounced:?}");
    };
    assert!(
        error.contains("550") && error.contains("5.1.1 user unknown"),
        "{error}"
    );
    assert!(matches!(next, SendOutcome::Accepted { .. }), "{next:?}");
    let received = server.messages();
    assert_eq!(received.len(), 1, "nothing stored for the bounce");
    assert_eq!(received[0].rcpt_tos, vec!["ada@example.org".to_string()]);
}

#[tokio::test]
async fn a_deferred_recipient_is_retryable() {
    let server = SmtpServer::start();
    let p = provider(server.url());

    let outcome = send_one(&p, outgoing("msg_d", "defer-1@example.org")).await;

    let SendOutcome::Retryable { error, .. } = outcome else {
        panic!("a 451 is retryable, got {outcome:?}");
    };
    assert!(
        error.contains("451") && error.contains("try again later"),
        "{error}"
    );
    assert!(server.messages().is_empty());
}

#[tokio::test]
async fn credentials_in_the_url_are_used() {
    // Arrange: a password that must be percent-encoded in the URL.
    let server = SmtpServer::start_with_auth("warm", "s3cret/p@ss");
    let good = provider(format!(
        "smtp://warm:s3cret%2Fp%40ss@127.0.0.1:{}",
        server.port
    ));
    let wrong = provider(format!("smtp://warm:nope@127.0.0.1:{}", server.port));
    let none = provider(server.url());

    // Act
    let accepted = send_one(&good, outgoing("msg_a1", "ada@example.org")).await;
    let refused = send_one(&wrong, outgoing("msg_a2", "ada@example.org")).await;
    let unauthenticated = send_one(&none, outgoing("msg_a3", "ada@example.org")).await;

    // Assert
    assert!(
        matches!(accepted, SendOutcome::Accepted { .. }),
        "{accepted:?}"
    );
    let received = server.messages();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].auth_login.as_deref(), Some("warm"));
    let SendOutcome::Permanent { error } = refused else {
        panic!("bad credentials (535) are permanent, got {refused:?}");
    };
    assert!(error.contains("535"), "{error}");
    assert!(!error.contains("nope"), "no credentials in errors");
    let SendOutcome::Permanent { error } = unauthenticated else {
        panic!("530 authentication required is permanent, got {unauthenticated:?}");
    };
    assert!(error.contains("530"), "{error}");
}

#[tokio::test]
async fn an_unreachable_server_is_retryable() {
    // Arrange: a port that was free a moment ago, now closed.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let p = provider(format!("smtp://127.0.0.1:{port}"));

    // Act
    let outcome = send_one(&p, outgoing("msg_x", "ada@example.org")).await;

    // Assert
    assert!(
        matches!(outcome, SendOutcome::Retryable { .. }),
        "connection refused is retried, got {outcome:?}"
    );
}

#[tokio::test]
async fn a_silent_server_times_out_as_retryable() {
    // Arrange: a server that accepts connections and never says a word.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let p =
        provider(format!("smtp://127.0.0.1:{port}")).with_send_timeout(Duration::from_millis(300));

    // Act
    let start = Instant::now();
    let outcome = send_one(&p, outgoing("msg_t", "ada@example.org")).await;

    // Assert
    let SendOutcome::Retryable { error, .. } = outcome else {
        panic!("a hung server is retried, got {outcome:?}");
    };
    assert!(error.contains("no answer"), "{error}");
    assert!(start.elapsed() < DEADLINE, "the send did not hang");
    silent.abort();
}

#[tokio::test]
async fn a_reply_that_comes_too_late_does_not_confuse_the_next_send() {
    // Arrange: the server stores `slow…` mail, then answers DATA 2 s late;
    // it refuses `reject…` mail after DATA with a 554.
    let server = SmtpServer::start();
    let p = provider(server.url()).with_send_timeout(Duration::from_millis(500));

    // Act
    let late = send_one(&p, outgoing("msg_slow", "slow-1@example.org")).await;
    // Let the cut-off send's connection go back to its pool (a spawned task
    // on this single-threaded runtime), where a reused connection would
    // still owe the late reply.
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
    let refused = send_one(&p, outgoing("msg_reject", "reject-1@example.org")).await;
    let next = send_one(&p, outgoing("msg_next", "ada@example.org")).await;

    // Assert: each send reads its own replies. On the old connection the
    // next send would first wait out the late reply (timing out in turn),
    // then read every reply one command early: the 554 taken for DATA's
    // go-ahead, a refused message reported as accepted.
    assert!(
        matches!(&late, SendOutcome::Retryable { error, .. } if error.contains("no answer")),
        "{late:?}"
    );
    assert!(
        matches!(&refused, SendOutcome::Permanent { error } if error.contains("554")),
        "{refused:?}"
    );
    assert_eq!(
        next,
        SendOutcome::Accepted {
            provider_message_id: Some("msg_next@example.com".into())
        }
    );
    let received = server.messages();
    assert_eq!(
        received.len(),
        2,
        "the slow one arrived anyway: {received:?}"
    );
    assert_eq!(received[1].rcpt_tos, vec!["ada@example.org".to_string()]);
    assert_eq!(
        received[1].header("Message-ID"),
        Some("<msg_next@example.com>")
    );
    // Why the Message-ID is deterministic: a retry of the slow one would
    // carry the same id as the copy that did arrive.
    assert_eq!(
        received[0].header("Message-ID"),
        Some("<msg_slow@example.com>")
    );
}

#[tokio::test]
async fn a_cleartext_password_to_another_host_is_refused_at_start_up() {
    let err = SmtpProvider::from_settings(&SmtpSettings {
        url: Some("smtp://warm:s3cret@mail.example.com:587".to_string().into()),
        ..Default::default()
    })
    .err()
    .expect("refused");
    let text = err.to_string();
    assert!(
        text.contains("SMTP_URL") && text.contains("tls=required"),
        "{text}"
    );
    assert!(!text.contains("s3cret"));
}

// End to end: the app built from settings (SMTP_URL) runs its dispatcher,
// which sends through the SMTP provider and records each outcome.

async fn contact_with_email(db: &DatabaseConnection, email: &str) -> i64 {
    let now = Utc::now();
    let id = contacts::Entity::insert(contacts::ActiveModel {
        email: Set(Some(email.to_string())),
        status: Set("active".into()),
        tags: Set("[]".into()),
        warmth: Set(50.0),
        metadata: Set("{}".into()),
        timezone: Set(Some("Europe/Paris".into())),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    })
    .exec(db)
    .await
    .unwrap()
    .last_insert_id;
    consents::Entity::insert(consents::ActiveModel {
        contact_id: Set(id),
        channel: Set("email".into()),
        granted: Set(true),
        source: Set("test".into()),
        recorded_at: Set(now),
        ..Default::default()
    })
    .exec(db)
    .await
    .unwrap();
    id
}

#[derive(Debug, FromQueryResult)]
struct Row {
    state: String,
    attempts: i32,
    last_error: Option<String>,
    provider_message_id: Option<String>,
    next_attempt_at: Option<chrono::DateTime<Utc>>,
}

async fn row(db: &DatabaseConnection, id: &str) -> Row {
    Row::find_by_statement(Statement::from_sql_and_values(
        db.get_database_backend(),
        "SELECT state, attempts, last_error, provider_message_id, next_attempt_at \
         FROM messages WHERE id = $1",
        [Value::from(id.to_string())],
    ))
    .one(db)
    .await
    .unwrap()
    .expect("message exists")
}

storage_test!(
    the_dispatcher_sends_through_smtp_and_records_each_outcome,
    |db: TestDb| async move {
        // Arrange
        let server = SmtpServer::start();
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        let good = contact_with_email(&db.db, &format!("ada-{suffix}@example.org")).await;
        let bounce = contact_with_email(&db.db, &format!("bounce-{suffix}@example.org")).await;
        let defer = contact_with_email(&db.db, &format!("defer-{suffix}@example.org")).await;
        let url = server.url();
        let app = spawn_app_on(db, move |s| {
            s.providers.smtp = SmtpSettings {
                url: Some(url.into()),
                ..Default::default()
            };
            s.email.from = Some("Warm Team <team@example.com>".into());
            s.caps.marketing_per_day = 1000;
            s.caps.marketing_per_week = 1000;
            // A deferral stays visibly scheduled instead of being retried
            // (and exhausted) while the test watches.
            s.dispatcher.retry_base_secs = 600.0;
            s.dispatcher.poll_interval_ms = 50;
        })
        .await;
        let db = app._db.db.clone();
        let msgs: Vec<NewMessage> = [good, bounce, defer]
            .into_iter()
            .map(|contact| NewMessage {
                source: "campaign:smtp-e2e".into(),
                campaign_id: None,
                contact_id: Some(contact),
                channel: warmline::domain::Channel::Email,
                kind: warmline::domain::MessageKind::Marketing,
                address: None,
                provider: "smtp".into(),
                payload: marketing_email(),
                template: None,
                state: MessageState::Queued,
                due_at: Utc::now(),
            })
            .collect();
        let ids: Vec<String> = msgs.iter().map(NewMessage::id).collect();

        // Act
        assert_eq!(ledger::enqueue(&db, &msgs, Utc::now()).await.unwrap(), 3);
        app.app.dispatcher.wake();
        let start = Instant::now();
        let (sent, failed, deferred) = loop {
            let rows = (
                row(&db, &ids[0]).await,
                row(&db, &ids[1]).await,
                row(&db, &ids[2]).await,
            );
            let settled = rows.0.state == "sent"
                && rows.1.state == "failed"
                && rows.2.state == "queued"
                && rows.2.attempts >= 1;
            if settled {
                break rows;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "the ledger did not settle: {rows:?}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        };

        // Assert
        assert_eq!(
            sent.provider_message_id.as_deref(),
            Some(format!("{}@example.com", ids[0]).as_str())
        );
        let received = server.messages();
        assert_eq!(received.len(), 1, "only the good address got mail");
        assert_eq!(
            received[0].rcpt_tos,
            vec![format!("ada-{suffix}@example.org")]
        );
        assert_eq!(
            received[0].header("Message-ID"),
            Some(format!("<{}@example.com>", ids[0]).as_str())
        );
        let why = failed.last_error.unwrap_or_default();
        assert!(why.contains("550") && why.contains("user unknown"), "{why}");
        assert!(
            !why.contains(&format!("bounce-{suffix}")),
            "address masked: {why}"
        );
        assert!(
            deferred.last_error.unwrap_or_default().contains("451"),
            "the deferral's reply is kept"
        );
        assert!(
            deferred.next_attempt_at.expect("a retry is scheduled") > Utc::now(),
            "the retry waits for its backoff"
        );
        app.shutdown().await.unwrap();
    }
);
