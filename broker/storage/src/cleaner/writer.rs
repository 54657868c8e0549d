//! Writing one cleaned segment: `<base>.log.cleaned` and its `.index.cleaned`,
//! `.timeindex.cleaned` and `.txnindex.cleaned`, indexed as the append path indexes (an offset
//! entry per `index.interval.bytes`, a time entry with each, and the segment's largest
//! timestamp last, as a sealed segment has it), then fsynced. The transaction index holds the
//! aborted transactions of the segments it replaces: their markers are kept, so a
//! `read_committed` fetch still needs them.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::batch::BatchHeader;
use crate::error::{StorageError, io_err};
use crate::index::{OffsetIndex, TimeIndex};
use crate::segment::{INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX, file_name};
use crate::txn_index::{AbortedTxn, TXN_INDEX_SUFFIX};

/// Suffix of a cleaned segment's files while they are written.
pub(crate) const CLEANED_SUFFIX: &str = ".cleaned";
/// Suffix of a cleaned segment's files once complete and about to replace the old segments.
pub(crate) const SWAP_SUFFIX: &str = ".swap";

/// The four file names of segment `base` with `suffix` appended (`.cleaned`, `.swap` or none),
/// indexes first: they are renamed before the log, whose `.swap` name commits a swap.
pub(crate) fn segment_paths(dir: &Path, base: i64, suffix: &str) -> [PathBuf; 4] {
    [
        INDEX_SUFFIX,
        TIME_INDEX_SUFFIX,
        TXN_INDEX_SUFFIX,
        LOG_SUFFIX,
    ]
    .map(|kind| dir.join(format!("{}{suffix}", file_name(base, kind))))
}

/// Removes whichever of the files exist.
pub(crate) fn remove_files(paths: &[PathBuf]) -> Result<(), StorageError> {
    for path in paths {
        match fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("delete", path)(e)),
        }
    }
    Ok(())
}

#[derive(Debug)]
pub(crate) struct CleanedWriter {
    base_offset: i64,
    paths: [PathBuf; 4],
    log: BufWriter<File>,
    position: u64,
    offsets: OffsetIndex,
    times: TimeIndex,
    bytes_since_index: usize,
    index_interval_bytes: usize,
    max_timestamp: i64,
    offset_of_max_timestamp: i64,
    aborted: Vec<AbortedTxn>,
}

impl CleanedWriter {
    pub(crate) fn create(
        dir: &Path,
        base_offset: i64,
        index_interval_bytes: usize,
    ) -> Result<CleanedWriter, StorageError> {
        let paths = segment_paths(dir, base_offset, CLEANED_SUFFIX);
        let log = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&paths[3])
            .map_err(io_err("create", &paths[3]))?;
        Ok(CleanedWriter {
            base_offset,
            paths,
            log: BufWriter::with_capacity(1 << 20, log),
            position: 0,
            offsets: OffsetIndex::default(),
            times: TimeIndex::default(),
            bytes_since_index: 0,
            index_interval_bytes,
            max_timestamp: -1,
            offset_of_max_timestamp: base_offset,
            aborted: Vec::new(),
        })
    }

    pub(crate) fn paths(&self) -> &[PathBuf; 4] {
        &self.paths
    }

    pub(crate) fn size(&self) -> u64 {
        self.position
    }

    fn relative(&self, offset: i64) -> Option<u32> {
        u32::try_from(offset.checked_sub(self.base_offset)?).ok()
    }

    /// Adds the aborted transactions of a segment the cleaned one replaces (in log order).
    pub(crate) fn add_aborted(&mut self, entries: Vec<AbortedTxn>) {
        self.aborted.extend(entries);
    }

    /// Appends one whole batch described by `header`.
    pub(crate) fn append(
        &mut self,
        bytes: &[u8],
        header: &BatchHeader,
    ) -> Result<(), StorageError> {
        self.log
            .write_all(bytes)
            .map_err(io_err("write", &self.paths[3]))?;
        if header.max_timestamp > self.max_timestamp {
            self.max_timestamp = header.max_timestamp;
            self.offset_of_max_timestamp = header.base_offset;
        }
        if self.bytes_since_index > self.index_interval_bytes
            && let (Some(rel), Ok(pos)) = (
                self.relative(header.last_offset()),
                u32::try_from(self.position),
            )
        {
            self.offsets.append(rel, pos);
            if let Some(rel_ts) = self.relative(self.offset_of_max_timestamp) {
                self.times.maybe_append(self.max_timestamp, rel_ts);
            }
            self.bytes_since_index = 0;
        }
        self.bytes_since_index += header.size;
        self.position += bytes.len() as u64;
        Ok(())
    }

    /// Writes the indexes and fsyncs all three files; returns their paths.
    pub(crate) fn finish(mut self) -> Result<[PathBuf; 4], StorageError> {
        if self.max_timestamp >= 0
            && let Some(rel) = self.relative(self.offset_of_max_timestamp)
        {
            self.times.maybe_append(self.max_timestamp, rel);
        }
        let log = self
            .log
            .into_inner()
            .map_err(|e| io_err("write", &self.paths[3])(e.into_error()))?;
        log.sync_all().map_err(io_err("fsync", &self.paths[3]))?;
        let (_, offset_bytes) = self.offsets.take_unpersisted();
        let (_, time_bytes) = self.times.take_unpersisted();
        let txn_bytes: Vec<u8> = self.aborted.iter().flat_map(|e| e.encode()).collect();
        for (path, bytes) in [
            (&self.paths[0], offset_bytes),
            (&self.paths[1], time_bytes),
            (&self.paths[2], txn_bytes),
        ] {
            let mut file = File::create(path).map_err(io_err("create", path))?;
            file.write_all(&bytes).map_err(io_err("write", path))?;
            file.sync_all().map_err(io_err("fsync", path))?;
        }
        Ok(self.paths)
    }
}
