//! `warmline bench email`: a campaign of N emails through the real
//! dispatcher (fresh database, last-moment checks, ledger) and the real
//! Resend client, to the fake Resend enforcing `limit` requests/s with its
//! token bucket. Target (issue 5): 10,000 emails at 2 requests/s in batches
//! of 100 in about 50 s, with zero 429s.
//!
//! It is clean when every email reached the fake exactly once, the ledger
//! says `sent` for each with Resend's id, and the fake answered no 429.

use std::{
    collections::HashSet,
    sync::Arc,
    time::{Duration, Instant},
};

use chrono::Utc;
use sea_orm::{DatabaseConnection, Value};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use super::dispatch::{fresh_database, seed_contacts};
use crate::{
    dispatcher::{
        Dispatcher,
        ledger::{self, NewMessage},
    },
    domain::{Channel, MessageKind, MessageState},
    email::EmailContent,
    providers::{
        Registry,
        resend::{
            MESSAGE_ID_TAG, ResendConfig, ResendProvider,
            fake::{FakeConfig, FakeResend},
        },
    },
    settings::Settings,
};

pub struct EmailBench {
    pub messages: usize,
    pub limit: u32,
    pub batch: usize,
    pub elapsed: Duration,
    pub requests: usize,
    pub rate_limited: u64,
    pub max_in_any_second: usize,
    /// Distinct emails the fake accepted.
    pub delivered: usize,
    /// Emails accepted more than once.
    pub duplicates: usize,
    /// Ledger rows `sent` with a provider id.
    pub sent: i64,
}

impl EmailBench {
    pub fn lost(&self) -> usize {
        self.messages.saturating_sub(self.delivered)
    }

    pub fn is_clean(&self) -> bool {
        self.rate_limited == 0
            && self.duplicates == 0
            && self.lost() == 0
            && self.sent == self.messages as i64
    }
}

impl std::fmt::Display for EmailBench {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "email campaign via Resend (fake, {} req/s, batches of {}): {} emails in {:.1} s; {} requests, most in any second {}, 429s {}; delivered {}, lost {}, duplicated {}, ledger sent {}",
            self.limit,
            self.batch,
            self.messages,
            self.elapsed.as_secs_f64(),
            self.requests,
            self.max_in_any_second,
            self.rate_limited,
            self.delivered,
            self.lost(),
            self.duplicates,
            self.sent
        )
    }
}

fn campaign_email() -> serde_json::Value {
    EmailContent {
        from: "Acme <news@acme.example>".into(),
        reply_to: None,
        subject: "Our spring update".into(),
        text: "Hello,\n\nHere is what we did this spring.\n\nUnsubscribe: https://warm.example.org/u/token".into(),
        html: Some("<p>Hello,</p><p>Here is what we did this spring.</p><p><a href=\"https://warm.example.org/u/token\">Unsubscribe</a></p>".into()),
        headers: [
            (
                "List-Unsubscribe".to_string(),
                "<https://warm.example.org/u/token>".to_string(),
            ),
            (
                "List-Unsubscribe-Post".to_string(),
                "List-Unsubscribe=One-Click".to_string(),
            ),
        ]
        .into(),
    }
    .to_payload()
}

async fn sent_with_id(db: &DatabaseConnection) -> anyhow::Result<i64> {
    crate::db::count(
        db,
        "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM messages WHERE state = $1 AND provider_message_id <> ''",
        vec![Value::from("sent")],
    )
    .await
}

pub async fn run(
    messages: usize,
    limit: u32,
    batch: usize,
    pg_url: Option<&str>,
) -> anyhow::Result<EmailBench> {
    // Arrange: contacts, the campaign in the ledger, the fake, the client.
    let (db, _) = fresh_database(pg_url).await?;
    let contacts = seed_contacts(&db, messages).await?;
    let payload = campaign_email();
    let msgs: Vec<NewMessage> = contacts
        .iter()
        .map(|c| NewMessage {
            source: "bench:email".into(),
            campaign_id: None,
            contact_id: Some(*c),
            channel: Channel::Email,
            kind: MessageKind::Marketing,
            address: None,
            provider: "resend".into(),
            payload: payload.clone(),
            template: None,
            state: MessageState::Queued,
            due_at: Utc::now(),
        })
        .collect();
    for chunk in msgs.chunks(2000) {
        ledger::enqueue(&db, chunk, Utc::now()).await?;
    }
    let fake = FakeResend::start(FakeConfig {
        requests_per_second: limit,
        ..FakeConfig::default()
    })
    .await?;
    let mut config = ResendConfig::new(fake.api_key(), fake.base_url());
    config.requests_per_second = f64::from(limit);
    config.max_batch = batch;
    let mut registry = Registry::new();
    registry.register(Arc::new(ResendProvider::new(config)?));
    let mut settings = Settings::default();
    settings.caps.marketing_per_day = 1_000_000;
    settings.caps.marketing_per_week = 1_000_000;
    settings.dispatcher.poll_interval_ms = 50;
    let dispatcher = Dispatcher::new(db.clone(), registry, &settings);

    // Act: from the dispatcher's start to the ledger saying all sent.
    let tracker = TaskTracker::new();
    let stop = CancellationToken::new();
    let start = Instant::now();
    dispatcher.start(&tracker, stop.clone());
    dispatcher.wake();
    let expected =
        Duration::from_secs_f64(messages as f64 / batch.max(1) as f64 / f64::from(limit.max(1)));
    let deadline = start + expected * 3 + Duration::from_secs(60);
    fake.wait_for_emails(messages, deadline - Instant::now())
        .await;
    while sent_with_id(&db).await? < messages as i64 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = start.elapsed();
    stop.cancel();
    tracker.close();
    tracker.wait().await;

    // Reconcile the fake's log with the campaign.
    let emails = fake.emails();
    let distinct: HashSet<&str> = emails
        .iter()
        .filter_map(|e| e.tag(MESSAGE_ID_TAG))
        .collect();
    let ours: HashSet<String> = msgs.iter().map(NewMessage::id).collect();
    let delivered = distinct.iter().filter(|id| ours.contains(**id)).count();
    Ok(EmailBench {
        messages,
        limit,
        batch,
        elapsed,
        requests: fake.request_count(),
        rate_limited: fake.rate_limited(),
        max_in_any_second: fake.max_requests_in_any_second(),
        delivered,
        duplicates: emails.len() - distinct.len(),
        sent: sent_with_id(&db).await?,
    })
}
