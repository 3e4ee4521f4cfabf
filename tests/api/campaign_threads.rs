//! Every campaign that sends has one Slack thread. One the policy let go
//! straight out (no approval needed) gets a root message in the requester's
//! DM (or `[campaigns] thread_channel`), and its progress message, summary
//! and bounce notices land in that thread — never in the approvals channel.
//!
//! End to end: `approval::submit`, the test provider sending, the progress
//! loop driven with `tick(app, now)`, and a signed Resend bounce webhook.

use chrono::Utc;
use sea_orm::{DatabaseConnection, FromQueryResult, Statement, Value};
use serde_json::json;
use warmline::{
    approval::{self, Content, SendRequest, Submitted},
    campaigns::progress,
    providers::resend::{settings::ResendSettings, svix},
};

use crate::{
    approvals::{
        APPROVALS, ASKER, Harness, check_in_was_sent_before, inline, named_contacts, spawn_on,
    },
    fake_slack::{Call, WAIT, dm_of},
    storage_test,
    test_db::TestDb,
};

const SECRET: &str = "whsec_d2FybWxpbmUgdGVzdCB3ZWJob29rIHNlY3JldCAzMmI=";
const THREADS: &str = "C0THREADS";

async fn spawn(db: TestDb, thread_channel: Option<&str>) -> Harness {
    let thread_channel = thread_channel.map(str::to_string);
    spawn_on(db, move |s| {
        s.providers.resend = ResendSettings {
            webhook_secret: Some(SECRET.to_string().into()),
            ..Default::default()
        };
        // The test ticks the progress loop itself.
        s.campaigns.progress_interval_secs = 3600;
        s.campaigns.thread_channel = thread_channel;
    })
    .await
}

/// A send of the (already used) check-in template to `n` named contacts:
/// low risk, so the policy lets it go out without an approver.
async fn straight_out(h: &Harness, n: usize, source: &str) -> (i64, Vec<i64>) {
    let db = h.app.app.db.clone();
    let contacts = named_contacts(&db, n).await;
    for c in &contacts {
        check_in_was_sent_before(&db, *c).await;
    }
    let req = SendRequest {
        content: Content::Template {
            name: "check_in".into(),
        },
        ..inline("December check-in", ASKER, contacts.clone(), "", source)
    };
    match approval::submit(&h.app.app, req).await.expect("submitted") {
        Submitted::Queued { campaign_id, .. } => (campaign_id, contacts),
        other => panic!("expected no approval to be needed, got {other:?}"),
    }
}

#[derive(Debug, FromQueryResult)]
struct Thread {
    slack_channel: Option<String>,
    slack_ts: Option<String>,
}

async fn thread_of(db: &DatabaseConnection, campaign_id: i64) -> Thread {
    Thread::find_by_statement(Statement::from_sql_and_values(
        db.get_database_backend(),
        "SELECT slack_channel, slack_ts FROM campaigns WHERE id = $1",
        [Value::from(campaign_id)],
    ))
    .one(db)
    .await
    .unwrap()
    .expect("the campaign exists")
}

/// The campaign's sent messages: (ledger id, address).
async fn sent_messages(db: &DatabaseConnection, campaign_id: i64) -> Vec<(String, String)> {
    #[derive(FromQueryResult)]
    struct M {
        id: String,
        email: String,
    }
    M::find_by_statement(Statement::from_sql_and_values(
        db.get_database_backend(),
        "SELECT m.id AS id, c.email AS email FROM messages m JOIN contacts c ON c.id = m.contact_id \
         WHERE m.campaign_id = $1 AND m.state = 'sent' ORDER BY m.id",
        [Value::from(campaign_id)],
    ))
    .all(db)
    .await
    .unwrap()
    .into_iter()
    .map(|m| (m.id, m.email))
    .collect()
}

