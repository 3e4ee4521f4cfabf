//! Inbound messages: the ONE entry point every channel's replies go through
//! ([`receive`]) — the host app's `POST /api/v1/inbound` today, the SMS,
//! WhatsApp and Instagram webhooks when they land.
//!
//! One inbound message, in one transaction:
//! 1. is stored in `inbound_messages`, linked to the contact with that
//!    address (email compared case-insensitively; phone in E.164; Instagram
//!    by the IGSID kept in the contact's `metadata.instagram_id`, since
//!    contacts have no Instagram column). An unknown sender is stored with
//!    no contact, and nothing else happens to anyone.
//! 2. is linked (`in_reply_to`) to the latest message we sent that contact
//!    (or that address) on that channel;
//! 3. if it is a keyword ([`keywords`]): STOP and friends revoke that
//!    channel's consent, START and friends restore it (source
//!    `reply_keyword`, text = the word received), HELP and INFO are answered
//!    with `[inbound] help_text`;
//! 4. if it is an ordinary reply, records an interaction (kind `email` or
//!    `message`, inbound), which refreshes the contact's warmth;
//! 5. stops the contact's active trigger sequences (`trigger_runs`, reason
//!    `replied`, or `opted_out` for a STOP) and skips that contact's pending
//!    trigger messages on that channel (skip reason `cancelled`): a person
//!    who answered is talking to us, not waiting for step 2 of a drip.
//!
//! Who answers a keyword is the message's [`ReplyBy`]: warmline through the
//! ledger (the API's default), the provider itself (Twilio's Advanced
//! Opt-Out: the consent change is recorded and nothing is sent,
//! [`Reply::ByProvider`]), or the caller's answer (a webhook's TwiML,
//! [`Reply::InResponse`]; nothing enters the ledger).
//!
//! After the commit the dispatcher is woken for a confirmation, and the
//! message is posted to Slack in the thread of the campaign it answers
//! (else the approvals channel, else only logged), off the request path.
//!
//! Invariants:
//! - One confirmation, then silence (CTIA; FCC 24-18 allows exactly one
//!   confirmation text). A STOP is confirmed only when it changes the
//!   channel's consent — the ledger's newest row for the channel was not
//!   already a revocation; a START only when it was not already a grant.
//!   Repeats append nothing and send nothing. HELP is informational and is
//!   answered every time.
//! - A keyword's consent effect never depends on the confirmation: with no
//!   provider for the channel (SMS and WhatsApp land later) or no email
//!   sender, consent still changes, `confirmed` stays false and the reason
//!   is logged and returned.
//! - Confirmations are `transactional` ledger messages: the dispatcher sends
//!   them without consent (they answer a revocation), but a suppressed
//!   address still blocks them, as it should.
//! - Read-then-append consent decisions are serialised per contact: the
//!   transaction's first statement is the INSERT (so SQLite holds its single
//!   write lock from the start and never upgrades a read snapshot), and on
//!   PostgreSQL the contact row is locked `FOR UPDATE`. Two concurrent STOPs
//!   append one revocation and queue one confirmation.
//! - Keywords are not interactions: a STOP must not warm a relationship.
//! - Addresses are masked in logs, the audit log and Slack.

pub mod answer;
pub mod keywords;
pub mod link;
mod message;
mod notice;
pub mod settings;
mod store;
pub mod window;

pub use settings::InboundSettings;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, Statement, Value};

use crate::domain::reply_source;
use crate::slack::mrkdwn::truncate;
pub use keywords::Keyword;
pub use message::{Inbound, Sender};
use notice::{Notice, post_to_slack};
use store::{answered_message, cancel_trigger_messages, contact_name, insert, stop_trigger_runs};

use crate::{
    consent::{self, Source},
    dispatcher::ledger::{self, NewMessage},
    domain::{
        E164Phone, EmailAddress, MessageKind, MessageState, SkipReason, mask_email, mask_phone,
    },
    interactions::{self, Direction, NewInteraction},
    providers::webhook::ReplyBy,
    state::App,
};

/// Who a keyword's consent change is attributed to in the ledger and the
/// audit log: the person who sent it.
const ACTOR: &str = "recipient";

/// How far in the future a `received_at` may be (clock skew between the
/// host app and us), beyond which it is refused.
const MAX_CLOCK_SKEW: chrono::Duration = chrono::Duration::minutes(5);

