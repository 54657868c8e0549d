//! The transaction coordinator of the Strom broker: Kafka's exactly-once producer protocol
//! (KIP-98), with producer epoch bumps on retries (KIP-360), broker-side partition
//! verification (KIP-890) and transaction listing (KIP-664).
//!
//! The coordinator answers InitProducerId (with a transactional id), AddPartitionsToTxn,
//! AddOffsetsToTxn, EndTxn, DescribeTransactions and ListTransactions for the transactional
//! ids that hash onto the `__transaction_state` partitions this broker leads
//! ([`TransactionCoordinator::partition_for`], which the broker's FindCoordinator uses with key
//! type 1). Ending a transaction writes PrepareCommit/PrepareAbort to `__transaction_state`
//! before answering, then writes COMMIT/ABORT markers to every partition of the transaction
//! through the [`MarkerWriter`] until each has taken it, then writes CompleteCommit/
//! CompleteAbort.
//!
//! Layout:
//! - [`state`] and [`metadata`]: the pure state machine (Kafka's `TransactionMetadata` and its
//!   transitions), driven by explicit `now_ms` timestamps; unit-tested without I/O.
//! - [`records`]: Kafka's key/value schemas of `__transaction_state`.
//! - [`TransactionCoordinator`] (`coordinator/`, one file per API): the async driver that
//!   persists through strom-group's [`OffsetsLog`](strom_group::OffsetsLog) (the broker's
//!   partitions of an internal topic), writes markers in tasks of its own, loads partitions
//!   when this broker becomes coordinator, and runs the timeout and expiry checks in
//!   [`TxnTimer`].
//! - [`MarkerWriter`], [`ProducerIdSource`]: what the broker provides.
//!
//! Wiring (the broker): build one [`TransactionCoordinator`] over an `OffsetsLog` on the
//! `__transaction_state` partitions, spawn [`TransactionCoordinator::timer`]'s `run`, call
//! [`TransactionCoordinator::load_partition`] with the leader epoch for each partition this
//! broker leads (and [`TransactionCoordinator::unload_partition`] when it stops leading one),
//! call [`TransactionCoordinator::shutdown`] on shutdown, and advertise
//! [`TransactionCoordinator::supported_versions`] in ApiVersions.

mod codes;
mod config;
mod coordinator;
mod error;
mod marker;
pub mod metadata;
pub mod records;
pub mod state;

pub use config::TxnConfig;
pub use coordinator::{TransactionCoordinator, TxnOptions, TxnStats, TxnTimer};
pub use error::TxnError;
pub use marker::{MarkerError, MarkerRequest, MarkerResult, MarkerWriter, ProducerIdSource};
pub use metadata::TransactionMetadata;
pub use state::TxnState;

/// Name of the internal topic holding transaction state.
pub const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";
/// Name of the internal topic of committed offsets, whose partitions AddOffsetsToTxn adds.
pub const CONSUMER_OFFSETS_TOPIC: &str = "__consumer_offsets";
