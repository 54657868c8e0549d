//! One cleaning pass over a log (Kafka's `LogCleaner.doClean`): map the dirty part's keys to
//! their latest offsets, then rewrite the sealed segments from the log start to the end of the
//! mapped range, a group of small segments at a time, swapping each cleaned segment in.

use std::collections::HashMap;
use std::sync::Arc;

use super::checkpoint::{self, CleanerCheckpoint};
use super::filter::{BatchAt, FilterContext, filter_batch};
use super::transactions::{Fate, Transactions};
use super::writer::{CleanedWriter, remove_files};
use super::{OffsetMap, Throttle};
use crate::batch::RecordBatch;
use crate::error::StorageError;
use crate::log::{LogSnapshot, PartitionLog};
use crate::records;
use crate::segment::Segment;

/// What one cleaning pass did.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct CleanOutcome {
    /// The first dirty offset the pass started from.
    pub first_dirty_offset: i64,
    /// The first dirty offset after the pass (where the offset map ended; the next pass
    /// continues there).
    pub first_dirty_offset_after: i64,
    /// Bytes of log read (mapping and rewriting).
    pub bytes_read: u64,
    /// Bytes of the segments rewritten, before.
    pub bytes_before: u64,
    /// Bytes of the segments that replaced them.
    pub bytes_after: u64,
    /// Records removed.
    pub records_removed: u64,
    /// Segments rewritten.
    pub segments_before: usize,
    /// Segments that replaced them.
    pub segments_after: usize,
    /// Keys in the offset map.
    pub map_entries: usize,
    /// Share of the offset map's slots in use, 0.0 to 1.0.
    pub map_utilization: f64,
    /// Earliest delete horizon of a tombstone kept in the cleaned part.
    pub earliest_delete_horizon_ms: Option<i64>,
}

fn aborted(log: &PartitionLog, reason: &'static str) -> StorageError {
    StorageError::CleaningAborted {
        dir: log.dir.clone(),
        reason,
    }
}

