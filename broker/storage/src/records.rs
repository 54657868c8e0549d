//! Decoding a v2 batch into its records and encoding records into a v2 batch, with any of
//! Kafka's codecs: the only place the broker builds records. It serves the recompression of
//! `compression.type` on the leader's append path and the log cleaner, which filters records
//! and writes the survivors back with their batch's codec. `control` builds and reads
//! transaction markers.
//!
//! Record layout (Kafka's `DefaultRecord`): length varint, attributes i8, timestamp delta
//! varlong, offset delta varint, key (varint length, -1 = null), value (same), header count
//! varint, then per header a key (varint length) and a value (varint length, -1 = null).

use bytes::Bytes;

use crate::batch::{BatchError, BatchHeader, BatchTimestampType, RECORD_BATCH_OVERHEAD};
use crate::batch::{LOG_OVERHEAD, MAGIC_V2, RecordBatch, RecordBatchMut};

mod codec;
mod control;

pub use codec::Codec;
pub use control::{
    CONTROL_TYPE_ABORT, CONTROL_TYPE_COMMIT, ControlMarker, marker_batch, read_marker,
};

/// Attribute bit 6 (KIP-534): `baseTimestamp` holds the delete horizon of the batch's
/// tombstones and transaction markers.
pub const DELETE_HORIZON_BIT: i16 = 0x40;
const TIMESTAMP_TYPE_BIT: i16 = 0x08;
const TRANSACTIONAL_BIT: i16 = 0x10;
const CONTROL_BIT: i16 = 0x20;

/// One record header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordHeader {
    /// Header key (never null in Kafka's format).
    pub key: Bytes,
    /// Header value; `None` is null.
    pub value: Option<Bytes>,
}

/// One record with absolute offset and timestamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The record's offset (batch base offset + offset delta).
    pub offset: i64,
    /// The record's timestamp (batch base timestamp + timestamp delta).
    pub timestamp: i64,
    /// Key; `None` is null.
    pub key: Option<Bytes>,
    /// Value; `None` is null (a tombstone on a compacted log).
    pub value: Option<Bytes>,
    /// Headers, in order.
    pub headers: Vec<RecordHeader>,
}

/// The header fields of a batch to encode; records supply offsets and timestamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSpec {
    /// `baseOffset`.
    pub base_offset: i64,
    /// `lastOffsetDelta`; may exceed the last record's delta (compaction keeps a batch's
    /// original last offset, so producer sequences stay true).
    pub last_offset_delta: i32,
    /// `partitionLeaderEpoch`.
    pub partition_leader_epoch: i32,
    /// Attribute bit 3.
    pub timestamp_type: BatchTimestampType,
    /// With `LogAppendTime`, the batch's `maxTimestamp` (the append time).
    pub log_append_time: i64,
    /// Attribute bit 4.
    pub transactional: bool,
    /// Attribute bit 5.
    pub control: bool,
    /// `producerId`.
    pub producer_id: i64,
    /// `producerEpoch`.
    pub producer_epoch: i16,
    /// `baseSequence`.
    pub base_sequence: i32,
    /// KIP-534's delete horizon, written as `baseTimestamp` with attribute bit 6.
    pub delete_horizon_ms: Option<i64>,
}

impl BatchSpec {
    /// The fields of an existing batch (its delete horizon included).
    pub fn of(header: &BatchHeader) -> Self {
        let a = header.attributes;
        BatchSpec {
            base_offset: header.base_offset,
            last_offset_delta: header.last_offset_delta,
            partition_leader_epoch: header.partition_leader_epoch,
            timestamp_type: if a & TIMESTAMP_TYPE_BIT != 0 {
                BatchTimestampType::LogAppendTime
            } else {
                BatchTimestampType::CreateTime
            },
            log_append_time: header.max_timestamp,
            transactional: a & TRANSACTIONAL_BIT != 0,
            control: a & CONTROL_BIT != 0,
            producer_id: header.producer_id,
            producer_epoch: header.producer_epoch,
            base_sequence: header.base_sequence,
            delete_horizon_ms: delete_horizon(header),
        }
    }
}

/// The batch's delete horizon (KIP-534), when attribute bit 6 is set.
pub fn delete_horizon(header: &BatchHeader) -> Option<i64> {
    (header.attributes & DELETE_HORIZON_BIT != 0).then_some(header.base_timestamp)
}

