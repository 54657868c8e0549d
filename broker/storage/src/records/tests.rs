use bytes::Bytes;

use super::*;
use crate::validate::validate_stored_batch;

fn record(offset: i64, timestamp: i64, key: Option<&str>, value: Option<&str>) -> Record {
    Record {
        offset,
        timestamp,
        key: key.map(|k| Bytes::copy_from_slice(k.as_bytes())),
        value: value.map(|v| Bytes::copy_from_slice(v.as_bytes())),
        headers: vec![
            RecordHeader {
                key: Bytes::from_static(b"h"),
                value: Some(Bytes::from_static(b"v")),
            },
            RecordHeader {
                key: Bytes::from_static(b"null"),
                value: None,
            },
        ],
    }
}

fn spec(base_offset: i64, last_offset_delta: i32) -> BatchSpec {
    BatchSpec {
        base_offset,
        last_offset_delta,
        partition_leader_epoch: 3,
        timestamp_type: BatchTimestampType::CreateTime,
        log_append_time: -1,
        transactional: false,
        control: false,
        producer_id: 77,
        producer_epoch: 2,
        base_sequence: 10,
        delete_horizon_ms: None,
    }
}

const CODECS: [Codec; 5] = [
    Codec::None,
    Codec::Gzip,
    Codec::Snappy,
    Codec::Lz4,
    Codec::Zstd,
];

#[test]
fn every_codec_round_trips_records_with_gaps() {
    let records = vec![
        record(100, 5_000, Some("a"), Some(&"x".repeat(5000))),
        record(102, 4_000, Some("b"), None),
        record(107, 6_000, None, Some("c")),
    ];
    for codec in CODECS {
        let bytes = encode(&spec(100, 9), &records, codec).expect("encode");
        let batch = RecordBatch::parse(&bytes).expect("framing");
        validate_stored_batch(&batch).expect("a valid stored batch");
        assert_eq!(batch.compression(), codec.id(), "{codec:?}");
        assert_eq!(batch.base_offset(), 100);
        assert_eq!(batch.last_offset(), 109, "the batch keeps its offset range");
        assert_eq!(batch.record_count(), 3);
        assert_eq!(batch.max_timestamp(), 6_000);
        assert_eq!(batch.base_timestamp(), 5_000);
        assert_eq!(batch.producer_id(), 77);
        assert_eq!(batch.producer_epoch(), 2);
        assert_eq!(batch.base_sequence(), 10);
        assert_eq!(batch.partition_leader_epoch(), 3);
        assert_eq!(decode(&batch).expect("decode"), records, "{codec:?}");
    }
}

#[test]
fn delete_horizon_is_the_base_timestamp_and_timestamps_survive() {
    let records = vec![record(5, 1_000, Some("k"), None)];
    let mut s = spec(5, 0);
    s.delete_horizon_ms = Some(90_000);
    let bytes = encode(&s, &records, Codec::Gzip).expect("encode");
    let batch = RecordBatch::parse(&bytes).expect("framing");
    let header = batch.header();
    assert_eq!(delete_horizon(&header), Some(90_000));
    assert_eq!(BatchSpec::of(&header).delete_horizon_ms, Some(90_000));
    assert_eq!(batch.max_timestamp(), 1_000);
    assert_eq!(decode(&batch).expect("decode"), records);
}

#[test]
fn empty_batch_keeps_header_fields() {
    let mut s = spec(40, 4);
    s.log_append_time = 1234;
    let bytes = encode(&s, &[], Codec::Zstd).expect("encode");
    let batch = RecordBatch::parse(&bytes).expect("framing");
    batch.validate().expect("valid");
    assert_eq!(batch.record_count(), 0);
    assert_eq!((batch.base_offset(), batch.last_offset()), (40, 44));
    assert_eq!(batch.max_timestamp(), 1234);
    assert_eq!(batch.base_sequence(), 10);
    assert!(decode(&batch).expect("decode").is_empty());
}

#[test]
fn records_outside_the_batch_are_refused() {
    let records = vec![record(20, 1, Some("k"), Some("v"))];
    assert!(matches!(
        encode(&spec(10, 5), &records, Codec::None),
        Err(BatchError::MalformedRecord { .. })
    ));
}
