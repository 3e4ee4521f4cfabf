//! Logging set-up, once per process. Output is JSON or human-readable per
//! `[log] format`; `RUST_LOG` overrides `[log] level`. With error reporting
//! on, the same subscriber also feeds Sentry (see `error_reporting`), so
//! Sentry sees what the level filter lets through and nothing more.
//!
//! Nothing logged anywhere in warmline carries a secret, and emails and
//! phone numbers are logged masked (see `domain::mask_*`).

use tracing::Subscriber;
use tracing_subscriber::{EnvFilter, Layer, Registry, fmt, prelude::*};

use crate::settings::{LogFormat, LogSettings};

/// Installs the global subscriber. Safe to call more than once (tests): only
/// the first call takes effect.
pub fn init(settings: &LogSettings) {
    init_with(settings, false);
}

/// [`init`], adding the Sentry layers when `report_errors` (a Sentry client
/// was started by `error_reporting::init`).
pub fn init_with(settings: &LogSettings, report_errors: bool) {
    let _ = subscriber(settings, report_errors).try_init();
}

/// The subscriber [`init_with`] installs, not installed: tests run it with
/// `tracing::subscriber::with_default` so they need not own the global one.
pub fn subscriber(
    settings: &LogSettings,
    report_errors: bool,
) -> impl Subscriber + Send + Sync + 'static {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&settings.level));
    let output: Box<dyn Layer<Registry> + Send + Sync> = match settings.format {
        LogFormat::Json => fmt::layer().json().with_writer(std::io::stderr).boxed(),
        LogFormat::Pretty => fmt::layer()
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_writer(std::io::stderr)
            .boxed(),
    };
    tracing_subscriber::registry()
        .with(output)
        .with(filter)
        .with(report_errors.then(crate::error_reporting::tracing_layers))
}
