//! Which records of a batch a cleaning pass keeps (Kafka's `LogCleaner.shouldRetainRecord` and
//! `MemoryRecords.filterTo`), and writing the survivors.
//!
//! A record below the end of the mapped range is kept when its key is not in the map or its
//! offset is at least the map's offset for the key; a tombstone (null value) that is the latest
//! for its key is kept until its batch's delete horizon passed. Records without a key are
//! removed, as Kafka removes them (a log made compacted after it took keyless records). Records
//! at or past the mapped end are kept: the next pass maps them.
//!
//! Batches: one whose records all survive is copied byte for byte, unless it needs a delete
//! horizon (KIP-534: the first pass that keeps a tombstone writes `now + delete.retention.ms`
//! into the batch); otherwise the survivors are written as a batch with the original header
//! fields (base offset, last offset, producer id, epoch and base sequence, leader epoch,
//! timestamp type) in the original codec. A batch left empty is dropped, unless it is the
//! latest batch of an idempotent producer: then an empty batch keeps its header, so the
//! producer's sequence state survives a rebuild from the log, as Kafka does.
//!
//! Transactions (see `transactions`): committed data is filtered like any other, aborted data
//! removed (an aborted batch that is its producer's latest stays as an empty batch), data of an
//! open transaction and control batches (markers) kept as written.

use std::collections::HashMap;
use std::path::Path;

use super::OffsetMap;
use super::pass::CleanOutcome;
use super::transactions::{Fate, Transactions};
use super::writer::CleanedWriter;
use crate::batch::{BatchHeader, RecordBatch};
use crate::error::StorageError;
use crate::records::{self, BatchSpec, Codec, Record};

/// What the filter decides with.
#[derive(Debug)]
pub(crate) struct FilterContext<'a> {
    pub(crate) map: &'a OffsetMap,
    /// Records at or past this offset were not mapped and are kept.
    pub(crate) mapped_end: i64,
    pub(crate) now_ms: i64,
    pub(crate) delete_retention_ms: i64,
    /// Producer id -> last offset of its latest batch.
    pub(crate) producer_last_batches: &'a HashMap<i64, i64>,
    pub(crate) transactions: &'a Transactions,
}

impl FilterContext<'_> {
    fn keep(&self, record: &Record, tombstones_expired: bool) -> bool {
        if record.offset >= self.mapped_end {
            return true;
        }
        let Some(key) = &record.key else {
            return false;
        };
        let latest = self.map.get(key).is_none_or(|o| record.offset >= o);
        latest && (record.value.is_some() || !tombstones_expired)
    }

    fn is_producers_last(&self, header: &BatchHeader) -> bool {
        header.producer_id >= 0
            && self.producer_last_batches.get(&header.producer_id) == Some(&header.last_offset())
    }
}

/// Where a batch being cleaned lies, for errors.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchAt<'a> {
    pub(crate) path: &'a Path,
    pub(crate) position: u64,
}

impl BatchAt<'_> {
    fn corrupt(&self, batch: &RecordBatch<'_>, e: crate::batch::BatchError) -> StorageError {
        StorageError::CorruptBatchInLog {
            path: self.path.to_path_buf(),
            position: self.position,
            offset: batch.base_offset(),
            reason: e.to_string(),
        }
    }
}

/// Filters one batch into `writer`; tracks in `outcome` what was removed and the earliest
/// delete horizon kept in `horizon`.
pub(crate) fn filter_batch(
    at: BatchAt<'_>,
    batch: &RecordBatch<'_>,
    ctx: &FilterContext<'_>,
    writer: &mut CleanedWriter,
    outcome: &mut CleanOutcome,
    horizon: &mut Option<i64>,
) -> Result<(), StorageError> {
    let header = batch.header();
    let fate = ctx.transactions.fate(&header);
    if header.is_control() || fate == Fate::Open || header.base_offset >= ctx.mapped_end {
        return writer.append(batch.as_bytes(), &header);
    }
    let records = records::decode(batch).map_err(|e| at.corrupt(batch, e))?;
    let existing_horizon = records::delete_horizon(&header);
    let expired = existing_horizon.is_some_and(|h| ctx.now_ms >= h);
    let count = records.len();
    let kept: Vec<Record> = records
        .into_iter()
        .filter(|r| fate == Fate::Visible && ctx.keep(r, expired))
        .collect();
    let removed = count - kept.len();
    outcome.records_removed += removed as u64;
    let has_tombstone = kept.iter().any(|r| r.value.is_none());
    let needs_horizon = has_tombstone && existing_horizon.is_none();
    let mut note_horizon = |h: Option<i64>| {
        if has_tombstone && let Some(h) = h {
            *horizon = Some(horizon.map_or(h, |current| current.min(h)));
        }
    };
    if kept.is_empty() {
        if !ctx.is_producers_last(&header) {
            return Ok(());
        }
        if count == 0 {
            return writer.append(batch.as_bytes(), &header);
        }
        let mut spec = BatchSpec::of(&header);
        spec.delete_horizon_ms = None;
        return write_encoded(at, writer, batch, &spec, &[], Codec::None);
    }
    if removed == 0 && !needs_horizon {
        note_horizon(existing_horizon);
        return writer.append(batch.as_bytes(), &header);
    }
    let mut spec = BatchSpec::of(&header);
    if needs_horizon {
        spec.delete_horizon_ms = Some(ctx.now_ms.saturating_add(ctx.delete_retention_ms.max(0)));
    }
    note_horizon(spec.delete_horizon_ms);
    let codec = Codec::from_id(batch.compression()).unwrap_or(Codec::None);
    write_encoded(at, writer, batch, &spec, &kept, codec)
}

fn write_encoded(
    at: BatchAt<'_>,
    writer: &mut CleanedWriter,
    batch: &RecordBatch<'_>,
    spec: &BatchSpec,
    records: &[Record],
    codec: Codec,
) -> Result<(), StorageError> {
    let bytes = records::encode(spec, records, codec).map_err(|e| at.corrupt(batch, e))?;
    let header = BatchHeader::parse(&bytes).map_err(|e| at.corrupt(batch, e))?;
    writer.append(&bytes, &header)
}
