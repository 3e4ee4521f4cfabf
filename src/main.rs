//! The `warmline` binary: parse the command line, run it, and turn any
//! failure into one line on stderr and a non-zero exit (never a backtrace).

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    warmline::install_crypto_provider();
    let cli = warmline::cli::Cli::parse();
    match warmline::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("warmline: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
