//! Rolling to a new segment and flushing (fdatasync) by the `flush.messages` / `flush.ms`
//! policy; the fdatasync itself runs after the append lock is released (`AfterUnlock`).

use std::sync::Arc;

use crate::error::StorageError;
use crate::log::{AfterUnlock, Inner, PartitionLog};
use crate::segment::Segment;

impl PartitionLog {
    /// Seals the active segment and starts a new one at the log end offset. The sealed segment
    /// is queued for fdatasync after the lock is released.
    pub(crate) fn roll(
        &self,
        inner: &mut Inner,
        now_ms: i64,
        after: &mut AfterUnlock,
    ) -> Result<(), StorageError> {
        let old = Arc::clone(inner.active());
        old.seal()?;
        let new = Segment::create(&self.dir, inner.log_end_offset)?;
        Arc::make_mut(&mut inner.segments).push(Arc::new(new));
        crate::recovery::write_producer_snapshot(
            &self.dir,
            inner.log_end_offset,
            &inner.producers,
        )?;
        tracing::debug!(
            dir = %self.dir.display(),
            base_offset = inner.log_end_offset,
            now_ms,
            "rolled to a new segment"
        );
        inner.unsynced.push(Arc::clone(&old));
        for segment in inner.unsynced.drain(..) {
            after.schedule_sync(segment);
        }
        self.publish(inner);
        Ok(())
    }

    /// Writes index entries and queues every unsynced segment for fdatasync.
    pub(crate) fn prepare_flush(
        &self,
        inner: &mut Inner,
        now_ms: i64,
        after: &mut AfterUnlock,
    ) -> Result<(), StorageError> {
        let active = Arc::clone(inner.active());
        active.persist_indexes()?;
        for segment in inner.unsynced.drain(..) {
            after.schedule_sync(segment);
        }
        after.schedule_sync(active);
        inner.unflushed_messages = 0;
        inner.last_flush_ms = now_ms;
        Ok(())
    }

    /// fdatasync of everything written so far (log and indexes).
    pub fn flush(&self) -> Result<(), StorageError> {
        let mut after = AfterUnlock::default();
        {
            let mut inner = self.inner.lock();
            let last = inner.last_flush_ms;
            self.prepare_flush(&mut inner, last, &mut after)?;
        }
        after.run()
    }

    /// Applies `flush.ms`: flushes when there is unflushed data older than the setting.
    pub fn maybe_flush(&self, now_ms: i64) -> Result<(), StorageError> {
        let mut after = AfterUnlock::default();
        {
            let mut inner = self.inner.lock();
            if inner.unflushed_messages == 0
                || now_ms.saturating_sub(inner.last_flush_ms) < inner.config.flush_ms
            {
                return Ok(());
            }
            self.prepare_flush(&mut inner, now_ms, &mut after)?;
        }
        after.run()
    }

    /// Rolls the active segment when it is older than `segment.ms` and not empty, so an idle
    /// partition's data becomes eligible for time retention. Returns whether it rolled.
    pub fn maybe_roll(&self, now_ms: i64) -> Result<bool, StorageError> {
        let mut after = AfterUnlock::default();
        let rolled = {
            let mut inner = self.inner.lock();
            let active = Arc::clone(inner.active());
            let due = active.size() > 0
                && active.created_ms().is_some_and(|created| {
                    now_ms.saturating_sub(created) >= inner.config.effective_segment_ms()
                });
            if due && !inner.closed {
                self.roll(&mut inner, now_ms, &mut after)?;
            }
            due && !inner.closed
        };
        after.run()?;
        Ok(rolled)
    }
}
