//! The App Home tab, published per user on `app_home_opened` (and on its
//! Refresh button): a welcome and the setup checklist.

use slack_morphism::prelude::*;

use super::{api::SlackApiError, setup_status};
use crate::startup::App;

#[derive(Debug, thiserror::Error)]
pub enum HomeError {
    #[error(transparent)]
    Layout(#[from] super::blocks::BlocksError),
    #[error(transparent)]
    Slack(#[from] SlackApiError),
}

/// Renders the Home tab for `user` and publishes it with views.publish.
pub async fn publish(app: &App, user: &SlackUserId) -> Result<(), HomeError> {
    let view = render(app, user)?;
    app.slack
        .views_publish(SlackApiViewsPublishRequest::new(user.clone(), view))
        .await?;
    Ok(())
}

pub fn render(app: &App, user: &SlackUserId) -> Result<SlackView, super::blocks::BlocksError> {
    let items = setup_status::items(&app.settings);
    let missing = items.iter().filter(|i| !i.ok).count();
    app.blocks.view(
        "home.json.j2",
        serde_json::json!({
            "user": user.0,
            "command": app.settings.slack.command,
            "items": items,
            "missing": missing,
            "refresh_action": super::interactions::actions::HOME_REFRESH,
        }),
    )
}
