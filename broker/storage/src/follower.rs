//! The follower's append path: batches fetched from the leader are stored byte for byte, with
//! the leader's offsets, leader epochs and timestamps (Kafka's `appendAsFollower`).
//!
//! Nothing is re-stamped and no producer rule applies (the leader applied them), but every
//! batch is checked as a stored batch is (`validate_stored_batch`: framing, CRC, header,
//! records of uncompressed batches) since the bytes come from the network, and the offsets must
//! never go back (they may skip: compaction removes batches). Producer state (open
//! transactions included), the `.txnindex` files and the leader-epoch cache are updated from
//! the batches as the leader updates its own, so a follower that becomes leader deduplicates
//! retries, answers OffsetForLeaderEpoch and serves `read_committed` fetches like the old
//! leader would have.

use std::sync::Arc;

use crate::batch::{BatchError, BatchHeader, LOG_OVERHEAD, RecordBatch, batch_size};
use crate::error::StorageError;
use crate::log::{AfterUnlock, AppendInfo, BatchInfo, Inner, PartitionLog};
use crate::validate::validate_stored_batch;

/// A checked batch of a fetched record set: its header and where it lies in the set.
#[derive(Debug, Clone, Copy)]
struct Fetched {
    position: usize,
    header: BatchHeader,
}

/// Checks every whole batch of a fetched record set; a trailing partial batch (a fetch response
/// cut at its byte limit) is left out. A damaged batch fails the whole set.
fn check_fetched(records: &[u8]) -> Result<Vec<Fetched>, StorageError> {
    let mut out = Vec::new();
    let mut position = 0;
    while records.len() - position >= LOG_OVERHEAD {
        let rest = &records[position..];
        let size =
            batch_size(rest).map_err(|source| StorageError::CorruptRecord { position, source })?;
        if rest.len() < size {
            break;
        }
        let batch = RecordBatch::parse(rest)
            .map_err(|source| StorageError::CorruptRecord { position, source })?;
        validate_stored_batch(&batch).map_err(|source| {
            if source.is_corruption() {
                StorageError::CorruptRecord { position, source }
            } else {
                StorageError::InvalidRecord { position, source }
            }
        })?;
        let header = batch.header();
        if header
            .base_offset
            .checked_add(i64::from(header.last_offset_delta) + 1)
            .is_none()
            || header.base_offset < 0
        {
            return Err(StorageError::InvalidRecord {
                position,
                source: BatchError::InvalidHeaderField {
                    field: "baseOffset",
                    value: header.base_offset,
                },
            });
        }
        out.push(Fetched { position, header });
        position += size;
    }
    Ok(out)
}

impl PartitionLog {
    /// Appends the record set of a leader's Fetch response for this partition (zero or more v2
    /// batches, possibly ending in a partial batch, which is ignored) as a follower.
    ///
    /// Batches are stored exactly as received. Batches wholly below the log end offset are
    /// skipped (already replicated); the first batch stored must start at or after the log end
    /// offset and each next one at or after where the previous ended (a compacted leader's log
    /// has gaps), else [`StorageError::OffsetMismatch`]. Every
    /// batch is checked first (framing, CRC, header, records of uncompressed batches); a bad
    /// one fails the append and nothing of the record set is written. Rolling, indexing and the
    /// flush policy are those of the leader's append; each batch rolls on its own, so a
    /// follower's segments end where the leader's do when the leader appended batch by batch.
    ///
    /// An empty (or wholly skipped) record set returns `record_count` 0, `first_offset` = the
    /// log end offset and `last_offset` one below it.
    pub fn append_as_follower(
        &self,
        records: &[u8],
        now_ms: i64,
    ) -> Result<AppendInfo, StorageError> {
        let fetched = check_fetched(records)?;
        let mut after = AfterUnlock::default();
        let result = {
            let mut inner = self.inner.lock();
            self.append_as_follower_locked(&mut inner, records, &fetched, now_ms, &mut after)
        };
        after.run()?;
        result
    }

