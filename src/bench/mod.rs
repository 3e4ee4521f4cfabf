//! `warmline bench …`: benchmarks whose figures go in `docs/benchmarks.md`.
//! Tests run small versions of them for correctness only; speed is judged
//! from the figures these print, never by a timed test.

pub mod import;
pub mod slack_ack;

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
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
}

pub async fn run(cmd: BenchCommand) -> anyhow::Result<()> {
    match cmd {
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
    }
    Ok(())
}
