//! WhatsApp as a campaign channel (issue 15, "Templates" and "Limits:
//! messaging tier"), against the fake Graph API: `/warm whatsapp
//! templates` syncs every page and lists what campaigns can use (and a bad
//! token is named, the stored set still listed); the composer offers the
//! synced templates and maps their parameters, answering mistakes on their
//! fields; the preview renders for real recipients with the category,
//! consent and the people left out for an empty field; approval queues the
//! template in the ledger and the fake receives it; a campaign over the
//! messaging tier is refused at preview, and "Split across days" schedules
//! it in parts of at most the tier, 24 h apart. Every test runs on SQLite
//! and PostgreSQL.

use chrono::{Duration, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, FromQueryResult, Statement, Value};
use serde_json::{Value as Json, json};
use warmline::{
    dispatcher::ledger::{self, NewMessage},
    domain::{Channel, MessageKind, MessageState},
    providers::meta::fake::FakeMeta,
    settings::Settings,
    whatsapp::{
        sync,
        templates::{self, Template},
        tier,
    },
};

use crate::{
    campaigns::{add_contact, form, input, open_composer, select, submit},
    helpers::{TestApp, block_action, command_body},
    storage_test,
    test_db::TestDb,
    whatsapp::{WAIT, fake, spawn as spawn_wa},
};

const APPROVALS: &str = "C0APPROVE";
const APPROVER: &str = "U0APPROVER";

async fn spawn(db: TestDb, fake: &FakeMeta, f: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_wa(db, fake, |s| {
        s.slack.approvals_channel = Some(APPROVALS.into());
        s.slack.approvers = vec![APPROVER.into()];
        s.email.from = Some("Team <team@example.com>".into());
        f(s);
    })
    .await
}

/// A contact on WhatsApp, tagged `tag`, with WhatsApp consent unless
/// `consent` is false.
fn on_whatsapp(phone: &str, first: Option<&str>, tag: &str, consent: bool) -> Json {
    let mut c = json!({
        "phone": phone, "external_id": format!("wa-{phone}"), "tags": [tag], "last_name": "Test"
    });
    if let Some(f) = first {
        c["first_name"] = f.into();
    }
    if consent {
        c["consent"] =
            json!([{"channel": "whatsapp", "granted": true, "source": "form", "text": "v1"}]);
    }
    c
}

/// The composer once its WhatsApp templates are read (a loading view
/// opens, then `views.update` shows the form).
async fn open_whatsapp_composer(app: &TestApp, trigger: &str) -> Json {
    let loading = open_composer(app, trigger).await;
    assert!(loading.to_string().contains("Loading"), "{loading}");
    let updated = app.fake.calls_to("views.update");
    updated
        .last()
        .expect("the form replaces the loading view")
        .body["view"]
        .clone()
}

fn whatsapp_form(tag: &str, mapping: &str) -> Json {
    form(json!({
        "name": input("Spring on WhatsApp"),
        "channel": select("whatsapp"),
        "tags": input(tag),
        "subject": null, "body": null,
        "wa_template": select("spring_offer|en_US"),
        "wa_params": input(mapping),
    }))
}

fn preview_click(action: &str, draft_id: &str, view_id: &str) -> Json {
    let mut p = block_action(action);
    p["container"] = json!({"type": "view", "view_id": view_id});
    p["view"]["id"] = view_id.into();
    p["view"]["type"] = "modal".into();
    p["view"]["callback_id"] = "campaign_preview".into();
    p["view"]["private_metadata"] = draft_id.into();
    p["view"]["title"] = json!({"type": "plain_text", "text": "Preview"});
    p["trigger_id"] = format!("trigger-{action}").into();
    p["actions"][0]["value"] = draft_id.into();
    p["actions"][0]["action_ts"] = "1.1".into();
    p
}

async fn scalar(db: &DatabaseConnection, sql: &str) -> i64 {
    warmline::db::count(db, sql, vec![]).await.unwrap()
}

#[derive(Debug, FromQueryResult)]
struct Msg {
    contact_id: Option<i64>,
    kind: String,
    state: String,
    payload: String,
    template: Option<String>,
    next_attempt_at: chrono::DateTime<Utc>,
}

async fn campaign_messages(db: &DatabaseConnection) -> Vec<Msg> {
    Msg::find_by_statement(Statement::from_string(
        db.get_database_backend(),
        "SELECT contact_id, kind, state, payload, template, next_attempt_at FROM messages \
         WHERE campaign_id IS NOT NULL ORDER BY contact_id",
    ))
    .all(db)
    .await
    .unwrap()
}

