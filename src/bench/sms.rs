//! `warmline bench sms`: N marketing texts through the real dispatcher (fresh
//! database, last-moment checks with TCPA quiet hours, ledger) and the
//! Twilio provider built from `[providers.twilio]` as `serve` builds it, to
//! the fake Twilio on loopback enforcing the same messages per second with
//! its token bucket (429 / 20429 past it). Target (issue 14): 1,000 SMS at
//! 10 MPS.
//!
//! It is clean when:
//! - no one-second window holds more than `mps` requests (the sliding
//!   maximum: every fixed window is one of them) and the fake refused none;
//! - the achieved rate, requests over the span from the first to the last,
//!   is at least 98 % of `mps`;
//! - every text reached the fake exactly once (its log reconciled with the
//!   ledger by recipient: each contact gets one text) and the ledger says
//!   `sent` with Twilio's sid for each.
//!
//! Also the contact seeding the SMS crash run shares ([`seed_sms_contacts`]).

use std::{
    collections::HashSet,
    time::{Duration, Instant},
};

use chrono::{DateTime, Timelike, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, FromQueryResult, Statement, Value};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use super::dispatch::fresh_database;
use crate::{
    dispatcher::{
        Dispatcher,
        ledger::{self, NewMessage},
    },
    domain::{Channel, MessageKind, MessageState},
    providers::{
        Registry,
        twilio::{
            fake::{FakeConfig, FakeTwilio},
            settings::TwilioSettings,
        },
    },
    settings::Settings,
};

/// The share of `mps` the achieved rate must reach.
pub const MIN_RATE_SHARE: f64 = 0.98;
/// The public URL status callbacks name (the fake is never asked to call it).
pub const PUBLIC_URL: &str = "https://warm.example.org";
/// `dispatcher.rate_headroom` for the benchmark. The default, 0.97, caps the
/// achieved rate at 97 % of the configured MPS, below the 98 % target; 0.99
/// still spaces requests 1 % wider than the limit.
pub const BENCH_HEADROOM: f64 = 0.99;

/// A fixed-offset zone where it is early afternoon at `now`, so the TCPA
/// window (08:00–21:00 local) stays open for hours whenever a bench runs.
pub fn midday_zone(now: DateTime<Utc>) -> String {
    // Local = UTC + offset; offsets from UTC−10 to UTC+13 all exist.
    let offset = 13 - now.hour() as i32;
    match offset {
        0 => "Etc/GMT".to_string(),
        // The Etc zones' signs are POSIX's: Etc/GMT-13 is UTC+13.
        o if o > 0 => format!("Etc/GMT-{o}"),
        o => format!("Etc/GMT+{}", -o),
    }
}

/// The recipient of the `i`th bench contact: 415-2xx-xxxx, a valid US
/// number (libphonenumber checks the exchange), unique up to 8,000,000.
pub fn bench_phone(i: usize) -> String {
    format!("+1415{:07}", 2_000_000 + i)
}

/// Inserts `n` active contacts with a phone (`bench_phone(first..first+n)`),
/// a time zone where it is midday and SMS consent; returns `(id, phone)`.
pub async fn seed_sms_contacts(
    db: &DatabaseConnection,
    n: usize,
    first: usize,
) -> anyhow::Result<Vec<(i64, String)>> {
    let now = crate::clock::now();
    let zone = midday_zone(now);
    let backend = db.get_database_backend();
    let mut out = Vec::with_capacity(n);
    for start in (0..n).step_by(500) {
        let end = (start + 500).min(n);
        let mut values = vec![Value::from(now), Value::from(zone.clone())];
        let rows: Vec<String> = (start..end)
            .map(|i| {
                values.push(Value::from(bench_phone(first + i)));
                format!(
                    "(${}, $2, 'active', '[]', 50.0, '{{}}', $1, $1)",
                    values.len()
                )
            })
            .collect();
        #[derive(FromQueryResult)]
        struct Inserted {
            id: i64,
            phone: String,
        }
        let inserted = Inserted::find_by_statement(Statement::from_sql_and_values(
            backend,
            format!(
                "INSERT INTO contacts (phone, timezone, status, tags, warmth, metadata, created_at, updated_at) VALUES {} RETURNING id, phone",
                rows.join(",")
            ),
            values,
        ))
        .all(db)
        .await?;
        let mut values = vec![Value::from(now)];
        let rows: Vec<String> = inserted
            .iter()
            .map(|c| {
                values.push(Value::from(c.id));
                format!("(${}, 'sms', TRUE, 'bench', $1)", values.len())
            })
            .collect();
        db.execute_raw(Statement::from_sql_and_values(
            backend,
            format!(
                "INSERT INTO consents (contact_id, channel, granted, source, recorded_at) VALUES {}",
                rows.join(",")
            ),
            values,
        ))
        .await?;
        out.extend(inserted.into_iter().map(|c| (c.id, c.phone)));
    }
    Ok(out)
}

