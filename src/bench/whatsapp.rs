//! `warmline bench whatsapp`: N WhatsApp template messages through the
//! real dispatcher (fresh database, last-moment checks, ledger) and the
//! WhatsApp provider built from `[providers.whatsapp]` and `[meta]` as
//! `serve` builds it, to the fake Graph API on loopback enforcing the same
//! throughput (130429 past it) and Meta's pair rate limit (131056). Target
//! (issue 15): 2,000 templates at 80/s.
//!
//! Recipients get several messages each (`recipients` × N/recipients), so
//! the per-recipient spacing (one message per person every 6 s) is
//! exercised: with R recipients the 6-s pair limit caps the rate at R/6
//! per second (a little less: a person's next slot starts 6 s after Meta
//! answered), so R must exceed 6 × rate (480 at 80/s) for the rate to be
//! reachable at all; the default, 800 people getting 2 or 3 each, leaves
//! room.
//!
//! It is clean when:
//! - no one-second window holds more than `rate` accepted requests (the
//!   sliding maximum) and the fake refused none (no 130429, no 131056);
//! - the achieved rate, requests over the span from the first to the last,
//!   is at least 98 % of `rate`;
//! - no two messages to one recipient arrived closer than 6 s;
//! - every message reached the fake exactly once (its accepted log
//!   reconciled with the ledger by `biz_opaque_callback_data`, the ledger
//!   id) and the ledger says `sent` with a wamid for each.

use std::{
    collections::HashSet,
    time::{Duration, Instant},
};

use sea_orm::{ConnectionTrait, DatabaseConnection, Statement, Value};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use super::{
    dispatch::fresh_database,
    sms::{BENCH_HEADROOM, MIN_RATE_SHARE, seed_sms_contacts},
};
use crate::{
    dispatcher::{
        Dispatcher,
        ledger::{self, NewMessage},
    },
    domain::{Channel, MessageKind, MessageState},
    providers::{
        Registry,
        meta::{
            fake::{FakeConfig, FakeMeta},
            settings::MetaSettings,
        },
        whatsapp::{PAIR_INTERVAL, settings::WhatsappSettings},
    },
    settings::Settings,
};

pub struct WhatsappBench {
    pub backend: &'static str,
    pub messages: usize,
    pub recipients: usize,
    pub rate: u32,
    pub headroom: f64,
    pub elapsed: Duration,
    /// Requests the fake saw (accepted or refused).
    pub requests: usize,
    pub max_in_any_second: usize,
    pub achieved_rate: f64,
    /// Refusals for throughput (130429) and the pair limit (131056).
    pub throttled: usize,
    pub pair_limited: usize,
    /// The smallest gap between two messages to one recipient.
    pub min_pair_spacing: Option<Duration>,
    /// Ledger ids the fake accepted once / more than once / not ours.
    pub delivered: usize,
    pub duplicates: usize,
    pub strangers: usize,
    /// Ledger rows `sent` with a wamid.
    pub sent: i64,
}

impl WhatsappBench {
    pub fn lost(&self) -> usize {
        self.messages.saturating_sub(self.delivered)
    }

    fn spacing_ok(&self) -> bool {
        self.min_pair_spacing.is_none_or(|d| d >= PAIR_INTERVAL)
    }

