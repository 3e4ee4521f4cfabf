//! The command line: `serve` (the default), `manifest`, `migrate`,
//! `import`, and `bench`. clap handles only commands and flags; everything
//! configurable lives in the settings tree.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::settings::{Requirements, Settings};

#[derive(Debug, Parser)]
#[command(name = "warmline", version, about = "Relationship outreach from Slack")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server, Socket Mode (with SLACK_APP_TOKEN) and the workers.
    Serve,
    /// Print the Slack app manifest with request URLs from WARMLINE_PUBLIC_URL.
    Manifest,
    /// Create or update the database schema, then exit.
    Migrate,
    /// Import contacts from a CSV file (header row names the columns).
    Import {
        /// The CSV file.
        file: PathBuf,
    },
    /// Check each channel against the compliance checklist; exit 1 if any check fails.
    Doctor,
    /// Print everything warmline holds on a contact, as JSON (consent proof included).
    ExportContact {
        /// The contact's email address (any case).
        email: String,
    },
    /// Run a benchmark and print its figures.
    #[command(subcommand)]
    #[cfg(feature = "bench")]
    Bench(crate::bench::BenchCommand),
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve().await,
        Command::Manifest => {
            let settings = Settings::load(Requirements::Offline)?;
            if settings.server.public_url.is_none() {
                eprintln!(
                    "warmline: WARMLINE_PUBLIC_URL is not set; the request URLs below are placeholders"
                );
            }
            print!("{}", crate::slack::manifest::render(&settings));
            Ok(())
        }
        Command::Migrate => {
            let settings = Settings::load(Requirements::Offline)?;
            crate::telemetry::init(&settings.log);
            crate::db::connect_and_migrate(&settings.database).await?;
            eprintln!("warmline: the database schema is up to date");
            Ok(())
        }
        Command::Import { file } => import(file).await,
        Command::ExportContact { email } => export_contact(&email).await,
        #[cfg(feature = "bench")]
        Command::Bench(b) => crate::bench::run(b).await,
        Command::Doctor => crate::doctor::cli().await,
    }
}

async fn serve() -> anyhow::Result<()> {
    let shutdown = crate::startup::shutdown_signal();
    let settings = Settings::load(Requirements::Serve)?;
    // Held to the end of `serve`, i.e. of the process: dropping it (early
    // return included) flushes queued events.
    let error_reporting = crate::error_reporting::init(&settings)?;
    crate::telemetry::init_with(&settings.log, error_reporting.is_some());
    if error_reporting.is_some() {
        tracing::info!(
            environment = %settings.sentry.environment,
            "panics and errors are reported to Sentry"
        );
    }
    let app = crate::startup::Application::build(settings).await?;
    let result = app.run_until(shutdown).await;
    if let Some(reporting) = &error_reporting
        && !reporting.flush(std::time::Duration::from_secs(5))
    {
        tracing::warn!("some error reports were still unsent at shutdown");
    }
    result
}

async fn import(file: PathBuf) -> anyhow::Result<()> {
    use crate::import::contacts_csv;
    let settings = Settings::load(Requirements::Offline)?;
    // Open the file first: a typo in its name should not create a database.
    let reader =
        std::fs::File::open(&file).with_context(|| format!("cannot open {}", file.display()))?;
    let db = crate::db::connect_and_migrate(&settings.database).await?;
    let progress = indicatif::ProgressBar::new_spinner();
    progress.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {pos} rows read ({per_sec}) {elapsed}")
            .expect("static template"),
    );
    progress.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    progress.enable_steady_tick(std::time::Duration::from_millis(200));
    let opts = contacts_csv::ImportOptions {
        default_region: crate::settings::region(&settings.import.default_region),
        batch_size: settings.import.batch_size,
        source_name: file
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_else(|| "csv".into()),
    };
    let report = contacts_csv::import(&db, reader, &opts, &progress).await?;
    progress.finish_and_clear();
    print!("{report}");
    Ok(())
}

/// `warmline export-contact <email>`: the export on stdout; an unknown
/// address is an error (exit 1) naming it masked.
async fn export_contact(email: &str) -> anyhow::Result<()> {
    let settings = Settings::load(Requirements::Offline)?;
    let db = crate::db::connect_and_migrate(&settings.database).await?;
    let export = match crate::contacts::find_by_email(&db, email).await? {
        Some(id) => crate::contacts::export(&db, id).await?,
        None => None,
    };
    let export = export.ok_or_else(|| {
        anyhow::anyhow!(
            "no contact with the email {}",
            crate::domain::mask_email(email.trim())
        )
    })?;
    println!("{}", serde_json::to_string_pretty(&export)?);
    Ok(())
}
