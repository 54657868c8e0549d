//! The leader-epoch cache: entries recorded by both append paths, Kafka's
//! `leader-epoch-checkpoint` file, its rebuild when missing, damaged or behind the log, and
//! OffsetForLeaderEpoch answers.

mod common;

use std::fs;

use common::*;
use strom_storage::{AppendOrigin, PartitionLog};

const FILE: &str = "leader-epoch-checkpoint";

/// A log with batches of 2 records in epochs 0 (offsets 0..4), 2 (4..10) and 5 (10..12).
fn three_epochs(dir: &std::path::Path) -> PartitionLog {
    let log = open(dir, small_config(600));
    for (i, epoch) in [0, 0, 2, 2, 2, 5].into_iter().enumerate() {
        let b = batch(&Spec::new(2, 60).tag(u8::try_from(i).expect("small")));
        log.append(&b, epoch, 1).expect("append");
    }
    log
}

#[test]
fn leader_appends_record_each_new_epoch_in_the_checkpoint_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = three_epochs(dir.path());
    assert_eq!(log.epoch_entries(), vec![(0, 0), (2, 4), (5, 10)]);
    assert_eq!(log.latest_epoch(), Some(5));
    assert_eq!(
        fs::read_to_string(dir.path().join(FILE)).expect("checkpoint file"),
        "0\n3\n0 0\n2 4\n5 10\n",
        "Kafka's format"
    );
    // Every leader append path records its epoch.
    log.append_owned(batch(&Spec::new(1, 10)), 6, 1)
        .expect("append_owned");
    log.append_with_origin(batch(&Spec::new(1, 10)), 6, 1, AppendOrigin::Coordinator)
        .expect("append_with_origin");
    log.append_with_origin(batch(&Spec::new(1, 10)), 8, 1, AppendOrigin::Client)
        .expect("append_with_origin");
    assert_eq!(
        log.epoch_entries(),
        vec![(0, 0), (2, 4), (5, 10), (6, 12), (8, 14)]
    );
    // Stored batches carry the epoch they were appended in.
    let r = log.read(4, 1, i64::MAX, true).expect("read");
    assert_eq!(
        i32::from_be_bytes(r.records[12..16].try_into().expect("4")),
        2
    );
}

#[test]
fn end_offset_for_epoch_answers_as_kafka() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = three_epochs(dir.path());
    let cases: &[(i32, Option<(i32, i64)>)] = &[
        (-1, None),
        (0, Some((0, 4))),
        (1, Some((0, 4))),
        (2, Some((2, 10))),
        (3, Some((2, 10))),
        (4, Some((2, 10))),
        (5, Some((5, 12))),
        (6, None),
    ];
    for &(epoch, want) in cases {
        assert_eq!(log.end_offset_for_epoch(epoch), want, "epoch {epoch}");
    }
    // After retention removed epoch 0's data, an epoch below the first cached answers the
    // first cached start.
    log.delete_records_before(6).expect("delete records");
    assert_eq!(log.epoch_entries()[0], (2, 6));
    assert_eq!(log.end_offset_for_epoch(1), Some((1, 6)));
    assert_eq!(log.end_offset_for_epoch(2), Some((2, 10)));
    let empty = tempfile::tempdir().expect("tempdir");
    let log = open(empty.path(), small_config(600));
    assert_eq!(log.end_offset_for_epoch(0), None, "no epoch cached");
    assert_eq!(log.latest_epoch(), None);
}

#[test]
fn a_new_leader_assigns_its_epoch_at_the_log_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = three_epochs(dir.path());
    log.assign_epoch_start_offset(7).expect("assign");
    assert_eq!(log.end_offset_for_epoch(5), Some((5, 12)));
    assert_eq!(log.end_offset_for_epoch(7), Some((7, 12)));
    log.assign_epoch_start_offset(7).expect("repeat is a no-op");
    log.append(&batch(&Spec::new(1, 10)), 7, 1).expect("append");
    assert_eq!(log.epoch_entries(), vec![(0, 0), (2, 4), (5, 10), (7, 12)]);
    drop(log);
    let log = open(dir.path(), small_config(600));
    assert_eq!(log.epoch_entries(), vec![(0, 0), (2, 4), (5, 10), (7, 12)]);
}

#[test]
fn the_cache_survives_a_restart_and_is_rebuilt_when_lost_or_damaged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let want = vec![(0, 0), (2, 4), (5, 10)];
    three_epochs(dir.path()).close().expect("close");
    assert_eq!(open(dir.path(), small_config(600)).epoch_entries(), want);
    for damage in [
        None,
        Some("garbage"),
        Some("0\n2\n0 0\n"),
        Some("0\n1\n0 0\n"),
    ] {
        match damage {
            None => fs::remove_file(dir.path().join(FILE)).expect("delete the file"),
            Some(text) => fs::write(dir.path().join(FILE), text).expect("damage the file"),
        }
        let log = open(dir.path(), small_config(600));
        assert_eq!(log.epoch_entries(), want, "after {damage:?}");
        drop(log);
        assert_eq!(
            fs::read_to_string(dir.path().join(FILE)).expect("rewritten"),
            "0\n3\n0 0\n2 4\n5 10\n",
            "after {damage:?}"
        );
    }
}

#[test]
fn entries_beyond_a_recovered_log_end_are_dropped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = three_epochs(dir.path());
    drop(log); // a crash: no clean shutdown
    // The last batch (epoch 5) was torn by the crash.
    let last = segment_files(dir.path())
        .into_keys()
        .rfind(|n| n.ends_with(".log"))
        .expect("a segment");
    let path = dir.path().join(last);
    let len = fs::metadata(&path).expect("stat").len();
    fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .and_then(|f| f.set_len(len - 5))
        .expect("tear the tail");
    let log = open(dir.path(), small_config(600));
    assert_eq!(log.log_end_offset(), 10);
    assert_eq!(log.epoch_entries(), vec![(0, 0), (2, 4)]);
    assert_eq!(log.end_offset_for_epoch(2), Some((2, 10)));
    assert_eq!(log.end_offset_for_epoch(5), None);
}

#[test]
fn retention_moves_the_first_entry_to_the_log_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = three_epochs(dir.path());
    assert!(log.segment_count() >= 3);
    log.delete_records_before(5).expect("delete records");
    let start = log.log_start_offset();
    assert_eq!(log.epoch_entries(), vec![(2, start), (5, 10)]);
    drop(log);
    let log = open(dir.path(), small_config(600));
    assert_eq!(
        log.epoch_entries(),
        vec![(2, log.log_start_offset()), (5, 10)]
    );
}
