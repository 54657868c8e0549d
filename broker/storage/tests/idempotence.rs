//! Idempotent producers: duplicates answered with their offsets, gaps and fenced epochs
//! refused, and both still true after a restart.

mod common;

use common::*;
use strom_storage::producer_state::ProducerStateError;
use strom_storage::{AppendOrigin, StorageError};

#[test]
fn retries_are_deduplicated_and_gaps_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), small_config(4096));
    let b0 = batch(&Spec::new(3, 10).producer(42, 0, 0));
    let b1 = batch(&Spec::new(2, 10).producer(42, 0, 3));
    assert_eq!(log.append(&b0, 0, 1).expect("first").first_offset, 0);
    assert_eq!(log.append(&b1, 0, 1).expect("second").first_offset, 3);
    match log.append(&b0, 0, 1) {
        Err(StorageError::DuplicateSequence {
            producer_id: 42,
            first_offset: 0,
            last_offset: 2,
        }) => {}
        other => panic!("expected a duplicate, got {other:?}"),
    }
    assert_eq!(log.log_end_offset(), 5, "a duplicate appends nothing");
    let gap = batch(&Spec::new(1, 10).producer(42, 0, 9));
    assert!(matches!(
        log.append(&gap, 0, 1),
        Err(StorageError::ProducerState(
            ProducerStateError::OutOfOrderSequence {
                expected: 5,
                got: 9,
                ..
            }
        ))
    ));
    let bumped = batch(&Spec::new(1, 10).producer(42, 1, 0));
    assert_eq!(
        log.append(&bumped, 0, 1)
            .expect("new epoch from 0")
            .first_offset,
        5
    );
    let fenced = batch(&Spec::new(1, 10).producer(42, 0, 5));
    assert!(matches!(
        log.append(&fenced, 0, 1),
        Err(StorageError::ProducerState(
            ProducerStateError::InvalidProducerEpoch {
                current_epoch: 1,
                ..
            }
        ))
    ));
    let other = batch(&Spec::new(1, 10).producer(7, 0, 100));
    assert_eq!(
        log.append(&other, 0, 1)
            .expect("an unknown producer may start anywhere")
            .first_offset,
        6
    );
    let replay = batch(&Spec::new(1, 10).producer(7, 0, 100));
    assert!(
        log.append_with_origin(replay, 0, 1, AppendOrigin::Coordinator)
            .is_ok(),
        "no checks for the broker's own appends"
    );
}

#[test]
fn a_multi_batch_append_is_checked_as_a_sequence() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), small_config(4096));
    let mut set = batch(&Spec::new(2, 10).producer(1, 0, 0));
    set.extend(batch(&Spec::new(2, 10).producer(1, 0, 2)));
    assert_eq!(log.append(&set, 0, 1).expect("in sequence").last_offset, 3);
    let mut bad = batch(&Spec::new(2, 10).producer(1, 0, 4));
    bad.extend(batch(&Spec::new(2, 10).producer(1, 0, 9)));
    assert!(matches!(
        log.append(&bad, 0, 1),
        Err(StorageError::ProducerState(_))
    ));
    assert_eq!(log.log_end_offset(), 4, "refused whole");
}

#[test]
fn deduplication_survives_restart_clean_or_not() {
    for clean in [true, false] {
        let dir = tempfile::tempdir().expect("tempdir");
        let one_len = batch(&Spec::new(2, 20).producer(9, 3, 0)).len() as u64;
        let config = small_config(one_len * 3);
        {
            let log = open(dir.path(), config.clone());
            for i in 0..10 {
                log.append(&batch(&Spec::new(2, 20).producer(9, 3, 2 * i)), 0, 1)
                    .expect("append");
            }
            if clean {
                log.close().expect("close");
            }
        }
        let log = open(dir.path(), config);
        let retry = batch(&Spec::new(2, 20).producer(9, 3, 18));
        assert!(
            matches!(
                log.append(&retry, 0, 1),
                Err(StorageError::DuplicateSequence {
                    first_offset: 18,
                    ..
                })
            ),
            "clean shutdown: {clean}"
        );
        let next = batch(&Spec::new(2, 20).producer(9, 3, 20));
        assert_eq!(log.append(&next, 0, 1).expect("continues").first_offset, 20);
        let gap = batch(&Spec::new(2, 20).producer(9, 3, 30));
        assert!(matches!(
            log.append(&gap, 0, 1),
            Err(StorageError::ProducerState(_))
        ));
    }
}

#[test]
fn truncation_forgets_the_producer_state_of_removed_batches() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), small_config(4096));
    for i in 0..4 {
        log.append(&batch(&Spec::new(1, 10).producer(5, 0, i)), 0, 1)
            .expect("append");
    }
    log.truncate_to(2).expect("truncate");
    let again = batch(&Spec::new(1, 10).producer(5, 0, 2));
    assert_eq!(
        log.append(&again, 0, 1)
            .expect("sequence 2 is new again")
            .first_offset,
        2
    );
}

#[test]
fn idle_producers_expire_and_stay_forgotten_across_a_clean_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let log = open(dir.path(), small_config(1 << 20));
        // Producer 1's newest batch is at 1_000 ms, producer 2's at 90_000 ms.
        log.append(&batch(&Spec::new(1, 10).ts(1_000).producer(1, 0, 0)), 0, 1)
            .expect("append");
        log.append(&batch(&Spec::new(1, 10).ts(90_000).producer(2, 0, 0)), 0, 1)
            .expect("append");
        assert_eq!(
            log.remove_expired_producers(50_000, 50_000),
            0,
            "nobody idle yet"
        );
        assert_eq!(log.remove_expired_producers(100_000, 50_000), 1);
        let state = log.producer_state();
        assert!(state.entry(1).is_none(), "producer 1 idled for 99 s");
        assert!(state.entry(2).is_some(), "producer 2 idled for 10 s");
        log.close().expect("close");
    }
    let log = open(dir.path(), small_config(1 << 20));
    let state = log.producer_state();
    assert!(
        state.entry(1).is_none(),
        "the snapshot holds no expired producer"
    );
    assert!(state.entry(2).is_some());
    // The forgotten producer is new to the partition: its next batch is appended.
    let next = batch(&Spec::new(1, 10).ts(100_000).producer(1, 0, 1));
    assert_eq!(log.append(&next, 0, 1).expect("appended").first_offset, 2);
    // The one still tracked keeps its deduplication.
    assert!(matches!(
        log.append(&batch(&Spec::new(1, 10).ts(90_000).producer(2, 0, 0)), 0, 1),
        Err(StorageError::DuplicateSequence {
            producer_id: 2,
            first_offset: 1,
            ..
        })
    ));
}
