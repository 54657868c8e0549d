//! One log segment: a `.log` file of record batches plus its `.index` and `.timeindex`.
//!
//! Open files: the active segment keeps its three files open. A sealed segment opens them when
//! first used and hands them to the bounded cache of open segment files (`open_files`), so the
//! descriptors a broker holds do not grow with the number of segments; an evicted segment's
//! files close once no read in flight holds them, and are opened again on the next use.
//!
//! A segment is shared (`Arc`) between the appender and readers. All mutation happens under the
//! partition's append lock; readers only use `read_at` (positional reads, no shared cursor), the
//! committed size and short read locks on the in-memory indexes.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::UNIX_EPOCH;

use parking_lot::{Mutex, RwLock};

use crate::batch::{BatchHeader, RECORD_BATCH_OVERHEAD, RecordBatch};
use crate::error::{StorageError, io_err};
use crate::index::{
    OFFSET_ENTRY_SIZE, OffsetEntry, OffsetIndex, TIME_ENTRY_SIZE, TimeEntry, TimeIndex,
};

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
    files: Mutex<FileHandle>,
    /// Bytes of whole batches written; grows only after a write completed.
    size: AtomicU64,
    /// Bytes `[0, verified_to)` are known to hold valid batches: written by this process after
    /// validation, or checked once by [`Segment::verified_end`]. Reads that send file ranges
    /// without copying them rely on it.
    pub(crate) verified_to: AtomicU64,
    state: RwLock<SegmentState>,
}

/// A segment's three open files.
#[derive(Debug)]
pub(crate) struct SegmentFiles {
    /// Shared with the [`crate::FileRange`]s of reads in flight.
    log: Arc<File>,
    index: File,
    time_index: File,
}

/// How a segment reaches its files: pinned open (active segment, recovery), or through the
/// cache of open files.
#[derive(Debug, Default)]
struct FileHandle {
    pinned: Option<Arc<SegmentFiles>>,
    cached: std::sync::Weak<SegmentFiles>,
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
        let log = open_rw(&log_path, truncate)?;
        let index = open_rw(&index_path, truncate)?;
        let time_index = open_rw(&time_index_path, truncate)?;
        let size = log.metadata().map_err(io_err("stat", &log_path))?.len();
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
            files: Mutex::new(FileHandle {
                cached: Arc::downgrade(&files),
                pinned: Some(files),
            }),
            size: AtomicU64::new(size),
            verified_to: AtomicU64::new(0),
            state: RwLock::new(SegmentState::empty(base_offset)),
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

    /// The segment's open files, opening them when a sealed segment's were closed.
    fn files(&self) -> Result<Arc<SegmentFiles>, StorageError> {
        let mut handle = self.files.lock();
        if let Some(files) = &handle.pinned {
            return Ok(Arc::clone(files));
        }
        if let Some(files) = handle.cached.upgrade() {
            return Ok(files);
        }
        let files = Arc::new(SegmentFiles {
            log: Arc::new(open_existing(&self.log_path)?),
            index: open_existing(&self.index_path)?,
            time_index: open_existing(&self.time_index_path)?,
        });
        handle.cached = Arc::downgrade(&files);
        drop(handle);
        crate::open_files::admit(Arc::clone(&files));
        Ok(files)
    }

    /// Stops keeping the files open for this segment (it is sealed): from now on they are open
    /// only while in the bounded cache or in use.
    pub(crate) fn unpin_files(&self) {
        let pinned = self.files.lock().pinned.take();
        if let Some(files) = pinned {
            crate::open_files::admit(files);
        }
    }

