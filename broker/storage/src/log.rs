//! [`PartitionLog`]: the log of one partition — its state, appends, flushes and rolls (reads are
//! in `read`).
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

use crate::batch::{BatchError, BatchHeader, Batches, RecordBatchMut};
use crate::config::{LogConfig, TimestampType};
use crate::error::StorageError;
use crate::producer_state::{ProducerStateManager, SequenceCheck};
use crate::segment::Segment;
use crate::validate::{ProduceRules, validate_produce_batch};

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
    pub(crate) closed: bool,
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
}

/// Work left to do after the append lock is released.
#[derive(Debug, Default)]
pub(crate) struct AfterUnlock {
    pub(crate) sync: Vec<Arc<Segment>>,
}

impl AfterUnlock {
    pub(crate) fn run(self) -> Result<(), StorageError> {
        for segment in self.sync {
            segment.sync()?;
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
        }));
    }

    /// Appends a produce request's record set (one or more v2 batches) as the leader.
    ///
    /// Every batch is validated before anything is written, and before the idempotent-producer
    /// state is consulted (sequence numbers count records, so the count must be true first): an
    /// invalid batch rejects the whole append. Offsets are then assigned from the log end
    /// offset, `baseOffset` and `partitionLeaderEpoch` are patched (and with `LogAppendTime` the
    /// timestamp, recomputing the CRC), and the bytes are written with one write. Batches with a producer id go through the
    /// idempotent-producer checks ([`AppendOrigin::Client`]).
    ///
    /// Idempotent retries come back as [`StorageError::DuplicateSequence`] with the original
    /// offsets (nothing is written; Kafka answers the produce with success).
    ///
    /// An `Io` error means the log directory is failing. It can also come from the fdatasync
    /// that follows the write (a rolled segment, or `flush.messages`/`flush.ms`): then the
    /// batches are in the log but their durability is unknown, as with Kafka's
    /// `KAFKA_STORAGE_ERROR`.
    ///
    /// This copies `records` once to patch it; [`PartitionLog::append_owned`] avoids the copy.
    pub fn append(
        &self,
        records: &[u8],
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendInfo, StorageError> {
        let headers = self.validate(records, now_ms)?;
        self.append_validated(
            records.to_vec(),
            headers,
            leader_epoch,
            now_ms,
            AppendOrigin::Client,
        )
    }

    /// [`PartitionLog::append`] on a buffer the caller hands over, patched in place.
    pub fn append_owned(
        &self,
        records: Vec<u8>,
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendInfo, StorageError> {
        let headers = self.validate(&records, now_ms)?;
        self.append_validated(records, headers, leader_epoch, now_ms, AppendOrigin::Client)
    }

    /// [`PartitionLog::append_owned`] with an explicit origin.
    pub fn append_with_origin(
        &self,
        records: Vec<u8>,
        leader_epoch: i32,
        now_ms: i64,
        origin: AppendOrigin,
    ) -> Result<AppendInfo, StorageError> {
        let headers = self.validate(&records, now_ms)?;
        self.append_validated(records, headers, leader_epoch, now_ms, origin)
    }

    /// Checks every batch of a record set (outside the append lock: a compressed batch is
    /// decompressed to be checked); returns their headers.
    fn validate(&self, records: &[u8], now_ms: i64) -> Result<Vec<BatchHeader>, StorageError> {
        let (max_message_bytes, segment_bytes, rules) = {
            let inner = self.inner.lock();
            let config = &inner.config;
            (
                config.max_message_bytes,
                config.effective_segment_bytes(),
                ProduceRules {
                    now_ms,
                    timestamp_type: config.message_timestamp_type,
                    timestamp_before_max_ms: config.message_timestamp_before_max_ms,
                    timestamp_after_max_ms: config.message_timestamp_after_max_ms,
                },
            )
        };
        validate_record_set(records, max_message_bytes, segment_bytes, &rules)
    }

    fn append_validated(
        &self,
        mut records: Vec<u8>,
        mut headers: Vec<BatchHeader>,
        leader_epoch: i32,
        now_ms: i64,
        origin: AppendOrigin,
    ) -> Result<AppendInfo, StorageError> {
        let mut after = AfterUnlock::default();
        let result = {
            let mut inner = self.inner.lock();
            self.append_locked(
                &mut inner,
                &mut records,
                &mut headers,
                leader_epoch,
                now_ms,
                origin,
                &mut after,
            )
        };
        // fdatasync (of a rolled segment, or by the flush policy) happens outside the lock so
        // other appends and reads go on meanwhile.
        after.run()?;
        result
    }

    #[allow(clippy::too_many_arguments)]
    fn append_locked(
        &self,
        inner: &mut Inner,
        records: &mut [u8],
        headers: &mut [BatchHeader],
        leader_epoch: i32,
        now_ms: i64,
        origin: AppendOrigin,
        after: &mut AfterUnlock,
    ) -> Result<AppendInfo, StorageError> {
        if inner.closed {
            return Err(StorageError::Closed {
                dir: self.dir.clone(),
            });
        }
        let first_offset = inner.log_end_offset;
        let offsets_needed: i64 = headers
            .iter()
            .map(|h| i64::from(h.last_offset_delta) + 1)
            .sum();
        let Some(next_offset) = first_offset.checked_add(offsets_needed) else {
            return Err(StorageError::OffsetOverflow {
                log_end_offset: first_offset,
                record_count: offsets_needed,
            });
        };
        if origin == AppendOrigin::Client {
            let mut position = 0;
            for h in headers.iter() {
                if h.is_control() {
                    return Err(StorageError::InvalidRecord {
                        position,
                        source: BatchError::ControlBatchFromClient,
                    });
                }
                position += h.size;
            }
            check_producers(&inner.producers, headers)?;
        }

        let active = Arc::clone(inner.active());
        let segment_bytes = inner.config.effective_segment_bytes();
        // Rolling because relative offsets would pass i32::MAX (as Kafka's
        // `canConvertToRelativeOffset` does) is reached only by offsets that real records use:
        // validation made every batch's offset count equal to the records it holds. A segment
        // holds at most segment.bytes < 2^31 bytes and a stored record takes at least 7, so only
        // compressed batches whose records shrink below a byte each can ever need this roll.
        let aged = active
            .created_ms()
            .is_some_and(|created| now_ms.saturating_sub(created) >= inner.config.segment_ms);
        if active.size() > 0
            && (active.size() + records.len() as u64 > segment_bytes
                || aged
                || !active.can_hold_offset(next_offset - 1))
        {
            self.roll(inner, now_ms, after)?;
        }

        let log_append_time = match inner.config.message_timestamp_type {
            TimestampType::LogAppendTime => Some(now_ms),
            TimestampType::CreateTime => None,
        };
        let mut position = 0;
        let mut offset = first_offset;
        for header in headers.iter_mut() {
            let mut batch = RecordBatchMut::parse(&mut records[position..])
                .map_err(|source| StorageError::CorruptRecord { position, source })?;
            batch.set_base_offset(offset);
            batch.set_partition_leader_epoch(leader_epoch);
            if let Some(time) = log_append_time {
                batch.set_log_append_time(time);
                header.max_timestamp = time;
            } else if batch.as_batch().max_timestamp() != header.max_timestamp {
                // Validation computed the largest record timestamp; Kafka stores that.
                batch.set_max_timestamp(header.max_timestamp);
            }
            header.base_offset = offset;
            header.partition_leader_epoch = leader_epoch;
            offset = header.next_offset();
            position += header.size;
        }

        let active = Arc::clone(inner.active());
        active.append(records, headers, inner.config.index_interval_bytes, now_ms)?;
        inner.log_end_offset = next_offset;
        let batches: Vec<BatchInfo> = headers.iter().map(BatchInfo::from_header).collect();
        for b in &batches {
            inner.producers.update(b);
        }
        let record_count: u64 = headers
            .iter()
            .map(|h| u64::try_from(h.record_count).unwrap_or(0))
            .sum();
        self.publish(inner);

        inner.unflushed_messages = inner.unflushed_messages.saturating_add(record_count);
        if inner.unflushed_messages >= inner.config.flush_messages
            || now_ms.saturating_sub(inner.last_flush_ms) >= inner.config.flush_ms
        {
            self.prepare_flush(inner, now_ms, after)?;
        }

        Ok(AppendInfo {
            first_offset,
            last_offset: next_offset - 1,
            log_append_time: log_append_time.unwrap_or(-1),
            record_count,
            bytes: records.len() as u64,
            batches,
        })
    }

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
        after.sync.append(&mut inner.unsynced);
        self.publish(inner);
        Ok(())
    }

    /// Writes index entries and queues every unsynced segment for fdatasync.
    fn prepare_flush(
        &self,
        inner: &mut Inner,
        now_ms: i64,
        after: &mut AfterUnlock,
    ) -> Result<(), StorageError> {
        let active = Arc::clone(inner.active());
        active.persist_indexes()?;
        after.sync.append(&mut inner.unsynced);
        after.sync.push(active);
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
                    now_ms.saturating_sub(created) >= inner.config.segment_ms
                });
            if due && !inner.closed {
                self.roll(&mut inner, now_ms, &mut after)?;
            }
            due && !inner.closed
        };
        after.run()?;
        Ok(rolled)
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
        }
        after.run()?;
        // Only once everything is on disk may the next open skip the full recovery scan.
        crate::checkpoint::write_clean_shutdown_marker(&self.dir)
    }

    /// Removes the partition directory and everything in it.
    pub fn delete(self) -> Result<(), StorageError> {
        self.inner.lock().closed = true;
        std::fs::remove_dir_all(&self.dir).map_err(crate::error::io_err("delete", &self.dir))
    }

    /// Forgets idempotent producers idle for longer than `producer_id_expiration_ms` (Kafka's
    /// `producer.id.expiration.ms`); call it periodically. Returns how many were removed.
    pub fn remove_expired_producers(&self, now_ms: i64, producer_id_expiration_ms: i64) -> usize {
        self.inner
            .lock()
            .producers
            .remove_expired(now_ms, producer_id_expiration_ms)
    }

    /// A copy of the idempotent-producer state (for inspection and metrics).
    pub fn producer_state(&self) -> ProducerStateManager {
        self.inner.lock().producers.clone()
    }
}

