//! Opening a partition directory: file inventory, segment loading and recovery, the log start
//! offset checkpoint, and the producer-state rebuild, which also rebuilds the `.txnindex` of
//! recovered segments and of segments whose `.txnindex` is missing or damaged (an entry needs
//! the first offset of its transaction and the transactions open after it, which only a replay
//! of the log in order knows).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use parking_lot::Mutex;

use crate::checkpoint::{self, TEMP_SUFFIX};
use crate::config::LogConfig;
use crate::error::{StorageError, io_err};
use crate::log::{Inner, LogSnapshot, PartitionLog};
use crate::producer_state::ProducerStateManager;
use crate::segment::{self, INDEX_SUFFIX, LOG_SUFFIX, Segment, TIME_INDEX_SUFFIX};
use crate::txn_index::TXN_INDEX_SUFFIX;

pub(crate) const SNAPSHOT_SUFFIX: &str = ".snapshot";
/// Suffixes Kafka leaves behind for files in the middle of a delete, clean or swap.
const STRAY_SUFFIXES: [&str; 4] = [TEMP_SUFFIX, ".deleted", ".cleaned", ".swap"];

/// Base offset from a file name `<20 digits><suffix>`.
pub(crate) fn base_offset_of(name: &str, suffix: &str) -> Option<i64> {
    let digits = name.strip_suffix(suffix)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// What the directory holds.
#[derive(Debug, Default)]
struct Inventory {
    segments: Vec<i64>,
    snapshots: Vec<i64>,
}

fn take_inventory(dir: &Path) -> Result<Inventory, StorageError> {
    let mut inv = Inventory::default();
    let mut index_files: Vec<(i64, PathBuf)> = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err("list", dir))? {
        let entry = entry.map_err(io_err("list", dir))?;
        let path = entry.path();
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if STRAY_SUFFIXES.iter().any(|s| name.ends_with(s)) {
            tracing::warn!(file = %path.display(), "deleting a file left over by an interrupted operation");
            fs::remove_file(&path).map_err(io_err("delete", &path))?;
        } else if let Some(base) = base_offset_of(&name, LOG_SUFFIX) {
            inv.segments.push(base);
        } else if let Some(base) = base_offset_of(&name, SNAPSHOT_SUFFIX) {
            inv.snapshots.push(base);
        } else if let Some(base) = base_offset_of(&name, INDEX_SUFFIX)
            .or_else(|| base_offset_of(&name, TIME_INDEX_SUFFIX))
            .or_else(|| base_offset_of(&name, TXN_INDEX_SUFFIX))
        {
            index_files.push((base, path));
        }
    }
    inv.segments.sort_unstable();
    inv.snapshots.sort_unstable();
    for (base, path) in index_files {
        if inv.segments.binary_search(&base).is_err() {
            tracing::warn!(file = %path.display(), "deleting an index without its log segment");
            fs::remove_file(&path).map_err(io_err("delete", &path))?;
        }
    }
    Ok(inv)
}

impl PartitionLog {
    /// Opens (creating if absent) the partition directory `dir` and recovers it.
    ///
    /// Sealed segments load their indexes (rebuilt when missing or inconsistent); the last
    /// segment is scanned batch by batch with CRC checks and truncated at the first torn or
    /// corrupt batch, its indexes rebuilt. A damaged sealed segment is recovered the same way,
    /// and the segments after it are deleted, since the log must stay contiguous. The log end
    /// offset is the offset after the last good batch.
    pub fn open(dir: &Path, config: LogConfig, now_ms: i64) -> Result<PartitionLog, StorageError> {
        Self::open_with_recovery_point(dir, config, now_ms, None)
    }

