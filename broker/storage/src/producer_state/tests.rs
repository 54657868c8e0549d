use super::*;

fn batch(pid: i64, epoch: i16, seq: i32, offset: i64, count: i32) -> BatchInfo {
    BatchInfo {
        base_offset: offset,
        last_offset: offset + i64::from(count) - 1,
        producer_id: pid,
        producer_epoch: epoch,
        base_sequence: seq,
        record_count: count,
        max_timestamp: 0,
        is_transactional: false,
        is_control: false,
    }
}

#[test]
fn sequence_rules() {
    let mut s = ProducerStateManager::new();
    assert_eq!(
        s.check(7, 0, 42, 44),
        Ok(SequenceCheck::Append),
        "unknown producer starts anywhere"
    );
    s.update(&batch(7, 0, 0, 100, 3));
    s.update(&batch(7, 0, 3, 103, 2));
    let cases = [
        ((0, 5, 6), Ok(SequenceCheck::Append)),
        (
            (0, 0, 2),
            Ok(SequenceCheck::Duplicate {
                first_offset: 100,
                last_offset: 102,
            }),
        ),
        (
            (0, 3, 4),
            Ok(SequenceCheck::Duplicate {
                first_offset: 103,
                last_offset: 104,
            }),
        ),
        (
            (0, 7, 8),
            Err(ProducerStateError::OutOfOrderSequence {
                producer_id: 7,
                epoch: 0,
                expected: 5,
                got: 7,
            }),
        ),
        (
            (0, 4, 4),
            Err(ProducerStateError::OutOfOrderSequence {
                producer_id: 7,
                epoch: 0,
                expected: 5,
                got: 4,
            }),
        ),
        ((1, 0, 0), Ok(SequenceCheck::Append)),
        (
            (1, 5, 5),
            Err(ProducerStateError::OutOfOrderSequence {
                producer_id: 7,
                epoch: 1,
                expected: 0,
                got: 5,
            }),
        ),
    ];
    for ((epoch, first, last), want) in cases {
        assert_eq!(
            s.check(7, epoch, first, last),
            want,
            "epoch {epoch} seq {first}..{last}"
        );
    }
    s.update(&batch(7, 1, 0, 105, 1));
    assert_eq!(
        s.check(7, 0, 5, 5),
        Err(ProducerStateError::InvalidProducerEpoch {
            producer_id: 7,
            epoch: 0,
            current_epoch: 1
        })
    );
}

#[test]
fn keeps_last_five_batches_and_wraps() {
    let mut s = ProducerStateManager::new();
    for i in 0..7 {
        s.update(&batch(1, 0, i, i64::from(i) * 10, 1));
    }
    let entry = s.entry(1).expect("tracked");
    assert_eq!(entry.batches.len(), MAX_CACHED_BATCHES);
    assert_eq!(entry.batches.front().map(|b| b.first_seq), Some(2));
    assert_eq!(
        s.check(1, 0, 0, 0),
        Err(ProducerStateError::OutOfOrderSequence {
            producer_id: 1,
            epoch: 0,
            expected: 7,
            got: 0
        })
    );

    let mut w = ProducerStateManager::new();
    w.update(&batch(2, 0, i32::MAX - 1, 0, 2));
    assert_eq!(
        w.entry(2)
            .and_then(|e| e.batches.back().map(|b| b.last_seq)),
        Some(i32::MAX)
    );
    assert_eq!(w.check(2, 0, 0, 0), Ok(SequenceCheck::Append), "wraps to 0");
}

#[test]
fn idle_producers_expire() {
    let mut s = ProducerStateManager::new();
    let mut old = batch(1, 0, 0, 0, 1);
    old.max_timestamp = 1_000;
    let mut recent = batch(2, 0, 0, 1, 1);
    recent.max_timestamp = 90_000;
    s.update(&old);
    s.update(&recent);
    assert_eq!(s.remove_expired(100_000, 50_000), 1);
    assert!(s.entry(1).is_none());
    assert!(s.entry(2).is_some());
}

