//! The follower's append path: batches stored exactly as the leader sent them, offsets that
//! must continue the log, damaged batches refused whole, producer state that survives a change
//! of leader.

mod common;

use common::*;
use strom_storage::producer_state::ProducerStateError;
use strom_storage::{LogConfig, StorageError, TimestampType};

#[test]
fn replicated_log_is_byte_identical_to_the_leader() {
    let (ld, fd) = (
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    );
    let config = small_config(2_000);
    let leader = open(ld.path(), config.clone());
    let follower = open(fd.path(), config);
    let mut epoch = 0;
    for i in 0..60u8 {
        if i % 17 == 16 {
            epoch += 2;
        }
        let spec = Spec::new(1 + usize::from(i % 5), 20 + usize::from(i) * 3)
            .tag(i)
            .ts(1_000 + i64::from(i));
        leader
            .append(&batch(&spec), epoch, 1_000_000)
            .expect("leader append");
    }
    assert!(
        leader.segment_count() > 3,
        "the test spans several segments"
    );
    // A small fetch size: several fetches, each ending on a batch boundary.
    let fetches = replicate(&leader, &follower, 700);
    assert!(fetches > 5, "{fetches} fetches");
    assert_eq!(follower.log_end_offset(), leader.log_end_offset());
    assert_eq!(follower.segment_count(), leader.segment_count());
    assert_eq!(follower.epoch_entries(), leader.epoch_entries());
    assert_eq!(
        follower
            .epoch_entries()
            .iter()
            .map(|e| e.0)
            .collect::<Vec<_>>(),
        vec![0, 2, 4, 6]
    );
    assert_eq!(read_all(&follower, 0), read_all(&leader, 0));
    leader.close().expect("close");
    follower.close().expect("close");
    let (l, f) = (dir_files(ld.path()), dir_files(fd.path()));
    assert_eq!(
        l.keys().collect::<Vec<_>>(),
        f.keys().collect::<Vec<_>>(),
        "same files"
    );
    for (name, bytes) in &l {
        assert!(
            f[name] == *bytes,
            "{name} differs between leader and follower"
        );
    }
}

#[test]
fn batches_keep_the_leaders_offsets_epochs_and_timestamps() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The follower's own timestamp settings must not touch replicated batches.
    let config = LogConfig {
        message_timestamp_type: TimestampType::LogAppendTime,
        ..small_config(1 << 20)
    };
    let log = open(dir.path(), config);
    let old = -5_000_000; // far outside any timestamp window
    let b0 = patched(batch(&Spec::new(3, 10).ts(old)), 0, 7);
    let b1 = patched(batch(&Spec::new(2, 10).ts(old).tag(1)), 3, 9);
    let mut set = b0.clone();
    set.extend_from_slice(&b1);
    let info = log.append_as_follower(&set, 42).expect("append");
    assert_eq!((info.first_offset, info.last_offset), (0, 4));
    assert_eq!(info.record_count, 5);
    assert_eq!(info.bytes, set.len() as u64);
    assert_eq!(info.log_append_time, -1);
    assert_eq!(info.batches.len(), 2);
    assert_eq!(info.batches[1].base_offset, 3);
    assert_eq!(log.log_end_offset(), 5);
    assert_eq!(read_all(&log, 0), set, "stored byte for byte");
    assert_eq!(log.epoch_entries(), vec![(7, 0), (9, 3)]);
}

#[test]
fn empty_and_already_replicated_input_appends_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), small_config(1 << 20));
    let info = log.append_as_follower(&[], 1).expect("empty");
    assert_eq!(
        (info.first_offset, info.record_count, info.bytes),
        (0, 0, 0)
    );
    let b0 = patched(batch(&Spec::new(3, 10)), 0, 1);
    let b1 = patched(batch(&Spec::new(2, 10).tag(1)), 3, 1);
    log.append_as_follower(&b0, 1).expect("first");
    // The same fetch again (a retried fetch): skipped.
    let again = log.append_as_follower(&b0, 1).expect("repeat");
    assert_eq!((again.first_offset, again.record_count), (3, 0));
    // An overlapping fetch: the old batch is skipped, the new one stored.
    let mut both = b0.clone();
    both.extend_from_slice(&b1);
    let info = log.append_as_follower(&both, 1).expect("overlap");
    assert_eq!(
        (info.first_offset, info.last_offset, info.record_count),
        (3, 4, 2)
    );
    assert_eq!(info.bytes, b1.len() as u64);
    let mut expected = b0;
    expected.extend_from_slice(&b1);
    assert_eq!(read_all(&log, 0), expected);
}

