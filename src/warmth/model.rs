//! The warmth model: a pure, deterministic function from one contact's
//! interactions and the time now to a score from 0 to 100 with its top
//! reasons in words. The formula, its constants and their precedents are in
//! `docs/warmth.md`; this module is the reference implementation of it.
//!
//! ```text
//! contribution(i) = weight(kind) × 0.5^(age / half_life)        (0 past the horizon)
//! T = Σ contributions of two-way interactions   (inbound, meetings, calls)
//! O = Σ contributions of one-way interactions   (outbound email, message, note)
//! ρ = T / (T + O)                                (reciprocity, 0..1)
//! S = T + min(O × (0.1 + 0.4 ρ), T + 0.75)
//! score = 100 × (1 − exp(−S / 3)), rounded to 0.1
//! ```
//!
//! Invariants (each has a test below):
//! - the score is in `0.0..=100.0`; no interactions gives exactly 0;
//! - adding any interaction never lowers the score, and a new two-way one
//!   raises it (below 100);
//! - with no new interactions the score never rises as time passes;
//! - one-way outreach alone is capped at S = 0.75, a score of 22.1: it never
//!   reaches the 25 "cold" line, however much is sent;
//! - interactions older than the horizon (8 half-lives) or in the future
//!   contribute nothing, so a reader needs only `[now − horizon, now]`;
//! - every outcome has at least one reason (and at most three): a score
//!   shown without a "why" explains nothing.

use chrono::{DateTime, Datelike, Utc};

use crate::domain::{Direction, InteractionKind as Kind};

/// The model's tunable constants. `Default` is the documented model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Params {
    /// Days after which an interaction counts half as much.
    pub half_life_days: f64,
    /// Interactions older than this many half-lives count for nothing.
    pub horizon_half_lives: f64,
    /// Saturation: S = k gives 63, S = 2k gives 86.
    pub k: f64,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            half_life_days: 30.0,
            horizon_half_lives: 8.0,
            k: 3.0,
        }
    }
}

impl Params {
    /// How far back an interaction can still count.
    pub fn horizon(&self) -> chrono::Duration {
        chrono::Duration::seconds((self.half_life_days * self.horizon_half_lives * 86_400.0) as i64)
    }
}

/// Weight of one interaction at age 0, before reciprocity.
pub fn kind_weight(kind: Kind) -> f64 {
    match kind {
        Kind::Meeting => 3.0,
        Kind::Call => 2.0,
        Kind::Email | Kind::Message => 1.0,
        Kind::Note => 0.5,
    }
}

/// Two-way interactions are the ones the contact took part in: anything
/// inbound, and meetings and calls whoever set them up. Outbound email,
/// messages and notes are one-way until answered.
pub fn is_two_way(kind: Kind, direction: Direction) -> bool {
    direction == Direction::Inbound || matches!(kind, Kind::Meeting | Kind::Call)
}

/// One-way weight at zero reciprocity, and how much more a reciprocated
/// relationship's outreach counts.
const ONE_WAY_BASE: f64 = 0.1;
const ONE_WAY_RECIPROCITY: f64 = 0.4;
/// One-way contributions never add more than the two-way total plus this.
const ONE_WAY_CAP: f64 = 0.75;
/// Windows the reasons count over, in days.
const RECENT_DAYS: i64 = 30;
const MEETINGS_DAYS: i64 = 90;
/// Reasons start saying "No contact for N days" at this many days.
const GAP_DAYS: i64 = 30;

/// One interaction, as the model sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    pub at: DateTime<Utc>,
    pub kind: Kind,
    pub direction: Direction,
}

/// A score and its top reasons (at most 3), most telling first.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub value: f64,
    pub reasons: Vec<String>,
}

/// Computes a contact's warmth. `events` may be in any order and may include
/// interactions outside `[now − horizon, now]` (they are ignored);
/// `last_contact` is the latest interaction ever (`contacts.last_interaction_at`),
/// which may lie past the horizon and only feeds the "No contact for" reason.
pub fn score(
    events: &[Event],
    last_contact: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    p: &Params,
) -> Outcome {
    let horizon_secs = p.half_life_days * p.horizon_half_lives * 86_400.0;
    let half_life_secs = p.half_life_days * 86_400.0;
    let mut two_way = 0.0_f64;
    let mut one_way = 0.0_f64;
    let mut facts = Facts::default();
    for e in events {
        let age = (now - e.at).num_milliseconds() as f64 / 1000.0;
        if age < 0.0 || age > horizon_secs {
            continue;
        }
        let c = kind_weight(e.kind) * (-(age / half_life_secs) * std::f64::consts::LN_2).exp();
        if is_two_way(e.kind, e.direction) {
            two_way += c;
        } else {
            one_way += c;
        }
        facts.add(e, now);
    }
    let s = if two_way + one_way > 0.0 {
        let rho = two_way / (two_way + one_way);
        let reached = one_way * (ONE_WAY_BASE + ONE_WAY_RECIPROCITY * rho);
        two_way + reached.min(two_way + ONE_WAY_CAP)
    } else {
        0.0
    };
    let raw = 100.0 * (1.0 - (-s / p.k).exp());
    let value = ((raw * 10.0).round() / 10.0).clamp(0.0, 100.0);
    Outcome {
        value,
        reasons: facts.reasons(last_contact, now),
    }
}

