//! The doctor's SPF, DKIM and DMARC rows read from a real DNS server on
//! loopback ([`FakeDns`]), good zones and broken ones, and a server that
//! fails or never answers.

use std::num::NonZeroU64;

use warmline::{
    doctor::{
        Check,
        sender_auth::{self, Nameserver},
    },
    settings::Settings,
};

use crate::fake_dns::FakeDns;

/// SPF, a DKIM key under the selector `s1` split over two strings, and
/// DMARC: everything in order for a domain sending over SMTP.
pub const GOOD: &str = r#"
@ IN TXT "google-site-verification=abc123"
@ IN TXT "v=spf1 ip4:192.0.2.0/24 -all"
s1._domainkey IN TXT "v=DKIM1; k=ed25519; " "p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
_dmarc IN TXT "v=DMARC1; p=quarantine; rua=mailto:dmarc@good.test"
"#;

/// Settings pointing the resolver at `dns`, sending as `from` over SMTP
/// with the DKIM selector `s1`.
pub fn settings(dns: &FakeDns, from: &str) -> Settings {
    let mut s = Settings::default();
    s.email.from = Some(from.into());
    s.email.dkim_selector = Some("s1".into());
    s.dns.nameserver = Some(Nameserver(dns.addr));
    s
}

async fn rows(settings: &Settings, provider: &str) -> Vec<Check> {
    let checks = sender_auth::run(settings, provider).await;
    assert_eq!(
        checks.iter().map(|c| c.item).collect::<Vec<_>>(),
        [sender_auth::SPF, sender_auth::DKIM, sender_auth::DMARC]
    );
    checks
}

/// The zone `good.test` holding `records`.
async fn serve(records: &str) -> FakeDns {
    FakeDns::serve("good.test", records).await
}

#[tokio::test]
async fn good_records_pass_all_three_rows() {
    // Arrange
    let dns = serve(GOOD).await;

    // Act
    let checks = rows(&settings(&dns, "Team <team@good.test>"), "smtp").await;

    // Assert
    assert!(checks.iter().all(|c| c.passed && !c.warning), "{checks:#?}");
    assert_eq!(
        checks[0].line(),
        "✅ email · SPF record: one SPF record at good.test ending in -all: `v=spf1 ip4:192.0.2.0/24 -all`"
    );
    assert_eq!(
        checks[1].reason,
        "a DKIM public key is published at s1._domainkey.good.test"
    );
    assert_eq!(
        checks[2].reason,
        "_dmarc.good.test: p=quarantine, reports to mailto:dmarc@good.test"
    );
}

#[tokio::test]
async fn resend_is_read_on_its_return_path_and_its_own_selector() {
    // Arrange: Resend's records, nothing at the apex or under `s1`.
    let dns = serve(
        r#"
send IN TXT "v=spf1 include:amazonses.com ~all"
resend._domainkey IN TXT "p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
_dmarc IN TXT "v=DMARC1; p=none; rua=mailto:dmarc@good.test"
"#,
    )
    .await;

    // Act
    let checks = rows(&settings(&dns, "team@good.test"), "resend").await;

    // Assert
    assert!(checks.iter().all(|c| c.passed), "{checks:#?}");
    assert!(
        checks[0].reason.contains("send.good.test ending in ~all"),
        "{checks:?}"
    );
    assert!(
        checks[1].reason.contains("resend._domainkey.good.test"),
        "{checks:?}"
    );
    assert!(
        checks[2].reason.contains("p=none only monitors"),
        "{checks:?}"
    );
}

#[tokio::test]
async fn spf_plus_all_fails() {
    let dns = serve(&GOOD.replace("ip4:192.0.2.0/24 -all", "+all")).await;

    let checks = rows(&settings(&dns, "team@good.test"), "smtp").await;

    let c = &checks[0];
    assert!(!c.passed, "{c:?}");
    assert!(
        c.reason.starts_with(
            "good.test ends in +all, which lets any server on the internet send as good.test"
        ),
        "{c:?}"
    );
    assert!(checks[1].passed && checks[2].passed, "{checks:?}");
}

#[tokio::test]
async fn spf_neutral_all_is_a_warning_not_a_failure() {
    let dns = serve(&GOOD.replace("-all", "?all")).await;

    let checks = rows(&settings(&dns, "team@good.test"), "smtp").await;

    let c = &checks[0];
    assert!(c.passed && c.warning, "{c:?}");
    assert!(
        c.line()
            .starts_with("⚠️ email · SPF record: good.test ends in ?all")
    );
}

#[tokio::test]
async fn two_spf_records_fail_as_a_permanent_error() {
    let dns = serve(&format!(
        "{GOOD}\n@ IN TXT \"v=spf1 include:_spf.google.com ~all\""
    ))
    .await;

    let checks = rows(&settings(&dns, "team@good.test"), "smtp").await;

    let c = &checks[0];
    assert!(!c.passed, "{c:?}");
    assert!(
        c.reason.starts_with(
            "2 SPF records at good.test: receivers treat more than one as a permanent error"
        ),
        "{c:?}"
    );
}

#[tokio::test]
async fn no_spf_record_fails_naming_the_bulk_sender_rules() {
    let dns = serve(&GOOD.replace("@ IN TXT \"v=spf1 ip4:192.0.2.0/24 -all\"", "")).await;

    let checks = rows(&settings(&dns, "team@good.test"), "smtp").await;

    let c = &checks[0];
    assert!(!c.passed, "{c:?}");
    assert!(c.reason.starts_with("no SPF record"), "{c:?}");
    assert!(c.reason.contains("Gmail and Yahoo require"), "{c:?}");
}

