//! Buttons on what waits for a person: an approved campaign that has not
//! started can be rescheduled (modal with a date and time) or cancelled from
//! its request message and from the App Home tab; approvers decide
//! approvals from Home with the approvals channel's own handlers; owners
//! open drafts and pause running campaigns from Home.
//!
//! Each action is checked for who may (approvers and the requester), takes
//! effect once (a second click finds nothing to change) and is audited.

use chrono::{DateTime, Duration, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, FromQueryResult, Statement, Value};
use serde_json::{Value as Json, json};
use warmline::{
    approval::{Content, Schedule, SendRequest},
    campaigns::{Audience, Draft, audience::Segment, drafts},
    dispatcher::ledger::{self, NewMessage},
    providers::Registry,
};

use crate::{
    approvals::{
        APPROVALS, APPROVER, ASKER, Harness, awaiting, click, inline, named_contacts, spawn_on,
    },
    dispatcher::{message, seed_contacts},
    fake_slack::Call,
    helpers::{TEAM, TestApp, USER, app_home_opened, block_action, spawn_app_with_registry},
    storage_test,
    test_db::{Backend, TestDb},
};

const INTRUDER: &str = "U0INTRUDER";

// ---------------------------------------------------------------- helpers

/// The progress loop kept out of the way: these tests are not about it.
fn quiet(s: &mut warmline::settings::Settings) {
    s.campaigns.progress_interval_secs = 3600;
}

async fn sqlite() -> TestDb {
    TestDb::new(Backend::Sqlite).await.expect("SQLite")
}

async fn count(db: &DatabaseConnection, sql: &str, values: Vec<Value>) -> i64 {
    warmline::db::count(db, sql, values).await.unwrap()
}

async fn audits(db: &DatabaseConnection, action: &str) -> i64 {
    count(
        db,
        "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM audit_log WHERE action = $1",
        vec![Value::from(action)],
    )
    .await
}

async fn campaign_state(db: &DatabaseConnection, id: i64) -> String {
    #[derive(FromQueryResult)]
    struct S {
        state: String,
    }
    S::find_by_statement(Statement::from_sql_and_values(
        db.get_database_backend(),
        "SELECT state FROM campaigns WHERE id = $1",
        [Value::from(id)],
    ))
    .one(db)
    .await
    .unwrap()
    .unwrap()
    .state
}

/// The due times of the campaign's scheduled messages.
async fn due_times(db: &DatabaseConnection, id: i64) -> Vec<DateTime<Utc>> {
    #[derive(FromQueryResult)]
    struct D {
        next_attempt_at: DateTime<Utc>,
    }
    D::find_by_statement(Statement::from_sql_and_values(
        db.get_database_backend(),
        "SELECT next_attempt_at FROM messages WHERE campaign_id = $1 AND state = 'scheduled'",
        [Value::from(id)],
    ))
    .all(db)
    .await
    .unwrap()
    .into_iter()
    .map(|d| d.next_attempt_at)
    .collect()
}

/// Whole seconds, as Slack's date-time picker gives them.
fn in_hours(h: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp((Utc::now() + Duration::hours(h)).timestamp(), 0).unwrap()
}

/// An 11-recipient send by [`ASKER`] for `at`, approved by [`APPROVER`]:
/// (campaign id, approval id).
async fn approved_for_later(h: &Harness, at: DateTime<Utc>, source: &str) -> (i64, i64) {
    let db = h.app.app.db.clone();
    let contacts = named_contacts(&db, 11).await;
    let req = SendRequest {
        schedule: Schedule::At { at },
        ..inline(
            "Partner launch",
            ASKER,
            contacts,
            "Hi {{ first_name }}",
            source,
        )
    };
    let (campaign_id, approval_id) = awaiting(h, req).await;
    h.app.drain_background().await;
    h.app
        .post_interaction(&click(
            "approval_approve",
            approval_id,
            APPROVER,
            "1700000100.000001",
        ))
        .await;
    h.app.drain_background().await;
    assert_eq!(campaign_state(&db, campaign_id).await, "scheduled");
    (campaign_id, approval_id)
}

/// A click on the approved request's Reschedule / Cancel row.
fn request_click(action: &str, campaign_id: i64, user: &str, ts: &str) -> Json {
    let mut p = click(action, campaign_id, user, ts);
    p["actions"][0]["block_id"] = "scheduled_controls".into();
    p
}

