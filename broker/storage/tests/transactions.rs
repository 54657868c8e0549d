//! Transactions on one log: markers, the last stable offset, the aborted transactions of
//! `read_committed` fetches, the `.txnindex` bytes, the checks markers and client batches go
//! through, and the bound on retention and DeleteRecords.

mod common;

use common::txn::{NOW, end_txn, producer_batch, txn_append, txn_index_files, view};
use common::{decode_all, small_config};
use strom_storage::batch::RecordBatch;
use strom_storage::producer_state::ProducerStateError;
use strom_storage::{
    AbortedTxn, AppendOrigin, LogConfig, OpenTxn, PartitionLog, StorageError, TxnMarker,
};

fn open(dir: &std::path::Path) -> PartitionLog {
    PartitionLog::open(dir, small_config(1 << 20), NOW).expect("open")
}

fn open_txn(producer_id: i64, first_offset: i64) -> OpenTxn {
    OpenTxn {
        producer_id,
        producer_epoch: 0,
        first_offset,
        last_timestamp: NOW,
    }
}

#[test]
fn a_commit_marker_is_kafkas_control_batch_and_ends_the_transaction() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path());
    let data = txn_append(&log, 7, 0, 3);
    assert_eq!((data.first_offset, data.last_offset), (0, 2));
    assert_eq!(log.open_transactions(), vec![open_txn(7, 0)]);
    assert_eq!(
        log.last_stable_offset(3),
        0,
        "the open transaction holds it"
    );

    let marker = log
        .append_txn_marker(
            TxnMarker {
                producer_id: 7,
                producer_epoch: 0,
                coordinator_epoch: 5,
                commit: true,
            },
            4,
            NOW,
        )
        .expect("commit");
    assert_eq!((marker.first_offset, marker.last_offset), (3, 3));
    assert_eq!(marker.record_count, 1);
    assert!(marker.batches[0].is_control && marker.batches[0].is_transactional);
    assert_eq!(log.log_end_offset(), 4);
    assert!(log.open_transactions().is_empty());

    let read = log.read(3, 1 << 20, i64::MAX, true).expect("read").records;
    let batch = RecordBatch::parse(&read).expect("one batch");
    assert_eq!(batch.attributes() & 0x30, 0x30, "transactional | control");
    assert_eq!(
        (
            batch.base_offset(),
            batch.partition_leader_epoch(),
            batch.producer_id(),
            batch.producer_epoch(),
            batch.base_sequence(),
            batch.record_count()
        ),
        (3, 4, 7, 0, -1, 1)
    );
    // The reference client decodes it as a control record: key version 0, type 1 (COMMIT);
    // value version 0, coordinator epoch 5.
    let decoded = decode_all(&read);
    let record = &decoded[0].records[0];
    assert!(record.control && record.transactional);
    assert_eq!(record.key.as_deref(), Some(&[0u8, 0, 0, 1][..]));
    assert_eq!(record.value.as_deref(), Some(&[0u8, 0, 0, 0, 0, 5][..]));

    // The marker at 3 is not below the high watermark 3 yet: the transaction is not stable.
    assert_eq!(log.last_stable_offset(3), 0);
    assert_eq!(log.last_stable_offset(4), 4);
    assert_eq!(log.aborted_transactions(0, 4).expect("aborted"), vec![]);
    assert!(
        txn_index_files(dir.path()).values().all(Vec::is_empty),
        "a commit adds no .txnindex entry"
    );
}

