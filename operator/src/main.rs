//! `strom-operator` binary: parses flags, sets up logging, runs [`strom_operator::run::run`].

use std::process::ExitCode;

use clap::Parser;
use strom_operator::cli::{Cli, LogFormat};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    match cli.log_format {
        LogFormat::Text => tracing_subscriber::fmt().with_env_filter(filter).init(),
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .init(),
    }
    if let Err(error) = strom_operator::run::run(cli).await {
        // Logged rather than returned so JSON logging keeps the reason in one parseable line.
        tracing::error!(%error, "strom-operator stopped");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