    /// [`PartitionLog::open`] knowing the log's recovery point from before the restart (Kafka's
    /// `recovery-point-offset-checkpoint`, see [`crate::OffsetCheckpoint`]). After an unclean
    /// shutdown it decides what is scanned: sealed segments not wholly below it are CRC-checked
    /// in full (their fdatasync may not have happened), and the last segment is not, when the
    /// cheap checks pass and all of its data lies below it. After a clean shutdown it changes
    /// nothing. The recovery point must come from [`PartitionLog::recovery_point`] of this log.
    pub fn open_with_recovery_point(
        dir: &Path,
        config: LogConfig,
        now_ms: i64,
        recovery_point: Option<i64>,
    ) -> Result<PartitionLog, StorageError> {
        if !dir.is_dir() {
            fs::create_dir_all(dir).map_err(io_err("create", dir))?;
            // The new directory's entry must be durable before files in it are relied on.
            if let Some(parent) = dir.parent() {
                checkpoint::sync_dir(parent)?;
            }
        }
        // A cleaning pass interrupted mid-swap is completed first, so the inventory sees
        // whole segments only.
        crate::cleaner::swap::complete_interrupted_swaps(dir)?;
        let inv = take_inventory(dir)?;
        let checkpointed_start = checkpoint::read_log_start_offset(dir)?;
        let clean_shutdown = checkpoint::take_clean_shutdown_marker(dir)?;
        let interval = config.index_interval_bytes;

        let mut segments: Vec<Arc<Segment>> = Vec::with_capacity(inv.segments.len().max(1));
        let count = inv.segments.len();
        let mut discard_from = None;
        let mut recovered = Vec::new();
        for (i, &base) in inv.segments.iter().enumerate() {
            let segment = Segment::open(dir, base)?;
            let is_last = i + 1 == count;
            // Whether every offset of the segment is known to be on disk (below the recovery
            // point), which a sealed segment's end (the next base) or the last one's loaded
            // end tells.
            let durable = |end: i64| recovery_point.is_some_and(|rp| end <= rp);
            let cut = if is_last {
                // After a clean shutdown the last segment only needs the cheap checks; after a
                // crash it is scanned and CRC-checked in full, unless the recovery point says
                // all of it was on disk.
                let loaded = if clean_shutdown || recovery_point.is_some() {
                    match segment.load_active(interval, now_ms)? {
                        Ok(()) if !clean_shutdown && !durable(segment.next_offset()) => {
                            Err("the log was not closed cleanly".to_string())
                        }
                        other => other,
                    }
                } else {
                    Err("the log was not closed cleanly".to_string())
                };
                match loaded {
                    Ok(()) => None,
                    Err(reason) => {
                        if clean_shutdown {
                            tracing::warn!(
                                segment = %segment.log_path().display(),
                                %reason,
                                "recovering the active segment despite a clean shutdown"
                            );
                        }
                        recovered.push(i);
                        segment.recover(interval, true, now_ms)?
                    }
                }
            } else {
                let unflushed =
                    !clean_shutdown && recovery_point.is_some() && !durable(inv.segments[i + 1]);
                let loaded = if unflushed {
                    Err("it lies above the recovery point of a log not closed cleanly".to_string())
                } else {
                    segment.load(interval)?
                };
                match loaded {
                    Ok(()) => None,
                    Err(reason) => {
                        tracing::warn!(
                            segment = %segment.log_path().display(),
                            %reason,
                            "recovering a sealed segment"
                        );
                        recovered.push(i);
                        segment.recover(interval, true, now_ms)?
                    }
                }
            };
            if let Some(previous) = segments.last()
                && previous.next_offset() > base
            {
                return Err(StorageError::CorruptLogFile {
                    path: segment.log_path().to_path_buf(),
                    reason: format!(
                        "segment starts at offset {base} but the previous one ends at {}",
                        previous.next_offset()
                    ),
                });
            }
            let truncated = cut.is_some();
            if let Some((bytes, reason)) = cut {
                tracing::warn!(
                    segment = %segment.log_path().display(),
                    truncated_bytes = bytes,
                    log_end_offset = segment.next_offset(),
                    %reason,
                    "truncated a torn or corrupt tail"
                );
            }
            if !is_last && !truncated {
                // Sealed: its files need not stay open (see `open_files`).
                segment.unpin_files();
            }
            segments.push(Arc::new(segment));
            if truncated && !is_last {
                discard_from = Some(i + 1);
                break;
            }
        }
        if let Some(from) = discard_from {
            for &base in &inv.segments[from..] {
                let segment = Segment::open(dir, base)?;
                tracing::warn!(
                    segment = %segment.log_path().display(),
                    "deleting a segment that follows a truncated one"
                );
                // Nothing reads a log being opened: no delay.
                segment::delete_segments(dir, [&segment], 0)?;
            }
        }
        if segments.is_empty() {
            let base = checkpointed_start.unwrap_or(0);
            segments.push(Arc::new(Segment::create(dir, base)?));
        }

        let first_base = segments[0].base_offset();
        let log_end_offset = segments[segments.len() - 1].next_offset();
        let mut log_start_offset = checkpointed_start.unwrap_or(first_base).max(first_base);
        if log_start_offset > log_end_offset {
            tracing::warn!(
                dir = %dir.display(),
                log_start_offset,
                log_end_offset,
                "the log start offset checkpoint is beyond the log end; using the log end"
            );
            log_start_offset = log_end_offset;
        }

        // What recovery rewrote goes to disk now; then everything in the log is durable and
        // the recovery point starts at the log end.
        for (i, segment) in segments.iter().enumerate() {
            if recovered.contains(&i) {
                segment.sync()?;
            }
            segment.mark_durable(segment.sync_point());
        }
        let rebuild: Vec<usize> = (0..segments.len())
            .filter(|i| recovered.contains(i) || segments[*i].txn_index_damaged())
            .collect();
        let segments = Arc::new(segments);
        let producers =
            rebuild_producer_state(dir, &inv.snapshots, &segments, log_end_offset, &rebuild)?;
        let txn_unstable = producers.has_unstable();
        let epochs = crate::leader_epoch::load(dir, &segments, log_start_offset, log_end_offset)?;
        let active_size = segments[segments.len() - 1].size();
        let inner = Inner {
            config,
            segments: Arc::clone(&segments),
            log_start_offset,
            log_end_offset,
            unflushed_messages: 0,
            last_flush_ms: now_ms,
            unsynced: Vec::new(),
            producers,
            epochs,
            closed: false,
            generation: 0,
            markers_written: std::collections::HashMap::new(),
        };
        Ok(PartitionLog {
            dir: dir.to_path_buf(),
            snapshot: ArcSwap::from_pointee(LogSnapshot {
                segments,
                log_start_offset,
                log_end_offset,
                active_size,
                txn_unstable,
            }),
            inner: Mutex::new(inner),
            cleaning: Mutex::new(()),
        })
    }
}

