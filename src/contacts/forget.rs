//! Erasure ("right to be forgotten", GDPR Art. 17): `/warm contact forget`
//! (approvers only) and anything else that must erase a person.
//!
//! What goes, in ONE transaction (serialised with every other writer of the
//! contact by [`crate::consent::lock_contact`]):
//! - The contact row and everything hanging off it: interactions (their
//!   summaries), consent ledger rows, trigger runs.
//! - Messages to the person (by contact id or address) stay as anonymous
//!   delivery-ledger rows — state, channel, template, times — so campaign
//!   counts and bounce rates stay true, but lose their address, payload
//!   (the rendered content), last error and contact link. Their events'
//!   details and provider events' payloads that could name the person are
//!   cleared, as are other provider events whose payload mentions an
//!   address of theirs.
//! - Pending messages (awaiting approval, scheduled, held, queued,
//!   deferred, paused) are first skipped with reason `cancelled`, so
//!   nothing more goes out. A message a worker has already claimed
//!   (`sending`) finishes its one provider call; its outcome is recorded on
//!   the anonymous row.
//! - Inbound messages from them keep only channel, keyword and time (an
//!   opt-out keyword stays visible as a fact); text and sender are erased.
//! - Stored idempotent API answers mentioning them are deleted, so a
//!   replay cannot hand their data back (a retry then re-runs and is
//!   refused by the tombstone).
//!
//! What stays, without personal data in clear:
//! - Tombstones: SHA-256 of the email, the phone and the external id
//!   ([`tombstone_hash`], [`super::external_id_tombstone`]). The importer and
//!   [`super::upsert`] refuse those identities, so nobody silently brings
//!   the person back.
//! - Suppressions of their addresses, with the address replaced by
//!   `sha256:<tombstone hash>`: a suppression is kept because it exists to
//!   stop future contact (legitimate interest, Art. 17(3)(e) and 21), and
//!   hashed because its clear address is no longer needed to honour it.
//! - Proof of consent: erasure deletes the ledger rows with the contact
//!   (their only link to a person is the contact), so the audit entry
//!   `contact.forgotten` keeps each row's channel, grant or revocation,
//!   source, actor, consent text and time, next to the tombstone hashes and
//!   the masked identifiers. Whoever later claims "I never agreed" proves
//!   the identity by giving the address, whose hash finds the entry; no
//!   one can read the address out of it. This is the trade-off between
//!   erasure (Art. 17) and demonstrable consent (Art. 7(1)) we chose: the
//!   proof survives, the person's data does not.
//!
//! Not reached: messages already posted to Slack (Slack's own retention
//! applies) and earlier audit entries (which only ever hold masked values).

use chrono::Utc;
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, EntityTrait, FromQueryResult,
    Statement, Value,
};
use serde_json::json;

use super::{export::addresses, external_id_tombstone, like_pattern};
use crate::domain::suppression_hash;
use crate::{
    db::entities::contacts,
    domain::tombstone_hash,
    domain::{MessageState, SkipReason, mask_email, mask_phone},
};

/// States in which a message has not been handed to a worker yet.
const PENDING: &[MessageState] = &[
    MessageState::AwaitingApproval,
    MessageState::Scheduled,
    MessageState::Held,
    MessageState::Queued,
    MessageState::Deferred,
    MessageState::Paused,
];

/// The person's messages: linked to the contact or sent to one of its
/// addresses. Binds `$1` (id), `$2` (email), `$3` (phone), lower-cased.
const THEIR_MESSAGES: &str = "(contact_id = $1 OR LOWER(address) = $2 OR LOWER(address) = $3)";

/// Erases contact `id` (see the module doc). `false` when there is no such
/// contact (never existed, or already forgotten); `actor` is who asked
/// (`slack:U123`), named in the audit log.
pub async fn forget(db: &DatabaseConnection, id: i64, actor: &str) -> anyhow::Result<bool> {
    let Some(txn) = crate::consent::lock_contact(db, id).await? else {
        return Ok(false);
    };
    match erase(&txn, id, actor).await {
        Ok(summary) => {
            txn.commit().await?;
            tracing::info!(contact_id = id, %summary, "contact forgotten");
            Ok(true)
        }
        Err(e) => {
            txn.rollback().await.ok();
            Err(e)
        }
    }
}

