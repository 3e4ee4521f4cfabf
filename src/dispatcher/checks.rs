//! The last-moment checks, run on every claimed batch right before the
//! provider is called — not only at enqueue — so that an opt-out, a
//! suppression or a cap committed a moment ago still stops the send.
//!
//! Order: address, suppression (overrides consent), consent (marketing
//! only; transactional mail needs none), frequency cap (marketing only),
//! quiet hours in the recipient's own time zone (marketing only, and it
//! defers, not skips: TCPA's 08:00–21:00 rule is about solicitations, and a
//! transactional message — a verification code, a receipt, the answer to a
//! keyword the recipient just sent — answers something the person did just
//! now, so holding it until morning would only break it).

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::{
    db::placeholders,
    domain::{Channel, MessageKind, SkipReason},
};
use chrono::{DateTime, Duration as ChronoDuration, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use sea_orm::{ConnectionTrait, FromQueryResult, Statement, Value};

use super::{
    claim::Claimed,
    settings::{CapsSettings, QuietHoursSettings, Window},
};

fn parse_hm(s: &str) -> Option<NaiveTime> {
    NaiveTime::parse_from_str(s, "%H:%M").ok()
}

/// When `now` falls outside the channel's window in `tz`, the next instant
/// the window opens; `None` when sending is allowed now.
pub fn quiet_until(window: &Window, tz: Tz, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let (start, end) = (parse_hm(&window.start)?, parse_hm(&window.end)?);
    let local = now.with_timezone(&tz);
    let t = local.time();
    let allowed = if start <= end {
        t >= start && t < end
    } else {
        // A window across midnight, e.g. 22:00–06:00.
        t >= start || t < end
    };
    if allowed {
        return None;
    }
    // The next local date at `start` that is after now.
    let mut date = local.date_naive();
    for _ in 0..3 {
        let candidate = date.and_time(start);
        // A start time skipped by a DST change resolves to the next valid
        // instant; an ambiguous one to the earlier.
        let resolved = match tz.from_local_datetime(&candidate) {
            chrono::LocalResult::Single(d) => Some(d),
            chrono::LocalResult::Ambiguous(a, _) => Some(a),
            chrono::LocalResult::None => tz
                .from_local_datetime(&(candidate + ChronoDuration::hours(1)))
                .earliest(),
        };
        if let Some(d) = resolved {
            let d = d.with_timezone(&Utc);
            if d > now {
                return Some(d);
            }
        }
        date = date.succ_opt()?;
    }
    None
}

/// The verdict for one claimed message.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Send now, to this address.
    Send {
        to: String,
    },
    Skip(SkipReason),
    Defer(DateTime<Utc>),
}

#[derive(Debug, FromQueryResult)]
pub(super) struct ContactRow {
    pub id: i64,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub timezone: Option<String>,
}

#[derive(FromQueryResult)]
struct ConsentRow {
    contact_id: i64,
    channel: Channel,
    granted: bool,
}

#[derive(FromQueryResult)]
struct AddressRow {
    channel: Channel,
    address: String,
}

#[derive(FromQueryResult)]
struct CapRow {
    contact_id: i64,
    day: i64,
    week: i64,
}

/// What the checks need to know about a batch's recipients, read in one
/// snapshot: by [`gather_facts`], or on PostgreSQL by the claim statement
/// itself (`claim::claim`), which saves four round trips per batch.
#[derive(Debug, Default)]
pub struct Facts {
    pub(super) contacts: HashMap<i64, ContactRow>,
    /// Current consent: the newest ledger row per (contact, channel).
    pub(super) consent: HashMap<(i64, Channel), bool>,
    /// Marketing messages sent to each contact in the last day and week.
    pub(super) caps_used: HashMap<i64, (i64, i64)>,
    /// `(channel, address)` pairs under suppression, lower-cased; a
    /// forgotten contact's entry is its [`suppression_hash`](crate::domain::suppression_hash).
    pub(super) suppressed: HashSet<(Channel, String)>,
}

/// The address a message goes to: the one recorded on it, else its
/// contact's for the channel.
fn address_of(m: &Claimed, contacts: &HashMap<i64, ContactRow>) -> Option<String> {
    m.address.clone().or_else(|| {
        let c = contacts.get(&m.contact_id?)?;
        match m.channel {
            Channel::Email => c.email.clone(),
            // Instagram is addressed by its own id, recorded on the message.
            Channel::Sms | Channel::Whatsapp | Channel::Instagram => c.phone.clone(),
        }
    })
}

