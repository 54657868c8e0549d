//! Keyed workloads for the compaction tests: batches of keyed records (tombstones included),
//! the model of what a compacted log must hold, and a decoder of what the log holds.

use std::collections::BTreeMap;

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use strom_storage::{CleanupPolicy, LogConfig, PartitionLog};

/// The time the workloads are written at.
pub const NOW: i64 = 1_700_000_000_000;

/// One record to write: key and value (`None` = tombstone).
pub type KeyedRecord = (String, Option<String>);

/// A compacted log configuration with small segments.
pub fn compacted_config(segment_bytes: u64) -> LogConfig {
    LogConfig {
        segment_bytes,
        segment_ms: 1_000,
        index_interval_bytes: 512,
        cleanup_policy: CleanupPolicy {
            delete: false,
            compact: true,
        },
        delete_retention_ms: 1_000,
        min_cleanable_dirty_ratio: 0.0,
        ..LogConfig::default()
    }
}

/// Encodes keyed records as one client batch.
pub fn keyed_batch(
    records: &[KeyedRecord],
    timestamp: i64,
    compression: Compression,
    producer: Option<(i64, i16, i32)>,
) -> Vec<u8> {
    let (producer_id, producer_epoch, base_sequence) = producer.unwrap_or((-1, -1, -1));
    let records: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, (key, value))| {
            let i = i32::try_from(i).expect("small");
            Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id,
                producer_epoch,
                timestamp_type: TimestampType::Creation,
                offset: i64::from(i),
                sequence: if base_sequence < 0 {
                    -1
                } else {
                    base_sequence + i
                },
                timestamp: timestamp + i64::from(i),
                key: Some(Bytes::copy_from_slice(key.as_bytes())),
                value: value.as_ref().map(|v| Bytes::copy_from_slice(v.as_bytes())),
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
    .expect("encode");
    buf.to_vec()
}

/// `total` records over `keys` keys in batches of `per_batch`: updates in a scrambled key
/// order, about one in eight a tombstone. Returns the batches and the model: each key's
/// latest value (`None` when its latest record is a tombstone).
pub fn workload(
    total: usize,
    keys: usize,
    per_batch: usize,
) -> (Vec<Vec<KeyedRecord>>, BTreeMap<String, Option<String>>) {
    let mut model = BTreeMap::new();
    let mut batches = Vec::new();
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut batch = Vec::new();
    for i in 0..total {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let key = format!("key-{:05}", (state >> 33) as usize % keys);
        let value =
            (!(state >> 20).is_multiple_of(8)).then(|| format!("value-{i}-{}", "x".repeat(40)));
        model.insert(key.clone(), value.clone());
        batch.push((key, value));
        if batch.len() == per_batch {
            batches.push(std::mem::take(&mut batch));
        }
    }
    if !batch.is_empty() {
        batches.push(batch);
    }
    (batches, model)
}

/// Appends the workload's batches as the leader at [`NOW`], then rolls so all of it is in
/// sealed segments.
pub fn write_all(log: &PartitionLog, batches: &[Vec<KeyedRecord>], compression: Compression) {
    for b in batches {
        log.append(&keyed_batch(b, NOW, compression, None), 0, NOW)
            .expect("append");
    }
    assert!(
        log.maybe_roll(NOW + 10_000).expect("roll"),
        "the active segment rolls"
    );
}

/// Everything readable from the log start, read as a consumer does. Compaction may leave no
/// batch between the last one kept and the log end, so a read that returns nothing ends it.
pub fn read_compacted(log: &PartitionLog) -> Vec<u8> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let bytes = log
            .read(offset, 1 << 20, i64::MAX, true)
            .expect("read")
            .records;
        let Some(&(_, last)) = super::batch_offsets(&bytes).last() else {
            break;
        };
        offset = last + 1;
        out.extend_from_slice(&bytes);
    }
    out
}

/// Every record of the log from its start: (offset, key, value).
pub fn scan(log: &PartitionLog) -> Vec<(i64, String, Option<String>)> {
    let bytes = read_compacted(log);
    super::decode_all(&bytes)
        .into_iter()
        .flat_map(|set| set.records)
        .map(|r| {
            (
                r.offset,
                String::from_utf8(r.key.expect("keyed").to_vec()).expect("utf8"),
                r.value
                    .map(|v| String::from_utf8(v.to_vec()).expect("utf8")),
            )
        })
        .collect()
}

/// Asserts that `records` hold exactly one record per key of `model`, with its latest value,
/// at strictly increasing offsets; with `tombstones_gone`, keys whose latest record is a
/// tombstone must be absent instead.
pub fn assert_compacted(
    records: &[(i64, String, Option<String>)],
    model: &BTreeMap<String, Option<String>>,
    tombstones_gone: bool,
) {
    assert!(
        records.windows(2).all(|w| w[0].0 < w[1].0),
        "offsets strictly increase"
    );
    let mut seen: BTreeMap<String, Option<String>> = BTreeMap::new();
    for (offset, key, value) in records {
        assert!(
            seen.insert(key.clone(), value.clone()).is_none(),
            "key {key} appears more than once (again at offset {offset})"
        );
    }
    let expected: BTreeMap<String, Option<String>> = model
        .iter()
        .filter(|(_, v)| !tombstones_gone || v.is_some())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    assert_eq!(seen.len(), expected.len(), "one record per key");
    assert!(seen == expected, "every key holds its latest value");
}
