//! Removing data from the start of the log: time and size retention, DeleteRecords.
//!
//! Neither moves the log start past the first offset of an open transaction
//! (`PartitionLog::transaction_bound`).

use std::sync::Arc;

use crate::checkpoint;
use crate::error::StorageError;
use crate::log::{AfterUnlock, Inner, PartitionLog, RetentionOutcome};
use crate::segment::{self, Segment};

impl PartitionLog {
    /// The offset retention and DeleteRecords may not raise the log start past: the first
    /// offset of the oldest open transaction (`i64::MAX` when none is open).
    ///
    /// Why: the last stable offset is at most that offset, and a `read_committed` consumer
    /// reads from below it. Were the log start raised past it, the transaction's first batches
    /// would be gone while it is still open: consumers would see the rest of a transaction
    /// whose start they never got (and, if it aborts, the aborted-transaction entries would
    /// describe data the log no longer has), and the last stable offset would fall below the
    /// log start, where no fetch can be served. Completed transactions do not bound it: their
    /// outcome is decided, and their marker reaches the high watermark soon after.
    pub(crate) fn transaction_bound(inner: &Inner) -> i64 {
        inner
            .producers
            .open_transactions()
            .next()
            .map_or(i64::MAX, |(_, _, first)| first)
    }

    /// One pass of `retention.ms` and `retention.bytes` (only with `cleanup.policy` `delete`)
    /// and of segments left wholly below the log start offset by DeleteRecords (always). Deletes whole segments, oldest first, stopping at
    /// the first one to keep. The active segment is deleted only when it too has expired: the
    /// log then rolls first, like Kafka, so an empty active segment remains at the log end.
    /// A segment holding offsets of an open transaction is kept, and so is every later one
    /// (see `transaction_bound`).
    pub fn apply_retention(&self, now_ms: i64) -> Result<RetentionOutcome, StorageError> {
        let mut after = AfterUnlock::default();
        let outcome = {
            let mut inner = self.inner.lock();
            self.apply_retention_locked(&mut inner, now_ms, &mut after)?
        };
        after.run()?;
        Ok(outcome)
    }

    fn apply_retention_locked(
        &self,
        inner: &mut Inner,
        now_ms: i64,
        after: &mut AfterUnlock,
    ) -> Result<RetentionOutcome, StorageError> {
        if inner.closed {
            // Background cleaners may still tick during shutdown: a closed log keeps its data.
            return Ok(RetentionOutcome {
                log_start_offset: inner.log_start_offset,
                ..Default::default()
            });
        }
        // `cleanup.policy` without `delete`: time and size never remove data (segments left
        // below the log start offset by DeleteRecords still go).
        let policy_delete = inner.config.cleanup_policy.delete;
        let retention_ms = if policy_delete {
            inner.config.retention_ms
        } else {
            -1
        };
        let retention_bytes = if policy_delete {
            inner.config.retention_bytes
        } else {
            -1
        };
        let total: u64 = inner.segments.iter().map(|s| s.size()).sum();
        let mut excess: i64 = if retention_bytes >= 0 {
            i64::try_from(total)
                .unwrap_or(i64::MAX)
                .saturating_sub(retention_bytes)
        } else {
            i64::MIN
        };
        let segments = Arc::clone(&inner.segments);
        let bound = Self::transaction_bound(inner);
        let mut deletable = 0;
        for (i, segment) in segments.iter().enumerate() {
            let is_active = i + 1 == segments.len();
            if is_active && segment.size() == 0 {
                break;
            }
            let end = segments
                .get(i + 1)
                .map_or(inner.log_end_offset, |next| next.base_offset());
            if end > bound {
                break;
            }
            let size = i64::try_from(segment.size()).unwrap_or(i64::MAX);
            let below_start = segments
                .get(i + 1)
                .is_some_and(|next| next.base_offset() <= inner.log_start_offset);
            let expired = retention_ms >= 0
                && now_ms.saturating_sub(segment.retention_timestamp()) > retention_ms;
            let over_size = excess >= size;
            if !(below_start || expired || over_size) {
                break;
            }
            if over_size {
                excess -= size;
            }
            deletable += 1;
        }
        if deletable == 0 {
            return Ok(RetentionOutcome {
                log_start_offset: inner.log_start_offset,
                ..Default::default()
            });
        }
        if deletable == segments.len() {
            self.roll(inner, now_ms, after)?;
        }
        let outcome = self.delete_oldest_segments(inner, deletable)?;
        tracing::info!(
            dir = %self.dir.display(),
            deleted_segments = outcome.deleted_segments,
            deleted_bytes = outcome.deleted_bytes,
            log_start_offset = outcome.log_start_offset,
            "retention deleted segments"
        );
        Ok(outcome)
    }