/// Looks up which of `batch`'s addresses are suppressed, as written and as
/// the hash a forgotten contact's suppression keeps (`contacts::forget`).
async fn suppressed_addresses(
    db: &impl ConnectionTrait,
    batch: &[&Claimed],
    contacts: &HashMap<i64, ContactRow>,
    into: &mut HashSet<(Channel, String)>,
) -> anyhow::Result<()> {
    let backend = db.get_database_backend();
    let pg = crate::db::is_postgres(db);
    let addresses: Vec<String> = batch
        .iter()
        .filter_map(|m| address_of(m, contacts).map(|a| a.to_lowercase()))
        .flat_map(|a| {
            let hashed = crate::domain::suppression_hash(&a);
            [a, hashed]
        })
        .collect();
    // Suppressions are stored lower-cased (see `ledger::suppress`).
    let chunk_size = if pg { usize::MAX } else { 400 };
    for chunk in addresses.chunks(chunk_size.min(addresses.len().max(1))) {
        let (values, list): (Vec<Value>, String) = if pg {
            (
                vec![Value::from(chunk.to_vec())],
                "= ANY($1::text[])".into(),
            )
        } else {
            (
                chunk.iter().map(|a| Value::from(a.clone())).collect(),
                format!("IN ({})", placeholders(1, chunk.len())),
            )
        };
        let sql = format!("SELECT channel, address FROM suppressions WHERE address {list}");
        for s in AddressRow::find_by_statement(Statement::from_sql_and_values(backend, sql, values))
            .all(db)
            .await?
        {
            into.insert((s.channel, s.address.to_lowercase()));
        }
    }
    Ok(())
}

/// Reads the facts for a batch in a handful of queries.
pub async fn gather_facts(
    db: &impl ConnectionTrait,
    batch: &[Claimed],
    now: DateTime<Utc>,
) -> anyhow::Result<Facts> {
    let backend = db.get_database_backend();
    let contact_ids: Vec<i64> = {
        let set: HashSet<i64> = batch.iter().filter_map(|m| m.contact_id).collect();
        set.into_iter().collect()
    };
    let mut facts = Facts::default();
    // On PostgreSQL the whole batch goes in one array parameter per query
    // (constant SQL text); SQLite gets IN lists in chunks.
    let pg = crate::db::is_postgres(db);
    let chunk_size = if pg { usize::MAX } else { 500 };
    for chunk in contact_ids.chunks(chunk_size.min(contact_ids.len().max(1))) {
        // `= ANY(array)` lets PostgreSQL use the index; `IN (…)` on SQLite.
        let in_list = |start: usize| {
            if pg {
                format!("= ANY(${start}::bigint[])")
            } else {
                format!("IN ({})", placeholders(start, chunk.len()))
            }
        };
        let ids: Vec<Value> = if pg {
            vec![Value::from(chunk.to_vec())]
        } else {
            chunk.iter().map(|i| Value::from(*i)).collect()
        };
        let n = ids.len();
        let sql = format!(
            "SELECT id, email, phone, timezone FROM contacts WHERE id {}",
            in_list(1)
        );
        for c in
            ContactRow::find_by_statement(Statement::from_sql_and_values(backend, sql, ids.clone()))
                .all(db)
                .await?
        {
            facts.contacts.insert(c.id, c);
        }
        let sql = format!(
            "SELECT c.contact_id, c.channel, c.granted FROM consents c \
             WHERE c.id IN (SELECT MAX(id) FROM consents WHERE contact_id {} GROUP BY contact_id, channel)",
            in_list(1)
        );
        for c in
            ConsentRow::find_by_statement(Statement::from_sql_and_values(backend, sql, ids.clone()))
                .all(db)
                .await?
        {
            facts.consent.insert((c.contact_id, c.channel), c.granted);
        }
        let mut values = ids.clone();
        values.push(Value::from(now - ChronoDuration::days(1)));
        values.push(Value::from(now - ChronoDuration::days(7)));
        let sql = format!(
            "SELECT contact_id, \
               CAST(SUM(CASE WHEN sent_at > ${day} THEN 1 ELSE 0 END) AS BIGINT) AS day, \
               CAST(COUNT(*) AS BIGINT) AS week \
             FROM messages WHERE contact_id {ids} AND kind = {marketing} \
               AND sent_at IS NOT NULL AND sent_at > ${week} GROUP BY contact_id",
            ids = in_list(1),
            day = n + 1,
            week = n + 2,
            marketing = MessageKind::Marketing.sql(),
        );
        for c in CapRow::find_by_statement(Statement::from_sql_and_values(backend, sql, values))
            .all(db)
            .await?
        {
            facts.caps_used.insert(c.contact_id, (c.day, c.week));
        }
    }
    let all: Vec<&Claimed> = batch.iter().collect();
    suppressed_addresses(db, &all, &facts.contacts, &mut facts.suppressed).await?;
    Ok(facts)
}

