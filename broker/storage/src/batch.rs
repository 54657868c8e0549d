//! Zero-copy views over Kafka v2 record batches (`DefaultRecordBatch`, magic 2).
//!
//! These views never decode individual records (the `validate` module walks them on the produce
//! path): a batch is checked by its header and CRC32C, then stored as it came, with only the
//! fields Kafka lets the broker rewrite patched in place.
//!
//! Header layout (big-endian):
//!
//! | field                  | type | at  |
//! |------------------------|------|-----|
//! | baseOffset             | i64  | 0   |
//! | batchLength            | i32  | 8   |
//! | partitionLeaderEpoch   | i32  | 12  |
//! | magic                  | i8   | 16  |
//! | crc (CRC32C of 21..)   | u32  | 17  |
//! | attributes             | i16  | 21  |
//! | lastOffsetDelta        | i32  | 23  |
//! | baseTimestamp          | i64  | 27  |
//! | maxTimestamp           | i64  | 35  |
//! | producerId             | i64  | 43  |
//! | producerEpoch          | i16  | 51  |
//! | baseSequence           | i32  | 53  |
//! | recordCount            | i32  | 57  |
//! | records                |      | 61  |

use std::fmt;

/// Size of a batch header; the smallest valid batch.
pub const RECORD_BATCH_OVERHEAD: usize = 61;
/// Bytes before the part that `batchLength` counts (baseOffset + batchLength).
pub const LOG_OVERHEAD: usize = 12;
/// The only record format this log stores.
pub const MAGIC_V2: i8 = 2;

const BASE_OFFSET_AT: usize = 0;
const BATCH_LENGTH_AT: usize = 8;
const PARTITION_LEADER_EPOCH_AT: usize = 12;
const MAGIC_AT: usize = 16;
const CRC_AT: usize = 17;
const ATTRIBUTES_AT: usize = 21;
const LAST_OFFSET_DELTA_AT: usize = 23;
const BASE_TIMESTAMP_AT: usize = 27;
const MAX_TIMESTAMP_AT: usize = 35;
const PRODUCER_ID_AT: usize = 43;
const PRODUCER_EPOCH_AT: usize = 51;
const BASE_SEQUENCE_AT: usize = 53;
const RECORD_COUNT_AT: usize = 57;

const COMPRESSION_MASK: i16 = 0x07;
const TIMESTAMP_TYPE_BIT: i16 = 0x08;
const TRANSACTIONAL_BIT: i16 = 0x10;
const CONTROL_BIT: i16 = 0x20;

/// The bytes of a batch before its `magic`: base offset, length and partition leader epoch,
/// the part a leader patches that the CRC does not cover.
pub(crate) const UNCHECKED_PREFIX: usize = MAGIC_AT;

/// The first [`UNCHECKED_PREFIX`] bytes of `batch` (at least that long, as every validated
/// batch is) with `baseOffset` and `partitionLeaderEpoch` set.
pub(crate) fn patched_prefix(
    batch: &[u8],
    base_offset: i64,
    leader_epoch: i32,
) -> [u8; UNCHECKED_PREFIX] {
    let mut prefix = [0u8; UNCHECKED_PREFIX];
    if let Some(head) = batch.get(..UNCHECKED_PREFIX) {
        prefix.copy_from_slice(head);
    }
    prefix[BASE_OFFSET_AT..BASE_OFFSET_AT + 8].copy_from_slice(&base_offset.to_be_bytes());
    prefix[PARTITION_LEADER_EPOCH_AT..PARTITION_LEADER_EPOCH_AT + 4]
        .copy_from_slice(&leader_epoch.to_be_bytes());
    prefix
}