#[test]
fn an_abort_is_listed_and_written_to_the_txnindex_in_kafkas_layout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path());
    txn_append(&log, 1, 0, 2); // 0..=1
    txn_append(&log, 2, 0, 2); // 2..=3
    let abort = end_txn(&log, 1, false); // 4
    assert_eq!(abort.first_offset, 4);
    let entry = AbortedTxn {
        producer_id: 1,
        first_offset: 0,
        last_offset: 4,
        // Producer 2's transaction, open from 2, holds the LSO right after the marker.
        last_stable_offset: 2,
    };
    assert_eq!(
        log.aborted_transactions(0, 5).expect("aborted"),
        vec![entry]
    );
    let files = txn_index_files(dir.path());
    let mut want = vec![0u8, 0];
    for v in [1i64, 0, 4, 2] {
        want.extend_from_slice(&v.to_be_bytes());
    }
    assert_eq!(want.len(), 34);
    assert_eq!(
        files.get(&format!("{:020}.txnindex", 0)),
        Some(&want),
        "{files:?}"
    );
    assert_eq!(log.open_transactions(), vec![open_txn(2, 2)]);
    assert_eq!(log.last_stable_offset(5), 2);
}

#[test]
fn the_last_stable_offset_follows_interleaved_transactions_of_several_producers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path());
    // Non-transactional data first: stable at once.
    log.append(&producer_batch(-1, -1, -1, 2, false), 0, NOW)
        .expect("plain"); // 0..=1
    assert_eq!(log.last_stable_offset(2), 2);
    txn_append(&log, 10, 0, 1); // 2
    txn_append(&log, 20, 0, 1); // 3
    txn_append(&log, 10, 1, 1); // 4
    txn_append(&log, 30, 0, 1); // 5
    assert_eq!(
        log.open_transactions(),
        vec![open_txn(10, 2), open_txn(20, 3), open_txn(30, 5)]
    );
    assert_eq!(
        log.last_stable_offset(1),
        1,
        "never above the high watermark"
    );
    assert_eq!(log.last_stable_offset(6), 2);
    end_txn(&log, 20, true); // 6
    assert_eq!(log.last_stable_offset(7), 2, "producer 10 is still open");
    end_txn(&log, 10, false); // 7
    // Producer 20's commit at 6 is below the high watermark 8; producer 10's abort at 7 too;
    // producer 30 is open from 5.
    assert_eq!(log.last_stable_offset(8), 5);
    txn_append(&log, 10, 2, 1); // 8: producer 10 starts its next transaction
    end_txn(&log, 30, true); // 9
    assert_eq!(
        log.last_stable_offset(9),
        5,
        "30's commit at 9 is not replicated"
    );
    assert_eq!(log.last_stable_offset(10), 8);
    end_txn(&log, 10, true); // 10
    assert_eq!(log.last_stable_offset(10), 8);
    assert_eq!(log.last_stable_offset(11), 11);
    assert!(log.open_transactions().is_empty());
    assert_eq!(
        log.aborted_transactions(0, 11).expect("aborted"),
        vec![AbortedTxn {
            producer_id: 10,
            first_offset: 2,
            last_offset: 7,
            last_stable_offset: 5
        }]
    );
}

#[test]
fn aborted_transactions_are_those_overlapping_the_fetched_range_across_segments() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Small segments: every few batches roll.
    let log = PartitionLog::open(dir.path(), small_config(400), NOW).expect("open");
    let mut entries = Vec::new();
    for round in 0..6 {
        let pid = 100 + round;
        let first = txn_append(&log, pid, 0, 2).first_offset;
        let marker = end_txn(&log, pid, round % 2 == 1).first_offset;
        if round % 2 == 0 {
            entries.push(AbortedTxn {
                producer_id: pid,
                first_offset: first,
                last_offset: marker,
                last_stable_offset: marker + 1,
            });
        }
    }
    assert!(log.segment_count() > 3, "{} segments", log.segment_count());
    let end = log.log_end_offset();
    assert_eq!(log.aborted_transactions(0, end).expect("all"), entries);
    // Each round takes offsets [3r, 3r+2]; aborts are rounds 0, 2, 4.
    let cases = [
        ((0, 1), vec![0]),
        ((2, 3), vec![0]),
        ((3, 6), vec![]),
        ((3, 7), vec![2]),
        ((8, 9), vec![2]),
        ((9, end), vec![4]),
        ((0, end), vec![0, 2, 4]),
        ((15, end), vec![]),
    ];
    for ((from, upper), rounds) in cases {
        let want: Vec<AbortedTxn> = rounds.iter().map(|r| entries[r / 2]).collect();
        assert_eq!(
            log.aborted_transactions(from, upper).expect("aborted"),
            want,
            "[{from}, {upper})"
        );
    }
}

