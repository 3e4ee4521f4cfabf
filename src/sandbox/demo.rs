//! The demo workspace a new sandbox starts with (issue 13, `--demo`): 50
//! fictional contacts with eighteen months of history, so that warmth, the
//! cold trigger, approvals and the digest have something to show at once.
//!
//! What [`seed`] writes, every time an offset from the `now` it is given:
//! - 50 contacts — names from many cultures, a company and title
//!   (`metadata.company`, `metadata.title`, which the templates read), the
//!   relationship as tags (`customer`, `prospect`, `partner`, `investor`,
//!   `advisor`, `press`, some `vip`) and a pipeline stage — through
//!   [`contacts::upsert`], then dated from when they were imported, synced
//!   or signed up (three signed up this week: onboarding's);
//! - their interactions — meetings, calls, replies, unanswered outreach,
//!   notes — through [`interactions::record`], shaped so that the scores
//!   fall in every band: hot (above 50), warm, cooling (25 to 35, the Home
//!   tab's "going cold"), cold (below 25, after a quiet week: the cold
//!   trigger's) and new (no history);
//! - consent grants with their proof (the import file; the web form and
//!   its wording; the CRM sync over the API) and revocations from a reply
//!   keyword, a one-click unsubscribe, the preferences page and a team
//!   member in Slack, two of them yesterday in the digest's zone so the
//!   first digest has opt-outs to report;
//! - one address suppressed by a hard bounce, written as a bounce webhook
//!   writes it ([`ledger::suppress`], reason `hard_bounce`);
//! - the scores of all 50 as of `now`, and the cold ones marked as first
//!   seen cold now ([`stats::refresh_cold_marks`]), so the first digest
//!   lists them as gone cold.
//!
//! Invariants:
//! - Never mixed into real data: it writes only into a database with no
//!   contact and no tombstone (someone erased means there was real data),
//!   and otherwise returns `None` having written nothing.
//! - All or nothing, once: one transaction whose first statement takes the
//!   database's write lock (SQLite) or a transaction-scoped advisory lock
//!   (PostgreSQL) before the emptiness check, so a crash leaves no half
//!   demo and two processes seeding at once seed once.
//! - Deterministic: no randomness. The same `now` gives the same rows, and
//!   any `now` gives the same scores.
//! - Nobody real can be reached: emails only on the reserved example
//!   domains (RFC 2606), phones only in ranges reserved for fiction (NANP
//!   555-01xx, Ofcom's drama numbers, ACMA's fictional numbers); the tests
//!   check every one.
//! - Consent rows are appended the way the importer appends them (the
//!   ledger's entity, never an update), dated when the grant or the
//!   revocation was given: [`crate::consent::record`] stamps the current
//!   time, and proof dated today for a sign-up a year ago would be false.

use anyhow::Context;
use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use sea_orm::{
    ActiveValue::Set, ConnectionTrait, DatabaseConnection, DatabaseTransaction, EntityTrait,
    Statement, Value,
};
use serde::Serialize;

use crate::{
    consent::Source,
    contacts::{self, ContactInput},
    db::entities::consents,
    dispatcher::ledger,
    domain::{Channel, Direction, InteractionKind as Kind, mask_email},
    interactions::{self, NewInteraction},
    reports::stats,
    state::App,
    warmth::Crossing,
};

/// Who the demo's rows say wrote them: interactions, the suppression, the
/// audit entry and the contacts' consent actor where no person acted.
pub const SOURCE: &str = "sandbox:demo";

/// What was seeded, for the start-up log line and the tests. The warmth
/// bands are counted from the scores as stored after seeding.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Seeded {
    pub contacts: usize,
    pub interactions: usize,
    /// Consent ledger rows, grants and revocations.
    pub consent_records: usize,
    /// Contacts with at least one channel whose consent they revoked.
    pub opted_out: usize,
    /// Addresses suppressed by a hard bounce.
    pub bounced: usize,
    /// Warmth above 50.
    pub hot: usize,
    /// Warmth from 35 to 50.
    pub warm: usize,
    /// Warmth from 25 to 35: going cold.
    pub cooling: usize,
    /// Warmth below 25, with a history: cold.
    pub cold: usize,
    /// No interaction yet.
    pub new: usize,
}

/// Seeds the demo workspace into an EMPTY database (no contacts, no
/// tombstones); refuses (`Ok(None)`, nothing written) otherwise, so it can
/// never mix demo people into real data. `now` is the sandbox's clock.
pub async fn seed(app: &App, now: DateTime<Utc>) -> anyhow::Result<Option<Seeded>> {
    seed_into(&app.db, app.settings.digest.timezone, now).await
}