/// Why a buffer is not an acceptable v2 batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// Fewer bytes than a batch header (or than the length prefix) remain.
    #[error("{available} bytes remain, a record batch needs at least {needed}")]
    Truncated {
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        available: usize,
    },
    /// `batchLength` is smaller than the header it must cover.
    #[error("batchLength {batch_length} is smaller than the v2 header")]
    BadLength {
        /// The declared length.
        batch_length: i32,
    },
    /// The magic byte is not 2 (message format v0/v1 are not stored by this log).
    #[error("magic byte {magic} is not supported: only record batch v2 (magic 2) is")]
    UnsupportedMagic {
        /// The magic found.
        magic: i8,
    },
    /// The CRC32C over attributes..end does not match the header.
    #[error("CRC32C mismatch: header says {stored:#010x}, content has {computed:#010x}")]
    CrcMismatch {
        /// CRC in the header.
        stored: u32,
        /// CRC computed over the batch.
        computed: u32,
    },
    /// `recordCount` is negative.
    #[error("negative recordCount {record_count}")]
    NegativeRecordCount {
        /// The declared count.
        record_count: i32,
    },
    /// `lastOffsetDelta` disagrees with `recordCount`.
    #[error("lastOffsetDelta {last_offset_delta} does not match recordCount {record_count}")]
    LastOffsetDeltaMismatch {
        /// The declared delta.
        last_offset_delta: i32,
        /// The declared count.
        record_count: i32,
    },
    /// A batch with no records where records are required (produce).
    #[error("the record batch holds no records")]
    NoRecords,
    /// A control batch (transaction marker) in a producer's request: only the broker writes those.
    #[error("clients may not write control batches")]
    ControlBatchFromClient,
    /// Attribute bits 0-2 name no codec Kafka knows (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd).
    #[error("unknown compression codec id {codec}: Kafka's are 0 (none) to 4 (zstd)")]
    UnknownCompression {
        /// The codec id found.
        codec: u8,
    },
    /// The compressed records cannot be decompressed.
    #[error("the {codec} compressed records cannot be decompressed: {reason}")]
    Decompression {
        /// The codec named by the batch.
        codec: &'static str,
        /// What the decompressor reported.
        reason: String,
    },
    /// The records end before `recordCount` of them were read.
    #[error("recordCount is {record_count} but the batch holds only {found} records")]
    RecordCountMismatch {
        /// The declared count.
        record_count: i32,
        /// Records actually present.
        found: usize,
        /// Index in the record set of the first missing record.
        record: usize,
    },
    /// Bytes remain after the declared number of records.
    #[error("the batch holds more data than its {record_count} records")]
    TrailingBytes {
        /// The declared count.
        record_count: i32,
    },
    /// A record's fields are not consistent with its length, or a varint is malformed (longer
    /// than Kafka's 5 bytes for 32-bit or 10 for 64-bit values).
    #[error("record {record} is malformed: {reason}")]
    MalformedRecord {
        /// Index of the record in the record set.
        record: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// A key, value or header claims a length that is negative (other than -1, null) or larger
    /// than what is left of its record.
    #[error(
        "record {record}: {field} length {length} does not fit the {remaining} bytes left in the record"
    )]
    BadFieldLength {
        /// Index of the record in the record set.
        record: usize,
        /// Which field.
        field: &'static str,
        /// The length claimed.
        length: i64,
        /// Bytes left in the record when the length was read.
        remaining: u64,
    },
    /// Offset deltas must run 0, 1, .., recordCount-1.
    #[error("record {record} has offset delta {offset_delta}, expected {expected}")]
    OffsetDeltaMismatch {
        /// Index of the record in the record set.
        record: usize,
        /// The delta found.
        offset_delta: i32,
        /// The delta its position requires.
        expected: usize,
    },
    /// A producer field of the header is below -1 (its "unset" value).
    #[error("{field} {value} is invalid: it must be -1 (unset) or non-negative")]
    InvalidHeaderField {
        /// The header field.
        field: &'static str,
        /// Its value.
        value: i64,
    },
    /// A batch with a producer id must carry a sequence number (Kafka's `LogValidator`).
    #[error("invalid sequence number -1 in a record batch of producer {producer_id}")]
    MissingSequence {
        /// The producer id.
        producer_id: i64,
    },
    /// A record timestamp outside `message.timestamp.before.max.ms` /
    /// `message.timestamp.after.max.ms` of the broker's clock (KIP-937).
    #[error(
        "record {record}: timestamp {timestamp} is out of range: it should be within [{min}, {max}]"
    )]
    TimestampOutOfRange {
        /// Index of the record in the record set.
        record: usize,
        /// Its timestamp.
        timestamp: i64,
        /// Earliest accepted.
        min: i64,
        /// Latest accepted.
        max: i64,
    },
    /// A record without a key sent to a compacted log (Kafka `INVALID_RECORD`): compaction
    /// keeps the latest record per key, so every record needs one.
    #[error("record {record} has no key, but the topic is compacted (cleanup.policy=compact)")]
    MissingKey {
        /// Index of the record in the record set.
        record: usize,
    },
    /// Records could not be compressed with the codec the log stores them in.
    #[error("the records cannot be compressed with {codec}: {reason}")]
    Compression {
        /// The codec.
        codec: &'static str,
        /// What the compressor reported.
        reason: String,
    },
    /// A producer flagged the batch as LogAppendTime: only the broker sets that.
    #[error("producers may not set the timestamp type to LogAppendTime")]
    LogAppendTimeFromClient,
}

