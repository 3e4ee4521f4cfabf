//! Syncing the business account's templates: `GET {graph}/{waba}/
//! message_templates` page by page into `whatsapp_templates`.
//!
//! Invariants:
//! - The stored set is replaced only after every page was read: a failure
//!   on any page leaves the previous set (and its `synced_at`) as it was.
//! - Every request has its own timeout (`providers::meta::graph::client`);
//!   `paging.next` is followed as Meta gives it, to the last page, and at
//!   most [`MAX_PAGES`] pages (a fake or proxy looping on one cursor must
//!   not hold a sync forever).
//! - A Graph error is reported by its code, with what to fix for the two
//!   an operator causes (190: the token; 100: the account id). The token
//!   is never logged.
//! - An entry that is not a template warmline can read is skipped and
//!   named, never fatal to the sync.
//! - It runs on start when WhatsApp is configured (off the start path; a
//!   failure is logged), daily ([`SyncJob`]) and on `/warm whatsapp
//!   templates`.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::Value as Json;

use super::templates::{self, Template};
use crate::{providers::meta::graph::GraphError, state::App};

/// More pages than any business account has templates (at 100 a page).
pub const MAX_PAGES: usize = 100;

/// What a sync read.
#[derive(Debug, Clone, PartialEq)]
pub struct Synced {
    /// Templates stored.
    pub stored: usize,
    /// Pages read.
    pub pages: usize,
    /// Entries skipped, by name (or position) with why.
    pub skipped: Vec<String>,
}

/// Why a sync failed; nothing was replaced.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(
        "WhatsApp is not configured: set WHATSAPP_ACCESS_TOKEN, WHATSAPP_PHONE_NUMBER_ID and WHATSAPP_BUSINESS_ACCOUNT_ID"
    )]
    NotConfigured,
    #[error(
        "Meta refused the token (code 190: {detail}): WHATSAPP_ACCESS_TOKEN is invalid or expired; create a new system user token with whatsapp_business_management"
    )]
    Token { detail: String },
    #[error(
        "Meta does not know the business account (code 100: {detail}): check WHATSAPP_BUSINESS_ACCOUNT_ID (the WABA id, not the phone number id)"
    )]
    Account { detail: String },
    #[error("Meta answered {status} with error code {code}: {detail}")]
    Graph {
        status: u16,
        code: i64,
        detail: String,
    },
    #[error("Meta answered {status} without a Graph error: {snippet}")]
    Unexpected { status: u16, snippet: String },
    #[error("could not reach the Graph API: {0}")]
    Transport(String),
    #[error("the template list had more than {MAX_PAGES} pages; stopped")]
    TooManyPages,
    #[error(transparent)]
    Infrastructure(#[from] anyhow::Error),
}

#[derive(Deserialize)]
struct Page {
    #[serde(default)]
    data: Vec<Json>,
    #[serde(default)]
    paging: Option<Paging>,
}

#[derive(Deserialize)]
struct Paging {
    #[serde(default)]
    next: Option<String>,
}

/// Reads every template of the configured business account and replaces
/// the stored set.
pub async fn sync(app: &App) -> Result<Synced, SyncError> {
    let wa = &app.settings.providers.whatsapp;
    let (Some(token), Some(waba)) = (wa.access_token.as_ref(), wa.business_account_id.as_deref())
    else {
        return Err(SyncError::NotConfigured);
    };
    if !wa.enabled() {
        return Err(SyncError::NotConfigured);
    }
    let client = crate::providers::meta::graph::client()
        .map_err(|e| SyncError::Transport(transport_words(&e)))?;
    let mut url = format!(
        "{}/{}/message_templates?limit=100&fields=name,language,status,category,components",
        app.settings.meta.graph_base(),
        waba.trim()
    );
    let mut all: Vec<Template> = Vec::new();
    let mut skipped = Vec::new();
    let mut pages = 0;
    loop {
        if pages == MAX_PAGES {
            return Err(SyncError::TooManyPages);
        }
        let page = fetch(&client, &url, token.expose_secret()).await?;
        pages += 1;
        for (i, entry) in page.data.iter().enumerate() {
            match Template::from_graph(entry) {
                Ok(t) => all.push(t),
                Err(why) => {
                    let name = entry.get("name").and_then(Json::as_str).map_or_else(
                        || format!("entry {} of page {pages}", i + 1),
                        str::to_string,
                    );
                    skipped.push(format!("{name}: {why}"));
                }
            }
        }
        match page.paging.and_then(|p| p.next).filter(|n| !n.is_empty()) {
            Some(next) => url = next,
            None => break,
        }
    }
    templates::replace_all(&app.db, &all, crate::clock::now()).await?;
    if !skipped.is_empty() {
        tracing::warn!(skipped = ?skipped, "WhatsApp templates skipped in the sync");
    }
    tracing::info!(
        stored = all.len(),
        pages,
        skipped = skipped.len(),
        "WhatsApp templates synced"
    );
    Ok(Synced {
        stored: all.len(),
        pages,
        skipped,
    })
}

async fn fetch(client: &reqwest::Client, url: &str, token: &str) -> Result<Page, SyncError> {
    let res = client
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| SyncError::Transport(transport_words(&e)))?;
    let status = res.status().as_u16();
    let body = res
        .bytes()
        .await
        .map_err(|e| SyncError::Transport(transport_words(&e)))?;
    if (200..300).contains(&status) {
        return serde_json::from_slice::<Page>(&body).map_err(|e| SyncError::Unexpected {
            status,
            snippet: format!("not a template page ({e})"),
        });
    }
    Err(match GraphError::parse(&body) {
        Some(e) => match e.code {
            Some(190) => SyncError::Token { detail: e.detail() },
            Some(100) => SyncError::Account { detail: e.detail() },
            code => SyncError::Graph {
                status,
                code: code.unwrap_or_default(),
                detail: e.detail(),
            },
        },
        None => SyncError::Unexpected {
            status,
            snippet: String::from_utf8_lossy(&body).chars().take(200).collect(),
        },
    })
}

/// reqwest's error without its URL (the account id is in it).
fn transport_words(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return "timed out".into();
    }
    if e.is_connect() {
        return "could not connect".into();
    }
    let mut words = e.to_string();
    if let Some(url) = e.url() {
        words = words.replace(url.as_str(), "<graph url>");
    }
    words
}

/// Syncs once, off the start path, when WhatsApp is configured: a failure
/// is logged and start-up goes on.
pub fn on_start(app: &App) {
    if !app.settings.providers.whatsapp.enabled() {
        return;
    }
    let app2 = app.clone();
    app.spawn("sync WhatsApp templates on start", async move {
        if let Err(e) = sync(&app2).await {
            tracing::warn!(error = %e, "WhatsApp templates were not synced on start");
        }
        Ok(())
    });
}

/// The daily sync.
pub struct SyncJob;

#[async_trait]
impl crate::jobs::Periodic for SyncJob {
    fn name(&self) -> &'static str {
        "whatsapp_templates"
    }

    fn period(&self, app: &App) -> Result<Duration, &'static str> {
        if !app.settings.providers.whatsapp.enabled() {
            return Err("WhatsApp is not configured: no daily template sync");
        }
        Ok(Duration::from_secs(24 * 3600))
    }

    async fn tick(&self, app: &App, _now: DateTime<Utc>) -> anyhow::Result<()> {
        if let Err(e) = sync(app).await {
            // Logged, not failed: the stored set stays usable and the
            // next day tries again.
            tracing::warn!(error = %e, "the daily WhatsApp template sync failed");
        }
        Ok(())
    }
}
