//! The read side of [`PartitionLog`]: fetches and timestamp lookups. None of it takes the
//! append lock: each call loads the published `LogSnapshot` and reads the files with
//! positional reads.

use bytes::Bytes;

use crate::batch::Batches;
use crate::error::StorageError;
use crate::log::{PartitionLog, ReadResult, TimestampOffset};
use crate::validate::validate_stored_batch;

impl PartitionLog {
    /// Reads whole batches starting with the batch that contains `fetch_offset` (Kafka
    /// semantics: the client skips records below the offset it asked for).
    ///
    /// Returns at most `max_bytes`, except that with `min_one_batch` the first batch is
    /// returned even if larger (KIP-74). Batches whose base offset is `>= max_offset` (e.g. the
    /// high watermark) are not returned. Reads may continue into later segments. An offset below
    /// the log start or above the log end is [`StorageError::OffsetOutOfRange`]; the log end
    /// offset itself reads as empty.
    ///
    /// Every batch returned passes [`validate_stored_batch`] (framing, CRC, header, and the
    /// records of uncompressed batches). A batch that fails — disk corruption, or a batch an
    /// older version stored without checking its records — is never served: the read stops
    /// before it, and a read that starts at it is [`StorageError::CorruptBatchInLog`], so the
    /// client is told where the log is damaged instead of being fed bytes it cannot parse.
    pub fn read(
        &self,
        fetch_offset: i64,
        max_bytes: usize,
        max_offset: i64,
        min_one_batch: bool,
    ) -> Result<ReadResult, StorageError> {
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
            return Ok(ReadResult::default());
        }
        let segments = &snap.segments;
        let mut i = segments
            .partition_point(|s| s.base_offset() <= fetch_offset)
            .saturating_sub(1);
        let (start, first) = loop {
            let Some(segment) = segments.get(i) else {
                return Ok(ReadResult::default());
            };
            if let Some(found) = segment.find_batch(fetch_offset, snap.end_of(i))? {
                break found;
            }
            i += 1;
        };
        if first.base_offset >= limit {
            return Ok(ReadResult::default());
        }
        let budget = if min_one_batch {
            max_bytes.max(first.size)
        } else {
            max_bytes
        };
        if budget < first.size {
            return Ok(ReadResult::default());
        }

        // Plan the byte ranges, then read them into one 64-byte aligned buffer: copying from
        // the page cache into an aligned destination is several times faster.
        let mut ranges = Vec::new();
        let mut total = 0usize;
        for (j, segment) in segments.iter().enumerate().skip(i) {
            let from = if j == i { start } else { 0 };
            let end = snap.end_of(j);
            if end > from {
                let take = ((end - from) as usize).min(budget - total);
                ranges.push((segment, from, take));
                total += take;
            }
            if total >= budget {
                break;
            }
        }
        let (mut buf, aligned_at) = aligned_buffer(total);
        let mut filled = 0;
        for (segment, from, len) in ranges {
            let dst = &mut buf[aligned_at + filled..aligned_at + filled + len];
            let n = segment.read_at(dst, from)?;
            filled += n;
            if n < len {
                // The segment shrank under us (truncation): stop at what is there.
                break;
            }
        }
        let mut valid = 0;
        for item in Batches::new(&buf[aligned_at..aligned_at + filled]) {
            let Ok((position, batch)) = item else { break };
            if batch.base_offset() >= limit {
                break;
            }
            if let Err(source) = validate_stored_batch(&batch) {
                if position == 0 {
                    return Err(StorageError::CorruptBatchInLog {
                        path: segments[i].log_path().to_path_buf(),
                        position: start,
                        offset: fetch_offset,
                        reason: source.to_string(),
                    });
                }
                break;
            }
            valid = position + batch.size();
        }
        if valid == 0 {
            return Ok(ReadResult::default());
        }
        Ok(ReadResult {
            records: Bytes::from(buf).slice(aligned_at..aligned_at + valid),
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

/// A zeroed buffer of `len + 63` bytes and the index at which a 64-byte aligned run of `len`
/// bytes starts.
fn aligned_buffer(len: usize) -> (Vec<u8>, usize) {
    const ALIGN: usize = 64;
    let buf = vec![0u8; len + ALIGN - 1];
    let misalignment = buf.as_ptr() as usize % ALIGN;
    (buf, (ALIGN - misalignment) % ALIGN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_buffer_is_aligned() {
        for len in [0, 1, 63, 64, 4096, 1 << 20] {
            let (buf, at) = aligned_buffer(len);
            assert_eq!((buf.as_ptr() as usize + at) % 64, 0);
            assert!(buf.len() >= at + len);
        }
    }
}
