//! The Web API wrapper against the fake Slack: retries, rate limits,
//! timeouts and Slack errors.

use std::time::{Duration, Instant};

use slack_morphism::prelude::*;
use warmline::{
    settings::Settings,
    slack::api::{SlackApi, SlackApiError},
};

use crate::{
    fake_slack::{FakeSlack, Scripted},
    helpers::{BOT_TOKEN, init_test_process},
};

async fn api_with(f: impl FnOnce(&mut Settings)) -> (SlackApi, FakeSlack) {
    init_test_process();
    let fake = FakeSlack::start(BOT_TOKEN).await;
    let mut settings = Settings::default();
    settings.slack.bot_token = Some(BOT_TOKEN.to_string().into());
    settings.slack.api_url = fake.api_url();
    settings.slack.request_timeout_secs = 5;
    settings.slack.max_retries = 2;
    f(&mut settings);
    (SlackApi::new(&settings.slack).expect("client builds"), fake)
}

fn message(text: &str) -> SlackApiChatPostMessageRequest {
    SlackApiChatPostMessageRequest::new(
        SlackChannelId::new("C0APPROVAL".into()),
        SlackMessageContent::new().with_text(text.into()),
    )
}

fn home() -> SlackView {
    SlackView::Home(SlackHomeView::new(vec![
        SlackSectionBlock::new().with_text(md!("hello")).into(),
    ]))
}

fn modal() -> SlackView {
    SlackView::Modal(SlackModalView::new(
        pt!("Preview"),
        vec![SlackSectionBlock::new().with_text(md!("hello")).into()],
    ))
}

#[tokio::test]
async fn every_method_we_call_parses_the_fake_answers() {
    // Arrange
    let (api, fake) = api_with(|_| {}).await;
    let channel = SlackChannelId::new("C0APPROVAL".into());
    let user = SlackUserId::new("U0001USER".into());

    // Act
    let posted = api
        .post_message(message("hi"))
        .await
        .expect("chat.postMessage");
    api.post_ephemeral(SlackApiChatPostEphemeralRequest::new(
        channel.clone(),
        user.clone(),
        SlackMessageContent::new().with_text("psst".into()),
    ))
    .await
    .expect("chat.postEphemeral");
    api.update_message(SlackApiChatUpdateRequest::new(
        channel.clone(),
        SlackMessageContent::new().with_text("edited".into()),
        posted.ts.clone(),
    ))
    .await
    .expect("chat.update");
    let opened = api
        .views_open(SlackApiViewsOpenRequest::new(
            SlackTriggerId::new("123.456.abc".into()),
            modal(),
        ))
        .await
        .expect("views.open");
    api.views_update(
        SlackApiViewsUpdateRequest::new(modal()).with_view_id(opened.view.state_params.id.clone()),
    )
    .await
    .expect("views.update");
    api.views_publish(SlackApiViewsPublishRequest::new(user, home()))
        .await
        .expect("views.publish");

    // Assert
    let methods: Vec<String> = fake.calls().into_iter().map(|c| c.method).collect();
    assert_eq!(
        methods,
        [
            "chat.postMessage",
            "chat.postEphemeral",
            "chat.update",
            "views.open",
            "views.update",
            "views.publish"
        ]
    );
    assert_eq!(posted.channel.0, "C0APPROVAL");
    assert!(
        fake.calls()
            .iter()
            .all(|c| c.token.as_deref() == Some(BOT_TOKEN))
    );
}

#[tokio::test]
async fn a_429_is_retried_after_retry_after() {
    // Arrange
    let (api, fake) = api_with(|_| {}).await;
    fake.script(
        "chat.postMessage",
        Scripted::RateLimited {
            retry_after_secs: 1,
        },
    );
    let start = Instant::now();

    // Act
    let result = api.post_message(message("hi")).await;

    // Assert
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(fake.calls_to("chat.postMessage").len(), 2);
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "Retry-After was not honoured"
    );
}

