//! The Slack app manifest (`manifest.yml` at the repository root, embedded
//! here) and `warmline manifest`, which prints it with the request URLs
//! pointing at `WARMLINE_PUBLIC_URL` and the configured command name.

use crate::settings::Settings;

/// The manifest as committed.
pub const MANIFEST: &str = include_str!("../../manifest.yml");

/// The placeholder base URL the committed manifest uses.
pub const PLACEHOLDER_URL: &str = "https://warmline.example.com";

/// The manifest for this deployment. Without a public URL the placeholder
/// stays, and the caller should say so.
pub fn render(settings: &Settings) -> String {
    let mut text = MANIFEST.to_string();
    if let Some(url) = &settings.server.public_url {
        text = text.replace(PLACEHOLDER_URL, url.as_str().trim_end_matches('/'));
    }
    if settings.slack.command != "/warm" {
        text = text.replace(
            "command: /warm\n",
            &format!("command: {}\n", settings.slack.command),
        );
    }
    if settings.slack.app_token.is_some() {
        text = text.replace("socket_mode_enabled: false", "socket_mode_enabled: true");
    }
    text
}

/// Bot scopes the code needs: one per Web API method it calls, plus those
/// that come with features (the slash command).
pub fn required_bot_scopes() -> std::collections::BTreeSet<&'static str> {
    super::api::Method::ALL
        .iter()
        .filter_map(|m| m.scope())
        .chain(super::api::FEATURE_SCOPES.iter().copied())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_url_replaces_the_placeholder_everywhere() {
        let mut s = Settings::default();
        s.server.public_url = Some("https://warm.acme.io/".parse().unwrap());
        let text = render(&s);
        assert!(!text.contains(PLACEHOLDER_URL));
        assert!(text.contains("https://warm.acme.io/slack/commands"));
        assert!(text.contains("https://warm.acme.io/slack/events"));
        assert!(text.contains("https://warm.acme.io/slack/interactions"));
    }

    #[test]
    fn a_renamed_command_is_reflected() {
        let mut s = Settings::default();
        s.slack.command = "/outreach".into();
        assert!(render(&s).contains("command: /outreach\n"));
    }
}