impl BatchError {
    /// True when the bytes are damaged (Kafka `CORRUPT_MESSAGE`), false when they are well formed
    /// but not acceptable (Kafka `INVALID_RECORD`).
    pub fn is_corruption(&self) -> bool {
        matches!(
            self,
            BatchError::Truncated { .. }
                | BatchError::BadLength { .. }
                | BatchError::CrcMismatch { .. }
                | BatchError::Decompression { .. }
        )
    }

    /// True for the timestamp rules (Kafka `INVALID_TIMESTAMP`).
    pub fn is_timestamp_error(&self) -> bool {
        matches!(
            self,
            BatchError::TimestampOutOfRange { .. } | BatchError::LogAppendTimeFromClient
        )
    }

    /// The index in the record set of the record at fault, when one is (KIP-467's
    /// `batch_index`).
    pub fn record_index(&self) -> Option<usize> {
        match self {
            BatchError::RecordCountMismatch { record, .. }
            | BatchError::MalformedRecord { record, .. }
            | BatchError::BadFieldLength { record, .. }
            | BatchError::OffsetDeltaMismatch { record, .. }
            | BatchError::TimestampOutOfRange { record, .. }
            | BatchError::MissingKey { record } => Some(*record),
            _ => None,
        }
    }
}

/// How the batch's timestamps were assigned (attribute bit 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchTimestampType {
    /// Set by the producer.
    CreateTime,
    /// Set by the broker on append; `maxTimestamp` applies to every record.
    LogAppendTime,
}

fn read_i16(buf: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([buf[at], buf[at + 1]])
}

fn read_i32(buf: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]])
}

fn read_i64(buf: &[u8], at: usize) -> i64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&buf[at..at + 8]);
    i64::from_be_bytes(b)
}

/// Total size (`LOG_OVERHEAD + batchLength`) of the batch starting at `buf[0]`, from its first
/// 12 bytes only. Fails when fewer than 12 bytes are given or the length is below a header.
pub fn batch_size(buf: &[u8]) -> Result<usize, BatchError> {
    if buf.len() < LOG_OVERHEAD {
        return Err(BatchError::Truncated {
            needed: LOG_OVERHEAD,
            available: buf.len(),
        });
    }
    let batch_length = read_i32(buf, BATCH_LENGTH_AT);
    let Ok(len) = usize::try_from(batch_length) else {
        return Err(BatchError::BadLength { batch_length });
    };
    if len < RECORD_BATCH_OVERHEAD - LOG_OVERHEAD {
        return Err(BatchError::BadLength { batch_length });
    }
    Ok(LOG_OVERHEAD + len)
}