#[tokio::test]
async fn a_500_is_retried() {
    // Arrange
    let (api, fake) = api_with(|_| {}).await;
    fake.script("views.publish", Scripted::ServerError);

    // Act
    let result = api
        .views_publish(SlackApiViewsPublishRequest::new(
            SlackUserId::new("U1".into()),
            home(),
        ))
        .await;

    // Assert
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(fake.calls_to("views.publish").len(), 2);
}

#[tokio::test]
async fn repeated_500s_give_up_as_unavailable() {
    // Arrange
    let (api, fake) = api_with(|s| s.slack.max_retries = 1).await;
    fake.script("chat.postMessage", Scripted::ServerError);
    fake.script("chat.postMessage", Scripted::ServerError);

    // Act
    let result = api.post_message(message("hi")).await;

    // Assert
    assert!(
        matches!(result, Err(SlackApiError::Unavailable { attempts: 2, .. })),
        "{result:?}"
    );
    assert_eq!(fake.calls_to("chat.postMessage").len(), 2);
}

#[tokio::test]
async fn a_slack_error_is_returned_with_its_code_and_not_retried() {
    // Arrange
    let (api, fake) = api_with(|_| {}).await;
    fake.script("chat.postMessage", Scripted::Error("not_in_channel"));

    // Act
    let result = api.post_message(message("hi")).await;

    // Assert
    match result {
        Err(ref e @ SlackApiError::Slack { method, ref code }) => {
            assert_eq!(method, "chat.postMessage");
            assert_eq!(code, "not_in_channel");
            assert_eq!(e.code(), Some("not_in_channel"));
        }
        other => panic!("expected a Slack error, got {other:?}"),
    }
    assert_eq!(fake.calls_to("chat.postMessage").len(), 1);
}

#[tokio::test]
async fn a_wrong_token_is_invalid_auth() {
    // Arrange
    let (api, fake) = api_with(|s| s.slack.bot_token = Some("xoxb-wrong".to_string().into())).await;

    // Act
    let result = api.post_message(message("hi")).await;

    // Assert
    assert_eq!(result.unwrap_err().code(), Some("invalid_auth"));
    assert_eq!(fake.calls().len(), 1);
}

#[tokio::test]
async fn a_slow_answer_times_out() {
    // Arrange
    let (api, fake) = api_with(|s| {
        s.slack.request_timeout_secs = 1;
        s.slack.max_retries = 0;
    })
    .await;
    fake.script("views.publish", Scripted::Delay(Duration::from_secs(3)));
    let start = Instant::now();

    // Act
    let result = api
        .views_publish(SlackApiViewsPublishRequest::new(
            SlackUserId::new("U1".into()),
            home(),
        ))
        .await;

    // Assert
    assert!(
        matches!(result, Err(SlackApiError::Timeout { attempts: 1, .. })),
        "{result:?}"
    );
    assert!(
        start.elapsed() < Duration::from_millis(2500),
        "took {:?}",
        start.elapsed()
    );
    fake.wait_for_arrivals("views.publish", 1).await;
}

#[tokio::test]
async fn rate_limits_beyond_max_retries_give_up() {
    // Arrange
    let (api, fake) = api_with(|s| s.slack.max_retries = 2).await;
    for _ in 0..3 {
        fake.script(
            "chat.postMessage",
            Scripted::RateLimited {
                retry_after_secs: 0,
            },
        );
    }

    // Act
    let result = api.post_message(message("hi")).await;

    // Assert
    assert!(
        matches!(result, Err(SlackApiError::RateLimited { attempts: 3, .. })),
        "{result:?}"
    );
    assert_eq!(fake.calls_to("chat.postMessage").len(), 3);
}

#[tokio::test]
async fn views_open_is_not_retried_because_its_trigger_id_expires() {
    // Arrange
    let (api, fake) = api_with(|s| s.slack.max_retries = 4).await;
    fake.script("views.open", Scripted::ServerError);

    // Act
    let result = api
        .views_open(SlackApiViewsOpenRequest::new(
            SlackTriggerId::new("123.456.abc".into()),
            modal(),
        ))
        .await;

    // Assert
    assert!(result.is_err(), "{result:?}");
    assert_eq!(fake.calls_to("views.open").len(), 1);
}