/// [`seed`] on a bare database; `digest_timezone` says which day is
/// "yesterday" for the opt-outs the first digest reports.
pub async fn seed_into(
    db: &DatabaseConnection,
    digest_timezone: Tz,
    now: DateTime<Utc>,
) -> anyhow::Result<Option<Seeded>> {
    let people = people()?;
    let yesterday = yesterday_midday(digest_timezone, now);
    let txn = crate::db::begin_write(db)
        .await
        .context("Failed to start the demo's transaction")?;
    serialise(&txn).await?;
    if !is_empty(&txn).await? {
        txn.rollback()
            .await
            .context("Failed to end the demo's transaction")?;
        return Ok(None);
    }
    let mut seeded = Seeded::default();
    let mut contacts = Vec::with_capacity(people.len());
    for (i, person) in people.iter().enumerate() {
        let written = write_person(&txn, i, person, now, &mut seeded)
            .await
            .with_context(|| format!("Failed to seed demo contact {}", i + 1))?;
        contacts.push(written);
    }
    let id_of = |email: &str| {
        people
            .iter()
            .position(|p| p.email == email)
            .map(|i| contacts[i].0)
            .ok_or_else(|| anyhow::anyhow!("{} is not a demo contact", mask_email(email)))
    };
    let mut opted_out = std::collections::BTreeSet::new();
    for o in OPT_OUTS {
        let id = id_of(o.email)?;
        let at = match o.when {
            When::DaysAgo(d) => now - Duration::days(d),
            When::Yesterday => yesterday,
        };
        append_consent(
            &txn,
            id,
            o.channel,
            false,
            o.source.as_str(),
            o.actor,
            o.text,
            at,
        )
        .await?;
        seeded.consent_records += 1;
        opted_out.insert(id);
    }
    seeded.opted_out = opted_out.len();
    // `suppress` links the row to the contact with the address, which
    // must be one of ours.
    id_of(BOUNCED)?;
    ledger::suppress(
        &txn,
        Channel::Email.as_str(),
        BOUNCED,
        "hard_bounce",
        SOURCE,
        now - Duration::days(BOUNCED_DAYS_AGO),
    )
    .await
    .context("Failed to suppress the demo's bounced address")?;
    seeded.bounced = 1;
    // Interactions refreshed each score as they were recorded; this scores
    // the contacts without any too, so every score is stored as of `now`.
    for (id, history) in &contacts {
        let score = crate::warmth::refresh_contact(&txn, *id, now).await?;
        let band = match score.value {
            v if v > Crossing::ACTIVE_ABOVE => &mut seeded.hot,
            v if v >= stats::GOING_COLD_BELOW => &mut seeded.warm,
            v if v >= stats::COLD_BELOW => &mut seeded.cooling,
            _ if *history => &mut seeded.cold,
            _ => &mut seeded.new,
        };
        *band += 1;
    }
    seeded.contacts = contacts.len();
    // Warmline first sees the cold contacts now, so the first digest lists
    // them as gone cold (the digest's own refresh would date them at its
    // post, after the window it reads).
    stats::refresh_cold_marks(&txn, now)
        .await
        .context("Failed to mark the demo's cold contacts")?;
    crate::audit::record(
        &txn,
        SOURCE,
        "sandbox.demo_seeded",
        None,
        serde_json::to_value(seeded)?,
    )
    .await?;
    txn.commit()
        .await
        .context("Failed to commit the demo workspace")?;
    tracing::debug!(?seeded, "demo workspace seeded");
    Ok(Some(seeded))
}

/// A key no other code takes: two seeders on one PostgreSQL database wait
/// for each other here, and the second then finds the first's contacts.
const LOCK_KEY: i64 = 0x7761_726d_6465_6d6f;

async fn serialise(txn: &DatabaseTransaction) -> anyhow::Result<()> {
    // SQLite: `begin_write` already holds the only write lock.
    if crate::db::is_postgres(txn) {
        txn.execute_raw(Statement::from_sql_and_values(
            txn.get_database_backend(),
            "SELECT pg_advisory_xact_lock($1)",
            [Value::from(LOCK_KEY)],
        ))
        .await
        .context("Failed to take the demo's advisory lock")?;
    }
    Ok(())
}

async fn is_empty(txn: &DatabaseTransaction) -> anyhow::Result<bool> {
    let n = crate::db::count(
        txn,
        "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM \
         (SELECT 1 AS x FROM (SELECT id FROM contacts LIMIT 1) c \
          UNION ALL SELECT 1 AS x FROM (SELECT hash FROM tombstones LIMIT 1) t) any_row",
        vec![],
    )
    .await
    .context("Failed to check that the database is empty")?;
    Ok(n == 0)
}

/// Writes one person, their consent and their interactions. Returns the
/// contact's id and whether it has a history.
async fn write_person(
    txn: &DatabaseTransaction,
    i: usize,
    p: &Person,
    now: DateTime<Utc>,
    seeded: &mut Seeded,
) -> anyhow::Result<(i64, bool)> {
    let events = p.story.events(i, p.company, now);
    let created = p.created_at(i, &events, now);
    let mut metadata = serde_json::Map::new();
    metadata.insert("company".into(), p.company.into());
    metadata.insert("title".into(), p.title.into());
    let input = ContactInput {
        email: Some(p.email.into()),
        phone: p.phone.map(|ph| Some(ph.to_string())),
        first_name: Some(Some(p.first.into())),
        last_name: Some(Some(p.last.into())),
        timezone: Some(Some(p.timezone.into())),
        pipeline_stage: p.stage.map(|s| Some(s.to_string())),
        tags: Some(p.tags.iter().map(|t| t.to_string()).collect()),
        metadata: Some(metadata),
        ..Default::default()
    };
    let id = contacts::upsert(txn, &input, None, SOURCE)
        .await?
        .contact
        .id;
    // The contact exists since it was imported, synced or signed up; a
    // `created_at` of today would also make all 50 "new" to onboarding.
    txn.execute_raw(Statement::from_sql_and_values(
        txn.get_database_backend(),
        "UPDATE contacts SET created_at = $1, updated_at = $1 WHERE id = $2",
        [Value::from(created), Value::from(id)],
    ))
    .await?;
    if let Some(proof) = &p.consent {
        let mut channels = vec![Channel::Email];
        if p.sms {
            channels.push(Channel::Sms);
        }
        for channel in channels {
            append_consent(
                txn,
                id,
                channel,
                true,
                &proof.source(),
                proof.actor(),
                proof.text(channel),
                created,
            )
            .await?;
            seeded.consent_records += 1;
        }
    }
    for e in &events {
        interactions::record(
            txn,
            &NewInteraction {
                contact_id: id,
                kind: e.kind,
                direction: e.direction,
                occurred_at: e.at,
                summary: Some(e.summary.clone()),
                source: SOURCE.into(),
                channel: (e.kind == Kind::Email).then(|| Channel::Email.as_str().to_string()),
            },
            now,
        )
        .await?;
    }
    seeded.interactions += events.len();
    Ok((id, !events.is_empty()))
}

