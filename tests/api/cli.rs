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
fn serve_without_slack_settings_names_the_signing_secret() {
    // Arrange
    let sandbox = Sandbox::new();

    // Act
    let out = sandbox.warmline(&["serve"]).output().unwrap();

    // Assert
    assert_one_line_error(&out, "SLACK_SIGNING_SECRET");
    assert!(
        !sandbox.path().join("warmline.db").exists(),
        "nothing is created before the settings check"
    );
}

#[test]
fn no_subcommand_means_serve() {
    // Arrange
    let sandbox = Sandbox::new();

    // Act
    let out = sandbox.warmline(&[]).output().unwrap();

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

#[test]
fn serve_starts_and_stops_cleanly_on_sigterm() {
    // Arrange
    let sandbox = Sandbox::new();
    let mut child = sandbox
        .warmline(&["serve"])
        .env("SLACK_SIGNING_SECRET", SIGNING_SECRET)
        .env("SLACK_BOT_TOKEN", BOT_TOKEN)
        .env("WARMLINE_ADDR", "127.0.0.1:0")
        .env("SLACK_API_URL", "http://127.0.0.1:9/api")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start warmline serve");
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

    // Act: wait for "listening", then SIGTERM.
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
    if !listening {
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
        panic!("warmline never said it was listening; stderr: {seen:#?}");
    }
    let killed = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    let status = match exited.recv_timeout(Duration::from_secs(30)) {
        Ok(status) => status.unwrap(),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("warmline did not stop within 30 s of SIGTERM");
        }
    };

    // Assert
    assert!(killed.success());
    let rest: Vec<String> = lines.try_iter().collect();
    assert!(
        status.success(),
        "exit {status:?}; stderr: {seen:#?} {rest:#?}"
    );
    let all = seen.join("\n") + &rest.join("\n");
    assert!(!all.contains("panicked"), "{all}");
    assert!(
        !all.contains(SIGNING_SECRET) && !all.contains(BOT_TOKEN),
        "a secret was logged: {all}"
    );
    assert!(
        sandbox.path().join("warmline.db").exists(),
        "the default SQLite database is created in the working directory"
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