/// Decodes every record of `batch`, decompressing it with its codec. The batch's framing
/// must be valid; the records are checked as they are read.
pub fn decode(batch: &RecordBatch<'_>) -> Result<Vec<Record>, BatchError> {
    let codec = Codec::from_id(batch.compression()).ok_or(BatchError::UnknownCompression {
        codec: batch.compression(),
    })?;
    let data = &batch.as_bytes()[RECORD_BATCH_OVERHEAD..];
    let plain = match codec {
        Codec::None => Bytes::copy_from_slice(data),
        other => Bytes::from(other.decompress(data)?),
    };
    let count = usize::try_from(batch.record_count()).unwrap_or(0);
    let mut reader = Reader {
        buf: &plain,
        at: 0,
        record: 0,
    };
    let mut records = Vec::with_capacity(count);
    for i in 0..count {
        reader.record = i;
        records.push(reader.record(&plain, batch.base_offset(), batch.base_timestamp())?);
    }
    if reader.at != plain.len() {
        return Err(BatchError::TrailingBytes {
            record_count: batch.record_count(),
        });
    }
    Ok(records)
}

/// Encodes `records` (offsets ascending, each within `[base_offset, base_offset +
/// last_offset_delta]`) into one v2 batch compressed with `codec`. An empty `records` gives
/// an empty batch (record count 0), which Kafka's cleaner keeps for idempotent producers.
pub fn encode(spec: &BatchSpec, records: &[Record], codec: Codec) -> Result<Vec<u8>, BatchError> {
    let first_timestamp = records
        .first()
        .map_or(spec.log_append_time, |r| r.timestamp);
    let base_timestamp = spec.delete_horizon_ms.unwrap_or(first_timestamp);
    let mut plain = Vec::with_capacity(records.iter().map(record_size_hint).sum());
    let mut max_timestamp = -1i64;
    for (i, r) in records.iter().enumerate() {
        let offset_delta = r
            .offset
            .checked_sub(spec.base_offset)
            .and_then(|d| i32::try_from(d).ok())
            .filter(|d| (0..=spec.last_offset_delta).contains(d))
            .ok_or(BatchError::MalformedRecord {
                record: i,
                reason: "the record's offset lies outside its batch",
            })?;
        let timestamp_delta =
            r.timestamp
                .checked_sub(base_timestamp)
                .ok_or(BatchError::MalformedRecord {
                    record: i,
                    reason: "the timestamp delta overflows",
                })?;
        max_timestamp = max_timestamp.max(r.timestamp);
        write_record(&mut plain, offset_delta, timestamp_delta, r);
    }
    let body = match codec {
        Codec::None => plain,
        other => other.compress(&plain)?,
    };
    let mut attributes = i16::from(codec.id());
    if spec.timestamp_type == BatchTimestampType::LogAppendTime {
        attributes |= TIMESTAMP_TYPE_BIT;
        max_timestamp = spec.log_append_time;
    } else if records.is_empty() {
        max_timestamp = spec.log_append_time;
    }
    if spec.transactional {
        attributes |= TRANSACTIONAL_BIT;
    }
    if spec.control {
        attributes |= CONTROL_BIT;
    }
    if spec.delete_horizon_ms.is_some() {
        attributes |= DELETE_HORIZON_BIT;
    }
    let size = RECORD_BATCH_OVERHEAD + body.len();
    let batch_length = i32::try_from(size - LOG_OVERHEAD).map_err(|_| BatchError::BadLength {
        batch_length: i32::MAX,
    })?;
    let record_count = i32::try_from(records.len()).map_err(|_| BatchError::MalformedRecord {
        record: records.len(),
        reason: "too many records for one batch",
    })?;
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&spec.base_offset.to_be_bytes());
    out.extend_from_slice(&batch_length.to_be_bytes());
    out.extend_from_slice(&spec.partition_leader_epoch.to_be_bytes());
    out.push(MAGIC_V2 as u8);
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&attributes.to_be_bytes());
    out.extend_from_slice(&spec.last_offset_delta.to_be_bytes());
    out.extend_from_slice(&base_timestamp.to_be_bytes());
    out.extend_from_slice(&max_timestamp.to_be_bytes());
    out.extend_from_slice(&spec.producer_id.to_be_bytes());
    out.extend_from_slice(&spec.producer_epoch.to_be_bytes());
    out.extend_from_slice(&spec.base_sequence.to_be_bytes());
    out.extend_from_slice(&record_count.to_be_bytes());
    out.extend_from_slice(&body);
    RecordBatchMut::parse(&mut out)?.update_crc();
    Ok(out)
}

fn record_size_hint(r: &Record) -> usize {
    24 + r.key.as_ref().map_or(0, Bytes::len)
        + r.value.as_ref().map_or(0, Bytes::len)
        + r.headers
            .iter()
            .map(|h| 10 + h.key.len() + h.value.as_ref().map_or(0, Bytes::len))
            .sum::<usize>()
}