/// Appends one row to the consent ledger, dated `at`.
#[allow(clippy::too_many_arguments)]
async fn append_consent(
    txn: &DatabaseTransaction,
    contact_id: i64,
    channel: Channel,
    granted: bool,
    source: &str,
    actor: &str,
    text: Option<&str>,
    at: DateTime<Utc>,
) -> anyhow::Result<()> {
    consents::Entity::insert(consents::ActiveModel {
        contact_id: Set(contact_id),
        channel: Set(channel.as_str().to_string()),
        granted: Set(granted),
        source: Set(source.to_string()),
        actor: Set(Some(actor.to_string())),
        consent_text: Set(text.map(str::to_string)),
        recorded_at: Set(at),
        ..Default::default()
    })
    .exec(txn)
    .await
    .context("Failed to record the demo's consent")?;
    Ok(())
}

/// Noon of yesterday in the digest's zone (the middle of the local day, so
/// a DST change cannot push it out of the day).
fn yesterday_midday(tz: Tz, now: DateTime<Utc>) -> DateTime<Utc> {
    let today = now.with_timezone(&tz).date_naive();
    let yesterday = today.pred_opt().unwrap_or(today);
    let (from, to) = stats::local_day_bounds(tz, yesterday);
    from + (to - from) / 2
}

// ------------------------------------------------------------------ people

/// How a relationship has gone; each story is a timeline of interactions
/// that lands in one warmth band (checked by the tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Story {
    /// Met this week, replying: above 50.
    Hot,
    /// A meeting six weeks ago: 35 to 50.
    Warm,
    /// Two unanswered follow-ups after the last meeting: 25 to 35.
    Cooling,
    /// Three months of silence: below 25.
    Fading,
    /// Half a year of silence: far below 25.
    Lapsed,
    /// Three emails, never answered: one-way outreach only.
    Outreach,
    /// Signed up this week; no history.
    New,
}

impl Story {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "hot" => Story::Hot,
            "warm" => Story::Warm,
            "cooling" => Story::Cooling,
            "fading" => Story::Fading,
            "lapsed" => Story::Lapsed,
            "outreach" => Story::Outreach,
            "new" => Story::New,
            _ => return None,
        })
    }

    /// The recent part of the timeline, inside the warmth horizon.
    fn beats(self) -> &'static [Beat] {
        match self {
            Story::Hot => HOT,
            Story::Warm => WARM,
            Story::Cooling => COOLING,
            Story::Fading => FADING,
            Story::Lapsed => LAPSED,
            Story::Outreach => OUTREACH,
            Story::New => &[],
        }
    }

    /// Whether the relationship goes back beyond the horizon.
    fn has_past(self) -> bool {
        !matches!(self, Story::Outreach | Story::New)
    }

    /// The person's interactions, oldest first: the past (older than the
    /// warmth horizon, so it explains the relationship without moving the
    /// score), then the story's beats. `i` varies the days, hours and
    /// wording from person to person.
    fn events(self, i: usize, company: &str, now: DateTime<Utc>) -> Vec<Event> {
        let n = i as i64;
        let past = if self.has_past() { PAST } else { &[] };
        let shift = (n * 11) % 30;
        let jitter = n % 5;
        let mut out = Vec::new();
        let timeline = past
            .iter()
            .enumerate()
            // Not everyone has had every kind of contact.
            .filter(|(k, _)| !(i + k).is_multiple_of(4))
            .map(|(_, b)| (b, b.days + shift))
            .chain(self.beats().iter().map(|b| (b, b.days + b.jitter * jitter)));
        for (k, (b, days)) in timeline.enumerate() {
            let hours = (n * 5 + k as i64 * 3) % 9;
            let minutes = (n * 17 + k as i64 * 7) % 60;
            let at =
                now - Duration::days(days) - Duration::hours(hours) - Duration::minutes(minutes);
            let pool = summaries(self, b.kind, b.direction);
            let summary = if self == Story::Outreach {
                pool[k % pool.len()]
            } else {
                pool[(i + k) % pool.len()]
            };
            out.push(Event {
                at,
                kind: b.kind,
                direction: b.direction,
                summary: summary.replace("{company}", company),
            });
        }
        out
    }
}

