//! One log segment: a `.log` file of record batches plus its `.index`, `.timeindex` and
//! `.txnindex`.
//!
//! Open files: the active segment keeps its log, offset index and time index open. A sealed
//! segment opens them when first used and hands them to the bounded cache of open segment
//! files (`open_files`), so the descriptors a broker holds do not grow with the number of
//! segments; an evicted segment's files close once no read in flight holds them, and are
//! opened again on the next use. The `.txnindex` is opened only while it is read or written.
//!
//! A segment is shared (`Arc`) between the appender and readers. All mutation happens under the
//! partition's append lock; readers only use `read_at` (positional reads, no shared cursor), the
//! committed size and short read locks on the in-memory indexes.
//!
//! Layout: this file holds the segment's state, files and append; `index_files` the index
//! lookups and writes; `txn_index_file` the aborted transactions of the `.txnindex`; `scan`
//! batch walks, recovery, loading and truncation.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::UNIX_EPOCH;

use parking_lot::{Mutex, RwLock};

use crate::batch::{BatchHeader, RECORD_BATCH_OVERHEAD};
use crate::error::{StorageError, io_err};
use crate::index::{OffsetIndex, TimeIndex};
use crate::txn_index::TXN_INDEX_SUFFIX;

mod index_files;
mod retire;
mod scan;
mod txn_index_file;

pub(crate) use retire::delete_segments;

pub(crate) const LOG_SUFFIX: &str = ".log";
pub(crate) const INDEX_SUFFIX: &str = ".index";
pub(crate) const TIME_INDEX_SUFFIX: &str = ".timeindex";

/// Kafka's file name for a segment file: the base offset, 20 digits, zero padded.
pub(crate) fn file_name(base_offset: i64, suffix: &str) -> String {
    format!("{base_offset:020}{suffix}")
}

/// Where a segment's index entries live.
///
/// The active segment keeps them in memory (written to the files lazily). A sealed segment's
/// entries are only in its files and are binary-searched with positional reads, so memory
/// does not grow with the amount of data kept (Kafka gets the same from mmap).
#[derive(Debug, Clone)]
pub(crate) enum Indexes {
    Memory {
        offsets: OffsetIndex,
        times: TimeIndex,
    },
    Sealed {
        offset_entries: u64,
        time_entries: u64,
    },
}

/// What the appender knows about a segment, guarded for readers by a short lock.
#[derive(Debug, Clone)]
pub(crate) struct SegmentState {
    pub(crate) indexes: Indexes,
    /// Largest batch max timestamp in the segment; -1 when none.
    pub(crate) max_timestamp: i64,
    /// First offset of the first batch that carried `max_timestamp`.
    pub(crate) offset_of_max_timestamp: i64,
    /// The offset after the segment's last batch (its base offset when empty).
    pub(crate) next_offset: i64,
    /// Log bytes since the last offset index entry.
    pub(crate) bytes_since_index: usize,
    /// Wall clock of the first append, for `segment.ms`; `None` while empty.
    pub(crate) created_ms: Option<i64>,
}

impl SegmentState {
    fn empty(base_offset: i64) -> Self {
        SegmentState {
            indexes: Indexes::Memory {
                offsets: OffsetIndex::default(),
                times: TimeIndex::default(),
            },
            max_timestamp: -1,
            offset_of_max_timestamp: base_offset,
            next_offset: base_offset,
            bytes_since_index: 0,
            created_ms: None,
        }
    }
}

/// The result of scanning a byte range of a segment batch by batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScanOutcome {
    /// Position after the last accepted batch.
    pub(crate) valid_end: u64,
    /// Why the scan stopped before the end of the range, if it did.
    pub(crate) stopped: Option<String>,
}

#[derive(Debug)]
pub(crate) struct Segment {
    base_offset: i64,
    log_path: Arc<PathBuf>,
    index_path: PathBuf,
    time_index_path: PathBuf,
    txn_index_path: PathBuf,
    files: Mutex<FileHandle>,
    /// Entries in the `.txnindex` file.
    txn_entries: AtomicU64,
    /// The `.txnindex` was missing or damaged when the segment was opened: the log rebuilds it.
    txn_index_damaged: std::sync::atomic::AtomicBool,
    /// Bytes of whole batches written; grows only after a write completed.
    size: AtomicU64,
    /// Bytes `[0, verified_to)` are known to hold valid batches: written by this process after
    /// validation, or checked once by [`Segment::verified_end`]. Reads that send file ranges
    /// without copying them rely on it.
    pub(crate) verified_to: AtomicU64,
    state: RwLock<SegmentState>,
    /// Offsets below this are fdatasynced (the segment's part of the recovery point).
    durable_to: AtomicI64,
    /// Bumped by every truncation, so a sync scheduled before one cannot vouch for data
    /// written after it.
    truncations: AtomicU64,
}

