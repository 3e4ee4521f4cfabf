//! Messages that need a person reach Slack: a message left ambiguous by a
//! crash is posted to the approvals channel with buttons, and only an
//! approver's click decides it — once.

use chrono::Utc;
use sea_orm::{ConnectionTrait, FromQueryResult, Statement, Value};
use warmline::dispatcher::{claim, ledger};

use crate::{
    dispatcher::{message, seed_contacts},
    helpers::{block_action, spawn_app_with},
};

#[derive(FromQueryResult)]
struct S {
    state: String,
}

async fn state(db: &sea_orm::DatabaseConnection, id: &str) -> String {
    S::find_by_statement(Statement::from_sql_and_values(
        db.get_database_backend(),
        "SELECT state FROM messages WHERE id = $1",
        [Value::from(id.to_string())],
    ))
    .one(db)
    .await
    .unwrap()
    .unwrap()
    .state
}

fn decision(action: &str, message_id: &str, user: &str, ts: &str) -> serde_json::Value {
    let mut p = block_action(action);
    p["user"]["id"] = user.into();
    p["channel"] = serde_json::json!({"id": "C0APPROVE", "name": "approvals"});
    p["container"] = serde_json::json!({"type": "message", "message_ts": "1700000000.000100", "channel_id": "C0APPROVE", "is_ephemeral": false});
    p["actions"][0]["value"] = message_id.into();
    p["actions"][0]["action_ts"] = ts.into();
    p
}

#[tokio::test]
async fn an_ambiguous_message_is_posted_and_only_an_approver_decides_it() {
    // Arrange: a worker died during a call to a key-less provider.
    let app = spawn_app_with(|s| {
        s.slack.approvals_channel = Some("C0APPROVE".into());
        s.slack.approvers = vec!["U0APPROVER".into()];
        s.caps.marketing_per_day = 100;
    })
    .await;
    let db = app.app.db.clone();
    let contact = seed_contacts(&db, 1, true).await[0];
    // A provider no worker of this app serves, so nothing races our claim;
    // unknown to the registry, it counts as taking no idempotency key.
    let m = warmline::dispatcher::ledger::NewMessage {
        provider: "offline".into(),
        ..message("alert:1", contact, "marketing")
    };
    ledger::enqueue(&db, std::slice::from_ref(&m), Utc::now())
        .await
        .unwrap();
    // Claimed by a worker that no longer exists (taken before our workers see it).
    let claimed = claim::claim(&db, "offline", "dead-worker", 10, Utc::now())
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    db.execute_raw(Statement::from_sql_and_values(
        db.get_database_backend(),
        "UPDATE messages SET called_at = $1 WHERE id = $2",
        [Value::from(Utc::now()), Value::from(m.id())],
    ))
    .await
    .unwrap();

    // Act (1): upkeep recovers it.
    app.app.dispatcher.upkeep(false).await.unwrap();

    // Assert (1): ambiguous, and posted to the approvals channel with buttons.
    assert_eq!(state(&db, &m.id()).await, "ambiguous");
    let posts = app.fake.wait_for_calls("chat.postMessage", 1).await;
    let body = posts[0].body.to_string();
    assert_eq!(posts[0].body["channel"], "C0APPROVE");
    assert!(body.contains(&m.id()), "{body}");
    assert!(
        body.contains("ambiguous_send_again") && body.contains("ambiguous_mark_sent"),
        "{body}"
    );
    assert!(
        !body.contains("@example.com"),
        "no recipient address in the alert"
    );

    // Act (2): someone who is not an approver clicks.
    app.post_interaction(&decision(
        "ambiguous_mark_sent",
        &m.id(),
        "U0INTRUDER",
        "1700000001.000001",
    ))
    .await;
    let refusals = app.fake.wait_for_calls("chat.postEphemeral", 1).await;

    // Assert (2): refused, nothing changed.
    assert!(refusals[0].body.to_string().contains("Only approvers"));
    assert_eq!(state(&db, &m.id()).await, "ambiguous");

    // Act (3): the approver marks it sent; then clicks again.
    app.post_interaction(&decision(
        "ambiguous_mark_sent",
        &m.id(),
        "U0APPROVER",
        "1700000002.000001",
    ))
    .await;
    app.post_interaction(&decision(
        "ambiguous_send_again",
        &m.id(),
        "U0APPROVER",
        "1700000003.000001",
    ))
    .await;
    let answers = app.fake.wait_for_calls("chat.postEphemeral", 3).await;

    // Assert (3): decided once; the second click changed nothing; audited.
    assert_eq!(state(&db, &m.id()).await, "sent");
    assert!(
        answers[1].body.to_string().contains("recorded as sent"),
        "{:?}",
        answers[1].body
    );
    assert!(
        answers[2].body.to_string().contains("already decided"),
        "{:?}",
        answers[2].body
    );
    assert_eq!(app.audit_rows().await, 1);
}
