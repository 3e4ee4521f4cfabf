//! The real `warmline` binary, in a clean environment and a temporary
//! working directory: configuration errors are one line without a panic or
//! a secret; `import` prints its summary; `serve` starts, stops on SIGTERM
//! and creates its default SQLite file.

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Command, Output, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

const SIGNING_SECRET: &str = "0123456789abcdef0123456789abcdef";
const BOT_TOKEN: &str = "xoxb-1-2-abcdefabcdef";

/// A temporary working directory holding an empty config file.
struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("empty.toml"), "").unwrap();
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `warmline` with only PATH, HOME and an empty WARMLINE_CONFIG.
    fn warmline(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_warmline"));
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.path())
            .env("WARMLINE_CONFIG", self.path().join("empty.toml"))
            .current_dir(self.path())
            .stdin(Stdio::null());
        cmd
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The failure contract: non-zero exit, exactly one stderr line naming the
/// setting, no panic, no backtrace.
fn assert_one_line_error(out: &Output, setting: &str) {
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "should fail; stderr: {stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        lines.len(),
        1,
        "exactly one line on stderr, got: {stderr:?}"
    );
    assert!(lines[0].contains(setting), "names {setting}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.to_lowercase().contains("backtrace"), "{stderr}");
}

#[test]
fn serve_with_a_bot_token_but_no_signing_secret_names_the_signing_secret() {
    // Arrange: half a Slack configuration is a mistake, not a first run.
    let sandbox = Sandbox::new();

    // Act
    let out = sandbox
        .warmline(&["serve"])
        .env("SLACK_BOT_TOKEN", BOT_TOKEN)
        .output()
        .unwrap();

    // Assert
    assert_one_line_error(&out, "SLACK_SIGNING_SECRET");
    assert!(
        !sandbox.path().join("warmline.db").exists(),
        "nothing is created before the settings check"
    );
    assert!(!sandbox.path().join("warmline-sandbox.db").exists());
}

#[test]
fn no_subcommand_means_serve() {
    // Arrange
    let sandbox = Sandbox::new();

    // Act
    let out = sandbox
        .warmline(&[])
        .env("SLACK_BOT_TOKEN", BOT_TOKEN)
        .output()
        .unwrap();

    // Assert
    assert_one_line_error(&out, "SLACK_SIGNING_SECRET");
}

#[test]
fn an_invalid_value_names_its_setting() {
    // Arrange
    let sandbox = Sandbox::new();

    // Act
    let out = sandbox
        .warmline(&["serve"])
        .env("SLACK_SIGNING_SECRET", SIGNING_SECRET)
        .env("SLACK_BOT_TOKEN", BOT_TOKEN)
        .env("WARMLINE__APPROVAL__MIN_RECIPIENTS", "lots")
        .output()
        .unwrap();

    // Assert
    assert_one_line_error(&out, "approval.min_recipients");
}

#[test]
fn a_bad_bot_token_is_never_printed() {
    // Arrange
    let sandbox = Sandbox::new();
    let bad_token = "xoxp-user-token-do-not-print-8675309";

    // Act
    let out = sandbox
        .warmline(&["serve"])
        .env("SLACK_SIGNING_SECRET", SIGNING_SECRET)
        .env("SLACK_BOT_TOKEN", bad_token)
        .output()
        .unwrap();

    // Assert
    assert_one_line_error(&out, "SLACK_BOT_TOKEN");
    let all = text(&out.stdout) + &text(&out.stderr);
    assert!(!all.contains("do-not-print"), "the token leaked: {all}");
    assert!(
        !all.contains(SIGNING_SECRET),
        "the signing secret leaked: {all}"
    );
}

#[test]
fn a_short_signing_secret_is_never_printed() {
    // Arrange
    let sandbox = Sandbox::new();

    // Act
    let out = sandbox
        .warmline(&["serve"])
        .env("SLACK_SIGNING_SECRET", "shh-tiny")
        .env("SLACK_BOT_TOKEN", BOT_TOKEN)
        .output()
        .unwrap();

    // Assert
    assert_one_line_error(&out, "SLACK_SIGNING_SECRET");
    assert!(!text(&out.stderr).contains("shh-tiny"));
}

