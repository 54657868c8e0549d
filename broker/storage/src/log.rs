//! [`PartitionLog`]: the log of one partition — its types and state, and closing it. Appends
//! are in `append`, rolls and flushes in `flush`, reads in `read`.
//!
//! Concurrency: appends (and every other mutation) are serialised by `inner`, a mutex. Readers
//! never take it: each mutation ends by publishing a `LogSnapshot` (segment list, log start
//! and end offsets, committed size of the active segment) through an `ArcSwap`, and a read loads
//! the snapshot and then reads the files with positional reads. The end position is published
//! only after the write returned, so a reader never sees part of a batch.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use bytes::Bytes;
use parking_lot::Mutex;

use crate::batch::BatchHeader;
use crate::config::LogConfig;
use crate::error::StorageError;
use crate::leader_epoch::LeaderEpochCache;
use crate::producer_state::ProducerStateManager;
use crate::segment::Segment;

/// Offsets and size of an append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset given to the first record.
    pub first_offset: i64,
    /// Offset given to the last record.
    pub last_offset: i64,
    /// The broker time written into the batches with `LogAppendTime`; -1 with `CreateTime`.
    pub log_append_time: i64,
    /// Records appended (sum of the batches' record counts).
    pub record_count: u64,
    /// Bytes appended.
    pub bytes: u64,
    /// One entry per appended batch, in order.
    pub batches: Vec<BatchInfo>,
}

/// Header facts of one appended batch (what idempotence and transactions need).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchInfo {
    /// Offset of the batch's first record.
    pub base_offset: i64,
    /// Offset of the batch's last record.
    pub last_offset: i64,
    /// `producerId` (-1 for non-idempotent producers).
    pub producer_id: i64,
    /// `producerEpoch`.
    pub producer_epoch: i16,
    /// `baseSequence`.
    pub base_sequence: i32,
    /// `recordCount`.
    pub record_count: i32,
    /// `maxTimestamp` as stored (the append time with `LogAppendTime`).
    pub max_timestamp: i64,
    /// Attribute bit 4.
    pub is_transactional: bool,
    /// Attribute bit 5.
    pub is_control: bool,
}

impl BatchInfo {
    pub(crate) fn from_header(h: &BatchHeader) -> Self {
        BatchInfo {
            base_offset: h.base_offset,
            last_offset: h.last_offset(),
            producer_id: h.producer_id,
            producer_epoch: h.producer_epoch,
            base_sequence: h.base_sequence,
            record_count: h.record_count,
            max_timestamp: h.max_timestamp,
            is_transactional: h.is_transactional(),
            is_control: h.is_control(),
        }
    }
}

/// Whole batches read from the log.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReadResult {
    /// Concatenated batches, exactly as stored; empty when nothing is readable.
    pub records: Bytes,
    /// Base offset of the first batch returned (which may be below the fetch offset).
    pub first_offset: Option<i64>,
}

/// A timestamp and the offset it was found at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimestampOffset {
    /// The batch's max timestamp.
    pub timestamp: i64,
    /// The offset to fetch from.
    pub offset: i64,
}

/// What one retention pass removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RetentionOutcome {
    /// Segments deleted.
    pub deleted_segments: usize,
    /// Bytes of log deleted.
    pub deleted_bytes: u64,
    /// Log start offset after the pass.
    pub log_start_offset: i64,
}

/// Where an append comes from, which decides the idempotent-producer checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendOrigin {
    /// A producer's request on the leader: sequence numbers of batches with a producer id are
    /// checked, duplicates rejected with [`StorageError::DuplicateSequence`].
    Client,
    /// Data written by the broker itself (coordinators' internal topics, transaction markers):
    /// producer state is updated but not checked.
    Coordinator,
}

/// What readers see: an immutable view of the log, replaced after every mutation.
#[derive(Debug)]
pub(crate) struct LogSnapshot {
    pub(crate) segments: Arc<Vec<Arc<Segment>>>,
    pub(crate) log_start_offset: i64,
    pub(crate) log_end_offset: i64,
    /// Committed bytes of the last (active) segment.
    pub(crate) active_size: u64,
    /// Whether a transaction may hold the last stable offset below the high watermark (when
    /// not, it is read without the append lock).
    pub(crate) txn_unstable: bool,
}

impl LogSnapshot {
    /// Readable end position of segment `i`.
    pub(crate) fn end_of(&self, i: usize) -> u64 {
        if i + 1 == self.segments.len() {
            self.active_size
        } else {
            self.segments[i].size()
        }
    }

    /// True when every offset of segment `i` is below the log start offset.
    pub(crate) fn below_start(&self, i: usize) -> bool {
        self.segments
            .get(i + 1)
            .is_some_and(|next| next.base_offset() <= self.log_start_offset)
    }
}

/// State owned by the appender, behind the partition's mutex.
#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) config: LogConfig,
    /// Oldest first; the last one is the active segment. Never empty.
    pub(crate) segments: Arc<Vec<Arc<Segment>>>,
    pub(crate) log_start_offset: i64,
    pub(crate) log_end_offset: i64,
    pub(crate) unflushed_messages: u64,
    pub(crate) last_flush_ms: i64,
    /// Rolled segments not yet fdatasynced.
    pub(crate) unsynced: Vec<Arc<Segment>>,
    pub(crate) producers: ProducerStateManager,
    pub(crate) epochs: LeaderEpochCache,
    pub(crate) closed: bool,
    /// Bumped whenever segments are removed or cut (truncation, retention, DeleteRecords,
    /// close): a cleaning pass that started before aborts instead of swapping in its segments.
    pub(crate) generation: u64,
    /// Transaction markers this replica wrote as leader, per producer id, since the log opened:
    /// the token of a KIP-890 verification (see [`crate::TxnGuard`]).
    pub(crate) markers_written: std::collections::HashMap<i64, u64>,
}

