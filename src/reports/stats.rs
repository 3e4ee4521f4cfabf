//! Set-based queries behind the App Home tab and the daily digest.
//!
//! Definitions (the Home tab and the digest say the same thing because they
//! read the same functions):
//! - **pending approval**: an `approvals` row in state `pending`; its age is
//!   `now − created_at`. For one person, only those they may decide: they are
//!   an approver (checked by the caller) and did not request it themselves,
//!   unless `approval.allow_self_approval`.
//! - **drafts**: a person's saved, unsubmitted `campaign_drafts`, plus their
//!   campaigns not out yet (`draft`, `awaiting_approval`, `scheduled`).
//! - **going cold**: a contact someone has talked to (`last_interaction_at`
//!   set) with `25 ≤ warmth < 35` — close to the line the cold trigger acts on.
//! - **gone cold**: a contact with `warmth < 25` whose crossing warmline
//!   first observed in the window. Contacts carry no warmth history, so
//!   [`refresh_cold_marks`] records when each contact was first seen below 25
//!   (`cold_marks`); one that warms back up loses its mark. The first refresh
//!   marks every contact already cold, so the first digest lists them all.
//! - **sent in a window**: `messages.sent_at` in `[from, to)` (the provider
//!   accepted it then), whatever happened after.
//! - **delivery rate**: of those, `delivered` or `complained` (a complaint
//!   implies delivery) / sent. **bounce rate**: `bounced` / sent.
//!   **complaint rate**: `complained` / sent.
//! - **unsubscribe rate**: revocations in the window from a recipient's own
//!   action (`one_click_unsubscribe`, `preferences_page`, `reply_keyword`) /
//!   messages sent in the window. **new opt-outs**: every revocation in the
//!   window, by source.
//! - **ambiguous**: messages in state `ambiguous`, oldest first (by when they
//!   became ambiguous, `updated_at`); addresses masked.
//! - **approval turnaround**: `decided_at − created_at` of approvals a person
//!   approved or denied (not voided or expired) in the window; the median.
//!
//! Rates are `None` when nothing was sent: "0 %" of nothing would read as
//! a good result.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use sea_orm::{ConnectionTrait, FromQueryResult, Statement, Value};
use serde::Serialize;

use crate::{
    consent::Source,
    contacts::display::display_name,
    db::count,
    domain::{ApprovalState, CampaignState, Channel, MessageState, mask_email, mask_phone},
};

/// Warmth below this is cold (the cold trigger's line).
pub const COLD_BELOW: f64 = 25.0;
/// Warmth below this (and at or above [`COLD_BELOW`]) is going cold.
pub const GOING_COLD_BELOW: f64 = 35.0;

/// Revocation sources that are a recipient's own reaction to a message.
pub const UNSUBSCRIBE_SOURCES: [Source; 3] = [
    Source::OneClickUnsubscribe,
    Source::PreferencesPage,
    Source::ReplyKeyword,
];

fn stmt(conn: &impl ConnectionTrait, sql: &str, values: Vec<Value>) -> Statement {
    Statement::from_sql_and_values(conn.get_database_backend(), sql, values)
}

/// A list cut to its first items, with how many there are in all.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Truncated<T> {
    pub items: Vec<T>,
    pub total: i64,
    /// `total − items.len()`: rendered as "and N more".
    pub more: i64,
}

impl<T> Truncated<T> {
    fn new(items: Vec<T>, total: i64) -> Self {
        let more = (total - items.len() as i64).max(0);
        Self { items, total, more }
    }
}

/// "3d 4h", "2h 5m", "7m".
pub fn human_duration(d: Duration) -> String {
    let mins = d.num_minutes().max(0);
    let (days, hours, m) = (mins / 1440, (mins % 1440) / 60, mins % 60);
    if days > 0 {
        format!("{days}d {hours}h")
    } else if hours > 0 {
        format!("{hours}h {m}m")
    } else {
        format!("{m}m")
    }
}