    fn append_as_follower_locked(
        &self,
        inner: &mut Inner,
        records: &[u8],
        fetched: &[Fetched],
        now_ms: i64,
        after: &mut AfterUnlock,
    ) -> Result<AppendInfo, StorageError> {
        if inner.closed {
            return Err(StorageError::Closed {
                dir: self.dir.clone(),
            });
        }
        let log_end_offset = inner.log_end_offset;
        let skip = fetched
            .iter()
            .take_while(|f| f.header.next_offset() <= log_end_offset)
            .count();
        let new = &fetched[skip..];
        let mut expected = log_end_offset;
        for f in new {
            // Gaps are fine: compaction on the leader removes whole batches (Kafka's follower
            // only refuses offsets that go back).
            if f.header.base_offset < expected {
                return Err(StorageError::OffsetMismatch {
                    expected,
                    actual: f.header.base_offset,
                });
            }
            expected = f.header.next_offset();
        }
        let Some(first) = new.first() else {
            return Ok(AppendInfo {
                first_offset: log_end_offset,
                last_offset: log_end_offset - 1,
                log_append_time: -1,
                record_count: 0,
                bytes: 0,
                batches: Vec::new(),
            });
        };

        self.assign_epochs(
            inner,
            new.iter()
                .map(|f| (f.header.partition_leader_epoch, f.header.base_offset)),
        )?;
        let written = self.write_fetched(inner, records, new, now_ms, after);
        if written.is_err() {
            // Entries for batches that did not make it into the log must not stay cached.
            let leo = inner.log_end_offset;
            self.update_epochs(inner, |cache| cache.truncate_from_end(leo + 1))?;
        }
        written?;

        let batches: Vec<BatchInfo> = new
            .iter()
            .map(|f| BatchInfo::from_header(&f.header))
            .collect();
        let record_count: u64 = new
            .iter()
            .map(|f| u64::try_from(f.header.record_count).unwrap_or(0))
            .sum();
        inner.unflushed_messages = inner.unflushed_messages.saturating_add(record_count);
        if inner.unflushed_messages >= inner.config.flush_messages
            || now_ms.saturating_sub(inner.last_flush_ms) >= inner.config.flush_ms
        {
            self.prepare_flush(inner, now_ms, after)?;
        }
        Ok(AppendInfo {
            first_offset: first.header.base_offset,
            last_offset: expected - 1,
            log_append_time: -1,
            record_count,
            bytes: new.iter().map(|f| f.header.size as u64).sum(),
            batches,
        })
    }

    /// Writes the batches into the active segment, rolling before any batch that would overflow
    /// it; consecutive batches that share a segment go in one write.
    fn write_fetched(
        &self,
        inner: &mut Inner,
        records: &[u8],
        batches: &[Fetched],
        now_ms: i64,
        after: &mut AfterUnlock,
    ) -> Result<(), StorageError> {
        let segment_bytes = inner.config.effective_segment_bytes();
        let mut run_start = 0;
        // Bytes of batches[run_start..i], not yet written.
        let mut pending = 0u64;
        for (i, f) in batches.iter().enumerate() {
            let active = Arc::clone(inner.active());
            let size = active.size() + pending;
            let aged = i == 0
                && active.created_ms().is_some_and(|created| {
                    now_ms.saturating_sub(created) >= inner.config.effective_segment_ms()
                });
            if size > 0
                && (size + f.header.size as u64 > segment_bytes
                    || aged
                    || !active.can_hold_offset(f.header.last_offset()))
            {
                self.write_run(inner, records, &batches[run_start..i], now_ms)?;
                run_start = i;
                pending = 0;
                self.roll(inner, now_ms, after)?;
            }
            pending += f.header.size as u64;
        }
        self.write_run(inner, records, &batches[run_start..], now_ms)
    }

    /// Appends consecutive batches of `records` to the active segment and advances the log.
    fn write_run(
        &self,
        inner: &mut Inner,
        records: &[u8],
        run: &[Fetched],
        now_ms: i64,
    ) -> Result<(), StorageError> {
        let (Some(first), Some(last)) = (run.first(), run.last()) else {
            return Ok(());
        };
        let bytes = &records[first.position..last.position + last.header.size];
        let headers: Vec<BatchHeader> = run.iter().map(|f| f.header).collect();
        let active = Arc::clone(inner.active());
        active.append(bytes, &headers, inner.config.index_interval_bytes, now_ms)?;
        inner.log_end_offset = last.header.next_offset();
        crate::transactions::record_appended(&mut inner.producers, &active, bytes, &headers)?;
        self.publish(inner);
        Ok(())
    }
}
