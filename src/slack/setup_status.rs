//! What is configured and what is missing, for the Home tab and
//! `/warm status`. Reads only the settings tree; never shows secret values.

use serde::Serialize;

use crate::settings::Settings;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SetupItem {
    pub name: &'static str,
    pub ok: bool,
    /// What is set, or what to do about it.
    pub detail: String,
}

pub fn items(settings: &Settings) -> Vec<SetupItem> {
    let s = &settings.slack;
    let set = |name: &'static str, ok: bool, yes: String, no: &str| SetupItem {
        name,
        ok,
        detail: if ok { yes } else { no.to_string() },
    };
    let database = match &settings.database.url {
        Some(_) if crate::settings::is_postgres_url(&settings.database) => "PostgreSQL".to_string(),
        Some(_) => "SQLite (DATABASE_URL)".to_string(),
        None => format!("SQLite at {}", settings.database.sqlite_path.display()),
    };
    vec![
        set(
            "Slack bot token",
            s.bot_token.is_some(),
            "set".into(),
            "set SLACK_BOT_TOKEN",
        ),
        set(
            "Slack signing secret",
            s.signing_secret.is_some(),
            "set".into(),
            "set SLACK_SIGNING_SECRET",
        ),
        SetupItem {
            name: "Connection to Slack",
            ok: true,
            detail: if s.app_token.is_some() {
                "Socket Mode".into()
            } else {
                "HTTP request URLs".into()
            },
        },
        set(
            "Public URL",
            settings.server.public_url.is_some() || s.app_token.is_some(),
            settings
                .server
                .public_url
                .as_ref()
                .map(|u| u.to_string())
                .unwrap_or_else(|| "not needed in Socket Mode".into()),
            "set WARMLINE_PUBLIC_URL so Slack and providers can reach warmline",
        ),
        set(
            "Approvals channel",
            s.approvals_channel.is_some(),
            s.approvals_channel
                .as_deref()
                .map(|c| format!("<#{c}>"))
                .unwrap_or_default(),
            "set WARMLINE_APPROVALS_CHANNEL to a channel id",
        ),
        set(
            "Digest channel",
            s.digest_channel.is_some(),
            s.digest_channel
                .as_deref()
                .map(|c| format!("<#{c}>"))
                .unwrap_or_default(),
            "set WARMLINE_DIGEST_CHANNEL to a channel id",
        ),
        set(
            "Approvers",
            !s.approvers.is_empty() || settings.approval.approver_group.is_some(),
            s.approvers
                .iter()
                .map(|u| format!("<@{u}>"))
                .collect::<Vec<_>>()
                .join(", "),
            "set WARMLINE_APPROVERS to Slack user ids",
        ),
        SetupItem {
            name: "Database",
            ok: true,
            detail: database,
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_configuration_lists_what_is_missing() {
        let items = items(&Settings::default());
        let missing: Vec<_> = items.iter().filter(|i| !i.ok).map(|i| i.name).collect();
        assert!(missing.contains(&"Slack bot token"));
        assert!(missing.contains(&"Approvals channel"));
        assert!(missing.contains(&"Approvers"));
        assert!(
            items
                .iter()
                .any(|i| i.name == "Database" && i.detail.contains("SQLite"))
        );
    }
}
