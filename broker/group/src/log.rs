//! The capability the coordinator persists through: partitions of `__consumer_offsets`.

use std::collections::HashMap;
use std::future::Future;

use bytes::{Buf, Bytes};
use parking_lot::Mutex;

use crate::error::OffsetsLogError;

/// Partitions of the internal topic `__consumer_offsets`, implemented by the broker on top of
/// its partition logs.
pub trait OffsetsLog: Send + Sync + 'static {
    /// Append one v2 record batch to partition `partition` of `__consumer_offsets`; returns its
    /// base offset once written (with the partition's durability, i.e. `acks=all`).
    fn append(
        &self,
        partition: i32,
        batch: Bytes,
    ) -> impl Future<Output = Result<i64, OffsetsLogError>> + Send;

    /// Read raw batches from `offset` (whole v2 batches, Kafka fetch semantics: the first batch is
    /// returned whole even when larger than `max_bytes`), up to `max_bytes`; returns
    /// `(bytes, log_end_offset)`. An `offset` below the log start offset reads from the log start
    /// (loading asks for offset 0 and must get whatever the log still holds).
    fn read(
        &self,
        partition: i32,
        offset: i64,
        max_bytes: usize,
    ) -> Result<(Bytes, i64), OffsetsLogError>;
}

/// An in-memory [`OffsetsLog`]: batches kept per partition with offsets assigned as a broker
/// does (base offset patched into the batch). For tests of the coordinator and its users.
#[derive(Debug, Default)]
pub struct MemoryOffsetsLog {
    partitions: Mutex<HashMap<i32, Vec<(i64, Bytes)>>>,
}

impl MemoryOffsetsLog {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every batch of `partition` with its base offset, oldest first.
    pub fn batches(&self, partition: i32) -> Vec<(i64, Bytes)> {
        self.partitions
            .lock()
            .get(&partition)
            .cloned()
            .unwrap_or_default()
    }

    /// Log end offset of `partition`.
    pub fn log_end_offset(&self, partition: i32) -> i64 {
        self.partitions
            .lock()
            .get(&partition)
            .map_or(0, |batches| end_offset(batches))
    }
}

fn end_offset(batches: &[(i64, Bytes)]) -> i64 {
    batches.last().map_or(0, |(base, batch)| {
        base + i64::from(last_offset_delta(batch)) + 1
    })
}

fn last_offset_delta(batch: &[u8]) -> i32 {
    // v2 batch header: baseOffset(8) batchLength(4) partitionLeaderEpoch(4) magic(1) crc(4)
    // attributes(2) lastOffsetDelta(4).
    batch.get(23..27).map_or(0, |mut b| b.get_i32())
}

impl OffsetsLog for MemoryOffsetsLog {
    async fn append(&self, partition: i32, batch: Bytes) -> Result<i64, OffsetsLogError> {
        if batch.len() < 61 {
            return Err(OffsetsLogError::Storage {
                partition,
                reason: format!(
                    "batch of {} bytes is shorter than a v2 batch header",
                    batch.len()
                ),
            });
        }
        let mut partitions = self.partitions.lock();
        let batches = partitions.entry(partition).or_default();
        let base_offset = end_offset(batches);
        let mut stored = batch.to_vec();
        stored[..8].copy_from_slice(&base_offset.to_be_bytes());
        batches.push((base_offset, Bytes::from(stored)));
        Ok(base_offset)
    }

    fn read(
        &self,
        partition: i32,
        offset: i64,
        max_bytes: usize,
    ) -> Result<(Bytes, i64), OffsetsLogError> {
        let partitions = self.partitions.lock();
        let Some(batches) = partitions.get(&partition) else {
            return Ok((Bytes::new(), 0));
        };
        let mut out = Vec::new();
        for (base, batch) in batches {
            let last = base + i64::from(last_offset_delta(batch));
            if last < offset {
                continue;
            }
            if !out.is_empty() && out.len() + batch.len() > max_bytes {
                break;
            }
            out.extend_from_slice(batch);
        }
        Ok((Bytes::from(out), end_offset(batches)))
    }
}
