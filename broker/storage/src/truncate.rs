//! Removing data from the end of the log: truncation for replication (a follower cutting a
//! diverged tail, or restarting its log at the leader's log start).
//!
//! Crash safety: each step leaves a log that opens consistently. The leader-epoch cache is
//! written first (an epoch cache behind the log is detected and rebuilt on open); whole
//! segments are deleted newest first, so a crash leaves a contiguous prefix; the cut segment
//! is truncated and fdatasynced (its indexes are rebuilt on open if the crash came first,
//! since the log is not marked cleanly closed while open); producer snapshots beyond the new
//! end are deleted on open in any case.

use std::sync::Arc;

use crate::checkpoint;
use crate::error::StorageError;
use crate::log::{Inner, PartitionLog};
use crate::producer_state::ProducerStateManager;
use crate::recovery;
use crate::segment::{self, Segment};

impl PartitionLog {
    /// Removes every batch from the one holding `offset` on (replication: a follower
    /// truncating to the leader's log). The log end offset becomes the first offset of that
    /// batch — `offset` itself when it is a batch boundary, as it is for logs written by a
    /// leader; Kafka truncates the same way. Epoch-cache entries starting at or after the new
    /// end are removed, and so are `.txnindex` entries of markers at or after it; the producer
    /// state is rebuilt for the remaining log, the verified prefix and the recovery point are
    /// lowered.
    ///
    /// An offset at or beyond the log end changes nothing; one below the log start empties the
    /// log and restarts it at `offset` ([`PartitionLog::truncate_fully_and_start_at`]).
    pub fn truncate_to(&self, offset: i64) -> Result<(), StorageError> {
        let mut inner = self.inner.lock();
        if inner.closed {
            return Err(StorageError::Closed {
                dir: self.dir.clone(),
            });
        }
        if offset >= inner.log_end_offset {
            return Ok(());
        }
        if offset < inner.log_start_offset {
            return self.truncate_fully_locked(&mut inner, offset);
        }
        let interval = inner.config.index_interval_bytes;
        // truncate_to carries no clock; the last flush time is only a fallback segment age.
        let now_ms = inner.last_flush_ms;
        let keep = inner
            .segments
            .partition_point(|s| s.base_offset() <= offset)
            .max(1);
        let target = Arc::clone(&inner.segments[keep - 1]);
        let cut = target.find_batch(offset, target.size())?;
        // Where the log will end: the base of the batch holding `offset`.
        let new_end = cut.map_or(target.next_offset().min(offset), |(_, h)| {
            h.base_offset.min(offset)
        });
        self.update_epochs(&mut inner, |cache| cache.truncate_from_end(new_end))?;

        let removed: Vec<Arc<Segment>> = Arc::make_mut(&mut inner.segments).drain(keep..).collect();
        segment::delete_segments(
            &self.dir,
            removed.iter().rev().map(|s| &**s),
            inner.config.file_delete_delay_ms,
        )?;
        if let Some((position, _)) = cut {
            target.truncate_to(position, interval, now_ms)?;
        }
        target.truncate_txn_index(target.next_offset())?;
        target.pin_files()?;
        let point = target.sync_point();
        target.sync()?;
        target.mark_durable(point);
        checkpoint::sync_dir(&self.dir)?;
        inner.log_end_offset = target.next_offset();
        inner.log_start_offset = inner.log_start_offset.min(inner.log_end_offset);
        let kept = Arc::clone(&inner.segments);
        inner
            .unsynced
            .retain(|s| kept.iter().any(|k| Arc::ptr_eq(k, s)));
        let leo = inner.log_end_offset;
        crate::cleaner::checkpoint::truncate(&self.dir, leo)?;
        recovery::delete_snapshots_after(&self.dir, leo)?;
        let snapshots = recovery::list_snapshot_offsets(&self.dir)?;
        inner.producers =
            recovery::rebuild_producer_state(&self.dir, &snapshots, &inner.segments, leo, &[])?;
        self.truncated(&mut inner);
        tracing::warn!(dir = %self.dir.display(), offset, log_end_offset = leo, "truncated the log");
        Ok(())
    }

    /// Deletes every segment and restarts the log, empty, at `offset`: log start = log end =
    /// `offset` (a follower whose fetch offset fell below the leader's log start, Kafka's
    /// `truncateFullyAndStartAt`). The leader-epoch cache and the producer state are cleared.
    /// A negative offset is [`StorageError::OffsetOutOfRange`].
    pub fn truncate_fully_and_start_at(&self, offset: i64) -> Result<(), StorageError> {
        let mut inner = self.inner.lock();
        if inner.closed {
            return Err(StorageError::Closed {
                dir: self.dir.clone(),
            });
        }
        if offset < 0 {
            return Err(StorageError::OffsetOutOfRange {
                requested: offset,
                log_start_offset: inner.log_start_offset,
                log_end_offset: inner.log_end_offset,
            });
        }
        self.truncate_fully_locked(&mut inner, offset)
    }

    /// The order makes every crash point open as a consistent log: the log start checkpoint
    /// first (a crash leaves the old data with its start raised, or an empty log created at
    /// `offset`), then the epoch cache and the producer snapshots (rebuilt from what is left),
    /// then the segments newest first, then the new segment.
    fn truncate_fully_locked(&self, inner: &mut Inner, offset: i64) -> Result<(), StorageError> {
        checkpoint::write_log_start_offset(&self.dir, offset)?;
        self.update_epochs(inner, |cache| cache.clear())?;
        recovery::delete_snapshots_after(&self.dir, -1)?;
        let removed: Vec<Arc<Segment>> = Arc::make_mut(&mut inner.segments).drain(..).collect();
        segment::delete_segments(
            &self.dir,
            removed.iter().rev().map(|s| &**s),
            inner.config.file_delete_delay_ms,
        )?;
        Arc::make_mut(&mut inner.segments).push(Arc::new(Segment::create(&self.dir, offset)?));
        crate::cleaner::checkpoint::truncate(&self.dir, offset)?;
        checkpoint::sync_dir(&self.dir)?;
        inner.log_start_offset = offset;
        inner.log_end_offset = offset;
        inner.unsynced.clear();
        inner.producers = ProducerStateManager::new();
        self.truncated(inner);
        tracing::warn!(dir = %self.dir.display(), offset, "emptied the log and restarted it");
        Ok(())
    }

    /// Bookkeeping after the end of the log moved back.
    fn truncated(&self, inner: &mut Inner) {
        inner.unflushed_messages = 0;
        inner.generation += 1;
        self.publish(inner);
    }
}
