//! Removing data from the end of the log: truncation for replication (a follower cutting a
//! diverged tail).

use std::sync::Arc;

use crate::checkpoint;
use crate::error::StorageError;
use crate::log::PartitionLog;
use crate::recovery;
use crate::segment::Segment;

impl PartitionLog {
    /// Removes every batch from the one holding `offset` on (replication: a follower
    /// truncating to the leader's log). The log end offset becomes the first offset of that
    /// batch — `offset` itself when it is a batch boundary, as it is for logs written by a
    /// leader. An offset at or beyond the log end changes nothing; one below the log start
    /// empties the log and restarts it at `offset`.
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
        let interval = inner.config.index_interval_bytes;
        // truncate_to carries no clock; the last flush time is only a fallback segment age.
        let now_ms = inner.last_flush_ms;
        if offset < inner.log_start_offset {
            let removed: Vec<Arc<Segment>> = Arc::make_mut(&mut inner.segments).drain(..).collect();
            for segment in &removed {
                segment.delete_files()?;
            }
            Arc::make_mut(&mut inner.segments).push(Arc::new(Segment::create(&self.dir, offset)?));
            checkpoint::write_log_start_offset(&self.dir, offset)?;
            inner.log_start_offset = offset;
            inner.log_end_offset = offset;
        } else {
            let keep = inner
                .segments
                .partition_point(|s| s.base_offset() <= offset)
                .max(1);
            let removed: Vec<Arc<Segment>> =
                Arc::make_mut(&mut inner.segments).drain(keep..).collect();
            for segment in &removed {
                segment.delete_files()?;
            }
            let target = Arc::clone(inner.active());
            if let Some((position, _)) = target.find_batch(offset, target.size())? {
                target.truncate_to(position, interval, now_ms)?;
            }
            inner.log_end_offset = target.next_offset();
            inner.log_start_offset = inner.log_start_offset.min(inner.log_end_offset);
        }
        let kept = Arc::clone(&inner.segments);
        inner
            .unsynced
            .retain(|s| kept.iter().any(|k| Arc::ptr_eq(k, s)));
        let leo = inner.log_end_offset;
        recovery::delete_snapshots_after(&self.dir, leo)?;
        let snapshots = recovery::list_snapshot_offsets(&self.dir)?;
        inner.producers =
            recovery::rebuild_producer_state(&self.dir, &snapshots, &inner.segments, leo)?;
        self.publish(&inner);
        tracing::warn!(dir = %self.dir.display(), offset, log_end_offset = leo, "truncated the log");
        Ok(())
    }
}
