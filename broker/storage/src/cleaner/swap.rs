//! Replacing old segments with a cleaned one, safely across crashes (Kafka's `.cleaned` /
//! `.swap` protocol).
//!
//! 1. The cleaned segment is written as `<base>.{index,timeindex,txnindex,log}.cleaned` and
//!    fsynced.
//! 2. Under the log's lock, once the pass is known to still match the log, the files are
//!    renamed to `.swap`, indexes first; the log's `.swap` name, made durable by a directory
//!    fsync, commits the swap.
//! 3. The old segments other than the one at `<base>` are retired (renamed to `.deleted` names
//!    and deleted after `file.delete.delay.ms`, see `segment::delete_segments`), the `.swap`
//!    files renamed to their final names (indexes first, the log last, replacing the old
//!    `<base>` files), and the directory fsynced.
//!
//! On open, [`complete_interrupted_swaps`] finishes what a crash interrupted: without a
//! `<base>.log.swap` the swap never committed, and the leftover files are deleted (the old
//! segments are whole); with one it is completed: old segments whose base offset lies inside
//! the swap segment's offsets are deleted and the `.swap` files renamed (old segments already
//! retired are no longer `.log` files; their `.deleted` files go with the inventory). Readers
//! holding the old segments meanwhile keep reading them: their files are pinned open before any
//! rename.

use std::fs::{self, File};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::writer::{SWAP_SUFFIX, remove_files, segment_paths};
use crate::batch::{BatchHeader, RECORD_BATCH_OVERHEAD};
use crate::checkpoint::sync_dir;
use crate::error::{StorageError, io_err};
use crate::log::{Inner, PartitionLog};
use crate::recovery::base_offset_of;
use crate::segment::{LOG_SUFFIX, Segment, delete_segments};

fn rename(from: &Path, to: &Path) -> Result<(), StorageError> {
    fs::rename(from, to).map_err(io_err("rename", from))
}

impl PartitionLog {
    /// Steps 2 and 3 of the protocol, under the lock: replaces `old` (consecutive segments
    /// starting at index `at` of the log) with the cleaned files. Returns the new segment.
    pub(crate) fn swap_in_cleaned(
        &self,
        inner: &mut Inner,
        at: usize,
        old: &[Arc<Segment>],
        cleaned: &[PathBuf; 4],
        now_ms: i64,
    ) -> Result<Arc<Segment>, StorageError> {
        let base = old[0].base_offset();
        for segment in old {
            // From here on the old segments must never reopen their files by name.
            segment.pin_files()?;
        }
        let swap = segment_paths(&self.dir, base, SWAP_SUFFIX);
        for (from, to) in cleaned.iter().zip(&swap) {
            rename(from, to)?;
        }
        sync_dir(&self.dir)?;
        // Committed: from here the files on disk and the segments in memory disagree until the
        // end. A failure takes the log offline (as Kafka takes a failing log directory
        // offline); the next open completes the swap from the files.
        let finished = (|| {
            delete_segments(
                &self.dir,
                old[1..].iter().map(|s| &**s),
                inner.config.file_delete_delay_ms,
            )?;
            let target = segment_paths(&self.dir, base, "");
            for (from, to) in swap.iter().zip(&target) {
                rename(from, to)?;
            }
            old[0].mark_replaced();
            sync_dir(&self.dir)?;
            open_sealed(&self.dir, base, inner.config.index_interval_bytes, now_ms)
        })();
        let segment = match finished {
            Ok(segment) => Arc::new(segment),
            Err(e) => {
                tracing::error!(dir = %self.dir.display(), error = %e, "a cleaner swap failed after it committed; the log is closed until it is opened again");
                // Closed without a new generation: the pass reports this error, not an abort.
                inner.closed = true;
                return Err(e);
            }
        };
        Arc::make_mut(&mut inner.segments).splice(at..at + old.len(), [Arc::clone(&segment)]);
        inner
            .unsynced
            .retain(|s| !old.iter().any(|o| Arc::ptr_eq(o, s)));
        self.publish(inner);
        Ok(segment)
    }
}

