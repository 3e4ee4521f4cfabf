//! `X-Hub-Signature-256`: how Meta signs every webhook of an app (WhatsApp
//! and Instagram alike).
//!
//! The header is `sha256=` followed by the lowercase hex HMAC-SHA256 of the
//! raw request body, keyed with the app secret (`META_APP_SECRET`). Meta
//! signs the bytes as sent (non-ASCII escaped as `\uXXXX`, `/` escaped), so
//! the check runs on the raw bytes, never on re-serialised JSON.
//!
//! Invariants: the comparison is constant-time (`hmac`'s `verify_slice`);
//! an error says only why the signature failed, never the expected value.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The header Meta signs with.
pub const HEADER: &str = "x-hub-signature-256";

type HmacSha256 = Hmac<Sha256>;

/// Why a signature was refused (every variant is a 403).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing header X-Hub-Signature-256")]
    Missing,
    #[error("X-Hub-Signature-256 is not `sha256=` followed by 64 hex digits")]
    Garbled,
    #[error("X-Hub-Signature-256 does not match the body")]
    NoMatch,
}

fn mac(secret: &str, body: &[u8]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(body);
    mac
}

/// The header value Meta would send for `body`.
pub fn sign(secret: &str, body: &[u8]) -> String {
    format!(
        "sha256={}",
        hex::encode(mac(secret, body).finalize().into_bytes())
    )
}

/// Checks `header` (the `X-Hub-Signature-256` value, if any) over `body`.
pub fn verify(secret: &str, body: &[u8], header: Option<&str>) -> Result<(), SignatureError> {
    let header = header.map(str::trim).filter(|h| !h.is_empty());
    let hex_sig = header
        .ok_or(SignatureError::Missing)?
        .strip_prefix("sha256=")
        .ok_or(SignatureError::Garbled)?;
    if hex_sig.len() != 64 {
        return Err(SignatureError::Garbled);
    }
    let expected = hex::decode(hex_sig).map_err(|_| SignatureError::Garbled)?;
    mac(secret, body)
        .verify_slice(&expected)
        .map_err(|_| SignatureError::NoMatch)
}

/// JSON as Meta serialises webhook bodies: non-ASCII as lowercase `\uXXXX`
/// (surrogate pairs beyond the BMP) and `/` escaped as `\/`, so a fake's
/// bodies exercise what hashing re-serialised JSON would get wrong.
pub fn meta_json(value: &serde_json::Value) -> String {
    let plain = serde_json::to_string(value).expect("JSON serialises");
    let mut out = String::with_capacity(plain.len() + 16);
    let mut in_string = false;
    let mut escaped = false;
    for c in plain.chars() {
        if in_string {
            if escaped {
                escaped = false;
                out.push(c);
                continue;
            }
            match c {
                '\\' => {
                    escaped = true;
                    out.push(c);
                }
                '"' => {
                    in_string = false;
                    out.push(c);
                }
                '/' => out.push_str("\\/"),
                c if !c.is_ascii() => {
                    let mut units = [0u16; 2];
                    for u in c.encode_utf16(&mut units) {
                        out.push_str(&format!("\\u{u:04x}"));
                    }
                }
                c => out.push(c),
            }
        } else {
            if c == '"' {
                in_string = true;
            }
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // The community vector from pywa's tests (shared doc §3.5), byte-exact.
    const SECRET: &str = "1222e786b144d0e85b9f365372d93676";
    const BODY: &str = r#"{"object":"whatsapp_business_account","entry":[{"id":"264937493375603","changes":[{"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550953877","phone_number_id":"277321005464405"},"contacts":[{"profile":{"name":"PyWa Tests"},"wa_id":"972544401243"}],"messages":[{"from":"972544401243","id":"wamid.HBgMOTcyNTQ0NDAxMjQzFQIAEhggM0RFQTNCMEEwRTY3QzUwODYzMDc4NjQ4QzM4ODAxM0YA","timestamp":"1730231903","text":{"body":"Hey there! I am using PyWa."},"type":"text"}]},"field":"messages"}]}]}"#;
    const EXPECTED: &str =
        "sha256=54edfa1d7259e0eb13c677cc7d73d1b5c86cfa12433d19156e058ab9251bc441";

    #[test]
    fn the_pywa_vector_signs_and_verifies_byte_exact() {
        assert_eq!(sign(SECRET, BODY.as_bytes()), EXPECTED);
        assert_eq!(verify(SECRET, BODY.as_bytes(), Some(EXPECTED)), Ok(()));
    }

    #[test]
    fn a_tampered_body_or_a_wrong_secret_does_not_match() {
        let tampered = BODY.replace("Hey there", "Hey t here");
        assert_eq!(
            verify(SECRET, tampered.as_bytes(), Some(EXPECTED)),
            Err(SignatureError::NoMatch)
        );
        assert_eq!(
            verify("another-secret", BODY.as_bytes(), Some(EXPECTED)),
            Err(SignatureError::NoMatch)
        );
    }

    #[test]
    fn a_missing_or_garbled_header_is_refused_without_the_expected_value() {
        assert_eq!(
            verify(SECRET, BODY.as_bytes(), None),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify(SECRET, BODY.as_bytes(), Some(" ")),
            Err(SignatureError::Missing)
        );
        for h in [
            "54edfa1d7259e0eb13c677cc7d73d1b5c86cfa12433d19156e058ab9251bc441",
            "sha1=54edfa1d",
            "sha256=xyz",
            "sha256=54edfa",
        ] {
            let e = verify(SECRET, BODY.as_bytes(), Some(h)).unwrap_err();
            assert_eq!(e, SignatureError::Garbled, "{h}");
            assert!(!e.to_string().contains("54edfa"), "{e}");
        }
    }

    #[test]
    fn meta_json_escapes_non_ascii_and_slashes_inside_strings_only() {
        let v = serde_json::json!({"text": "café 👋 a/b \"q\"", "n": 1});
        let s = meta_json(&v);
        assert_eq!(s, r#"{"n":1,"text":"caf\u00e9 \ud83d\udc4b a\/b \"q\""}"#);
        assert_eq!(serde_json::from_str::<serde_json::Value>(&s).unwrap(), v);
    }
}
