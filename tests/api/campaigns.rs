//! Campaigns from Slack, end to end through the fake Slack: `/warm
//! campaign` opens the composer at once, invalid input is answered on its
//! field, the preview shows counts, exclusions, rendered messages, risk and
//! the time to send; drafts are saved, listed and reopened; submitting goes
//! through the approval engine (queued or awaiting approval), and editing a
//! submitted draft voids its earlier approval. `/warm nudge` opens the
//! contact card's Nudge modal.

use std::sync::Arc;

use chrono::Utc;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value as Json, json};
use warmline::{
    dispatcher::ledger,
    providers::{
        Registry,
        test_provider::{Behaviour, Core, TestProvider},
    },
    settings::Settings,
};

use crate::{
    dispatcher::message,
    helpers::{
        TEAM, TestApp, USER, block_action, command_body_with_trigger, spawn_app_with_registry,
    },
    storage_test,
    test_db::{Backend, TestDb},
};

const APPROVALS: &str = "C0APPROVE";
const APPROVER: &str = "U0APPROVER";

async fn spawn_on(db: TestDb, f: impl FnOnce(&mut Settings)) -> TestApp {
    // A declared rate of one request every two seconds, one message each:
    // the estimate is easy to check.
    let core = Core::new(Behaviour {
        declared_rps: Some(0.5),
        max_batch: 1,
        ..Behaviour::default()
    });
    let mut registry = Registry::new();
    registry.register(Arc::new(TestProvider::in_process(core)));
    spawn_app_with_registry(
        db,
        |s| {
            s.slack.approvals_channel = Some(APPROVALS.into());
            s.slack.approvers = vec![APPROVER.into()];
            s.email.from = Some("Team <team@example.com>".into());
            f(s);
        },
        Some(registry),
    )
    .await
}

async fn spawn(f: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_on(TestDb::new(Backend::Sqlite).await.expect("SQLite"), f).await
}

pub(crate) async fn add_contact(app: &TestApp, contact: Json) -> i64 {
    let input: warmline::contacts::ContactInput = serde_json::from_value(contact).unwrap();
    warmline::contacts::upsert(&app.app.db, &input, None, "test")
        .await
        .expect("contact stored")
        .contact
        .id
}

pub(crate) fn consenting(email: &str, first: &str, tag: &str) -> Json {
    json!({
        "email": email, "first_name": first, "last_name": "Test", "tags": [tag],
        "consent": [{"channel": "email", "granted": true, "source": "form", "text": "v1"}]
    })
}

/// Four investors who will receive it, and three excluded for a reason each.
async fn investors(app: &TestApp) -> Vec<i64> {
    let mut ids = Vec::new();
    for (email, first) in [
        ("ada@example.com", "Ada"),
        ("grace@example.com", "Grace"),
        ("hedy@example.com", "Hedy"),
        ("katherine@example.com", "Katherine"),
    ] {
        ids.push(add_contact(app, consenting(email, first, "investor")).await);
    }
    add_contact(
        app,
        json!({"email": "noconsent@example.com", "first_name": "Nora", "tags": ["investor"]}),
    )
    .await;
    add_contact(app, consenting("bounced@example.com", "Barb", "investor")).await;
    ledger::suppress(
        &app.app.db,
        "email",
        "bounced@example.com",
        "bounce",
        "test",
        Utc::now(),
    )
    .await
    .unwrap();
    add_contact(
        app,
        json!({"phone": "+14155550100", "external_id": "phil-1", "first_name": "Phil", "tags": ["investor"]}),
    )
    .await;
    ids
}

async fn scalar(app: &TestApp, sql: &str) -> i64 {
    let db = &app.app.db;
    db.query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i64>("", "n")
        .unwrap()
}

/// `/warm campaign` with a known trigger id; returns the opened view.
pub(crate) async fn open_composer(app: &TestApp, trigger: &str) -> Json {
    let res = app
        .post_command_form(command_body_with_trigger("campaign", trigger))
        .await;
    assert_eq!(res.status(), 200);
    app.drain_background().await;
    let opened = app.fake.calls_to("views.open");
    let last = opened.last().expect("views.open was called");
    assert_eq!(last.body["trigger_id"], trigger);
    last.body["view"].clone()
}

pub(crate) fn input(v: &str) -> Json {
    json!({"type": "plain_text_input", "value": v})
}

pub(crate) fn select(v: &str) -> Json {
    json!({"type": "static_select", "selected_option": {"text": {"type": "plain_text", "text": v}, "value": v}})
}