/// Validates a produce record set: framing, sizes, and every batch as Kafka's `LogValidator`
/// does ([`validate_produce_batch`]: magic, CRC, header, each record, timestamps). Returns the
/// batch headers, with `maxTimestamp` set to the largest record timestamp under `CreateTime`.
pub fn validate_record_set(
    records: &[u8],
    max_message_bytes: usize,
    segment_bytes: u64,
    rules: &ProduceRules,
) -> Result<Vec<BatchHeader>, StorageError> {
    if records.is_empty() {
        return Err(StorageError::EmptyRecordSet);
    }
    if records.len() as u64 > segment_bytes {
        return Err(StorageError::RecordListTooLarge {
            size: records.len(),
            segment_bytes,
        });
    }
    let mut headers = Vec::new();
    let mut record_index = 0usize;
    for item in Batches::new(records) {
        let (position, batch) =
            item.map_err(|(position, source)| StorageError::CorruptRecord { position, source })?;
        if batch.size() > max_message_bytes {
            return Err(StorageError::RecordTooLarge {
                size: batch.size(),
                max_message_bytes,
            });
        }
        let summary = validate_produce_batch(&batch, record_index, rules).map_err(|source| {
            if source.is_corruption() {
                StorageError::CorruptRecord { position, source }
            } else {
                StorageError::InvalidRecord { position, source }
            }
        })?;
        let mut header = batch.header();
        if rules.timestamp_type == TimestampType::CreateTime {
            header.max_timestamp = summary.max_timestamp;
        }
        // Validation proved the count is the number of records present.
        record_index += usize::try_from(header.record_count).unwrap_or(0);
        headers.push(header);
    }
    Ok(headers)
}

