//! A running campaign in its Slack thread: one progress message edited in
//! place, one summary at the end, and Pause / Resume / Cancel buttons for
//! approvers and the requester.
//!
//! The app runs with no provider workers; the test sends with its own
//! dispatcher (the test provider, with latency) one batch at a time, and
//! drives the progress loop with `tick(app, now)` at chosen times.

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use sea_orm::{
    ActiveValue::Set, ConnectionTrait, DatabaseConnection, EntityTrait, FromQueryResult, Statement,
    Value,
};
use serde_json::json;
use slack_morphism::prelude::{SlackApiChatPostMessageRequest, SlackMessageContent};
use warmline::{
    campaigns::progress,
    db::entities::consents,
    dispatcher::{
        Dispatcher,
        ledger::{self, NewMessage},
    },
    domain::MessageState,
    providers::{
        Registry,
        test_provider::{Behaviour, Core, TestProvider},
    },
};

use crate::{
    dispatcher::{message, seed_contacts},
    fake_slack::Call,
    helpers::{TestApp, block_action, spawn_app_with_registry},
    storage_test,
    test_db::TestDb,
};

const APPROVER: &str = "U0APPROVER";
const REQUESTER: &str = "U0REQUESTER";
const INTRUDER: &str = "U0INTRUDER";
const CHANNEL: &str = "C0CAMPAIGN";
const THREAD_TS: &str = "1700000000.000100";

// ---------------------------------------------------------------- helpers

async fn spawn(db: TestDb) -> TestApp {
    spawn_app_with_registry(
        db,
        |s| {
            s.slack.approvers = vec![APPROVER.into()];
            s.campaigns.progress_interval_secs = 5;
            s.caps.marketing_per_day = 1000;
            s.caps.marketing_per_week = 1000;
            s.quiet_hours.sms = None;
            s.quiet_hours.whatsapp = None;
        },
        // No workers: the test's own dispatcher sends, batch by batch.
        Some(Registry::new()),
    )
    .await
}

/// A dispatcher over the test provider (5 ms per call), `batch` at a time.
/// It heartbeats once first, so the app's own upkeep does not take its
/// claimed messages for a dead worker's.
async fn sender(app: &TestApp, batch: usize) -> (Dispatcher, Arc<Core>) {
    let core = Core::new(Behaviour {
        latency: Duration::from_millis(5),
        ..Behaviour::default()
    });
    let mut registry = Registry::new();
    registry.register(Arc::new(TestProvider::in_process(core.clone())));
    let mut s = app.app.settings.clone();
    s.dispatcher.batch_size = batch;
    s.dispatcher.retry_base_secs = 0.0;
    let d = Dispatcher::new(app.app.db.clone(), registry, &s);
    d.upkeep(false).await.unwrap();
    (d, core)
}

/// A running campaign requested by [`REQUESTER`], with a Slack thread.
async fn campaign(db: &DatabaseConnection) -> i64 {
    #[derive(FromQueryResult)]
    struct Id {
        id: i64,
    }
    Id::find_by_statement(Statement::from_sql_and_values(
        db.get_database_backend(),
        "INSERT INTO campaigns (name, channel, state, created_by, created_at, updated_at, slack_channel, slack_ts) \
         VALUES ('Spring update', 'email', 'running', $1, $2, $2, $3, $4) RETURNING id",
        [
            Value::from(REQUESTER),
            Value::from(Utc::now()),
            Value::from(CHANNEL),
            Value::from(THREAD_TS),
        ],
    ))
    .one(db)
    .await
    .unwrap()
    .unwrap()
    .id
}

/// Queues one campaign message per contact; returns them.
async fn queue(db: &DatabaseConnection, c: i64, contacts: &[i64]) -> Vec<NewMessage> {
    let msgs: Vec<NewMessage> = contacts
        .iter()
        .map(|k| NewMessage {
            campaign_id: Some(c),
            ..message(&format!("campaign:{c}"), *k, "marketing")
        })
        .collect();
    ledger::enqueue(db, &msgs, Utc::now()).await.unwrap();
    msgs
}

async fn set(db: &DatabaseConnection, id: &str, state: &str) {
    db.execute_raw(Statement::from_sql_and_values(
        db.get_database_backend(),
        "UPDATE messages SET state = $1 WHERE id = $2",
        [Value::from(state), Value::from(id.to_string())],
    ))
    .await
    .unwrap();
}