/// The fixed header of a batch, decoded into plain values (no borrow of the bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    /// `baseOffset`.
    pub base_offset: i64,
    /// Total size of the batch in bytes (`LOG_OVERHEAD + batchLength`).
    pub size: usize,
    /// `partitionLeaderEpoch`.
    pub partition_leader_epoch: i32,
    /// `magic`.
    pub magic: i8,
    /// `attributes`.
    pub attributes: i16,
    /// `lastOffsetDelta`.
    pub last_offset_delta: i32,
    /// `baseTimestamp`.
    pub base_timestamp: i64,
    /// `maxTimestamp`.
    pub max_timestamp: i64,
    /// `producerId`.
    pub producer_id: i64,
    /// `producerEpoch`.
    pub producer_epoch: i16,
    /// `baseSequence`.
    pub base_sequence: i32,
    /// `recordCount`.
    pub record_count: i32,
}

impl BatchHeader {
    /// Decodes the header from the first [`RECORD_BATCH_OVERHEAD`] bytes of a batch; the
    /// records need not be present (used to walk a log file header by header).
    pub fn parse(buf: &[u8]) -> Result<Self, BatchError> {
        let size = batch_size(buf)?;
        if buf.len() < RECORD_BATCH_OVERHEAD {
            return Err(BatchError::Truncated {
                needed: RECORD_BATCH_OVERHEAD,
                available: buf.len(),
            });
        }
        Ok(BatchHeader {
            base_offset: read_i64(buf, BASE_OFFSET_AT),
            size,
            partition_leader_epoch: read_i32(buf, PARTITION_LEADER_EPOCH_AT),
            magic: i8::from_be_bytes([buf[MAGIC_AT]]),
            attributes: read_i16(buf, ATTRIBUTES_AT),
            last_offset_delta: read_i32(buf, LAST_OFFSET_DELTA_AT),
            base_timestamp: read_i64(buf, BASE_TIMESTAMP_AT),
            max_timestamp: read_i64(buf, MAX_TIMESTAMP_AT),
            producer_id: read_i64(buf, PRODUCER_ID_AT),
            producer_epoch: read_i16(buf, PRODUCER_EPOCH_AT),
            base_sequence: read_i32(buf, BASE_SEQUENCE_AT),
            record_count: read_i32(buf, RECORD_COUNT_AT),
        })
    }

    /// `baseOffset + lastOffsetDelta`.
    pub fn last_offset(&self) -> i64 {
        self.base_offset
            .saturating_add(i64::from(self.last_offset_delta))
    }
    /// The offset after this batch.
    pub fn next_offset(&self) -> i64 {
        self.last_offset().saturating_add(1)
    }
    /// Part of a transaction.
    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_BIT != 0
    }
    /// Holds control records.
    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_BIT != 0
    }
    /// Sequence of the last record (wraps at `i32::MAX`).
    pub fn last_sequence(&self) -> i32 {
        last_sequence(self.base_sequence, self.last_offset_delta)
    }
}

/// A read-only view of exactly one batch. Constructing it checks the framing (size and
/// `batchLength`); [`RecordBatch::validate`] checks the rest.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RecordBatch<'a> {
    buf: &'a [u8],
}

impl fmt::Debug for RecordBatch<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordBatch")
            .field("base_offset", &self.base_offset())
            .field("size", &self.size())
            .field("record_count", &self.record_count())
            .field("magic", &self.magic())
            .finish_non_exhaustive()
    }
}

impl<'a> RecordBatch<'a> {
    /// Views the batch at the start of `buf` (which may hold more bytes after it).
    pub fn parse(buf: &'a [u8]) -> Result<Self, BatchError> {
        let size = batch_size(buf)?;
        if buf.len() < size {
            return Err(BatchError::Truncated {
                needed: size,
                available: buf.len(),
            });
        }
        Ok(RecordBatch { buf: &buf[..size] })
    }

