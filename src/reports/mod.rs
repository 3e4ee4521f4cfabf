//! Reports: the numbers behind the App Home tab and the daily digest.
//!
//! [`stats`] holds the set-based queries both read (pending approvals,
//! campaigns, cold contacts, delivery / unsubscribe / complaint rates);
//! [`digest`] posts the daily digest to `WARMLINE_DIGEST_CHANNEL` once per
//! local day.
//!
//! Invariants:
//! - Every query takes its window (`from`, `to`) or `now` as an argument, so
//!   tests pin time without sleeping.
//! - Nothing here writes to the ledger; the only writes are the digest's
//!   claim and the cold-crossing marks (`cold_marks`), both idempotent.
//! - Contacts are named by name, else by a masked address: nothing posted to
//!   Slack carries a whole email address or phone number.

pub mod digest;
pub mod settings;
pub mod stats;

pub use settings::DigestSettings;

/// The targets rates are held against (docs: reliability-and-compliance §8).
pub const UNSUBSCRIBE_TARGET: f64 = 0.005;
pub const COMPLAINT_TARGET: f64 = 0.003;
