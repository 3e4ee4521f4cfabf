//! The approval engine end to end: `submit` through the policy, the request
//! in the fake Slack, decisions by click and modal, and the dispatcher with
//! the test provider sending what was approved — once.

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use sea_orm::{ConnectionTrait, DatabaseConnection, FromQueryResult, Statement, Value};
use serde_json::{Value as Json, json};
use warmline::{
    approval::{self, Content, Schedule, SendRequest, Submitted, reminders},
    dispatcher::ledger,
    providers::{
        Registry,
        test_provider::{Behaviour, Core, TestProvider},
    },
    settings::Settings,
};

use crate::{
    dispatcher::{message, seed_contacts},
    fake_slack::Scripted,
    helpers::{TEAM, TestApp, block_action, spawn_app_with_registry},
    storage_test,
    test_db::{Backend, TestDb},
};

pub(crate) const APPROVALS: &str = "C0APPROVE";
pub(crate) const APPROVER: &str = "U0APPROVER";
const SECOND: &str = "U0SECOND";
pub(crate) const ASKER: &str = "U0ASKER";
const WAIT: Duration = Duration::from_secs(15);

pub(crate) struct Harness {
    pub(crate) app: TestApp,
    pub(crate) core: Arc<Core>,
}

pub(crate) async fn spawn_on(db: TestDb, f: impl FnOnce(&mut Settings)) -> Harness {
    let core = Core::new(Behaviour::default());
    let mut registry = Registry::new();
    registry.register(Arc::new(TestProvider::in_process(core.clone())));
    let app = spawn_app_with_registry(
        db,
        |s| {
            s.slack.approvals_channel = Some(APPROVALS.into());
            s.slack.approvers = vec![APPROVER.into(), SECOND.into()];
            s.email.from = Some("Team <team@example.com>".into());
            s.caps.marketing_per_day = 1000;
            s.caps.marketing_per_week = 1000;
            f(s);
        },
        Some(registry),
    )
    .await;
    Harness { app, core }
}

async fn spawn(f: impl FnOnce(&mut Settings)) -> Harness {
    spawn_on(TestDb::new(Backend::Sqlite).await.expect("SQLite"), f).await
}

pub(crate) async fn named_contacts(db: &DatabaseConnection, n: usize) -> Vec<i64> {
    let ids = seed_contacts(db, n, true).await;
    db.execute_unprepared("UPDATE contacts SET first_name = 'Ada', last_name = 'Lovelace'")
        .await
        .unwrap();
    ids
}

/// The `check_in` template has gone out before, so it is not new content.
pub(crate) async fn check_in_was_sent_before(db: &DatabaseConnection, contact: i64) {
    let m = ledger::NewMessage {
        provider: "offline".into(),
        template: Some("check_in".into()),
        ..message("history:1", contact, "marketing")
    };
    ledger::enqueue(db, std::slice::from_ref(&m), Utc::now())
        .await
        .unwrap();
    db.execute_unprepared(&format!(
        "UPDATE messages SET state = 'sent' WHERE id = '{}'",
        m.id()
    ))
    .await
    .unwrap();
}

pub(crate) fn inline(
    name: &str,
    by: &str,
    recipients: Vec<i64>,
    body: &str,
    source: &str,
) -> SendRequest {
    SendRequest {
        name: name.into(),
        channel: warmline::domain::Channel::Email,
        requested_by: by.into(),
        recipients,
        content: Content::Inline {
            subject: Some("News for {{ first_name }}".into()),
            body: body.into(),
        },
        variables: json!({}),
        schedule: Schedule::Now,
        source: source.into(),
    }
}

pub(crate) async fn awaiting(h: &Harness, req: SendRequest) -> (i64, i64) {
    match approval::submit(&h.app.app, req).await.expect("submitted") {
        Submitted::AwaitingApproval {
            campaign_id,
            approval_id,
        } => (campaign_id, approval_id),
        other => panic!("expected an approval request, got {other:?}"),
    }
}

