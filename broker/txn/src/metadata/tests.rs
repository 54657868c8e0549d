use super::*;

const NOW: i64 = 1_000_000;

fn parts(list: &[(&str, i32)]) -> BTreeSet<(String, i32)> {
    list.iter().map(|(t, p)| ((*t).to_owned(), *p)).collect()
}

fn ready(outcome: Result<InitOutcome, i16>) -> TransactionMetadata {
    match outcome {
        Ok(InitOutcome::Ready(meta)) => meta,
        other => panic!("expected Ready, got {other:?}"),
    }
}

fn empty(epoch: i16) -> TransactionMetadata {
    TransactionMetadata {
        producer_epoch: epoch,
        ..TransactionMetadata::new("tx", 10, 60_000, NOW)
    }
}

fn ongoing() -> TransactionMetadata {
    add_partitions(&empty(0), 10, 0, &parts(&[("t", 0)]), NOW)
        .expect("adds")
        .expect("changes")
}

#[test]
fn a_new_transactional_id_gets_a_new_producer_id_at_epoch_zero() {
    assert_eq!(
        init_producer_id(None, "tx", 60_000, None, None, NOW),
        Ok(InitOutcome::NeedsProducerId)
    );
    let meta = ready(init_producer_id(None, "tx", 60_000, None, Some(42), NOW));
    assert_eq!((meta.producer_id, meta.producer_epoch), (42, 0));
    assert_eq!(meta.state, TxnState::Empty);
    assert_eq!(meta.timeout_ms, 60_000);
}

#[test]
fn init_again_bumps_the_epoch_and_takes_the_new_timeout() {
    let meta = ready(init_producer_id(
        Some(&empty(3)),
        "tx",
        5_000,
        None,
        None,
        NOW + 1,
    ));
    assert_eq!((meta.producer_id, meta.producer_epoch), (10, 4));
    assert_eq!(meta.timeout_ms, 5_000);
    assert_eq!(meta.last_update_timestamp_ms, NOW + 1);
}

#[test]
fn kip_360_bump_with_the_current_epoch_and_its_retry() {
    let bumped = ready(init_producer_id(
        Some(&empty(1)),
        "tx",
        60_000,
        Some((10, 1)),
        None,
        NOW,
    ));
    assert_eq!((bumped.producer_epoch, bumped.last_producer_epoch), (2, 1));
    // The response was lost; the retry names the old epoch again and gets the same one.
    let retry = ready(init_producer_id(
        Some(&bumped),
        "tx",
        60_000,
        Some((10, 1)),
        None,
        NOW,
    ));
    assert_eq!(retry.producer_epoch, 2);
    // An older epoch, or another producer id, is a fenced producer.
    for expected in [(10, 0), (11, 2)] {
        assert_eq!(
            init_producer_id(Some(&bumped), "tx", 60_000, Some(expected), None, NOW),
            Err(PRODUCER_FENCED)
        );
    }
}

#[test]
fn an_ongoing_transaction_is_fenced_with_a_bumped_epoch_abort() {
    let meta = ongoing();
    let Ok(InitOutcome::FenceOngoing(abort)) =
        init_producer_id(Some(&meta), "tx", 60_000, None, None, NOW + 5)
    else {
        panic!("expected a fencing abort");
    };
    assert_eq!(abort.state, TxnState::PrepareAbort);
    assert_eq!(abort.producer_epoch, 1);
    assert_eq!(abort.partitions, parts(&[("t", 0)]));
    // While markers are written, InitProducerId waits.
    assert_eq!(
        init_producer_id(Some(&abort), "tx", 60_000, None, None, NOW),
        Err(CONCURRENT_TRANSACTIONS)
    );
    // After the abort completes, the retry bumps once more.
    let done = abort.complete(NOW + 6).expect("completes");
    let meta = ready(init_producer_id(Some(&done), "tx", 60_000, None, None, NOW));
    assert_eq!(meta.producer_epoch, 2);
    assert!(meta.partitions.is_empty());
}

#[test]
fn an_exhausted_epoch_rotates_the_producer_id() {
    let meta = empty(i16::MAX - 1);
    assert_eq!(
        init_producer_id(Some(&meta), "tx", 60_000, None, None, NOW),
        Ok(InitOutcome::NeedsProducerId)
    );
    let rotated = ready(init_producer_id(
        Some(&meta),
        "tx",
        60_000,
        None,
        Some(77),
        NOW,
    ));
    assert_eq!((rotated.producer_id, rotated.producer_epoch), (77, 0));
    assert_eq!(rotated.last_producer_id, 10);
    // KIP-360: the producer names its exhausted epoch; a retry of that call (its response
    // lost) names the old producer id again and gets the same new one, not a fence.
    let expected = Some((10, i16::MAX - 1));
    let rotated = ready(init_producer_id(
        Some(&meta),
        "tx",
        60_000,
        expected,
        Some(77),
        NOW,
    ));
    assert_eq!((rotated.producer_id, rotated.producer_epoch), (77, 0));
    let retry = ready(init_producer_id(
        Some(&rotated),
        "tx",
        60_000,
        expected,
        None,
        NOW,
    ));
    assert_eq!((retry.producer_id, retry.producer_epoch), (77, 0));
}

