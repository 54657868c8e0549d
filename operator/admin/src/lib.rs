//! A small Kafka admin client over the standard wire protocol.
//!
//! The Strom operator manages topics the way any Kafka tool does, with no side channel into
//! the broker, so it works against any Kafka-compatible broker. This crate is that client:
//! async (tokio), one request at a time per connection, on `strom-client`'s connections (the
//! Kafka client layer the broker's replica fetcher uses too), every message encoded and decoded
//! by the `kafka-protocol` crate.
//!
//! - [`BrokerAdmin`] is the capability the operator's reconcilers use: describe, create, grow,
//!   reconfigure and delete a topic. [`KafkaAdmin`] implements it.
//! - [`ClusterAdmin`] asks one broker how it sees the cluster (DescribeCluster): the cluster
//!   id, the active controller, the registered brokers. [`KafkaAdmin`] implements it too.
//! - [`ReplicaAdmin`] is what day-2 operations ask: partition state per topic (Metadata), log
//!   directories and replica sizes per broker (DescribeLogDirs), reassignments
//!   (AlterPartitionReassignments, ListPartitionReassignments) and leader elections
//!   (ElectLeaders), with per-partition outcomes as [`KafkaError`]s. [`KafkaAdmin`]
//!   implements it.
//! - [`ConfigAdmin`] reads effective configs of topics and brokers (DescribeConfigs) and
//!   changes several resources at once (IncrementalAlterConfigs): topics' effective
//!   `min.insync.replicas`, replication throttles on brokers and topics. [`KafkaAdmin`]
//!   implements it.
//! - [`KafkaAdmin::send`] and [`KafkaAdmin::send_to`] send any [`AdminRequest`] at the
//!   negotiated version, to any broker, the controller or one broker by node id.
//! - [`AdminError`] says what failed; [`error_name`] maps Kafka error codes to Kafka's names.
//!
//! Layout: `client` (bootstrap, per-broker connections, routing to the controller),
//! `controller` (controller requests retried after NOT_CONTROLLER), `topics` (the
//! [`BrokerAdmin`] operations), `cluster` (the [`ClusterAdmin`] operation), `configs` ([`ConfigAdmin`]), `replica_admin`
//! (the [`ReplicaAdmin`] trait and its types) with `partitions`, `log_dirs`, `reassignments`
//! and `leaders` implementing it, `topic_id` (Kafka's text form of topic ids), `error`. Framing, correlation ids, ApiVersions
//! negotiation and the request trait ([`AdminRequest`], `strom_client::Request`) are
//! `strom-client`'s.
//!
//! ```no_run
//! # async fn example() -> Result<(), strom_admin::AdminError> {
//! use std::collections::BTreeMap;
//! use std::time::Duration;
//! use strom_admin::{BrokerAdmin, KafkaAdmin};
//!
//! let admin = KafkaAdmin::connect("127.0.0.1:9092", Duration::from_secs(10)).await?;
//! let configs = BTreeMap::from([("retention.ms".to_owned(), "86400000".to_owned())]);
//! let topic_id = admin.create_topic("orders", 6, 3, &configs).await?;
//! let observed = admin.describe_topic("orders").await?;
//! # let _ = (topic_id, observed);
//! # Ok(())
//! # }
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;

mod client;
mod cluster;
mod configs;
mod controller;
mod error;
mod leaders;
mod log_dirs;
mod partitions;
mod reassignments;
mod replica_admin;
mod topic_id;
mod topics;

#[cfg(test)]
mod config_tests;
#[cfg(test)]
mod fake_broker;
#[cfg(test)]
mod replica_tests;
#[cfg(test)]
mod tests;

pub use client::{KafkaAdmin, Target};
pub use configs::{AlteredConfigs, ConfigAdmin, ConfigChanges, ConfigResource, DescribedConfigs};
pub use error::{AdminError, KafkaError};
pub use kafka_protocol::ResponseError;
pub use kafka_protocol::protocol::VersionRange;
pub use replica_admin::{
    ElectionType, LogDir, LogDirReplica, OngoingReassignment, PartitionResults, PartitionState,
    ReplicaAdmin, TopicPartition,
};
/// A request the admin client can send: `strom_client::Request`, under the name this crate
/// has always given it.
pub use strom_client::Request as AdminRequest;
pub use strom_client::error_name;

