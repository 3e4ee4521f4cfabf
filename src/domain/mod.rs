//! Domain newtypes parsed at the edges ("parse, don't validate").
//!
//! A value of one of these types is valid by construction: code past the
//! edge never re-checks an email address, a phone number or a Slack id.

mod e164_phone;
mod email_address;
mod mask;
mod slack_ids;

pub use e164_phone::{E164Phone, PhoneError};
pub use email_address::{EmailAddress, EmailError};
pub use mask::{mask_addresses_in_text, mask_email, mask_phone};
pub use slack_ids::{SlackChannelId, SlackIdError, SlackUserId};
