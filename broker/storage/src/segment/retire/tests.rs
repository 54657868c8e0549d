//! `file.delete.delay.ms`: readers of a snapshot taken before segments were removed read them
//! whole until the delay passes; then, or at once with a delay of 0, the files are gone; a
//! reopen deletes retired files left behind.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::LogConfig;
use crate::log::{LogSnapshot, PartitionLog};
use crate::records::test_batch;

const NOW: i64 = 1_000_000;

fn config(file_delete_delay_ms: i64) -> LogConfig {
    LogConfig {
        segment_bytes: 2_048,
        index_interval_bytes: 256,
        retention_ms: 10_000,
        file_delete_delay_ms,
        ..LogConfig::default()
    }
}

/// A client batch of `records` records with 100-byte values tagged by `tag`.
fn batch(records: usize, tag: u8) -> Vec<u8> {
    test_batch(0, records, &[tag; 100])
}

/// A log of 12 batches of 4 records over several segments, and all of its bytes.
fn filled(dir: &Path, file_delete_delay_ms: i64) -> (PartitionLog, Vec<u8>) {
    let log = PartitionLog::open(dir, config(file_delete_delay_ms), NOW).expect("open");
    for tag in 0..12u8 {
        log.append(&batch(4, tag), 0, NOW).expect("append");
    }
    assert!(log.segment_count() > 2, "{} segments", log.segment_count());
    let all = log.read(0, 1 << 20, i64::MAX, true).expect("read").records;
    assert_eq!(log.log_end_offset(), 48);
    (log, all.to_vec())
}

/// Every byte of a snapshot's segments, read through the segments as a reader does.
fn read_snapshot(snap: &LogSnapshot) -> Result<Vec<u8>, crate::StorageError> {
    let mut out = Vec::new();
    for (i, segment) in snap.segments.iter().enumerate() {
        let mut buf = vec![0u8; snap.end_of(i) as usize];
        let n = segment.read_at(&mut buf, 0)?;
        assert_eq!(
            n,
            buf.len(),
            "segment {} reads whole",
            segment.base_offset()
        );
        out.extend_from_slice(&buf);
    }
    Ok(out)
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("list")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    names.sort();
    names
}

fn retired(dir: &Path) -> Vec<String> {
    names(dir)
        .into_iter()
        .filter(|n| n.ends_with(".deleted"))
        .collect()
}

fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Retention removes every segment with data (the log rolls first); returns the snapshot a
/// reader loaded before, whose removed segments have no file open any more.
fn expire_all(log: &PartitionLog) -> Arc<LogSnapshot> {
    let before = log.snapshot.load_full();
    let removed = before.segments.len();
    let outcome = log.apply_retention(NOW + 20_000).expect("retention");
    assert_eq!(outcome.deleted_segments, removed);
    assert_eq!(outcome.log_start_offset, 48);
    for segment in before.segments.iter() {
        assert!(
            segment.files.lock().cached.upgrade().is_none(),
            "segment {}'s files are closed: the next read opens them again",
            segment.base_offset()
        );
    }
    before
}

#[test]
fn a_reader_of_an_older_snapshot_reads_removed_segments_whole_until_the_delay() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, all) = filled(dir.path(), 3_600_000);
    let before = expire_all(&log);
    let logs: Vec<String> = names(dir.path())
        .into_iter()
        .filter(|n| n.ends_with(".log"))
        .collect();
    assert_eq!(
        logs,
        vec![format!("{:020}.log", 48)],
        "only the new segment is live"
    );
    assert_eq!(
        retired(dir.path()).len(),
        4 * before.segments.len(),
        "each removed segment's four files are retired"
    );
    assert_eq!(read_snapshot(&before).expect("read the old snapshot"), all);
    // The log itself no longer has them.
    assert!(matches!(
        log.read(0, 1 << 20, i64::MAX, true),
        Err(crate::StorageError::OffsetOutOfRange { .. })
    ));
}

#[test]
fn retired_files_are_deleted_after_the_delay() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, _) = filled(dir.path(), 100);
    let before = expire_all(&log);
    wait_until("the retired files are deleted", || {
        retired(dir.path()).is_empty()
    });
    assert_eq!(
        names(dir.path())
            .iter()
            .filter(|n| n.ends_with(".log"))
            .count(),
        1
    );
    let gone = read_snapshot(&before).expect_err("the files are gone");
    assert!(
        matches!(&gone, crate::StorageError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound),
        "{gone}"
    );
}

#[test]
fn a_delay_of_zero_deletes_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, _) = filled(dir.path(), 0);
    let before = expire_all(&log);
    assert_eq!(retired(dir.path()), Vec::<String>::new());
    let segment_files: Vec<String> = names(dir.path())
        .into_iter()
        .filter(|n| n.ends_with(".log") || n.ends_with("index"))
        .collect();
    let live = |suffix: &str| format!("{:020}{suffix}", 48);
    assert_eq!(
        segment_files,
        vec![
            live(".index"),
            live(".log"),
            live(".timeindex"),
            live(".txnindex")
        ]
    );
    assert!(read_snapshot(&before).is_err(), "nothing is left to read");
}

#[test]
fn a_reopen_deletes_retired_files_and_the_log_is_complete() {
    for clean in [true, false] {
        let dir = tempfile::tempdir().expect("tempdir");
        let (log, all) = filled(dir.path(), 3_600_000);
        // Retention by size keeps the newest segments.
        log.update_config(LogConfig {
            retention_bytes: 2_500,
            ..config(3_600_000)
        });
        let outcome = log.apply_retention(NOW).expect("retention");
        assert!(outcome.deleted_segments > 0);
        let start = outcome.log_start_offset;
        assert!(start > 0);
        let kept = log
            .read(start, 1 << 20, i64::MAX, true)
            .expect("read")
            .records;
        assert!(all.ends_with(&kept), "the newest batches are kept");
        assert!(!retired(dir.path()).is_empty());
        if clean {
            log.close().expect("close");
        }
        // Without close: as a crash between the rename and the unlink leaves the directory.
        drop(log);
        let log = PartitionLog::open(dir.path(), config(3_600_000), NOW).expect("reopen");
        assert_eq!(retired(dir.path()), Vec::<String>::new(), "clean: {clean}");
        assert_eq!(
            (log.log_start_offset(), log.log_end_offset()),
            (start, 48),
            "no removed segment comes back (clean: {clean})"
        );
        let read = log
            .read(start, 1 << 20, i64::MAX, true)
            .expect("read")
            .records;
        assert_eq!(read, kept, "clean: {clean}");
    }
}

#[test]
fn a_segment_retired_twice_under_one_name_keeps_each_readers_data() {
    // A follower restarting its log at the same offset twice within the delay: the second
    // segment at that base must neither replace the first one's retired files nor be
    // deleted on the first one's deadline.
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, all) = filled(dir.path(), 3_600_000);
    let first = log.snapshot.load_full();
    log.truncate_fully_and_start_at(0).expect("restart at 0");
    let second_batch = batch(4, 200);
    log.append(&second_batch, 0, NOW).expect("append");
    let second = log.snapshot.load_full();
    log.truncate_fully_and_start_at(0)
        .expect("restart at 0 again");
    assert_eq!(read_snapshot(&first).expect("first"), all);
    let second_bytes = read_snapshot(&second).expect("second");
    assert_eq!(second_bytes.len(), second_batch.len());
    assert_eq!(
        &second_bytes[61..],
        &second_batch[61..],
        "the second log's records"
    );
}