    /// Checks magic, CRC32C, `recordCount` and `lastOffsetDelta`. A batch may span more offsets
    /// than it holds records (compaction removes records but keeps the batch's last offset, as
    /// Kafka does), so `recordCount <= lastOffsetDelta + 1`; empty batches (count 0, which
    /// compaction leaves behind) pass. The produce path requires exactly `recordCount - 1`.
    pub fn validate(&self) -> Result<(), BatchError> {
        let magic = self.magic();
        if magic != MAGIC_V2 {
            return Err(BatchError::UnsupportedMagic { magic });
        }
        let stored = self.crc();
        let computed = self.compute_crc();
        if stored != computed {
            return Err(BatchError::CrcMismatch { stored, computed });
        }
        let record_count = self.record_count();
        let last_offset_delta = self.last_offset_delta();
        if record_count < 0 {
            return Err(BatchError::NegativeRecordCount { record_count });
        }
        let consistent = if record_count == 0 {
            last_offset_delta >= 0
        } else {
            last_offset_delta >= record_count - 1
        };
        if !consistent {
            return Err(BatchError::LastOffsetDeltaMismatch {
                last_offset_delta,
                record_count,
            });
        }
        Ok(())
    }

    /// The header as plain values.
    pub fn header(&self) -> BatchHeader {
        // The view was built by `parse`, which checked the framing and the size.
        BatchHeader {
            base_offset: self.base_offset(),
            size: self.size(),
            partition_leader_epoch: self.partition_leader_epoch(),
            magic: self.magic(),
            attributes: self.attributes(),
            last_offset_delta: self.last_offset_delta(),
            base_timestamp: self.base_timestamp(),
            max_timestamp: self.max_timestamp(),
            producer_id: self.producer_id(),
            producer_epoch: self.producer_epoch(),
            base_sequence: self.base_sequence(),
            record_count: self.record_count(),
        }
    }

    /// The batch's bytes.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.buf
    }
    /// Total size in bytes, header included.
    pub fn size(&self) -> usize {
        self.buf.len()
    }
    /// `baseOffset`.
    pub fn base_offset(&self) -> i64 {
        read_i64(self.buf, BASE_OFFSET_AT)
    }
    /// `baseOffset + lastOffsetDelta`.
    pub fn last_offset(&self) -> i64 {
        self.base_offset()
            .saturating_add(i64::from(self.last_offset_delta()))
    }
    /// The offset after this batch.
    pub fn next_offset(&self) -> i64 {
        self.last_offset().saturating_add(1)
    }
    /// `batchLength`.
    pub fn batch_length(&self) -> i32 {
        read_i32(self.buf, BATCH_LENGTH_AT)
    }
    /// `partitionLeaderEpoch`.
    pub fn partition_leader_epoch(&self) -> i32 {
        read_i32(self.buf, PARTITION_LEADER_EPOCH_AT)
    }
    /// `magic`.
    pub fn magic(&self) -> i8 {
        i8::from_be_bytes([self.buf[MAGIC_AT]])
    }
    /// The CRC stored in the header.
    pub fn crc(&self) -> u32 {
        u32::from_be_bytes([
            self.buf[CRC_AT],
            self.buf[CRC_AT + 1],
            self.buf[CRC_AT + 2],
            self.buf[CRC_AT + 3],
        ])
    }
    /// CRC32C of the bytes the header's CRC covers.
    pub fn compute_crc(&self) -> u32 {
        crc32c::crc32c(&self.buf[ATTRIBUTES_AT..])
    }
    /// `attributes`.
    pub fn attributes(&self) -> i16 {
        read_i16(self.buf, ATTRIBUTES_AT)
    }
    /// Compression codec id (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd).
    pub fn compression(&self) -> u8 {
        // Masked to three bits, so the narrowing cannot lose anything.
        (self.attributes() & COMPRESSION_MASK) as u8
    }
    /// Timestamp type from attribute bit 3.
    pub fn timestamp_type(&self) -> BatchTimestampType {
        if self.attributes() & TIMESTAMP_TYPE_BIT != 0 {
            BatchTimestampType::LogAppendTime
        } else {
            BatchTimestampType::CreateTime
        }
    }
    /// Part of a transaction.
    pub fn is_transactional(&self) -> bool {
        self.attributes() & TRANSACTIONAL_BIT != 0
    }
    /// Holds control records (transaction markers).
    pub fn is_control(&self) -> bool {
        self.attributes() & CONTROL_BIT != 0
    }
    /// `lastOffsetDelta`.
    pub fn last_offset_delta(&self) -> i32 {
        read_i32(self.buf, LAST_OFFSET_DELTA_AT)
    }
    /// `baseTimestamp`.
    pub fn base_timestamp(&self) -> i64 {
        read_i64(self.buf, BASE_TIMESTAMP_AT)
    }
    /// `maxTimestamp`.
    pub fn max_timestamp(&self) -> i64 {
        read_i64(self.buf, MAX_TIMESTAMP_AT)
    }
    /// `producerId` (-1 when not idempotent).
    pub fn producer_id(&self) -> i64 {
        read_i64(self.buf, PRODUCER_ID_AT)
    }
    /// `producerEpoch`.
    pub fn producer_epoch(&self) -> i16 {
        read_i16(self.buf, PRODUCER_EPOCH_AT)
    }
    /// `baseSequence` (-1 when not idempotent).
    pub fn base_sequence(&self) -> i32 {
        read_i32(self.buf, BASE_SEQUENCE_AT)
    }
    /// Sequence of the last record; sequences wrap at `i32::MAX` as in Kafka.
    pub fn last_sequence(&self) -> i32 {
        last_sequence(self.base_sequence(), self.last_offset_delta())
    }
    /// `recordCount`.
    pub fn record_count(&self) -> i32 {
        read_i32(self.buf, RECORD_COUNT_AT)
    }
}