fn snapshot_path(dir: &Path, offset: i64) -> PathBuf {
    dir.join(segment::file_name(offset, SNAPSHOT_SUFFIX))
}

pub(crate) fn list_snapshot_offsets(dir: &Path) -> Result<Vec<i64>, StorageError> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err("list", dir))? {
        let entry = entry.map_err(io_err("list", dir))?;
        if let Some(offset) = entry
            .file_name()
            .to_str()
            .and_then(|n| base_offset_of(n, SNAPSHOT_SUFFIX))
        {
            out.push(offset);
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// Writes `<offset>.snapshot` (the producer state after every offset below `offset`) and keeps
/// only it and the one before.
pub(crate) fn write_producer_snapshot(
    dir: &Path,
    offset: i64,
    producers: &ProducerStateManager,
) -> Result<(), StorageError> {
    let path = snapshot_path(dir, offset);
    let tmp = dir.join(format!(
        "{}{TEMP_SUFFIX}",
        segment::file_name(offset, SNAPSHOT_SUFFIX)
    ));
    checkpoint::write_atomically(dir, &path, &tmp, &producers.encode())?;
    let existing = list_snapshot_offsets(dir)?;
    let keep_from = existing.iter().rposition(|&o| o < offset);
    for (i, &old) in existing.iter().enumerate() {
        if old < offset && Some(i) != keep_from {
            let p = snapshot_path(dir, old);
            fs::remove_file(&p).map_err(io_err("delete", &p))?;
        }
    }
    Ok(())
}

/// Deletes snapshots taken after `offset` (they describe data that is gone).
pub(crate) fn delete_snapshots_after(dir: &Path, offset: i64) -> Result<(), StorageError> {
    for old in list_snapshot_offsets(dir)? {
        if old > offset {
            let p = snapshot_path(dir, old);
            fs::remove_file(&p).map_err(io_err("delete", &p))?;
        }
    }
    Ok(())
}

/// Loads the newest readable snapshot at or below `log_end_offset` and replays the batches
/// after it (headers, and the records of markers). The `.txnindex` of the segments at the
/// indexes `rebuild` is rewritten from the replay: the snapshot is then the newest at or below
/// the first of them, or none (a replay from the log start).
pub(crate) fn rebuild_producer_state(
    dir: &Path,
    snapshots: &[i64],
    segments: &[Arc<Segment>],
    log_end_offset: i64,
    rebuild: &[usize],
) -> Result<ProducerStateManager, StorageError> {
    let mut state = ProducerStateManager::new();
    let mut replay_from = segments.first().map_or(0, |s| s.base_offset());
    let usable_to = rebuild
        .iter()
        .filter_map(|&i| segments.get(i).map(|s| s.base_offset()))
        .min()
        .unwrap_or(log_end_offset);
    for &offset in snapshots.iter().rev() {
        let path = snapshot_path(dir, offset);
        if offset > log_end_offset {
            tracing::warn!(file = %path.display(), log_end_offset, "deleting a producer snapshot beyond the log end");
            fs::remove_file(&path).map_err(io_err("delete", &path))?;
            continue;
        }
        if offset > usable_to {
            continue;
        }
        let bytes = fs::read(&path).map_err(io_err("read", &path))?;
        match ProducerStateManager::decode(&bytes) {
            Ok(s) => {
                state = s;
                replay_from = replay_from.max(offset);
                break;
            }
            Err(reason) => {
                tracing::warn!(file = %path.display(), %reason, "ignoring a damaged producer snapshot");
            }
        }
    }
    for (i, segment) in segments.iter().enumerate() {
        let rebuilding = rebuild.contains(&i);
        let mut aborted = Vec::new();
        let start = if segment.next_offset() <= replay_from {
            None
        } else {
            segment
                .find_batch(replay_from, segment.size())?
                .map(|(position, _)| position)
        };
        if let Some(start) = start {
            segment.scan(start, segment.size(), false, |_, batch| {
                let header = batch.header();
                if header.base_offset >= replay_from
                    && let Some(entry) =
                        crate::transactions::apply_batch(&mut state, &header, batch.as_bytes())
                {
                    aborted.push(entry);
                }
                Ok(())
            })?;
        }
        if rebuilding {
            tracing::info!(segment = %segment.log_path().display(), entries = aborted.len(), "rebuilt the transaction index");
            segment.rewrite_txn_index(&aborted)?;
        }
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_segment_names() {
        assert_eq!(
            base_offset_of("00000000000000000042.log", LOG_SUFFIX),
            Some(42)
        );
        assert_eq!(
            base_offset_of("00000000000000000042.index", LOG_SUFFIX),
            None
        );
        assert_eq!(base_offset_of("42.log", LOG_SUFFIX), None);
        assert_eq!(base_offset_of("0000000000000000004x.log", LOG_SUFFIX), None);
        assert_eq!(
            base_offset_of("99999999999999999999.log", LOG_SUFFIX),
            None,
            "overflows i64"
        );
    }
}
