//! `warmline bench …`: benchmarks whose figures go in `docs/benchmarks.md`.
//! Tests run small versions of them for correctness only.

pub mod import;

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Import N generated contacts from CSV into a fresh SQLite file.
    Import {
        #[arg(long, default_value_t = 100_000)]
        rows: usize,
    },
}

pub async fn run(cmd: BenchCommand) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Import { rows } => {
            let r = import::run(rows, None).await?;
            println!("{r}");
            Ok(())
        }
    }
}