/// Completes facts the claim statement read: PostgreSQL's `lower()` agrees
/// with Rust's `to_lowercase` only on ASCII, so suppression of any other
/// address is looked up again here, hashed the Rust way.
async fn complete_facts(
    db: &impl ConnectionTrait,
    batch: &[Claimed],
    facts: &mut Facts,
) -> anyhow::Result<()> {
    let unusual: Vec<&Claimed> = batch
        .iter()
        .filter(|m| {
            address_of(m, &facts.contacts)
                .is_some_and(|a| !a.is_ascii() || a.trim().len() != a.len())
        })
        .collect();
    if unusual.is_empty() {
        return Ok(());
    }
    suppressed_addresses(db, &unusual, &facts.contacts, &mut facts.suppressed).await
}

/// Runs every check for a batch: reads the facts (or completes those the
/// claim already read, `known`), then decides.
pub async fn check_batch(
    db: &impl ConnectionTrait,
    batch: &[Claimed],
    known: Option<Facts>,
    caps: &CapsSettings,
    quiet: &QuietHoursSettings,
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<Verdict>> {
    let facts = match known {
        Some(mut facts) => {
            complete_facts(db, batch, &mut facts).await?;
            facts
        }
        None => gather_facts(db, batch, now).await?,
    };
    Ok(decide(batch, &facts, caps, quiet, now))
}

/// The verdict for each message of a batch, in order, from its facts.
pub fn decide(
    batch: &[Claimed],
    facts: &Facts,
    caps: &CapsSettings,
    quiet: &QuietHoursSettings,
    now: DateTime<Utc>,
) -> Vec<Verdict> {
    let default_tz: Tz = quiet.default_timezone.parse().unwrap_or(chrono_tz::UTC);
    // Messages of this batch count toward the caps of the ones after them.
    let mut batch_sends: BTreeMap<i64, u32> = BTreeMap::new();
    let mut verdicts = Vec::with_capacity(batch.len());
    for m in batch {
        let Some(address) = address_of(m, &facts.contacts) else {
            verdicts.push(Verdict::Skip(SkipReason::NoAddress));
            continue;
        };
        let lower = address.to_lowercase();
        if facts
            .suppressed
            .contains(&(m.channel, crate::domain::suppression_hash(&lower)))
            || facts.suppressed.contains(&(m.channel, lower))
        {
            verdicts.push(Verdict::Skip(SkipReason::Suppressed));
            continue;
        }
        let marketing = m.kind == MessageKind::Marketing;
        if marketing {
            let granted = m
                .contact_id
                .and_then(|c| facts.consent.get(&(c, m.channel)).copied())
                .unwrap_or(false);
            if !granted {
                verdicts.push(Verdict::Skip(SkipReason::NoConsent));
                continue;
            }
        }
        let tz = m
            .contact_id
            .and_then(|c| facts.contacts.get(&c))
            .and_then(|c| c.timezone.as_deref())
            .and_then(|t| t.parse::<Tz>().ok())
            .unwrap_or(default_tz);
        // An answer to a keyword the recipient just sent is not held back,
        // nor is any transactional message (see the module's doc).
        let reply = m
            .source
            .as_deref()
            .is_some_and(crate::domain::is_reply_source);
        if let Some(until) = quiet
            .window(m.channel)
            .filter(|_| marketing && !reply)
            .and_then(|w| quiet_until(w, tz, now))
        {
            verdicts.push(Verdict::Defer(until));
            continue;
        }
        if marketing && let Some(contact) = m.contact_id {
            let (day, week) = facts.caps_used.get(&contact).copied().unwrap_or((0, 0));
            let extra = i64::from(*batch_sends.get(&contact).unwrap_or(&0));
            if day + extra >= i64::from(caps.marketing_per_day)
                || week + extra >= i64::from(caps.marketing_per_week)
            {
                verdicts.push(Verdict::Skip(SkipReason::FrequencyCap));
                continue;
            }
            *batch_sends.entry(contact).or_default() += 1;
        }
        verdicts.push(Verdict::Send { to: address });
    }
    verdicts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window() -> Window {
        Window {
            start: "08:00".into(),
            end: "21:00".into(),
        }
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn sms(id: &str, source: &str) -> Claimed {
        Claimed {
            id: id.into(),
            campaign_id: None,
            contact_id: None,
            channel: Channel::Sms,
            kind: MessageKind::Transactional,
            address: Some("+14155550100".into()),
            attempts: 1,
            payload: "{}".into(),
            provider: None,
            source: Some(source.into()),
        }
    }

    #[test]
    fn quiet_hours_hold_back_marketing_and_never_what_answers_the_person() {
        // Arrange: 23:00 in New York (03:00 UTC next day), outside 08:00–21:00.
        let now = utc("2026-06-02T03:00:00Z");
        let mut promo = sms("promo", "campaign:1");
        promo.kind = MessageKind::Marketing;
        promo.contact_id = Some(1);
        let batch = [
            sms("reply", &crate::domain::reply_source(7)),
            sms("code", "api:verification-code"),
            promo,
        ];
        let mut facts = Facts::default();
        facts.consent.insert((1, Channel::Sms), true);

        // Act
        let verdicts = decide(
            &batch,
            &facts,
            &CapsSettings::default(),
            &QuietHoursSettings::default(),
            now,
        );

        // Assert: the STOP confirmation and the verification code go now;
        // the promotion waits for 08:00 EDT.
        let send = || Verdict::Send {
            to: "+14155550100".into(),
        };
        assert_eq!(
            verdicts,
            vec![send(), send(), Verdict::Defer(utc("2026-06-02T12:00:00Z"))]
        );
    }

    #[test]
    fn inside_the_window_sends_now() {
        // 12:00 in Honolulu (UTC−10) is 22:00 UTC.
        assert_eq!(
            quiet_until(
                &window(),
                chrono_tz::Pacific::Honolulu,
                utc("2026-06-01T22:00:00Z")
            ),
            None
        );
    }

    #[test]
    fn utc_minus_10_late_evening_waits_for_next_morning() {
        // 22:30 Honolulu = 08:30 UTC next day; opens 08:00 HST = 18:00 UTC.
        let until = quiet_until(
            &window(),
            chrono_tz::Pacific::Honolulu,
            utc("2026-06-02T08:30:00Z"),
        )
        .unwrap();
        assert_eq!(until, utc("2026-06-02T18:00:00Z"));
    }

    #[test]
    fn utc_plus_14_early_morning_waits_until_eight() {
        // Kiritimati is UTC+14: 2026-06-01T16:00Z is 06:00 on June 2 there.
        let until = quiet_until(
            &window(),
            chrono_tz::Pacific::Kiritimati,
            utc("2026-06-01T16:00:00Z"),
        )
        .unwrap();
        assert_eq!(until, utc("2026-06-01T18:00:00Z"));
    }

    #[test]
    fn spring_forward_day_opens_at_local_eight() {
        // US DST starts 2026-03-08: 08:00 EDT = 12:00 UTC. At 06:00 EDT (10:00Z) we wait.
        let until = quiet_until(
            &window(),
            chrono_tz::America::New_York,
            utc("2026-03-08T10:00:00Z"),
        )
        .unwrap();
        assert_eq!(until, utc("2026-03-08T12:00:00Z"));
    }

    #[test]
    fn fall_back_day_opens_at_local_eight() {
        // US DST ends 2026-11-01: 08:00 EST = 13:00 UTC. At 05:30 EST (10:30Z) we wait.
        let until = quiet_until(
            &window(),
            chrono_tz::America::New_York,
            utc("2026-11-01T10:30:00Z"),
        )
        .unwrap();
        assert_eq!(until, utc("2026-11-01T13:00:00Z"));
    }

    #[test]
    fn a_window_starting_in_a_skipped_hour_still_opens() {
        let w = Window {
            start: "02:30".into(),
            end: "05:00".into(),
        };
        // 2026-03-08 02:30 does not exist in New York; the window opens at 03:30 EDT = 07:30Z.
        let until = quiet_until(
            &w,
            chrono_tz::America::New_York,
            utc("2026-03-08T06:00:00Z"),
        )
        .unwrap();
        assert_eq!(until, utc("2026-03-08T07:30:00Z"));
    }
}