/// Kafka's `DefaultRecordBatch.incrementSequence`: sequences wrap from `i32::MAX` to 0.
pub fn increment_sequence(sequence: i32, increment: i32) -> i32 {
    if sequence > i32::MAX - increment {
        increment - (i32::MAX - sequence) - 1
    } else {
        sequence + increment
    }
}

/// Last sequence of a batch with `base_sequence` and `last_offset_delta`; -1 stays -1.
pub fn last_sequence(base_sequence: i32, last_offset_delta: i32) -> i32 {
    if base_sequence < 0 {
        return -1;
    }
    increment_sequence(base_sequence, last_offset_delta.max(0))
}

/// A mutable view of one batch, for the fields the broker rewrites on append.
#[derive(Debug)]
pub struct RecordBatchMut<'a> {
    buf: &'a mut [u8],
}

impl<'a> RecordBatchMut<'a> {
    /// Views the batch at the start of `buf` (checks framing like [`RecordBatch::parse`]).
    pub fn parse(buf: &'a mut [u8]) -> Result<Self, BatchError> {
        let size = RecordBatch::parse(buf)?.size();
        Ok(RecordBatchMut {
            buf: &mut buf[..size],
        })
    }

    /// A read-only view of the same bytes.
    pub fn as_batch(&self) -> RecordBatch<'_> {
        RecordBatch { buf: self.buf }
    }

    /// Sets `baseOffset` (not covered by the CRC).
    pub fn set_base_offset(&mut self, base_offset: i64) {
        self.buf[BASE_OFFSET_AT..BASE_OFFSET_AT + 8].copy_from_slice(&base_offset.to_be_bytes());
    }

    /// Sets `partitionLeaderEpoch` (not covered by the CRC).
    pub fn set_partition_leader_epoch(&mut self, leader_epoch: i32) {
        self.buf[PARTITION_LEADER_EPOCH_AT..PARTITION_LEADER_EPOCH_AT + 4]
            .copy_from_slice(&leader_epoch.to_be_bytes());
    }

    /// `message.timestamp.type=LogAppendTime`: marks the batch as log-append-time and sets
    /// `maxTimestamp` (which then stands for every record), then recomputes the CRC because both
    /// fields are covered by it. Records stay untouched, as in Kafka.
    pub fn set_log_append_time(&mut self, timestamp: i64) {
        let attributes = read_i16(self.buf, ATTRIBUTES_AT) | TIMESTAMP_TYPE_BIT;
        self.buf[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
        self.buf[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&timestamp.to_be_bytes());
        self.update_crc();
    }

    /// Sets a `CreateTime` batch's `maxTimestamp` (Kafka writes the largest record timestamp
    /// there when the producer's value differs) and recomputes the CRC.
    pub fn set_max_timestamp(&mut self, timestamp: i64) {
        self.buf[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&timestamp.to_be_bytes());
        self.update_crc();
    }

    /// Recomputes and stores the CRC32C.
    pub fn update_crc(&mut self) {
        let crc = crc32c::crc32c(&self.buf[ATTRIBUTES_AT..]);
        self.buf[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    }
}

/// Iterates the batches of a record set (concatenated batches), yielding each batch's byte
/// position in the set. Stops after the first framing error.
#[derive(Debug, Clone)]
pub struct Batches<'a> {
    buf: &'a [u8],
    position: usize,
    failed: bool,
}

