//! The leader's append path: validation of a produce record set, idempotent-producer and
//! transaction checks, offset assignment and the write into the active segment.

use std::sync::Arc;

use crate::batch::{
    BatchError, BatchHeader, Batches, RecordBatch, RecordBatchMut, UNCHECKED_PREFIX, patched_prefix,
};
use crate::config::TimestampType;
use crate::error::StorageError;
use crate::log::{AfterUnlock, AppendInfo, AppendOrigin, BatchInfo, Inner, PartitionLog};
use crate::producer_state::{ProducerStateManager, SequenceCheck};
use crate::validate::{ProduceRules, validate_produce_batch};

impl PartitionLog {
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
    /// On a compacted log a batch holding a record without a key is refused
    /// ([`StorageError::InvalidRecord`] with [`BatchError::MissingKey`]) and nothing is written.
    ///
    /// `records` is not copied when only the fields outside the CRC change (see
    /// `append_shared_locked`); a topic that recompresses or stamps `LogAppendTime`, or a batch
    /// whose `maxTimestamp` is not its largest record timestamp, copies it once to patch it.
    pub fn append(
        &self,
        records: &[u8],
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendInfo, StorageError> {
        let (max_message_bytes, segment_bytes, rules, target) =
            self.produce_rules(now_ms, AppendOrigin::Client);
        if target.is_some() {
            return self.append_with_origin(
                records.to_vec(),
                leader_epoch,
                now_ms,
                AppendOrigin::Client,
            );
        }
        let mut headers = validate_record_set(records, max_message_bytes, segment_bytes, &rules)?;
        let mut after = AfterUnlock::default();
        let result = {
            let mut inner = self.inner.lock();
            self.append_shared_locked(
                &mut inner,
                records,
                &mut headers,
                leader_epoch,
                now_ms,
                &mut after,
            )
        };
        after.run()?;
        result
    }

    /// [`PartitionLog::append`] on a buffer the caller hands over, patched in place.
    pub fn append_owned(
        &self,
        records: Vec<u8>,
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendInfo, StorageError> {
        self.append_with_origin(records, leader_epoch, now_ms, AppendOrigin::Client)
    }

    /// [`PartitionLog::append_owned`] with an explicit origin.
    pub fn append_with_origin(
        &self,
        records: Vec<u8>,
        leader_epoch: i32,
        now_ms: i64,
        origin: AppendOrigin,
    ) -> Result<AppendInfo, StorageError> {
        let (records, headers) = self.prepare(records, now_ms, origin)?;
        self.append_validated(records, headers, leader_epoch, now_ms, origin)
    }

    /// Checks every batch of a record set (outside the append lock: a compressed batch is
    /// decompressed to be checked), then recompresses the batches whose codec differs from a
    /// `compression.type` other than `producer` (Kafka's `LogValidator`). Returns the record
    /// set to write and its batch headers.
    pub(crate) fn prepare(
        &self,
        records: Vec<u8>,
        now_ms: i64,
        origin: AppendOrigin,
    ) -> Result<(Vec<u8>, Vec<BatchHeader>), StorageError> {
        let (max_message_bytes, segment_bytes, rules, target) = self.produce_rules(now_ms, origin);
        let headers = validate_record_set(&records, max_message_bytes, segment_bytes, &rules)?;
        match target {
            Some(codec) => crate::recompress::recompress(
                records,
                headers,
                codec,
                max_message_bytes,
                segment_bytes,
            ),
            None => Ok((records, headers)),
        }
    }

    /// What validating a record set takes from the topic's configuration: the largest batch,
    /// the segment size, the produce rules, and the codec to recompress to, if any.
    fn produce_rules(
        &self,
        now_ms: i64,
        origin: AppendOrigin,
    ) -> (usize, u64, ProduceRules, Option<crate::records::Codec>) {
        {
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
                    require_keys: config.cleanup_policy.compact,
                    from_client: origin == AppendOrigin::Client,
                },
                config.compression_type.codec(),
            )
        }
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
    pub(crate) fn append_locked(
        &self,
        inner: &mut Inner,
        records: &mut [u8],
        headers: &mut [BatchHeader],
        leader_epoch: i32,
        now_ms: i64,
        origin: AppendOrigin,
        after: &mut AfterUnlock,
    ) -> Result<AppendInfo, StorageError> {
        let placement = self.place(inner, records.len(), headers, now_ms, origin, after)?;
        let mut position = 0;
        let mut offset = placement.first_offset;
        for header in headers.iter_mut() {
            let mut batch = RecordBatchMut::parse(&mut records[position..])
                .map_err(|source| StorageError::CorruptRecord { position, source })?;
            batch.set_base_offset(offset);
            batch.set_partition_leader_epoch(leader_epoch);
            if let Some(time) = placement.log_append_time {
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
        let records: &[u8] = records;
        self.commit(
            inner,
            &placement,
            &[records],
            records,
            headers,
            leader_epoch,
            now_ms,
            after,
        )
    }

    /// [`PartitionLog::append_locked`] of a record set the caller keeps: when only the fields
    /// outside the CRC change (`CreateTime`, and every batch's `maxTimestamp` already the
    /// largest record timestamp, as Kafka's clients write it), each batch's patched prefix is
    /// written beside the rest of its bytes, which are not copied. Otherwise the set is copied
    /// and patched whole.
    fn append_shared_locked(
        &self,
        inner: &mut Inner,
        records: &[u8],
        headers: &mut [BatchHeader],
        leader_epoch: i32,
        now_ms: i64,
        after: &mut AfterUnlock,
    ) -> Result<AppendInfo, StorageError> {
        let origin = AppendOrigin::Client;
        let mut position = 0;
        let mut crc_changes = inner.config.message_timestamp_type == TimestampType::LogAppendTime;
        for header in headers.iter() {
            let stored = RecordBatch::parse(&records[position..])
                .map_err(|source| StorageError::CorruptRecord { position, source })?
                .max_timestamp();
            crc_changes |= stored != header.max_timestamp;
            position += header.size;
        }
        if crc_changes {
            let mut owned = records.to_vec();
            return self.append_locked(
                inner,
                &mut owned,
                headers,
                leader_epoch,
                now_ms,
                origin,
                after,
            );
        }
        let placement = self.place(inner, records.len(), headers, now_ms, origin, after)?;
        let mut prefixes = Vec::with_capacity(headers.len());
        let mut position = 0;
        let mut offset = placement.first_offset;
        for header in headers.iter_mut() {
            prefixes.push(patched_prefix(&records[position..], offset, leader_epoch));
            header.base_offset = offset;
            header.partition_leader_epoch = leader_epoch;
            offset = header.next_offset();
            position += header.size;
        }
        let mut parts: Vec<&[u8]> = Vec::with_capacity(2 * headers.len());
        let mut position = 0;
        for (header, prefix) in headers.iter().zip(&prefixes) {
            parts.push(prefix);
            parts.push(&records[position + UNCHECKED_PREFIX..position + header.size]);
            position += header.size;
        }
        self.commit(
            inner,
            &placement,
            &parts,
            records,
            headers,
            leader_epoch,
            now_ms,
            after,
        )
    }

    /// The checks of an append of `len` bytes under the lock (the log is open, the offsets
    /// fit, a client sends no control batch, the producers' sequences follow), then the segment
    /// roll the append needs. Nothing is written.
    fn place(
        &self,
        inner: &mut Inner,
        len: usize,
        headers: &[BatchHeader],
        now_ms: i64,
        origin: AppendOrigin,
        after: &mut AfterUnlock,
    ) -> Result<Placement, StorageError> {
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
        let aged = active.created_ms().is_some_and(|created| {
            now_ms.saturating_sub(created) >= inner.config.effective_segment_ms()
        });
        if active.size() > 0
            && (active.size() + len as u64 > segment_bytes
                || aged
                || !active.can_hold_offset(next_offset - 1))
        {
            self.roll(inner, now_ms, after)?;
        }

        let log_append_time = match inner.config.message_timestamp_type {
            TimestampType::LogAppendTime => Some(now_ms),
            TimestampType::CreateTime => None,
        };
        Ok(Placement {
            first_offset,
            next_offset,
            log_append_time,
        })
    }

    /// Writes the patched batches (`parts`, back to back; `records` holds the same batches for
    /// the producer state, patched or not) into the active segment and publishes them.
    #[allow(clippy::too_many_arguments)]
    fn commit(
        &self,
        inner: &mut Inner,
        placement: &Placement,
        parts: &[&[u8]],
        records: &[u8],
        headers: &[BatchHeader],
        leader_epoch: i32,
        now_ms: i64,
        after: &mut AfterUnlock,
    ) -> Result<AppendInfo, StorageError> {
        let Placement {
            first_offset,
            next_offset,
            log_append_time,
        } = *placement;
        self.assign_epochs(inner, std::iter::once((leader_epoch, first_offset)))?;
        let active = Arc::clone(inner.active());
        active.append_parts(parts, headers, inner.config.index_interval_bytes, now_ms)?;
        inner.log_end_offset = next_offset;
        let batches: Vec<BatchInfo> = headers.iter().map(BatchInfo::from_header).collect();
        crate::transactions::record_appended(&mut inner.producers, &active, records, headers)?;
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
}

/// Where an append's offsets start and end, and its `LogAppendTime` stamp if the topic uses it.
#[derive(Debug, Clone, Copy)]
struct Placement {
    first_offset: i64,
    next_offset: i64,
    log_append_time: Option<i64>,
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
/// A non-transactional batch of a producer whose transaction is open is refused
/// ([`StorageError::InvalidTxnState`]), as Kafka refuses it.
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
            if !h.is_transactional()
                && let Some(first) = current
                    .entry(h.producer_id)
                    .and_then(|e| e.current_txn_first_offset)
            {
                return Err(StorageError::InvalidTxnState {
                    producer_id: h.producer_id,
                    txn_first_offset: first,
                });
            }
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