/// `n` people reached by a WhatsApp template in the last hours (addresses
/// only, as a message without a contact), recorded as sent.
async fn reached_already(db: &DatabaseConnection, n: usize) {
    let now = Utc::now();
    let msgs: Vec<NewMessage> = (0..n)
        .map(|i| NewMessage {
            source: "history:tier".into(),
            campaign_id: None,
            contact_id: None,
            channel: Channel::Whatsapp,
            kind: MessageKind::Marketing,
            address: Some(format!("+1650555{i:04}")),
            provider: "whatsapp".into(),
            payload: json!({"text": "Hi", "template": {"name": "spring_offer", "language": "en_US", "category": "MARKETING", "parameters": ["x"]}}),
            template: None,
            // No worker claims it while it is made `sent` below.
            state: MessageState::AwaitingApproval,
            due_at: now,
        })
        .collect();
    ledger::enqueue(db, &msgs, now).await.unwrap();
    db.execute_raw(Statement::from_sql_and_values(
        db.get_database_backend(),
        "UPDATE messages SET state = 'sent', sent_at = $1 WHERE source = 'history:tier'",
        [Value::from(now - Duration::hours(3))],
    ))
    .await
    .unwrap();
}

storage_test!(
    whatsapp_templates_syncs_every_page_and_lists_what_campaigns_can_use,
    |db: TestDb| async move {
        // Arrange: 203 templates (3 pages of 100), one pending, one with a
        // named parameter, one without a body.
        let fake = fake().await;
        for i in 0..198 {
            fake.register_template(
                &format!("zz_note_{i:03}"),
                "en_US",
                "UTILITY",
                "APPROVED",
                "Your note {{1}} is ready.",
            );
        }
        fake.register_template("pending_one", "en_US", "MARKETING", "PENDING", "Soon {{1}}");
        fake.register_template(
            "named_one",
            "en_US",
            "MARKETING",
            "APPROVED",
            "Hi {{first_name}}",
        );
        fake.register_template("empty_one", "en_US", "MARKETING", "APPROVED", "");
        let app = spawn(db, &fake, |_| {}).await;
        app.drain_background().await;

        // Act
        let res = app
            .post_command_form(command_body("whatsapp templates"))
            .await;
        assert_eq!(res.status(), 200);
        let ack: Json = res.json().await.unwrap();
        app.drain_background().await;

        // Assert
        assert!(ack.to_string().contains("Syncing"), "{ack}");
        let posted = app.fake.calls_to("chat.postEphemeral");
        let shown = posted.last().expect("the list is posted").body.to_string();
        assert!(
            shown.contains("Synced 203 WhatsApp templates (3 pages)"),
            "{shown}"
        );
        assert!(
            shown.contains("*spring_offer* (en_US) · Marketing · APPROVED"),
            "{shown}"
        );
        assert!(
            shown.contains("Hi {{1}}, spring is here"),
            "first line: {shown}"
        );
        assert!(shown.contains("its status is PENDING"), "{shown}");
        assert!(shown.contains("it uses named parameters"), "{shown}");
        assert!(
            shown.contains("…and "),
            "more than the message holds: {shown}"
        );
        let stored = templates::all(&app.app.db).await.unwrap();
        assert_eq!(stored.len(), 203);
        assert_eq!(templates::usable(&app.app.db).await.unwrap().len(), 201);
    }
);

storage_test!(
    a_refused_token_is_named_and_the_stored_set_still_listed,
    |db: TestDb| async move {
        // Arrange: a set synced before, then a token Meta refuses.
        let fake = fake().await;
        let before = Template::from_graph(&json!({
            "name": "kept_template", "language": "en_US", "status": "APPROVED",
            "category": "UTILITY", "components": [{"type": "BODY", "text": "Kept {{1}}"}]
        }))
        .unwrap();
        templates::replace_all(&db.db, &[before], Utc::now() - Duration::days(1))
            .await
            .unwrap();
        let app = spawn(db, &fake, |s| {
            s.providers.whatsapp.access_token = Some("EAAexpired".to_string().into());
        })
        .await;
        app.drain_background().await;

        // Act
        let direct = sync::sync(&app.app).await;
        app.post_command_form(command_body("whatsapp templates"))
            .await;
        app.drain_background().await;

        // Assert
        let err = direct.unwrap_err();
        assert!(matches!(err, sync::SyncError::Token { .. }), "{err:?}");
        let shown = app
            .fake
            .calls_to("chat.postEphemeral")
            .last()
            .expect("posted")
            .body
            .to_string();
        assert!(shown.contains("code 190"), "{shown}");
        assert!(shown.contains("WHATSAPP_ACCESS_TOKEN"), "{shown}");
        assert!(shown.contains("stored at"), "{shown}");
        assert!(shown.contains("kept_template"), "{shown}");
        assert!(!shown.contains("EAAexpired"), "the token is never shown");
        assert_eq!(templates::all(&app.app.db).await.unwrap().len(), 1);
    }
);

