//! Segment rolling, retention, DeleteRecords and timestamp lookups.

mod common;

use common::*;
use strom_storage::{LogConfig, StorageError};

#[test]
fn rolls_by_size() {
    let dir = tempfile::tempdir().expect("tempdir");
    let one = batch(&Spec::new(10, 100));
    let log = open(dir.path(), small_config(one.len() as u64 * 3));
    for _ in 0..10 {
        log.append(&one, 0, 1).expect("append");
    }
    assert_eq!(log.segment_count(), 4, "three batches per segment");
    let names: Vec<String> = {
        let mut v: Vec<String> = std::fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".log"))
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        names,
        vec![
            "00000000000000000000.log",
            "00000000000000000030.log",
            "00000000000000000060.log",
            "00000000000000000090.log"
        ]
    );
    assert_eq!(read_all(&log, 0).len(), one.len() * 10);
}

#[test]
fn a_record_set_larger_than_a_segment_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let one = batch(&Spec::new(10, 100));
    let log = open(dir.path(), small_config(one.len() as u64 - 1));
    assert!(matches!(
        log.append(&one, 0, 1),
        Err(StorageError::RecordListTooLarge { .. })
    ));
}

#[test]
fn rolls_by_time_on_append_and_when_idle() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        segment_ms: 1_000,
        ..LogConfig::default()
    };
    let log = open(dir.path(), config);
    let one = batch(&Spec::new(1, 10));
    log.append(&one, 0, 10_000).expect("append");
    log.append(&one, 0, 10_999).expect("append");
    assert_eq!(log.segment_count(), 1);
    log.append(&one, 0, 11_000).expect("append");
    assert_eq!(log.segment_count(), 2, "the segment became 1 s old");
    assert!(!log.maybe_roll(11_500).expect("not due"));
    assert!(log.maybe_roll(12_000).expect("due"));
    assert_eq!(log.segment_count(), 3);
    assert!(
        !log.maybe_roll(99_000)
            .expect("an empty active segment never rolls")
    );
    assert_eq!(log.segment_count(), 3);
    assert_eq!(read_all(&log, 0).len(), one.len() * 3);
}

#[test]
fn time_retention_deletes_old_segments_and_rolls_an_expired_active_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let one = batch(&Spec::new(2, 50).ts(1_000));
    let config = LogConfig {
        retention_ms: 10_000,
        ..small_config(one.len() as u64 * 2)
    };
    let log = open(dir.path(), config);
    for i in 0..4 {
        log.append(&one, 0, 1_000 + i).expect("old data");
    }
    for _ in 0..3 {
        log.append(&batch(&Spec::new(2, 50).ts(50_000)), 0, 50_000)
            .expect("new data");
    }
    assert_eq!(log.segment_count(), 4);
    let out = log.apply_retention(55_000).expect("retention");
    assert_eq!(out.deleted_segments, 2);
    assert_eq!(out.deleted_bytes, one.len() as u64 * 4);
    assert_eq!(out.log_start_offset, 8);
    assert_eq!(log.log_start_offset(), 8);
    assert!(matches!(
        log.read(0, 1024, i64::MAX, true),
        Err(StorageError::OffsetOutOfRange { .. })
    ));
    assert_eq!(
        batch_offsets(&read_all(&log, 8)),
        vec![(8, 9), (10, 11), (12, 13)]
    );

    let out = log.apply_retention(70_000).expect("everything expired");
    assert_eq!(
        out.deleted_segments, 2,
        "the active segment is rolled then deleted"
    );
    assert_eq!(log.log_start_offset(), 14);
    assert_eq!(log.log_end_offset(), 14);
    assert_eq!(log.segment_count(), 1);
    assert_eq!(log.size_bytes(), 0);
    let info = log
        .append(&one, 0, 70_001)
        .expect("append after full retention");
    assert_eq!(info.first_offset, 14);
}

#[test]
fn size_retention_keeps_at_most_retention_bytes_while_reading() {
    let dir = tempfile::tempdir().expect("tempdir");
    let one = batch(&Spec::new(2, 50));
    let seg = one.len() as u64 * 2;
    let config = LogConfig {
        retention_bytes: i64::try_from(seg * 2).expect("small"),
        ..small_config(seg)
    };
    let log = open(dir.path(), config);
    for _ in 0..9 {
        log.append(&one, 0, 1).expect("append");
    }
    // 5 segments: 4 full, 1 half full. Hold a read of the first segment across retention.
    let before = log.read(0, 1 << 20, i64::MAX, true).expect("read");
    // Kafka's rule: delete the oldest segment while the log stays at or above retention.bytes
    // without it. 9 batches, limit 4: drop 2 segments (4 batches), keep 5.
    let out = log.apply_retention(2).expect("retention");
    assert_eq!(out.deleted_segments, 2);
    assert_eq!(log.size_bytes(), one.len() as u64 * 5);
    assert_eq!(log.log_start_offset(), 8);
    assert_eq!(
        batch_offsets(&before.records)[0],
        (0, 1),
        "bytes read before deletion stay valid"
    );
    assert_eq!(
        batch_offsets(&read_all(&log, 8)),
        vec![(8, 9), (10, 11), (12, 13), (14, 15), (16, 17)]
    );
    assert_eq!(log.apply_retention(3).expect("stable").deleted_segments, 0);
}

