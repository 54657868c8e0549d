//! Append and read behaviour a consumer relies on: offsets, bytes, bounds.

mod common;

use common::*;
use kafka_protocol::records::Compression;
use strom_storage::batch::{BatchTimestampType, RecordBatch};
use strom_storage::{LogConfig, PartitionLog, StorageError, TimestampType};

#[test]
fn append_read_round_trip_patches_offsets_and_epoch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), LogConfig::default());
    let a = batch(&Spec::new(3, 10).tag(1));
    let b = batch(&Spec::new(2, 10).tag(2));

    let first = log.append(&a, 5, 2_000).expect("append a");
    assert_eq!(
        (first.first_offset, first.last_offset, first.record_count),
        (0, 2, 3)
    );
    assert_eq!(first.bytes, a.len() as u64);
    assert_eq!(first.log_append_time, -1);
    let second = log.append(&b, 6, 2_001).expect("append b");
    assert_eq!((second.first_offset, second.last_offset), (3, 4));
    assert_eq!(second.batches.len(), 1);
    assert_eq!(second.batches[0].base_offset, 3);
    assert_eq!(second.batches[0].record_count, 2);
    assert_eq!(log.log_end_offset(), 5);

    let read = log.read(0, 1 << 20, i64::MAX, false).expect("read");
    assert_eq!(read.first_offset, Some(0));
    let mut want = patched(a.clone(), 0, 5);
    want.extend(patched(b.clone(), 3, 6));
    assert_eq!(
        &read.records[..],
        &want[..],
        "bytes come back as stored, offsets and epoch patched"
    );
    for (_, batch) in strom_storage::batch::Batches::new(&read.records).map(|r| r.expect("whole")) {
        batch.validate().expect("patching keeps the CRC valid");
    }
    let decoded = decode_all(&read.records);
    let offsets: Vec<i64> = decoded
        .iter()
        .flat_map(|s| s.records.iter().map(|r| r.offset))
        .collect();
    assert_eq!(offsets, vec![0, 1, 2, 3, 4]);
}

#[test]
fn many_appends_give_contiguous_offsets_and_a_multi_batch_append_is_one_unit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), small_config(4096));
    let mut expected_next = 0;
    for i in 0..200u8 {
        let n = usize::from(i % 7) + 1;
        let mut set = batch(&Spec::new(n, 20).tag(i));
        if i % 10 == 0 {
            set.extend(batch(&Spec::new(2, 5).tag(i)));
        }
        let info = log.append(&set, 0, 10_000).expect("append");
        assert_eq!(info.first_offset, expected_next);
        let count = n as i64 + if i % 10 == 0 { 2 } else { 0 };
        assert_eq!(info.last_offset, expected_next + count - 1);
        expected_next += count;
    }
    assert_eq!(log.log_end_offset(), expected_next);
    assert!(log.segment_count() > 1, "4 KiB segments roll");
    let all = read_all(&log, 0);
    let offsets = batch_offsets(&all);
    for pair in offsets.windows(2) {
        assert_eq!(
            pair[1].0,
            pair[0].1 + 1,
            "no gaps, no overlaps across segments"
        );
    }
    assert_eq!(offsets.last().map(|o| o.1), Some(expected_next - 1));
    assert_eq!(all.len() as u64, log.size_bytes());
}

#[test]
fn read_from_the_middle_of_a_batch_returns_the_containing_batch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), LogConfig::default());
    log.append(&batch(&Spec::new(5, 10)), 0, 1).expect("append");
    log.append(&batch(&Spec::new(5, 10)), 0, 1).expect("append");
    for (fetch, first) in [(0, 0), (3, 0), (4, 0), (5, 5), (7, 5), (9, 5)] {
        let r = log.read(fetch, 1 << 20, i64::MAX, false).expect("read");
        assert_eq!(r.first_offset, Some(first), "fetch {fetch}");
        assert_eq!(batch_offsets(&r.records)[0].0, first);
    }
    let end = log
        .read(10, 1 << 20, i64::MAX, false)
        .expect("read at log end");
    assert!(end.records.is_empty());
    assert_eq!(end.first_offset, None);
}

