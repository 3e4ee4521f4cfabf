//! The compliance doctor: `/warm doctor` through a signed slash command,
//! and `warmline doctor` as a real process (lines on stdout, exit 1 when a
//! check fails). The sender domain's SPF, DKIM and DMARC rows are read from
//! a real DNS server on loopback ([`FakeDns`]).

use std::process::{Command, Stdio};

use chrono::{Duration, Utc};
use sea_orm::{ConnectionTrait, Statement, Value};
use serde_json::Value as Json;
use warmline::providers::{resend::settings::ResendSettings, smtp::settings::SmtpSettings};

use crate::{
    fake_dns::FakeDns,
    helpers::{TestApp, USER, spawn_app_on, spawn_app_with},
    sender_auth::GOOD,
    storage_test,
    test_db::TestDb,
};

/// SMTP for email, an https public URL, approvers and an approvals channel,
/// a sender whose domain publishes SPF, DKIM and DMARC: everything the
/// checklist asks for. The DNS server lives as long as the app is used.
async fn healthy_app(db: TestDb) -> (TestApp, FakeDns) {
    app_with_zone(db, GOOD).await
}

/// The healthy app, its sender domain serving `zone`.
async fn app_with_zone(db: TestDb, zone: &str) -> (TestApp, FakeDns) {
    let dns = FakeDns::serve("good.test", zone).await;
    let nameserver = dns.addr;
    let app = spawn_app_on(db, |s| {
        s.providers.smtp = SmtpSettings {
            url: Some("smtp://127.0.0.1:2525".to_string().into()),
            ..Default::default()
        };
        s.server.public_url = Some("https://warmline.example.org/".parse().unwrap());
        s.slack.approvers = vec![USER.into()];
        s.slack.approvals_channel = Some("C0APPROVALS".into());
        s.email.from = Some("Team <team@good.test>".into());
        s.email.dkim_selector = Some("s1".into());
        s.dns.nameserver = Some(warmline::doctor::sender_auth::Nameserver(nameserver));
    })
    .await;
    (app, dns)
}

async fn doctor(app: &TestApp) -> Json {
    let res = app.post_command("doctor").await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

storage_test!(
    warm_doctor_passes_a_compliant_setup_line_by_line,
    |db: TestDb| async move {
        // Arrange
        let (app, _dns) = healthy_app(db).await;

        // Act
        let r = doctor(&app).await;

        // Assert
        assert_eq!(r["response_type"], "ephemeral");
        let text = r["text"].as_str().unwrap();
        let blocks = r["blocks"].to_string();
        assert!(text.contains("0 failed"), "{text}");
        for item in [
            "consent tracking",
            "unsubscribe path",
            "opt-out keywords",
            "rate limits",
            "approval gate on bulk sends",
            "webhook secret and last verified event",
            "hard bounce rate",
            "spam complaint rate",
            "SPF record",
            "DKIM record",
            "DMARC record",
        ] {
            assert!(
                text.contains(&format!("✅ email · {item}")),
                "{item}: {text}"
            );
            assert!(blocks.contains(item), "{item} missing from the blocks");
        }
        assert!(text.contains("not applicable to smtp"), "{text}");
        assert!(!blocks.contains(":x:"), "{blocks}");
    }
);

/// One message in the delivery ledger, accepted `days_ago`.
async fn sent(app: &TestApp, n: usize, state: &str, days_ago: i64) {
    let db = &app.app.db;
    let at = Utc::now() - Duration::days(days_ago);
    for i in 0..n {
        db.execute_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            "INSERT INTO messages (id, channel, kind, state, provider, payload, created_at, updated_at, sent_at) \
             VALUES ($1, 'email', 'marketing', $2, 'smtp', '{}', $3, $3, $3)",
            [
                Value::from(format!("m-{state}-{days_ago}-{i}")),
                Value::from(state),
                Value::from(at),
            ],
        ))
        .await
        .unwrap();
    }
}