/// Longest interaction summary kept from a reply.
const SUMMARY_CHARS: usize = 280;

/// Longest reply text quoted in Slack.
const SLACK_QUOTE_CHARS: usize = 2_000;

pub use crate::domain::Channel;

/// What a keyword did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The channel's consent is revoked (now, or it already was).
    Revoked,
    /// The channel's consent is granted (now, or it already was).
    Restored,
    /// The help text was queued.
    Help,
    /// Not a keyword, or a keyword from an unknown sender.
    None,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Revoked => "revoked",
            Action::Restored => "restored",
            Action::Help => "help",
            Action::None => "none",
        }
    }
}

/// The answer warmline sends back to a keyword.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Nothing to answer (not a keyword, a repeat, an unknown sender).
    None,
    /// In the ledger with this id; the dispatcher sends it.
    Queued(String),
    /// The caller answers with this text (a webhook's TwiML `<Message>`);
    /// nothing enters the ledger.
    InResponse(String),
    /// The provider answers keywords itself (Twilio's Advanced Opt-Out):
    /// warmline sends nothing.
    ByProvider,
    /// Should have been answered but cannot be: why (no provider, no sender).
    Unavailable(String),
}

/// What [`receive`] did.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The `inbound_messages` row.
    pub id: i64,
    pub contact_id: Option<i64>,
    pub keyword: Option<Keyword>,
    pub action: Action,
    /// Whether the consent ledger got a new row.
    pub consent_changed: bool,
    /// The message of ours it answers.
    pub in_reply_to: Option<String>,
    pub reply: Reply,
    /// Trigger sequences stopped.
    pub triggers_stopped: u64,
    /// Pending trigger messages skipped.
    pub messages_cancelled: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum InboundError {
    /// A field of the message is wrong; `field` is its name.
    #[error("{message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sea_orm::DbErr> for InboundError {
    fn from(e: sea_orm::DbErr) -> Self {
        InboundError::Internal(e.into())
    }
}

/// Receives one inbound message: stores it and applies its effects in one
/// transaction, then wakes the dispatcher and posts to Slack.
pub async fn receive(app: &App, msg: Inbound) -> Result<Outcome, InboundError> {
    let now = crate::clock::now();
    msg.check(now)?;
    // Immediate on SQLite: apply reads before it writes, and a deferred
    // transaction would fail (SQLITE_BUSY_SNAPSHOT) when another connection
    // commits in between instead of waiting its turn.
    let txn = crate::db::begin_write(&app.db).await?;
    let applied = match apply(&txn, app, &msg, now).await {
        Ok(a) => a,
        Err(e) => {
            txn.rollback().await?;
            return Err(e);
        }
    };
    txn.commit().await?;
    Ok(applied.finish(app))
}

/// The effects of one message, applied in a transaction but not yet
/// committed. Call [`Applied::finish`] after the commit.
pub struct Applied {
    pub outcome: Outcome,
    notice: Notice,
}

impl Applied {
    /// After the commit: wakes the dispatcher for a confirmation and hands
    /// the Slack post to a background task.
    pub fn finish(self, app: &App) -> Outcome {
        let Applied { outcome, notice } = self;
        if matches!(outcome.reply, Reply::Queued(_)) {
            app.dispatcher.wake();
        }
        tracing::info!(
            inbound_id = outcome.id,
            channel = notice.channel.as_str(),
            from = %notice.masked_from,
            contact_id = outcome.contact_id,
            keyword = outcome.keyword.map(Keyword::as_str),
            action = outcome.action.as_str(),
            triggers_stopped = outcome.triggers_stopped,
            messages_cancelled = outcome.messages_cancelled,
            "inbound message received"
        );
        if let Reply::Unavailable(why) = &outcome.reply {
            tracing::warn!(
                inbound_id = outcome.id,
                channel = notice.channel.as_str(),
                from = %notice.masked_from,
                "keyword not confirmed: {why}"
            );
        }
        let app2 = app.clone();
        app.spawn("post an inbound message to Slack", async move {
            post_to_slack(&app2, &notice).await
        });
        outcome
    }
}