/// One marketing text to `contact` through Twilio, composed as campaigns
/// compose it (sender's name, STOP footer).
pub fn sms_for(source: &str, contact: i64) -> NewMessage {
    let text = crate::sms::compose(
        "Spring is here: 20% off everything this week.",
        MessageKind::Marketing,
        "Acme",
    );
    NewMessage {
        source: source.into(),
        campaign_id: None,
        contact_id: Some(contact),
        channel: Channel::Sms,
        kind: MessageKind::Marketing,
        address: None,
        provider: "twilio".into(),
        payload: crate::sms::content(&text),
        template: None,
        state: MessageState::Queued,
        due_at: crate::clock::now(),
    }
}

/// `[providers.twilio]` for `fake` at `mps`, as an operator writes it.
pub fn twilio_settings(fake: &FakeTwilio, mps: f64) -> TwilioSettings {
    TwilioSettings {
        account_sid: Some(fake.account_sid().into()),
        auth_token: Some(fake.auth_token().to_string().into()),
        from: Some(fake.number().into()),
        url: Some(fake.base_url().into()),
        requests_per_second: Some(mps),
        ..Default::default()
    }
}

pub struct SmsBench {
    pub backend: &'static str,
    pub messages: usize,
    pub mps: u32,
    pub headroom: f64,
    /// From the dispatcher's start to the ledger saying all sent.
    pub elapsed: Duration,
    /// Requests the fake saw (created or refused).
    pub requests: usize,
    /// Requests per fixed one-second window from the first request.
    pub windows: Vec<usize>,
    pub max_in_any_second: usize,
    /// Requests over the span from the first to the last (n−1 intervals).
    pub achieved_mps: f64,
    /// Refusals of the fake's bucket (429 / 20429).
    pub rate_limited: usize,
    /// Distinct bench recipients the fake created a message for.
    pub delivered: usize,
    /// Messages created beyond one per recipient.
    pub duplicates: usize,
    /// Messages to a number the bench did not send to.
    pub strangers: usize,
    /// Ledger rows `sent` with a provider sid.
    pub sent: i64,
}

impl SmsBench {
    pub fn lost(&self) -> usize {
        self.messages.saturating_sub(self.delivered)
    }

