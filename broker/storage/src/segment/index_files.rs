//! A segment's index files: lookups in the offset and time indexes (in memory for the active
//! segment, binary searches over the files for sealed ones) and writing them out.

use std::os::unix::fs::FileExt;

use super::{Indexes, Segment};
use crate::batch::BatchHeader;
use crate::error::{StorageError, io_err};
use crate::index::{OFFSET_ENTRY_SIZE, OffsetEntry, TIME_ENTRY_SIZE, TimeEntry};

impl Segment {
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

    pub(super) fn offset_entry_at(&self, i: u64) -> Result<OffsetEntry, StorageError> {
        let mut buf = [0u8; OFFSET_ENTRY_SIZE];
        self.files()?
            .index
            .read_exact_at(&mut buf, i * OFFSET_ENTRY_SIZE as u64)
            .map_err(io_err("read", &self.index_path))?;
        Ok(OffsetEntry::decode(buf))
    }

    pub(super) fn time_entry_at(&self, i: u64) -> Result<TimeEntry, StorageError> {
        let mut buf = [0u8; TIME_ENTRY_SIZE];
        self.files()?
            .time_index
            .read_exact_at(&mut buf, i * TIME_ENTRY_SIZE as u64)
            .map_err(io_err("read", &self.time_index_path))?;
        Ok(TimeEntry::decode(buf))
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
    pub(super) fn rewrite_indexes(&self) -> Result<(), StorageError> {
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
}
