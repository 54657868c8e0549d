//! Record-level validation of v2 batches, as Kafka's `LogValidator` does it.
//!
//! The header and CRC32C are checked by [`RecordBatch::validate`]; a CRC only proves the bytes
//! are the ones the client sent, not that they are records. This module walks the records
//! themselves, once, without building them:
//!
//! - every record's length varint and the fields inside it (attributes, timestamp and offset
//!   deltas, key, value, headers) are consistent, lie inside the batch and leave nothing over;
//! - the number of records equals `recordCount`, and offset deltas run 0..n-1 (so
//!   `lastOffsetDelta` matches too);
//! - the codec is one of Kafka's (0 none .. 4 zstd); a compressed batch is decompressed in a
//!   streaming pass through a small buffer, never held whole in memory, and is stored as the
//!   client compressed it;
//! - producer fields are either unset (-1) or non-negative, and a producer id comes with a
//!   sequence;
//! - with `message.timestamp.type=CreateTime`, every record's timestamp lies within
//!   `[now - message.timestamp.before.max.ms, now + message.timestamp.after.max.ms]` (KIP-937),
//!   and clients may not flag a batch as `LogAppendTime`.
//!
//! - on a compacted log (`cleanup.policy=compact`) every record of a data batch has a key.
//!
//! Stored batches may hold fewer records than offsets: the cleaner removes records and keeps a
//! batch's offset range, so their offset deltas only need to increase within it.
//!
//! Reads use the structural part only ([`validate_stored_batch`]): what is in the log passed
//! these checks when it was written unless a disk or an older version put it there.

use std::io::{self, Read};

use crate::batch::{BatchError, BatchTimestampType, RecordBatch};
use crate::config::TimestampType;

/// Kafka's codec ids (attributes bits 0-2).
const NONE: u8 = 0;
const GZIP: u8 = 1;
const SNAPPY: u8 = 2;
const LZ4: u8 = 3;
const ZSTD: u8 = 4;

/// Bytes of decompressed data held at a time while walking a compressed batch.
const STREAM_BUFFER: usize = 16 * 1024;

/// The producer-facing rules: what [`validate_produce_batch`] checks besides structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProduceRules {
    /// The broker's clock, in ms since the epoch.
    pub now_ms: i64,
    /// The topic's `message.timestamp.type`: timestamps are only checked with `CreateTime`.
    pub timestamp_type: TimestampType,
    /// `message.timestamp.before.max.ms`: how far in the past a timestamp may lie.
    pub timestamp_before_max_ms: i64,
    /// `message.timestamp.after.max.ms`: how far in the future a timestamp may lie.
    pub timestamp_after_max_ms: i64,
    /// The log is compacted: records of data batches must have keys.
    pub require_keys: bool,
    /// The batch comes from a producer ([`crate::AppendOrigin::Client`]): a batch with a
    /// producer id must then carry a sequence. The broker's coordinators write transactional
    /// batches without one (offset commits of a transaction).
    pub from_client: bool,
}

impl ProduceRules {
    /// The accepted timestamp range, saturating at the ends of `i64`.
    fn timestamp_window(&self) -> (i64, i64) {
        (
            self.now_ms
                .saturating_sub(self.timestamp_before_max_ms.max(0)),
            self.now_ms
                .saturating_add(self.timestamp_after_max_ms.max(0)),
        )
    }
}

/// What walking a batch's records found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordsSummary {
    /// The largest record timestamp (-1 when no record carries one), which Kafka writes into
    /// the header's `maxTimestamp` when the client's value differs.
    pub max_timestamp: i64,
}