pub(crate) fn click(action: &str, approval_id: i64, user: &str, ts: &str) -> Json {
    let mut p = block_action(action);
    p["user"]["id"] = user.into();
    p["channel"] = json!({"id": APPROVALS, "name": "approvals"});
    p["container"] = json!({"type": "message", "message_ts": "1503435956.000247", "channel_id": APPROVALS, "is_ephemeral": false});
    p["trigger_id"] = format!("trigger-{user}-{ts}").into();
    p["actions"][0]["value"] = approval_id.to_string().into();
    p["actions"][0]["action_ts"] = ts.into();
    p
}

/// The deny modal as Slack submits it, built from what warmline opened.
fn deny_submission(opened_view: &Json, user: &str, reason: &str) -> Json {
    let mut view = opened_view.clone();
    let obj = view.as_object_mut().unwrap();
    for (k, v) in json!({
        "id": "VMHU10V25", "team_id": TEAM, "hash": "156772938.1827394",
        "clear_on_close": false, "notify_on_close": false, "root_view_id": "VMHU10V25",
        "app_id": "AA4928AQ", "external_id": "", "bot_id": "BA13894H",
        "state": {"values": {"reason": {"reason": {"type": "plain_text_input", "value": reason}}}}
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
        "trigger_id": "12345.98765.abcd",
        "view": view,
    })
}

#[derive(FromQueryResult)]
struct Counted {
    state: String,
    n: i64,
}

pub(crate) async fn message_states(
    db: &DatabaseConnection,
    campaign_id: i64,
) -> Vec<(String, i64)> {
    Counted::find_by_statement(Statement::from_sql_and_values(
        db.get_database_backend(),
        "SELECT state, CAST(COUNT(*) AS BIGINT) AS n FROM messages WHERE campaign_id = $1 GROUP BY state ORDER BY state",
        [Value::from(campaign_id)],
    ))
    .all(db)
    .await
    .unwrap()
    .into_iter()
    .map(|c| (c.state, c.n))
    .collect()
}

#[derive(FromQueryResult)]
struct ApprovalRow {
    state: String,
    reason: Option<String>,
    decided_by: Option<String>,
}

async fn approval_row(db: &DatabaseConnection, id: i64) -> ApprovalRow {
    ApprovalRow::find_by_statement(Statement::from_sql_and_values(
        db.get_database_backend(),
        "SELECT state, reason, decided_by FROM approvals WHERE id = $1",
        [Value::from(id)],
    ))
    .one(db)
    .await
    .unwrap()
    .expect("approval exists")
}

async fn count(db: &DatabaseConnection, sql: &str) -> i64 {
    warmline::db::count(db, sql, vec![]).await.unwrap()
}

fn bodies(calls: &[crate::fake_slack::Call]) -> Vec<String> {
    calls.iter().map(|c| c.body.to_string()).collect()
}

// ------------------------------------------------------------------ tests

#[tokio::test]
async fn a_low_risk_one_contact_send_goes_straight_out() {
    // Arrange
    let h = spawn(|_| {}).await;
    let db = h.app.app.db.clone();
    let c = named_contacts(&db, 1).await[0];
    check_in_was_sent_before(&db, c).await;
    let req = SendRequest {
        content: Content::Template {
            name: "check_in".into(),
        },
        ..inline("Nudge: Ada", ASKER, vec![c], "", "nudge:1")
    };

    // Act
    let outcome = approval::submit(&h.app.app, req.clone()).await.unwrap();
    let again = approval::submit(&h.app.app, req).await.unwrap();

    // Assert: queued, sent once, no request posted (the send's thread is in
    // the requester's DM, not the approvals channel); a repeat changes nothing.
    let Submitted::Queued {
        campaign_id,
        messages: 1,
    } = outcome
    else {
        panic!("{outcome:?}")
    };
    assert_eq!(again, outcome);
    assert!(h.core.wait_for_accepted(1, WAIT).await);
    h.app.drain_background().await;
    assert_eq!(h.core.accepted().len(), 1);
    let posts = h.app.fake.calls_to("chat.postMessage");
    assert!(
        posts.iter().all(|p| p.body["channel"] != APPROVALS),
        "{posts:?}"
    );
    let roots = posts.iter().filter(|p| p.body.get("thread_ts").is_none());
    assert_eq!(roots.count(), 1, "one thread root, however often submitted");
    assert_eq!(
        count(&db, "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM approvals").await,
        0
    );
    let states = message_states(&db, campaign_id).await;
    assert_eq!(states.iter().map(|s| s.1).sum::<i64>(), 1);
}

