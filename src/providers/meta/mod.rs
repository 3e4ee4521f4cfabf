//! Meta's Graph API, shared by WhatsApp and Instagram: settings (`[meta]`).

pub mod settings;
