//! `strom-operator` binary: parses flags, sets up logging, runs [`strom_operator::run::run`]
//! (the Kubernetes controllers) or [`strom_operator::local::run`] (`strom-operator local`).

use std::process::ExitCode;

use clap::Parser;
use strom_operator::cli::{Cli, Command, LogFormat};
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
    if let Some(Command::Local(args)) = cli.command.clone() {
        let options = match strom_operator::local::broker_binary(args.broker_bin.as_deref()) {
            Ok(broker_bin) => strom_operator::local::LocalOptions {
                file: args.file,
                state_dir: args.state_dir,
                broker_bin,
                metrics_listen: args.metrics_listen,
            },
            Err(error) => {
                tracing::error!(%error, "strom-operator local cannot start");
                return ExitCode::FAILURE;
            }
        };
        if let Err(error) = strom_operator::local::run(options).await {
            tracing::error!(%error, "strom-operator local stopped");
            return ExitCode::FAILURE;
        }
        return ExitCode::SUCCESS;
    }
    if let Err(error) = strom_operator::run::run(cli).await {
        // Logged rather than returned so JSON logging keeps the reason in one parseable line.
        tracing::error!(%error, "strom-operator stopped");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
