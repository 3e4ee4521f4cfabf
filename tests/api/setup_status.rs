//! `/warm status` through a signed slash command: every integration with
//! ✅ / ❌ / ➖ and the setting that fixes it, read from the settings, the
//! provider registry and the verified webhook events (a real signed Resend
//! webhook stored by the app).

use chrono::Utc;
use serde_json::{Value, json};
use warmline::providers::{
    resend::{settings::ResendSettings, svix},
    smtp::settings::SmtpSettings,
};

use crate::helpers::{BOT_TOKEN, SIGNING_SECRET, TestApp, spawn_app, spawn_app_with};

const RESEND_KEY: &str = "re_status_key_never_shown";
const WEBHOOK_SECRET: &str = "whsec_d2FybWxpbmUgdGVzdCB3ZWJob29rIHNlY3JldCAzMmI=";
const API_KEYS: [&str; 2] = ["api-key-one-never-shown", "api-key-two-never-shown"];
const SMTP_PASSWORD: &str = "smtp-password-never-shown";

/// `/warm status`'s reply: (fallback text, blocks as one string).
async fn status(app: &TestApp) -> (String, String) {
    let res = app.post_command("status").await;
    assert_eq!(res.status(), 200);
    let reply: Value = res.json().await.unwrap();
    assert_eq!(reply["response_type"], "ephemeral", "{reply}");
    (
        reply["text"].as_str().unwrap().to_string(),
        // Unescaped, so lines read as Slack shows them.
        reply["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|b| b["text"]["text"].as_str())
            .collect::<Vec<_>>()
            .join("\n"),
    )
}

/// The section titled `title`, as its mrkdwn text.
fn section<'a>(blocks: &'a str, title: &str) -> &'a str {
    let start = blocks
        .find(&format!("*{title}*\n"))
        .unwrap_or_else(|| panic!("no {title} section in {blocks}"));
    let rest = &blocks[start..];
    let end = rest[1..].find("\n*").map_or(rest.len(), |i| i + 1);
    &rest[..end]
}

/// POSTs one Resend event, signed as Svix signs, for a message we do not
/// know (stored and answered 200).
async fn verified_resend_event(app: &TestApp) {
    let body = json!({
        "type": "email.delivered",
        "created_at": "2026-11-26T12:00:01.000Z",
        "data": {"email_id": "em_unknown", "to": ["someone@example.com"], "subject": "Hi"}
    })
    .to_string();
    let id = format!("msg_{}", uuid::Uuid::new_v4().simple());
    let ts = Utc::now().timestamp();
    let sig = svix::sign(
        &svix::Secret::parse(WEBHOOK_SECRET).unwrap(),
        &id,
        ts,
        body.as_bytes(),
    );
    let res = app
        .client
        .post(app.url("/webhooks/resend"))
        .header("content-type", "application/json")
        .header("svix-id", &id)
        .header("svix-timestamp", ts.to_string())
        .header("svix-signature", sig)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
}

#[tokio::test]
async fn a_fresh_app_shows_slack_rows_and_email_missing_with_the_settings_to_set() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let (text, blocks) = status(&app).await;

    // Assert
    let slack = section(&blocks, "Slack");
    assert!(
        slack.contains(":white_check_mark: *Bot token*: set"),
        "{slack}"
    );
    assert!(
        slack.contains(":white_check_mark: *Signing secret*: set"),
        "{slack}"
    );
    assert!(
        slack.contains(":x: *Approvals channel*") && slack.contains("`WARMLINE_APPROVALS_CHANNEL`"),
        "{slack}"
    );
    let email = section(&blocks, "Email");
    assert!(
        email.contains(":x: *Provider*: no email provider: nothing can be sent → set `RESEND_API_KEY` or `SMTP_URL`"),
        "{email}"
    );
    assert!(
        email.contains(":x: *Sender*") && email.contains("`WARMLINE_EMAIL_FROM`"),
        "{email}"
    );
    let sms = section(&blocks, "SMS");
    assert!(
        sms.contains(":x: *Provider*: no SMS provider: nothing can be sent → set `TWILIO_ACCOUNT_SID` and `TWILIO_AUTH_TOKEN`"),
        "{sms}"
    );
    assert!(
        section(&blocks, "WhatsApp").contains(":x: *Provider*: no WhatsApp provider: nothing can be sent → set `WHATSAPP_ACCESS_TOKEN`, `WHATSAPP_PHONE_NUMBER_ID` and `WHATSAPP_BUSINESS_ACCOUNT_ID`"),
        "{blocks}"
    );
    assert!(
        section(&blocks, "Instagram").contains(":x: *Provider*: no Instagram provider: nothing can be sent → set `INSTAGRAM_ACCESS_TOKEN` and `INSTAGRAM_ACCOUNT_ID`"),
        "{blocks}"
    );
    let platform = section(&blocks, "warmline");
    for setting in ["WARMLINE_PUBLIC_URL", "WARMLINE_API_KEYS", "SENTRY_DSN"] {
        assert!(
            platform.contains(&format!("`{setting}`")),
            "{setting}: {platform}"
        );
    }
    // Approvals channel, digest channel, approvers; email provider, sender;
    // SMS provider; public URL, API keys, error monitoring.
    // Slack 3, email 2, SMS, WhatsApp, Instagram, warmline 3.
    assert!(text.contains("11 missing"), "{text}");
    for secret in [BOT_TOKEN, SIGNING_SECRET] {
        assert!(
            !blocks.contains(secret) && !text.contains(secret),
            "a secret leaked"
        );
    }
}

