//! Warmth: how warm each relationship is, from 0 to 100, with its reasons.
//!
//! - [`model`] is the pure model (formula and constants in `docs/warmth.md`).
//! - [`refresh_contact`] recomputes one contact from its own interactions and
//!   stores `warmth`, `warmth_reasons` (a JSON array of strings) and
//!   `warmth_updated_at`; `crate::interactions::record` calls it in the
//!   caller's transaction, so a score read after a write reflects it.
//! - [`decay::recompute_all`] is the periodic pass that lets time lower the
//!   scores of contacts nobody touched, and reports threshold [`Crossing`]s.
//!   [`start`] runs it every `[warmth] decay_interval_minutes`.
//!
//! Invariants:
//! - the stored score is always `model::score` over the contact's
//!   interactions in `[now − horizon, now]` and `contacts.last_interaction_at`,
//!   for the `now` it was computed at; the incremental and the periodic path
//!   compute exactly the same thing, so either may run at any time;
//! - a recompute never overwrites a score that a concurrent `record` wrote
//!   from newer interactions: the pass guards each write with the
//!   `warmth_updated_at` it read (see [`decay`]), and on PostgreSQL
//!   `refresh_contact` locks the contact row before reading, so two
//!   concurrent records for one contact serialize;
//! - one model per process: [`configure`] sets its parameters from settings
//!   at start-up, and every path reads them through [`params`].

pub mod decay;
pub mod model;
pub mod settings;

pub use settings::WarmthSettings;

use std::{
    sync::{
        RwLock,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, FromQueryResult, Statement, Value};
use serde::Serialize;

pub use decay::{Stats, recompute_all};

/// A contact's score and its top reasons, in words.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Score {
    pub value: f64,
    pub reasons: Vec<String>,
}

/// A contact whose score crossed a trigger threshold between its previous
/// stored score (`from`) and the new one (`to`):
///
/// - **went cold**: `from >= 25.0` and `to < 25.0` ([`Crossing::went_cold`]);
/// - **became active**: `from <= 50.0` and `to > 50.0`
///   ([`Crossing::became_active`]).
///
/// Only scores that were computed before count as `from` (a contact whose
/// `warmth_updated_at` is NULL has never had a score, so its first one is no
/// crossing). One change can cross both lines (e.g. 60 → 10 went cold; 10
/// → 60 became active); each direction is checked on its own. Consumers (the
/// triggers) must still make firing idempotent: the same crossing can be
/// reported again if a pass is retried after a crash before its commit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Crossing {
    pub contact_id: i64,
    pub from: f64,
    pub to: f64,
}

impl Crossing {
    /// Below this a contact is cold.
    pub const COLD_BELOW: f64 = 25.0;
    /// Above this a contact is active.
    pub const ACTIVE_ABOVE: f64 = 50.0;

    /// The crossing between two scores, if they are on different sides of a
    /// line in the direction that matters.
    pub fn between(contact_id: i64, from: f64, to: f64) -> Option<Self> {
        let c = Self {
            contact_id,
            from,
            to,
        };
        (c.went_cold() || c.became_active()).then_some(c)
    }

    pub fn went_cold(&self) -> bool {
        self.from >= Self::COLD_BELOW && self.to < Self::COLD_BELOW
    }

    pub fn became_active(&self) -> bool {
        self.from <= Self::ACTIVE_ABOVE && self.to > Self::ACTIVE_ABOVE
    }
}

static PARAMS: RwLock<model::Params> = RwLock::new(model::Params {
    half_life_days: 30.0,
    horizon_half_lives: 8.0,
    k: 3.0,
});

static BATCH: AtomicUsize = AtomicUsize::new(20_000);

/// Sets the process's model parameters and decay-pass batch size (done by
/// [`start`]).
pub fn configure(settings: &WarmthSettings) {
    *PARAMS.write().unwrap_or_else(|e| e.into_inner()) = settings.params();
    BATCH.store(settings.batch_contacts, Ordering::Relaxed);
}

/// Contacts per decay-pass transaction.
pub fn batch_contacts() -> usize {
    BATCH.load(Ordering::Relaxed)
}

/// The process's model parameters.
pub fn params() -> model::Params {
    *PARAMS.read().unwrap_or_else(|e| e.into_inner())
}

/// Kind and direction as small integers, so bulk reads decode no strings.
/// Unknown kinds count as notes, the lightest.
pub(crate) const KIND_SQL: &str = "CASE kind WHEN 'meeting' THEN 0 WHEN 'call' THEN 1 \
     WHEN 'email' THEN 2 WHEN 'message' THEN 3 ELSE 4 END";
pub(crate) const INBOUND_SQL: &str = "CASE direction WHEN 'inbound' THEN 1 ELSE 0 END";

pub(crate) fn event_from_codes(at: DateTime<Utc>, kind: i32, inbound: i32) -> model::Event {
    use crate::domain::{Direction, InteractionKind as Kind};
    model::Event {
        at,
        kind: match kind {
            0 => Kind::Meeting,
            1 => Kind::Call,
            2 => Kind::Email,
            3 => Kind::Message,
            _ => Kind::Note,
        },
        direction: if inbound == 1 {
            Direction::Inbound
        } else {
            Direction::Outbound
        },
    }
}

