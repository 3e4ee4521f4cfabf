//! The conversation side of WhatsApp and Instagram (issue 15): answering a
//! message from Slack inside and outside each channel's window (text,
//! templates, HUMAN_AGENT, nothing), the window and consent re-checked on
//! submit, linking an unknown Instagram sender to a contact, and the
//! doctor's and `/warm status`'s Meta rows. Every test runs on SQLite and
//! PostgreSQL.
//!
//! The channels are carried by the test provider (`TestProvider::carrying`)
//! so what reaches "Meta" is read from its core. Time: the app's clock is
//! process-wide and only the sandbox may move it, so a conversation's age
//! is set by the `received_at` of the person's message (the window is read
//! from it), and "time passing while a modal is open" moves that message
//! back by the same amount.

use std::sync::Arc;

use chrono::{Duration, Utc};
use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait, FromQueryResult, Statement, Value};
use serde_json::{Value as Json, json};
use warmline::{
    consent::{self, Source},
    db::entities::contacts,
    domain::Channel,
    providers::{
        Registry,
        test_provider::{Behaviour, Core, TestProvider},
    },
    settings::Settings,
    whatsapp::templates::{self, Template},
};

use crate::{
    approvals::click,
    fake_slack::WAIT,
    helpers::{TEAM, TestApp, spawn_app_with_registry},
    storage_test,
    test_db::TestDb,
};

const KEY: &str = "convo-key";
const APPROVER: &str = "U0APPROVER";
const APPROVALS: &str = "C0APPROVE";
const ADA_PHONE: &str = "+14155552671";
const BOB_PHONE: &str = "+14155552672";

struct Convo {
    t: TestApp,
    whatsapp: Arc<Core>,
    instagram: Arc<Core>,
}

async fn spawn(db: TestDb, meta: bool, f: impl FnOnce(&mut Settings)) -> Convo {
    let whatsapp = Core::new(Behaviour::default());
    let instagram = Core::new(Behaviour::default());
    let mut registry = Registry::new();
    registry.register(Arc::new(TestProvider::in_process(Core::new(
        Behaviour::default(),
    ))));
    if meta {
        registry.register(Arc::new(
            TestProvider::in_process(whatsapp.clone()).carrying(Channel::Whatsapp),
        ));
        registry.register(Arc::new(
            TestProvider::in_process(instagram.clone()).carrying(Channel::Instagram),
        ));
    }
    let t = spawn_app_with_registry(
        db,
        |s| {
            s.api.keys = vec![KEY.into()];
            s.slack.approvals_channel = Some(APPROVALS.into());
            s.slack.approvers = vec![APPROVER.into()];
            s.email.from = Some("Acme <team@example.com>".into());
            f(s);
        },
        Some(registry),
    )
    .await;
    Convo {
        t,
        whatsapp,
        instagram,
    }
}

impl Convo {
    fn db(&self) -> &sea_orm::DatabaseConnection {
        &self.t.app.db
    }

    async fn contact(&self, first: &str, email: &str, phone: Option<&str>) -> i64 {
        let now = Utc::now();
        contacts::Entity::insert(contacts::ActiveModel {
            email: Set(Some(email.into())),
            phone: Set(phone.map(str::to_string)),
            first_name: Set(Some(first.into())),
            status: Set("active".into()),
            tags: Set("[]".into()),
            metadata: Set("{}".into()),
            warmth: Set(0.0),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        })
        .exec(self.db())
        .await
        .unwrap()
        .last_insert_id
    }

    /// A message from `from` on `channel`, `age` ago, through the one
    /// inbound entry point; returns its `inbound_messages` id.
    async fn writes(&self, channel: &str, from: &str, text: &str, age: Duration) -> i64 {
        let res = self
            .t
            .client
            .post(self.t.url("/api/v1/inbound"))
            .bearer_auth(KEY)
            .json(&json!({"channel": channel, "from": from, "text": text,
                          "received_at": (Utc::now() - age).to_rfc3339()}))
            .send()
            .await
            .unwrap();
        let status = res.status();
        let body: Json = res.json().await.unwrap();
        assert_eq!(status, 200, "{body}");
        body["id"]
            .as_i64()
            .unwrap_or_else(|| panic!("no id in {body}"))
    }

    async fn count(&self, sql: &str, values: Vec<Value>) -> i64 {
        warmline::db::count(self.db(), sql, values).await.unwrap()
    }

