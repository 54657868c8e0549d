//! Truncation for replication: the tail cut consistently (segments, indexes, epochs, producer
//! state), crash safety, restarting the log at an offset, and a diverged follower that ends
//! byte-identical to its leader.

mod common;

use common::*;
use strom_storage::{LogConfig, PartitionLog, StorageError};

fn config() -> LogConfig {
    small_config(1_000)
}

/// 30 batches of 2 records (offsets 0..60), epoch `i / 10` for batch `i`, producer 9 with
/// sequences following the offsets.
fn specs() -> Vec<(Spec, i32)> {
    (0..30i32)
        .map(|i| {
            let spec = Spec::new(2, 70)
                .tag(u8::try_from(i).expect("small"))
                .producer(9, 0, i * 2);
            (spec, i / 10)
        })
        .collect()
}

fn build(dir: &std::path::Path, batches: usize) -> PartitionLog {
    let log = open(dir, config());
    for (spec, epoch) in specs().into_iter().take(batches) {
        log.append(&batch(&spec), epoch, 1).expect("append");
    }
    log
}

#[test]
fn truncation_cuts_data_epochs_and_producer_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = build(dir.path(), 30);
    assert!(log.segment_count() > 4);
    let all = read_all(&log, 0);
    assert_eq!(log.epoch_entries(), vec![(0, 0), (1, 20), (2, 40)]);

    // Offset 37 lies inside the batch 36..=37: the log ends at 36.
    log.truncate_to(37).expect("truncate");
    assert_eq!(log.log_end_offset(), 36);
    assert_eq!(log.epoch_entries(), vec![(0, 0), (1, 20)]);
    assert_eq!(log.end_offset_for_epoch(1), Some((1, 36)));
    let kept = read_all(&log, 0);
    assert_eq!(kept, all[..kept.len()], "a prefix of the old log");
    assert_eq!(batch_offsets(&kept).last(), Some(&(34, 35)));
    // Producer state follows: the batch at 34 is a duplicate, the one at 36 is new again.
    let (spec17, _) = specs()[17].clone();
    assert!(matches!(
        log.append(&batch(&spec17), 1, 1),
        Err(StorageError::DuplicateSequence {
            first_offset: 34,
            last_offset: 35,
            ..
        })
    ));
    let (spec18, _) = specs()[18].clone();
    assert_eq!(
        log.append(&batch(&spec18), 3, 1)
            .expect("append")
            .first_offset,
        36
    );
    assert_eq!(log.epoch_entries(), vec![(0, 0), (1, 20), (3, 36)]);

    // No-ops and a cut at a segment boundary.
    log.truncate_to(1_000).expect("beyond the end");
    assert_eq!(log.log_end_offset(), 38);
    let boundary = segment_files(dir.path())
        .into_keys()
        .filter_map(|n| {
            n.strip_suffix(".log")
                .map(|d| d.parse::<i64>().expect("digits"))
        })
        .filter(|&b| b > 0)
        .nth(1)
        .expect("a later segment");
    log.truncate_to(boundary)
        .expect("truncate at a segment base");
    assert_eq!(log.log_end_offset(), boundary);
    assert_eq!(read_all(&log, 0), all[..read_all(&log, 0).len()]);
}

/// A truncated log, dropped without closing (kill -9), reopens to the same state, and its
/// files equal those of a log that only ever held the kept prefix.
#[test]
fn truncation_survives_a_crash_and_matches_a_log_that_never_held_the_tail() {
    let dir = tempfile::tempdir().expect("tempdir");
    let reference_dir = tempfile::tempdir().expect("tempdir");
    let log = build(dir.path(), 30);
    log.truncate_to(23).expect("truncate into epoch 1");
    let after = (log.log_end_offset(), read_all(&log, 0), log.epoch_entries());
    assert_eq!(after.0, 22);
    drop(log);
    let log = open(dir.path(), config());
    assert_eq!(
        (log.log_end_offset(), read_all(&log, 0), log.epoch_entries()),
        after
    );
    // Every offset is still found through the rebuilt indexes.
    for offset in 0..22 {
        let r = log.read(offset, 1, i64::MAX, true).expect("read");
        let (base, last) = batch_offsets(&r.records)[0];
        assert!(base <= offset && offset <= last);
    }
    let reference = build(reference_dir.path(), 11);
    log.flush().expect("flush");
    reference.flush().expect("flush");
    let (a, b) = (
        segment_files(dir.path()),
        segment_files(reference_dir.path()),
    );
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (name, bytes) in &a {
        assert!(b[name] == *bytes, "{name} differs from the reference");
    }
    assert_eq!(log.epoch_entries(), reference.epoch_entries());
}