/// One interaction of a timeline: `days` ago, plus `jitter` days per step
/// of the person's variation (0 to 4).
struct Beat {
    days: i64,
    jitter: i64,
    kind: Kind,
    direction: Direction,
}

const fn beat(days: i64, jitter: i64, kind: Kind, direction: Direction) -> Beat {
    Beat {
        days,
        jitter,
        kind,
        direction,
    }
}

const IN: Direction = Direction::Inbound;
const OUT: Direction = Direction::Outbound;

const HOT: &[Beat] = &[
    beat(180, 0, Kind::Meeting, OUT),
    beat(120, 0, Kind::Call, OUT),
    beat(75, 0, Kind::Meeting, IN),
    beat(40, 0, Kind::Email, IN),
    beat(28, 0, Kind::Meeting, OUT),
    beat(12, 2, Kind::Call, OUT),
    beat(6, 2, Kind::Email, OUT),
    beat(4, 2, Kind::Meeting, OUT),
    beat(2, 2, Kind::Email, IN),
];

const WARM: &[Beat] = &[
    beat(200, 0, Kind::Meeting, OUT),
    beat(130, 0, Kind::Email, IN),
    beat(90, 1, Kind::Call, OUT),
    beat(60, 1, Kind::Email, IN),
    beat(44, 1, Kind::Meeting, OUT),
    beat(20, 1, Kind::Email, OUT),
];

const COOLING: &[Beat] = &[
    beat(200, 0, Kind::Meeting, OUT),
    beat(150, 0, Kind::Email, IN),
    beat(72, 1, Kind::Meeting, OUT),
    beat(58, 1, Kind::Email, IN),
    beat(30, 1, Kind::Email, OUT),
    beat(14, 1, Kind::Email, OUT),
];

const FADING: &[Beat] = &[
    beat(230, 0, Kind::Meeting, OUT),
    beat(100, 1, Kind::Meeting, OUT),
    beat(82, 1, Kind::Email, IN),
    beat(40, 1, Kind::Email, OUT),
    beat(25, 1, Kind::Email, OUT),
];

const LAPSED: &[Beat] = &[
    beat(235, 0, Kind::Meeting, OUT),
    beat(150, 3, Kind::Email, IN),
    beat(95, 1, Kind::Email, OUT),
];

const OUTREACH: &[Beat] = &[
    beat(75, 1, Kind::Email, OUT),
    beat(45, 1, Kind::Email, OUT),
    beat(20, 1, Kind::Email, OUT),
];

/// How the relationships began: between eight and sixteen months ago,
/// all of it past the warmth horizon (240 days at the default half-life).
const PAST: &[Beat] = &[
    beat(480, 0, Kind::Meeting, OUT),
    beat(470, 0, Kind::Email, IN),
    beat(400, 0, Kind::Call, OUT),
    beat(330, 0, Kind::Email, OUT),
    beat(325, 0, Kind::Email, IN),
    beat(300, 0, Kind::Note, OUT),
    beat(260, 0, Kind::Meeting, IN),
];

/// What was said, by kind and direction; `{company}` is the person's.
fn summaries(story: Story, kind: Kind, direction: Direction) -> &'static [&'static str] {
    use Direction::{Inbound as In, Outbound as Out};
    match (kind, direction) {
        (Kind::Email, Out) if story == Story::Outreach => &[
            "Intro email: how teams like {company} use us",
            "Follow-up with a short case study",
            "Last check-in on my earlier note",
        ],
        (Kind::Meeting, Out) => &[
            "Intro meeting with {company}",
            "Quarterly business review with {company}",
            "Working session on the {company} rollout",
            "Coffee catch-up in town",
            "Roadmap walkthrough for the {company} team",
            "Lunch: talked about their hiring plans",
        ],
        (Kind::Meeting, In) => &[
            "They asked to meet about renewal terms",
            "{company} invited us to their demo day",
            "Asked for a meeting to plan the next phase",
        ],
        (Kind::Call, _) => &[
            "Call to walk through pricing options",
            "Check-in call",
            "Call about the proposal's open questions",
            "Quick call on next steps",
        ],
        (Kind::Email | Kind::Message, In) => &[
            "Replied: happy to find time next week",
            "Replied with questions about the contract",
            "Sent over the signed order form",
            "Replied: thanks for the introduction!",
            "Replied and looped in their CFO",
            "Asked for the updated deck",
        ],
        (Kind::Email | Kind::Message, Out) => &[
            "Sent the follow-up deck",
            "Shared a customer case study",
            "Followed up on the proposal",
            "Sent a recap of our call",
            "Shared the quarterly product update",
            "Checked in after the conference",
        ],
        (Kind::Note, _) => &[
            "Met at a conference; wants to stay in touch",
            "Mutual intro through a former colleague",
            "Good fit for the partner programme",
        ],
    }
}

/// One interaction about to be recorded.
#[derive(Debug, Clone)]
struct Event {
    at: DateTime<Utc>,
    kind: Kind,
    direction: Direction,
    summary: String,
}

