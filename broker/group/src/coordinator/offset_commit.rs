//! OffsetCommit (API key 8).

use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};

use super::GroupCoordinator;
use crate::codes::*;
use crate::group::Group;
use crate::log::OffsetsLog;
use crate::offsets::OffsetEntry;
use crate::records::{KeyValue, OffsetCommitValue, RecordKey};

impl<L: OffsetsLog> GroupCoordinator<L> {
    /// OffsetCommit: by a member of the current generation, or standalone (generation -1) on a
    /// group without members. The offsets are visible once written to `__consumer_offsets`.
    pub async fn offset_commit(
        &self,
        req: OffsetCommitRequest,
        version: i16,
    ) -> OffsetCommitResponse {
        let group_id = req.group_id.0.as_str().to_owned();
        // One error per requested partition, in request order.
        let mut errors: Vec<Vec<i16>> = req
            .topics
            .iter()
            .map(|t| vec![NONE; t.partitions.len()])
            .collect();
        let fill = |errors: &mut Vec<Vec<i16>>, code: i16| {
            errors.iter_mut().flatten().for_each(|e| *e = code);
        };
        let instance = if version >= 7 {
            req.group_instance_id.as_ref().map(|i| i.as_str())
        } else {
            None
        };
        let member_id = req.member_id.as_str();
        let generation = req.generation_id_or_member_epoch;

        match self.check_group_now(&group_id, true) {
            Err(code) => fill(&mut errors, code),
            Ok(partition) => {
                let _writer = self.writer(partition).lock().await;
                let mut written: Vec<(usize, usize, OffsetEntry)> = Vec::new();
                let mut records: Vec<KeyValue> = Vec::new();
                {
                    let mut state = self.shared.state.lock();
                    let now = self.now();
                    let verdict = match self.check_group(&state, &group_id, true) {
                        Err(code) => Err(code),
                        Ok(_) => {
                            if !state.groups.contains_key(&group_id) && generation < 0 {
                                // Standalone commits create the group, as in Kafka.
                                state
                                    .groups
                                    .insert(group_id.clone(), Group::new(&group_id, now));
                            }
                            match state.groups.get_mut(&group_id) {
                                Some(group) => group
                                    .validate_offset_commit(member_id, instance, generation, now),
                                None => Err(ILLEGAL_GENERATION),
                            }
                        }
                    };
                    match verdict {
                        Err(code) => fill(&mut errors, code),
                        Ok(()) => {
                            for (ti, topic) in req.topics.iter().enumerate() {
                                for (pi, p) in topic.partitions.iter().enumerate() {
                                    let name = topic.name.0.as_str();
                                    let metadata = p
                                        .committed_metadata
                                        .as_ref()
                                        .map(|m| m.as_str())
                                        .unwrap_or_default();
                                    // The leader epoch is on the wire from v6.
                                    let epoch = if version >= 6 {
                                        p.committed_leader_epoch
                                    } else {
                                        -1
                                    };
                                    let code = match self.offset_to_write(
                                        &group_id,
                                        name,
                                        p.partition_index,
                                        (p.committed_offset, epoch),
                                        metadata,
                                        now,
                                    ) {
                                        Ok((record, entry)) => {
                                            records.push(record);
                                            written.push((ti, pi, entry));
                                            NONE
                                        }
                                        Err(code) => code,
                                    };
                                    errors[ti][pi] = code;
                                }
                            }
                        }
                    }
                    if records.is_empty() {
                        state.drop_if_disposable(&group_id);
                    }
                }
                if !records.is_empty() {
                    let result = self.append(partition, records).await;
                    let mut state = self.shared.state.lock();
                    match result {
                        Ok(base_offset) => {
                            if let Some(group) = state.groups.get_mut(&group_id) {
                                for ((ti, pi, mut entry), record_offset) in
                                    written.into_iter().zip(base_offset..)
                                {
                                    entry.record_offset = record_offset;
                                    let topic = &req.topics[ti];
                                    group.offsets.put(
                                        topic.name.0.as_str().to_owned(),
                                        topic.partitions[pi].partition_index,
                                        entry,
                                    );
                                }
                            }
                        }
                        Err(error) => {
                            tracing::warn!(group = %group_id, partition, %error, "persisting offsets failed");
                            for (ti, pi, _) in written {
                                errors[ti][pi] = error.error_code();
                            }
                            state.drop_if_disposable(&group_id);
                        }
                    }
                }
            }
        }

        OffsetCommitResponse::default().with_topics(
            req.topics
                .into_iter()
                .zip(errors)
                .map(|(topic, errors)| {
                    OffsetCommitResponseTopic::default()
                        .with_name(topic.name)
                        .with_partitions(
                            topic
                                .partitions
                                .iter()
                                .zip(errors)
                                .map(|(p, error)| {
                                    OffsetCommitResponsePartition::default()
                                        .with_partition_index(p.partition_index)
                                        .with_error_code(error)
                                })
                                .collect(),
                        )
                })
                .collect(),
        )
    }

    /// The record and entry of one committed offset, or the partition's error: a topic that
    /// does not exist, metadata over `offset.metadata.max.bytes`. `position` is the offset and
    /// its leader epoch; the entry's record offset is known once the batch is written.
    pub(super) fn offset_to_write(
        &self,
        group_id: &str,
        topic: &str,
        partition: i32,
        position: (i64, i32),
        metadata: &str,
        now: i64,
    ) -> Result<(KeyValue, OffsetEntry), i16> {
        if !self.topic_exists(topic, partition) {
            return Err(UNKNOWN_TOPIC_OR_PARTITION);
        }
        if metadata.len() > self.shared.config.offset_metadata_max_bytes {
            return Err(OFFSET_METADATA_TOO_LARGE);
        }
        let entry = OffsetEntry {
            offset: position.0,
            leader_epoch: position.1,
            metadata: metadata.to_owned(),
            commit_timestamp: now,
            record_offset: -1,
        };
        let record = offset_record(group_id, topic, partition, &entry)?;
        Ok((record, entry))
    }

    pub(super) fn topic_exists(&self, topic: &str, partition: i32) -> bool {
        self.shared
            .topic_lookup
            .as_ref()
            .is_none_or(|lookup| lookup.partition_exists(topic, partition))
    }
}

/// The `__consumer_offsets` record of one committed offset.
pub(super) fn offset_record(
    group: &str,
    topic: &str,
    partition: i32,
    entry: &OffsetEntry,
) -> Result<KeyValue, i16> {
    let key = RecordKey::OffsetCommit {
        group: group.to_owned(),
        topic: topic.to_owned(),
        partition,
    }
    .encode()
    .map_err(|_| UNKNOWN_TOPIC_OR_PARTITION)?;
    let value = OffsetCommitValue {
        offset: entry.offset,
        leader_epoch: entry.leader_epoch,
        metadata: entry.metadata.clone(),
        commit_timestamp: entry.commit_timestamp,
    }
    .encode()
    .map_err(|_| OFFSET_METADATA_TOO_LARGE)?;
    Ok((key, Some(value)))
}

/// The tombstone of one committed offset.
pub(super) fn offset_tombstone(group: &str, topic: &str, partition: i32) -> Option<KeyValue> {
    RecordKey::OffsetCommit {
        group: group.to_owned(),
        topic: topic.to_owned(),
        partition,
    }
    .encode()
    .ok()
    .map(|key| (key, None))
}
