//! The broker's shared state: configuration, the metadata quorum and controller, the replica
//! manager, the group coordinator and the metrics. Request handlers get the parts they use as
//! capabilities (`crate::capabilities`), which [`Broker`] provides.

use std::collections::HashSet;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use strom_metadata::{ControllerClient, MetadataImage, MetadataQuorum};

use crate::capabilities::{
    CoordinatorKind, CoordinatorLookup, HostedPartitions, MetadataView, TransactionalOffsets,
};
use crate::config::BrokerConfig;
use crate::coordinator_partitions::CoordinatorPartitions;
use crate::groups::{Coordinator, OFFSETS_TOPIC, offsets_topic_request};
use crate::metrics::BrokerMetrics;
use crate::producer_ids::ProducerIdManager;
use crate::replica::quota::ReplicationQuota;
use crate::replica::{Partition, ReplicaManager};
use crate::transactions::{TxnCoordinator, transaction_state_topic_request};

/// How recently a follower must have heard from the quorum leader to name it as the
/// controller: the longest election timeout.
const LEADER_CONTACT_WINDOW: std::time::Duration = std::time::Duration::from_millis(1000);

/// Everything the broker runs on.
#[derive(Debug)]
pub struct Broker {
    pub config: BrokerConfig,
    pub node_id: i32,
    pub cluster_id: String,
    /// Host and port clients are told to connect to (Metadata, DescribeCluster).
    pub advertised_host: String,
    pub advertised_port: u16,
    pub quorum: MetadataQuorum,
    /// The active controller, in this process or reached through the controller listener.
    pub controller: ControllerClient,
    /// Registration and heartbeats of this broker.
    pub lifecycle: crate::lifecycle::BrokerLifecycle,
    pub replicas: Arc<ReplicaManager>,
    pub metrics: Arc<BrokerMetrics>,
    pub producer_ids: Arc<ProducerIdManager>,
    pub groups: Coordinator,
    /// The transaction coordinator of the `__transaction_state` partitions led here.
    pub transactions: TxnCoordinator,
    /// Connections to the other brokers, for markers and produce verification.
    pub peers: crate::peer_connections::PeerConnections,
    /// `__consumer_offsets` partitions whose group state is loaded into the coordinator.
    pub offsets_partitions: CoordinatorPartitions,
    /// Whether this broker checked, since it started, that `__consumer_offsets` is compacted:
    /// once per start, so a policy an operator set later stays as set.
    pub offsets_compaction_checked: std::sync::atomic::AtomicBool,
    /// `__transaction_state` partitions whose transaction state is loaded into the coordinator.
    pub transaction_partitions: CoordinatorPartitions,
    /// Groups whose offsets the metrics currently show, to drop the series of vanished groups.
    pub exported_groups: parking_lot::Mutex<HashSet<String>>,
    /// The log cleaner's threads, compacting the hosted logs of compacted topics.
    pub cleaner: crate::log_cleaner::Cleaner,
}

impl Broker {
    /// The current metadata image; handlers read one snapshot per request.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.quorum.image()
    }

    /// Applies the latest image to the hosted partitions now, so that an admin request's effect
    /// (a new topic's logs, a deleted topic's data) is in place before it is acknowledged.
    pub async fn publish_metadata(&self) {
        if let Err(error) = self
            .replicas
            .publish(self.quorum.image(), self.config.props.clone())
            .await
        {
            tracing::error!(%error, "applying metadata to the hosted partitions");
        }
    }
}

impl Broker {
    /// The node id of the active controller (the metadata quorum's leader), -1 if none is known.
    pub fn controller_id(&self) -> i32 {
        self.quorum
            .leader_id()
            .and_then(|id| i32::try_from(id).ok())
            .unwrap_or(-1)
    }
}

