//! Becoming and ceasing to be coordinator of a `__transaction_state` partition.

use std::collections::HashMap;

use bytes::{Buf, Bytes};
use kafka_protocol::records::RecordBatchDecoder;
use strom_group::OffsetsLog;

use super::{PartitionStatus, TransactionCoordinator};
use crate::error::TxnError;
use crate::marker::MarkerWriter;
use crate::metadata::TransactionMetadata;
use crate::records::decode_record;

impl<L: OffsetsLog, M: MarkerWriter> TransactionCoordinator<L, M> {
    /// Becomes coordinator of `partition` at `coordinator_epoch` (its leader epoch): replays it
    /// from its log start, the last value of each transactional id winning and tombstones
    /// removing it; batches and records that do not decode are skipped with a warning.
    /// Transactions found in PrepareCommit/PrepareAbort (the previous coordinator stopped while
    /// writing their markers) are completed by sending their markers again. Requests for its
    /// transactional ids get COORDINATOR_LOAD_IN_PROGRESS meanwhile. Loading a partition owned
    /// at the same or a newer epoch is a no-op.
    pub async fn load_partition(
        &self,
        partition: i32,
        coordinator_epoch: i32,
    ) -> Result<(), TxnError> {
        let partitions = self.partition_count();
        if !(0..partitions).contains(&partition) {
            return Err(TxnError::UnknownPartition {
                partition,
                partitions,
            });
        }
        let load = {
            let mut state = self.shared.state.lock();
            if state.shut_down {
                return Err(TxnError::LoadAbandoned { partition });
            }
            if state
                .owned_epoch(partition)
                .is_some_and(|epoch| epoch >= coordinator_epoch)
            {
                return Ok(());
            }
            state.next_load += 1;
            let load = state.next_load;
            state.partitions.insert(
                partition,
                PartitionStatus::Loading {
                    load,
                    coordinator_epoch,
                },
            );
            load
        };
        let _writer = self.writer(partition).lock().await;
        let loading = PartitionStatus::Loading {
            load,
            coordinator_epoch,
        };
        let replayed = match self.replay(partition).await {
            Ok(replayed) => replayed,
            Err(error) => {
                let mut state = self.shared.state.lock();
                if state.partitions.get(&partition) == Some(&loading) {
                    state.partitions.remove(&partition);
                }
                return Err(error);
            }
        };
        let pending: Vec<TransactionMetadata> = {
            let mut state = self.shared.state.lock();
            if state.partitions.get(&partition) != Some(&loading) {
                return Err(TxnError::LoadAbandoned { partition });
            }
            let pending = replayed
                .values()
                .filter(|m| m.state.is_prepare())
                .cloned()
                .collect();
            // Ids of this partition cached under an older epoch are replaced by the log's.
            state
                .txns
                .retain(|id, _| self.partition_for(id) != partition);
            let count = replayed.len();
            state.txns.extend(replayed);
            state
                .partitions
                .insert(partition, PartitionStatus::Owned { coordinator_epoch });
            tracing::debug!(
                partition,
                coordinator_epoch,
                transactional_ids = count,
                "loaded __transaction_state partition"
            );
            pending
        };
        for prepare in pending {
            tracing::info!(transactional_id = %prepare.transactional_id, state = %prepare.state, "completing a transaction found while loading");
            self.spawn_markers(partition, coordinator_epoch, prepare);
        }
        Ok(())
    }

    /// Stops coordinating `partition` (its leadership moved): its transactional ids are
    /// dropped from memory, so requests for them get NOT_COORDINATOR, and its marker tasks
    /// stop before completing (the next coordinator completes them).
    pub async fn unload_partition(&self, partition: i32) {
        let _writer = self.writer(partition).lock().await;
        let mut state = self.shared.state.lock();
        state.partitions.remove(&partition);
        state
            .txns
            .retain(|id, _| self.partition_for(id) != partition);
    }

    async fn replay(
        &self,
        partition: i32,
    ) -> Result<HashMap<String, TransactionMetadata>, TxnError> {
        let mut replayed = HashMap::new();
        let mut offset = 0i64;
        let mut max_bytes = self.shared.config.load_buffer_size.max(1024);
        loop {
            if self.shared.shutdown.is_cancelled() {
                return Err(TxnError::LoadAbandoned { partition });
            }
            let (data, log_end_offset) = self
                .shared
                .log
                .read(partition, offset, max_bytes)
                .map_err(|source| TxnError::Load { partition, source })?;
            if offset >= log_end_offset || data.is_empty() {
                break;
            }
            let full = data.len() >= max_bytes;
            let Some(next) = apply_batches(&mut replayed, partition, data) else {
                if full {
                    // A batch larger than the read size: read more at once.
                    max_bytes = max_bytes.saturating_mul(2);
                    continue;
                }
                return Err(TxnError::TruncatedBatch { partition, offset });
            };
            offset = next.max(offset + 1);
            tokio::task::yield_now().await;
        }
        Ok(replayed)
    }
}

/// Applies every complete batch of `data` to `replayed`; returns the offset after the last
/// complete batch, `None` when there was none.
fn apply_batches(
    replayed: &mut HashMap<String, TransactionMetadata>,
    partition: i32,
    mut data: Bytes,
) -> Option<i64> {
    let mut next = None;
    while data.len() >= 12 {
        let base_offset = (&data[0..8]).get_i64();
        let length = (&data[8..12]).get_i32();
        let Some(total) = usize::try_from(length).ok().and_then(|l| l.checked_add(12)) else {
            tracing::warn!(
                partition,
                base_offset,
                length,
                "skipping the rest of a read with a negative batch length"
            );
            return next.or(Some(base_offset + 1));
        };
        if data.len() < total {
            break;
        }
        let mut batch = data.split_to(total);
        let last_offset_delta = batch.get(23..27).map_or(0, |mut b| b.get_i32());
        next = Some(base_offset + i64::from(last_offset_delta) + 1);
        let records = match RecordBatchDecoder::decode(&mut batch) {
            Ok(set) => set.records,
            Err(error) => {
                tracing::warn!(partition, base_offset, %error, "skipping an undecodable batch");
                continue;
            }
        };
        for record in records.into_iter().filter(|r| !r.control) {
            let Some(key) = record.key.as_deref() else {
                continue;
            };
            match decode_record(key, record.value.as_deref()) {
                Ok((key, Some(value))) => {
                    let meta = TransactionMetadata::from_log(&key.transactional_id, &value);
                    replayed.insert(key.transactional_id, meta);
                }
                Ok((key, None)) => {
                    replayed.remove(&key.transactional_id);
                }
                Err(error) => {
                    tracing::warn!(partition, offset = record.offset, %error, "skipping an undecodable record");
                }
            }
        }
    }
    next
}
