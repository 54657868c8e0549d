//! Walking a segment's batches: the chunked scan, crash recovery (rebuilding the indexes and
//! cutting a torn tail), the cheap load of a cleanly closed segment, and truncation.

use std::fs;
use std::sync::atomic::Ordering;

use super::{Indexes, ScanOutcome, Segment, SegmentState, restored_age};
use crate::batch::RecordBatch;
use crate::error::{StorageError, io_err};
use crate::index::{OFFSET_ENTRY_SIZE, OffsetEntry, OffsetIndex, TIME_ENTRY_SIZE, TimeIndex};

impl Segment {
    /// Whether the first batch's length prefix says it fills the whole `log_size` bytes.
    fn is_one_batch(&self, log: &std::fs::File, log_size: u64) -> bool {
        use std::os::unix::fs::FileExt;
        // baseOffset (8 bytes), then batchLength (4): the bytes that follow it.
        let mut prefix = [0u8; 12];
        if log.read_exact_at(&mut prefix, 0).is_err() {
            return false;
        }
        let length = i32::from_be_bytes([prefix[8], prefix[9], prefix[10], prefix[11]]);
        u64::try_from(length).is_ok_and(|length| length + 12 == log_size)
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
        // A log longer than one index interval has offset index entries, unless it is one
        // batch (entries are added before a batch once the bytes before it pass the
        // interval); sealing always leaves a time index entry when there is an offset entry.
        if offset_entries == 0
            && log_size > index_interval_bytes as u64
            && !self.is_one_batch(&files.log, log_size)
        {
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
        self.begin_truncation();
        self.files()?
            .log
            .set_len(position)
            .map_err(io_err("truncate", &self.log_path))?;
        self.size.store(position, Ordering::Release);
        self.verified_to.fetch_min(position, Ordering::AcqRel);
        self.recover(index_interval_bytes, false, now_ms)?;
        self.end_truncation(self.next_offset());
        // The segment keeps its age for segment.ms when data remains in it.
        let mut state = self.state.write();
        if state.next_offset > self.base_offset && created_ms.is_some() {
            state.created_ms = created_ms;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::batch::BatchHeader;
    use crate::records::test_batch;
    use crate::segment::Segment;

    fn batch(base_offset: i64, records: usize, value_size: usize) -> Vec<u8> {
        test_batch(base_offset, records, &vec![b'v'; value_size])
    }

    fn sealed(batches: &[Vec<u8>], interval: usize) -> (tempfile::TempDir, Segment) {
        let dir = tempfile::tempdir().expect("tempdir");
        let segment = Segment::create(dir.path(), 0).expect("create");
        for bytes in batches {
            let header = BatchHeader::parse(bytes).expect("header");
            segment
                .append(bytes, &[header], interval, 0)
                .expect("append");
        }
        segment.seal().expect("seal");
        drop(segment);
        let segment = Segment::open(dir.path(), 0).expect("open");
        (dir, segment)
    }

    #[test]
    fn one_batch_larger_than_the_index_interval_needs_no_index_entry() {
        let (_dir, segment) = sealed(&[batch(0, 10, 1_000)], 4096);
        assert_eq!(segment.load(4096).expect("load"), Ok(()));
    }

    #[test]
    fn several_batches_past_the_interval_without_an_index_entry_are_rebuilt() {
        let (_dir, segment) = sealed(&[batch(0, 10, 1_000), batch(10, 10, 1_000)], 4096);
        // The second batch was indexed when appended; an index emptied since must be rebuilt.
        std::fs::write(&segment.index_path, b"").expect("empty the index");
        let reopened = Segment::open(segment.log_path().parent().expect("dir"), 0).expect("open");
        assert!(reopened.load(4096).expect("load").is_err());
    }
}
