//! What warmline keeps of a forgotten contact's identities: a SHA-256 of
//! each, lower-cased and trimmed, so an import or a send can recognise the
//! person again without holding their address.

use sha2::Digest;

/// The hash kept for a forgotten contact's identity (an email, a phone, an
/// `external_id:…`).
pub fn tombstone_hash(identity: &str) -> String {
    hex::encode(sha2::Sha256::digest(
        identity.trim().to_lowercase().as_bytes(),
    ))
}

/// How a forgotten contact's suppression keeps its address: hashed like a
/// tombstone, so the dispatcher can still refuse it without holding it.
pub fn suppression_hash(address: &str) -> String {
    format!("sha256:{}", tombstone_hash(address))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_hash_alike_whatever_their_case_and_spaces() {
        assert_eq!(
            tombstone_hash(" Ann@Example.org "),
            tombstone_hash("ann@example.org")
        );
        assert_eq!(
            suppression_hash("ann@example.org"),
            format!("sha256:{}", tombstone_hash("ann@example.org"))
        );
        assert_eq!(tombstone_hash("x").len(), 64);
    }
}
