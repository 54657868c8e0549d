//! TxnOffsetCommit (API key 28, KIP-98; member checks of KIP-447 from v3).

use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{TxnOffsetCommitRequest, TxnOffsetCommitResponse};

use super::GroupCoordinator;
use crate::codes::*;
use crate::group::Group;
use crate::log::OffsetsLog;
use crate::offsets::OffsetEntry;
use crate::records::{KeyValue, build_txn_batch};

impl<L: OffsetsLog> GroupCoordinator<L> {
    /// TxnOffsetCommit: writes the offsets as one transactional batch of the request's
    /// producer to the group's `__consumer_offsets` partition and keeps them pending under that
    /// producer; they become the group's committed offsets when the transaction commits
    /// ([`GroupCoordinator::complete_transaction`]). A group that does not exist is created
    /// for a request without generation (a producer that is not a group member), as in Kafka.
    /// Partitions that fail validation get their error and are not written.
    pub async fn txn_offset_commit(
        &self,
        req: TxnOffsetCommitRequest,
        version: i16,
    ) -> TxnOffsetCommitResponse {
        let group_id = req.group_id.0.as_str().to_owned();
        let mut errors: Vec<Vec<i16>> = req
            .topics
            .iter()
            .map(|t| vec![NONE; t.partitions.len()])
            .collect();
        let fill = |errors: &mut Vec<Vec<i16>>, code: i16| {
            errors.iter_mut().flatten().for_each(|e| *e = code);
        };
        // Member id, instance id and generation are on the wire from v3 (KIP-447).
        let (member_id, instance, generation) = if version >= 3 {
            (
                req.member_id.as_str(),
                req.group_instance_id.as_ref().map(|i| i.as_str()),
                req.generation_id,
            )
        } else {
            ("", None, -1)
        };
        let producer_id = req.producer_id.0;
        let producer_epoch = req.producer_epoch;

        match self.check_group_now(&group_id, false) {
            Err(code) => fill(&mut errors, code),
            Ok(_) if producer_id < 0 || producer_epoch < 0 => {
                fill(&mut errors, INVALID_PRODUCER_ID_MAPPING)
            }
            Ok(partition) => {
                let _writer = self.writer(partition).lock().await;
                let mut written: Vec<(usize, usize, OffsetEntry)> = Vec::new();
                let mut records: Vec<KeyValue> = Vec::new();
                {
                    let mut state = self.shared.state.lock();
                    let now = self.now();
                    let verdict = match self.check_group(&state, &group_id, false) {
                        Err(code) => Err(code),
                        Ok(_) => {
                            if !state.groups.contains_key(&group_id) && generation < 0 {
                                state
                                    .groups
                                    .insert(group_id.clone(), Group::new(&group_id, now));
                            }
                            match state.groups.get(&group_id) {
                                Some(group) => group
                                    .validate_txn_offset_commit(member_id, instance, generation),
                                None => Err(ILLEGAL_GENERATION),
                            }
                        }
                    };
                    match verdict {
                        Err(code) => fill(&mut errors, code),
                        Ok(()) => {
                            for (ti, topic) in req.topics.iter().enumerate() {
                                let name = topic.name.0.as_str();
                                for (pi, p) in topic.partitions.iter().enumerate() {
                                    let metadata = p
                                        .committed_metadata
                                        .as_ref()
                                        .map(|m| m.as_str())
                                        .unwrap_or_default();
                                    // The leader epoch is on the wire from v2.
                                    let epoch = if version >= 2 {
                                        p.committed_leader_epoch
                                    } else {
                                        -1
                                    };
                                    errors[ti][pi] = match self.offset_to_write(
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
                                }
                            }
                        }
                    }
                    if records.is_empty() {
                        state.drop_if_disposable(&group_id);
                    }
                }
                if !records.is_empty() {
                    let result =
                        match build_txn_batch(&records, self.now(), producer_id, producer_epoch) {
                            Ok(batch) => self.shared.log.append(partition, batch).await,
                            Err(reason) => {
                                Err(crate::OffsetsLogError::Storage { partition, reason })
                            }
                        };
                    let mut state = self.shared.state.lock();
                    match result {
                        Ok(base_offset) => {
                            if let Some(group) = state.groups.get_mut(&group_id) {
                                for ((ti, pi, mut entry), record_offset) in
                                    written.into_iter().zip(base_offset..)
                                {
                                    entry.record_offset = record_offset;
                                    let topic = &req.topics[ti];
                                    group.pending.put(
                                        producer_id,
                                        topic.name.0.as_str().to_owned(),
                                        topic.partitions[pi].partition_index,
                                        entry,
                                    );
                                }
                            }
                        }
                        Err(error) => {
                            tracing::warn!(group = %group_id, partition, producer_id, %error, "persisting transactional offsets failed");
                            for (ti, pi, _) in written {
                                errors[ti][pi] = error.error_code();
                            }
                            state.drop_if_disposable(&group_id);
                        }
                    }
                }
            }
        }

        TxnOffsetCommitResponse::default().with_topics(
            req.topics
                .into_iter()
                .zip(errors)
                .map(|(topic, errors)| {
                    TxnOffsetCommitResponseTopic::default()
                        .with_name(topic.name)
                        .with_partitions(
                            topic
                                .partitions
                                .iter()
                                .zip(errors)
                                .map(|(p, error)| {
                                    TxnOffsetCommitResponsePartition::default()
                                        .with_partition_index(p.partition_index)
                                        .with_error_code(error)
                                })
                                .collect(),
                        )
                })
                .collect(),
        )
    }

    /// Ends `producer_id`'s transaction on `__consumer_offsets` partition `partition`: call it
    /// once its COMMIT or ABORT marker is written there. On commit, the producer's pending
    /// offsets of every group on that partition become committed, except partitions a commit
    /// written later in the log already holds (Kafka orders by log position); on abort they
    /// are dropped. A partition this coordinator does not own is left alone: whoever loads it
    /// replays the marker.
    pub async fn complete_transaction(
        &self,
        partition: i32,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
    ) {
        // Taken so that commits being written now land first: the cache then applies writes in
        // log order, and a load in progress (which holds it) has finished.
        let _writer = self.writer(partition).lock().await;
        let mut state = self.shared.state.lock();
        if state.partitions.get(&partition) != Some(&super::PartitionStatus::Owned) {
            return;
        }
        let groups: Vec<String> = state
            .groups
            .values()
            .filter(|g| g.pending.has_producer(producer_id))
            .map(|g| g.group_id().to_owned())
            .filter(|id| self.partition_for(id) == partition)
            .collect();
        for group_id in &groups {
            if let Some(group) = state.groups.get_mut(group_id) {
                group.complete_transaction(producer_id, commit);
            }
            state.drop_if_disposable(group_id);
        }
        tracing::debug!(
            partition,
            producer_id,
            producer_epoch,
            commit,
            groups = groups.len(),
            "transaction ended on __consumer_offsets"
        );
    }
}
