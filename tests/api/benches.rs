//! Small runs of the benchmarks, as correctness tests only: the figures
//! that matter come from `warmline bench …` and live in docs/benchmarks.md.
//! Nothing here asserts on time.

use crate::test_db::{postgres_base_url, report_pg_skipped};

#[tokio::test]
async fn slack_ack_bench_answers_every_request() {
    // Arrange / Act
    let r = warmline::bench::slack_ack::run(150, 8, true).await.unwrap();

    // Assert: every request acknowledged, every event and click acted on.
    assert_eq!(r.latencies.len(), 150);
    assert_eq!(r.non_2xx, 0);
    assert_eq!(
        r.publishes, 100,
        "50 events and 50 Refresh clicks each publish once"
    );
}

/// One one-click POST per contact: every answer 200, every contact's
/// current email consent a one-click revocation afterwards.
#[tokio::test]
async fn unsubscribe_bench_revokes_every_contact() {
    let r = warmline::bench::unsubscribe::run(20, 4, None)
        .await
        .unwrap();
    assert_eq!(r.latencies.len(), 20, "{r}");
    assert_eq!(r.non_200, 0, "{r}");
    assert_eq!(r.revoked, 20, "{r}");
    assert_eq!(r.not_revoked, 0, "{r}");
    assert!(r.is_correct(), "{r}");
}

#[tokio::test]
async fn dispatch_throughput_bench_sends_each_message_once_on_sqlite() {
    let r = warmline::bench::dispatch::throughput(2_000, 2, None)
        .await
        .unwrap();
    assert_eq!(r.sent, 2_000);
    assert_eq!(r.duplicates, 0);
}

#[tokio::test]
async fn dispatch_throughput_bench_sends_each_message_once_on_postgres() {
    let Some(url) = postgres_base_url() else {
        return report_pg_skipped(
            "benches::dispatch_throughput_bench_sends_each_message_once_on_postgres",
        );
    };
    let r = warmline::bench::dispatch::throughput(2_000, 2, Some(&url))
        .await
        .unwrap();
    assert_eq!(r.sent, 2_000);
    assert_eq!(r.duplicates, 0);
}

/// 500 emails at 2 requests/s in batches of 100: five requests, about 2 s.
#[tokio::test]
async fn email_bench_sends_each_email_once_without_a_429() {
    let r = warmline::bench::email::run(500, 2, 100, None)
        .await
        .unwrap();
    assert!(r.is_clean(), "{r}");
    assert_eq!(r.requests, 5, "{r}");
    assert!(r.max_in_any_second <= 2, "{r}");
}

#[tokio::test]
async fn dispatch_latency_bench_delivers_every_sample() {
    let r = warmline::bench::dispatch::latency(20, None).await.unwrap();
    assert_eq!(r.samples.len(), 20);
}

/// 300 messages at 10 requests/s (5 a request): about six seconds.
async fn assert_rate_holds(instances: usize, pg_url: Option<&str>) {
    // Headroom for a busy CI machine (see `rate_with_headroom`); the
    // benchmark figures in docs/benchmarks.md use the default.
    let r =
        warmline::bench::dispatch::rate_with_headroom(300, 10, 5, instances, pg_url, Some(0.85))
            .await
            .unwrap();
    assert_eq!(r.sent, 300);
    assert!(r.max_in_any_second <= 10, "{r}");
    assert_eq!(r.rate_limited, 0, "{r}");
}

#[tokio::test]
async fn rate_bench_never_exceeds_the_limit() {
    assert_rate_holds(1, None).await;
}

#[tokio::test]
async fn rate_bench_holds_across_two_dispatchers_on_postgres() {
    let Some(url) = postgres_base_url() else {
        return report_pg_skipped("benches::rate_bench_holds_across_two_dispatchers_on_postgres");
    };
    assert_rate_holds(2, Some(&url)).await;
}

/// kill -9 of the real binary mid-campaign: nothing lost, nothing twice.
#[tokio::test]
async fn crash_bench_loses_nothing_and_sends_nothing_twice() {
    let binary = std::path::PathBuf::from(env!("CARGO_BIN_EXE_warmline"));
    for idempotent in [true, false] {
        let r = warmline::bench::crash::run(binary.clone(), 6, 150, idempotent, None)
            .await
            .unwrap();
        assert!(r.is_clean(), "{r}");
        assert_eq!(r.sent + r.ambiguous, r.messages as i64, "{r}");
        if idempotent {
            assert_eq!(r.ambiguous, 0, "{r}");
        }
    }
}