#[tokio::test]
async fn a_render_error_names_the_problem_and_stores_nothing() {
    // Arrange
    let h = spawn(|_| {}).await;
    let db = h.app.app.db.clone();
    let ids = named_contacts(&db, 2).await;

    // Act
    let err = approval::submit(
        &h.app.app,
        inline("Broken", ASKER, ids, "Hi {{ nickname }}", "broken:1"),
    )
    .await
    .unwrap_err();

    // Assert
    let text = format!("{err:#}");
    assert!(text.contains("nickname"), "{text}");
    assert!(text.contains("contact"), "{text}");
    for table in ["campaigns", "approvals", "messages"] {
        assert_eq!(h.app.count_rows(table).await, 0, "{table}");
    }
}

storage_test!(
    a_big_send_waits_for_an_approver_and_is_sent_exactly_once,
    |db: TestDb| async move {
        // Arrange: 11 contacts, above min_recipients.
        let h = spawn_on(db, |_| {}).await;
        let db = h.app.app.db.clone();
        let ids = named_contacts(&db, 11).await;

        // Act (1): submit.
        let (campaign_id, approval_id) = awaiting(
            &h,
            inline(
                "Spring update",
                ASKER,
                ids,
                "Hi {{ first_name }}, spring news.",
                "campaign:spring",
            ),
        )
        .await;
        h.app.drain_background().await;

        // Assert (1): a request with who, what, audience, risk, preview and buttons; nothing sent.
        let posts = h.app.fake.calls_to("chat.postMessage");
        assert_eq!(posts.len(), 1);
        assert_eq!(posts[0].body["channel"], APPROVALS);
        let body = posts[0].body.to_string();
        for needle in [
            "<@U0ASKER>",
            "Spring update",
            "11 contact(s)",
            "/ 10",
            "11 recipients",
            "Hi Ada, spring news.",
            "approval_approve",
            "approval_deny",
            "approval_details",
            "\"confirm\"",
        ] {
            assert!(body.contains(needle), "{needle} missing from {body}");
        }
        assert!(
            !body.contains("@example.com"),
            "addresses are masked: {body}"
        );
        assert_eq!(
            message_states(&db, campaign_id).await,
            vec![("awaiting_approval".into(), 11)]
        );
        assert!(h.core.accepted().is_empty());

        // Act (2): the approver clicks Approve; Slack retries; the approver double-clicks.
        let first = click(
            "approval_approve",
            approval_id,
            APPROVER,
            "1700000001.000001",
        );
        let double = click(
            "approval_approve",
            approval_id,
            APPROVER,
            "1700000001.000002",
        );
        let (a, b, c) = tokio::join!(
            h.app.post_interaction(&first),
            h.app.post_interaction(&first),
            h.app.post_interaction(&double),
        );
        assert!(a.status().is_success() && b.status().is_success() && c.status().is_success());
        h.app.drain_background().await;

        // Assert (2): approved once; all 11 sent once; request updated; requester told.
        assert!(h.core.wait_for_accepted(11, WAIT).await);
        assert_eq!(approval_row(&db, approval_id).await.state, "approved");
        assert_eq!(
            count(
                &db,
                "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM approval_decisions"
            )
            .await,
            1
        );
        let updates = h.app.fake.wait_for_calls("chat.update", 1).await;
        let update = updates.last().unwrap().body.to_string();
        assert!(update.contains("Approved by <@U0APPROVER>"), "{update}");
        assert_eq!(
            updates.last().unwrap().body["ts"],
            posts[0]
                .body
                .get("ts")
                .cloned()
                .unwrap_or(json!("1503435956.000247"))
        );
        let dms: Vec<_> = h
            .app
            .fake
            .calls_to("chat.postMessage")
            .into_iter()
            .filter(|c| c.body["channel"] == ASKER)
            .collect();
        assert_eq!(dms.len(), 1);
        assert!(dms[0].body.to_string().contains("approved"));
        let ephemerals = bodies(&h.app.fake.calls_to("chat.postEphemeral"));
        assert_eq!(
            ephemerals.len(),
            1,
            "the losing double click hears it: {ephemerals:?}"
        );
        assert!(ephemerals[0].contains("nothing changed"), "{ephemerals:?}");
        h.app.app.dispatcher.run_once().await.unwrap();
        let mut sent: Vec<_> = h.core.accepted().into_iter().map(|a| a.id).collect();
        sent.sort();
        sent.dedup();
        assert_eq!(sent.len(), 11);
        assert_eq!(h.core.accepted().len(), 11, "nothing sent twice");
        assert_eq!(
            count(&db, "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM audit_log WHERE action = 'approval.approved'").await,
            1
        );
    }
);