/// The UTC instant a local day starts at. A midnight that does not exist
/// (a DST gap at 00:00) starts at the first instant after it.
pub fn local_day_start(tz: Tz, day: NaiveDate) -> DateTime<Utc> {
    let midnight = day.and_hms_opt(0, 0, 0).expect("midnight is a time");
    (0..=180)
        .find_map(|m| {
            tz.from_local_datetime(&(midnight + Duration::minutes(m)))
                .earliest()
        })
        .map(|d| d.with_timezone(&Utc))
        .unwrap_or_else(|| Utc.from_utc_datetime(&midnight))
}

/// `[start of day, start of the next day)` in UTC.
pub fn local_day_bounds(tz: Tz, day: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
    let next = day.succ_opt().expect("a day has a next day");
    (local_day_start(tz, day), local_day_start(tz, next))
}

fn mask_address(channel: Channel, address: Option<&str>) -> String {
    match address {
        None | Some("") => "unknown address".into(),
        Some(a) if channel == Channel::Email => mask_email(a),
        Some(a) => mask_phone(a),
    }
}

// ---------------------------------------------------------------- approvals

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PendingApproval {
    pub id: i64,
    pub campaign_id: i64,
    pub name: String,
    pub requested_by: String,
    /// `<@U…>` for a person, else the automation's name (`trigger:cold`).
    pub requester: String,
    pub recipients: i64,
    pub created_at: DateTime<Utc>,
    pub age_minutes: i64,
    /// "2h 5m".
    pub age: String,
}

/// Pending approvals, oldest first. `decider`: only those this user may
/// decide, i.e. not requested by them (the caller checks they approve at
/// all); `allow_self` lifts that.
pub async fn pending_approvals(
    conn: &impl ConnectionTrait,
    now: DateTime<Utc>,
    decider: Option<&str>,
    allow_self: bool,
    limit: u64,
) -> anyhow::Result<Truncated<PendingApproval>> {
    #[derive(FromQueryResult)]
    struct Row {
        id: i64,
        campaign_id: i64,
        name: String,
        requested_by: String,
        recipients: i64,
        created_at: DateTime<Utc>,
    }
    let (cond, mut values) = match decider {
        Some(user) if !allow_self => (
            " AND a.requested_by <> $1",
            vec![Value::from(user.to_string())],
        ),
        _ => ("", vec![]),
    };
    let total = count(
        conn,
        &format!(
            "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM approvals a WHERE a.state = {pending}{cond}",
            pending = ApprovalState::Pending.sql(),
        ),
        values.clone(),
    )
    .await?;
    let lim = format!("${}", values.len() + 1);
    values.push(Value::from(limit as i64));
    let rows = Row::find_by_statement(stmt(
        conn,
        &format!(
            "SELECT a.id, a.campaign_id, c.name, a.requested_by, a.created_at, \
             (SELECT CAST(COUNT(*) AS BIGINT) FROM messages m WHERE m.campaign_id = a.campaign_id) AS recipients \
             FROM approvals a JOIN campaigns c ON c.id = a.campaign_id \
             WHERE a.state = {pending}{cond} ORDER BY a.created_at, a.id LIMIT {lim}",
            pending = ApprovalState::Pending.sql(),
        ),
        values,
    ))
    .all(conn)
    .await?;
    let items = rows
        .into_iter()
        .map(|r| {
            let age = now - r.created_at;
            PendingApproval {
                id: r.id,
                campaign_id: r.campaign_id,
                name: r.name,
                requester: if crate::approval::is_person(&r.requested_by) {
                    format!("<@{}>", r.requested_by)
                } else {
                    r.requested_by.clone()
                },
                requested_by: r.requested_by,
                recipients: r.recipients,
                created_at: r.created_at,
                age_minutes: age.num_minutes().max(0),
                age: human_duration(age),
            }
        })
        .collect();
    Ok(Truncated::new(items, total))
}