/// A click on the Home tab by [`USER`] (or `user`).
fn home_click(action: &str, value: impl ToString, user: &str, ts: &str) -> Json {
    let mut p = block_action(action);
    p["user"]["id"] = user.into();
    p["actions"][0]["value"] = value.to_string().into();
    p["actions"][0]["action_ts"] = ts.into();
    p["trigger_id"] = format!("trigger-home-{ts}").into();
    p
}

/// The reschedule modal as Slack submits it, built from the opened view.
fn reschedule_submission(opened: &Json, user: &str, at: DateTime<Utc>, nonce: &str) -> Json {
    let mut view = opened.clone();
    let obj = view.as_object_mut().unwrap();
    for (k, v) in json!({
        "id": "VMHU10V25", "team_id": TEAM, "hash": "156772938.1827394",
        "clear_on_close": false, "notify_on_close": false, "root_view_id": "VMHU10V25",
        "app_id": "AA4928AQ", "external_id": "", "bot_id": "BA13894H",
        "state": {"values": {"send_at": {"send_at": {"type": "datetimepicker", "selected_date_time": at.timestamp()}}}}
    })
    .as_object()
    .unwrap()
    {
        obj.insert(k.clone(), v.clone());
    }
    json!({
        "type": "view_submission",
        "team": {"id": TEAM, "domain": "example"},
        "user": {"id": user, "username": "u", "name": "u", "team_id": TEAM},
        "api_app_id": "A0FAKE",
        "token": "XXYYZZ",
        "trigger_id": format!("12345.98765.{nonce}"),
        "view": view,
    })
}

/// The last view opened with views.open.
fn last_opened(app: &TestApp) -> Json {
    app.fake
        .calls_to("views.open")
        .last()
        .expect("a view was opened")
        .body["view"]
        .clone()
}

fn last_update_of_request(app: &TestApp) -> String {
    app.fake
        .calls_to("chat.update")
        .into_iter()
        .rfind(|c| c.body["channel"] == APPROVALS && c.body.to_string().contains("asked to send"))
        .expect("the request was updated")
        .body
        .to_string()
}

