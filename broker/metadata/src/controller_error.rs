//! Errors of controller operations, and their Kafka error codes (mapped here, once).

use thiserror::Error;

use crate::error::MetadataError;
use crate::topic_config::ConfigValidationError;

/// Why an admin operation was refused. Each message says what to change.
#[derive(Debug, Clone, PartialEq, Eq, Error, serde::Serialize, serde::Deserialize)]
pub enum ControllerError {
    #[error("{message}")]
    InvalidTopic { topic: String, message: String },
    #[error("Topic '{topic}' already exists.")]
    TopicAlreadyExists { topic: String },
    #[error("{}", unknown_message(topic, *partition))]
    UnknownTopicOrPartition {
        topic: String,
        /// The partition asked for, when the topic exists but not that partition.
        #[serde(default)]
        partition: Option<i32>,
    },
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
    /// No controller could be reached within the request's deadline (Kafka's
    /// REQUEST_TIMED_OUT, which clients retry).
    #[error("No active controller answered within {timeout_ms} ms; retry later.")]
    ControllerUnavailable { timeout_ms: u64 },
    /// A heartbeat or shutdown request from an incarnation the controller no longer knows
    /// (Kafka's STALE_BROKER_EPOCH): the broker must register again.
    #[error("Broker {node_id} is not registered with this incarnation; register again.")]
    StaleBrokerEpoch { node_id: i32 },
    /// An AlterPartition from a broker that is not the partition's leader, or with a leader
    /// epoch other than the current one (Kafka's FENCED_LEADER_EPOCH).
    #[error("{message}")]
    FencedLeaderEpoch {
        topic: String,
        partition: i32,
        message: String,
    },
    /// An AlterPartition based on a partition epoch other than the current one (Kafka's
    /// INVALID_UPDATE_VERSION): the leader must apply the newer metadata first.
    #[error(
        "Partition {topic}-{partition} is at partition epoch {current}, not {requested}; \
         apply the newer metadata and retry."
    )]
    InvalidUpdateVersion {
        topic: String,
        partition: i32,
        requested: i32,
        current: i32,
    },
    /// A new ISR names a broker that may not join it (Kafka's INELIGIBLE_REPLICA).
    #[error("Broker {broker} may not join the ISR of {topic}-{partition}: {reason}.")]
    IneligibleReplica {
        topic: String,
        partition: i32,
        broker: i32,
        reason: String,
    },
    /// Cancelling a reassignment of a partition that has none (Kafka's
    /// NO_REASSIGNMENT_IN_PROGRESS).
    #[error("No reassignment of {topic}-{partition} is in progress.")]
    NoReassignmentInProgress { topic: String, partition: i32 },
    /// ElectLeaders for a partition that already has the leader asked for (Kafka's
    /// ELECTION_NOT_NEEDED).
    #[error("Leader election not needed for {topic}-{partition}.")]
    ElectionNotNeeded { topic: String, partition: i32 },
    /// A preferred election whose preferred replica is not live and in sync (Kafka's
    /// PREFERRED_LEADER_NOT_AVAILABLE).
    #[error(
        "The preferred leader of {topic}-{partition} is not available: it must be live and in \
         the ISR."
    )]
    PreferredLeaderNotAvailable { topic: String, partition: i32 },
    /// An unclean election without any live replica (Kafka's ELIGIBLE_LEADERS_NOT_AVAILABLE).
    #[error("No live replica of {topic}-{partition} can become its leader.")]
    EligibleLeadersNotAvailable { topic: String, partition: i32 },
    /// This node's metadata log failed (a write or fsync on a full or failing disk): its
    /// controller cannot commit and the node is stopping (Kafka's KAFKA_STORAGE_ERROR). The
    /// paths and OS error are in the node's log, not in the answer.
    #[error(
        "The metadata log of this node cannot be written; the node is stopping. Retry against \
         another broker."
    )]
    MetadataLogFailed,
    #[error("internal error: {0}")]
    Internal(String),
}

fn unknown_message(topic: &str, partition: Option<i32>) -> String {
    match partition {
        Some(partition) => format!("Partition {partition} of topic '{topic}' does not exist."),
        None => format!("Topic '{topic}' does not exist."),
    }
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
            Self::ControllerUnavailable { .. } => 7,
            Self::StaleBrokerEpoch { .. } => 77,
            Self::InvalidRequest { .. } => 42,
            Self::FencedLeaderEpoch { .. } => 74,
            Self::InvalidUpdateVersion { .. } => 82,
            Self::IneligibleReplica { .. } => 107,
            Self::NoReassignmentInProgress { .. } => 85,
            Self::ElectionNotNeeded { .. } => 84,
            Self::PreferredLeaderNotAvailable { .. } => 80,
            Self::EligibleLeadersNotAvailable { .. } => 83,
            Self::MetadataLogFailed => 56,
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
            // The node logs the fault itself, once (see `MetadataQuorum::failed`).
            MetadataError::LogFailed { .. } => Self::MetadataLogFailed,
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<ConfigValidationError> for ControllerError {
    fn from(e: ConfigValidationError) -> Self {
        match e {
            // Kafka answers INVALID_REQUEST for a broker config that cannot change at run time.
            ConfigValidationError::NotDynamic { .. } => Self::InvalidRequest {
                message: e.to_string(),
            },
            _ => Self::InvalidConfig {
                key: e.key().to_owned(),
                reason: e.to_string(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_errors_carry_kafka_codes() {
        let (topic, partition) = ("t".to_owned(), 0);
        let cases = [
            (
                ControllerError::FencedLeaderEpoch {
                    topic: topic.clone(),
                    partition,
                    message: String::new(),
                },
                74,
            ),
            (
                ControllerError::InvalidUpdateVersion {
                    topic: topic.clone(),
                    partition,
                    requested: 1,
                    current: 2,
                },
                82,
            ),
            (
                ControllerError::IneligibleReplica {
                    topic: topic.clone(),
                    partition,
                    broker: 1,
                    reason: String::new(),
                },
                107,
            ),
            (
                ControllerError::NoReassignmentInProgress {
                    topic: topic.clone(),
                    partition,
                },
                85,
            ),
            (
                ControllerError::ElectionNotNeeded {
                    topic: topic.clone(),
                    partition,
                },
                84,
            ),
            (
                ControllerError::PreferredLeaderNotAvailable {
                    topic: topic.clone(),
                    partition,
                },
                80,
            ),
            (
                ControllerError::EligibleLeadersNotAvailable {
                    topic: topic.clone(),
                    partition,
                },
                83,
            ),
            (ControllerError::MetadataLogFailed, 56),
            (
                ControllerError::UnknownTopicOrPartition {
                    topic,
                    partition: Some(3),
                },
                3,
            ),
        ];
        for (error, code) in cases {
            assert_eq!(error.kafka_error_code(), code, "{error:?}");
            let json = serde_json::to_string(&error).expect("serializes");
            let back: ControllerError = serde_json::from_str(&json).expect("deserializes");
            assert_eq!(back, error);
        }
        let older: ControllerError =
            serde_json::from_str(r#"{"UnknownTopicOrPartition":{"topic":"t"}}"#)
                .expect("an answer of an older controller decodes");
        assert_eq!(older.to_string(), "Topic 't' does not exist.");
    }
}
