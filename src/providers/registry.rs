//! The registry: which providers are configured, and which one carries each
//! channel.
//!
//! Built once at start-up from `[providers]` ([`Registry::configured`]); a
//! provider is on when its settings say so (`ResendSettings::enabled`, …).
//! Each provider is one line below. The first one registered for a channel
//! carries it unless a setting chooses (`email.provider`).

use std::{collections::BTreeMap, sync::Arc};

use super::{Provider, webhook::WebhookReceiver};
use crate::{domain::Channel, settings::Settings};

/// The providers configured, by name, and the one used per channel.
#[derive(Clone, Default)]
pub struct Registry {
    by_name: BTreeMap<String, Arc<dyn Provider>>,
    by_channel: BTreeMap<Channel, String>,
    /// Webhook receivers by their route (`/webhooks/<route>`; a route may
    /// have two segments, `twilio/status`).
    webhooks: BTreeMap<&'static str, Arc<dyn WebhookReceiver>>,
}

/// Why the configured providers cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// A provider's own settings are wrong (its error names the setting).
    #[error("{0}")]
    Provider(#[source] anyhow::Error),
    /// `email.provider` (or another channel choice) names a provider that
    /// cannot carry the channel.
    #[error("configuration error: {setting}: {problem}")]
    Choice { setting: String, problem: String },
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// The providers `[providers]` configures, with `email.provider`
    /// choosing which one carries email when several could, and their
    /// webhook receivers. Providers read their own table, and what they
    /// need of the rest: `WARMLINE_PUBLIC_URL` for callbacks, `[sms]`.
    pub fn configured(all: &Settings) -> Result<Self, RegistryError> {
        let settings = &all.providers;
        let email_provider = all.email.provider.as_deref();
        let mut registry = Self::new();
        let failed = |e: anyhow::Error| RegistryError::Provider(e);
        // One line per provider. Resend first, so that it carries email when
        // SMTP is configured too and `email.provider` is unset.
        if settings.resend.enabled() {
            registry.register(Arc::new(
                super::resend::ResendProvider::from_settings(&settings.resend)
                    .map_err(|e| failed(e.into()))?,
            ));
        }
        #[cfg(feature = "test-support")]
        if let Some(test) = &settings.test {
            registry.register(Arc::new(
                super::test_provider::TestProvider::from_settings(test).map_err(failed)?,
            ));
        }
        if settings.smtp.enabled() {
            registry.register(Arc::new(
                super::smtp::SmtpProvider::from_settings(&settings.smtp)
                    .map_err(|e| failed(e.into()))?,
            ));
        }
        if settings.twilio.enabled() {
            registry.register(Arc::new(
                super::twilio::TwilioProvider::from_settings(
                    &settings.twilio,
                    all.server.public_url.as_ref(),
                )
                .map_err(|e| failed(e.into()))?,
            ));
        }
        if settings.whatsapp.enabled() {
            registry.register(Arc::new(
                super::whatsapp::WhatsappProvider::from_settings(&settings.whatsapp, &all.meta)
                    .map_err(|e| failed(e.into()))?,
            ));
        }
        if settings.instagram.enabled() {
            registry.register(Arc::new(
                super::instagram::InstagramProvider::from_settings(&settings.instagram, &all.meta)
                    .map_err(|e| failed(e.into()))?,
            ));
        }
        registry.receive_webhooks(all);
        if let Some(name) = email_provider {
            registry
                .carry(Channel::Email, name)
                .map_err(|problem| RegistryError::Choice {
                    setting: "email.provider".into(),
                    problem,
                })?;
        }
        Ok(registry)
    }

    /// The webhook receivers `[providers]` configures, one line per
    /// provider that reports back. Receivers follow the settings even on a
    /// registry assembled by hand (tests inject their providers).
    pub fn receive_webhooks(&mut self, all: &Settings) {
        let settings = &all.providers;
        if let Some(w) = super::resend::webhook::ResendWebhook::configured(&settings.resend) {
            self.register_webhook(Arc::new(w));
        }
        for w in super::twilio::webhook::TwilioWebhook::configured(&settings.twilio, &all.sms)
            .into_iter()
            .flatten()
        {
            self.register_webhook(Arc::new(w));
        }
        if let Some(w) = super::meta::webhook::MetaWebhook::configured(&all.meta, settings) {
            self.register_webhook(Arc::new(w));
        }
    }

    /// Registers a provider; the first registered for a channel serves it.
    pub fn register(&mut self, provider: Arc<dyn Provider>) {
        let name = provider.name().to_string();
        self.by_channel
            .entry(provider.channel())
            .or_insert_with(|| name.clone());
        self.by_name.insert(name, provider);
    }

    /// Registers a webhook receiver; one per route.
    pub fn register_webhook(&mut self, receiver: Arc<dyn WebhookReceiver>) {
        self.webhooks.insert(receiver.route(), receiver);
    }

    /// Makes `name` the provider for `channel`.
    pub fn carry(&mut self, channel: Channel, name: &str) -> Result<(), String> {
        match self.by_name.get(name) {
            Some(p) if p.channel() == channel => {
                self.by_channel.insert(channel, name.to_string());
                Ok(())
            }
            Some(p) => Err(format!("'{name}' carries {}, not {channel}", p.channel())),
            None => Err(format!(
                "'{name}' is not configured (configured: {})",
                self.by_name.keys().cloned().collect::<Vec<_>>().join(", ")
            )),
        }
    }

    pub fn get(&self, name: &str) -> Option<Arc<dyn Provider>> {
        self.by_name.get(name).cloned()
    }

    pub fn for_channel(&self, channel: Channel) -> Option<Arc<dyn Provider>> {
        self.by_channel.get(&channel).and_then(|n| self.get(n))
    }

    /// The receiver for `POST /webhooks/<route>`.
    pub fn webhook(&self, route: &str) -> Option<Arc<dyn WebhookReceiver>> {
        self.webhooks.get(route).cloned()
    }

    /// The receiver of a provider's reports, by the provider's name (the
    /// one `meta` receiver for `whatsapp` and `instagram`).
    pub fn webhook_of(&self, provider: &str) -> Option<Arc<dyn WebhookReceiver>> {
        self.webhooks.values().find(|w| w.serves(provider)).cloned()
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<dyn Provider>> {
        self.by_name.values()
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::{
        resend::settings::ResendSettings, settings::ProvidersSettings,
        smtp::settings::SmtpSettings, twilio::settings::TwilioSettings,
    };

    fn with(providers: ProvidersSettings) -> Settings {
        Settings {
            providers,
            ..Default::default()
        }
    }

    fn chosen(providers: ProvidersSettings, email: &str) -> Settings {
        let mut s = with(providers);
        s.email.provider = Some(email.into());
        s
    }

    fn both() -> ProvidersSettings {
        ProvidersSettings {
            resend: ResendSettings {
                api_key: Some("re_test".to_string().into()),
                ..Default::default()
            },
            smtp: SmtpSettings {
                url: Some("smtp://127.0.0.1:2525".to_string().into()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    // Async: building the SMTP transport needs a Tokio runtime.
    #[tokio::test]
    async fn resend_carries_email_unless_told_otherwise() {
        crate::install_crypto_provider();
        let r = Registry::configured(&with(both())).unwrap();
        assert_eq!(r.for_channel(Channel::Email).unwrap().name(), "resend");
        let r = Registry::configured(&chosen(both(), "smtp")).unwrap();
        assert_eq!(r.for_channel(Channel::Email).unwrap().name(), "smtp");
    }

    #[tokio::test]
    async fn an_unconfigured_email_provider_is_a_configuration_error() {
        crate::install_crypto_provider();
        let err = Registry::configured(&chosen(both(), "mailgun"))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("email.provider"), "{err}");
        assert!(err.contains("not configured"), "{err}");
    }

    #[tokio::test]
    async fn a_bad_rate_is_a_configuration_error_naming_the_setting() {
        crate::install_crypto_provider();
        let mut s = both();
        s.smtp.requests_per_second = Some(0.0);
        let err = Registry::configured(&with(s)).err().unwrap().to_string();
        assert!(
            err.contains("providers.smtp.requests_per_second") && err.contains("positive"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn only_configured_providers_are_registered_and_resend_receives_webhooks() {
        crate::install_crypto_provider();
        let none = Registry::configured(&Settings::default()).unwrap();
        assert!(none.is_empty());
        assert!(none.webhook("resend").is_none());
        let r = Registry::configured(&with(both())).unwrap();
        let names: Vec<&str> = r.all().map(|p| p.name()).collect();
        assert_eq!(names, ["resend", "smtp"]);
        assert!(r.webhook("resend").is_some());
        assert!(r.webhook("smtp").is_none());
    }

    #[tokio::test]
    async fn twilio_carries_sms_and_receives_on_two_routes() {
        crate::install_crypto_provider();
        let mut s = with(ProvidersSettings {
            twilio: TwilioSettings {
                account_sid: Some("AC1".into()),
                auth_token: Some("tok".to_string().into()),
                from: Some("+14155550000".into()),
                ..Default::default()
            },
            ..Default::default()
        });
        let err = Registry::configured(&s).err().unwrap().to_string();
        assert!(err.contains("WARMLINE_PUBLIC_URL"), "{err}");
        s.server.public_url = Some("https://warm.example.org".parse().unwrap());
        let r = Registry::configured(&s).unwrap();
        assert_eq!(r.for_channel(Channel::Sms).unwrap().name(), "twilio");
        assert!(r.webhook("twilio/status").is_some());
        assert!(r.webhook("twilio/inbound").is_some());
        assert_eq!(r.webhook_of("twilio").unwrap().provider(), "twilio");
    }

    #[tokio::test]
    async fn whatsapp_and_instagram_report_through_the_one_meta_receiver() {
        crate::install_crypto_provider();
        let mut s = Settings::default();
        s.meta.app_secret = Some("app".to_string().into());
        let r = Registry::configured(&s).unwrap();
        assert!(r.is_empty(), "the secret alone sends nothing");
        assert!(r.webhook("meta").is_some(), "but reports still arrive");
        s.providers.whatsapp.access_token = Some("EAA".to_string().into());
        s.providers.whatsapp.phone_number_id = Some("1".into());
        s.providers.whatsapp.business_account_id = Some("2".into());
        s.providers.instagram.access_token = Some("IG".to_string().into());
        s.providers.instagram.account_id = Some("3".into());
        let r = Registry::configured(&s).unwrap();
        assert_eq!(r.for_channel(Channel::Whatsapp).unwrap().name(), "whatsapp");
        assert_eq!(
            r.for_channel(Channel::Instagram).unwrap().name(),
            "instagram"
        );
        for p in ["whatsapp", "instagram"] {
            let w = r.webhook_of(p).expect("a receiver");
            assert_eq!((w.route(), w.provider()), ("meta", "meta"));
        }
        assert!(r.webhook_of("twilio").is_none());
    }
}