#[tokio::test]
async fn a_non_approver_is_refused_and_nothing_changes() {
    // Arrange
    let h = spawn(|_| {}).await;
    let db = h.app.app.db.clone();
    let ids = named_contacts(&db, 11).await;
    let (campaign_id, approval_id) =
        awaiting(&h, inline("Big", ASKER, ids, "Hi", "campaign:big")).await;
    h.app.drain_background().await;
    let audit_before = h.app.audit_rows().await;

    // Act
    h.app
        .post_interaction(&click("approval_approve", approval_id, "U0INTRUDER", "1.1"))
        .await;
    h.app
        .post_interaction(&click("approval_deny", approval_id, "U0INTRUDER", "1.2"))
        .await;
    h.app.drain_background().await;

    // Assert
    let refusals = bodies(&h.app.fake.calls_to("chat.postEphemeral"));
    assert_eq!(refusals.len(), 2);
    assert!(
        refusals.iter().all(|r| r.contains("Only approvers")),
        "{refusals:?}"
    );
    assert!(h.app.fake.calls_to("views.open").is_empty());
    assert_eq!(approval_row(&db, approval_id).await.state, "pending");
    assert_eq!(
        message_states(&db, campaign_id).await,
        vec![("awaiting_approval".into(), 11)]
    );
    assert_eq!(h.app.audit_rows().await, audit_before);
    assert!(h.app.fake.calls_to("chat.update").is_empty());
}

#[tokio::test]
async fn members_of_the_approver_group_may_decide_and_others_may_not() {
    // Arrange: approvers come from a Slack user group only.
    let h = spawn(|s| {
        s.slack.approvers.clear();
        s.approval.approver_group = Some("S0APPROVERS".into());
    })
    .await;
    h.app.fake.set_usergroup("S0APPROVERS", &["U0GROUPMEMBER"]);
    let db = h.app.app.db.clone();
    let ids = named_contacts(&db, 11).await;
    let (campaign_id, approval_id) =
        awaiting(&h, inline("Grouped", ASKER, ids, "Hi", "campaign:grouped")).await;
    h.app.drain_background().await;

    // Act (1): someone outside the group.
    h.app
        .post_interaction(&click("approval_approve", approval_id, "U0OUTSIDER", "2.1"))
        .await;
    h.app.drain_background().await;

    // Assert (1): refused; the group was asked.
    assert_eq!(approval_row(&db, approval_id).await.state, "pending");
    let asked = h.app.fake.calls_to("usergroups.users.list");
    assert!(!asked.is_empty());
    assert_eq!(asked[0].body["usergroup"], "S0APPROVERS");

    // Act (2): a member of the group.
    h.app
        .post_interaction(&click(
            "approval_approve",
            approval_id,
            "U0GROUPMEMBER",
            "2.2",
        ))
        .await;
    h.app.drain_background().await;

    // Assert (2): the decision took effect.
    assert_eq!(approval_row(&db, approval_id).await.state, "approved");
    assert!(
        message_states(&db, campaign_id)
            .await
            .iter()
            .all(|(state, _)| state != "awaiting_approval")
    );
}

