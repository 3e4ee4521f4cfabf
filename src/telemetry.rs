//! Logging set-up, once per process. Output is JSON or human-readable per
//! `[log] format`; `RUST_LOG` overrides `[log] level`.
//!
//! Nothing logged anywhere in warmline carries a secret, and emails and
//! phone numbers are logged masked (see `domain::mask_*`).

use tracing_subscriber::{EnvFilter, fmt, prelude::*};

use crate::settings::{LogFormat, LogSettings};

/// Installs the global subscriber. Safe to call more than once (tests): only
/// the first call takes effect.
pub fn init(settings: &LogSettings) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&settings.level));
    let registry = tracing_subscriber::registry().with(filter);
    let result = match settings.format {
        LogFormat::Json => registry
            .with(fmt::layer().json().with_writer(std::io::stderr))
            .try_init(),
        LogFormat::Pretty => registry
            .with(
                fmt::layer()
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                    .with_writer(std::io::stderr),
            )
            .try_init(),
    };
    let _ = result;
}
