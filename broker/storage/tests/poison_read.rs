//! A bad batch already in a segment — stored by a version that did not check records, or
//! damaged on disk — is never served: a read stops before it, a read that starts at it fails
//! with `CorruptBatchInLog` (the broker's CORRUPT_MESSAGE), and the data around it stays
//! readable. Without this a consumer is fed bytes it cannot parse and retries forever.

mod common;

use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use common::{Spec, batch, batch_offsets, open, small_config};
use strom_storage::{LogConfig, StorageError};

fn segment_logs(dir: &Path) -> Vec<PathBuf> {
    let mut logs: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    logs.sort();
    logs
}

/// A batch at `base_offset` claiming five records while holding one, with a valid CRC: what
/// the produce path accepted before it walked records.
fn count_five_holding_one(base_offset: i64) -> Vec<u8> {
    let mut b = batch(&Spec::new(1, 10));
    b[0..8].copy_from_slice(&base_offset.to_be_bytes());
    b[23..27].copy_from_slice(&4i32.to_be_bytes());
    b[57..61].copy_from_slice(&5i32.to_be_bytes());
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b
}

fn assert_corrupt_at(log: &strom_storage::PartitionLog, offset: i64) {
    match log.read(offset, 1 << 20, i64::MAX, true) {
        Err(StorageError::CorruptBatchInLog { offset: o, .. }) => assert_eq!(o, offset),
        other => panic!("offset {offset}: expected CorruptBatchInLog, got {other:?}"),
    }
}

#[test]
fn a_stored_poison_batch_is_reported_and_the_rest_stays_readable() {
    for clean in [true, false] {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = LogConfig::default();
        {
            let log = open(dir.path(), config.clone());
            for i in 0..3 {
                log.append(&batch(&Spec::new(2, 10).tag(i)), 0, 2_000)
                    .expect("append");
            }
            if clean {
                log.close().expect("close");
            }
        }
        let segment = segment_logs(dir.path()).pop().expect("a segment");
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&segment)
            .expect("open the segment");
        file.write_all(&count_five_holding_one(6)).expect("write");
        drop(file);

        let log = open(dir.path(), config.clone());
        assert_eq!(log.log_end_offset(), 11, "clean={clean}");
        let after = log
            .append(&batch(&Spec::new(2, 10).tag(9)), 0, 3_000)
            .expect("append after the bad batch");
        assert_eq!(after.first_offset, 11);

        let head = log.read(0, 1 << 20, i64::MAX, true).expect("read from 0");
        assert_eq!(
            batch_offsets(&head.records),
            vec![(0, 1), (2, 3), (4, 5)],
            "clean={clean}: the read stops before the bad batch"
        );
        assert_corrupt_at(&log, 6);
        assert_corrupt_at(&log, 9);
        let tail = log.read(11, 1 << 20, i64::MAX, true).expect("read past it");
        assert_eq!(batch_offsets(&tail.records), vec![(11, 12)]);
    }
}

#[test]
fn bytes_that_are_no_batch_inside_a_sealed_segment_are_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = small_config(4096);
    let size = batch(&Spec::new(2, 10)).len();
    {
        let log = open(dir.path(), config.clone());
        for i in 0..200u8 {
            log.append(&batch(&Spec::new(2, 10).tag(i)), 0, 2_000)
                .expect("append");
        }
        assert!(log.segment_count() > 2);
        log.close().expect("close");
    }
    // Overwrite the third batch's header in the first (sealed) segment.
    let first = &segment_logs(dir.path())[0];
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .open(first)
        .expect("open");
    file.seek(SeekFrom::Start(2 * size as u64)).expect("seek");
    file.write_all(&[0xab; 61]).expect("write");
    drop(file);

    let log = open(dir.path(), config);
    let head = log.read(0, 1 << 20, i64::MAX, true).expect("read from 0");
    assert_eq!(batch_offsets(&head.records), vec![(0, 1), (2, 3)]);
    assert_corrupt_at(&log, 4);
    // Later segments are untouched and served.
    let end = log.log_end_offset();
    let tail = log
        .read(end - 2, 1 << 20, i64::MAX, true)
        .expect("read the tail");
    assert_eq!(batch_offsets(&tail.records), vec![(end - 2, end - 1)]);
}