/// The median of `decided_at − created_at` over approvals a person decided
/// in `[from, to)`; `None` when there were none.
pub async fn median_turnaround(
    conn: &impl ConnectionTrait,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> anyhow::Result<Option<Duration>> {
    #[derive(FromQueryResult)]
    struct Row {
        created_at: DateTime<Utc>,
        decided_at: DateTime<Utc>,
    }
    let rows = Row::find_by_statement(stmt(
        conn,
        &format!(
            "SELECT created_at, decided_at FROM approvals \
             WHERE state IN ({}) AND decided_at IS NOT NULL \
             AND decided_at >= $1 AND decided_at < $2",
            ApprovalState::sql_list(&[ApprovalState::Approved, ApprovalState::Denied])
        ),
        vec![Value::from(from), Value::from(to)],
    ))
    .all(conn)
    .await?;
    let mut secs: Vec<i64> = rows
        .iter()
        .map(|r| (r.decided_at - r.created_at).num_seconds().max(0))
        .collect();
    Ok(median(&mut secs).map(Duration::seconds))
}

/// The median (the mean of the middle two for an even count).
fn median(v: &mut [i64]) -> Option<i64> {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable();
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2
    })
}

// ---------------------------------------------------------------- campaigns

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CampaignRow {
    pub id: i64,
    pub name: String,
    pub state: CampaignState,
    pub channel: Channel,
    pub created_at: DateTime<Utc>,
}

/// `user`'s campaigns in `states`, newest first.
pub async fn campaigns_by_requester(
    conn: &impl ConnectionTrait,
    user: &str,
    states: &[CampaignState],
    limit: u64,
) -> anyhow::Result<Truncated<CampaignRow>> {
    #[derive(FromQueryResult)]
    struct Row {
        id: i64,
        name: String,
        state: CampaignState,
        channel: Channel,
        created_at: DateTime<Utc>,
    }
    if states.is_empty() {
        return Ok(Truncated::new(vec![], 0));
    }
    let placeholders: Vec<String> = (0..states.len()).map(|i| format!("${}", i + 2)).collect();
    let cond = format!("created_by = $1 AND state IN ({})", placeholders.join(", "));
    let mut values = vec![Value::from(user.to_string())];
    values.extend(states.iter().map(|s| Value::from(s.as_str())));
    let total = count(
        conn,
        &format!("SELECT CAST(COUNT(*) AS BIGINT) AS n FROM campaigns WHERE {cond}"),
        values.clone(),
    )
    .await?;
    let lim = format!("${}", values.len() + 1);
    values.push(Value::from(limit as i64));
    let rows = Row::find_by_statement(stmt(
        conn,
        &format!(
            "SELECT id, name, state, channel, created_at FROM campaigns WHERE {cond} \
             ORDER BY created_at DESC, id DESC LIMIT {lim}"
        ),
        values,
    ))
    .all(conn)
    .await?;
    let items = rows
        .into_iter()
        .map(|r| CampaignRow {
            id: r.id,
            name: r.name,
            state: r.state,
            channel: r.channel,
            created_at: r.created_at,
        })
        .collect();
    Ok(Truncated::new(items, total))
}

/// A saved draft (`campaign_drafts`) not yet submitted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DraftRow {
    pub id: i64,
    pub name: String,
    pub updated_at: DateTime<Utc>,
}

