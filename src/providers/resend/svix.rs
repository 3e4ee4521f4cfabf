//! Svix / Standard Webhooks signatures, verified by hand (HMAC-SHA256).
//!
//! The scheme, as Svix's SDKs implement it:
//! - headers `svix-id`, `svix-timestamp` (unix seconds) and `svix-signature`;
//!   the unbranded `webhook-id`, `webhook-timestamp`, `webhook-signature` are
//!   read when the branded ones are absent;
//! - the secret is `whsec_<base64>`; the decoded bytes are the HMAC key;
//! - the signed content is `{id}.{timestamp}.{raw body}`, the signature is
//!   its HMAC-SHA256 in standard base64;
//! - the signature header holds space-separated `version,signature` entries.
//!
//! Invariants:
//! - Only `v1` entries are checked; a request passes when **any** of them
//!   matches (a sender rotating secrets signs with both), compared in
//!   constant time.
//! - The timestamp must be within [`TOLERANCE_SECS`] of `now`, in both
//!   directions, so a captured request cannot be replayed later. `now` is a
//!   parameter so tests can pin the clock to the published vectors.
//! - Verification happens on the raw bytes, before any parsing, and says
//!   only *why* it failed — never the expected signature or the secret.

use axum::http::HeaderMap;
use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// Five minutes, as Svix's libraries use.
pub const TOLERANCE_SECS: i64 = 5 * 60;

type HmacSha256 = Hmac<Sha256>;

/// Why a request's signature was refused. Every variant is a 401.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    #[error("the timestamp header is not a unix time in seconds")]
    InvalidTimestamp,
    #[error("the timestamp is more than 5 minutes old")]
    TooOld,
    #[error("the timestamp is more than 5 minutes in the future")]
    TooNew,
    #[error("no v1 signature matches")]
    NoMatch,
}

/// The secret is not `whsec_<base64>` (a configuration error, not the
/// sender's fault).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the webhook secret is not `whsec_` followed by base64")]
pub struct InvalidSecret;

/// A decoded signing secret. Its `Debug` never shows the key.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

impl Secret {
    /// Parses `whsec_<base64>`. As Svix's libraries do, the prefix is
    /// optional; what follows must be non-empty standard base64.
    pub fn parse(text: &str) -> Result<Self, InvalidSecret> {
        let b64 = text.trim();
        let b64 = b64.strip_prefix("whsec_").unwrap_or(b64);
        let key = STANDARD.decode(b64).map_err(|_| InvalidSecret)?;
        if key.is_empty() {
            return Err(InvalidSecret);
        }
        Ok(Self(key))
    }

    fn mac(&self, id: &str, timestamp: &str, body: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }
}

/// The `svix-signature` value (`v1,<base64>`) for a message: what a sender
/// puts on the wire. Tests use it to build genuine requests.
pub fn sign(secret: &Secret, id: &str, timestamp: i64, body: &[u8]) -> String {
    let tag = secret
        .mac(id, &timestamp.to_string(), body)
        .finalize()
        .into_bytes();
    format!("v1,{}", STANDARD.encode(tag))
}

/// The headers of a signed request, read from either family of names.
#[derive(Debug, Clone, Copy)]
pub struct SignedHeaders<'a> {
    pub id: &'a str,
    pub timestamp: &'a str,
    pub signature: &'a str,
}

impl<'a> SignedHeaders<'a> {
    /// Reads `svix-*`, else `webhook-*`, header by header.
    pub fn from_headers(headers: &'a HeaderMap) -> Result<Self, SignatureError> {
        let get = |branded: &'static str, plain: &'static str| {
            headers
                .get(branded)
                .or_else(|| headers.get(plain))
                .and_then(|v| v.to_str().ok())
                .filter(|v| !v.trim().is_empty())
                .ok_or(SignatureError::MissingHeader(branded))
        };
        Ok(Self {
            id: get("svix-id", "webhook-id")?,
            timestamp: get("svix-timestamp", "webhook-timestamp")?,
            signature: get("svix-signature", "webhook-signature")?,
        })
    }
}