fn put_varlong(out: &mut Vec<u8>, value: i64) {
    let mut v = ((value << 1) ^ (value >> 63)) as u64;
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_bytes(out: &mut Vec<u8>, field: Option<&Bytes>) {
    match field {
        None => put_varlong(out, -1),
        Some(b) => {
            put_varlong(out, b.len() as i64);
            out.extend_from_slice(b);
        }
    }
}

fn write_record(out: &mut Vec<u8>, offset_delta: i32, timestamp_delta: i64, r: &Record) {
    let mut body = Vec::with_capacity(record_size_hint(r));
    body.push(0);
    put_varlong(&mut body, timestamp_delta);
    put_varlong(&mut body, i64::from(offset_delta));
    put_bytes(&mut body, r.key.as_ref());
    put_bytes(&mut body, r.value.as_ref());
    put_varlong(&mut body, r.headers.len() as i64);
    for h in &r.headers {
        put_bytes(&mut body, Some(&h.key));
        put_bytes(&mut body, h.value.as_ref());
    }
    put_varlong(out, body.len() as i64);
    out.extend_from_slice(&body);
}

/// Reads records out of a plain (decompressed) records section.
struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
    record: usize,
}

impl Reader<'_> {
    fn malformed(&self, reason: &'static str) -> BatchError {
        BatchError::MalformedRecord {
            record: self.record,
            reason,
        }
    }

    fn varlong(&mut self, end: usize) -> Result<i64, BatchError> {
        let mut raw = 0u64;
        for i in 0..10 {
            if self.at >= end {
                return Err(self.malformed("the record ends inside a varint"));
            }
            let b = self.buf[self.at];
            self.at += 1;
            raw |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64));
            }
        }
        Err(self.malformed("a varint is longer than Kafka allows"))
    }

    fn varint(&mut self, end: usize) -> Result<i32, BatchError> {
        let v = self.varlong(end)?;
        i32::try_from(v).map_err(|_| self.malformed("a varint is longer than Kafka allows"))
    }

    fn field(
        &mut self,
        plain: &Bytes,
        end: usize,
        field: &'static str,
    ) -> Result<Option<Bytes>, BatchError> {
        let length = self.varint(end)?;
        if length == -1 {
            return Ok(None);
        }
        let remaining = (end - self.at) as u64;
        let n = usize::try_from(length)
            .ok()
            .filter(|n| *n as u64 <= remaining)
            .ok_or(BatchError::BadFieldLength {
                record: self.record,
                field,
                length: i64::from(length),
                remaining,
            })?;
        let value = plain.slice(self.at..self.at + n);
        self.at += n;
        Ok(Some(value))
    }

    fn record(
        &mut self,
        plain: &Bytes,
        base_offset: i64,
        base_timestamp: i64,
    ) -> Result<Record, BatchError> {
        let length = self.varint(self.buf.len())?;
        let end = usize::try_from(length)
            .ok()
            .and_then(|n| self.at.checked_add(n))
            .filter(|end| *end <= self.buf.len())
            .ok_or(self.malformed("the record length does not fit the batch"))?;
        if self.at >= end {
            return Err(self.malformed("the record ends before its attributes"));
        }
        self.at += 1;
        let timestamp_delta = self.varlong(end)?;
        let offset_delta = self.varint(end)?;
        let key = self.field(plain, end, "key")?;
        let value = self.field(plain, end, "value")?;
        let count = self.varint(end)?;
        let count =
            usize::try_from(count).map_err(|_| self.malformed("the header count is negative"))?;
        let mut headers = Vec::with_capacity(count.min(64));
        for _ in 0..count {
            let key = self
                .field(plain, end, "header key")?
                .ok_or(self.malformed("a header key is null"))?;
            let value = self.field(plain, end, "header value")?;
            headers.push(RecordHeader { key, value });
        }
        if self.at != end {
            return Err(self.malformed("the record's length is larger than the fields it holds"));
        }
        Ok(Record {
            offset: base_offset.saturating_add(i64::from(offset_delta)),
            timestamp: base_timestamp.saturating_add(timestamp_delta),
            key,
            value,
            headers,
        })
    }
}

#[cfg(test)]
mod tests;

/// An uncompressed client batch for the crate's unit tests: `records` records from
/// `base_offset`, keyed `k{i}`, each value `value`, no producer id.
#[cfg(test)]
pub(crate) fn test_batch(base_offset: i64, records: usize, value: &[u8]) -> Vec<u8> {
    let spec = BatchSpec {
        base_offset,
        last_offset_delta: i32::try_from(records.saturating_sub(1)).unwrap_or(i32::MAX),
        partition_leader_epoch: -1,
        timestamp_type: crate::batch::BatchTimestampType::CreateTime,
        log_append_time: -1,
        transactional: false,
        control: false,
        producer_id: -1,
        producer_epoch: -1,
        base_sequence: -1,
        delete_horizon_ms: None,
    };
    let records: Vec<Record> = (0..records)
        .map(|i| Record {
            offset: base_offset + i64::try_from(i).unwrap_or(i64::MAX),
            timestamp: 1_000,
            key: Some(Bytes::from(format!("k{i}"))),
            value: Some(Bytes::copy_from_slice(value)),
            headers: Vec::new(),
        })
        .collect();
    encode(&spec, &records, Codec::None).expect("encoding a test batch")
}