#[tokio::test]
async fn a_requester_cannot_approve_their_own_send_unless_allowed() {
    for allowed in [false, true] {
        // Arrange: the requester is an approver.
        let h = spawn(|s| s.approval.allow_self_approval = allowed).await;
        let db = h.app.app.db.clone();
        let ids = named_contacts(&db, 11).await;
        let (_, approval_id) =
            awaiting(&h, inline("Mine", APPROVER, ids, "Hi", "campaign:mine")).await;
        h.app.drain_background().await;

        // Act
        h.app
            .post_interaction(&click("approval_approve", approval_id, APPROVER, "2.1"))
            .await;
        h.app.drain_background().await;

        // Assert
        let state = approval_row(&db, approval_id).await.state;
        if allowed {
            assert_eq!(state, "approved");
        } else {
            assert_eq!(state, "pending");
            let e = bodies(&h.app.fake.calls_to("chat.postEphemeral"));
            assert!(e[0].contains("cannot approve your own"), "{e:?}");
        }
    }
}

#[tokio::test]
async fn concurrent_approve_and_deny_decide_once() {
    // Arrange
    let h = spawn(|_| {}).await;
    let db = h.app.app.db.clone();
    let ids = named_contacts(&db, 11).await;
    let (campaign_id, approval_id) =
        awaiting(&h, inline("Race", ASKER, ids, "Hi", "campaign:race")).await;
    h.app.drain_background().await;
    h.app
        .post_interaction(&click("approval_deny", approval_id, SECOND, "3.0"))
        .await;
    let opened = h.app.fake.wait_for_calls("views.open", 1).await;

    // Act: approve and the deny submission at once.
    let approve = click("approval_approve", approval_id, APPROVER, "3.1");
    let deny = deny_submission(&opened[0].body["view"], SECOND, "Wrong list");
    let (a, d) = tokio::join!(
        h.app.post_interaction(&approve),
        h.app.post_interaction(&deny)
    );
    assert!(a.status().is_success() && d.status().is_success());
    h.app.drain_background().await;

    // Assert: one decision, and the messages follow it.
    assert_eq!(
        count(
            &db,
            "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM approval_decisions"
        )
        .await,
        1
    );
    let state = approval_row(&db, approval_id).await.state;
    let states = message_states(&db, campaign_id).await;
    match state.as_str() {
        "denied" => assert_eq!(states, vec![("skipped".into(), 11)]),
        "approved" => assert!(
            states
                .iter()
                .all(|(s, _)| s != "awaiting_approval" && s != "skipped"),
            "{states:?}"
        ),
        other => panic!("{other}"),
    }
}

