//! `warmline bench …`: benchmarks whose figures go in `docs/benchmarks.md`.
//! Tests run small versions of them for correctness only; speed is judged
//! from the figures these print, never by a timed test.

pub mod crash;
pub mod dispatch;
pub mod email;
pub mod import;
pub mod slack_ack;
pub mod sms;
pub mod tally;
pub mod unsubscribe;
pub mod warmth;
pub mod whatsapp;

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// The warmth decay pass over N contacts and M interactions (target:
    /// 100,000 contacts with 1,000,000 interactions in under 2 s).
    Warmth {
        #[arg(long, default_value_t = 100_000)]
        contacts: usize,
        #[arg(long, default_value_t = 1_000_000)]
        interactions: usize,
        #[arg(long)]
        postgres: Option<String>,
    },
    /// Import N generated contacts from CSV into a fresh SQLite file.
    Import {
        #[arg(long, default_value_t = 100_000)]
        rows: usize,
    },
    /// Slack acknowledgement latency under load (target: p99 < 100 ms).
    SlackAck {
        #[arg(long, default_value_t = 6_000)]
        requests: usize,
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        /// Do not run a contact import into the same database meanwhile.
        #[arg(long)]
        idle: bool,
    },
    /// Dispatcher throughput: claim → checks → test provider → outcome.
    DispatchThroughput {
        #[arg(long, default_value_t = 50_000)]
        messages: usize,
        #[arg(long, default_value_t = 2)]
        workers: usize,
        /// A PostgreSQL server to create a bench database on (default: SQLite).
        #[arg(long)]
        postgres: Option<String>,
    },
    /// Dispatcher latency from enqueue to the provider call.
    DispatchLatency {
        #[arg(long, default_value_t = 1_000)]
        messages: usize,
        #[arg(long)]
        postgres: Option<String>,
    },
    /// A campaign of N emails through the dispatcher and the Resend client
    /// to the fake Resend at --limit requests/s (target: 10,000 in ~50 s,
    /// zero 429s). Fails on any 429, lost or duplicated email.
    Email {
        #[arg(long, default_value_t = 10_000)]
        messages: usize,
        #[arg(long, default_value_t = 2)]
        limit: u32,
        /// Emails per request (Resend's batch takes at most 100).
        #[arg(long, default_value_t = 100)]
        batch: usize,
        #[arg(long)]
        postgres: Option<String>,
    },
    /// N marketing texts through the dispatcher and the Twilio provider to
    /// the fake Twilio at --mps messages/s (issue 14: 1,000 at 10 MPS).
    /// Fails if any 1-s window holds more than --mps requests, the achieved
    /// rate is under 98 % of it, or a text is lost or duplicated.
    Sms {
        #[arg(long, default_value_t = 1_000)]
        messages: usize,
        #[arg(long, default_value_t = 10)]
        mps: u32,
        #[arg(long)]
        postgres: Option<String>,
    },
    /// N WhatsApp template messages through the dispatcher and the
    /// WhatsApp provider to the fake Graph API at --rate messages/s
    /// (issue 15: 2,000 at 80/s), --recipients people each getting several.
    /// Fails if any 1-s window holds more than --rate requests, the
    /// achieved rate is under 98 % of it, two messages to one person are
    /// closer than 6 s, or a message is lost or duplicated.
    Whatsapp {
        #[arg(long, default_value_t = 2_000)]
        messages: usize,
        #[arg(long, default_value_t = 800)]
        recipients: usize,
        #[arg(long, default_value_t = 80)]
        rate: u32,
        /// `dispatcher.rate_headroom` (default 0.99, as the SMS bench).
        #[arg(long)]
        headroom: Option<f64>,
        #[arg(long)]
        postgres: Option<String>,
    },
    /// Crash safety: kill -9 `serve` mid-campaign, restart, reconcile.
    Crash {
        #[arg(long, default_value_t = 50)]
        trials: usize,
        /// Messages enqueued per round (a new round when the last is done).
        #[arg(long, default_value_t = 400)]
        messages: usize,
        /// A provider that takes no idempotency key.
        #[arg(long)]
        no_idempotency: bool,
        /// `email` (the test provider as an external sink) or `sms` (the
        /// Twilio provider and the fake Twilio; needs --no-idempotency, as
        /// Twilio takes no key).
        #[arg(long, default_value = "email")]
        channel: crash::CrashChannel,
        #[arg(long)]
        postgres: Option<String>,
    },
    /// Rate-limit fidelity against a provider limited to --limit requests/s.
    DispatchRate {
        #[arg(long, default_value_t = 20_000)]
        messages: usize,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Messages per provider request.
        #[arg(long, default_value_t = 10)]
        batch: usize,
        /// Dispatchers sharing the database (use 2 with --postgres).
        #[arg(long, default_value_t = 1)]
        instances: usize,
        #[arg(long)]
        postgres: Option<String>,
    },
    /// One-click unsubscribe: one RFC 8058 POST per contact, each timed
    /// from sending to its 200 (target: committed within 1 s; fails if any
    /// answer is not 200 or any contact's email consent is not revoked).
    Unsubscribe {
        #[arg(long, default_value_t = 2_000)]
        contacts: usize,
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        #[arg(long)]
        postgres: Option<String>,
    },
}

