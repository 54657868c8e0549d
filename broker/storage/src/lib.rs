//! `strom-storage`: the partition log engine of the Strom broker — Kafka's log layer in plain
//! synchronous Rust.
//!
//! A [`PartitionLog`] owns one directory per partition (`<data-dir>/<topic>-<partition>/`),
//! laid out as Kafka lays it out, so the files are familiar to anyone who has looked into a
//! Kafka data directory:
//!
//! ```text
//! 00000000000000000000.log        record batches (v2), as produced, with offsets assigned
//! 00000000000000000000.index      sparse offset index: (relative offset u32, position u32)
//! 00000000000000000000.timeindex  sparse time index: (timestamp i64, relative offset u32)
//! 00000000000000000000.txnindex   aborted transactions whose ABORT marker is in the segment
//! 00000000000000052110.log        next segment, named by its base offset (20 digits)
//! ...
//! 00000000000000052110.snapshot   producer state (sequences, open transactions) at that offset
//! log-start-offset                log start offset set by DeleteRecords
//! leader-epoch-checkpoint         leader epoch -> first offset, Kafka's text format
//! partition.metadata              the topic id the directory belongs to
//! clean-shutdown                  present only while the log is cleanly closed
//! cleaner-offset-checkpoint       compacted logs: where the uncleaned part starts
//! ```
//!
//! While the cleaner swaps a cleaned segment in, `<base>.log.cleaned` (being written) and
//! `<base>.log.swap` (complete, replacing the segments it covers) and their indexes appear;
//! opening the log rolls back or completes a swap a crash interrupted. A segment removed from
//! the log (retention, DeleteRecords, cleaning, truncation) leaves `<name>.<n>.deleted` files
//! for `file.delete.delay.ms`, so readers that started before can finish; opening the log
//! deletes any left over.
//!
//! Crash recovery: on open the last segment is scanned and CRC-checked and cut at the first
//! torn or corrupt batch, unless the log was closed cleanly (then cheap consistency checks
//! suffice, as with Kafka's clean-shutdown file). Sealed segments are fsynced when rolled.
//!
//! Modules:
//! - [`batch`]: zero-copy views over v2 record batches: header and CRC checks and the in-place
//!   patches the broker makes (base offset, leader epoch, timestamps).
//! - [`validate`]: Kafka's `LogValidator` rules over the records of a batch, walked once
//!   without building them (compressed batches through a streaming decompressor).
//! - `segment`, `index`: one segment's files and in-memory indexes; [`open_files`]: the bounded
//!   cache of sealed segments' open files; `file_deleter`: the `segment-deleter` thread that
//!   deletes removed segments' files after `file.delete.delay.ms`.
//! - `log`: [`PartitionLog`] — its types and state; `append`: the leader's append path;
//!   `follower`: the follower's append path (the leader's batches stored as received);
//!   `leader_epoch`: the leader-epoch cache and OffsetForLeaderEpoch; `flush`: rolls and
//!   flushes; `read`: fetches and timestamp lookups; `file_records`: reads
//!   as file ranges ([`FileRecords`]) for zero-copy sends; `recovery`: open and crash recovery;
//!   `retention`: retention and DeleteRecords; `truncate`: truncation for replication;
//!   `checkpoint`: the small state files, each replaced atomically (temporary file, fsync,
//!   rename, directory fsync); [`partition_metadata`]: the topic id file;
//!   [`OffsetCheckpoint`]: the log directory's offset checkpoint files (high watermarks,
//!   recovery points, log start offsets) in Kafka's format.
//! - [`producer_state`]: idempotent-producer sequences and open transactions (Kafka's
//!   ProducerStateManager); `transactions`: markers, the last stable offset and the aborted
//!   transactions of `read_committed` fetches; [`txn_index`]: the `.txnindex` format.
//! - [`records`]: decoding a batch into records and encoding records into a batch with any
//!   codec — the only place records are built; `recompress`: `compression.type` on the
//!   leader's append path.
//! - [`cleaner`]: Kafka's log cleaner for `cleanup.policy=compact` — one pass
//!   ([`PartitionLog::clean`]), the bounded offset map, the crash-safe segment swap, and the
//!   background threads ([`cleaner::LogCleaner`]).
//!
//! The engine is synchronous and does blocking file I/O: appends for a partition are serialised
//! by a mutex, reads take no lock on the append path (they read an atomically published snapshot
//! and use positional reads), so readers and writers of one partition never wait on each other.
//! Async callers run it on threads of their own (the broker's log I/O workers), never on the
//! async runtime's workers.

mod append;
pub mod batch;
mod checkpoint;
pub mod cleaner;
mod config;
mod error;
mod file_deleter;
mod file_records;
mod flush;
mod follower;
mod index;
mod leader_epoch;
mod log;
mod offset_checkpoint;
pub mod open_files;
pub mod partition_metadata;
pub mod producer_state;
mod read;
mod recompress;
pub mod records;
mod recovery;
mod retention;
mod segment;
mod transactions;
mod truncate;
pub mod txn_index;
pub mod validate;
mod verify;

pub use append::validate_record_set;
pub use config::{
    CleanupPolicy, CompressionType, DEFAULT_TIMESTAMP_AFTER_MAX_MS,
    DEFAULT_TIMESTAMP_BEFORE_MAX_MS, LogConfig, MAX_SEGMENT_BYTES, TimestampType,
};
pub use error::StorageError;
pub use file_records::{FileRange, FileRecords};
pub use log::{
    AppendInfo, AppendOrigin, BatchInfo, PartitionLog, ReadResult, RetentionOutcome,
    TimestampOffset,
};
pub use offset_checkpoint::{OffsetCheckpoint, PartitionOffsets};
pub use transactions::{OpenTxn, TxnGuard, TxnMarker};
pub use txn_index::AbortedTxn;