#[tokio::test]
async fn high_risk_needs_two_different_approvers() {
    // Arrange: a low bar for two approvers (11 recipients + new content + first use = 5).
    let h = spawn(|s| {
        s.approval.risk_threshold = 3;
        s.approval.two_approvers_at_risk = 5;
    })
    .await;
    let db = h.app.app.db.clone();
    let ids = named_contacts(&db, 11).await;
    let (campaign_id, approval_id) =
        awaiting(&h, inline("Risky", ASKER, ids, "Hi", "campaign:risky")).await;
    h.app.drain_background().await;
    assert!(
        bodies(&h.app.fake.calls_to("chat.postMessage"))[0].contains("Two different approvers")
    );

    // Act (1): one approver, twice.
    h.app
        .post_interaction(&click("approval_approve", approval_id, APPROVER, "4.1"))
        .await;
    h.app.drain_background().await;
    h.app
        .post_interaction(&click("approval_approve", approval_id, APPROVER, "4.2"))
        .await;
    h.app.drain_background().await;

    // Assert (1): still pending, nothing released; the request shows the first approval.
    assert_eq!(approval_row(&db, approval_id).await.state, "pending");
    assert_eq!(
        message_states(&db, campaign_id).await,
        vec![("awaiting_approval".into(), 11)]
    );
    let e = bodies(&h.app.fake.calls_to("chat.postEphemeral"));
    assert!(e[0].contains("1 more approval"), "{e:?}");
    assert!(e[1].contains("already decided"), "{e:?}");
    assert!(
        bodies(&h.app.fake.calls_to("chat.update"))[0].contains("Approved so far by <@U0APPROVER>")
    );

    // Act (2): a second, different approver.
    h.app
        .post_interaction(&click("approval_approve", approval_id, SECOND, "4.3"))
        .await;
    h.app.drain_background().await;

    // Assert (2)
    let row = approval_row(&db, approval_id).await;
    assert_eq!(row.state, "approved");
    assert_eq!(row.decided_by.as_deref(), Some("U0APPROVER,U0SECOND"));
    assert!(h.core.wait_for_accepted(11, WAIT).await);
}

#[tokio::test]
async fn deny_asks_for_a_reason_and_skips_the_messages() {
    // Arrange
    let h = spawn(|_| {}).await;
    let db = h.app.app.db.clone();
    let ids = named_contacts(&db, 11).await;
    let (campaign_id, approval_id) =
        awaiting(&h, inline("Deny me", ASKER, ids, "Hi", "campaign:deny")).await;
    h.app.drain_background().await;

    // Act (1): Deny opens the modal with the click's trigger id.
    h.app
        .post_interaction(&click("approval_deny", approval_id, APPROVER, "5.1"))
        .await;
    let opened = h.app.fake.wait_for_calls("views.open", 1).await;

    // Assert (1)
    assert_eq!(opened[0].body["trigger_id"], "trigger-U0APPROVER-5.1");
    let view = &opened[0].body["view"];
    assert_eq!(view["callback_id"], "approval_deny_reason");
    assert_eq!(view["private_metadata"], approval_id.to_string());

    // Act (2): an empty reason is refused in the modal.
    let empty = h
        .app
        .post_interaction(&deny_submission(view, APPROVER, "   "))
        .await;

    // Assert (2)
    assert!(empty.status().is_success());
    let answer: Json = empty.json().await.unwrap();
    assert_eq!(answer["response_action"], "errors");
    assert!(answer["errors"]["reason"].is_string());
    assert_eq!(approval_row(&db, approval_id).await.state, "pending");

    // Act (3): with a reason.
    h.app
        .post_interaction(&deny_submission(
            view,
            APPROVER,
            "Too soon after the last one",
        ))
        .await;
    h.app.drain_background().await;

    // Assert (3): denied with its reason, skipped, shown in place, requester told.
    let row = approval_row(&db, approval_id).await;
    assert_eq!(row.state, "denied");
    assert_eq!(row.reason.as_deref(), Some("Too soon after the last one"));
    assert_eq!(
        message_states(&db, campaign_id).await,
        vec![("skipped".into(), 11)]
    );
    assert_eq!(
        count(
            &db,
            "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM messages WHERE skip_reason = 'cancelled'"
        )
        .await,
        11
    );
    let update = bodies(&h.app.fake.wait_for_calls("chat.update", 1).await).join("");
    assert!(
        update.contains("Denied by <@U0APPROVER>") && update.contains("Too soon"),
        "{update}"
    );
    let dm = h
        .app
        .fake
        .calls_to("chat.postMessage")
        .into_iter()
        .find(|c| c.body["channel"] == ASKER)
        .expect("the requester is told");
    assert!(dm.body.to_string().contains("Too soon"));
    assert_eq!(
        count(
            &db,
            "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM audit_log WHERE action = 'approval.denied'"
        )
        .await,
        1
    );
}

