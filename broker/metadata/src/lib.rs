//! Cluster metadata for Strom, after Kafka's KRaft.
//!
//! Cluster metadata (brokers, topics, partitions with their replicas, leaders, ISR and epochs,
//! configs) is a log of [`MetadataRecord`]s replicated by a Raft quorum (`openraft`). Every
//! node applies the committed log to an immutable [`MetadataImage`] that request handlers read
//! as a snapshot. The active controller validates admin operations against the image and
//! proposes the records that carry them out. A single broker is a quorum of one voter: the same
//! code path as a larger quorum.
//!
//! Layout:
//!
//! - [`records`]: the log records (versioned JSON).
//! - [`image`]: the immutable image and the pure `apply` of a record.
//! - [`topic_config`], [`topic_name`]: Kafka's topic config definitions and name rules;
//!   [`broker_config`]: the broker configs settable at run time (replication throttles).
//! - [`quorum`]: the running Raft node ([`MetadataQuorum`]): start, propose, image, subscribe.
//! - [`log_store`], [`state_machine`]: openraft storage (file log with CRC frames; image state
//!   machine with persisted snapshots). [`network`]: the voter transport seam.
//! - [`controller`]: admin operations, serialized and committed; their validation and record
//!   planning is pure code in `plan`, replica placement in [`placement`];
//!   [`controller_error`] maps their errors to Kafka error codes.
//! - Partition leadership: `partition_change` (one partition's next leader and ISR),
//!   `replication_control` (elections and ISR changes when brokers come and go),
//!   `alter_partition` (ISR changes a leader asks for, KIP-497), [`reassignment`] (KIP-455),
//!   `elect_leaders` (KIP-460 and the automatic preferred leader rebalance).
//!
//! - `testing` (feature `testing`): an in-process router transport and a multi-voter test
//!   cluster over it.
//!
//! On disk (the quorum directory, e.g. `<data-dir>/__cluster_metadata-0`): `raft.log`,
//! `vote.json`, `committed.json`, `purged.json`, `snapshot.json`, `cluster.json`, `.lock`.

mod alter_partition;
pub mod broker_config;
mod broker_lifecycle;
pub mod controller;
pub mod controller_client;
pub mod controller_error;
pub mod controller_ops;
mod elect_leaders;
mod election_timer;
pub mod error;
mod files;
pub mod grpc;
pub mod identity;
pub mod image;
mod leader_id_format;
pub mod log_store;
pub mod network;
mod partition_change;
pub mod placement;
mod plan;
pub mod quorum;
mod quorum_membership;
pub mod raft_types;
pub mod reassignment;
pub mod records;
mod replication_control;
pub mod state_machine;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod topic_config;
pub mod topic_name;

pub use controller::ConfigOp;
pub use controller::Controller;
pub use controller::ControllerOptions;
pub use controller::CreateTopicRequest;
pub use controller::CreateTopicResult;
pub use controller::CreatedTopic;
pub use controller::NewPartitions;
pub use controller::TopicDefaults;
pub use controller_client::ControllerClient;
pub use controller_error::ControllerError;
pub use controller_ops::AlterPartitionRequest;
pub use controller_ops::ControllerRequest;
pub use controller_ops::ControllerResponse;
pub use controller_ops::PartitionReassignment;
pub use controller_ops::PartitionState;
pub use error::MetadataError;
pub use files::lock_dir;
pub use image::BrokerRegistration;
pub use image::DynamicLevel;
pub use image::MetadataImage;
pub use image::PartitionImage;
pub use image::TopicImage;
pub use quorum::MetadataQuorum;
pub use quorum::NetworkContext;
pub use quorum::QuorumConfig;
pub use quorum::QuorumOptions;
pub use records::ConfigResource;
pub use records::MetadataRecord;

#[cfg(test)]
mod conformance_tests;
#[cfg(test)]
mod decode_fuzz_tests;
#[cfg(test)]
mod test_images;
