//! Domain types parsed at the edges ("parse, don't validate"): newtypes
//! for addresses and Slack ids, and the enums that name channels, message
//! kinds and states.
//!
//! A value of one of these types is valid by construction: code past the
//! edge never re-checks an email address, a phone number or a Slack id.

mod channel;
mod e164_phone;
mod email_address;
mod mask;
mod slack_ids;

pub use channel::{Channel, MessageKind, UnknownChannel, UnknownKind};
pub use e164_phone::{E164Phone, PhoneError};
pub use email_address::{EmailAddress, EmailError};
pub use mask::{mask_addresses, mask_email, mask_phone};
pub use slack_ids::{SlackChannelId, SlackIdError, SlackUserId};