#[test]
fn delete_records_before_persists_across_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let one = batch(&Spec::new(5, 20));
    let config = small_config(one.len() as u64 * 2);
    {
        let log = open(dir.path(), config.clone());
        for _ in 0..6 {
            log.append(&one, 0, 1).expect("append");
        }
        assert_eq!(log.segment_count(), 3);
        assert!(matches!(
            log.delete_records_before(31),
            Err(StorageError::OffsetOutOfRange { requested: 31, .. })
        ));
        assert_eq!(log.delete_records_before(13).expect("delete"), 13);
        assert_eq!(
            log.segment_count(),
            2,
            "the first segment lies wholly below 13"
        );
        assert_eq!(log.delete_records_before(4).expect("lower is a no-op"), 13);
        log.close().expect("close");
    }
    let log = open(dir.path(), config);
    assert_eq!(log.log_start_offset(), 13);
    assert_eq!(log.log_end_offset(), 30);
    assert!(matches!(
        log.read(12, 1024, i64::MAX, true),
        Err(StorageError::OffsetOutOfRange { .. })
    ));
    assert_eq!(
        log.read(13, 1 << 20, i64::MAX, true)
            .expect("read")
            .first_offset,
        Some(10)
    );
    assert_eq!(log.delete_records_before(30).expect("up to the end"), 30);
    assert_eq!(log.append(&one, 0, 1).expect("append").first_offset, 30);
}

#[test]
fn offset_for_timestamp_uses_the_time_index_across_segments() {
    let dir = tempfile::tempdir().expect("tempdir");
    let one_len = batch(&Spec::new(2, 40)).len() as u64;
    let config = LogConfig {
        index_interval_bytes: 100,
        ..small_config(one_len * 8)
    };
    let log = open(dir.path(), config.clone());
    // Batch i has timestamps 1000*i and 1000*i+1, offsets 2i and 2i+1.
    for i in 0..40i64 {
        log.append(&batch(&Spec::new(2, 40).ts(1_000 * i)), 0, 5)
            .expect("append");
    }
    assert_eq!(log.segment_count(), 5);
    let check = |log: &strom_storage::PartitionLog| {
        let cases = [
            (0, Some((1, 0))),
            (1, Some((1, 0))),
            (2, Some((1_001, 2))),
            (7_500, Some((8_001, 16))),
            (17_001, Some((17_001, 34))),
            (39_001, Some((39_001, 78))),
            (39_002, None),
        ];
        for (ts, want) in cases {
            let got = log
                .offset_for_timestamp(ts)
                .expect("lookup")
                .map(|t| (t.timestamp, t.offset));
            assert_eq!(got, want, "timestamp {ts}");
        }
        assert_eq!(
            log.latest_timestamp().map(|t| (t.timestamp, t.offset)),
            Some((39_001, 78))
        );
    };
    check(&log);
    log.close().expect("close");
    drop(log);
    let log = open(dir.path(), config);
    check(&log);
    log.delete_records_before(35).expect("delete records");
    assert_eq!(
        log.offset_for_timestamp(0)
            .expect("lookup")
            .map(|t| (t.timestamp, t.offset)),
        Some((17_001, 35)),
        "raised to the log start offset"
    );
}

#[test]
fn truncate_to_drops_the_tail_and_appends_continue() {
    let dir = tempfile::tempdir().expect("tempdir");
    let one = batch(&Spec::new(3, 20));
    let config = small_config(one.len() as u64 * 2);
    let log = open(dir.path(), config.clone());
    for _ in 0..7 {
        log.append(&one, 0, 1).expect("append");
    }
    assert_eq!(log.segment_count(), 4);
    log.truncate_to(10).expect("truncate mid-batch");
    assert_eq!(log.log_end_offset(), 9, "the batch holding 10 goes whole");
    assert_eq!(log.segment_count(), 2);
    assert_eq!(
        batch_offsets(&read_all(&log, 0)),
        vec![(0, 2), (3, 5), (6, 8)]
    );
    assert_eq!(log.append(&one, 0, 1).expect("append").first_offset, 9);
    log.truncate_to(6).expect("truncate at a segment boundary");
    assert_eq!(log.log_end_offset(), 6);
    drop(log);
    let log = open(dir.path(), config);
    assert_eq!(log.log_end_offset(), 6);
    assert_eq!(batch_offsets(&read_all(&log, 0)), vec![(0, 2), (3, 5)]);
    log.delete_records_before(3).expect("delete records");
    log.truncate_to(1).expect("below the log start");
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (1, 1));
    assert_eq!(log.append(&one, 0, 1).expect("append").first_offset, 1);
}