/// A segment's three open files (the `.txnindex` is opened only when used: few segments hold
/// aborted transactions).
#[derive(Debug)]
pub(crate) struct SegmentFiles {
    /// Shared with the [`crate::FileRange`]s of reads in flight.
    log: Arc<File>,
    index: File,
    time_index: File,
}

/// How a segment reaches its files: pinned open (active segment, recovery), or through the
/// cache of open files; and under which names it opens them again.
#[derive(Debug, Default)]
struct FileHandle {
    pinned: Option<Arc<SegmentFiles>>,
    cached: std::sync::Weak<SegmentFiles>,
    location: Location,
}

/// Where a segment's files are on disk.
#[derive(Debug, Default)]
enum Location {
    /// Under the segment's own names: it is part of its log.
    #[default]
    Live,
    /// Removed from its log and renamed to these retired names (log, index, time index,
    /// transaction index) until
    /// `file.delete.delay.ms` has passed; the original names may already hold a new segment.
    Retired(Box<[PathBuf; 4]>),
    /// Removed from its log and deleted.
    Deleted,
}

/// Opens existing files for a sealed segment's use; never creates them (a segment deleted by
/// retention must not come back as empty files).
fn open_existing(path: &Path) -> Result<File, StorageError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(io_err("open", path))
}

fn open_rw(path: &Path, truncate: bool) -> Result<File, StorageError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(truncate)
        .open(path)
        .map_err(io_err("open", path))
}

/// The `segment.ms` start of a segment found on disk: its first batch's timestamp when
/// plausible (Kafka's `rollingBasedTimestamp`), else now.
fn restored_age(first_batch_timestamp: Option<i64>, now_ms: i64) -> i64 {
    match first_batch_timestamp {
        Some(ts) if (0..=now_ms).contains(&ts) => ts,
        _ => now_ms,
    }
}

/// Writes every byte of `parts`, in order, from `pos` on: one positional write for one part,
/// else positional vectored writes (`pwritev`) of at most `IOV_MAX` slices, repeated after a
/// short write.
pub(crate) fn write_all_vectored_at(file: &File, parts: &[&[u8]], mut pos: u64) -> io::Result<()> {
    /// Linux's limit on the slices of one `pwritev`.
    const IOV_MAX: usize = 1024;
    if let [only] = parts {
        return file.write_all_at(only, pos);
    }
    let mut slices: Vec<io::IoSlice<'_>> = parts
        .iter()
        .filter(|part| !part.is_empty())
        .map(|part| io::IoSlice::new(part))
        .collect();
    let mut rest = &mut slices[..];
    while !rest.is_empty() {
        let count = rest.len().min(IOV_MAX);
        match rustix::io::pwritev(file, &rest[..count], pos) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(written) => {
                pos += written as u64;
                io::IoSlice::advance_slices(&mut rest, written);
            }
            Err(rustix::io::Errno::INTR) => {}
            Err(errno) => return Err(errno.into()),
        }
    }
    Ok(())
}