async fn campaign_state(db: &DatabaseConnection, c: i64) -> String {
    #[derive(FromQueryResult)]
    struct S {
        state: String,
    }
    S::find_by_statement(Statement::from_sql_and_values(
        db.get_database_backend(),
        "SELECT state FROM campaigns WHERE id = $1",
        [Value::from(c)],
    ))
    .one(db)
    .await
    .unwrap()
    .unwrap()
    .state
}

/// Ledger ids of the campaign's messages in one of `states`, sorted.
async fn ids_in(db: &DatabaseConnection, c: i64, states: &[&str]) -> Vec<String> {
    #[derive(FromQueryResult)]
    struct Id {
        id: String,
    }
    let list = states
        .iter()
        .map(|s| format!("'{s}'"))
        .collect::<Vec<_>>()
        .join(",");
    let mut ids: Vec<String> = Id::find_by_statement(Statement::from_sql_and_values(
        db.get_database_backend(),
        format!("SELECT id FROM messages WHERE campaign_id = $1 AND state IN ({list})"),
        [Value::from(c)],
    ))
    .all(db)
    .await
    .unwrap()
    .into_iter()
    .map(|r| r.id)
    .collect();
    ids.sort();
    ids
}

async fn audits(db: &DatabaseConnection, action: &str) -> i64 {
    warmline::db::count(
        db,
        "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM audit_log WHERE action = $1",
        vec![Value::from(action)],
    )
    .await
    .unwrap()
}

fn click(action: &str, campaign: i64, user: &str, ts: &str) -> serde_json::Value {
    let mut p = block_action(action);
    p["user"]["id"] = user.into();
    p["channel"] = json!({"id": CHANNEL, "name": "campaigns"});
    p["container"] = json!({"type": "message", "message_ts": "1503435956.000247", "channel_id": CHANNEL, "is_ephemeral": false});
    p["actions"][0]["value"] = campaign.to_string().into();
    p["actions"][0]["action_ts"] = ts.into();
    p
}

/// Progress messages posted in the thread (they carry the Cancel button
/// or the "done" line).
fn progress_posts(app: &TestApp) -> Vec<Call> {
    app.fake
        .calls_to("chat.postMessage")
        .into_iter()
        .filter(|c| {
            c.body["thread_ts"] == THREAD_TS
                && c.body["text"]
                    .as_str()
                    .is_some_and(|t| t.contains(" done ("))
        })
        .collect()
}

fn summaries(app: &TestApp) -> Vec<Call> {
    app.fake
        .calls_to("chat.postMessage")
        .into_iter()
        .filter(|c| {
            c.body["thread_ts"] == THREAD_TS
                && c.body["text"]
                    .as_str()
                    .is_some_and(|t| t.contains("unsubscribed"))
        })
        .collect()
}

fn edits(app: &TestApp) -> Vec<Call> {
    app.fake.calls_to("chat.update")
}

fn ephemerals(app: &TestApp) -> Vec<String> {
    app.fake
        .calls_to("chat.postEphemeral")
        .into_iter()
        .map(|c| c.body["text"].as_str().unwrap_or_default().to_string())
        .collect()
}

// ------------------------------------------------------------------ tests