/// Validates a batch from a producer (or the broker's own coordinators) before it is appended:
/// framing, CRC, header, every record, and the timestamp rules. `first_record_index` is the
/// number of records in the record set before this batch, so errors name a record by its
/// index in the record set (Kafka's KIP-467 `batch_index`, which is the record's index).
pub fn validate_produce_batch(
    batch: &RecordBatch<'_>,
    first_record_index: usize,
    rules: &ProduceRules,
) -> Result<RecordsSummary, BatchError> {
    batch.validate()?;
    if batch.record_count() == 0 {
        return Err(BatchError::NoRecords);
    }
    if batch.last_offset_delta() != batch.record_count() - 1 {
        return Err(BatchError::LastOffsetDeltaMismatch {
            last_offset_delta: batch.last_offset_delta(),
            record_count: batch.record_count(),
        });
    }
    check_producer_fields(batch, rules.from_client)?;
    let require_keys = rules.require_keys && !batch.is_control();
    let check_timestamps = rules.timestamp_type == TimestampType::CreateTime;
    if check_timestamps && batch.timestamp_type() == BatchTimestampType::LogAppendTime {
        return Err(BatchError::LogAppendTimeFromClient);
    }
    let (min, max) = rules.timestamp_window();
    walk(
        batch,
        first_record_index,
        Offsets::Contiguous,
        |record, timestamp, has_key| {
            if require_keys && !has_key {
                return Err(BatchError::MissingKey { record });
            }
            // -1 is Kafka's NO_TIMESTAMP, which the rule skips.
            if check_timestamps && timestamp != -1 && !(min..=max).contains(&timestamp) {
                return Err(BatchError::TimestampOutOfRange {
                    record,
                    timestamp,
                    min,
                    max,
                });
            }
            Ok(())
        },
    )
}

/// Validates a batch read back from the log: framing, CRC, header and record structure, but
/// no producer or timestamp rule (a log holds what those rules allowed when it was written).
/// A compressed batch's records are not decompressed here: reads stay zero-decode, and its
/// CRC still covers every stored byte.
pub fn validate_stored_batch(batch: &RecordBatch<'_>) -> Result<(), BatchError> {
    batch.validate()?;
    let codec = batch.compression();
    if codec > ZSTD {
        return Err(BatchError::UnknownCompression { codec });
    }
    if codec == NONE && batch.record_count() > 0 {
        let mut source = SliceSource::new(records_of(batch));
        walk_records(&mut source, batch, 0, Offsets::Increasing, |_, _, _| Ok(()))?;
    }
    Ok(())
}

fn records_of<'a>(batch: &RecordBatch<'a>) -> &'a [u8] {
    &batch.as_bytes()[crate::batch::RECORD_BATCH_OVERHEAD..]
}

fn check_producer_fields(batch: &RecordBatch<'_>, from_client: bool) -> Result<(), BatchError> {
    let producer_id = batch.producer_id();
    let fields = [
        ("producerId", producer_id),
        ("producerEpoch", i64::from(batch.producer_epoch())),
        ("baseSequence", i64::from(batch.base_sequence())),
    ];
    if let Some(&(field, value)) = fields.iter().find(|(_, value)| *value < -1) {
        return Err(BatchError::InvalidHeaderField { field, value });
    }
    // Transaction markers carry the producer id without a sequence (Kafka's NO_SEQUENCE);
    // only the broker writes them (clients' control batches are refused on append), and so
    // are a coordinator's transactional offset commits.
    if from_client && producer_id >= 0 && batch.base_sequence() < 0 && !batch.is_control() {
        return Err(BatchError::MissingSequence { producer_id });
    }
    Ok(())
}

/// What offset deltas a batch's records must carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Offsets {
    /// 0, 1, .., recordCount-1: a producer's batch.
    Contiguous,
    /// Increasing, at most `lastOffsetDelta`: a stored batch, possibly compacted.
    Increasing,
}

/// Walks the records of `batch` through the decompressor its codec names, calling `check`
/// with each record's index in the record set, its timestamp and whether it has a key.
fn walk(
    batch: &RecordBatch<'_>,
    first_record_index: usize,
    offsets: Offsets,
    check: impl FnMut(usize, i64, bool) -> Result<(), BatchError>,
) -> Result<RecordsSummary, BatchError> {
    let data = records_of(batch);
    match batch.compression() {
        NONE => walk_records(
            &mut SliceSource::new(data),
            batch,
            first_record_index,
            offsets,
            check,
        ),
        GZIP => walk_records(
            &mut StreamSource::new(flate2::read::MultiGzDecoder::new(data), "gzip"),
            batch,
            first_record_index,
            offsets,
            check,
        ),
        SNAPPY => walk_records(
            &mut StreamSource::new(XerialSnappy::new(data), "snappy"),
            batch,
            first_record_index,
            offsets,
            check,
        ),
        LZ4 => {
            let decoder = lz4::Decoder::new(data).map_err(|e| decompression("lz4", &e))?;
            walk_records(
                &mut StreamSource::new(decoder, "lz4"),
                batch,
                first_record_index,
                offsets,
                check,
            )
        }
        ZSTD => {
            let decoder = zstd::stream::read::Decoder::with_buffer(data)
                .map_err(|e| decompression("zstd", &e))?;
            walk_records(
                &mut StreamSource::new(decoder, "zstd"),
                batch,
                first_record_index,
                offsets,
                check,
            )
        }
        codec => Err(BatchError::UnknownCompression { codec }),
    }
}