/// `user`'s saved, unsubmitted drafts, most recently edited first. A
/// submitted draft is listed through its campaign instead; one only
/// previewed (`spec` NULL) is not a draft yet.
pub async fn drafts_by_author(
    conn: &impl ConnectionTrait,
    user: &str,
    limit: u64,
) -> anyhow::Result<Truncated<DraftRow>> {
    #[derive(FromQueryResult)]
    struct Row {
        id: i64,
        name: String,
        updated_at: DateTime<Utc>,
    }
    let cond = "created_by = $1 AND spec IS NOT NULL AND submitted_at IS NULL";
    let total = count(
        conn,
        &format!("SELECT CAST(COUNT(*) AS BIGINT) AS n FROM campaign_drafts WHERE {cond}"),
        vec![Value::from(user.to_string())],
    )
    .await?;
    let rows = Row::find_by_statement(stmt(
        conn,
        &format!(
            "SELECT id, name, updated_at FROM campaign_drafts WHERE {cond} \
             ORDER BY updated_at DESC, id DESC LIMIT $2"
        ),
        vec![Value::from(user.to_string()), Value::from(limit as i64)],
    ))
    .all(conn)
    .await?;
    let items = rows
        .into_iter()
        .map(|r| DraftRow {
            id: r.id,
            name: r.name,
            updated_at: r.updated_at,
        })
        .collect();
    Ok(Truncated::new(items, total))
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunningCampaign {
    pub id: i64,
    pub name: String,
    pub state: CampaignState,
    pub created_by: String,
    pub total: i64,
    /// Messages that reached an outcome (settled states).
    pub done: i64,
    pub percent: i64,
    /// Message count per state.
    pub progress: BTreeMap<String, i64>,
}

/// Running and paused campaigns (everyone's), oldest first, with progress
/// from the ledger.
pub async fn running_campaigns(
    conn: &impl ConnectionTrait,
    limit: u64,
) -> anyhow::Result<Truncated<RunningCampaign>> {
    #[derive(FromQueryResult)]
    struct Row {
        id: i64,
        name: String,
        state: CampaignState,
        created_by: String,
    }
    let cond = format!(
        "state IN ({})",
        CampaignState::sql_list(&[CampaignState::Running, CampaignState::Paused])
    );
    let total = count(
        conn,
        &format!("SELECT CAST(COUNT(*) AS BIGINT) AS n FROM campaigns WHERE {cond}"),
        vec![],
    )
    .await?;
    let rows = Row::find_by_statement(stmt(
        conn,
        &format!(
            "SELECT id, name, state, created_by FROM campaigns WHERE {cond} \
             ORDER BY created_at, id LIMIT $1"
        ),
        vec![Value::from(limit as i64)],
    ))
    .all(conn)
    .await?;
    let mut items = Vec::with_capacity(rows.len());
    for r in rows {
        // Bounded by `limit`: one grouped count per listed campaign.
        let progress = crate::dispatcher::ledger::campaign_progress(conn, r.id).await?;
        let total: i64 = progress.values().sum();
        let done: i64 = progress
            .iter()
            .filter(|(s, _)| s.is_settled())
            .map(|(_, n)| n)
            .sum();
        items.push(RunningCampaign {
            id: r.id,
            name: r.name,
            state: r.state,
            created_by: r.created_by,
            total,
            done,
            percent: if total > 0 { done * 100 / total } else { 0 },
            progress: progress
                .into_iter()
                .map(|(s, n)| (s.to_string(), n))
                .collect(),
        });
    }
    Ok(Truncated::new(items, total))
}

// ---------------------------------------------------------------- contacts

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ColdContact {
    pub id: i64,
    pub name: String,
    pub warmth: f64,
    pub last_interaction_at: Option<DateTime<Utc>>,
}

#[derive(FromQueryResult)]
struct ContactRow {
    id: i64,
    first_name: Option<String>,
    last_name: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    warmth: f64,
    last_interaction_at: Option<DateTime<Utc>>,
}

impl From<ContactRow> for ColdContact {
    fn from(r: ContactRow) -> Self {
        ColdContact {
            name: display_name(
                r.id,
                r.first_name.as_deref(),
                r.last_name.as_deref(),
                r.email.as_deref(),
                r.phone.as_deref(),
            ),
            id: r.id,
            warmth: (r.warmth * 10.0).round() / 10.0,
            last_interaction_at: r.last_interaction_at,
        }
    }
}

const CONTACT_COLS: &str =
    "c.id, c.first_name, c.last_name, c.email, c.phone, c.warmth, c.last_interaction_at";

/// Contacts going cold (`25 ≤ warmth < 35`), coldest first.
pub async fn going_cold(
    conn: &impl ConnectionTrait,
    limit: u64,
) -> anyhow::Result<Truncated<ColdContact>> {
    let cond = "c.last_interaction_at IS NOT NULL AND c.warmth >= $1 AND c.warmth < $2";
    let values = vec![Value::from(COLD_BELOW), Value::from(GOING_COLD_BELOW)];
    let total = count(
        conn,
        &format!("SELECT CAST(COUNT(*) AS BIGINT) AS n FROM contacts c WHERE {cond}"),
        values.clone(),
    )
    .await?;
    let mut v = values;
    v.push(Value::from(limit as i64));
    let rows = ContactRow::find_by_statement(stmt(
        conn,
        &format!(
            "SELECT {CONTACT_COLS} FROM contacts c WHERE {cond} ORDER BY c.warmth, c.id LIMIT $3"
        ),
        v,
    ))
    .all(conn)
    .await?;
    Ok(Truncated::new(
        rows.into_iter().map(Into::into).collect(),
        total,
    ))
}

/// Records when each cold contact was first seen cold, and forgets those
/// that warmed up. Idempotent; safe from several processes (the insert is
/// `ON CONFLICT DO NOTHING`, the delete only removes marks no longer true).
pub async fn refresh_cold_marks(
    conn: &impl ConnectionTrait,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    conn.execute_raw(stmt(
        conn,
        "INSERT INTO cold_marks (contact_id, since) \
         SELECT id, $1 FROM contacts WHERE last_interaction_at IS NOT NULL AND warmth < $2 \
         ON CONFLICT (contact_id) DO NOTHING",
        vec![Value::from(now), Value::from(COLD_BELOW)],
    ))
    .await?;
    conn.execute_raw(stmt(
        conn,
        "DELETE FROM cold_marks WHERE contact_id NOT IN \
         (SELECT id FROM contacts WHERE last_interaction_at IS NOT NULL AND warmth < $1)",
        vec![Value::from(COLD_BELOW)],
    ))
    .await?;
    Ok(())
}

/// Contacts first seen cold in `[from, to)` (see [`refresh_cold_marks`]),
/// coldest first.
pub async fn gone_cold(
    conn: &impl ConnectionTrait,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    limit: u64,
) -> anyhow::Result<Truncated<ColdContact>> {
    let cond = "k.since >= $1 AND k.since < $2 AND c.warmth < $3";
    let values = vec![Value::from(from), Value::from(to), Value::from(COLD_BELOW)];
    let total = count(
        conn,
        &format!(
            "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM cold_marks k \
             JOIN contacts c ON c.id = k.contact_id WHERE {cond}"
        ),
        values.clone(),
    )
    .await?;
    let mut v = values;
    v.push(Value::from(limit as i64));
    let rows = ContactRow::find_by_statement(stmt(
        conn,
        &format!(
            "SELECT {CONTACT_COLS} FROM cold_marks k JOIN contacts c ON c.id = k.contact_id \
             WHERE {cond} ORDER BY c.warmth, c.id LIMIT $4"
        ),
        v,
    ))
    .all(conn)
    .await?;
    Ok(Truncated::new(
        rows.into_iter().map(Into::into).collect(),
        total,
    ))
}

// ---------------------------------------------------------------- rates

/// Revocations in a window.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct OptOuts {
    pub total: i64,
    /// Of those, from a recipient's own action ([`UNSUBSCRIBE_SOURCES`]).
    pub unsubscribes: i64,
    /// Per source kind (`one_click_unsubscribe`, `import`, …; `other` for
    /// rows whose source has no known kind).
    pub by_source: BTreeMap<String, i64>,
}

