//! `compression.type` and the compacted-log key rule on the leader's append path.

mod common;

use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use strom_storage::batch::{BatchError, Batches};
use strom_storage::{CleanupPolicy, CompressionType, LogConfig, PartitionLog, StorageError};

const NOW: i64 = 1_700_000_000_000;

fn client_records(keys: &[Option<&str>]) -> Vec<Record> {
    keys.iter()
        .enumerate()
        .map(|(i, key)| {
            let i = i32::try_from(i).expect("small");
            let mut headers = IndexMap::new();
            headers.insert(
                StrBytes::from_static_str("trace"),
                Some(Bytes::from(format!("t{i}"))),
            );
            headers.insert(StrBytes::from_static_str("empty"), None);
            Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id: 4242,
                producer_epoch: 3,
                timestamp_type: TimestampType::Creation,
                offset: i64::from(i),
                sequence: 7 + i,
                timestamp: NOW - 1_000 + i64::from(i) * 10,
                key: key.map(|k| Bytes::copy_from_slice(k.as_bytes())),
                value: if i % 3 == 2 {
                    None
                } else {
                    Some(Bytes::from(format!("value-{i}-").repeat(40)))
                },
                headers,
            }
        })
        .collect()
}

fn encode(records: &[Record], compression: Compression) -> Vec<u8> {
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        records,
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .expect("encode");
    buf.to_vec()
}

fn compacted() -> LogConfig {
    LogConfig {
        cleanup_policy: CleanupPolicy {
            delete: false,
            compact: true,
        },
        ..LogConfig::default()
    }
}

const CLIENT_CODECS: [(Compression, u8); 5] = [
    (Compression::None, 0),
    (Compression::Gzip, 1),
    (Compression::Snappy, 2),
    (Compression::Lz4, 3),
    (Compression::Zstd, 4),
];

const TARGETS: [(CompressionType, u8); 5] = [
    (CompressionType::Uncompressed, 0),
    (CompressionType::Gzip, 1),
    (CompressionType::Snappy, 2),
    (CompressionType::Lz4, 3),
    (CompressionType::Zstd, 4),
];

#[test]
fn keyless_record_on_a_compacted_log_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = PartitionLog::open(dir.path(), compacted(), NOW).expect("open");
    for (compression, _) in CLIENT_CODECS {
        let good = encode(&client_records(&[Some("a")]), compression);
        let bad = encode(&client_records(&[Some("a"), None, Some("c")]), compression);
        let mut set = good.clone();
        set.extend_from_slice(&bad);
        let err = log.append(&set, 0, NOW).expect_err("a keyless record");
        match err {
            StorageError::InvalidRecord {
                source: BatchError::MissingKey { record },
                ..
            } => assert_eq!(record, 2, "the record set's second batch, second record"),
            other => panic!("expected InvalidRecord(MissingKey), got {other:?}"),
        }
        assert_eq!(
            log.log_end_offset(),
            0,
            "nothing of the record set is written"
        );
        assert_eq!(log.size_bytes(), 0);
    }
    let keyed = encode(&client_records(&[Some("a"), Some("b")]), Compression::None);
    let info = log
        .append(&keyed, 0, NOW)
        .expect("keyed records are accepted");
    assert_eq!((info.first_offset, info.last_offset), (0, 1));
}

#[test]
fn keyless_records_are_accepted_without_compaction() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = PartitionLog::open(dir.path(), LogConfig::default(), NOW).expect("open");
    let set = encode(&client_records(&[None, None]), Compression::Lz4);
    log.append(&set, 0, NOW)
        .expect("delete policy takes keyless records");
    assert_eq!(log.log_end_offset(), 2);
}

#[test]
fn each_codec_is_recompressed_into_each_target_keeping_every_field() {
    let keys = [Some("k0"), Some("k1"), Some("k2"), None, Some("k4")];
    for (target, target_id) in TARGETS {
        for (source, source_id) in CLIENT_CODECS {
            let dir = tempfile::tempdir().expect("tempdir");
            let config = LogConfig {
                compression_type: target,
                ..LogConfig::default()
            };
            let log = PartitionLog::open(dir.path(), config, NOW).expect("open");
            // Something before it, so the batch gets offsets other than 0.
            let first = encode(&client_records(&[Some("x")]), Compression::None);
            log.append(&first, 5, NOW).expect("append");
            let sent = client_records(&keys);
            let mut second = sent.clone();
            for r in &mut second {
                r.sequence += 1;
            }
            let info = log
                .append(&encode(&second, source), 5, NOW)
                .unwrap_or_else(|e| panic!("{source:?} into {target:?}: {e}"));
            assert_eq!((info.first_offset, info.last_offset), (1, 5));
            let stored = log.read(1, 1 << 20, i64::MAX, true).expect("read").records;
            let batches: Vec<_> = Batches::new(&stored).map(|b| b.expect("batch").1).collect();
            assert_eq!(batches.len(), 1);
            let b = batches[0];
            assert_eq!(
                b.compression(),
                target_id,
                "{source:?} (id {source_id}) stored as {target:?}"
            );
            assert_eq!((b.base_offset(), b.last_offset()), (1, 5));
            assert_eq!(b.producer_id(), 4242);
            assert_eq!(b.producer_epoch(), 3);
            assert_eq!(b.base_sequence(), 8);
            assert_eq!(b.partition_leader_epoch(), 5);
            assert_eq!(b.max_timestamp(), NOW - 1_000 + 40);
            let decoded = common::decode_all(&stored);
            let got: Vec<_> = decoded.iter().flat_map(|set| set.records.iter()).collect();
            assert_eq!(got.len(), sent.len());
            for (i, (g, s)) in got.iter().zip(&second).enumerate() {
                assert_eq!(g.offset, 1 + i as i64);
                assert_eq!(g.timestamp, s.timestamp);
                assert_eq!(g.key, s.key);
                assert_eq!(g.value, s.value);
                assert_eq!(g.headers, s.headers);
                assert_eq!(g.producer_id, 4242);
                assert_eq!(g.sequence, s.sequence);
            }
            // The sequence state follows the recompressed batch: the next batch continues it.
            let mut third = client_records(&[Some("z")]);
            third[0].sequence = 13;
            log.append(&encode(&third, source), 5, NOW)
                .expect("the producer's next sequence is accepted");
        }
    }
}

#[test]
fn same_codec_is_stored_byte_for_byte() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        compression_type: CompressionType::Gzip,
        ..LogConfig::default()
    };
    let log = PartitionLog::open(dir.path(), config, NOW).expect("open");
    let sent = encode(&client_records(&[Some("a"), Some("b")]), Compression::Gzip);
    log.append(&sent, 0, NOW).expect("append");
    let stored = log.read(0, 1 << 20, i64::MAX, true).expect("read").records;
    assert_eq!(&stored[..], &common::patched(sent, 0, 0)[..]);
}

#[test]
fn follower_appends_are_stored_as_received() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        compression_type: CompressionType::Zstd,
        ..compacted()
    };
    let log = PartitionLog::open(dir.path(), config, NOW).expect("open");
    // A leader's batch: gzip, and with a keyless record, which a follower stores regardless.
    let batch = common::patched(
        encode(&client_records(&[Some("a"), None]), Compression::Gzip),
        0,
        2,
    );
    log.append_as_follower(&batch, NOW)
        .expect("follower append");
    let stored = log.read(0, 1 << 20, i64::MAX, true).expect("read").records;
    assert_eq!(&stored[..], &batch[..], "stored byte for byte");
}
