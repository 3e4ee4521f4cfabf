//! WhatsApp Cloud API provider (settings so far).

pub mod settings;
