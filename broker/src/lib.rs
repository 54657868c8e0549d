//! strom-broker: a Kafka-compatible broker.
//!
//! The data path, in the order a produce request touches it:
//!
//! ```text
//! network::listener → network::connection (frames, one request at a time, responses in order)
//!   → protocol (decode header + body with kafka-protocol, route by API key)
//!   → handlers::<api> → replica::ReplicaManager → replica::Partition → strom_storage::PartitionLog
//! ```
//!
//! Layout:
//! - `config`: flags, `server.properties`, `--override`; Kafka's broker key names.
//! - `server`: start-up (data-dir lock, metadata quorum, listeners, registration) and shutdown.
//! - `broker`: the broker's shared state ([`broker::Broker`]), which provides the capabilities
//!   handlers take (`capabilities`: the metadata view, the hosted partitions, the coordinator
//!   lookup; `controller_channel`: the active controller's admin operations).
//! - `network`, `protocol`, `handlers`: the wire side; one handler file per Kafka API. Fetch
//!   record sets go from the segment files to the socket with `sendfile` (`protocol::zero_copy`,
//!   `network::send`).
//! - `fd_limit`: raises the open-file soft limit to the hard limit at start.
//! - `replica`: hosted partitions, high watermark, `acks` rules; the metadata image drives it.
//!   Their disk writes run on the log I/O threads (`replica::log_io`), never on tokio workers.
//! - `producer_ids`: producer ids for idempotent producers, in blocks from the controller.
//! - `topic_config`: a topic's effective configs and the storage settings derived from them.
//! - `errors`: the single mapping from internal errors to Kafka error codes.
//! - `log_limit`: rate limiting of log lines that loops or peers can repeat without end.
//! - `groups`: the group coordinator (`strom-group`) on `__consumer_offsets`.
//! - `transactions`: the transaction coordinator (`strom-txn`) on `__transaction_state`;
//!   `txn_markers` writes its COMMIT/ABORT markers (here, or through WriteTxnMarkers on the
//!   partition's leader), `txn_verify` asks it to confirm a transactional produce (KIP-890).
//! - `coordinator_partitions`, `internal_log`: what both coordinators share — creating their
//!   internal topic, following its partitions' leadership, persisting through its logs.
//! - `peer_connections`: Kafka connections to the other brokers, for markers and verification.
//! - `background`: metadata publishing, retention, time-based rolls and flushes.
//! - `log_cleaner`: the log cleaner threads of compacted topics over the hosted replicas.
//! - `admin_http`, `metrics`: `/metrics`, `/healthz`, `/readyz`.
//!
//! Storage lives in `strom-storage`, cluster metadata (Raft quorum, image, controller) in
//! `strom-metadata`; dependencies point from this crate to those, never back.

pub mod admin_http;
pub mod background;
pub mod broker;
pub mod capabilities;
pub mod config;
pub mod controller_channel;
pub mod coordinator_partitions;
pub mod errors;
pub mod fd_limit;
pub mod groups;
pub mod handlers;
pub mod internal_log;
pub mod lifecycle;
pub mod log_cleaner;
pub mod log_limit;
pub mod metrics;
pub mod network;
pub mod peer_connections;
pub mod producer_ids;
pub mod protocol;
pub mod quorum_config;
pub mod replica;
pub mod server;
#[cfg(test)]
mod test_batches;
pub mod topic_config;
pub mod transactions;
pub mod txn_markers;
pub mod txn_verify;
