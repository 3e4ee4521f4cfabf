//! The whole happy path of a campaign, as people walk it in Slack, end to
//! end through the fake Slack and the test provider: `/warm campaign` opens
//! the composer, the form's submission shows the preview, Request approval
//! posts the request to the approvals channel (and sends nothing), an
//! approver's click queues every message in the decision's transaction and
//! the provider receives each once, and the progress loop (driven with
//! `tick(app, now)`) posts one progress message in the request's thread and
//! then one summary with the ledger's numbers. The requester hears of the
//! decision in a DM.

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use sea_orm::{ConnectionTrait, DatabaseConnection, FromQueryResult, Statement, Value};
use serde_json::json;
use warmline::{
    campaigns::progress,
    providers::{
        Registry,
        test_provider::{Behaviour, Core, TestProvider},
    },
};

use crate::{
    approvals::{APPROVALS, APPROVER, click, message_states},
    campaigns::{add_contact, consenting, form, input, open_composer, select, submit},
    fake_slack::{Call, WAIT},
    helpers::{TestApp, USER, spawn_app_with_registry},
    storage_test,
    test_db::TestDb,
};

/// How many consenting contacts the campaign goes to (above `min_recipients`).
const RECIPIENTS: usize = 12;

/// The app with the test provider as its email provider: one message per
/// request, one request a second, so the send takes about eleven seconds
/// after the first message and a progress tick taken right after that first
/// one lands mid-way with seconds to spare. The background progress loop is
/// kept out of the way (a long interval): the test ticks itself.
async fn spawn(db: TestDb) -> (TestApp, Arc<Core>) {
    let core = Core::new(Behaviour {
        declared_rps: Some(1.0),
        max_batch: 1,
        ..Behaviour::default()
    });
    let mut registry = Registry::new();
    registry.register(Arc::new(TestProvider::in_process(core.clone())));
    let app = spawn_app_with_registry(
        db,
        |s| {
            s.slack.approvals_channel = Some(APPROVALS.into());
            s.slack.approvers = vec![APPROVER.into()];
            s.email.from = Some("Team <team@example.com>".into());
            s.caps.marketing_per_day = 1000;
            s.caps.marketing_per_week = 1000;
            s.campaigns.progress_interval_secs = 3600;
        },
        Some(registry),
    )
    .await;
    (app, core)
}

async fn count(db: &DatabaseConnection, sql: &str, values: Vec<Value>) -> i64 {
    warmline::db::count(db, sql, values).await.unwrap()
}

