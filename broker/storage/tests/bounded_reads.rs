//! Reads bounded by an upper offset: consumers read to the high watermark, followers to the
//! log end offset, and both see the right data across a truncation point.

mod common;

use common::*;
use strom_storage::PartitionLog;

/// Ten batches of three records: offsets 0..30, batch `i` at `3 * i`.
fn build(dir: &std::path::Path) -> (PartitionLog, Vec<Vec<u8>>) {
    let log = open(dir, small_config(700));
    let mut stored = Vec::new();
    for i in 0..10u8 {
        let b = batch(&Spec::new(3, 40).tag(i));
        let info = log.append(&b, 0, 1).expect("append");
        stored.push(patched(b, info.first_offset, 0));
    }
    assert!(log.segment_count() > 2, "reads cross segments");
    (log, stored)
}

/// Reads `[from, upper)` in fetches of `max_bytes`, as a fetcher loops.
fn read_range(log: &PartitionLog, from: i64, upper: i64, max_bytes: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut offset = from;
    loop {
        let r = log
            .read_file_records(offset, max_bytes, upper, true)
            .expect("read");
        let bytes = r.read_to_bytes().expect("bytes");
        if bytes.is_empty() {
            return out;
        }
        offset = batch_offsets(&bytes).last().expect("batches").1 + 1;
        out.extend_from_slice(&bytes);
    }
}

#[test]
fn consumers_stop_at_the_high_watermark_followers_at_the_log_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, stored) = build(dir.path());
    let high_watermark = 15;
    let leo = log.log_end_offset();
    assert_eq!(leo, 30);
    for max_bytes in [1, 200, 1 << 20] {
        let consumer = read_range(&log, 0, high_watermark, max_bytes);
        assert_eq!(consumer, stored[..5].concat(), "max_bytes {max_bytes}");
        let follower = read_range(&log, 0, leo, max_bytes);
        assert_eq!(follower, stored.concat(), "max_bytes {max_bytes}");
        // A follower continuing from the high watermark gets exactly the rest.
        assert_eq!(
            read_range(&log, high_watermark, leo, max_bytes),
            stored[5..].concat()
        );
    }
    // At the bound itself a read is empty, not an error; above the log end it is out of range.
    assert!(
        log.read(15, 1 << 20, high_watermark, true)
            .expect("read")
            .records
            .is_empty()
    );
    assert!(
        log.read(30, 1 << 20, leo, true)
            .expect("read")
            .records
            .is_empty()
    );
    assert!(log.read(31, 1 << 20, leo, true).is_err());
    // A fetch in the middle of a batch starts with that batch.
    let r = log.read(13, 1 << 20, high_watermark, true).expect("read");
    assert_eq!(
        (r.first_offset, r.records.to_vec()),
        (Some(12), stored[4].clone())
    );
}

#[test]
fn reads_across_a_truncation_point() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, stored) = build(dir.path());
    // A read in flight when the log is truncated: only whole batches that remain come back.
    let in_flight = log.read_file_records(9, 1 << 20, 30, true).expect("read");
    log.truncate_to(18).expect("truncate");
    let bytes = in_flight.read_to_bytes().expect("bytes");
    assert!(stored[3..].concat().starts_with(&bytes));
    assert!(batch_offsets(&bytes).iter().all(|&(_, last)| last < 18));

    // New data after the cut, as a follower re-replicates from its new leader.
    let mut replacement = Vec::new();
    for i in 0..4u8 {
        let b = patched(
            batch(&Spec::new(2, 25).tag(100 + i)),
            18 + i64::from(i) * 2,
            1,
        );
        log.append_as_follower(&b, 1).expect("append");
        replacement.push(b);
    }
    let leo = log.log_end_offset();
    assert_eq!(leo, 26);
    let mut want = stored[..6].concat();
    want.extend_from_slice(&replacement.concat());
    for max_bytes in [1, 300, 1 << 20] {
        assert_eq!(
            read_range(&log, 0, leo, max_bytes),
            want,
            "follower, {max_bytes}"
        );
        // The high watermark lies just past the truncation point.
        let consumer = read_range(&log, 12, 20, max_bytes);
        let mut expected = stored[4..6].concat();
        expected.extend_from_slice(&replacement[0]);
        assert_eq!(consumer, expected, "consumer, {max_bytes}");
    }
    // After a restart the same reads give the same bytes.
    drop(log);
    let log = open(dir.path(), small_config(700));
    assert_eq!(read_range(&log, 0, 26, 1 << 20), want);
}
