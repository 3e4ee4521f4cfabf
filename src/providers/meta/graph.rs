//! What WhatsApp and Instagram share of Meta's Graph API: the error
//! envelope, the usage header that says how close the app is to its rate
//! limit, and the HTTP client.
//!
//! The envelope is `{"error":{"message","type","code","error_subcode",
//! "error_data":{"details"},"fbtrace_id"}}`; callers classify on `code`
//! (and `error_subcode`), never on the text, which Meta rewords.
//!
//! `x-business-use-case-usage` is `{"<id>":[{"type","call_count",
//! "total_cputime","total_time","estimated_time_to_regain_access"}]}`:
//! `estimated_time_to_regain_access` is in minutes; any of the percentages
//! at 100 means the next call will be throttled.

use std::time::Duration;

use serde::Deserialize;

/// One attempt's budget.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// The header carrying the business use case's usage.
pub const USAGE_HEADER: &str = "x-business-use-case-usage";

/// A Graph API error.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct GraphError {
    #[serde(default)]
    pub message: String,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub code: Option<i64>,
    #[serde(default)]
    pub error_subcode: Option<i64>,
    #[serde(default)]
    pub error_data: Option<ErrorData>,
    #[serde(default)]
    pub fbtrace_id: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct ErrorData {
    #[serde(default)]
    pub details: Option<String>,
}

#[derive(Deserialize)]
struct Envelope {
    error: GraphError,
}

impl GraphError {
    /// The envelope's error, when the body is one.
    pub fn parse(body: &[u8]) -> Option<Self> {
        serde_json::from_slice::<Envelope>(body)
            .ok()
            .map(|e| e.error)
    }

    /// `error_data.details`, else the message, masked (a number or an
    /// address can appear in either).
    pub fn detail(&self) -> String {
        let text = self
            .error_data
            .as_ref()
            .and_then(|d| d.details.as_deref())
            .filter(|d| !d.trim().is_empty())
            .unwrap_or(&self.message);
        crate::domain::mask_addresses(text)
    }
}

#[derive(Deserialize)]
struct Usage {
    #[serde(default)]
    call_count: Option<f64>,
    #[serde(default)]
    total_cputime: Option<f64>,
    #[serde(default)]
    total_time: Option<f64>,
    #[serde(default)]
    estimated_time_to_regain_access: Option<f64>,
}

/// How long the usage header says to hold off: its
/// `estimated_time_to_regain_access` (minutes) when positive, else a minute
/// when a count reached 100 % (Meta's windows are an hour rolling; a minute
/// lets the usage fall before the next probe). `None` when there is room.
pub fn pushback(header: Option<&str>) -> Option<Duration> {
    let parsed: std::collections::HashMap<String, Vec<Usage>> =
        serde_json::from_str(header?).ok()?;
    let mut wait: Option<Duration> = None;
    for usage in parsed.values().flatten() {
        let this = match usage.estimated_time_to_regain_access {
            Some(m) if m > 0.0 && m.is_finite() => Some(Duration::from_secs_f64(m * 60.0)),
            _ if [usage.call_count, usage.total_cputime, usage.total_time]
                .into_iter()
                .flatten()
                .any(|p| p >= 100.0) =>
            {
                Some(Duration::from_secs(60))
            }
            _ => None,
        };
        wait = wait.max(this);
    }
    wait
}

/// The HTTP client both providers use: a timeout on every request.
pub fn client() -> Result<reqwest::Client, reqwest::Error> {
    crate::install_crypto_provider();
    reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .user_agent(concat!("warmline/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// The `Authorization` header for a Graph token, marked sensitive so no
/// debug output of the request shows it.
pub fn bearer(token: &secrecy::SecretString) -> reqwest::header::HeaderValue {
    use secrecy::ExposeSecret;
    let mut v =
        reqwest::header::HeaderValue::from_str(&format!("Bearer {}", token.expose_secret()))
            .unwrap_or_else(|_| reqwest::header::HeaderValue::from_static("Bearer invalid"));
    v.set_sensitive(true);
    v
}

/// What one Graph `POST …/messages` answered: its status and body, and the
/// hold its usage header asks for. Both providers send through it and
/// classify the answer with their own table.
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
    pub pushback: Option<Duration>,
}

/// POSTs `body` as JSON with the token. A transport failure (or a body
/// lost after a non-2xx status) is the `Retryable` outcome to return; a 2xx
/// whose body cannot be read is still an answer (the call took effect).
pub async fn post(
    client: &reqwest::Client,
    provider: &str,
    url: &str,
    token: &secrecy::SecretString,
    body: &serde_json::Value,
) -> Result<Answer, crate::providers::SendOutcome> {
    let response = client
        .post(url)
        .header(reqwest::header::AUTHORIZATION, bearer(token))
        .json(body)
        .send()
        .await
        .map_err(|e| transport_failure(provider, &e))?;
    let status = response.status().as_u16();
    let pushback = pushback(
        response
            .headers()
            .get(USAGE_HEADER)
            .and_then(|v| v.to_str().ok()),
    );
    let body = match response.bytes().await {
        Ok(b) => b.to_vec(),
        Err(_) if (200..300).contains(&status) => Vec::new(),
        Err(e) => return Err(transport_failure(provider, &e)),
    };
    Ok(Answer {
        status,
        body,
        pushback,
    })
}

/// A transport failure, without reqwest's text (it may carry the URL).
pub fn transport_failure(provider: &str, e: &reqwest::Error) -> crate::providers::SendOutcome {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "transport error"
    };
    crate::providers::SendOutcome::Retryable {
        error: format!("{provider}: {what}"),
        retry_after: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_envelope_reads_code_subcode_and_details() {
        let body = br#"{"error":{"message":"(#131056) (Business Account, Consumer Account) pair rate limit hit","type":"OAuthException","code":131056,"error_subcode":2494055,"error_data":{"messaging_product":"whatsapp","details":"Message failed to send to +16505551234"},"fbtrace_id":"Az8or2yhqkZfEZ-_4Qn_Bam","is_transient":false}}"#;
        let e = GraphError::parse(body).unwrap();
        assert_eq!(e.code, Some(131056));
        assert_eq!(e.error_subcode, Some(2494055));
        assert_eq!(e.kind.as_deref(), Some("OAuthException"));
        assert!(!e.detail().contains("6505551234"), "{}", e.detail());
        assert!(GraphError::parse(b"<html>").is_none());
        assert!(GraphError::parse(br#"{"messages":[]}"#).is_none());
    }

    #[test]
    fn usage_pushes_back_by_its_estimate_or_at_100_percent() {
        assert_eq!(pushback(None), None);
        assert_eq!(pushback(Some("garbage")), None);
        let room = r#"{"1":[{"type":"whatsapp","call_count":40,"total_cputime":5,"total_time":5,"estimated_time_to_regain_access":0}]}"#;
        assert_eq!(pushback(Some(room)), None);
        let full = r#"{"1":[{"type":"whatsapp","call_count":100,"total_cputime":5,"total_time":5,"estimated_time_to_regain_access":0}]}"#;
        assert_eq!(pushback(Some(full)), Some(Duration::from_secs(60)));
        let est =
            r#"{"1":[{"type":"whatsapp","call_count":100,"estimated_time_to_regain_access":3}]}"#;
        assert_eq!(pushback(Some(est)), Some(Duration::from_secs(180)));
    }
}
