//! WhatsApp as a channel, beside `crate::email` and `crate::sms`: what a
//! WhatsApp message says ([`content`]), and warmline's own rules for the
//! channel. The provider (`providers::whatsapp`) only transports it.

pub mod content;
pub mod settings;
pub mod templates;

pub use content::{TemplateCategory, TemplateMessage, WhatsappContent};
pub use settings::{MessagingTier, WhatsappChannelSettings};