fn radio(v: &str) -> Json {
    json!({"type": "radio_buttons", "selected_option": {"text": {"type": "plain_text", "text": v}, "value": v}})
}

/// A filled-in form: investors, a hand-written message, now. `changes`
/// replace whole fields (`{"body": input("…")}`); `null` removes one.
pub(crate) fn form(changes: Json) -> Json {
    let mut v = json!({
        "name": input("Seed investors"),
        "channel": select("email"),
        "audience_mode": radio("segment"),
        "tags": input("investor"),
        "subject": input("Hello {{ first_name }}"),
        "body": input("Hi {{ first_name }}, news from us."),
        "schedule_mode": radio("now"),
    });
    for (k, val) in changes.as_object().unwrap() {
        if val.is_null() {
            v.as_object_mut().unwrap().remove(k);
        } else {
            v[k] = val.clone();
        }
    }
    let mut values = json!({});
    for (k, val) in v.as_object().unwrap() {
        values[k] = json!({ k.clone(): val });
    }
    values
}

/// A view submission of `view` (as warmline sent it) with `values`.
fn submission(view: &Json, view_id: &str, values: Json) -> Json {
    let mut view = view.clone();
    let obj = view.as_object_mut().unwrap();
    for (k, v) in json!({
        "id": view_id, "team_id": TEAM, "hash": "156772938.1827394",
        "clear_on_close": false, "notify_on_close": false, "root_view_id": view_id,
        "app_id": "AA4928AQ", "external_id": "", "bot_id": "BA13894H",
        "state": {"values": values}
    })
    .as_object()
    .unwrap()
    {
        obj.insert(k.clone(), v.clone());
    }
    json!({
        "type": "view_submission",
        "team": {"id": TEAM, "domain": "example"},
        "user": {"id": USER, "username": "u", "name": "u", "team_id": TEAM},
        "api_app_id": "A0FAKE",
        "token": "XXYYZZ",
        "trigger_id": "12345.98765.abcd",
        "view": view,
    })
}