#[test]
fn import_prints_the_summary_and_rejected_lines() {
    // Arrange
    let sandbox = Sandbox::new();
    std::fs::write(
        sandbox.path().join("file.csv"),
        "email,phone,name,tags\n\
         ann@example.com,(415) 555-2671,Ann Lee,vip\n\
         broken,,Bob,\n\
         cy@example.com,,Cy,\n\
         ann@example.com,,,friends\n\
         dee@example.com,not a phone,Dee,\n",
    )
    .unwrap();
    let url = format!("sqlite://{}/w.db?mode=rwc", sandbox.path().display());

    // Act
    let out = sandbox
        .warmline(&["import", "file.csv"])
        .env("DATABASE_URL", &url)
        .output()
        .unwrap();

    // Assert
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "stdout: {stdout}\nstderr: {}",
        text(&out.stderr)
    );
    assert!(
        stdout.contains("5 rows read: 2 imported, 1 merged, 2 rejected"),
        "{stdout}"
    );
    assert!(stdout.contains("line 3: "), "{stdout}");
    assert!(stdout.contains("line 6: "), "{stdout}");
    assert!(
        !stdout.contains("line 2:") && !stdout.contains("line 4:"),
        "{stdout}"
    );
    assert!(
        sandbox.path().join("w.db").exists(),
        "DATABASE_URL was used"
    );
    assert!(
        !sandbox.path().join("warmline.db").exists(),
        "the default file was not"
    );
}

#[test]
fn import_of_a_missing_file_is_one_line() {
    // Arrange
    let sandbox = Sandbox::new();

    // Act
    let out = sandbox
        .warmline(&["import", "nope.csv"])
        .env(
            "DATABASE_URL",
            format!("sqlite://{}/w.db?mode=rwc", sandbox.path().display()),
        )
        .output()
        .unwrap();

    // Assert
    assert_one_line_error(&out, "nope.csv");
}

/// A `warmline` process that has said it is listening.
struct Running {
    pid: u32,
    lines: mpsc::Receiver<String>,
    exited: mpsc::Receiver<std::io::Result<std::process::ExitStatus>>,
    /// stderr up to and including the "listening" line.
    seen: Vec<String>,
}

impl Running {
    /// Spawns `cmd` (stderr piped) and waits up to 60 s for "listening".
    fn start(mut cmd: Command) -> Self {
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start warmline");
        let pid = child.id();
        let stderr = child.stderr.take().unwrap();
        let (lines_tx, lines) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if lines_tx.send(line).is_err() {
                    break;
                }
            }
        });
        let (exit_tx, exited) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = exit_tx.send(child.wait());
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut seen = Vec::new();
        let listening = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) => {
                    let hit = line.contains("listening");
                    seen.push(line);
                    if hit {
                        break true;
                    }
                }
                Err(_) => break false,
            }
        };
        let this = Self {
            pid,
            lines,
            exited,
            seen,
        };
        if !listening {
            this.kill();
            panic!(
                "warmline never said it was listening; stderr: {:#?}",
                this.seen
            );
        }
        this
    }

    /// The address from the "listening" line (`addr=127.0.0.1:PORT`).
    fn addr(&self) -> String {
        let line = self.seen.last().expect("the listening line");
        line.split_whitespace()
            .find_map(|w| w.strip_prefix("addr="))
            .unwrap_or_else(|| panic!("no addr= in {line}"))
            .to_string()
    }

    fn kill(&self) {
        let _ = Command::new("kill")
            .args(["-KILL", &self.pid.to_string()])
            .status();
    }

    /// SIGTERM, then the exit status and everything it logged.
    fn terminate(self) -> (std::process::ExitStatus, String) {
        let killed = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let status = match self.exited.recv_timeout(Duration::from_secs(30)) {
            Ok(status) => status.unwrap(),
            Err(_) => {
                self.kill();
                panic!("warmline did not stop within 30 s of SIGTERM");
            }
        };
        let rest: Vec<String> = self.lines.try_iter().collect();
        (status, self.seen.join("\n") + "\n" + &rest.join("\n"))
    }
}

#[test]
fn serve_starts_and_stops_cleanly_on_sigterm() {
    // Arrange
    let sandbox = Sandbox::new();
    let mut cmd = sandbox.warmline(&["serve"]);
    cmd.env("SLACK_SIGNING_SECRET", SIGNING_SECRET)
        .env("SLACK_BOT_TOKEN", BOT_TOKEN)
        .env("WARMLINE_ADDR", "127.0.0.1:0")
        .env("SLACK_API_URL", "http://127.0.0.1:9/api");
    let running = Running::start(cmd);

    // Act
    let (status, all) = running.terminate();

    // Assert
    assert!(status.success(), "exit {status:?}; stderr: {all}");
    assert!(!all.contains("panicked"), "{all}");
    assert!(!all.contains("sandbox mode"), "{all}");
    assert!(
        !all.contains(SIGNING_SECRET) && !all.contains(BOT_TOKEN),
        "a secret was logged: {all}"
    );
    assert!(
        sandbox.path().join("warmline.db").exists(),
        "the default SQLite database is created in the working directory"
    );
}