fn decompression(codec: &'static str, error: &io::Error) -> BatchError {
    BatchError::Decompression {
        codec,
        reason: error.to_string(),
    }
}

/// The record walk proper (Kafka's `DefaultRecord.readFrom` without building the record).
fn walk_records<S: Source>(
    source: &mut S,
    batch: &RecordBatch<'_>,
    first_record_index: usize,
    offsets: Offsets,
    mut check: impl FnMut(usize, i64, bool) -> Result<(), BatchError>,
) -> Result<RecordsSummary, BatchError> {
    let record_count = batch.record_count();
    let declared = usize::try_from(record_count).unwrap_or(0);
    let base_timestamp = batch.base_timestamp();
    let mut max_timestamp = -1i64;
    let mut previous_delta = -1i64;
    for i in 0..declared {
        let record = first_record_index + i;
        let malformed = |reason: &'static str| BatchError::MalformedRecord { record, reason };
        let Some(length) = source.length_varint(record)? else {
            return Err(BatchError::RecordCountMismatch {
                record_count,
                found: i,
                record,
            });
        };
        let length =
            u64::try_from(length).map_err(|_| malformed("the record length is negative"))?;
        let mut body = Body {
            source: &mut *source,
            remaining: length,
            record,
        };
        body.byte()?
            .ok_or_else(|| malformed("the record ends before its attributes"))?;
        let timestamp_delta = body
            .varlong()?
            .ok_or_else(|| malformed("the record ends inside its timestamp delta"))?;
        let offset_delta = body
            .varint()?
            .ok_or_else(|| malformed("the record ends inside its offset delta"))?;
        let delta_ok = match offsets {
            Offsets::Contiguous => i64::from(offset_delta) == i as i64,
            Offsets::Increasing => {
                i64::from(offset_delta) > previous_delta
                    && offset_delta <= batch.last_offset_delta()
            }
        };
        if !delta_ok {
            return Err(BatchError::OffsetDeltaMismatch {
                record,
                offset_delta,
                expected: i,
            });
        }
        previous_delta = i64::from(offset_delta);
        let has_key = body.bytes_field(record, "key")?;
        body.bytes_field(record, "value")?;
        let headers = body
            .varint()?
            .ok_or_else(|| malformed("the record ends before its header count"))?;
        let headers =
            u32::try_from(headers).map_err(|_| malformed("the header count is negative"))?;
        for _ in 0..headers {
            let key_length = body
                .varint()?
                .ok_or_else(|| malformed("the record ends inside a header"))?;
            if key_length < 0 {
                return Err(malformed("a header key length is negative"));
            }
            body.skip_field(record, i64::from(key_length), "header key")?;
            body.bytes_field(record, "header value")?;
        }
        if body.remaining != 0 {
            return Err(malformed(
                "the record's length is larger than the fields it holds",
            ));
        }
        let timestamp = base_timestamp
            .checked_add(timestamp_delta)
            .ok_or_else(|| malformed("the timestamp delta overflows"))?;
        check(record, timestamp, has_key)?;
        max_timestamp = max_timestamp.max(timestamp);
    }
    if !source.at_end()? {
        return Err(BatchError::TrailingBytes { record_count });
    }
    Ok(RecordsSummary { max_timestamp })
}

/// Bytes of a record's body, bounded by its length varint.
struct Body<'s, S> {
    source: &'s mut S,
    remaining: u64,
    record: usize,
}