/// 60 texts at 20 MPS through the Twilio provider to the fake Twilio:
/// every text once, no one-second window over the limit, no 20429.
#[tokio::test]
async fn sms_bench_sends_each_text_once_within_the_mps() {
    // Arrange / Act: headroom for a busy CI machine, as the rate bench's
    // small run; the figures in docs/benchmarks.md use the default.
    let r = warmline::bench::sms::run(60, 20, None, Some(0.85))
        .await
        .unwrap();

    // Assert
    assert!(r.is_correct(), "{r}");
    assert_eq!(r.delivered, 60, "{r}");
    assert_eq!(r.duplicates, 0, "{r}");
    assert_eq!(r.sent, 60, "{r}");
    assert!(r.max_in_any_second <= 20, "{r}");
    assert!(r.windows.iter().all(|w| *w <= 20), "{r}");
    assert_eq!(r.rate_limited, 0, "{r}");
}

/// 60 WhatsApp templates at 20/s to 20 people (3 each) through the
/// WhatsApp provider to the fake Graph API: each once, no second over the
/// rate, no 130429 or 131056, no two to one person within 6 s.
#[tokio::test]
async fn whatsapp_bench_sends_each_template_once_within_rate_and_pair_spacing() {
    // Arrange / Act
    let r = warmline::bench::whatsapp::run(60, 20, 20, None, Some(0.85))
        .await
        .unwrap();

    // Assert
    assert!(r.is_correct(), "{r}");
    assert_eq!((r.delivered, r.duplicates, r.strangers), (60, 0, 0), "{r}");
    assert_eq!(r.sent, 60, "{r}");
    assert!(r.max_in_any_second <= 20, "{r}");
    assert_eq!((r.throttled, r.pair_limited), (0, 0), "{r}");
    assert!(
        r.min_pair_spacing.unwrap() >= std::time::Duration::from_secs(6),
        "{r}"
    );
}

/// kill -9 of the real binary while it texts through Twilio (no key):
/// nothing lost, nothing twice, every crash-window text `ambiguous`.
#[tokio::test]
async fn sms_crash_bench_loses_nothing_and_sends_nothing_twice() {
    // Arrange
    let binary = std::path::PathBuf::from(env!("CARGO_BIN_EXE_warmline"));
    let sink =
        warmline::bench::crash::Sink::for_channel(warmline::bench::crash::CrashChannel::Sms, false)
            .unwrap();

    // Act
    let r = warmline::bench::crash::run_with(binary, sink, 5, 150, None)
        .await
        .unwrap();

    // Assert: each text either sent or ambiguous (none lost, none twice,
    // none the fake created that the ledger cannot account for).
    assert!(r.is_clean(), "{r}");
    assert_eq!(r.sent + r.ambiguous, r.messages as i64, "{r}");
    assert_eq!(r.duplicates, 0, "{r}");
    assert_eq!(r.unaccounted, 0, "{r}");
    assert_eq!(r.replays, 0, "Twilio takes no key: {r}");
}

#[test]
fn the_sms_crash_bench_refuses_idempotency_keys() {
    let e =
        warmline::bench::crash::Sink::for_channel(warmline::bench::crash::CrashChannel::Sms, true)
            .unwrap_err();
    assert!(e.to_string().contains("--no-idempotency"), "{e}");
}

/// A small warmth decay pass: every contact scored on the first pass,
/// nothing rewritten at the same time, every interaction read.
async fn assert_warmth_pass(pg_url: Option<&str>) {
    let r = warmline::bench::warmth::run(300, 3_000, pg_url)
        .await
        .unwrap();
    assert_eq!(r.first.contacts, 300, "{r}");
    assert_eq!(r.first.updated, 300, "{r}");
    assert_eq!(r.first.interactions, 3_000, "{r}");
    assert_eq!(r.unchanged.updated, 0, "{r}");
    assert!(r.unchanged.crossings.is_empty(), "{r}");
    assert!(r.next_day.updated > 0, "{r}");
}

#[tokio::test]
async fn warmth_bench_scores_every_contact_on_sqlite() {
    assert_warmth_pass(None).await;
}

#[tokio::test]
async fn warmth_bench_scores_every_contact_on_postgres() {
    let Some(url) = postgres_base_url() else {
        return report_pg_skipped("benches::warmth_bench_scores_every_contact_on_postgres");
    };
    assert_warmth_pass(Some(&url)).await;
}
