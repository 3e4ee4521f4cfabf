//! What the dispatcher does, once for every provider, when a provider's
//! refusal says something about the recipient
//! ([`SendOutcome::Refused`](crate::providers::SendOutcome::Refused)):
//!
//! - [`RecipientProblem::OptedOut`]: the recipient opted out at the provider
//!   (Twilio 21610, "replied STOP to this sender"). The channel's consent is
//!   revoked in the consent ledger with source `provider:<name>` (actor
//!   `provider`), and audited — unless the newest row already is a
//!   revocation (the ledger keeps one row per change, not per refusal).
//! - [`RecipientProblem::Unreachable`]: the address cannot receive on the
//!   channel (Twilio 21211 invalid number, 21614 not a mobile number). The
//!   contact's metadata gets `<field>_invalid = {"reason", "at", "provider",
//!   "address"}` where `<field>` is `phone` for SMS and WhatsApp, `email` for
//!   email and `instagram_id` for Instagram; the contact card and the API
//!   show it, and a person fixes the number (the flag stays until they
//!   remove it, e.g. with a metadata patch setting it to `null`).
//!
//! An unreachable address is also suppressed (reason `invalid_address`),
//! so the checks stop the next send to it before the provider.
//!
//! Invariants: it runs inside the transaction that fails the message, so
//! the failure and its consequence commit together; only messages tied to
//! a contact have one to act on; the address in the flag is the one the
//! provider refused (the contact's number may since have changed), masked
//! in logs.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, FromQueryResult, Statement, Value};

use super::claim::Claimed;
use crate::{
    consent,
    domain::{Channel, mask_email, mask_phone},
    providers::RecipientProblem,
};

/// Who the consent ledger and the audit log say revoked consent.
pub const ACTOR: &str = "provider";

/// The metadata key flagging a contact's address on `channel`.
pub fn invalid_key(channel: Channel) -> &'static str {
    match channel {
        Channel::Email => "email_invalid",
        Channel::Sms | Channel::Whatsapp => "phone_invalid",
        Channel::Instagram => "instagram_id_invalid",
    }
}

/// Applies `problem` for the message `m` that `provider` refused with
/// `error`, in the caller's transaction.
pub async fn record(
    conn: &impl ConnectionTrait,
    m: &Claimed,
    provider: &str,
    problem: RecipientProblem,
    error: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let Some(contact) = m.contact_id else {
        return Ok(());
    };
    let masked = match (m.address.as_deref(), m.channel) {
        (None, _) => String::new(),
        (Some(a), Channel::Email) => mask_email(a),
        (Some(a), _) => mask_phone(a),
    };
    match problem {
        RecipientProblem::OptedOut => {
            let current = consent::current(conn, contact).await?;
            if current.get(m.channel.as_str()).is_some_and(|c| !c.granted) {
                return Ok(());
            }
            let source = consent::provider_source(provider);
            consent::record_from(
                conn,
                contact,
                m.channel.as_str(),
                false,
                &source,
                Some(ACTOR),
                Some(error),
            )
            .await?;
            crate::audit::record(
                conn,
                ACTOR,
                "consent.revoked",
                Some(&masked),
                serde_json::json!({
                    "contact_id": contact,
                    "channel": m.channel.as_str(),
                    "source": source,
                    "message_id": m.id,
                }),
            )
            .await?;
            tracing::info!(
                contact,
                channel = m.channel.as_str(),
                provider,
                "consent revoked: the provider says the recipient opted out"
            );
        }
        RecipientProblem::Unreachable => {
            #[derive(FromQueryResult)]
            struct Meta {
                metadata: String,
                email: Option<String>,
                phone: Option<String>,
            }
            let backend = conn.get_database_backend();
            let Some(row) = Meta::find_by_statement(Statement::from_sql_and_values(
                backend,
                "SELECT metadata, email, phone FROM contacts WHERE id = $1",
                [Value::from(contact)],
            ))
            .one(conn)
            .await?
            else {
                return Ok(());
            };
            let mut meta: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(&row.metadata).unwrap_or_default();
            meta.insert(
                invalid_key(m.channel).to_string(),
                serde_json::json!({
                    "reason": error,
                    "at": now.to_rfc3339(),
                    "provider": provider,
                    "address": m.address,
                }),
            );
            conn.execute_raw(Statement::from_sql_and_values(
                backend,
                "UPDATE contacts SET metadata = $1, updated_at = $2 WHERE id = $3",
                [
                    Value::from(serde_json::to_string(&meta).expect("JSON values serialise")),
                    Value::from(now),
                    Value::from(contact),
                ],
            ))
            .await?;
            // Suppressed too, so the next send to that address is stopped
            // by the last-moment checks instead of failing at the provider
            // again; removing the suppression (a corrected number is a new
            // address anyway) lifts it.
            let address = m.address.clone().or(match m.channel {
                Channel::Email => row.email.clone(),
                Channel::Sms | Channel::Whatsapp => row.phone.clone(),
                Channel::Instagram => None,
            });
            if let Some(address) = address {
                super::ledger::suppress(
                    conn,
                    m.channel.as_str(),
                    &address.to_lowercase(),
                    "invalid_address",
                    &format!("provider:{provider}"),
                    now,
                )
                .await?;
            }
            tracing::info!(contact, channel = m.channel.as_str(), address = %masked, provider, "address flagged: the provider says it cannot receive");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_channel_flags_its_own_field() {
        assert_eq!(invalid_key(Channel::Sms), "phone_invalid");
        assert_eq!(invalid_key(Channel::Whatsapp), "phone_invalid");
        assert_eq!(invalid_key(Channel::Email), "email_invalid");
        assert_eq!(invalid_key(Channel::Instagram), "instagram_id_invalid");
    }
}
