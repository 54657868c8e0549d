//! OffsetFetch (API key 9), including the multi-group form of v8+.

use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::GroupCoordinator;
use crate::codes::*;
use crate::log::OffsetsLog;

/// One partition's answer: (partition, offset, leader epoch, metadata, error).
type PartitionOffset = (i32, i64, i32, String, i16);
/// Offsets of one group by topic, or the group-level error.
type GroupOffsets = Result<Vec<(String, Vec<PartitionOffset>)>, i16>;

impl<L: OffsetsLog> GroupCoordinator<L> {
    /// OffsetFetch: committed offsets of the requested partitions (or of all, when topics is
    /// null); partitions without a commit get offset -1. Offsets of open transactions are not
    /// shown; with `require_stable` (v7+, KIP-447) a partition that has one answers
    /// UNSTABLE_OFFSET_COMMIT with offset -1, so the consumer retries rather than start from
    /// an offset about to change. Kafka reports it per partition in every version (clients
    /// retry only a partition-level UNSTABLE_OFFSET_COMMIT).
    pub async fn offset_fetch(&self, req: OffsetFetchRequest, version: i16) -> OffsetFetchResponse {
        let require_stable = version >= 7 && req.require_stable;
        if version >= 8 {
            let groups = req
                .groups
                .into_iter()
                .map(|g| {
                    let topics = g.topics.map(|topics| {
                        topics
                            .into_iter()
                            .map(|t| (t.name.0.as_str().to_owned(), t.partition_indexes))
                            .collect()
                    });
                    let result = self.fetch_group(g.group_id.0.as_str(), topics, require_stable);
                    let (error, topics) = match result {
                        Ok(topics) => (NONE, topics),
                        Err(code) => (code, Vec::new()),
                    };
                    OffsetFetchResponseGroup::default()
                        .with_group_id(g.group_id)
                        .with_error_code(error)
                        .with_topics(
                            topics
                                .into_iter()
                                .map(|(name, partitions)| {
                                    OffsetFetchResponseTopics::default()
                                        .with_name(TopicName(StrBytes::from_string(name)))
                                        .with_partitions(
                                            partitions
                                                .into_iter()
                                                .map(|(index, offset, epoch, metadata, error)| {
                                                    OffsetFetchResponsePartitions::default()
                                                        .with_partition_index(index)
                                                        .with_committed_offset(offset)
                                                        .with_committed_leader_epoch(epoch)
                                                        .with_metadata(Some(StrBytes::from_string(
                                                            metadata,
                                                        )))
                                                        .with_error_code(error)
                                                })
                                                .collect(),
                                        )
                                })
                                .collect(),
                        )
                })
                .collect();
            return OffsetFetchResponse::default().with_groups(groups);
        }

        let requested: Option<Vec<(String, Vec<i32>)>> = req.topics.map(|topics| {
            topics
                .into_iter()
                .map(|t| (t.name.0.as_str().to_owned(), t.partition_indexes))
                .collect()
        });
        let (error, topics) =
            match self.fetch_group(req.group_id.0.as_str(), requested.clone(), require_stable) {
                Ok(topics) => (NONE, topics),
                // v1 has no group-level error: every requested partition carries it.
                Err(code) if version < 2 => (
                    NONE,
                    requested
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(name, partitions)| {
                            (
                                name,
                                partitions
                                    .into_iter()
                                    .map(|p| (p, -1, -1, String::new(), code))
                                    .collect(),
                            )
                        })
                        .collect(),
                ),
                Err(code) => (code, Vec::new()),
            };
        OffsetFetchResponse::default()
            .with_error_code(if version >= 2 { error } else { NONE })
            .with_topics(
                topics
                    .into_iter()
                    .map(|(name, partitions)| {
                        OffsetFetchResponseTopic::default()
                            .with_name(TopicName(StrBytes::from_string(name)))
                            .with_partitions(
                                partitions
                                    .into_iter()
                                    .map(|(index, offset, epoch, metadata, error)| {
                                        OffsetFetchResponsePartition::default()
                                            .with_partition_index(index)
                                            .with_committed_offset(offset)
                                            .with_committed_leader_epoch(epoch)
                                            .with_metadata(Some(StrBytes::from_string(metadata)))
                                            .with_error_code(error)
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            )
    }

    fn fetch_group(
        &self,
        group_id: &str,
        topics: Option<Vec<(String, Vec<i32>)>>,
        require_stable: bool,
    ) -> GroupOffsets {
        let state = self.shared.state.lock();
        self.check_group(&state, group_id, true)?;
        let group = state.groups.get(group_id);
        let unstable = |topic: &str, partition: i32| {
            require_stable && group.is_some_and(|g| g.pending.has_partition(topic, partition))
        };
        match topics {
            Some(topics) => Ok(topics
                .into_iter()
                .map(|(name, partitions)| {
                    let partitions = partitions
                        .into_iter()
                        .map(|p| match group.and_then(|g| g.offsets.get(&name, p)) {
                            _ if unstable(&name, p) => {
                                (p, -1, -1, String::new(), UNSTABLE_OFFSET_COMMIT)
                            }
                            Some(e) => (p, e.offset, e.leader_epoch, e.metadata.clone(), NONE),
                            None => (p, -1, -1, String::new(), NONE),
                        })
                        .collect();
                    (name, partitions)
                })
                .collect()),
            None => {
                let mut by_topic: Vec<(String, Vec<PartitionOffset>)> = Vec::new();
                for ((topic, partition), e) in group.into_iter().flat_map(|g| g.offsets.iter()) {
                    let entry = if unstable(topic, *partition) {
                        (*partition, -1, -1, String::new(), UNSTABLE_OFFSET_COMMIT)
                    } else {
                        (
                            *partition,
                            e.offset,
                            e.leader_epoch,
                            e.metadata.clone(),
                            NONE,
                        )
                    };
                    match by_topic.last_mut() {
                        Some((last, partitions)) if last == topic => partitions.push(entry),
                        _ => by_topic.push((topic.clone(), vec![entry])),
                    }
                }
                Ok(by_topic)
            }
        }
    }
}
