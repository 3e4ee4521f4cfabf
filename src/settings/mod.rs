//! The one typed settings tree.
//!
//! Layers, later ones winning: built-in defaults (the `Default` impls below),
//! then an optional `warmline.toml` (path in `WARMLINE_CONFIG`), then
//! `WARMLINE__<SECTION>__<KEY>` environment variables, then the named public
//! environment variables (`SLACK_BOT_TOKEN`, `DATABASE_URL`, …), which are a
//! contract with operators and must keep working exactly as documented.
//!
//! Invariants: after [`Settings::load`] succeeds every value has been parsed
//! and checked; secrets are [`SecretString`]s, so `Debug` never prints them and
//! no error message built here quotes a secret's value.

use std::{collections::BTreeMap, net::SocketAddr, path::PathBuf, time::Duration};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

pub mod env;
pub mod error;

pub use env::EnvVar;
pub use error::ConfigError;

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub slack: SlackSettings,
    pub approval: ApprovalSettings,
    pub import: ImportSettings,
    pub log: LogSettings,
    pub dispatcher: crate::dispatcher::settings::DispatcherSettings,
    /// `[providers.<name>]`: per-provider limits and options.
    pub providers: crate::providers::settings::ProvidersSettings,
    pub caps: crate::dispatcher::settings::CapsSettings,
    /// `[quiet_hours.<channel>]`: local hours a channel may not send in.
    pub quiet_hours: crate::dispatcher::settings::QuietHoursSettings,
    /// `[email]`: sender, unsubscribe links, which provider carries email.
    pub email: EmailSettings,
    /// `[sms]`: price per segment, Advanced Opt-Out, the sender's name.
    pub sms: crate::sms::settings::SmsSettings,
    /// `[meta]`: Meta's app secret, verify token and Graph API base, shared
    /// by WhatsApp and Instagram.
    pub meta: crate::providers::meta::settings::MetaSettings,
    /// `[whatsapp]`: the messaging tier.
    pub whatsapp: crate::whatsapp::settings::WhatsappChannelSettings,
    /// `[api]`: the host CRM's JSON API.
    pub api: ApiSettings,
    pub triggers: crate::triggers::settings::TriggerSettings,
    pub warmth: crate::warmth::settings::WarmthSettings,
    pub inbound: crate::inbound::settings::InboundSettings,
    /// `[campaigns]`: running campaigns as their Slack thread shows them.
    pub campaigns: crate::campaigns::settings::CampaignsSettings,
    pub digest: crate::reports::settings::DigestSettings,
    /// `[sentry]`: error monitoring, on when `SENTRY_DSN` is set.
    pub sentry: crate::error_reporting::settings::SentrySettings,
    /// `[dns]`: the resolver the doctor reads SPF, DKIM and DMARC with.
    pub dns: crate::doctor::settings::DnsSettings,
}

/// `[email]`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct EmailSettings {
    /// `WARMLINE_EMAIL_FROM`: `"Name <address>"` or an address.
    pub from: Option<String>,
    /// `WARMLINE_EMAIL_REPLY_TO`.
    pub reply_to: Option<String>,
    /// `WARMLINE_UNSUBSCRIBE_MAILTO`: an address that takes `mailto:`
    /// unsubscribe requests, added to `List-Unsubscribe` when set.
    pub unsubscribe_mailto: Option<String>,
    /// `WARMLINE_UNSUBSCRIBE_SECRET`: signs unsubscribe links. Unset: a
    /// random secret is created once and kept in the database, so every
    /// process on one database signs alike.
    pub unsubscribe_secret: Option<SecretString>,
    /// The provider that carries email when several are configured
    /// (`resend`, `smtp`); unset: Resend if configured, else SMTP.
    pub provider: Option<String>,
    /// Name shown on the preferences page and in footers.
    pub product_name: Option<String>,
    /// The DKIM selector the SMTP server signs with: the doctor looks for
    /// the key at `<selector>._domainkey.<sender domain>`. Resend always
    /// signs with `resend`.
    pub dkim_selector: Option<String>,
}

impl EmailSettings {
    /// The product name messages and pages speak for (`email.product_name`,
    /// else "warmline").
    pub fn product(&self) -> String {
        self.product_name
            .clone()
            .filter(|p| !p.trim().is_empty())
            .unwrap_or_else(|| "warmline".to_string())
    }
}