#[test]
fn max_bytes_and_min_one_batch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), LogConfig::default());
    let a = batch(&Spec::new(4, 100));
    let size = a.len();
    for _ in 0..3 {
        log.append(&a, 0, 1).expect("append");
    }
    let cases = [
        // (max_bytes, min_one_batch, batches returned)
        (size * 3, false, 3),
        (size * 2 + size / 2, false, 2),
        (size, false, 1),
        (size - 1, false, 0),
        (size - 1, true, 1),
        (0, true, 1),
        (0, false, 0),
        (usize::MAX / 4, false, 3),
    ];
    for (max_bytes, min_one, want) in cases {
        let r = log.read(0, max_bytes, i64::MAX, min_one).expect("read");
        assert_eq!(
            batch_offsets(&r.records).len(),
            want,
            "max_bytes {max_bytes} min_one_batch {min_one}"
        );
        assert_eq!(r.records.len(), want * size, "only whole batches");
    }
}

#[test]
fn max_offset_bounds_the_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), LogConfig::default());
    for _ in 0..4 {
        log.append(&batch(&Spec::new(2, 10)), 0, 1).expect("append");
    }
    // Batches start at 0, 2, 4, 6.
    let cases = [
        (i64::MAX, 4),
        (8, 4),
        (7, 4),
        (6, 3),
        (5, 3),
        (4, 2),
        (1, 1),
        (0, 0),
    ];
    for (max_offset, want) in cases {
        let r = log.read(0, 1 << 20, max_offset, true).expect("read");
        assert_eq!(
            batch_offsets(&r.records).len(),
            want,
            "max_offset {max_offset}"
        );
    }
    assert!(
        log.read(4, 1 << 20, 4, true)
            .expect("read at bound")
            .records
            .is_empty()
    );
}

#[test]
fn offsets_outside_the_log_are_out_of_range() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), LogConfig::default());
    for _ in 0..4 {
        log.append(&batch(&Spec::new(5, 10)), 0, 1).expect("append");
    }
    assert_eq!(log.delete_records_before(7).expect("delete records"), 7);
    for fetch in [-1, 6, 21, i64::MAX] {
        match log.read(fetch, 1024, i64::MAX, true) {
            Err(StorageError::OffsetOutOfRange {
                requested,
                log_start_offset: 7,
                log_end_offset: 20,
            }) => {
                assert_eq!(requested, fetch);
            }
            other => panic!("fetch {fetch}: expected OffsetOutOfRange, got {other:?}"),
        }
    }
    let r = log
        .read(7, 1024, i64::MAX, true)
        .expect("read at log start");
    assert_eq!(
        r.first_offset,
        Some(5),
        "the batch holding the log start offset"
    );
}

#[test]
fn invalid_record_sets_are_rejected_whole() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(
        dir.path(),
        LogConfig {
            max_message_bytes: 2_000,
            ..LogConfig::default()
        },
    );
    let good = batch(&Spec::new(2, 10));
    let mut bad_crc = batch(&Spec::new(2, 10));
    let last = bad_crc.len() - 1;
    bad_crc[last] ^= 0xff;
    let mut set = good.clone();
    set.extend_from_slice(&bad_crc);
    assert!(
        matches!(log.append(&set, 0, 1), Err(StorageError::CorruptRecord { position, .. }) if position == good.len())
    );
    let mut magic1 = good.clone();
    magic1[16] = 1;
    assert!(matches!(
        log.append(&magic1, 0, 1),
        Err(StorageError::InvalidRecord { .. })
    ));
    assert!(matches!(
        log.append(&[], 0, 1),
        Err(StorageError::EmptyRecordSet)
    ));
    assert!(matches!(
        log.append(&good[..30], 0, 1),
        Err(StorageError::CorruptRecord { .. })
    ));
    let big = batch(&Spec::new(1, 3_000));
    assert!(matches!(
        log.append(&big, 0, 1),
        Err(StorageError::RecordTooLarge {
            max_message_bytes: 2_000,
            ..
        })
    ));
    assert_eq!(log.log_end_offset(), 0, "nothing was written");
    assert_eq!(log.size_bytes(), 0);
    log.append(&good, 0, 1).expect("a good append still works");
    assert_eq!(log.log_end_offset(), 2);
}