/// Opens a sealed segment just written and fsynced (its indexes rebuilt if they disagree).
fn open_sealed(
    dir: &Path,
    base: i64,
    index_interval_bytes: usize,
    now_ms: i64,
) -> Result<Segment, StorageError> {
    let segment = Segment::open(dir, base)?;
    if let Err(reason) = segment.load(index_interval_bytes)? {
        tracing::debug!(segment = %segment.log_path().display(), %reason, "rebuilding the indexes of a cleaned segment");
        segment.recover(index_interval_bytes, true, now_ms)?;
        segment.sync()?;
    }
    segment.mark_durable(segment.sync_point());
    segment.unpin_files();
    Ok(segment)
}

/// The offset after the last whole batch of a log file (its base offset when it holds none).
fn next_offset_of(path: &Path, base: i64) -> Result<i64, StorageError> {
    let file = File::open(path).map_err(io_err("open", path))?;
    let len = file.metadata().map_err(io_err("stat", path))?.len();
    let mut position = 0u64;
    let mut next = base;
    let mut buf = [0u8; RECORD_BATCH_OVERHEAD];
    while position + RECORD_BATCH_OVERHEAD as u64 <= len {
        file.read_exact_at(&mut buf, position)
            .map_err(io_err("read", path))?;
        let Ok(header) = BatchHeader::parse(&buf) else {
            break;
        };
        if position + header.size as u64 > len {
            break;
        }
        next = next.max(header.next_offset());
        position += header.size as u64;
    }
    Ok(next)
}

/// Finishes or rolls back swaps a crash interrupted (see the module docs). Runs before the
/// directory's inventory is taken.
pub(crate) fn complete_interrupted_swaps(dir: &Path) -> Result<(), StorageError> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err("list", dir))? {
        let entry = entry.map_err(io_err("list", dir))?;
        if let Some(name) = entry.file_name().to_str() {
            names.push(name.to_owned());
        }
    }
    let log_swap = format!("{LOG_SUFFIX}{SWAP_SUFFIX}");
    let mut committed: Vec<i64> = names
        .iter()
        .filter_map(|n| base_offset_of(n, &log_swap))
        .collect();
    committed.sort_unstable();
    if committed.is_empty() && !names.iter().any(|n| n.ends_with(SWAP_SUFFIX)) {
        return Ok(());
    }
    let segment_bases: Vec<i64> = names
        .iter()
        .filter_map(|n| base_offset_of(n, LOG_SUFFIX))
        .collect();
    for name in names.iter().filter(|n| n.ends_with(SWAP_SUFFIX)) {
        let stem = name.trim_end_matches(SWAP_SUFFIX);
        let base = stem.get(..20).and_then(|digits| digits.parse::<i64>().ok());
        if !base.is_some_and(|b| committed.contains(&b)) {
            let path = dir.join(name);
            tracing::warn!(file = %path.display(), "deleting the file of a cleaner swap that never committed");
            remove_files(&[path])?;
        }
    }
    for &base in &committed {
        let swap = segment_paths(dir, base, SWAP_SUFFIX);
        let next = next_offset_of(&swap[3], base)?;
        for &old in segment_bases.iter().filter(|&&b| b > base && b < next) {
            remove_files(&segment_paths(dir, old, ""))?;
        }
        let target = segment_paths(dir, base, "");
        for (from, to) in swap.iter().zip(&target) {
            // An index already renamed before the crash is the new one: nothing to do.
            if from.exists() {
                rename(from, to)?;
            }
        }
        tracing::warn!(
            dir = %dir.display(),
            base_offset = base,
            next_offset = next,
            "completed a cleaner swap interrupted by a crash"
        );
    }
    sync_dir(dir)
}
