//! WhatsApp as a channel, beside `crate::email` and `crate::sms`: what a
//! WhatsApp message says ([`content`]), the business account's templates
//! ([`templates`], synced by [`sync`]), which contact field fills each
//! template parameter ([`mapping`]), and warmline's own rules for the
//! channel: the messaging tier ([`tier`]). The provider
//! (`providers::whatsapp`) only transports it.

pub mod campaign;
pub mod content;
pub mod mapping;
pub mod settings;
pub mod sync;
pub mod templates;
pub mod tier;

pub use content::{TemplateCategory, TemplateMessage, WhatsappContent};
pub use settings::{MessagingTier, WhatsappChannelSettings};
