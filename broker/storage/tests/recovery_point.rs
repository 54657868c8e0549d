//! The recovery point: what it covers as the log rolls, flushes and truncates, and how a known
//! recovery point decides what an open after a crash scans.

mod common;

use std::fs;
use std::os::unix::fs::FileExt;

use common::*;
use strom_storage::{LogConfig, PartitionLog};

fn config() -> LogConfig {
    small_config(1_000)
}

/// Segment `.log` files by base offset.
fn segment_bases(dir: &std::path::Path) -> Vec<i64> {
    segment_files(dir)
        .into_keys()
        .filter_map(|n| n.strip_suffix(".log").map(|d| d.parse().expect("digits")))
        .collect()
}

fn build(dir: &std::path::Path) -> PartitionLog {
    let log = open(dir, config());
    for i in 0..24u8 {
        log.append(&batch(&Spec::new(2, 80).tag(i)), 0, 1)
            .expect("append");
    }
    log
}

#[test]
fn the_recovery_point_follows_rolls_flushes_and_truncation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), config());
    assert_eq!(log.recovery_point(), 0);
    log.append(&batch(&Spec::new(2, 80)), 0, 1).expect("append");
    assert_eq!(log.recovery_point(), 0, "nothing synced yet");
    for i in 0..23u8 {
        log.append(&batch(&Spec::new(2, 80).tag(i)), 0, 1)
            .expect("append");
    }
    let bases = segment_bases(dir.path());
    assert!(bases.len() > 3);
    let active_base = *bases.last().expect("segments");
    assert_eq!(
        log.recovery_point(),
        active_base,
        "rolled segments are synced"
    );
    log.flush().expect("flush");
    assert_eq!(log.recovery_point(), log.log_end_offset());
    log.truncate_to(bases[1] + 2).expect("truncate");
    assert_eq!(log.recovery_point(), log.log_end_offset());
    log.append(&batch(&Spec::new(2, 80)), 0, 1).expect("append");
    assert_eq!(
        log.recovery_point(),
        bases[1] + 2,
        "the new batch is not synced"
    );
    let config = LogConfig {
        flush_messages: 1,
        ..config()
    };
    log.update_config(config);
    log.append(&batch(&Spec::new(2, 80)), 0, 1).expect("append");
    assert_eq!(
        log.recovery_point(),
        log.log_end_offset(),
        "flush.messages=1"
    );
    drop(log);
    let log = open(dir.path(), small_config(1_000));
    assert_eq!(log.recovery_point(), log.log_end_offset(), "after open");
}

/// Corrupts one payload byte of the batch at file position 0 of segment `base` (not a header
/// field the cheap checks read, so only a CRC check finds it).
fn corrupt_first_batch(dir: &std::path::Path, base: i64) {
    let path = dir.join(format!("{base:020}.log"));
    let file = fs::OpenOptions::new()
        .write(true)
        .read(true)
        .open(path)
        .expect("open");
    let mut byte = [0u8; 1];
    file.read_exact_at(&mut byte, 70).expect("read");
    file.write_all_at(&[byte[0] ^ 0xff], 70).expect("write");
}

#[test]
fn sealed_segments_above_the_recovery_point_are_checked_after_a_crash() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = build(dir.path());
    let leo = log.log_end_offset();
    drop(log); // a crash
    let bases = segment_bases(dir.path());
    corrupt_first_batch(dir.path(), bases[2]);
    // Wholly below the recovery point: not rescanned, the log is kept whole.
    let log = PartitionLog::open_with_recovery_point(dir.path(), config(), 1, Some(bases[3]))
        .expect("open");
    assert_eq!(log.log_end_offset(), leo);
    assert_eq!(segment_bases(dir.path()), bases);
    drop(log);
    // Above it: CRC-checked, cut at the damaged batch, the later segments dropped.
    let log = PartitionLog::open_with_recovery_point(dir.path(), config(), 1, Some(bases[2]))
        .expect("open");
    assert_eq!(log.log_end_offset(), bases[2]);
    assert_eq!(segment_bases(dir.path()), bases[..3].to_vec());
    assert_eq!(log.recovery_point(), bases[2]);
}

#[test]
fn the_last_segment_is_not_rescanned_when_wholly_below_the_recovery_point() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = build(dir.path());
    log.flush().expect("flush");
    let (leo, rp) = (log.log_end_offset(), log.recovery_point());
    assert_eq!(rp, leo);
    drop(log); // a crash after the flush
    let active = *segment_bases(dir.path()).last().expect("segments");
    corrupt_first_batch(dir.path(), active);
    let log =
        PartitionLog::open_with_recovery_point(dir.path(), config(), 1, Some(rp)).expect("open");
    assert_eq!(
        log.log_end_offset(),
        leo,
        "not scanned: everything was on disk"
    );
    drop(log);
    // Without a recovery point the crash means a full scan of the last segment.
    let log = open(dir.path(), config());
    assert_eq!(
        log.log_end_offset(),
        active,
        "the CRC scan cut the damaged batch"
    );
}