/// `[api]`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct ApiSettings {
    /// `WARMLINE_API_KEYS`: bearer keys, comma-separated. Empty: the API
    /// answers 401 to everyone.
    pub keys: Vec<SecretString>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    /// `WARMLINE_ADDR`.
    pub addr: SocketAddr,
    /// `WARMLINE_PUBLIC_URL`: the https base Slack and providers reach.
    pub public_url: Option<Url>,
    /// Largest request body accepted on any route; Slack's own cap is far lower.
    pub max_body_bytes: usize,
    /// How long shutdown waits for in-flight work before giving up.
    pub shutdown_grace_secs: u64,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            addr: "127.0.0.1:3000".parse().expect("valid literal"),
            public_url: None,
            max_body_bytes: 1024 * 1024,
            shutdown_grace_secs: 30,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `DATABASE_URL`: `sqlite://…` or `postgres://…`. Unset means SQLite at `sqlite_path`.
    pub url: Option<SecretString>,
    pub sqlite_path: PathBuf,
    pub max_connections: u32,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: None,
            sqlite_path: PathBuf::from("warmline.db"),
            max_connections: 8,
        }
    }
}

impl DatabaseSettings {
    /// The URL to connect to: `DATABASE_URL`, else a file SQLite database,
    /// created if missing (`mode=rwc`).
    pub fn connection_url(&self) -> SecretString {
        match &self.url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}?mode=rwc", self.sqlite_path.display()).into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SlackSettings {
    /// `SLACK_BOT_TOKEN` (`xoxb-…`).
    pub bot_token: Option<SecretString>,
    /// `SLACK_SIGNING_SECRET`.
    pub signing_secret: Option<SecretString>,
    /// `SLACK_APP_TOKEN` (`xapp-…`): turns on Socket Mode.
    pub app_token: Option<SecretString>,
    /// `SLACK_API_URL`.
    pub api_url: Url,
    /// The slash command's name, with its slash.
    pub command: String,
    /// `WARMLINE_APPROVALS_CHANNEL`.
    pub approvals_channel: Option<String>,
    /// `WARMLINE_DIGEST_CHANNEL`.
    pub digest_channel: Option<String>,
    /// `WARMLINE_APPROVERS`: Slack user ids.
    pub approvers: Vec<String>,
    /// Per-attempt timeout of a Web API call.
    pub request_timeout_secs: u64,
    /// Attempts after the first for 429s, 5xx and transport errors.
    pub max_retries: u32,
    /// Posts and edits per second to one channel (Slack: about 1); 0 turns
    /// the pacing off.
    pub channel_posts_per_sec: f64,
}

impl Default for SlackSettings {
    fn default() -> Self {
        Self {
            bot_token: None,
            signing_secret: None,
            app_token: None,
            api_url: Url::parse("https://slack.com/api").expect("valid literal"),
            command: "/warm".into(),
            approvals_channel: None,
            digest_channel: None,
            approvers: Vec::new(),
            request_timeout_secs: 10,
            max_retries: 4,
            channel_posts_per_sec: 1.0,
        }
    }
}

impl SlackSettings {
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }
}

/// The approval policy (used by campaigns; documented here so every key has
/// one home and one default).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApprovalSettings {
    pub min_recipients: u32,
    pub risk_threshold: u8,
    pub two_approvers_at_risk: u8,
    pub allow_self_approval: bool,
    pub warmth_floor: u8,
    /// Minutes before a pending request reminds the approvers.
    pub remind_after_minutes: u32,
    /// Minutes before a pending request expires.
    pub expire_after_minutes: u32,
    /// A Slack user group whose members may approve, besides `WARMLINE_APPROVERS`.
    pub approver_group: Option<String>,
}

