//! Everything Slack: verified ingress for commands, interactions and events
//! (over HTTP or Socket Mode, one set of handlers), the Web API client, Block
//! Kit layouts, the App Home, and the app manifest.

pub mod actions;
pub mod alerts;
pub mod api;
pub mod blocks;
pub mod campaign_alerts;
pub mod campaigns;
pub mod commands;
pub mod contact_actions;
pub mod dedup;
pub mod error;
pub mod events;
pub mod home;
pub mod ingress;
pub mod interactions;
pub mod manifest;
pub mod modal_form;
pub mod mrkdwn;
pub mod respond;
pub mod setup_status;
pub mod socket_mode;