storage_test!(
    warm_doctor_judges_the_last_30_days_of_the_ledger,
    |db: TestDb| async move {
        // Arrange: 100 sends in the window, 3 hard bounces and 1 complaint;
        // older bounces fall outside it.
        let (app, _dns) = healthy_app(db).await;
        sent(&app, 96, "delivered", 1).await;
        sent(&app, 3, "bounced", 2).await;
        sent(&app, 1, "complained", 3).await;
        sent(&app, 20, "bounced", 45).await;
        sent(&app, 5, "queued", 0).await;

        // Act
        let r = doctor(&app).await;

        // Assert
        let text = r["text"].as_str().unwrap();
        assert!(
            text.contains("❌ email · hard bounce rate: 3.00% (3 of 100 sends over 30 days), over the target below 2%"),
            "{text}"
        );
        assert!(
            text.contains("❌ email · spam complaint rate: 1.00% (1 of 100 sends"),
            "{text}"
        );
    }
);

#[tokio::test]
async fn warm_doctor_fails_lines_with_their_reason() {
    // Arrange: Resend without a webhook secret, no approvers, no public URL.
    let app = spawn_app_with(|s| {
        s.providers.resend = ResendSettings {
            api_key: Some("re_test_key".to_string().into()),
            ..Default::default()
        };
    })
    .await;

    // Act
    let r = doctor(&app).await;

    // Assert
    let text = r["text"].as_str().unwrap();
    assert!(
        text.contains("❌ email · webhook secret and last verified event: resend: no webhook secret (set RESEND_WEBHOOK_SECRET)"),
        "{text}"
    );
    assert!(
        text.contains("❌ email · approval gate on bulk sends"),
        "{text}"
    );
    assert!(text.contains("WARMLINE_APPROVERS"), "{text}");
    assert!(
        text.contains("❌ email · unsubscribe path: WARMLINE_PUBLIC_URL is not set"),
        "{text}"
    );
    assert!(text.contains("✅ email · consent tracking"), "{text}");
    assert!(
        text.contains("❌ email · SPF record: WARMLINE_EMAIL_FROM is not set"),
        "{text}"
    );
    assert!(r["blocks"].to_string().contains(":x:"));
}

storage_test!(
    warm_doctor_shows_the_sender_domain_rows_from_dns,
    |db: TestDb| async move {
        // Arrange: SPF ends in ?all and there is no DMARC record.
        let zone = GOOD
            .replace("-all", "?all")
            .replace("_dmarc IN TXT", "_dmarc-old IN TXT");
        let (app, _dns) = app_with_zone(db, &zone).await;

        // Act
        let r = doctor(&app).await;

        // Assert
        let text = r["text"].as_str().unwrap();
        let blocks = r["blocks"].to_string();
        assert!(
            text.contains("⚠️ email · SPF record: good.test ends in ?all"),
            "{text}"
        );
        assert!(text.contains("✅ email · DKIM record"), "{text}");
        assert!(
            text.contains("❌ email · DMARC record: no DMARC record"),
            "{text}"
        );
        assert!(blocks.contains(":warning: *SPF record*"), "{blocks}");
        assert!(blocks.contains(":x: *DMARC record*"), "{blocks}");
        // The ten email rows, and one "not configured" row for each of
        // WhatsApp and Instagram.
        assert!(text.contains("12 passed, 1 failed"), "{text}");
    }
);

#[tokio::test]
async fn warm_doctor_without_any_provider_says_what_to_set() {
    let app = spawn_app_with(|_| {}).await;
    let r = doctor(&app).await;
    let text = r["text"].as_str().unwrap();
    assert!(text.contains("❌ all · providers configured"), "{text}");
    assert!(text.contains("SMTP_URL"), "{text}");
}

/// `warmline doctor` in a clean environment and a temporary directory.
fn warmline_doctor(dir: &std::path::Path, env: &[(&str, &str)]) -> std::process::Output {
    doctor_command(dir, env).output().expect("warmline runs")
}