/// Verifies a request at time `now` (unix seconds). On success returns the
/// message id, the sender's de-duplication key.
pub fn verify<'a>(
    secret: &Secret,
    headers: &SignedHeaders<'a>,
    body: &[u8],
    now: i64,
) -> Result<&'a str, SignatureError> {
    let timestamp: i64 = headers
        .timestamp
        .trim()
        .parse()
        .map_err(|_| SignatureError::InvalidTimestamp)?;
    if now.saturating_sub(timestamp) > TOLERANCE_SECS {
        return Err(SignatureError::TooOld);
    }
    if timestamp > now.saturating_add(TOLERANCE_SECS) {
        return Err(SignatureError::TooNew);
    }
    // The content is signed with the timestamp exactly as sent.
    let expected = secret.mac(headers.id, headers.timestamp, body);
    let matched = headers
        .signature
        .split_whitespace()
        .filter_map(|entry| entry.split_once(','))
        .filter(|(version, _)| *version == "v1")
        .filter_map(|(_, sig)| STANDARD.decode(sig).ok())
        // `verify_slice` compares in constant time; a wrong length (a
        // truncated or empty signature) is refused outright.
        .any(|sig| expected.clone().verify_slice(&sig).is_ok());
    if matched {
        Ok(headers.id)
    } else {
        Err(SignatureError::NoMatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Vector 1 (Svix SDKs' "sign function works").
    const S1: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID1: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TS1: i64 = 1614265330;
    const BODY1: &str = r#"{"test": 2432232314}"#;
    const SIG1: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    /// Vector 2 (svix `rust/src/webhooks.rs` `test_sign`).
    const S2: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    const ID2: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
    const TS2: i64 = 1649367553;
    const BODY2: &str = r#"{"email":"test@example.com","username":"test_user"}"#;
    const SIG2: &str = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";

    fn secret(s: &str) -> Secret {
        Secret::parse(s).unwrap()
    }

    fn headers<'a>(id: &'a str, ts: &'a str, sig: &'a str) -> SignedHeaders<'a> {
        SignedHeaders {
            id,
            timestamp: ts,
            signature: sig,
        }
    }

    fn check(sig: &str, ts: &str, now: i64) -> Result<(), SignatureError> {
        verify(&secret(S1), &headers(ID1, ts, sig), BODY1.as_bytes(), now).map(|_| ())
    }

    #[test]
    fn published_vector_1_signs_and_verifies() {
        // Arrange
        let s = secret(S1);
        let ts = TS1.to_string();

        // Act
        let signed = sign(&s, ID1, TS1, BODY1.as_bytes());
        let verified = verify(&s, &headers(ID1, &ts, SIG1), BODY1.as_bytes(), TS1);

        // Assert
        assert_eq!(signed, SIG1);
        assert_eq!(verified, Ok(ID1));
    }

    #[test]
    fn published_vector_2_signs_and_verifies() {
        let s = secret(S2);
        assert_eq!(sign(&s, ID2, TS2, BODY2.as_bytes()), SIG2);
        assert_eq!(
            verify(
                &s,
                &headers(ID2, &TS2.to_string(), SIG2),
                BODY2.as_bytes(),
                TS2
            ),
            Ok(ID2)
        );
    }

    #[test]
    fn a_tampered_body_or_id_or_timestamp_is_refused() {
        let s = secret(S1);
        let ts = TS1.to_string();
        assert_eq!(
            verify(
                &s,
                &headers(ID1, &ts, SIG1),
                br#"{"test": 2432232315}"#,
                TS1
            ),
            Err(SignatureError::NoMatch)
        );
        assert_eq!(
            verify(&s, &headers("msg_other", &ts, SIG1), BODY1.as_bytes(), TS1),
            Err(SignatureError::NoMatch)
        );
        let later = (TS1 + 1).to_string();
        assert_eq!(
            verify(&s, &headers(ID1, &later, SIG1), BODY1.as_bytes(), TS1),
            Err(SignatureError::NoMatch)
        );
        // Another secret's signature of the same content.
        assert_eq!(
            verify(&secret(S2), &headers(ID1, &ts, SIG1), BODY1.as_bytes(), TS1),
            Err(SignatureError::NoMatch)
        );
    }

    #[test]
    fn missing_headers_are_named() {
        // Arrange: each header left out in turn.
        let full = [
            ("svix-id", ID1),
            ("svix-timestamp", "1614265330"),
            ("svix-signature", SIG1),
        ];
        for (left_out, _) in full {
            let mut map = HeaderMap::new();
            for (k, v) in full.iter().filter(|(k, _)| *k != left_out) {
                map.insert(*k, v.parse().unwrap());
            }

            // Act
            let got = SignedHeaders::from_headers(&map);

            // Assert
            assert_eq!(
                got.unwrap_err(),
                SignatureError::MissingHeader(left_out),
                "{left_out}"
            );
        }
    }

    #[test]
    fn unbranded_webhook_headers_are_accepted() {
        let mut map = HeaderMap::new();
        map.insert("webhook-id", ID1.parse().unwrap());
        map.insert("webhook-timestamp", TS1.to_string().parse().unwrap());
        map.insert("webhook-signature", SIG1.parse().unwrap());
        let h = SignedHeaders::from_headers(&map).unwrap();
        assert_eq!(verify(&secret(S1), &h, BODY1.as_bytes(), TS1), Ok(ID1));
    }

    #[test]
    fn a_non_numeric_timestamp_is_refused() {
        assert_eq!(
            check(SIG1, "1614265330a", TS1),
            Err(SignatureError::InvalidTimestamp)
        );
        assert_eq!(check(SIG1, "", TS1), Err(SignatureError::InvalidTimestamp));
    }

    #[test]
    fn a_partial_signature_is_refused() {
        assert_eq!(
            check("v1,", "1614265330", TS1),
            Err(SignatureError::NoMatch)
        );
        assert_eq!(check("v1", "1614265330", TS1), Err(SignatureError::NoMatch));
    }

    #[test]
    fn a_truncated_signature_is_refused() {
        let truncated = &SIG1[..SIG1.len() - 4];
        assert_eq!(
            check(truncated, "1614265330", TS1),
            Err(SignatureError::NoMatch)
        );
    }

    #[test]
    fn old_and_future_timestamps_are_refused_at_301_seconds() {
        // Arrange: genuine signatures, stamped 301 s either side of now.
        let s = secret(S1);
        let now = TS1;
        let old = now - 301;
        let future = now + 301;
        let old_sig = sign(&s, ID1, old, BODY1.as_bytes());
        let future_sig = sign(&s, ID1, future, BODY1.as_bytes());

        // Act / Assert
        assert_eq!(
            check(&old_sig, &old.to_string(), now),
            Err(SignatureError::TooOld)
        );
        assert_eq!(
            check(&future_sig, &future.to_string(), now),
            Err(SignatureError::TooNew)
        );
        // Exactly 300 s either way is still within the window.
        for edge in [now - 300, now + 300] {
            let sig = sign(&s, ID1, edge, BODY1.as_bytes());
            assert_eq!(check(&sig, &edge.to_string(), now), Ok(()), "{edge}");
        }
    }

    #[test]
    fn one_valid_entry_among_several_is_enough() {
        let header = format!(
            "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= v2,{} {SIG1} v1,AAAA",
            &SIG1[3..]
        );
        assert_eq!(check(&header, "1614265330", TS1), Ok(()));
    }

    #[test]
    fn only_v1_is_checked() {
        let v2 = format!("v2,{}", &SIG1[3..]);
        assert_eq!(check(&v2, "1614265330", TS1), Err(SignatureError::NoMatch));
    }

    #[test]
    fn secrets_must_be_base64() {
        assert!(Secret::parse("whsec_not base64!").is_err());
        assert!(Secret::parse("whsec_").is_err());
        // The prefix is optional, as in Svix's libraries.
        assert_eq!(
            sign(
                &Secret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap(),
                ID1,
                TS1,
                BODY1.as_bytes()
            ),
            SIG1
        );
        assert_eq!(format!("{:?}", secret(S1)), "Secret(…)");
    }
}