#[tokio::test]
async fn resend_with_a_secret_and_a_verified_event_is_all_green_and_says_when() {
    // Arrange
    let app = spawn_app_with(|s| {
        s.providers.resend = ResendSettings {
            api_key: Some(RESEND_KEY.to_string().into()),
            url: Some("http://127.0.0.1:9".into()),
            webhook_secret: Some(WEBHOOK_SECRET.to_string().into()),
            ..Default::default()
        };
        s.email.from = Some("Team <team@example.com>".into());
        s.api.keys = API_KEYS.map(|k| k.to_string().into()).to_vec();
        s.server.public_url = Some("https://warmline.example.org/".parse().unwrap());
    })
    .await;
    let (_, before) = status(&app).await;
    verified_resend_event(&app).await;

    // Act
    let (text, blocks) = status(&app).await;

    // Assert
    let email_before = section(&before, "Email");
    assert!(
        email_before.contains("webhook secret set · last verified event: never"),
        "{email_before}"
    );
    let email = section(&blocks, "Email");
    assert!(
        email.contains(
            ":white_check_mark: *Provider*: Resend, sending as Team &lt;team@example.com&gt; · up to 2/s"
        ),
        "{email}"
    );
    assert!(email.contains(":white_check_mark: *Sender*"), "{email}");
    assert!(
        email.contains(
            ":white_check_mark: *Delivery webhook*: Resend: webhook secret set · last verified event just now"
        ),
        "{email}"
    );
    assert!(!email.contains(":x:"), "{email}");
    let platform = section(&blocks, "warmline");
    assert!(
        platform.contains(":white_check_mark: *JSON API keys*: 2 keys configured"),
        "{platform}"
    );
    assert!(
        platform.contains(":white_check_mark: *Public URL*: https://warmline.example.org/"),
        "{platform}"
    );
    for secret in [
        RESEND_KEY,
        WEBHOOK_SECRET,
        API_KEYS[0],
        API_KEYS[1],
        BOT_TOKEN,
    ] {
        assert!(
            !blocks.contains(secret) && !text.contains(secret),
            "a secret leaked into the status"
        );
    }
}

#[tokio::test]
async fn resend_without_a_webhook_secret_names_the_setting() {
    // Arrange
    let app = spawn_app_with(|s| {
        s.providers.resend = ResendSettings {
            api_key: Some(RESEND_KEY.to_string().into()),
            url: Some("http://127.0.0.1:9".into()),
            ..Default::default()
        };
    })
    .await;

    // Act
    let (_, blocks) = status(&app).await;

    // Assert
    let email = section(&blocks, "Email");
    assert!(
        email.contains(":x: *Delivery webhook*: Resend: no valid webhook secret")
            && email.contains("→ set `RESEND_WEBHOOK_SECRET`"),
        "{email}"
    );
}

#[tokio::test]
async fn smtp_has_no_webhooks_and_reports_refusals_at_send_time() {
    // Arrange
    let app = spawn_app_with(|s| {
        s.providers.smtp = SmtpSettings {
            url: Some(format!("smtp://user:{SMTP_PASSWORD}@127.0.0.1:2525").into()),
            ..Default::default()
        };
    })
    .await;

    // Act
    let (text, blocks) = status(&app).await;

    // Assert
    let email = section(&blocks, "Email");
    assert!(
        email.contains(":white_check_mark: *Provider*: SMTP · up to "),
        "{email}"
    );
    assert!(
        email.contains(
            ":heavy_minus_sign: *Delivery webhook*: SMTP has no delivery webhooks; a refusal comes back as an SMTP error at send time"
        ),
        "{email}"
    );
    assert!(
        !blocks.contains(SMTP_PASSWORD) && !text.contains(SMTP_PASSWORD),
        "the SMTP URL's password leaked"
    );
}
