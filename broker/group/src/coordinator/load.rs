//! Becoming and ceasing to be coordinator of a `__consumer_offsets` partition.
//!
//! Replay follows Kafka's loader: plain records set the last value per key; records of a
//! transactional batch are pending under their producer until that producer's COMMIT marker
//! (they become committed unless a later record holds the key) or ABORT marker (dropped); a
//! plain tombstone of an offset also drops pending offsets of that partition. Transactions
//! still open at the log end stay pending in the loaded groups.

use std::collections::HashMap;

use super::{GroupCoordinator, PartitionStatus};
use crate::error::GroupError;
use crate::group::Group;
use crate::log::OffsetsLog;
use crate::offsets::OffsetEntry;
use crate::records::{
    GroupMetadataValue, LoggedMarker, LoggedRecord, RecordKey, RecordValue, parse_batches,
};

/// (group, topic, partition) of an offset.
type OffsetKey = (String, String, i32);

/// What a replay of a partition leaves: the last value of every key (tombstones removed), and
/// the offsets of transactions without a marker yet, by producer.
#[derive(Debug, Default)]
struct Replayed {
    offsets: HashMap<OffsetKey, OffsetEntry>,
    groups: HashMap<String, GroupMetadataValue>,
    pending: HashMap<i64, HashMap<OffsetKey, OffsetEntry>>,
}

impl Replayed {
    fn end_transaction(&mut self, marker: LoggedMarker) {
        let Some(pending) = self.pending.remove(&marker.producer_id) else {
            return;
        };
        if !marker.commit {
            return;
        }
        for (key, entry) in pending {
            match self.offsets.get(&key) {
                Some(current) if current.record_offset > entry.record_offset => {}
                _ => {
                    self.offsets.insert(key, entry);
                }
            }
        }
    }
}

impl<L: OffsetsLog> GroupCoordinator<L> {
    /// Becomes coordinator of `partition`: replays it from its log start (last value per key
    /// wins) into groups and offsets. Requests for its groups get COORDINATOR_LOAD_IN_PROGRESS
    /// meanwhile. Loading an owned partition again is a no-op.
    pub async fn load_partition(&self, partition: i32) -> Result<(), GroupError> {
        let partitions = self.partition_count();
        if !(0..partitions).contains(&partition) {
            return Err(GroupError::UnknownPartition {
                partition,
                partitions,
            });
        }
        let load_id = {
            let mut state = self.shared.state.lock();
            if state.shut_down {
                return Err(GroupError::LoadAbandoned { partition });
            }
            if state.partitions.get(&partition) == Some(&PartitionStatus::Owned) {
                return Ok(());
            }
            state.next_load += 1;
            let id = state.next_load;
            state
                .partitions
                .insert(partition, PartitionStatus::Loading(id));
            id
        };
        let _writer = self.writer(partition).lock().await;
        let replayed = match self.replay(partition).await {
            Ok(replayed) => replayed,
            Err(error) => {
                let mut state = self.shared.state.lock();
                if state.partitions.get(&partition) == Some(&PartitionStatus::Loading(load_id)) {
                    state.partitions.remove(&partition);
                }
                return Err(error);
            }
        };
        let mut state = self.shared.state.lock();
        if state.partitions.get(&partition) != Some(&PartitionStatus::Loading(load_id)) {
            return Err(GroupError::LoadAbandoned { partition });
        }
        let now = self.now();
        let mut groups: HashMap<String, Group> = replayed
            .groups
            .iter()
            .map(|(id, value)| (id.clone(), Group::from_metadata(id, value, now)))
            .collect();
        for ((group_id, topic, p), entry) in replayed.offsets {
            groups
                .entry(group_id.clone())
                .or_insert_with(|| Group::new(&group_id, now))
                .offsets
                .put(topic, p, entry);
        }
        for (producer_id, offsets) in replayed.pending {
            for ((group_id, topic, p), entry) in offsets {
                groups
                    .entry(group_id.clone())
                    .or_insert_with(|| Group::new(&group_id, now))
                    .pending
                    .put(producer_id, topic, p, entry);
            }
        }
        let count = groups.len();
        state.groups.extend(groups);
        state.partitions.insert(partition, PartitionStatus::Owned);
        self.wake_timer();
        tracing::debug!(
            partition,
            groups = count,
            "loaded __consumer_offsets partition"
        );
        Ok(())
    }