#[tokio::test]
async fn details_show_the_audience_masked() {
    // Arrange
    let h = spawn(|_| {}).await;
    let db = h.app.app.db.clone();
    let ids = named_contacts(&db, 11).await;
    let (_, approval_id) =
        awaiting(&h, inline("Detail", ASKER, ids, "Hi", "campaign:detail")).await;
    h.app.drain_background().await;

    // Act
    h.app
        .post_interaction(&click("approval_details", approval_id, "U0ANYONE", "6.1"))
        .await;
    h.app.drain_background().await;

    // Assert
    let e = bodies(&h.app.fake.calls_to("chat.postEphemeral")).join("");
    assert!(
        e.contains("Ada Lovelace") && e.contains("***@example.com") && e.contains("Risk"),
        "{e}"
    );
    assert!(!e.contains("c0-"), "addresses are masked: {e}");
}

#[tokio::test]
async fn editing_a_pending_draft_voids_its_approval() {
    // Arrange
    let h = spawn(|_| {}).await;
    let db = h.app.app.db.clone();
    let ids = named_contacts(&db, 11).await;
    let (campaign_id, old) = awaiting(
        &h,
        inline("Draft", ASKER, ids.clone(), "First draft", "campaign:draft"),
    )
    .await;
    h.app.drain_background().await;

    // Act (1): the same send, edited.
    let (same_campaign, new) = awaiting(
        &h,
        inline("Draft", ASKER, ids, "Second draft", "campaign:draft"),
    )
    .await;
    h.app.drain_background().await;

    // Assert (1): the old approval is void and says so in place; a new request is posted.
    assert_eq!(same_campaign, campaign_id);
    assert_ne!(new, old);
    assert_eq!(approval_row(&db, old).await.state, "void");
    assert!(bodies(&h.app.fake.calls_to("chat.update"))[0].contains("Void"));
    let posts = bodies(&h.app.fake.calls_to("chat.postMessage"));
    assert_eq!(posts.len(), 2);
    assert!(posts[1].contains("Second draft"));

    // Act (2): someone approves the old request, then the new one.
    h.app
        .post_interaction(&click("approval_approve", old, APPROVER, "7.1"))
        .await;
    h.app.drain_background().await;
    h.app
        .post_interaction(&click("approval_approve", new, APPROVER, "7.2"))
        .await;
    h.app.drain_background().await;

    // Assert (2): only the second draft goes out, to each contact once.
    let e = bodies(&h.app.fake.calls_to("chat.postEphemeral"));
    assert!(e[0].contains("already void"), "{e:?}");
    assert!(h.core.wait_for_accepted(11, WAIT).await);
    h.app.app.dispatcher.run_once().await.unwrap();
    assert_eq!(h.core.accepted().len(), 11);
    #[derive(FromQueryResult)]
    struct Id {
        id: String,
    }
    let mut second: Vec<String> = Id::find_by_statement(Statement::from_string(
        db.get_database_backend(),
        "SELECT id FROM messages WHERE payload LIKE '%Second draft%'",
    ))
    .all(&db)
    .await
    .unwrap()
    .into_iter()
    .map(|r| r.id)
    .collect();
    second.sort();
    let mut sent: Vec<String> = h.core.accepted().into_iter().map(|a| a.id).collect();
    sent.sort();
    assert_eq!(sent, second, "exactly the edited messages were sent");
    assert_eq!(
        count(&db, "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM messages WHERE payload LIKE '%First draft%' AND state <> 'skipped'").await,
        0
    );
}

