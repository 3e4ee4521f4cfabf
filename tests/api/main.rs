//! warmline's integration tests: one binary, with shared helpers.
//!
//! The app runs in-process on port 0 against a real SQLite file (and, when
//! `WARMLINE_TEST_DATABASE_URL` is set, a real PostgreSQL database per
//! test), and talks to a fake Slack Web API that answers as Slack does.

mod architecture;
mod helpers;
mod test_db;

mod api_messages;
mod approvals;
mod benches;
mod blocks;
mod browser;
mod campaign_controls;
mod campaign_e2e;
mod campaign_progress;
mod campaign_threads;
mod campaigns;
mod cli;
mod contacts_api;
mod delivery_alerts;
mod dispatcher;
mod doctor;
mod error_reporting;
mod fake_dns;
mod fake_slack;
mod health;
mod home_digest;
mod import;
mod inbound;
mod instagram;
mod manifest;
mod meta_conversations;
mod migrations;
mod resend;
mod resend_contract;
mod sandbox;
mod sandbox_browser;
mod sandbox_demo;
mod sender_auth;
mod setup_status;
mod shutdown;
mod slack_api;
mod slack_commands;
mod slack_contacts;
mod slack_events;
mod slack_ingress;
mod slack_interactions;
mod sms;
mod smtp;
mod socket_mode;
mod triggers;
mod twilio;
mod twilio_contract;
mod unsubscribe;
mod warmth;
mod webhooks;
mod whatsapp;
mod whatsapp_campaigns;
mod whatsapp_contract;
