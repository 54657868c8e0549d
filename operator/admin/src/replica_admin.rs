//! [`ReplicaAdmin`]: what the operator's day-2 operations (reassignment, scaling, rolling
//! restarts) ask of the brokers, and the types of the answers.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;

use crate::client::KafkaAdmin;
use crate::error::{AdminError, KafkaError};

/// A partition of a topic, as Kafka's `TopicPartition`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicPartition {
    /// The topic name.
    pub topic: String,
    /// The partition index.
    pub partition: i32,
}

impl TopicPartition {
    /// Partition `partition` of `topic`.
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        Self {
            topic: topic.into(),
            partition,
        }
    }
}

impl fmt::Display for TopicPartition {
    /// Kafka's form: `orders-3`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// One partition as the cluster metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionState {
    /// The partition index.
    pub partition: i32,
    /// The leader's broker id; `None` when the partition has no leader (offline, or an
    /// election is in progress).
    pub leader: Option<i32>,
    /// The leader epoch; `None` from brokers answering Metadata below v7, which do not say.
    pub leader_epoch: Option<i32>,
    /// The assigned replicas, preferred leader first. During a reassignment this includes the
    /// replicas being added.
    pub replicas: Vec<i32>,
    /// The in-sync replicas.
    pub isr: Vec<i32>,
    /// Replicas whose log directory is offline (Metadata v5+).
    pub offline_replicas: Vec<i32>,
    /// The partition's own error, e.g. `LEADER_NOT_AVAILABLE`; the other fields still say
    /// what the broker knows.
    pub error: Option<KafkaError>,
}

/// One log directory of one broker, from DescribeLogDirs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogDir {
    /// The directory's absolute path on the broker.
    pub path: String,
    /// Why the directory cannot be described (e.g. `KAFKA_STORAGE_ERROR` for an offline
    /// directory); its replicas are then unknown.
    pub error: Option<KafkaError>,
    /// The size of the volume holding it (DescribeLogDirs v4+, KIP-827); `None` when the
    /// broker does not say.
    pub total_bytes: Option<i64>,
    /// The bytes left on that volume, as `total_bytes`.
    pub usable_bytes: Option<i64>,
    /// The partition replicas it holds, sorted by partition (a future replica, being moved
    /// here from another directory, after the current one).
    pub replicas: Vec<LogDirReplica>,
}

/// One partition replica in a [`LogDir`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogDirReplica {
    /// The partition.
    pub partition: TopicPartition,
    /// The bytes of its log segments.
    pub size_bytes: i64,
    /// How far it is behind its log end (a future replica's lag behind the current one).
    pub offset_lag: i64,
    /// Whether it is a future replica being moved into this directory (AlterReplicaLogDirs).
    pub is_future: bool,
}

/// A reassignment in progress, from ListPartitionReassignments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OngoingReassignment {
    /// The replicas now assigned: the current ones and the ones being added.
    pub replicas: Vec<i32>,
    /// The target replicas not yet in the assignment's final form (catching up).
    pub adding_replicas: Vec<i32>,
    /// The replicas that leave once the added ones are in sync.
    pub removing_replicas: Vec<i32>,
}

/// Which leader ElectLeaders elects (KIP-460).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElectionType {
    /// The first replica of the assignment, if it is in the ISR.
    Preferred,
    /// Any live replica, in or out of the ISR, for partitions with no leader: records the
    /// ISR held and the chosen replica lacks are lost.
    Unclean,
}

impl ElectionType {
    /// The wire value of `election_type`.
    pub(crate) fn code(self) -> i8 {
        match self {
            Self::Preferred => 0,
            Self::Unclean => 1,
        }
    }
}

/// Per partition, whether a request succeeded for it.
pub type PartitionResults = BTreeMap<TopicPartition, Result<(), KafkaError>>;

/// The replica and leadership operations of the operator's day-2 work, each one standard
/// Kafka request.
pub trait ReplicaAdmin: Send + Sync {
    /// Metadata for `topics` (`None`: every topic), without auto-creation: per topic its
    /// partitions sorted by index, or the topic's error (`UNKNOWN_TOPIC_OR_PARTITION` when it
    /// does not exist).
    fn describe_topics_partitions(
        &self,
        topics: Option<&[&str]>,
    ) -> impl Future<
        Output = Result<BTreeMap<String, Result<Vec<PartitionState>, KafkaError>>, AdminError>,
    > + Send;

