//! Consumer groups on this broker: the `strom-group` coordinator, persisted in the internal
//! topic `__consumer_offsets` through the broker's own partition logs.
//!
//! As in Kafka, `__consumer_offsets` is created on first need (the first FindCoordinator for a
//! group), with `offsets.topic.num.partitions` partitions; the coordinator loads every partition
//! this broker leads when the topic appears and when the broker starts. The topic is compacted
//! (`cleanup.policy=compact`, with `offsets.topic.segment.bytes` segments, 100 MiB by default): every
//! commit overwrites its key, and the coordinator's own retention (`offsets.retention.minutes`)
//! writes tombstones for expired offsets and deleted groups, so the log keeps only live state.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use strom_group::{CoordinatorOptions, GroupConfig, GroupCoordinator, TopicLookup};
use strom_metadata::{CreateTopicRequest, MetadataQuorum};

use crate::config::BrokerProps;
use crate::coordinator_partitions::PartitionedCoordinator;
use crate::internal_log::InternalTopicLog;
use crate::replica::ReplicaManager;

/// Name of the internal topic holding committed offsets and group metadata.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// The coordinator type the broker runs.
pub type Coordinator = GroupCoordinator<InternalTopicLog>;

/// Answers whether a committed offset's topic-partition exists, from the metadata image.
#[derive(Debug)]
pub(crate) struct ImageTopicLookup {
    pub(crate) quorum: MetadataQuorum,
}

impl TopicLookup for ImageTopicLookup {
    fn partition_exists(&self, topic: &str, partition: i32) -> bool {
        self.quorum.image().partition(topic, partition).is_some()
    }
}

/// Builds the coordinator from the broker's `group.*` / `offsets.*` settings.
pub fn coordinator(
    props: &BrokerProps,
    replicas: Arc<ReplicaManager>,
    quorum: MetadataQuorum,
) -> Coordinator {
    let ms = |v: i64| Duration::from_millis(u64::try_from(v).unwrap_or(0));
    let config = GroupConfig {
        offsets_topic_partitions: props.offsets_topic_num_partitions,
        min_session_timeout: ms(props.group_min_session_timeout_ms),
        max_session_timeout: ms(props.group_max_session_timeout_ms),
        initial_rebalance_delay: ms(props.group_initial_rebalance_delay_ms),
        offsets_retention: ms(props.offsets_retention_minutes.saturating_mul(60_000)),
        ..GroupConfig::default()
    };
    let options = CoordinatorOptions {
        topic_lookup: Some(Arc::new(ImageTopicLookup { quorum })),
        ..CoordinatorOptions::default()
    };
    let log = InternalTopicLog::new(OFFSETS_TOPIC, replicas);
    GroupCoordinator::with_options(config, Arc::new(log), options)
}

/// The request to create `__consumer_offsets`, replicated `offsets.topic.replication.factor`
/// times, or on every live broker when there are fewer (a single broker must serve groups
/// without settings; Kafka refuses instead), like Kafka's internal topics.
pub fn offsets_topic_request(props: &BrokerProps, live_brokers: usize) -> CreateTopicRequest {
    let live = i16::try_from(live_brokers).unwrap_or(i16::MAX).max(1);
    CreateTopicRequest {
        name: OFFSETS_TOPIC.to_string(),
        num_partitions: Some(props.offsets_topic_num_partitions),
        replication_factor: Some(props.offsets_topic_replication_factor.min(live)),
        assignments: None,
        configs: BTreeMap::from([
            ("cleanup.policy".to_string(), "compact".to_string()),
            ("compression.type".to_string(), "producer".to_string()),
            (
                "segment.bytes".to_string(),
                props.offsets_topic_segment_bytes.to_string(),
            ),
        ]),
    }
}

impl PartitionedCoordinator for Coordinator {
    fn set_partition_count(&self, count: i32) -> bool {
        GroupCoordinator::set_partition_count(self, count)
    }

    async fn load_partition(&self, partition: i32, _leader_epoch: i32) -> Result<(), String> {
        GroupCoordinator::load_partition(self, partition)
            .await
            .map_err(|error| error.to_string())
    }

    async fn unload_partition(&self, partition: i32) {
        GroupCoordinator::unload_partition(self, partition).await;
    }
}