/// Validates and applies `msg` inside `txn` (the API runs it inside its
/// idempotency transaction). The first statement is a write; see the
/// module's invariants.
pub async fn apply(
    txn: &DatabaseTransaction,
    app: &App,
    msg: &Inbound,
    now: DateTime<Utc>,
) -> Result<Applied, InboundError> {
    msg.check(now)?;
    let backend = txn.get_database_backend();
    let channel = msg.channel.as_str();
    let found = keywords::parse(&msg.text);

    // 1. Store it, resolving the contact in the same statement.
    let (id, contact_id) = insert(txn, msg, found.as_ref().map(|f| f.keyword), now).await?;
    if backend == DbBackend::Postgres
        && let Some(c) = contact_id
    {
        // Serialises consent decisions for this contact (SQLite: the
        // INSERT above already holds the database's only write lock).
        txn.execute_raw(Statement::from_sql_and_values(
            backend,
            "SELECT id FROM contacts WHERE id = $1 FOR UPDATE",
            [Value::from(c)],
        ))
        .await?;
    }

    // 2. What it answers.
    let answered = answered_message(txn, msg, contact_id).await?;
    if let Some(a) = &answered {
        txn.execute_raw(Statement::from_sql_and_values(
            backend,
            "UPDATE inbound_messages SET in_reply_to = $1 WHERE id = $2",
            [Value::from(a.id.clone()), Value::from(id)],
        ))
        .await?;
    }

    let mut outcome = Outcome {
        id,
        contact_id,
        keyword: found.as_ref().map(|f| f.keyword),
        action: Action::None,
        consent_changed: false,
        in_reply_to: answered.as_ref().map(|a| a.id.clone()),
        reply: Reply::None,
        triggers_stopped: 0,
        messages_cancelled: 0,
    };

    if let Some(contact) = contact_id {
        // 3. Keywords.
        let product = app.settings.email.product();
        let answer = match &found {
            Some(f) => {
                let (action, changed, answer) = keyword_effect(txn, msg, contact, f).await?;
                outcome.action = action;
                outcome.consent_changed = changed;
                answer
            }
            None => None,
        };
        if let Some(kind) = answer {
            outcome.reply = match msg.replies {
                ReplyBy::Ledger => {
                    queue_reply(txn, app, msg, contact, id, kind, &product, now).await?
                }
                ReplyBy::Response => Reply::InResponse(answer_text(app, kind, &product).0),
                ReplyBy::Provider => Reply::ByProvider,
            };
            if matches!(outcome.reply, Reply::Queued(_) | Reply::InResponse(_)) {
                txn.execute_raw(Statement::from_sql_and_values(
                    backend,
                    "UPDATE inbound_messages SET confirmed = $1 WHERE id = $2",
                    [Value::from(true), Value::from(id)],
                ))
                .await?;
            }
        }

        // 4. An ordinary reply is an interaction; a keyword is not.
        if found.is_none() {
            interactions::record(
                txn,
                &NewInteraction {
                    contact_id: contact,
                    kind: if msg.channel == Channel::Email {
                        interactions::Kind::Email
                    } else {
                        interactions::Kind::Message
                    },
                    direction: Direction::Inbound,
                    occurred_at: msg.received_at,
                    summary: Some(truncate(msg.text.trim(), SUMMARY_CHARS))
                        .filter(|s| !s.is_empty()),
                    source: format!("inbound:{channel}"),
                    channel: Some(channel.to_string()),
                },
                now,
            )
            .await?;
        }

        // 5. Automated follow-ups stop.
        let reason = if outcome.action == Action::Revoked {
            "opted_out"
        } else {
            "replied"
        };
        outcome.triggers_stopped = stop_trigger_runs(txn, contact, reason, now).await?;
        outcome.messages_cancelled =
            cancel_trigger_messages(txn, contact, msg.channel, now).await?;
    }

    let notice = Notice {
        inbound_id: id,
        channel: msg.channel,
        masked_from: msg.from.masked(),
        contact_name: match contact_id {
            Some(c) => contact_name(txn, c).await?,
            None => None,
        },
        known: contact_id.is_some(),
        text: msg.text.clone(),
        action: outcome.action,
        consent_changed: outcome.consent_changed,
        reply: outcome.reply.clone(),
        campaign_name: answered.as_ref().and_then(|a| a.campaign_name.clone()),
        slack_channel: answered.as_ref().and_then(|a| a.slack_channel.clone()),
        slack_ts: answered.as_ref().and_then(|a| a.slack_ts.clone()),
    };
    Ok(Applied { outcome, notice })
}