/// Runs the idempotence checks for every batch of an append against the state plus the
/// earlier batches of the same append, so a multi-batch append is accepted or refused whole.
fn check_producers(
    state: &ProducerStateManager,
    headers: &[BatchHeader],
) -> Result<(), StorageError> {
    let needs_check =
        |h: &BatchHeader| h.producer_id >= 0 && h.base_sequence >= 0 && !h.is_control();
    if !headers.iter().any(needs_check) {
        return Ok(());
    }
    // For a multi-batch append, later batches are checked against the state as the earlier
    // ones would leave it: a copy of just the producers involved.
    let mut staged =
        (headers.len() > 1).then(|| state.subset(headers.iter().map(|h| h.producer_id)));
    let mut next_offset = 0i64;
    for h in headers {
        if needs_check(h) {
            let current = staged.as_ref().unwrap_or(state);
            match current.check(
                h.producer_id,
                h.producer_epoch,
                h.base_sequence,
                h.last_sequence(),
            )? {
                SequenceCheck::Append => {}
                SequenceCheck::Duplicate {
                    first_offset,
                    last_offset,
                } => {
                    return Err(StorageError::DuplicateSequence {
                        producer_id: h.producer_id,
                        first_offset,
                        last_offset,
                    });
                }
            }
        }
        if let Some(staged) = staged.as_mut() {
            // Offsets are placeholders here: only sequences and epochs matter for the checks.
            let mut info = BatchInfo::from_header(h);
            info.base_offset = next_offset;
            info.last_offset = next_offset + i64::from(h.last_offset_delta);
            next_offset = info.last_offset + 1;
            staged.update(&info);
        }
    }
    Ok(())
}
