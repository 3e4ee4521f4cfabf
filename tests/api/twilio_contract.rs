//! Contract tests: the Twilio client against Prism mocking Twilio's
//! official OpenAPI spec (`../shared/specs/twilio_api_v2010.json`, or
//! `$WARMLINE_SPECS_DIR/twilio_api_v2010.json`). With `--errors`, Prism
//! answers 422 to a request the spec does not allow (form fields, the
//! account SID's pattern, the E.164 `To`, the `StatusCallback` URI), so a
//! request our client builds wrongly fails here. Prism comes from
//! `scripts/ensure-test-tools`; without it these tests fail, saying so.

use warmline::{
    domain::{Channel, MessageKind},
    providers::{
        OutgoingMessage, Provider, SendOutcome,
        twilio::{Sender, TwilioConfig, TwilioProvider},
    },
};

use crate::resend_contract::Prism;

const SPEC: &str = "twilio_api_v2010.json";
const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";
const SERVICE: &str = "MG0123456789abcdef0123456789abcdef";

fn provider(prism: &Prism, sender: Sender) -> TwilioProvider {
    TwilioProvider::new(TwilioConfig {
        account_sid: ACCOUNT.into(),
        auth_token: "contract_token".to_string().into(),
        sender,
        base_url: prism.base.clone(),
        status_callback: "https://warm.example.org/webhooks/twilio/status".into(),
        requests_per_second: 100.0,
        timeout: std::time::Duration::from_secs(30),
    })
    .unwrap()
}

fn sms(n: usize) -> OutgoingMessage {
    OutgoingMessage {
        id: format!("msg_{n:032x}"),
        channel: Channel::Sms,
        kind: MessageKind::Marketing,
        to: format!("+1415555{n:04}"),
        content: serde_json::json!({"text": "Spring is here. Reply STOP to opt out."}),
    }
}

#[tokio::test]
async fn the_client_s_requests_match_twilio_s_published_spec() {
    // Arrange
    let prism = Prism::serving(SPEC);
    let from = provider(
        &prism,
        Sender::From(warmline::domain::E164Phone::parse("+15005550006", None).unwrap()),
    );
    let service = provider(&prism, Sender::MessagingService(SERVICE.into()));

    // Act
    let by_number = from.send(&[sms(1)]).await;
    let by_service = service.send(&[sms(2)]).await;

    // Assert: Prism answered 201 with the spec's Message resource, so the
    // requests matched (an invalid one gets a 422, classified permanent).
    for outcome in [&by_number[0], &by_service[0]] {
        assert!(
            matches!(
                outcome,
                SendOutcome::Accepted {
                    provider_message_id: Some(sid)
                } if sid.starts_with("SM")
            ),
            "{outcome:?}\n{}",
            prism.log_text()
        );
    }
}

#[tokio::test]
async fn prism_refuses_what_the_spec_refuses() {
    // Arrange: proof that validation is on, so the test above means something.
    let prism = Prism::serving(SPEC);
    let client = reqwest::Client::new();
    let url = |account: &str| format!("{}/2010-04-01/Accounts/{account}/Messages.json", prism.base);
    let valid = [
        ("To", "+14155550100"),
        ("From", "+15005550006"),
        ("Body", "Hi"),
    ];

    // Act
    let ok = client
        .post(url(ACCOUNT))
        .basic_auth(ACCOUNT, Some("t"))
        .form(&valid)
        .send()
        .await
        .unwrap();
    let no_to = client
        .post(url(ACCOUNT))
        .basic_auth(ACCOUNT, Some("t"))
        .form(&valid[1..])
        .send()
        .await
        .unwrap();
    let bad_callback = client
        .post(url(ACCOUNT))
        .basic_auth(ACCOUNT, Some("t"))
        .form(&[
            ("To", "+14155550100"),
            ("From", "+15005550006"),
            ("Body", "Hi"),
            ("StatusCallback", "not a url"),
        ])
        .send()
        .await
        .unwrap();
    let no_auth = client.post(url(ACCOUNT)).form(&valid).send().await.unwrap();

    // Assert
    assert_eq!(ok.status(), 201, "{}", prism.log_text());
    assert_eq!(no_to.status(), 422);
    assert_eq!(bad_callback.status(), 422);
    assert_eq!(no_auth.status(), 401);
}
