//! What request handlers may touch, one capability at a time, so each handler names exactly
//! what it reads and writes and can be tested against fakes (mini-redis's `apply(&Db, ..)`,
//! tansu's handlers over a storage port):
//!
//! - [`MetadataView`]: the current metadata image, this broker's id and who the controller is;
//! - [`ControllerChannel`](crate::controller_channel::ControllerChannel): the admin
//!   operations of the active controller, wherever it runs;
//! - [`HostedPartitions`]: the partition replicas this broker hosts, looked up the way a
//!   client's request must find them (the leader, or a readable follower);
//! - [`TransactionVerifier`]: the coordinator's word on a transactional produce (KIP-890).
//! - [`TransactionalOffsets`]: transactional offset commits completing with their marker.
//! - [`CoordinatorLookup`]: which partition of `__consumer_offsets` coordinates a group, and
//!   which partition of `__transaction_state` a transactional id.
//!
//! [`Broker`](crate::broker::Broker) implements the metadata view, the hosted partitions and
//! the coordinator lookup; its `controller` (a `ControllerClient`) is the controller channel.
//! Handlers take them as separate arguments (see `protocol::dispatch`), with plain data
//! (configs, metrics) beside them; tests pass fakes (`handlers::fakes`).

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use strom_metadata::MetadataImage;

use crate::replica::Partition;
use crate::replica::quota::ReplicationQuota;

/// The cluster metadata as this broker sees it.
pub trait MetadataView: Send + Sync {
    /// The current metadata image; handlers read one snapshot per request, and read it again
    /// after a change they waited for.
    fn image(&self) -> Arc<MetadataImage>;

    /// This broker's node id.
    fn node_id(&self) -> i32;

    /// The node id of the active controller (the metadata quorum's leader), -1 if none is known.
    fn controller_id(&self) -> i32;

    /// The controller id Metadata tells clients, which send admin requests there.
    fn metadata_controller_id(&self) -> i32;
}

/// The partition replicas hosted by this broker. `'static` so that work handed to a
/// partition's I/O worker (an append) may be typed apart from the borrow that started it.
pub trait HostedPartitions: Send + Sync + 'static {
    /// The partition if this broker leads it, else the error code a client gets
    /// (UNKNOWN_TOPIC_OR_PARTITION, KAFKA_STORAGE_ERROR when its log could not be opened, or
    /// NOT_LEADER_OR_FOLLOWER so it refreshes its metadata).
    fn leader_partition(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<Arc<Partition>, ResponseError>;

    /// The partition if a consumer may read it here (KIP-392): this broker leads it, or follows
    /// a live leader.
    fn readable_partition(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<Arc<Partition>, ResponseError>;

    /// The partitions of `topic` hosted here whose logs could not be opened.
    fn offline_partitions(&self, topic: &str) -> Vec<i32>;

    /// Every partition hosted here whose log is open.
    fn all_partitions(&self) -> Vec<Arc<Partition>>;

    /// The leader side of the replication throttles (KIP-73), which follower fetches count
    /// against.
    fn leader_quota(&self) -> &ReplicationQuota;

    /// Applies the latest image to the hosted partitions now, so that an admin request's effect
    /// (a new topic's logs, a deleted topic's data) is in place before it is acknowledged.
    fn publish_metadata(&self) -> impl Future<Output = ()> + Send;
}

/// The two coordinators FindCoordinator locates (its `key_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoordinatorKind {
    /// Consumer groups, on `__consumer_offsets` (key type 0).
    Group,
    /// Transactional ids, on `__transaction_state` (key type 1).
    Transaction,
}

impl CoordinatorKind {
    /// The internal topic whose partition leaders are this kind's coordinators.
    pub fn topic(self) -> &'static str {
        match self {
            CoordinatorKind::Group => crate::groups::OFFSETS_TOPIC,
            CoordinatorKind::Transaction => crate::transactions::TRANSACTION_STATE_TOPIC,
        }
    }
}

/// The coordinators' placement: which partition of their internal topic a key hashes to.
pub trait CoordinatorLookup: Send + Sync {
    /// Creates the internal topic of `kind` if it does not exist yet and loads the coordinator
    /// state of the partitions of it this broker leads. Idempotent.
    fn ensure_coordinator_topic(&self, kind: CoordinatorKind) -> impl Future<Output = ()> + Send;

    /// The partition of `kind`'s internal topic whose leader coordinates `key`.
    fn partition_for(&self, kind: CoordinatorKind, key: &str) -> i32;
}

/// The group coordinator's part in transactions: offsets a transaction committed
/// (TxnOffsetCommit) become visible, or are dropped, when its marker reaches their
/// `__consumer_offsets` partition.
pub trait TransactionalOffsets: Send + Sync {
    /// A COMMIT (`commit`) or ABORT marker of `producer_id` was written to partition
    /// `partition` of `__consumer_offsets`.
    fn complete_transaction(
        &self,
        partition: i32,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
    ) -> impl Future<Output = ()> + Send;
}

/// KIP-890 verification of a transactional produce: before a partition leader appends the
/// first transactional batch of a producer's transaction, the transaction coordinator confirms
/// that the partition is in that producer's ongoing transaction, so a batch that arrives after
/// its transaction ended (a late retry, a zombie) is refused instead of opening a transaction
/// nobody will end.
pub trait TransactionVerifier: Send + Sync {
    /// The error each of `partitions` gets (absent: verified).
    fn verify_partitions(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: Vec<(String, i32)>,
    ) -> impl Future<Output = std::collections::HashMap<(String, i32), ResponseError>> + Send;
}