/// A topic as the brokers report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedTopic {
    /// The topic name.
    pub name: String,
    /// The topic id in Kafka's text form (22 characters of URL-safe base64, as
    /// `kafka-topics.sh --describe` prints it); empty when the broker predates topic ids.
    pub topic_id: String,
    /// The number of partitions.
    pub partitions: i32,
    /// The replica count of the lowest partition, as `kafka-topics.sh` reports it.
    pub replication_factor: i16,
    /// Only the configs set on the topic itself (source `DYNAMIC_TOPIC_CONFIG`), not broker
    /// or static defaults, so they compare directly with a topic spec.
    pub configs: BTreeMap<String, String>,
}

/// The Kafka admin operations the operator's topic reconciler needs.
pub trait BrokerAdmin: Send + Sync {
    /// Metadata (without auto-creation) then DescribeConfigs. `None` when the topic does not
    /// exist (`UNKNOWN_TOPIC_OR_PARTITION`).
    fn describe_topic(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<ObservedTopic>, AdminError>> + Send;

    /// CreateTopics on the controller; returns the new topic's id (see
    /// [`ObservedTopic::topic_id`]). An existing topic fails with `TOPIC_ALREADY_EXISTS`.
    fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        configs: &BTreeMap<String, String>,
    ) -> impl Future<Output = Result<String, AdminError>> + Send;

    /// CreatePartitions on the controller, growing the topic to `total` partitions. Kafka
    /// never shrinks a topic: a `total` not above the current count fails with
    /// `INVALID_PARTITIONS`.
    fn create_partitions(
        &self,
        name: &str,
        total: i32,
    ) -> impl Future<Output = Result<(), AdminError>> + Send;

    /// IncrementalAlterConfigs: SET each of `set`, DELETE (back to the default) each of
    /// `delete`, in one request. Configs named in neither keep their value. Nothing is sent
    /// when both are empty.
    fn alter_topic_configs(
        &self,
        name: &str,
        set: &BTreeMap<String, String>,
        delete: &BTreeSet<String>,
    ) -> impl Future<Output = Result<(), AdminError>> + Send;

    /// DeleteTopics on the controller. A topic that does not exist counts as deleted, so a
    /// finalizer can call this again after a partial failure.
    fn delete_topic(&self, name: &str) -> impl Future<Output = Result<(), AdminError>> + Send;
}

/// The cluster as one broker sees it, from its DescribeCluster answer (KIP-700).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterDescription {
    /// The cluster id the broker belongs to.
    pub cluster_id: String,
    /// The broker id of the active controller; `None` when the broker knows of none
    /// (`controller_id` -1, e.g. during an election).
    pub controller_id: Option<i32>,
    /// The registered brokers the broker knows of, by node id.
    pub brokers: Vec<DescribedBroker>,
}

/// One registered broker in a [`ClusterDescription`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribedBroker {
    /// The broker's node id.
    pub node_id: i32,
    /// The host of its advertised Kafka listener.
    pub host: String,
    /// The port of its advertised Kafka listener.
    pub port: i32,
    /// Its `broker.rack`, when it has one.
    pub rack: Option<String>,
    /// Whether the controller fenced it (it stopped heartbeating, or has not caught up with
    /// the metadata log). Brokers answering DescribeCluster below v2 list only unfenced
    /// brokers, so this is false for every broker they list.
    pub fenced: bool,
}

/// How one broker sees the cluster: the capability the operator's Cluster reconciler uses to
/// check that all brokers form one cluster.
pub trait ClusterAdmin: Send + Sync {
    /// DescribeCluster on the broker this client is connected to (the first reachable
    /// bootstrap address), asking for fenced brokers too where the broker supports it (v2).
    fn describe_cluster(
        &self,
    ) -> impl Future<Output = Result<ClusterDescription, AdminError>> + Send;
}
