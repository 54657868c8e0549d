use bytes::{Buf, Bytes};
use proptest::prelude::*;

use super::*;

fn text() -> impl Strategy<Value = String> {
    // Includes multi-byte UTF-8 so lengths are checked in bytes, not chars.
    prop::string::string_regex("[a-zA-Z0-9._\\-é漢]{0,40}").expect("valid regex")
}

fn blob() -> impl Strategy<Value = Bytes> {
    prop::collection::vec(any::<u8>(), 0..64).prop_map(Bytes::from)
}

fn key() -> impl Strategy<Value = RecordKey> {
    prop_oneof![
        (text(), text(), any::<i32>()).prop_map(|(group, topic, partition)| {
            RecordKey::OffsetCommit {
                group,
                topic,
                partition,
            }
        }),
        text().prop_map(|group| RecordKey::GroupMetadata { group }),
    ]
}

fn offset_value() -> impl Strategy<Value = OffsetCommitValue> {
    (any::<i64>(), any::<i32>(), text(), any::<i64>()).prop_map(
        |(offset, leader_epoch, metadata, commit_timestamp)| OffsetCommitValue {
            offset,
            leader_epoch,
            metadata,
            commit_timestamp,
        },
    )
}

fn member() -> impl Strategy<Value = MemberMetadataValue> {
    (
        text(),
        prop::option::of(text()),
        text(),
        text(),
        any::<i32>(),
        any::<i32>(),
        blob(),
        blob(),
    )
        .prop_map(
            |(
                member_id,
                group_instance_id,
                client_id,
                client_host,
                rebalance,
                session,
                subscription,
                assignment,
            )| {
                MemberMetadataValue {
                    member_id,
                    group_instance_id,
                    client_id,
                    client_host,
                    rebalance_timeout_ms: rebalance,
                    session_timeout_ms: session,
                    subscription,
                    assignment,
                }
            },
        )
}

fn group_value() -> impl Strategy<Value = GroupMetadataValue> {
    (
        text(),
        any::<i32>(),
        prop::option::of(text()),
        prop::option::of(text()),
        any::<i64>(),
        prop::collection::vec(member(), 0..4),
    )
        .prop_map(
            |(protocol_type, generation, protocol, leader, current_state_timestamp, members)| {
                GroupMetadataValue {
                    protocol_type,
                    generation,
                    protocol,
                    leader,
                    current_state_timestamp,
                    members,
                }
            },
        )
}

proptest! {
    #[test]
    fn keys_round_trip(key in key()) {
        let bytes = key.encode().expect("encodable");
        prop_assert_eq!(RecordKey::decode(&bytes).expect("decodable"), Some(key));
    }

    #[test]
    fn offset_values_round_trip(value in offset_value()) {
        let bytes = value.encode().expect("encodable");
        prop_assert_eq!(OffsetCommitValue::decode(&bytes).expect("decodable"), value);
    }

    #[test]
    fn group_values_round_trip(value in group_value()) {
        let bytes = value.encode().expect("encodable");
        prop_assert_eq!(GroupMetadataValue::decode(&bytes).expect("decodable"), value);
    }

    #[test]
    fn batches_round_trip(
        records in prop::collection::vec((key(), prop::option::of(offset_value())), 1..8),
        timestamp in 0i64..i64::MAX / 2,
    ) {
        let encoded: Vec<KeyValue> = records
            .iter()
            .map(|(k, v)| (k.encode().expect("key"), v.as_ref().map(|v| v.encode().expect("value"))))
            .collect();
        let batch = build_batch(&encoded, timestamp).expect("batch");
        let parsed = parse_batches(batch).expect("parsable");
        prop_assert_eq!(parsed.next_offset, Some(records.len() as i64));
        prop_assert_eq!(parsed.records.len(), records.len());
        for (i, (logged, (key, value))) in parsed.records.iter().zip(&records).enumerate() {
            prop_assert_eq!(logged.offset, i as i64);
            let logged_key = RecordKey::decode(logged.key.as_deref().expect("key")).expect("key decodes");
            prop_assert_eq!(logged_key.as_ref(), Some(key));
            let expected_value = value.as_ref().map(|v| v.encode().expect("value"));
            prop_assert_eq!(&logged.value, &expected_value);
        }
    }

    #[test]
    fn garbage_never_panics(data in prop::collection::vec(any::<u8>(), 0..128)) {
        let _ = RecordKey::decode(&data);
        let _ = OffsetCommitValue::decode(&data);
        let _ = GroupMetadataValue::decode(&data);
    }
}

#[test]
fn offset_commit_key_matches_kafka_bytes() {
    // Kafka's OffsetCommitKey v1 for ("g", "t", 3): version, then int16-length strings, int32.
    let key = RecordKey::OffsetCommit {
        group: "g".into(),
        topic: "t".into(),
        partition: 3,
    };
    let expected: &[u8] = &[0, 1, 0, 1, b'g', 0, 1, b't', 0, 0, 0, 3];
    assert_eq!(key.encode().expect("encodable").as_ref(), expected);
    let group_key = RecordKey::GroupMetadata { group: "g".into() };
    assert_eq!(
        group_key.encode().expect("encodable").as_ref(),
        &[0, 2, 0, 1, b'g']
    );
}