#[test]
fn fenced_markers_are_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path());
    log.append(&producer_batch(5, 2, 0, 1, true), 0, NOW)
        .expect("epoch 2");
    log.append_txn_marker(
        TxnMarker {
            producer_id: 5,
            producer_epoch: 2,
            coordinator_epoch: 3,
            commit: false,
        },
        0,
        NOW,
    )
    .expect("abort");
    let before = (
        log.log_end_offset(),
        txn_index_files(dir.path()),
        view(&log),
    );
    let old_epoch = log.append_txn_marker(
        TxnMarker {
            producer_id: 5,
            producer_epoch: 1,
            coordinator_epoch: 3,
            commit: true,
        },
        0,
        NOW,
    );
    assert!(
        matches!(
            old_epoch,
            Err(StorageError::ProducerState(
                ProducerStateError::InvalidProducerEpoch {
                    producer_id: 5,
                    epoch: 1,
                    current_epoch: 2
                }
            ))
        ),
        "{old_epoch:?}"
    );
    let old_coordinator = log.append_txn_marker(
        TxnMarker {
            producer_id: 5,
            producer_epoch: 2,
            coordinator_epoch: 2,
            commit: false,
        },
        0,
        NOW,
    );
    assert!(
        matches!(
            old_coordinator,
            Err(StorageError::TransactionCoordinatorFenced {
                producer_id: 5,
                coordinator_epoch: 2,
                current_coordinator_epoch: 3
            })
        ),
        "{old_coordinator:?}"
    );
    assert_eq!(
        (
            log.log_end_offset(),
            txn_index_files(dir.path()),
            view(&log)
        ),
        before,
        "nothing was written"
    );
    // The same coordinator epoch and a newer producer epoch are accepted; so is a marker for
    // a producer the log does not know (Kafka writes it all the same).
    for (pid, epoch) in [(5, 3), (99, 0)] {
        log.append_txn_marker(
            TxnMarker {
                producer_id: pid,
                producer_epoch: epoch,
                coordinator_epoch: 3,
                commit: true,
            },
            0,
            NOW,
        )
        .expect("accepted");
    }
    assert_eq!(log.log_end_offset(), before.0 + 2);
}

#[test]
fn a_non_transactional_batch_of_a_producer_in_a_transaction_is_invalid_txn_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path());
    txn_append(&log, 3, 0, 2);
    let end = log.log_end_offset();
    let plain = log.append(&producer_batch(3, 0, 2, 1, false), 0, NOW);
    assert!(
        matches!(
            plain,
            Err(StorageError::InvalidTxnState {
                producer_id: 3,
                txn_first_offset: 0
            })
        ),
        "{plain:?}"
    );
    assert_eq!(log.log_end_offset(), end, "nothing was written");
    // The transaction goes on, and after its marker plain batches are fine again.
    txn_append(&log, 3, 2, 1);
    end_txn(&log, 3, true);
    log.append(&producer_batch(3, 0, 3, 1, false), 0, NOW)
        .expect("no transaction open");
    // Another producer is not concerned.
    txn_append(&log, 4, 0, 1);
    log.append(&producer_batch(8, 0, 0, 1, false), 0, NOW)
        .expect("producer 8 has no transaction");
}