/// Runs `f` on every batch of `segment` from `start`; `f` returns false to stop.
fn for_each_batch(
    segment: &Segment,
    start: u64,
    mut f: impl FnMut(u64, &RecordBatch<'_>) -> Result<bool, StorageError>,
) -> Result<(), StorageError> {
    let end = segment.size();
    let mut failure = None;
    let mut stopped_by_f = false;
    let outcome = segment.scan(start, end, false, |position, batch| {
        match f(position, batch) {
            Ok(true) => Ok(()),
            Ok(false) => {
                stopped_by_f = true;
                Err(String::new())
            }
            Err(e) => {
                failure = Some(e);
                Err(String::new())
            }
        }
    })?;
    if let Some(e) = failure {
        return Err(e);
    }
    match outcome.stopped {
        Some(reason) if !stopped_by_f => Err(StorageError::CorruptBatchInLog {
            path: segment.log_path().to_path_buf(),
            position: outcome.valid_end,
            offset: segment.base_offset(),
            reason,
        }),
        _ => Ok(()),
    }
}

impl PartitionLog {
    /// One cleaning pass (see the `cleaner` module docs). `cleanable_end` is the offset the
    /// pass must not clean at or past (the high watermark); `now_ms` decides
    /// `min.compaction.lag.ms` and tombstones' delete horizons; `map` bounds the keys one
    /// pass handles (a dirty part with more keys is cleaned up to where the map filled, and the
    /// next pass goes on from there); `throttle` paces the I/O.
    ///
    /// A pass that finds the log closed, truncated or trimmed meanwhile (or another pass of the
    /// same log running) stops with [`StorageError::CleaningAborted`], its files removed and the
    /// log as it was. Readers never wait for a pass; appends wait only for each swap.
    pub fn clean(
        &self,
        cleanable_end: i64,
        now_ms: i64,
        map: &mut OffsetMap,
        throttle: &Throttle,
    ) -> Result<CleanOutcome, StorageError> {
        let Some(_pass) = self.cleaning.try_lock() else {
            return Err(aborted(self, "another cleaning pass of the log is running"));
        };
        let (config, generation, producer_last_batches) = {
            let inner = self.inner.lock();
            if inner.closed {
                return Err(aborted(self, "the log is closed"));
            }
            (
                inner.config.clone(),
                inner.generation,
                inner.producers.last_batch_offsets(),
            )
        };
        let result = self.clean_pass(
            cleanable_end,
            now_ms,
            map,
            throttle,
            &config,
            generation,
            &producer_last_batches,
        );
        match result {
            Err(e)
                if !matches!(e, StorageError::CleaningAborted { .. })
                    && self.changed(generation) =>
            {
                tracing::debug!(dir = %self.dir.display(), error = %e, "cleaning pass failed on a log changed meanwhile");
                Err(aborted(
                    self,
                    "the log was truncated, trimmed or closed meanwhile",
                ))
            }
            other => other,
        }
    }

    /// Whether the log was closed, truncated or trimmed since `generation` (each bumps it).
    fn changed(&self, generation: u64) -> bool {
        self.inner.lock().generation != generation
    }

    fn check_unchanged(&self, generation: u64) -> Result<(), StorageError> {
        if self.changed(generation) {
            return Err(aborted(
                self,
                "the log was truncated, trimmed or closed meanwhile",
            ));
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn clean_pass(
        &self,
        cleanable_end: i64,
        now_ms: i64,
        map: &mut OffsetMap,
        throttle: &Throttle,
        config: &crate::LogConfig,
        generation: u64,
        producer_last_batches: &HashMap<i64, i64>,
    ) -> Result<CleanOutcome, StorageError> {
        let snap = self.snapshot.load_full();
        let range = self.cleanable_range_of(&snap, config, cleanable_end, now_ms)?;
        let mut outcome = CleanOutcome {
            first_dirty_offset: range.first_dirty_offset,
            ..CleanOutcome::default()
        };
        let transactions = Transactions::collect(&snap, cleanable_end)?;
        map.clear();
        let mapped_end = self.build_offset_map(
            &snap,
            range.first_dirty_offset,
            range.first_uncleanable_offset,
            map,
            &transactions,
            throttle,
            generation,
            &mut outcome,
        )?;
        outcome.first_dirty_offset_after = mapped_end;
        outcome.map_entries = map.len();
        outcome.map_utilization = map.utilization();

        let ctx = FilterContext {
            map,
            mapped_end,
            now_ms,
            delete_retention_ms: config.delete_retention_ms,
            producer_last_batches,
            transactions: &transactions,
        };
        let mut horizon = None;
        for group in groups(&snap, mapped_end, config.effective_segment_bytes()) {
            self.check_unchanged(generation)?;
            self.clean_group(
                &group,
                &ctx,
                throttle,
                generation,
                now_ms,
                &mut outcome,
                &mut horizon,
            )?;
        }
        outcome.earliest_delete_horizon_ms = horizon;
        checkpoint::write(
            &self.dir,
            CleanerCheckpoint {
                first_dirty_offset: mapped_end,
                earliest_delete_horizon_ms: horizon,
            },
        )?;
        tracing::info!(
            dir = %self.dir.display(),
            first_dirty_offset = outcome.first_dirty_offset,
            first_dirty_offset_after = mapped_end,
            bytes_before = outcome.bytes_before,
            bytes_after = outcome.bytes_after,
            records_removed = outcome.records_removed,
            segments_before = outcome.segments_before,
            segments_after = outcome.segments_after,
            "cleaned the log"
        );
        Ok(outcome)
    }

    /// Maps the keys of `[first_dirty, upper)` to their latest offsets until the map is full;
    /// returns the offset after the last record mapped (or `upper` when all were).
    #[allow(clippy::too_many_arguments)]
    fn build_offset_map(
        &self,
        snap: &LogSnapshot,
        first_dirty: i64,
        upper: i64,
        map: &mut OffsetMap,
        transactions: &Transactions,
        throttle: &Throttle,
        generation: u64,
        outcome: &mut CleanOutcome,
    ) -> Result<i64, StorageError> {
        if first_dirty >= upper {
            return Ok(first_dirty);
        }
        let segments = &snap.segments;
        let mut mapped_end = first_dirty;
        let mut full = false;
        for (i, segment) in segments.iter().enumerate().take(segments.len() - 1) {
            if segment.base_offset() >= upper || full {
                break;
            }
            if segments[i + 1].base_offset() <= first_dirty {
                continue;
            }
            self.check_unchanged(generation)?;
            let Some((start, _)) = segment.find_batch(first_dirty, segment.size())? else {
                continue;
            };
            let path = segment.log_path();
            let mut past_upper = false;
            for_each_batch(segment, start, |position, batch| {
                if batch.base_offset() >= upper {
                    past_upper = true;
                    return Ok(false);
                }
                // Aborted data and open transactions' data never supersede anything.
                if !batch.is_control() && transactions.fate(&batch.header()) == Fate::Visible {
                    let decoded =
                        records::decode(batch).map_err(|e| StorageError::CorruptBatchInLog {
                            path: path.to_path_buf(),
                            position,
                            offset: batch.base_offset(),
                            reason: e.to_string(),
                        })?;
                    for r in decoded.iter().filter(|r| r.offset >= first_dirty) {
                        if r.offset >= upper {
                            past_upper = true;
                            return Ok(false);
                        }
                        if let Some(key) = &r.key
                            && !map.put(key, r.offset)
                        {
                            full = true;
                            return Ok(false);
                        }
                        mapped_end = r.offset + 1;
                    }
                }
                mapped_end = mapped_end.max(batch.next_offset().min(upper));
                Ok(true)
            })?;
            let read = segment.size() - start;
            outcome.bytes_read += read;
            throttle.acquire(read);
            if past_upper {
                break;
            }
        }
        Ok(if full { mapped_end } else { upper })
    }

    /// Writes the cleaned segment of `group` and swaps it in.
    #[allow(clippy::too_many_arguments)]
    fn clean_group(
        &self,
        group: &[Arc<Segment>],
        ctx: &FilterContext<'_>,
        throttle: &Throttle,
        generation: u64,
        now_ms: i64,
        outcome: &mut CleanOutcome,
        horizon: &mut Option<i64>,
    ) -> Result<(), StorageError> {
        let interval = self.config().index_interval_bytes;
        let mut writer = CleanedWriter::create(&self.dir, group[0].base_offset(), interval)?;
        let paths = writer.paths().clone();
        let written = (|| {
            let mut accounted = 0;
            for segment in group {
                writer.add_aborted(segment.aborted_txns()?);
                let path = segment.log_path();
                for_each_batch(segment, 0, |position, batch| {
                    filter_batch(
                        BatchAt { path, position },
                        batch,
                        ctx,
                        &mut writer,
                        outcome,
                        horizon,
                    )?;
                    Ok(true)
                })?;
                outcome.bytes_read += segment.size();
                throttle.acquire(segment.size() + writer.size() - accounted);
                accounted = writer.size();
                self.check_unchanged(generation)?;
            }
            writer.finish()
        })();
        let cleaned = match written {
            Ok(paths) => paths,
            Err(e) => {
                remove_files(&paths)?;
                return Err(e);
            }
        };
        let mut inner = self.inner.lock();
        let at = inner
            .segments
            .iter()
            .position(|s| Arc::ptr_eq(s, &group[0]));
        let intact = !inner.closed
            && inner.generation == generation
            && at.is_some_and(|at| {
                at + group.len() < inner.segments.len()
                    && group
                        .iter()
                        .zip(&inner.segments[at..])
                        .all(|(a, b)| Arc::ptr_eq(a, b))
            });
        let Some(at) = at.filter(|_| intact) else {
            drop(inner);
            remove_files(&cleaned)?;
            return Err(aborted(
                self,
                "the log was truncated, trimmed or closed meanwhile",
            ));
        };
        let before: u64 = group.iter().map(|s| s.size()).sum();
        let segment = self.swap_in_cleaned(&mut inner, at, group, &cleaned, now_ms)?;
        outcome.bytes_before += before;
        outcome.bytes_after += segment.size();
        outcome.segments_before += group.len();
        outcome.segments_after += 1;
        Ok(())
    }
}

/// The sealed segments from the log start to the last one starting below `mapped_end`, in
/// groups of consecutive segments whose sizes add up to at most `max_bytes` and whose offsets
/// the first one's indexes can address (Kafka's `groupSegmentsBySize`).
fn groups(snap: &LogSnapshot, mapped_end: i64, max_bytes: u64) -> Vec<Vec<Arc<Segment>>> {
    let segments = &snap.segments;
    let sealed = segments.len() - 1;
    let mut groups: Vec<Vec<Arc<Segment>>> = Vec::new();
    let mut size = 0u64;
    for i in 0..sealed {
        let segment = &segments[i];
        if snap.below_start(i) {
            continue;
        }
        if segment.base_offset() >= mapped_end {
            break;
        }
        let last_offset = segments[i + 1].base_offset() - 1;
        let joins = groups.last().is_some_and(|g| {
            size + segment.size() <= max_bytes && g[0].can_hold_offset(last_offset)
        });
        if joins {
            size += segment.size();
            groups
                .last_mut()
                .expect("a group")
                .push(Arc::clone(segment));
        } else {
            size = segment.size();
            groups.push(vec![Arc::clone(segment)]);
        }
    }
    groups
}
