//! Slack acknowledgement latency benchmark: how long warmline takes to answer
//! Slack while it is busy. Target: p99 under 100 ms.
//!
//! Set-up: the real application on 127.0.0.1:0 with a SQLite file in WAL
//! mode with full durability (the default deployment), a minimal local Web
//! API stand-in that answers views.publish, and, unless disabled, a CSV
//! import of contacts running into the same database for the whole run so the
//! writer is contended. Load: `requests` correctly signed requests from
//! `concurrency` clients, mixed evenly: slash commands (`help`, `status`),
//! `app_home_opened` events (each spawning a views.publish) and Home
//! `Refresh` clicks (each a new interaction). Latency is measured per request
//! from send to the full response.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{Json, Router, extract::Path, routing::post};
use serde_json::{Value, json};

use crate::{settings::Settings, slack::ingress::sign, startup::Application};

const SECRET: &str = "bench-signing-secret-0123456789abcdef";

pub struct AckBench {
    pub requests: usize,
    pub concurrency: usize,
    pub elapsed: Duration,
    /// Sorted latencies.
    pub latencies: Vec<Duration>,
    pub non_2xx: usize,
    pub publishes: usize,
    pub import_rows: usize,
}

impl AckBench {
    pub fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let idx = ((p / 100.0) * (self.latencies.len() - 1) as f64).round() as usize;
        self.latencies[idx]
    }
}

impl std::fmt::Display for AckBench {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        write!(
            f,
            "slack-ack: {} requests, {} concurrent, {:.0} req/s; latency p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms; non-2xx {}; views.publish calls {}; contacts imported meanwhile {}",
            self.requests,
            self.concurrency,
            self.requests as f64 / self.elapsed.as_secs_f64(),
            ms(self.percentile(50.0)),
            ms(self.percentile(90.0)),
            ms(self.percentile(99.0)),
            ms(*self.latencies.last().unwrap_or(&Duration::ZERO)),
            self.non_2xx,
            self.publishes,
            self.import_rows,
        )
    }
}

/// A stand-in for Slack's Web API that answers every call successfully,
/// echoing the view back the way views.publish does.
async fn start_api_stand_in(publishes: Arc<AtomicUsize>) -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app = Router::new().route(
        "/api/{method}",
        post(move |Path(method): Path<String>, Json(body): Json<Value>| {
            let publishes = publishes.clone();
            async move {
                if method == "views.publish" {
                    publishes.fetch_add(1, Ordering::Relaxed);
                }
                let mut view = body.get("view").cloned().unwrap_or(json!({}));
                view["id"] = json!("V0BENCH");
                view["team_id"] = json!("T0BENCH");
                view["hash"] = json!("1700000000.bench");
                Json(json!({"ok": true, "view": view}))
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(format!("http://{addr}/api"))
}

pub async fn run(
    requests: usize,
    concurrency: usize,
    with_import: bool,
) -> anyhow::Result<AckBench> {
    crate::install_crypto_provider();
    let dir = std::env::temp_dir().join(format!("warmline-ack-bench-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir)?;
    let publishes = Arc::new(AtomicUsize::new(0));
    let api = start_api_stand_in(publishes.clone()).await?;

    let mut settings = Settings::default();
    settings.server.addr = "127.0.0.1:0".parse()?;
    settings.database.sqlite_path = dir.join("warmline.db");
    settings.slack.signing_secret = Some(SECRET.to_string().into());
    settings.slack.bot_token = Some("xoxb-bench".to_string().into());
    settings.slack.api_url = api.parse()?;
    let application = Application::build(settings.clone()).await?;
    let addr = application.local_addr();
    let db = application.app().db.clone();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(application.run_until(async move {
        let _ = stop_rx.await;
    }));

    // Keep the database writer busy for the whole run.
    let busy = tokio_util::sync::CancellationToken::new();
    let import_rows = Arc::new(AtomicUsize::new(0));
    let importer = with_import.then(|| {
        let busy = busy.clone();
        let db = db.clone();
        let import_rows = import_rows.clone();
        tokio::spawn(async move {
            let opts = crate::import::contacts_csv::ImportOptions {
                default_region: Some(phonenumber::country::Id::US),
                batch_size: 500,
                source_name: "bench".into(),
            };
            let mut round = 0usize;
            while !busy.is_cancelled() {
                let csv = super::import::generate(5_000).replace("contact", &format!("r{round}c"));
                match crate::import::contacts_csv::import(
                    &db,
                    csv.as_bytes(),
                    &opts,
                    &indicatif::ProgressBar::hidden(),
                )
                .await
                {
                    Ok(r) => {
                        import_rows.fetch_add(r.imported + r.merged, Ordering::Relaxed);
                    }
                    // Said, not swallowed: a failing import would make the
                    // figures those of an idle database.
                    Err(e) => eprintln!("slack-ack: the background import failed: {e:#}"),
                }
                round += 1;
            }
        })
    });

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let base = format!("http://{addr}");
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let client = client.clone();
        let base = base.clone();
        let next = next.clone();
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut non_2xx = 0usize;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= requests {
                    break;
                }
                let (path, content_type, body) = request_for(i);
                let ts = chrono::Utc::now().timestamp().to_string();
                let sig = sign(SECRET, &ts, &body);
                let sent = Instant::now();
                let resp = client
                    .post(format!("{base}{path}"))
                    .header("content-type", content_type)
                    .header("x-slack-request-timestamp", ts)
                    .header("x-slack-signature", sig)
                    .body(body)
                    .send()
                    .await;
                let ok = match resp {
                    Ok(r) => {
                        let ok = r.status().is_success();
                        let _ = r.bytes().await;
                        ok
                    }
                    Err(_) => false,
                };
                latencies.push(sent.elapsed());
                if !ok {
                    non_2xx += 1;
                }
            }
            (latencies, non_2xx)
        }));
    }
    let mut latencies = Vec::with_capacity(requests);
    let mut non_2xx = 0;
    for w in workers {
        let (l, n) = w.await?;
        latencies.extend(l);
        non_2xx += n;
    }
    let elapsed = start.elapsed();
    busy.cancel();
    if let Some(i) = importer {
        i.await.ok();
    }
    let _ = stop_tx.send(());
    server.await??;
    latencies.sort();
    std::fs::remove_dir_all(&dir).ok();
    Ok(AckBench {
        requests,
        concurrency,
        elapsed,
        latencies,
        non_2xx,
        publishes: publishes.load(Ordering::Relaxed),
        import_rows: import_rows.load(Ordering::Relaxed),
    })
}

