//! Domain types parsed at the edges ("parse, don't validate"): newtypes
//! for addresses and Slack ids, and the enums that name channels, message
//! kinds and states.
//!
//! A value of one of these types is valid by construction: code past the
//! edge never re-checks an email address, a phone number or a Slack id.
//! The enums are the only place their stored names are spelled; SQL text
//! takes them from `sql()` / `sql_list()`.

mod campaign_state;
mod channel;
mod e164_phone;
mod email_address;
mod forgotten;
mod interaction;
mod mask;
mod message_state;
mod slack_ids;
mod sms_segments;
mod source;
mod sql;

pub use campaign_state::{ApprovalState, CampaignState};
pub use channel::{Channel, MessageKind, UnknownChannel, UnknownKind};
pub use e164_phone::{E164Phone, PhoneError};
pub use email_address::{EmailAddress, EmailError};
pub use forgotten::{suppression_hash, tombstone_hash};
pub use interaction::{Direction, InteractionKind};
pub use mask::{mask_addresses, mask_email, mask_phone};
pub use message_state::{MessageState, SkipReason};
pub use slack_ids::{SlackChannelId, SlackIdError, SlackUserId};
pub use sms_segments::{SmsEncoding, SmsSegments, sms_segments};
pub use source::{is_reply_source, reply_source};
