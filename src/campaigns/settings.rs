//! `[campaigns]`: progress pacing and where campaign threads go. A leaf
//! module: the settings tree reads it without depending on campaigns.

use serde::Deserialize;

/// `[campaigns]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CampaignsSettings {
    /// Least seconds between two edits of a campaign's progress message.
    pub progress_interval_secs: u64,
    /// The channel id where a campaign that needed no approval gets its
    /// thread. Unset: the requester's DM with the bot (an automation's
    /// campaign then gets no thread). See [`super::thread`].
    pub thread_channel: Option<String>,
}

impl Default for CampaignsSettings {
    fn default() -> Self {
        Self {
            progress_interval_secs: 5,
            thread_channel: None,
        }
    }
}
