//! The gate every Slack HTTP request passes: a body-size limit (413), the
//! `ssl_check=1` probe (200, no effect), and the v0 signature (401 when
//! missing, wrong or older than 5 minutes). Only a request that passes all
//! three reaches a handler, so a rejected request records and changes nothing.

use axum::{
    body::Body,
    extract::{Request, State},
    http::header::{CONTENT_LENGTH, CONTENT_TYPE},
    middleware::Next,
    response::{IntoResponse, Response},
};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use slack_morphism::signature_verifier::SlackEventSignatureVerifier;

use super::error::IngressError;
use crate::state::App;

pub async fn verify_slack_request(State(app): State<App>, req: Request, next: Next) -> Response {
    match check(&app, req).await {
        Ok(Checked::Pass(req)) => next.run(*req).await,
        Ok(Checked::SslCheck) => (axum::http::StatusCode::OK, "").into_response(),
        Err(e) => {
            metrics::counter!("slack_requests_rejected_total", "reason" => reason(&e)).increment(1);
            e.into_response()
        }
    }
}

enum Checked {
    Pass(Box<Request>),
    SslCheck,
}

fn reason(e: &IngressError) -> &'static str {
    match e {
        IngressError::Unauthorized(_) => "signature",
        IngressError::TooLarge(_) => "too_large",
        IngressError::Malformed(_) => "malformed",
        IngressError::Unexpected(_) => "error",
    }
}

async fn check(app: &App, req: Request) -> Result<Checked, IngressError> {
    let limit = app.settings.server.max_body_bytes;
    let (parts, body) = req.into_parts();
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(IngressError::TooLarge(limit));
    }
    let bytes = match Limited::new(body, limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<LengthLimitError>() => return Err(IngressError::TooLarge(limit)),
        Err(_) => {
            return Err(IngressError::Malformed(
                "could not read the request body".into(),
            ));
        }
    };

    let is_form = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if is_form && form_urlencoded_has(&bytes, "ssl_check", "1") {
        return Ok(Checked::SslCheck);
    }

    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(signature), Some(timestamp)) = (
        header(SlackEventSignatureVerifier::SLACK_SIGNED_HASH_HEADER),
        header(SlackEventSignatureVerifier::SLACK_SIGNED_TIMESTAMP),
    ) else {
        return Err(IngressError::Unauthorized(
            "missing Slack signature headers",
        ));
    };
    let body_text = std::str::from_utf8(&bytes)
        .map_err(|_| IngressError::Unauthorized("request body is not UTF-8"))?;
    let verifier = app.verifier.as_ref().ok_or(IngressError::Unauthorized(
        "SLACK_SIGNING_SECRET is not configured",
    ))?;
    verify(verifier, signature, body_text, timestamp)?;
    Ok(Checked::Pass(Box::new(Request::from_parts(
        parts,
        Body::from(bytes),
    ))))
}

/// Checks a v0 signature and its 5-minute window.
pub fn verify(
    verifier: &SlackEventSignatureVerifier,
    signature: &str,
    body: &str,
    timestamp: &str,
) -> Result<(), IngressError> {
    verifier
        .verify(signature, body, timestamp)
        .map_err(|_| IngressError::Unauthorized("invalid or stale Slack signature"))
}

fn form_urlencoded_has(body: &[u8], key: &str, value: &str) -> bool {
    url::form_urlencoded::parse(body).any(|(k, v)| k == key && v == value)
}

/// Signs a body as Slack does. Used by the load benchmark and tests to build
/// genuine requests; the server itself only verifies.
pub fn sign(secret: &str, timestamp: &str, body: &str) -> String {
    use hmac::{Hmac, KeyInit, Mac};
    let mut mac =
        Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(format!("v0:{timestamp}:{body}").as_bytes());
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use slack_morphism::prelude::SlackSigningSecret;

    /// Slack's documented example (vector A in the platform notes): the HMAC
    /// matches; the 2018 timestamp is far outside the window, so the request
    /// is refused as stale even though it is correctly signed.
    #[test]
    fn slack_documented_vector_is_refused_as_stale() {
        let secret = SlackSigningSecret::new("8f742231b10e8888abcd99yyyzzz85a5".into());
        let verifier = SlackEventSignatureVerifier::new(&secret);
        let body = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
        let sig = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
        assert_eq!(
            crate::slack::ingress::sign("8f742231b10e8888abcd99yyyzzz85a5", "1531420618", body),
            sig
        );
        assert!(verify(&verifier, sig, body, "1531420618").is_err());
    }

    #[test]
    fn fresh_signatures_pass_and_tampering_fails() {
        let secret_text = "fa2c05deeef5a4077494e89f54394de0";
        let verifier =
            SlackEventSignatureVerifier::new(&SlackSigningSecret::new(secret_text.into()));
        let ts = crate::clock::now().timestamp().to_string();
        let sig = sign(secret_text, &ts, "test-body");
        assert!(verify(&verifier, &sig, "test-body", &ts).is_ok());
        assert!(verify(&verifier, &sig, "test-body!", &ts).is_err());
        let old = (crate::clock::now().timestamp() - 301).to_string();
        let stale = sign(secret_text, &old, "test-body");
        assert!(verify(&verifier, &stale, "test-body", &old).is_err());
    }

    #[test]
    fn slack_morphism_vector_b_matches_our_signer() {
        assert_eq!(
            sign(
                "fa2c05deeef5a4077494e89f54394de0",
                "1531420618",
                "test-body"
            ),
            "v0=baa91ef62d346e56607bbdd278a8acd570b91226854f15a382f43d33be42f666"
        );
    }

    #[test]
    fn ssl_check_detection() {
        assert!(form_urlencoded_has(
            b"ssl_check=1&token=x",
            "ssl_check",
            "1"
        ));
        assert!(!form_urlencoded_has(
            b"text=ssl_check%3D1",
            "ssl_check",
            "1"
        ));
    }
}