    /// The open log file, shared with reads that send it.
    pub(crate) fn log_file(&self) -> Result<Arc<File>, StorageError> {
        Ok(Arc::clone(&self.files()?.log))
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
    fn relative(&self, offset: i64) -> Option<u32> {
        u32::try_from(offset.checked_sub(self.base_offset)?).ok()
    }

    /// Whether `last_offset` can still be indexed in this segment.
    pub(crate) fn can_hold_offset(&self, last_offset: i64) -> bool {
        last_offset
            .checked_sub(self.base_offset)
            .is_some_and(|d| (0..=i64::from(i32::MAX)).contains(&d))
    }

    /// Kafka's `LogSegment.append` bookkeeping for one batch written at `position`.
    fn account_batch(
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
        let start = self.size();
        let files = self.files()?;
        if let Err(e) = files.log.write_all_at(bytes, start) {
            // Drop whatever part of the write landed so the file ends on a batch boundary again.
            let _ = files.log.set_len(start);
            return Err(io_err("append to", &self.log_path)(e));
        }
        {
            let mut state = self.state.write();
            let mut position = start;
            for header in headers {
                self.account_batch(&mut state, position, header, index_interval_bytes);
                position += header.size as u64;
            }
            state.created_ms.get_or_insert(now_ms);
        }
        let end = start + bytes.len() as u64;
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

    /// Position of the batch holding `offset` (the first batch whose last offset is at or
    /// after it), searching below `end`. `None` when no such batch lies in the segment.
    pub(crate) fn find_batch(
        &self,
        offset: i64,
        end: u64,
    ) -> Result<Option<(u64, BatchHeader)>, StorageError> {
        let mut position = match self.relative(offset) {
            Some(rel) => u64::from(self.offset_lookup(rel)?),
            None if offset < self.base_offset => 0,
            None => u64::from(self.offset_lookup(u32::MAX)?),
        };
        while let Some(header) = self.header_at(position, end)? {
            if header.last_offset() >= offset {
                return Ok(Some((position, header)));
            }
            position += header.size as u64;
        }
        // Committed data ends on a batch boundary, so bytes below `end` that are no batch header
        // are damage (unless the file was truncated meanwhile). Kafka reports such a read as
        // corrupt rather than as an empty partition, which a consumer would poll forever.
        if position < end && self.size() >= end {
            return Err(StorageError::CorruptBatchInLog {
                path: self.log_path.to_path_buf(),
                position,
                offset,
                reason: "the bytes there are not a record batch header".to_string(),
            });
        }
        Ok(None)
    }

    /// Position from which a scan for the first batch with max timestamp `>= timestamp` can start.
    pub(crate) fn timestamp_scan_start(&self, timestamp: i64) -> Result<u64, StorageError> {
        // Copy what is needed out of the lock: file lookups below must not hold it.
        let in_memory = match &self.state.read().indexes {
            Indexes::Memory { times, .. } => Ok(times.lookup_before(timestamp)),
            Indexes::Sealed { time_entries, .. } => Err(*time_entries),
        };
        let entry = match in_memory {
            Ok(entry) => entry,
            Err(time_entries) => self.file_time_lookup_before(time_entries, timestamp)?,
        };
        match entry {
            Some(entry) => Ok(u64::from(self.offset_lookup(entry.relative_offset)?)),
            None => Ok(0),
        }
    }

    /// Position of the latest indexed batch whose last offset is `<= relative_offset`, or 0.
    fn offset_lookup(&self, relative_offset: u32) -> Result<u32, StorageError> {
        let n = match &self.state.read().indexes {
            Indexes::Memory { offsets, .. } => return Ok(offsets.lookup(relative_offset)),
            Indexes::Sealed { offset_entries, .. } => *offset_entries,
        };
        // First entry with a larger offset, by binary search over the file.
        let (mut lo, mut hi) = (0u64, n);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.offset_entry_at(mid)?.relative_offset <= relative_offset {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        if lo == 0 {
            Ok(0)
        } else {
            Ok(self.offset_entry_at(lo - 1)?.position)
        }
    }

    fn file_time_lookup_before(
        &self,
        entries: u64,
        timestamp: i64,
    ) -> Result<Option<TimeEntry>, StorageError> {
        let (mut lo, mut hi) = (0u64, entries);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.time_entry_at(mid)?.timestamp < timestamp {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        if lo == 0 {
            Ok(None)
        } else {
            self.time_entry_at(lo - 1).map(Some)
        }
    }

    fn offset_entry_at(&self, i: u64) -> Result<OffsetEntry, StorageError> {
        let mut buf = [0u8; OFFSET_ENTRY_SIZE];
        self.files()?
            .index
            .read_exact_at(&mut buf, i * OFFSET_ENTRY_SIZE as u64)
            .map_err(io_err("read", &self.index_path))?;
        Ok(OffsetEntry::decode(buf))
    }

    fn time_entry_at(&self, i: u64) -> Result<TimeEntry, StorageError> {
        let mut buf = [0u8; TIME_ENTRY_SIZE];
        self.files()?
            .time_index
            .read_exact_at(&mut buf, i * TIME_ENTRY_SIZE as u64)
            .map_err(io_err("read", &self.time_index_path))?;
        Ok(TimeEntry::decode(buf))
    }

    /// Walks batches in `[start, end)`, reading in large chunks. Each batch's framing is checked
    /// (and its CRC when `verify_crc`); `accept` may refuse a batch. Stops at the first batch
    /// that is torn, fails a check or is refused.
    pub(crate) fn scan(
        &self,
        start: u64,
        end: u64,
        verify_crc: bool,
        mut accept: impl FnMut(u64, &RecordBatch<'_>) -> Result<(), String>,
    ) -> Result<ScanOutcome, StorageError> {
        const CHUNK: usize = 1 << 20;
        let mut buf: Vec<u8> = Vec::new();
        // `buf` holds file bytes [buf_pos, buf_pos + buf.len()).
        let mut buf_pos = start;
        let mut position = start;
        loop {
            if position >= end {
                return Ok(ScanOutcome {
                    valid_end: position,
                    stopped: None,
                });
            }
            let in_buf = (position - buf_pos) as usize;
            let avail = &buf[in_buf.min(buf.len())..];
            let need = match crate::batch::batch_size(avail) {
                Ok(size) => size,
                Err(_) if avail.len() >= crate::batch::LOG_OVERHEAD => {
                    return Ok(ScanOutcome {
                        valid_end: position,
                        stopped: Some(format!("invalid batch length at position {position}")),
                    });
                }
                Err(_) => crate::batch::LOG_OVERHEAD,
            };
            if position + need as u64 > end {
                return Ok(ScanOutcome {
                    valid_end: position,
                    stopped: Some(format!(
                        "batch at position {position} needs {need} bytes, only {} remain",
                        end - position
                    )),
                });
            }
            if avail.len() < need {
                // Refill from `position`, at least one chunk and at least the whole batch.
                let want = need.max(CHUNK).min((end - position) as usize);
                buf.clear();
                buf.resize(want, 0);
                let n = self.read_at(&mut buf, position)?;
                buf.truncate(n);
                buf_pos = position;
                if n < need {
                    return Ok(ScanOutcome {
                        valid_end: position,
                        stopped: Some(format!("file ends inside the batch at position {position}")),
                    });
                }
                continue;
            }
            let batch = match RecordBatch::parse(avail) {
                Ok(b) => b,
                Err(e) => {
                    return Ok(ScanOutcome {
                        valid_end: position,
                        stopped: Some(format!("batch at position {position}: {e}")),
                    });
                }
            };
            let checked = if verify_crc {
                batch.validate().map_err(|e| e.to_string())
            } else if batch.magic() != crate::batch::MAGIC_V2 {
                Err(format!("magic {} is not 2", batch.magic()))
            } else {
                Ok(())
            };
            if let Err(reason) = checked.and_then(|()| accept(position, &batch)) {
                return Ok(ScanOutcome {
                    valid_end: position,
                    stopped: Some(format!("batch at position {position}: {reason}")),
                });
            }
            position += batch.size() as u64;
        }
    }

    /// Rebuilds the segment's indexes and state by scanning the whole log (CRC-checked when
    /// `verify_crc`), truncates the file after the last good batch and rewrites the index files.
    /// Returns the bytes cut off and why.
    pub(crate) fn recover(
        &self,
        index_interval_bytes: usize,
        verify_crc: bool,
        now_ms: i64,
    ) -> Result<Option<(u64, String)>, StorageError> {
        let file_size = self
            .files()?
            .log
            .metadata()
            .map_err(io_err("stat", &self.log_path))?
            .len();
        let mut state = SegmentState::empty(self.base_offset);
        let mut first_batch_ts = None;
        let outcome = self.scan(0, file_size, verify_crc, |position, batch| {
            let header = batch.header();
            if header.base_offset < state.next_offset {
                return Err(format!(
                    "base offset {} goes back below {}",
                    header.base_offset, state.next_offset
                ));
            }
            if !self.can_hold_offset(header.last_offset()) {
                return Err(format!(
                    "offset {} cannot be indexed in this segment",
                    header.last_offset()
                ));
            }
            first_batch_ts.get_or_insert(header.max_timestamp);
            self.account_batch(&mut state, position, &header, index_interval_bytes);
            Ok(())
        })?;
        let cut = match outcome.stopped {
            Some(reason) if outcome.valid_end < file_size => {
                self.files()?
                    .log
                    .set_len(outcome.valid_end)
                    .map_err(io_err("truncate", &self.log_path))?;
                Some((file_size - outcome.valid_end, reason))
            }
            _ => None,
        };
        if state.next_offset > self.base_offset {
            state.created_ms = Some(restored_age(first_batch_ts, now_ms));
        }
        *self.state.write() = state;
        self.verified_to
            .fetch_min(outcome.valid_end, Ordering::AcqRel);
        self.size.store(outcome.valid_end, Ordering::Release);
        self.rewrite_indexes()?;
        Ok(cut)
    }

    /// Loads a sealed segment from its index files and checks the tail after the last index
    /// entry walks to the end of the file on batch boundaries. `Err(reason)` when the indexes
    /// are missing or inconsistent: the caller then recovers the segment.
    pub(crate) fn load(
        &self,
        index_interval_bytes: usize,
    ) -> Result<Result<(), String>, StorageError> {
        let log_size = self.size();
        let files = self.files()?;
        let index_len = files
            .index
            .metadata()
            .map_err(io_err("stat", &self.index_path))?
            .len();
        let time_len = files
            .time_index
            .metadata()
            .map_err(io_err("stat", &self.time_index_path))?
            .len();
        if !index_len.is_multiple_of(OFFSET_ENTRY_SIZE as u64)
            || !time_len.is_multiple_of(TIME_ENTRY_SIZE as u64)
        {
            return Ok(Err("an index file ends in a partial entry".to_string()));
        }
        let (offset_entries, time_entries) = (
            index_len / OFFSET_ENTRY_SIZE as u64,
            time_len / TIME_ENTRY_SIZE as u64,
        );
        // A log longer than one index interval always has offset index entries, and sealing
        // always leaves a time index entry when there is an offset index entry.
        if offset_entries == 0 && log_size > index_interval_bytes as u64 {
            return Ok(Err("the offset index is empty or missing".to_string()));
        }
        if time_entries == 0 && offset_entries > 0 {
            return Ok(Err("the time index is empty or missing".to_string()));
        }
        let mut state = SegmentState::empty(self.base_offset);
        // Kafka-style sanity check: the last offset entry must point at the batch it names;
        // from there the tail is walked to the end of the file on batch boundaries.
        let (tail_start, indexed_last_offset) = if offset_entries > 0 {
            let last = self.offset_entry_at(offset_entries - 1)?;
            let position = u64::from(last.position);
            let named = self.base_offset + i64::from(last.relative_offset);
            match self.header_at(position, log_size)? {
                Some(h) if h.last_offset() == named => {}
                _ => {
                    return Ok(Err(format!(
                        "the last offset index entry ({named} at {position}) names no batch"
                    )));
                }
            }
            (position, Some(named))
        } else {
            (0, None)
        };
        if time_entries > 0 {
            let last = self.time_entry_at(time_entries - 1)?;
            state.max_timestamp = last.timestamp;
            state.offset_of_max_timestamp = self.base_offset + i64::from(last.relative_offset);
        }
        let mut next_offset = self.base_offset;
        let mut tail_max = (-1i64, self.base_offset);
        let outcome = self.scan(tail_start, log_size, false, |_, batch| {
            next_offset = batch.next_offset();
            if batch.max_timestamp() > tail_max.0 {
                tail_max = (batch.max_timestamp(), batch.base_offset());
            }
            Ok(())
        })?;
        if let Some(reason) = outcome.stopped {
            return Ok(Err(reason));
        }
        if indexed_last_offset.is_some_and(|o| next_offset <= o)
            || state.offset_of_max_timestamp >= next_offset.max(self.base_offset + 1)
        {
            return Ok(Err("an index points past the last batch".to_string()));
        }
        if tail_max.0 > state.max_timestamp {
            (state.max_timestamp, state.offset_of_max_timestamp) = tail_max;
        }
        state.next_offset = next_offset;
        state.indexes = Indexes::Sealed {
            offset_entries,
            time_entries,
        };
        *self.state.write() = state;
        Ok(Ok(()))
    }

    /// Loads the last segment after a clean shutdown: the same checks as [`Segment::load`],
    /// then the indexes are read into memory so appends can continue. `Err(reason)` sends the
    /// caller to [`Segment::recover`].
    pub(crate) fn load_active(
        &self,
        index_interval_bytes: usize,
        now_ms: i64,
    ) -> Result<Result<(), String>, StorageError> {
        if let Err(reason) = self.load(index_interval_bytes)? {
            return Ok(Err(reason));
        }
        let index_bytes = fs::read(&self.index_path).map_err(io_err("read", &self.index_path))?;
        let time_bytes =
            fs::read(&self.time_index_path).map_err(io_err("read", &self.time_index_path))?;
        let offsets = match OffsetIndex::from_file_bytes(&index_bytes) {
            Ok(i) => i,
            Err(reason) => return Ok(Err(reason)),
        };
        let times = match TimeIndex::from_file_bytes(&time_bytes) {
            Ok(i) => i,
            Err(reason) => return Ok(Err(reason)),
        };
        let size = self.size();
        // Bytes written since the batch of the last entry, as account_batch counts them.
        let last_entry_position =
            index_bytes
                .len()
                .checked_sub(OFFSET_ENTRY_SIZE)
                .map_or(0, |at| {
                    let mut b = [0u8; OFFSET_ENTRY_SIZE];
                    b.copy_from_slice(&index_bytes[at..]);
                    u64::from(OffsetEntry::decode(b).position)
                });
        let first_batch_ts = self.header_at(0, size)?.map(|h| h.max_timestamp);
        let mut state = self.state.write();
        state.indexes = Indexes::Memory { offsets, times };
        state.bytes_since_index = usize::try_from(size - last_entry_position).unwrap_or(usize::MAX);
        if state.next_offset > self.base_offset {
            state.created_ms = Some(restored_age(first_batch_ts, now_ms));
        }
        Ok(Ok(()))
    }

    /// Truncates the log to `position` (a batch boundary) and rebuilds the indexes; `now_ms`
    /// only serves as the segment's age when it had none.
    pub(crate) fn truncate_to(
        &self,
        position: u64,
        index_interval_bytes: usize,
        now_ms: i64,
    ) -> Result<(), StorageError> {
        let created_ms = self.created_ms();
        self.files()?
            .log
            .set_len(position)
            .map_err(io_err("truncate", &self.log_path))?;
        self.size.store(position, Ordering::Release);
        self.verified_to.fetch_min(position, Ordering::AcqRel);
        self.recover(index_interval_bytes, false, now_ms)?;
        // The segment keeps its age for segment.ms when data remains in it.
        let mut state = self.state.write();
        if state.next_offset > self.base_offset && created_ms.is_some() {
            state.created_ms = created_ms;
        }
        Ok(())
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

    /// Writes index entries not yet in the files (cheap: no sync).
    pub(crate) fn persist_indexes(&self) -> Result<(), StorageError> {
        let ((offset_at, offset_bytes), (time_at, time_bytes)) = {
            let mut state = self.state.write();
            match &mut state.indexes {
                Indexes::Memory { offsets, times } => {
                    (offsets.take_unpersisted(), times.take_unpersisted())
                }
                // Sealed indexes were written completely when sealed.
                Indexes::Sealed { .. } => return Ok(()),
            }
        };
        let files = self.files()?;
        files
            .index
            .write_all_at(&offset_bytes, offset_at)
            .map_err(io_err("write", &self.index_path))?;
        files
            .time_index
            .write_all_at(&time_bytes, time_at)
            .map_err(io_err("write", &self.time_index_path))
    }

    /// Replaces the index files with the in-memory indexes (after a rebuild).
    fn rewrite_indexes(&self) -> Result<(), StorageError> {
        let files = self.files()?;
        files
            .index
            .set_len(0)
            .map_err(io_err("truncate", &self.index_path))?;
        files
            .time_index
            .set_len(0)
            .map_err(io_err("truncate", &self.time_index_path))?;
        self.persist_indexes()
    }

    /// fdatasync of the log and both index files.
    pub(crate) fn sync(&self) -> Result<(), StorageError> {
        let files = self.files()?;
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
            .map_err(io_err("fdatasync", &self.time_index_path))
    }

    /// Removes the segment's files. Reads in flight keep reading the files they hold open.
    pub(crate) fn delete_files(&self) -> Result<(), StorageError> {
        for path in [&*self.log_path, &self.index_path, &self.time_index_path] {
            match fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("delete", path)(e)),
            }
        }
        Ok(())
    }
}