storage_test!(
    progress_is_edited_in_place_paused_and_resumed_without_duplicates_or_gaps_then_summarised_once,
    |db: TestDb| async move {
        // Arrange: 8 consenting recipients, 1 without consent, 1 ambiguous.
        let app = spawn(db).await;
        let dbc = app.app.db.clone();
        let c = campaign(&dbc).await;
        let mut contacts = seed_contacts(&dbc, 9, true).await;
        let no_consent = seed_contacts(&dbc, 1, false).await[0];
        contacts.push(no_consent);
        let msgs = queue(&dbc, c, &contacts).await;
        let ambiguous = msgs[8].id();
        set(&dbc, &ambiguous, "ambiguous").await;
        let (sender, core) = sender(&app, 3).await;
        let t0 = Utc::now();

        // Act (1): a first batch, then a tick.
        assert!(sender.run_once().await.unwrap() > 0);
        let first = progress::tick(&app.app, t0).await.unwrap();

        // Assert (1): one progress message, in the thread.
        assert_eq!(first.posted, vec![c]);
        assert_eq!(progress_posts(&app).len(), 1);
        assert_eq!(progress_posts(&app)[0].body["channel"], CHANNEL);
        assert!(edits(&app).is_empty());

        // Act (2): more sent; a tick inside the interval, one after it, one
        // more with nothing changed.
        sender.run_once().await.unwrap();
        let early = progress::tick(&app.app, t0 + chrono::Duration::seconds(2))
            .await
            .unwrap();
        let due = progress::tick(&app.app, t0 + chrono::Duration::seconds(6))
            .await
            .unwrap();
        let idle = progress::tick(&app.app, t0 + chrono::Duration::seconds(12))
            .await
            .unwrap();

        // Assert (2): edited in place once, never posted again.
        assert!(early.edited.is_empty(), "no edit inside the interval");
        assert_eq!(due.edited, vec![c]);
        assert!(idle.edited.is_empty(), "unchanged counts are not edited");
        assert_eq!(edits(&app).len(), 1);
        assert_eq!(progress_posts(&app).len(), 1);

        // Act (3): someone else clicks Pause; then the requester does.
        app.post_interaction(&click("campaign_pause", c, INTRUDER, "1700000001.000001"))
            .await;
        app.drain_background().await;
        assert_eq!(
            campaign_state(&dbc, c).await,
            "running",
            "a stranger changes nothing"
        );
        assert!(ephemerals(&app)[0].contains("Only approvers and the person who requested"));
        let sent_before_pause = core.accepted().len();
        app.post_interaction(&click("campaign_pause", c, REQUESTER, "1700000002.000001"))
            .await;
        app.post_interaction(&click("campaign_pause", c, REQUESTER, "1700000003.000001"))
            .await;
        app.drain_background().await;
        sender.drain().await.unwrap();

        // Assert (3): paused once, audited once, shown in place, nothing more sent.
        assert_eq!(campaign_state(&dbc, c).await, "paused");
        assert_eq!(
            audits(&dbc, "campaign.pause").await,
            1,
            "a double click pauses once"
        );
        assert_eq!(
            core.accepted().len(),
            sent_before_pause,
            "nothing is sent while paused"
        );
        let held = ids_in(&dbc, c, &["paused"]).await;
        assert!(!held.is_empty(), "the pause came mid-way");
        let last_edit = edits(&app).last().unwrap().body.to_string();
        assert!(
            last_edit.contains("paused") && last_edit.contains("campaign_resume"),
            "{last_edit}"
        );
        assert!(
            ephemerals(&app)
                .iter()
                .any(|t| t.contains("nothing changed"))
        );

        // Act (4): an approver resumes; the rest is sent.
        app.post_interaction(&click("campaign_resume", c, APPROVER, "1700000004.000001"))
            .await;
        app.drain_background().await;
        sender.drain().await.unwrap();

        // Assert (4): each message sent exactly once, none skipped but the
        // one without consent: the provider's log is the ledger's.
        assert_eq!(campaign_state(&dbc, c).await, "running");
        assert_eq!(audits(&dbc, "campaign.resume").await, 1);
        let mut accepted: Vec<String> = core.accepted().into_iter().map(|a| a.id).collect();
        accepted.sort();
        let total = accepted.len();
        accepted.dedup();
        assert_eq!(accepted.len(), total, "no message sent twice");
        assert_eq!(accepted, ids_in(&dbc, c, &["sent"]).await, "no gaps");
        assert_eq!(accepted.len(), 8);
        let skipped = ids_in(&dbc, c, &["skipped"]).await;
        for id in &held {
            assert!(
                accepted.contains(id) || skipped.contains(id),
                "a paused message was settled after the resume"
            );
        }
        assert_eq!(skipped.len(), 1, "only the recipient without consent");
        assert!(
            ids_in(&dbc, c, &["paused", "queued", "sending"])
                .await
                .is_empty(),
            "none left behind"
        );

        // Act (5): a bounce and an unsubscribe arrive; the campaign is done.
        let bounced = &accepted[0];
        ledger::set_state(
            &dbc,
            &[bounced.as_str()],
            MessageState::Sent,
            MessageState::Bounced,
            "test bounce",
            Utc::now(),
        )
        .await
        .unwrap();
        let unsubscriber = msgs
            .iter()
            .find(|m| m.id() == accepted[1])
            .and_then(|m| m.contact_id)
            .unwrap();
        consents::Entity::insert(consents::ActiveModel {
            contact_id: Set(unsubscriber),
            channel: Set("email".into()),
            granted: Set(false),
            source: Set("one_click_unsubscribe".into()),
            recorded_at: Set(Utc::now()),
            ..Default::default()
        })
        .exec(&dbc)
        .await
        .unwrap();
        let end = progress::tick(&app.app, t0 + chrono::Duration::seconds(13))
            .await
            .unwrap();
        let again = progress::tick(&app.app, t0 + chrono::Duration::seconds(30))
            .await
            .unwrap();

        // Assert (5): a final edit and one summary with the ledger's numbers.
        assert_eq!(end.summarised, vec![c]);
        assert!(again.summarised.is_empty() && again.edited.is_empty());
        let summaries = summaries(&app);
        assert_eq!(summaries.len(), 1, "the summary is posted once");
        let text = summaries[0].body["text"].as_str().unwrap().to_string();
        assert!(
            text.contains("8 sent, 0 delivered, 1 bounced, 0 complained, 1 unsubscribed, 1 skipped, 0 failed, 1 ambiguous"),
            "{text}"
        );
        assert!(summaries[0].body.to_string().contains("1 no consent"));
        let final_edit = edits(&app).last().unwrap().body.to_string();
        assert!(
            final_edit.contains("finished") && !final_edit.contains("campaign_pause"),
            "{final_edit}"
        );
        assert_eq!(progress_posts(&app).len(), 1, "still one progress message");
    }
);