#[test]
fn a_new_producer_beyond_the_bound_evicts_the_least_recently_active() {
    let mut s = ProducerStateManager::new();
    let max = i64::try_from(MAX_PRODUCERS_PER_PARTITION).expect("fits");
    for id in 0..max {
        let mut b = batch(id, 0, 0, id, 1);
        // Producer 7 is the least recently active; the others are newer than it.
        b.max_timestamp = if id == 7 { 10 } else { 1_000 + id };
        s.update(&b);
    }
    assert_eq!(s.len(), MAX_PRODUCERS_PER_PARTITION);
    // A known producer appending again evicts nobody.
    s.update(&batch(3, 0, 1, max, 1));
    assert_eq!(s.len(), MAX_PRODUCERS_PER_PARTITION);
    assert!(s.entry(7).is_some());

    let mut newcomer = batch(max, 0, 0, max + 1, 1);
    newcomer.max_timestamp = 5;
    s.update(&newcomer);
    assert_eq!(s.len(), MAX_PRODUCERS_PER_PARTITION);
    assert!(s.entry(7).is_none(), "the oldest last timestamp is evicted");
    assert!(s.entry(max).is_some(), "the newcomer is tracked");
    // The evicted producer is new to the partition again: its next batch is accepted.
    assert_eq!(s.check(7, 0, 1, 1), Ok(SequenceCheck::Append));
    // The survivors keep their deduplication.
    assert_eq!(
        s.check(3, 0, 1, 1),
        Ok(SequenceCheck::Duplicate {
            first_offset: max,
            last_offset: max
        })
    );
}

#[test]
fn expiry_keeps_a_producer_exactly_at_the_limit_and_counts_from_its_newest_batch() {
    let mut s = ProducerStateManager::new();
    let mut first = batch(1, 0, 0, 0, 1);
    first.max_timestamp = 1_000;
    let mut later = batch(1, 0, 1, 1, 1);
    later.max_timestamp = 60_000;
    s.update(&first);
    s.update(&later);
    assert_eq!(s.remove_expired(110_000, 50_000), 0, "idle exactly 50 s");
    assert_eq!(s.remove_expired(110_001, 50_000), 1);
    assert!(s.is_empty());
}

#[test]
fn snapshot_round_trip_and_damage() {
    let mut s = ProducerStateManager::new();
    s.update(&batch(1, 3, 0, 0, 2));
    s.update(&batch(9, 0, 10, 2, 5));
    let bytes = s.encode();
    assert_eq!(ProducerStateManager::decode(&bytes), Ok(s.clone()));
    let mut bad = bytes.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    assert!(ProducerStateManager::decode(&bad).is_err());
    assert!(ProducerStateManager::decode(&bytes[..bytes.len() - 3]).is_err());
}

fn txn_batch(pid: i64, seq: i32, offset: i64, count: i32) -> BatchInfo {
    BatchInfo {
        is_transactional: true,
        ..batch(pid, 0, seq, offset, count)
    }
}

fn marker(pid: i64, offset: i64) -> BatchInfo {
    BatchInfo {
        is_transactional: true,
        is_control: true,
        ..batch(pid, 0, -1, offset, 1)
    }
}

const COMMIT: crate::records::ControlMarker = crate::records::ControlMarker {
    commit: true,
    coordinator_epoch: 3,
};
const ABORT: crate::records::ControlMarker = crate::records::ControlMarker {
    commit: false,
    coordinator_epoch: 3,
};

