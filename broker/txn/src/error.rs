//! Errors of coordinator operations that are not answered with a Kafka error code.

use strom_group::OffsetsLogError;

/// Failure of loading a `__transaction_state` partition.
#[derive(Debug, thiserror::Error)]
pub enum TxnError {
    /// The partition number is outside `__transaction_state`.
    #[error(
        "__transaction_state has {partitions} partitions; partition {partition} does not exist"
    )]
    UnknownPartition {
        /// Requested partition.
        partition: i32,
        /// The partition count transactional ids hash onto.
        partitions: i32,
    },
    /// Reading the partition failed.
    #[error("loading __transaction_state-{partition} failed: {source}")]
    Load {
        /// Partition being loaded.
        partition: i32,
        /// Log failure.
        #[source]
        source: OffsetsLogError,
    },
    /// The log ends in a batch that is cut short.
    #[error("__transaction_state-{partition} ends in a truncated batch at offset {offset}")]
    TruncatedBatch {
        /// Partition being loaded.
        partition: i32,
        /// Offset of the batch.
        offset: i64,
    },
    /// The coordinator shut down, the partition was unloaded, or a newer coordinator epoch
    /// was loaded while loading.
    #[error("loading __transaction_state-{partition} was abandoned")]
    LoadAbandoned {
        /// Partition being loaded.
        partition: i32,
    },
}

/// The Kafka error code a client sees when a write to `__transaction_state` fails this way
/// (Kafka's `TransactionStateManager.appendTransactionToLog` mapping).
pub(crate) fn append_error_code(error: &OffsetsLogError) -> i16 {
    use crate::codes::*;
    match error {
        OffsetsLogError::NotLeader { .. } | OffsetsLogError::Storage { .. } => NOT_COORDINATOR,
        OffsetsLogError::Unavailable { .. } => COORDINATOR_NOT_AVAILABLE,
        OffsetsLogError::TooLarge { .. } => UNKNOWN_SERVER_ERROR,
        OffsetsLogError::Rejected { error_code, .. } => *error_code,
    }
}
