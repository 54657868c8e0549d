//! `strom-operator local`: the Cluster and Topic manifests of one file run as broker processes
//! on this machine, reconciled by the same day-2 planner as on Kubernetes.
//!
//! Layout: [`manifests`] (the multi-document YAML file), [`processes`] ([`LocalWorkload`],
//! the [`crate::day2::Workload`] of child processes and their state directory), [`ports`]
//! (the brokers' ports, OS-chosen or pinned by Cluster annotations), [`status`]
//! (the status files), [`topics`] (Topics through the Topic planner and replication-factor changes), [`run`] (the loop).

pub mod manifests;
pub mod ports;
pub mod processes;
pub mod run;
pub mod status;
pub mod topics;

pub use processes::LocalWorkload;
pub use run::{LocalOptions, broker_binary, run};

/// Why `strom-operator local` stopped.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// The manifest file cannot be used (at start; later changes that cannot are logged and
    /// skipped).
    #[error(transparent)]
    Manifest(#[from] manifests::ManifestError),
    /// The broker binary cannot be found.
    #[error("the strom-broker binary: {0}")]
    BrokerBinary(String),
    /// The brokers' state directory cannot be used.
    #[error(transparent)]
    Operator(#[from] crate::error::Error),
    /// The signal handlers cannot be installed.
    #[error("cannot listen for SIGTERM and SIGINT: {0}")]
    Signal(#[source] std::io::Error),
    /// The operator metrics cannot be set up or served (`--metrics-listen`).
    #[error("operator metrics: {0}")]
    Metrics(String),
}

#[cfg(test)]
mod processes_tests;
#[cfg(test)]
mod topics_tests;