/// Recomputes one contact's warmth from its interactions, stores it, and
/// returns it.
pub async fn refresh_contact(
    conn: &impl ConnectionTrait,
    contact_id: i64,
    now: DateTime<Utc>,
) -> anyhow::Result<Score> {
    Ok(refresh_contact_with(conn, contact_id, now, &params())
        .await?
        .0)
}

/// [`refresh_contact`] with explicit parameters, also returning the
/// threshold crossing the new score made, if any.
pub async fn refresh_contact_with(
    conn: &impl ConnectionTrait,
    contact_id: i64,
    now: DateTime<Utc>,
    p: &model::Params,
) -> anyhow::Result<(Score, Option<Crossing>)> {
    #[derive(FromQueryResult)]
    struct Current {
        warmth: f64,
        computed: i32,
        last_interaction_at: Option<DateTime<Utc>>,
    }
    #[derive(FromQueryResult)]
    struct Row {
        k: i32,
        d: i32,
        occurred_at: DateTime<Utc>,
    }
    let backend = conn.get_database_backend();
    let pg = crate::db::is_postgres(conn);
    // On PostgreSQL, lock the row before reading the interactions: a
    // concurrent refresh of the same contact then reads after this one
    // commits and sees both interactions, instead of overwriting with fewer.
    let current = Current::find_by_statement(Statement::from_sql_and_values(
        backend,
        format!(
            "SELECT warmth, CASE WHEN warmth_updated_at IS NULL THEN 0 ELSE 1 END AS computed, \
             last_interaction_at FROM contacts WHERE id = $1{}",
            if pg { " FOR UPDATE" } else { "" }
        ),
        [Value::from(contact_id)],
    ))
    .one(conn)
    .await?
    .ok_or_else(|| anyhow::anyhow!("no contact with id {contact_id}"))?;
    let rows = Row::find_by_statement(Statement::from_sql_and_values(
        backend,
        format!(
            "SELECT {KIND_SQL} AS k, {INBOUND_SQL} AS d, occurred_at FROM interactions \
             WHERE contact_id = $1 AND occurred_at >= $2 AND occurred_at <= $3"
        ),
        [
            Value::from(contact_id),
            Value::from(now - p.horizon()),
            Value::from(now),
        ],
    ))
    .all(conn)
    .await?;
    let events: Vec<model::Event> = rows
        .into_iter()
        .map(|r| event_from_codes(r.occurred_at, r.k, r.d))
        .collect();
    let o = model::score(&events, current.last_interaction_at, now, p);
    conn.execute_raw(Statement::from_sql_and_values(
        backend,
        "UPDATE contacts SET warmth = $1, warmth_reasons = $2, warmth_updated_at = $3 WHERE id = $4",
        [
            Value::from(o.value),
            Value::from(serde_json::to_string(&o.reasons)?),
            Value::from(now),
            Value::from(contact_id),
        ],
    ))
    .await?;
    let crossing = (current.computed == 1)
        .then(|| Crossing::between(contact_id, current.warmth, o.value))
        .flatten();
    Ok((
        Score {
            value: o.value,
            reasons: o.reasons,
        },
        crossing,
    ))
}

/// The periodic job: the decay pass every `[warmth] decay_interval_minutes`.
pub struct DecayJob;

#[async_trait::async_trait]
impl crate::jobs::Periodic for DecayJob {
    fn name(&self) -> &'static str {
        "warmth_decay"
    }

    fn period(&self, app: &crate::state::App) -> Result<Duration, &'static str> {
        Ok(Duration::from_secs(
            app.settings.warmth.decay_interval_minutes * 60,
        ))
    }

    async fn tick(&self, app: &crate::state::App, now: DateTime<Utc>) -> anyhow::Result<()> {
        let stats = recompute_all(&app.db, now).await?;
        tracing::info!(
            contacts = stats.contacts,
            updated = stats.updated,
            went_cold = stats.crossings.iter().filter(|c| c.went_cold()).count(),
            became_active = stats.crossings.iter().filter(|c| c.became_active()).count(),
            secs = stats.elapsed.as_secs_f64(),
            "warmth decay pass done"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crossings_go_in_one_direction_only() {
        assert!(Crossing::between(1, 30.0, 20.0).unwrap().went_cold());
        assert!(Crossing::between(1, 25.0, 24.9).unwrap().went_cold());
        assert!(
            Crossing::between(1, 20.0, 30.0).is_none(),
            "warming is no crossing"
        );
        assert!(Crossing::between(1, 50.0, 50.1).unwrap().became_active());
        assert!(
            Crossing::between(1, 60.0, 40.0).is_none(),
            "cooling past 50 is none"
        );
        let both = Crossing::between(1, 10.0, 60.0).unwrap();
        assert!(both.became_active() && !both.went_cold());
    }

    #[test]
    fn settings_refuse_a_zero_half_life() {
        let err = toml::from_str::<WarmthSettings>("half_life_days = 0").unwrap_err();
        assert!(err.to_string().contains("warmth.half_life_days"), "{err}");
        let ok: WarmthSettings = toml::from_str("decay_interval_minutes = 5").unwrap();
        assert_eq!(ok.decay_interval_minutes, 5);
        assert_eq!(ok.half_life_days, 30.0);
    }
}