/// How a contact's consent was collected: the proof the ledger keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Proof {
    /// A column of the CRM export imported at the start.
    Import,
    /// A sign-up form on the website, by its name.
    Form(&'static str),
    /// The CRM's sync over the JSON API, by its name.
    Api(&'static str),
}

/// The file the initial import read, as the importer names its source.
const IMPORT_FILE: &str = "crm-export.csv";
/// When the CRM export was imported: before anything else happened.
const IMPORTED_DAYS_AGO: i64 = 540;

impl Proof {
    /// `None` for `none`: no consent recorded at all.
    fn parse(s: &'static str) -> Result<Option<Self>, String> {
        match s.split_once(':') {
            None if s == "none" => Ok(None),
            None if s == "import" => Ok(Some(Proof::Import)),
            Some(("form", name)) if !name.is_empty() => Ok(Some(Proof::Form(name))),
            Some(("api", name)) if !name.is_empty() => Ok(Some(Proof::Api(name))),
            _ => Err(format!(
                "'{s}' is not import, form:<name>, api:<name> or none"
            )),
        }
    }

    /// The ledger's `source`, which [`Source::parse`] reads back.
    fn source(self) -> String {
        match self {
            Proof::Import => format!("{}:{IMPORT_FILE}", Source::Import.as_str()),
            Proof::Form(name) => format!("{}:{name}", Source::Form.as_str()),
            Proof::Api(name) => format!("{}:{name}", Source::Api.as_str()),
        }
    }

    /// Who recorded it, as each path names itself.
    fn actor(self) -> &'static str {
        match self {
            Proof::Import => "warmline import",
            Proof::Form(_) => "web form",
            Proof::Api(_) => "api:key:demo",
        }
    }

    /// The wording the person agreed to (an import carries none).
    fn text(self, channel: Channel) -> Option<&'static str> {
        match (self, channel) {
            (Proof::Import, _) => None,
            (Proof::Form(_), Channel::Sms) => Some(
                "Yes, text me reminders and updates. Msg & data rates may apply. \
                 Reply STOP to opt out.",
            ),
            (Proof::Form(_), _) => Some(
                "Yes, email me product news and the occasional check-in. \
                 I can unsubscribe at any time.",
            ),
            (Proof::Api(_), _) => Some("Double opt-in confirmed in the CRM"),
        }
    }
}

/// One demo person, read from [`PEOPLE`].
#[derive(Debug, Clone)]
struct Person {
    first: &'static str,
    last: &'static str,
    email: &'static str,
    phone: Option<&'static str>,
    timezone: &'static str,
    company: &'static str,
    title: &'static str,
    tags: Vec<&'static str>,
    stage: Option<&'static str>,
    story: Story,
    consent: Option<Proof>,
    /// Consent to SMS too (with the same proof).
    sms: bool,
}

impl Person {
    /// When they entered the CRM: the import, or a few days before their
    /// first interaction (the sync or the sign-up), or this week.
    fn created_at(&self, i: usize, events: &[Event], now: DateTime<Utc>) -> DateTime<Utc> {
        match (self.consent, events.iter().map(|e| e.at).min()) {
            (Some(Proof::Import), _) => now - Duration::days(IMPORTED_DAYS_AGO),
            (_, Some(first)) => first - Duration::days(5),
            (_, None) => now - Duration::days(1 + (i % 3) as i64) - Duration::hours(3),
        }
    }
}