    /// Stops coordinating `partition` (its leadership moved): its groups are dropped from
    /// memory and their parked requests answered NOT_COORDINATOR, so clients look up the new
    /// coordinator.
    pub async fn unload_partition(&self, partition: i32) {
        let _writer = self.writer(partition).lock().await;
        let mut state = self.shared.state.lock();
        state.partitions.remove(&partition);
        let gone: Vec<String> = state
            .groups
            .keys()
            .filter(|g| self.partition_for(g) == partition)
            .cloned()
            .collect();
        for group_id in &gone {
            state.groups.remove(group_id);
        }
        state
            .join_waiters
            .retain(|(group_id, _), _| self.partition_for(group_id) != partition);
        state
            .sync_waiters
            .retain(|(group_id, _), _| self.partition_for(group_id) != partition);
    }

    async fn replay(&self, partition: i32) -> Result<Replayed, GroupError> {
        let mut replayed = Replayed::default();
        let mut offset = 0i64;
        let mut max_bytes = self.shared.config.load_buffer_size.max(1024);
        loop {
            if self.shared.shutdown.is_cancelled() {
                return Err(GroupError::LoadAbandoned { partition });
            }
            let (data, log_end_offset) = self
                .shared
                .log
                .read(partition, offset, max_bytes)
                .map_err(|source| GroupError::Load { partition, source })?;
            if offset >= log_end_offset || data.is_empty() {
                break;
            }
            let parsed = parse_batches(data.clone()).map_err(|(offset, reason)| {
                GroupError::CorruptBatch {
                    partition,
                    offset,
                    reason,
                }
            })?;
            let Some(next_offset) = parsed.next_offset else {
                if data.len() < max_bytes {
                    // Less than asked for and not one whole batch: the log ends in a torn batch.
                    return Err(GroupError::CorruptBatch {
                        partition,
                        offset,
                        reason: "truncated batch".to_owned(),
                    });
                }
                // A batch larger than the read size: read more at once.
                max_bytes = max_bytes.saturating_mul(2);
                continue;
            };
            // Records and markers in log order.
            let mut markers = parsed.markers.into_iter().peekable();
            for record in parsed.records {
                while let Some(marker) = markers.next_if(|m| m.offset < record.offset) {
                    replayed.end_transaction(marker);
                }
                apply(&mut replayed, partition, record)?;
            }
            for marker in markers {
                replayed.end_transaction(marker);
            }
            offset = next_offset.max(offset + 1);
            // Long partitions must not starve the other tasks on this worker.
            tokio::task::yield_now().await;
        }
        Ok(replayed)
    }
}

fn apply(replayed: &mut Replayed, partition: i32, record: LoggedRecord) -> Result<(), GroupError> {
    let corrupt = |source| GroupError::CorruptRecord {
        partition,
        offset: record.offset,
        source,
    };
    let Some(key_bytes) = record.key.as_deref() else {
        return Ok(());
    };
    let Some(key) = RecordKey::decode(key_bytes).map_err(corrupt)? else {
        return Ok(());
    };
    let value = key.decode_value(record.value.as_deref()).map_err(corrupt)?;
    let in_transaction = record.transactional && record.producer_id >= 0;
    match (key, value) {
        (
            RecordKey::OffsetCommit {
                group,
                topic,
                partition,
            },
            Some(RecordValue::OffsetCommit(v)),
        ) => {
            let entry = OffsetEntry {
                offset: v.offset,
                leader_epoch: v.leader_epoch,
                metadata: v.metadata,
                commit_timestamp: v.commit_timestamp,
                record_offset: record.offset,
            };
            let key = (group, topic, partition);
            if in_transaction {
                replayed
                    .pending
                    .entry(record.producer_id)
                    .or_default()
                    .insert(key, entry);
            } else {
                replayed.offsets.insert(key, entry);
            }
        }
        (
            RecordKey::OffsetCommit {
                group,
                topic,
                partition,
            },
            _,
        ) => {
            let key = (group, topic, partition);
            if in_transaction {
                if let Some(pending) = replayed.pending.get_mut(&record.producer_id) {
                    pending.remove(&key);
                }
            } else {
                replayed.offsets.remove(&key);
                for pending in replayed.pending.values_mut() {
                    pending.remove(&key);
                }
            }
        }
        (RecordKey::GroupMetadata { group }, Some(RecordValue::GroupMetadata(v))) => {
            replayed.groups.insert(group, v);
        }
        (RecordKey::GroupMetadata { group }, _) => {
            replayed.groups.remove(&group);
        }
    }
    Ok(())
}