    /// Clicks Answer as the approver; the view it opened, if any.
    async fn open_answer(&self, inbound: i64, ts: &str) -> Option<Json> {
        let before = self.t.fake.calls_to("views.open").len();
        let eph_before = self.t.fake.calls_to("chat.postEphemeral").len();
        let res = self
            .t
            .post_interaction(&click("inbound_answer", inbound, APPROVER, ts))
            .await;
        assert_eq!(res.status(), 200);
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let opened = self.t.fake.calls_to("views.open");
            if opened.len() > before {
                return Some(opened[before].body["view"].clone());
            }
            if self.t.fake.calls_to("chat.postEphemeral").len() > eph_before {
                return None;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no answer to the click"
            );
            tokio::task::yield_now().await;
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// Submits an opened view with `values` as its state.
    async fn submit(&self, view: &Json, values: Json, trigger: &str) -> Json {
        let mut v = view.clone();
        for (k, val) in [
            ("id", "VCONVO"),
            ("team_id", TEAM),
            ("hash", "1.1"),
            ("root_view_id", "VCONVO"),
            ("app_id", "A0FAKE"),
            ("bot_id", "B0FAKE"),
        ] {
            v[k] = val.into();
        }
        v["state"] = json!({ "values": values });
        let payload = json!({
            "type": "view_submission",
            "team": {"id": TEAM, "domain": "example"},
            "user": {"id": APPROVER, "username": "a", "name": "a", "team_id": TEAM},
            "api_app_id": "A0FAKE",
            "token": "XXYYZZ",
            "trigger_id": trigger,
            "view": v,
        });
        let res = self.t.post_interaction(&payload).await;
        assert_eq!(res.status(), 200);
        let text = res.text().await.unwrap();
        if text.is_empty() {
            Json::Null
        } else {
            serde_json::from_str(&text).unwrap()
        }
    }

    async fn answers(&self) -> Vec<AnswerRow> {
        AnswerRow::find_by_statement(Statement::from_string(
            self.db().get_database_backend(),
            "SELECT channel, kind, address, contact_id, payload FROM messages \
             WHERE source LIKE 'answer:%' ORDER BY created_at, id",
        ))
        .all(self.db())
        .await
        .unwrap()
    }
}

#[derive(Debug, FromQueryResult)]
struct AnswerRow {
    channel: String,
    kind: String,
    address: Option<String>,
    contact_id: Option<i64>,
    payload: String,
}

impl AnswerRow {
    fn payload(&self) -> Json {
        serde_json::from_str(&self.payload).unwrap()
    }
}

fn text_value(block: &str, value: &str) -> Json {
    json!({ block: { block: {"type": "plain_text_input", "value": value} } })
}

fn answer(value: &str) -> Json {
    text_value("answer", value)
}

/// The template block chosen, and parameter inputs.
fn template_values(value: &str, params: &[&str]) -> Json {
    let mut v = json!({"template": {"inbound_answer_template": {"type": "static_select",
        "selected_option": {"text": {"type": "plain_text", "text": value}, "value": value}}}});
    for (i, p) in params.iter().enumerate() {
        let block = format!("param_{}", i + 1);
        v[&block] = json!({"value": {"type": "plain_text_input", "value": p}});
    }
    v
}

async fn seed_templates(db: &sea_orm::DatabaseConnection) {
    let graph = [
        json!({"name": "follow_up", "language": "en_US", "category": "UTILITY", "status": "APPROVED",
               "components": [{"type": "BODY", "text": "Hi {{1}}, following up about {{2}}."}]}),
        json!({"name": "spring_offer", "language": "en_US", "category": "MARKETING", "status": "APPROVED",
               "components": [{"type": "BODY", "text": "Hi {{1}}, spring is here."}]}),
        json!({"name": "draft_one", "language": "en_US", "category": "UTILITY", "status": "PENDING",
               "components": [{"type": "BODY", "text": "Not yet."}]}),
    ];
    let parsed: Vec<Template> = graph
        .iter()
        .map(|g| Template::from_graph(g).unwrap())
        .collect();
    templates::replace_all(db, &parsed, Utc::now())
        .await
        .unwrap();
}

async fn grant(db: &sea_orm::DatabaseConnection, contact: i64, channel: &str) {
    consent::record(db, contact, channel, true, Source::Form, None, Some("v1"))
        .await
        .unwrap();
}

storage_test!(
    whatsapp_answers_are_text_inside_the_window_and_a_template_outside,
    |db: TestDb| async move {
        // Arrange: Ada wrote an hour ago; Bob 30 hours ago.
        let c = spawn(db, true, |_| {}).await;
        seed_templates(c.db()).await;
        let ada = c.contact("Ada", "ada@example.com", Some(ADA_PHONE)).await;
        let bob = c.contact("Bob", "bob@example.com", Some(BOB_PHONE)).await;
        let ada_says = c
            .writes(
                "whatsapp",
                "14155552671",
                "Can we talk?",
                Duration::hours(1),
            )
            .await;
        let bob_says = c
            .writes("whatsapp", "14155552672", "Thanks!", Duration::hours(30))
            .await;
        let notices = c.t.fake.wait_for_calls("chat.postMessage", 2).await;

        // Act (1): answer Ada inside the window.
        let ada_view = c.open_answer(ada_says, "1.1").await.expect("a modal");
        let ada_done = c.submit(&ada_view, answer("Yes, Tuesday."), "t-ada").await;

        // Act (2): answer Bob outside it: a template, one parameter missing,
        // then both.
        let bob_view = c.open_answer(bob_says, "1.2").await.expect("a modal");
        let missing = c
            .submit(
                &bob_view,
                template_values("follow_up|en_US", &["Bob", ""]),
                "t-bob-1",
            )
            .await;
        let bob_text = c
            .submit(&bob_view, answer("Hello again"), "t-bob-text")
            .await;
        let chosen = answer_choose(&c, bob_says, "spring_offer|en_US", "1.3").await;
        let marketing = c
            .submit(
                &chosen,
                template_values("spring_offer|en_US", &["Bob"]),
                "t-bob-mkt",
            )
            .await;
        let bob_done = c
            .submit(
                &bob_view,
                template_values("follow_up|en_US", &["Bob", "the demo"]),
                "t-bob-2",
            )
            .await;

        // Assert: both notices carry Answer; Ada's modal is free text and
        // says until when; Bob's offers only the usable templates, with
        // the first parameter pre-filled from the contact.
        assert!(
            notices
                .iter()
                .all(|n| n.body.to_string().contains("inbound_answer")),
            "{notices:?}"
        );
        let ada_modal = ada_view.to_string();
        assert!(ada_modal.contains("\"block_id\":\"answer\""), "{ada_modal}");
        assert!(
            ada_modal.contains("free-form text is allowed until"),
            "{ada_modal}"
        );
        let bob_modal = bob_view.to_string();
        assert!(
            !bob_modal.contains("\"block_id\":\"answer\""),
            "{bob_modal}"
        );
        assert!(bob_modal.contains("24 hours"), "{bob_modal}");
        assert!(bob_modal.contains("follow_up|en_US"), "{bob_modal}");
        assert!(bob_modal.contains("spring_offer|en_US"), "{bob_modal}");
        assert!(
            !bob_modal.contains("draft_one"),
            "a pending template is not offered"
        );
        assert!(
            bob_modal.contains("\"initial_value\":\"Bob\""),
            "{bob_modal}"
        );
        assert_eq!(ada_done["response_action"], "update", "{ada_done}");
        assert_eq!(missing["response_action"], "errors", "{missing}");
        assert!(missing["errors"]["param_2"].is_string(), "{missing}");
        assert_eq!(
            bob_text["response_action"], "errors",
            "free text outside the window: {bob_text}"
        );
        assert_eq!(bob_done["response_action"], "update", "{bob_done}");
        let chosen_s = chosen.to_string();
        assert!(chosen_s.contains("spring is here"), "{chosen_s}");
        assert!(
            chosen_s.contains("param_1") && !chosen_s.contains("param_2"),
            "{chosen_s}"
        );
        assert_eq!(marketing["response_action"], "errors", "{marketing}");
        assert!(
            marketing
                .to_string()
                .contains("needs their WhatsApp consent"),
            "no WhatsApp consent on record for Bob: {marketing}"
        );

        // Assert: the ledger holds a text and a template, each to the
        // number that wrote, and both reach the provider.
        let answers = c.answers().await;
        assert_eq!(answers.len(), 2, "{answers:?}");
        assert_eq!(answers[0].channel, "whatsapp");
        assert_eq!(answers[0].kind, "transactional");
        assert_eq!(answers[0].address.as_deref(), Some(ADA_PHONE));
        assert_eq!(answers[0].contact_id, Some(ada));
        assert_eq!(answers[0].payload(), json!({"text": "Yes, Tuesday."}));
        let template = answers[1].payload();
        assert_eq!(answers[1].contact_id, Some(bob));
        assert_eq!(answers[1].address.as_deref(), Some(BOB_PHONE));
        assert_eq!(answers[1].kind, "transactional", "a utility template");
        assert_eq!(template["template"]["name"], "follow_up");
        assert_eq!(
            template["template"]["parameters"],
            json!(["Bob", "the demo"])
        );
        assert_eq!(template["text"], "Hi Bob, following up about the demo.");
        assert!(c.whatsapp.wait_for_accepted(2, WAIT).await, "both sent");
    }
);

storage_test!(
    instagram_answers_are_text_then_human_agent_then_refused,
    |db: TestDb| async move {
        // Arrange: three unknown Instagram senders: an hour, three days and
        // eight days ago.
        let c = spawn(db, true, |_| {}).await;
        let fresh = c
            .writes(
                "instagram",
                "17841400000000001",
                "Love it",
                Duration::hours(1),
            )
            .await;
        let older = c
            .writes(
                "instagram",
                "17841400000000002",
                "Price?",
                Duration::days(3),
            )
            .await;
        let stale = c
            .writes(
                "instagram",
                "17841400000000003",
                "Hello?",
                Duration::days(8),
            )
            .await;
        let notices = c.t.fake.wait_for_calls("chat.postMessage", 3).await;

        // Act
        let fresh_view = c.open_answer(fresh, "2.1").await.expect("a modal");
        let fresh_done = c.submit(&fresh_view, answer("Thank you!"), "t-f").await;
        let older_view = c.open_answer(older, "2.2").await.expect("a modal");
        let older_done = c
            .submit(&older_view, answer("Sorry for the wait: 40 €."), "t-o")
            .await;
        let stale_view = c.open_answer(stale, "2.3").await;

        // Assert: every notice offers Answer and Link (unknown senders).
        for n in &notices {
            let body = n.body.to_string();
            assert!(
                body.contains("inbound_answer") && body.contains("inbound_link"),
                "{body}"
            );
        }
        assert_eq!(fresh_done["response_action"], "update");
        assert_eq!(older_done["response_action"], "update");
        assert!(older_view.to_string().contains("HUMAN_AGENT"));
        assert!(stale_view.is_none(), "no modal after 7 days");
        let told = c.t.fake.calls_to("chat.postEphemeral");
        assert!(
            told.last().unwrap().body.to_string().contains("7 days"),
            "{told:?}"
        );
        let answers = c.answers().await;
        assert_eq!(answers.len(), 2, "{answers:?}");
        assert!(answers.iter().all(|a| a.channel == "instagram"
            && a.kind == "transactional"
            && a.contact_id.is_none()));
        assert_eq!(answers[0].address.as_deref(), Some("17841400000000001"));
        assert_eq!(answers[0].payload(), json!({"text": "Thank you!"}));
        assert_eq!(answers[1].address.as_deref(), Some("17841400000000002"));
        assert_eq!(answers[1].payload()["tag"], "HUMAN_AGENT");
        assert!(c.instagram.wait_for_accepted(2, WAIT).await);
    }
);

storage_test!(
    an_answer_submitted_after_the_window_closed_is_refused,
    |db: TestDb| async move {
        // Arrange: Ada wrote 23 hours ago; the modal opens on free text.
        let c = spawn(db, true, |_| {}).await;
        c.contact("Ada", "ada@example.com", Some(ADA_PHONE)).await;
        let said = c
            .writes("whatsapp", ADA_PHONE, "Still there?", Duration::hours(23))
            .await;
        c.t.fake.wait_for_calls("chat.postMessage", 1).await;
        let view = c.open_answer(said, "3.1").await.expect("a modal");
        assert!(view.to_string().contains("\"block_id\":\"answer\""));

        // Act: two hours pass before Send.
        c.t.app
            .db
            .execute_raw(Statement::from_sql_and_values(
                c.db().get_database_backend(),
                "UPDATE inbound_messages SET received_at = $1 WHERE id = $2",
                [
                    Value::from(Utc::now() - Duration::hours(25)),
                    Value::from(said),
                ],
            ))
            .await
            .unwrap();
        let late = c.submit(&view, answer("Yes!"), "t-late").await;

        // Assert
        assert_eq!(late["response_action"], "errors", "{late}");
        assert!(
            late["errors"]["answer"]
                .as_str()
                .unwrap()
                .contains("window closed"),
            "{late}"
        );
        assert!(c.answers().await.is_empty(), "nothing queued");
    }
);

storage_test!(
    a_person_who_sent_stop_gets_no_answer,
    |db: TestDb| async move {
        // Arrange: Ada (WhatsApp consent on record) writes, then STOP.
        let c = spawn(db, true, |_| {}).await;
        let ada = c.contact("Ada", "ada@example.com", Some(ADA_PHONE)).await;
        grant(c.db(), ada, "whatsapp").await;
        let said = c
            .writes("whatsapp", ADA_PHONE, "Hi there", Duration::minutes(5))
            .await;
        c.t.fake.wait_for_calls("chat.postMessage", 1).await;
        let view = c.open_answer(said, "4.1").await.expect("a modal");
        c.writes("whatsapp", ADA_PHONE, "STOP", Duration::minutes(1))
            .await;

        // Act
        let refused = c.submit(&view, answer("Wait!"), "t-stop").await;

        // Assert
        assert_eq!(refused["response_action"], "errors", "{refused}");
        assert!(
            refused["errors"]["answer"]
                .as_str()
                .unwrap()
                .contains("opted out"),
            "{refused}"
        );
        assert!(c.answers().await.is_empty());
    }
);

storage_test!(
    linking_an_unknown_instagram_sender_attaches_messages_and_warms_the_contact,
    |db: TestDb| async move {
        // Arrange: two DMs from a stranger; Ada has no Instagram id.
        let c = spawn(db, true, |_| {}).await;
        let ada = c.contact("Ada", "ada@example.com", Some(ADA_PHONE)).await;
        let igsid = "17841400000000009";
        let first = c
            .writes("instagram", igsid, "Saw your post", Duration::hours(2))
            .await;
        c.writes("instagram", igsid, "Is it still on?", Duration::hours(1))
            .await;
        c.t.fake.wait_for_calls("chat.postMessage", 2).await;
        let warmth_before = contacts::Entity::find_by_id(ada)
            .one(c.db())
            .await
            .unwrap()
            .unwrap()
            .warmth;

        // Act: Link, naming Ada by email; then the same again.
        c.t.post_interaction(&click("inbound_link", first, APPROVER, "5.1"))
            .await;
        let opened = c.t.fake.wait_for_calls("views.open", 1).await;
        let view = opened[0].body["view"].clone();
        let unknown = c
            .submit(&view, text_value("contact", "nobody@example.com"), "t-l0")
            .await;
        let linked = c
            .submit(&view, text_value("contact", "ada@example.com"), "t-l1")
            .await;
        let again = c
            .submit(&view, text_value("contact", "ada@example.com"), "t-l2")
            .await;
        let later = c
            .writes("instagram", igsid, "Great, see you", Duration::zero())
            .await;

        // Assert
        assert_eq!(view["callback_id"], "inbound_link_submit");
        assert_eq!(unknown["response_action"], "errors", "{unknown}");
        assert_eq!(linked["response_action"], "update", "{linked}");
        assert!(
            linked.to_string().contains("2 message(s) attached"),
            "{linked}"
        );
        assert!(again.to_string().contains("Already linked"), "{again}");
        let contact = contacts::Entity::find_by_id(ada)
            .one(c.db())
            .await
            .unwrap()
            .unwrap();
        let metadata: Json = serde_json::from_str(&contact.metadata).unwrap();
        assert_eq!(metadata["instagram_id"], igsid);
        assert!(
            contact.warmth > warmth_before,
            "{} > {warmth_before}",
            contact.warmth
        );
        assert_eq!(
            c.count(
                "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM inbound_messages WHERE contact_id = $1",
                vec![Value::from(ada)],
            )
            .await,
            3,
            "both earlier DMs attached, and the next one lands on Ada"
        );
        assert_eq!(
            c.count(
                "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM interactions WHERE contact_id = $1",
                vec![Value::from(ada)],
            )
            .await,
            3,
            "two on linking (once), one on arrival"
        );
        assert_eq!(
            c.count(
                "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM audit_log WHERE action = 'contact.instagram_linked'",
                vec![],
            )
            .await,
            1
        );
        assert!(later > first);
    }
);

storage_test!(
    the_doctor_and_status_show_whatsapp_and_instagram,
    |db: TestDb| async move {
        // Arrange: both carried, the verify token unset, templates synced.
        let c = spawn(db, true, |s| {
            s.meta.app_secret = Some("app-secret".to_string().into());
        })
        .await;
        seed_templates(c.db()).await;

        // Act
        let checks = warmline::doctor::run(&c.t.app).await.unwrap();
        let status = warmline::slack::setup_status::gather(&c.t.app, Utc::now())
            .await
            .unwrap();

        // Assert: the doctor's rows.
        let line = |channel: &str, item: &str| {
            checks
                .iter()
                .find(|k| k.channel == channel && k.item == item)
                .unwrap_or_else(|| panic!("no {channel} · {item} in {checks:#?}"))
                .clone()
        };
        let templates = line("whatsapp", "templates synced");
        assert!(templates.passed, "{templates:?}");
        assert!(
            templates
                .reason
                .contains("3 template(s), 2 approved, 2 usable"),
            "{templates:?}"
        );
        let tier = line("whatsapp", "messaging tier").reason;
        assert!(
            tier.contains("250") && tier.contains("0 reached in the last 24 h"),
            "{tier}"
        );
        assert!(
            line("whatsapp", "conversation window")
                .reason
                .contains("free-form only within 24 h")
        );
        assert!(
            line("instagram", "conversation window")
                .reason
                .starts_with("answers only")
        );
        assert!(!line("instagram", "webhook verify token").passed);
        // And the status's.
        let rows: Vec<String> = status
            .sections
            .iter()
            .filter(|s| s.title == "WhatsApp" || s.title == "Instagram")
            .flat_map(|s| {
                s.rows
                    .iter()
                    .map(move |r| format!("{}: {}", s.title, r.line()))
            })
            .collect();
        let all = rows.join("\n");
        assert!(
            all.contains("WhatsApp: :white_check_mark: *Templates*: 3 template(s)"),
            "{all}"
        );
        assert!(
            all.contains("WhatsApp: :white_check_mark: *Messaging tier*"),
            "{all}"
        );
        assert!(
            all.contains("Instagram: :white_check_mark: *Conversation window*: answers only"),
            "{all}"
        );
        assert!(
            all.contains("*Webhook verify token*") && all.contains("`META_VERIFY_TOKEN`"),
            "{all}"
        );
    }
);

storage_test!(
    unconfigured_meta_channels_say_what_to_set,
    |db: TestDb| async move {
        // Arrange: email only.
        let c = spawn(db, false, |_| {}).await;

        // Act
        let checks = warmline::doctor::run(&c.t.app).await.unwrap();
        let status = warmline::slack::setup_status::gather(&c.t.app, Utc::now())
            .await
            .unwrap();

        // Assert
        let wa = checks
            .iter()
            .find(|k| k.channel == "whatsapp")
            .expect("a WhatsApp row");
        assert!(wa.passed, "an unused channel does not fail the doctor");
        assert!(wa.reason.contains("WHATSAPP_ACCESS_TOKEN"), "{wa:?}");
        assert!(
            checks
                .iter()
                .any(|k| k.channel == "instagram" && k.reason.contains("INSTAGRAM_ACCESS_TOKEN"))
        );
        let section = status
            .sections
            .iter()
            .find(|s| s.title == "WhatsApp")
            .unwrap();
        assert_eq!(section.rows.len(), 1, "only what to set: {section:?}");
        assert!(section.rows[0].line().contains("`WHATSAPP_ACCESS_TOKEN`"));
    }
);

/// Chooses template `value` in the answer modal of `inbound`; the
/// re-rendered view.
async fn answer_choose(c: &Convo, inbound: i64, value: &str, ts: &str) -> Json {
    let before = c.t.fake.calls_to("views.update").len();
    let mut p = crate::helpers::block_action("inbound_answer_template");
    p["container"] = json!({"type": "view", "view_id": "VANSWER"});
    p["view"]["id"] = "VANSWER".into();
    p["view"]["type"] = "modal".into();
    p["view"]["callback_id"] = "inbound_answer_submit".into();
    p["view"]["private_metadata"] = inbound.to_string().into();
    p["view"]["title"] = json!({"type": "plain_text", "text": "Answer"});
    p["user"]["id"] = APPROVER.into();
    p["actions"][0] = json!({
        "type": "static_select", "block_id": "template", "action_id": "inbound_answer_template",
        "selected_option": {"text": {"type": "plain_text", "text": value}, "value": value},
        "action_ts": ts
    });
    c.t.post_interaction(&p).await;
    let updates = c.t.fake.wait_for_calls("views.update", before + 1).await;
    updates[before].body["view"].clone()
}

/// Chooses `value` in the nudge modal of `contact`; the re-rendered view.
async fn nudge_choose(c: &Convo, contact: i64, value: &str, ts: &str) -> Json {
    let before = c.t.fake.calls_to("views.update").len();
    let mut p = crate::helpers::block_action("nudge_template");
    p["container"] = json!({"type": "view", "view_id": "VNUDGE"});
    p["view"]["id"] = "VNUDGE".into();
    p["view"]["type"] = "modal".into();
    p["view"]["callback_id"] = "nudge_modal".into();
    p["view"]["private_metadata"] = contact.to_string().into();
    p["view"]["title"] = json!({"type": "plain_text", "text": "Nudge"});
    p["user"]["id"] = APPROVER.into();
    p["actions"][0] = json!({
        "type": "static_select", "block_id": "template", "action_id": "nudge_template",
        "selected_option": {"text": {"type": "plain_text", "text": value}, "value": value},
        "action_ts": ts
    });
    c.t.post_interaction(&p).await;
    let updates = c.t.fake.wait_for_calls("views.update", before + 1).await;
    updates[before].body["view"].clone()
}

fn nudge_values(value: &str, body: &str) -> Json {
    json!({
        "template": {"nudge_template": {"type": "static_select",
            "selected_option": {"text": {"type": "plain_text", "text": value}, "value": value}}},
        "body": {"body": {"type": "plain_text_input", "value": body}},
    })
}

storage_test!(
    nudges_offer_whatsapp_and_instagram_per_window,
    |db: TestDb| async move {
        // Arrange: Ada wrote on WhatsApp an hour ago (no Instagram id);
        // Bob never wrote; Carol's Instagram DM is 3 days old; Dan's 8.
        let c = spawn(db, true, |_| {}).await;
        seed_templates(c.db()).await;
        let ada = c.contact("Ada", "ada@example.com", Some(ADA_PHONE)).await;
        let bob = c.contact("Bob", "bob@example.com", Some(BOB_PHONE)).await;
        let carol = c.contact("Carol", "carol@example.com", None).await;
        let dan = c.contact("Dan", "dan@example.com", None).await;
        for (id, igsid) in [(carol, "17841400000000021"), (dan, "17841400000000022")] {
            c.t.app
                .db
                .execute_raw(Statement::from_sql_and_values(
                    c.db().get_database_backend(),
                    "UPDATE contacts SET metadata = $1 WHERE id = $2",
                    [
                        Value::from(json!({"instagram_id": igsid}).to_string()),
                        Value::from(id),
                    ],
                ))
                .await
                .unwrap();
        }
        c.writes("whatsapp", ADA_PHONE, "Hi", Duration::hours(1))
            .await;
        c.writes("instagram", "17841400000000021", "Hey", Duration::days(3))
            .await;
        c.writes("instagram", "17841400000000022", "Yo", Duration::days(8))
            .await;

        // Act
        let ada_view = nudge_choose(&c, ada, "meta:whatsapp:text", "7.1").await;
        let bob_view = nudge_choose(&c, bob, "meta:whatsapp:template:follow_up|en_US", "7.2").await;
        let carol_view = nudge_choose(&c, carol, "meta:instagram:text", "7.3").await;
        let dan_view = nudge_choose(&c, dan, "meta:instagram:text", "7.4").await;
        let bob_sent = c
            .submit(
                &bob_view,
                nudge_values("meta:whatsapp:template:follow_up|en_US", "Bob\nour call"),
                "t-n-bob",
            )
            .await;
        let carol_sent = c
            .submit(
                &carol_view,
                nudge_values("meta:instagram:text", "Hi {{ first_name }}, still keen?"),
                "t-n-carol",
            )
            .await;
        let dan_refused = c
            .submit(
                &dan_view,
                nudge_values("meta:instagram:text", "Hello?"),
                "t-n-dan",
            )
            .await;

        // Assert: what each modal offers, and why.
        let (ada_s, bob_s, carol_s, dan_s) = (
            ada_view.to_string(),
            bob_view.to_string(),
            carol_view.to_string(),
            dan_view.to_string(),
        );
        assert!(
            ada_s.contains("\"value\":\"meta:whatsapp:text\""),
            "{ada_s}"
        );
        assert!(!ada_s.contains("meta:whatsapp:template:"), "{ada_s}");
        assert!(ada_s.contains("no Instagram id"), "{ada_s}");
        assert!(
            !bob_s.contains("\"value\":\"meta:whatsapp:text\""),
            "{bob_s}"
        );
        assert!(
            bob_s.contains("meta:whatsapp:template:follow_up|en_US"),
            "{bob_s}"
        );
        assert!(bob_s.contains("outside the 24-hour window"), "{bob_s}");
        assert!(bob_s.contains("\"initial_value\":\"Bob\\n\""), "{bob_s}");
        assert!(
            carol_s.contains("Instagram: write a message (HUMAN_AGENT)"),
            "{carol_s}"
        );
        assert!(
            !dan_s.contains("\"value\":\"meta:instagram:text\""),
            "{dan_s}"
        );
        assert!(dan_s.contains("7 days"), "{dan_s}");
        assert_eq!(bob_sent["response_action"], "update", "{bob_sent}");
        assert_eq!(carol_sent["response_action"], "update", "{carol_sent}");
        assert_eq!(dan_refused["response_action"], "errors", "{dan_refused}");

        // Assert: the ledger.
        #[derive(FromQueryResult)]
        struct Row {
            channel: String,
            address: Option<String>,
            contact_id: Option<i64>,
            payload: String,
        }
        let rows = Row::find_by_statement(Statement::from_string(
            c.db().get_database_backend(),
            "SELECT channel, address, contact_id, payload FROM messages WHERE source LIKE 'nudge:%' ORDER BY contact_id",
        ))
        .all(c.db())
        .await
        .unwrap();
        assert_eq!(rows.len(), 2);
        let bob_msg: Json = serde_json::from_str(&rows[0].payload).unwrap();
        assert_eq!(rows[0].contact_id, Some(bob));
        assert_eq!(rows[0].channel, "whatsapp");
        assert_eq!(rows[0].address.as_deref(), Some(BOB_PHONE));
        assert_eq!(
            bob_msg["template"]["parameters"],
            json!(["Bob", "our call"])
        );
        let carol_msg: Json = serde_json::from_str(&rows[1].payload).unwrap();
        assert_eq!(rows[1].channel, "instagram");
        assert_eq!(rows[1].address.as_deref(), Some("17841400000000021"));
        assert_eq!(
            carol_msg,
            json!({"text": "Hi Carol, still keen?", "tag": "HUMAN_AGENT"})
        );
    }
);

storage_test!(
    answers_reach_the_graph_api_as_text_template_and_human_agent,
    |db: TestDb| async move {
        // Arrange: the real WhatsApp and Instagram providers against the
        // fake Graph API; a WhatsApp contact and an unknown Instagram
        // sender write through the signed Meta webhook.
        use crate::whatsapp as wa;
        let fake = wa::fake().await;
        let cfg = fake.config().clone();
        let conn = db.db.clone();
        wa::people(&conn, 1).await;
        let app = wa::spawn(db, &fake, move |s| {
            s.slack.approvals_channel = Some(APPROVALS.into());
            s.slack.approvers = vec![APPROVER.into()];
            s.providers.instagram = warmline::providers::instagram::settings::InstagramSettings {
                access_token: Some(cfg.instagram_token.clone().into()),
                account_id: Some(cfg.instagram_account_id.clone()),
                requests_per_second: None,
            };
            s.quiet_hours.instagram = None;
        })
        .await;
        let c = Convo {
            t: app,
            whatsapp: Core::new(Behaviour::default()),
            instagram: Core::new(Behaviour::default()),
        };
        let order_ready = Template::from_graph(&json!({"name": "order_ready", "language": "en_US",
            "category": "UTILITY", "status": "APPROVED",
            "components": [{"type": "BODY", "text": "Your order is ready."}]}))
        .unwrap();
        templates::replace_all(c.db(), &[order_ready], Utc::now())
            .await
            .unwrap();
        let wa_from = wa::phone(0);
        let igsid = "17841400000000031";
        assert_eq!(
            fake.inbound_text(&wa::url(&c.t), &wa_from, "Can we talk?")
                .await
                .status,
            200
        );
        assert_eq!(
            fake.ig_message(&wa::url(&c.t), igsid, "Price?")
                .await
                .status,
            200
        );
        c.t.fake.wait_for_calls("chat.postMessage", 2).await;
        let id_of = |channel: &'static str| {
            let c = &c;
            async move {
                c.count(
                    "SELECT CAST(MAX(id) AS BIGINT) AS n FROM inbound_messages WHERE channel = $1",
                    vec![Value::from(channel)],
                )
                .await
            }
        };
        let (wa_in, ig_in) = (id_of("whatsapp").await, id_of("instagram").await);

        // Act (1): answer both inside the window.
        let v = c.open_answer(wa_in, "8.1").await.expect("a modal");
        c.submit(&v, answer("Yes, Tuesday."), "t-e1").await;
        let v = c.open_answer(ig_in, "8.2").await.expect("a modal");
        c.submit(&v, answer("It is 40 €."), "t-e2").await;
        assert!(
            fake.wait_for_accepted(2, WAIT).await,
            "{:?}",
            fake.requests()
        );

        // Act (2): three days pass, for Meta and for the recorded messages.
        fake.advance(Duration::days(3));
        for id in [wa_in, ig_in] {
            c.t.app
                .db
                .execute_raw(Statement::from_sql_and_values(
                    c.db().get_database_backend(),
                    "UPDATE inbound_messages SET received_at = $1 WHERE id = $2",
                    [Value::from(Utc::now() - Duration::days(3)), Value::from(id)],
                ))
                .await
                .unwrap();
        }
        let v = c.open_answer(wa_in, "8.3").await.expect("a modal");
        c.submit(&v, template_values("order_ready|en_US", &[]), "t-e3")
            .await;
        let v = c.open_answer(ig_in, "8.4").await.expect("a modal");
        c.submit(&v, answer("Sorry for the wait."), "t-e4").await;
        assert!(
            fake.wait_for_accepted(4, WAIT).await,
            "{:?}",
            fake.requests()
        );

        // Assert: what Meta received.
        let got = fake.accepted();
        let wa_sent: Vec<_> = got.iter().filter(|a| a.channel == "whatsapp").collect();
        let ig_sent: Vec<_> = got.iter().filter(|a| a.channel == "instagram").collect();
        assert_eq!(wa_sent.len(), 2);
        assert_eq!(wa_sent[0].kind, "text");
        assert_eq!(wa_sent[0].text.as_deref(), Some("Yes, Tuesday."));
        assert_eq!(wa_sent[1].kind, "template");
        assert_eq!(wa_sent[1].template.as_deref(), Some("order_ready"));
        assert_eq!(wa_sent[0].to, wa_from.trim_start_matches('+'));
        assert_eq!(ig_sent.len(), 2);
        assert_eq!(ig_sent[0].to, igsid);
        assert_eq!(ig_sent[0].tag, None);
        assert_eq!(ig_sent[1].tag.as_deref(), Some("HUMAN_AGENT"));

        // And the doctor sees Meta's signed events and the verify token.
        let checks = warmline::doctor::run(&c.t.app).await.unwrap();
        for channel in ["whatsapp", "instagram"] {
            let hook = checks
                .iter()
                .find(|k| {
                    k.channel == channel && k.item == "webhook secret and last verified event"
                })
                .unwrap_or_else(|| panic!("{checks:#?}"));
            assert!(
                hook.passed && hook.reason.contains("last verified event 20"),
                "{hook:?}"
            );
            assert!(
                checks
                    .iter()
                    .any(|k| k.channel == channel && k.item == "webhook verify token" && k.passed)
            );
        }
    }
);