#[test]
fn transactions_open_on_data_and_close_on_markers() {
    let mut s = ProducerStateManager::new();
    s.update(&txn_batch(1, 0, 10, 2));
    // A coordinator's offset commit carries no sequence and opens a transaction too.
    s.update(&txn_batch(2, -1, 12, 1));
    s.update(&txn_batch(1, 2, 13, 1));
    assert_eq!(
        s.entry(1).and_then(|e| e.current_txn_first_offset),
        Some(10)
    );
    assert_eq!(
        s.entry(2).and_then(|e| e.current_txn_first_offset),
        Some(12)
    );
    assert!(s.has_open_transaction(1));
    assert_eq!(s.last_stable_offset(100), 10);

    let done = s.update_marker(&marker(1, 14), ABORT).expect("closes");
    assert_eq!(
        done,
        CompletedTxn {
            producer_id: 1,
            first_offset: 10,
            last_offset: 14,
            is_aborted: true
        }
    );
    assert_eq!(
        s.last_stable_offset_after(&done),
        12,
        "producer 2 is still open"
    );
    assert_eq!(s.entry(1).map(|e| e.coordinator_epoch), Some(3));
    assert!(!s.has_open_transaction(1));
    // The marker is not below the high watermark 14 yet: its transaction holds the LSO.
    assert_eq!(s.last_stable_offset(14), 10);
    assert_eq!(s.last_stable_offset(15), 12);
    let done = s.update_marker(&marker(2, 15), COMMIT).expect("closes");
    assert_eq!(s.last_stable_offset_after(&done), 16);
    assert_eq!(s.last_stable_offset(16), 16);
    assert!(!s.has_unstable());
    assert_eq!(
        s.update_marker(&marker(2, 16), COMMIT),
        None,
        "nothing open"
    );
}

#[test]
fn an_open_transaction_is_neither_expired_nor_evicted_first() {
    let mut s = ProducerStateManager::new();
    s.update(&txn_batch(1, 0, 0, 1));
    s.update(&batch(2, 0, 0, 1, 1));
    assert_eq!(s.remove_expired(1_000_000, 10), 1);
    assert!(s.entry(1).is_some());
    s.update(&batch(3, 0, 0, 2, 1));
    s.evict_to(1);
    assert!(s.entry(1).is_some(), "the other producer goes first");
    assert_eq!(s.first_unstable_offset(), Some(0));
}

#[test]
fn snapshots_keep_open_transactions_and_read_version_one() {
    let mut s = ProducerStateManager::new();
    s.update(&txn_batch(5, 0, 40, 3));
    s.update(&marker(6, 43));
    let _ = s.update_marker(&marker(6, 43), COMMIT);
    s.update(&batch(7, 1, 9, 44, 1));
    let decoded = ProducerStateManager::decode(&s.encode()).expect("decode");
    assert_eq!(decoded.entry(5), s.entry(5));
    assert_eq!(decoded.entry(6).map(|e| e.coordinator_epoch), Some(3));
    assert_eq!(decoded.first_unstable_offset(), Some(40));
    assert_eq!(
        decoded
            .open_transactions()
            .map(|(pid, _, first)| (pid, first))
            .collect::<Vec<_>>(),
        vec![(5, 40)]
    );

    // Version 1: id, epoch, last timestamp, batch count, batches.
    let mut body = Vec::new();
    body.extend_from_slice(&1u32.to_be_bytes());
    body.extend_from_slice(&9i64.to_be_bytes());
    body.extend_from_slice(&2i16.to_be_bytes());
    body.extend_from_slice(&77i64.to_be_bytes());
    body.push(1);
    for v in [0i32, 4] {
        body.extend_from_slice(&v.to_be_bytes());
    }
    for v in [100i64, 104] {
        body.extend_from_slice(&v.to_be_bytes());
    }
    let mut v1 = 1u16.to_be_bytes().to_vec();
    v1.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
    v1.extend_from_slice(&body);
    let old = ProducerStateManager::decode(&v1).expect("version 1");
    let entry = old.entry(9).expect("producer 9");
    assert_eq!((entry.epoch, entry.last_timestamp), (2, 77));
    assert_eq!(entry.current_txn_first_offset, None);
    assert_eq!(entry.coordinator_epoch, -1);
    assert_eq!(old.check(9, 2, 5, 5), Ok(SequenceCheck::Append));
}