/// Every consent revocation recorded in `[from, to)`.
pub async fn opt_outs(
    conn: &impl ConnectionTrait,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> anyhow::Result<OptOuts> {
    #[derive(FromQueryResult)]
    struct Row {
        source: String,
        n: i64,
    }
    let rows = Row::find_by_statement(stmt(
        conn,
        "SELECT source, CAST(COUNT(*) AS BIGINT) AS n FROM consents \
         WHERE granted = $1 AND recorded_at >= $2 AND recorded_at < $3 GROUP BY source",
        vec![Value::from(false), Value::from(from), Value::from(to)],
    ))
    .all(conn)
    .await?;
    let mut out = OptOuts::default();
    for r in rows {
        let kind = Source::parse(&r.source);
        out.total += r.n;
        if kind.is_some_and(|k| UNSUBSCRIBE_SOURCES.contains(&k)) {
            out.unsubscribes += r.n;
        }
        let key = kind.map_or("other", Source::as_str).to_string();
        *out.by_source.entry(key).or_default() += r.n;
    }
    Ok(out)
}

/// A rate with its verdict against a target.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rate {
    /// `None` when nothing was sent.
    pub value: Option<f64>,
    /// "0.42%", or "n/a".
    pub text: String,
    /// `None` when the rate has no target.
    pub ok: Option<bool>,
}