    /// DescribeLogDirs on broker `broker_id`: its log directories and the size of each
    /// partition replica in them. `partitions` limits the answer (`None`: every partition);
    /// partitions the broker does not host are left out, as Kafka does.
    fn describe_log_dirs(
        &self,
        broker_id: i32,
        partitions: Option<&[TopicPartition]>,
    ) -> impl Future<Output = Result<Vec<LogDir>, AdminError>> + Send;

    /// AlterPartitionReassignments on the controller: move each partition to the replicas
    /// given (preferred leader first), or cancel its reassignment in progress (`None`).
    /// Replication factor changes are allowed (KIP-860). Per partition the controller's
    /// verdict, e.g. `NO_REASSIGNMENT_IN_PROGRESS` for a cancel with nothing to cancel.
    fn alter_partition_reassignments(
        &self,
        reassignments: &BTreeMap<TopicPartition, Option<Vec<i32>>>,
    ) -> impl Future<Output = Result<PartitionResults, AdminError>> + Send;

    /// ListPartitionReassignments on the controller: the reassignments in progress among
    /// `partitions` (`None`: all of them).
    fn list_partition_reassignments(
        &self,
        partitions: Option<&[TopicPartition]>,
    ) -> impl Future<Output = Result<BTreeMap<TopicPartition, OngoingReassignment>, AdminError>> + Send;

    /// ElectLeaders on the controller for `partitions` (`None`: every partition). Per
    /// partition the outcome; `ELECTION_NOT_NEEDED` means the leader already is the one the
    /// election would choose. An unclean election needs ElectLeaders v1+ on the broker.
    fn elect_leaders(
        &self,
        election: ElectionType,
        partitions: Option<&[TopicPartition]>,
    ) -> impl Future<Output = Result<PartitionResults, AdminError>> + Send;
}

impl ReplicaAdmin for KafkaAdmin {
    async fn describe_topics_partitions(
        &self,
        topics: Option<&[&str]>,
    ) -> Result<BTreeMap<String, Result<Vec<PartitionState>, KafkaError>>, AdminError> {
        self.partition_states(topics).await
    }

    async fn describe_log_dirs(
        &self,
        broker_id: i32,
        partitions: Option<&[TopicPartition]>,
    ) -> Result<Vec<LogDir>, AdminError> {
        self.log_dirs_of(broker_id, partitions).await
    }

    async fn alter_partition_reassignments(
        &self,
        reassignments: &BTreeMap<TopicPartition, Option<Vec<i32>>>,
    ) -> Result<PartitionResults, AdminError> {
        self.reassign(reassignments).await
    }

    async fn list_partition_reassignments(
        &self,
        partitions: Option<&[TopicPartition]>,
    ) -> Result<BTreeMap<TopicPartition, OngoingReassignment>, AdminError> {
        self.ongoing_reassignments(partitions).await
    }

    async fn elect_leaders(
        &self,
        election: ElectionType,
        partitions: Option<&[TopicPartition]>,
    ) -> Result<PartitionResults, AdminError> {
        self.elect(election, partitions).await
    }
}

/// `partitions` grouped by topic, partition indexes sorted and unique.
pub(crate) fn by_topic(partitions: &[TopicPartition]) -> BTreeMap<&str, Vec<i32>> {
    let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for tp in partitions {
        topics
            .entry(tp.topic.as_str())
            .or_default()
            .push(tp.partition);
    }
    for indexes in topics.values_mut() {
        indexes.sort_unstable();
        indexes.dedup();
    }
    topics
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_group_by_topic() {
        let partitions = [
            TopicPartition::new("orders", 2),
            TopicPartition::new("audit", 0),
            TopicPartition::new("orders", 0),
            TopicPartition::new("orders", 2),
        ];
        let grouped = by_topic(&partitions);
        assert_eq!(
            grouped,
            BTreeMap::from([("audit", vec![0]), ("orders", vec![0, 2])])
        );
        assert_eq!(partitions[0].to_string(), "orders-2");
    }
}