storage_test!(
    a_whatsapp_campaign_goes_from_composer_to_the_ledger_as_the_template,
    |db: TestDb| async move {
        // Arrange: three who will receive it, one without WhatsApp consent,
        // one without a first name (the template's only parameter).
        let fake = fake().await;
        // One approver decides (a new template's risk would ask for two).
        let app = spawn(db, &fake, |s| s.approval.two_approvers_at_risk = 10).await;
        app.drain_background().await;
        sync::sync(&app.app).await.expect("synced");
        let mut receiving = Vec::new();
        for (i, name) in ["Ada", "Grace", "Hedy"].into_iter().enumerate() {
            let phone = format!("+1415555{i:04}");
            receiving.push(add_contact(&app, on_whatsapp(&phone, Some(name), "wa", true)).await);
        }
        add_contact(&app, on_whatsapp("+14155550100", Some("Nora"), "wa", false)).await;
        add_contact(&app, on_whatsapp("+14155550101", None, "wa", true)).await;
        let view = open_whatsapp_composer(&app, "trigger-wa-1").await;

        // Act
        let wrong_count = submit(
            &app,
            &view,
            "VW",
            whatsapp_form("wa", "1=first_name, 2=company"),
        )
        .await;
        let unknown = submit(&app, &view, "VW", whatsapp_form("wa", "1=shoe_size")).await;
        let with_body = submit(&app, &view, "VW", {
            let mut f = whatsapp_form("wa", "1=first_name");
            f["body"] = json!({"body": input("Hello")});
            f
        })
        .await;
        let preview = submit(&app, &view, "VW", whatsapp_form("wa", "1=first_name")).await;
        let queued = submit(&app, &preview["view"], "VW", json!({})).await;
        app.drain_background().await;
        let approval_id = scalar(
            &app.app.db,
            "SELECT CAST(MAX(id) AS BIGINT) AS n FROM approvals",
        )
        .await;
        let res = app
            .post_interaction(&crate::approvals::click(
                "approval_approve",
                approval_id,
                APPROVER,
                "9.1",
            ))
            .await;
        assert_eq!(res.status(), 200);
        app.drain_background().await;
        let delivered = fake.wait_for_accepted(3, WAIT).await;

        // Assert: the form.
        let form_text = view.to_string();
        assert!(
            form_text.contains("spring_offer (en_US) · Marketing"),
            "{form_text}"
        );
        assert!(
            form_text.contains("Instagram allows no cold outreach"),
            "{form_text}"
        );
        assert!(
            !form_text.contains("\"value\":\"instagram\""),
            "never offered: {form_text}"
        );
        assert_eq!(wrong_count["response_action"], "errors", "{wrong_count}");
        assert!(
            wrong_count["errors"]["wa_params"]
                .as_str()
                .unwrap()
                .contains("takes 1 parameter"),
            "{wrong_count}"
        );
        assert!(
            unknown["errors"]["wa_params"]
                .as_str()
                .unwrap()
                .contains("unknown field 'shoe_size'"),
            "{unknown}"
        );
        assert!(
            with_body["errors"]["body"]
                .as_str()
                .unwrap()
                .contains("WhatsApp"),
            "{with_body}"
        );
        // The preview.
        assert_eq!(preview["response_action"], "update", "{preview}");
        let shown = preview["view"].to_string();
        assert!(
            shown.contains("Hi Ada, spring is here: 20% off this week."),
            "{shown}"
        );
        assert_eq!(shown.matches("*To:*").count(), 3, "{shown}");
        assert!(shown.contains("*Marketing*"), "{shown}");
        assert!(shown.contains("1 recipient lacks it"), "consent: {shown}");
        assert!(
            shown.contains("empty template field (first_name): 1"),
            "{shown}"
        );
        assert!(
            shown.contains("*Messaging tier:* 250 people / 24 h"),
            "{shown}"
        );
        assert!(
            queued["view"].to_string().contains("awaiting approval"),
            "{queued}"
        );
        let request = app
            .fake
            .calls_to("chat.postMessage")
            .into_iter()
            .find(|c| c.body["channel"] == APPROVALS)
            .expect("an approval request")
            .body
            .to_string();
        assert!(request.contains("Hi Ada, spring is here"), "{request}");
        assert!(!request.contains("(no subject)"), "{request}");
        // The ledger: the template with each one's parameter, marketing.
        let msgs = campaign_messages(&app.app.db).await;
        assert_eq!(
            msgs.len(),
            4,
            "the three and the one without consent: {msgs:?}"
        );
        for m in &msgs {
            assert_eq!(m.kind, "marketing");
            assert_eq!(m.template.as_deref(), Some("whatsapp:spring_offer/en_US"));
        }
        let ada: Json = serde_json::from_str(
            &msgs
                .iter()
                .find(|m| m.contact_id == Some(receiving[0]))
                .unwrap()
                .payload,
        )
        .unwrap();
        assert_eq!(ada["template"]["name"], "spring_offer");
        assert_eq!(ada["template"]["parameters"], json!(["Ada"]));
        assert_eq!(ada["text"], "Hi Ada, spring is here: 20% off this week.");
        assert!(
            delivered,
            "the fake accepted three: {:?}; {msgs:?}",
            fake.accepted()
        );
        let mut sent: Vec<String> = fake
            .accepted()
            .iter()
            .flat_map(|a| a.parameters.clone())
            .collect();
        sent.sort();
        assert_eq!(sent, ["Ada", "Grace", "Hedy"]);
        assert!(
            msgs.iter().all(|m| m.state != "awaiting_approval"),
            "{msgs:?}"
        );
    }
);