#[test]
fn a_crash_after_a_partial_truncation_opens_consistently() {
    // The epoch file is written first; a crash before the data is cut leaves the file behind
    // the log, which open detects and rebuilds.
    let dir = tempfile::tempdir().expect("tempdir");
    let log = build(dir.path(), 30);
    let entries = log.epoch_entries();
    drop(log);
    std::fs::write(dir.path().join("leader-epoch-checkpoint"), "0\n1\n0 0\n").expect("write");
    let log = open(dir.path(), config());
    assert_eq!(log.epoch_entries(), entries);
    // The newest segment deleted, the older ones kept (segments go newest first).
    drop(log);
    let newest = segment_files(dir.path())
        .into_keys()
        .rfind(|n| n.ends_with(".log"))
        .expect("segment");
    std::fs::remove_file(dir.path().join(&newest)).expect("delete");
    let log = open(dir.path(), config());
    let base: i64 = newest.trim_end_matches(".log").parse().expect("digits");
    assert_eq!(log.log_end_offset(), base);
    assert!(log.epoch_entries().iter().all(|&(_, start)| start <= base));
    assert_eq!(
        log.end_offset_for_epoch(log.latest_epoch().expect("epoch")),
        Some((log.latest_epoch().expect("epoch"), base))
    );
}

#[test]
fn truncate_fully_restarts_the_log_at_an_offset() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = build(dir.path(), 30);
    log.truncate_fully_and_start_at(500).expect("restart");
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (500, 500));
    assert_eq!(log.segment_count(), 1);
    assert_eq!(log.epoch_entries(), vec![]);
    assert!(log.producer_state().is_empty());
    let logs: Vec<String> = segment_files(dir.path())
        .into_keys()
        .filter(|n| n.ends_with(".log"))
        .collect();
    assert_eq!(logs, vec!["00000000000000000500.log"]);
    assert!(
        !dir_files(dir.path())
            .keys()
            .any(|n| n.ends_with(".snapshot")),
        "no stale producer snapshot"
    );
    assert!(matches!(
        log.read(0, 100, i64::MAX, true),
        Err(StorageError::OffsetOutOfRange { .. })
    ));
    let b = patched(batch(&Spec::new(2, 10).producer(9, 0, 0)), 500, 4);
    log.append_as_follower(&b, 1)
        .expect("replicate from the new start");
    assert_eq!(log.epoch_entries(), vec![(4, 500)]);
    drop(log);
    let log = open(dir.path(), config());
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (500, 502));
    assert_eq!(read_all(&log, 500), b);
    // Below the log start, truncate_to restarts the log too.
    log.truncate_to(3).expect("below the start");
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (3, 3));
    assert!(matches!(
        log.truncate_fully_and_start_at(-1),
        Err(StorageError::OffsetOutOfRange { .. })
    ));
}

#[test]
fn a_crash_inside_truncate_fully_opens_consistently() {
    // After the log start checkpoint and before the segments go: old data, start raised.
    let dir = tempfile::tempdir().expect("tempdir");
    let log = build(dir.path(), 30);
    drop(log);
    std::fs::write(dir.path().join("log-start-offset"), "0\n500\n").expect("checkpoint");
    let log = open(dir.path(), config());
    assert_eq!(
        log.log_start_offset(),
        log.log_end_offset(),
        "nothing readable"
    );
    drop(log);
    // After the segments went and before the new one was created: empty at the new start.
    for (name, _) in segment_files(dir.path()) {
        std::fs::remove_file(dir.path().join(name)).expect("delete");
    }
    let log = open(dir.path(), config());
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (500, 500));
}

/// The failover of issue 10 in miniature: the old leader appended batches its follower never
/// got, the follower became leader and appended its own; the old leader, now a follower, asks
/// for the end offset of its latest epoch, truncates there, re-replicates and ends
/// byte-identical to the new leader.
#[test]
fn a_diverged_tail_is_truncated_and_re_replicated_byte_identical() {
    let (ad, bd) = (
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    );
    let a = open(ad.path(), config());
    let b = open(bd.path(), config());
    for i in 0..12u8 {
        a.append(&batch(&Spec::new(2, 50).tag(i)), 1, 1)
            .expect("append");
    }
    replicate(&a, &b, 600);
    // A, still leader in epoch 1, appends what B never receives.
    for i in 0..7u8 {
        a.append(&batch(&Spec::new(3, 40).tag(100 + i)), 1, 1)
            .expect("append");
    }
    // B becomes leader in epoch 2 and appends.
    b.assign_epoch_start_offset(2).expect("become leader");
    for i in 0..5u8 {
        b.append(&batch(&Spec::new(1, 30).tag(200 + i)), 2, 1)
            .expect("append");
    }
    assert_eq!((a.log_end_offset(), b.log_end_offset()), (45, 29));

    // A becomes follower: OffsetForLeaderEpoch(1) against B.
    let (epoch, end) = b
        .end_offset_for_epoch(a.latest_epoch().expect("epoch"))
        .expect("B knows epoch 1");
    assert_eq!((epoch, end), (1, 24));
    a.truncate_to(end.min(a.log_end_offset()))
        .expect("truncate");
    assert_eq!(a.log_end_offset(), 24);
    replicate(&b, &a, 300);
    assert_eq!(a.log_end_offset(), b.log_end_offset());
    assert_eq!(a.epoch_entries(), b.epoch_entries());
    assert_eq!(a.epoch_entries(), vec![(1, 0), (2, 24)]);
    assert_eq!(read_all(&a, 0), read_all(&b, 0));
    a.flush().expect("flush");
    b.flush().expect("flush");
    let (fa, fb) = (segment_files(ad.path()), segment_files(bd.path()));
    assert_eq!(fa.keys().collect::<Vec<_>>(), fb.keys().collect::<Vec<_>>());
    for (name, bytes) in &fa {
        assert!(fb[name] == *bytes, "{name} differs after re-replication");
    }
}
