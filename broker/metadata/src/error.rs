//! Errors of the metadata quorum and its storage.

use std::path::PathBuf;

use thiserror::Error;

/// An error starting, writing to or stopping the metadata quorum.
#[derive(Debug, Error)]
pub enum MetadataError {
    #[error("metadata I/O failed: could not {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "metadata file {path} is corrupt: {reason}; restore the metadata directory from a \
         replica or backup"
    )]
    Corrupt { path: PathBuf, reason: String },
    #[error(
        "metadata directory {path} belongs to cluster '{stored}' but cluster id '{configured}' \
         was configured; point the broker at the right data directory or fix the cluster id"
    )]
    ClusterIdMismatch {
        path: PathBuf,
        stored: String,
        configured: String,
    },
    #[error(
        "metadata directory {path} belongs to node {stored} but this broker is node \
         {configured}; point the broker at its own data directory"
    )]
    NodeIdMismatch {
        path: PathBuf,
        stored: u64,
        configured: u64,
    },
    #[error(
        "metadata directory {path} is in use by another running quorum; stop the other broker \
         or give this one its own data directory"
    )]
    DirectoryInUse { path: PathBuf },
    #[error("invalid quorum configuration: {reason}")]
    InvalidConfig { reason: String },
    #[error("invalid broker registration for node {node_id}: {reason}")]
    InvalidRegistration { node_id: i32, reason: String },
    #[error(
        "this node is not the active controller{}",
        leader.map(|l| format!("; node {l} is")).unwrap_or_else(|| "; no leader is elected yet".to_owned())
    )]
    NotLeader { leader: Option<u64> },
    #[error(
        "no metadata leader was elected within {timeout_ms} ms; check that a majority of the \
         voters are running and reachable"
    )]
    ElectionTimeout { timeout_ms: u64 },
    #[error(
        "{detail}; check controller.quorum.voters, or give this broker the data directory of \
         this cluster"
    )]
    ForeignQuorum { detail: String },
    #[error("the metadata quorum is shut down")]
    ShutDown,
    /// The Raft node stopped on a storage fault: a write or fsync of the metadata log, vote,
    /// commit point or snapshot failed (a full or failing disk). The node no longer takes part
    /// in the quorum; only a restart, once the disk is fixed, brings it back.
    #[error(
        "the metadata log cannot be written: {reason}; this node stopped taking part in the \
         metadata quorum and must be restarted once the disk is fixed"
    )]
    LogFailed { reason: String },
    #[error("metadata raft error: {message}")]
    Raft { message: String },
}

impl MetadataError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            op,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn raft(error: impl std::fmt::Display) -> Self {
        Self::Raft {
            message: error.to_string(),
        }
    }
}
