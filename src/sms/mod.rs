//! The SMS channel's own concerns, whichever provider carries it: today its
//! settings (`[sms]`).

pub mod settings;

pub use settings::SmsSettings;