impl<S: Source> Body<'_, S> {
    fn byte(&mut self) -> Result<Option<u8>, BatchError> {
        if self.remaining == 0 {
            return Ok(None);
        }
        self.remaining -= 1;
        self.source.byte()
    }

    fn varint(&mut self) -> Result<Option<i32>, BatchError> {
        let record = self.record;
        let raw = read_unsigned(|| self.byte(), 5, record)?;
        raw.map(|raw| zigzag32(raw, record)).transpose()
    }

    fn varlong(&mut self) -> Result<Option<i64>, BatchError> {
        let record = self.record;
        let raw = read_unsigned(|| self.byte(), 10, record)?;
        Ok(raw.map(|raw| ((raw >> 1) as i64) ^ -((raw & 1) as i64)))
    }

    /// A length-prefixed byte field where -1 means null (key, value, header value); true when
    /// it is not null.
    fn bytes_field(&mut self, record: usize, field: &'static str) -> Result<bool, BatchError> {
        let length = self.varint()?.ok_or(BatchError::MalformedRecord {
            record,
            reason: "the record ends inside a length",
        })?;
        match length {
            -1 => Ok(false),
            n if n < -1 => Err(BatchError::BadFieldLength {
                record,
                field,
                length: i64::from(n),
                remaining: self.remaining,
            }),
            n => self.skip_field(record, i64::from(n), field).map(|()| true),
        }
    }

    fn skip_field(
        &mut self,
        record: usize,
        length: i64,
        field: &'static str,
    ) -> Result<(), BatchError> {
        let bad = BatchError::BadFieldLength {
            record,
            field,
            length,
            remaining: self.remaining,
        };
        // A length is checked against the record's own before a byte is read, so a record
        // claiming a 1 GiB key costs nothing.
        let Ok(n) = u64::try_from(length) else {
            return Err(bad);
        };
        if n > self.remaining {
            return Err(bad);
        }
        self.remaining -= n;
        if self.source.skip(n)? {
            Ok(())
        } else {
            Err(BatchError::MalformedRecord {
                record,
                reason: "the batch ends inside the record",
            })
        }
    }
}

/// Kafka's unsigned varint of at most `max_bytes` bytes, in record `record`; `None` when the
/// input ends first.
fn read_unsigned(
    mut next: impl FnMut() -> Result<Option<u8>, BatchError>,
    max_bytes: u32,
    record: usize,
) -> Result<Option<u64>, BatchError> {
    let mut value = 0u64;
    for i in 0..max_bytes {
        let Some(b) = next()? else {
            return Ok(None);
        };
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(Some(value));
        }
    }
    Err(varint_too_long(record))
}

fn varint_too_long(record: usize) -> BatchError {
    BatchError::MalformedRecord {
        record,
        reason: "a varint is longer than Kafka allows",
    }
}

/// A zigzag-encoded 32-bit varint's value; more than 32 bits is malformed.
fn zigzag32(raw: u64, record: usize) -> Result<i32, BatchError> {
    let raw = u32::try_from(raw).map_err(|_| varint_too_long(record))?;
    Ok(((raw >> 1) as i32) ^ -((raw & 1) as i32))
}

/// Where record bytes come from: the batch itself, or a decompressor.
trait Source {
    /// The next byte; `None` at the end of the records.
    fn byte(&mut self) -> Result<Option<u8>, BatchError>;
    /// Skips `n` bytes; false when the records end first.
    fn skip(&mut self, n: u64) -> Result<bool, BatchError>;
    /// True when no byte is left.
    fn at_end(&mut self) -> Result<bool, BatchError>;

    /// The length varint of record `record`; `None` when the records end before it starts.
    fn length_varint(&mut self, record: usize) -> Result<Option<i32>, BatchError> {
        let mut started = false;
        let raw = read_unsigned(
            || {
                let b = self.byte()?;
                if b.is_some() {
                    started = true;
                }
                Ok(b)
            },
            5,
            record,
        )?;
        match raw {
            Some(raw) => zigzag32(raw, record).map(Some),
            None if started => Err(BatchError::MalformedRecord {
                record,
                reason: "the batch ends inside a record length",
            }),
            None => Ok(None),
        }
    }
}

struct SliceSource<'a> {
    buf: &'a [u8],
    position: usize,
}

impl<'a> SliceSource<'a> {
    fn new(buf: &'a [u8]) -> Self {
        SliceSource { buf, position: 0 }
    }
}

impl Source for SliceSource<'_> {
    #[inline]
    fn byte(&mut self) -> Result<Option<u8>, BatchError> {
        let b = self.buf.get(self.position).copied();
        self.position += usize::from(b.is_some());
        Ok(b)
    }

    fn skip(&mut self, n: u64) -> Result<bool, BatchError> {
        let left = (self.buf.len() - self.position) as u64;
        if n > left {
            self.position = self.buf.len();
            return Ok(false);
        }
        // n <= left, which is a usize.
        self.position += n as usize;
        Ok(true)
    }

    fn at_end(&mut self) -> Result<bool, BatchError> {
        Ok(self.position == self.buf.len())
    }
}