/// Reads until `buf` is full or the file ends; returns the bytes read.
pub(crate) fn read_full_at(file: &File, buf: &mut [u8], mut pos: u64) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read_at(&mut buf[filled..], pos) {
            Ok(0) => break,
            Ok(n) => {
                filled += n;
                pos += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

impl Segment {
    /// Creates an empty segment (replacing stale files of the same name).
    pub(crate) fn create(dir: &Path, base_offset: i64) -> Result<Segment, StorageError> {
        Self::open_with(dir, base_offset, true)
    }

    /// Opens an existing segment's files without reading them; see [`Segment::load`] and
    /// [`Segment::recover`].
    pub(crate) fn open(dir: &Path, base_offset: i64) -> Result<Segment, StorageError> {
        Self::open_with(dir, base_offset, false)
    }

    fn open_with(dir: &Path, base_offset: i64, truncate: bool) -> Result<Segment, StorageError> {
        let log_path = dir.join(file_name(base_offset, LOG_SUFFIX));
        let index_path = dir.join(file_name(base_offset, INDEX_SUFFIX));
        let time_index_path = dir.join(file_name(base_offset, TIME_INDEX_SUFFIX));
        let txn_index_path = dir.join(file_name(base_offset, TXN_INDEX_SUFFIX));
        let log = open_rw(&log_path, truncate)?;
        let index = open_rw(&index_path, truncate)?;
        let time_index = open_rw(&time_index_path, truncate)?;
        // A missing `.txnindex` is not created here: it stays missing (and so is rebuilt on the
        // next open) until the rebuild has written it whole.
        let txn_len = if truncate {
            open_rw(&txn_index_path, true)?;
            Some(0)
        } else {
            match fs::metadata(&txn_index_path) {
                Ok(meta) => Some(meta.len()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => None,
                Err(e) => return Err(io_err("stat", &txn_index_path)(e)),
            }
        };
        let size = log.metadata().map_err(io_err("stat", &log_path))?.len();
        let entry = crate::txn_index::ABORTED_TXN_SIZE as u64;
        let txn_index_damaged = txn_len.is_none_or(|len| !len.is_multiple_of(entry));
        let txn_len = txn_len.unwrap_or(0);
        let files = Arc::new(SegmentFiles {
            log: Arc::new(log),
            index,
            time_index,
        });
        Ok(Segment {
            base_offset,
            log_path: Arc::new(log_path),
            index_path,
            time_index_path,
            txn_index_path,
            txn_entries: AtomicU64::new(txn_len / entry),
            txn_index_damaged: std::sync::atomic::AtomicBool::new(txn_index_damaged),
            files: Mutex::new(FileHandle {
                cached: Arc::downgrade(&files),
                pinned: Some(files),
                location: Location::Live,
            }),
            size: AtomicU64::new(size),
            verified_to: AtomicU64::new(0),
            state: RwLock::new(SegmentState::empty(base_offset)),
            durable_to: AtomicI64::new(base_offset),
            truncations: AtomicU64::new(0),
        })
    }

    pub(crate) fn base_offset(&self) -> i64 {
        self.base_offset
    }

    pub(crate) fn log_path(&self) -> &Path {
        &self.log_path
    }

    pub(crate) fn shared_log_path(&self) -> Arc<PathBuf> {
        Arc::clone(&self.log_path)
    }

    /// The segment's open files, opening them when a sealed segment's were closed. A segment
    /// removed from its log opens its retired files, outside the cache (they are wanted only by
    /// readers of older snapshots, and must close once those are done).
    pub(super) fn files(&self) -> Result<Arc<SegmentFiles>, StorageError> {
        let mut handle = self.files.lock();
        if let Some(files) = &handle.pinned {
            return Ok(Arc::clone(files));
        }
        if let Some(files) = handle.cached.upgrade() {
            return Ok(files);
        }
        let live = [
            self.log_path.as_path(),
            self.index_path.as_path(),
            self.time_index_path.as_path(),
        ];
        let [log, index, time_index] = match &handle.location {
            Location::Live => live,
            Location::Retired(paths) => [&paths[0], &paths[1], &paths[2]].map(PathBuf::as_path),
            Location::Deleted => {
                return Err(io_err("open", &self.log_path)(io::Error::new(
                    io::ErrorKind::NotFound,
                    "the segment was deleted",
                )));
            }
        };
        let files = Arc::new(SegmentFiles {
            log: Arc::new(open_existing(log)?),
            index: open_existing(index)?,
            time_index: open_existing(time_index)?,
        });
        handle.cached = Arc::downgrade(&files);
        // Admitted under the lock, so that a segment being removed from its log finds its
        // files in the cache to take them out.
        if matches!(handle.location, Location::Live) {
            crate::open_files::admit(Arc::clone(&files));
        }
        Ok(files)
    }

    /// Stops keeping the files open for this segment (it is sealed): from now on they are open
    /// only while in the bounded cache or in use.
    pub(crate) fn unpin_files(&self) {
        let mut handle = self.files.lock();
        if let Some(files) = handle.pinned.take()
            && matches!(handle.location, Location::Live)
        {
            crate::open_files::admit(files);
        }
    }

    /// Keeps the files open again (a sealed segment that became the active one, when the log
    /// was truncated back into it).
    pub(crate) fn pin_files(&self) -> Result<(), StorageError> {
        let files = self.files()?;
        self.files.lock().pinned = Some(files);
        Ok(())
    }

    /// The open log file, shared with reads that send it.
    pub(crate) fn log_file(&self) -> Result<Arc<File>, StorageError> {
        Ok(Arc::clone(&self.files()?.log))
    }

    /// Offsets below this are known to be on disk.
    pub(crate) fn durable_to(&self) -> i64 {
        self.durable_to.load(Ordering::Acquire)
    }

    /// What a sync scheduled now will cover: the next offset, and the truncation count that
    /// [`Segment::mark_durable`] checks.
    pub(crate) fn sync_point(&self) -> (i64, u64) {
        (self.next_offset(), self.truncations.load(Ordering::Acquire))
    }

    /// Records that a sync covered the data below `next_offset`, unless the segment was
    /// truncated since the sync was scheduled.
    pub(crate) fn mark_durable(&self, (next_offset, truncations): (i64, u64)) {
        if self.truncations.load(Ordering::Acquire) == truncations {
            self.durable_to.fetch_max(next_offset, Ordering::AcqRel);
        }
    }

    /// The segment is being truncated: syncs scheduled before no longer count.
    pub(super) fn begin_truncation(&self) {
        self.truncations.fetch_add(1, Ordering::AcqRel);
    }

    /// The segment now ends at `next_offset`: nothing above it is durable.
    pub(super) fn end_truncation(&self, next_offset: i64) {
        self.durable_to.fetch_min(next_offset, Ordering::AcqRel);
    }

    /// Committed size in bytes.
    pub(crate) fn size(&self) -> u64 {
        self.size.load(Ordering::Acquire)
    }

    pub(crate) fn next_offset(&self) -> i64 {
        self.state.read().next_offset
    }

    pub(crate) fn max_timestamp(&self) -> (i64, i64) {
        let s = self.state.read();
        (s.max_timestamp, s.offset_of_max_timestamp)
    }

    pub(crate) fn created_ms(&self) -> Option<i64> {
        self.state.read().created_ms
    }

    /// The time retention compares against `retention.ms`: the newest batch timestamp, or the
    /// file's modification time when the batches carry none (Kafka's `largestTimestamp`).
    pub(crate) fn retention_timestamp(&self) -> i64 {
        let max = self.state.read().max_timestamp;
        if max >= 0 {
            return max;
        }
        fs::metadata(&*self.log_path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .and_then(|d| i64::try_from(d.as_millis()).ok())
            .unwrap_or(i64::MAX)
    }

    /// Offset relative to the base, when it fits an index entry.
    pub(super) fn relative(&self, offset: i64) -> Option<u32> {
        u32::try_from(offset.checked_sub(self.base_offset)?).ok()
    }

    /// Whether `last_offset` can still be indexed in this segment.
    pub(crate) fn can_hold_offset(&self, last_offset: i64) -> bool {
        last_offset
            .checked_sub(self.base_offset)
            .is_some_and(|d| (0..=i64::from(i32::MAX)).contains(&d))
    }

    /// Kafka's `LogSegment.append` bookkeeping for one batch written at `position`.
    pub(super) fn account_batch(
        &self,
        state: &mut SegmentState,
        position: u64,
        header: &BatchHeader,
        index_interval_bytes: usize,
    ) {
        if header.max_timestamp > state.max_timestamp {
            state.max_timestamp = header.max_timestamp;
            state.offset_of_max_timestamp = header.base_offset;
        }
        if state.bytes_since_index > index_interval_bytes
            && let (Some(rel), Ok(pos)) =
                (self.relative(header.last_offset()), u32::try_from(position))
            && let Indexes::Memory { offsets, times } = &mut state.indexes
        {
            offsets.append(rel, pos);
            if let Some(rel_ts) = self.relative(state.offset_of_max_timestamp) {
                times.maybe_append(state.max_timestamp, rel_ts);
            }
            state.bytes_since_index = 0;
        }
        state.bytes_since_index += header.size;
        state.next_offset = header.next_offset();
    }

    /// Writes `bytes` (whole, already validated and patched batches described by `headers`) at
    /// the end of the log with one positional write, then indexes them and publishes the new
    /// size. Returns the position the bytes were written at.
    pub(crate) fn append(
        &self,
        bytes: &[u8],
        headers: &[BatchHeader],
        index_interval_bytes: usize,
        now_ms: i64,
    ) -> Result<u64, StorageError> {
        self.append_parts(&[bytes], headers, index_interval_bytes, now_ms)
    }

    /// [`Segment::append`] of batches held in `parts`, written back to back with vectored
    /// positional writes: a leader writes each batch's patched prefix beside the rest of the
    /// batch where the producer's bytes lie, without copying them.
    pub(crate) fn append_parts(
        &self,
        parts: &[&[u8]],
        headers: &[BatchHeader],
        index_interval_bytes: usize,
        now_ms: i64,
    ) -> Result<u64, StorageError> {
        let start = self.size();
        let files = self.files()?;
        if let Err(e) = write_all_vectored_at(&files.log, parts, start) {
            // Drop whatever part of the write landed so the file ends on a batch boundary again.
            let _ = files.log.set_len(start);
            return Err(io_err("append to", &self.log_path)(e));
        }
        let bytes_len: usize = parts.iter().map(|part| part.len()).sum();
        {
            let mut state = self.state.write();
            let mut position = start;
            for header in headers {
                self.account_batch(&mut state, position, header, index_interval_bytes);
                position += header.size as u64;
            }
            state.created_ms.get_or_insert(now_ms);
        }
        let end = start + bytes_len as u64;
        // Validated bytes right after the verified prefix extend it.
        let _ = self
            .verified_to
            .compare_exchange(start, end, Ordering::AcqRel, Ordering::Acquire);
        self.size.store(end, Ordering::Release);
        Ok(start)
    }

    /// Reads into `buf` from `position`; returns bytes read (short at end of file).
    pub(crate) fn read_at(&self, buf: &mut [u8], position: u64) -> Result<usize, StorageError> {
        read_full_at(&self.files()?.log, buf, position).map_err(io_err("read", &self.log_path))
    }

    /// The header of the batch at `position`, if a whole header lies below `end`.
    pub(crate) fn header_at(
        &self,
        position: u64,
        end: u64,
    ) -> Result<Option<BatchHeader>, StorageError> {
        if position + RECORD_BATCH_OVERHEAD as u64 > end {
            return Ok(None);
        }
        let mut buf = [0u8; RECORD_BATCH_OVERHEAD];
        let n = self.read_at(&mut buf, position)?;
        if n < buf.len() {
            return Ok(None);
        }
        match BatchHeader::parse(&buf) {
            Ok(h) if position + h.size as u64 <= end => Ok(Some(h)),
            _ => Ok(None),
        }
    }

    /// Seals the segment before a roll: records the final max timestamp in the time index (so
    /// it survives a restart) and writes the indexes out.
    pub(crate) fn seal(&self) -> Result<(), StorageError> {
        {
            let mut state = self.state.write();
            let (ts, at) = (state.max_timestamp, state.offset_of_max_timestamp);
            if ts >= 0
                && let Some(rel) = self.relative(at)
                && let Indexes::Memory { times, .. } = &mut state.indexes
            {
                times.maybe_append(ts, rel);
            }
        }
        self.persist_indexes()?;
        let mut state = self.state.write();
        if let Indexes::Memory { offsets, times } = &state.indexes {
            state.indexes = Indexes::Sealed {
                offset_entries: offsets.len() as u64,
                time_entries: times.len() as u64,
            };
        }
        drop(state);
        self.unpin_files();
        Ok(())
    }

    /// Whether the segment was taken out of its log (its files retired or deleted).
    fn is_removed(&self) -> bool {
        !matches!(self.files.lock().location, Location::Live)
    }

    /// fdatasync of the log and the index files. A segment taken out of its log since the
    /// sync was scheduled (retention right after a roll) has nothing that needs to last.
    pub(crate) fn sync(&self) -> Result<(), StorageError> {
        if self.is_removed() {
            return Ok(());
        }
        let files = match self.files() {
            Ok(files) => files,
            Err(_) if self.is_removed() => return Ok(()),
            Err(e) => return Err(e),
        };
        files
            .log
            .sync_data()
            .map_err(io_err("fdatasync", &self.log_path))?;
        files
            .index
            .sync_data()
            .map_err(io_err("fdatasync", &self.index_path))?;
        files
            .time_index
            .sync_data()
            .map_err(io_err("fdatasync", &self.time_index_path))?;
        self.sync_txn_index()
    }
}
