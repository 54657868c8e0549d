//! Taking segments out of their log (retention, DeleteRecords, a cleaner swap, truncation):
//! their files are renamed to retired names and deleted after `file.delete.delay.ms` by the
//! `segment-deleter` thread (`file_deleter`), or deleted at once with a delay of 0.
//!
//! Crash safety: the log file goes first, under a name recovery does not take for a segment
//! (it ends in `.deleted`, which recovery deletes), and the indexes follow (recovery deletes an
//! index without its log); the directory is fsynced before the caller goes on, so a crash never
//! brings a removed segment back as live.

use std::fs;
use std::io;
use std::path::Path;
use std::time::Duration;

use super::{Location, Segment};
use crate::checkpoint::sync_dir;
use crate::error::{StorageError, io_err};
use crate::file_deleter;

/// Takes `segments` out of the log in `dir`, in the order given, waiting `delay_ms`
/// (`file.delete.delay.ms`; 0 or less: none) before their files are deleted. Readers holding
/// the segments read their retired files until then.
pub(crate) fn delete_segments<'a>(
    dir: &Path,
    segments: impl IntoIterator<Item = &'a Segment>,
    delay_ms: i64,
) -> Result<(), StorageError> {
    let delay = u64::try_from(delay_ms)
        .ok()
        .filter(|&ms| ms > 0)
        .map(Duration::from_millis);
    let retired = segments
        .into_iter()
        .try_for_each(|segment| segment.retire(delay));
    // Whatever was renamed or deleted must be durable, also when a later segment failed.
    let synced = sync_dir(dir);
    retired.and(synced)
}

impl Segment {
    /// Takes this segment's files out of its log: renamed to retired names and handed to the
    /// deleter for after `delay`, or (no delay) deleted now. From then on the segment opens
    /// its files only by the retired names, never by its own, which a new segment with the
    /// same base offset may take.
    fn retire(&self, delay: Option<Duration>) -> Result<(), StorageError> {
        let mut handle = self.files.lock();
        if !matches!(handle.location, Location::Live) {
            return Ok(());
        }
        // The cache must not keep the files open: their space is freed only once nothing
        // holds them. Readers in flight keep theirs.
        if let Some(files) = handle.cached.upgrade() {
            crate::open_files::forget(&files);
        }
        let live = [
            self.log_path.as_path(),
            self.index_path.as_path(),
            self.time_index_path.as_path(),
            self.txn_index_path.as_path(),
        ];
        let Some(delay) = delay else {
            handle.location = Location::Deleted;
            drop(handle);
            for path in live {
                match fs::remove_file(path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_err("delete", path)(e)),
                }
            }
            return Ok(());
        };
        let retired = live.map(file_deleter::retired_path);
        // Renamed under the handle's lock, so that no reader opens files by a name being
        // changed.
        fs::rename(live[0], &retired[0]).map_err(io_err("rename", live[0]))?;
        let mut renamed = vec![retired[0].clone()];
        let mut result = Ok(());
        for (from, to) in live[1..].iter().zip(&retired[1..]) {
            match fs::rename(from, to) {
                Ok(()) => renamed.push(to.clone()),
                // An index lost in a crash: nothing to retire.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    result = Err(io_err("rename", from)(e));
                    break;
                }
            }
        }
        handle.location = Location::Retired(Box::new(retired));
        drop(handle);
        file_deleter::delete_after(renamed, delay);
        result
    }

    /// The segment's files were replaced by others under the same names (a cleaner swap): it
    /// reads only the files it holds pinned, and the cache lets go of them.
    pub(crate) fn mark_replaced(&self) {
        let mut handle = self.files.lock();
        if let Some(files) = handle.cached.upgrade() {
            crate::open_files::forget(&files);
        }
        handle.location = Location::Deleted;
    }
}

#[cfg(test)]
mod tests;