pub(crate) async fn submit(app: &TestApp, view: &Json, view_id: &str, values: Json) -> Json {
    let res = app
        .post_interaction(&submission(view, view_id, values))
        .await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

/// A click on a button in a modal.
fn view_click(action: &str, value: &str, view_id: &str, ts: &str) -> Json {
    let mut p = block_action(action);
    p["container"] = json!({"type": "view", "view_id": view_id});
    p["view"]["id"] = view_id.into();
    p["view"]["type"] = "modal".into();
    p["view"]["callback_id"] = "campaign_preview".into();
    p["view"]["private_metadata"] = value.into();
    p["view"]["title"] = json!({"type": "plain_text", "text": "Preview"});
    p["trigger_id"] = format!("trigger-{action}-{ts}").into();
    p["actions"][0]["value"] = value.into();
    p["actions"][0]["action_ts"] = ts.into();
    p
}

/// A click on an ephemeral message.
fn message_click(action: &str, value: &str, trigger: &str) -> Json {
    let mut p = block_action(action);
    p["channel"] = json!({"id": "C2147483705", "name": "test"});
    p["container"] = json!({"type": "message", "message_ts": "1503435956.000247", "channel_id": "C2147483705", "is_ephemeral": true});
    p["trigger_id"] = trigger.into();
    p["actions"][0]["value"] = value.into();
    p
}

#[tokio::test]
async fn campaign_opens_the_composer_at_once_with_the_trigger_id() {
    // Arrange
    let app = spawn(|_| {}).await;

    // Act
    let view = open_composer(&app, "trigger-campaign-1").await;

    // Assert
    assert_eq!(view["callback_id"], "campaign_modal");
    let text = view.to_string();
    for field in [
        "\"name\"",
        "audience_mode",
        "\"template\"",
        "\"body\"",
        "schedule_mode",
        "schedule_at",
        "schedule_local",
    ] {
        assert!(text.contains(field), "{field} missing: {text}");
    }
    assert!(
        text.contains("Not available yet"),
        "other channels are listed as unavailable"
    );
    assert!(
        app.fake.calls_to("views.update").is_empty(),
        "a new form needs no update"
    );
}

#[tokio::test]
async fn each_invalid_field_is_answered_on_that_field() {
    // Arrange
    let app = spawn(|_| {}).await;
    investors(&app).await;
    let view = open_composer(&app, "trigger-campaign-2").await;
    let past = Utc::now().timestamp() - 3600;

    // Act
    let syntax = submit(
        &app,
        &view,
        "V1",
        form(json!({"body": input("Hi\n{{ first_name ")})),
    )
    .await;
    let unknown = submit(
        &app,
        &view,
        "V1",
        form(json!({"body": input("Hi {{ nickname }}")})),
    )
    .await;
    let empty = submit(
        &app,
        &view,
        "V1",
        form(json!({"tags": input("nobody-has-this-tag")})),
    )
    .await;
    let both = submit(
        &app,
        &view,
        "V1",
        form(json!({"body": null, "template": select("check_in")})),
    )
    .await;
    let in_past = submit(
        &app,
        &view,
        "V1",
        form(json!({"schedule_mode": radio("at"), "schedule_at": {"type": "datetimepicker", "selected_date_time": past}})),
    )
    .await;

    // Assert
    assert!(
        both["errors"]["subject"]
            .as_str()
            .unwrap()
            .contains("own subject"),
        "{both}"
    );
    for r in [&syntax, &unknown, &empty, &in_past] {
        assert_eq!(r["response_action"], "errors", "{r}");
    }
    let syntax = syntax["errors"]["body"].as_str().unwrap();
    assert!(syntax.contains("syntax error on line 2"), "{syntax}");
    let unknown = unknown["errors"]["body"].as_str().unwrap();
    assert!(
        unknown.contains("nickname") && unknown.contains("For "),
        "{unknown}"
    );
    assert!(
        empty["errors"]["audience_mode"]
            .as_str()
            .unwrap()
            .contains("empty"),
        "{empty}"
    );
    assert!(
        in_past["errors"]["schedule_at"]
            .as_str()
            .unwrap()
            .contains("past"),
        "{in_past}"
    );
    assert_eq!(app.count_rows("campaign_drafts").await, 0, "nothing stored");
    assert_eq!(app.count_rows("campaigns").await, 0);
}

#[tokio::test]
async fn the_preview_counts_exclusions_renders_three_and_scores_risk_and_time() {
    // Arrange
    let app = spawn(|_| {}).await;
    investors(&app).await;
    let view = open_composer(&app, "trigger-campaign-3").await;

    // Act
    let r = submit(&app, &view, "V1", form(json!({}))).await;

    // Assert
    assert_eq!(r["response_action"], "update", "{r}");
    assert_eq!(r["view"]["callback_id"], "campaign_preview");
    let text = r["view"].to_string();
    assert!(text.contains("*4* of 7 contacts"), "{text}");
    for reason in [
        "no consent: 1",
        "suppressed: 1",
        "no address for the channel: 1",
    ] {
        assert!(text.contains(reason), "{reason} missing: {text}");
    }
    assert_eq!(text.matches("*To:*").count(), 3, "three rendered: {text}");
    assert!(
        text.contains("Hi Ada, news from us."),
        "rendered for a real recipient: {text}"
    );
    assert!(text.contains("*Risk "), "{text}");
    assert!(text.contains("written by hand"), "risk reasons: {text}");
    // 4 messages, one per request, one request every 2 s.
    assert!(text.contains("about 8 seconds"), "{text}");
    assert_eq!(r["view"]["submit"]["text"], "Request approval");
    assert_eq!(
        app.count_rows("campaigns").await,
        0,
        "a preview sends nothing"
    );
}

#[tokio::test]
async fn a_saved_draft_is_listed_and_reopens_prefilled() {
    // Arrange
    let app = spawn(|_| {}).await;
    investors(&app).await;
    let view = open_composer(&app, "trigger-campaign-4").await;
    let preview = submit(
        &app,
        &view,
        "VPREV",
        form(json!({"body": input("Saved body for {{ first_name }}")})),
    )
    .await;
    let draft_id = preview["view"]["private_metadata"]
        .as_str()
        .unwrap()
        .to_string();
    let before = app
        .post_command("drafts")
        .await
        .json::<Json>()
        .await
        .unwrap();

    // Act: save, list, open.
    app.post_interaction(&view_click("campaign_save", &draft_id, "VPREV", "1.1"))
        .await;
    app.drain_background().await;
    let listed: Json = app.post_command("drafts").await.json().await.unwrap();
    app.post_interaction(&message_click("campaign_open", &draft_id, "trigger-open-1"))
        .await;
    app.drain_background().await;

    // Assert
    assert!(
        !before["blocks"].to_string().contains("campaign_open"),
        "a preview alone is not a saved draft: {before}"
    );
    let saved = app.fake.calls_to("views.update");
    assert!(
        saved[0].body["view"].to_string().contains("Saved"),
        "{:?}",
        saved[0].body
    );
    let blocks = listed["blocks"].to_string();
    assert!(
        blocks.contains("Seed investors") && blocks.contains("campaign_open"),
        "{blocks}"
    );
    let opened = app.fake.calls_to("views.open");
    assert_eq!(opened.last().unwrap().body["trigger_id"], "trigger-open-1");
    let updates = app.fake.calls_to("views.update");
    let reopened = updates.last().unwrap().body["view"].to_string();
    assert!(
        reopened.contains("Saved body for {{ first_name }}"),
        "{reopened}"
    );
    assert!(
        reopened.contains("\"initial_value\":\"investor\""),
        "{reopened}"
    );
    assert!(
        reopened.contains(&format!("\"private_metadata\":\"{draft_id}\"")),
        "{reopened}"
    );
}

storage_test!(
    submitting_asks_for_approval_and_an_edit_voids_the_first_request,
    |db: TestDb| async move {
        // Arrange
        let app = spawn_on(db, |_| {}).await;
        investors(&app).await;
        let view = open_composer(&app, "trigger-campaign-5").await;
        let preview = submit(&app, &view, "VP1", form(json!({}))).await;
        let draft_id = preview["view"]["private_metadata"]
            .as_str()
            .unwrap()
            .to_string();

        // Act: request approval.
        let done = submit(&app, &preview["view"], "VP1", json!({})).await;
        app.drain_background().await;

        // Assert
        assert_eq!(done["response_action"], "update", "{done}");
        let shown = done["view"].to_string();
        assert!(
            shown.contains("awaiting approval") && shown.contains(APPROVALS),
            "{shown}"
        );
        let posted = app.fake.calls_to("chat.postMessage");
        assert!(
            posted.iter().any(|c| c.body["channel"] == APPROVALS),
            "the request is posted to the approvals channel"
        );
        let source = format!("campaign:{draft_id}");
        assert_eq!(
            scalar(
                &app,
                &format!(
                    "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM campaigns WHERE source = '{source}'"
                )
            )
            .await,
            1
        );
        // 4 receive, 2 more are skipped at send time with their reason; the
        // contact without an email address is not submitted.
        assert_eq!(
            scalar(&app, "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM messages WHERE state = 'awaiting_approval'").await,
            6
        );

        // Act: edit the submitted draft (reopened composer) and submit again.
        let mut edit_view = view.clone();
        edit_view["private_metadata"] = draft_id.clone().into();
        let preview2 = submit(
            &app,
            &edit_view,
            "VP2",
            form(json!({"body": input("A better message, {{ first_name }}.")})),
        )
        .await;
        assert_eq!(
            preview2["view"]["private_metadata"],
            draft_id.as_str(),
            "the same draft"
        );
        let done2 = submit(&app, &preview2["view"], "VP2", json!({})).await;
        app.drain_background().await;

        // Assert
        assert!(
            done2["view"].to_string().contains("awaiting approval"),
            "{done2}"
        );
        assert_eq!(
            scalar(
                &app,
                "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM approvals WHERE state = 'void'"
            )
            .await,
            1,
            "the first approval is void"
        );
        assert_eq!(
            scalar(
                &app,
                "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM approvals WHERE state = 'pending'"
            )
            .await,
            1
        );
        assert_eq!(
            app.count_rows("campaigns").await,
            1,
            "one campaign, revised"
        );
        assert_eq!(app.count_rows("campaign_drafts").await, 1);
    }
);

#[tokio::test]
async fn a_low_risk_send_by_policy_is_queued_at_once() {
    // Arrange: a template that has gone out before, one warm-enough contact.
    let app = spawn(|s| {
        s.approval.warmth_floor = 0;
        s.approval.risk_threshold = 10;
        s.approval.two_approvers_at_risk = 10;
    })
    .await;
    let ada = add_contact(&app, consenting("ada@example.com", "Ada", "vip")).await;
    let m = ledger::NewMessage {
        provider: "offline".into(),
        template: Some("check_in".into()),
        ..message("history:1", ada, "marketing")
    };
    ledger::enqueue(&app.app.db, std::slice::from_ref(&m), Utc::now())
        .await
        .unwrap();
    app.app
        .db
        .execute_unprepared(&format!(
            "UPDATE messages SET state = 'sent' WHERE id = '{}'",
            m.id()
        ))
        .await
        .unwrap();
    let view = open_composer(&app, "trigger-campaign-6").await;
    let values = form(json!({
        "tags": input("vip"), "subject": null, "body": null, "template": select("check_in"),
    }));

    // Act
    let preview = submit(&app, &view, "VQ", values).await;
    let done = submit(&app, &preview["view"], "VQ", json!({})).await;
    app.drain_background().await;

    // Assert
    assert_eq!(preview["view"]["submit"]["text"], "Send", "{preview}");
    let shown = done["view"].to_string();
    assert!(shown.contains("on their way"), "{shown}");
    assert_eq!(app.count_rows("approvals").await, 0);
}

#[tokio::test]
async fn nudge_opens_the_contact_cards_nudge_modal() {
    // Arrange
    let app = spawn(|_| {}).await;
    add_contact(&app, consenting("ada@example.com", "Ada", "investor")).await;

    // Act
    let res = app
        .post_command_form(command_body_with_trigger(
            "nudge ada@example.com",
            "trigger-nudge-1",
        ))
        .await;
    assert_eq!(res.status(), 200);
    let unknown: Json = app
        .post_command("nudge nobody@example.com")
        .await
        .json()
        .await
        .unwrap();
    app.drain_background().await;

    // Assert
    let opened = app.fake.calls_to("views.open");
    assert_eq!(opened.len(), 1);
    assert_eq!(opened[0].body["trigger_id"], "trigger-nudge-1");
    assert_eq!(opened[0].body["view"]["callback_id"], "nudge_modal");
    let updated = app.fake.calls_to("views.update");
    assert!(
        updated[0].body["view"]
            .to_string()
            .contains("Preview for Ada"),
        "{:?}",
        updated[0].body
    );
    assert!(
        unknown["text"]
            .as_str()
            .unwrap()
            .contains("No contact matches"),
        "{unknown}"
    );
}

#[tokio::test]
async fn a_segment_combines_warmth_status_stage_and_tags_and_a_list_names_unknowns() {
    use warmline::campaigns::audience::{Audience, Segment, resolve};
    // Arrange
    let app = spawn(|_| {}).await;
    let warm = add_contact(
        &app,
        json!({"email": "warm@example.com", "pipeline_stage": "Negotiation", "tags": ["investor", "seed"]}),
    )
    .await;
    let cold = add_contact(
        &app,
        json!({"email": "cold@example.com", "pipeline_stage": "negotiation", "tags": ["investor", "seed"]}),
    )
    .await;
    add_contact(
        &app,
        json!({"email": "other@example.com", "pipeline_stage": "negotiation", "tags": ["seedling"]}),
    )
    .await;
    let db = &app.app.db;
    db.execute_unprepared(&format!(
        "UPDATE contacts SET warmth = 70 WHERE id = {warm}"
    ))
    .await
    .unwrap();
    db.execute_unprepared(&format!(
        "UPDATE contacts SET warmth = 10 WHERE id = {cold}"
    ))
    .await
    .unwrap();

    // Act
    let segment = resolve(
        db,
        &Audience::Segment(Segment {
            warmth_min: Some(50.0),
            warmth_max: Some(100.0),
            status: Some("Active".into()),
            stage: Some("negotiation".into()),
            tags: vec!["seed".into(), "investor".into()],
        }),
    )
    .await
    .unwrap();
    let list = resolve(
        db,
        &Audience::List {
            emails: vec!["COLD@example.com".into(), "ghost@example.com".into()],
        },
    )
    .await
    .unwrap();

    // Assert
    assert_eq!(segment.ids, [warm], "a tag matches whole, not as a prefix");
    assert_eq!(list.ids, [cold]);
    assert_eq!(list.unknown, ["ghost@example.com"]);
}

#[tokio::test]
async fn edit_in_the_preview_returns_to_the_form_prefilled() {
    // Arrange
    let app = spawn(|_| {}).await;
    investors(&app).await;
    let view = open_composer(&app, "trigger-campaign-7").await;
    let values = form(json!({
        "schedule_mode": radio("local"),
        "schedule_local": {"type": "timepicker", "selected_time": "09:30"},
    }));
    let preview = submit(&app, &view, "VED", values).await;
    let draft_id = preview["view"]["private_metadata"]
        .as_str()
        .unwrap()
        .to_string();

    // Act
    app.post_interaction(&view_click("campaign_edit", &draft_id, "VED", "7.1"))
        .await;
    app.drain_background().await;

    // Assert
    let text = preview["view"].to_string();
    assert!(text.contains("09:30 in each recipient"), "{text}");
    let updates = app.fake.calls_to("views.update");
    let update = &updates.last().unwrap().body;
    assert_eq!(update["view_id"], "VED");
    let form_again = update["view"].to_string();
    assert!(
        form_again.contains("\"callback_id\":\"campaign_modal\""),
        "{form_again}"
    );
    assert!(
        form_again.contains("\"initial_time\":\"09:30\""),
        "{form_again}"
    );
    assert!(form_again.contains("Seed investors"), "{form_again}");
}
