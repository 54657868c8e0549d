//! Errors of the group coordinator and of the `__consumer_offsets` log it writes through.

use kafka_protocol::ResponseError;

/// Failure of the broker's partition log behind [`crate::OffsetsLog`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OffsetsLogError {
    /// This broker is not (or no longer) the leader of the partition.
    #[error("__consumer_offsets-{partition} is not led by this broker; the coordinator moved")]
    NotLeader {
        /// Partition of `__consumer_offsets`.
        partition: i32,
    },
    /// The partition exists but cannot take writes right now (no log, too few in-sync replicas).
    #[error("__consumer_offsets-{partition} is unavailable: {reason}")]
    Unavailable {
        /// Partition of `__consumer_offsets`.
        partition: i32,
        /// What the log reported.
        reason: String,
    },
    /// The batch is larger than the partition accepts (`max.message.bytes`).
    #[error(
        "batch of {size} bytes for __consumer_offsets-{partition} exceeds the limit of {max} bytes"
    )]
    TooLarge {
        /// Partition of `__consumer_offsets`.
        partition: i32,
        /// Size of the batch that was refused.
        size: usize,
        /// Largest batch the partition accepts.
        max: usize,
    },
    /// The log refused the batch for its producer (for a transactional batch: a fenced or
    /// stale producer epoch, a transaction the producer did not start); `error_code` is the
    /// Kafka error the client gets (e.g. INVALID_PRODUCER_EPOCH, PRODUCER_FENCED).
    #[error("__consumer_offsets-{partition} refused the producer's batch: {reason}")]
    Rejected {
        /// Partition of `__consumer_offsets`.
        partition: i32,
        /// Kafka error code answered to the client.
        error_code: i16,
        /// What the log reported.
        reason: String,
    },
    /// The log failed to read or write (I/O error, corrupt segment).
    #[error("__consumer_offsets-{partition} storage failed: {reason}")]
    Storage {
        /// Partition of `__consumer_offsets`.
        partition: i32,
        /// What the log reported.
        reason: String,
    },
}

impl OffsetsLogError {
    /// The Kafka error code a client sees when a write of group state fails this way
    /// (as Kafka's `GroupMetadataManager` maps append errors).
    pub fn error_code(&self) -> i16 {
        match self {
            Self::NotLeader { .. } => ResponseError::NotCoordinator.code(),
            Self::TooLarge { .. } => ResponseError::InvalidCommitOffsetSize.code(),
            Self::Rejected { error_code, .. } => *error_code,
            Self::Unavailable { .. } | Self::Storage { .. } => {
                ResponseError::CoordinatorNotAvailable.code()
            }
        }
    }
}

/// Failure decoding a `__consumer_offsets` record key or value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The record ended before the field was complete.
    #[error("record truncated while reading {field}")]
    Truncated {
        /// Field being read.
        field: &'static str,
    },
    /// A string field held invalid UTF-8.
    #[error("field {field} is not valid UTF-8")]
    InvalidUtf8 {
        /// Field being read.
        field: &'static str,
    },
    /// A non-nullable field was null.
    #[error("field {field} is null but the schema does not allow null")]
    UnexpectedNull {
        /// Field being read.
        field: &'static str,
    },
    /// The schema version is not one this coordinator reads.
    #[error("{schema} version {version} is not supported")]
    UnsupportedVersion {
        /// Schema name (`OffsetCommitValue`, ...).
        schema: &'static str,
        /// Version found in the record.
        version: i16,
    },
    /// A string or bytes field is too long for its length prefix.
    #[error("field {field} is {len} bytes, longer than its length prefix allows")]
    TooLong {
        /// Field being written.
        field: &'static str,
        /// Its length.
        len: usize,
    },
}

/// Failure of a coordinator operation that is not answered with a Kafka error code.
#[derive(Debug, thiserror::Error)]
pub enum GroupError {
    /// The partition number is outside `__consumer_offsets`.
    #[error("__consumer_offsets has {partitions} partitions; partition {partition} does not exist")]
    UnknownPartition {
        /// Requested partition.
        partition: i32,
        /// The partition count groups hash onto.
        partitions: i32,
    },
    /// Reading the partition while loading it failed.
    #[error("loading __consumer_offsets-{partition} failed: {source}")]
    Load {
        /// Partition being loaded.
        partition: i32,
        /// Log failure.
        #[source]
        source: OffsetsLogError,
    },
    /// A batch in the partition could not be decoded.
    #[error(
        "__consumer_offsets-{partition} holds an undecodable batch at offset {offset}: {reason}"
    )]
    CorruptBatch {
        /// Partition being loaded.
        partition: i32,
        /// Offset of the batch.
        offset: i64,
        /// Decoder message.
        reason: String,
    },
    /// A record in the partition could not be decoded.
    #[error(
        "__consumer_offsets-{partition} holds an undecodable record at offset {offset}: {source}"
    )]
    CorruptRecord {
        /// Partition being loaded.
        partition: i32,
        /// Offset of the record.
        offset: i64,
        /// Decoder failure.
        #[source]
        source: RecordError,
    },
    /// The coordinator was shut down or the partition was unloaded while loading.
    #[error(
        "loading __consumer_offsets-{partition} was abandoned: the coordinator shut down or resigned"
    )]
    LoadAbandoned {
        /// Partition being loaded.
        partition: i32,
    },
}