/// What the reasons are built from, gathered in one pass.
#[derive(Default)]
struct Facts {
    /// The latest two-way interaction (ties: the heavier kind).
    last_two_way: Option<Event>,
    /// The latest interaction at or before now, of any kind.
    last_any: Option<DateTime<Utc>>,
    /// One-way interactions: all of them, with the earliest.
    one_way: Vec<DateTime<Utc>>,
    replies_recent: usize,
    meetings_recent: usize,
}

impl Facts {
    fn add(&mut self, e: &Event, now: DateTime<Utc>) {
        let days = (now - e.at).num_days();
        self.last_any = self.last_any.max(Some(e.at));
        if is_two_way(e.kind, e.direction) {
            let later = match self.last_two_way {
                None => true,
                Some(l) => (e.at, kind_weight(e.kind)) > (l.at, kind_weight(l.kind)),
            };
            if later {
                self.last_two_way = Some(*e);
            }
            // A reply is something they wrote; an inbound meeting is a meeting.
            if e.direction == Direction::Inbound
                && matches!(e.kind, Kind::Email | Kind::Message)
                && days < RECENT_DAYS
            {
                self.replies_recent += 1;
            }
            if matches!(e.kind, Kind::Meeting | Kind::Call) && days < MEETINGS_DAYS {
                self.meetings_recent += 1;
            }
        } else {
            self.one_way.push(e.at);
        }
    }