impl Broker {
    /// Recomputes the gauges that describe state rather than events (partition counts, ISR
    /// health, log sizes and offsets); called before each scrape.
    pub fn refresh_gauges(&self) {
        let image = self.image();
        let partitions = self.replicas.all_partitions();
        let (mut leaders, mut under_replicated, mut under_min_isr) = (0i64, 0i64, 0i64);
        for partition in &partitions {
            let gauges = self.metrics.partition(&partition.topic, partition.index);
            gauges.set_log_size(partition.log().size_bytes());
            gauges.set_log_end_offset(partition.log_end_offset());
            gauges.set_log_start_offset(partition.log_start_offset());
            let state = partition.state();
            let leader = state.leader == self.node_id;
            let isr = crate::metrics::IsrState {
                replicas: state.replicas.len(),
                isr_size: state.isr.len(),
                min_insync_replicas: usize::try_from(partition.min_insync_replicas()).unwrap_or(1),
            };
            gauges.set_isr_state(leader.then_some(isr));
            gauges.set_last_stable_offset_lag(if leader {
                partition.high_watermark() - partition.last_stable_offset()
            } else {
                0
            });
            if leader {
                leaders += 1;
                under_replicated += i64::from(isr.isr_size < isr.replicas);
                under_min_isr += i64::from(isr.isr_size < isr.min_insync_replicas);
            }
        }
        let max_lag = partitions
            .iter()
            .map(|p| p.follower_lag())
            .max()
            .unwrap_or(0);
        self.metrics.set_replica_fetchers(
            self.replicas
                .fetchers
                .stats
                .bytes_in
                .load(std::sync::atomic::Ordering::Relaxed),
            max_lag,
        );
        self.metrics.set_replication_quota_rates(
            self.replicas.quotas.leader.byte_rate(),
            self.replicas.quotas.follower.byte_rate(),
        );
        self.metrics.set_replica_manager(
            partitions.len() as i64,
            leaders,
            under_replicated,
            under_min_isr,
        );
        let active = self.controller_id() == self.node_id;
        let offline_here = self.replicas.offline_count() as i64;
        let offline = offline_here
            + image
                .topics
                .values()
                .flat_map(|t| t.partitions.values())
                .filter(|p| p.leader < 0 || !image.is_live(p.leader))
                .count() as i64;
        self.metrics.set_controller(active, offline);
        self.metrics
            .set_metadata_errors(i64::from(self.quorum.fault().is_some()));
        self.metrics
            .set_metadata_image(image.offset, image.checksum());
        self.metrics
            .set_transactions(&self.transactions.stats(), crate::replica::now_ms());
        if let Some(stats) = self.cleaner.stats() {
            self.metrics.set_cleaner(&stats, crate::replica::now_ms());
        }

        let committed_offsets = self.groups.committed_offsets();
        // Groups deleted or expired since the last scrape lose their series.
        let groups: HashSet<String> = committed_offsets.iter().map(|c| c.group.clone()).collect();
        let mut exported = self.exported_groups.lock();
        for gone in exported.difference(&groups) {
            self.metrics.remove_consumer_group(gone);
        }
        *exported = groups;
        drop(exported);
        for committed in committed_offsets {
            let Some(partition) = self
                .replicas
                .partition(&committed.topic, committed.partition)
            else {
                continue;
            };
            let lag = (partition.high_watermark() - committed.offset).max(0);
            self.metrics.set_consumer_group_offsets(
                &committed.group,
                &committed.topic,
                committed.partition,
                committed.offset,
                lag,
            );
        }
    }
}

impl Broker {
    /// Makes a `__consumer_offsets` created before compaction existed (`cleanup.policy`
    /// delete, `retention.ms=-1`) compacted, as a new one is created; its log then shrinks to
    /// the live keys at the cleaner's next passes.
    async fn compact_offsets_topic(&self) {
        let resource = strom_metadata::ConfigResource::Topic(OFFSETS_TOPIC.to_string());
        let ops = vec![strom_metadata::ConfigOp::Set(
            "cleanup.policy".to_string(),
            "compact".to_string(),
        )];
        match self
            .controller
            .incremental_alter_configs(resource, ops, false)
            .await
        {
            Ok(()) => {
                tracing::info!("{OFFSETS_TOPIC} is now compacted (cleanup.policy=compact)");
                self.publish_metadata().await;
            }
            Err(error) => tracing::warn!(%error, "making {OFFSETS_TOPIC} compacted"),
        }
    }

    /// Creates `__consumer_offsets` if it does not exist yet (Kafka does so on the first
    /// FindCoordinator for a group), makes an old one compacted (the first time it is seen
    /// after this broker started), then loads the group state of
    /// the partitions of it this broker leads and unloads those it stopped leading. Groups
    /// hash onto the partitions the topic has, whatever `offsets.topic.num.partitions` says
    /// now (Kafka's `partitionFor`). Idempotent.
    pub async fn ensure_offsets_topic(&self) {
        let live = self.image().live_brokers().count();
        self.offsets_partitions
            .ensure_created(self, || offsets_topic_request(&self.config.props, live))
            .await;
        let image = self.image();
        if let Some(topic) = image.topic(OFFSETS_TOPIC)
            && !self
                .offsets_compaction_checked
                .swap(true, std::sync::atomic::Ordering::AcqRel)
            && !offsets_topic_is_compacted(&topic.configs)
        {
            self.compact_offsets_topic().await;
        }
        self.offsets_partitions
            .follow_leadership(self, &self.groups)
            .await;
    }

