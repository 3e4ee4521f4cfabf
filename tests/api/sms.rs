//! SMS, the product half (issue 14): the API sends `verification_code` as a
//! transactional text (`{"text": …}`, no sender prefix, no STOP footer) and
//! refuses a `to` that is not E.164; the campaign composer offers SMS only
//! when a provider carries it; an SMS campaign's preview shows each text's
//! segments and encoding, the cost and the time to send; the queued texts
//! and the approval request carry the sender's name and the STOP footer
//! exactly once; quiet hours default to 08:00–21:00 recipient-local.
//!
//! The SMS provider here is the test provider carrying SMS
//! (`TestProvider::carrying`); the Twilio provider is tested on its own.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use sea_orm::{FromQueryResult, Statement};
use serde_json::{Value as Json, json};
use warmline::{
    dispatcher::{
        checks::{Facts, Verdict, decide},
        claim::Claimed,
        settings::{CapsSettings, Window},
    },
    domain::{Channel, MessageKind},
    providers::{
        Registry,
        test_provider::{Behaviour, Core, TestProvider},
    },
    settings::{Requirements, Settings},
};

use crate::{
    campaigns::{add_contact, form, input, open_composer, select, submit},
    fake_slack::WAIT,
    helpers::{TestApp, spawn_app_with_registry},
    storage_test,
    test_db::{Backend, TestDb},
};

const APPROVALS: &str = "C0APPROVE";
const KEY: &str = "sms-test-key";
const FOOTER: &str = "Reply STOP to opt out.";

/// An app with an email test provider and, when `sms` is given, a test
/// provider carrying SMS (one message a request, at 1 request a second).
async fn spawn_on(db: TestDb, sms: Option<Arc<Core>>, f: impl FnOnce(&mut Settings)) -> TestApp {
    let mut registry = Registry::new();
    registry.register(Arc::new(TestProvider::in_process(Core::new(
        Behaviour::default(),
    ))));
    if let Some(core) = sms {
        registry.register(Arc::new(
            TestProvider::in_process(core).carrying(Channel::Sms),
        ));
    }
    spawn_app_with_registry(
        db,
        |s| {
            s.slack.approvals_channel = Some(APPROVALS.into());
            s.slack.approvers = vec!["U0APPROVER".into()];
            s.email.from = Some("Team <team@example.com>".into());
            s.sms.sender_name = Some("Acme".into());
            s.api.keys = vec![KEY.into()];
            f(s);
        },
        Some(registry),
    )
    .await
}

fn sms_core() -> Arc<Core> {
    Core::new(Behaviour {
        declared_rps: Some(1.0),
        max_batch: 1,
        ..Behaviour::default()
    })
}

async fn post_message(app: &TestApp, body: Json) -> (u16, Json) {
    let res = app
        .client
        .post(app.url("/api/v1/messages"))
        .bearer_auth(KEY)
        .json(&body)
        .send()
        .await
        .expect("request sent");
    let status = res.status().as_u16();
    (status, res.json().await.expect("a JSON body"))
}

#[derive(Debug, FromQueryResult)]
struct Row {
    channel: String,
    kind: String,
    address: Option<String>,
    payload: String,
}

async fn messages(app: &TestApp) -> Vec<Row> {
    let db = &app.app.db;
    Row::find_by_statement(Statement::from_string(
        db.get_database_backend(),
        "SELECT channel, kind, address, payload FROM messages ORDER BY contact_id, id",
    ))
    .all(db)
    .await
    .unwrap()
}

fn text_of(payload: &str) -> String {
    let v: Json = serde_json::from_str(payload).unwrap();
    v["text"].as_str().unwrap().to_string()
}

storage_test!(
    the_api_sends_a_verification_code_as_a_transactional_text,
    |db: TestDb| async move {
        // Arrange: no quiet hours, so the code goes out whatever the hour.
        let core = sms_core();
        let app = spawn_on(db, Some(core.clone()), |s| s.quiet_hours.sms = None).await;

        // Act
        let (status, body) = post_message(
            &app,
            json!({"template": "verification_code", "to": "+14155550100", "variables": {"code": "493817"}}),
        )
        .await;

        // Assert
        assert_eq!(status, 202, "{body}");
        assert_eq!(body["state"], "queued");
        let rows = messages(&app).await;
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].channel, "sms");
        assert_eq!(rows[0].kind, "transactional");
        assert_eq!(rows[0].address.as_deref(), Some("+14155550100"));
        let payload: Json = serde_json::from_str(&rows[0].payload).unwrap();
        assert_eq!(
            payload,
            json!({"text": "Your Acme verification code is 493817. It expires in 10 minutes. Don't share it with anyone."}),
            "transactional: no sender prefix, no STOP footer, nothing else"
        );
        assert!(
            core.wait_for_accepted(1, WAIT).await,
            "the dispatcher sent it through the SMS provider"
        );
        assert_eq!(core.accepted()[0].to, "+14155550100");
    }
);