/// Waits (up to [`WAIT`]) until `sql` counts `n`.
async fn wait_for_count(db: &DatabaseConnection, sql: &str, values: Vec<Value>, n: i64) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let now = count(db, sql, values.clone()).await;
        if now == n {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {n} from {sql}: {now}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The campaign's Slack thread (the approval request): channel and ts.
async fn thread_of(db: &DatabaseConnection, campaign_id: i64) -> (String, String) {
    #[derive(FromQueryResult)]
    struct Thread {
        slack_channel: Option<String>,
        slack_ts: Option<String>,
    }
    let t = Thread::find_by_statement(Statement::from_sql_and_values(
        db.get_database_backend(),
        "SELECT slack_channel, slack_ts FROM campaigns WHERE id = $1",
        [Value::from(campaign_id)],
    ))
    .one(db)
    .await
    .unwrap()
    .expect("the campaign exists");
    (
        t.slack_channel.expect("the request's channel is kept"),
        t.slack_ts.expect("the request's ts is kept"),
    )
}

/// Messages warmline posted in the thread of the message at `ts`.
fn thread_posts(app: &TestApp, ts: &str) -> Vec<Call> {
    app.fake
        .calls_to("chat.postMessage")
        .into_iter()
        .filter(|c| c.body["thread_ts"] == ts)
        .collect()
}

fn text_of(c: &Call) -> String {
    c.body["text"].as_str().unwrap_or_default().to_string()
}

storage_test!(
    a_campaign_is_composed_approved_sent_once_and_summarised_in_slack,
    |db: TestDb| async move {
        // Arrange: twelve consenting contacts tagged for the campaign.
        let (app, core) = spawn(db).await;
        let dbc = app.app.db.clone();
        for i in 0..RECIPIENTS {
            add_contact(
                &app,
                consenting(
                    &format!("friend{i}@example.com"),
                    &format!("Friend{i}"),
                    "e2e",
                ),
            )
            .await;
        }
        // Warm ones: a cold audience adds risk enough to need two approvers.
        dbc.execute_unprepared("UPDATE contacts SET warmth = 60")
            .await
            .unwrap();

        // Act (1): `/warm campaign`.
        let composer = open_composer(&app, "trigger-e2e-1").await;

        // Assert (1): the composer was opened with the command's trigger id.
        assert_eq!(composer["callback_id"], "campaign_modal");
        assert_eq!(app.fake.calls_to("views.open").len(), 1);

        // Act (2): the form: a name, email, a segment by tag, a marketing
        // template, now.
        let values = form(json!({
            "name": input("Spring hello"),
            "tags": input("e2e"),
            "subject": null,
            "body": null,
            "template": select("check_in"),
        }));
        let preview = submit(&app, &composer, "VE2E", values).await;

        // Assert (2): the preview, with the counts; nothing stored to send.
        assert_eq!(preview["response_action"], "update", "{preview}");
        let view = &preview["view"];
        assert_eq!(view["callback_id"], "campaign_preview");
        let shown = view.to_string();
        assert!(shown.contains("*12* of 12 contacts"), "{shown}");
        assert!(shown.contains("Catching up, Friend"), "rendered: {shown}");
        assert_eq!(view["submit"]["text"], "Request approval", "{shown}");
        assert_eq!(app.count_rows("campaigns").await, 0);
        assert_eq!(app.count_rows("messages").await, 0);
        let draft_id = view["private_metadata"].as_str().unwrap().to_string();

        // Act (3): Request approval.
        let done = submit(&app, view, "VE2E", json!({})).await;
        app.drain_background().await;

        // Assert (3): the request is in the approvals channel; nothing is sent.
        let done_text = done["view"].to_string();
        assert!(
            done_text.contains("awaiting approval") && done_text.contains(APPROVALS),
            "{done}"
        );
        let posts = app.fake.wait_for_calls("chat.postMessage", 1).await;
        assert_eq!(posts.len(), 1, "only the request is posted");
        assert_eq!(posts[0].body["channel"], APPROVALS);
        let request = posts[0].body.to_string();
        for needle in [
            "Spring hello",
            "12 recipients",
            &format!("<@{USER}>"),
            "approval_approve",
        ] {
            assert!(request.contains(needle), "{needle} missing: {request}");
        }
        let campaign_id = count(
            &dbc,
            "SELECT CAST(MAX(id) AS BIGINT) AS n FROM campaigns WHERE source = $1",
            vec![Value::from(format!("campaign:{draft_id}"))],
        )
        .await;
        let approval_id = count(
            &dbc,
            "SELECT CAST(MAX(id) AS BIGINT) AS n FROM approvals WHERE campaign_id = $1 AND state = 'pending'",
            vec![Value::from(campaign_id)],
        )
        .await;
        assert_eq!(
            message_states(&dbc, campaign_id).await,
            vec![("awaiting_approval".into(), RECIPIENTS as i64)]
        );
        assert!(core.accepted().is_empty(), "nothing sent before approval");
        // The request's thread is where progress goes.
        let (thread_channel, thread_ts) = thread_of(&dbc, campaign_id).await;
        assert_eq!(thread_channel, APPROVALS);

        // Act (4): the approver clicks Approve.
        let res = app
            .post_interaction(&click(
                "approval_approve",
                approval_id,
                APPROVER,
                "1700000001.000001",
            ))
            .await;
        assert!(res.status().is_success());
        app.drain_background().await;

        // Assert (4): approved; every message queued in the decision's
        // transaction (its events carry the decision's time); the
        // requester is told; the request shows the decision.
        assert_eq!(
            count(
                &dbc,
                "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM approvals WHERE id = $1 AND state = 'approved'",
                vec![Value::from(approval_id)],
            )
            .await,
            1,
            "approved by one click; Slack saw {:?}",
            app.fake
                .calls()
                .iter()
                .filter(|c| c.method != "views.open")
                .map(|c| (&c.method, c.body.to_string()))
                .collect::<Vec<_>>()
        );
        assert_eq!(
            count(
                &dbc,
                "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM message_events e \
                 JOIN messages m ON m.id = e.message_id \
                 JOIN approvals a ON a.campaign_id = m.campaign_id \
                 WHERE a.id = $1 AND e.state = 'queued' AND e.detail = 'approved' AND e.at = a.decided_at",
                vec![Value::from(approval_id)],
            )
            .await,
            RECIPIENTS as i64,
            "all queued at the decision, together"
        );
        assert_eq!(
            count(
                &dbc,
                "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM messages WHERE campaign_id = $1 AND state = 'awaiting_approval'",
                vec![Value::from(campaign_id)],
            )
            .await,
            0
        );
        let dms: Vec<_> = app
            .fake
            .calls_to("chat.postMessage")
            .into_iter()
            .filter(|c| c.body["channel"] == USER)
            .collect();
        assert_eq!(dms.len(), 1, "one DM to the requester");
        assert!(dms[0].body.to_string().contains("approved"), "{:?}", dms[0]);
        let updates = app.fake.wait_for_calls("chat.update", 1).await;
        assert!(
            updates[0]
                .body
                .to_string()
                .contains(&format!("Approved by <@{APPROVER}>")),
            "{:?}",
            updates[0].body
        );

        // Act (5): a progress tick while the send is under way.
        assert!(core.wait_for_accepted(1, WAIT).await, "sending started");
        let t0 = Utc::now();
        let first = progress::tick(&app.app, t0).await.unwrap();

        // Assert (5): one progress message, in the request's thread.
        assert_eq!(first.posted, vec![campaign_id], "{first:?}");
        assert!(first.summarised.is_empty(), "not finished yet: {first:?}");
        let in_thread = thread_posts(&app, &thread_ts);
        assert_eq!(in_thread.len(), 1);
        assert_eq!(in_thread[0].body["channel"], APPROVALS);
        let progress_text = text_of(&in_thread[0]);
        assert!(
            progress_text.contains("of 12 done (sending)"),
            "{progress_text}"
        );

        // Act (6): the send finishes; ticks after it.
        // At one a second the rest take about eleven seconds.
        assert!(
            core.wait_for_accepted(RECIPIENTS, Duration::from_secs(60))
                .await
        );
        wait_for_count(
            &dbc,
            "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM messages WHERE campaign_id = $1 AND state = 'sent'",
            vec![Value::from(campaign_id)],
            RECIPIENTS as i64,
        )
        .await;
        let end = progress::tick(&app.app, t0 + chrono::Duration::seconds(10))
            .await
            .unwrap();
        let again = progress::tick(&app.app, t0 + chrono::Duration::seconds(20))
            .await
            .unwrap();
        app.app.dispatcher.run_once().await.unwrap();

        // Assert (6): one summary with the ledger's numbers; still one
        // progress message, edited to "finished".
        assert_eq!(end.summarised, vec![campaign_id], "{end:?}");
        assert_eq!(again, progress::Tick::default(), "nothing more to say");
        let in_thread = thread_posts(&app, &thread_ts);
        assert_eq!(
            in_thread.len(),
            2,
            "progress, then summary: {:?}",
            in_thread.iter().map(text_of).collect::<Vec<_>>()
        );
        let summary = text_of(&in_thread[1]);
        assert!(
            summary.contains(
                "12 sent, 0 delivered, 0 bounced, 0 complained, 0 unsubscribed, 0 skipped, 0 failed, 0 ambiguous"
            ),
            "{summary}"
        );
        let final_edit = app.fake.calls_to("chat.update").last().unwrap().clone();
        assert!(
            text_of(&final_edit).contains("12 of 12 done (finished)"),
            "{:?}",
            final_edit.body
        );

        // The provider received each message exactly once: its log is the ledger's.
        let mut accepted: Vec<String> = core.accepted().into_iter().map(|a| a.id).collect();
        accepted.sort();
        let total = accepted.len();
        accepted.dedup();
        assert_eq!(total, RECIPIENTS, "nothing sent twice");
        assert_eq!(accepted.len(), RECIPIENTS);
        assert_eq!(
            message_states(&dbc, campaign_id).await,
            vec![("sent".into(), RECIPIENTS as i64)]
        );
        let mut to: Vec<String> = core.accepted().into_iter().map(|a| a.to).collect();
        to.sort();
        to.dedup();
        assert_eq!(to.len(), RECIPIENTS, "one message per contact");
        assert_eq!(
            count(
                &dbc,
                "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM audit_log WHERE action = 'approval.approved'",
                vec![],
            )
            .await,
            1
        );
    }
);