impl Inner {
    pub(crate) fn active(&self) -> &Arc<Segment> {
        // `segments` is never empty: open creates a segment and nothing removes the last one.
        &self.segments[self.segments.len() - 1]
    }
}

/// The log of one partition: a directory of segments (see the crate docs for the layout).
/// `Send + Sync`; share it behind an `Arc`.
#[derive(Debug)]
pub struct PartitionLog {
    pub(crate) dir: PathBuf,
    pub(crate) inner: Mutex<Inner>,
    pub(crate) snapshot: ArcSwap<LogSnapshot>,
    /// Held by a cleaning pass: one at a time per log.
    pub(crate) cleaning: Mutex<()>,
}

/// Work left to do after the append lock is released.
#[derive(Debug, Default)]
pub(crate) struct AfterUnlock {
    /// Segments to fdatasync, each with what the sync covers ([`Segment::sync_point`]).
    sync: Vec<(Arc<Segment>, (i64, u64))>,
}

impl AfterUnlock {
    /// Schedules an fdatasync of `segment`; called under the append lock, so the segment's next
    /// offset names exactly the data the sync will cover.
    pub(crate) fn schedule_sync(&mut self, segment: Arc<Segment>) {
        let point = segment.sync_point();
        self.sync.push((segment, point));
    }

    pub(crate) fn run(self) -> Result<(), StorageError> {
        for (segment, point) in self.sync {
            segment.sync()?;
            segment.mark_durable(point);
        }
        Ok(())
    }
}

impl PartitionLog {
    /// The partition directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// First offset still in the log.
    pub fn log_start_offset(&self) -> i64 {
        self.snapshot.load().log_start_offset
    }

    /// Offset the next appended record gets.
    pub fn log_end_offset(&self) -> i64 {
        self.snapshot.load().log_end_offset
    }

    /// The recovery point: every offset below it is on disk (fdatasynced), Kafka's
    /// `recoveryPoint`. It advances when a rolled segment or a flush has been synced, and moves
    /// back with truncation; it equals the log end offset right after open.
    pub fn recovery_point(&self) -> i64 {
        let snap = self.snapshot.load();
        let last = snap.segments.len() - 1;
        for (i, segment) in snap.segments.iter().enumerate() {
            let end = if i == last {
                snap.log_end_offset
            } else {
                segment.next_offset()
            };
            let durable = segment.durable_to();
            if durable < end {
                return durable.max(segment.base_offset());
            }
        }
        snap.log_end_offset
    }

    /// Bytes of all segments.
    pub fn size_bytes(&self) -> u64 {
        let snap = self.snapshot.load();
        (0..snap.segments.len()).map(|i| snap.end_of(i)).sum()
    }

    /// Number of segments (at least 1).
    pub fn segment_count(&self) -> usize {
        self.snapshot.load().segments.len()
    }

    /// The configuration in force.
    pub fn config(&self) -> LogConfig {
        self.inner.lock().config.clone()
    }

    /// Replaces the configuration; it applies from the next append, roll or retention pass.
    pub fn update_config(&self, config: LogConfig) {
        self.inner.lock().config = config;
    }

    pub(crate) fn publish(&self, inner: &Inner) {
        self.snapshot.store(Arc::new(LogSnapshot {
            segments: Arc::clone(&inner.segments),
            log_start_offset: inner.log_start_offset,
            log_end_offset: inner.log_end_offset,
            active_size: inner.active().size(),
            txn_unstable: inner.producers.has_unstable(),
        }));
    }

    /// Flushes, writes the indexes and the producer-state snapshot, and refuses further appends.
    pub fn close(&self) -> Result<(), StorageError> {
        let mut after = AfterUnlock::default();
        {
            let mut inner = self.inner.lock();
            if inner.closed {
                return Ok(());
            }
            let last = inner.last_flush_ms;
            self.prepare_flush(&mut inner, last, &mut after)?;
            crate::recovery::write_producer_snapshot(
                &self.dir,
                inner.log_end_offset,
                &inner.producers,
            )?;
            inner.closed = true;
            inner.generation += 1;
        }
        after.run()?;
        // Only once everything is on disk may the next open skip the full recovery scan.
        crate::checkpoint::write_clean_shutdown_marker(&self.dir)
    }

    /// Removes the partition directory and everything in it.
    pub fn delete(self) -> Result<(), StorageError> {
        {
            let mut inner = self.inner.lock();
            inner.closed = true;
            inner.generation += 1;
        }
        // A cleaning pass in progress holds this until it has noticed and removed its files.
        let _pass = self.cleaning.lock();
        std::fs::remove_dir_all(&self.dir).map_err(crate::error::io_err("delete", &self.dir))
    }

    /// Forgets idempotent producers idle for longer than `producer_id_expiration_ms` (Kafka's
    /// `producer.id.expiration.ms`); call it periodically. Returns how many were removed.
    pub fn remove_expired_producers(&self, now_ms: i64, producer_id_expiration_ms: i64) -> usize {
        let mut inner = self.inner.lock();
        let removed = inner
            .producers
            .remove_expired(now_ms, producer_id_expiration_ms);
        // Marker counts of forgotten producers go with them, so the map stays bounded.
        let Inner {
            producers,
            markers_written,
            ..
        } = &mut *inner;
        markers_written.retain(|producer_id, _| producers.entry(*producer_id).is_some());
        removed
    }

    /// A copy of the idempotent-producer state (for inspection and metrics).
    pub fn producer_state(&self) -> ProducerStateManager {
        self.inner.lock().producers.clone()
    }
}