storage_test!(
    an_approver_cancels_and_the_rest_is_skipped_cancelled,
    |db: TestDb| async move {
        // Arrange: six recipients, two sent.
        let app = spawn(db).await;
        let dbc = app.app.db.clone();
        let c = campaign(&dbc).await;
        let contacts = seed_contacts(&dbc, 6, true).await;
        queue(&dbc, c, &contacts).await;
        let (sender, core) = sender(&app, 2).await;
        sender.run_once().await.unwrap();
        assert_eq!(core.accepted().len(), 2, "one batch");
        progress::tick(&app.app, Utc::now()).await.unwrap();

        // Act: an approver cancels (twice: a double click).
        app.post_interaction(&click("campaign_cancel", c, APPROVER, "1700000010.000001"))
            .await;
        app.post_interaction(&click("campaign_cancel", c, APPROVER, "1700000011.000001"))
            .await;
        app.drain_background().await;
        sender.drain().await.unwrap();
        let end = progress::tick(&app.app, Utc::now() + chrono::Duration::seconds(10))
            .await
            .unwrap();

        // Assert
        assert_eq!(campaign_state(&dbc, c).await, "cancelled");
        assert_eq!(audits(&dbc, "campaign.cancel").await, 1);
        assert_eq!(core.accepted().len(), 2, "nothing sent after the cancel");
        assert_eq!(ids_in(&dbc, c, &["skipped"]).await.len(), 4);
        assert_eq!(end.summarised, vec![c]);
        let summaries = summaries(&app);
        assert_eq!(summaries.len(), 1);
        assert!(
            summaries[0].body.to_string().contains("4 cancelled"),
            "{}",
            summaries[0].body
        );
        let last_edit = edits(&app).last().unwrap().body.to_string();
        assert!(last_edit.contains("cancelled") && !last_edit.contains("campaign_resume"));
    }
);

storage_test!(
    concurrent_ticks_post_one_progress_message_and_one_summary,
    |db: TestDb| async move {
        // Arrange: a campaign whose messages are all sent.
        let app = spawn(db).await;
        let dbc = app.app.db.clone();
        let c = campaign(&dbc).await;
        let contacts = seed_contacts(&dbc, 3, true).await;
        queue(&dbc, c, &contacts).await;
        let (sender, _core) = sender(&app, 10).await;
        sender.drain().await.unwrap();
        let now = Utc::now();

        // Act: two ticks at once, as two processes would, twice.
        let (a, b) = tokio::join!(progress::tick(&app.app, now), progress::tick(&app.app, now));
        let (a2, b2) = tokio::join!(progress::tick(&app.app, now), progress::tick(&app.app, now));

        // Assert
        let summarised: Vec<i64> = [a, b, a2, b2]
            .into_iter()
            .flat_map(|t| t.unwrap().summarised)
            .collect();
        assert_eq!(summarised, vec![c], "one summary, by one of them");
        assert_eq!(summaries(&app).len(), 1);
        assert_eq!(progress_posts(&app).len(), 1);
    }
);

