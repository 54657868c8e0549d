//! Command line of `strom-operator`. Every flag can also come from `STROM_OPERATOR_<FLAG>`.
//!
//! ```text
//! strom-operator [--metrics-listen 0.0.0.0:8080] [--namespace NS]... [--leader-election true|false]
//!                [--lease-name strom-operator] [--lease-namespace NS] [--log-format text|json]
//!                [--broker-image REPO:TAG]
//! strom-operator local --file FILE [--state-dir DIR] [--broker-bin PATH] [--metrics-listen ADDR]
//! ```
//! Environment: `POD_NAME` (lease holder identity, Event reporter), `POD_NAMESPACE` (default
//! lease namespace), `RUST_LOG` (log filter).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

/// Broker image used when a Cluster sets neither `spec.image` nor `spec.version`.
pub const DEFAULT_BROKER_IMAGE: &str =
    concat!("ghcr.io/strom-io/strom-broker:", env!("CARGO_PKG_VERSION"));

/// `strom-operator` arguments.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "strom-operator",
    version,
    about = "Kubernetes operator for Strom clusters and topics"
)]
pub struct Cli {
    /// Address of the HTTP server with /metrics, /healthz and /readyz.
    #[arg(
        long,
        env = "STROM_OPERATOR_METRICS_LISTEN",
        default_value = "0.0.0.0:8080"
    )]
    pub metrics_listen: SocketAddr,

    /// Namespace to watch; repeat for several (comma-separated in the environment variable).
    /// None: all namespaces.
    #[arg(
        long = "namespace",
        env = "STROM_OPERATOR_NAMESPACE",
        value_delimiter = ','
    )]
    pub namespaces: Vec<String>,

    /// Run controllers only while holding the Lease, so several replicas can run.
    #[arg(long, env = "STROM_OPERATOR_LEADER_ELECTION", default_value_t = true, action = ArgAction::Set)]
    pub leader_election: bool,

    /// Name of the leader election Lease.
    #[arg(
        long,
        env = "STROM_OPERATOR_LEASE_NAME",
        default_value = "strom-operator"
    )]
    pub lease_name: String,

    /// Namespace of the Lease. Defaults to the environment variable POD_NAMESPACE.
    #[arg(long, env = "STROM_OPERATOR_LEASE_NAMESPACE")]
    pub lease_namespace: Option<String>,

    /// Log line format.
    #[arg(long, env = "STROM_OPERATOR_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Broker image (REPO:TAG) for Clusters that do not name one.
    #[arg(long, env = "STROM_OPERATOR_BROKER_IMAGE", default_value = DEFAULT_BROKER_IMAGE)]
    pub broker_image: String,

    /// Another runtime than the Kubernetes controllers.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The runtimes besides the Kubernetes controllers.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Run the Cluster and Topics of a manifest file as broker processes on this machine,
    /// reconciled like on Kubernetes; edit the file to change them.
    Local(LocalArgs),
}

/// `strom-operator local` arguments.
#[derive(Debug, Clone, Args)]
pub struct LocalArgs {
    /// The manifest: one Cluster and its Topics, as multi-document YAML.
    #[arg(long)]
    pub file: PathBuf,

    /// Where the brokers' data, ports and logs, and the status files, live.
    #[arg(long, default_value = "strom-local")]
    pub state_dir: PathBuf,

    /// The strom-broker binary; by default the one next to this executable.
    #[arg(long, env = "STROM_BROKER_BIN")]
    pub broker_bin: Option<PathBuf>,

    /// Address of an HTTP server with the operator's /metrics, /healthz and /readyz; none
    /// unless given (e.g. 127.0.0.1:9464).
    #[arg(long)]
    pub metrics_listen: Option<SocketAddr>,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_documented_contract() {
        let cli = Cli::try_parse_from(["strom-operator"]).expect("no flags parse");
        assert_eq!(cli.metrics_listen.to_string(), "0.0.0.0:8080");
        assert!(cli.namespaces.is_empty());
        assert!(cli.leader_election);
        assert_eq!(cli.lease_name, "strom-operator");
        assert_eq!(cli.log_format, LogFormat::Text);
        assert_eq!(cli.broker_image, DEFAULT_BROKER_IMAGE);
        assert!(cli.command.is_none());
    }

    #[test]
    fn the_local_subcommand_parses() {
        let cli = Cli::try_parse_from(["strom-operator", "local", "--file", "c.yaml"])
            .expect("local parses");
        let Some(Command::Local(args)) = cli.command else {
            panic!("local subcommand expected");
        };
        assert_eq!(args.file, PathBuf::from("c.yaml"));
        assert_eq!(args.state_dir, PathBuf::from("strom-local"));
        assert_eq!(args.metrics_listen, None);
        let cli = Cli::try_parse_from([
            "strom-operator",
            "local",
            "--file",
            "c.yaml",
            "--metrics-listen",
            "127.0.0.1:9464",
        ])
        .expect("local parses");
        let Some(Command::Local(args)) = cli.command else {
            panic!("local subcommand expected");
        };
        assert_eq!(
            args.metrics_listen.map(|a| a.to_string()).as_deref(),
            Some("127.0.0.1:9464")
        );
        let missing = Cli::try_parse_from(["strom-operator", "local"]).expect_err("--file needed");
        assert!(missing.to_string().contains("--file"), "{missing}");
    }

    #[test]
    fn every_flag_parses() {
        let cli = Cli::try_parse_from([
            "strom-operator",
            "--metrics-listen",
            "127.0.0.1:9000",
            "--namespace",
            "a",
            "--namespace",
            "b",
            "--leader-election",
            "false",
            "--lease-name",
            "x",
            "--lease-namespace",
            "ops",
            "--log-format",
            "json",
            "--broker-image",
            "example.org/broker:1",
        ])
        .expect("all flags parse");
        assert_eq!(cli.namespaces, vec!["a", "b"]);
        assert!(!cli.leader_election);
        assert_eq!(cli.lease_namespace.as_deref(), Some("ops"));
        assert_eq!(cli.log_format, LogFormat::Json);
        assert_eq!(cli.broker_image, "example.org/broker:1");
    }
}