async fn erase(
    txn: &DatabaseTransaction,
    id: i64,
    actor: &str,
) -> anyhow::Result<serde_json::Value> {
    let backend = txn.get_database_backend();
    let now = crate::clock::now();
    let model = contacts::Entity::find_by_id(id)
        .one(txn)
        .await?
        .ok_or_else(|| anyhow::anyhow!("contact {id} vanished while locked"))?;
    let [email, phone] = addresses(&model);
    let their = || {
        vec![
            Value::from(id),
            Value::from(email.clone()),
            Value::from(phone.clone()),
        ]
    };
    let exec = |sql: String, values: Vec<Value>| async move {
        txn.execute_raw(Statement::from_sql_and_values(backend, sql, values))
            .await
            .map(|r| r.rows_affected())
    };

    // 1. The proof of consent, read before the rows go.
    #[derive(FromQueryResult)]
    struct ConsentRow {
        channel: String,
        granted: bool,
        source: String,
        actor: Option<String>,
        consent_text: Option<String>,
        recorded_at: chrono::DateTime<Utc>,
    }
    let proof = ConsentRow::find_by_statement(Statement::from_sql_and_values(
        backend,
        "SELECT channel, granted, source, actor, consent_text, recorded_at FROM consents \
         WHERE contact_id = $1 ORDER BY id",
        [Value::from(id)],
    ))
    .all(txn)
    .await?;

    // 2. Nothing more goes out: pending messages are cancelled, with an
    // event each, before their rows lose the contact link.
    let states = PENDING
        .iter()
        .map(|s| format!("'{}'", s.as_str()))
        .collect::<Vec<_>>()
        .join(",");
    let mut values = their();
    values.extend([
        Value::from(MessageState::Skipped.as_str()),
        Value::from(now),
        Value::from("cancelled: the contact was forgotten".to_string()),
    ]);
    exec(
        format!(
            "INSERT INTO message_events (message_id, state, at, detail) \
             SELECT id, $4, $5, $6 FROM messages WHERE {THEIR_MESSAGES} AND state IN ({states})"
        ),
        values,
    )
    .await?;
    let mut values = their();
    values.extend([
        Value::from(MessageState::Skipped.as_str()),
        Value::from(SkipReason::Cancelled.as_str()),
        Value::from(now),
    ]);
    let cancelled = exec(
        format!(
            "UPDATE messages SET state = $4, skip_reason = $5, updated_at = $6, locked_by = NULL \
             WHERE {THEIR_MESSAGES} AND state IN ({states})"
        ),
        values,
    )
    .await?;

    // 3. Provider events and event details of their messages; then other
    // provider events and idempotent answers that mention them.
    exec(
        format!(
            "UPDATE provider_events SET payload = '{{}}' \
             WHERE message_id IN (SELECT id FROM messages WHERE {THEIR_MESSAGES})"
        ),
        their(),
    )
    .await?;
    let mentions: Vec<String> = [
        email.clone(),
        phone.clone(),
        model.external_id.as_deref().map(str::to_lowercase),
    ]
    .into_iter()
    .flatten()
    .map(|m| like_pattern(&m))
    .collect();
    for pattern in &mentions {
        let mut values = their();
        values.push(Value::from(pattern.clone()));
        exec(
            format!(
                "UPDATE message_events SET detail = NULL \
                 WHERE message_id IN (SELECT id FROM messages WHERE {THEIR_MESSAGES}) \
                 AND LOWER(detail) LIKE $4 ESCAPE '\\'"
            ),
            values,
        )
        .await?;
        exec(
            "UPDATE provider_events SET payload = '{}' WHERE LOWER(payload) LIKE $1 ESCAPE '\\'"
                .into(),
            vec![Value::from(pattern.clone())],
        )
        .await?;
        exec(
            "DELETE FROM api_idempotency WHERE LOWER(response) LIKE $1 ESCAPE '\\'".into(),
            vec![Value::from(pattern.clone())],
        )
        .await?;
    }

    // 4. Their messages become anonymous ledger rows.
    let messages = exec(
        format!(
            "UPDATE messages SET address = NULL, payload = '{{}}', last_error = NULL, \
             contact_id = NULL WHERE {THEIR_MESSAGES}"
        ),
        their(),
    )
    .await?;

    // 5. Inbound messages keep channel, keyword and time.
    let inbound = exec(
        "UPDATE inbound_messages SET text = '', from_address = 'erased', contact_id = NULL \
         WHERE contact_id = $1 OR LOWER(from_address) = $2 OR LOWER(from_address) = $3"
            .into(),
        their(),
    )
    .await?;

    // 6. Suppressions stay, hashed.
    #[derive(FromQueryResult)]
    struct SuppressionRow {
        id: i64,
        channel: String,
        address: String,
    }
    let suppressions = SuppressionRow::find_by_statement(Statement::from_sql_and_values(
        backend,
        "SELECT id, channel, address FROM suppressions \
         WHERE contact_id = $1 OR address = $2 OR address = $3",
        their(),
    ))
    .all(txn)
    .await?;
    for s in &suppressions {
        let hashed = suppression_hash(&s.address);
        let taken = txn
            .query_one_raw(Statement::from_sql_and_values(
                backend,
                "SELECT id FROM suppressions WHERE channel = $1 AND address = $2",
                [Value::from(s.channel.clone()), Value::from(hashed.clone())],
            ))
            .await?
            .is_some();
        if taken {
            exec(
                "DELETE FROM suppressions WHERE id = $1".into(),
                vec![Value::from(s.id)],
            )
            .await?;
        } else {
            exec(
                "UPDATE suppressions SET address = $1, contact_id = NULL WHERE id = $2".into(),
                vec![Value::from(hashed), Value::from(s.id)],
            )
            .await?;
        }
    }

    // 7. The contact and what hangs off it. Deleted explicitly rather than
    // by the foreign keys' cascade, which only some tables have.
    let interactions = exec(
        "DELETE FROM interactions WHERE contact_id = $1".into(),
        vec![Value::from(id)],
    )
    .await?;
    exec(
        "DELETE FROM consents WHERE contact_id = $1".into(),
        vec![Value::from(id)],
    )
    .await?;
    let trigger_runs = exec(
        "DELETE FROM trigger_runs WHERE contact_id = $1".into(),
        vec![Value::from(id)],
    )
    .await?;
    exec(
        "DELETE FROM contacts WHERE id = $1".into(),
        vec![Value::from(id)],
    )
    .await?;

    // 8. Tombstones, then the audit entry with the proof.
    let mut tombstones = Vec::new();
    if let Some(e) = &model.email {
        tombstones.push(("email", tombstone_hash(e)));
    }
    if let Some(p) = &model.phone {
        tombstones.push(("phone", tombstone_hash(p)));
    }
    if let Some(x) = &model.external_id {
        tombstones.push(("external_id", external_id_tombstone(x)));
    }
    for (_, hash) in &tombstones {
        exec(
            "INSERT INTO tombstones (hash, created_at) VALUES ($1, $2) ON CONFLICT (hash) DO NOTHING"
                .into(),
            vec![Value::from(hash.clone()), Value::from(now)],
        )
        .await?;
    }
    let summary = json!({
        "cancelled_messages": cancelled,
        "anonymised_messages": messages,
        "erased_interactions": interactions,
        "erased_inbound_messages": inbound,
        "erased_trigger_runs": trigger_runs,
        "hashed_suppressions": suppressions.len(),
    });
    let detail = json!({
        "email": model.email.as_deref().map(mask_email),
        "phone": model.phone.as_deref().map(mask_phone),
        "tombstones": tombstones
            .iter()
            .map(|(kind, hash)| (kind.to_string(), json!(hash)))
            .collect::<serde_json::Map<_, _>>(),
        "consent_proof": proof.iter().map(|r| json!({
            "channel": r.channel,
            "granted": r.granted,
            "source": r.source,
            "actor": r.actor,
            "text": r.consent_text,
            "recorded_at": r.recorded_at,
        })).collect::<Vec<_>>(),
        "erased": summary,
    });
    crate::audit::record(
        txn,
        actor,
        "contact.forgotten",
        Some(&format!("contact:{id}")),
        detail,
    )
    .await?;
    Ok(summary)
}