/// The i-th request of the mix.
fn request_for(i: usize) -> (&'static str, &'static str, String) {
    let form = "application/x-www-form-urlencoded";
    match i % 3 {
        0 => {
            let text = if i.is_multiple_of(2) {
                "help"
            } else {
                "status"
            };
            let body = serde_urlencoded::to_string([
                ("token", "x"),
                ("team_id", "T0BENCH"),
                ("team_domain", "bench"),
                ("channel_id", "C0BENCH"),
                ("channel_name", "bench"),
                ("user_id", "U0BENCH"),
                ("user_name", "bench"),
                ("command", "/warm"),
                ("text", text),
                ("response_url", "http://127.0.0.1:9/response"),
                ("trigger_id", &format!("{i}.1.bench")),
            ])
            .expect("strings encode");
            ("/slack/commands", form, body)
        }
        1 => {
            let body = json!({
                "token": "x",
                "team_id": "T0BENCH",
                "api_app_id": "A0BENCH",
                "type": "event_callback",
                "event_id": format!("Ev{i:08}"),
                "event_time": 1_700_000_000,
                "event": {"type": "app_home_opened", "user": format!("U{i:08}"), "channel": "D0BENCH", "tab": "home", "event_ts": "1700000000.000100"}
            });
            ("/slack/events", "application/json", body.to_string())
        }
        _ => {
            let payload = json!({
                "type": "block_actions",
                "team": {"id": "T0BENCH", "domain": "bench"},
                "user": {"id": format!("U{i:08}"), "username": "bench", "team_id": "T0BENCH"},
                "api_app_id": "A0BENCH",
                "token": "x",
                "trigger_id": format!("{i}.2.bench"),
                "container": {"type": "view", "view_id": "V0BENCH"},
                "actions": [{"action_id": "home_refresh", "block_id": "b1", "type": "button", "action_ts": format!("1700000000.{i:06}"), "text": {"type": "plain_text", "text": "Refresh"}}]
            });
            let body = serde_urlencoded::to_string([("payload", payload.to_string())])
                .expect("strings encode");
            ("/slack/interactions", form, body)
        }
    }
}
