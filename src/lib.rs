//! warmline: a Slack-first outreach bot.
//!
//! Slack is the interface (slash command, modals, approvals, App Home); a
//! background dispatcher sends through providers; consent and suppression are
//! enforced on every send. This crate is the whole application; `main.rs`
//! only parses the command line and calls [`cli::run`].

pub mod api;
pub mod approval;
pub mod audit;
#[cfg(feature = "bench")]
pub mod bench;
pub mod campaigns;
pub mod cli;
pub mod clock;
pub mod consent;
pub mod contacts;
pub mod db;
pub mod dispatcher;
pub mod doctor;
pub mod domain;
pub mod email;
pub mod error_reporting;
pub mod import;
pub mod inbound;
pub mod instagram;
pub mod interactions;
pub mod jobs;
#[path = "../migrations/mod.rs"]
pub mod migrations;
pub mod observability;
pub mod providers;
pub mod reports;
pub mod routes;
pub mod sandbox;
pub mod settings;
pub mod slack;
pub mod sms;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod templates;
pub mod triggers;
pub mod warmth;
pub mod webhooks;
pub mod whatsapp;

/// Installs rustls' process-wide crypto provider (ring). Every crate in the
/// graph that speaks TLS uses ring; without this, the first TLS handshake
/// panics because rustls cannot pick a provider. Idempotent.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