/// The 50 people: `first|last|email|phone|timezone|company|title|tags|
/// stage|story|consent|sms`, `-` for none. Consent is `import`,
/// `form:<form>`, `api:<sync>` or `none`; `sms` grants SMS as well.
const PEOPLE: &str = "\
Amara|Okafor|amara.okafor@lumenhealth.example.com|-|Africa/Lagos|Lumen Health|VP Operations|customer,vip|customer|hot|import|-
Daniel|Whitfield|daniel.whitfield@northwind.example.com|+12025550143|America/New_York|Northwind Traders|Head of Procurement|customer|renewal|hot|import|sms
Mei Lin|Chen|meilin@harborcap.example.net|+61355501872|Australia/Melbourne|Harbor Capital|Partner|investor,vip|-|hot|none|-
Lucas|Moreau|lucas@ateliernova.example.org|-|Europe/Paris|Atelier Nova|Co-founder|partner|-|hot|api:partner-portal|-
Priya|Raghunathan|priya.r@brightpath.example.com|+14155550104|America/Los_Angeles|Brightpath Analytics|CTO|customer|customer|hot|form:webinar-signup|-
Jonas|Lindqvist|jonas.lindqvist@fjordlogistics.example.com|-|Europe/Stockholm|Fjord Logistics|COO|customer|customer|hot|import|-
Sofía|Hernández|sofia@solanavc.example.net|-|America/Mexico_City|Solana Ventures|Principal|investor|-|hot|none|-
Kenji|Watanabe|k.watanabe@kaizen.example.com|-|Asia/Tokyo|Kaizen Robotics|Director of Engineering|partner|-|hot|api:partner-portal|-
Grace|O'Brien|grace@cloverfinch.example.org|+442079460958|Europe/London|Clover & Finch|Managing Director|advisor|-|hot|import|-
Olivia|Bennett|olivia.bennett@tidewater.example.com|+13125550178|America/Chicago|Tidewater Bank|Innovation Lead|prospect|proposal|warm|api:hubspot-sync|sms
Tomasz|Kowalski|tomasz.kowalski@vistula.example.com|-|Europe/Warsaw|Vistula Software|Head of Product|customer|customer|warm|import|-
Aisha|Rahman|aisha.rahman@crescentfoods.example.com|+442079460577|Europe/London|Crescent Foods|Marketing Director|customer|customer|warm|form:pricing-page|-
Matteo|Bianchi|matteo@ponte.example.org|-|Europe/Rome|Ponte Partners|Partner|partner|-|warm|import|-
Hannah|Schmidt|hannah.schmidt@alpenglow.example.net|-|Europe/Berlin|Alpenglow Capital|Associate|investor|-|warm|none|-
Chloé|Dubois|chloe.dubois@maisonverte.example.com|-|Europe/Paris|Maison Verte|Head of Partnerships|partner|-|warm|api:partner-portal|-
Ethan|Brooks|ethan@redwoodlabs.example.com|+14155550112|America/Los_Angeles|Redwood Labs|Founder|advisor|-|warm|import|sms
Fatima|Al-Sayed|fatima.alsayed@oasisenergy.example.com|-|Asia/Riyadh|Oasis Energy|Procurement Manager|prospect|qualified|warm|form:demo-request|-
Liam|Murphy|liam.murphy@kestrel.example.com|+442079460321|Europe/London|Kestrel Insurance|IT Director|customer|renewal|warm|import|-
Nadia|Petrova|nadia.petrova@aurorabio.example.com|-|Europe/Sofia|Aurora Biotech|Research Director|prospect|proposal|cooling|form:whitepaper|-
Samuel|Adeyemi|samuel@baobab.example.com|-|Africa/Lagos|Baobab Fintech|CEO|prospect|qualified|cooling|api:hubspot-sync|-
Isabella|Rossi|isabella.rossi@lagodesign.example.org|-|Europe/Rome|Lago Design|Creative Director|customer|customer|cooling|import|-
Benjamin|Clarke|ben.clarke@thornbury.example.com|+441134960457|Europe/London|Thornbury Legal|Partner|customer|renewal|cooling|import|-
Yuki|Tanaka|yuki.tanaka@sakura.example.com|+14155550163|America/Los_Angeles|Sakura Mobility|Product Manager|partner|-|cooling|api:partner-portal|-
Carlos|Mendoza|carlos@andescoffee.example.com|-|America/Bogota|Andes Coffee Co.|Founder|customer|customer|cooling|form:pricing-page|-
Emily|Nguyen|emily.nguyen@pacificrim.example.com|+14155550187|America/Los_Angeles|Pacific Rim Media|Senior Editor|press|-|cooling|none|-
Oliver|Grant|oliver.grant@summitoutdoors.example.com|+17205550134|America/Denver|Summit Outdoors|Head Buyer|customer|churn-risk|fading|import|-
Leila|Haddad|leila.haddad@cedar.example.com|+14165550137|America/Toronto|Cedar Analytics|Data Lead|prospect|qualified|fading|form:webinar-signup|-
Rafael|Souza|rafael.souza@amazonia.example.com|-|America/Sao_Paulo|Amazonia Agro|Operations Director|prospect|lead|fading|api:hubspot-sync|-
Charlotte|Evans|charlotte@evanshale.example.org|+441614960789|Europe/London|Evans & Hale|Partner|advisor|-|fading|import|-
Ahmed|Hassan|ahmed.hassan@nileventures.example.net|-|Africa/Cairo|Nile Ventures|Partner|investor|-|fading|none|-
Zoë|van der Berg|zoe.vanderberg@polder.example.com|-|Europe/Amsterdam|Polder Systems|Engineering Manager|customer|customer|fading|import|-
William|Harper|william.harper@granite.example.com|+12025550166|America/New_York|Granite Construction Group|VP Finance|customer|churned|lapsed|import|-
Ana|Ferreira|ana.ferreira@lusitania.example.com|-|Europe/Lisbon|Lusitania Tours|Owner|customer|churned|lapsed|import|-
Dmitri|Volkov|dmitri@taiga.example.com|-|Europe/Tallinn|Taiga Systems|CTO|prospect|lead|lapsed|api:hubspot-sync|-
Hye-jin|Park|hyejin.park@hanbit.example.com|+61491570156|Australia/Sydney|Hanbit Games|Producer|partner|-|lapsed|import|sms
Michael|Thompson|michael@thompsonfo.example.net|+13125550190|America/Chicago|Thompson Family Office|Principal|investor|-|lapsed|none|-
Sara|Johansson|sara.johansson@nordlys.example.org|-|Europe/Oslo|Nordlys Design|Design Lead|customer|churned|lapsed|form:newsletter|-
Arjun|Mehta|arjun.mehta@induscloud.example.com|+441614960234|Europe/London|Indus Cloud|Head of Sales|partner|-|lapsed|api:partner-portal|-
Jack|Wilson|jack.wilson@outbackfreight.example.com|+61255501234|Australia/Sydney|Outback Freight|Operations Manager|customer|churned|lapsed|import|-
Elena|García|elena.garcia@mediterranea.example.com|-|Europe/Madrid|Mediterránea Hotels|General Manager|prospect|lead|lapsed|import|-
Noah|Fischer|noah.fischer@bergmann.example.com|-|Europe/Berlin|Bergmann Tools|Plant Manager|prospect|lead|outreach|form:whitepaper|-
Ava|Martinez|ava.martinez@sunbelt.example.com|+16025550121|America/Phoenix|Sunbelt Realty|Managing Broker|prospect|lead|outreach|import|sms
Kwame|Mensah|kwame.mensah@goldcoast.example.com|+441134960912|Europe/London|Gold Coast Telecom|Network Director|prospect|lead|outreach|form:webinar-signup|-
Ingrid|Larsen|ingrid@skagen.example.org|-|Europe/Copenhagen|Skagen Furniture|Owner|prospect|lead|outreach|import|-
Ryan|O'Connor|ryan.oconnor@shamrock.example.com|+16175550148|America/New_York|Shamrock Brewing|Head of Marketing|prospect|lead|outreach|api:hubspot-sync|-
Mariana|Costa|mariana.costa@atlanticopay.example.com|-|America/Sao_Paulo|Atlântico Pay|Product Lead|prospect|lead|outreach|form:pricing-page|-
Tariq|Siddiqui|tariq@indigo.example.com|-|Asia/Karachi|Indigo Textiles|Export Manager|prospect|lead|outreach|none|-
Chloe|Anderson|chloe.anderson@mapleleaf.example.com|+14165550158|America/Toronto|Maple Leaf Dental|Practice Manager|prospect|lead|new|form:pricing-page|sms
Lars|Eriksson|lars@vinter.example.com|-|Europe/Stockholm|Vinter Labs|Founder|prospect|lead|new|form:demo-request|-
Nia|Johnson|nia.johnson@bluebird.example.org|+12025550199|America/New_York|Bluebird Learning|Director of Programs|prospect|lead|new|form:newsletter|-
";

