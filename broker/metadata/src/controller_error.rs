//! Errors of controller operations, and their Kafka error codes (mapped here, once).

use thiserror::Error;

use crate::error::MetadataError;
use crate::topic_config::ConfigValidationError;

/// Why an admin operation was refused. Each message says what to change.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ControllerError {
    #[error("{message}")]
    InvalidTopic { topic: String, message: String },
    #[error("Topic '{topic}' already exists.")]
    TopicAlreadyExists { topic: String },
    #[error("Topic '{topic}' does not exist.")]
    UnknownTopicOrPartition { topic: String },
    #[error("{message}")]
    InvalidPartitions { topic: String, message: String },
    #[error("{message}")]
    InvalidReplicationFactor { topic: String, message: String },
    #[error("{message}")]
    InvalidReplicaAssignment { topic: String, message: String },
    #[error("{reason}")]
    InvalidConfig { key: String, reason: String },
    #[error("{message}")]
    InvalidRequest { message: String },
    #[error(
        "This node is not the active controller{}; retry against the active controller.",
        leader.map(|l| format!(" (node {l} is)")).unwrap_or_default()
    )]
    NotController { leader: Option<u64> },
    #[error("internal error: {0}")]
    Internal(String),
}

impl ControllerError {
    /// The Kafka protocol error code for this error.
    pub fn kafka_error_code(&self) -> i16 {
        match self {
            Self::InvalidTopic { .. } => 17,
            Self::TopicAlreadyExists { .. } => 36,
            Self::UnknownTopicOrPartition { .. } => 3,
            Self::InvalidPartitions { .. } => 37,
            Self::InvalidReplicationFactor { .. } => 38,
            Self::InvalidReplicaAssignment { .. } => 39,
            Self::InvalidConfig { .. } => 40,
            Self::NotController { .. } => 41,
            Self::InvalidRequest { .. } => 42,
            Self::Internal(_) => -1,
        }
    }

    /// The message to put in a response's error message field: the error itself, except for
    /// internal errors whose details (paths, storage errors) belong in the broker log only.
    pub fn client_message(&self) -> String {
        match self {
            Self::Internal(_) => {
                "Unexpected error in the controller; see the broker log.".to_owned()
            }
            other => other.to_string(),
        }
    }
}

impl From<MetadataError> for ControllerError {
    fn from(e: MetadataError) -> Self {
        match e {
            MetadataError::NotLeader { leader } => Self::NotController { leader },
            // A stopping quorum cannot commit; clients retry against the next controller.
            MetadataError::ShutDown => Self::NotController { leader: None },
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<ConfigValidationError> for ControllerError {
    fn from(e: ConfigValidationError) -> Self {
        Self::InvalidConfig {
            key: e.key().to_owned(),
            reason: e.to_string(),
        }
    }
}