#[test]
fn a_trailing_partial_batch_is_ignored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), small_config(1 << 20));
    let b0 = patched(batch(&Spec::new(3, 10)), 0, 0);
    let b1 = patched(batch(&Spec::new(2, 10).tag(1)), 3, 0);
    for cut in [1, 11, 12, 40, 61, b1.len() - 1] {
        let mut set = b0.clone();
        set.extend_from_slice(&b1[..cut]);
        let info = log.append_as_follower(&set, 1).expect("partial tail");
        assert_eq!(log.log_end_offset(), 3, "cut at {cut}");
        assert!(info.record_count == 3 || info.record_count == 0);
    }
    assert_eq!(read_all(&log, 0), b0);
    let info = log
        .append_as_follower(&b1[..20], 1)
        .expect("only a partial batch");
    assert_eq!((info.first_offset, info.record_count), (3, 0));
}

#[test]
fn gaps_left_by_a_compacted_leader_are_accepted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), small_config(1 << 20));
    let first = patched(batch(&Spec::new(2, 10)), 5, 0);
    let second = patched(batch(&Spec::new(1, 10).tag(1)), 20, 0);
    let mut set = first.clone();
    set.extend_from_slice(&second);
    let info = log.append_as_follower(&set, 1).expect("gaps are fine");
    assert_eq!((info.first_offset, info.last_offset), (5, 20));
    assert_eq!(log.log_end_offset(), 21);
    assert_eq!(
        read_all(&log, 0),
        set,
        "an offset in a gap reads the next batch"
    );
}

#[test]
fn offsets_must_not_go_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), small_config(1 << 20));
    let b0 = patched(batch(&Spec::new(3, 10)), 0, 0);
    // The second batch overlaps the first: not a continuation.
    let overlapping = patched(batch(&Spec::new(2, 10)), 2, 0);
    let mut set = b0.clone();
    set.extend_from_slice(&overlapping);
    match log.append_as_follower(&set, 1) {
        Err(StorageError::OffsetMismatch {
            expected: 3,
            actual: 2,
        }) => {}
        other => panic!("expected an offset mismatch, got {other:?}"),
    }
    assert_eq!(
        log.log_end_offset(),
        0,
        "nothing of a refused set is written"
    );
    log.append_as_follower(&b0, 1).expect("append");
    // A batch straddling the log end: the log diverged inside a batch.
    let straddling = patched(batch(&Spec::new(4, 10)), 1, 0);
    assert!(matches!(
        log.append_as_follower(&straddling, 1),
        Err(StorageError::OffsetMismatch {
            expected: 3,
            actual: 1
        })
    ));
    assert_eq!(read_all(&log, 0), b0);
}

#[test]
fn a_damaged_batch_fails_the_whole_set() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), small_config(1 << 20));
    let b0 = patched(batch(&Spec::new(3, 10)), 0, 0);
    let b1 = patched(batch(&Spec::new(2, 10).tag(1)), 3, 0);
    let mut set = b0.clone();
    set.extend_from_slice(&b1);
    let flip = b0.len() + b1.len() - 3;
    set[flip] ^= 0x40;
    assert!(matches!(
        log.append_as_follower(&set, 1),
        Err(StorageError::CorruptRecord { position, .. }) if position == b0.len()
    ));
    assert_eq!(log.log_end_offset(), 0);
    assert_eq!(log.size_bytes(), 0, "nothing written");
    // A length field below a batch header is damage, not a partial batch.
    let mut bad_len = b0.clone();
    bad_len[8..12].copy_from_slice(&3i32.to_be_bytes());
    assert!(matches!(
        log.append_as_follower(&bad_len, 1),
        Err(StorageError::CorruptRecord { position: 0, .. })
    ));
    assert_eq!(
        log.epoch_entries(),
        vec![],
        "no epoch cached for refused data"
    );
}

#[test]
fn control_batches_are_accepted_from_the_leader() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), small_config(1 << 20));
    let data = patched(batch(&Spec::new(2, 10).producer(5, 0, 0)), 0, 0);
    let marker = as_control(patched(batch(&Spec::new(1, 4).producer(5, 0, 2)), 2, 0));
    let mut set = data.clone();
    set.extend_from_slice(&marker);
    let info = log.append_as_follower(&set, 1).expect("control batch");
    assert!(info.batches[1].is_control);
    assert_eq!(read_all(&log, 0), set);
    // The leader path refuses the same batch from a client.
    let other = tempfile::tempdir().expect("tempdir");
    let leader = open(other.path(), small_config(1 << 20));
    assert!(matches!(
        leader.append(&marker, 0, 1),
        Err(StorageError::InvalidRecord { .. })
    ));
}