/// Which answer a keyword needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    StopConfirmation,
    StartConfirmation,
    Help,
}

/// Applies a keyword to the contact's consent. Returns the action, whether
/// the ledger changed, and the answer owed.
async fn keyword_effect(
    txn: &DatabaseTransaction,
    msg: &Inbound,
    contact: i64,
    found: &keywords::Found,
) -> Result<(Action, bool, Option<Answer>), InboundError> {
    let channel = msg.channel.as_str();
    let (granted, action, answer) = match found.keyword {
        Keyword::Help => return Ok((Action::Help, false, Some(Answer::Help))),
        Keyword::Stop => (false, Action::Revoked, Answer::StopConfirmation),
        Keyword::Start => (true, Action::Restored, Answer::StartConfirmation),
    };
    let current = consent::current(txn, contact).await?;
    let already = current.get(channel).is_some_and(|c| c.granted == granted);
    if already {
        // One confirmation, then silence.
        return Ok((action, false, None));
    }
    consent::record(
        txn,
        contact,
        channel,
        granted,
        Source::ReplyKeyword,
        Some(ACTOR),
        Some(&found.word),
    )
    .await?;
    crate::audit::record(
        txn,
        ACTOR,
        if granted {
            "consent.granted"
        } else {
            "consent.revoked"
        },
        Some(&msg.from.masked()),
        serde_json::json!({
            "contact_id": contact,
            "channel": channel,
            "source": Source::ReplyKeyword.as_str(),
            "keyword": found.word,
        }),
    )
    .await?;
    Ok((action, true, Some(answer)))
}

/// The text (and an email's subject) of the answer to a keyword.
fn answer_text(app: &App, answer: Answer, product: &str) -> (String, String) {
    let settings = &app.settings.inbound;
    match answer {
        Answer::StopConfirmation => (
            settings.stop_confirmation(product),
            format!("{product}: you're unsubscribed"),
        ),
        Answer::StartConfirmation => (
            settings.start_confirmation(product),
            format!("{product}: you're resubscribed"),
        ),
        Answer::Help => (settings.help_text(product), format!("{product}: help")),
    }
}