fn ephemerals(app: &TestApp) -> Vec<String> {
    app.fake
        .calls_to("chat.postEphemeral")
        .into_iter()
        .map(|c| c.body["text"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn published_for(app: &TestApp, user: &str) -> Vec<Call> {
    app.fake
        .calls_to("views.publish")
        .into_iter()
        .filter(|c| c.body["user_id"] == user)
        .collect()
}

// ---------------------------------------------------- reschedule / cancel

storage_test!(
    an_approved_campaign_not_started_is_rescheduled_once_by_its_requester,
    |db: TestDb| async move {
        // Arrange
        let h = spawn_on(db, quiet).await;
        let dbc = h.app.app.db.clone();
        let (c, approval_id) = approved_for_later(&h, in_hours(2), "campaign:resched").await;
        let approved = last_update_of_request(&h.app);
        assert!(
            approved.contains("campaign_reschedule") && approved.contains("campaign_cancel"),
            "{approved}"
        );

        // Act (1): the requester clicks Reschedule; tries a past time.
        h.app
            .post_interaction(&request_click(
                "campaign_reschedule",
                c,
                ASKER,
                "1700000200.000001",
            ))
            .await;
        h.app.drain_background().await;
        let modal = last_opened(&h.app);
        let past: Json = h
            .app
            .post_interaction(&reschedule_submission(&modal, ASKER, in_hours(-1), "a"))
            .await
            .json()
            .await
            .unwrap();

        // Assert (1): the modal has the picker; the past is refused on it.
        assert_eq!(modal["callback_id"], "campaign_reschedule_submit");
        assert_eq!(modal["private_metadata"], c.to_string());
        assert!(modal.to_string().contains("datetimepicker"));
        assert_eq!(past["response_action"], "errors", "{past}");
        assert!(past["errors"]["send_at"].as_str().unwrap().contains("past"));

        // Act (2): a time ahead, submitted twice.
        let new_at = in_hours(5);
        let first: Json = h
            .app
            .post_interaction(&reschedule_submission(&modal, ASKER, new_at, "b"))
            .await
            .json()
            .await
            .unwrap();
        let second: Json = h
            .app
            .post_interaction(&reschedule_submission(&modal, ASKER, new_at, "c"))
            .await
            .json()
            .await
            .unwrap();
        h.app.drain_background().await;

        // Assert (2): every message moved, once, audited; the approval
        // stands; the request shows the new time; the Home is republished.
        assert_eq!(first["response_action"], "update", "{first}");
        assert!(first.to_string().contains("Rescheduled"), "{first}");
        assert!(second.to_string().contains("nothing changed"), "{second}");
        let due = due_times(&dbc, c).await;
        assert_eq!(due.len(), 11);
        assert!(due.iter().all(|d| *d == new_at), "{due:?}");
        assert_eq!(audits(&dbc, "campaign.reschedule").await, 1);
        assert_eq!(campaign_state(&dbc, c).await, "scheduled");
        assert_eq!(
            count(
                &dbc,
                "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM approvals WHERE id = $1 AND state = 'approved'",
                vec![Value::from(approval_id)],
            )
            .await,
            1,
            "no re-approval: the approval covers the content, not the time"
        );
        let shown = last_update_of_request(&h.app);
        assert!(
            shown.contains(&new_at.format("%Y-%m-%d %H:%M UTC").to_string()),
            "{shown}"
        );
        assert!(!published_for(&h.app, ASKER).is_empty());
    }
);

#[tokio::test]
async fn only_approvers_and_the_requester_may_reschedule_or_cancel() {
    // Arrange
    let h = spawn_on(sqlite().await, quiet).await;
    let dbc = h.app.app.db.clone();
    let (c, _) = approved_for_later(&h, in_hours(2), "campaign:intruder").await;
    let before = due_times(&dbc, c).await;

    // Act: a stranger clicks Reschedule, forges a submission, clicks Cancel.
    h.app
        .post_interaction(&request_click(
            "campaign_reschedule",
            c,
            INTRUDER,
            "1700000300.000001",
        ))
        .await;
    h.app.drain_background().await;
    let refused_view = last_opened(&h.app);
    let forged = json!({
        "type": "modal", "callback_id": "campaign_reschedule_submit",
        "private_metadata": c.to_string(), "blocks": [],
        "title": {"type": "plain_text", "text": "Reschedule"}
    });
    let submitted: Json = h
        .app
        .post_interaction(&reschedule_submission(&forged, INTRUDER, in_hours(6), "x"))
        .await
        .json()
        .await
        .unwrap();
    h.app
        .post_interaction(&request_click(
            "campaign_cancel",
            c,
            INTRUDER,
            "1700000301.000001",
        ))
        .await;
    h.app.drain_background().await;

    // Assert: nothing changed, and each answer says who may.
    assert!(
        refused_view.to_string().contains("Only approvers"),
        "{refused_view}"
    );
    assert_eq!(submitted["response_action"], "errors", "{submitted}");
    assert!(submitted.to_string().contains("Only approvers"));
    assert!(
        ephemerals(&h.app)
            .iter()
            .any(|t| t.contains("Only approvers"))
    );
    assert_eq!(campaign_state(&dbc, c).await, "scheduled");
    assert_eq!(due_times(&dbc, c).await, before);
    assert_eq!(audits(&dbc, "campaign.reschedule").await, 0);
    assert_eq!(audits(&dbc, "campaign.cancel").await, 0);
}

storage_test!(
    a_started_campaign_cannot_be_rescheduled_but_is_cancelled_once,
    |db: TestDb| async move {
        // Arrange: approved for later, then one message came due (held).
        let h = spawn_on(db, quiet).await;
        let dbc = h.app.app.db.clone();
        let (c, _) = approved_for_later(&h, in_hours(2), "campaign:started").await;
        h.app
            .post_interaction(&request_click(
                "campaign_reschedule",
                c,
                ASKER,
                "1700000400.000001",
            ))
            .await;
        h.app.drain_background().await;
        let modal = last_opened(&h.app);
        dbc.execute_raw(Statement::from_sql_and_values(
            dbc.get_database_backend(),
            "UPDATE messages SET state = 'held' WHERE id = \
             (SELECT MIN(id) FROM messages WHERE campaign_id = $1)",
            [Value::from(c)],
        ))
        .await
        .unwrap();

        // Act (1): the requester submits a new time; clicks Reschedule again.
        let refused: Json = h
            .app
            .post_interaction(&reschedule_submission(&modal, ASKER, in_hours(8), "s"))
            .await
            .json()
            .await
            .unwrap();
        h.app
            .post_interaction(&request_click(
                "campaign_reschedule",
                c,
                ASKER,
                "1700000401.000001",
            ))
            .await;
        h.app.drain_background().await;

        // Assert (1): refused, saying why; nothing moved.
        assert_eq!(refused["response_action"], "errors", "{refused}");
        let why = refused["errors"]["send_at"].as_str().unwrap();
        assert!(
            why.contains("started sending") && why.contains("cancel"),
            "{why}"
        );
        assert!(last_opened(&h.app).to_string().contains("started sending"));
        assert_eq!(audits(&dbc, "campaign.reschedule").await, 0);

        // Act (2): Cancel, double clicked.
        for ts in ["1700000402.000001", "1700000403.000001"] {
            h.app
                .post_interaction(&request_click("campaign_cancel", c, ASKER, ts))
                .await;
        }
        h.app.drain_background().await;

        // Assert (2): cancelled once; nothing left to send; the request says so.
        assert_eq!(campaign_state(&dbc, c).await, "cancelled");
        assert_eq!(audits(&dbc, "campaign.cancel").await, 1);
        assert_eq!(
            count(
                &dbc,
                "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM messages WHERE campaign_id = $1 AND state <> 'skipped'",
                vec![Value::from(c)],
            )
            .await,
            0
        );
        assert!(
            ephemerals(&h.app)
                .iter()
                .any(|t| t.contains("nothing changed"))
        );
        let shown = last_update_of_request(&h.app);
        assert!(
            shown.contains("cancelled since") && !shown.contains("campaign_reschedule"),
            "{shown}"
        );
    }
);

// ------------------------------------------------------------- App Home

storage_test!(
    approve_from_home_decides_once_and_updates_home_and_the_request,
    |db: TestDb| async move {
        // Arrange: USER is an approver; ASKER's send waits.
        let h = spawn_on(db, |s| {
            quiet(s);
            s.slack.approvers.push(USER.into());
        })
        .await;
        let contacts = named_contacts(&h.app.app.db, 11).await;
        let (c, approval_id) = awaiting(
            &h,
            inline(
                "Q4 update",
                ASKER,
                contacts,
                "Hi {{ first_name }}",
                "campaign:home-approve",
            ),
        )
        .await;
        h.app.drain_background().await;
        h.app.post_event(&app_home_opened("Ev0HOMEAPPROVE")).await;
        h.app.drain_background().await;
        let home = published_for(&h.app, USER).last().unwrap().body["view"].to_string();
        assert!(
            home.contains("approval_approve") && home.contains("approval_deny"),
            "{home}"
        );
        assert!(
            home.contains(&format!("\"value\":\"{approval_id}\"")),
            "{home}"
        );

        // Act: Approve on Home, double clicked.
        for ts in ["1700000500.000001", "1700000501.000001"] {
            h.app
                .post_interaction(&home_click("approval_approve", approval_id, USER, ts))
                .await;
        }
        h.app.drain_background().await;

        // Assert: one decision; the request message and the Home updated.
        let dbc = &h.app.app.db;
        assert_eq!(
            count(
                dbc,
                "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM approval_decisions WHERE approval_id = $1",
                vec![Value::from(approval_id)],
            )
            .await,
            1
        );
        assert_eq!(audits(dbc, "approval.approved").await, 1);
        assert_eq!(campaign_state(dbc, c).await, "running");
        let request = last_update_of_request(&h.app);
        assert!(request.contains("Approved by <@U0001USER>"), "{request}");
        let publishes = published_for(&h.app, USER);
        assert!(publishes.len() >= 2, "published again after the decision");
        let after = publishes.last().unwrap().body["view"].to_string();
        assert!(!after.contains("approval_approve"), "{after}");
    }
);

#[tokio::test]
async fn a_non_approvers_home_offers_no_approve_or_deny() {
    // Arrange: USER is not an approver; an approval waits.
    let h = spawn_on(sqlite().await, quiet).await;
    let contacts = named_contacts(&h.app.app.db, 11).await;
    awaiting(
        &h,
        inline(
            "Q4 update",
            ASKER,
            contacts,
            "Hi {{ first_name }}",
            "campaign:home-na",
        ),
    )
    .await;

    // Act
    h.app
        .post_event(&app_home_opened("Ev0HOMENOTAPPROVER"))
        .await;
    h.app.drain_background().await;

    // Assert
    let home = published_for(&h.app, USER).last().unwrap().body["view"].to_string();
    assert!(!home.contains("approval_approve"), "{home}");
    assert!(!home.contains("approval_deny"), "{home}");
    assert!(!home.contains("Q4 update"), "{home}");
}

#[tokio::test]
async fn open_on_a_draft_in_home_opens_the_composer_prefilled() {
    // Arrange: a saved draft of USER's.
    let h = spawn_on(sqlite().await, quiet).await;
    let dbc = h.app.app.db.clone();
    let draft = Draft {
        name: "January newsletter".into(),
        channel: warmline::domain::Channel::Email,
        audience: Audience::Segment(Segment {
            warmth_min: Some(40.0),
            warmth_max: None,
            status: None,
            stage: None,
            tags: vec!["investor".into()],
        }),
        content: Content::Inline {
            subject: Some("New year".into()),
            body: "Draft body for {{ first_name }}".into(),
        },
        schedule: Schedule::Now,
    };
    let id = drafts::stage(&dbc, USER, None, &draft, Utc::now())
        .await
        .unwrap();
    drafts::save(&dbc, USER, id, Utc::now()).await.unwrap();
    h.app.post_event(&app_home_opened("Ev0HOMEDRAFT")).await;
    h.app.drain_background().await;
    let home = published_for(&h.app, USER).last().unwrap().body["view"].to_string();
    assert!(
        home.contains("campaign_open") && home.contains(&format!("\"value\":\"{id}\"")),
        "{home}"
    );

    // Act
    h.app
        .post_interaction(&home_click("campaign_open", id, USER, "1700000600.000001"))
        .await;
    h.app.drain_background().await;

    // Assert: a loading view with the click's trigger, then the draft.
    let opened = h.app.fake.calls_to("views.open");
    assert_eq!(opened.len(), 1);
    assert_eq!(
        opened[0].body["trigger_id"],
        "trigger-home-1700000600.000001"
    );
    let updated = h.app.fake.calls_to("views.update");
    let view = updated.last().expect("the draft was filled in").body["view"].to_string();
    assert!(view.contains("Draft body for {{ first_name }}"), "{view}");
    assert!(
        view.contains(&format!("\"private_metadata\":\"{id}\"")),
        "{view}"
    );
}

storage_test!(
    pause_from_home_pauses_a_running_campaign,
    |db: TestDb| async move {
        // Arrange: USER's running campaign, nothing sending it (no workers).
        let app = spawn_app_with_registry(db, quiet, Some(Registry::new())).await;
        let dbc = app.app.db.clone();
        #[derive(FromQueryResult)]
        struct Id {
            id: i64,
        }
        let c = Id::find_by_statement(Statement::from_sql_and_values(
            dbc.get_database_backend(),
            "INSERT INTO campaigns (name, channel, state, created_by, created_at, updated_at) \
             VALUES ('Customer survey', 'email', 'running', $1, $2, $2) RETURNING id",
            [Value::from(USER), Value::from(Utc::now())],
        ))
        .one(&dbc)
        .await
        .unwrap()
        .unwrap()
        .id;
        let msgs: Vec<NewMessage> = seed_contacts(&dbc, 3, true)
            .await
            .into_iter()
            .map(|k| NewMessage {
                campaign_id: Some(c),
                ..message(&format!("campaign:{c}"), k, "marketing")
            })
            .collect();
        ledger::enqueue(&dbc, &msgs, Utc::now()).await.unwrap();
        app.post_event(&app_home_opened("Ev0HOMEPAUSE")).await;
        app.drain_background().await;
        let home = published_for(&app, USER).last().unwrap().body["view"].to_string();
        assert!(home.contains("campaign_pause"), "{home}");

        // Act
        app.post_interaction(&home_click("campaign_pause", c, USER, "1700000700.000001"))
            .await;
        app.drain_background().await;

        // Assert: paused, audited as from Home, Home shows Resume.
        assert_eq!(campaign_state(&dbc, c).await, "paused");
        assert_eq!(audits(&dbc, "campaign.pause").await, 1);
        assert_eq!(
            count(
                &dbc,
                "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM messages WHERE campaign_id = $1 AND state = 'paused'",
                vec![Value::from(c)],
            )
            .await,
            3
        );
        let after = published_for(&app, USER).last().unwrap().body["view"].to_string();
        assert!(
            after.contains("campaign_resume") && after.contains("(paused)"),
            "{after}"
        );
    }
);