storage_test!(
    the_api_refuses_a_to_that_is_not_e164_for_an_sms_template,
    |db: TestDb| async move {
        // Arrange
        let app = spawn_on(db, Some(sms_core()), |_| {}).await;
        let code = |to: &str| json!({"template": "verification_code", "to": to, "variables": {"code": "1"}});

        // Act
        let mut answers = Vec::new();
        for to in ["4155550100", "+1 415 555 0100", "ada@example.com", "+1415"] {
            answers.push((to, post_message(&app, code(to)).await));
        }
        let email_to_phone = post_message(
            &app,
            json!({"template": "password_reset", "to": "+14155550100", "variables": {"reset_url": "https://x.test/r"}}),
        )
        .await;
        let missing = post_message(
            &app,
            json!({"template": "verification_code", "to": "+14155550100"}),
        )
        .await;

        // Assert
        for (to, (status, body)) in &answers {
            assert_eq!(*status, 422, "{to}: {body}");
            assert_eq!(body["error"]["field"], "to", "{to}: {body}");
            let message = body["error"]["message"].as_str().unwrap();
            assert!(
                message.contains("E.164") && message.contains("+14155550100"),
                "{to}: {message}"
            );
        }
        assert_eq!(email_to_phone.0, 422, "{}", email_to_phone.1);
        assert_eq!(email_to_phone.1["error"]["field"], "to");
        assert!(
            !email_to_phone.1["error"]["message"]
                .as_str()
                .unwrap()
                .contains("E.164"),
            "an email template still asks for an email address"
        );
        assert_eq!(missing.0, 422);
        assert_eq!(missing.1["error"]["field"], "variables.code");
        assert!(messages(&app).await.is_empty(), "nothing was queued");
    }
);