#[test]
fn add_partitions_checks_the_producer_then_starts_or_extends() {
    let meta = empty(0);
    let add = |m: &TransactionMetadata, pid, epoch, ps: &[(&str, i32)], now| {
        add_partitions(m, pid, epoch, &parts(ps), now)
    };
    assert_eq!(
        add(&meta, 11, 0, &[("t", 0)], NOW),
        Err(INVALID_PRODUCER_ID_MAPPING)
    );
    assert_eq!(add(&meta, 10, 1, &[("t", 0)], NOW), Err(PRODUCER_FENCED));
    let started = add(&meta, 10, 0, &[("t", 0)], NOW + 1)
        .expect("adds")
        .expect("changes");
    assert_eq!(started.state, TxnState::Ongoing);
    assert_eq!(started.start_timestamp_ms, NOW + 1);
    assert_eq!(add(&started, 10, 0, &[("t", 0)], NOW + 2), Ok(None));
    let extended = add(&started, 10, 0, &[("u", 3)], NOW + 3)
        .expect("adds")
        .expect("changes");
    assert_eq!(extended.partitions, parts(&[("t", 0), ("u", 3)]));
    assert_eq!(extended.start_timestamp_ms, NOW + 1);
    let preparing = extended.fence_abort(NOW).expect("aborts");
    assert_eq!(
        add(&preparing, 10, 1, &[("t", 0)], NOW),
        Err(CONCURRENT_TRANSACTIONS)
    );
}

#[test]
fn end_transaction_follows_kafkas_state_rules() {
    let meta = ongoing();
    assert_eq!(
        end_transaction(&meta, 9, 0, true, NOW),
        Err(INVALID_PRODUCER_ID_MAPPING)
    );
    assert_eq!(
        end_transaction(&meta, 10, 1, true, NOW),
        Err(PRODUCER_FENCED)
    );
    let Ok(EndOutcome::Prepare(prepare)) = end_transaction(&meta, 10, 0, true, NOW + 1) else {
        panic!("expected PrepareCommit");
    };
    assert_eq!(prepare.state, TxnState::PrepareCommit);
    assert_eq!(prepare.partitions, meta.partitions);
    assert_eq!(
        end_transaction(&prepare, 10, 0, true, NOW),
        Err(CONCURRENT_TRANSACTIONS)
    );
    assert_eq!(
        end_transaction(&prepare, 10, 0, false, NOW),
        Err(INVALID_TXN_STATE)
    );
    let done = prepare.complete(NOW + 2).expect("completes");
    assert_eq!(done.state, TxnState::CompleteCommit);
    assert!(done.partitions.is_empty());
    assert_eq!(
        end_transaction(&done, 10, 0, true, NOW),
        Ok(EndOutcome::AlreadyComplete)
    );
    assert_eq!(
        end_transaction(&done, 10, 0, false, NOW),
        Err(INVALID_TXN_STATE)
    );
    assert_eq!(
        end_transaction(&empty(0), 10, 0, true, NOW),
        Err(INVALID_TXN_STATE)
    );
}

#[test]
fn verify_only_requires_the_current_producer_and_no_pending_markers() {
    let meta = ongoing();
    assert_eq!(verify_producer(&meta, 10, 0), Ok(()));
    assert_eq!(verify_producer(&meta, 10, 1), Err(PRODUCER_FENCED));
    assert_eq!(
        verify_producer(&meta, 3, 0),
        Err(INVALID_PRODUCER_ID_MAPPING)
    );
    let abort = meta.fence_abort(NOW).expect("aborts");
    assert_eq!(verify_producer(&abort, 10, 1), Err(CONCURRENT_TRANSACTIONS));
}

#[test]
fn timeouts_and_expiry() {
    let meta = ongoing();
    assert!(!meta.is_timed_out(NOW + 60_000));
    assert!(meta.is_timed_out(NOW + 60_001));
    assert!(!meta.is_expired(NOW + 10_000_000, 1_000));
    let idle = empty(0);
    assert!(!idle.is_expired(NOW + 999, 1_000));
    assert!(idle.is_expired(NOW + 1_000, 1_000));
    assert_eq!(empty(0).fence_abort(NOW), None);
}

#[test]
fn log_values_round_trip_with_partitions_grouped_by_topic() {
    let mut meta = ongoing();
    meta.partitions = parts(&[("a", 1), ("a", 0), ("b", 5)]);
    let value = meta.to_log();
    assert_eq!(
        value.partitions,
        vec![("a".to_owned(), vec![0, 1]), ("b".to_owned(), vec![5])]
    );
    assert_eq!(TransactionMetadata::from_log("tx", &value), meta);
}