#[test]
fn a_coordinator_batch_without_sequence_opens_a_transaction() {
    // TxnOffsetCommit: the group coordinator writes transactional offsets with sequence -1.
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path());
    log.append_with_origin(
        producer_batch(11, 0, -1, 1, true),
        0,
        NOW,
        AppendOrigin::Coordinator,
    )
    .expect("coordinator append");
    assert_eq!(log.open_transactions(), vec![open_txn(11, 0)]);
    end_txn(&log, 11, false);
    assert_eq!(
        log.aborted_transactions(0, 2).expect("aborted"),
        vec![AbortedTxn {
            producer_id: 11,
            first_offset: 0,
            last_offset: 1,
            last_stable_offset: 2
        }]
    );
}

#[test]
fn retention_and_delete_records_stop_at_an_open_transaction() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        retention_ms: 1,
        ..small_config(400)
    };
    let log = PartitionLog::open(dir.path(), config, NOW).expect("open");
    for _ in 0..4 {
        log.append(&producer_batch(-1, -1, -1, 2, false), 0, NOW)
            .expect("plain");
    }
    let first = txn_append(&log, 42, 0, 2).first_offset;
    for _ in 0..6 {
        log.append(&producer_batch(-1, -1, -1, 2, false), 0, NOW)
            .expect("plain");
    }
    assert!(log.segment_count() > 3);
    // Everything has expired, but the open transaction's segment and the later ones stay.
    let outcome = log.apply_retention(NOW + 10_000).expect("retention");
    assert!(outcome.deleted_segments > 0);
    assert!(outcome.log_start_offset <= first, "{outcome:?}");
    assert_eq!(
        log.read(first, 1 << 20, i64::MAX, true)
            .expect("read")
            .first_offset,
        Some(first)
    );
    let low = log
        .delete_records_before(log.log_end_offset())
        .expect("delete records");
    assert_eq!(
        low, first,
        "the log start stops at the transaction's first offset"
    );
    assert_eq!(log.log_start_offset(), first);
    assert_eq!(log.last_stable_offset(log.log_end_offset()), first);

    end_txn(&log, 42, true);
    let end = log.log_end_offset();
    assert_eq!(log.delete_records_before(end).expect("delete records"), end);
    let outcome = log.apply_retention(NOW + 10_000).expect("retention");
    assert_eq!(outcome.log_start_offset, end);
}

#[test]
fn a_verified_batch_is_refused_when_its_transaction_ended_since_verification() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path());
    // Transaction 1 of producer 7: verified, appended, then aborted.
    let guard = log.txn_guard(7).expect("no transaction open yet");
    let first = log
        .append_guarded(producer_batch(7, 0, 0, 2, true), 0, NOW, guard)
        .expect("verified and nothing ended since");
    assert_eq!((first.first_offset, first.last_offset), (0, 1));
    // A later batch of the open transaction is not affected by the guard it was taken under.
    log.append_guarded(producer_batch(7, 0, 2, 1, true), 0, NOW, guard)
        .expect("the transaction is still open");
    assert_eq!(log.txn_guard(7), None, "a transaction is open");
    end_txn(&log, 7, false);
    let end = log.log_end_offset();

    // A retry verified under transaction 1 arrives after its abort: it would open a
    // transaction no coordinator will end, so it is refused and nothing is written.
    let late = log.append_guarded(producer_batch(7, 0, 3, 1, true), 0, NOW, guard);
    assert!(
        matches!(
            late,
            Err(StorageError::TransactionEndedSinceVerification { producer_id: 7 })
        ),
        "{late:?}"
    );
    assert_eq!(log.log_end_offset(), end);
    assert!(log.open_transactions().is_empty());

    // Verified again after the marker (the producer's next transaction): appended.
    let next = log
        .append_guarded(
            producer_batch(7, 0, 3, 1, true),
            0,
            NOW,
            log.txn_guard(7).expect("the transaction ended"),
        )
        .expect("a fresh verification");
    assert_eq!(next.first_offset, end);
    assert_eq!(log.open_transactions(), vec![open_txn(7, end)]);
}