/// Decompressed bytes through a fixed buffer: the whole output is never held.
struct StreamSource<R> {
    reader: R,
    codec: &'static str,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
}

impl<R: Read> StreamSource<R> {
    fn new(reader: R, codec: &'static str) -> Self {
        StreamSource {
            reader,
            codec,
            buf: vec![0u8; STREAM_BUFFER].into_boxed_slice(),
            start: 0,
            end: 0,
        }
    }

    /// Makes bytes available; false at the end of the stream.
    fn fill(&mut self) -> Result<bool, BatchError> {
        if self.start < self.end {
            return Ok(true);
        }
        loop {
            match self.reader.read(&mut self.buf) {
                Ok(n) => {
                    self.start = 0;
                    self.end = n;
                    return Ok(n > 0);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(decompression(self.codec, &e)),
            }
        }
    }
}

impl<R: Read> Source for StreamSource<R> {
    fn byte(&mut self) -> Result<Option<u8>, BatchError> {
        if !self.fill()? {
            return Ok(None);
        }
        let b = self.buf[self.start];
        self.start += 1;
        Ok(Some(b))
    }

    fn skip(&mut self, mut n: u64) -> Result<bool, BatchError> {
        while n > 0 {
            if !self.fill()? {
                return Ok(false);
            }
            let take = ((self.end - self.start) as u64).min(n);
            // take <= end - start, a usize.
            self.start += take as usize;
            n -= take;
        }
        Ok(true)
    }

    fn at_end(&mut self) -> Result<bool, BatchError> {
        Ok(!self.fill()?)
    }
}

/// Snappy as Kafka's clients write it: the xerial framing (a 16-byte header, then blocks of a
/// 4-byte big-endian length and a raw snappy block), or — as Kafka's `SnappyInputStream`
/// accepts — one raw snappy block without the header. One block is held at a time.
pub(crate) struct XerialSnappy<'a> {
    input: &'a [u8],
    framed: bool,
    block: Vec<u8>,
    position: usize,
    decoder: snap::raw::Decoder,
}

const XERIAL_MAGIC: &[u8; 8] = b"\x82SNAPPY\x00";
const XERIAL_HEADER: usize = 16;

impl<'a> XerialSnappy<'a> {
    pub(crate) fn new(input: &'a [u8]) -> Self {
        let framed = input.len() >= XERIAL_HEADER && input.starts_with(XERIAL_MAGIC);
        XerialSnappy {
            input: if framed {
                &input[XERIAL_HEADER..]
            } else {
                input
            },
            framed,
            block: Vec::new(),
            position: 0,
            decoder: snap::raw::Decoder::new(),
        }
    }

    fn next_block(&mut self) -> io::Result<bool> {
        if self.input.is_empty() {
            return Ok(false);
        }
        let compressed = if self.framed {
            let (length, rest) = self
                .input
                .split_first_chunk::<4>()
                .ok_or_else(|| invalid_data("a block length is cut short"))?;
            let length = u32::from_be_bytes(*length) as usize;
            if length > rest.len() {
                return Err(invalid_data("a block is longer than the data"));
            }
            let (block, rest) = rest.split_at(length);
            self.input = rest;
            block
        } else {
            std::mem::take(&mut self.input)
        };
        let length =
            snap::raw::decompress_len(compressed).map_err(|e| invalid_data(&e.to_string()))?;
        // Snappy expands a byte of input into at most ~22 of output (a 3-byte copy of 64
        // bytes): a block claiming more is corrupt, and is refused before anything is allocated.
        if length > compressed.len().saturating_mul(24).saturating_add(64) {
            return Err(invalid_data("a block claims more data than it can hold"));
        }
        self.block.resize(length, 0);
        let n = self
            .decoder
            .decompress(compressed, &mut self.block)
            .map_err(|e| invalid_data(&e.to_string()))?;
        self.block.truncate(n);
        self.position = 0;
        Ok(true)
    }
}

fn invalid_data(reason: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, reason.to_string())
}

impl Read for XerialSnappy<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.position == self.block.len() {
            if !self.next_block()? {
                return Ok(0);
            }
        }
        let n = out.len().min(self.block.len() - self.position);
        out[..n].copy_from_slice(&self.block[self.position..self.position + n]);
        self.position += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests;