#[test]
fn log_append_time_rewrites_timestamp_with_a_valid_crc() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        message_timestamp_type: TimestampType::LogAppendTime,
        ..LogConfig::default()
    };
    let log = open(dir.path(), config);
    let info = log
        .append(&batch(&Spec::new(3, 10).ts(5)), 0, 777_000)
        .expect("append");
    assert_eq!(info.log_append_time, 777_000);
    assert_eq!(info.batches[0].max_timestamp, 777_000);
    let r = log.read(0, 1 << 20, i64::MAX, true).expect("read");
    let view = RecordBatch::parse(&r.records).expect("framing");
    view.validate().expect("CRC recomputed");
    assert_eq!(view.timestamp_type(), BatchTimestampType::LogAppendTime);
    assert_eq!(view.max_timestamp(), 777_000);
    let decoded = decode_all(&r.records);
    for record in &decoded[0].records {
        assert_eq!(
            record.timestamp_type,
            kafka_protocol::records::TimestampType::LogAppend
        );
    }
    assert_eq!(
        log.latest_timestamp().map(|t| (t.timestamp, t.offset)),
        Some((777_000, 0))
    );
}

#[test]
fn readers_see_whole_batches_while_appends_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = std::sync::Arc::new(open(dir.path(), small_config(64 * 1024)));
    let writer = {
        let log = std::sync::Arc::clone(&log);
        std::thread::spawn(move || {
            for i in 0..2_000u32 {
                let set = batch(&Spec::new(3, 50).tag((i % 250) as u8));
                log.append(&set, 0, 1).expect("append");
            }
        })
    };
    let mut next = 0;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while next < 6_000 {
        assert!(
            std::time::Instant::now() < deadline,
            "reader stuck at offset {next}"
        );
        if writer.is_finished() && log.log_end_offset() == next {
            break; // the writer failed; join below reports why
        }
        let r = log.read(next, 8 * 1024, i64::MAX, true).expect("read");
        for item in strom_storage::batch::Batches::new(&r.records) {
            let (_, b) = item.expect("never a partial batch");
            b.validate().expect("never a torn batch");
            assert_eq!(b.base_offset(), next, "contiguous");
            next = b.last_offset() + 1;
        }
    }
    writer.join().expect("writer");
    assert_eq!(log.log_end_offset(), 6_000);
}

#[test]
fn partition_log_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<PartitionLog>();
}

/// Sets attribute bits on a prepared batch and fixes its CRC.
fn with_attributes(mut bytes: Vec<u8>, bits: i16) -> Vec<u8> {
    let attributes = i16::from_be_bytes([bytes[21], bytes[22]]) | bits;
    bytes[21..23].copy_from_slice(&attributes.to_be_bytes());
    strom_storage::batch::RecordBatchMut::parse(&mut bytes)
        .expect("framing")
        .update_crc();
    bytes
}

#[test]
fn compressed_batches_pass_through_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), LogConfig::default());
    for (codec, compression) in [
        (1, Compression::Gzip),
        (2, Compression::Snappy),
        (3, Compression::Lz4),
        (4, Compression::Zstd),
    ] {
        let b = batch_with(&Spec::new(3, 10), compression);
        let info = log.append(&b, 2, 1).expect("append");
        let r = log
            .read(info.first_offset, 1 << 20, i64::MAX, false)
            .expect("read");
        assert_eq!(&r.records[..], &patched(b, info.first_offset, 2)[..]);
        let view = RecordBatch::parse(&r.records).expect("framing");
        assert_eq!(i16::from(view.compression()), codec);
    }
}

#[test]
fn clients_cannot_write_control_batches() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), LogConfig::default());
    let control = with_attributes(batch(&Spec::new(1, 10)), 0x20);
    assert!(matches!(
        log.append(&control, 0, 1),
        Err(StorageError::InvalidRecord {
            source: strom_storage::batch::BatchError::ControlBatchFromClient,
            ..
        })
    ));
    let info = log
        .append_with_origin(control, 0, 1, strom_storage::AppendOrigin::Coordinator)
        .expect("the broker writes markers");
    assert!(info.batches[0].is_control);
}