#[tokio::test]
async fn a_pending_request_is_reminded_once_then_expires() {
    // Arrange
    let h = spawn(|s| {
        s.approval.remind_after_minutes = 60;
        s.approval.expire_after_minutes = 120;
    })
    .await;
    let db = h.app.app.db.clone();
    let ids = named_contacts(&db, 11).await;
    let (campaign_id, approval_id) =
        awaiting(&h, inline("Slow", ASKER, ids, "Hi", "campaign:slow")).await;
    h.app.drain_background().await;
    let now = Utc::now();

    // Act (1): not yet due; then past the reminder, twice.
    let early = reminders::tick(&h.app.app, now + chrono::Duration::minutes(30))
        .await
        .unwrap();
    let first = reminders::tick(&h.app.app, now + chrono::Duration::minutes(61))
        .await
        .unwrap();
    let second = reminders::tick(&h.app.app, now + chrono::Duration::minutes(90))
        .await
        .unwrap();

    // Assert (1): one reminder, in the request's thread.
    assert!(early.reminded.is_empty() && early.expired.is_empty());
    assert_eq!(first.reminded, vec![approval_id]);
    assert!(second.reminded.is_empty());
    let threaded: Vec<_> = h
        .app
        .fake
        .calls_to("chat.postMessage")
        .into_iter()
        .filter(|c| c.body.get("thread_ts").is_some())
        .collect();
    assert_eq!(threaded.len(), 1);
    assert!(threaded[0].body.to_string().contains("Reminder"));
    assert!(threaded[0].body.to_string().contains("<@U0APPROVER>"));

    // Act (2): past the expiry.
    let expired = reminders::tick(&h.app.app, now + chrono::Duration::minutes(121))
        .await
        .unwrap();

    // Assert (2): expired, skipped, updated in place, requester told; a late click changes nothing.
    assert_eq!(expired.expired, vec![approval_id]);
    assert_eq!(approval_row(&db, approval_id).await.state, "expired");
    assert_eq!(
        message_states(&db, campaign_id).await,
        vec![("skipped".into(), 11)]
    );
    assert!(bodies(&h.app.fake.calls_to("chat.update"))[0].contains("Expired"));
    assert!(
        h.app
            .fake
            .calls_to("chat.postMessage")
            .iter()
            .any(|c| c.body["channel"] == ASKER && c.body.to_string().contains("expired"))
    );
    h.app
        .post_interaction(&click("approval_approve", approval_id, APPROVER, "8.1"))
        .await;
    h.app.drain_background().await;
    assert_eq!(approval_row(&db, approval_id).await.state, "expired");
    assert!(h.core.accepted().is_empty());
}

#[tokio::test]
async fn a_channel_the_bot_is_not_in_gives_the_requester_a_setup_message() {
    // Arrange
    let h = spawn(|_| {}).await;
    let db = h.app.app.db.clone();
    let ids = named_contacts(&db, 11).await;
    h.app
        .fake
        .script("chat.postMessage", Scripted::Error("not_in_channel"));

    // Act
    let (_, approval_id) =
        awaiting(&h, inline("Hidden", ASKER, ids, "Hi", "campaign:hidden")).await;
    h.app.drain_background().await;

    // Assert: the requester hears how to fix it; the request stays pending, unsent.
    let posts = h.app.fake.calls_to("chat.postMessage");
    let dm = posts
        .iter()
        .find(|c| c.body["channel"] == ASKER)
        .expect("a DM to the requester");
    let text = dm.body.to_string();
    assert!(
        text.contains("/invite @warmline") && text.contains("not_in_channel"),
        "{text}"
    );
    assert_eq!(approval_row(&db, approval_id).await.state, "pending");
    assert_eq!(
        count(&db, "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM audit_log WHERE action = 'approval.not_posted'").await,
        1
    );

    // Act (2): once the bot is invited, the next tick posts it.
    reminders::tick(&h.app.app, Utc::now()).await.unwrap();

    // Assert (2)
    assert!(
        h.app
            .fake
            .calls_to("chat.postMessage")
            .iter()
            .any(|c| c.body["channel"] == APPROVALS && c.body.to_string().contains("Hidden"))
    );
}