/// Enqueues the answer to a keyword as a transactional message to the
/// sender, or says why it cannot be sent.
#[allow(clippy::too_many_arguments)]
async fn queue_reply(
    txn: &DatabaseTransaction,
    app: &App,
    msg: &Inbound,
    contact: i64,
    inbound_id: i64,
    answer: Answer,
    product: &str,
    now: DateTime<Utc>,
) -> Result<Reply, InboundError> {
    let (text, subject) = answer_text(app, answer, product);
    let channel = msg.channel.as_str();
    let Some(provider) = app.dispatcher.registry().for_channel(msg.channel) else {
        return Ok(Reply::Unavailable(format!(
            "no provider serves the {channel} channel"
        )));
    };
    let payload = if msg.channel == Channel::Email {
        let rendered = crate::templates::Rendered {
            subject: Some(subject),
            text,
            html: None,
        };
        match app
            .composer
            .compose(rendered, crate::templates::Kind::Transactional, None)
            .await
        {
            Ok(email) => email.to_payload(),
            Err(crate::email::compose::ComposeError::NoSender) => {
                return Ok(Reply::Unavailable(
                    "no email sender is configured (WARMLINE_EMAIL_FROM)".into(),
                ));
            }
            Err(e) => return Err(anyhow::Error::from(e).into()),
        }
    } else {
        serde_json::json!({ "text": text })
    };
    let message = NewMessage {
        // One answer per inbound message, whatever retries the caller makes.
        source: reply_source(inbound_id),
        campaign_id: None,
        contact_id: Some(contact),
        channel: msg.channel,
        kind: MessageKind::Transactional,
        // To the address that wrote, not whatever the contact has on file.
        address: Some(msg.from.as_str().to_string()),
        provider: provider.name().to_string(),
        payload,
        template: None,
        state: MessageState::Queued,
        due_at: now,
    };
    ledger::enqueue(txn, std::slice::from_ref(&message), now).await?;
    Ok(Reply::Queued(message.id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_round_trip() {
        for c in Channel::ALL {
            assert_eq!(Channel::parse(c.as_str()), Some(c));
        }
        assert_eq!(Channel::parse("fax"), None);
        assert_eq!(Channel::parse("SMS"), None);
    }

    #[test]
    fn senders_parse_per_channel() {
        assert_eq!(
            Sender::parse(Channel::Email, " Ada@Example.COM ")
                .unwrap()
                .as_str(),
            "Ada@example.com"
        );
        assert_eq!(
            Sender::parse(Channel::Sms, "+1 415 555 2671")
                .unwrap()
                .as_str(),
            "+14155552671"
        );
        assert_eq!(
            Sender::parse(Channel::Whatsapp, "14155552671")
                .unwrap()
                .as_str(),
            "+14155552671",
            "WhatsApp's wa_id has no +"
        );
        assert_eq!(
            Sender::parse(Channel::Instagram, "17841400000000001")
                .unwrap()
                .as_str(),
            "17841400000000001"
        );
        for (channel, bad) in [
            (Channel::Email, "not-an-address"),
            (Channel::Email, "+14155552671"),
            (Channel::Sms, "ada@example.com"),
            (Channel::Sms, "4155552671"),
            (Channel::Whatsapp, "call me"),
            (Channel::Instagram, "ada"),
            (Channel::Instagram, ""),
        ] {
            let e = Sender::parse(channel, bad).unwrap_err();
            assert!(
                matches!(e, InboundError::Invalid { field: "from", .. }),
                "{channel:?} {bad}: {e:?}"
            );
        }
    }

    #[test]
    fn errors_never_echo_a_whole_address() {
        let e = Sender::parse(Channel::Sms, "+1 999 555 0000x").unwrap_err();
        assert!(!e.to_string().contains("5550000"), "{e}");
    }

    #[test]
    fn a_future_time_and_a_mismatched_sender_are_refused() {
        let now = crate::clock::now();
        let msg = Inbound::parse(
            "sms",
            "+14155552671",
            "hi",
            now + chrono::Duration::hours(1),
        )
        .unwrap();
        assert!(matches!(
            msg.check(now),
            Err(InboundError::Invalid {
                field: "received_at",
                ..
            })
        ));
        let mut msg = Inbound::parse("sms", "+14155552671", "hi", now).unwrap();
        assert!(msg.check(now).is_ok());
        msg.channel = Channel::Email;
        assert!(matches!(
            msg.check(now),
            Err(InboundError::Invalid { field: "from", .. })
        ));
        assert!(matches!(
            Inbound::parse("fax", "+14155552671", "hi", now),
            Err(InboundError::Invalid {
                field: "channel",
                ..
            })
        ));
    }

    #[test]
    fn default_texts_name_the_product_and_configured_ones_win() {
        let s = InboundSettings::default();
        assert!(s.help_text("Acme").contains("Acme"));
        assert!(s.help_text("Acme").contains("Reply STOP to unsubscribe"));
        assert!(s.stop_confirmation("Acme").contains("START"));
        assert!(s.start_confirmation("Acme").contains("STOP"));
        let s = InboundSettings {
            help_text: Some("Call 555".into()),
            stop_confirmation: Some("  ".into()),
            start_confirmation: None,
        };
        assert_eq!(s.help_text("Acme"), "Call 555");
        assert!(
            s.stop_confirmation("Acme").contains("Acme"),
            "blank means default"
        );
    }

    #[test]
    fn slack_text_is_escaped_and_masked() {
        let notice = Notice {
            inbound_id: 1,
            channel: Channel::Sms,
            masked_from: "+1******2671".into(),
            contact_name: Some("Ada <Lovelace>".into()),
            known: true,
            text: "Sounds good <!channel>\nsee you".into(),
            action: Action::None,
            consent_changed: false,
            reply: Reply::None,
            campaign_name: Some("Spring".into()),
            slack_channel: None,
            slack_ts: None,
        };
        let text = notice.text();
        assert!(
            text.contains("*Ada &lt;Lovelace&gt;* (+1******2671)"),
            "{text}"
        );
        assert!(
            text.contains("> Sounds good &lt;!channel&gt;\n> see you"),
            "{text}"
        );
        assert!(text.contains("replied by SMS to *Spring*"), "{text}");
    }
}
