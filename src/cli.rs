//! The command line: `serve` (the default), `sandbox`, `manifest`,
//! `migrate`, `import`, and `bench`. clap handles only commands and flags; everything
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
    /// With no Slack credentials at all, starts the sandbox instead.
    Serve,
    /// Try warmline without Slack: a local page stands in for Slack, every
    /// channel is captured in an outbox, nothing is sent. Uses its own
    /// database file, never your real one.
    Sandbox {
        /// The sandbox's SQLite file.
        #[arg(long, default_value = crate::sandbox::DEFAULT_DATABASE)]
        database: PathBuf,
        /// Seed the 50 demo contacts (default: only into a new database).
        #[arg(long, conflicts_with = "no_demo")]
        demo: bool,
        /// Do not seed the demo contacts, even into a new database.
        #[arg(long)]
        no_demo: bool,
    },
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
        Command::Sandbox {
            database,
            demo,
            no_demo,
        } => {
            let demo = match (demo, no_demo) {
                (true, _) => crate::sandbox::Demo::Always,
                (_, true) => crate::sandbox::Demo::Never,
                _ => crate::sandbox::Demo::IfNew,
            };
            let settings = Settings::load(Requirements::Offline)?;
            sandbox(settings, crate::sandbox::Options { database, demo }).await
        }
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
    // No Slack credential of any kind: a first run, most likely. Start the
    // sandbox rather than stop at "SLACK_SIGNING_SECRET: missing".
    let offline = Settings::load(Requirements::Offline)?;
    if crate::sandbox::wanted(&offline) {
        return sandbox(offline, crate::sandbox::Options::default()).await;
    }
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

/// Runs the sandbox until SIGINT or SIGTERM.
async fn sandbox(settings: Settings, options: crate::sandbox::Options) -> anyhow::Result<()> {
    let shutdown = crate::startup::shutdown_signal();
    crate::telemetry::init(&settings.log);
    if settings.database.url.is_some() {
        tracing::info!(
            "sandbox mode ignores DATABASE_URL: it keeps its own data in {}",
            options.database.display()
        );
    }
    let app = crate::startup::Application::build_sandbox(settings, options).await?;
    app.run_until(shutdown).await
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