impl Default for ApprovalSettings {
    fn default() -> Self {
        Self {
            min_recipients: 10,
            risk_threshold: 5,
            two_approvers_at_risk: 8,
            allow_self_approval: false,
            warmth_floor: 25,
            remind_after_minutes: 240,
            expire_after_minutes: 72 * 60,
            approver_group: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImportSettings {
    /// ISO 3166 region used for phone numbers written without a `+` prefix.
    pub default_region: String,
    /// Rows written per database transaction.
    pub batch_size: usize,
}

impl Default for ImportSettings {
    fn default() -> Self {
        Self {
            default_region: "US".into(),
            batch_size: 1000,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    /// `pretty` for terminals, `json` for log shippers.
    pub format: LogFormat,
    /// A `tracing` filter; `RUST_LOG` wins when set.
    pub level: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: LogFormat::Pretty,
            level: "info".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

/// The core's public environment variables; each integration declares its
/// own beside its settings (see [`env_vars`]).
const CORE_ENV: &[EnvVar] = &[
    EnvVar::secret("SLACK_BOT_TOKEN", "slack.bot_token"),
    EnvVar::secret("SLACK_SIGNING_SECRET", "slack.signing_secret"),
    EnvVar::secret("SLACK_APP_TOKEN", "slack.app_token"),
    EnvVar::plain("SLACK_API_URL", "slack.api_url"),
    EnvVar::secret("DATABASE_URL", "database.url"),
    EnvVar::plain("WARMLINE_ADDR", "server.addr"),
    EnvVar::plain("WARMLINE_PUBLIC_URL", "server.public_url"),
    EnvVar::plain("WARMLINE_APPROVALS_CHANNEL", "slack.approvals_channel"),
    EnvVar::plain("WARMLINE_DIGEST_CHANNEL", "slack.digest_channel"),
    EnvVar::list("WARMLINE_APPROVERS", "slack.approvers"),
    EnvVar::plain("WARMLINE_EMAIL_FROM", "email.from"),
    EnvVar::plain("WARMLINE_EMAIL_REPLY_TO", "email.reply_to"),
    EnvVar::plain("WARMLINE_UNSUBSCRIBE_MAILTO", "email.unsubscribe_mailto"),
    EnvVar::secret("WARMLINE_UNSUBSCRIBE_SECRET", "email.unsubscribe_secret"),
    EnvVar::secret_list("WARMLINE_API_KEYS", "api.keys"),
];

/// Every public environment variable: the core's, error reporting's, SMS's,
/// then each provider's.
pub fn env_vars() -> impl Iterator<Item = &'static EnvVar> {
    CORE_ENV
        .iter()
        .chain(crate::error_reporting::settings::ENV)
        .chain(crate::sms::settings::ENV)
        .chain(
            crate::providers::settings::ENV
                .iter()
                .flat_map(|vars| vars.iter()),
        )
}

/// What `serve` needs on top of a well-formed tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirements {
    /// Everything `serve` needs to talk to Slack.
    Serve,
    /// Offline commands (import, manifest, export): only well-formedness.
    Offline,
}

impl Settings {
    /// Loads the settings from the process environment.
    pub fn load(req: Requirements) -> Result<Self, ConfigError> {
        let env: BTreeMap<String, String> = std::env::vars().collect();
        Self::load_from(&env, req)
    }

    /// Loads the settings from an explicit environment (tests use this so
    /// they never mutate the process environment).
    pub fn load_from(
        env: &BTreeMap<String, String>,
        req: Requirements,
    ) -> Result<Self, ConfigError> {
        let mut builder = config::Config::builder();
        match env.get("WARMLINE_CONFIG") {
            Some(path) => {
                if !std::path::Path::new(path).exists() {
                    return Err(ConfigError::new(
                        "WARMLINE_CONFIG",
                        format!("no such file: {path}"),
                    ));
                }
                builder = builder
                    .add_source(config::File::new(path, config::FileFormat::Toml).required(true));
            }
            None => {
                builder = builder.add_source(
                    config::File::new("warmline.toml", config::FileFormat::Toml).required(false),
                );
            }
        }
        // `WARMLINE__SECTION__KEY`; single-underscore names are the public
        // contract below and are not picked up here.
        let nested: config::Map<String, String> = env
            .iter()
            .filter(|(k, _)| k.starts_with("WARMLINE__"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        builder = builder.add_source(
            config::Environment::with_prefix("WARMLINE")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true)
                .list_separator(",")
                .with_list_parse_key("slack.approvers")
                .with_list_parse_key("api.keys")
                .source(Some(nested)),
        );
        for EnvVar { var, key, list, .. } in env_vars() {
            let Some(value) = env.get(*var).filter(|v| !v.trim().is_empty()) else {
                continue;
            };
            let value: config::Value = if *list {
                split_list(value).into()
            } else {
                value.trim().to_string().into()
            };
            builder = builder
                .set_override(*key, value)
                .expect("override keys are valid literals");
        }
        let raw = builder.build().map_err(describe_config_error)?;
        let settings: Settings = raw.try_deserialize().map_err(describe_config_error)?;
        settings.check(req)?;
        Ok(settings)
    }

    fn check(&self, req: Requirements) -> Result<(), ConfigError> {
        let slack = &self.slack;
        if !slack.command.starts_with('/')
            || slack.command.len() < 2
            || slack.command.len() > 32
            || slack.command.contains(char::is_whitespace)
        {
            return Err(ConfigError::new(
                "slack.command",
                "must start with '/', be 2 to 32 characters, and contain no spaces",
            ));
        }
        if !matches!(slack.api_url.scheme(), "http" | "https") {
            return Err(ConfigError::new("SLACK_API_URL", "must be an http(s) URL"));
        }
        if let Some(url) = &self.server.public_url {
            let local = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
            if url.scheme() != "https" && !local {
                return Err(ConfigError::new(
                    "WARMLINE_PUBLIC_URL",
                    "must be an https URL (Slack only calls https endpoints)",
                ));
            }
        }
        for (name, channel) in [
            ("WARMLINE_APPROVALS_CHANNEL", &slack.approvals_channel),
            ("WARMLINE_DIGEST_CHANNEL", &slack.digest_channel),
        ] {
            if let Some(c) = channel
                && crate::domain::SlackChannelId::parse(c).is_err()
            {
                return Err(ConfigError::new(
                    name,
                    "must be a Slack channel id such as C0123ABCD (not a #name)",
                ));
            }
        }
        for id in &slack.approvers {
            if crate::domain::SlackUserId::parse(id).is_err() {
                return Err(ConfigError::new(
                    "WARMLINE_APPROVERS",
                    format!("'{id}' is not a Slack user id such as U0123ABCD"),
                ));
            }
        }
        let price = self.sms.price_per_segment;
        if !price.is_finite() || price < 0.0 {
            return Err(ConfigError::new(
                "sms.price_per_segment",
                "must be a price in US dollars, zero or more (0.0083)",
            ));
        }
        if let Some(url) = &self.database.url {
            let url = url.expose_secret();
            if !(url.starts_with("sqlite:")
                || url.starts_with("postgres://")
                || url.starts_with("postgresql://"))
            {
                return Err(ConfigError::new(
                    "DATABASE_URL",
                    "must start with sqlite: or postgres://",
                ));
            }
        }
        if region(&self.import.default_region).is_none() {
            return Err(ConfigError::new(
                "import.default_region",
                format!(
                    "'{}' is not an ISO 3166 region code",
                    self.import.default_region
                ),
            ));
        }
        // Sequences are automation writing first: Instagram allows no cold
        // outreach at all, and WhatsApp outside a conversation takes only
        // approved templates, which the sequences' steps do not have.
        if matches!(
            self.triggers.channel,
            crate::domain::Channel::Whatsapp | crate::domain::Channel::Instagram
        ) {
            return Err(ConfigError::new(
                "triggers.channel",
                format!(
                    "sequences go out by email or sms; {} allows no automated first message",
                    self.triggers.channel.label()
                ),
            ));
        }
        if self.import.batch_size == 0 {
            return Err(ConfigError::new("import.batch_size", "must be at least 1"));
        }
        if self.approval.risk_threshold > 10 || self.approval.two_approvers_at_risk > 10 {
            return Err(ConfigError::new(
                "approval.risk_threshold",
                "risks are scored from 0 to 10",
            ));
        }
        if self.approval.warmth_floor > 100 {
            return Err(ConfigError::new(
                "approval.warmth_floor",
                "warmth runs from 0 to 100",
            ));
        }
        if self
            .quiet_hours
            .default_timezone
            .parse::<chrono_tz::Tz>()
            .is_err()
        {
            return Err(ConfigError::new(
                "quiet_hours.default_timezone",
                format!(
                    "'{}' is not an IANA time zone",
                    self.quiet_hours.default_timezone
                ),
            ));
        }
        for channel in crate::domain::Channel::ALL {
            if let Some(w) = self.quiet_hours.window(channel) {
                let ok = |t: &str| chrono::NaiveTime::parse_from_str(t, "%H:%M").is_ok();
                if !ok(&w.start) || !ok(&w.end) || w.start == w.end {
                    return Err(ConfigError::new(
                        format!("quiet_hours.{channel}"),
                        "start and end must be distinct HH:MM times",
                    ));
                }
            }
        }
        if !(self.dispatcher.rate_headroom > 0.0 && self.dispatcher.rate_headroom <= 1.0) {
            return Err(ConfigError::new(
                "dispatcher.rate_headroom",
                "must be above 0 and at most 1",
            ));
        }
        self.sentry.dsn()?;
        if req == Requirements::Serve {
            match &slack.signing_secret {
                None => {
                    return Err(ConfigError::new(
                        "SLACK_SIGNING_SECRET",
                        "missing (Basic Information → App Credentials → Signing Secret)",
                    ));
                }
                Some(s) if s.expose_secret().len() < 16 => {
                    return Err(ConfigError::new(
                        "SLACK_SIGNING_SECRET",
                        "too short to be a signing secret",
                    ));
                }
                Some(_) => {}
            }
            match &slack.bot_token {
                None => {
                    return Err(ConfigError::new(
                        "SLACK_BOT_TOKEN",
                        "missing (OAuth & Permissions → Bot User OAuth Token, starts with xoxb-)",
                    ));
                }
                Some(t) if !t.expose_secret().starts_with("xoxb-") => {
                    return Err(ConfigError::new("SLACK_BOT_TOKEN", "must start with xoxb-"));
                }
                Some(_) => {}
            }
            if let Some(t) = &slack.app_token
                && !t.expose_secret().starts_with("xapp-")
            {
                return Err(ConfigError::new("SLACK_APP_TOKEN", "must start with xapp-"));
            }
        }
        Ok(())
    }
}

/// Parses an ISO 3166 region code such as `US` or `gb`.
pub fn region(code: &str) -> Option<phonenumber::country::Id> {
    code.trim().to_uppercase().parse().ok()
}

/// True when `DATABASE_URL` names a PostgreSQL server.
pub fn is_postgres_url(db: &DatabaseSettings) -> bool {
    db.url
        .as_ref()
        .is_some_and(|u| u.expose_secret().starts_with("postgres"))
}

fn split_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// Turns the `config` crate's error into one line naming the setting, and
/// makes sure a secret's value is never part of it.
fn describe_config_error(err: config::ConfigError) -> ConfigError {
    let (key, problem) = match &err {
        config::ConfigError::Type {
            key,
            unexpected,
            expected,
            ..
        } => (
            key.clone(),
            format!("expected {expected}, got {unexpected}"),
        ),
        // serde errors arrive as text ending in "for key `section.key`":
        // name that setting, not the file.
        config::ConfigError::Message(m) => (None, m.clone()),
        // The TOML error quotes the offending line, which may hold a secret:
        // keep its position and its message only.
        config::ConfigError::FileParse { uri, cause } => {
            let text = cause.to_string();
            let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
            let first = lines.next().unwrap_or_default().to_string();
            let last = lines
                .rfind(|l| {
                    !l.starts_with('|') && !l.contains(" | ") && !l.starts_with(char::is_numeric)
                })
                .unwrap_or_default();
            (
                Some(uri.clone().unwrap_or_else(|| "WARMLINE_CONFIG".into())),
                format!("cannot parse TOML: {first}: {last}"),
            )
        }
        config::ConfigError::NotFound(k) => (Some(k.clone()), "not found".into()),
        other => (None, other.to_string()),
    };
    // serde errors arrive as text ending in "for key `section.key`": name
    // that setting rather than the file.
    let (key, problem) = match (key, problem.rsplit_once(" for key `")) {
        (None, Some((p, k))) => (Some(k.trim_end_matches('`').to_string()), p.to_string()),
        (key, _) => (key, problem),
    };
    let key = key.unwrap_or_else(|| "settings".into());
    let declared = env_vars().find(|v| v.key == key);
    let public = declared
        .map(|v| format!("{} ({key})", v.var))
        .unwrap_or(key.clone());
    let problem = if declared.is_some_and(|v| v.secret) {
        "invalid value (not shown: it is a secret)".to_string()
    } else {
        problem
    };
    // One line, always.
    let problem = problem.split_whitespace().collect::<Vec<_>>().join(" ");
    ConfigError::new(public, problem)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An environment with the given variables; `WARMLINE_CONFIG` points at
    /// an empty file unless the test names one, so a developer's own
    /// `warmline.toml` never leaks into a test.
    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        let empty = std::env::temp_dir().join("warmline-test-empty.toml");
        if !empty.exists() {
            std::fs::write(&empty, "").unwrap();
        }
        let mut e: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        e.entry("WARMLINE_CONFIG".into())
            .or_insert_with(|| empty.to_string_lossy().to_string());
        e
    }

    fn serve_env(extra: &[(&str, &str)]) -> BTreeMap<String, String> {
        let mut e = env(&[
            ("SLACK_BOT_TOKEN", "xoxb-1-2-secretvalue"),
            ("SLACK_SIGNING_SECRET", "0123456789abcdef0123456789abcdef"),
        ]);
        e.extend(env(extra));
        e
    }

    #[test]
    fn defaults_apply_without_any_configuration() {
        let s = Settings::load_from(&env(&[]), Requirements::Offline).unwrap();
        assert_eq!(s.server.addr.to_string(), "127.0.0.1:3000");
        assert_eq!(s.slack.api_url.as_str(), "https://slack.com/api");
        assert_eq!(s.slack.command, "/warm");
        assert_eq!(s.approval.min_recipients, 10);
        assert_eq!(s.approval.risk_threshold, 5);
        assert_eq!(s.approval.two_approvers_at_risk, 8);
        assert!(!s.approval.allow_self_approval);
        assert_eq!(s.approval.warmth_floor, 25);
        assert!(s.database.url.is_none());
        assert_eq!(
            s.database.connection_url().expose_secret(),
            "sqlite://warmline.db?mode=rwc"
        );
    }

    #[test]
    fn trigger_sequences_cannot_be_sent_on_instagram_or_whatsapp() {
        for channel in ["instagram", "whatsapp"] {
            let e = Settings::load_from(
                &env(&[("WARMLINE__TRIGGERS__CHANNEL", channel)]),
                Requirements::Offline,
            )
            .unwrap_err();
            assert!(e.to_string().contains("triggers.channel"), "{e}");
        }
        assert!(
            Settings::load_from(
                &env(&[("WARMLINE__TRIGGERS__CHANNEL", "sms")]),
                Requirements::Offline
            )
            .is_ok()
        );
    }

    #[test]
    fn named_variables_set_their_settings() {
        let s = Settings::load_from(
            &serve_env(&[
                ("SLACK_API_URL", "http://127.0.0.1:9999/api"),
                ("WARMLINE_ADDR", "0.0.0.0:8080"),
                ("WARMLINE_PUBLIC_URL", "https://warm.example.com"),
                ("WARMLINE_APPROVALS_CHANNEL", "C0APPROVE"),
                ("WARMLINE_DIGEST_CHANNEL", "C0DIGEST1"),
                ("WARMLINE_APPROVERS", "U0AAA, U0BBB,"),
                ("DATABASE_URL", "postgres://localhost/test"),
            ]),
            Requirements::Serve,
        )
        .unwrap();
        assert_eq!(s.slack.api_url.as_str(), "http://127.0.0.1:9999/api");
        assert_eq!(s.server.addr.port(), 8080);
        assert_eq!(
            s.server.public_url.unwrap().as_str(),
            "https://warm.example.com/"
        );
        assert_eq!(s.slack.approvals_channel.as_deref(), Some("C0APPROVE"));
        assert_eq!(s.slack.approvers, vec!["U0AAA", "U0BBB"]);
        assert_eq!(
            s.database.url.unwrap().expose_secret(),
            "postgres://localhost/test"
        );
    }

    #[test]
    fn nested_variables_override_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("warmline.toml");
        std::fs::write(
            &path,
            "[approval]\nmin_recipients = 3\nrisk_threshold = 7\n",
        )
        .unwrap();
        let s = Settings::load_from(
            &env(&[
                ("WARMLINE_CONFIG", path.to_str().unwrap()),
                ("WARMLINE__APPROVAL__MIN_RECIPIENTS", "5"),
                ("WARMLINE__SLACK__COMMAND", "/outreach"),
            ]),
            Requirements::Offline,
        )
        .unwrap();
        assert_eq!(s.approval.min_recipients, 5, "env wins over the file");
        assert_eq!(s.approval.risk_threshold, 7, "file wins over defaults");
        assert_eq!(s.slack.command, "/outreach");
    }

    #[test]
    fn provider_tables_can_be_set_from_the_environment() {
        let s = Settings::load_from(
            &env(&[
                ("WARMLINE__PROVIDERS__RESEND__REQUESTS_PER_SECOND", "2"),
                ("WARMLINE__QUIET_HOURS__SMS__START", "09:00"),
                ("WARMLINE__QUIET_HOURS__SMS__END", "20:00"),
                ("WARMLINE__CAPS__MARKETING_PER_WEEK", "5"),
            ]),
            Requirements::Offline,
        )
        .unwrap();
        assert_eq!(s.providers.resend.requests_per_second, Some(2.0));
        assert_eq!(s.quiet_hours.sms.as_ref().unwrap().start, "09:00");
        assert_eq!(s.caps.marketing_per_week, 5);
        assert_eq!(
            s.caps.marketing_per_day, 1,
            "defaults kept beside overrides"
        );
    }

    #[test]
    fn a_malformed_quiet_window_is_refused_not_ignored() {
        let err = Settings::load_from(
            &env(&[
                ("WARMLINE__QUIET_HOURS__SMS__START", "8am"),
                ("WARMLINE__QUIET_HOURS__SMS__END", "21:00"),
            ]),
            Requirements::Offline,
        )
        .unwrap_err();
        assert_eq!(err.setting, "quiet_hours.sms");
    }

    #[test]
    fn a_bad_value_names_the_setting() {
        let err = Settings::load_from(
            &env(&[("WARMLINE__APPROVAL__MIN_RECIPIENTS", "lots")]),
            Requirements::Offline,
        )
        .unwrap_err();
        assert!(err.to_string().contains("approval.min_recipients"), "{err}");
    }

    #[test]
    fn an_unknown_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.toml");
        std::fs::write(&path, "[approval]\nmin_recipient = 3\n").unwrap();
        let err = Settings::load_from(
            &env(&[("WARMLINE_CONFIG", path.to_str().unwrap())]),
            Requirements::Offline,
        )
        .unwrap_err();
        assert!(err.to_string().contains("min_recipient"), "{err}");
    }

    #[test]
    fn serve_requires_slack_credentials() {
        let err = Settings::load_from(&env(&[]), Requirements::Serve).unwrap_err();
        assert_eq!(err.setting, "SLACK_SIGNING_SECRET");
        let err = Settings::load_from(
            &env(&[("SLACK_SIGNING_SECRET", "0123456789abcdef0123")]),
            Requirements::Serve,
        )
        .unwrap_err();
        assert_eq!(err.setting, "SLACK_BOT_TOKEN");
    }

    #[test]
    fn errors_never_quote_secrets() {
        let err = Settings::load_from(
            &serve_env(&[("SLACK_BOT_TOKEN", "xoxp-user-token-do-not-print")]),
            Requirements::Serve,
        )
        .unwrap_err();
        assert!(!err.to_string().contains("do-not-print"), "{err}");
        let err = Settings::load_from(
            &serve_env(&[("DATABASE_URL", "mysql://user:hunter2@host/db")]),
            Requirements::Serve,
        )
        .unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
        let s = Settings::load_from(&serve_env(&[]), Requirements::Serve).unwrap();
        assert!(!format!("{s:?}").contains("secretvalue"));
    }

    #[test]
    fn channel_names_are_refused_where_ids_are_needed() {
        let err = Settings::load_from(
            &serve_env(&[("WARMLINE_APPROVALS_CHANNEL", "#approvals")]),
            Requirements::Serve,
        )
        .unwrap_err();
        assert_eq!(err.setting, "WARMLINE_APPROVALS_CHANNEL");
    }

    #[test]
    fn a_missing_config_file_is_named() {
        let err = Settings::load_from(
            &env(&[("WARMLINE_CONFIG", "/nonexistent/warmline.toml")]),
            Requirements::Offline,
        )
        .unwrap_err();
        assert_eq!(err.setting, "WARMLINE_CONFIG");
    }

    #[test]
    fn the_example_file_is_valid() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/warmline.example.toml");
        Settings::load_from(&env(&[("WARMLINE_CONFIG", path)]), Requirements::Offline).unwrap();
    }
}
