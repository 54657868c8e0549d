//! Transactions under compaction, as Kafka handles them: committed data is compacted like any
//! other, aborted data removed, an open transaction's data and every marker kept.

mod common;

use bytes::{Bytes, BytesMut};
use common::keyed::{NOW, compacted_config, keyed_batch, read_compacted};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use strom_storage::batch::Batches;
use strom_storage::cleaner::{OffsetMap, Throttle};
use strom_storage::{AbortedTxn, AppendOrigin, PartitionLog};

fn record(producer_id: i64, sequence: i32, key: &[u8], value: &[u8], control: bool) -> Record {
    Record {
        transactional: true,
        control,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id,
        producer_epoch: 0,
        timestamp_type: TimestampType::Creation,
        offset: i64::from(sequence.max(0)),
        sequence,
        timestamp: NOW,
        key: Some(Bytes::copy_from_slice(key)),
        value: Some(Bytes::copy_from_slice(value)),
        headers: Default::default(),
    }
}

fn encode(records: &[Record]) -> Vec<u8> {
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .expect("encode");
    buf.to_vec()
}

/// A transactional batch of `pairs` by `producer_id` from sequence 0.
fn txn_data(producer_id: i64, pairs: &[(&str, &str)]) -> Vec<u8> {
    let records: Vec<Record> = pairs
        .iter()
        .enumerate()
        .map(|(i, (k, v))| {
            let i = i32::try_from(i).expect("small");
            let mut r = record(producer_id, i, k.as_bytes(), v.as_bytes(), false);
            r.offset = i64::from(i);
            r
        })
        .collect();
    encode(&records)
}

/// A marker: control record key (version 0, type), value (version 0, coordinator epoch 0).
fn marker(producer_id: i64, commit: bool) -> Vec<u8> {
    let key = [0, 0, 0, u8::from(commit)];
    encode(&[record(producer_id, -1, &key, &[0, 0, 0, 0, 0, 0], true)])
}

#[test]
fn committed_data_compacts_aborted_data_goes_open_and_markers_stay() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = PartitionLog::open(dir.path(), compacted_config(1 << 20), NOW).expect("open");
    let plain = |pairs: &[(&str, &str)]| {
        let records: Vec<_> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), Some(v.to_string())))
            .collect();
        keyed_batch(&records, NOW, Compression::None, None)
    };
    let client = |bytes: Vec<u8>| {
        log.append_with_origin(bytes, 0, NOW, AppendOrigin::Client)
            .expect("append")
    };
    let coordinator = |bytes: Vec<u8>| {
        log.append_with_origin(bytes, 0, NOW, AppendOrigin::Coordinator)
            .expect("append marker")
    };
    client(plain(&[("a", "a1")])); // 0
    client(txn_data(10, &[("a", "a2"), ("b", "b1")])); // 1-2, committed
    client(txn_data(11, &[("a", "a3"), ("c", "c1")])); // 3-4, aborted
    coordinator(marker(10, true)); // 5
    coordinator(marker(11, false)); // 6
    client(txn_data(12, &[("b", "b9")])); // 7, open
    client(plain(&[("d", "d1")])); // 8
    assert!(log.maybe_roll(NOW + 10_000).expect("roll"));
    let end = log.log_end_offset();
    assert_eq!(end, 9);

    let aborted = vec![AbortedTxn {
        producer_id: 11,
        first_offset: 3,
        last_offset: 6,
        last_stable_offset: 7,
    }];
    assert_eq!(log.aborted_transaction_index().expect("index"), aborted);

    let mut map = OffsetMap::new(1 << 16);
    log.clean(end, NOW + 20_000, &mut map, &Throttle::unlimited())
        .expect("clean");
    // The cleaned segment that replaced the first one carries its aborted transactions: the
    // markers stay, so read_committed fetches still need them.
    assert_eq!(log.aborted_transaction_index().expect("index"), aborted);
    assert_eq!(
        std::fs::read(dir.path().join(format!("{:020}.txnindex", 0)))
            .expect("the cleaned segment's .txnindex")
            .len(),
        34
    );
    assert_eq!(log.aborted_transactions(0, end).expect("aborted"), aborted);

    let bytes = read_compacted(&log);
    let mut data = Vec::new();
    let mut markers = Vec::new();
    let mut empty = Vec::new();
    for set in common::decode_all(&bytes) {
        for r in set.records {
            let key = r.key.clone().expect("keyed");
            if r.control {
                markers.push(r.offset);
            } else {
                let value = r.value.clone().expect("value");
                data.push((
                    r.offset,
                    String::from_utf8_lossy(&key).into_owned(),
                    String::from_utf8_lossy(&value).into_owned(),
                ));
            }
        }
    }
    for item in Batches::new(&bytes) {
        let batch = item.expect("whole").1;
        if batch.record_count() == 0 {
            empty.push((
                batch.producer_id(),
                batch.base_offset(),
                batch.last_offset(),
            ));
        }
    }
    let s = |o: i64, k: &str, v: &str| (o, k.to_string(), v.to_string());
    assert_eq!(
        data,
        vec![
            s(1, "a", "a2"),
            s(2, "b", "b1"),
            s(7, "b", "b9"),
            s(8, "d", "d1")
        ],
        "a1 superseded by committed a2; aborted a3 and c1 removed; the open transaction kept"
    );
    assert_eq!(markers, vec![5, 6], "markers are kept");
    assert_eq!(
        empty,
        vec![(11, 3, 4)],
        "the aborted batch was its producer's last: kept empty"
    );
}