#[test]
fn a_follower_that_becomes_leader_deduplicates_retries() {
    let (ld, fd) = (
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    );
    let leader = open(ld.path(), small_config(1 << 20));
    let b0 = batch(&Spec::new(3, 10).producer(42, 0, 0));
    let b1 = batch(&Spec::new(2, 10).producer(42, 0, 3));
    leader
        .append(&batch(&Spec::new(1, 10)), 0, 1)
        .expect("plain");
    leader.append(&b0, 0, 1).expect("b0");
    leader.append(&b1, 0, 1).expect("b1");
    let follower = open(fd.path(), small_config(1 << 20));
    replicate(&leader, &follower, 1 << 20);
    drop(leader);
    let check = |log: &strom_storage::PartitionLog, when: &str| {
        // The producer retries its last batch against the new leader.
        match log.append(&b1, 1, 1) {
            Err(StorageError::DuplicateSequence {
                producer_id: 42,
                first_offset: 4,
                last_offset: 5,
            }) => {}
            other => panic!("expected a duplicate ({when}), got {other:?}"),
        }
        let gap = batch(&Spec::new(1, 10).producer(42, 0, 9));
        assert!(matches!(
            log.append(&gap, 1, 1),
            Err(StorageError::ProducerState(
                ProducerStateError::OutOfOrderSequence {
                    expected: 5,
                    got: 9,
                    ..
                }
            ))
        ));
        assert_eq!(log.log_end_offset(), 6, "nothing appended ({when})");
    };
    check(&follower, "live");
    // Not closed: the producer state is rebuilt from the log on open.
    drop(follower);
    let follower = open(fd.path(), small_config(1 << 20));
    check(&follower, "reopened");
    drop(follower);
    let new_leader = open(fd.path(), small_config(1 << 20));
    let next = batch(&Spec::new(1, 10).producer(42, 0, 5));
    let info = new_leader.append(&next, 1, 1).expect("the next sequence");
    assert_eq!(info.first_offset, 6);
    assert_eq!(new_leader.epoch_entries(), vec![(0, 0), (1, 6)]);
}

#[test]
fn batches_roll_segments_as_on_the_leader() {
    let dir = tempfile::tempdir().expect("tempdir");
    let one = batch(&Spec::new(10, 100));
    let log = open(dir.path(), small_config(one.len() as u64 * 3));
    // One fetch holding ten batches: segments still hold three batches each.
    let mut set = Vec::new();
    for i in 0..10 {
        set.extend_from_slice(&patched(one.clone(), i * 10, 0));
    }
    log.append_as_follower(&set, 1).expect("append");
    assert_eq!(log.segment_count(), 4);
    let names: Vec<String> = segment_files(dir.path())
        .into_keys()
        .filter(|n| n.ends_with(".log"))
        .collect();
    assert_eq!(
        names,
        vec![
            "00000000000000000000.log",
            "00000000000000000030.log",
            "00000000000000000060.log",
            "00000000000000000090.log"
        ]
    );
    assert_eq!(read_all(&log, 0), set);
    // A batch larger than a segment still goes in, alone in its segment.
    let big = patched(batch(&Spec::new(30, 120)), 100, 0);
    log.append_as_follower(&big, 1)
        .expect("a batch larger than segment.bytes");
    assert_eq!(log.log_end_offset(), 130);
    assert_eq!(log.read(100, 1, i64::MAX, true).expect("read").records, big);
}

/// Bytes from the network never panic the follower path: every mutation of a valid fetch is
/// either refused or stored exactly as given.
#[test]
fn mutated_fetches_never_panic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut valid = Vec::new();
    let mut offset = 0;
    for i in 0..4u8 {
        let b = batch(&Spec::new(1 + usize::from(i), 8).tag(i));
        let count = i64::from(i) + 1;
        valid.extend_from_slice(&patched(b, offset, 3));
        offset += count;
    }
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for round in 0..400 {
        let sub = dir.path().join(format!("p-{round}"));
        let log = open(&sub, small_config(1 << 20));
        let mut input = valid.clone();
        for _ in 0..1 + next() % 4 {
            let at = (next() % input.len() as u64) as usize;
            input[at] = (next() & 0xff) as u8;
        }
        if next() % 3 == 0 {
            input.truncate((next() % input.len() as u64) as usize);
        }
        if let Ok(info) = log.append_as_follower(&input, 1) {
            let stored = read_all(&log, 0);
            assert_eq!(stored.len() as u64, info.bytes);
            assert_eq!(stored, input[..stored.len()], "round {round}");
        }
        drop(log);
        std::fs::remove_dir_all(&sub).expect("clean up");
    }
}