    /// Creates `__transaction_state` if it does not exist yet (on the first FindCoordinator
    /// for a transactional id), then loads the transaction state of the partitions of it this
    /// broker leads and unloads those it stopped leading. Idempotent.
    pub async fn ensure_transaction_state_topic(&self) {
        let live = self.image().live_brokers().count();
        self.transaction_partitions
            .ensure_created(self, || {
                transaction_state_topic_request(&self.config.props, live)
            })
            .await;
        self.transaction_partitions
            .follow_leadership(self, &self.transactions)
            .await;
    }
}

impl HostedPartitions for Broker {
    fn leader_partition(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<Arc<Partition>, ResponseError> {
        let found = self.replicas.partition(topic, partition).ok_or_else(|| {
            if self.replicas.is_offline(topic, partition) {
                ResponseError::KafkaStorageError
            } else {
                ResponseError::UnknownTopicOrPartition
            }
        })?;
        if found.is_leader() {
            Ok(found)
        } else {
            Err(ResponseError::NotLeaderOrFollower)
        }
    }

    /// A follower serves up to its own high watermark.
    fn readable_partition(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<Arc<Partition>, ResponseError> {
        match self.leader_partition(topic, partition) {
            Err(ResponseError::NotLeaderOrFollower) => self
                .replicas
                .partition(topic, partition)
                .filter(|p| p.leader() >= 0)
                .ok_or(ResponseError::NotLeaderOrFollower),
            other => other,
        }
    }

    fn offline_partitions(&self, topic: &str) -> Vec<i32> {
        self.replicas.offline_partitions(topic)
    }

    fn all_partitions(&self) -> Vec<Arc<Partition>> {
        self.replicas.all_partitions()
    }

    fn leader_quota(&self) -> &ReplicationQuota {
        &self.replicas.quotas.leader
    }

    async fn publish_metadata(&self) {
        Broker::publish_metadata(self).await;
    }
}

impl MetadataView for Broker {
    fn image(&self) -> Arc<MetadataImage> {
        Broker::image(self)
    }

    fn node_id(&self) -> i32 {
        self.node_id
    }

    fn controller_id(&self) -> i32 {
        Broker::controller_id(self)
    }

    /// The controller id Metadata tells clients, which send admin requests there: the active
    /// controller while this broker hears from it, else this broker itself, which forwards
    /// them (KIP-590 lets brokers name any live broker). So a client never waits on a
    /// controller that just died.
    fn metadata_controller_id(&self) -> i32 {
        self.quorum
            .recent_leader(LEADER_CONTACT_WINDOW)
            .and_then(|id| i32::try_from(id).ok())
            .filter(|id| self.image().is_live(*id))
            .unwrap_or(self.node_id)
    }
}

impl TransactionalOffsets for Broker {
    async fn complete_transaction(
        &self,
        partition: i32,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
    ) {
        self.groups
            .complete_transaction(partition, producer_id, producer_epoch, commit)
            .await;
    }
}

impl CoordinatorLookup for Broker {
    async fn ensure_coordinator_topic(&self, kind: CoordinatorKind) {
        match kind {
            CoordinatorKind::Group => self.ensure_offsets_topic().await,
            CoordinatorKind::Transaction => self.ensure_transaction_state_topic().await,
        }
    }

    fn partition_for(&self, kind: CoordinatorKind, key: &str) -> i32 {
        match kind {
            CoordinatorKind::Group => self.groups.partition_for(key),
            CoordinatorKind::Transaction => self.transactions.partition_for(key),
        }
    }
}

/// Whether `__consumer_offsets`'s own configs make it compacted.
fn offsets_topic_is_compacted(configs: &std::collections::BTreeMap<String, String>) -> bool {
    configs
        .get("cleanup.policy")
        .is_some_and(|policy| strom_metadata::topic_config::list_items(policy).contains(&"compact"))
}