impl Rate {
    fn of(n: i64, of: i64, below: Option<f64>) -> Self {
        let value = (of > 0).then(|| n as f64 / of as f64);
        Rate {
            value,
            text: value.map_or_else(|| "n/a".into(), |v| format!("{:.2}%", v * 100.0)),
            ok: below.map(|t| value.is_none_or(|v| v < t)),
        }
    }
}

/// Sends and their outcomes over a window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rates {
    pub sent: i64,
    pub delivered: i64,
    pub bounced: i64,
    pub complained: i64,
    pub failed: i64,
    pub opt_outs: OptOuts,
    pub delivery: Rate,
    pub bounce: Rate,
    /// Held against [`super::COMPLAINT_TARGET`].
    pub complaint: Rate,
    /// Held against [`super::UNSUBSCRIBE_TARGET`].
    pub unsubscribe: Rate,
}

/// Messages sent in `[from, to)`, what became of them, and the window's
/// opt-outs.
pub async fn rates(
    conn: &impl ConnectionTrait,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> anyhow::Result<Rates> {
    #[derive(FromQueryResult)]
    struct Row {
        sent: i64,
        delivered: i64,
        bounced: i64,
        complained: i64,
        failed: i64,
    }
    let sum = |cond: &str, name: &str| {
        format!("CAST(COALESCE(SUM(CASE WHEN {cond} THEN 1 ELSE 0 END), 0) AS BIGINT) AS {name}")
    };
    let sql = format!(
        "SELECT CAST(COUNT(*) AS BIGINT) AS sent, {}, {}, {}, {} FROM messages \
         WHERE sent_at IS NOT NULL AND sent_at >= $1 AND sent_at < $2",
        // A complaint follows a delivery.
        sum(
            &format!(
                "state IN ({})",
                MessageState::sql_list(&[MessageState::Delivered, MessageState::Complained])
            ),
            "delivered"
        ),
        sum(
            &format!("state = {}", MessageState::Bounced.sql()),
            "bounced"
        ),
        sum(
            &format!("state = {}", MessageState::Complained.sql()),
            "complained"
        ),
        sum(&format!("state = {}", MessageState::Failed.sql()), "failed"),
    );
    let row = Row::find_by_statement(stmt(conn, &sql, vec![Value::from(from), Value::from(to)]))
        .one(conn)
        .await?
        .unwrap_or(Row {
            sent: 0,
            delivered: 0,
            bounced: 0,
            complained: 0,
            failed: 0,
        });
    let opt_outs = opt_outs(conn, from, to).await?;
    Ok(Rates {
        delivery: Rate::of(row.delivered, row.sent, None),
        bounce: Rate::of(row.bounced, row.sent, None),
        complaint: Rate::of(row.complained, row.sent, Some(super::COMPLAINT_TARGET)),
        unsubscribe: Rate::of(
            opt_outs.unsubscribes,
            row.sent,
            Some(super::UNSUBSCRIBE_TARGET),
        ),
        sent: row.sent,
        delivered: row.delivered,
        bounced: row.bounced,
        complained: row.complained,
        failed: row.failed,
        opt_outs,
    })
}

// ---------------------------------------------------------------- ambiguous

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AmbiguousMessage {
    pub id: String,
    pub channel: Channel,
    /// Masked.
    pub recipient: String,
    pub since: DateTime<Utc>,
    pub age: String,
}

/// Messages waiting for a person to say whether they went out, oldest first.
pub async fn ambiguous(
    conn: &impl ConnectionTrait,
    now: DateTime<Utc>,
    limit: u64,
) -> anyhow::Result<Truncated<AmbiguousMessage>> {
    #[derive(FromQueryResult)]
    struct Row {
        id: String,
        channel: Channel,
        address: Option<String>,
        updated_at: DateTime<Utc>,
    }
    let total = count(
        conn,
        &format!(
            "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM messages WHERE state = {}",
            MessageState::Ambiguous.sql()
        ),
        vec![],
    )
    .await?;
    let rows = Row::find_by_statement(stmt(
        conn,
        &format!(
            "SELECT id, channel, address, updated_at FROM messages WHERE state = {} \
             ORDER BY updated_at, id LIMIT $1",
            MessageState::Ambiguous.sql()
        ),
        vec![Value::from(limit as i64)],
    ))
    .all(conn)
    .await?;
    let items = rows
        .into_iter()
        .map(|r| AmbiguousMessage {
            recipient: mask_address(r.channel, r.address.as_deref()),
            age: human_duration(now - r.updated_at),
            id: r.id,
            channel: r.channel,
            since: r.updated_at,
        })
        .collect();
    Ok(Truncated::new(items, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(human_duration(Duration::minutes(7)), "7m");
        assert_eq!(human_duration(Duration::minutes(125)), "2h 5m");
        assert_eq!(human_duration(Duration::hours(76)), "3d 4h");
        assert_eq!(human_duration(Duration::minutes(-3)), "0m");
    }

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median(&mut []), None);
        assert_eq!(median(&mut [5, 1, 3]), Some(3));
        assert_eq!(median(&mut [4, 1, 3, 2]), Some(2));
    }

    #[test]
    fn a_rate_of_nothing_is_not_a_good_result_but_not_a_failure_either() {
        let none = Rate::of(0, 0, Some(0.003));
        assert_eq!(
            (none.value, none.text.as_str(), none.ok),
            (None, "n/a", Some(true))
        );
        let bad = Rate::of(1, 100, Some(0.003));
        assert_eq!((bad.text.as_str(), bad.ok), ("1.00%", Some(false)));
        let fine = Rate::of(2, 1000, Some(0.003));
        assert_eq!(fine.ok, Some(true));
    }

    #[test]
    fn local_days_follow_daylight_saving() {
        let tz: Tz = "America/New_York".parse().unwrap();
        // 2026-03-08 is 23 hours long in New York, 2026-11-01 25 hours.
        let (a, b) = local_day_bounds(tz, NaiveDate::from_ymd_opt(2026, 3, 8).unwrap());
        assert_eq!(b - a, Duration::hours(23));
        let (a, b) = local_day_bounds(tz, NaiveDate::from_ymd_opt(2026, 11, 1).unwrap());
        assert_eq!(b - a, Duration::hours(25));
        assert_eq!(a.to_rfc3339(), "2026-11-01T04:00:00+00:00");
    }
}