storage_test!(
    a_campaign_over_the_tier_is_refused_at_preview_and_split_across_days,
    |db: TestDb| async move {
        // Arrange: 248 of the 250 reached in the last 24 h; five new people.
        let fake = fake().await;
        let app = spawn(db, &fake, |s| s.approval.two_approvers_at_risk = 10).await;
        app.drain_background().await;
        sync::sync(&app.app).await.expect("synced");
        reached_already(&app.app.db, 248).await;
        for i in 0..5 {
            let phone = format!("+1415555{i:04}");
            add_contact(&app, on_whatsapp(&phone, Some("Pat"), "tier", true)).await;
        }
        let view = open_whatsapp_composer(&app, "trigger-wa-2").await;

        // Act: the preview, a submit anyway, then Split across days.
        let preview = submit(&app, &view, "VT", whatsapp_form("tier", "1=first_name")).await;
        let forced = submit(&app, &preview["view"], "VT", json!({})).await;
        let draft_id = preview["view"]["private_metadata"]
            .as_str()
            .unwrap()
            .to_string();
        let res = app
            .post_interaction(&preview_click("campaign_split", &draft_id, "VT"))
            .await;
        assert_eq!(res.status(), 200);
        app.drain_background().await;
        let split = app.fake.calls_to("views.update").last().unwrap().body["view"].clone();
        let before = Utc::now();
        let done = submit(&app, &split, "VT", json!({})).await;
        app.drain_background().await;
        let awaiting = campaign_messages(&app.app.db).await;
        let approval_id = scalar(
            &app.app.db,
            "SELECT CAST(MAX(id) AS BIGINT) AS n FROM approvals",
        )
        .await;
        app.post_interaction(&crate::approvals::click(
            "approval_approve",
            approval_id,
            APPROVER,
            "7.1",
        ))
        .await;
        app.drain_background().await;
        let released = campaign_messages(&app.app.db).await;

        // Assert: refused, with the numbers, and nothing queued.
        let shown = preview["view"].to_string();
        assert!(
            shown.contains("WhatsApp's messaging tier (250 people / 24 h) lets this number start 2 more conversations now; this campaign would start 5"),
            "{shown}"
        );
        assert!(
            preview["view"].get("submit").is_none(),
            "no submit: {shown}"
        );
        assert!(shown.contains("Split across days"), "{shown}");
        assert!(
            forced["view"].to_string().contains("Nothing was queued"),
            "{forced}"
        );
        // The split: submittable, 2 now and 3 a day later.
        assert_eq!(split["submit"]["text"], "Request approval", "{split}");
        assert!(split.to_string().contains("Split across 2 days"), "{split}");
        assert!(
            done["view"].to_string().contains("awaiting approval"),
            "{done}"
        );
        let msgs = awaiting;
        assert_eq!(msgs.len(), 5);
        let later: Vec<_> = msgs
            .iter()
            .filter(|m| m.next_attempt_at > before + Duration::hours(23))
            .collect();
        assert_eq!(later.len(), 3, "{msgs:?}");
        assert!(
            later
                .iter()
                .all(|m| m.next_attempt_at < before + Duration::hours(25))
        );
        assert_eq!(msgs.len() - later.len(), 2, "at most what remained today");
        // Approved: the day-after part stays scheduled a day later.
        let scheduled: Vec<_> = released.iter().filter(|m| m.state == "scheduled").collect();
        assert_eq!(scheduled.len(), 3, "{released:?}");
        assert!(
            scheduled
                .iter()
                .all(|m| m.next_attempt_at > before + Duration::hours(23))
        );
        assert!(
            released.iter().filter(|m| m.state != "scheduled").count() == 2,
            "{released:?}"
        );
        // Each 24 h holds at most the tier: 248 + at most the 2 of today.
        let reached = tier::reached(&app.app.db, Utc::now()).await.unwrap();
        assert!(reached <= 250, "{reached}");
    }
);