    /// Removes the `count` oldest segments (never the last), advances the log start offset to
    /// the new first segment, publishes, then retires the files. Readers still holding the old
    /// snapshot keep reading them for `file.delete.delay.ms`.
    fn delete_oldest_segments(
        &self,
        inner: &mut Inner,
        count: usize,
    ) -> Result<RetentionOutcome, StorageError> {
        let count = count.min(inner.segments.len() - 1);
        let removed: Vec<Arc<Segment>> =
            Arc::make_mut(&mut inner.segments).drain(..count).collect();
        inner.generation += 1;
        let first_base = inner.segments[0].base_offset();
        inner.log_start_offset = inner.log_start_offset.max(first_base);
        let start = inner.log_start_offset;
        self.update_epochs(inner, |cache| cache.truncate_from_start(start))?;
        inner
            .unsynced
            .retain(|s| !removed.iter().any(|r| Arc::ptr_eq(r, s)));
        self.publish(inner);
        let deleted_bytes = removed.iter().map(|s| s.size()).sum();
        segment::delete_segments(
            &self.dir,
            removed.iter().map(|s| &**s),
            inner.config.file_delete_delay_ms,
        )?;
        Ok(RetentionOutcome {
            deleted_segments: removed.len(),
            deleted_bytes,
            log_start_offset: inner.log_start_offset,
        })
    }

    /// DeleteRecords: raises the log start offset to `offset` (persisted in the
    /// `log-start-offset` checkpoint so it survives a restart) and deletes the segments that now
    /// lie wholly below it. Returns the new log start offset (Kafka's low watermark). An offset
    /// at or below the current start changes nothing; one above the log end offset is
    /// [`StorageError::OffsetOutOfRange`]. An offset past the first offset of an open
    /// transaction raises the log start to that first offset only (see `transaction_bound`):
    /// the returned low watermark tells the caller.
    pub fn delete_records_before(&self, offset: i64) -> Result<i64, StorageError> {
        let mut inner = self.inner.lock();
        if inner.closed {
            return Err(StorageError::Closed {
                dir: self.dir.clone(),
            });
        }
        if offset > inner.log_end_offset || offset < 0 {
            return Err(StorageError::OffsetOutOfRange {
                requested: offset,
                log_start_offset: inner.log_start_offset,
                log_end_offset: inner.log_end_offset,
            });
        }
        let offset = offset.min(Self::transaction_bound(&inner));
        if offset <= inner.log_start_offset {
            return Ok(inner.log_start_offset);
        }
        checkpoint::write_log_start_offset(&self.dir, offset)?;
        inner.log_start_offset = offset;
        self.update_epochs(&mut inner, |cache| cache.truncate_from_start(offset))?;
        let below = inner
            .segments
            .windows(2)
            .take_while(|pair| pair[1].base_offset() <= offset)
            .count();
        if below > 0 {
            self.delete_oldest_segments(&mut inner, below)?;
        } else {
            self.publish(&inner);
        }
        Ok(inner.log_start_offset)
    }
}