fn channel_values(view: &Json) -> Vec<String> {
    let blocks = view["blocks"].as_array().unwrap();
    let channel = blocks.iter().find(|b| b["block_id"] == "channel").unwrap();
    channel["element"]["options"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["value"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn the_composer_offers_sms_only_when_a_provider_carries_it() {
    // Arrange
    let without = spawn_on(TestDb::new(Backend::Sqlite).await.unwrap(), None, |_| {}).await;
    let with = spawn_on(
        TestDb::new(Backend::Sqlite).await.unwrap(),
        Some(sms_core()),
        |_| {},
    )
    .await;

    // Act
    let plain = open_composer(&without, "trigger-sms-1").await;
    let offered = open_composer(&with, "trigger-sms-2").await;

    // Assert
    assert_eq!(channel_values(&plain), ["email"]);
    assert!(
        plain.to_string().contains("Not available yet: SMS"),
        "{plain}"
    );
    assert!(
        !plain.to_string().contains("revival_value_sms"),
        "no SMS templates without SMS"
    );
    assert_eq!(channel_values(&offered), ["email", "sms"]);
    assert!(
        offered.to_string().contains("revival_value_sms"),
        "SMS marketing templates are offered with SMS"
    );
}

/// Two contacts who can be texted, one without a phone and one without SMS
/// consent, all tagged `spring`.
async fn spring_contacts(app: &TestApp) {
    let sms_consent = json!([{"channel": "sms", "granted": true, "source": "form", "text": "v1"}]);
    for (phone, first) in [("+14155550101", "Ada"), ("+14155550102", "Grace")] {
        add_contact(
            app,
            json!({"phone": phone, "external_id": format!("crm-{first}"), "first_name": first,
                   "last_name": "Test", "tags": ["spring"], "consent": sms_consent}),
        )
        .await;
    }
    add_contact(
        app,
        json!({"email": "hedy@example.com", "first_name": "Hedy", "tags": ["spring"],
               "consent": [{"channel": "email", "granted": true, "source": "form", "text": "v1"}]}),
    )
    .await;
    add_contact(
        app,
        json!({"phone": "+14155550104", "email": "nora@example.com", "first_name": "Nora", "tags": ["spring"],
               "consent": [{"channel": "email", "granted": true, "source": "form", "text": "v1"}]}),
    )
    .await;
}

fn sms_form(body: &str) -> Json {
    form(json!({
        "name": input("Spring hours"),
        "channel": select("sms"),
        "tags": input("spring"),
        "subject": null,
        "body": input(body),
    }))
}

storage_test!(
    an_sms_campaign_previews_segments_cost_and_time_and_queues_composed_texts,
    |db: TestDb| async move {
        // Arrange
        let app = spawn_on(db, Some(sms_core()), |_| {}).await;
        spring_contacts(&app).await;
        let view = open_composer(&app, "trigger-sms-3").await;

        // Act: a subject on a text; a GSM-7 text; the same with one emoji.
        let with_subject = submit(
            &app,
            &view,
            "VS0",
            form(json!({"name": input("Spring hours"), "channel": select("sms"), "tags": input("spring")})),
        )
        .await;
        let gsm = submit(
            &app,
            &view,
            "VS1",
            sms_form("Hi {{ first_name }}, our spring hours start Monday: 8am to 8pm."),
        )
        .await;
        let emoji = submit(
            &app,
            &view,
            "VS2",
            sms_form("Hi {{ first_name }} 🌷 our spring hours start Monday: 8am to 8pm."),
        )
        .await;

        // Assert: the preview.
        assert_eq!(with_subject["response_action"], "errors", "{with_subject}");
        assert!(
            with_subject["errors"]["subject"]
                .as_str()
                .unwrap()
                .contains("no subject"),
            "{with_subject}"
        );
        assert_eq!(gsm["response_action"], "update", "{gsm}");
        let shown = gsm["view"].to_string();
        for expected in [
            "*2* of 4 contacts",
            "no address for the channel: 1",
            "no consent: 1",
            "Acme: Hi Ada, our spring hours start Monday: 8am to 8pm.\\n>Reply STOP to opt out.",
            "1 segment, GSM-7",
            "*Cost:* about $0.02 (2 segments for 2 recipients at $0.0083 a segment).",
            "about 2 seconds at 1 msg/s",
        ] {
            assert!(shown.contains(expected), "{expected} missing: {shown}");
        }
        assert!(!shown.contains("UCS-2"), "{shown}");
        let shown = emoji["view"].to_string();
        // The one emoji switches the text to UCS-2 (70 a segment): two
        // segments each, twice the cost.
        for expected in [
            "2 segments, UCS-2",
            "a single emoji",
            "Acme: Hi Ada 🌷",
            "*Cost:* about $0.03 (4 segments for 2 recipients",
        ] {
            assert!(shown.contains(expected), "{expected} missing: {shown}");
        }

        // Act: request approval for the GSM-7 campaign.
        let done = submit(&app, &gsm["view"], "VS1", json!({})).await;
        app.drain_background().await;

        // Assert: the queued texts, composed once each.
        assert!(
            done["view"].to_string().contains("awaiting approval"),
            "{done}"
        );
        let rows = messages(&app).await;
        // The two who can be texted, and Nora (no consent: skipped at send
        // time with her reason); Hedy has no phone, so she is not submitted.
        assert_eq!(rows.len(), 3, "{rows:?}");
        for row in &rows {
            let text = text_of(&row.payload);
            assert_eq!(row.channel, "sms");
            assert!(text.starts_with("Acme: Hi "), "{text}");
            assert_eq!(text.matches("Acme").count(), 1, "{text}");
            assert!(text.ends_with(&format!("\n{FOOTER}")), "{text}");
            assert_eq!(text.matches(FOOTER).count(), 1, "{text}");
        }
        assert_eq!(
            text_of(&rows[0].payload),
            format!("Acme: Hi Ada, our spring hours start Monday: 8am to 8pm.\n{FOOTER}")
        );

        // Assert: the approval request shows the text as sent, and its cost.
        let posted = app.fake.calls_to("chat.postMessage");
        let request = posted
            .iter()
            .find(|c| c.body["channel"] == APPROVALS)
            .expect("the request was posted");
        let blocks = request.body["blocks"].to_string();
        for expected in [
            "Acme: Hi Ada, our spring hours start Monday: 8am to 8pm.\\nReply STOP to opt out.",
            "*This text:* 1 segment, GSM-7",
            "*Cost:* about $0.02 (3 segments for 3 recipients at $0.0083 a segment)",
        ] {
            assert!(blocks.contains(expected), "{expected} missing: {blocks}");
        }
        assert!(!blocks.contains("(no subject)"), "{blocks}");
    }
);

#[test]
fn quiet_hours_for_sms_default_to_eight_to_nine_recipient_local_and_spare_transactional_texts() {
    // Arrange: settings as a fresh install has them; a text claimed at
    // 21:30 in New York (01:30 UTC the next day in summer).
    let settings = Settings::load_from(&Default::default(), Requirements::Offline).unwrap();
    let now: DateTime<Utc> = "2026-06-03T01:30:00Z".parse().unwrap();
    let text = Claimed {
        id: "m1".into(),
        campaign_id: None,
        contact_id: None,
        channel: Channel::Sms,
        kind: MessageKind::Transactional,
        address: Some("+14155550100".into()),
        attempts: 0,
        payload: "{}".into(),
        provider: None,
        source: Some("api:x".into()),
    };

    // Act
    let verdicts = decide(
        &[text],
        &Facts::default(),
        &CapsSettings::default(),
        &settings.quiet_hours,
        now,
    );

    // Assert
    assert_eq!(
        settings.quiet_hours.sms,
        Some(Window {
            start: "08:00".into(),
            end: "21:00".into()
        })
    );
    assert_eq!(settings.quiet_hours.default_timezone, "America/New_York");
    // A verification code at 21:30 goes at once: quiet hours hold back
    // marketing only (the unit tests of `dispatcher::checks` show a
    // promotion waiting for 08:00).
    assert_eq!(
        verdicts,
        [Verdict::Send {
            to: "+14155550100".into()
        }],
        "a transactional text is not held until morning"
    );
}

#[tokio::test]
async fn a_nudge_can_be_an_sms_when_its_template_is_one() {
    // Arrange: Ada has a phone and SMS consent; SMS is carried.
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let app = spawn_on(db, Some(sms_core()), |_| {}).await;
    spring_contacts(&app).await;
    let ada = warmline::db::count(
        &app.app.db,
        "SELECT CAST(id AS BIGINT) AS n FROM contacts WHERE first_name = 'Ada'",
        vec![],
    )
    .await
    .unwrap();
    let mut p = crate::helpers::block_action("nudge_template");
    p["container"] = json!({"type": "view", "view_id": "VNUDGESMS"});
    p["view"]["id"] = "VNUDGESMS".into();
    p["view"]["type"] = "modal".into();
    p["view"]["callback_id"] = "nudge_modal".into();
    p["view"]["private_metadata"] = ada.to_string().into();
    p["view"]["title"] = json!({"type": "plain_text", "text": "Nudge"});
    p["actions"][0] = json!({
        "type": "static_select", "block_id": "template", "action_id": "nudge_template",
        "selected_option": {"text": {"type": "plain_text", "text": "SMS: check-in"}, "value": "revival_checkin_sms"},
        "action_ts": "6.1"
    });

    // Act (1): choose the SMS template.
    app.post_interaction(&p).await;
    app.drain_background().await;

    // Assert (1): an SMS preview, as sent, and no subject to fill.
    let updates = app.fake.calls_to("views.update");
    assert_eq!(updates.len(), 1);
    let view = updates[0].body["view"].clone();
    let shown = view.to_string();
    assert!(
        shown.contains(FOOTER),
        "the preview shows the text as sent: {shown}"
    );
    assert!(shown.contains("segment"), "{shown}");
    assert!(
        !shown.contains("\"block_id\":\"subject\""),
        "no subject for an SMS: {shown}"
    );

    // Act (2): submit it.
    let values = json!({
        "template": {"nudge_template": select("revival_checkin_sms")},
        "body": {"body": input("Hi {{ first_name }}, coffee next week?")},
    });
    let res = submit(&app, &view, "VNUDGESMS", values).await;
    app.drain_background().await;

    // Assert (2): an SMS send, through the approval policy.
    assert_eq!(res["response_action"], "update", "{res}");
    let channel = warmline::db::count(
        &app.app.db,
        "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM messages WHERE channel = 'sms' AND contact_id = $1",
        vec![ada.into()],
    )
    .await
    .unwrap();
    assert_eq!(channel, 1, "one SMS to Ada in the ledger");
}
