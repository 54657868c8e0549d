//! The crate's error type: one enum, structured fields, messages an operator can act on.

use std::io;
use std::path::PathBuf;

use crate::batch::BatchError;
use crate::producer_state::ProducerStateError;

/// Everything a [`crate::PartitionLog`] operation can fail with.
///
/// The broker turns these into Kafka error codes in one place; the variants are chosen so that
/// mapping is direct: `CorruptRecord` → `CORRUPT_MESSAGE`, `InvalidRecord` → `INVALID_RECORD`,
/// `RecordTooLarge` → `MESSAGE_TOO_LARGE`, `RecordListTooLarge` → `RECORD_LIST_TOO_LARGE`,
/// `OffsetOutOfRange` → `OFFSET_OUT_OF_RANGE`, `ProducerState` → the idempotence errors
/// (`INVALID_PRODUCER_EPOCH` also for a fenced transaction marker), `InvalidTxnState` →
/// `INVALID_TXN_STATE`, `TransactionCoordinatorFenced` → `TRANSACTION_COORDINATOR_FENCED`.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A file system call failed.
    #[error("failed to {op} {}: {source}", path.display())]
    Io {
        /// What was being done, e.g. "append to" or "open".
        op: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// A batch of the record set is damaged (bad framing or CRC): the client should resend.
    #[error("corrupt record batch at byte {position} of the record set: {source}")]
    CorruptRecord {
        /// Byte position of the batch inside the appended record set.
        position: usize,
        /// What is wrong with it.
        #[source]
        source: BatchError,
    },

    /// A batch is well formed but not acceptable (wrong magic, no records, inconsistent counts).
    #[error("invalid record batch at byte {position} of the record set: {source}")]
    InvalidRecord {
        /// Byte position of the batch inside the appended record set.
        position: usize,
        /// What is wrong with it.
        #[source]
        source: BatchError,
    },

    /// The record set holds no batch at all.
    #[error("the record set is empty: a produce request must carry at least one record batch")]
    EmptyRecordSet,

    /// One batch is larger than the topic's `max.message.bytes`.
    #[error("record batch of {size} bytes exceeds max.message.bytes ({max_message_bytes})")]
    RecordTooLarge {
        /// Size of the offending batch in bytes.
        size: usize,
        /// The configured limit.
        max_message_bytes: usize,
    },

    /// The whole record set cannot fit into one segment (`segment.bytes`).
    #[error("record set of {size} bytes is larger than segment.bytes ({segment_bytes})")]
    RecordListTooLarge {
        /// Size of the record set in bytes.
        size: usize,
        /// The configured segment size.
        segment_bytes: u64,
    },

    /// The requested offset is not in `[log_start_offset, log_end_offset]`.
    #[error(
        "offset {requested} is out of range: the log holds [{log_start_offset}, {log_end_offset})"
    )]
    OffsetOutOfRange {
        /// The offset that was asked for.
        requested: i64,
        /// First offset still in the log.
        log_start_offset: i64,
        /// Offset the next appended record will get.
        log_end_offset: i64,
    },

    /// Assigning offsets would overflow the offset space.
    #[error("offset overflow: cannot assign {record_count} offsets after {log_end_offset}")]
    OffsetOverflow {
        /// The current log end offset.
        log_end_offset: i64,
        /// Offsets needed by the record set.
        record_count: i64,
    },

    /// A follower append goes back: its first new batch must start at or after the log end
    /// offset, and each batch at or after where the one before it ended (the follower's log
    /// diverged without being truncated). Gaps are allowed: compaction removes batches.
    #[error(
        "replicated batch starts at offset {actual}, but the log continues at offset {expected}"
    )]
    OffsetMismatch {
        /// The offset the log continues at.
        expected: i64,
        /// The base offset of the batch received.
        actual: i64,
    },

    /// An idempotent-producer check rejected the append.
    #[error(transparent)]
    ProducerState(#[from] ProducerStateError),

    /// The batch repeats one already in the log (an idempotent producer's retry). Nothing was
    /// appended; Kafka answers the produce with success and the original offsets.
    #[error(
        "duplicate batch of producer {producer_id}: already stored at offsets {first_offset}..={last_offset}"
    )]
    DuplicateSequence {
        /// The producer id.
        producer_id: i64,
        /// Offset of the stored batch's first record.
        first_offset: i64,
        /// Offset of the stored batch's last record.
        last_offset: i64,
    },

    /// A producer with an open transaction sent a non-transactional batch: Kafka
    /// `INVALID_TXN_STATE` (48). Nothing was appended.
    #[error(
        "producer {producer_id} sent a non-transactional batch while its transaction from offset {txn_first_offset} is open"
    )]
    InvalidTxnState {
        /// The producer id.
        producer_id: i64,
        /// First offset of the producer's open transaction.
        txn_first_offset: i64,
    },

    /// A transaction marker from a coordinator older than the one that wrote the producer's
    /// last marker: Kafka `TRANSACTION_COORDINATOR_FENCED` (52). Nothing was appended.
    #[error(
        "marker for producer {producer_id} from coordinator epoch {coordinator_epoch} is fenced: the last marker came from coordinator epoch {current_coordinator_epoch}"
    )]
    TransactionCoordinatorFenced {
        /// The producer id.
        producer_id: i64,
        /// The marker's coordinator epoch.
        coordinator_epoch: i32,
        /// The coordinator epoch of the producer's last marker.
        current_coordinator_epoch: i32,
    },

    /// A verified transactional batch would begin a transaction whose producer had a marker
    /// written since the verification (KIP-890): the transaction it belonged to ended. Kafka
    /// `INVALID_TXN_STATE` (48). Nothing was appended.
    #[error(
        "producer {producer_id}'s transaction ended after the coordinator verified this partition"
    )]
    TransactionEndedSinceVerification {
        /// The producer id.
        producer_id: i64,
    },

    /// The log was closed (broker shutting down, or partition deleted).
    #[error("the log in {} is closed", dir.display())]
    Closed {
        /// The partition directory.
        dir: PathBuf,
    },

    /// A stored batch fails validation on read (disk corruption, or a batch written by a version
    /// that did not check records): it is not served. Kafka answers such a read with
    /// `CORRUPT_MESSAGE` for that partition and offset.
    #[error(
        "corrupt record batch in {} at byte {position}, reading offset {offset}: {reason}",
        path.display()
    )]
    CorruptBatchInLog {
        /// The segment file.
        path: PathBuf,
        /// Byte position of the batch in the file.
        position: u64,
        /// The offset being read.
        offset: i64,
        /// What is wrong with it.
        reason: String,
    },

    /// A log directory's offset checkpoint file does not parse.
    #[error("malformed checkpoint file {}, line {line}: {reason}", path.display())]
    CorruptCheckpoint {
        /// The file.
        path: PathBuf,
        /// The line at fault, from 1.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },

    /// An entry cannot be written to an offset checkpoint file.
    #[error("cannot write {topic:?} partition {partition} to {}: {reason}", path.display())]
    InvalidCheckpointEntry {
        /// The file.
        path: PathBuf,
        /// The entry's topic.
        topic: String,
        /// The entry's partition.
        partition: i32,
        /// Why it cannot be written.
        reason: &'static str,
    },

    /// A cleaning pass stopped without changing the log: the log was closed, truncated or
    /// trimmed meanwhile, or another pass runs. Its files were removed; nothing is lost.
    #[error("cleaning of {} aborted: {reason}", dir.display())]
    CleaningAborted {
        /// The partition directory.
        dir: PathBuf,
        /// Why.
        reason: &'static str,
    },

    /// A file of the log is damaged beyond what recovery repairs.
    #[error("corrupt log file {}: {reason}", path.display())]
    CorruptLogFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

/// Shorthand used with `map_err`: wraps an `io::Error` with the operation and path.
pub(crate) fn io_err(
    op: &'static str,
    path: &std::path::Path,
) -> impl FnOnce(io::Error) -> StorageError {
    let path = path.to_path_buf();
    move |source| StorageError::Io { op, path, source }
}