    /// Each failed criterion, in words; empty when the run is clean.
    pub fn failures(&self) -> Vec<String> {
        let mut f = Vec::new();
        if self.max_in_any_second > self.rate as usize {
            f.push(format!(
                "{} requests in one second, over {}/s",
                self.max_in_any_second, self.rate
            ));
        }
        if self.throttled + self.pair_limited > 0 {
            f.push(format!(
                "{} refused with 130429, {} with 131056",
                self.throttled, self.pair_limited
            ));
        }
        if self.achieved_rate < MIN_RATE_SHARE * f64::from(self.rate) {
            f.push(format!(
                "achieved {:.2}/s, under {:.0} % of {}",
                self.achieved_rate,
                MIN_RATE_SHARE * 100.0,
                self.rate
            ));
        }
        if !self.spacing_ok() {
            f.push(format!(
                "two messages to one person {:.3} s apart, under 6 s",
                self.min_pair_spacing.unwrap_or_default().as_secs_f64()
            ));
        }
        if self.lost() > 0 {
            f.push(format!("{} messages lost", self.lost()));
        }
        if self.duplicates > 0 || self.strangers > 0 {
            f.push(format!(
                "{} duplicated, {} not from the ledger",
                self.duplicates, self.strangers
            ));
        }
        if self.sent != self.messages as i64 {
            f.push(format!(
                "the ledger says {} sent of {}",
                self.sent, self.messages
            ));
        }
        f
    }

    /// Everything but the achieved rate: what the small CI runs check.
    pub fn is_correct(&self) -> bool {
        self.max_in_any_second <= self.rate as usize
            && self.throttled + self.pair_limited == 0
            && self.spacing_ok()
            && self.lost() == 0
            && self.duplicates == 0
            && self.strangers == 0
            && self.sent == self.messages as i64
    }
}

impl std::fmt::Display for WhatsappBench {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "whatsapp templates via the Cloud API (fake, {rate}/s, {backend}, rate headroom {h}): {n} messages to {r} people in {t:.1} s; \
             {req} requests, achieved {ach:.2}/s = {share:.1} % of {rate}; most in any second {max} (≤ {rate} required); \
             130429s {thr}, 131056s {pair}; closest two to one person {gap:.3} s (≥ 6 s required); \
             delivered {d}, lost {lost}, duplicated {dup}, not ours {s}, ledger sent {sent}",
            rate = self.rate,
            backend = self.backend,
            h = self.headroom,
            n = self.messages,
            r = self.recipients,
            t = self.elapsed.as_secs_f64(),
            req = self.requests,
            ach = self.achieved_rate,
            share = 100.0 * self.achieved_rate / f64::from(self.rate.max(1)),
            max = self.max_in_any_second,
            thr = self.throttled,
            pair = self.pair_limited,
            gap = self.min_pair_spacing.unwrap_or_default().as_secs_f64(),
            d = self.delivered,
            lost = self.lost(),
            dup = self.duplicates,
            s = self.strangers,
            sent = self.sent,
        )
    }
}

async fn sent_with_wamid(db: &DatabaseConnection) -> anyhow::Result<i64> {
    crate::db::count(
        db,
        "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM messages WHERE channel = 'whatsapp' AND state = $1 AND provider_message_id LIKE 'wamid.%'",
        vec![Value::from("sent")],
    )
    .await
}