#[tokio::test]
async fn no_dkim_key_fails() {
    let dns = serve(&GOOD.replace("s1._domainkey", "s2._domainkey")).await;

    let checks = rows(&settings(&dns, "team@good.test"), "smtp").await;

    let c = &checks[1];
    assert!(!c.passed, "{c:?}");
    assert!(
        c.reason
            .starts_with("no DKIM key at s1._domainkey.good.test"),
        "{c:?}"
    );
    assert!(c.reason.contains("Gmail and Yahoo require"), "{c:?}");
}

#[tokio::test]
async fn a_revoked_dkim_key_fails() {
    let dns = serve(&GOOD.replace(
        r#""v=DKIM1; k=ed25519; " "p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=""#,
        r#""v=DKIM1; k=rsa; p=""#,
    ))
    .await;

    let checks = rows(&settings(&dns, "team@good.test"), "smtp").await;

    let c = &checks[1];
    assert!(!c.passed, "{c:?}");
    assert!(
        c.reason
            .starts_with("the DKIM key at s1._domainkey.good.test is revoked (empty p=)"),
        "{c:?}"
    );
}

#[tokio::test]
async fn smtp_without_a_selector_says_to_configure_it() {
    let dns = serve(GOOD).await;
    let mut s = settings(&dns, "team@good.test");
    s.email.dkim_selector = None;

    let checks = rows(&s, "smtp").await;

    let c = &checks[1];
    assert!(!c.passed, "{c:?}");
    assert!(
        c.reason
            .contains("set email.dkim_selector (WARMLINE__EMAIL__DKIM_SELECTOR)"),
        "{c:?}"
    );
    assert!(checks[0].passed && checks[2].passed, "{checks:?}");
}

#[tokio::test]
async fn dmarc_without_rua_fails() {
    let dns = serve(&GOOD.replace("; rua=mailto:dmarc@good.test", "")).await;

    let checks = rows(&settings(&dns, "team@good.test"), "smtp").await;

    let c = &checks[2];
    assert!(!c.passed, "{c:?}");
    assert!(
        c.reason
            .starts_with("the DMARC record at _dmarc.good.test has no rua= tag"),
        "{c:?}"
    );
    assert!(c.reason.contains("Gmail and Yahoo require"), "{c:?}");
}

#[tokio::test]
async fn no_dmarc_record_fails() {
    let dns = serve(&GOOD.replace("_dmarc IN TXT", "_dmarc-old IN TXT")).await;

    let checks = rows(&settings(&dns, "team@good.test"), "smtp").await;

    let c = &checks[2];
    assert!(!c.passed, "{c:?}");
    assert!(c.reason.starts_with("no DMARC record"), "{c:?}");
    assert!(
        c.reason
            .contains("Gmail and Yahoo require SPF, DKIM and DMARC"),
        "{c:?}"
    );
}

#[tokio::test]
async fn a_subdomain_sender_inherits_the_parent_dmarc_policy() {
    // Arrange: mail from news.good.test; its key and SPF on the subdomain,
    // DMARC only at the parent.
    let dns = serve(&format!(
        "{GOOD}\nnews IN TXT \"v=spf1 -all\"\ns1._domainkey.news IN TXT \"p=MIGfMA0G\""
    ))
    .await;

    // Act
    let checks = rows(&settings(&dns, "team@news.good.test"), "smtp").await;

    // Assert
    assert!(checks.iter().all(|c| c.passed), "{checks:#?}");
    assert!(
        checks[2]
            .reason
            .starts_with("news.good.test inherits the policy of _dmarc.good.test: p=quarantine"),
        "{checks:?}"
    );
}

#[tokio::test]
async fn servfail_is_could_not_check_not_a_pass_nor_missing() {
    // Arrange
    let dns = FakeDns::servfail().await;

    // Act
    let checks = rows(&settings(&dns, "team@good.test"), "smtp").await;

    // Assert
    for c in &checks {
        assert!(!c.passed, "{c:?}");
        assert!(c.reason.starts_with("could not check "), "{c:?}");
        assert!(c.reason.contains("not a missing record"), "{c:?}");
    }
}

#[tokio::test]
async fn a_server_outside_its_zone_refuses_and_that_is_could_not_check() {
    let dns = serve(GOOD).await;

    let checks = rows(&settings(&dns, "team@elsewhere.test"), "smtp").await;

    for c in &checks {
        assert!(
            !c.passed && c.reason.starts_with("could not check "),
            "{c:?}"
        );
    }
}

#[tokio::test]
async fn a_server_that_never_answers_is_could_not_check_within_the_timeout() {
    // Arrange
    let dns = FakeDns::silent().await;
    let mut s = settings(&dns, "team@good.test");
    s.dns.timeout_ms = NonZeroU64::new(200).unwrap();

    // Act
    let started = std::time::Instant::now();
    let checks = rows(&s, "smtp").await;

    // Assert: the three lookups ran side by side, each bounded.
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    for c in &checks {
        assert!(
            !c.passed && c.reason.starts_with("could not check "),
            "{c:?}"
        );
    }
}

#[tokio::test]
async fn no_sender_set_fails_all_three_rows_without_asking_dns() {
    let dns = FakeDns::silent().await;
    let mut s = settings(&dns, "x@good.test");
    s.email.from = None;

    let checks = rows(&s, "smtp").await;

    for c in &checks {
        assert!(
            !c.passed && c.reason.starts_with("WARMLINE_EMAIL_FROM is not set"),
            "{c:?}"
        );
    }
}