#[tokio::test]
async fn serve_without_slack_credentials_starts_the_sandbox() {
    // Arrange: a fresh machine: nothing configured at all.
    crate::helpers::init_test_process();
    let sandbox = Sandbox::new();
    let mut cmd = sandbox.warmline(&["serve"]);
    cmd.env("WARMLINE_ADDR", "127.0.0.1:0");
    let running = Running::start(cmd);
    let base = format!("http://{}", running.addr());
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let state = |http: reqwest::Client| {
        let url = format!("{base}/sandbox/api/state?user=U0SBREQ");
        async move {
            http.get(url)
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }
    };

    // Act
    let page = http.get(format!("{base}/")).send().await.unwrap();
    let page_status = page.status();
    let page = page.text().await.unwrap();
    let before = state(http.clone()).await;
    let advanced = http
        .post(format!("{base}/sandbox/api/clock"))
        .json(&serde_json::json!({"advance_secs": 86_400}))
        .send()
        .await
        .unwrap();
    let advanced_status = advanced.status();
    let after = state(http.clone()).await;
    let (status, all) = running.terminate();

    // Assert
    assert_eq!(page_status, 200);
    assert!(page.contains("Sandbox — nothing is sent"));
    assert_eq!(advanced_status, 200);
    let at = |s: &serde_json::Value| {
        chrono::DateTime::parse_from_rfc3339(s["now"].as_str().unwrap()).unwrap()
    };
    assert!(
        at(&after) - at(&before) >= chrono::Duration::days(1),
        "the clock moved a day: {} → {}",
        before["now"],
        after["now"]
    );
    assert_eq!(after["clock_offset_secs"], 86_400);
    assert!(status.success(), "exit {status:?}; stderr: {all}");
    assert!(all.contains("sandbox mode"), "one line says so: {all}");
    assert!(
        all.contains("SLACK_BOT_TOKEN"),
        "and how to connect Slack: {all}"
    );
    assert!(!all.contains("panicked"), "{all}");
    assert!(
        sandbox.path().join("warmline-sandbox.db").exists(),
        "the sandbox keeps its own database file"
    );
    assert!(
        !sandbox.path().join("warmline.db").exists(),
        "the sandbox never opens the real database"
    );
}

#[test]
fn a_malformed_address_names_warmline_addr() {
    // Arrange
    let sandbox = Sandbox::new();

    // Act
    let out = sandbox
        .warmline(&["serve"])
        .env("SLACK_SIGNING_SECRET", SIGNING_SECRET)
        .env("SLACK_BOT_TOKEN", BOT_TOKEN)
        .env("WARMLINE_ADDR", "nonsense")
        .output()
        .unwrap();

    // Assert
    assert_one_line_error(&out, "WARMLINE_ADDR");
}

#[test]
fn a_broken_config_file_is_one_line_without_its_contents() {
    // Arrange: an unterminated string holding a secret.
    let sandbox = Sandbox::new();
    let config = sandbox.path().join("broken.toml");
    std::fs::write(
        &config,
        "[slack]\nbot_token = \"xoxb-9-9-keep-this-private\n",
    )
    .unwrap();

    // Act
    let out = sandbox
        .warmline(&["manifest"])
        .env("WARMLINE_CONFIG", &config)
        .output()
        .unwrap();

    // Assert
    assert_one_line_error(&out, "broken.toml");
    assert!(
        !text(&out.stderr).contains("keep-this-private"),
        "{}",
        text(&out.stderr)
    );
    assert!(text(&out.stdout).is_empty());
}

#[test]
fn a_non_database_url_is_refused_without_echoing_it() {
    // Arrange
    let sandbox = Sandbox::new();

    // Act
    let out = sandbox
        .warmline(&["import", "x.csv"])
        .env("DATABASE_URL", "mysql://user:hunter2@db.example.com/crm")
        .output()
        .unwrap();

    // Assert
    assert_one_line_error(&out, "DATABASE_URL");
    assert!(!text(&out.stderr).contains("hunter2"));
}