/// Runs the bench: `messages` templates to `recipients` people at `rate`.
pub async fn run(
    messages: usize,
    recipients: usize,
    rate: u32,
    pg_url: Option<&str>,
    headroom: Option<f64>,
) -> anyhow::Result<WhatsappBench> {
    anyhow::ensure!(rate > 0, "--rate must be at least 1");
    anyhow::ensure!(
        recipients > 0 && recipients <= messages,
        "--recipients must be between 1 and --messages"
    );
    // Arrange: contacts with phones and WhatsApp consent; rounds of one
    // template per person, each round due after the last (as a sequence's
    // steps would be), all enqueued up front.
    let (db, _) = fresh_database(pg_url).await?;
    let contacts = seed_sms_contacts(&db, recipients, 0).await?;
    let backend = db.get_database_backend();
    db.execute_raw(Statement::from_sql_and_values(
        backend,
        "INSERT INTO consents (contact_id, channel, granted, source, recorded_at) \
         SELECT contact_id, 'whatsapp', granted, source, recorded_at FROM consents WHERE channel = 'sms'",
        [],
    ))
    .await?;
    let now = crate::clock::now();
    let msgs: Vec<NewMessage> = (0..messages)
        .map(|i| {
            let (contact, _) = contacts[i % recipients];
            NewMessage {
                source: format!("bench:whatsapp:{}", i / recipients),
                campaign_id: None,
                contact_id: Some(contact),
                channel: Channel::Whatsapp,
                kind: MessageKind::Marketing,
                address: None,
                provider: "whatsapp".into(),
                payload: serde_json::json!({
                    "text": "Hi, spring is here: 20% off this week.",
                    "template": {"name": "spring_offer", "language": "en_US", "category": "MARKETING", "parameters": ["friend"]}
                }),
                template: None,
                state: MessageState::Queued,
                due_at: now + chrono::Duration::milliseconds((i / recipients) as i64),
            }
        })
        .collect();
    for chunk in msgs.chunks(2000) {
        ledger::enqueue(&db, chunk, now).await?;
    }
    let ids: HashSet<String> = msgs.iter().map(NewMessage::id).collect();
    let fake = FakeMeta::start(FakeConfig {
        requests_per_second: rate,
        ..FakeConfig::default()
    })
    .await?;
    fake.register_template(
        "spring_offer",
        "en_US",
        "MARKETING",
        "APPROVED",
        "Hi {{1}}, spring is here: 20% off this week.",
    );
    let headroom = headroom.unwrap_or(BENCH_HEADROOM);
    let c = fake.config().clone();
    let mut settings = Settings {
        meta: MetaSettings {
            app_secret: Some(c.app_secret.clone().into()),
            verify_token: Some("bench".to_string().into()),
            graph_url: Some(fake.base_url().into()),
            graph_version: None,
        },
        ..Settings::default()
    };
    settings.providers.whatsapp = WhatsappSettings {
        access_token: Some(c.access_token.clone().into()),
        phone_number_id: Some(c.phone_number_id.clone()),
        business_account_id: Some(c.business_account_id.clone()),
        requests_per_second: Some(f64::from(rate)),
    };
    settings.caps.marketing_per_day = 1_000_000;
    settings.caps.marketing_per_week = 1_000_000;
    settings.quiet_hours.whatsapp = None;
    settings.dispatcher.poll_interval_ms = 50;
    settings.dispatcher.rate_headroom = headroom;
    let registry = Registry::configured(&settings)?;
    let dispatcher = Dispatcher::new(db.clone(), registry, &settings);

    // Act
    let tracker = TaskTracker::new();
    let stop = CancellationToken::new();
    let start = Instant::now();
    dispatcher.start(&tracker, stop.clone());
    dispatcher.wake();
    let expected = Duration::from_secs_f64(messages as f64 / f64::from(rate));
    let deadline = start + expected * 2 + Duration::from_secs(60);
    fake.wait_for_accepted(messages, deadline.saturating_duration_since(Instant::now()))
        .await;
    while sent_with_wamid(&db).await? < messages as i64 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = start.elapsed();
    stop.cancel();
    tracker.close();
    tracker.wait().await;

    // Reconcile the fake's accepted log with the ledger, by ledger id.
    let tally = super::tally::Tally::of(
        fake.accepted()
            .into_iter()
            .map(|a| a.biz_opaque_callback_data.filter(|b| ids.contains(b))),
    );
    let requests = fake.requests();
    let times: Vec<Instant> = requests.iter().map(|r| r.at).collect();
    let report = WhatsappBench {
        backend: if pg_url.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        },
        messages,
        recipients,
        rate,
        headroom,
        elapsed,
        requests: requests.len(),
        max_in_any_second: crate::providers::test_provider::max_in_any_second(&times),
        achieved_rate: super::tally::achieved_rate(&times),
        throttled: requests.iter().filter(|r| r.code == Some(130429)).count(),
        pair_limited: requests.iter().filter(|r| r.code == Some(131056)).count(),
        min_pair_spacing: fake.min_pair_spacing(),
        delivered: tally.delivered,
        duplicates: tally.duplicates,
        strangers: tally.strangers,
        sent: sent_with_wamid(&db).await?,
    };
    db.close().await.ok();
    Ok(report)
}