    /// Each failed criterion, in words; empty when the run is clean.
    pub fn failures(&self) -> Vec<String> {
        let mut f = Vec::new();
        if self.max_in_any_second > self.mps as usize {
            f.push(format!(
                "{} requests in one second, over {} MPS",
                self.max_in_any_second, self.mps
            ));
        }
        if self.rate_limited > 0 {
            f.push(format!("{} requests refused with 20429", self.rate_limited));
        }
        if self.achieved_mps < MIN_RATE_SHARE * f64::from(self.mps) {
            f.push(format!(
                "achieved {:.2} MPS, under {:.0} % of {}",
                self.achieved_mps,
                MIN_RATE_SHARE * 100.0,
                self.mps
            ));
        }
        if self.lost() > 0 {
            f.push(format!("{} texts lost", self.lost()));
        }
        if self.duplicates > 0 || self.strangers > 0 {
            f.push(format!(
                "{} duplicated texts, {} to unknown numbers",
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

    /// Everything but the achieved rate: what the small CI runs check
    /// (a busy machine may send slower, never wrongly).
    pub fn is_correct(&self) -> bool {
        self.max_in_any_second <= self.mps as usize
            && self.rate_limited == 0
            && self.lost() == 0
            && self.duplicates == 0
            && self.strangers == 0
            && self.sent == self.messages as i64
    }

    pub fn is_clean(&self) -> bool {
        self.failures().is_empty()
    }
}

impl std::fmt::Display for SmsBench {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let windows: Vec<String> = self.windows.iter().map(usize::to_string).collect();
        write!(
            f,
            "sms via Twilio (fake, {mps} MPS, {backend}, rate headroom {h}): {n} texts in {t:.1} s; {req} requests, \
             achieved {rate:.2} MPS = {share:.1} % of {mps}; most in any second {max} (≤ {mps} required), 20429s {rl}; \
             delivered {d}, lost {lost}, duplicated {dup}, to unknown numbers {s}, ledger sent {sent}\n\
             requests per 1-s window: [{w}]",
            mps = self.mps,
            backend = self.backend,
            h = self.headroom,
            n = self.messages,
            t = self.elapsed.as_secs_f64(),
            req = self.requests,
            rate = self.achieved_mps,
            share = 100.0 * self.achieved_mps / f64::from(self.mps.max(1)),
            max = self.max_in_any_second,
            rl = self.rate_limited,
            d = self.delivered,
            lost = self.lost(),
            dup = self.duplicates,
            s = self.strangers,
            sent = self.sent,
            w = windows.join(" "),
        )
    }
}

async fn sent_with_sid(db: &DatabaseConnection) -> anyhow::Result<i64> {
    crate::db::count(
        db,
        "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM messages WHERE channel = 'sms' AND state = $1 AND provider_message_id LIKE 'SM%'",
        vec![Value::from("sent")],
    )
    .await
}

/// Requests per fixed one-second window, counted from the first.
fn fixed_windows(times: &[Instant]) -> Vec<usize> {
    let Some(first) = times.first() else {
        return Vec::new();
    };
    let mut windows = Vec::new();
    for t in times {
        let i = t.duration_since(*first).as_secs() as usize;
        if windows.len() <= i {
            windows.resize(i + 1, 0);
        }
        windows[i] += 1;
    }
    windows
}

/// Runs the bench; `headroom` overrides [`BENCH_HEADROOM`] (CI's small
/// runs leave more room for a machine busy compiling).
pub async fn run(
    messages: usize,
    mps: u32,
    pg_url: Option<&str>,
    headroom: Option<f64>,
) -> anyhow::Result<SmsBench> {
    anyhow::ensure!(mps > 0, "--mps must be at least 1");
    // Arrange: contacts with phones and consent, the texts in the ledger,
    // the fake at the sender's MPS, and the providers as `serve` builds them.
    let (db, _) = fresh_database(pg_url).await?;
    let contacts = seed_sms_contacts(&db, messages, 0).await?;
    let msgs: Vec<NewMessage> = contacts
        .iter()
        .map(|(c, _)| sms_for("bench:sms", *c))
        .collect();
    for chunk in msgs.chunks(2000) {
        ledger::enqueue(&db, chunk, crate::clock::now()).await?;
    }
    let phones: HashSet<&str> = contacts.iter().map(|(_, p)| p.as_str()).collect();
    let fake = FakeTwilio::start(FakeConfig {
        requests_per_second: mps,
        ..FakeConfig::default()
    })
    .await?;
    let headroom = headroom.unwrap_or(BENCH_HEADROOM);
    let mut settings = Settings::default();
    settings.providers.twilio = twilio_settings(&fake, f64::from(mps));
    settings.server.public_url = Some(PUBLIC_URL.parse()?);
    settings.caps.marketing_per_day = 1_000_000;
    settings.caps.marketing_per_week = 1_000_000;
    settings.dispatcher.poll_interval_ms = 50;
    settings.dispatcher.rate_headroom = headroom;
    let registry = Registry::configured(&settings)?;
    let dispatcher = Dispatcher::new(db.clone(), registry, &settings);

    // Act: from the dispatcher's start to the ledger saying all sent.
    let tracker = TaskTracker::new();
    let stop = CancellationToken::new();
    let start = Instant::now();
    dispatcher.start(&tracker, stop.clone());
    dispatcher.wake();
    let expected = Duration::from_secs_f64(messages as f64 / f64::from(mps));
    let deadline = start + expected * 2 + Duration::from_secs(60);
    fake.wait_for_messages(messages, deadline.saturating_duration_since(Instant::now()))
        .await;
    while sent_with_sid(&db).await? < messages as i64 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = start.elapsed();
    stop.cancel();
    tracker.close();
    tracker.wait().await;

    // Reconcile the fake's log with the ledger, by recipient.
    let created = fake.messages();
    let tally = super::tally::Tally::of(created.iter().map(|m| phones.get(m.to.as_str()).copied()));
    let requests = fake.requests();
    let times: Vec<Instant> = requests.iter().map(|r| r.at).collect();
    let report = SmsBench {
        backend: if pg_url.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        },
        messages,
        mps,
        headroom,
        elapsed,
        requests: requests.len(),
        windows: fixed_windows(&times),
        max_in_any_second: fake.max_requests_in_any_second(),
        achieved_mps: super::tally::achieved_rate(&times),
        rate_limited: requests.iter().filter(|r| r.status == 429).count(),
        delivered: tally.delivered,
        duplicates: tally.duplicates,
        strangers: tally.strangers,
        sent: sent_with_sid(&db).await?,
    };
    db.close().await.ok();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_midday_zone_puts_local_time_in_the_early_afternoon() {
        for hour in 0..24 {
            let now: DateTime<Utc> = format!("2026-12-07T{hour:02}:30:00Z").parse().unwrap();
            let tz: chrono_tz::Tz = midday_zone(now).parse().expect("a known zone");
            assert_eq!(now.with_timezone(&tz).hour(), 13, "at {hour}:30 UTC");
        }
    }

    #[test]
    fn bench_phones_are_valid_e164_numbers() {
        for i in [0, 1, 999, 7_999_999] {
            let p = bench_phone(i);
            assert_eq!(
                crate::domain::E164Phone::parse(&p, None).unwrap().as_str(),
                p
            );
        }
    }

    #[test]
    fn fixed_windows_count_from_the_first_request() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        assert_eq!(
            fixed_windows(&[at(0), at(400), at(999), at(1000), at(2500)]),
            vec![3, 1, 1]
        );
        assert!(fixed_windows(&[]).is_empty());
    }
}