#[test]
fn file_ranges_span_segments_and_outlive_a_deleted_segment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), small_config(2048));
    for tag in 0..12u8 {
        log.append(&batch(&Spec::new(4, 100).tag(tag)), 0, 1_000_000)
            .expect("append");
    }
    assert!(log.segment_count() > 2, "{} segments", log.segment_count());
    let expected = log.read(0, 1 << 20, i64::MAX, true).expect("read").records;
    let ranges = log
        .read_file_records(0, 1 << 20, i64::MAX, true)
        .expect("read ranges");
    assert_eq!(ranges.first_offset, Some(0));
    assert_eq!(ranges.len(), expected.len());
    assert!(ranges.ranges.len() > 1, "one range per segment touched");
    assert_eq!(batch_offsets(&expected).last().map(|b| b.1), Some(47));

    // Retention deletes the segments the ranges point into; the open files stay readable.
    assert_eq!(log.delete_records_before(40).expect("delete records"), 40);
    assert!(!dir.path().join("00000000000000000000.log").exists());
    assert_eq!(ranges.read_to_bytes().expect("read deleted"), expected);

    // Budget cuts fall on batch boundaries, as with the in-memory read.
    for budget in [1, 300, 700, 1500, 5000] {
        let cut = log
            .read_file_records(40, budget, i64::MAX, false)
            .expect("read");
        let bytes = log.read(40, budget, i64::MAX, false).expect("read").records;
        assert_eq!(cut.read_to_bytes().expect("bytes"), bytes);
        assert!(cut.len() <= budget);
    }
}

/// A leader appends a producer's record set without copying it when only the offsets and the
/// leader epoch change: the batches go to disk as the patched prefix of each beside the rest
/// of its bytes. The log must hold exactly what patching a copy gives, for record sets of one
/// batch and of more batches than one vectored write takes (1024 slices, two per batch), and a
/// batch whose `maxTimestamp` is not its largest record timestamp is still corrected.
#[test]
fn a_record_set_written_in_place_is_stored_as_a_patched_copy() {
    for batches in [1usize, 3, 700] {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = open(dir.path(), small_config(1 << 30));
        log.append(&batch(&Spec::new(2, 10).tag(9)), 4, 1_000)
            .expect("a first append");
        let mut set = Vec::new();
        let mut expected = Vec::new();
        let mut offset = 2;
        for i in 0..batches {
            let records = 1 + i % 3;
            let one =
                batch(&Spec::new(records, 5 + i % 7).tag(u8::try_from(i % 250).expect("small")));
            expected.extend(patched(one.clone(), offset, 4));
            offset += i64::try_from(records).expect("small");
            set.extend(one);
        }
        let info = log.append(&set, 4, 2_000).expect("append in place");
        assert_eq!((info.first_offset, info.last_offset), (2, offset - 1));
        assert_eq!(info.bytes, set.len() as u64);
        let stored = read_all(&log, 2);
        assert_eq!(stored.len(), expected.len(), "{batches} batches");
        assert!(stored == expected, "{batches} batches: bytes differ");
        // Reopened, the log recovers to the same end: every batch on disk is whole and valid.
        drop(log);
        let log = open(dir.path(), small_config(1 << 30));
        assert_eq!(log.log_end_offset(), offset, "{batches} batches");
        assert!(read_all(&log, 2) == expected);
    }
}

/// The exception to the in-place append: a batch whose `maxTimestamp` is not its largest
/// record timestamp is stored with the largest one and a CRC that covers it.
#[test]
fn a_wrong_max_timestamp_is_corrected_with_a_valid_crc() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), LogConfig::default());
    let mut bytes = batch(&Spec::new(3, 10).ts(5_000));
    let largest = RecordBatch::parse(&bytes).expect("framing").max_timestamp();
    bytes[35..43].copy_from_slice(&1i64.to_be_bytes());
    strom_storage::batch::RecordBatchMut::parse(&mut bytes)
        .expect("a whole batch")
        .update_crc();
    let info = log.append(&bytes, 0, 9_000).expect("append");
    assert_eq!(info.batches[0].max_timestamp, largest);
    let r = log.read(0, 1 << 20, i64::MAX, true).expect("read");
    let view = RecordBatch::parse(&r.records).expect("framing");
    view.validate().expect("CRC recomputed");
    assert_eq!(view.max_timestamp(), largest);
}