impl<'a> Batches<'a> {
    /// Iterates over `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Batches {
            buf,
            position: 0,
            failed: false,
        }
    }
}

impl<'a> Iterator for Batches<'a> {
    type Item = Result<(usize, RecordBatch<'a>), (usize, BatchError)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.position >= self.buf.len() {
            return None;
        }
        let position = self.position;
        match RecordBatch::parse(&self.buf[position..]) {
            Ok(batch) => {
                self.position += batch.size();
                Some(Ok((position, batch)))
            }
            Err(e) => {
                self.failed = true;
                Some(Err((position, e)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal valid batch with `count` one-byte "records" (content is opaque to the view).
    fn raw_batch(count: i32, payload: &[u8]) -> Vec<u8> {
        let mut b = vec![0u8; RECORD_BATCH_OVERHEAD];
        b.extend_from_slice(payload);
        let len = i32::try_from(b.len() - LOG_OVERHEAD).expect("small");
        b[8..12].copy_from_slice(&len.to_be_bytes());
        b[12..16].copy_from_slice(&(-1i32).to_be_bytes());
        b[16] = 2;
        b[23..27].copy_from_slice(&(count - 1).max(0).to_be_bytes());
        b[27..35].copy_from_slice(&1000i64.to_be_bytes());
        b[35..43].copy_from_slice(&2000i64.to_be_bytes());
        b[43..51].copy_from_slice(&(-1i64).to_be_bytes());
        b[51..53].copy_from_slice(&(-1i16).to_be_bytes());
        b[53..57].copy_from_slice(&(-1i32).to_be_bytes());
        b[57..61].copy_from_slice(&count.to_be_bytes());
        let crc = crc32c::crc32c(&b[21..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        b
    }

    #[test]
    fn valid_batch_exposes_header_fields() {
        let b = raw_batch(3, b"abc");
        let v = RecordBatch::parse(&b).expect("framing");
        v.validate().expect("valid");
        assert_eq!(v.size(), 64);
        assert_eq!(v.record_count(), 3);
        assert_eq!(v.last_offset_delta(), 2);
        assert_eq!(v.max_timestamp(), 2000);
        assert_eq!(v.base_timestamp(), 1000);
        assert_eq!(v.producer_id(), -1);
        assert_eq!(v.timestamp_type(), BatchTimestampType::CreateTime);
        assert_eq!(v.last_sequence(), -1);
    }

    #[test]
    fn validation_table() {
        let good = raw_batch(2, b"xy");
        let cases: Vec<(&str, Vec<u8>, BatchError)> = vec![
            (
                "short",
                good[..40].to_vec(),
                BatchError::Truncated {
                    needed: 63,
                    available: 40,
                },
            ),
            (
                "no length",
                good[..10].to_vec(),
                BatchError::Truncated {
                    needed: 12,
                    available: 10,
                },
            ),
            (
                "length too small",
                {
                    let mut b = good.clone();
                    b[8..12].copy_from_slice(&10i32.to_be_bytes());
                    b
                },
                BatchError::BadLength { batch_length: 10 },
            ),
            (
                "negative length",
                {
                    let mut b = good.clone();
                    b[8..12].copy_from_slice(&(-5i32).to_be_bytes());
                    b
                },
                BatchError::BadLength { batch_length: -5 },
            ),
            (
                "magic 1",
                {
                    let mut b = good.clone();
                    b[16] = 1;
                    b
                },
                BatchError::UnsupportedMagic { magic: 1 },
            ),
            (
                "count mismatch",
                {
                    let mut b = good.clone();
                    b[57..61].copy_from_slice(&5i32.to_be_bytes());
                    RecordBatchMut::parse(&mut b).expect("framing").update_crc();
                    b
                },
                BatchError::LastOffsetDeltaMismatch {
                    last_offset_delta: 1,
                    record_count: 5,
                },
            ),
            (
                "negative count",
                {
                    let mut b = good.clone();
                    b[57..61].copy_from_slice(&(-1i32).to_be_bytes());
                    RecordBatchMut::parse(&mut b).expect("framing").update_crc();
                    b
                },
                BatchError::NegativeRecordCount { record_count: -1 },
            ),
        ];
        for (name, bytes, want) in cases {
            let got = RecordBatch::parse(&bytes).and_then(|b| b.validate());
            assert_eq!(got, Err(want), "{name}");
        }
        let mut flipped = good.clone();
        flipped[62] ^= 0x40;
        let err = RecordBatch::parse(&flipped)
            .expect("framing")
            .validate()
            .expect_err("crc");
        assert!(matches!(err, BatchError::CrcMismatch { .. }));
        assert!(err.is_corruption());
    }

    #[test]
    fn patches_keep_crc_valid() {
        let mut b = raw_batch(2, b"xy");
        let mut m = RecordBatchMut::parse(&mut b).expect("framing");
        m.set_base_offset(42);
        m.set_partition_leader_epoch(7);
        m.as_batch()
            .validate()
            .expect("offset and epoch are outside the CRC");
        m.set_log_append_time(9999);
        let v = m.as_batch();
        v.validate().expect("CRC recomputed");
        assert_eq!(v.base_offset(), 42);
        assert_eq!(v.last_offset(), 43);
        assert_eq!(v.partition_leader_epoch(), 7);
        assert_eq!(v.max_timestamp(), 9999);
        assert_eq!(v.timestamp_type(), BatchTimestampType::LogAppendTime);
    }

    #[test]
    fn iterates_concatenated_batches_and_stops_at_garbage() {
        let mut set = raw_batch(1, b"a");
        set.extend(raw_batch(2, b"bc"));
        set.extend_from_slice(&[0, 0, 0]);
        let items: Vec<_> = Batches::new(&set).collect();
        assert_eq!(items.len(), 3);
        assert!(matches!(items[0], Ok((0, _))));
        assert!(matches!(items[1], Ok((62, _))));
        assert!(matches!(items[2], Err((125, BatchError::Truncated { .. }))));
    }

    #[test]
    fn sequences_wrap_like_kafka() {
        assert_eq!(increment_sequence(i32::MAX, 1), 0);
        assert_eq!(increment_sequence(i32::MAX - 1, 3), 1);
        assert_eq!(increment_sequence(5, 3), 8);
        assert_eq!(last_sequence(i32::MAX, 2), 1);
        assert_eq!(last_sequence(-1, 4), -1);
    }
}
