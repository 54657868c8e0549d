//! OffsetDelete (API key 47, KIP-496).

use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};

use super::GroupCoordinator;
use super::offset_commit::offset_tombstone;
use crate::codes::*;
use crate::group::CONSUMER_PROTOCOL_TYPE;
use crate::log::OffsetsLog;
use crate::records::{KeyValue, RecordKey};
use crate::state::GroupState;

impl<L: OffsetsLog> GroupCoordinator<L> {
    /// OffsetDelete: removes committed offsets of topics the group does not consume
    /// (GROUP_SUBSCRIBED_TO_TOPIC otherwise); an empty group with no offsets left goes too.
    pub async fn offset_delete(
        &self,
        req: OffsetDeleteRequest,
        _version: i16,
    ) -> OffsetDeleteResponse {
        let group_id = req.group_id.0.as_str().to_owned();
        let mut errors: Vec<Vec<i16>> = req
            .topics
            .iter()
            .map(|t| vec![NONE; t.partitions.len()])
            .collect();
        let top = self.delete_offsets(&group_id, &req, &mut errors).await;
        if top != NONE {
            return OffsetDeleteResponse::default().with_error_code(top);
        }
        OffsetDeleteResponse::default().with_topics(
            req.topics
                .into_iter()
                .zip(errors)
                .map(|(topic, errors)| {
                    OffsetDeleteResponseTopic::default()
                        .with_name(topic.name)
                        .with_partitions(
                            topic
                                .partitions
                                .iter()
                                .zip(errors)
                                .map(|(p, error)| {
                                    OffsetDeleteResponsePartition::default()
                                        .with_partition_index(p.partition_index)
                                        .with_error_code(error)
                                })
                                .collect(),
                        )
                })
                .collect(),
        )
    }

    async fn delete_offsets(
        &self,
        group_id: &str,
        req: &OffsetDeleteRequest,
        errors: &mut [Vec<i16>],
    ) -> i16 {
        let partition = match self.check_group_now(group_id, false) {
            Ok(partition) => partition,
            Err(code) => return code,
        };
        let _writer = self.writer(partition).lock().await;
        let mut eligible: Vec<(usize, usize, String, i32)> = Vec::new();
        let mut records: Vec<KeyValue> = Vec::new();
        {
            let state = self.shared.state.lock();
            if let Err(code) = self.check_group(&state, group_id, false) {
                return code;
            }
            let Some(group) = state.groups.get(group_id) else {
                return GROUP_ID_NOT_FOUND;
            };
            let check_subscription = match group.state() {
                GroupState::Dead => return GROUP_ID_NOT_FOUND,
                GroupState::Empty => false,
                _ if group.protocol_type() == Some(CONSUMER_PROTOCOL_TYPE) => true,
                _ => return NON_EMPTY_GROUP,
            };
            let mut remaining: usize = group.offsets.iter().count();
            for (ti, topic) in req.topics.iter().enumerate() {
                let name = topic.name.0.as_str();
                for (pi, p) in topic.partitions.iter().enumerate() {
                    if !self.topic_exists(name, p.partition_index) {
                        errors[ti][pi] = UNKNOWN_TOPIC_OR_PARTITION;
                    } else if check_subscription && group.is_subscribed_to(name) {
                        errors[ti][pi] = GROUP_SUBSCRIBED_TO_TOPIC;
                    } else if (group.offsets.get(name, p.partition_index).is_some()
                        || group.pending.has_partition(name, p.partition_index))
                        && !eligible
                            .iter()
                            .any(|(_, _, t, q)| t == name && *q == p.partition_index)
                        && let Some(record) = offset_tombstone(group_id, name, p.partition_index)
                    {
                        records.push(record);
                        eligible.push((ti, pi, name.to_owned(), p.partition_index));
                        if group.offsets.get(name, p.partition_index).is_some() {
                            remaining = remaining.saturating_sub(1);
                        }
                    }
                }
            }
            let pending_left = group
                .pending
                .partitions()
                .iter()
                .any(|(t, q)| !eligible.iter().any(|(_, _, e, r)| e == t && r == q));
            if !records.is_empty()
                && remaining == 0
                && !pending_left
                && group.state() == GroupState::Empty
            {
                // The group loses its last offsets: it goes, as Kafka's cleanup does.
                if let Ok(key) = (RecordKey::GroupMetadata {
                    group: group_id.to_owned(),
                })
                .encode()
                {
                    records.push((key, None));
                }
            }
        }
        if records.is_empty() {
            return NONE;
        }
        match self.append(partition, records).await {
            Ok(_) => {
                let mut state = self.shared.state.lock();
                let now = self.now();
                if let Some(group) = state.groups.get_mut(group_id) {
                    for (_, _, topic, p) in &eligible {
                        group.remove_offset(topic, *p);
                    }
                    if group.dead_if_unused(now) {
                        state.groups.remove(group_id);
                    }
                }
            }
            Err(error) => {
                tracing::warn!(group = group_id, partition, %error, "writing offset tombstones failed");
                for (ti, pi, _, _) in eligible {
                    errors[ti][pi] = error.error_code();
                }
            }
        }
        NONE
    }
}