/// Waits (up to [`WAIT`]) until the ledger records `n` of the campaign's
/// messages as sent: the provider's acceptance is recorded by the worker
/// just after the call returns.
async fn wait_until_sent(db: &DatabaseConnection, campaign_id: i64, n: usize) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while sent_messages(db, campaign_id).await.len() < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the ledger never showed {n} sent"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Posts a signed Resend "permanent bounce" for our message `id`.
async fn bounce(h: &Harness, id: &str, address: &str) {
    let body = json!({
        "type": "email.bounced",
        "created_at": "2026-11-26T12:00:01.000Z",
        "data": {
            "email_id": format!("em_{id}"),
            "created_at": "2026-11-26T12:00:00.000Z",
            "from": "Team <team@example.com>",
            "to": [address],
            "subject": "Hello",
            "tags": {"warmline_message_id": id},
            "bounce": {"message": "The recipient's mailbox does not exist.", "subType": "General", "type": "Permanent"}
        }
    })
    .to_string();
    let ts = Utc::now().timestamp();
    let event_id = format!("msg_{}", uuid::Uuid::new_v4().simple());
    let sig = svix::sign(
        &svix::Secret::parse(SECRET).unwrap(),
        &event_id,
        ts,
        body.as_bytes(),
    );
    let res = h
        .app
        .client
        .post(h.app.url("/webhooks/resend"))
        .header("content-type", "application/json")
        .header("svix-id", &event_id)
        .header("svix-timestamp", ts.to_string())
        .header("svix-signature", sig)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

fn text_of(c: &Call) -> String {
    c.body["text"].as_str().unwrap_or_default().to_string()
}

storage_test!(
    a_campaign_without_approval_has_its_thread_in_the_requesters_dm,
    |db: TestDb| async move {
        // Arrange
        let h = spawn(db, None).await;
        let dbc = h.app.app.db.clone();

        // Act (1): the send goes straight out.
        let (campaign_id, contacts) = straight_out(&h, 3, "campaign:dm-thread").await;
        assert!(h.core.wait_for_accepted(3, WAIT).await, "all three sent");
        wait_until_sent(&dbc, campaign_id, 3).await;
        h.app.drain_background().await;

        // Assert (1): one root message in the requester's DM, opened with
        // conversations.open, recorded as the campaign's thread.
        let opened = h.app.fake.calls_to("conversations.open");
        assert_eq!(opened.len(), 1);
        assert!(opened[0].body["users"].to_string().contains(ASKER));
        let dm = dm_of(ASKER);
        let thread = thread_of(&dbc, campaign_id).await;
        assert_eq!(thread.slack_channel.as_deref(), Some(dm.as_str()));
        let ts = thread.slack_ts.expect("the root's ts is kept");
        let posts = h.app.fake.calls_to("chat.postMessage");
        assert_eq!(posts.len(), 1, "{posts:?}");
        assert_eq!(posts[0].body["channel"], dm);
        assert!(posts[0].body.get("thread_ts").is_none(), "a root message");
        assert!(text_of(&posts[0]).contains("December check-in"));

        // Act (2): the progress loop runs; then one recipient bounces.
        let tick = progress::tick(&h.app.app, Utc::now()).await.unwrap();
        let sent = sent_messages(&dbc, campaign_id).await;
        assert_eq!(sent.len(), contacts.len());
        bounce(&h, &sent[0].0, &sent[0].1).await;
        h.app.drain_background().await;

        // Assert (2): progress (with its buttons' message), summary and the
        // bounce notice are all in the DM thread; nothing in the approvals
        // channel.
        assert_eq!(tick.summarised, vec![campaign_id]);
        let in_thread: Vec<Call> = h
            .app
            .fake
            .calls_to("chat.postMessage")
            .into_iter()
            .filter(|c| c.body["thread_ts"] == ts.as_str())
            .collect();
        assert!(in_thread.iter().all(|c| c.body["channel"] == dm));
        let texts: Vec<String> = in_thread.iter().map(text_of).collect();
        assert!(
            texts.iter().any(|t| t.contains(" done (")),
            "progress: {texts:?}"
        );
        assert!(
            texts
                .iter()
                .any(|t| t.contains("3 sent") && t.contains("unsubscribed")),
            "summary: {texts:?}"
        );
        assert!(
            texts.iter().any(|t| t.contains("Hard bounce")),
            "bounce notice: {texts:?}"
        );
        let everywhere = h.app.fake.calls_to("chat.postMessage");
        assert!(
            everywhere.iter().all(|c| c.body["channel"] != APPROVALS),
            "nothing in the approvals channel: {everywhere:?}"
        );
        assert_eq!(
            everywhere.len(),
            1 + in_thread.len(),
            "all but the root are in the thread"
        );
    }
);

#[tokio::test]
async fn with_a_thread_channel_the_thread_is_there_and_not_in_a_dm() {
    // Arrange
    let h = spawn(
        TestDb::new(crate::test_db::Backend::Sqlite)
            .await
            .expect("SQLite"),
        Some(THREADS),
    )
    .await;

    // Act
    let (campaign_id, _) = straight_out(&h, 1, "campaign:channel-thread").await;
    h.app.drain_background().await;

    // Assert
    assert!(h.app.fake.calls_to("conversations.open").is_empty());
    let thread = thread_of(&h.app.app.db, campaign_id).await;
    assert_eq!(thread.slack_channel.as_deref(), Some(THREADS));
    let posts = h.app.fake.calls_to("chat.postMessage");
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].body["channel"], THREADS);
}
