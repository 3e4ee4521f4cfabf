//! Answering a reply from Slack: the inbound SMS posted in the campaign's
//! thread (or the approvals channel) carries an "Answer" button; an
//! approver clicks it, writes in a modal, and the answer goes back as an
//! SMS inside the conversation.
//!
//! Invariants:
//! - Only approvers may answer (an answer speaks for the team to a person
//!   outside it). Anyone else is told so, in an ephemeral message.
//! - The answer is an ordinary ledger message through the dispatcher: a
//!   `marketing` SMS, so it is consent-checked at the last moment (a
//!   person who replied STOP in between gets nothing), carries the sender
//!   identification and the STOP footer (`sms::compose`), and keeps quiet
//!   hours, caps and the rate limit. Its source is `answer:<inbound
//!   id>:<n>`, so two answers to one reply are two messages and a repeated
//!   submission (the same payload) is de-duplicated upstream.
//! - Only SMS is answered here, and only when a provider carries SMS: an
//!   email reply is answered from a mail client.

use std::collections::HashMap;

use sea_orm::{FromQueryResult, Statement, Value};
use serde_json::json;
use slack_morphism::prelude::*;

use crate::{
    dispatcher::ledger::{self, NewMessage},
    domain::{Channel, MessageKind, MessageState, mask_phone},
    slack::{
        actions,
        error::IngressError,
        mrkdwn::{escape, truncate},
        respond::{callback_id, ephemeral, private_metadata, result_view},
    },
    state::App,
};

/// The channels an answer can be written on.
pub fn answerable(app: &App, channel: Channel) -> bool {
    channel == Channel::Sms && app.dispatcher.registry().for_channel(channel).is_some()
}

/// The notice's blocks: its text and the Answer button.
pub fn blocks(app: &App, text: &str, inbound_id: i64) -> anyhow::Result<Vec<SlackBlock>> {
    Ok(app.blocks.message_blocks(
        "inbound_notice.json.j2",
        json!({
            "text": text,
            "action_id": actions::INBOUND_ANSWER,
            "inbound_id": inbound_id.to_string(),
        }),
    )?)
}

pub fn handles(action_id: &str) -> bool {
    action_id == actions::INBOUND_ANSWER
}

pub fn owns_view(ev: &SlackInteractionViewSubmissionEvent) -> bool {
    callback_id(&ev.view.view).as_deref() == Some(actions::INBOUND_ANSWER_SUBMIT)
}

#[derive(Debug, FromQueryResult)]
struct Inbound {
    contact_id: Option<i64>,
    channel: Channel,
    from_address: String,
    text: String,
    first_name: Option<String>,
    last_name: Option<String>,
}

async fn load(app: &App, id: i64) -> anyhow::Result<Option<Inbound>> {
    Ok(Inbound::find_by_statement(Statement::from_sql_and_values(
        app.db.get_database_backend(),
        "SELECT i.contact_id, i.channel, i.from_address, i.text, c.first_name, c.last_name \
         FROM inbound_messages i LEFT JOIN contacts c ON c.id = i.contact_id WHERE i.id = $1",
        [Value::from(id)],
    ))
    .one(&app.db)
    .await?)
}

fn who(i: &Inbound) -> String {
    let masked = mask_phone(&i.from_address);
    match crate::contacts::display::full_name(i.first_name.as_deref(), i.last_name.as_deref()) {
        Some(name) => format!("{} ({masked})", escape(&name)),
        None => masked,
    }
}

