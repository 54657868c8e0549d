//! A segment's `.txnindex` file (format in `txn_index`): appending an aborted transaction,
//! reading the entries, cutting them at a truncation point and rewriting them after a rebuild.
//! Entries go straight to the file (aborts are rare). The file is opened only when used and
//! the entry count is kept in memory, so a segment without aborted transactions costs no
//! descriptor and is never read.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::Ordering;

use super::{Location, Segment};
use crate::checkpoint::{TEMP_SUFFIX, write_atomically};
use crate::error::{StorageError, io_err};
use crate::txn_index::{ABORTED_TXN_SIZE, AbortedTxn, decode_all};

impl Segment {
    /// Whether the `.txnindex` was missing or damaged when the segment was opened (until
    /// rewritten).
    pub(crate) fn txn_index_damaged(&self) -> bool {
        self.txn_index_damaged.load(Ordering::Acquire)
    }

    /// Where the `.txnindex` is now: its own name, or its retired one.
    fn txn_index_location(&self) -> Result<PathBuf, StorageError> {
        match &self.files.lock().location {
            Location::Live => Ok(self.txn_index_path.clone()),
            Location::Retired(paths) => Ok(paths[3].clone()),
            Location::Deleted => Err(io_err("open", &self.txn_index_path)(io::Error::new(
                io::ErrorKind::NotFound,
                "the segment was deleted",
            ))),
        }
    }

    fn open_txn_index(&self, write: bool) -> Result<(File, PathBuf), StorageError> {
        let path = self.txn_index_location()?;
        let file = OpenOptions::new()
            .read(true)
            .write(write)
            .open(&path)
            .map_err(io_err("open", &path))?;
        Ok((file, path))
    }

    /// Appends one entry (called under the append lock, in marker order).
    pub(crate) fn append_aborted_txn(&self, entry: &AbortedTxn) -> Result<(), StorageError> {
        let count = self.txn_entries.load(Ordering::Acquire);
        let (file, path) = self.open_txn_index(true)?;
        file.write_all_at(&entry.encode(), count * ABORTED_TXN_SIZE as u64)
            .map_err(io_err("write", &path))?;
        self.txn_entries.store(count + 1, Ordering::Release);
        Ok(())
    }

    /// The segment's aborted transactions, in marker order.
    pub(crate) fn aborted_txns(&self) -> Result<Vec<AbortedTxn>, StorageError> {
        let count = self.txn_entries.load(Ordering::Acquire);
        if count == 0 {
            return Ok(Vec::new());
        }
        let len = usize::try_from(count).unwrap_or(usize::MAX / 2) * ABORTED_TXN_SIZE;
        let mut buf = vec![0u8; len];
        let (file, path) = self.open_txn_index(false)?;
        file.read_exact_at(&mut buf, 0)
            .map_err(io_err("read", &path))?;
        decode_all(&buf).map_err(|reason| StorageError::CorruptLogFile { path, reason })
    }

    /// Replaces the file's entries with `entries`, atomically (a temporary file renamed over
    /// it, both fsynced): a crash leaves the old file or the new one, never a part.
    pub(crate) fn rewrite_txn_index(&self, entries: &[AbortedTxn]) -> Result<(), StorageError> {
        let path = self.txn_index_location()?;
        let bytes: Vec<u8> = entries.iter().flat_map(|e| e.encode()).collect();
        let mut tmp = path.clone().into_os_string();
        tmp.push(TEMP_SUFFIX);
        let dir = path.parent().unwrap_or(std::path::Path::new("."));
        write_atomically(dir, &path, std::path::Path::new(&tmp), &bytes)?;
        self.txn_entries
            .store(entries.len() as u64, Ordering::Release);
        self.txn_index_damaged.store(false, Ordering::Release);
        Ok(())
    }

    /// Removes the entries of markers at or after `offset` (the log is cut there).
    pub(crate) fn truncate_txn_index(&self, offset: i64) -> Result<(), StorageError> {
        let entries = self.aborted_txns()?;
        let kept = entries
            .iter()
            .take_while(|e| e.last_offset < offset)
            .count();
        if kept < entries.len() {
            self.rewrite_txn_index(&entries[..kept])?;
        }
        Ok(())
    }

    /// fdatasync of the `.txnindex` (part of [`Segment::sync`]); an empty one has nothing
    /// that needs to last beyond its name.
    pub(super) fn sync_txn_index(&self) -> Result<(), StorageError> {
        if self.txn_entries.load(Ordering::Acquire) == 0 {
            return Ok(());
        }
        let (file, path) = self.open_txn_index(false)?;
        file.sync_data().map_err(io_err("fdatasync", &path))
    }
}