    /// Top 3, in this order of precedence: a long silence, unanswered
    /// outreach (these explain a low score), then the latest two-way
    /// interaction and how often they happen (these explain a high one).
    fn reasons(&self, last_contact: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Vec<String> {
        let last = self.last_any.max(last_contact.filter(|t| *t <= now));
        let Some(last) = last else {
            return vec!["No interactions recorded yet".into()];
        };
        let mut out = Vec::new();
        let gap = (now - last).num_days();
        if gap >= GAP_DAYS {
            out.push(format!("No contact for {gap} days"));
        }
        match self.last_two_way {
            None => {
                if let Some(first) = self.one_way.iter().min() {
                    out.push(format!(
                        "Only one-way outreach since {}",
                        month(*first, now)
                    ));
                }
            }
            Some(l) => {
                let unanswered = self.one_way.iter().filter(|t| **t > l.at).count();
                if unanswered >= 2 {
                    out.push(format!("No reply to the last {unanswered} messages"));
                }
            }
        }
        if let Some(l) = self.last_two_way {
            let ago = ago((now - l.at).num_days());
            // Email, messages and notes are two-way only when inbound.
            out.push(match l.kind {
                Kind::Meeting => format!("Met {ago}"),
                Kind::Call => format!("Spoke on a call {ago}"),
                Kind::Email => format!("Emailed us {ago}"),
                Kind::Message => format!("Messaged us {ago}"),
                Kind::Note => format!("Noted contact {ago}"),
            });
        }
        if self.replies_recent >= 2 {
            out.push(format!(
                "Replied {} times in the last {RECENT_DAYS} days",
                self.replies_recent
            ));
        } else if self.meetings_recent >= 2 {
            out.push(format!(
                "{} meetings and calls in the last {MEETINGS_DAYS} days",
                self.meetings_recent
            ));
        }
        if out.is_empty() {
            // The last contact is recent but nothing inside the horizon
            // explains the score (it was recorded without an interaction
            // the model can read, e.g. one dated in the future then).
            out.push(format!("Last contact {}", ago(gap)));
        }
        out.truncate(3);
        out
    }
}

fn ago(days: i64) -> String {
    match days {
        0 => "today".into(),
        1 => "yesterday".into(),
        n => format!("{n} days ago"),
    }
}

/// "September", or "September 2025" when not this year.
fn month(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    if t.year() == now.year() {
        t.format("%B").to_string()
    } else {
        t.format("%B %Y").to_string()
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap()
    }

    fn ev(days_ago: i64, kind: Kind, direction: Direction) -> Event {
        Event {
            at: now() - Duration::days(days_ago),
            kind,
            direction,
        }
    }

    fn run(events: &[Event]) -> Outcome {
        score(
            events,
            events.iter().map(|e| e.at).max(),
            now(),
            &Params::default(),
        )
    }

    use Direction::{Inbound as In, Outbound as Out};

    /// A spread of histories the property tests run over.
    fn histories() -> Vec<Vec<Event>> {
        vec![
            vec![],
            vec![ev(0, Kind::Email, Out)],
            vec![ev(3, Kind::Meeting, In)],
            vec![ev(200, Kind::Note, In), ev(100, Kind::Email, Out)],
            (0..12).map(|i| ev(i * 7, Kind::Email, Out)).collect(),
            (0..12)
                .flat_map(|i| [ev(i * 7, Kind::Email, Out), ev(i * 7 + 1, Kind::Email, In)])
                .collect(),
            (0..6).map(|i| ev(i * 30, Kind::Meeting, Out)).collect(),
            (0..300).map(|i| ev(i % 20, Kind::Call, In)).collect(),
        ]
    }

    #[test]
    fn no_interactions_score_zero_with_a_reason() {
        // Act
        let o = run(&[]);

        // Assert
        assert_eq!(o.value, 0.0);
        assert_eq!(o.reasons, vec!["No interactions recorded yet"]);
    }

    #[test]
    fn scores_stay_within_0_and_100() {
        for h in histories() {
            let o = run(&h);
            assert!((0.0..=100.0).contains(&o.value), "{o:?}");
            assert!(o.reasons.len() <= 3 && !o.reasons.is_empty(), "{o:?}");
        }
        let flood: Vec<Event> = (0..10_000).map(|_| ev(0, Kind::Meeting, In)).collect();
        assert_eq!(run(&flood).value, 100.0);
    }

    #[test]
    fn a_new_inbound_meeting_raises_the_score() {
        for h in histories() {
            // Arrange
            let before = run(&h).value;
            let mut more = h.clone();
            more.push(ev(0, Kind::Meeting, In));

            // Act
            let after = run(&more).value;

            // Assert
            assert!(
                after > before || before == 100.0,
                "{before} -> {after} for {h:?}"
            );
        }
    }

    #[test]
    fn adding_any_interaction_never_lowers_the_score() {
        for h in histories() {
            let before = run(&h).value;
            for kind in Kind::ALL {
                for dir in [In, Out] {
                    let mut more = h.clone();
                    more.push(ev(5, *kind, dir));
                    let after = run(&more).value;
                    assert!(after >= before, "{kind:?} {dir:?}: {before} -> {after}");
                }
            }
        }
    }

    #[test]
    fn time_without_contact_lowers_the_score() {
        for h in histories().into_iter().filter(|h| !h.is_empty()) {
            let p = Params::default();
            let mut last = f64::INFINITY;
            for days in [0, 1, 7, 30, 90, 239, 241, 400] {
                let later = now() + Duration::days(days);
                let v = score(&h, None, later, &p).value;
                assert!(v <= last, "day {days}: {last} -> {v}");
                last = v;
            }
            assert_eq!(last, 0.0, "past the horizon nothing counts");
        }
    }

    #[test]
    fn one_half_life_halves_a_single_contribution() {
        // Arrange: one meeting, today and 30 days ago.
        let k = Params::default().k;

        // Act
        let fresh = run(&[ev(0, Kind::Meeting, In)]).value;
        let month_old = run(&[ev(30, Kind::Meeting, In)]).value;

        // Assert: S = 3 and S = 1.5.
        let expect = |s: f64| ((1000.0 * (1.0 - (-s / k).exp())).round()) / 10.0;
        assert_eq!(fresh, expect(3.0));
        assert_eq!(month_old, expect(1.5));
        assert_eq!(fresh, 63.2);
    }

    #[test]
    fn outbound_only_outreach_stays_below_the_cold_line() {
        // Arrange: a daily email for a year, never answered.
        let spam: Vec<Event> = (0..365).map(|d| ev(d, Kind::Email, Out)).collect();

        // Act
        let o = run(&spam);

        // Assert
        assert!(o.value < 25.0, "{o:?}");
        assert_eq!(o.value, 22.1);
        assert_eq!(o.reasons, vec!["Only one-way outreach since March"]);
    }

    #[test]
    fn outbound_counts_a_fraction_of_inbound() {
        let inbound = run(&[ev(0, Kind::Email, In)]).value;
        let outbound = run(&[ev(0, Kind::Email, Out)]).value;
        assert!(outbound * 5.0 < inbound, "{outbound} vs {inbound}");
    }

    #[test]
    fn meetings_and_calls_weigh_more_than_notes() {
        let meeting = run(&[ev(0, Kind::Meeting, Out)]).value;
        let call = run(&[ev(0, Kind::Call, Out)]).value;
        let note = run(&[ev(0, Kind::Note, In)]).value;
        assert!(meeting > call && call > note, "{meeting} {call} {note}");
    }

    #[test]
    fn replies_make_outreach_count_more() {
        // Arrange: the same outreach, with and without replies.
        let mut alone: Vec<Event> = (0..4).map(|i| ev(i * 7, Kind::Email, Out)).collect();
        let one_way = run(&alone).value;
        alone.push(ev(2, Kind::Email, In));

        // Act
        let answered = run(&alone).value;

        // Assert: more than the reply alone adds.
        let reply_alone = run(&[ev(2, Kind::Email, In)]).value;
        assert!(answered > one_way + reply_alone * 0.9, "{answered}");
    }

    #[test]
    fn future_and_out_of_horizon_interactions_count_for_nothing() {
        let future = Event {
            at: now() + Duration::days(3),
            kind: Kind::Meeting,
            direction: In,
        };
        assert_eq!(run(&[future]).value, 0.0);
        assert_eq!(run(&[ev(241, Kind::Meeting, In)]).value, 0.0);
        assert!(run(&[ev(239, Kind::Meeting, In)]).value > 0.0);
    }

    #[test]
    fn reasons_name_the_latest_meeting_and_reply_count() {
        // Arrange
        let h = [
            ev(2, Kind::Meeting, Out),
            ev(5, Kind::Email, In),
            ev(12, Kind::Email, In),
            ev(20, Kind::Message, In),
            ev(45, Kind::Email, In),
        ];

        // Act
        let o = run(&h);

        // Assert
        assert_eq!(
            o.reasons,
            vec!["Met 2 days ago", "Replied 3 times in the last 30 days"]
        );
    }

    #[test]
    fn reasons_lead_with_a_long_silence() {
        // Arrange: last contact 94 days ago, past replies and meetings.
        let h = [ev(94, Kind::Email, In), ev(100, Kind::Call, Out)];

        // Act
        let o = run(&h);

        // Assert
        assert_eq!(
            o.reasons,
            vec!["No contact for 94 days", "Emailed us 94 days ago"]
        );
    }

    #[test]
    fn a_recent_last_contact_without_readable_interactions_still_has_a_reason() {
        // Arrange: the contact row says 3 days ago; the only interaction is
        // dated in the future, so nothing inside the window counts.
        let h = [ev(-2, Kind::Email, In)];

        // Act
        let o = score(
            &h,
            Some(now() - Duration::days(3)),
            now(),
            &Params::default(),
        );

        // Assert
        assert_eq!(o.value, 0.0);
        assert_eq!(o.reasons, vec!["Last contact 3 days ago"]);
    }

    #[test]
    fn every_outcome_has_one_to_three_reasons() {
        // Arrange: every history, seen from its own times and from later,
        // with and without a stored last contact.
        for h in histories() {
            for later in [0, 1, 29, 30, 200, 400] {
                for last in [None, Some(now() - Duration::days(1))] {
                    // Act
                    let o = score(&h, last, now() + Duration::days(later), &Params::default());

                    // Assert
                    assert!(
                        (1..=3).contains(&o.reasons.len()),
                        "{later} days later, last {last:?}: {o:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn reasons_use_last_contact_past_the_horizon() {
        // Arrange: nothing within 240 days; the contact row says 400.
        let last = now() - Duration::days(400);

        // Act
        let o = score(&[], Some(last), now(), &Params::default());

        // Assert
        assert_eq!(o.value, 0.0);
        assert_eq!(o.reasons, vec!["No contact for 400 days"]);
    }

    #[test]
    fn reasons_count_unanswered_messages_after_a_reply() {
        let h = [
            ev(1, Kind::Email, Out),
            ev(8, Kind::Message, Out),
            ev(15, Kind::Email, Out),
            ev(20, Kind::Email, In),
        ];
        assert_eq!(
            run(&h).reasons,
            vec!["No reply to the last 3 messages", "Emailed us 20 days ago"]
        );
    }

    #[test]
    fn one_way_reason_names_the_year_when_it_differs() {
        let h = [ev(100, Kind::Email, Out), ev(0, Kind::Email, Out)];
        // 100 days before 26 Nov 2026 is 18 Aug 2026.
        assert_eq!(run(&h).reasons, vec!["Only one-way outreach since August"]);
        let new_year = Utc.with_ymd_and_hms(2027, 1, 5, 12, 0, 0).unwrap();
        let o = score(&h, None, new_year, &Params::default());
        assert_eq!(
            o.reasons,
            vec![
                "No contact for 40 days",
                "Only one-way outreach since August 2026"
            ]
        );
    }

    #[test]
    fn the_same_inputs_give_the_same_outcome_in_any_order() {
        for h in histories() {
            let mut rev = h.clone();
            rev.reverse();
            assert_eq!(run(&h), run(&rev));
        }
    }
}