/// The Answer button: approvers get the modal, others an explanation.
pub async fn on_action(
    app: &App,
    ev: &SlackInteractionBlockActionsEvent,
    action: &SlackInteractionActionInfo,
) -> Result<(), IngressError> {
    let Some(user) = ev.user.as_ref().map(|u| u.id.clone()) else {
        return Ok(());
    };
    let id = IngressError::id_in(
        action.value.as_deref(),
        "Answer button without an inbound id",
    )?;
    if !crate::approval::decision::is_approver(app, &user.0).await {
        let channel = ev.channel.as_ref().map(|c| c.id.clone());
        let content = SlackMessageContent::new()
            .with_text(":lock: Only approvers can answer a contact from Slack.".into());
        ephemeral(app, channel, user, content).await?;
        return Ok(());
    }
    let inbound = load(app, id)
        .await?
        .ok_or_else(|| IngressError::Malformed(format!("no inbound message {id}")))?;
    let quoted = truncate(inbound.text.trim(), 1_500)
        .lines()
        .map(|l| format!("> {}", escape(l)))
        .collect::<Vec<_>>()
        .join("\n");
    let first = inbound.first_name.clone().unwrap_or_else(|| "they".into());
    let view = app
        .blocks
        .view(
        "inbound_answer_modal.json.j2",
        json!({
            "callback_id": actions::INBOUND_ANSWER_SUBMIT,
            "inbound_id": id.to_string(),
            "who": who(&inbound),
            "channel": inbound.channel.label(),
            "quoted": quoted,
            "hint": format!(
                "Sent by {} with your sender's name and \"Reply STOP to opt out.\" — only if {first} still consents.",
                inbound.channel.label()
            ),
        }),
    )
        .map_err(anyhow::Error::from)?;
    app.slack
        .views_open(SlackApiViewsOpenRequest::new(ev.trigger_id.clone(), view))
        .await
        .map_err(|e| anyhow::Error::from(e).context("opening the answer modal"))?;
    Ok(())
}

/// The modal's submission: checked, queued, and the modal says so.
pub async fn on_view_submission(
    app: &App,
    ev: &SlackInteractionViewSubmissionEvent,
) -> Result<SlackInteractionResponse, IngressError> {
    let errors = |message: &str| {
        Ok(SlackInteractionResponse::ViewSubmission(
            SlackViewSubmissionResponse::Errors(SlackViewSubmissionErrorsResponse::new(
                HashMap::from([("answer".to_string(), message.to_string())]),
            )),
        ))
    };
    let user = ev.user.id.0.clone();
    if !crate::approval::decision::is_approver(app, &user).await {
        return errors("Only approvers can answer a contact from Slack.");
    }
    let id = IngressError::id_in(
        private_metadata(&ev.view.view).as_deref(),
        "answer modal without an inbound id",
    )?;
    let view = serde_json::to_value(&ev.view)
        .map_err(|e| IngressError::Malformed(format!("unreadable view: {e}")))?;
    let answer = view
        .pointer("/state/values/answer/answer/value")
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .trim()
        .to_string();
    if answer.is_empty() {
        return errors("Write the answer first.");
    }
    let Some(inbound) = load(app, id).await? else {
        return errors("That message is gone (the contact may have been forgotten).");
    };
    let Some(contact) = inbound.contact_id else {
        return errors("The sender is not a known contact: there is no consent to send under.");
    };
    if !answerable(app, inbound.channel) {
        return errors("No provider carries this channel any more.");
    }
    let provider = app
        .dispatcher
        .registry()
        .for_channel(inbound.channel)
        .map(|p| p.name().to_string())
        .unwrap_or_default();
    let text = crate::sms::compose(
        &answer,
        MessageKind::Marketing,
        &crate::sms::sender_name(&app.settings),
    );
    let now = crate::clock::now();
    let earlier = crate::db::count(
        &app.db,
        "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM messages WHERE source LIKE $1",
        vec![Value::from(format!("answer:{id}:%"))],
    )
    .await?;
    let message = NewMessage {
        source: format!("answer:{id}:{}", earlier + 1),
        campaign_id: None,
        contact_id: Some(contact),
        channel: inbound.channel,
        kind: MessageKind::Marketing,
        address: None,
        provider,
        payload: crate::sms::content(&text),
        template: None,
        state: MessageState::Queued,
        due_at: now,
    };
    ledger::enqueue(&app.db, std::slice::from_ref(&message), now).await?;
    app.dispatcher.wake();
    crate::audit::record(
        &app.db,
        &user,
        "inbound.answered",
        Some(&mask_phone(&inbound.from_address)),
        json!({"inbound_id": id, "message_id": message.id(), "contact_id": contact}),
    )
    .await?;
    Ok(result_view(
        app,
        "Answer queued",
        format!(
            ":outbox_tray: Queued to *{}*: it goes out if they still consent, outside quiet hours.",
            who(&inbound)
        ),
    )?)
}
