//! The read side of [`PartitionLog`]: fetches and timestamp lookups. None of it takes the
//! append lock: each call loads the published `LogSnapshot` and reads the files with
//! positional reads.

use crate::error::StorageError;
use crate::file_records::{FileRange, FileRecords};
use crate::log::{PartitionLog, ReadResult, TimestampOffset};

impl PartitionLog {
    /// [`PartitionLog::read_file_records`], with the batches read into memory (one 64-byte
    /// aligned buffer: copying from the page cache into an aligned destination is several times
    /// faster).
    pub fn read(
        &self,
        fetch_offset: i64,
        max_bytes: usize,
        max_offset: i64,
        min_one_batch: bool,
    ) -> Result<ReadResult, StorageError> {
        let records = self.read_file_records(fetch_offset, max_bytes, max_offset, min_one_batch)?;
        Ok(ReadResult {
            first_offset: records.first_offset,
            records: records.read_to_bytes()?,
        })
    }

    /// Reads whole batches starting with the batch that contains `fetch_offset` (Kafka
    /// semantics: the client skips records below the offset it asked for).
    ///
    /// Returns at most `max_bytes`, except that with `min_one_batch` the first batch is
    /// returned even if larger (KIP-74). Batches whose base offset is `>= max_offset` (e.g. the
    /// high watermark) are not returned. Reads may continue into later segments. An offset below
    /// the log start or above the log end is [`StorageError::OffsetOutOfRange`]; the log end
    /// offset itself reads as empty.
    ///
    /// The batches are returned as ranges of the segment files ([`FileRecords`]), so a caller
    /// can send them to a socket without reading them into memory (`sendfile`); see
    /// [`PartitionLog::read`] for the bytes. Every batch returned is known valid (framing, CRC,
    /// header, records of uncompressed batches; see `verify`): a damaged one — disk
    /// corruption, or a batch an older version stored without checking its records — is never
    /// served. The read stops before it, and a read that starts at it is
    /// [`StorageError::CorruptBatchInLog`], so the client is told where the log is damaged.
    pub fn read_file_records(
        &self,
        fetch_offset: i64,
        max_bytes: usize,
        max_offset: i64,
        min_one_batch: bool,
    ) -> Result<FileRecords, StorageError> {
        match self.plan_read(fetch_offset, max_bytes, max_offset, min_one_batch) {
            // A sealed segment whose files were closed (see `open_files`) and then deleted by
            // retention during the read: the offset is gone, as a read started later sees.
            Err(StorageError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound
                    && fetch_offset < self.log_start_offset() =>
            {
                Err(StorageError::OffsetOutOfRange {
                    requested: fetch_offset,
                    log_start_offset: self.log_start_offset(),
                    log_end_offset: self.log_end_offset(),
                })
            }
            other => other,
        }
    }

    fn plan_read(
        &self,
        fetch_offset: i64,
        max_bytes: usize,
        max_offset: i64,
        min_one_batch: bool,
    ) -> Result<FileRecords, StorageError> {
        let snap = self.snapshot.load_full();
        if fetch_offset < snap.log_start_offset || fetch_offset > snap.log_end_offset {
            return Err(StorageError::OffsetOutOfRange {
                requested: fetch_offset,
                log_start_offset: snap.log_start_offset,
                log_end_offset: snap.log_end_offset,
            });
        }
        let limit = max_offset.min(snap.log_end_offset);
        if fetch_offset >= limit {
            return Ok(FileRecords::default());
        }
        let segments = &snap.segments;
        let mut i = segments
            .partition_point(|s| s.base_offset() <= fetch_offset)
            .saturating_sub(1);
        let (start, first) = loop {
            let Some(segment) = segments.get(i) else {
                return Ok(FileRecords::default());
            };
            if let Some(found) = segment.find_batch(fetch_offset, snap.end_of(i))? {
                break found;
            }
            i += 1;
        };
        if first.base_offset >= limit {
            return Ok(FileRecords::default());
        }
        let budget = if min_one_batch {
            max_bytes.max(first.size)
        } else {
            max_bytes
        };
        if budget < first.size {
            return Ok(FileRecords::default());
        }

        // Whole batches only, as many as the budget holds and all below `limit`. Where a
        // segment's rest fits the budget and lies entirely below `limit` it is taken without
        // looking at its batches; otherwise batch headers are walked.
        let mut ranges = Vec::new();
        let mut total = 0usize;
        'segments: for (j, segment) in segments.iter().enumerate().skip(i) {
            let from = if j == i { start } else { 0 };
            let end = snap.end_of(j);
            let below = segments
                .get(j + 1)
                .map_or(snap.log_end_offset, |next| next.base_offset());
            let (range_end, last) =
                if end > from && below <= limit && (end - from) as usize <= budget - total {
                    (end, false)
                } else {
                    let mut position = from;
                    let mut stop = false;
                    let mut taken = 0usize;
                    while let Some(header) = segment.header_at(position, end)? {
                        if header.base_offset >= limit || header.size > budget - total - taken {
                            stop = true;
                            break;
                        }
                        position += header.size as u64;
                        taken += header.size;
                    }
                    // A header that does not parse below the committed end cannot happen with
                    // whole batches; stop there rather than skip over it.
                    (position, stop || position < end)
                };
            if range_end <= from {
                break 'segments;
            }
            // Only batches known valid are sent (see `verify`).
            let good = segment.verified_end(from, range_end)?;
            if good <= from {
                if ranges.is_empty() {
                    return Err(StorageError::CorruptBatchInLog {
                        path: segment.log_path().to_path_buf(),
                        position: from,
                        offset: fetch_offset,
                        reason: "the record batch there fails validation".to_string(),
                    });
                }
                break 'segments;
            }
            ranges.push(FileRange::new(segment, from, (good - from) as usize)?);
            total += (good - from) as usize;
            if last || good < range_end {
                break 'segments;
            }
        }
        if total == 0 {
            return Ok(FileRecords::default());
        }
        Ok(FileRecords {
            ranges,
            len: total,
            first_offset: Some(first.base_offset),
        })
    }

