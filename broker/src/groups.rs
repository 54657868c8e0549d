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

use bytes::Bytes;
use strom_group::{
    CoordinatorOptions, GroupConfig, GroupCoordinator, OffsetsLog, OffsetsLogError, TopicLookup,
};
use strom_metadata::{CreateTopicRequest, MetadataQuorum};
use strom_storage::StorageError;

use crate::config::BrokerProps;
use crate::replica::{AppendError, CommitWait, ReplicaManager, now_ms};

/// How long a write of group state waits for the in-sync replicas (Kafka's
/// `offsets.commit.timeout.ms` default).
const OFFSET_COMMIT_TIMEOUT: Duration = Duration::from_secs(5);

/// Name of the internal topic holding committed offsets and group metadata.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// The coordinator type the broker runs.
pub type Coordinator = GroupCoordinator<PartitionOffsetsLog>;

/// `__consumer_offsets` on the broker's partition logs.
#[derive(Debug)]
pub struct PartitionOffsetsLog {
    replicas: Arc<ReplicaManager>,
}

impl OffsetsLog for PartitionOffsetsLog {
    async fn append(&self, partition: i32, batch: Bytes) -> Result<i64, OffsetsLogError> {
        let target = self
            .replicas
            .partition(OFFSETS_TOPIC, partition)
            .filter(|p| p.is_leader())
            .ok_or(OffsetsLogError::NotLeader { partition })?;
        let append = target
            .append_as_coordinator(batch.to_vec(), now_ms())
            .await
            .map_err(|error| match error {
                AppendError::NotLeader => OffsetsLogError::NotLeader { partition },
                AppendError::NotEnoughReplicas { .. } => OffsetsLogError::Unavailable {
                    partition,
                    reason: error.to_string(),
                },
                AppendError::Storage(StorageError::RecordTooLarge {
                    size,
                    max_message_bytes,
                }) => OffsetsLogError::TooLarge {
                    partition,
                    size,
                    max: max_message_bytes,
                },
                AppendError::Storage(other) => OffsetsLogError::Storage {
                    partition,
                    reason: other.to_string(),
                },
            })?;
        // Group state is written with acks=all, as Kafka's coordinator does: a commit is
        // acknowledged once every in-sync replica holds it.
        target
            .wait_for_commit(
                append.info.last_offset + 1,
                append.leader_epoch,
                OFFSET_COMMIT_TIMEOUT,
            )
            .await
            .map_err(|failed| match failed {
                CommitWait::NotLeader => OffsetsLogError::NotLeader { partition },
                CommitWait::NotEnoughReplicasAfterAppend | CommitWait::TimedOut => {
                    OffsetsLogError::Unavailable {
                        partition,
                        reason: format!("not replicated to the in-sync replicas: {failed:?}"),
                    }
                }
            })?;
        let info = append.info;
        Ok(info.first_offset)
    }

    fn read(
        &self,
        partition: i32,
        offset: i64,
        max_bytes: usize,
    ) -> Result<(Bytes, i64), OffsetsLogError> {
        let target = self
            .replicas
            .partition(OFFSETS_TOPIC, partition)
            .ok_or(OffsetsLogError::NotLeader { partition })?;
        let log = target.log();
        let end = log.log_end_offset();
        let from = offset.max(log.log_start_offset());
        if from >= end {
            return Ok((Bytes::new(), end));
        }
        let read =
            log.read(from, max_bytes, end, true)
                .map_err(|error| OffsetsLogError::Storage {
                    partition,
                    reason: error.to_string(),
                })?;
        Ok((read.records, end))
    }
}

/// Answers whether a committed offset's topic-partition exists, from the metadata image.
#[derive(Debug)]
struct ImageTopicLookup {
    quorum: MetadataQuorum,
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
    GroupCoordinator::with_options(config, Arc::new(PartitionOffsetsLog { replicas }), options)
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