fn doctor_command(dir: &std::path::Path, env: &[(&str, &str)]) -> Command {
    std::fs::write(dir.join("empty.toml"), "").unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_warmline"));
    cmd.arg("doctor")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("WARMLINE_CONFIG", dir.join("empty.toml"))
        .current_dir(dir)
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

#[tokio::test]
async fn the_cli_prints_every_line_and_exits_zero_when_all_pass() {
    // Arrange: the sender domain's records on a DNS server on loopback.
    let dir = tempfile::tempdir().unwrap();
    let dns = FakeDns::serve("good.test", GOOD).await;

    // Act: awaited, so this runtime keeps answering the process's lookups.
    let out = tokio::process::Command::from(doctor_command(
        dir.path(),
        &[
            ("SMTP_URL", "smtp://127.0.0.1:2525"),
            ("WARMLINE_PUBLIC_URL", "https://warmline.example.org"),
            ("WARMLINE_APPROVERS", "U0001"),
            ("WARMLINE_APPROVALS_CHANNEL", "C0001"),
            ("WARMLINE_EMAIL_FROM", "Team <team@good.test>"),
            ("WARMLINE__EMAIL__DKIM_SELECTOR", "s1"),
            ("WARMLINE__DNS__NAMESERVER", &dns.nameserver()),
        ],
    ))
    .output()
    .await
    .expect("warmline runs");

    // Assert
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.lines().count(), 13, "{stdout}");
    assert!(
        stdout.lines().all(|l| l.starts_with("✅ email · ")
            || l.starts_with("✅ whatsapp · providers configured: not configured")
            || l.starts_with("✅ instagram · providers configured: not configured")),
        "{stdout}"
    );
    let last: Vec<&str> = stdout.lines().skip(8).take(3).collect();
    assert_eq!(
        last,
        [
            "✅ email · SPF record: one SPF record at good.test ending in -all: `v=spf1 ip4:192.0.2.0/24 -all`",
            "✅ email · DKIM record: a DKIM public key is published at s1._domainkey.good.test",
            "✅ email · DMARC record: _dmarc.good.test: p=quarantine, reports to mailto:dmarc@good.test",
        ]
    );
}

#[tokio::test]
async fn the_cli_fails_on_a_dns_server_that_cannot_answer() {
    // Arrange
    let dir = tempfile::tempdir().unwrap();
    let dns = FakeDns::servfail().await;

    // Act
    let out = tokio::process::Command::from(doctor_command(
        dir.path(),
        &[
            ("SMTP_URL", "smtp://127.0.0.1:2525"),
            ("WARMLINE_EMAIL_FROM", "team@good.test"),
            ("WARMLINE__EMAIL__DKIM_SELECTOR", "s1"),
            ("WARMLINE__DNS__NAMESERVER", &dns.nameserver()),
        ],
    ))
    .output()
    .await
    .expect("warmline runs");

    // Assert
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    for (item, name) in [
        ("SPF record", "good.test"),
        ("DKIM record", "s1._domainkey.good.test"),
        ("DMARC record", "_dmarc.good.test"),
    ] {
        assert!(
            stdout.contains(&format!("❌ email · {item}: could not check {name}: ")),
            "{item}: {stdout}"
        );
    }
}

#[test]
fn the_cli_exits_one_when_a_check_fails() {
    // Arrange
    let dir = tempfile::tempdir().unwrap();

    // Act
    let out = warmline_doctor(dir.path(), &[("SMTP_URL", "smtp://127.0.0.1:2525")]);

    // Assert
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    assert!(
        stdout.contains("❌ email · approval gate on bulk sends"),
        "{stdout}"
    );
    assert!(stdout.contains("❌ email · unsubscribe path"), "{stdout}");
    assert!(stderr.contains("compliance checks failed"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
