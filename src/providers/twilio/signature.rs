//! `X-Twilio-Signature`: base64(HMAC-SHA1(auth token, URL + sorted form
//! parameters)), as twilio-python's `RequestValidator` computes it.
//!
//! The signed string is the full URL Twilio requested (scheme, host, port
//! if any, path, query), then for each form parameter name in sorted,
//! de-duplicated order, the name followed by each of its values, sorted and
//! de-duplicated, with no delimiters. Twilio is inconsistent about the
//! default port, so [`verify`] accepts the URL with and without `:443` /
//! `:80`. JSON bodies are signed as a URL with `bodySHA256=<hex sha256>` in
//! its query and no parameters; [`verify`] then checks the body's hash too.
//!
//! Invariants: comparisons are constant-time (`Mac::verify_slice`); errors
//! say why a signature failed, never the expected value.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};

type HmacSha1 = Hmac<Sha1>;

/// The header Twilio signs with.
pub const HEADER: &str = "X-Twilio-Signature";

/// Why a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("no X-Twilio-Signature header")]
    Missing,
    #[error("X-Twilio-Signature is not base64")]
    NotBase64,
    #[error("X-Twilio-Signature does not match")]
    Mismatch,
    #[error("the body does not match the bodySHA256 the URL was signed with")]
    BodyHash,
}

/// Form parameters as Twilio sends them (a name may repeat).
pub type Params = Vec<(String, String)>;

/// The string Twilio signs: `url`, then each sorted name with its sorted,
/// de-duplicated values.
pub fn signed_string(url: &str, params: &[(String, String)]) -> String {
    let mut by_name: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (k, v) in params {
        by_name.entry(k).or_default().insert(v);
    }
    let mut s = url.to_string();
    for (name, values) in by_name {
        for value in values {
            s.push_str(name);
            s.push_str(value);
        }
    }
    s
}

fn mac(auth_token: &str, url: &str, params: &[(String, String)]) -> HmacSha1 {
    let mut mac = HmacSha1::new_from_slice(auth_token.as_bytes()).expect("HMAC takes any key");
    mac.update(signed_string(url, params).as_bytes());
    mac
}

/// The signature Twilio sends for `url` and `params` (the fake signs with
/// it; tests compare it with the published vectors).
pub fn sign(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    base64::engine::general_purpose::STANDARD
        .encode(mac(auth_token, url, params).finalize().into_bytes())
}

