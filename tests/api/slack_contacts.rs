//! Contacts in Slack: `/warm contact` (card, matches, unknown, export,
//! forget), `/warm log`, and the card's buttons (Log interaction, Opt out,
//! Nudge) through signed requests and the fake Slack.

use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value as Json, json};

use crate::{
    helpers::{TEAM, TestApp, USER, block_action, spawn_app, spawn_app_on, spawn_app_with},
    storage_test,
    test_db::TestDb,
};

const CHANNEL: &str = "C2147483705";

async fn add_contact(app: &TestApp, contact: Json) -> i64 {
    let input: warmline::contacts::ContactInput = serde_json::from_value(contact).unwrap();
    warmline::contacts::upsert(&app.app.db, &input, None, "test")
        .await
        .expect("contact stored")
        .contact
        .id
}

async fn ada(app: &TestApp) -> i64 {
    add_contact(
        app,
        json!({
            "email": "ada@example.com", "first_name": "Ada", "last_name": "Lovelace",
            "pipeline_stage": "negotiation", "tags": ["investor"],
            "consent": [{"channel": "email", "granted": true, "source": "form", "text": "v1"}]
        }),
    )
    .await
}

async fn reply(app: &TestApp, text: &str) -> Json {
    let res = app.post_command(text).await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

/// A click on an ephemeral message in [`CHANNEL`].
fn click(action: &str, value: &str, ts: &str) -> Json {
    let mut p = block_action(action);
    p["channel"] = json!({"id": CHANNEL, "name": "test"});
    p["container"] = json!({"type": "message", "message_ts": "1503435956.000247", "channel_id": CHANNEL, "is_ephemeral": true});
    p["trigger_id"] = format!("trigger-{action}-{ts}").into();
    p["actions"][0]["value"] = value.into();
    p["actions"][0]["action_ts"] = ts.into();
    p
}

/// A view submission of `opened` (as warmline sent it to views.open) with
/// the given state values.
fn submission(opened: &Json, view_id: &str, values: Json) -> Json {
    let mut view = opened.clone();
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

fn select(value: &str) -> Json {
    json!({"type": "static_select", "selected_option": {"text": {"type": "plain_text", "text": value}, "value": value}})
}

fn input(value: &str) -> Json {
    json!({"type": "plain_text_input", "value": value})
}

async fn scalar(app: &TestApp, sql: &str) -> Option<String> {
    let db = &app.app.db;
    db.query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap()
        .map(|r| {
            r.try_get::<String>("", "v")
                .or_else(|_| r.try_get::<i64>("", "v").map(|n| n.to_string()))
                .or_else(|_| r.try_get::<f64>("", "v").map(|n| n.to_string()))
                .or_else(|_| r.try_get::<bool>("", "v").map(|n| n.to_string()))
                .unwrap()
        })
}

#[tokio::test]
async fn an_email_shows_the_full_card() {
    // Arrange
    let app = spawn_app().await;
    let id = ada(&app).await;

    // Act
    let r = reply(&app, "contact ADA@example.com").await;

    // Assert
    assert_eq!(r["response_type"], "ephemeral");
    let blocks = r["blocks"].to_string();
    for expected in [
        "Ada Lovelace",
        "ada@example.com",
        "negotiation",
        "investor",
        "granted since",
        "contact_nudge",
        "contact_log",
        "contact_opt_out",
        &format!("{id}:email"),
    ] {
        assert!(blocks.contains(expected), "{expected} missing: {blocks}");
    }
    assert!(app.fake.calls().is_empty(), "answered inline");
}

#[tokio::test]
async fn a_name_shows_the_card_and_several_matches_a_list() {
    // Arrange
    let app = spawn_app().await;
    ada(&app).await;
    add_contact(
        &app,
        json!({"email": "byron@example.com", "first_name": "Ada", "last_name": "Byron"}),
    )
    .await;

    // Act
    let one = reply(&app, "contact lovelace").await;
    let many = reply(&app, "contact Ada").await;

    // Assert
    assert!(one["blocks"].to_string().contains("contact_nudge"), "{one}");
    let list = many["blocks"].to_string();
    assert_eq!(list.matches("contact_show").count(), 2, "{list}");
    assert!(list.contains("Ada Byron") && list.contains("Ada Lovelace"));
}

#[tokio::test]
async fn an_unknown_contact_says_so() {
    let app = spawn_app().await;
    let r = reply(&app, "contact nobody@example.com").await;
    assert!(
        r["text"].as_str().unwrap().contains("No contact matches"),
        "{r}"
    );
    let r = reply(&app, "contact").await;
    assert!(r["text"].as_str().unwrap().contains("Which contact"), "{r}");
}

#[tokio::test]
async fn the_show_button_posts_the_card() {
    // Arrange
    let app = spawn_app().await;
    let id = ada(&app).await;

    // Act
    app.post_interaction(&click("contact_show", &id.to_string(), "1.1"))
        .await;
    app.drain_background().await;

    // Assert
    let calls = app.fake.calls_to("chat.postEphemeral");
    assert_eq!(calls.len(), 1);
    assert!(calls[0].body.to_string().contains("Ada Lovelace"));
}

#[tokio::test]
async fn export_answers_with_the_json() {
    // Arrange
    let app = spawn_app().await;
    ada(&app).await;

    // Act
    let r = reply(&app, "contact export ada@example.com").await;

    // Assert
    let blocks = r["blocks"].to_string();
    assert!(blocks.contains("```"), "{blocks}");
    assert!(blocks.contains("ada@example.com"));
    assert!(
        blocks.contains("v1"),
        "consent text is part of the proof: {blocks}"
    );
}

#[tokio::test]
async fn forget_is_refused_to_non_approvers() {
    // Arrange
    let app = spawn_app().await;
    ada(&app).await;

    // Act
    let r = reply(&app, "contact forget ada@example.com").await;

    // Assert
    assert!(
        r["text"].as_str().unwrap().contains("Only approvers"),
        "{r}"
    );
    assert_eq!(app.count_rows("contacts").await, 1);
}

storage_test!(
    forget_asks_for_confirmation_then_erases_once,
    |db: TestDb| async move {
        // Arrange
        let app = spawn_app_on(db, |s| s.slack.approvers = vec![USER.into()]).await;
        let id = ada(&app).await;

        // Act
        let prompt = reply(&app, "contact forget ada@example.com").await;
        let nothing_yet = app.count_rows("contacts").await;
        app.post_interaction(&click("contact_forget", &id.to_string(), "2.1"))
            .await;
        app.post_interaction(&click("contact_forget", &id.to_string(), "2.2"))
            .await;
        app.drain_background().await;

        // Assert
        let blocks = prompt["blocks"].to_string();
        assert!(
            blocks.contains("contact_forget") && blocks.contains("\"confirm\""),
            "{blocks}"
        );
        assert_eq!(nothing_yet, 1, "the command alone erases nothing");
        assert_eq!(app.count_rows("contacts").await, 0);
        assert_eq!(
            app.count_rows("tombstones").await,
            1,
            "one tombstone (email)"
        );
        let forgotten = scalar(
        &app,
        "SELECT CAST(COUNT(*) AS BIGINT) AS v FROM audit_log WHERE action = 'contact.forgotten'",
    )
    .await;
        assert_eq!(forgotten.as_deref(), Some("1"));
        let texts: Vec<String> = app
            .fake
            .calls_to("chat.postEphemeral")
            .iter()
            .map(|c| c.body["text"].to_string())
            .collect();
        assert!(texts.iter().any(|t| t.contains("Forgotten")), "{texts:?}");
        assert!(
            texts.iter().any(|t| t.contains("already forgotten")),
            "{texts:?}"
        );
    }
);

#[tokio::test]
async fn a_member_of_the_approver_group_may_forget_a_contact() {
    // Arrange: approvers come only from a Slack user group, which has USER.
    let app = spawn_app_with(|s| {
        s.slack.approvers.clear();
        s.approval.approver_group = Some("S0APPROVERS".into());
    })
    .await;
    app.fake.set_usergroup("S0APPROVERS", &[USER]);
    let id = ada(&app).await;

    // Act
    let prompt = reply(&app, "contact forget ada@example.com").await;
    app.post_interaction(&click("contact_forget", &id.to_string(), "5.1"))
        .await;
    app.drain_background().await;

    // Assert: the group was asked, the prompt offered the button and the
    // click erased the contact.
    let asked = app.fake.calls_to("usergroups.users.list");
    assert!(!asked.is_empty());
    assert_eq!(asked[0].body["usergroup"], "S0APPROVERS");
    assert!(
        prompt["blocks"].to_string().contains("contact_forget"),
        "{prompt}"
    );
    assert_eq!(app.count_rows("contacts").await, 0);
    assert_eq!(app.count_rows("tombstones").await, 1);
}

#[tokio::test]
async fn someone_outside_the_approver_group_may_not_forget_a_contact() {
    // Arrange
    let app = spawn_app_with(|s| {
        s.slack.approvers.clear();
        s.approval.approver_group = Some("S0APPROVERS".into());
    })
    .await;
    app.fake.set_usergroup("S0APPROVERS", &["U0SOMEONEELSE"]);
    let id = ada(&app).await;

    // Act
    let r = reply(&app, "contact forget ada@example.com").await;
    app.post_interaction(&click("contact_forget", &id.to_string(), "5.2"))
        .await;
    app.drain_background().await;

    // Assert
    assert!(
        r["text"].as_str().unwrap().contains("Only approvers"),
        "{r}"
    );
    assert_eq!(app.count_rows("contacts").await, 1);
    let texts: Vec<String> = app
        .fake
        .calls_to("chat.postEphemeral")
        .iter()
        .map(|c| c.body["text"].to_string())
        .collect();
    assert!(
        texts.iter().any(|t| t.contains("Only approvers")),
        "{texts:?}"
    );
}

storage_test!(
    opt_out_revokes_the_channel_once_and_is_audited,
    |db: TestDb| async move {
        // Arrange
        let app = spawn_app_on(db, |_| {}).await;
        let id = ada(&app).await;
        let mut p = click("contact_opt_out", "", "3.1");
        p["actions"][0] = json!({
            "type": "static_select", "block_id": "contact_actions", "action_id": "contact_opt_out",
            "selected_option": {"text": {"type": "plain_text", "text": "email"}, "value": format!("{id}:email")},
            "action_ts": "3.1"
        });
        let mut again = p.clone();
        again["actions"][0]["action_ts"] = "3.2".into();

        // Act
        app.post_interaction(&p).await;
        app.post_interaction(&again).await;
        app.drain_background().await;

        // Assert
        let current = warmline::consent::current(&app.app.db, id).await.unwrap();
        assert!(!current["email"].granted);
        assert_eq!(current["email"].source, "slack_user");
        assert_eq!(
            app.count_rows("consents").await,
            2,
            "the grant, one revocation"
        );
        let audited = scalar(
            &app,
            "SELECT CAST(COUNT(*) AS BIGINT) AS v FROM audit_log WHERE action = 'consent.revoked'",
        )
        .await;
        assert_eq!(audited.as_deref(), Some("1"));
        assert_eq!(app.fake.calls_to("chat.postEphemeral").len(), 2);
    }
);

#[tokio::test]
async fn log_interaction_opens_a_modal_whose_submit_records_and_warms() {
    // Arrange
    let app = spawn_app().await;
    let id = ada(&app).await;

    // Act: the click opens the modal with the click's trigger id.
    app.post_interaction(&click("contact_log", &id.to_string(), "4.1"))
        .await;
    app.drain_background().await;
    let opened = app.fake.calls_to("views.open");
    assert_eq!(opened.len(), 1);
    assert_eq!(opened[0].body["trigger_id"], "trigger-contact_log-4.1");
    let view = opened[0].body["view"].clone();
    assert_eq!(view["callback_id"], "contact_log_modal");

    // Act: an empty summary is answered in the modal.
    let bad = submission(
        &view,
        "VLOG1",
        json!({"kind": {"kind": select("meeting")}, "direction": {"direction": select("inbound")}, "summary": {"summary": {"type": "plain_text_input", "value": null}}}),
    );
    let res: Json = app.post_interaction(&bad).await.json().await.unwrap();
    assert_eq!(res["response_action"], "errors", "{res}");
    assert!(res["errors"]["summary"].is_string());

    // Act: a good one.
    let good = submission(
        &view,
        "VLOG1",
        json!({"kind": {"kind": select("meeting")}, "direction": {"direction": select("inbound")}, "summary": {"summary": input("Coffee in Lisbon")}}),
    );
    let res: Json = app.post_interaction(&good).await.json().await.unwrap();

    // Assert
    assert_eq!(res["response_action"], "update", "{res}");
    assert!(res["view"].to_string().contains("Warmth is now"), "{res}");
    assert_eq!(
        scalar(&app, "SELECT source AS v FROM interactions")
            .await
            .as_deref(),
        Some(format!("slack:{USER}").as_str())
    );
    let warmth: f64 = scalar(&app, "SELECT warmth AS v FROM contacts")
        .await
        .unwrap()
        .parse()
        .unwrap();
    assert!(warmth > 0.0, "a two-way meeting warms: {warmth}");
}

#[tokio::test]
async fn warm_log_records_a_note_or_the_kind_given() {
    // Arrange
    let app = spawn_app().await;
    ada(&app).await;

    // Act
    let r = reply(&app, "log ada@example.com meeting: coffee in Lisbon").await;
    let by_name = reply(&app, "log Ada Lovelace sent the deck").await;

    // Assert
    let text = r["text"].as_str().unwrap();
    assert!(
        text.contains("Logged a meeting") && text.contains("Warmth is now"),
        "{text}"
    );
    assert!(
        by_name["text"].as_str().unwrap().contains("Logged a note"),
        "{by_name}"
    );
    assert_eq!(app.count_rows("interactions").await, 2);
    let r = reply(&app, "log nobody@example.com hi").await;
    assert!(r["text"].as_str().unwrap().contains("No contact"), "{r}");
}

#[tokio::test]
async fn nudge_opens_at_once_previews_and_submits_for_approval() {
    // Arrange
    let app = spawn_app_with(|s| {
        s.email.from = Some("Grace <grace@example.com>".into());
        s.providers.test = Some(Default::default());
        s.slack.approvals_channel = Some("C0APPROVALS".into());
        s.slack.approvers = vec!["U0APPROVER".into()];
    })
    .await;
    let id = ada(&app).await;

    // Act: open.
    app.post_interaction(&click("contact_nudge", &id.to_string(), "5.1"))
        .await;
    app.drain_background().await;

    // Assert: opened with the trigger id, then updated with a preview.
    let opened = app.fake.calls_to("views.open");
    assert_eq!(opened.len(), 1);
    assert_eq!(opened[0].body["trigger_id"], "trigger-contact_nudge-5.1");
    let updates = app.fake.calls_to("views.update");
    assert_eq!(updates.len(), 1);
    let view = updates[0].body["view"].clone();
    assert!(
        view.to_string().contains("Preview for Ada Lovelace"),
        "{view}"
    );

    // Act: a template mistake is answered on its field.
    let bad = submission(
        &view,
        "VNUDGE1",
        json!({"subject": {"subject": input("Hi {{ first_name }}")}, "body": {"body": input("Hello {{ nickname }}")}}),
    );
    let res: Json = app.post_interaction(&bad).await.json().await.unwrap();
    assert_eq!(res["response_action"], "errors", "{res}");
    assert!(
        res["errors"]["body"].as_str().unwrap().contains("nickname"),
        "{res}"
    );

    // Act: a good one goes to the approval policy.
    let good = submission(
        &view,
        "VNUDGE1",
        json!({"subject": {"subject": input("Hi {{ first_name }}")}, "body": {"body": input("Coffee soon?")}}),
    );
    let res: Json = app.post_interaction(&good).await.json().await.unwrap();
    app.drain_background().await;

    // Assert
    assert_eq!(res["response_action"], "update", "{res}");
    let shown = res["view"].to_string();
    assert!(
        shown.contains("waiting for an approver") || shown.contains("on its way"),
        "{shown}"
    );
    assert_eq!(app.count_rows("campaigns").await, 1);
}

#[tokio::test]
async fn an_export_too_large_for_slack_points_to_the_cli() {
    // Arrange: 200 kB of notes, more than 48 sections of 3,000 characters.
    let app = spawn_app().await;
    add_contact(
        &app,
        json!({"email": "big@example.com", "metadata": {"notes": "x".repeat(200_000)}}),
    )
    .await;

    // Act
    let r = reply(&app, "contact export big@example.com").await;

    // Assert
    let text = r["text"].as_str().unwrap();
    assert!(text.contains("too large"), "{text}");
    assert!(
        text.contains("warmline export-contact big@example.com"),
        "{text}"
    );
}

#[tokio::test]
async fn choosing_a_template_in_the_nudge_modal_updates_the_preview() {
    // Arrange
    let app = spawn_app().await;
    let id = ada(&app).await;
    let mut p = block_action("nudge_template");
    p["container"] = json!({"type": "view", "view_id": "VNUDGE2"});
    p["view"]["id"] = "VNUDGE2".into();
    p["view"]["type"] = "modal".into();
    p["view"]["callback_id"] = "nudge_modal".into();
    p["view"]["private_metadata"] = id.to_string().into();
    p["view"]["title"] = json!({"type": "plain_text", "text": "Nudge"});
    p["actions"][0] = json!({
        "type": "static_select", "block_id": "template", "action_id": "nudge_template",
        "selected_option": {"text": {"type": "plain_text", "text": "Personal check-in"}, "value": "check_in"},
        "action_ts": "6.1"
    });

    // Act
    app.post_interaction(&p).await;
    app.drain_background().await;

    // Assert
    let updates = app.fake.calls_to("views.update");
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0].body["view_id"], "VNUDGE2");
    let view = updates[0].body["view"].to_string();
    assert!(view.contains("Catching up, Ada"), "{view}");
}
