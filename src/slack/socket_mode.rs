//! Socket Mode: with `SLACK_APP_TOKEN` set, Slack delivers the same commands,
//! interactions and events over a WebSocket instead of HTTP. They go to the
//! very handlers the HTTP routes use, so behaviour (de-duplication included)
//! is identical. Socket Mode envelopes are already authenticated by the
//! app-level token, so there is no signature to check.

use std::sync::Arc;

use secrecy::ExposeSecret;
use slack_morphism::prelude::*;

use super::{
    api::{Client, Connector},
    commands, events, interactions,
};
use crate::state::App;

pub type Listener = SlackClientSocketModeListener<Connector>;

/// Connects and starts listening; the caller shuts the listener down.
pub async fn start(app: App) -> anyhow::Result<Listener> {
    let token = app
        .settings
        .slack
        .app_token
        .as_ref()
        .map(|t| SlackApiToken::new(t.expose_secret().to_string().into()))
        .ok_or_else(|| anyhow::anyhow!("SLACK_APP_TOKEN is not set"))?;
    check_app_token(&app, &token).await?;
    let env = Arc::new(
        SlackClientEventsListenerEnvironment::new(app.slack.client()).with_user_state(app.clone()),
    );
    let callbacks = SlackSocketModeListenerCallbacks::new()
        .with_command_events(on_command)
        .with_interaction_events(on_interaction)
        .with_push_events(on_push);
    let listener =
        SlackClientSocketModeListener::new(&SlackClientSocketModeConfig::new(), env, callbacks);
    listener.listen_for(&token).await.map_err(|e| {
        anyhow::anyhow!("Socket Mode could not connect (check SLACK_APP_TOKEN): {e}")
    })?;
    listener.start().await;
    tracing::info!("Socket Mode started");
    Ok(listener)
}

/// Asks Slack for a connection URL once, so a token Slack refuses stops
/// start-up with a clear error. (The listener itself connects in the
/// background and would otherwise retry a refused token forever, silently.)
async fn check_app_token(app: &App, token: &SlackApiToken) -> anyhow::Result<()> {
    let session = app.slack.client();
    let call = async {
        session
            .open_session(token)
            .apps_connections_open(&SlackApiAppsConnectionOpenRequest::new())
            .await
    };
    match tokio::time::timeout(app.settings.slack.request_timeout(), call).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(slack_morphism::errors::SlackClientError::ApiError(e))) => Err(anyhow::anyhow!(
            "Slack refused SLACK_APP_TOKEN for Socket Mode: {} (it must be an app-level xapp- token with connections:write)",
            e.code
        )),
        // Slack being briefly unreachable is not a configuration error: the
        // listener keeps retrying in the background.
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "could not reach Slack to check SLACK_APP_TOKEN; Socket Mode will keep retrying");
            Ok(())
        }
        Err(_) => {
            tracing::warn!("checking SLACK_APP_TOKEN timed out; Socket Mode will keep retrying");
            Ok(())
        }
    }
}

async fn app_of(state: &SlackClientEventsUserState) -> Result<App, BoxError> {
    state
        .read()
        .await
        .get_user_state::<App>()
        .cloned()
        .ok_or_else(|| "application state missing from the Socket Mode listener".into())
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

async fn on_command(
    event: SlackCommandEvent,
    _client: Arc<Client>,
    state: SlackClientEventsUserState,
) -> UserCallbackResult<SlackCommandEventResponse> {
    let app = app_of(&state).await?;
    Ok(commands::handle(&app, &event)
        .await?
        .unwrap_or_else(|| SlackCommandEventResponse::new(SlackMessageContent::new())))
}

async fn on_interaction(
    event: SlackInteractionEvent,
    _client: Arc<Client>,
    state: SlackClientEventsUserState,
) -> UserCallbackResult<SlackInteractionResponse> {
    let app = app_of(&state).await?;
    let key = format!(
        "interaction:{}",
        super::dedup::digest(&serde_json::to_vec(&event)?)
    );
    Ok(interactions::handle(&app, event, &key).await?)
}

async fn on_push(
    event: SlackPushEventCallback,
    _client: Arc<Client>,
    state: SlackClientEventsUserState,
) -> UserCallbackResult<()> {
    let app = app_of(&state).await?;
    events::handle_callback(&app, event).await?;
    Ok(())
}