/// The URL as given and with its default port toggled (`:443` for https,
/// `:80` for http, added when absent, removed when present): Twilio signs
/// either form.
fn port_variants(url: &str) -> Vec<String> {
    let mut out = vec![url.to_string()];
    let Some((scheme, rest)) = url.split_once("://") else {
        return out;
    };
    let default = match scheme {
        "https" => ":443",
        "http" => ":80",
        _ => return out,
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    // A port follows the last `:` outside an IPv6 literal's brackets.
    let host_end = authority.rfind(']').map_or(0, |i| i + 1);
    let has_port = authority[host_end..].contains(':');
    let toggled = match authority.strip_suffix(default) {
        Some(host) => host.to_string(),
        None if !has_port => format!("{authority}{default}"),
        None => return out,
    };
    out.push(format!("{scheme}://{toggled}{tail}"));
    out
}

/// Checks `header` (the `X-Twilio-Signature` value) for a request to `url`
/// with form `params` (empty for a JSON body, whose `body` is then checked
/// against the URL's `bodySHA256`).
pub fn verify(
    auth_token: &str,
    url: &str,
    params: &[(String, String)],
    body: &[u8],
    header: Option<&str>,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let given = base64::engine::general_purpose::STANDARD
        .decode(header.trim())
        .map_err(|_| SignatureError::NotBase64)?;
    let matched = port_variants(url)
        .iter()
        .any(|u| mac(auth_token, u, params).verify_slice(&given).is_ok());
    if !matched {
        return Err(SignatureError::Mismatch);
    }
    let body_hash = url::Url::parse(url).ok().and_then(|u| {
        u.query_pairs()
            .find(|(k, _)| k == "bodySHA256")
            .map(|(_, v)| v.into_owned())
    });
    if let Some(expected) = body_hash {
        let actual = hex::encode(Sha256::digest(body));
        // Both are public (the hash is in the URL); equality is enough.
        if !actual.eq_ignore_ascii_case(&expected) {
            return Err(SignatureError::BodyHash);
        }
    }
    Ok(())
}

/// Reads a form-encoded body into its parameters, in order.
pub fn form_params(body: &[u8]) -> Params {
    url::form_urlencoded::parse(body).into_owned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "12345";

    fn default_params() -> Params {
        [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675309"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    // The five vectors of twilio-python's tests/unit/test_request_validator.py
    // (../shared/docs/providers-messaging.md §2.6).

    #[test]
    fn vector_1_the_url_as_given() {
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        assert_eq!(
            sign(TOKEN, url, &default_params()),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        );
        assert_eq!(
            verify(
                TOKEN,
                url,
                &default_params(),
                b"",
                Some("RSOYDt4T1cUTdK1PDd93/VVr8B8=")
            ),
            Ok(())
        );
    }

    #[test]
    fn vectors_2_and_3_the_default_port_either_way() {
        let https = "https://mycompany.com:443/myapp.php?foo=1&bar=2";
        assert_eq!(
            sign(TOKEN, https, &default_params()),
            "kvajT1Ptam85bY51eRf/AJRuM3w="
        );
        let http = "http://mycompany.com:80/myapp.php?foo=1&bar=2";
        assert_eq!(
            sign(TOKEN, http, &default_params()),
            "0ZXoZLH/DfblKGATFgpif+LLRf4="
        );
        // Twilio signed with the port; we know the URL without it.
        assert_eq!(
            verify(
                TOKEN,
                "https://mycompany.com/myapp.php?foo=1&bar=2",
                &default_params(),
                b"",
                Some("kvajT1Ptam85bY51eRf/AJRuM3w=")
            ),
            Ok(())
        );
        // Twilio signed without it; we were configured with it.
        assert_eq!(
            verify(
                TOKEN,
                https,
                &default_params(),
                b"",
                Some("RSOYDt4T1cUTdK1PDd93/VVr8B8=")
            ),
            Ok(())
        );
    }

    #[test]
    fn vector_4_names_and_values_sort_and_values_deduplicate() {
        let params: Params = [
            ("Sid", "CA123"),
            ("SidAccount", "AC123"),
            ("Digits", "5678"),
            ("Digits", "1234"),
            ("Digits", "1234"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(
            sign(
                TOKEN,
                "https://mycompany.com/myapp.php?foo=1&bar=2",
                &params
            ),
            "IK+Dwps556ElfBT0I3Rgjkr1wJU="
        );
    }

    #[test]
    fn vector_5_a_json_body_is_signed_through_its_hash() {
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2&bodySHA256=0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620";
        let body = br#"{"property": "value", "boolean": true}"#;
        assert_eq!(sign(TOKEN, url, &[]), "a9nBmqA0ju/hNViExpshrM61xv4=");
        assert_eq!(
            verify(TOKEN, url, &[], body, Some("a9nBmqA0ju/hNViExpshrM61xv4=")),
            Ok(())
        );
        assert_eq!(
            verify(
                TOKEN,
                url,
                &[],
                br#"{"property": "other"}"#,
                Some("a9nBmqA0ju/hNViExpshrM61xv4=")
            ),
            Err(SignatureError::BodyHash)
        );
    }

    #[test]
    fn tampering_a_wrong_token_or_no_header_is_refused() {
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        let good = sign(TOKEN, url, &default_params());
        let mut tampered = default_params();
        tampered[2].1 = "9999".into();
        assert_eq!(
            verify(TOKEN, url, &tampered, b"", Some(&good)),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify("other", url, &default_params(), b"", Some(&good)),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(
                TOKEN,
                "https://mycompany.com/other.php",
                &default_params(),
                b"",
                Some(&good)
            ),
            Err(SignatureError::Mismatch),
            "the URL is signed too"
        );
        assert_eq!(
            verify(TOKEN, url, &default_params(), b"", None),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify(TOKEN, url, &default_params(), b"", Some("%%%")),
            Err(SignatureError::NotBase64)
        );
    }
}