#[test]
fn older_value_versions_decode() {
    // OffsetCommitValue v1 carries an expire timestamp and no leader epoch.
    let mut v1 = bytes::BytesMut::new();
    bytes::BufMut::put_i16(&mut v1, 1);
    bytes::BufMut::put_i64(&mut v1, 42);
    bytes::BufMut::put_i16(&mut v1, 2);
    bytes::BufMut::put_slice(&mut v1, b"md");
    bytes::BufMut::put_i64(&mut v1, 1000);
    bytes::BufMut::put_i64(&mut v1, 2000);
    let decoded = OffsetCommitValue::decode(&v1).expect("v1 decodes");
    assert_eq!(
        decoded,
        OffsetCommitValue {
            offset: 42,
            leader_epoch: -1,
            metadata: "md".into(),
            commit_timestamp: 1000
        }
    );
    let unknown_key = [0u8, 9, 0, 0];
    assert_eq!(RecordKey::decode(&unknown_key).expect("skippable"), None);
    assert!(matches!(
        OffsetCommitValue::decode(&[0, 4, 0, 0]),
        Err(RecordError::UnsupportedVersion { version: 4, .. })
    ));
}

#[test]
fn parse_leaves_a_trailing_partial_batch() {
    let record = (
        RecordKey::GroupMetadata { group: "g".into() }
            .encode()
            .expect("key"),
        None,
    );
    let batch = build_batch(&[record], 0).expect("batch");
    let mut two = batch.to_vec();
    two.extend_from_slice(&batch[..batch.len() - 5]);
    let parsed = parse_batches(Bytes::from(two)).expect("parsable");
    assert_eq!(parsed.records.len(), 1);
    assert_eq!(parsed.next_offset, Some(1));
}

/// (total length, first batch length, attributes, producer id, producer epoch, base sequence).
fn batch_header(batch: &[u8]) -> (usize, usize, i16, i64, i16, i32) {
    let mut b = batch;
    b.advance(8);
    let length = b.get_i32();
    b.advance(9); // partition leader epoch, magic, crc
    let attributes = b.get_i16();
    b.advance(20); // last offset delta, timestamps
    let producer_id = b.get_i64();
    let producer_epoch = b.get_i16();
    let base_sequence = b.get_i32();
    let first = usize::try_from(length).expect("length") + 12;
    (
        batch.len(),
        first,
        attributes,
        producer_id,
        producer_epoch,
        base_sequence,
    )
}

fn offset_records(n: i64) -> Vec<KeyValue> {
    (0..n)
        .map(|partition| {
            let key = RecordKey::OffsetCommit {
                group: "g".into(),
                topic: "t".into(),
                partition: i32::try_from(partition).expect("small"),
            };
            (key.encode().expect("key"), None)
        })
        .collect()
}

#[test]
fn several_records_make_one_batch() {
    let batch = build_batch(&offset_records(3), 0).expect("batch");
    let (total, first, attributes, producer_id, epoch, base_sequence) = batch_header(&batch);
    assert_eq!(first, total, "one batch");
    assert_eq!(
        (attributes, producer_id, epoch, base_sequence),
        (0, -1, -1, -1)
    );
    assert_eq!(parse_batches(batch).expect("parsable").records.len(), 3);
}

#[test]
fn transactional_batches_and_markers_round_trip() {
    let batch = build_txn_batch(&offset_records(2), 0, 77, 4).expect("batch");
    let (total, first, attributes, producer_id, epoch, base_sequence) = batch_header(&batch);
    assert_eq!(first, total, "one batch");
    assert_eq!(
        (attributes, producer_id, epoch, base_sequence),
        (0x10, 77, 4, -1)
    );

    let marker = build_marker_batch(77, 4, 9, true, 0).expect("marker");
    let (_, _, attributes, producer_id, epoch, base_sequence) = batch_header(&marker);
    assert_eq!(
        (attributes, producer_id, epoch, base_sequence),
        (0x30, 77, 4, -1)
    );

    let mut both = batch.to_vec();
    // The marker follows the two records, as a log assigns offsets.
    let mut marker = marker.to_vec();
    marker[..8].copy_from_slice(&2i64.to_be_bytes());
    both.extend_from_slice(&marker);
    let parsed = parse_batches(Bytes::from(both)).expect("parsable");
    assert_eq!(parsed.records.len(), 2, "the marker is not a data record");
    assert!(
        parsed
            .records
            .iter()
            .all(|r| r.transactional && r.producer_id == 77)
    );
    assert_eq!(
        parsed.markers,
        vec![LoggedMarker {
            offset: 2,
            producer_id: 77,
            producer_epoch: 4,
            commit: true,
        }]
    );
    assert_eq!(parsed.next_offset, Some(3));

    let abort = build_marker_batch(77, 4, 9, false, 0).expect("marker");
    let parsed = parse_batches(abort).expect("parsable");
    assert_eq!(parsed.markers.len(), 1);
    assert!(!parsed.markers[0].commit);
}