storage_test!(
    the_tier_counts_unique_people_of_template_messages_in_24_hours,
    |db: TestDb| async move {
        // Arrange
        let conn = db.db.clone();
        let now = Utc::now();
        let payload_t = json!({"text": "Hi", "template": {"name": "t", "language": "en_US", "category": "UTILITY", "parameters": []}});
        let payload_text = json!({"text": "free-form \"template\":{ words"});
        let msg = |source: &str, contact: Option<i64>, address: Option<&str>, payload: &Json| {
            NewMessage {
                source: source.into(),
                campaign_id: None,
                contact_id: contact,
                channel: Channel::Whatsapp,
                kind: MessageKind::Transactional,
                address: address.map(str::to_string),
                provider: "whatsapp".into(),
                payload: payload.clone(),
                template: None,
                state: MessageState::AwaitingApproval,
                due_at: now,
            }
        };
        let msgs = vec![
            msg("a", Some(1), None, &payload_t),
            msg("b", Some(1), None, &payload_t),
            msg("c", None, Some("+16505550000"), &payload_t),
            msg("d", Some(2), None, &payload_text),
            msg("e", Some(3), None, &payload_t),
            msg("f", Some(4), None, &payload_t),
        ];
        ledger::enqueue(&conn, &msgs, now).await.unwrap();
        let set = |source: &str, state: &str, at: chrono::DateTime<Utc>| {
            let conn = conn.clone();
            let sql = format!(
                "UPDATE messages SET state = '{state}', sent_at = $1 WHERE source = '{source}'"
            );
            async move {
                conn.execute_raw(Statement::from_sql_and_values(
                    conn.get_database_backend(),
                    sql,
                    [Value::from(at)],
                ))
                .await
                .unwrap();
            }
        };
        set("a", "sent", now - Duration::hours(1)).await;
        set("b", "delivered", now - Duration::hours(2)).await;
        set("c", "sending", now - Duration::minutes(1)).await;
        set("d", "sent", now - Duration::hours(1)).await;
        set("e", "failed", now - Duration::hours(1)).await;
        set("f", "sent", now - Duration::hours(25)).await;

        // Act
        let reached = tier::reached(&conn, now).await.unwrap();
        let remaining = tier::remaining(&conn, Default::default(), now)
            .await
            .unwrap();
        let already = tier::already_reached(&conn, &[1, 2, 3, 4], now)
            .await
            .unwrap();

        // Assert: contact 1 once, the address once; text, failed and old
        // messages started nothing.
        assert_eq!(reached, 2);
        assert_eq!(remaining, Some(248));
        assert_eq!(already.into_iter().collect::<Vec<_>>(), [1]);
        assert_eq!(
            tier::remaining(&conn, warmline::whatsapp::MessagingTier::UNLIMITED, now)
                .await
                .unwrap(),
            None
        );
    }
);
