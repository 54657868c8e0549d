use super::*;

fn ongoing() -> TxnLogValue {
    TxnLogValue {
        producer_id: 7,
        previous_producer_id: -1,
        next_producer_id: -1,
        producer_epoch: 3,
        timeout_ms: 60_000,
        state: TxnState::Ongoing,
        partitions: vec![("t".to_owned(), vec![0, 2])],
        last_update_timestamp_ms: 1_000,
        start_timestamp_ms: 900,
        client_transaction_version: 0,
    }
}

#[test]
fn key_is_version_zero_and_the_id() {
    let key = TxnLogKey {
        transactional_id: "tx".to_owned(),
    };
    let bytes = key.encode().expect("encodes");
    assert_eq!(&bytes[..], &[0, 0, 0, 2, b't', b'x']);
    assert_eq!(TxnLogKey::decode(&bytes).expect("decodes"), key);
    assert!(TxnLogKey::decode(&[0, 1, 0, 0]).is_err());
}

#[test]
fn value_v0_has_kafkas_layout() {
    let bytes = ongoing().encode().expect("encodes");
    let mut expected = vec![0u8, 0];
    expected.extend_from_slice(&7i64.to_be_bytes());
    expected.extend_from_slice(&3i16.to_be_bytes());
    expected.extend_from_slice(&60_000i32.to_be_bytes());
    expected.push(1);
    expected.extend_from_slice(&1i32.to_be_bytes());
    expected.extend_from_slice(&[0, 1, b't']);
    expected.extend_from_slice(&2i32.to_be_bytes());
    expected.extend_from_slice(&0i32.to_be_bytes());
    expected.extend_from_slice(&2i32.to_be_bytes());
    expected.extend_from_slice(&1_000i64.to_be_bytes());
    expected.extend_from_slice(&900i64.to_be_bytes());
    assert_eq!(&bytes[..], &expected[..]);
    assert_eq!(TxnLogValue::decode(&bytes).expect("decodes"), ongoing());
}

#[test]
fn empty_state_writes_a_null_partition_list() {
    let value = TxnLogValue {
        state: TxnState::Empty,
        partitions: Vec::new(),
        start_timestamp_ms: -1,
        ..ongoing()
    };
    let bytes = value.encode().expect("encodes");
    // version(2) pid(8) epoch(2) timeout(4) status(1), then the partition count.
    assert_eq!(&bytes[17..21], &(-1i32).to_be_bytes());
    assert_eq!(TxnLogValue::decode(&bytes).expect("decodes"), value);
}

#[test]
fn value_v1_reads_compact_fields_and_tags() {
    let mut b = vec![0u8, 1];
    b.extend_from_slice(&7i64.to_be_bytes());
    b.extend_from_slice(&3i16.to_be_bytes());
    b.extend_from_slice(&60_000i32.to_be_bytes());
    b.push(2); // PrepareCommit
    b.push(2); // one topic (compact: n + 1)
    b.extend_from_slice(&[2, b't']); // compact string "t"
    b.extend_from_slice(&[3]); // two partitions
    b.extend_from_slice(&0i32.to_be_bytes());
    b.extend_from_slice(&2i32.to_be_bytes());
    b.push(0); // no tagged fields in the partition entry
    b.extend_from_slice(&1_000i64.to_be_bytes());
    b.extend_from_slice(&900i64.to_be_bytes());
    b.push(4); // four tagged fields
    b.extend_from_slice(&[0, 8]);
    b.extend_from_slice(&5i64.to_be_bytes());
    b.extend_from_slice(&[1, 8]);
    b.extend_from_slice(&9i64.to_be_bytes());
    b.extend_from_slice(&[2, 2]);
    b.extend_from_slice(&2i16.to_be_bytes());
    b.extend_from_slice(&[9, 1, 0xff]); // an unknown tag is skipped
    let value = TxnLogValue::decode(&b).expect("decodes");
    assert_eq!(
        value,
        TxnLogValue {
            state: TxnState::PrepareCommit,
            previous_producer_id: 5,
            next_producer_id: 9,
            client_transaction_version: 2,
            ..ongoing()
        }
    );
}

#[test]
fn truncated_or_unknown_values_are_errors_not_panics() {
    let bytes = ongoing().encode().expect("encodes");
    for len in 0..bytes.len() {
        assert!(TxnLogValue::decode(&bytes[..len]).is_err(), "length {len}");
    }
    let mut bad_status = bytes.to_vec();
    bad_status[16] = 9;
    assert!(TxnLogValue::decode(&bad_status).is_err());
    assert!(TxnLogValue::decode(&[0, 2]).is_err());
}
