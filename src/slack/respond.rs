//! The Slack plumbing interactions share (contact actions, answering a reply): an ephemeral answer to the
//! clicker, `views.update` on an opened modal, the result view that
//! replaces a submitted modal, and reading a view's callback id and private
//! metadata.
//!
//! Invariant: an update given the opened view's hash fails instead of
//! overwriting a newer update.

use serde_json::json;
use slack_morphism::prelude::*;

use crate::state::App;

pub async fn ephemeral(
    app: &App,
    channel: Option<SlackChannelId>,
    user: SlackUserId,
    content: SlackMessageContent,
) -> anyhow::Result<()> {
    let Some(channel) = channel else {
        return Ok(());
    };
    app.slack
        .post_ephemeral(SlackApiChatPostEphemeralRequest::new(
            channel, user, content,
        ))
        .await?;
    Ok(())
}

pub async fn update_view(
    app: &App,
    view_id: SlackViewId,
    hash: Option<String>,
    view: SlackView,
) -> anyhow::Result<()> {
    let mut req = SlackApiViewsUpdateRequest::new(view).with_view_id(view_id);
    // With the hash, an update racing a newer one fails instead of
    // overwriting it.
    if let Some(h) = hash {
        req = req.with_hash(h);
    }
    app.slack.views_update(req).await?;
    Ok(())
}

pub fn result_view(
    app: &App,
    title: &str,
    text: String,
) -> anyhow::Result<SlackInteractionResponse> {
    let view = app.blocks.view(
        "modal_result.json.j2",
        json!({ "title": title, "text": text }),
    )?;
    Ok(SlackInteractionResponse::ViewSubmission(
        SlackViewSubmissionResponse::Update(SlackViewSubmissionUpdateResponse::new(view)),
    ))
}

pub fn callback_id(view: &SlackView) -> Option<String> {
    match view {
        SlackView::Modal(m) => m.callback_id.as_ref().map(|c| c.0.clone()),
        SlackView::Home(h) => h.callback_id.as_ref().map(|c| c.0.clone()),
    }
}

pub fn private_metadata(view: &SlackView) -> Option<String> {
    match view {
        SlackView::Modal(m) => m.private_metadata.clone(),
        SlackView::Home(h) => h.private_metadata.clone(),
    }
}