pub async fn run(cmd: BenchCommand) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Warmth {
            contacts,
            interactions,
            postgres,
        } => print!(
            "{}",
            warmth::run(contacts, interactions, postgres.as_deref()).await?
        ),
        BenchCommand::Email {
            messages,
            limit,
            batch,
            postgres,
        } => {
            let r = email::run(messages, limit, batch, postgres.as_deref()).await?;
            println!("{r}");
            if !r.is_clean() {
                anyhow::bail!("email bench: 429s, lost or duplicated emails");
            }
        }
        BenchCommand::Sms {
            messages,
            mps,
            postgres,
        } => {
            let r = sms::run(messages, mps, postgres.as_deref(), None).await?;
            println!("{r}");
            let failures = r.failures();
            if !failures.is_empty() {
                anyhow::bail!("sms bench: {}", failures.join("; "));
            }
        }
        BenchCommand::Whatsapp {
            messages,
            recipients,
            rate,
            headroom,
            postgres,
        } => {
            let r =
                whatsapp::run(messages, recipients, rate, postgres.as_deref(), headroom).await?;
            println!("{r}");
            let failures = r.failures();
            if !failures.is_empty() {
                anyhow::bail!("whatsapp bench: {}", failures.join("; "));
            }
        }
        BenchCommand::Import { rows } => {
            let r = import::run(rows, None).await?;
            println!("{r}");
        }
        BenchCommand::SlackAck {
            requests,
            concurrency,
            idle,
        } => {
            let r = slack_ack::run(requests, concurrency, !idle).await?;
            println!("{r}");
        }
        BenchCommand::DispatchThroughput {
            messages,
            workers,
            postgres,
        } => println!(
            "{}",
            dispatch::throughput(messages, workers, postgres.as_deref()).await?
        ),
        BenchCommand::Crash {
            trials,
            messages,
            no_idempotency,
            channel,
            postgres,
        } => {
            let binary = std::env::current_exe()?;
            let sink = crash::Sink::for_channel(channel, !no_idempotency)?;
            let r = crash::run_with(binary, sink, trials, messages, postgres.as_deref()).await?;
            println!("{r}");
            if !r.is_clean() {
                anyhow::bail!("crash safety violated");
            }
        }
        BenchCommand::DispatchLatency { messages, postgres } => {
            println!(
                "{}",
                dispatch::latency(messages, postgres.as_deref()).await?
            )
        }
        BenchCommand::DispatchRate {
            messages,
            limit,
            batch,
            instances,
            postgres,
        } => println!(
            "{}",
            dispatch::rate(messages, limit, batch, instances, postgres.as_deref()).await?
        ),
        BenchCommand::Unsubscribe {
            contacts,
            concurrency,
            postgres,
        } => {
            let r = unsubscribe::run(contacts, concurrency, postgres.as_deref()).await?;
            println!("{r}");
            if !r.is_correct() {
                anyhow::bail!("unsubscribe bench: a non-200 answer or a contact not revoked");
            }
        }
    }
    Ok(())
}