    /// ListOffsets by timestamp: the first batch (at or after the log start offset) whose max
    /// timestamp is `>= timestamp`, found through the time indexes and then a scan of batch
    /// headers. Precision is the batch: the offset returned is the batch's first offset (raised
    /// to the log start offset) and the timestamp its max timestamp; the client skips the
    /// records before the one it wants. `None` when no batch qualifies.
    pub fn offset_for_timestamp(
        &self,
        timestamp: i64,
    ) -> Result<Option<TimestampOffset>, StorageError> {
        let snap = self.snapshot.load_full();
        for (i, segment) in snap.segments.iter().enumerate() {
            if snap.below_start(i) || segment.max_timestamp().0 < timestamp {
                continue;
            }
            let end = snap.end_of(i);
            let mut position = segment.timestamp_scan_start(timestamp)?;
            while let Some(header) = segment.header_at(position, end)? {
                if header.max_timestamp >= timestamp
                    && header.last_offset() >= snap.log_start_offset
                {
                    return Ok(Some(TimestampOffset {
                        timestamp: header.max_timestamp,
                        offset: header.base_offset.max(snap.log_start_offset),
                    }));
                }
                position += header.size as u64;
            }
        }
        Ok(None)
    }

    /// The largest timestamp in the log and where it is (ListOffsets `MAX_TIMESTAMP`, KIP-734),
    /// at batch precision: the offset is the first offset of the first batch that carried it.
    /// `None` when the log is empty or its batches carry no timestamps.
    pub fn latest_timestamp(&self) -> Option<TimestampOffset> {
        let snap = self.snapshot.load();
        if snap.log_start_offset >= snap.log_end_offset {
            return None;
        }
        let mut best: Option<TimestampOffset> = None;
        for (i, segment) in snap.segments.iter().enumerate() {
            if snap.below_start(i) {
                continue;
            }
            let (timestamp, offset) = segment.max_timestamp();
            if timestamp >= 0 && best.is_none_or(|b| timestamp > b.timestamp) {
                best = Some(TimestampOffset {
                    timestamp,
                    offset: offset.max(snap.log_start_offset),
                });
            }
        }
        best
    }
}
