//! Helpers shared by the integration tests: batch builders and log openers.
#![allow(dead_code, unreachable_pub)]

pub mod keyed;
pub mod txn;

use std::path::Path;

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, RecordSet,
    TimestampType,
};
use strom_storage::batch::Batches;
use strom_storage::{LogConfig, PartitionLog};

/// Options of a test batch.
#[derive(Debug, Clone)]
pub struct Spec {
    pub records: usize,
    pub value_size: usize,
    pub timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    /// Distinguishes the payload of different batches.
    pub tag: u8,
}

impl Spec {
    pub fn new(records: usize, value_size: usize) -> Self {
        Spec {
            records,
            value_size,
            timestamp: 1_000,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            tag: 0,
        }
    }
    pub fn ts(mut self, timestamp: i64) -> Self {
        self.timestamp = timestamp;
        self
    }
    pub fn tag(mut self, tag: u8) -> Self {
        self.tag = tag;
        self
    }
    pub fn producer(mut self, id: i64, epoch: i16, base_sequence: i32) -> Self {
        self.producer_id = id;
        self.producer_epoch = epoch;
        self.base_sequence = base_sequence;
        self
    }
}

/// Encodes one v2 batch (no compression) the way a client would (base offset 0).
pub fn batch(spec: &Spec) -> Vec<u8> {
    batch_with(spec, Compression::None)
}

/// Encodes one v2 batch compressed with `compression`, as a client would.
pub fn batch_with(spec: &Spec, compression: Compression) -> Vec<u8> {
    let records: Vec<Record> = (0..spec.records)
        .map(|i| {
            let i32i = i32::try_from(i).expect("small");
            Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id: spec.producer_id,
                producer_epoch: spec.producer_epoch,
                timestamp_type: TimestampType::Creation,
                offset: i64::from(i32i),
                // Sequences must advance with offsets for the encoder to keep one batch.
                sequence: if spec.base_sequence < 0 {
                    i32i - 1
                } else {
                    spec.base_sequence + i32i
                },
                timestamp: spec.timestamp + i64::from(i32i),
                key: Some(Bytes::from(format!("k{i}"))),
                value: Some(Bytes::from(vec![
                    spec.tag.wrapping_add(
                        u8::try_from(i % 200).expect("small")
                    );
                    spec.value_size
                ])),
                headers: Default::default(),
            }
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .expect("encode a test batch");
    assert_eq!(
        Batches::new(&buf).count(),
        1,
        "the encoder must produce exactly one batch"
    );
    buf.to_vec()
}

/// Decodes every batch of a record set with the reference decoder.
pub fn decode_all(bytes: &[u8]) -> Vec<RecordSet> {
    let mut b = Bytes::copy_from_slice(bytes);
    RecordBatchDecoder::decode_all(&mut b)
        .expect("the reference decoder accepts what the log returns")
}

/// (base offset, last offset) of every batch in a record set.
pub fn batch_offsets(bytes: &[u8]) -> Vec<(i64, i64)> {
    Batches::new(bytes)
        .map(|b| {
            let (_, b) = b.expect("whole batches");
            (b.base_offset(), b.last_offset())
        })
        .collect()
}

/// A small-segment configuration so tests roll often.
pub fn small_config(segment_bytes: u64) -> LogConfig {
    LogConfig {
        segment_bytes,
        index_interval_bytes: 256,
        ..LogConfig::default()
    }
}

pub fn open(dir: &Path, config: LogConfig) -> PartitionLog {
    PartitionLog::open(dir, config, 1_000_000).expect("open the log")
}

/// Reads everything from `from` to the log end.
pub fn read_all(log: &PartitionLog, from: i64) -> Vec<u8> {
    let mut out = Vec::new();
    let mut offset = from;
    while offset < log.log_end_offset() {
        let r = log.read(offset, 1 << 20, i64::MAX, true).expect("read");
        let bytes = r.records;
        assert!(!bytes.is_empty(), "a read below the log end returns data");
        let offsets = batch_offsets(&bytes);
        offset = offsets.last().expect("batches").1 + 1;
        out.extend_from_slice(&bytes);
    }
    out
}

/// The bytes of a batch as the log stores them: base offset and leader epoch patched.
pub fn patched(mut bytes: Vec<u8>, base_offset: i64, leader_epoch: i32) -> Vec<u8> {
    bytes[0..8].copy_from_slice(&base_offset.to_be_bytes());
    bytes[12..16].copy_from_slice(&leader_epoch.to_be_bytes());
    bytes
}

/// Marks a batch as a control batch (attribute bit 5) and fixes its CRC.
pub fn as_control(mut bytes: Vec<u8>) -> Vec<u8> {
    let attributes = i16::from_be_bytes([bytes[21], bytes[22]]) | 0x20;
    bytes[21..23].copy_from_slice(&attributes.to_be_bytes());
    strom_storage::batch::RecordBatchMut::parse(&mut bytes)
        .expect("a whole batch")
        .update_crc();
    bytes
}

/// Every file of a partition directory with its bytes, by name.
pub fn dir_files(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .expect("list the partition directory")
        .map(|e| {
            let e = e.expect("entry");
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).expect("read a file"),
            )
        })
        .collect()
}

/// The segment files (`.log`, `.index`, `.timeindex`) of a directory with their bytes.
pub fn segment_files(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    dir_files(dir)
        .into_iter()
        .filter(|(name, _)| {
            name.ends_with(".log") || name.ends_with(".index") || name.ends_with(".timeindex")
        })
        .collect()
}

/// Replicates `leader` into `follower` as a replica fetcher does: reads up to the leader's log
/// end from the follower's log end, `max_bytes` at a time, and appends as follower. Returns the
/// number of fetches.
pub fn replicate(leader: &PartitionLog, follower: &PartitionLog, max_bytes: usize) -> usize {
    let mut fetches = 0;
    while follower.log_end_offset() < leader.log_end_offset() {
        let fetch_offset = follower.log_end_offset();
        let r = leader
            .read(fetch_offset, max_bytes, leader.log_end_offset(), true)
            .expect("leader read for a follower");
        let info = follower
            .append_as_follower(&r.records, 1_000_000)
            .expect("append as follower");
        assert_eq!(
            info.first_offset, fetch_offset,
            "the fetch continues the log"
        );
        assert!(
            info.record_count > 0,
            "a fetch below the leader's end makes progress"
        );
        fetches += 1;
    }
    fetches
}
