//! Contract tests: the WhatsApp client against Prism mocking Meta's
//! official spec (`../shared/specs/whatsapp-business-messaging-api_v23.0.yaml`,
//! or `$WARMLINE_SPECS_DIR/…`). With `--errors`, Prism answers 422 to a
//! request the spec does not allow, so a request our client builds wrongly
//! fails here.
//!
//! The spec lags Meta's changelog on one field: `biz_opaque_callback_data`
//! (on every send, echoed in status webhooks; shared doc §3.2) is not in
//! its `Message` schemas, whose `additionalProperties: false` would refuse
//! every request for it alone. So the client talks to Prism through
//! [`StripOpaque`], a local forwarder that checks the field is there and
//! is the ledger id, removes it, and passes everything else through
//! unchanged: every other field is still validated by the spec.
//!
//! The spec is also looser than Meta the other way: it marks
//! `template.language.policy` required although its own examples (and
//! Meta's API) omit it. Prism has no switch to relax one property
//! (`--errors` is all or nothing), so the forwarder adds
//! `"policy": "deterministic"` (the one value Meta ever took) when the
//! client left it out, and records that it did; `name`, `code` and the
//! components are validated as sent.

use warmline::{
    domain::{Channel, MessageKind},
    providers::{
        OutgoingMessage, Provider, SendOutcome,
        meta::settings::MetaSettings,
        whatsapp::{WhatsappProvider, settings::WhatsappSettings},
    },
};

use std::sync::{Arc, Mutex};

use axum::{Router, body::Bytes, extract::State, http::HeaderMap, response::IntoResponse};

use crate::resend_contract::Prism;

/// Forwards to Prism without `biz_opaque_callback_data`, recording what it
/// removed.
struct StripOpaque {
    base: String,
    seen: Arc<Mutex<Vec<Option<String>>>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for StripOpaque {
    fn drop(&mut self) {
        self.server.abort();
    }
}

#[derive(Clone)]
struct Forward {
    prism: String,
    seen: Arc<Mutex<Vec<Option<String>>>>,
    client: reqwest::Client,
}

async fn forward(
    State(f): State<Forward>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    let mut json: serde_json::Value = serde_json::from_slice(&body).expect("a JSON body");
    let opaque = json
        .as_object_mut()
        .and_then(|o| o.remove("biz_opaque_callback_data"))
        .and_then(|v| v.as_str().map(str::to_string));
    f.seen.lock().unwrap().push(opaque);
    if let Some(language) = json.pointer_mut("/template/language")
        && language.get("policy").is_none()
    {
        language["policy"] = serde_json::json!("deterministic");
    }
    let mut request = f
        .client
        .post(format!("{}{}", f.prism, uri.path()))
        .json(&json);
    if let Some(auth) = headers.get(axum::http::header::AUTHORIZATION) {
        request = request.header(axum::http::header::AUTHORIZATION, auth.as_bytes());
    }
    let response = request.send().await.expect("prism answers");
    let status = axum::http::StatusCode::from_u16(response.status().as_u16()).unwrap();
    let bytes = response.bytes().await.unwrap_or_default();
    (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        bytes,
    )
        .into_response()
}

impl StripOpaque {
    async fn start(prism: &Prism) -> Self {
        warmline::install_crypto_provider();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let app = Router::new().fallback(forward).with_state(Forward {
            prism: prism.base.clone(),
            seen: seen.clone(),
            client: reqwest::Client::new(),
        });
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            base: format!("http://{addr}"),
            seen,
            server,
        }
    }
}

const SPEC: &str = "whatsapp-business-messaging-api_v23.0.yaml";
const PHONE_ID: &str = "106540352242922";

fn provider(proxy: &StripOpaque) -> WhatsappProvider {
    WhatsappProvider::from_settings(
        &WhatsappSettings {
            access_token: Some("EAAcontract".to_string().into()),
            phone_number_id: Some(PHONE_ID.into()),
            business_account_id: Some("264937493375603".into()),
            requests_per_second: None,
        },
        &MetaSettings {
            graph_url: Some(proxy.base.clone()),
            ..Default::default()
        },
    )
    .unwrap()
}

fn message(n: usize, content: serde_json::Value) -> OutgoingMessage {
    OutgoingMessage {
        id: format!("msg_{n:032x}"),
        channel: Channel::Whatsapp,
        kind: MessageKind::Marketing,
        to: format!("+1415555{n:04}"),
        content,
    }
}

#[tokio::test]
async fn the_client_s_requests_match_meta_s_published_spec() {
    // Arrange
    let prism = Prism::serving(SPEC);
    let proxy = StripOpaque::start(&prism).await;
    let p = provider(&proxy);

    // Act
    let text = p
        .send(&[message(
            1,
            serde_json::json!({"text": "Thanks for writing!"}),
        )])
        .await;
    let template = p
        .send(&[message(
            2,
            serde_json::json!({"text": "Hi Ada", "template": {"name": "spring_offer", "language": "en_US", "category": "MARKETING", "parameters": ["Ada"]}}),
        )])
        .await;

    // Assert: Prism answered 200 with the spec's response, so the requests
    // matched (an invalid one gets a 422, classified permanent).
    for outcome in [&text[0], &template[0]] {
        assert!(
            matches!(
                outcome,
                SendOutcome::Accepted {
                    provider_message_id: Some(_)
                }
            ),
            "{outcome:?}\n{}",
            prism.log_text()
        );
    }
    assert_eq!(
        *proxy.seen.lock().unwrap(),
        [
            Some(format!("msg_{:032x}", 1)),
            Some(format!("msg_{:032x}", 2))
        ],
        "every request carried its ledger id"
    );
}

#[tokio::test]
async fn prism_refuses_what_the_spec_refuses() {
    // Arrange: proof that validation is on, so the test above means something.
    let prism = Prism::serving(SPEC);
    warmline::install_crypto_provider();
    let client = reqwest::Client::new();
    let url = format!("{}/v23.0/{PHONE_ID}/messages", prism.base);
    let valid = serde_json::json!({"messaging_product":"whatsapp","recipient_type":"individual","to":"14155550100","type":"text","text":{"body":"Hi","preview_url":false}});

    // Act
    let ok = client
        .post(&url)
        .bearer_auth("t")
        .json(&valid)
        .send()
        .await
        .unwrap();
    let mut no_product = valid.clone();
    no_product
        .as_object_mut()
        .unwrap()
        .remove("messaging_product");
    let no_product = client
        .post(&url)
        .bearer_auth("t")
        .json(&no_product)
        .send()
        .await
        .unwrap();
    let mut bad_body = valid.clone();
    bad_body["text"] = serde_json::json!({"body": 42});
    let bad_body = client
        .post(&url)
        .bearer_auth("t")
        .json(&bad_body)
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(ok.status(), 200, "{}", prism.log_text());
    assert_eq!(no_product.status(), 422, "{}", prism.log_text());
    assert_eq!(bad_body.status(), 422, "{}", prism.log_text());
}