#[tokio::test]
async fn progress_posts_keep_slacks_pace_per_channel_and_wait_out_a_429() {
    // Arrange: Slack's real pace (1 a second per channel, a burst of 3) and
    // two finished campaigns in one thread channel.
    let app = spawn_app_with_registry(
        crate::test_db::TestDb::new(crate::test_db::Backend::Sqlite)
            .await
            .expect("SQLite"),
        |s| {
            s.slack.approvers = vec![APPROVER.into()];
            s.slack.channel_posts_per_sec = 1.0;
            s.caps.marketing_per_day = 1000;
            s.caps.marketing_per_week = 1000;
        },
        Some(Registry::new()),
    )
    .await;
    let dbc = app.app.db.clone();
    let first = campaign(&dbc).await;
    let contacts = seed_contacts(&dbc, 2, true).await;
    queue(&dbc, first, &contacts).await;
    let (sender, _core) = sender(&app, 10).await;
    sender.drain().await.unwrap();
    let slack = app.app.slack.clone();
    let started = std::time::Instant::now();
    let post = |channel: &'static str| {
        let slack = slack.clone();
        async move {
            slack
                .post_message(SlackApiChatPostMessageRequest::new(
                    channel.into(),
                    SlackMessageContent::new().with_text("hi".into()),
                ))
                .await
                .unwrap();
            started.elapsed()
        }
    };

    // Act (1): the tick posts progress and summary while four more posts go
    // to the same channel and one to another.
    let (tick, a, b, c, d, other) = tokio::join!(
        progress::tick(&app.app, Utc::now()),
        post(CHANNEL),
        post(CHANNEL),
        post(CHANNEL),
        post(CHANNEL),
        post("C0ELSEWHERE"),
    );

    // Assert (1): six posts to one channel took at least three seconds
    // (three at once, then one a second); the other channel was not held.
    assert_eq!(tick.unwrap().summarised, vec![first]);
    let slowest = [a, b, c, d].into_iter().max().unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(
        slowest >= Duration::from_secs(1),
        "the fourth post waited: {slowest:?}"
    );
    assert!(other < Duration::from_millis(900), "{other:?}");

    // Act (2): Slack answers the next campaign's first post with a 429.
    let second = campaign(&dbc).await;
    let contacts = seed_contacts(&dbc, 1, true).await;
    queue(&dbc, second, &contacts).await;
    sender.drain().await.unwrap();
    app.fake.script(
        "chat.postMessage",
        crate::fake_slack::Scripted::RateLimited {
            retry_after_secs: 1,
        },
    );
    let before = std::time::Instant::now();
    let tick = progress::tick(&app.app, Utc::now()).await.unwrap();

    // Assert (2): waited out (not dropped, not doubled).
    assert_eq!(tick.summarised, vec![second]);
    assert!(before.elapsed() >= Duration::from_secs(1));
    assert_eq!(summaries(&app).len(), 2, "one summary per campaign");
}

#[tokio::test]
async fn the_requester_may_resume_a_campaign_the_breaker_paused() {
    // Arrange: a campaign paused as the circuit breaker pauses it.
    let app = spawn(
        crate::test_db::TestDb::new(crate::test_db::Backend::Sqlite)
            .await
            .expect("SQLite"),
    )
    .await;
    let dbc = app.app.db.clone();
    let c = campaign(&dbc).await;
    let contacts = seed_contacts(&dbc, 2, true).await;
    queue(&dbc, c, &contacts).await;
    ledger::pause_campaign(&dbc, c, "circuit-breaker", Utc::now())
        .await
        .unwrap();

    // Act: the requester clicks the breaker alert's Resume.
    app.post_interaction(&click("breaker_resume", c, REQUESTER, "1700000020.000001"))
        .await;
    app.drain_background().await;

    // Assert
    assert_eq!(campaign_state(&dbc, c).await, "running");
    assert_eq!(ids_in(&dbc, c, &["queued"]).await.len(), 2);
    assert_eq!(audits(&dbc, "campaign.resume").await, 1);
}