/// Reads [`PEOPLE`]. An error is a mistake in the table (the tests read it).
fn people() -> anyhow::Result<Vec<Person>> {
    fn opt(s: &'static str) -> Option<&'static str> {
        (s != "-").then_some(s)
    }
    PEOPLE
        .lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(n, line)| {
            let row = || format!("demo people, row {}", n + 1);
            let fields: [&'static str; 12] = line
                .split('|')
                .collect::<Vec<_>>()
                .try_into()
                .map_err(|f: Vec<_>| anyhow::anyhow!("{}: {} fields, not 12", row(), f.len()))?;
            let [
                first,
                last,
                email,
                phone,
                timezone,
                company,
                title,
                tags,
                stage,
                story,
                consent,
                sms,
            ] = fields;
            Ok(Person {
                first,
                last,
                email,
                phone: opt(phone),
                timezone,
                company,
                title,
                tags: tags.split(',').collect(),
                stage: opt(stage),
                story: Story::parse(story)
                    .ok_or_else(|| anyhow::anyhow!("{}: no story '{story}'", row()))?,
                consent: Proof::parse(consent).map_err(|e| anyhow::anyhow!("{}: {e}", row()))?,
                sms: match sms {
                    "sms" => true,
                    "-" => false,
                    other => anyhow::bail!("{}: '{other}' is neither sms nor -", row()),
                },
            })
        })
        .collect()
}

// -------------------------------------------------- opt-outs and the bounce

enum When {
    DaysAgo(i64),
    /// Noon yesterday in the digest's zone: the first digest reports it.
    Yesterday,
}

/// A revocation, as the path its source names records it.
struct OptOut {
    email: &'static str,
    channel: Channel,
    source: Source,
    actor: &'static str,
    text: Option<&'static str>,
    when: When,
}

const OPT_OUTS: &[OptOut] = &[
    // Wants emails, not texts.
    OptOut {
        email: "daniel.whitfield@northwind.example.com",
        channel: Channel::Sms,
        source: Source::ReplyKeyword,
        actor: "recipient",
        text: Some("STOP"),
        when: When::DaysAgo(10),
    },
    OptOut {
        email: "ana.ferreira@lusitania.example.com",
        channel: Channel::Email,
        source: Source::ReplyKeyword,
        actor: "recipient",
        text: Some("Unsubscribe"),
        when: When::DaysAgo(40),
    },
    OptOut {
        email: "charlotte@evanshale.example.org",
        channel: Channel::Email,
        source: Source::SlackUser,
        actor: "U0DEMOTEAM",
        text: Some("Opted out by a team member in Slack"),
        when: When::DaysAgo(60),
    },
    OptOut {
        email: "noah.fischer@bergmann.example.com",
        channel: Channel::Email,
        source: Source::OneClickUnsubscribe,
        actor: "recipient",
        text: None,
        when: When::Yesterday,
    },
    OptOut {
        email: "isabella.rossi@lagodesign.example.org",
        channel: Channel::Email,
        source: Source::PreferencesPage,
        actor: "recipient",
        text: None,
        when: When::Yesterday,
    },
];

/// The address a provider reported as a hard bounce (they left the
/// company): suppressed, though their consent still stands.
const BOUNCED: &str = "william.harper@granite.example.com";
const BOUNCED_DAYS_AGO: i64 = 12;

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use chrono::TimeZone;

    use super::*;
    use crate::{
        domain::E164Phone,
        warmth::model::{self, Params},
    };

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap()
    }

    #[test]
    fn the_table_reads_as_fifty_distinct_people_of_every_story() {
        // Act
        let people = people().unwrap();

        // Assert
        assert_eq!(people.len(), 50);
        let emails: BTreeSet<&str> = people.iter().map(|p| p.email).collect();
        assert_eq!(emails.len(), 50, "emails are unique");
        for story in [
            Story::Hot,
            Story::Warm,
            Story::Cooling,
            Story::Fading,
            Story::Lapsed,
            Story::Outreach,
            Story::New,
        ] {
            assert!(people.iter().any(|p| p.story == story), "{story:?}");
        }
        let phones = people.iter().filter(|p| p.phone.is_some()).count();
        assert!(
            (20..=30).contains(&phones),
            "about half have a phone: {phones}"
        );
        for p in &people {
            assert!(p.timezone.parse::<Tz>().is_ok(), "{}", p.timezone);
            assert!(
                !p.sms || p.phone.is_some(),
                "{}: SMS needs a phone",
                p.email
            );
        }
    }

    #[test]
    fn every_address_is_reserved_for_examples_and_fiction() {
        // Arrange
        let reserved_domain = |email: &str| {
            let domain = email.rsplit_once('@').unwrap().1;
            ["example.com", "example.org", "example.net"]
                .iter()
                .any(|r| domain == *r || domain.ends_with(&format!(".{r}")))
        };
        // NANP 555-0100..0199; Ofcom's drama ranges (London, Leeds,
        // Manchester); ACMA's fictional landline and mobile numbers.
        let fictional = regex::Regex::new(
            r"^(\+1\d{3}55501\d{2}|\+44(207946|113496|161496)0\d{3}|\+61[2378]5550\d{4}|\+6149157(0006|0156|0157|0158|0159|0110|0313|0737|1266|1491|1804))$",
        )
        .unwrap();

        for p in people().unwrap() {
            // Assert
            assert!(reserved_domain(p.email), "{}", p.email);
            assert!(p.email.is_ascii(), "{}", p.email);
            if let Some(phone) = p.phone {
                let parsed = E164Phone::parse(phone, None).unwrap();
                assert_eq!(parsed.as_str(), phone, "stored as written");
                assert!(fictional.is_match(phone), "{phone} is not fictional");
            }
        }
        assert!(reserved_domain(BOUNCED));
    }

    #[test]
    fn every_story_lands_in_its_warmth_band_for_every_person() {
        for (i, p) in people().unwrap().iter().enumerate() {
            // Arrange
            let events: Vec<model::Event> = p
                .story
                .events(i, p.company, now())
                .iter()
                .map(|e| model::Event {
                    at: e.at,
                    kind: e.kind,
                    direction: e.direction,
                })
                .collect();
            let last = events.iter().map(|e| e.at).max();

            // Act
            let score = model::score(&events, last, now(), &Params::default()).value;

            // Assert
            let band = match p.story {
                Story::Hot => 50.0..=100.0,
                Story::Warm => 35.0..=50.0,
                Story::Cooling => 25.0..=35.0,
                Story::Fading | Story::Lapsed | Story::Outreach => 0.1..=24.9,
                Story::New => 0.0..=0.0,
            };
            assert!(
                band.contains(&score),
                "{} ({:?}): {score}",
                p.email,
                p.story
            );
            if let Some(last) = last {
                let quiet = (now() - last).num_days();
                let cold = score < 25.0;
                assert!(
                    !cold || quiet >= 7,
                    "{}: cold after only {quiet} days",
                    p.email
                );
            }
        }
    }

    #[test]
    fn interactions_come_before_now_and_after_the_contact_was_created() {
        for (i, p) in people().unwrap().iter().enumerate() {
            let events = p.story.events(i, p.company, now());
            let created = p.created_at(i, &events, now());
            assert!(created < now(), "{}", p.email);
            for e in &events {
                assert!(e.at > created && e.at < now(), "{}: {}", p.email, e.at);
                assert!(!e.summary.contains('{'), "{}", e.summary);
            }
            let span = events.first().map(|e| (now() - e.at).num_days());
            if p.story.has_past() {
                assert!(span.unwrap() > 365, "{}: a long history", p.email);
            }
        }
    }

    #[test]
    fn revocations_and_the_bounce_name_demo_people_with_consent() {
        // Arrange
        let people = people().unwrap();
        let find = |email: &str| people.iter().find(|p| p.email == email).unwrap();

        // Assert
        for o in OPT_OUTS {
            let p = find(o.email);
            assert!(p.consent.is_some(), "{}: revoking needs a grant", o.email);
            assert!(o.channel == Channel::Email || p.sms, "{}", o.email);
        }
        let sources: BTreeSet<&str> = OPT_OUTS.iter().map(|o| o.source.as_str()).collect();
        assert!(sources.len() >= 3, "{sources:?}");
        let bounced = find(BOUNCED);
        assert!(bounced.consent.is_some(), "suppressed despite consent");
        assert!(matches!(bounced.story, Story::Lapsed | Story::Fading));
    }

    #[test]
    fn yesterday_is_the_previous_day_where_the_digest_is_read() {
        // 01:00 UTC on the 26th is still the 25th in New York.
        let tz: Tz = "America/New_York".parse().unwrap();
        let now = Utc.with_ymd_and_hms(2026, 11, 26, 1, 0, 0).unwrap();

        let y = yesterday_midday(tz, now);

        assert_eq!(
            y.with_timezone(&tz).date_naive(),
            chrono::NaiveDate::from_ymd_opt(2026, 11, 24).unwrap()
        );
        assert!(y < now);
    }
}
